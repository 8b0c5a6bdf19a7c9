#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "crypto/dn.h"

/* Parses s, expecting success, and returns the name. */
static X509_NAME *
parse_ok(const char *s)
{
	struct sp_err	 err = { 0 };
	X509_NAME	*name = NULL;
	int		 r;

	r = dn_parse(s, &name, &err);
	if (r != 0)
		print_error("dn_parse(\"%s\"): %s\n", s, err.msg);
	assert_int_equal(r, 0);
	assert_non_null(name);
	return name;
}

/* Expects s to be rejected with a message containing want. */
static void
parse_bad(const char *s, const char *want)
{
	struct sp_err	 err = { 0 };
	X509_NAME	*name = (X509_NAME *)(uintptr_t)1;

	assert_int_equal(dn_parse(s, &name, &err), SP_ERR_INVALID);
	assert_null(name);
	assert_int_equal(err.code, SP_ERR_INVALID);
	if (want != NULL && strstr(err.msg, want) == NULL) {
		print_error("\"%s\": message \"%s\" lacks \"%s\"\n", s,
		    err.msg, want);
		fail();
	}
}

/* parse(in) then print gives want. */
static void
check_print(const char *in, const char *want)
{
	X509_NAME	*name = parse_ok(in);
	char		*s;

	assert_non_null(s = dn_print(name));
	assert_string_equal(s, want);
	free(s);
	X509_NAME_free(name);
}

/* Value of entry i as UTF-8 bytes, and its ASN.1 type. */
static void
check_entry(const X509_NAME *name, int i, int nid, int type, const char *val)
{
	const X509_NAME_ENTRY	*ne;
	const ASN1_STRING	*str;

	assert_non_null(ne = X509_NAME_get_entry(name, i));
	assert_int_equal(OBJ_obj2nid(X509_NAME_ENTRY_get_object(ne)), nid);
	str = X509_NAME_ENTRY_get_data(ne);
	assert_int_equal(ASN1_STRING_type(str), type);
	assert_int_equal(ASN1_STRING_length(str), (int)strlen(val));
	assert_memory_equal(ASN1_STRING_get0_data(str), val, strlen(val));
}

static void
test_round_trip(void **state)
{
	static const char *const dns[] = {
		"CN=Sub CA 1,O=Example,C=SE",
		"CN=Smith\\, John,O=Acme\\+Co,L=Stockholm,C=SE",
		"CN=a+UID=b,OU=x,O=y",
		"CN=\\#not hex,O=\\ lead and trail\\ ",
		"CN=\xc3\x85sa \xc3\x96" "berg,"
		    "O=R\xc3\xa4ksm\xc3\xb6rg\xc3\xa5s AB",
		"emailAddress=ca@example.org,CN=x,DC=example,DC=org",
		"serialNumber=1234,GN=Ada,SN=Lovelace,C=GB",
		"CN=a\\\\b\\\"c\\<d\\>e\\;f=g",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(dns) / sizeof(dns[0]); i++)
		check_print(dns[i], dns[i]);
}

static void
test_order(void **state)
{
	X509_NAME	*name;
	char		 buf[256];

	(void)state;
	name = parse_ok("CN=Sub CA 1,O=Example,C=SE");
	/* The encoding starts with the least specific RDN. */
	assert_int_equal(X509_NAME_entry_count(name), 3);
	check_entry(name, 0, NID_countryName, V_ASN1_PRINTABLESTRING, "SE");
	check_entry(name, 1, NID_organizationName, V_ASN1_UTF8STRING,
	    "Example");
	check_entry(name, 2, NID_commonName, V_ASN1_UTF8STRING, "Sub CA 1");
	assert_non_null(X509_NAME_oneline(name, buf, sizeof(buf)));
	assert_string_equal(buf, "/C=SE/O=Example/CN=Sub CA 1");
	X509_NAME_free(name);
}

