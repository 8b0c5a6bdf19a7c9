/*
 * Shared inside the peer module (listener.c, connector.c, peer.c).
 */
#ifndef SP_PEER_PEER_INT_H
#define SP_PEER_PEER_INT_H

#include <sys/queue.h>

#include <stdbool.h>
#include <stdint.h>

#include <event2/http.h>
#include <openssl/ssl.h>

#include "peer/peer.h"

#define AUTHZ_CACHE_SIZE	256
#define INCOMING_BATCH_MAX	1024

struct authz_entry {
	char		fp[65];
	int		route;
	bool		ok;
	char		role[65];
	char		msg[256];
	time_t		expires;
	uint64_t	gen;
};

struct incoming_rec {
	X509		*cert;
	char		 address[64];
	char		 role[65];
};

struct connector;
TAILQ_HEAD(connector_list, connector);

/*
 * A database write for the peer layer (settings, stored connectors): the
 * write runs on a worker and touches only the store and the job; apply
 * runs on the loop with the outcome, changes memory if rc is 0, calls
 * done and frees the job. One job at a time, in order (peer.c).
 */
struct peer_write;
typedef int	peer_write_fn(struct peer_write *w, struct sp_err *err);
typedef void	peer_apply_fn(struct peer_write *w, int rc,
		    const struct sp_err *err);
struct peer_write {
	struct peer		*p;
	peer_write_fn		*write;
	peer_apply_fn		*apply;
	peer_done_fn		*done;
	void			*arg;
	int			 rc;
	struct sp_err		 err;
	TAILQ_ENTRY(peer_write)	 q;
};
TAILQ_HEAD(peer_write_list, peer_write);
struct listener;
struct registry;

struct peer {
	struct event_base	*base;
	struct store		*st;
	struct authz		*az;
	struct pool		*pool;		/* database writes, off the loop */
	struct peer_hooks	 hooks;
	char			 node[PEER_NAME_MAX + 1];

	/* settings */
	bool			 incoming_enabled;
	bool			 outgoing_enabled;
	char			 incoming_kb[PEER_NAME_MAX + 1];

	/* listener */
	struct evhttp		*http;
	char			 listen[80];
	SSL_CTX			*srv_ctx;	/* NULL until an identity works */
	SSL_CTX			*refuse_ctx;	/* no certificate: fails closed */
	uint64_t		 srv_gen;
	bool			 srv_dirty;
	time_t			 srv_retry;	/* next attempt after a failure */
	struct authz_entry	 cache[AUTHZ_CACHE_SIZE];
	size_t			 cache_next;
	struct incoming_rec	 recs[INCOMING_BATCH_MAX];
	size_t			 nrecs;
	struct event		*ev_flush;
	time_t			 last_flush;
	struct listener		*lst;		/* connections (conn.c) */
	struct registry		*reg;		/* endpoints (registry.c) */

	/* connectors */
	struct connector_list	 connectors;

	/* database writes, one at a time (peer_write_run()) */
	struct peer_write_list	 writes;
	bool			 write_busy;
};

/* peer.c */
int	peer_setting_put(struct peer *p, const char *key, const char *value,
	    const char *actor, struct sp_err *err) SP_WUR;
int	peer_fingerprint(X509 *x, char out[65]) SP_WUR;
/*
 * Runs w: inline (done == NULL: write, then apply, the outcome returned)
 * or queued for a worker (0 returned; apply reports through done). Takes
 * w in every case.
 */
int	peer_write_run(struct peer *p, struct peer_write *w,
	    struct sp_err *err) SP_WUR;

/* listener.c (listener_int.h has the rest of the listener's insides) */
void	nodelay(evutil_socket_t fd);
int	listener_start(struct peer *p, const char *listen, struct sp_err *err)
	    SP_WUR;
void	listener_stop(struct peer *p);

/* connector.c */
int	connectors_load(struct peer *p, struct sp_err *err) SP_WUR;
void	connectors_free(struct peer *p);

#endif
