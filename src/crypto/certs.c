#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "crypto/certs.h"

time_t
certs_time(const ASN1_TIME *t)
{
	struct tm	tm;

	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return 0;
	return timegm(&tm);
}

int
certs_der(X509 *x, unsigned char **der, size_t *len, struct sp_err *err)
{
	int	n;

	*der = NULL;
	*len = 0;
	if ((n = i2d_X509(x, der)) <= 0)
		return sp_err_ossl(err, SP_ERR_CRYPTO, "encoding certificate");
	*len = (size_t)n;
	return 0;
}

/*
 * Parses certificates: a PEM bundle (every CERTIFICATE block; other blocks
 * are skipped) or exactly one DER certificate. At most max certificates
 * and maxlen bytes; what names the input in messages.
 */
int
certs_parse(const unsigned char *data, size_t len, size_t maxlen, int max,
    const char *what, STACK_OF(X509) **out, struct sp_err *err)
{
	STACK_OF(X509)		*sk = NULL;
	X509			*x = NULL;
	BIO			*bio = NULL;
	const unsigned char	*p = data;
	unsigned long		 e;
	int			 r = SP_ERR_INVALID;

	*out = NULL;
	if (data == NULL || len == 0)
		return sp_err_set(err, SP_ERR_INVALID, "%s: no data", what);
	if (len > maxlen)
		return sp_err_set(err, SP_ERR_LIMIT, "%s: larger than %zu bytes",
		    what, maxlen);
	if ((sk = sk_X509_new_null()) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}
	ERR_clear_error();
	if (memmem(data, len, "-----BEGIN", 10) != NULL) {
		if ((bio = BIO_new_mem_buf(data, (int)len)) == NULL) {
			r = sp_err_ossl(err, SP_ERR_ALLOC, "BIO_new_mem_buf");
			goto out;
		}
		while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
			if (sk_X509_num(sk) >= max) {
				r = sp_err_set(err, SP_ERR_LIMIT, "%s: more "
				    "than %d certificates", what, max);
				goto out;
			}
			if (!sk_X509_push(sk, x)) {
				r = sp_err_set(err, SP_ERR_ALLOC, "out of "
				    "memory");
				goto out;
			}
			x = NULL;
		}
		/* The loop ends at the end of the input or at a bad block. */
		e = ERR_peek_last_error();
		if (ERR_GET_LIB(e) != ERR_LIB_PEM ||
		    ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
			char	buf[96];

			snprintf(buf, sizeof(buf), "%s: malformed PEM "
			    "certificate", what);
			r = sp_err_ossl(err, SP_ERR_INVALID, buf);
			goto out;
		}
	} else {
		if ((x = d2i_X509(NULL, &p, (long)len)) == NULL) {
			r = sp_err_set(err, SP_ERR_INVALID, "%s: not a "
			    "certificate (PEM or DER expected)", what);
			goto out;
		}
		if (p != data + len) {
			r = sp_err_set(err, SP_ERR_INVALID, "%s: trailing data "
			    "after the DER certificate", what);
			goto out;
		}
		if (!sk_X509_push(sk, x)) {
			r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
			goto out;
		}
		x = NULL;
	}
	if (sk_X509_num(sk) == 0) {
		r = sp_err_set(err, SP_ERR_INVALID, "%s: no certificate found",
		    what);
		goto out;
	}
	*out = sk;
	sk = NULL;
	r = 0;
 out:
	ERR_clear_error();
	X509_free(x);
	sk_X509_pop_free(sk, X509_free);
	BIO_free(bio);
	return r;
}

/* Splits concatenated DER certificates (as stored) into a new stack. */
int
certs_split(const unsigned char *der, size_t len, STACK_OF(X509) **out)
{
	STACK_OF(X509)		*sk;
	const unsigned char	*p = der, *end = der + len;
	X509			*x;

	*out = NULL;
	if ((sk = sk_X509_new_null()) == NULL)
		return SP_ERR_ALLOC;
	while (der != NULL && p < end) {
		if ((x = d2i_X509(NULL, &p, (long)(end - p))) == NULL ||
		    !sk_X509_push(sk, x)) {
			X509_free(x);
			sk_X509_pop_free(sk, X509_free);
			ERR_clear_error();
			return SP_ERR_INVALID;
		}
	}
	*out = sk;
	return 0;
}

/* Concatenated DER of the certificates in sk (heap; NULL if empty). */
int
certs_join(STACK_OF(X509) *sk, unsigned char **out, size_t *outlen,
    struct sp_err *err)
{
	unsigned char	*buf = NULL, *nb, *der = NULL;
	size_t		 len = 0, dlen;
	int		 r = 0;

	*out = NULL;
	*outlen = 0;
	for (int i = 0; i < sk_X509_num(sk); i++) {
		if ((r = certs_der(sk_X509_value(sk, i), &der, &dlen, err)) != 0)
			goto out;
		if ((nb = realloc(buf, len + dlen)) == NULL) {
			r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
			goto out;
		}
		buf = nb;
		memcpy(buf + len, der, dlen);
		len += dlen;
		OPENSSL_free(der);
		der = NULL;
	}
	*out = buf;
	*outlen = len;
	buf = NULL;
 out:
	OPENSSL_free(der);
	free(buf);
	return r;
}

/*
 * True if the certificate's public key is the key with this DER SPKI.
 * The CA copies the CSR's SPKI byte for byte, so the DER normally matches;
 * another CA may re-encode it (an EC point compressed), hence the
 * comparison of the decoded keys as a fallback.
 */
bool
certs_spki_matches(const X509 *x, const unsigned char *spki, size_t len)
{
	const unsigned char	*p = spki;
	unsigned char		*der = NULL;
	EVP_PKEY		*pk = NULL;
	int			 n;
	bool			 eq = false;

	if ((n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der)) > 0 &&
	    (size_t)n == len && memcmp(der, spki, len) == 0)
		eq = true;
	else if ((pk = d2i_PUBKEY(NULL, &p, (long)len)) != NULL &&
	    X509_get0_pubkey(x) != NULL)
		eq = EVP_PKEY_eq(X509_get0_pubkey(x), pk) == 1;
	OPENSSL_free(der);
	EVP_PKEY_free(pk);
	ERR_clear_error();
	return eq;
}