static void
test_der_round_trip(void **state)
{
	const unsigned char	*p;
	unsigned char		*der = NULL;
	X509_NAME		*name, *back;
	char			*s;
	int			 n;

	(void)state;
	name = parse_ok("CN=x+UID=y,OU=Unit,O=Org,C=SE");
	assert_true((n = i2d_X509_NAME(name, &der)) > 0);
	p = der;
	assert_non_null(back = d2i_X509_NAME(NULL, &p, n));
	assert_int_equal(X509_NAME_cmp(name, back), 0);
	assert_non_null(s = dn_print(back));
	/* DER sorts the SET OF, so the multi-valued RDN may reorder. */
	assert_true(strcmp(s, "CN=x+UID=y,OU=Unit,O=Org,C=SE") == 0 ||
	    strcmp(s, "UID=y+CN=x,OU=Unit,O=Org,C=SE") == 0);
	free(s);
	OPENSSL_free(der);
	X509_NAME_free(back);
	X509_NAME_free(name);
}

static void
test_escapes(void **state)
{
	X509_NAME	*name;

	(void)state;
	name = parse_ok("CN=a\\,b\\+c\\=d\\\\e\\\"f\\;g\\<h\\>i");
	check_entry(name, 0, NID_commonName, V_ASN1_UTF8STRING,
	    "a,b+c=d\\e\"f;g<h>i");
	X509_NAME_free(name);
	/* '=' and a non-leading '#' need no escape. */
	name = parse_ok("CN=a=b#c");
	check_entry(name, 0, NID_commonName, V_ASN1_UTF8STRING, "a=b#c");
	X509_NAME_free(name);
	/* Escaped spaces at the ends are kept, others dropped. */
	name = parse_ok("CN=  \\  x y \\  ");
	check_entry(name, 0, NID_commonName, V_ASN1_UTF8STRING, "  x y  ");
	X509_NAME_free(name);
	name = parse_ok("CN=\\#1");
	check_entry(name, 0, NID_commonName, V_ASN1_UTF8STRING, "#1");
	X509_NAME_free(name);

	parse_bad("CN=a\\q", "escape");
	parse_bad("CN=a\\", "escape");
	parse_bad("CN=a;b", "escaped");
	parse_bad("CN=a\"b", "escaped");
	parse_bad("CN=a<b", "escaped");
	parse_bad("CN=a>b", "escaped");
}

static void
test_hex_escapes(void **state)
{
	X509_NAME	*name;

	(void)state;
	name = parse_ok("CN=caf\\C3\\a9,O=\\41\\42");
	check_entry(name, 1, NID_commonName, V_ASN1_UTF8STRING,
	    "caf\xc3\xa9");
	check_entry(name, 0, NID_organizationName, V_ASN1_UTF8STRING, "AB");
	X509_NAME_free(name);
	/* Printed back as readable UTF-8; control characters escaped. */
	check_print("CN=caf\\C3\\A9", "CN=caf\xc3\xa9");
	check_print("CN=a\\0Ab", "CN=a\\0Ab");
	check_print("CN=\\20x", "CN=\\ x");

	parse_bad("CN=\\4", "hex");
	parse_bad("CN=\\4g", "hex");
	parse_bad("CN=a\\00b", "NUL");
	parse_bad("CN=\\C3", "CN");	/* truncated UTF-8 */
	parse_bad("CN=\\FF", "CN");
}

static void
test_hexstring(void **state)
{
	X509_NAME	*name, *back;
	char		*s;

	(void)state;
	/* RFC 4514 2.4: '#' then the BER of the value. */
	name = parse_ok("CN=#0C03666F6F");
	check_entry(name, 0, NID_commonName, V_ASN1_UTF8STRING, "foo");
	X509_NAME_free(name);
	name = parse_ok("CN=#1303666F6F ,O=x");
	check_entry(name, 1, NID_commonName, V_ASN1_UTF8STRING, "foo");
	X509_NAME_free(name);

	/* OpenSSL prints attributes it does not know as hex. */
	name = parse_ok("1.3.6.1.4.1.99999.1=foo,CN=x");
	assert_non_null(s = dn_print(name));
	assert_string_equal(s, "1.3.6.1.4.1.99999.1=#0C03666F6F,CN=x");
	back = parse_ok(s);
	assert_int_equal(X509_NAME_cmp(name, back), 0);
	free(s);
	X509_NAME_free(back);
	X509_NAME_free(name);

	/* No hex digit after '#': a literal, as OpenSSL prints "#" alone. */
	check_print("CN=#,O=# x", "CN=#,O=\\# x");
	parse_bad("CN=#0C0", "hex");
	parse_bad("CN=#0C03666F", "DER");
	parse_bad("CN=#0C03666F6F00", "DER");
	parse_bad("CN=#020101", "not a string");
	parse_bad("CN=#0C03666F6F x", "hex");
	parse_bad("CN=#0C00", "empty");
}

