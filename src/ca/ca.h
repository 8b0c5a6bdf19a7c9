/*
 * The CA service of a node: CAs, certificate profiles, issuance,
 * revocation, CRLs and the audit trail, over the store. Keys are in the
 * token service (token/token.h), which this one signs through.
 *
 * Every operation is thread safe and may run on any worker thread. Results
 * meant for the admin API are JSON (new references). "actor" names who
 * asked ("admin:uid=1000") and is written to the audit log.
 */
#ifndef SP_CA_CA_H
#define SP_CA_CA_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "crypto/x509.h"
#include "store/store.h"
#include "token/token.h"
#include "util/err.h"

#define CA_NAME_MAX		64
#define CA_TOKEN_NAME_MAX	64
#define CA_BATCH_MAX		1024	/* requests in one issuance batch */

struct ca_service;

/*
 * Loads CAs and profiles from the store and installs missing built-in
 * profiles; each CA claims its key in the token service's key registry.
 * Reserved certificate rows left by a crash are marked failed (and
 * audited). The token service (borrowed) must outlive the CA service.
 */
int	ca_service_open(struct store *st, struct tokens *tokens,
	    struct ca_service **out, struct sp_err *err) SP_WUR;
void	ca_service_free(struct ca_service *svc);

/* --- CAs ---------------------------------------------------------------- */

struct ca_create_req {
	const char	*name;
	const char	*dn;
	const char	*token;
	const char	*key;
	const char	*signed_by;	/* NULL: self-signed root */
	const char	*profile;	/* NULL: ROOTCA or SUBCA */
	int		 validity_days;	/* 0: the profile's maximum */
	long long	 crl_period;	/* seconds, 0: one day */
};

int	ca_create(struct ca_service *svc, const struct ca_create_req *req,
	    const char *actor, json_t **out, struct sp_err *err) SP_WUR;
json_t	*ca_list(struct ca_service *svc);
int	ca_show(struct ca_service *svc, const char *name, json_t **out,
	    struct sp_err *err) SP_WUR;
/* PEM of the CA certificate, with the chain up to the root if chain. */
int	ca_cert_pem(struct ca_service *svc, const char *name, bool chain,
	    char **pem, struct sp_err *err) SP_WUR;

/* --- profiles ----------------------------------------------------------- */

json_t	*ca_profile_list(struct ca_service *svc);
int	ca_profile_show(struct ca_service *svc, const char *name,
	    json_t **out, struct sp_err *err) SP_WUR;
/* Creates name as a copy of from, then applies the key=value settings. */
int	ca_profile_create(struct ca_service *svc, const char *name,
	    const char *from, const char *const *sets, size_t nsets,
	    const char *actor, struct sp_err *err) SP_WUR;
/* Applies settings to an operator profile (built-ins are read-only). */
int	ca_profile_edit(struct ca_service *svc, const char *name,
	    const char *const *sets, size_t nsets, const char *actor,
	    struct sp_err *err) SP_WUR;

/* --- issuance ----------------------------------------------------------- */

struct ca_issue_req {
	const char		*ca;
	const char		*profile;
	const unsigned char	*csr;		/* PEM or DER */
	size_t			 csrlen;
	int			 days;		/* 0: the profile's maximum */
	const char		*actor;		/* NULL: the batch's actor */
};

struct ca_issue_res {
	int		rc;		/* 0 or the failure code */
	struct sp_err	err;
	char		serial[2 * SERIAL_LEN + 1];
	unsigned char	*der;		/* issued certificate (heap) */
	size_t		derlen;
};

/*
 * Issues a batch of certificates: each CSR is verified and checked against
 * its profile, a serial is reserved and the to-be-signed certificate is
 * recorded (one transaction for the batch, committed without waiting for
 * the disk) before anything is signed; the signed certificates and their
 * audit rows are stored in a second, durable, transaction that makes the
 * first durable too, and only then returned. Failures are per request (res[i]).
 * Returns 0 unless the batch as a whole failed (database down).
 * Callers free res[i].der.
 */
int	ca_issue_batch(struct ca_service *svc, const struct ca_issue_req *reqs,
	    size_t n, struct ca_issue_res *res, const char *actor) SP_WUR;

/*
 * Issues one certificate through group commit: concurrent callers' requests
 * are gathered and the first caller to arrive issues them all in one
 * ca_issue_batch() (one pair of transactions, one fsync) while
 * the others wait for their result. The caller frees res->der.
 */
/* --- commit hooks ---------------------------------------------------------
 *
 * Every change another node must hear of (a CA created, a certificate
 * issued, a status changed, a CRL made) calls the registered hooks inside
 * the change's own durable transaction, after its rows and before its
 * commit. A hook writes what it needs (the publisher's outbox) with tx, so
 * its rows exist exactly when the change does; a hook that fails rolls
 * the whole change back and the caller gets its error. Hooks run on
 * worker threads, under the CA service's read lock; they must not call
 * back into the CA service.
 */
