/*
 * Certificate, CSR and CRL building: thin wrappers on OpenSSL 3 that the
 * CA core calls. Certificate building lives behind cert_build() alone so
 * it can be made faster in one place.
 */
#ifndef SP_CRYPTO_X509_H
#define SP_CRYPTO_X509_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "util/err.h"

#define CSR_MAX_SIZE	(64 * 1024)	/* bytes of PEM or DER */
#define SERIAL_LEN	20		/* bytes; RFC 5280 4.1.2.2 maximum */
#define CERT_MAX_SANS	100		/* subjectAltName entries */
#define CERT_MAX_URLS	8		/* CRL DP / OCSP URLs */

/*
 * Parses a PKCS#10 request, PEM or DER, at most CSR_MAX_SIZE bytes, and
 * verifies its self-signature (SP_ERR_INVALID with the reason if the input
 * is garbage or the signature is wrong).
 */
int	csr_parse(const unsigned char *data, size_t len, X509_REQ **out,
	    struct sp_err *err) SP_WUR;

/*
 * The subjectAltName requested in the CSR's extensionRequest (*out NULL
 * if none; caller frees with GENERAL_NAMES_free). SP_ERR_INVALID if the
 * attribute is malformed, has more than CERT_MAX_SANS entries, or a
 * dNSName, rfc822Name or URI is not text (dn_check_string(): no NUL or
 * other control character, 7-bit; the message names the SAN type).
 */
int	csr_get_sans(const X509_REQ *req, GENERAL_NAMES **out,
	    struct sp_err *err) SP_WUR;

/*
 * csr_get_sans() on an extension list (X509_REQ_get_extensions() or
 * csr_get_extensions() output, NULL if the attribute did not decode:
 * no SAN). Takes exts and frees it.
 */
int	csr_exts_get_sans(STACK_OF(X509_EXTENSION) *exts,
	    GENERAL_NAMES **out, struct sp_err *err) SP_WUR;

/*
 * A decoded and verified CSR (csr.c), the form the CA core and the RA
 * use: the fast path of issuance. It reads the request with OpenSSL's
 * ASN.1 templates, keeps the SubjectPublicKeyInfo as received, builds the
 * key without OpenSSL 3.0's decoder (EC P-256/P-384, RSA, Ed25519) and
 * verifies the signature over the exact CertificationRequestInfo bytes;
 * anything else goes through csr_parse(). Accepts exactly what
 * csr_parse() accepts, with the same refusals (same messages).
 */
struct csr;

int	csr_decode(const unsigned char *data, size_t len, struct csr **out,
	    struct sp_err *err) SP_WUR;
void	csr_free(struct csr *c);

/* True if c came through the fast path (for tests and the benchmark). */
bool	csr_is_fast(const struct csr *c);

/* Borrowed from c; valid until csr_free(). */
const X509_NAME		*csr_get0_subject(const struct csr *c);
/* For cert_template.spki: the received fields, no key decode. */
const X509_PUBKEY	*csr_get0_spki(const struct csr *c);
EVP_PKEY		*csr_get0_pubkey(const struct csr *c);
/*
 * The SubjectPublicKeyInfo DER as received (fast path only; else
 * SP_ERR_NOTFOUND).
 */
int	csr_get0_spki_der(const struct csr *c, const unsigned char **der,
	    size_t *len) SP_WUR;

/*
 * The requested extensions, as X509_REQ_get_extensions() (caller frees
 * with sk_X509_EXTENSION_pop_free; NULL if the attribute is malformed).
 */
STACK_OF(X509_EXTENSION) *csr_get_extensions(const struct csr *c);

/* csr_get_sans() for a decoded CSR. */
int	csr_get_requested_sans(const struct csr *c, GENERAL_NAMES **out,
	    struct sp_err *err) SP_WUR;

/* Fresh random serial: SERIAL_LEN bytes, positive, first byte non-zero. */
int	serial_generate(unsigned char serial[SERIAL_LEN]) SP_WUR;

/* What goes into a certificate; everything borrowed. */
struct cert_template {
	const unsigned char	*serial;	/* SERIAL_LEN bytes */
	const X509_NAME		*subject;
	const X509_PUBKEY	*spki;		/* copied, not re-encoded */
	X509			*issuer;	/* NULL: self-signed (not modified) */
	time_t			 not_before;
	time_t			 not_after;
	unsigned int		 key_usage;	/* 1 << RFC 5280 bit, 0: none */
	bool			 key_usage_critical;
	const int		*eku;		/* NIDs */
	size_t			 neku;
	bool			 ca;
	int			 path_len;	/* -1: unlimited */
	GENERAL_NAMES		*sans;		/* NULL: none (not modified) */
	const char *const	*crl_dp;	/* URLs */
	size_t			 ncrl_dp;
	const char		*ocsp_url;	/* NULL: none */
	bool			 ocsp_nocheck;
};

/*
 * Builds the unsigned certificate (*out, caller frees): version 3, the
 * serial, issuer name (the issuer's subject, or the subject if
 * self-signed), validity, subject, the public key copied from t->spki
 * without a decode/encode round trip, subjectKeyIdentifier (SHA-1 of the
 * key bits, RFC 5280 4.2.1.2 method 1), authorityKeyIdentifier (from the
 * issuer's SKI), basicConstraints (critical), keyUsage, extKeyUsage,
 * subjectAltName (critical if the subject is empty, RFC 5280 4.2.1.6),
 * CRL distribution points, authorityInfoAccess OCSP and id-pkix-ocsp-nocheck.
 */
int	cert_build(const struct cert_template *t, X509 **out,
	    struct sp_err *err) SP_WUR;

/*
 * Fills in crt's signature AlgorithmIdentifier from the prepared signing
 * context, so the TBSCertificate can be encoded (and recorded) before the
 * signature is made; cert_sign() then signs exactly those bytes.
 */
int	cert_set_sigalg(X509 *crt, EVP_MD_CTX *md, struct sp_err *err) SP_WUR;

/* Signs crt with the prepared context (see token_sign_init()). */
int	cert_sign(X509 *crt, EVP_MD_CTX *md, struct sp_err *err) SP_WUR;

/* SHA-256 of the DER certificate, lower-case hex (65 bytes with NUL). */
void	cert_fingerprint(const unsigned char *der, size_t len, char out[65]);

/* One revoked entry for crl_build(). */
struct crl_entry {
	const unsigned char	*serial;	/* big-endian bytes */
	size_t			 serial_len;
	time_t			 revoked_at;
	int			 reason;	/* CRLReason, -1: omit */
};

/*
 * Builds and signs a CRL v2 for issuer: thisUpdate, nextUpdate, the
 * entries, cRLNumber and authorityKeyIdentifier. *out is DER (heap).
 */
int	crl_build(X509 *issuer, long long number, time_t this_update,
	    time_t next_update, const struct crl_entry *entries, size_t n,
	    EVP_MD_CTX *md, unsigned char **out, size_t *outlen,
	    struct sp_err *err) SP_WUR;

/* RFC 5280 5.3.1 reason names ("keyCompromise"); -1 if unknown. */
int	crl_reason_parse(const char *s);
const char *crl_reason_name(int reason);

#endif
