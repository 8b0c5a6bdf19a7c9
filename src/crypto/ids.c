#include <string.h>

#include <openssl/evp.h>
#include <openssl/err.h>

#include "crypto/ids.h"
#include "util/util.h"

static const char hexdig[] = "0123456789abcdef";

int
id_serial_from_bytes(const unsigned char *b, size_t len, int negative,
    char out[ID_SERIAL_HEX_MAX])
{
	char	*p = out;

	out[0] = '\0';
	while (len > 0 && b[0] == 0) {
		b++;
		len--;
	}
	if (len > ID_SERIAL_MAX_BYTES)
		return SP_ERR_INVALID;
	if (len == 0) {
		memcpy(out, "00", 3);
		return 0;
	}
	if (negative)
		*p++ = '-';
	sp_hex_encode(b, len, p);
	return 0;
}

int
id_serial_from_asn1(const ASN1_INTEGER *ai, char out[ID_SERIAL_HEX_MAX])
{
	int	n;

	out[0] = '\0';
	if (ai == NULL || (n = ASN1_STRING_length(ai)) < 0)
		return SP_ERR_INVALID;
	return id_serial_from_bytes(ASN1_STRING_get0_data(ai), (size_t)n,
	    ASN1_STRING_type(ai) == V_ASN1_NEG_INTEGER, out);
}

int
id_serial_of(const X509 *x, char out[ID_SERIAL_HEX_MAX])
{
	out[0] = '\0';
	if (x == NULL)
		return SP_ERR_INVALID;
	return id_serial_from_asn1(X509_get0_serialNumber(x), out);
}

int
id_serial_parse(const char *in, char out[ID_SERIAL_HEX_MAX],
    struct sp_err *err)
{
	char	 digits[2 * ID_SERIAL_MAX_BYTES + 1];
	size_t	 n = 0, skip = 0;
	int	 neg = 0;
	char	*p = out;

	out[0] = '\0';
	if (in == NULL)
		return sp_err_set(err, SP_ERR_INVALID, "serial is required");
	if (*in == '-') {
		neg = 1;
		in++;
	}
	if (in[0] == '0' && (in[1] == 'x' || in[1] == 'X'))
		in += 2;
	for (; *in != '\0'; in++) {
		int	v;

		if (*in == ':')
			continue;
		if ((v = sp_hex_digit(*in)) < 0)
			return sp_err_set(err, SP_ERR_INVALID, "serial must be "
			    "hex digits (':' separators allowed)");
		/* Leading zeros never count against the length. */
		if (n == 0 && v == 0) {
			skip++;
			continue;
		}
		if (n == 2 * ID_SERIAL_MAX_BYTES)
			return sp_err_set(err, SP_ERR_INVALID, "serial longer "
			    "than %d bytes", ID_SERIAL_MAX_BYTES);
		digits[n++] = hexdig[v];
	}
	if (n == 0 && skip == 0)
		return sp_err_set(err, SP_ERR_INVALID, "serial is empty");
	if (n == 0) {
		memcpy(out, "00", 3);
		return 0;
	}
	if (neg)
		*p++ = '-';
	if (n % 2 == 1)
		*p++ = '0';
	memcpy(p, digits, n);
	p[n] = '\0';
	return 0;
}

int
id_fingerprint_der(const unsigned char *der, size_t len,
    char out[ID_FP_HEX_LEN + 1])
{
	unsigned char	md[EVP_MAX_MD_SIZE];
	unsigned int	mdlen = 0;

	out[0] = '\0';
	if (der == NULL || !EVP_Digest(der, len, md, &mdlen, EVP_sha256(),
	    NULL) || mdlen != ID_FP_HEX_LEN / 2) {
		ERR_clear_error();
		return SP_ERR_CRYPTO;
	}
	sp_hex_encode(md, mdlen, out);
	return 0;
}

int
id_fingerprint_of(const X509 *x, char out[ID_FP_HEX_LEN + 1])
{
	unsigned char	md[EVP_MAX_MD_SIZE];
	unsigned int	mdlen = 0;

	out[0] = '\0';
	if (x == NULL || !X509_digest(x, EVP_sha256(), md, &mdlen) ||
	    mdlen != ID_FP_HEX_LEN / 2) {
		ERR_clear_error();
		return SP_ERR_CRYPTO;
	}
	sp_hex_encode(md, mdlen, out);
	return 0;
}

int
id_fingerprint_parse(const char *in, char out[ID_FP_HEX_LEN + 1],
    struct sp_err *err)
{
	size_t	n = 0;

	out[0] = '\0';
	if (in == NULL)
		return sp_err_set(err, SP_ERR_INVALID, "fingerprint is "
		    "required");
	for (; *in != '\0'; in++) {
		int	v;

		if (*in == ':')
			continue;
		if ((v = sp_hex_digit(*in)) < 0 || n == ID_FP_HEX_LEN) {
			out[0] = '\0';
			return sp_err_set(err, SP_ERR_INVALID, "fingerprint "
			    "must be the SHA-256 of the certificate: %d hex "
			    "digits", ID_FP_HEX_LEN);
		}
		out[n++] = hexdig[v];
	}
	out[n] = '\0';
	if (n != ID_FP_HEX_LEN) {
		out[0] = '\0';
		return sp_err_set(err, SP_ERR_INVALID, "fingerprint must be "
		    "the SHA-256 of the certificate: %d hex digits",
		    ID_FP_HEX_LEN);
	}
	return 0;
}