#define CA_HOOKS_MAX	4

enum ca_change {
	CA_CHANGE_CA,		/* a CA was created (der: its certificate) */
	CA_CHANGE_CERT,		/* a certificate was issued (der) */
	CA_CHANGE_STATUS,	/* revoked, put on hold or released */
	CA_CHANGE_CRL,		/* a CRL was made (der, crl_number) */
	CA_CHANGE__MAX
};

struct ca_change_ev {
	enum ca_change		 what;
	const char		*ca;		/* the CA's name */
	int64_t			 ca_id;
	const char		*serial;	/* crypto/ids.h form; NULL: CRL */
	enum cert_status	 status;	/* CERT, STATUS */
	time_t			 revoked_at;	/* STATUS, if revoked */
	int			 reason;	/* CRLReason, -1: none */
	const unsigned char	*der;		/* NULL for STATUS */
	size_t			 derlen;
	int64_t			 crl_number;	/* CRL */
};

typedef int ca_commit_hook(void *arg, struct store *st, struct store_txn *tx,
    const struct ca_change_ev *ev, struct sp_err *err);

/*
 * Registers a hook (called in registration order). Only before the
 * service is used from more than one thread (at node start).
 * SP_ERR_LIMIT beyond CA_HOOKS_MAX.
 */
int	ca_add_commit_hook(struct ca_service *svc, ca_commit_hook *fn,
	    void *arg) SP_WUR;
/*
 * Registers fn to be called after a transaction that ran the hooks has
 * committed (on that worker thread, no lock of the CA service held
 * beyond its read lock): e.g. to wake the publishers. Same rules as
 * ca_add_commit_hook().
 */
typedef void ca_commit_notify_fn(void *arg);
int	ca_add_commit_notify(struct ca_service *svc, ca_commit_notify_fn *fn,
	    void *arg) SP_WUR;

/*
 * Issuance without a waiting thread (loop thread only): the request is
 * copied and queued, and up to one batch per CPU runs as a job of pool;
 * requests that arrive while batches run gather for the next batch. done
 * runs on the loop, exactly once, never inside this call; res->der is
 * freed after done returns (copy what you keep). No worker ever waits
 * for another request's batch. SP_ERR_LIMIT at once if the pool is full.
 */
struct pool;
typedef void ca_issue_done_fn(void *arg, const struct ca_issue_res *res);
int	ca_issue_submit(struct ca_service *svc, struct pool *pool,
	    const struct ca_issue_req *req, const char *actor,
	    ca_issue_done_fn *done, void *arg, struct sp_err *err) SP_WUR;

/* Group-commit counters since open: batches run, requests they carried. */
void	ca_issue_stats(struct ca_service *svc, uint64_t *batches,
	    uint64_t *requests);

int	ca_issue_one(struct ca_service *svc, const struct ca_issue_req *req,
	    struct ca_issue_res *res, const char *actor) SP_WUR;

/* Revokes with a CRLReason name; certificateHold can later be lifted. */
int	ca_revoke(struct ca_service *svc, const char *ca, const char *serial,
	    const char *reason, const char *actor, struct sp_err *err) SP_WUR;
/* Lifts a certificateHold. */
int	ca_unrevoke(struct ca_service *svc, const char *ca, const char *serial,
	    const char *actor, struct sp_err *err) SP_WUR;
/* [{"ca","serial","status","subject","profile","not_before",...}] */
int	ca_cert_list(struct ca_service *svc, const char *ca, const char *status,
	    size_t limit, json_t **out, struct sp_err *err) SP_WUR;
int	ca_cert_show(struct ca_service *svc, const char *ca, const char *serial,
	    json_t **out, struct sp_err *err) SP_WUR;

/* --- CRLs --------------------------------------------------------------- */

/* Makes and stores a new CRL now: {"ca","number","entries",...}. */
int	ca_crl_create(struct ca_service *svc, const char *ca, const char *actor,
	    json_t **out, struct sp_err *err) SP_WUR;
/* The latest CRL (DER, heap). */
int	ca_crl_get(struct ca_service *svc, const char *ca, unsigned char **der,
	    size_t *len, struct sp_err *err) SP_WUR;
/*
 * Makes the CRLs that are due. Returns the number made; CAs whose token
 * is inactive are skipped with a warning.
 */
int	ca_crl_tick(struct ca_service *svc);

/* --- audit ------------------------------------------------------------- */

int	ca_audit_verify(struct ca_service *svc, json_t **out,
	    struct sp_err *err) SP_WUR;
json_t	*ca_audit_list(struct ca_service *svc, size_t limit);

#endif
