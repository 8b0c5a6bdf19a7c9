/*
 * What the VA's files share. Not an interface: other modules use va/va.h.
 *
 * The response cache holds pre-signed OCSP responses for nonce-less
 * single-CertID requests (RFC 5019), so the loop thread answers the common
 * request from memory without signing or touching the database. Entries
 * are keyed by issuer, serial (crypto/ids.h form) and the CertID's hash
 * algorithm (the response echoes the CertID as the client hashed it).
 *
 * Responses are immutable and reference counted: a get hands out a
 * reference the caller drops once the bytes are sent (evbuffer reference
 * cleanup), so replacing or evicting an entry never frees bytes still
 * being written.
 *
 * Staleness: a status change calls va_cache_invalidate(), which drops the
 * entry and advances the generation; a worker that read the status before
 * the change passes the generation it read (va_cache_gen()) to
 * va_cache_put(), which refuses it. A response past its refresh time is
 * still served until it expires, and exactly one get reports that it needs
 * re-signing, so a hot entry is refreshed once, not by every request.
 */
#ifndef SP_VA_VA_INT_H
#define SP_VA_VA_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "crypto/ids.h"
#include "crypto/ocsp.h"
#include "store/store.h"
#include "va/va.h"

struct va_resp {
	atomic_uint	refs;
	atomic_bool	refreshing;
	time_t		refresh_at;	/* re-sign from then on */
	time_t		expires;	/* never served after (nextUpdate) */
	char		lm[32];		/* Last-Modified (thisUpdate), or "" */
	size_t		len;
	unsigned char	der[];
};

/* A response with one reference; NULL if out of memory. */
struct va_resp	*va_resp_new(const unsigned char *der, size_t len,
		    time_t refresh_at, time_t expires);
void		 va_resp_ref(struct va_resp *r);
void		 va_resp_unref(struct va_resp *r);

struct va_cache;

/* At most max responses (oldest evicted first); max 0: the default. */
int		 va_cache_new(size_t max, struct va_cache **out) SP_WUR;
void		 va_cache_free(struct va_cache *c);
/* The generation to pass to va_cache_put(): read it before the status. */
uint64_t	 va_cache_gen(struct va_cache *c);
/*
 * A new reference to the cached response, NULL if none or expired at now.
 * *refresh (may be NULL) is set for the one caller that should have it
 * re-signed (from refresh_at on); if re-signing fails, that caller clears
 * r->refreshing so that a later get tries again.
 */
struct va_resp	*va_cache_get1(struct va_cache *c, int64_t issuer,
		    const char *serial, enum ocsp_hash hash, time_t now,
		    bool *refresh);
/*
 * Caches r (taking a reference of its own), replacing what was there,
 * unless an invalidation came after gen was read: then SP_ERR_STATE and
 * nothing changes (the caller still answers with r; it is not cached).
 */
int		 va_cache_put(struct va_cache *c, int64_t issuer,
		    const char *serial, enum ocsp_hash hash,
		    struct va_resp *r, uint64_t gen) SP_WUR;
/* Drops every variant for issuer and serial. */
void		 va_cache_invalidate(struct va_cache *c, int64_t issuer,
		    const char *serial);
/* Drops everything of an issuer (its signer changed). */
void		 va_cache_invalidate_issuer(struct va_cache *c, int64_t issuer);
/* Drops everything (a setting that shapes every response changed). */
void		 va_cache_clear(struct va_cache *c);
size_t		 va_cache_count(struct va_cache *c);

/* --- the status store (status.c, tables in va_schema.c) ----------------------
 *
 * What the CAs published. Every change carries the CA's update sequence;
 * an entry is replaced only by a newer one, so a re-delivered or late
 * update never undoes a newer one (publisher queue and sync may overlap).
 */
enum va_status {
	VA_GOOD,
	VA_REVOKED,
	VA_ON_HOLD,	/* revoked with certificateHold: may be released */
	VA__STATUS_MAX
};

