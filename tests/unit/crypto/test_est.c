#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "crypto/est.h"

static X509 *
mkcert(EVP_PKEY *k, const char *cn)
{
	X509		*x = X509_new();
	X509_NAME	*n = X509_NAME_new();

	assert_true(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0));
	assert_true(X509_set_subject_name(x, n));
	assert_true(X509_set_issuer_name(x, n));
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
	assert_true(X509_set_pubkey(x, k));
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	X509_NAME_free(n);
	return x;
}

static void
bad(const char *in, int code)
{
	struct sp_err	 err = { 0 };
	unsigned char	*der = (unsigned char *)(uintptr_t)1;
	size_t		 len = 1;

	assert_int_equal(est_b64_decode(in, strlen(in), &der, &len, &err),
	    code);
	assert_null(der);
	assert_int_equal(len, 0);
	assert_true(err.msg[0] != '\0');
}

static void
test_b64_decode(void **state)
{
	struct sp_err	 err = { 0 };
	EVP_PKEY	*k = EVP_EC_gen("P-256");
	X509_REQ	*req = X509_REQ_new(), *back;
	unsigned char	*der = NULL, *got;
	const unsigned char *p;
	char		*b64, *wrapped;
	size_t		 glen, blen, wlen = 0;
	int		 n;

	(void)state;
	assert_true(X509_REQ_set_pubkey(req, k));
	assert_true(X509_REQ_sign(req, k, EVP_sha256()) > 0);
	assert_true((n = i2d_X509_REQ(req, &der)) > 0);
	blen = 4 * (((size_t)n + 2) / 3);
	b64 = malloc(blen + 1);
	assert_int_equal(EVP_EncodeBlock((unsigned char *)b64, der, n), blen);
	/* As curl --data-binary @file sends it: lines and CRLF. */
	wrapped = malloc(blen * 2 + 8);
	for (size_t i = 0; i < blen; i++) {
		wrapped[wlen++] = b64[i];
		if (i % 64 == 63) {
			wrapped[wlen++] = '\r';
			wrapped[wlen++] = '\n';
		}
	}
	wrapped[wlen++] = '\n';
	assert_int_equal(est_b64_decode(wrapped, wlen, &got, &glen, &err), 0);
	assert_int_equal(glen, (size_t)n);
	assert_memory_equal(got, der, glen);
	p = got;
	assert_non_null(back = d2i_X509_REQ(NULL, &p, (long)glen));
	X509_REQ_free(back);
	free(got);

	/* Padding: one and two '=' give exact lengths. */
	assert_int_equal(est_b64_decode("YWI=", 4, &got, &glen, &err), 0);
	assert_int_equal(glen, 2);
	assert_memory_equal(got, "ab", 2);
	free(got);
	assert_int_equal(est_b64_decode("YQ==\r\n", 6, &got, &glen, &err), 0);
	assert_int_equal(glen, 1);
	free(got);

	bad("", SP_ERR_INVALID);
	bad(" \r\n", SP_ERR_INVALID);
	bad("YWJ", SP_ERR_INVALID);
	bad("YW=j", SP_ERR_INVALID);
	bad("Y===", SP_ERR_INVALID);
	bad("YW#j", SP_ERR_INVALID);
	bad("-----BEGIN CERTIFICATE REQUEST-----", SP_ERR_INVALID);
	{
		char	*big = malloc(EST_BODY_MAX + 2);

		memset(big, 'A', EST_BODY_MAX + 1);
		big[EST_BODY_MAX + 1] = '\0';
		bad(big, SP_ERR_LIMIT);
		free(big);
	}
	free(wrapped);
	free(b64);
	OPENSSL_free(der);
	X509_REQ_free(req);
	EVP_PKEY_free(k);
}

static void
test_certs_only(void **state)
{
	struct sp_err		 err = { 0 };
	EVP_PKEY		*k = EVP_EC_gen("P-256");
	STACK_OF(X509)		*sk = sk_X509_new_null();
	STACK_OF(X509)		*got;
	X509			*leaf = mkcert(k, "leaf"), *ca = mkcert(k, "ca");
	char			*txt, *line;
	size_t			 len, dlen;
	unsigned char		*der;
	const unsigned char	*p;
	PKCS7			*p7;

	(void)state;
	assert_int_equal(est_certs_only(sk, &txt, &len, &err),
	    SP_ERR_INVALID);
	sk_X509_push(sk, leaf);
	sk_X509_push(sk, ca);
	assert_int_equal(est_certs_only(sk, &txt, &len, &err), 0);
	assert_int_equal(strlen(txt), len);
	/* Lines of at most 64 characters, each ending in CRLF. */
	for (line = txt; *line != '\0';) {
		char	*end = strstr(line, "\r\n");

		assert_non_null(end);
		assert_true(end - line <= 64 && end > line);
		line = end + 2;
	}
	assert_int_equal(est_b64_decode(txt, len, &der, &dlen, &err), 0);
	p = der;
	assert_non_null(p7 = d2i_PKCS7(NULL, &p, (long)dlen));
	assert_true(PKCS7_type_is_signed(p7));
	got = p7->d.sign->cert;
	assert_int_equal(sk_X509_num(got), 2);
	assert_int_equal(X509_cmp(sk_X509_value(got, 0), leaf), 0);
	assert_int_equal(X509_cmp(sk_X509_value(got, 1), ca), 0);
	assert_int_equal(sk_PKCS7_SIGNER_INFO_num(p7->d.sign->signer_info),
	    0);
	PKCS7_free(p7);
	free(der);
	free(txt);
	sk_X509_pop_free(sk, X509_free);
	EVP_PKEY_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64_decode),
		cmocka_unit_test(test_certs_only),
	};

	return cmocka_run_group_tests_name("est", tests, NULL, NULL);
}