static void
test_multi_valued(void **state)
{
	X509_NAME		*name;
	const X509_NAME_ENTRY	*a, *b, *c;

	(void)state;
	name = parse_ok("CN=a+UID=b,O=x+OU=y+L=z");
	assert_int_equal(X509_NAME_entry_count(name), 5);
	/* Two RDNs: {O, OU, L} first, then {CN, UID}. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(X509_NAME_ENTRY_set(
		    X509_NAME_get_entry(name, i)), 0);
	for (int i = 3; i < 5; i++)
		assert_int_equal(X509_NAME_ENTRY_set(
		    X509_NAME_get_entry(name, i)), 1);
	X509_NAME_free(name);

	name = parse_ok("CN=a , O=x + OU=y");
	a = X509_NAME_get_entry(name, 0);
	b = X509_NAME_get_entry(name, 1);
	c = X509_NAME_get_entry(name, 2);
	assert_int_equal(X509_NAME_ENTRY_set(a), X509_NAME_ENTRY_set(b));
	assert_int_not_equal(X509_NAME_ENTRY_set(b), X509_NAME_ENTRY_set(c));
	X509_NAME_free(name);

	check_print("CN=a+CN=b", "CN=a+CN=b");
	parse_bad("CN=a+", "end of string");
	parse_bad("+CN=a", "attribute type expected");
	parse_bad("CN=a++O=b", "attribute type expected");
}

static void
test_string_types(void **state)
{
	X509_NAME	*name;

	(void)state;
	name = parse_ok("emailAddress=ca@example.org,DC=example,C=se");
	check_entry(name, 0, NID_countryName, V_ASN1_PRINTABLESTRING, "se");
	check_entry(name, 1, NID_domainComponent, V_ASN1_IA5STRING,
	    "example");
	check_entry(name, 2, NID_pkcs9_emailAddress, V_ASN1_IA5STRING,
	    "ca@example.org");
	X509_NAME_free(name);
	/* IA5String holds no UTF-8. */
	parse_bad("DC=\xc3\xa5", "DC");
}

static void
test_country(void **state)
{
	(void)state;
	parse_bad("C=SWE", "two-letter");
	parse_bad("C=S", "two-letter");
	parse_bad("C=S1", "two-letter");
	parse_bad("CN=x,C=\\C3\\85X", "two-letter");
	parse_bad("C=", "empty");
}

static void
test_attribute_types(void **state)
{
	X509_NAME	*name;

	(void)state;
	/* Case does not matter; long names and OIDs work too. */
	check_print("cn=a,o=b,c=SE", "CN=a,O=b,C=SE");
	check_print("commonName=a,organizationName=b", "CN=a,O=b");
	check_print("2.5.4.3=a,2.5.4.6=SE", "CN=a,C=SE");
	check_print("UID=u,serialNumber=1,title=t", "UID=u,serialNumber=1,"
	    "title=t");
	name = parse_ok("1.3.6.1.4.1.99999.7=private");
	X509_NAME_free(name);

	parse_bad("XX=1", "XX");
	parse_bad("CN=a,Foo=b", "Foo");
	parse_bad("sha256=x", "not an attribute type");
	parse_bad("2.16.840.1.101.3.4.2.1=x", "not an attribute type");
	parse_bad("1.3.6.1.4.1.99999.1234567890.1234567890.1234567890."
	    "1234567890.1234567890=x", "too long");
	parse_bad("2.5.04.3=x", "OID");
	parse_bad("2.5..3=x", "OID");
	parse_bad("2=x", "OID");
	parse_bad("2.5.4.3.=x", "OID");
	parse_bad("C N=x", "'='");
	parse_bad("CN", "'='");
	parse_bad("=x", "attribute type expected");
	parse_bad("_CN=x", "attribute type expected");
}

