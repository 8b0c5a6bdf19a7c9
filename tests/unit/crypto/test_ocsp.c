#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto/ocsp.h"

struct fx {
	EVP_PKEY	*cakey, *otherkey;
	X509		*ca, *other;
	X509_STORE	*store;
};

static X509 *
selfsigned(EVP_PKEY *k, const char *cn)
{
	X509		*x = X509_new();
	X509_NAME	*n = X509_NAME_new();
	X509V3_CTX	 ctx;
	X509_EXTENSION	*e;

	assert_non_null(x);
	assert_true(X509_set_version(x, 2));
	assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), 1));
	assert_true(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0));
	assert_true(X509_set_subject_name(x, n));
	assert_true(X509_set_issuer_name(x, n));
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	assert_true(X509_set_pubkey(x, k));
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	assert_non_null(e = X509V3_EXT_conf_nid(NULL, &ctx,
	    NID_basic_constraints, "critical,CA:TRUE"));
	assert_true(X509_add_ext(x, e, -1));
	X509_EXTENSION_free(e);
	assert_non_null(e = X509V3_EXT_conf_nid(NULL, &ctx,
	    NID_subject_key_identifier, "hash"));
	assert_true(X509_add_ext(x, e, -1));
	X509_EXTENSION_free(e);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	X509_NAME_free(n);
	return x;
}

static int
setup(void **state)
{
	struct fx	*fx = calloc(1, sizeof(*fx));

	fx->cakey = EVP_EC_gen("P-256");
	fx->otherkey = EVP_EC_gen("P-256");
	fx->ca = selfsigned(fx->cakey, "OCSP Test CA");
	fx->other = selfsigned(fx->otherkey, "Other CA");
	fx->store = X509_STORE_new();
	X509_STORE_add_cert(fx->store, fx->ca);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx	*fx = *state;

	X509_STORE_free(fx->store);
	X509_free(fx->ca);
	X509_free(fx->other);
	EVP_PKEY_free(fx->cakey);
	EVP_PKEY_free(fx->otherkey);
	free(fx);
	return 0;
}

static OCSP_CERTID *
certid(X509 *issuer, const EVP_MD *md, long serial)
{
	ASN1_INTEGER	*ai = ASN1_INTEGER_new();
	OCSP_CERTID	*id;

	ASN1_INTEGER_set(ai, serial);
	id = OCSP_cert_id_new(md, X509_get_subject_name(issuer),
	    X509_get0_pubkey_bitstr(issuer), ai);
	ASN1_INTEGER_free(ai);
	assert_non_null(id);
	return id;
}

/* DER of a request for serials[0..n) of issuer, with a nonce if noncelen. */
static unsigned char *
mkreq(X509 *issuer, const EVP_MD *md, const long *serials, size_t n,
    unsigned char *nonce, int noncelen, size_t *len)
{
	OCSP_REQUEST	*req = OCSP_REQUEST_new();
	unsigned char	*der = NULL;
	int		 l;

	for (size_t i = 0; i < n; i++)
		assert_non_null(OCSP_request_add0_id(req,
		    certid(issuer, md, serials[i])));
	if (noncelen > 0)
		assert_true(OCSP_request_add1_nonce(req, nonce, noncelen));
	assert_true((l = i2d_OCSP_REQUEST(req, &der)) > 0);
	*len = (size_t)l;
	OCSP_REQUEST_free(req);
	return der;
}

static void
decode_bad(const unsigned char *der, size_t len, int code, const char *want)
{
	struct sp_err	 err = { 0 };
	struct ocsp_req	*rq = (struct ocsp_req *)(uintptr_t)1;

	assert_int_equal(ocsp_req_decode(der, len, &rq, &err), code);
	assert_null(rq);
	if (want != NULL && strstr(err.msg, want) == NULL) {
		print_error("message \"%s\" lacks \"%s\"\n", err.msg, want);
		fail();
	}
}

