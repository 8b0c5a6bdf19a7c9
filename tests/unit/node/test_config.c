/* Unit tests: the bootstrap configuration parser. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "node/config.h"

static char	path[64];

static int
load(const char *text, struct config *c, struct sp_err *err)
{
	FILE	*f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	sp_err_clear(err);
	return config_load(path, c, err);
}

static void	expect_error(const char *, const char *, const char *);

static void
test_good(void **state)
{
	struct config	c;
	struct sp_err	err;

	(void)state;
	assert_int_equal(load("[node]\nname = ca1\nlog_level = debug\n"
	    "database = /var/lib/sp.db\nworkers = 4\n", &c, &err), 0);
	assert_string_equal(c.name, "ca1");
	assert_int_equal(c.log_level, LOG_LVL_DEBUG);
	assert_string_equal(c.database, "/var/lib/sp.db");
	assert_int_equal(c.workers, 4);
	/* Defaults. */
	assert_int_equal(load("[node]\nname = a\ndatabase = /x.db\n", &c,
	    &err), 0);
	assert_int_equal(c.workers, 2);
	assert_int_equal(c.log_level, LOG_LVL_INFO);
	assert_true(c.incoming_max == 0 && c.crl_keep == 0);
	/* The bounds on stored state. */
	assert_int_equal(load("[node]\nname = a\ndatabase = /x.db\n"
	    "[peer]\nincoming_max = 500\n[ca]\ncrl_keep = 4\n", &c, &err), 0);
	assert_true(c.incoming_max == 500);
	assert_true(c.crl_keep == 4);
	/* The peer listener's bounds (0: the defaults in peer.h). */
	assert_true(c.max_connections == 0 && c.head_timeout == 0);
	assert_int_equal(load("[node]\nname = a\ndatabase = /x.db\n"
	    "[peer]\nmax_connections = 200\nmax_connections_per_address = 8\n"
	    "handshake_timeout = 5\nhead_timeout = 7\n", &c, &err), 0);
	assert_int_equal(c.max_connections, 200);
	assert_int_equal(c.max_connections_per_address, 8);
	assert_int_equal(c.handshake_timeout, 5);
	assert_int_equal(c.head_timeout, 7);
	/* The VA's client listener. */
	assert_string_equal(c.va_listen, "");
	assert_int_equal(load("[node]\nname = a\ndatabase = /x.db\n"
	    "[va]\nlisten = 127.0.0.1:8080\n", &c, &err), 0);
	assert_string_equal(c.va_listen, "127.0.0.1:8080");
	expect_error("[node]\nname = a\ndatabase = /x.db\n"
	    "[va]\nlisten = nope\n", ":5:", "HOST:PORT");
}

static void
expect_error(const char *text, const char *line, const char *what)
{
	struct config	c;
	struct sp_err	err;

	assert_int_equal(load(text, &c, &err), SP_ERR_INVALID);
	assert_non_null(strstr(err.msg, path));
	if (line != NULL)
		assert_non_null(strstr(err.msg, line));
	assert_non_null(strstr(err.msg, what));
}

static void
test_errors(void **state)
{
	(void)state;
	expect_error("[node]\nname = a\ndatabase = /x\nfoo = 1\n", ":4:",
	    "unknown key \"foo\"");
	expect_error("[node]\nname = a\nname = b\n", ":3:", "duplicate");
	expect_error("[node]\nname = a\nlog_level = loud\n", ":3:",
	    "log_level");
	expect_error("[node]\nname = a\ndatabase = rel/x.db\n", ":3:",
	    "absolute");
	expect_error("[node]\nname = a\ndatabase = /x\nworkers = 0\n", ":4:",
	    "too small");
	expect_error("[node]\nname = a\ndatabase = /x\nworkers = 2x\n", ":4:",
	    "invalid");
	expect_error("[node]\nname = a b\n", ":2:", "name");
	expect_error("[other]\nname = a\n", ":1:", "[other]");
	expect_error("[node]\ndatabase = /x\n", NULL, "missing required key "
	    "\"name\"");
	expect_error("[node\nname = a\n", ":1:", "syntax");
	expect_error("[node]\nname = a\ndatabase = /x\n[bogus]\n", ":4:",
	    "unknown section [bogus]");
	expect_error("[bogus]\nname = a\n", ":1:", "unknown section");
	expect_error("[node]\nname = a\ndatabase = /x\n[peer]\n"
	    "incoming_max = 5\n", ":5:", "incoming_max is too small");
	expect_error("[node]\nname = a\ndatabase = /x\n[ca]\n"
	    "crl_keep = 0\n", ":5:", "crl_keep is too small");
	expect_error("[node]\nname = a\ndatabase = /x\n[peer]\n"
	    "max_connections = 0\n", ":5:", "max_connections is too small");
	expect_error("[node]\nname = a\ndatabase = /x\n[peer]\n"
	    "head_timeout = 301\n", ":5:", "head_timeout is too large");
	expect_error("[node]\nname = a\ndatabase = /x\n[peer]\n"
	    "handshake_timeout = 1\nhandshake_timeout = 2\n", ":6:",
	    "duplicate key");
}

static void
test_missing_file(void **state)
{
	struct config	c;
	struct sp_err	err = { 0 };

	(void)state;
	assert_int_equal(config_load("/nonexistent/sallyport.conf", &c, &err),
	    SP_ERR_IO);
	assert_non_null(strstr(err.msg, "/nonexistent/sallyport.conf"));
}

static void
test_write_new(void **state)
{
	struct config	c;
	struct sp_err	err = { 0 };

	(void)state;
	assert_int_equal(config_write_new(path, "node-1", "/tmp/n.db", NULL, NULL,
	    &err),
	    0);
	assert_int_equal(config_load(path, &c, &err), 0);
	assert_string_equal(c.name, "node-1");
	assert_string_equal(c.database, "/tmp/n.db");
	assert_string_equal(c.va_listen, "");
	assert_int_equal(config_write_new(path, "node-1", "/tmp/n.db",
	    "127.0.0.1:0", "127.0.0.1:8080", &err), 0);
	assert_int_equal(config_load(path, &c, &err), 0);
	assert_string_equal(c.peer_listen, "127.0.0.1:0");
	assert_string_equal(c.va_listen, "127.0.0.1:8080");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_write_new),
	};
	int	r;

	snprintf(path, sizeof(path), "/tmp/test_config.%d", (int)getpid());
	r = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(path);
	return r;
}
