/* The issuer index: CertIDs made by OpenSSL (SHA-1, SHA-256) find their issuer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include "store/store.h"
#include "va/va_int.h"

static X509 *
mkca(const char *cn, EVP_PKEY **keyp)
{
	EVP_PKEY	*key = EVP_EC_gen("P-256");
	X509		*ca = X509_new();
	X509_NAME	*n = X509_NAME_new();

	assert_non_null(key);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(ca, n);
	X509_set_issuer_name(ca, n);
	X509_gmtime_adj(X509_getm_notBefore(ca), 0);
	X509_gmtime_adj(X509_getm_notAfter(ca), 86400);
	X509_set_pubkey(ca, key);
	assert_true(X509_sign(ca, key, EVP_sha256()) > 0);
	X509_NAME_free(n);
	*keyp = key;
	return ca;
}

/* The CertID a client makes for serial of issuer, decoded as the VA sees it. */
static struct ocsp_req *
decoded(X509 *issuer, const EVP_MD *md, long serial)
{
	OCSP_REQUEST	*req = OCSP_REQUEST_new();
	ASN1_INTEGER	*ai = ASN1_INTEGER_new();
	OCSP_CERTID	*id;
	struct ocsp_req	*rq = NULL;
	struct sp_err	 err = { 0 };
	unsigned char	*der = NULL;
	int		 l;

	ASN1_INTEGER_set(ai, serial);
	id = OCSP_cert_id_new(md, X509_get_subject_name(issuer),
	    X509_get0_pubkey_bitstr(issuer), ai);
	ASN1_INTEGER_free(ai);
	assert_non_null(OCSP_request_add0_id(req, id));
	assert_true((l = i2d_OCSP_REQUEST(req, &der)) > 0);
	assert_int_equal(ocsp_req_decode(der, (size_t)l, &rq, &err), 0);
	OPENSSL_free(der);
	OCSP_REQUEST_free(req);
	return rq;
}

static void
test_find(void **state)
{
	struct va_index	*ix = NULL;
	struct sp_err	 err = { 0 };
	EVP_PKEY	*k1, *k2, *k3;
	X509		*a = mkca("Index CA A", &k1), *b = mkca("Index CA B", &k2);
	X509		*other = mkca("Index CA A", &k3);	/* same name */
	struct ocsp_req	*rq;

	(void)state;
	assert_int_equal(va_index_new(&ix), 0);
	assert_int_equal(va_index_add(ix, 7, "ca-a", a, &err), 0);
	assert_int_equal(va_index_add(ix, 9, "ca-b", b, &err), 0);
	assert_int_equal(va_index_count(ix), 2);
	/* Twice, bad names: refused, nothing added. */
	assert_int_equal(va_index_add(ix, 7, "ca-c", b, &err), SP_ERR_EXISTS);
	assert_int_equal(va_index_add(ix, 11, "ca-b", b, &err),
	    SP_ERR_EXISTS);
	assert_int_equal(va_index_add(ix, 12, "../x", b, &err),
	    SP_ERR_INVALID);
	assert_int_equal(va_index_count(ix), 2);

	rq = decoded(a, EVP_sha1(), 42);
	assert_int_equal(va_index_find(ix, &rq->ids[0]), 7);
	ocsp_req_free(rq);
	rq = decoded(a, EVP_sha256(), 42);
	assert_int_equal(va_index_find(ix, &rq->ids[0]), 7);
	ocsp_req_free(rq);
	rq = decoded(b, EVP_sha256(), 1);
	assert_int_equal(va_index_find(ix, &rq->ids[0]), 9);
	ocsp_req_free(rq);
	rq = decoded(b, EVP_sha384(), 1);
	assert_int_equal(va_index_find(ix, &rq->ids[0]), 9);
	ocsp_req_free(rq);
	/* Same subject, another key: the key hash tells them apart. */
	rq = decoded(other, EVP_sha1(), 42);
	assert_int_equal(va_index_find(ix, &rq->ids[0]), -1);
	ocsp_req_free(rq);

	assert_int_equal(va_index_find_name(ix, "ca-b"), 9);
	assert_int_equal(va_index_find_name(ix, "ca-x"), -1);
	assert_ptr_equal(va_index_cert(ix, 7), a);
	assert_null(va_index_cert(ix, 8));

	/* The index holds its own references. */
	X509_free(a);
	X509_free(b);
	X509_free(other);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
	EVP_PKEY_free(k3);
	assert_non_null(va_index_cert(ix, 9));
	va_index_free(ix);
	va_index_free(NULL);
}

static void
test_empty(void **state)
{
	struct va_index	*ix = NULL;
	EVP_PKEY	*k;
	X509		*a = mkca("Index CA E", &k);
	struct ocsp_req	*rq = decoded(a, EVP_sha1(), 5);

	(void)state;
	assert_int_equal(va_index_new(&ix), 0);
	assert_int_equal(va_index_find(ix, &rq->ids[0]), -1);
	assert_int_equal(va_index_find_name(ix, "x"), -1);
	ocsp_req_free(rq);
	va_index_free(ix);
	X509_free(a);
	EVP_PKEY_free(k);
}

/* The index as the table holds it: ids, names and hashes from the store. */
static void
test_load(void **state)
{
	char		 dir[64] = "/tmp/sp_test_vaix.XXXXXX", path[128];
	struct store	*st = NULL;
	struct va_index	*ix = NULL;
	struct sp_err	 err = { 0 };
	EVP_PKEY	*k1, *k2;
	X509		*a = mkca("Load CA A", &k1), *b = mkca("Load CA B", &k2);
	struct ocsp_req	*rq;
	int64_t		 ida, idb, id2;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/store.db", dir);
	assert_int_equal(store_open(path, &st, &err), 0);
	assert_int_equal(va_index_load(st, NULL, &ix, &err), 0);
	assert_int_equal(va_index_count(ix), 0);
	va_index_free(ix);
	assert_int_equal(va_issuer_put(st, NULL, "ca-a", a, &ida, &err), 0);
	assert_int_equal(va_issuer_put(st, NULL, "ca-b", b, &idb, &err), 0);
	/* Replacing an issuer's certificate keeps its row. */
	assert_int_equal(va_issuer_put(st, NULL, "ca-a", a, &id2, &err), 0);
	assert_true(id2 == ida);
	assert_int_equal(va_index_load(st, NULL, &ix, &err), 0);
	assert_int_equal(va_index_count(ix), 2);
	rq = decoded(b, EVP_sha256(), 77);
	assert_true(va_index_find(ix, &rq->ids[0]) == idb);
	ocsp_req_free(rq);
	rq = decoded(a, EVP_sha1(), 77);
	assert_true(va_index_find(ix, &rq->ids[0]) == ida);
	ocsp_req_free(rq);
	assert_true(va_index_find_name(ix, "ca-b") == idb);
	va_index_free(ix);
	store_close(st);
	unlink(path);
	rmdir(dir);
	X509_free(a);
	X509_free(b);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_find),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
