#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/ocsp.h>

#include "va/va_int.h"

/* Issuers by the first byte of the name hash; entries by serial. */
static int64_t
fake_issuer(void *arg, const struct ocsp_certid *id)
{
	(void)arg;
	if (id->hash == OCSP_HASH_NONE)
		return -1;
	switch (id->name_hash[0]) {
	case 'A':
		return 1;
	case 'B':
		return 2;
	default:
		return -1;
	}
}

static int
fake_status(void *arg, int64_t issuer, const char *serial,
    struct ocsp_single *out)
{
	(void)arg;
	if (strcmp(serial, "ee") == 0)
		return SP_ERR_DB;
	if (issuer == 1 && strcmp(serial, "01") == 0) {
		*out = (struct ocsp_single){ OCSP_GOOD, 0, -1 };
		return 0;
	}
	if (issuer == 1 && strcmp(serial, "02") == 0) {
		*out = (struct ocsp_single){ OCSP_REVOKED, 1700000000, 1 };
		return 0;
	}
	return SP_ERR_NOTFOUND;
}

static const struct va_lookup lk = { fake_issuer, fake_status, NULL };

static void
add(struct ocsp_req *rq, char issuer, const char *serial)
{
	struct ocsp_certid	*id = &rq->ids[rq->n++];

	memset(id, 0, sizeof(*id));
	id->hash = OCSP_HASH_SHA1;
	id->hlen = 20;
	id->name_hash[0] = (unsigned char)issuer;
	strcpy(id->serial, serial);
}

static void
test_statuses(void **state)
{
	struct ocsp_req		rq = { 0 };
	struct va_decision	d;

	(void)state;
	add(&rq, 'A', "01");
	add(&rq, 'A', "02");
	add(&rq, 'A', "03");
	va_decide(&rq, &lk, VA_NON_ISSUED_UNKNOWN, &d);
	assert_int_equal(d.resp_status, OCSP_RESPONSE_STATUS_SUCCESSFUL);
	assert_int_equal(d.issuer, 1);
	assert_int_equal(d.st[0].status, OCSP_GOOD);
	assert_int_equal(d.st[1].status, OCSP_REVOKED);
	assert_int_equal(d.st[1].reason, 1);
	/* Never "good" for a serial the VA does not know. */
	assert_int_equal(d.st[2].status, OCSP_UNKNOWN);
	assert_false(d.extended_revoke);
	assert_false(d.cacheable);

	va_decide(&rq, &lk, VA_NON_ISSUED_REVOKED, &d);
	assert_int_equal(d.st[0].status, OCSP_GOOD);
	assert_int_equal(d.st[2].status, OCSP_REVOKED);
	assert_int_equal(d.st[2].reason, 6);
	assert_int_equal(d.st[2].revoked_at, 0);
	assert_true(d.extended_revoke);
}

static void
test_issuers_and_errors(void **state)
{
	struct ocsp_req		rq = { 0 };
	struct va_decision	d;

	(void)state;
	add(&rq, 'A', "01");
	va_decide(&rq, &lk, VA_NON_ISSUED_UNKNOWN, &d);
	assert_true(d.cacheable);
	rq.has_nonce = true;
	va_decide(&rq, &lk, VA_NON_ISSUED_UNKNOWN, &d);
	assert_false(d.cacheable);

	/* Two issuers in one request: one signer cannot answer both. */
	add(&rq, 'B', "01");
	va_decide(&rq, &lk, VA_NON_ISSUED_UNKNOWN, &d);
	assert_int_equal(d.resp_status, OCSP_RESPONSE_STATUS_UNAUTHORIZED);
	assert_int_equal(d.issuer, -1);

	memset(&rq, 0, sizeof(rq));
	add(&rq, 'Z', "01");
	va_decide(&rq, &lk, VA_NON_ISSUED_REVOKED, &d);
	assert_int_equal(d.resp_status, OCSP_RESPONSE_STATUS_UNAUTHORIZED);
	rq.ids[0].hash = OCSP_HASH_NONE;
	rq.ids[0].name_hash[0] = 'A';
	va_decide(&rq, &lk, VA_NON_ISSUED_UNKNOWN, &d);
	assert_int_equal(d.resp_status, OCSP_RESPONSE_STATUS_UNAUTHORIZED);

	/* A failing lookup is an internal error, not a guess. */
	memset(&rq, 0, sizeof(rq));
	add(&rq, 'A', "01");
	add(&rq, 'A', "ee");
	va_decide(&rq, &lk, VA_NON_ISSUED_UNKNOWN, &d);
	assert_int_equal(d.resp_status, OCSP_RESPONSE_STATUS_INTERNALERROR);

	memset(&rq, 0, sizeof(rq));
	va_decide(&rq, &lk, VA_NON_ISSUED_UNKNOWN, &d);
	assert_int_equal(d.resp_status, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_statuses),
		cmocka_unit_test(test_issuers_and_errors),
	};

	return cmocka_run_group_tests_name("va_responder", tests, NULL, NULL);
}
