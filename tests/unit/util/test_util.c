/*
 * Unit tests for util/err.c and util/util.c: hex, numbers, names, time,
 * bounded file reads and writes, and the error-detail rules.
 */
#include <sys/stat.h>

#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "util/err.h"
#include "util/util.h"

/* A fresh temporary directory per test that needs files. */
static int
setup_dir(void **state)
{
	char	*dir;

	if ((dir = strdup("/tmp/sp_test_util.XXXXXX")) == NULL)
		return -1;
	if (mkdtemp(dir) == NULL) {
		free(dir);
		return -1;
	}
	*state = dir;
	return 0;
}

static int
rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static int
teardown_dir(void **state)
{
	char	*dir = *state;
	int	 r;

	r = nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
	return r == 0 ? 0 : -1;
}

/* Writes len bytes of c to dir/name and returns the path (static). */
static const char *
make_file(const char *dir, const char *name, size_t len, int c)
{
	static char	 path[PATH_MAX];
	FILE		*f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_non_null(f = fopen(path, "wb"));
	for (size_t i = 0; i < len; i++)
		assert_int_not_equal(fputc(c, f), EOF);
	assert_int_equal(fclose(f), 0);
	return path;
}

static void
test_hex_encode(void **state)
{
	static const unsigned char	in[] = { 0x00, 0x01, 0x7f, 0x80, 0xab,
					    0xff };
	char				out[2 * sizeof(in) + 1];

	(void)state;
	memset(out, 'x', sizeof(out));
	sp_hex_encode(in, sizeof(in), out);
	assert_string_equal(out, "00017f80abff");

	/* Zero bytes still terminate the output. */
	out[0] = 'x';
	sp_hex_encode(in, 0, out);
	assert_string_equal(out, "");
}

static void
test_hex_decode(void **state)
{
	unsigned char	out[8];

	(void)state;
	/* Either case, exact output. */
	memset(out, 0, sizeof(out));
	assert_int_equal(sp_hex_decode("00abFF7f", out, sizeof(out)), 4);
	assert_memory_equal(out, "\x00\xab\xff\x7f", 4);
	assert_int_equal(sp_hex_decode("DEADbeef", out, sizeof(out)), 4);
	assert_memory_equal(out, "\xde\xad\xbe\xef", 4);

	/* Round trip of every byte value. */
	for (int v = 0; v < 256; v++) {
		unsigned char	b = (unsigned char)v, d = 0;
		char		h[3];

		sp_hex_encode(&b, 1, h);
		assert_int_equal(sp_hex_decode(h, &d, 1), 1);
		assert_int_equal(d, b);
	}
}

static void
test_hex_decode_bad(void **state)
{
	unsigned char	out[4];

	(void)state;
	/* Empty and odd lengths. */
	assert_int_equal(sp_hex_decode("", out, sizeof(out)), -1);
	assert_int_equal(sp_hex_decode("a", out, sizeof(out)), -1);
	assert_int_equal(sp_hex_decode("abc", out, sizeof(out)), -1);
	/* Characters outside [0-9a-fA-F], in either nibble. */
	assert_int_equal(sp_hex_decode("zz", out, sizeof(out)), -1);
	assert_int_equal(sp_hex_decode("0g", out, sizeof(out)), -1);
	assert_int_equal(sp_hex_decode("g0", out, sizeof(out)), -1);
	assert_int_equal(sp_hex_decode("0x12", out, sizeof(out)), -1);
	assert_int_equal(sp_hex_decode(" 1", out, sizeof(out)), -1);
	assert_int_equal(sp_hex_decode("12:34", out, sizeof(out)), -1);
	assert_int_equal(sp_hex_decode("ab\xc3\xa9", out, sizeof(out)), -1);
	/* Too long for the buffer: refused, not truncated. */
	assert_int_equal(sp_hex_decode("0102030405", out, 4), -1);
	assert_int_equal(sp_hex_decode("01020304", out, 4), 4);
	assert_int_equal(sp_hex_decode("01", out, 0), -1);
}

