/* Unit tests: admin protocol framing and request validation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>

#include "admin/proto.h"

static int
parse(const char *s, const char **cmd)
{
	json_t	*root = NULL, *args = NULL;
	int	 r;

	r = admin_request_parse((const unsigned char *)s, strlen(s), &root,
	    cmd, &args, NULL);
	if (r == 0) {
		assert_true(json_is_object(args));
		json_decref(root);
	}
	return r;
}

static void
test_requests(void **state)
{
	const char	*cmd;

	(void)state;
	assert_int_equal(parse("{\"cmd\":\"status\"}", &cmd), 0);
	assert_int_equal(parse("{\"cmd\":\"ca.create\",\"args\":{\"a\":1}}",
	    &cmd), 0);
	assert_int_equal(parse("", &cmd), SP_ERR_INVALID);
	assert_int_equal(parse("[]", &cmd), SP_ERR_INVALID);
	assert_int_equal(parse("{\"cmd\":1}", &cmd), SP_ERR_INVALID);
	assert_int_equal(parse("{\"cmd\":\"Status\"}", &cmd), SP_ERR_INVALID);
	assert_int_equal(parse("{\"cmd\":\"\"}", &cmd), SP_ERR_INVALID);
	assert_int_equal(parse("{\"cmd\":\"a\",\"args\":[]}", &cmd),
	    SP_ERR_INVALID);
	assert_int_equal(parse("{\"cmd\":\"a\",\"x\":{}}", &cmd),
	    SP_ERR_INVALID);
	assert_int_equal(parse("{\"cmd\":\"a\",\"cmd\":\"b\"}", &cmd),
	    SP_ERR_INVALID);
	assert_int_equal(parse("{\"cmd\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", &cmd), SP_ERR_INVALID);
}

static void
test_frames(void **state)
{
	unsigned char	hdr[4];
	size_t		len;

	(void)state;
	admin_frame_header(0x01020304, hdr);
	assert_int_equal(hdr[0], 1);
	assert_int_equal(hdr[3], 4);
	admin_frame_header(ADMIN_MAX_MSG, hdr);
	assert_int_equal(admin_frame_length(hdr, &len), 0);
	assert_int_equal(len, ADMIN_MAX_MSG);
	admin_frame_header(ADMIN_MAX_MSG + 1, hdr);
	assert_int_equal(admin_frame_length(hdr, &len), SP_ERR_LIMIT);
}

static void
test_responses(void **state)
{
	json_t	*ok = admin_response_ok(json_string("x"));
	json_t	*e = admin_response_err(SP_ERR_POLICY, "no");

	(void)state;
	assert_true(json_is_true(json_object_get(ok, "ok")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    e, "error"), "code")), "policy");
	assert_int_equal(admin_code_parse("policy"), SP_ERR_POLICY);
	assert_int_equal(admin_code_parse("bogus"), SP_ERR_INTERNAL);
	json_decref(ok);
	json_decref(e);
}

static void
test_unreachable(void **state)
{
	json_t		*res = NULL;
	struct sp_err	 err = { 0 };

	(void)state;
	assert_int_equal(admin_call("/nonexistent/admin.sock", "status", NULL,
	    &res, &err), SP_ERR_CONNECT);
	assert_null(res);
	assert_non_null(strstr(err.msg, "cannot reach"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_frames),
		cmocka_unit_test(test_responses),
		cmocka_unit_test(test_unreachable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