struct va_entry {
	const char		*serial;	/* crypto/ids.h form */
	enum va_status		 status;
	time_t			 revoked_at;	/* 0 if good */
	int			 reason;	/* CRLReason, -1: none */
	time_t			 not_before, not_after;
	const char		*fingerprint;	/* "" if status only */
	const char		*subject;	/* "" if status only */
	const unsigned char	*der;		/* NULL: status only */
	size_t			 derlen;
	int64_t			 seq;		/* the CA's update sequence */
};

/* Adds or replaces an issuer the VA answers for; *id its row. */
int	va_issuer_put(struct store *st, struct store_txn *tx, const char *name,
	    X509 *cert, int64_t *id, struct sp_err *err) SP_WUR;
/*
 * Applies e for issuer_id: inserted, or replacing an entry with a lower
 * sequence; *applied says whether it changed anything (an update that is
 * not newer is harmless: re-delivery).
 */
int	va_cert_put(struct store *st, struct store_txn *tx, int64_t issuer_id,
	    const struct va_entry *e, bool *applied, struct sp_err *err) SP_WUR;
/*
 * The OCSP status of a serial (on hold answers revoked, certificateHold);
 * SP_ERR_NOTFOUND if the VA has no entry.
 */
int	va_cert_status(struct store *st, struct store_txn *tx,
	    int64_t issuer_id, const char *serial, struct ocsp_single *out,
	    struct sp_err *err) SP_WUR;
/*
 * Stores issuer_id's CRL unless one with the same or a higher number is
 * there (SP_ERR_STATE: "an older CRL").
 */
int	va_crl_put(struct store *st, struct store_txn *tx, int64_t issuer_id,
	    int64_t number, time_t this_update, time_t next_update,
	    const unsigned char *der, size_t len, struct sp_err *err) SP_WUR;

/* --- answering ----------------------------------------------------------- */

/* What the VA says for a serial of a known issuer that it has no entry for. */
enum va_non_issued {
	VA_NON_ISSUED_UNKNOWN,	/* the default: never "good" */
	VA_NON_ISSUED_REVOKED,	/* RFC 6960 2.2 extended revoked definition */
	VA_NON_ISSUED__MAX
};

struct va_lookup {
	/* The issuer a CertID names (with its own hash), or -1. */
	int64_t	(*issuer)(void *arg, const struct ocsp_certid *id);
	/*
	 * The status of serial at issuer: 0 with *out filled in, or
	 * SP_ERR_NOTFOUND; anything else is an internal error.
	 */
	int	(*status)(void *arg, int64_t issuer, const char *serial,
		    struct ocsp_single *out);
	void	*arg;
};

struct va_decision {
	int			resp_status;	/* OCSP_RESPONSE_STATUS_* */
	int64_t			issuer;		/* who signs; -1 if none */
	struct ocsp_single	st[OCSP_REQ_MAX_IDS];
	bool			extended_revoke;
	bool			cacheable;	/* one CertID, no nonce */
};

/*
 * Decides the answer to a decoded request: every CertID must name the
 * same known issuer (a response has one signer), else "unauthorized"; a
 * serial with no entry is unknown, or revoked (certificateHold, revoked
 * at the epoch, with the extended revoked definition) if ni says so (the
 * status lookup answers an entry on hold as revoked, certificateHold). A
 * lookup failure
 * gives "internalError" (the client retries); nothing is guessed.
 */
void	va_decide(const struct ocsp_req *rq, const struct va_lookup *lk,
	    enum va_non_issued ni, struct va_decision *d);

/* --- the issuer index (index.c) ------------------------------------------
 *
 * Which issuer a CertID names, in memory: built from the issuer
 * certificates (CertID name and key hashes for every hash we answer
 * with), then read only, so any thread may search it while nobody adds.
 */
#define VA_ISSUER_NAME_MAX	64
#define VA_INDEX_MAX		10000

struct va_index;

int	 va_index_new(struct va_index **out) SP_WUR;
void	 va_index_free(struct va_index *ix);
/* Adds issuer id (its row) named name; cert gets a reference of its own. */
int	 va_index_add(struct va_index *ix, int64_t id, const char *name,
	    X509 *cert, struct sp_err *err) SP_WUR;
/* The issuer the CertID names (with the hash it was made with), or -1. */
int64_t	 va_index_find(const struct va_index *ix,
	    const struct ocsp_certid *id);