static void
check_num(const char *s, long long min, long long max, long long want)
{
	const char	*errstr = "unset";
	long long	 v = -12345;

	assert_int_equal(sp_strtonum(s, min, max, &v, &errstr), 0);
	assert_null(errstr);
	assert_true(v == want);
}

static void
check_num_bad(const char *s, long long min, long long max, const char *why)
{
	const char	*errstr = NULL;
	long long	 v = -12345;

	assert_int_equal(sp_strtonum(s, min, max, &v, &errstr),
	    SP_ERR_INVALID);
	assert_non_null(errstr);
	assert_string_equal(errstr, why);
	assert_true(v == 0);
}

static void
test_strtonum(void **state)
{
	(void)state;
	check_num("42", 0, 100, 42);
	check_num("0", 0, 100, 0);
	check_num("100", 0, 100, 100);		/* bounds are inclusive */
	check_num("-1", -1, 16, -1);
	check_num("-9223372036854775808", LLONG_MIN, LLONG_MAX, LLONG_MIN);
	check_num("9223372036854775807", LLONG_MIN, LLONG_MAX, LLONG_MAX);

	check_num_bad("101", 0, 100, "too large");
	check_num_bad("-1", 0, 100, "too small");
	check_num_bad("-2", -1, 16, "too small");
	check_num_bad("17", -1, 16, "too large");
	/* Overflowing long long is out of range, not wrapped. */
	check_num_bad("9223372036854775808", 0, LLONG_MAX, "too large");
	check_num_bad("99999999999999999999999", 0, LLONG_MAX, "too large");
	check_num_bad("-9223372036854775809", LLONG_MIN, 0, "too small");
	/* Not numbers. */
	check_num_bad("", 0, 100, "invalid");
	check_num_bad("abc", 0, 100, "invalid");
	check_num_bad("12abc", 0, 100, "invalid");
	check_num_bad("1 ", 0, 100, "invalid");
	check_num_bad("1.5", 0, 100, "invalid");
	check_num_bad("0x10", 0, 100, "invalid");
	check_num_bad("-", 0, 100, "invalid");
	check_num_bad(NULL, 0, 100, "invalid");
}

static void
test_name_valid(void **state)
{
	char	name[70];

	(void)state;
	assert_true(sp_name_valid("a", 64));
	assert_true(sp_name_valid("Root-CA_1.example", 64));
	assert_true(sp_name_valid("0123456789", 64));

	assert_false(sp_name_valid(NULL, 64));
	assert_false(sp_name_valid("", 64));
	assert_false(sp_name_valid("a b", 64));
	assert_false(sp_name_valid("a/b", 64));
	assert_false(sp_name_valid("../etc", 64));
	assert_false(sp_name_valid("a\"b", 64));
	assert_false(sp_name_valid("a\nb", 64));
	assert_false(sp_name_valid("caf\xc3\xa9", 64));
	assert_false(sp_name_valid("a=b", 64));

	/* Exactly max characters pass; one more does not. */
	memset(name, 'x', sizeof(name));
	name[64] = '\0';
	assert_true(sp_name_valid(name, 64));
	name[64] = 'x';
	name[65] = '\0';
	assert_false(sp_name_valid(name, 64));
	assert_false(sp_name_valid("ab", 1));
	assert_true(sp_name_valid("a", 1));
}

/* "." and ".." name directories (S4); other dotted names are fine. */
static void
test_name_valid_dots(void **state)
{
	(void)state;
	assert_false(sp_name_valid(".", 64));
	assert_false(sp_name_valid("..", 64));
	assert_false(sp_name_valid(".", 1));
	assert_false(sp_name_valid("..", 2));
	assert_true(sp_name_valid("...", 64));
	assert_true(sp_name_valid(".a", 64));
	assert_true(sp_name_valid("a.", 64));
	assert_true(sp_name_valid("a..", 64));
	assert_true(sp_name_valid("..a", 64));
	assert_true(sp_name_valid("a.b", 64));
}

