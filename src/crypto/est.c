#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs7.h>

#include "crypto/est.h"

static int
b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
est_b64_decode(const char *body, size_t len, unsigned char **der,
    size_t *derlen, struct sp_err *err)
{
	unsigned char	*clean = NULL, *out = NULL;
	size_t		 n = 0, pad = 0;
	int		 m, r;

	*der = NULL;
	*derlen = 0;
	if (len > EST_BODY_MAX)
		return sp_err_set(err, SP_ERR_LIMIT, "request body larger "
		    "than %d bytes", EST_BODY_MAX);
	if ((clean = malloc(len + 1)) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	/* Whitespace goes; anything else must be the base64 alphabet. */
	for (size_t i = 0; i < len; i++) {
		unsigned char	c = (unsigned char)body[i];

		if (c == '\r' || c == '\n' || c == ' ' || c == '\t')
			continue;
		if (c == '=') {
			pad++;
		} else if (b64val(c) < 0 || pad > 0) {
			r = sp_err_set(err, SP_ERR_INVALID, "body is not "
			    "base64 (RFC 7030 4.2.1)");
			goto out;
		}
		clean[n++] = c;
	}
	if (n == 0) {
		r = sp_err_set(err, SP_ERR_INVALID, "empty request body");
		goto out;
	}
	if (n % 4 != 0 || pad > 2) {
		r = sp_err_set(err, SP_ERR_INVALID, "body is not base64: "
		    "its length is not a multiple of 4");
		goto out;
	}
	if ((out = malloc(n / 4 * 3)) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}
	/* EVP_DecodeBlock() keeps the padding's zero bytes: drop them. */
	if ((m = EVP_DecodeBlock(out, clean, (int)n)) < 0 ||
	    (size_t)m < pad) {
		r = sp_err_set(err, SP_ERR_INVALID, "body is not base64");
		goto out;
	}
	*der = out;
	*derlen = (size_t)m - pad;
	out = NULL;
	r = 0;
 out:
	ERR_clear_error();
	free(out);
	free(clean);
	return r;
}

int
est_certs_only(STACK_OF(X509) *certs, char **out, size_t *outlen,
    struct sp_err *err)
{
	PKCS7		*p7 = NULL;
	unsigned char	*der = NULL;
	char		*b64 = NULL, *txt = NULL;
	size_t		 blen, tlen = 0;
	int		 n, r = SP_ERR_CRYPTO;

	*out = NULL;
	*outlen = 0;
	if (certs == NULL || sk_X509_num(certs) == 0)
		return sp_err_set(err, SP_ERR_INVALID, "no certificate to "
		    "send");
	if ((p7 = PKCS7_new()) == NULL ||
	    !PKCS7_set_type(p7, NID_pkcs7_signed) ||
	    !PKCS7_content_new(p7, NID_pkcs7_data)) {
		r = sp_err_ossl(err, SP_ERR_CRYPTO, "making the PKCS#7 reply");
		goto out;
	}
	for (int i = 0; i < sk_X509_num(certs); i++)
		if (!PKCS7_add_certificate(p7, sk_X509_value(certs, i))) {
			r = sp_err_ossl(err, SP_ERR_CRYPTO, "adding a "
			    "certificate to the PKCS#7 reply");
			goto out;
		}
	if ((n = i2d_PKCS7(p7, &der)) <= 0) {
		r = sp_err_ossl(err, SP_ERR_CRYPTO, "encoding the PKCS#7 "
		    "reply");
		goto out;
	}
	blen = 4 * (((size_t)n + 2) / 3);
	if ((b64 = malloc(blen + 1)) == NULL ||
	    (txt = malloc(blen + 2 * (blen / 64 + 1) + 1)) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}
	if ((size_t)EVP_EncodeBlock((unsigned char *)b64, der, n) != blen) {
		r = sp_err_set(err, SP_ERR_INTERNAL, "base64 encoding");
		goto out;
	}
	for (size_t i = 0; i < blen; i += 64) {
		size_t	k = blen - i < 64 ? blen - i : 64;

		memcpy(txt + tlen, b64 + i, k);
		tlen += k;
		txt[tlen++] = '\r';
		txt[tlen++] = '\n';
	}
	txt[tlen] = '\0';
	*out = txt;
	*outlen = tlen;
	txt = NULL;
	r = 0;
 out:
	ERR_clear_error();
	free(txt);
	free(b64);
	OPENSSL_free(der);
	PKCS7_free(p7);
	return r;
}
