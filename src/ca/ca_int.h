/*
 * What the CA service's files share (ca.c: the service, CAs, profiles and
 * audit queries; issue.c: issuance; revoke.c: revocation, certificate
 * queries and CRLs). Not an interface: other modules use ca/ca.h.
 */
#ifndef SP_CA_CA_INT_H
#define SP_CA_CA_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca/ca.h"
#include "ca/profile.h"
#include "crypto/x509.h"
#include "store/store.h"
#include "token/token.h"

#define CRL_PERIOD_MIN	10		/* seconds */
#define CRL_PERIOD_MAX	(366 * 86400)
#define CA_DAYS_MAX	36500
#define BACKDATE	60		/* seconds of clock skew tolerated */

struct ca {
	int64_t		 id;
	char		 name[CA_NAME_MAX + 1];
	char		 token[CA_TOKEN_NAME_MAX + 1];
	char		 key[TOKEN_ALIAS_MAX + 1];
	int64_t		 issuer_id;
	X509		*cert;
	long long	 crl_period;
	bool		 crl_warned;	/* scheduled CRL failure logged */
};

/*
 * The lock guards the arrays; CAs are immutable once loaded, profiles are
 * replaced (not changed) by edits. Tokens are the token service's.
 */
struct gc_item;
struct aq_item;

struct ca_service {
	struct store		 *st;
	pthread_rwlock_t	  lk;
	/*
	 * Serialises CA and profile changes, which sign and commit holding
	 * only this; they take lk briefly to look up and to publish.
	 */
	pthread_mutex_t		  chg_mtx;
	/* Group commit of single issuance requests (ca_issue_one()). */
	pthread_mutex_t		  gc_mtx;
	struct gc_item		 *gc_head, *gc_tail;
	struct {
		ca_commit_hook	*fn;
		void		*arg;
	}			  hooks[CA_HOOKS_MAX];
	size_t			  nhooks;
	struct {
		ca_commit_notify_fn *fn;
		void		*arg;
	}			  notify[CA_HOOKS_MAX];
	size_t			  nnotify;
	/* ca_issue_submit()'s queue and batch jobs: loop thread only. */
	struct aq_item		 *aq_head, *aq_tail;
	int			  aq_jobs;
	int			  gc_leaders;	/* batches running now */
	int			  gc_leaders_max; /* one per CPU, at most 8 */
	uint64_t		  gc_batches;	/* under gc_mtx */
	uint64_t		  gc_requests;
	struct tokens		 *tokens;
	struct ca		**cas;
	size_t			  ncas;
	struct profile		**profs;
	size_t			  nprofs;
};

/* The CA named (borrowed, under svc->lk); SP_ERR_NOTFOUND in err if none. */
struct ca	*ca_get(struct ca_service *svc, const char *name,
		    struct sp_err *err);
struct ca	*ca_find_id(struct ca_service *svc, int64_t id);
/* The profile slot named (to replace it), or NULL. Hold the lock. */
struct profile	**ca_prof_find(struct ca_service *svc, const char *name);
/* An audit row in tx (NULL: its own) with details obj (stolen). */
int		 ca_audit(struct ca_service *svc, struct store_txn *tx,
		    const char *event, const char *actor, json_t *obj,
		    struct sp_err *err) SP_WUR;
/* A signing context for a CA's key, from the token service. */
int		 ca_sign_with(struct ca_service *svc, const char *token,
		    const char *key, EVP_MD_CTX **md, struct sp_err *err) SP_WUR;
/* The TBSCertificate DER as recorded before signing. */
int		 ca_tbs_der(X509 *x, unsigned char **der, size_t *len,
		    struct sp_err *err) SP_WUR;
void		 ca_template_from_profile(struct cert_template *t,
		    const struct profile *p);
unsigned int	 ca_key_usage_for(unsigned int ku, int alg);
/*
 * One certificate between its build and its storage: the one pipeline
 * that batch issuance and ca create share (ca_record_sign_store()).
 */
struct csr;
struct pending {
	struct ca	*ca;		/* the issuer; NULL: self-signed root */
	EVP_MD_CTX	*md;		/* the issuer's signing context */
	X509		*x;		/* built, signature algorithm set */
	struct csr	*req;
	char		*subject;	/* heap */
	char		 profile[PROFILE_NAME_MAX + 1];
	int64_t		 rowid;		/* its reservation, 0: none */
	unsigned char	*tbs;		/* TBSCertificate DER */
	size_t		 tbslen;
};
void		 ca_pending_cleanup(struct pending *pd);

/*
 * Called inside the durable transaction for each certificate i that was
 * signed (res[i].der, fp), after its row was marked issued: the change's
 * own rows, hooks and audit. A failure rolls the whole batch back.
 */
typedef int ca_finish_fn(void *arg, struct store_txn *tx, size_t i,
    struct pending *pd, struct ca_issue_res *res, const char *fp,
    struct sp_err *err);

/*
 * Record before signing, then sign, then store: serials and TBS of the
 * certificates with an issuer are reserved (one lazy commit), every
 * certificate whose res[i].rc is 0 is signed, and one durable
 * transaction marks each reservation issued or failed and runs finish
 * for each signed one. Nothing leaves the node unless that commits; if
 * it fails, every reservation is marked failed at once. Returns 0 unless
 * the batch as a whole failed (then every res[i] carries the error).
 */
int		 ca_record_sign_store(struct ca_service *svc,
		    struct pending *pd, struct ca_issue_res *res, size_t n,
		    ca_finish_fn *finish, void *arg) SP_WUR;

/* Frees requests still queued for ca_issue_submit() (at service free). */
void		 ca_issue_queue_free(struct ca_service *svc);
/* Runs the commit hooks for ev in tx; the first failure is returned. */
int		 ca_run_hooks(struct ca_service *svc, struct store_txn *tx,
		    const struct ca_change_ev *ev, struct sp_err *err) SP_WUR;
/* After the commit of a transaction that ran the hooks. */
void		 ca_run_notify(struct ca_service *svc);
void		 ca_serial_hex(const X509 *x, char out[2 * SERIAL_LEN + 1]);
int		 ca_serial_norm(const char *in, char out[2 * SERIAL_LEN + 1],
		    struct sp_err *err) SP_WUR;

#endif
