/*
 * OCSP (RFC 6960, RFC 5019, nonces per RFC 8954) as a codec: decoding a
 * request into CertIDs the VA can look up without OpenSSL types, and
 * building and signing the response. Which status an entry has, which
 * issuers are known and who signs is the VA's business (va/); nothing here
 * touches the store or the network.
 */
#ifndef SP_CRYPTO_OCSP_H
#define SP_CRYPTO_OCSP_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include "crypto/ids.h"
#include "util/err.h"

#define OCSP_REQ_MAX_BYTES	(64 * 1024)
#define OCSP_REQ_MAX_IDS	16
#define OCSP_NONCE_MAX		32	/* RFC 8954: 1..32 bytes */
#define OCSP_HASH_MAX		64	/* SHA-512 */

/* The CertID hash algorithms we answer for (anything else: unknown). */
enum ocsp_hash {
	OCSP_HASH_NONE,		/* not one we know: no issuer matches */
	OCSP_HASH_SHA1,
	OCSP_HASH_SHA256,
	OCSP_HASH_SHA384,
	OCSP_HASH_SHA512,
	OCSP_HASH__MAX
};

struct ocsp_certid {
	enum ocsp_hash	hash;
	unsigned char	name_hash[OCSP_HASH_MAX];
	unsigned char	key_hash[OCSP_HASH_MAX];
	size_t		hlen;
	char		serial[ID_SERIAL_HEX_MAX];	/* crypto/ids.h form */
};

struct ocsp_req {
	size_t			 n;
	struct ocsp_certid	 ids[OCSP_REQ_MAX_IDS];
	bool			 has_nonce;
	unsigned char		 nonce[OCSP_NONCE_MAX];
	size_t			 noncelen;
	OCSP_REQUEST		*req;		/* owned: the CertIDs echoed */
};

/* An issuer's CertID hashes, computed once per issuer certificate. */
struct ocsp_issuer_hashes {
	unsigned char	name[OCSP_HASH__MAX][OCSP_HASH_MAX];
	unsigned char	key[OCSP_HASH__MAX][OCSP_HASH_MAX];
};

/*
 * Decodes a DER OCSPRequest: at most OCSP_REQ_MAX_BYTES bytes (else
 * SP_ERR_LIMIT), one to OCSP_REQ_MAX_IDS CertIDs, no trailing bytes, a
 * nonce of 1..OCSP_NONCE_MAX bytes if present, serials of at most
 * ID_SERIAL_MAX_BYTES; anything else is SP_ERR_INVALID (answer
 * malformedRequest). A request signature is not required and not checked.
 * Free with ocsp_req_free().
 */
int	ocsp_req_decode(const unsigned char *der, size_t len,
	    struct ocsp_req **out, struct sp_err *err) SP_WUR;
void	ocsp_req_free(struct ocsp_req *rq);

int	ocsp_issuer_hashes(X509 *issuer, struct ocsp_issuer_hashes *h,
	    struct sp_err *err) SP_WUR;
/* True if the CertID names this issuer (with the hash it was made with). */
bool	ocsp_certid_matches(const struct ocsp_certid *id,
	    const struct ocsp_issuer_hashes *h);

enum ocsp_status {
	OCSP_GOOD,
	OCSP_REVOKED,
	OCSP_UNKNOWN
};

struct ocsp_single {
	enum ocsp_status	status;
	time_t			revoked_at;	/* OCSP_REVOKED */
	int			reason;		/* CRLReason, -1: omit */
};

struct ocsp_resp_params {
	time_t	this_update;
	time_t	next_update;		/* 0: omit */
	/* RFC 6960 2.2: a non-issued serial is answered revoked. */
	bool	extended_revoke;
};

/*
 * The signed BasicOCSPResponse for rq, one SingleResponse per CertID in
 * request order (st[i] answers rq->ids[i]), each CertID echoed as sent
 * (so with the hash the client used), the nonce echoed if there was one,
 * the responder ID by key hash, signer and extra certificates included.
 * producedAt is the time of signing. md is a prepared signing context for
 * the signer's key (token_sign_init()); the caller frees it, and it
 * cannot sign again (copy it first to keep one). *der heap (free()).
 */
int	ocsp_resp_sign(const struct ocsp_req *rq, const struct ocsp_single *st,
	    const struct ocsp_resp_params *p, X509 *signer,
	    STACK_OF(X509) *extra, EVP_MD_CTX *md, unsigned char **der,
	    size_t *len, struct sp_err *err) SP_WUR;

/*
 * An unsigned error response: OCSP_RESPONSE_STATUS_MALFORMEDREQUEST,
 * _INTERNALERROR, _TRYLATER, _SIGREQUIRED or _UNAUTHORIZED.
 */
int	ocsp_resp_error(int status, unsigned char **der, size_t *len,
	    struct sp_err *err) SP_WUR;

#endif
