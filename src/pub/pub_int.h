/* Shared by pub.c and worker.c. */
#ifndef SP_PUB_PUB_INT_H
#define SP_PUB_PUB_INT_H

#include <pthread.h>
#include <stdbool.h>

#include "pub/pub.h"

struct publisher {
	int64_t	id;
	char	name[PUB_NAME_MAX + 1];
	char	connector[PUB_NAME_MAX + 1];
	char	cas[PUB_CAS_MAX * (CA_NAME_MAX + 1) + 1];	/* "A,B", "" */
	bool	only_revoked, no_der, no_crls;
	int64_t	created;
};

struct pub_dlv;

struct pub {
	struct store		*st;
	struct ca_service	*ca;
	pthread_mutex_t		 lk;
	struct publisher	*v;
	size_t			 n;
	/* Delivery (worker.c): loop thread only, but ev_wake. */
	struct peer		*peer;
	struct event_base	*base;
	struct pool		*pool;
	struct event		*ev_wake, *ev_tick;
	struct pub_dlv		*dlv;
	size_t			 ndlv;
	bool			 stopping;
	/* Syncs (sync.c): loop thread only. */
	struct pub_sync		*syncs;		/* a list */
	bool			 sync_scanning;
	json_t			*sync_view;	/* pub_sync_view() */
};

/* True if the list "A,B" ("" : every CA) covers ca. */
bool	pub_covers(const char *cas, const char *ca);
/* cas[0..n) as "A,B" into buf (names checked). */
int	pub_join_cas(const char *const *cas, size_t n, char *buf, size_t cap,
	    struct sp_err *err) SP_WUR;

/* sync.c: the loop side, driven by the publishers' tick and wake. */
struct pub_sync;
void	pub_sync_run(struct pub *p);
void	pub_sync_free_all(struct pub *p);

/* A copy of the publisher list (*out heap; NULL if n is 0). */
int	pub_snapshot(struct pub *p, struct publisher **out, size_t *n);
void	pub_free_dlv(struct pub *p);

#endif
