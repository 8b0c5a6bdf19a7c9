/*
 * Certificate helpers every module that reads certificates from an
 * operator or a peer uses: parsing a PEM bundle or one DER certificate
 * with limits, the stored form of a chain (concatenated DER), and the
 * comparison of a certificate's key with a key's SPKI.
 */
#ifndef SP_CRYPTO_CERTS_H
#define SP_CRYPTO_CERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#include "util/err.h"

/* Seconds since the epoch; 0 if t is NULL or malformed. */
time_t	certs_time(const ASN1_TIME *t);
/* DER of x (*der from OpenSSL: OPENSSL_free). */
int	certs_der(X509 *x, unsigned char **der, size_t *len,
	    struct sp_err *err) SP_WUR;
/*
 * Parses certificates: a PEM bundle (every CERTIFICATE block; other blocks
 * are skipped) or exactly one DER certificate. At most max certificates
 * and maxlen bytes; what names the input in messages.
 */
int	certs_parse(const unsigned char *data, size_t len, size_t maxlen,
	    int max, const char *what, STACK_OF(X509) **out,
	    struct sp_err *err) SP_WUR;
/* Splits concatenated DER certificates (as stored) into a new stack. */
int	certs_split(const unsigned char *der, size_t len, STACK_OF(X509) **out)
	    SP_WUR;
/* Concatenated DER of the certificates in sk (heap; NULL if empty). */
int	certs_join(STACK_OF(X509) *sk, unsigned char **out, size_t *outlen,
	    struct sp_err *err) SP_WUR;
/*
 * True if the certificate's public key is the key with this DER SPKI
 * (byte for byte, or else as decoded keys).
 */
bool	certs_spki_matches(const X509 *x, const unsigned char *spki,
	    size_t len);

#endif