/* True if s is well-formed UTF-8 (enough for these tests: 1-4 bytes). */
static int
utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p != '\0') {
		size_t n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 :
		    (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;

		if (n == 0)
			return 0;
		for (size_t i = 1; i < n; i++)
			if ((p[i] & 0xc0) != 0x80)
				return 0;
		p += n;
	}
	return 1;
}

static void
test_utf8_trunc(void **state)
{
	char	buf[16];

	(void)state;
	/* Cut between the two bytes of "é": the whole "é" goes. */
	strcpy(buf, "caf\xc3\xa9!");
	assert_int_equal(sp_utf8_trunc(buf, 4), 3);
	assert_string_equal(buf, "caf");
	/* Cut after it: kept. */
	strcpy(buf, "caf\xc3\xa9!");
	assert_int_equal(sp_utf8_trunc(buf, 5), 5);
	assert_string_equal(buf, "caf\xc3\xa9");
	/* Already cut (as snprintf leaves it): a lone lead byte at the end. */
	strcpy(buf, "caf\xc3");
	assert_int_equal(sp_utf8_trunc(buf, 4), 3);
	assert_string_equal(buf, "caf");
	/* Three- and four-byte characters cut at every inner point. */
	for (size_t k = 1; k < 3; k++) {
		strcpy(buf, "a\xe2\x82\xac");	/* "a€" */
		assert_int_equal(sp_utf8_trunc(buf, 1 + k), 1);
	}
	for (size_t k = 1; k < 4; k++) {
		strcpy(buf, "a\xf0\x9f\x94\x91");	/* "a" U+1F511 */
		assert_int_equal(sp_utf8_trunc(buf, 1 + k), 1);
	}
	strcpy(buf, "a\xf0\x9f\x94\x91");
	assert_int_equal(sp_utf8_trunc(buf, 5), 5);
	/* ASCII and length 0. */
	strcpy(buf, "abcdef");
	assert_int_equal(sp_utf8_trunc(buf, 3), 3);
	assert_string_equal(buf, "abc");
	assert_int_equal(sp_utf8_trunc(buf, 0), 0);
	assert_string_equal(buf, "");
	/* Not UTF-8 (a stray continuation byte run): cut as is. */
	strcpy(buf, "\x80\x80\x80\x80\x80");
	assert_int_equal(sp_utf8_trunc(buf, 4), 4);
}