static void
test_empty(void **state)
{
	struct sp_err	 err = { 0 };
	X509_NAME	*name = NULL;

	(void)state;
	parse_bad("", "empty");
	parse_bad("   ", "empty");
	parse_bad("CN=", "CN: empty value");
	parse_bad("CN=   ", "CN: empty value");
	parse_bad("CN=,O=x", "CN: empty value");
	parse_bad("O=x,OU= ", "OU: empty value");
	assert_int_equal(dn_parse(NULL, &name, &err), SP_ERR_INVALID);
	assert_null(name);
	assert_null(dn_print(NULL));
}

static void
test_limits(void **state)
{
	char		 buf[DN_MAX_LEN + 64];
	X509_NAME	*name;
	size_t		 n;

	(void)state;
	/* DN_MAX_VALUE bytes in a value, counted after unescaping. */
	memset(buf, 0, sizeof(buf));
	memcpy(buf, "name=", 5);
	memset(buf + 5, 'a', DN_MAX_VALUE);
	name = parse_ok(buf);
	X509_NAME_free(name);
	buf[5 + DN_MAX_VALUE] = 'a';
	parse_bad(buf, "name: value longer than 256 bytes");

	memset(buf, 0, sizeof(buf));
	memcpy(buf, "name=", 5);
	for (n = 0; n < DN_MAX_VALUE; n++)
		memcpy(buf + 5 + 3 * n, "\\41", 3);
	name = parse_ok(buf);
	X509_NAME_free(name);
	memcpy(buf + 5 + 3 * n, "\\41", 3);
	parse_bad(buf, "longer than 256 bytes");

	/* DN_MAX_LEN characters in the string. */
	memset(buf, 0, sizeof(buf));
	memcpy(buf, "CN=", 3);
	memset(buf + 3, 'a', DN_MAX_LEN - 2);
	parse_bad(buf, "longer than 1024 characters");
	buf[DN_MAX_LEN] = '\0';
	parse_bad(buf, "CN: value longer than 256 bytes");

	/* X.520 upper bound on CN (ub-common-name). */
	memset(buf, 0, sizeof(buf));
	memcpy(buf, "CN=", 3);
	memset(buf + 3, 'x', 64);
	name = parse_ok(buf);
	X509_NAME_free(name);
	buf[3 + 64] = 'x';
	parse_bad(buf, "CN: bad value");
}

static void
test_too_many(void **state)
{
	char		 buf[DN_MAX_LEN];
	X509_NAME	*name;
	size_t		 n = 0;

	(void)state;
	for (int i = 0; i < DN_MAX_ATTRS; i++) {
		memcpy(buf + n, i == 0 ? "OU=x" : ",OU=x", i == 0 ? 4 : 5);
		n += i == 0 ? 4 : 5;
	}
	buf[n] = '\0';
	name = parse_ok(buf);
	assert_int_equal(X509_NAME_entry_count(name), DN_MAX_ATTRS);
	X509_NAME_free(name);
	memcpy(buf + n, "+CN=y", 6);
	parse_bad(buf, "more than 32 attributes");
}

static void
test_separators(void **state)
{
	(void)state;
	parse_bad("CN=a,", "end of string");
	parse_bad("CN=a, ", "end of string");
	parse_bad(",CN=a", "attribute type expected");
	parse_bad("CN=a,,O=b", "position 6");
	parse_bad("CN=a;O=b", "escaped");
}

static void
test_spaces(void **state)
{
	(void)state;
	check_print("   CN=a,O=b", "CN=a,O=b");
	check_print("CN = a , O =b  ", "CN=a,O=b");
	check_print("  CN  =  a b  +  UID = c ,O=d", "CN=a b+UID=c,O=d");
}

/* --- dn_check_string / dn_check_values ----------------------------------- */

/* An ASN.1 string of the given type holding exactly these bytes. */
static ASN1_STRING *
str_of(int type, const char *bytes, size_t len)
{
	ASN1_STRING	*a = ASN1_STRING_type_new(type);

	assert_non_null(a);
	assert_int_equal(ASN1_STRING_set(a, bytes, (int)len), 1);
	return a;
}

static int
check_str(int type, const char *bytes, size_t len, size_t max,
    struct sp_err *err)
{
	ASN1_STRING	*a = str_of(type, bytes, len);
	int		 r;

	r = dn_check_string(a, "subject CN", max, err);
	ASN1_STRING_free(a);
	return r;
}

