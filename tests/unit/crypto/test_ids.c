#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/x509.h>

#include "crypto/ids.h"

static void
parse_is(const char *in, const char *want)
{
	struct sp_err	err = { 0 };
	char		out[ID_SERIAL_HEX_MAX];

	if (id_serial_parse(in, out, &err) != 0) {
		print_error("\"%s\": %s\n", in, err.msg);
		fail();
	}
	assert_string_equal(out, want);
}

static void
parse_bad(const char *in)
{
	struct sp_err	err = { 0 };
	char		out[ID_SERIAL_HEX_MAX];

	assert_int_equal(id_serial_parse(in, out, &err), SP_ERR_INVALID);
	assert_string_equal(out, "");
	assert_true(err.msg[0] != '\0');
}

static void
test_serial_parse(void **state)
{
	char	longest[2 * ID_SERIAL_MAX_BYTES + 3], toolong[sizeof(longest) + 2];

	(void)state;
	parse_is("0A", "0a");
	parse_is("a", "0a");
	parse_is("0x0A:1b", "0a1b");
	parse_is("00:0a:12:34", "0a1234");
	parse_is("000", "00");
	parse_is("0", "00");
	parse_is("-5", "-05");
	parse_is("-0", "00");
	parse_is("7F:FF", "7fff");
	parse_bad("");
	parse_bad("0x");
	parse_bad("xyz");
	parse_bad("12 34");
	parse_bad(NULL);
	/* The limit counts significant digits, not leading zeros. */
	memset(longest, 'f', 2 * ID_SERIAL_MAX_BYTES);
	longest[2 * ID_SERIAL_MAX_BYTES] = '\0';
	parse_is(longest, longest);
	snprintf(toolong, sizeof(toolong), "00%s", longest);
	parse_is(toolong, longest);
	longest[2 * ID_SERIAL_MAX_BYTES] = '1';
	longest[2 * ID_SERIAL_MAX_BYTES + 1] = '\0';
	parse_bad(longest);
}

/* The rendering of a certificate's serial is what the parser gives. */
static void
test_serial_of_cert(void **state)
{
	static const char *const hex[] = { "0A", "00FF", "7fffffff", "80",
	    "-1234", "0", "0102030405060708090a0b0c0d0e0f1011121314" };
	static const char *const want[] = { "0a", "ff", "7fffffff", "80",
	    "-1234", "00", "0102030405060708090a0b0c0d0e0f1011121314" };

	(void)state;
	for (size_t i = 0; i < sizeof(hex) / sizeof(hex[0]); i++) {
		struct sp_err	 err = { 0 };
		BIGNUM		*bn = NULL;
		ASN1_INTEGER	*ai;
		X509		*x;
		char		 got[ID_SERIAL_HEX_MAX], back[ID_SERIAL_HEX_MAX];

		assert_true(BN_hex2bn(&bn, hex[i]) > 0);
		assert_non_null(ai = BN_to_ASN1_INTEGER(bn, NULL));
		assert_non_null(x = X509_new());
		assert_int_equal(X509_set_serialNumber(x, ai), 1);
		assert_int_equal(id_serial_of(x, got), 0);
		assert_string_equal(got, want[i]);
		assert_int_equal(id_serial_parse(hex[i], back, &err), 0);
		assert_string_equal(back, got);
		X509_free(x);
		ASN1_INTEGER_free(ai);
		BN_free(bn);
	}
}

static void
test_serial_bytes(void **state)
{
	static const unsigned char	 b[] = { 0, 0, 1, 2 };
	unsigned char			 big[ID_SERIAL_MAX_BYTES + 1];
	char				 out[ID_SERIAL_HEX_MAX];

	(void)state;
	assert_int_equal(id_serial_from_bytes(b, sizeof(b), 0, out), 0);
	assert_string_equal(out, "0102");
	assert_int_equal(id_serial_from_bytes(b, 2, 1, out), 0);
	assert_string_equal(out, "00");
	memset(big, 1, sizeof(big));
	assert_int_equal(id_serial_from_bytes(big, sizeof(big), 0, out),
	    SP_ERR_INVALID);
	assert_string_equal(out, "");
	assert_int_equal(id_serial_from_asn1(NULL, out), SP_ERR_INVALID);
}

static void
test_fingerprint(void **state)
{
	struct sp_err	err = { 0 };
	char		fp[ID_FP_HEX_LEN + 1], in[3 * 32];
	/* SHA-256("abc") */
	const char	*abc = "ba7816bf8f01cfea414140de5dae2223"
			    "b00361a396177a9cb410ff61f20015ad";

	(void)state;
	assert_int_equal(id_fingerprint_der((const unsigned char *)"abc", 3,
	    fp), 0);
	assert_string_equal(fp, abc);
	for (size_t i = 0; i < 32; i++)
		snprintf(in + 3 * i, 4, "%c%c%s", abc[2 * i] >= 'a' ?
		    abc[2 * i] - 32 : abc[2 * i], abc[2 * i + 1] >= 'a' ?
		    abc[2 * i + 1] - 32 : abc[2 * i + 1], i < 31 ? ":" : "");
	assert_int_equal(id_fingerprint_parse(in, fp, &err), 0);
	assert_string_equal(fp, abc);
	assert_int_equal(id_fingerprint_parse("abcd", fp, &err),
	    SP_ERR_INVALID);
	assert_string_equal(fp, "");
	assert_int_equal(id_fingerprint_parse(NULL, fp, &err),
	    SP_ERR_INVALID);
	assert_int_equal(id_fingerprint_der(NULL, 0, fp), SP_ERR_CRYPTO);
	assert_int_equal(id_fingerprint_of(NULL, fp), SP_ERR_CRYPTO);
	assert_string_equal(fp, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_serial_parse),
		cmocka_unit_test(test_serial_of_cert),
		cmocka_unit_test(test_serial_bytes),
		cmocka_unit_test(test_fingerprint),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