/* The issuer called name (CRL paths), or -1. */
int64_t	 va_index_find_name(const struct va_index *ix, const char *name);
/* Issuer id's certificate (borrowed), NULL if none. */
X509	*va_index_cert(const struct va_index *ix, int64_t id);
size_t	 va_index_count(const struct va_index *ix);
/* Every issuer of the va_issuers table (a worker thread: database). */
int	 va_index_load(struct store *st, struct store_txn *tx,
	    struct va_index **out, struct sp_err *err) SP_WUR;

/* --- the responder (http.c) ---------------------------------------------- */

/* The URL-encoded base64 of a GET request (RFC 6960 A.1), at most this. */
#define VA_GET_MAX	(3 * (OCSP_REQ_MAX_BYTES / 3 * 4 + 4))
/*
 * Decodes what follows "/ocsp/" into the DER request (*der heap, free()):
 * SP_ERR_INVALID for anything but padded standard base64 of at most
 * OCSP_REQ_MAX_BYTES, SP_ERR_ALLOC.
 */
int	 va_get_decode(const char *tail, unsigned char **der, size_t *len)
	    SP_WUR;

/* Stops the listener and its threads (va_free()); safe if never started. */
void	 va_responder_stop(struct va *va);
/* A CA certificate was stored: rebuild the issuers and signers (any thread). */
void	 va_issuers_changed(struct va *va);
/* {"requests": {outcome: n}, "signers": [...]}, or null if not listening. */
json_t	*va_responder_status_json(struct va *va);

/* --- the service (va.c) -------------------------------------------------- */

struct va_responder;	/* http.c: the client listener and its signers */

/* --- publishing (publish.c) ---------------------------------------------- */

#define VA_PUB_CAS_MAX		16	/* entries of one request */
#define VA_PUB_CERTS_MAX	500
#define VA_READ_MAX		2000	/* entries in one publish/readcerts */
#define VA_PUB_CRLS_MAX		16
#define VA_PUB_DER_MAX		(64 * 1024)	/* one certificate */
#define VA_PUB_CRL_MAX		(768 * 1024)	/* one CRL (body <= 1 MiB) */
#define VA_PUB_SUBJECT_MAX	1024

enum va_pub_kind {
	VA_PUB_CA,
	VA_PUB_CERT,
	VA_PUB_CRL,
	VA_PUB__MAX
};

/* One parsed entry of a publish body (va_pub_parse()). */
struct va_pub {
	enum va_pub_kind	 kind;
	char			 ca[65];	/* "name" (cas) or "ca" */
	char			 serial[ID_SERIAL_HEX_MAX];	/* certs */
	char			 fp[ID_FP_HEX_LEN + 1];		/* "" if none */
	char			 subject[VA_PUB_SUBJECT_MAX + 1];
	struct va_entry		 e;	/* certs; points into this struct */
	unsigned char		*der;	/* decoded certificate / CRL; heap */
	size_t			 derlen;
};

/*
 * Turns one JSON entry of a publish body into *p (every field checked:
 * types, lengths, names, serial and fingerprint form, base64, times and
 * their order, status and revocation fields agreeing); SP_ERR_INVALID
 * with the reason, SP_ERR_ALLOC. No signature is checked here. Release
 * with va_pub_clear() whatever the result.
 */
int	va_pub_parse(enum va_pub_kind kind, json_t *j, struct va_pub *p,
	    struct sp_err *err) SP_WUR;
void	va_pub_clear(struct va_pub *p);

struct authz;
struct va_pub_reg {
	struct va	*va;
	struct authz	*authz;
};

struct va {
	struct store		*st;
	struct tokens		*tokens;
	struct kb_service	*kb;
	struct event_base	*base;
	struct pool		*pool;
	struct va_cache		*cache;
	struct va_responder	*resp;		/* NULL until va_listen() */
	_Atomic int		 non_issued;	/* enum va_non_issued */
	_Atomic int		 response_validity; /* seconds */
	struct va_pub_reg	 reg;		/* va_peer_register() */
	_Atomic uint64_t	 published[VA_PUB__MAX]; /* entries applied */
	_Atomic uint64_t	 pub_refused;	/* entries refused */
};

#endif
