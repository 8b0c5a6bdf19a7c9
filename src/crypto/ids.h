/*
 * The one rendering of certificate serial numbers and fingerprints that
 * every module uses, and the one parser of what an operator or a peer
 * types. The VA and sync compare these strings byte for byte, so there is
 * no other form anywhere:
 *
 *   serial       lower-case hex of the magnitude in whole bytes, no leading
 *                zero byte ("00" for zero), '-' first if negative;
 *   fingerprint  SHA-256 of the DER, 64 lower-case hex digits.
 *
 * The parsers accept what people paste: an optional "0x", ':' separators,
 * either case, an odd number of digits, leading zero bytes.
 */
#ifndef SP_CRYPTO_IDS_H
#define SP_CRYPTO_IDS_H

#include <stddef.h>

#include <openssl/asn1.h>
#include <openssl/x509.h>

#include "util/err.h"

#define ID_SERIAL_MAX_BYTES	64	/* longer than any sane serial */
#define ID_SERIAL_HEX_MAX	(2 * ID_SERIAL_MAX_BYTES + 2)	/* '-', NUL */
#define ID_FP_HEX_LEN		64

/* SP_ERR_INVALID (out = "") if the integer is longer than the maximum. */
int	id_serial_from_asn1(const ASN1_INTEGER *ai,
	    char out[ID_SERIAL_HEX_MAX]) SP_WUR;
int	id_serial_of(const X509 *x, char out[ID_SERIAL_HEX_MAX]) SP_WUR;
/* Canonical form of a serial from the bytes of its magnitude. */
int	id_serial_from_bytes(const unsigned char *b, size_t len, int negative,
	    char out[ID_SERIAL_HEX_MAX]) SP_WUR;
int	id_serial_parse(const char *in, char out[ID_SERIAL_HEX_MAX],
	    struct sp_err *err) SP_WUR;

/* SP_ERR_CRYPTO (out = "") if the digest fails: never a made-up value. */
int	id_fingerprint_der(const unsigned char *der, size_t len,
	    char out[ID_FP_HEX_LEN + 1]) SP_WUR;
int	id_fingerprint_of(const X509 *x, char out[ID_FP_HEX_LEN + 1]) SP_WUR;
int	id_fingerprint_parse(const char *in, char out[ID_FP_HEX_LEN + 1],
	    struct sp_err *err) SP_WUR;

#endif