static void
test_decode(void **state)
{
	struct fx			*fx = *state;
	struct ocsp_issuer_hashes	 h, ho;
	struct sp_err			 err = { 0 };
	struct ocsp_req			*rq;
	long				 serials[] = { 0x1234, 5 };
	unsigned char			 nonce[16] = "0123456789abcdef", *der;
	size_t				 len;

	assert_int_equal(ocsp_issuer_hashes(fx->ca, &h, &err), 0);
	assert_int_equal(ocsp_issuer_hashes(fx->other, &ho, &err), 0);
	der = mkreq(fx->ca, EVP_sha256(), serials, 2, nonce, 16, &len);
	assert_int_equal(ocsp_req_decode(der, len, &rq, &err), 0);
	assert_int_equal(rq->n, 2);
	assert_int_equal(rq->ids[0].hash, OCSP_HASH_SHA256);
	assert_string_equal(rq->ids[0].serial, "1234");
	assert_string_equal(rq->ids[1].serial, "05");
	assert_true(ocsp_certid_matches(&rq->ids[0], &h));
	assert_false(ocsp_certid_matches(&rq->ids[0], &ho));
	assert_true(rq->has_nonce);
	assert_int_equal(rq->noncelen, 16);
	assert_memory_equal(rq->nonce, nonce, 16);
	ocsp_req_free(rq);

	/* Trailing bytes, truncation, garbage. */
	der = realloc(der, len + 1);
	der[len] = 0;
	decode_bad(der, len + 1, SP_ERR_INVALID, "trailing");
	decode_bad(der, len - 1, SP_ERR_INVALID, "not a DER");
	decode_bad((const unsigned char *)"hello", 5, SP_ERR_INVALID, NULL);
	decode_bad(NULL, 0, SP_ERR_INVALID, "empty");
	decode_bad(der, OCSP_REQ_MAX_BYTES + 1, SP_ERR_LIMIT, "larger");
	free(der);

	/* SHA-1 and SHA-384 CertIDs match with their own hash. */
	der = mkreq(fx->ca, EVP_sha1(), serials, 1, NULL, 0, &len);
	assert_int_equal(ocsp_req_decode(der, len, &rq, &err), 0);
	assert_int_equal(rq->ids[0].hash, OCSP_HASH_SHA1);
	assert_true(ocsp_certid_matches(&rq->ids[0], &h));
	assert_false(rq->has_nonce);
	ocsp_req_free(rq);
	OPENSSL_free(der);
	der = mkreq(fx->ca, EVP_sha384(), serials, 1, NULL, 0, &len);
	assert_int_equal(ocsp_req_decode(der, len, &rq, &err), 0);
	assert_true(ocsp_certid_matches(&rq->ids[0], &h));
	ocsp_req_free(rq);
	OPENSSL_free(der);

	/* An unknown hash decodes but names no issuer. */
	der = mkreq(fx->ca, EVP_md5(), serials, 1, NULL, 0, &len);
	assert_int_equal(ocsp_req_decode(der, len, &rq, &err), 0);
	assert_int_equal(rq->ids[0].hash, OCSP_HASH_NONE);
	assert_false(ocsp_certid_matches(&rq->ids[0], &h));
	ocsp_req_free(rq);
	OPENSSL_free(der);
}

static void
test_decode_limits(void **state)
{
	struct fx	*fx = *state;
	struct sp_err	 err = { 0 };
	struct ocsp_req	*rq;
	long		 serials[OCSP_REQ_MAX_IDS + 1];
	unsigned char	 nonce[OCSP_NONCE_MAX + 1], *der;
	size_t		 len;

	for (size_t i = 0; i < OCSP_REQ_MAX_IDS + 1; i++)
		serials[i] = (long)i + 1;
	memset(nonce, 7, sizeof(nonce));
	der = mkreq(fx->ca, EVP_sha1(), serials, OCSP_REQ_MAX_IDS, NULL, 0,
	    &len);
	assert_int_equal(ocsp_req_decode(der, len, &rq, &err), 0);
	ocsp_req_free(rq);
	OPENSSL_free(der);
	der = mkreq(fx->ca, EVP_sha1(), serials, OCSP_REQ_MAX_IDS + 1, NULL,
	    0, &len);
	decode_bad(der, len, SP_ERR_INVALID, "CertIDs");
	OPENSSL_free(der);
	der = mkreq(fx->ca, EVP_sha1(), serials, 0, NULL, 0, &len);
	decode_bad(der, len, SP_ERR_INVALID, "no CertID");
	OPENSSL_free(der);
	der = mkreq(fx->ca, EVP_sha1(), serials, 1, nonce, OCSP_NONCE_MAX,
	    &len);
	assert_int_equal(ocsp_req_decode(der, len, &rq, &err), 0);
	assert_int_equal(rq->noncelen, OCSP_NONCE_MAX);
	ocsp_req_free(rq);
	OPENSSL_free(der);
	der = mkreq(fx->ca, EVP_sha1(), serials, 1, nonce, OCSP_NONCE_MAX + 1,
	    &len);
	decode_bad(der, len, SP_ERR_INVALID, "nonce");
	OPENSSL_free(der);
}

