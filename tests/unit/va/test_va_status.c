#include <sys/stat.h>

#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "store/store.h"
#include "va/va_int.h"

struct fx {
	char		 dir[64], path[128];
	struct store	*st;
	X509		*ca;
	EVP_PKEY	*key;
};

static int
rm_entry(const char *p, const struct stat *sb, int t, struct FTW *f)
{
	(void)sb;
	(void)t;
	(void)f;
	return remove(p);
}

static int
setup(void **state)
{
	struct fx	*fx = calloc(1, sizeof(*fx));
	struct sp_err	 err = { 0 };
	X509_NAME	*n = X509_NAME_new();

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/sp_test_va.XXXXXX");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	snprintf(fx->path, sizeof(fx->path), "%s/store.db", fx->dir);
	if (store_open(fx->path, &fx->st, &err) != 0) {
		print_error("store_open: %s\n", err.msg);
		return -1;
	}
	fx->key = EVP_EC_gen("P-256");
	fx->ca = X509_new();
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
	    (const unsigned char *)"VA Test CA", -1, -1, 0);
	X509_set_subject_name(fx->ca, n);
	X509_set_issuer_name(fx->ca, n);
	X509_gmtime_adj(X509_getm_notBefore(fx->ca), 0);
	X509_gmtime_adj(X509_getm_notAfter(fx->ca), 86400);
	X509_set_pubkey(fx->ca, fx->key);
	X509_sign(fx->ca, fx->key, EVP_sha256());
	X509_NAME_free(n);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx	*fx = *state;

	store_close(fx->st);
	X509_free(fx->ca);
	EVP_PKEY_free(fx->key);
	nftw(fx->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

static void
put(struct fx *fx, int64_t iss, const char *serial, enum va_status st,
    int64_t seq, const unsigned char *der, bool want_applied)
{
	struct sp_err	 err = { 0 };
	struct va_entry	 e = { serial, st, st == VA_GOOD ? 0 : 1700000000,
			    st == VA_REVOKED ? 1 : -1, 1600000000, 1900000000,
			    der ? "ab" : "", der ? "CN=x" : "", der,
			    der ? 3 : 0, seq };
	bool		 applied = !want_applied;

	if (va_cert_put(fx->st, NULL, iss, &e, &applied, &err) != 0) {
		print_error("va_cert_put: %s\n", err.msg);
		fail();
	}
	assert_int_equal(applied, want_applied);
}

static void
expect(struct fx *fx, int64_t iss, const char *serial, enum ocsp_status st,
    int reason)
{
	struct sp_err		err = { 0 };
	struct ocsp_single	s;

	assert_int_equal(va_cert_status(fx->st, NULL, iss, serial, &s, &err),
	    0);
	assert_int_equal(s.status, st);
	assert_int_equal(s.reason, reason);
}

static int
row_blob_len(const struct store_row *row, void *arg)
{
	size_t	len = 0;

	(void)store_row_blob(row, 0, &len);
	*(size_t *)arg = len;
	return 0;
}

/* Newer updates win; older or repeated ones change nothing. */
static void
test_sequence_rule(void **state)
{
	struct fx		*fx = *state;
	struct sp_err		 err = { 0 };
	struct ocsp_single	 s;
	int64_t			 iss, again;
	size_t			 dlen = 0;

	assert_int_equal(va_issuer_put(fx->st, NULL, "Sub", fx->ca, &iss,
	    &err), 0);
	assert_true(iss > 0);
	/* The same issuer again: the same row. */
	assert_int_equal(va_issuer_put(fx->st, NULL, "Sub", fx->ca, &again,
	    &err), 0);
	assert_int_equal(again, iss);

	put(fx, iss, "0A", VA_GOOD, 1, (const unsigned char *)"DER", true);
	expect(fx, iss, "0a", OCSP_GOOD, -1);
	put(fx, iss, "0a", VA_REVOKED, 3, NULL, true);
	expect(fx, iss, "0a", OCSP_REVOKED, 1);
	/* A late "good" (sequence 2) never undoes the revocation. */
	put(fx, iss, "0a", VA_GOOD, 2, NULL, false);
	expect(fx, iss, "0a", OCSP_REVOKED, 1);
	/* Re-delivery of the same update: harmless. */
	put(fx, iss, "0a", VA_REVOKED, 3, NULL, false);
	/* On hold answers revoked, certificateHold. */
	put(fx, iss, "0a", VA_ON_HOLD, 4, NULL, true);
	expect(fx, iss, "0a", OCSP_REVOKED, 6);
	/* Status-only updates kept the DER the first one carried. */
	assert_int_equal(store_select(fx->st, NULL, row_blob_len, &dlen,
	    &err, "SELECT der FROM va_certs WHERE serial = '0a'", ""), 0);
	assert_int_equal(dlen, 3);
	/* No entry: not found (the responder says unknown, never good). */
	assert_int_equal(va_cert_status(fx->st, NULL, iss, "0b", &s, &err),
	    SP_ERR_NOTFOUND);
	/* Bad input is refused. */
	{
		struct va_entry	e = { "xyz", VA_GOOD, 0, -1, 0, 0, "", "",
				    NULL, 0, 9 };
		bool		applied;

		assert_int_equal(va_cert_put(fx->st, NULL, iss, &e, &applied,
		    &err), SP_ERR_INVALID);
		e.serial = "0c";
		e.seq = 0;
		assert_int_equal(va_cert_put(fx->st, NULL, iss, &e, &applied,
		    &err), SP_ERR_INVALID);
	}
}

static void
test_crl_numbers(void **state)
{
	struct fx	*fx = *state;
	struct sp_err	 err = { 0 };
	int64_t		 iss;

	assert_int_equal(va_issuer_put(fx->st, NULL, "Root", fx->ca, &iss,
	    &err), 0);
	assert_int_equal(va_crl_put(fx->st, NULL, iss, 5, 100, 200,
	    (const unsigned char *)"crl5", 4, &err), 0);
	assert_int_equal(va_crl_put(fx->st, NULL, iss, 5, 100, 200,
	    (const unsigned char *)"crl5", 4, &err), SP_ERR_STATE);
	assert_int_equal(va_crl_put(fx->st, NULL, iss, 4, 100, 200,
	    (const unsigned char *)"crl4", 4, &err), SP_ERR_STATE);
	assert_non_null(strstr(err.msg, "older CRL"));
	assert_int_equal(va_crl_put(fx->st, NULL, iss, 6, 100, 200,
	    (const unsigned char *)"crl6", 4, &err), 0);
	assert_int_equal(va_crl_put(fx->st, NULL, iss, 7, 100, 200, NULL, 0,
	    &err), SP_ERR_INVALID);
}

static int
hash_row(const struct store_row *row, void *arg)
{
	char	(*h)[65] = arg;

	for (int i = 0; i < 4; i++)
		snprintf(h[i], 65, "%s", store_row_text(row, i));
	return 0;
}

static void
hex_digest(const unsigned char *in, size_t len, const EVP_MD *md,
    char out[65])
{
	unsigned char	d[EVP_MAX_MD_SIZE];
	unsigned int	dl;

	assert_int_equal(EVP_Digest(in, len, d, &dl, md, NULL), 1);
	for (unsigned int i = 0; i < dl; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* The CertID hashes an OCSP request finds the issuer by (RFC 6960). */
static void
test_issuer_hashes(void **state)
{
	struct fx		*fx = *state;
	struct sp_err		 err = { 0 };
	char			 h[4][65], want[65];
	unsigned char		*nd = NULL;
	const ASN1_BIT_STRING	*k = X509_get0_pubkey_bitstr(fx->ca);
	int64_t			 iss;
	int			 nl;

	assert_int_equal(va_issuer_put(fx->st, NULL, "Root", fx->ca, &iss,
	    &err), 0);
	assert_int_equal(store_select(fx->st, NULL, hash_row, h, &err,
	    "SELECT name_sha1, key_sha1, name_sha256, key_sha256 FROM "
	    "va_issuers WHERE id = ?", "i", iss), 0);
	assert_true((nl = i2d_X509_NAME(X509_get_subject_name(fx->ca),
	    &nd)) > 0);
	hex_digest(nd, (size_t)nl, EVP_sha1(), want);
	assert_string_equal(h[0], want);
	hex_digest(nd, (size_t)nl, EVP_sha256(), want);
	assert_string_equal(h[2], want);
	hex_digest(k->data, (size_t)k->length, EVP_sha1(), want);
	assert_string_equal(h[1], want);
	hex_digest(k->data, (size_t)k->length, EVP_sha256(), want);
	assert_string_equal(h[3], want);
	assert_int_equal(strlen(h[0]), 40);
	assert_int_equal(strlen(h[3]), 64);
	OPENSSL_free(nd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sequence_rule, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_issuer_hashes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_crl_numbers, setup,
		    teardown),
	};

	return cmocka_run_group_tests_name("va_status", tests, NULL, NULL);
}