static void
str_bad(int type, const char *bytes, size_t len, const char *want)
{
	struct sp_err	 err = { 0 };

	assert_int_equal(check_str(type, bytes, len, 0, &err),
	    SP_ERR_INVALID);
	if (strstr(err.msg, want) == NULL ||
	    strstr(err.msg, "subject CN") == NULL) {
		print_error("type %d: \"%s\" lacks \"%s\"\n", type, err.msg,
		    want);
		fail();
	}
}

static void
str_good(int type, const char *bytes, size_t len)
{
	struct sp_err	 err = { 0 };

	if (check_str(type, bytes, len, 0, &err) != 0) {
		print_error("type %d: %s\n", type, err.msg);
		fail();
	}
}

/* "evil.com\0.good.com" and friends in every string type. */
static void
test_check_string_controls(void **state)
{
	static const char	nul8[] = "evil.com\0.good.com";
	static const char	bmp_nul[] = { 0, 'a', 0, 0, 0, 'b' };
	static const char	bmp_c1[] = { 0, 'a', 0, (char)0x85 };
	static const char	univ_nul[] = { 0, 0, 0, 'a', 0, 0, 0, 0 };
	static const int	one_byte[] = { V_ASN1_UTF8STRING,
				    V_ASN1_PRINTABLESTRING, V_ASN1_IA5STRING,
				    V_ASN1_T61STRING };

	(void)state;
	for (size_t i = 0; i < sizeof(one_byte) / sizeof(one_byte[0]); i++) {
		int t = one_byte[i];

		str_bad(t, nul8, sizeof(nul8) - 1, "U+0000");
		str_bad(t, "a\nb", 3, "U+000A");
		str_bad(t, "a\x1f", 2, "U+001F");
		str_bad(t, "a\x7f", 2, "U+007F");
		str_good(t, "good.example", 12);
	}
	/* C1: as UTF-8 (C2 85), and as a Latin-1 byte in 1-byte types. */
	str_bad(V_ASN1_UTF8STRING, "a\xc2\x85", 3, "U+0085");
	str_bad(V_ASN1_UTF8STRING, "\xc2\x9f", 2, "U+009F");
	str_bad(V_ASN1_PRINTABLESTRING, "a\x85", 2, "U+0085");
	str_bad(V_ASN1_T61STRING, "\x80", 1, "U+0080");
	str_good(V_ASN1_UTF8STRING, "b\xc3\xbc" "cher \xc2\xa0", 10);
	str_bad(V_ASN1_BMPSTRING, bmp_nul, sizeof(bmp_nul), "U+0000");
	str_bad(V_ASN1_BMPSTRING, bmp_c1, sizeof(bmp_c1), "U+0085");
	str_bad(V_ASN1_UNIVERSALSTRING, univ_nul, sizeof(univ_nul), "U+0000");
	str_good(V_ASN1_BMPSTRING, bmp_nul, 2);
}

/* Strings that do not decode are refused too, naming their type. */
static void
test_check_string_undecodable(void **state)
{
	struct sp_err	 err = { 0 };
	ASN1_STRING	*a;

	(void)state;
	str_bad(V_ASN1_UTF8STRING, "a\xc3", 2, "not a valid UTF8STRING");
	str_bad(V_ASN1_UTF8STRING, "\xc0\x80", 2, "not a valid");
	str_bad(V_ASN1_UTF8STRING, "\xed\xa0\x80", 3, "not a valid");
	str_bad(V_ASN1_BMPSTRING, "\0a\0", 3, "not a valid BMPSTRING");
	str_bad(V_ASN1_UNIVERSALSTRING, "\0\0\0a\0", 5, "not a valid");
	str_bad(V_ASN1_OCTET_STRING, "ab", 2, "not a valid");
	str_bad(V_ASN1_BIT_STRING, "ab", 2, "not a valid");
	a = NULL;
	assert_int_equal(dn_check_string(a, "x", 0, &err), SP_ERR_INVALID);
}