static void
test_decode_critical_ext(void **state)
{
	struct fx	*fx = *state;
	OCSP_REQUEST	*req = OCSP_REQUEST_new();
	ASN1_OBJECT	*obj = OBJ_txt2obj("1.3.6.1.4.1.99999.1", 1);
	ASN1_OCTET_STRING *v = ASN1_OCTET_STRING_new();
	X509_EXTENSION	*e;
	unsigned char	*der = NULL;
	int		 len;

	assert_non_null(OCSP_request_add0_id(req, certid(fx->ca, EVP_sha1(),
	    9)));
	ASN1_OCTET_STRING_set(v, (const unsigned char *)"\x05\x00", 2);
	assert_non_null(e = X509_EXTENSION_create_by_OBJ(NULL, obj, 1, v));
	assert_true(OCSP_REQUEST_add_ext(req, e, -1));
	assert_true((len = i2d_OCSP_REQUEST(req, &der)) > 0);
	decode_bad(der, (size_t)len, SP_ERR_INVALID, "critical");
	OPENSSL_free(der);
	X509_EXTENSION_free(e);
	ASN1_OCTET_STRING_free(v);
	ASN1_OBJECT_free(obj);
	OCSP_REQUEST_free(req);
}

/* Signs the answers and checks them the way a client does. */
static void
test_sign_verify(void **state)
{
	struct fx		*fx = *state;
	struct sp_err		 err = { 0 };
	struct ocsp_req		*rq;
	struct ocsp_single	 st[3] = {
		{ OCSP_GOOD, 0, -1 },
		{ OCSP_REVOKED, 1700000000, 1 },
		{ OCSP_UNKNOWN, 0, -1 },
	};
	struct ocsp_resp_params	 p = { time(NULL) - 60, time(NULL) + 3600,
				    false };
	long			 serials[] = { 10, 11, 12 };
	unsigned char		 nonce[8] = "nonce-01", *der, *rder;
	const unsigned char	*cp;
	size_t			 len, rlen;
	OCSP_REQUEST		*req;
	OCSP_RESPONSE		*resp;
	OCSP_BASICRESP		*bs;
	EVP_MD_CTX		*md = EVP_MD_CTX_new();

	assert_true(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL,
	    fx->cakey));
	der = mkreq(fx->ca, EVP_sha256(), serials, 3, nonce, 8, &len);
	assert_int_equal(ocsp_req_decode(der, len, &rq, &err), 0);
	assert_int_equal(ocsp_resp_sign(rq, st, &p, fx->ca, NULL, md, &rder,
	    &rlen, &err), 0);
	EVP_MD_CTX_free(md);

	cp = rder;
	assert_non_null(resp = d2i_OCSP_RESPONSE(NULL, &cp, (long)rlen));
	assert_int_equal(OCSP_response_status(resp),
	    OCSP_RESPONSE_STATUS_SUCCESSFUL);
	assert_non_null(bs = OCSP_response_get1_basic(resp));
	assert_int_equal(OCSP_basic_verify(bs, NULL, fx->store, 0), 1);
	cp = der;
	assert_non_null(req = d2i_OCSP_REQUEST(NULL, &cp, (long)len));
	assert_int_equal(OCSP_check_nonce(req, bs), 1);
	for (int i = 0; i < 3; i++) {
		OCSP_CERTID		*id = certid(fx->ca, EVP_sha256(),
					    serials[i]);
		int			 status, reason;
		ASN1_GENERALIZEDTIME	*rev, *tu, *nu;
		static const int	 want[] = { V_OCSP_CERTSTATUS_GOOD,
		    V_OCSP_CERTSTATUS_REVOKED, V_OCSP_CERTSTATUS_UNKNOWN };

		assert_int_equal(OCSP_resp_find_status(bs, id, &status,
		    &reason, &rev, &tu, &nu), 1);
		assert_int_equal(status, want[i]);
		assert_int_equal(OCSP_check_validity(tu, nu, 5, -1), 1);
		if (i == 1) {
			struct tm	tm;

			assert_int_equal(reason, 1);
			assert_true(ASN1_TIME_to_tm(rev, &tm));
			assert_int_equal(timegm(&tm), 1700000000);
		}
		OCSP_CERTID_free(id);
	}
	/* A SHA-1 CertID is not the one answered. */
	{
		OCSP_CERTID	*id = certid(fx->ca, EVP_sha1(), 10);
		int		 status;

		assert_int_equal(OCSP_resp_find_status(bs, id, &status, NULL,
		    NULL, NULL, NULL), 0);
		OCSP_CERTID_free(id);
	}
	/* The responder ID is the key hash. */
	{
		const ASN1_OCTET_STRING	*kh = NULL;
		const X509_NAME		*nm = NULL;

		assert_true(OCSP_resp_get0_id(bs, &kh, &nm));
		assert_non_null(kh);
		assert_null(nm);
	}
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	OCSP_REQUEST_free(req);
	free(rder);
	ocsp_req_free(rq);
	OPENSSL_free(der);
}

