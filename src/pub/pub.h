/*
 * Publishers (issue 8 item 3, CA side): each sends the changes of the CAs
 * it covers to a VA through a peer connector. A CA commit hook writes one
 * outbox row per publisher per change inside the change's own transaction
 * (pub_queue), so an item exists exactly when its change does; the item's
 * id is the update sequence the VA keeps.
 *
 * Every function is thread safe and runs on worker threads; results for
 * the admin API are JSON (new references).
 */
#ifndef SP_PUB_PUB_H
#define SP_PUB_PUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ca/ca.h"
#include "store/store.h"
#include "util/err.h"

#define PUB_NAME_MAX		64
#define PUB_CAS_MAX		32	/* CAs named by one publisher */
#define PUB_BACKOFF_MIN		1	/* seconds */
#define PUB_BACKOFF_MAX		300

struct pub;

/*
 * Loads the publishers and registers the outbox hook with the CA service
 * (node start, before the CA service is used from several threads).
 */
int	pub_open(struct store *st, struct ca_service *ca, struct pub **out,
	    struct sp_err *err) SP_WUR;
void	pub_free(struct pub *p);

struct peer;
struct event_base;
struct pool;

/*
 * Starts delivery (loop thread): per publisher, due items are read on a
 * worker of pool and sent through its connector; a 1 s timer retries
 * what is due. Until then items only queue up.
 */
int	pub_start(struct pub *p, struct peer *peer, struct event_base *base,
	    struct pool *pool, struct sp_err *err) SP_WUR;
/* Stops delivery before the pool and the peer service go (loop thread). */
void	pub_stop(struct pub *p);
/* Wakes delivery now; any thread (the CA's commit notify calls it). */
void	pub_wake(void *p);

/* The CA commit hook (registered by pub_open; exposed for tests). */
int	pub_commit_hook(void *arg, struct store *st, struct store_txn *tx,
	    const struct ca_change_ev *ev, struct sp_err *err);

struct pub_settings {
	const char		*connector;	/* NULL: unchanged (edit) */
	const char *const	*cas;		/* NULL: unchanged (edit) */
	size_t			 ncas;		/* 0 with cas: every CA */
	int			 only_revoked;	/* -1: unchanged */
	int			 no_der;
	int			 no_crls;
};

/* Adds a publisher and queues a CA item for every CA it covers. */
int	pub_add(struct pub *p, const char *name, const struct pub_settings *s,
	    const char *actor, json_t **out, struct sp_err *err) SP_WUR;
int	pub_edit(struct pub *p, const char *name, const struct pub_settings *s,
	    const char *actor, json_t **out, struct sp_err *err) SP_WUR;
/* Deletes it and its queue: {"name","deleted","dropped"}. */
int	pub_delete(struct pub *p, const char *name, const char *actor,
	    json_t **out, struct sp_err *err) SP_WUR;
int	pub_list(struct pub *p, json_t **out, struct sp_err *err) SP_WUR;
int	pub_show(struct pub *p, const char *name, json_t **out,
	    struct sp_err *err) SP_WUR;
/* The queue in id order, at most limit items (0: 100). */
int	pub_queue(struct pub *p, const char *name, size_t limit, json_t **out,
	    struct sp_err *err) SP_WUR;
/* Makes every failed item due now: {"name","retried"}. */
int	pub_retry(struct pub *p, const char *name, const char *actor,
	    json_t **out, struct sp_err *err) SP_WUR;
/*
 * Queues a CA item, then every issued certificate with its current
 * status, for ca (NULL: every covered CA), in one transaction:
 * {"name","cas","certs"}.
 */
int	pub_republish(struct pub *p, const char *name, const char *ca,
	    const char *actor, json_t **out, struct sp_err *err) SP_WUR;

/*
 * Certificate synchronization to a VA (sync.c): one background task per
 * connector, which walks the CA's certificates, asks the VA which it lacks
 * or holds differently (publish/readcerts) and pushes those.
 */
struct pub_sync_opts {
	const char		*connector;
	const char *const	*cas;		/* NULL: every CA */
	size_t			 ncas;
	const char		*subset;	/* all, active, revoked; NULL all */
	int64_t			 since;		/* not_before >= since */
	int64_t			 batch;		/* 0: 2000 */
	bool			 restart;	/* not resume an interrupted one */
};
/* Starts, or resumes an interrupted or stopped, task; *out its status. */
int	pub_sync_start(struct pub *p, const struct pub_sync_opts *o,
	    const char *actor, json_t **out, struct sp_err *err) SP_WUR;
int	pub_sync_stop(struct pub *p, const char *connector, const char *actor,
	    json_t **out, struct sp_err *err) SP_WUR;
/* One task's status (an object), or every task's (connector NULL). */
int	pub_sync_status(struct pub *p, const char *connector, json_t **out,
	    struct sp_err *err) SP_WUR;
/* The entries that could not be synchronized, in the report's shape. */
int	pub_sync_report(struct pub *p, const char *connector, json_t **out,
	    struct sp_err *err) SP_WUR;
/*
 * Compares sample certificates at random (0: all) with the VA's entries
 * through publish/readcerts, pushing nothing; the counts (checked, same,
 * missing, differs, errors, drifted) go to done and are kept for `peer
 * connector list`. Loop thread; done runs once, on the loop.
 */
typedef void pub_check_done(void *arg, json_t *result, int rc,
    const struct sp_err *err);
void	pub_sync_check(struct pub *p, const char *connector, int64_t sample,
	    pub_check_done *done, void *arg);
/* Schedules a check of connector every seconds (0: none). Worker thread. */
int	pub_sync_check_every(struct pub *p, const char *connector,
	    int64_t seconds, struct sp_err *err) SP_WUR;
/*
 * Per connector with a sync or a check, its state for `peer connector
 * list`: {"NAME": {"sync": "running 40%", "check": "ok" or "DRIFT: ..."}}
 * (loop thread; new reference).
 */
json_t	*pub_sync_view(struct pub *p);

/* Node start: a task left running is marked interrupted. */
int	pub_sync_recover(struct pub *p, struct sp_err *err) SP_WUR;

/*
 * The delay before try number attempts (>= 1): PUB_BACKOFF_MIN doubling,
 * at most PUB_BACKOFF_MAX, then +-20% from rnd (uniform in [0, 1]).
 */
int64_t	pub_backoff(int64_t attempts, double rnd);

#endif