static void
test_check_string_max(void **state)
{
	struct sp_err	 err = { 0 };
	char		 v[300];

	(void)state;
	memset(v, 'a', sizeof(v));
	assert_int_equal(check_str(V_ASN1_UTF8STRING, v, 256, 256, &err), 0);
	assert_int_equal(check_str(V_ASN1_UTF8STRING, v, 257, 256, &err),
	    SP_ERR_INVALID);
	assert_non_null(strstr(err.msg, "longer than 256 bytes"));
	sp_err_clear(&err);
	/* No limit. */
	assert_int_equal(check_str(V_ASN1_UTF8STRING, v, 300, 0, &err), 0);
	/*
	 * Counted after decoding: 200 bytes of BMPString are 100 U+00E9,
	 * 200 bytes of UTF-8; 260 bytes are 130, 260 bytes of UTF-8.
	 */
	memset(v, 0, sizeof(v));
	for (int i = 0; i < 130; i++)
		v[2 * i + 1] = (char)0xe9;
	assert_int_equal(check_str(V_ASN1_BMPSTRING, v, 200, 256, &err), 0);
	assert_int_equal(check_str(V_ASN1_BMPSTRING, v, 260, 256, &err),
	    SP_ERR_INVALID);
	/* 150 ASCII characters (300 bytes of BMPString) are 150 bytes. */
	memset(v, 0, sizeof(v));
	for (int i = 0; i < 150; i++)
		v[2 * i + 1] = 'a';
	sp_err_clear(&err);
	assert_int_equal(check_str(V_ASN1_BMPSTRING, v, 300, 256, &err), 0);
}

/* dn_check_values() names the attribute that is wrong. */
static void
test_check_values(void **state)
{
	X509_NAME	*name = parse_ok("CN=ok.example,O=Org,C=SE");
	struct sp_err	 err = { 0 };
	ASN1_OBJECT	*priv;

	(void)state;
	assert_int_equal(dn_check_values(name, "CSR: subject", &err), 0);
	assert_true(X509_NAME_add_entry_by_txt(name, "OU", V_ASN1_UTF8STRING,
	    (const unsigned char *)"a\0b", 3, -1, 0));
	assert_int_equal(dn_check_values(name, "CSR: subject", &err),
	    SP_ERR_INVALID);
	assert_string_equal(err.msg,
	    "CSR: subject OU: control character U+0000 is not allowed");
	X509_NAME_free(name);

	/* Unknown OIDs are named by number. */
	name = X509_NAME_new();
	assert_non_null(name);
	priv = OBJ_txt2obj("1.3.6.1.4.1.99999.1", 1);
	assert_non_null(priv);
	assert_true(X509_NAME_add_entry_by_OBJ(name, priv,
	    V_ASN1_PRINTABLESTRING, (const unsigned char *)"x\ty", 3, -1, 0));
	ASN1_OBJECT_free(priv);
	sp_err_clear(&err);
	assert_int_equal(dn_check_values(name, "CSR: subject", &err),
	    SP_ERR_INVALID);
	assert_non_null(strstr(err.msg, "subject 1.3.6.1.4.1.99999.1: "
	    "control character U+0009"));
	X509_NAME_free(name);

	/* Values over DN_MAX_VALUE bytes, as dn_parse() refuses them. */
	{
		char	 big[DN_MAX_VALUE + 2];

		name = X509_NAME_new();
		assert_non_null(name);
		memset(big, 'o', sizeof(big));
		assert_true(X509_NAME_add_entry_by_txt(name, "O",
		    V_ASN1_UTF8STRING, (const unsigned char *)big,
		    DN_MAX_VALUE + 1, -1, 0));
		sp_err_clear(&err);
		assert_int_equal(dn_check_values(name, "CSR: subject", &err),
		    SP_ERR_INVALID);
		assert_non_null(strstr(err.msg, "subject O: value longer"));
		X509_NAME_free(name);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_der_round_trip),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_hex_escapes),
		cmocka_unit_test(test_hexstring),
		cmocka_unit_test(test_multi_valued),
		cmocka_unit_test(test_string_types),
		cmocka_unit_test(test_country),
		cmocka_unit_test(test_attribute_types),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_too_many),
		cmocka_unit_test(test_separators),
		cmocka_unit_test(test_spaces),
		cmocka_unit_test(test_check_string_controls),
		cmocka_unit_test(test_check_string_undecodable),
		cmocka_unit_test(test_check_string_max),
		cmocka_unit_test(test_check_values),
	};

	return cmocka_run_group_tests_name("dn", tests, NULL, NULL);
}