static void
test_extended_revoke_and_errors(void **state)
{
	struct fx		*fx = *state;
	struct sp_err		 err = { 0 };
	struct ocsp_req		*rq;
	struct ocsp_single	 st = { OCSP_REVOKED, 0, 6 };
	struct ocsp_resp_params	 p = { time(NULL), 0, true };
	long			 serial = 77;
	unsigned char		*der, *rder;
	const unsigned char	*cp;
	size_t			 len, rlen;
	OCSP_RESPONSE		*resp;
	OCSP_BASICRESP		*bs;
	EVP_MD_CTX		*md = EVP_MD_CTX_new();
	ASN1_OBJECT		*obj = OBJ_txt2obj("1.3.6.1.5.5.7.48.1.9", 1);
	static const int	 codes[] = {
		OCSP_RESPONSE_STATUS_MALFORMEDREQUEST,
		OCSP_RESPONSE_STATUS_INTERNALERROR,
		OCSP_RESPONSE_STATUS_TRYLATER,
		OCSP_RESPONSE_STATUS_UNAUTHORIZED,
	};

	assert_true(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL,
	    fx->cakey));
	der = mkreq(fx->ca, EVP_sha1(), &serial, 1, NULL, 0, &len);
	assert_int_equal(ocsp_req_decode(der, len, &rq, &err), 0);
	assert_int_equal(ocsp_resp_sign(rq, &st, &p, fx->ca, NULL, md, &rder,
	    &rlen, &err), 0);
	cp = rder;
	assert_non_null(resp = d2i_OCSP_RESPONSE(NULL, &cp, (long)rlen));
	assert_non_null(bs = OCSP_response_get1_basic(resp));
	assert_true(OCSP_BASICRESP_get_ext_by_OBJ(bs, obj, -1) >= 0);
	assert_true(OCSP_BASICRESP_get_ext_by_NID(bs, NID_id_pkix_OCSP_Nonce,
	    -1) < 0);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	free(rder);
	EVP_MD_CTX_free(md);

	/* The key does not match the signer: refused, nothing made. */
	md = EVP_MD_CTX_new();
	assert_true(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL,
	    fx->otherkey));
	assert_int_equal(ocsp_resp_sign(rq, &st, &p, fx->ca, NULL, md, &rder,
	    &rlen, &err), SP_ERR_CRYPTO);
	assert_null(rder);
	EVP_MD_CTX_free(md);
	ocsp_req_free(rq);
	OPENSSL_free(der);

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		assert_int_equal(ocsp_resp_error(codes[i], &rder, &rlen,
		    &err), 0);
		cp = rder;
		assert_non_null(resp = d2i_OCSP_RESPONSE(NULL, &cp,
		    (long)rlen));
		assert_int_equal(OCSP_response_status(resp), codes[i]);
		assert_null(OCSP_response_get1_basic(resp));
		OCSP_RESPONSE_free(resp);
		free(rder);
	}
	assert_int_equal(ocsp_resp_error(OCSP_RESPONSE_STATUS_SUCCESSFUL,
	    &rder, &rlen, &err), SP_ERR_INTERNAL);
	ASN1_OBJECT_free(obj);
	ERR_clear_error();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_decode_limits),
		cmocka_unit_test(test_decode_critical_ext),
		cmocka_unit_test(test_sign_verify),
		cmocka_unit_test(test_extended_revoke_and_errors),
	};

	return cmocka_run_group_tests_name("ocsp", tests, setup, teardown);
}
