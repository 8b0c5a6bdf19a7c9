/* The publish body parser (va_pub_parse()): every field hostile. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "va/va_int.h"

static int
parse(enum va_pub_kind k, const char *js, struct va_pub *p,
    struct sp_err *err)
{
	json_error_t	 je;
	json_t		*j = json_loads(js, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	int		 r;

	assert_non_null(j);
	r = va_pub_parse(k, j, p, err);
	json_decref(j);
	return r;
}

static void
ok_cert(const char *js, struct va_pub *p)
{
	struct sp_err	err = { 0 };

	if (parse(VA_PUB_CERT, js, p, &err) != 0)
		fail_msg("%s: %s", js, err.msg);
}

static void
bad(enum va_pub_kind k, const char *js, const char *why)
{
	struct va_pub	p;
	struct sp_err	err = { 0 };

	memset(&p, 0, sizeof(p));
	if (parse(k, js, &p, &err) != SP_ERR_INVALID)
		fail_msg("accepted: %s", js);
	if (why != NULL && strstr(err.msg, why) == NULL)
		fail_msg("%s: \"%s\" lacks \"%s\"", js, err.msg, why);
	va_pub_clear(&p);
}

static void
test_cert_status_only(void **state)
{
	struct va_pub	p;

	(void)state;
	memset(&p, 0, sizeof(p));
	ok_cert("{\"ca\":\"Root\",\"serial\":\"000A1B\",\"seq\":5,"
	    "\"status\":\"revoked\",\"revoked_at\":1700000000,\"reason\":1}",
	    &p);
	assert_string_equal(p.ca, "Root");
	assert_string_equal(p.e.serial, "0a1b");
	assert_int_equal(p.e.seq, 5);
	assert_int_equal(p.e.status, VA_REVOKED);
	assert_int_equal(p.e.revoked_at, 1700000000);
	assert_int_equal(p.e.reason, 1);
	assert_null(p.e.der);
	assert_string_equal(p.e.fingerprint, "");
	va_pub_clear(&p);

	ok_cert("{\"ca\":\"Root\",\"serial\":\"01\",\"seq\":1,"
	    "\"status\":\"good\",\"reason\":-1,\"subject\":\"\","
	    "\"not_before\":1,\"not_after\":2,\"certificate\":null}", &p);
	assert_int_equal(p.e.status, VA_GOOD);
	assert_int_equal(p.e.reason, -1);
	va_pub_clear(&p);

	ok_cert("{\"ca\":\"Root\",\"serial\":\"01\",\"seq\":1,"
	    "\"status\":\"hold\",\"revoked_at\":5,\"certificate\":\"AAECAw==\","
	    "\"fingerprint\":\"" "00112233445566778899aabbccddeeff"
	    "00112233445566778899AABBCCDDEEFF\"}", &p);
	assert_int_equal(p.e.status, VA_ON_HOLD);
	assert_int_equal(p.e.derlen, 4);
	assert_memory_equal(p.e.der, "\0\1\2\3", 4);
	assert_string_equal(p.e.fingerprint, "00112233445566778899aabbccddeeff"
	    "00112233445566778899aabbccddeeff");
	va_pub_clear(&p);
}

static void
test_cert_hostile(void **state)
{
	(void)state;
	bad(VA_PUB_CERT, "[]", "object");
	bad(VA_PUB_CERT, "{}", "missing");
	bad(VA_PUB_CERT, "{\"ca\":\"../x\",\"serial\":\"01\",\"seq\":1,"
	    "\"status\":\"good\"}", "CA name");
	bad(VA_PUB_CERT, "{\"ca\":5,\"serial\":\"01\",\"seq\":1,"
	    "\"status\":\"good\"}", "string");
	bad(VA_PUB_CERT, "{\"ca\":\"R\",\"serial\":\"xyz\",\"seq\":1,"
	    "\"status\":\"good\"}", "serial");
	bad(VA_PUB_CERT, "{\"ca\":\"R\",\"serial\":\"01\",\"seq\":0,"
	    "\"status\":\"good\"}", "seq");
	bad(VA_PUB_CERT, "{\"ca\":\"R\",\"serial\":\"01\",\"seq\":1.5,"
	    "\"status\":\"good\"}", "integer");
	bad(VA_PUB_CERT, "{\"ca\":\"R\",\"serial\":\"01\",\"seq\":1,"
	    "\"status\":\"bad\"}", "status");
	bad(VA_PUB_CERT, "{\"ca\":\"R\",\"serial\":\"01\",\"seq\":1,"
	    "\"status\":\"revoked\"}", "revoked_at");
	bad(VA_PUB_CERT, "{\"ca\":\"R\",\"serial\":\"01\",\"seq\":1,"
	    "\"status\":\"good\",\"revoked_at\":3}", "revoked_at");
	bad(VA_PUB_CERT, "{\"ca\":\"R\",\"serial\":\"01\",\"seq\":1,"
	    "\"status\":\"revoked\",\"revoked_at\":-3}", "revoked_at");
	bad(VA_PUB_CERT, "{\"ca\":\"R\",\"serial\":\"01\",\"seq\":1,"
	    "\"status\":\"revoked\",\"revoked_at\":3,\"reason\":7}", "reason");
	bad(VA_PUB_CERT, "{\"ca\":\"R\",\"serial\":\"01\",\"seq\":1,"
	    "\"status\":\"revoked\",\"revoked_at\":3,\"reason\":11}", "reason");
	bad(VA_PUB_CERT, "{\"ca\":\"R\",\"serial\":\"01\",\"seq\":1,"
	    "\"status\":\"good\",\"not_before\":9,\"not_after\":3}",
	    "not_after");
	bad(VA_PUB_CERT, "{\"ca\":\"R\",\"serial\":\"01\",\"seq\":1,"
	    "\"status\":\"good\",\"not_after\":999999999999999}", "range");
	bad(VA_PUB_CERT, "{\"ca\":\"R\",\"serial\":\"01\",\"seq\":1,"
	    "\"status\":\"good\",\"fingerprint\":\"abc\"}", "fingerprint");
	bad(VA_PUB_CERT, "{\"ca\":\"R\",\"serial\":\"01\",\"seq\":1,"
	    "\"status\":\"good\",\"certificate\":\"AA\\nAA==\"}", "base64");
	bad(VA_PUB_CERT, "{\"ca\":\"R\",\"serial\":\"01\",\"seq\":1,"
	    "\"status\":\"good\",\"certificate\":\"A=AA\"}", "base64");
	bad(VA_PUB_CERT, "{\"ca\":\"R\",\"serial\":\"01\",\"seq\":1,"
	    "\"status\":\"good\",\"certificate\":\"\"}", "base64");
	bad(VA_PUB_CERT, "{\"ca\":\"R\",\"serial\":\"01\",\"seq\":1,"
	    "\"status\":\"good\",\"certificate\":\"====\"}", NULL);
	bad(VA_PUB_CERT, "{\"ca\":\"R\",\"serial\":\"01\",\"seq\":1,"
	    "\"status\":\"good\",\"subject\":\"a\\u0000b\"}", "NUL");
}

static void
test_ca_and_crl(void **state)
{
	struct va_pub	p;
	struct sp_err	err = { 0 };

	(void)state;
	memset(&p, 0, sizeof(p));
	assert_int_equal(parse(VA_PUB_CA, "{\"name\":\"Root\","
	    "\"certificate\":\"AQID\"}", &p, &err), 0);
	assert_string_equal(p.ca, "Root");
	assert_int_equal(p.derlen, 3);
	va_pub_clear(&p);
	assert_int_equal(parse(VA_PUB_CRL, "{\"ca\":\"Root\",\"crl\":\"AQ==\"}",
	    &p, &err), 0);
	assert_int_equal(p.derlen, 1);
	va_pub_clear(&p);
	bad(VA_PUB_CA, "{\"name\":\"Root\"}", "certificate");
	bad(VA_PUB_CA, "{\"ca\":\"Root\",\"certificate\":\"AQID\"}", "name");
	bad(VA_PUB_CRL, "{\"ca\":\"Root\",\"crl\":7}", "string");
	bad(VA_PUB_CRL, "{\"ca\":\"\",\"crl\":\"AQ==\"}", "CA name");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cert_status_only),
		cmocka_unit_test(test_cert_hostile),
		cmocka_unit_test(test_ca_and_crl),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
