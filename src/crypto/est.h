/*
 * The two encodings EST (RFC 7030) wraps around PKCS#10 and certificates,
 * for the RA's EST endpoints (issue 11): a request body is a base64 DER
 * CertificationRequest (section 4.2.1, line breaks allowed), a reply is a
 * base64 DER certs-only CMC Simple PKI Response (a degenerate PKCS#7
 * SignedData, section 4.1.3 and 4.2.3). What the CSR says is checked by
 * the ordinary CSR path (csr_parse()), not here.
 */
#ifndef SP_CRYPTO_EST_H
#define SP_CRYPTO_EST_H

#include <stddef.h>

#include <openssl/x509.h>

#include "util/err.h"

#define EST_BODY_MAX	(64 * 1024)	/* bytes of a base64 request body */

/*
 * Decodes a base64 body (CR, LF, space and tab ignored; '=' padding only
 * at the end) into DER (*der heap, free()). Empty, over EST_BODY_MAX,
 * or not base64: SP_ERR_INVALID or SP_ERR_LIMIT with the reason.
 */
int	est_b64_decode(const char *body, size_t len, unsigned char **der,
	    size_t *derlen, struct sp_err *err) SP_WUR;

/*
 * The certs-only reply for certs (the issued certificate first, then its
 * chain, or the CA certificates for /cacerts), base64 with CRLF every 64
 * characters (*out heap, NUL-terminated, free()).
 */
int	est_certs_only(STACK_OF(X509) *certs, char **out, size_t *outlen,
	    struct sp_err *err) SP_WUR;

#endif