static void
test_utf8_clean(void **state)
{
	char	buf[32];

	(void)state;
	strcpy(buf, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91");
	assert_int_equal(sp_utf8_clean(buf), 0);
	assert_string_equal(buf, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91");
	/* A name cut inside "é" by a precision ("%.4s"), then more text. */
	strcpy(buf, "caf\xc3\": no");
	assert_int_equal(sp_utf8_clean(buf), 1);
	assert_string_equal(buf, "caf?\": no");
	/* Lone continuation, Latin-1, overlong, surrogate, > U+10FFFF. */
	strcpy(buf, "\xa9\xe9\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80");
	assert_int_equal(sp_utf8_clean(buf), 11);
	assert_string_equal(buf, "???????????");
	/* An incomplete sequence at the end. */
	strcpy(buf, "ab\xe2\x82");
	assert_int_equal(sp_utf8_clean(buf), 2);
	assert_string_equal(buf, "ab??");
}

/* A message cut by the fixed buffer ends on a character boundary. */
static void
test_err_set_truncates_utf8(void **state)
{
	struct sp_err	err = { 0 };
	char		msg[300];
	size_t		cut = sizeof(err.msg) - 1;

	(void)state;
	/* "é" at bytes cut-1, cut: vsnprintf would keep only its lead byte. */
	memset(msg, 'm', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	msg[cut - 1] = '\xc3';
	msg[cut] = '\xa9';
	sp_err_set(&err, SP_ERR_NOTFOUND, "%s", msg);
	assert_int_equal(strlen(err.msg), cut - 1);
	assert_true(utf8_ok(err.msg));

	/* "é" ending exactly at the cut: kept. */
	sp_err_clear(&err);
	msg[cut - 2] = '\xc3';
	msg[cut - 1] = '\xa9';
	msg[cut] = 'm';
	sp_err_set(&err, SP_ERR_NOTFOUND, "%s", msg);
	assert_int_equal(strlen(err.msg), cut);
	assert_true(utf8_ok(err.msg));

	/* A string of "é"s cut at every parity. */
	for (size_t off = 0; off < 2; off++) {
		char	*p = msg;

		sp_err_clear(&err);
		memset(msg, 'x', off);
		p += off;
		while (p + 2 < msg + sizeof(msg)) {
			*p++ = '\xc3';
			*p++ = '\xa9';
		}
		*p = '\0';
		sp_err_set(&err, SP_ERR_NOTFOUND, "ca %s: not found", msg);
		assert_true(utf8_ok(err.msg));
		assert_true(strlen(err.msg) >= cut - 1);
	}

	/* sp_err_ossl() goes through the same path. */
	sp_err_clear(&err);
	ERR_clear_error();
	memset(msg, 'w', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	msg[cut - 1] = '\xc3';
	msg[cut] = '\xa9';
	sp_err_ossl(&err, SP_ERR_CRYPTO, msg);
	assert_int_equal(strlen(err.msg), cut - 1);
	assert_true(utf8_ok(err.msg));
}

/* "%.64s" of a name ending in "é" cuts inside it (the `ca show` case). */
static void
test_err_set_precision_utf8(void **state)
{
	struct sp_err	err = { 0 };
	char		name[80];

	(void)state;
	memset(name, 'n', 63);
	strcpy(name + 63, "\xc3\xa9");
	sp_err_set(&err, SP_ERR_NOTFOUND, "no CA named \"%.64s\"", name);
	assert_true(utf8_ok(err.msg));
	assert_int_equal(strlen(err.msg), strlen("no CA named \"\"") + 64);
	assert_int_equal(err.msg[strlen(err.msg) - 2], '?');
}

static void
test_time(void **state)
{
	char	buf[32];
	time_t	real;

	(void)state;
	sp_time_fmt(0, buf, sizeof(buf));
	assert_string_equal(buf, "1970-01-01T00:00:00Z");
	sp_time_fmt(1795642483, buf, sizeof(buf));
	assert_string_equal(buf, "2026-11-25T21:34:43Z");

	/* The fake clock seam, and returning to the real clock. */
	sp_time_set_fake(1000);
	assert_true(sp_now() == 1000);
	sp_time_set_fake(0);
	real = time(NULL);
	assert_true(sp_now() >= real && sp_now() <= real + 5);
}

static void
test_file_read(void **state)
{
	const char	*dir = *state, *path;
	struct sp_err	 err = { 0 };
	char		*buf = NULL;
	size_t		 len = 99;

	/* Exactly at the limit: read, NUL terminated. */
	path = make_file(dir, "ok", 100, 'a');
	assert_int_equal(sp_file_read(path, 100, &buf, &len, &err), 0);
	assert_non_null(buf);
	assert_int_equal(len, 100);
	assert_int_equal(buf[99], 'a');
	assert_int_equal(buf[100], '\0');
	free(buf);

	/* Empty file. */
	path = make_file(dir, "empty", 0, 'a');
	assert_int_equal(sp_file_read(path, 100, &buf, &len, &err), 0);
	assert_int_equal(len, 0);
	assert_string_equal(buf, "");
	free(buf);
}

static void
test_file_read_limit(void **state)
{
	const char	*dir = *state, *path;
	struct sp_err	 err = { 0 };
	char		*buf = (char *)(uintptr_t)1;
	size_t		 len = 99;

	/* One byte over the limit. */
	path = make_file(dir, "big", 101, 'b');
	assert_int_equal(sp_file_read(path, 100, &buf, &len, &err),
	    SP_ERR_LIMIT);
	assert_null(buf);
	assert_int_equal(len, 0);
	assert_int_equal(err.code, SP_ERR_LIMIT);
	assert_non_null(strstr(err.msg, "100"));

	/* Much larger than the limit. */
	sp_err_clear(&err);
	path = make_file(dir, "huge", 70000, 'c');
	assert_int_equal(sp_file_read(path, 16, &buf, &len, &err),
	    SP_ERR_LIMIT);
	assert_null(buf);

	/* A missing file is an I/O error naming the path. */
	sp_err_clear(&err);
	assert_int_equal(sp_file_read("/nonexistent/sp/file", 100, &buf, &len,
	    &err), SP_ERR_IO);
	assert_null(buf);
	assert_int_equal(err.code, SP_ERR_IO);
	assert_non_null(strstr(err.msg, "/nonexistent/sp/file"));

	/* err is optional. */
	assert_int_equal(sp_file_read("/nonexistent/sp/file", 100, &buf, &len,
	    NULL), SP_ERR_IO);
}

static void
test_file_write(void **state)
{
	const char	*dir = *state;
	char		 path[PATH_MAX], tmp[PATH_MAX + 8], *buf = NULL;
	struct sp_err	 err = { 0 };
	struct stat	 sb;
	size_t		 len = 0;

	snprintf(path, sizeof(path), "%s/out", dir);
	assert_int_equal(sp_file_write(path, "hello", 5, 0600, &err), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(sp_file_read(path, 64, &buf, &len, &err), 0);
	assert_int_equal(len, 5);
	assert_string_equal(buf, "hello");
	free(buf);

	/* Overwrite replaces the content; no temp file is left behind. */
	assert_int_equal(sp_file_write(path, "hi", 2, 0600, &err), 0);
	assert_int_equal(sp_file_read(path, 64, &buf, &len, &err), 0);
	assert_string_equal(buf, "hi");
	free(buf);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	assert_int_not_equal(access(tmp, F_OK), 0);

	/* A directory that does not exist. */
	snprintf(path, sizeof(path), "%s/no/such/dir/out", dir);
	assert_int_equal(sp_file_write(path, "x", 1, 0600, &err), SP_ERR_IO);
	assert_int_equal(err.code, SP_ERR_IO);
}

static void
test_err_set_keeps_first(void **state)
{
	struct sp_err	err;

	(void)state;
	sp_err_clear(&err);
	assert_int_equal(err.code, 0);
	assert_string_equal(err.msg, "");

	/* The return value is always the code passed in. */
	assert_int_equal(sp_err_set(&err, SP_ERR_INVALID, "first %d", 1),
	    SP_ERR_INVALID);
	assert_int_equal(err.code, SP_ERR_INVALID);
	assert_string_equal(err.msg, "first 1");

	/* The innermost (first) message and its code are kept. */
	assert_int_equal(sp_err_set(&err, SP_ERR_POLICY, "second"),
	    SP_ERR_POLICY);
	assert_int_equal(err.code, SP_ERR_INVALID);
	assert_string_equal(err.msg, "first 1");

	/* A code without a message is replaced by one with a message. */
	sp_err_clear(&err);
	err.code = SP_ERR_DB;
	assert_int_equal(sp_err_set(&err, SP_ERR_IO, "disk: %s", "full"),
	    SP_ERR_IO);
	assert_int_equal(err.code, SP_ERR_IO);
	assert_string_equal(err.msg, "disk: full");

	/* NULL err is allowed. */
	assert_int_equal(sp_err_set(NULL, SP_ERR_STATE, "x"), SP_ERR_STATE);
	sp_err_clear(NULL);
}

static void
test_err_set_truncates(void **state)
{
	struct sp_err	err = { 0 };
	char		long_msg[600];

	(void)state;
	memset(long_msg, 'm', sizeof(long_msg) - 1);
	long_msg[sizeof(long_msg) - 1] = '\0';
	sp_err_set(&err, SP_ERR_INVALID, "%s", long_msg);
	assert_int_equal(strlen(err.msg), sizeof(err.msg) - 1);
}

static void
test_err_ossl(void **state)
{
	struct sp_err		 err = { 0 };
	const unsigned char	*p = (const unsigned char *)"\x30\x03\x02";
	X509			*x;

	(void)state;
	/* Put a real error on OpenSSL's queue. */
	ERR_clear_error();
	x = d2i_X509(NULL, &p, 3);
	assert_null(x);
	assert_int_not_equal(ERR_peek_error(), 0);
	assert_int_equal(sp_err_ossl(&err, SP_ERR_CRYPTO, "parse"),
	    SP_ERR_CRYPTO);
	assert_int_equal(err.code, SP_ERR_CRYPTO);
	assert_true(strncmp(err.msg, "parse: ", 7) == 0);
	/* The queue was drained. */
	assert_int_equal(ERR_peek_error(), 0);

	/* Empty queue: a generic message. */
	sp_err_clear(&err);
	assert_int_equal(sp_err_ossl(&err, SP_ERR_CRYPTO, "sign"),
	    SP_ERR_CRYPTO);
	assert_string_equal(err.msg, "sign failed");
}

static void
test_rc_str(void **state)
{
	(void)state;
	assert_string_equal(sp_rc_str(SP_OK), "ok");
	assert_string_equal(sp_rc_str(SP_ERR_INTERNAL), "internal");
	assert_string_equal(sp_rc_str(SP_ERR_ALLOC), "alloc");
	assert_string_equal(sp_rc_str(SP_ERR_INVALID), "invalid");
	assert_string_equal(sp_rc_str(SP_ERR_NOTFOUND), "not_found");
	assert_string_equal(sp_rc_str(SP_ERR_EXISTS), "exists");
	assert_string_equal(sp_rc_str(SP_ERR_CRYPTO), "crypto");
	assert_string_equal(sp_rc_str(SP_ERR_DB), "database");
	assert_string_equal(sp_rc_str(SP_ERR_IO), "io");
	assert_string_equal(sp_rc_str(SP_ERR_DENIED), "denied");
	assert_string_equal(sp_rc_str(SP_ERR_STATE), "state");
	assert_string_equal(sp_rc_str(SP_ERR_PIN), "pin");
	assert_string_equal(sp_rc_str(SP_ERR_POLICY), "policy");
	assert_string_equal(sp_rc_str(SP_ERR_LIMIT), "limit");
	/* Out of range in both directions. */
	assert_string_equal(sp_rc_str(SP_ERR__MAX), "unknown");
	assert_string_equal(sp_rc_str(-100), "unknown");
	assert_string_equal(sp_rc_str(1), "unknown");
	assert_string_equal(sp_rc_str(INT_MIN), "unknown");
	assert_string_equal(sp_rc_str(INT_MAX), "unknown");
	/* Every code in range has a distinct name. */
	for (int a = SP_OK; a > SP_ERR__MAX; a--)
		for (int b = a - 1; b > SP_ERR__MAX; b--)
			assert_string_not_equal(sp_rc_str(a), sp_rc_str(b));
}

static void
test_freezero(void **state)
{
	char	*p;

	(void)state;
	sp_freezero(NULL, 10);
	assert_non_null(p = strdup("secret"));
	sp_freezero(p, strlen(p) + 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hex_encode),
		cmocka_unit_test(test_hex_decode),
		cmocka_unit_test(test_hex_decode_bad),
		cmocka_unit_test(test_strtonum),
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_time),
		cmocka_unit_test_setup_teardown(test_file_read, setup_dir,
		    teardown_dir),
		cmocka_unit_test_setup_teardown(test_file_read_limit,
		    setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_file_write, setup_dir,
		    teardown_dir),
		cmocka_unit_test(test_err_set_keeps_first),
		cmocka_unit_test(test_err_set_truncates),
		cmocka_unit_test(test_err_set_truncates_utf8),
		cmocka_unit_test(test_utf8_trunc),
		cmocka_unit_test(test_utf8_clean),
		cmocka_unit_test(test_err_set_precision_utf8),
		cmocka_unit_test(test_name_valid_dots),
		cmocka_unit_test(test_err_ossl),
		cmocka_unit_test(test_rc_str),
		cmocka_unit_test(test_freezero),
	};

	return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
