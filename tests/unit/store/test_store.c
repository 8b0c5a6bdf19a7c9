/*
 * Unit tests for store/store.c on a SQLite file in a temporary directory:
 * schema, tokens, CAs, profiles, certificate lifecycle, CRLs,
 * transactions and the hash-chained audit log (including tampering done
 * behind the store's back with sqlite3 directly).
 */
#include <sys/stat.h>

#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <sqlite3.h>

#include "store/store.h"
#include "util/err.h"

struct fixture {
	char		 dir[64];
	char		 path[128];
	struct store	*st;
};

static int
rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static int
setup(void **state)
{
	struct fixture	*fx;
	struct sp_err	 err = { 0 };

	if ((fx = calloc(1, sizeof(*fx))) == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/sp_test_store.XXXXXX");
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->path, sizeof(fx->path), "%s/store.db", fx->dir);
	if (store_open(fx->path, &fx->st, &err) != 0) {
		fprintf(stderr, "store_open: %s\n", err.msg);
		nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		free(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;
	int		 r;

	store_close(fx->st);
	r = nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return r == 0 ? 0 : -1;
}

/* Closes and re-opens the store on the same file. */
static void
reopen(struct fixture *fx)
{
	struct sp_err	err = { 0 };

	store_close(fx->st);
	fx->st = NULL;
	if (store_open(fx->path, &fx->st, &err) != 0)
		print_error("store_open: %s\n", err.msg);
	assert_non_null(fx->st);
}

#define OK_OPEN(x) do {						\
	if ((x) != 0)							\
		print_error("%s: %s\n", #x, err.msg);			\
	assert_non_null(st);						\
} while (0)

/* Runs SQL on the database file with a separate sqlite3 connection. */
static void
raw_sql(const struct fixture *fx, const char *sql)
{
	sqlite3	*db = NULL;
	char	*msg = NULL;

	assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		print_error("%s: %s\n", sql, msg);
		sqlite3_free(msg);
		sqlite3_close(db);
		fail();
	}
	sqlite3_close(db);
}

/* One integer from a query on the database file. */
static long long
raw_int(const struct fixture *fx, const char *sql)
{
	sqlite3		*db = NULL;
	sqlite3_stmt	*s = NULL;
	long long	 v;

	assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

static int64_t
add_ca(struct store *st, const char *name, int64_t issuer)
{
	static const unsigned char	cert[] = { 0x30, 0x00 };
	struct store_ca			ca = { 0 };
	struct sp_err			err = { 0 };
	int64_t				id = 0;

	ca.name = name;
	ca.subject = "CN=test";
	ca.token = "tok";
	ca.key_alias = "key";
	ca.issuer_id = issuer;
	ca.cert = cert;
	ca.certlen = sizeof(cert);
	ca.crl_period = 3600;
	ca.next_crl = 1000;
	if (store_ca_insert(st, NULL, &ca, &id, &err) != 0)
		print_error("store_ca_insert: %s\n", err.msg);
	assert_true(id > 0);
	return id;
}

/* Reserves a certificate with a fixed TBS; returns the row id. */
static int
reserve(struct store *st, struct store_txn *tx, int64_t ca_id,
    const char *serial, int64_t *id, struct sp_err *err)
{
	static const unsigned char	tbs[] = "TBS";
	struct store_cert		c = { 0 };

	c.ca_id = ca_id;
	c.serial = serial;
	c.subject = "CN=leaf";
	c.profile = "TLS_SERVER";
	c.not_before = 100;
	c.not_after = 200;
	c.der = tbs;
	c.derlen = 3;
	return store_cert_reserve(st, tx, &c, id, err);
}

static int64_t
reserve_ok(struct store *st, struct store_txn *tx, int64_t ca_id,
    const char *serial)
{
	struct sp_err	err = { 0 };
	int64_t		id = 0;

	if (reserve(st, tx, ca_id, serial, &id, &err) != 0)
		print_error("reserve %s: %s\n", serial, err.msg);
	assert_true(id > 0);
	return id;
}

/* --- schema --------------------------------------------------------------- */

static void
test_open_schema(void **state)
{
	struct fixture	*fx = *state;

	assert_int_equal(store_schema_version(fx->st), STORE_USER_VERSION);
	assert_int_equal(raw_int(fx, "PRAGMA user_version"),
	    STORE_USER_VERSION);
	/* Every module of the binary is recorded at its last version. */
	for (size_t i = 0; store_schemas[i] != NULL; i++)
		assert_int_equal(store_module_version(fx->st,
		    store_schemas[i]->module), (int)store_schemas[i]->count);
	assert_int_equal(store_module_version(fx->st, "nosuch"), 0);
	{
		int64_t	n = 0;

		while (store_schemas[n] != NULL)
			n++;
		assert_int_equal(raw_int(fx, "SELECT count(*) FROM "
		    "schema_versions"), n);
	}
	/* The audit head starts empty. */
	assert_int_equal(raw_int(fx, "SELECT count(*) FROM meta WHERE "
	    "key = 'audit_head' AND value = '0:'"), 1);
	/* Re-opening an up-to-date database migrates nothing. */
	reopen(fx);
	assert_int_equal(store_schema_version(fx->st), STORE_USER_VERSION);
	assert_int_equal(raw_int(fx, "SELECT count(*) FROM meta WHERE "
	    "key = 'audit_head'"), 1);
}

static void
test_open_newer_refused(void **state)
{
	struct fixture	*fx = *state;
	struct store	*st = (struct store *)(uintptr_t)1;
	struct sp_err	 err = { 0 };
	char		 sql[64];

	store_close(fx->st);
	fx->st = NULL;
	raw_sql(fx, "PRAGMA user_version = 101");
	assert_int_equal(store_open(fx->path, &st, &err), SP_ERR_DB);
	assert_null(st);
	assert_non_null(strstr(err.msg, "newer"));
	/* Too old to convert. */
	sp_err_clear(&err);
	raw_sql(fx, "PRAGMA user_version = 2");
	assert_int_equal(store_open(fx->path, &st, &err), SP_ERR_DB);
	assert_null(st);
	assert_non_null(strstr(err.msg, "too old"));
	/* Put it back so that teardown has a store to close. */
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
	    STORE_USER_VERSION);
	raw_sql(fx, sql);
	reopen(fx);
	assert_int_equal(store_schema_version(fx->st), STORE_USER_VERSION);
}

/* --- per-module migrations ------------------------------------------------ */

static const char *const mod_a_v1[] = {
	"CREATE TABLE a1 (x INTEGER NOT NULL);"
	"INSERT INTO a1 VALUES (1);",
	"ALTER TABLE a1 ADD COLUMN y INTEGER NOT NULL DEFAULT 0;"
	"UPDATE a1 SET y = x + 1;",
	/* Runs only after the two above: it needs column y. */
	"CREATE TABLE a2 AS SELECT y AS z FROM a1;",
};
static const char *const mod_b_v1[] = {
	"CREATE TABLE b1 (k TEXT PRIMARY KEY);",
	"THIS IS NOT SQL;",
};

static void
test_module_migrations_in_order(void **state)
{
	struct fixture			*fx = *state;
	struct store_schema		 a = { "mod_a", mod_a_v1, 1, 0 };
	struct store_schema		 b = { "mod_b", mod_b_v1, 1, 0 };
	const struct store_schema	*list[16];
	struct store			*st = NULL;
	struct sp_err			 err = { 0 };
	size_t				 n = 0;

	for (; store_schemas[n] != NULL; n++)
		list[n] = store_schemas[n];
	list[n] = &a;
	list[n + 1] = &b;
	list[n + 2] = NULL;
	store_close(fx->st);
	fx->st = NULL;
	/* Version 1 of each. */
	OK_OPEN(store_open_schemas(fx->path, list, &st, &err));
	assert_int_equal(store_module_version(st, "mod_a"), 1);
	assert_int_equal(store_module_version(st, "mod_b"), 1);
	store_close(st);
	/* A later binary: a has two more, applied in order. */
	a.count = 3;
	OK_OPEN(store_open_schemas(fx->path, list, &st, &err));
	assert_int_equal(store_module_version(st, "mod_a"), 3);
	store_close(st);
	assert_int_equal(raw_int(fx, "SELECT z FROM a2"), 2);
	/* A failing migration leaves its module where it was, and rolls
	 * back its own transaction. */
	b.count = 2;
	assert_int_equal(store_open_schemas(fx->path, list, &st, &err),
	    SP_ERR_DB);
	assert_null(st);
	assert_int_equal(raw_int(fx, "SELECT version FROM schema_versions "
	    "WHERE module = 'mod_b'"), 1);
	/* The database knows a newer mod_a than this "binary": refused,
	 * before anything else runs. */
	b.count = 1;
	a.count = 2;
	raw_sql(fx, "DELETE FROM schema_versions WHERE module = 'ca'");
	sp_err_clear(&err);
	assert_int_equal(store_open_schemas(fx->path, list, &st, &err),
	    SP_ERR_DB);
	assert_null(st);
	assert_non_null(strstr(err.msg, "mod_a"));
	assert_non_null(strstr(err.msg, "newer"));
	assert_int_equal(raw_int(fx, "SELECT count(*) FROM schema_versions "
	    "WHERE module = 'ca'"), 0);
	raw_sql(fx, "INSERT INTO schema_versions VALUES ('ca', 1)");
	/* A module the binary does not know is left alone. */
	a.count = 3;
	list[n + 1] = NULL;
	OK_OPEN(store_open_schemas(fx->path, list, &st, &err));
	store_close(st);
	assert_int_equal(raw_int(fx, "SELECT version FROM schema_versions "
	    "WHERE module = 'mod_b'"), 1);
	/* The same module twice is a programming error. */
	list[n + 1] = &a;
	list[n + 2] = NULL;
	assert_int_equal(store_open_schemas(fx->path, list, &st, &err),
	    SP_ERR_INTERNAL);
	reopen(fx);
}

/*
 * The schema as the single-migration-list store (user_version 3) made it,
 * verbatim from the last release that had it.
 */
static const char legacy_v3[] =
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE tokens (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
	"  verifier TEXT NOT NULL, created INTEGER NOT NULL);"
	"CREATE TABLE token_keys (token_id INTEGER NOT NULL REFERENCES tokens,"
	"  alias TEXT NOT NULL, alg INTEGER NOT NULL, wrapped BLOB NOT NULL,"
	"  spki BLOB NOT NULL, created INTEGER NOT NULL,"
	"  PRIMARY KEY (token_id, alias));"
	"CREATE TABLE cas (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
	"  subject TEXT NOT NULL, token TEXT NOT NULL, key_alias TEXT NOT NULL,"
	"  issuer_id INTEGER REFERENCES cas, cert BLOB NOT NULL,"
	"  crl_period INTEGER NOT NULL, crl_number INTEGER NOT NULL,"
	"  next_crl INTEGER NOT NULL, created INTEGER NOT NULL);"
	"CREATE TABLE profiles (name TEXT PRIMARY KEY, json TEXT NOT NULL,"
	"  builtin INTEGER NOT NULL);"
	"CREATE TABLE certs (id INTEGER PRIMARY KEY,"
	"  ca_id INTEGER NOT NULL REFERENCES cas, serial TEXT NOT NULL,"
	"  status INTEGER NOT NULL, subject TEXT NOT NULL, profile TEXT NOT NULL,"
	"  not_before INTEGER NOT NULL, not_after INTEGER NOT NULL,"
	"  revoked_at INTEGER NOT NULL DEFAULT 0,"
	"  reason INTEGER NOT NULL DEFAULT -1,"
	"  fingerprint TEXT NOT NULL DEFAULT '', der BLOB NOT NULL,"
	"  created INTEGER NOT NULL, UNIQUE (ca_id, serial));"
	"CREATE INDEX certs_status ON certs (ca_id, status);"
	"CREATE TABLE crls (ca_id INTEGER NOT NULL REFERENCES cas,"
	"  number INTEGER NOT NULL, this_update INTEGER NOT NULL,"
	"  next_update INTEGER NOT NULL, der BLOB NOT NULL,"
	"  PRIMARY KEY (ca_id, number));"
	"CREATE TABLE audit (seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL,"
	"  event TEXT NOT NULL, actor TEXT NOT NULL, details TEXT NOT NULL,"
	"  prev TEXT NOT NULL, hash TEXT NOT NULL);"
	"INSERT INTO meta VALUES ('audit_head', '0:');"
	"CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE keybindings (id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE, type TEXT NOT NULL, token TEXT NOT NULL,"
	"  key_alias TEXT NOT NULL, cert BLOB, chain BLOB,"
	"  created INTEGER NOT NULL);"
	"CREATE TABLE trust (fingerprint TEXT PRIMARY KEY, subject TEXT NOT NULL,"
	"  cert BLOB NOT NULL, added INTEGER NOT NULL);"
	"CREATE TABLE roles (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
	"  created INTEGER NOT NULL);"
	"CREATE TABLE role_members (role_id INTEGER NOT NULL REFERENCES roles"
	"  ON DELETE CASCADE, match TEXT NOT NULL, value TEXT NOT NULL,"
	"  issuer TEXT NOT NULL DEFAULT '',"
	"  PRIMARY KEY (role_id, match, value, issuer));"
	"CREATE TABLE role_rules (role_id INTEGER NOT NULL REFERENCES roles"
	"  ON DELETE CASCADE, path TEXT NOT NULL, allow INTEGER NOT NULL,"
	"  recursive INTEGER NOT NULL, PRIMARY KEY (role_id, path));"
	"CREATE TABLE incoming (id INTEGER PRIMARY KEY,"
	"  fingerprint TEXT NOT NULL UNIQUE, subject TEXT NOT NULL,"
	"  issuer TEXT NOT NULL, serial TEXT NOT NULL, address TEXT NOT NULL,"
	"  first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,"
	"  count INTEGER NOT NULL, role TEXT NOT NULL DEFAULT '');"
	"CREATE TABLE connectors (id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE, url TEXT NOT NULL,"
	"  enabled INTEGER NOT NULL, auth TEXT NOT NULL,"
	"  max_conns INTEGER NOT NULL, created INTEGER NOT NULL);"
	"CREATE TABLE trust_crls (issuer TEXT PRIMARY KEY,"
	"  number INTEGER NOT NULL, this_update INTEGER NOT NULL,"
	"  next_update INTEGER NOT NULL, der BLOB NOT NULL,"
	"  added INTEGER NOT NULL);"
	"PRAGMA user_version = 3;";

static void
test_open_legacy_v3(void **state)
{
	struct fixture	*fx = *state;
	struct sp_err	 err = { 0 };
	int64_t		 id = 0;

	store_close(fx->st);
	fx->st = NULL;
	assert_int_equal(remove(fx->path), 0);
	raw_sql(fx, legacy_v3);
	raw_sql(fx, "INSERT INTO tokens VALUES (7, 'old', 'v', 1);"
	    "INSERT INTO settings VALUES ('k', 'v');");
	reopen(fx);
	assert_int_equal(raw_int(fx, "PRAGMA user_version"),
	    STORE_USER_VERSION);
	/*
	 * Modules the old database had are recorded at their legacy version
	 * (nothing re-run) and migrated on from there; a module it did not
	 * have (legacy 0, as va) was created by its migrations. Either way
	 * every module ends at its latest version.
	 */
	for (size_t i = 0; store_schemas[i] != NULL; i++)
		assert_int_equal(store_module_version(fx->st,
		    store_schemas[i]->module), (int)store_schemas[i]->count);
	/* The rows are the old ones, and the tables work. */
	assert_int_equal(raw_int(fx, "SELECT id FROM tokens WHERE "
	    "name = 'old'"), 7);
	assert_int_equal(store_token_insert(fx->st, NULL, "new", "v", &id, &err), 0);
	assert_int_equal(id, 8);
	assert_int_equal(store_audit_append(fx->st, NULL, "e", "a", "{}", &err), 0);
	/* A second open converts nothing. */
	reopen(fx);
	{
		int64_t	n = 0;

		while (store_schemas[n] != NULL)
			n++;
		assert_int_equal(raw_int(fx, "SELECT count(*) FROM "
		    "schema_versions"), n);
	}
}

static void
test_open_bad_path(void **state)
{
	struct store	*st = (struct store *)(uintptr_t)1;
	struct sp_err	 err = { 0 };

	(void)state;
	assert_int_equal(store_open("/nonexistent/dir/store.db", &st, &err),
	    SP_ERR_DB);
	assert_null(st);
	assert_int_equal(err.code, SP_ERR_DB);
	store_close(NULL);
}

static int
count_cb(const void *row, void *arg)
{
	(void)row;
	(*(int *)arg)++;
	return 0;
}

static int
count_tok(const struct store_token *t, void *arg)
{
	return count_cb(t, arg);
}

static int
count_cert(const struct store_cert *c, void *arg)
{
	return count_cb(c, arg);
}

static int
count_ca(const struct store_ca *c, void *arg)
{
	return count_cb(c, arg);
}

static int
count_prof(const struct store_profile *p, void *arg)
{
	return count_cb(p, arg);
}

static void
test_reopen_keeps_data(void **state)
{
	struct fixture		*fx = *state;
	struct sp_err		 err = { 0 };
	struct store_profile	 p = { "P1", "{}", false };
	struct store_audit_report rep;
	int64_t			 tid, ca;
	int			 n;

	assert_int_equal(store_token_insert(fx->st, NULL, "t1", "v1", &tid, &err),
	    0);
	ca = add_ca(fx->st, "root", 0);
	reserve_ok(fx->st, NULL, ca, "0a");
	assert_int_equal(store_profile_put(fx->st, NULL, &p, &err), 0);
	assert_int_equal(store_audit_append(fx->st, NULL, "e", "a", "{}", &err), 0);
	reopen(fx);

	n = 0;
	assert_int_equal(store_token_foreach(fx->st, NULL, count_tok, &n), 0);
	assert_int_equal(n, 1);
	n = 0;
	assert_int_equal(store_ca_foreach(fx->st, NULL, count_ca, &n), 0);
	assert_int_equal(n, 1);
	n = 0;
	assert_int_equal(store_profile_foreach(fx->st, NULL, count_prof, &n), 0);
	assert_int_equal(n, 1);
	n = 0;
	assert_int_equal(store_cert_foreach(fx->st, NULL,
	    &(struct store_cert_filter){ 0, -1, 0 }, count_cert, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_audit_verify(fx->st, NULL, &rep, &err), 0);
	assert_int_equal(rep.rows, 1);
}

/* --- tokens --------------------------------------------------------------- */

struct tok_seen {
	int	n;
	char	names[4][16];
	char	verifiers[4][16];
	int64_t	ids[4];
};

static int
tok_cb(const struct store_token *t, void *arg)
{
	struct tok_seen	*s = arg;

	assert_true(s->n < 4);
	snprintf(s->names[s->n], sizeof(s->names[0]), "%s", t->name);
	snprintf(s->verifiers[s->n], sizeof(s->verifiers[0]), "%s",
	    t->verifier);
	s->ids[s->n++] = t->id;
	return 0;
}

static int
stop_cb(const struct store_token *t, void *arg)
{
	(void)t;
	(*(int *)arg)++;
	return 7;
}

static void
test_tokens(void **state)
{
	struct fixture	*fx = *state;
	struct sp_err	 err = { 0 };
	struct tok_seen	 seen = { 0 };
	int64_t		 a = 0, b = 0, c = 0;
	int		 calls = 0;

	assert_int_equal(store_token_insert(fx->st, NULL, "zeta", "vz", &a, &err),
	    0);
	assert_int_equal(store_token_insert(fx->st, NULL, "alpha", "va", &b, &err),
	    0);
	assert_true(a > 0 && b > 0 && a != b);

	/* Listed by name. */
	assert_int_equal(store_token_foreach(fx->st, NULL, tok_cb, &seen), 0);
	assert_int_equal(seen.n, 2);
	assert_string_equal(seen.names[0], "alpha");
	assert_string_equal(seen.verifiers[0], "va");
	assert_true(seen.ids[0] == b);
	assert_string_equal(seen.names[1], "zeta");
	assert_true(seen.ids[1] == a);

	/* A duplicate name. */
	assert_int_equal(store_token_insert(fx->st, NULL, "zeta", "other", &c, &err),
	    SP_ERR_EXISTS);
	assert_int_equal(err.code, SP_ERR_EXISTS);
	assert_true(c == 0);

	/* A callback's non-zero return stops the walk and is returned. */
	assert_int_equal(store_token_foreach(fx->st, NULL, stop_cb, &calls), 7);
	assert_int_equal(calls, 1);
}

struct key_seen {
	int	n;
	int64_t	token[4];
	char	alias[4][16];
	int	alg[4];
	size_t	wlen[4], spkilen[4];
	int	wrapped_ok[4];
};

static int
key_cb(const struct store_token_key *k, void *arg)
{
	struct key_seen	*s = arg;

	assert_true(s->n < 4);
	s->token[s->n] = k->token_id;
	snprintf(s->alias[s->n], sizeof(s->alias[0]), "%s", k->alias);
	s->alg[s->n] = k->alg;
	s->wlen[s->n] = k->wlen;
	s->spkilen[s->n] = k->spkilen;
	s->wrapped_ok[s->n] = k->wlen == 4 &&
	    memcmp(k->wrapped, "\x01\x00\x02\xff", 4) == 0;
	s->n++;
	return 0;
}

static void
test_token_keys(void **state)
{
	struct fixture		*fx = *state;
	struct sp_err		 err = { 0 };
	struct key_seen		 seen = { 0 };
	struct store_token_key	 k = { 0 };
	int64_t			 t1, t2;

	assert_int_equal(store_token_insert(fx->st, NULL, "t1", "v", &t1, &err), 0);
	assert_int_equal(store_token_insert(fx->st, NULL, "t2", "v", &t2, &err), 0);
	k.token_id = t1;
	k.alias = "k1";
	k.alg = 3;
	k.wrapped = (const unsigned char *)"\x01\x00\x02\xff";
	k.wlen = 4;
	k.spki = (const unsigned char *)"SPKI";
	k.spkilen = 4;
	assert_int_equal(store_token_key_insert(fx->st, NULL, &k, &err), 0);
	/* The same alias in another token is fine... */
	k.token_id = t2;
	assert_int_equal(store_token_key_insert(fx->st, NULL, &k, &err), 0);
	/* ...but not twice in one token. */
	assert_int_equal(store_token_key_insert(fx->st, NULL, &k, &err),
	    SP_ERR_EXISTS);
	/* A key for a token that does not exist violates the schema. */
	sp_err_clear(&err);
	k.token_id = t2 + 100;
	k.alias = "k9";
	assert_int_equal(store_token_key_insert(fx->st, NULL, &k, &err), SP_ERR_DB);

	assert_int_equal(store_token_key_foreach(fx->st, NULL, key_cb, &seen), 0);
	assert_int_equal(seen.n, 2);
	assert_true(seen.token[0] == t1);
	assert_string_equal(seen.alias[0], "k1");
	assert_int_equal(seen.alg[0], 3);
	assert_true(seen.wrapped_ok[0]);	/* binary, NUL included */
	assert_int_equal(seen.spkilen[0], 4);
	assert_true(seen.token[1] == t2);

	/* Delete, and delete what is not there. */
	assert_int_equal(store_token_key_delete(fx->st, NULL, t1, "k1", &err), 0);
	sp_err_clear(&err);
	assert_int_equal(store_token_key_delete(fx->st, NULL, t1, "k1", &err),
	    SP_ERR_NOTFOUND);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_token_key_foreach(fx->st, NULL, key_cb, &seen), 0);
	assert_int_equal(seen.n, 1);
	assert_true(seen.token[0] == t2);
}

/* --- CAs and profiles ----------------------------------------------------- */

struct ca_seen {
	int		n;
	char		name[4][16];
	int64_t		issuer[4];
	int64_t		crl_number[4];
	time_t		next_crl[4];
	size_t		certlen[4];
};

static int
ca_cb(const struct store_ca *c, void *arg)
{
	struct ca_seen	*s = arg;

	assert_true(s->n < 4);
	snprintf(s->name[s->n], sizeof(s->name[0]), "%s", c->name);
	s->issuer[s->n] = c->issuer_id;
	s->crl_number[s->n] = c->crl_number;
	s->next_crl[s->n] = c->next_crl;
	s->certlen[s->n] = c->certlen;
	s->n++;
	return 0;
}

static void
test_cas(void **state)
{
	struct fixture	*fx = *state;
	struct sp_err	 err = { 0 };
	struct ca_seen	 seen = { 0 };
	struct store_ca	 dup = { 0 };
	int64_t		 root, sub, num = 0, id = 0;

	root = add_ca(fx->st, "root", 0);
	sub = add_ca(fx->st, "sub", root);
	assert_int_equal(store_ca_foreach(fx->st, NULL, ca_cb, &seen), 0);
	assert_int_equal(seen.n, 2);
	assert_string_equal(seen.name[0], "root");
	assert_true(seen.issuer[0] == 0);
	assert_string_equal(seen.name[1], "sub");
	assert_true(seen.issuer[1] == root);
	assert_true(seen.crl_number[0] == 0);
	assert_int_equal(seen.certlen[0], 2);

	/* CRL numbers count up per CA and the due time moves. */
	assert_int_equal(store_ca_next_crl(fx->st, NULL, root, 5000, &num, &err), 0);
	assert_true(num == 1);
	assert_int_equal(store_ca_next_crl(fx->st, NULL, root, 6000, &num, &err), 0);
	assert_true(num == 2);
	assert_int_equal(store_ca_next_crl(fx->st, NULL, sub, 7000, &num, &err), 0);
	assert_true(num == 1);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_ca_foreach(fx->st, NULL, ca_cb, &seen), 0);
	assert_true(seen.crl_number[0] == 2 && seen.next_crl[0] == 6000);
	assert_true(seen.crl_number[1] == 1 && seen.next_crl[1] == 7000);
	sp_err_clear(&err);
	assert_int_equal(store_ca_next_crl(fx->st, NULL, sub + 50, 1, &num, &err),
	    SP_ERR_NOTFOUND);

	/* Names are unique. */
	dup.name = "root";
	dup.subject = dup.token = dup.key_alias = "x";
	dup.cert = (const unsigned char *)"x";
	dup.certlen = 1;
	sp_err_clear(&err);
	assert_int_equal(store_ca_insert(fx->st, NULL, &dup, &id, &err),
	    SP_ERR_EXISTS);
}

struct prof_seen {
	int	n;
	char	name[4][16];
	char	json[4][32];
	bool	builtin[4];
};

static int
prof_cb(const struct store_profile *p, void *arg)
{
	struct prof_seen	*s = arg;

	assert_true(s->n < 4);
	snprintf(s->name[s->n], sizeof(s->name[0]), "%s", p->name);
	snprintf(s->json[s->n], sizeof(s->json[0]), "%s", p->json);
	s->builtin[s->n] = p->builtin;
	s->n++;
	return 0;
}

static void
test_profiles(void **state)
{
	struct fixture		*fx = *state;
	struct sp_err		 err = { 0 };
	struct prof_seen	 seen = { 0 };
	struct store_profile	 a = { "B", "{\"a\":1}", true };
	struct store_profile	 b = { "A", "{}", false };

	assert_int_equal(store_profile_put(fx->st, NULL, &a, &err), 0);
	assert_int_equal(store_profile_put(fx->st, NULL, &b, &err), 0);
	/* Putting again replaces. */
	a.json = "{\"a\":2}";
	assert_int_equal(store_profile_put(fx->st, NULL, &a, &err), 0);
	assert_int_equal(store_profile_foreach(fx->st, NULL, prof_cb, &seen), 0);
	assert_int_equal(seen.n, 2);
	assert_string_equal(seen.name[0], "A");
	assert_false(seen.builtin[0]);
	assert_string_equal(seen.name[1], "B");
	assert_string_equal(seen.json[1], "{\"a\":2}");
	assert_true(seen.builtin[1]);
}

/* --- certificates --------------------------------------------------------- */

struct cert_seen {
	int			n;
	int64_t			id[8];
	int64_t			ca[8];
	char			serial[8][48];
	enum cert_status	status[8];
	time_t			revoked_at[8];
	int			reason[8];
	char			fp[8][80];
	char			subject[8][32];
	char			profile[8][32];
	time_t			nb[8], na[8];
	size_t			derlen[8];
	unsigned char		der0[8];
};

static int
cert_cb(const struct store_cert *c, void *arg)
{
	struct cert_seen	*s = arg;
	int			 i = s->n;

	assert_true(i < 8);
	s->id[i] = c->id;
	s->ca[i] = c->ca_id;
	snprintf(s->serial[i], sizeof(s->serial[0]), "%s", c->serial);
	s->status[i] = c->status;
	s->revoked_at[i] = c->revoked_at;
	s->reason[i] = c->reason;
	snprintf(s->fp[i], sizeof(s->fp[0]), "%s", c->fingerprint);
	snprintf(s->subject[i], sizeof(s->subject[0]), "%s", c->subject);
	snprintf(s->profile[i], sizeof(s->profile[0]), "%s", c->profile);
	s->nb[i] = c->not_before;
	s->na[i] = c->not_after;
	s->derlen[i] = c->derlen;
	s->der0[i] = c->derlen > 0 ? c->der[0] : 0;
	s->n++;
	return 0;
}

static void
get_cert(struct store *st, int64_t ca, const char *serial,
    struct cert_seen *s)
{
	struct sp_err	err = { 0 };

	memset(s, 0, sizeof(*s));
	if (store_cert_get(st, NULL, ca, serial, cert_cb, s, &err) != 0)
		print_error("store_cert_get %s: %s\n", serial, err.msg);
	assert_int_equal(s->n, 1);
}

static void
test_cert_lifecycle(void **state)
{
	struct fixture		*fx = *state;
	struct sp_err		 err = { 0 };
	struct cert_seen	 s;
	static const unsigned char der[] = { 0x30, 0x82, 0x01, 0x00, 0x42 };
	int64_t			 ca, id, id2;

	ca = add_ca(fx->st, "root", 0);
	id = reserve_ok(fx->st, NULL, ca, "0102ab");

	/* Reserved: the TBS, no fingerprint, not revoked. */
	get_cert(fx->st, ca, "0102ab", &s);
	assert_true(s.id[0] == id);
	assert_int_equal(s.status[0], CERT_RESERVED);
	assert_string_equal(s.fp[0], "");
	assert_int_equal(s.reason[0], -1);
	assert_true(s.revoked_at[0] == 0);
	assert_int_equal(s.derlen[0], 3);
	assert_string_equal(s.subject[0], "CN=leaf");
	assert_string_equal(s.profile[0], "TLS_SERVER");
	assert_true(s.nb[0] == 100 && s.na[0] == 200);

	/* Issued: the certificate replaces the TBS. */
	assert_int_equal(store_cert_issued(fx->st, NULL, id, der, sizeof(der), "fp1",
	    &err), 0);
	get_cert(fx->st, ca, "0102ab", &s);
	assert_int_equal(s.status[0], CERT_ACTIVE);
	assert_string_equal(s.fp[0], "fp1");
	assert_int_equal(s.derlen[0], sizeof(der));
	assert_int_equal(s.der0[0], 0x30);

	/* Only a reserved row can be issued or failed. */
	sp_err_clear(&err);
	assert_int_equal(store_cert_issued(fx->st, NULL, id, der, sizeof(der), "fp2",
	    &err), SP_ERR_NOTFOUND);
	sp_err_clear(&err);
	assert_int_equal(store_cert_failed(fx->st, NULL, id, &err), SP_ERR_NOTFOUND);
	get_cert(fx->st, ca, "0102ab", &s);
	assert_int_equal(s.status[0], CERT_ACTIVE);
	assert_string_equal(s.fp[0], "fp1");

	/* Revoke, then lift. */
	assert_int_equal(store_cert_set_status(fx->st, NULL, id, CERT_REVOKED, 5000,
	    1, &err), 0);
	get_cert(fx->st, ca, "0102ab", &s);
	assert_int_equal(s.status[0], CERT_REVOKED);
	assert_true(s.revoked_at[0] == 5000);
	assert_int_equal(s.reason[0], 1);
	assert_int_equal(store_cert_set_status(fx->st, NULL, id, CERT_ACTIVE, 0, -1,
	    &err), 0);
	get_cert(fx->st, ca, "0102ab", &s);
	assert_int_equal(s.status[0], CERT_ACTIVE);
	assert_int_equal(s.reason[0], -1);
	sp_err_clear(&err);
	assert_int_equal(store_cert_set_status(fx->st, NULL, id + 100, CERT_REVOKED,
	    1, 1, &err), SP_ERR_NOTFOUND);

	/* A reserved row that failed. */
	id2 = reserve_ok(fx->st, NULL, ca, "0103");
	assert_int_equal(store_cert_failed(fx->st, NULL, id2, &err), 0);
	get_cert(fx->st, ca, "0103", &s);
	assert_int_equal(s.status[0], CERT_FAILED);
	sp_err_clear(&err);
	assert_int_equal(store_cert_issued(fx->st, NULL, id2, der, sizeof(der),
	    "fp", &err), SP_ERR_NOTFOUND);

	/* Unknown serial, and the right serial on the wrong CA. */
	sp_err_clear(&err);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_cert_get(fx->st, NULL, ca, "ffff", cert_cb, &s, &err),
	    SP_ERR_NOTFOUND);
	assert_int_equal(s.n, 0);
	assert_non_null(strstr(err.msg, "ffff"));
	assert_int_equal(store_cert_get(fx->st, NULL, ca + 1, "0102ab", cert_cb, &s,
	    NULL), SP_ERR_NOTFOUND);

	assert_string_equal(cert_status_name(CERT_RESERVED), "reserved");
	assert_string_equal(cert_status_name(CERT_ACTIVE), "active");
	assert_string_equal(cert_status_name(CERT_REVOKED), "revoked");
	assert_string_equal(cert_status_name(CERT_FAILED), "failed");
	assert_string_equal(cert_status_name(CERT__MAX), "unknown");
	assert_string_equal(cert_status_name((enum cert_status)-1), "unknown");
}

static void
test_cert_duplicate_serial(void **state)
{
	struct fixture		*fx = *state;
	struct sp_err		 err = { 0 };
	struct cert_seen	 s;
	int64_t			 a, b, id = 0;

	a = add_ca(fx->st, "a", 0);
	b = add_ca(fx->st, "b", 0);
	reserve_ok(fx->st, NULL, a, "77");
	assert_int_equal(reserve(fx->st, NULL, a, "77", &id, &err), SP_ERR_EXISTS);
	assert_int_equal(err.code, SP_ERR_EXISTS);
	assert_true(id == 0);
	/* The same serial under another CA is a different certificate. */
	reserve_ok(fx->st, NULL, b, "77");
	get_cert(fx->st, b, "77", &s);
	assert_true(s.ca[0] == b);
	/* A CA that does not exist. */
	sp_err_clear(&err);
	assert_int_equal(reserve(fx->st, NULL, b + 10, "78", &id, &err), SP_ERR_DB);
}

static void
test_cert_foreach_filters(void **state)
{
	struct fixture			*fx = *state;
	struct sp_err			 err = { 0 };
	struct cert_seen		 s;
	struct store_cert_filter	 f;
	int64_t				 a, b, ids[5];
	static const char *const	 serials[] = { "01", "02", "03", "04",
					    "05" };

	a = add_ca(fx->st, "a", 0);
	b = add_ca(fx->st, "b", 0);
	/* a: 01 active, 02 revoked, 03 reserved; b: 04 active, 05 failed. */
	for (int i = 0; i < 5; i++)
		ids[i] = reserve_ok(fx->st, NULL, i < 3 ? a : b, serials[i]);
	assert_int_equal(store_cert_issued(fx->st, NULL, ids[0],
	    (const unsigned char *)"c", 1, "f", &err), 0);
	assert_int_equal(store_cert_issued(fx->st, NULL, ids[1],
	    (const unsigned char *)"c", 1, "f", &err), 0);
	assert_int_equal(store_cert_set_status(fx->st, NULL, ids[1], CERT_REVOKED,
	    10, 4, &err), 0);
	assert_int_equal(store_cert_issued(fx->st, NULL, ids[3],
	    (const unsigned char *)"c", 1, "f", &err), 0);
	assert_int_equal(store_cert_failed(fx->st, NULL, ids[4], &err), 0);

	f = (struct store_cert_filter){ 0, -1, 0 };
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_cert_foreach(fx->st, NULL, &f, cert_cb, &s), 0);
	assert_int_equal(s.n, 5);
	for (int i = 0; i < 5; i++)	/* in id order */
		assert_string_equal(s.serial[i], serials[i]);

	f = (struct store_cert_filter){ a, -1, 0 };
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_cert_foreach(fx->st, NULL, &f, cert_cb, &s), 0);
	assert_int_equal(s.n, 3);

	f = (struct store_cert_filter){ 0, CERT_ACTIVE, 0 };
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_cert_foreach(fx->st, NULL, &f, cert_cb, &s), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.serial[0], "01");
	assert_string_equal(s.serial[1], "04");

	f = (struct store_cert_filter){ a, CERT_REVOKED, 0 };
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_cert_foreach(fx->st, NULL, &f, cert_cb, &s), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.serial[0], "02");
	assert_int_equal(s.reason[0], 4);

	f = (struct store_cert_filter){ b, CERT_REVOKED, 0 };
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_cert_foreach(fx->st, NULL, &f, cert_cb, &s), 0);
	assert_int_equal(s.n, 0);

	f = (struct store_cert_filter){ b, CERT_FAILED, 0 };
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_cert_foreach(fx->st, NULL, &f, cert_cb, &s), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.serial[0], "05");

	f = (struct store_cert_filter){ 0, -1, 2 };
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_cert_foreach(fx->st, NULL, &f, cert_cb, &s), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.serial[0], "01");
	assert_string_equal(s.serial[1], "02");
}

static void
test_cert_abandon_reserved(void **state)
{
	struct fixture			*fx = *state;
	struct sp_err			 err = { 0 };
	struct cert_seen		 s;
	struct store_cert_filter	 f = { 0, CERT_FAILED, 0 };
	int64_t				 ca, a;

	ca = add_ca(fx->st, "root", 0);
	assert_int_equal(store_cert_abandon_reserved(fx->st, NULL, &err), 0);
	a = reserve_ok(fx->st, NULL, ca, "01");
	reserve_ok(fx->st, NULL, ca, "02");
	reserve_ok(fx->st, NULL, ca, "03");
	assert_int_equal(store_cert_issued(fx->st, NULL, a,
	    (const unsigned char *)"c", 1, "f", &err), 0);
	/* Two rows were still reserved. */
	assert_int_equal(store_cert_abandon_reserved(fx->st, NULL, &err), 2);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_cert_foreach(fx->st, NULL, &f, cert_cb, &s), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.serial[0], "02");
	assert_string_equal(s.serial[1], "03");
	get_cert(fx->st, ca, "01", &s);
	assert_int_equal(s.status[0], CERT_ACTIVE);
	/* Nothing left to abandon. */
	assert_int_equal(store_cert_abandon_reserved(fx->st, NULL, &err), 0);
	f.status = CERT_RESERVED;
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_cert_foreach(fx->st, NULL, &f, cert_cb, &s), 0);
	assert_int_equal(s.n, 0);
}

/* --- CRLs ----------------------------------------------------------------- */

static void
test_crl(void **state)
{
	struct fixture	*fx = *state;
	struct sp_err	 err = { 0 };
	unsigned char	*der = (unsigned char *)(uintptr_t)1;
	size_t		 len = 9;
	int64_t		 ca, other, num = 0;

	ca = add_ca(fx->st, "root", 0);
	other = add_ca(fx->st, "other", 0);
	assert_int_equal(store_crl_latest(fx->st, NULL, ca, &der, &len, &num, &err),
	    SP_ERR_NOTFOUND);
	assert_null(der);
	assert_int_equal(len, 0);

	assert_int_equal(store_crl_insert(fx->st, NULL, ca, 1, 100, 200,
	    (const unsigned char *)"one", 3, &err), 0);
	assert_int_equal(store_crl_insert(fx->st, NULL, ca, 2, 150, 250,
	    (const unsigned char *)"two!", 4, &err), 0);
	assert_int_equal(store_crl_insert(fx->st, NULL, other, 1, 100, 200,
	    (const unsigned char *)"o", 1, &err), 0);
	sp_err_clear(&err);
	assert_int_equal(store_crl_insert(fx->st, NULL, ca, 2, 150, 250,
	    (const unsigned char *)"dup", 3, &err), SP_ERR_EXISTS);

	assert_int_equal(store_crl_latest(fx->st, NULL, ca, &der, &len, &num, &err),
	    0);
	assert_true(num == 2);
	assert_int_equal(len, 4);
	assert_memory_equal(der, "two!", 4);
	free(der);
	assert_int_equal(store_crl_latest(fx->st, NULL, other, &der, &len, &num,
	    &err), 0);
	assert_true(num == 1);
	assert_int_equal(len, 1);
	free(der);
}

/* Only the newest CRLs of each CA are kept; other CAs are untouched. */
static void
test_crl_pruned(void **state)
{
	struct fixture	*fx = *state;
	struct sp_err	 err = { 0 };
	unsigned char	*der = NULL;
	size_t		 len = 0;
	int64_t		 ca, other, num = 0;

	ca = add_ca(fx->st, "root", 0);
	other = add_ca(fx->st, "other", 0);
	assert_int_equal(store_crl_insert(fx->st, NULL, other, 1, 100, 200,
	    (const unsigned char *)"o", 1, &err), 0);
	store_set_crl_keep(fx->st, 3);
	for (int64_t n = 1; n <= 10; n++)
		assert_int_equal(store_crl_insert(fx->st, NULL, ca, n, 100 + n,
		    200 + n, (const unsigned char *)"crl", 3, &err), 0);
	assert_int_equal(raw_int(fx, "SELECT count(*) FROM crls WHERE "
	    "ca_id = (SELECT id FROM cas WHERE name = 'root')"), 3);
	assert_int_equal(raw_int(fx, "SELECT min(number) FROM crls WHERE "
	    "ca_id = (SELECT id FROM cas WHERE name = 'root')"), 8);
	assert_int_equal(raw_int(fx, "SELECT count(*) FROM crls WHERE "
	    "ca_id = (SELECT id FROM cas WHERE name = 'other')"), 1);
	assert_int_equal(store_crl_latest(fx->st, NULL, ca, &der, &len, &num, &err),
	    0);
	assert_true(num == 10);
	free(der);
	/* The default keeps more. */
	store_set_crl_keep(fx->st, 0);
	assert_int_equal(store_crl_insert(fx->st, NULL, ca, 11, 111, 211,
	    (const unsigned char *)"crl", 3, &err), 0);
	assert_int_equal(raw_int(fx, "SELECT count(*) FROM crls WHERE "
	    "ca_id = (SELECT id FROM cas WHERE name = 'root')"), 4);
}

/* --- transactions --------------------------------------------------------- */

static void
test_transaction_rollback(void **state)
{
	struct fixture			*fx = *state;
	struct sp_err			 err = { 0 };
	struct store_cert_filter	 f = { 0, -1, 0 };
	struct store_audit_report	 rep;
	struct store_txn		*tx = NULL, *tx2 = NULL;
	int64_t				 ca, tid = 0;
	int				 n;

	ca = add_ca(fx->st, "root", 0);
	assert_int_equal(store_audit_append(fx->st, NULL, "before", "t", "{}", &err),
	    0);

	assert_int_equal(store_txn_begin(fx->st, &tx, &err), 0);
	/* No nesting. */
	assert_int_equal(store_txn_begin(fx->st, &tx2, &err), SP_ERR_INTERNAL);
	assert_int_equal(store_token_insert(fx->st, tx, "tx", "v", &tid, &err), 0);
	reserve_ok(fx->st, tx, ca, "aa");
	assert_int_equal(store_crl_insert(fx->st, tx, ca, 1, 1, 2,
	    (const unsigned char *)"c", 1, &err), 0);
	assert_int_equal(store_audit_append(fx->st, tx, "inside", "t", "{}", &err),
	    0);
	store_txn_rollback(tx);
	/* A second rollback of the ended handle is a no-op. */
	store_txn_rollback(tx);

	n = 0;
	assert_int_equal(store_token_foreach(fx->st, NULL, count_tok, &n), 0);
	assert_int_equal(n, 0);
	n = 0;
	assert_int_equal(store_cert_foreach(fx->st, NULL, &f, count_cert, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(raw_int(fx, "SELECT count(*) FROM crls"), 0);
	/* The audit head went back too: the chain still verifies. */
	assert_int_equal(store_audit_verify(fx->st, NULL, &rep, &err), 0);
	assert_int_equal(rep.rows, 1);
	assert_int_equal(store_audit_append(fx->st, NULL, "after", "t", "{}", &err),
	    0);
	assert_int_equal(store_audit_verify(fx->st, NULL, &rep, &err), 0);
	assert_int_equal(rep.rows, 2);

	/* And a committed transaction keeps everything. */
	assert_int_equal(store_txn_begin(fx->st, &tx, &err), 0);
	assert_int_equal(store_token_insert(fx->st, tx, "tx", "v", &tid, &err), 0);
	assert_int_equal(store_audit_append(fx->st, tx, "in", "t", "{}", &err), 0);
	assert_int_equal(store_txn_commit(tx, &err), 0);
	reopen(fx);
	n = 0;
	assert_int_equal(store_token_foreach(fx->st, NULL, count_tok, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_audit_verify(fx->st, NULL, &rep, &err), 0);
	assert_int_equal(rep.rows, 3);
}

/* --- audit ---------------------------------------------------------------- */

static void
append_n(struct store *st, int n)
{
	struct sp_err	err = { 0 };
	char		d[64];

	for (int i = 1; i <= n; i++) {
		snprintf(d, sizeof(d), "{\"i\":%d}", i);
		if (store_audit_append(st, NULL, "test.event", "tester", d,
		    &err) != 0)
			print_error("audit append: %s\n", err.msg);
		assert_int_equal(err.code, 0);
	}
}

struct audit_seen {
	int	n;
	int64_t	seq[8];
	char	details[8][32];
};

static int
audit_cb(const struct store_audit_row *a, void *arg)
{
	struct audit_seen	*s = arg;

	assert_true(s->n < 8);
	assert_string_equal(a->event, "test.event");
	assert_string_equal(a->actor, "tester");
	assert_true(a->ts > 0);
	s->seq[s->n] = a->seq;
	snprintf(s->details[s->n], sizeof(s->details[0]), "%s", a->details);
	s->n++;
	return 0;
}

static void
test_audit_intact(void **state)
{
	struct fixture			*fx = *state;
	struct sp_err			 err = { 0 };
	struct store_audit_report	 rep;
	struct audit_seen		 s = { 0 };
	sqlite3				*db = NULL;
	sqlite3_stmt			*q = NULL;

	/* An empty log verifies. */
	assert_int_equal(store_audit_verify(fx->st, NULL, &rep, &err), 0);
	assert_int_equal(rep.rows, 0);
	assert_int_equal(rep.bad_seq, 0);

	append_n(fx->st, 5);
	assert_int_equal(store_audit_verify(fx->st, NULL, &rep, &err), 0);
	assert_int_equal(rep.rows, 5);
	assert_int_equal(rep.bad_seq, 0);
	assert_int_equal(strlen(rep.head), 64);

	/* The head is the last row's hash, and each row chains to the last. */
	assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT hash FROM audit "
	    "WHERE seq = 5", -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(q, 0), rep.head);
	sqlite3_finalize(q);
	sqlite3_close(db);
	assert_int_equal(raw_int(fx, "SELECT count(*) FROM audit a "
	    "JOIN audit b ON b.seq = a.seq + 1 WHERE b.prev = a.hash"), 4);

	/* Newest first, limited. */
	assert_int_equal(store_audit_foreach(fx->st, NULL, 3, audit_cb, &s), 0);
	assert_int_equal(s.n, 3);
	assert_true(s.seq[0] == 5 && s.seq[1] == 4 && s.seq[2] == 3);
	assert_string_equal(s.details[0], "{\"i\":5}");
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_audit_foreach(fx->st, NULL, 0, audit_cb, &s), 0);
	assert_int_equal(s.n, 5);
}

static void
test_audit_tamper_update(void **state)
{
	struct fixture			*fx = *state;
	struct sp_err			 err = { 0 };
	struct store_audit_report	 rep;

	append_n(fx->st, 4);
	store_close(fx->st);
	fx->st = NULL;
	raw_sql(fx, "UPDATE audit SET details = '{\"i\":99}' WHERE seq = 2");
	reopen(fx);
	assert_int_equal(store_audit_verify(fx->st, NULL, &rep, &err),
	    SP_ERR_POLICY);
	assert_int_equal(rep.bad_seq, 2);
	assert_int_equal(rep.rows, 1);
	assert_int_equal(err.code, SP_ERR_POLICY);
	assert_non_null(strstr(err.msg, "2"));
}

static void
test_audit_tamper_fields(void **state)
{
	struct fixture			*fx = *state;
	struct sp_err			 err = { 0 };
	struct store_audit_report	 rep;

	/* Every hashed field counts: ts, event, actor; and the stored hash. */
	static const char *const	 sql[] = {
		"UPDATE audit SET ts = ts + 1 WHERE seq = 3",
		"UPDATE audit SET event = 'x' WHERE seq = 3",
		"UPDATE audit SET actor = 'mallory' WHERE seq = 3",
		"UPDATE audit SET hash = substr(hash, 2) || '0' WHERE seq = 3",
		"UPDATE audit SET prev = '' WHERE seq = 3",
	};

	append_n(fx->st, 4);
	store_close(fx->st);
	fx->st = NULL;
	raw_sql(fx, "CREATE TABLE backup AS SELECT * FROM audit");
	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		raw_sql(fx, sql[i]);
		reopen(fx);
		sp_err_clear(&err);
		assert_int_equal(store_audit_verify(fx->st, NULL, &rep, &err),
		    SP_ERR_POLICY);
		assert_int_equal(rep.bad_seq, 3);
		store_close(fx->st);
		fx->st = NULL;
		raw_sql(fx, "DELETE FROM audit; INSERT INTO audit SELECT * "
		    "FROM backup");
	}
	reopen(fx);
	assert_int_equal(store_audit_verify(fx->st, NULL, &rep, &err), 0);
	assert_int_equal(rep.rows, 4);
}

static void
test_audit_delete_last(void **state)
{
	struct fixture			*fx = *state;
	struct sp_err			 err = { 0 };
	struct store_audit_report	 rep;

	append_n(fx->st, 4);
	store_close(fx->st);
	fx->st = NULL;
	raw_sql(fx, "DELETE FROM audit WHERE seq = 4");
	reopen(fx);
	/* Every remaining row is fine; the head in meta gives it away. */
	assert_int_equal(store_audit_verify(fx->st, NULL, &rep, &err),
	    SP_ERR_POLICY);
	assert_int_equal(rep.rows, 3);
	assert_int_equal(rep.bad_seq, 4);
	assert_non_null(strstr(err.msg, "deleted"));
}

static void
test_audit_delete_middle(void **state)
{
	struct fixture			*fx = *state;
	struct sp_err			 err = { 0 };
	struct store_audit_report	 rep;

	append_n(fx->st, 4);
	store_close(fx->st);
	fx->st = NULL;
	raw_sql(fx, "DELETE FROM audit WHERE seq = 2");
	reopen(fx);
	assert_int_equal(store_audit_verify(fx->st, NULL, &rep, &err),
	    SP_ERR_POLICY);
	assert_int_equal(rep.bad_seq, 2);
	assert_non_null(strstr(err.msg, "missing"));

	/* Renumbering to close the gap breaks the chain instead. */
	store_close(fx->st);
	fx->st = NULL;
	raw_sql(fx, "UPDATE audit SET seq = seq - 1 WHERE seq > 2");
	reopen(fx);
	sp_err_clear(&err);
	assert_int_equal(store_audit_verify(fx->st, NULL, &rep, &err),
	    SP_ERR_POLICY);
	assert_int_equal(rep.bad_seq, 2);
}

static void
test_audit_delete_all(void **state)
{
	struct fixture			*fx = *state;
	struct sp_err			 err = { 0 };
	struct store_audit_report	 rep;

	append_n(fx->st, 3);
	store_close(fx->st);
	fx->st = NULL;
	raw_sql(fx, "DELETE FROM audit");
	reopen(fx);
	assert_int_equal(store_audit_verify(fx->st, NULL, &rep, &err),
	    SP_ERR_POLICY);
	assert_int_equal(rep.rows, 0);
	assert_int_equal(rep.bad_seq, 1);
}

static void
test_audit_inserted_row(void **state)
{
	struct fixture			*fx = *state;
	struct sp_err			 err = { 0 };
	struct store_audit_report	 rep;

	append_n(fx->st, 3);
	store_close(fx->st);
	fx->st = NULL;
	/* A forged row after the head, chained to it but with a bad hash. */
	raw_sql(fx, "INSERT INTO audit SELECT 4, ts, event, actor, details, "
	    "hash, hash FROM audit WHERE seq = 3");
	reopen(fx);
	assert_int_equal(store_audit_verify(fx->st, NULL, &rep, &err),
	    SP_ERR_POLICY);
	assert_int_equal(rep.bad_seq, 4);
}

/* Appends from several threads at once must keep one unbroken chain. */
#define NTHREADS	4
#define NPERTHREAD	25

static void *
append_thread(void *arg)
{
	struct store	*st = arg;
	struct sp_err	 err = { 0 };
	intptr_t	 bad = 0;

	for (int i = 0; i < NPERTHREAD; i++)
		if (store_audit_append(st, NULL, "test.event", "tester", "{}",
		    &err) != 0)
			bad++;
	return (void *)bad;
}

static void
test_audit_threads(void **state)
{
	struct fixture			*fx = *state;
	struct sp_err			 err = { 0 };
	struct store_audit_report	 rep;
	pthread_t			 th[NTHREADS];
	void				*ret;

	for (int i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, append_thread,
		    fx->st), 0);
	for (int i = 0; i < NTHREADS; i++) {
		assert_int_equal(pthread_join(th[i], &ret), 0);
		assert_null(ret);
	}
	assert_int_equal(store_audit_verify(fx->st, NULL, &rep, &err), 0);
	assert_int_equal(rep.rows, NTHREADS * NPERTHREAD);
}

/* --- generic statements --------------------------------------------------- */

struct kb_seen {
	int	n;
	int64_t	id;
	char	name[32];
	size_t	certlen;
	bool	cert_ok;
	bool	chain_null;
	int64_t	created;
};

static int
kb_cb(const struct store_row *row, void *arg)
{
	struct kb_seen		*s = arg;
	const unsigned char	*b;
	size_t			 len = 0;

	s->n++;
	s->id = store_row_int(row, 0);
	snprintf(s->name, sizeof(s->name), "%s", store_row_text(row, 1));
	b = store_row_blob(row, 2, &len);
	s->certlen = len;
	s->cert_ok = len == 3 && memcmp(b, "\x00\x01\x02", 3) == 0;
	s->chain_null = store_row_null(row, 3);
	s->created = store_row_int(row, 4);
	return 0;
}

static int
stop_row(const struct store_row *row, void *arg)
{
	(void)row;
	(*(int *)arg)++;
	return 5;
}

static void
test_generic_statements(void **state)
{
	struct store_txn	*tx = NULL;
	struct fixture	*fx = *state;
	struct sp_err	 err = { 0 };
	struct kb_seen	 s = { 0 };
	int64_t		 id = -1;
	int		 calls = 0;

	assert_int_equal(store_exec(fx->st, NULL, NULL, &err, "INSERT INTO settings "
	    "VALUES (?, ?)", "ss", "colour", "blue"), 1);
	assert_int_equal(store_exec(fx->st, NULL, NULL, &err, "INSERT INTO settings "
	    "VALUES (?, ?)", "ss", "colour", "red"), SP_ERR_EXISTS);
	assert_int_equal(err.code, SP_ERR_EXISTS);
	sp_err_clear(&err);
	/* Changed-row counts. */
	assert_int_equal(store_exec(fx->st, NULL, NULL, &err, "UPDATE settings SET "
	    "value = ? WHERE key = ?", "ss", "green", "colour"), 1);
	assert_int_equal(store_exec(fx->st, NULL, NULL, &err, "UPDATE settings SET "
	    "value = ? WHERE key = ?", "ss", "green", "size"), 0);

	/* Every binding type, NULL included, and the row id. */
	assert_int_equal(store_exec(fx->st, NULL, &id, &err, "INSERT INTO "
	    "keybindings (name, type, token, key_alias, cert, chain, created) "
	    "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id", "ssssbsi", "kb1", "tls", "tok",
	    "k", (const void *)"\x00\x01\x02", (size_t)3, (const char *)NULL,
	    (int64_t)1234567890123LL), 1);
	assert_true(id > 0);
	assert_int_equal(store_select(fx->st, NULL, kb_cb, &s, &err, "SELECT id, "
	    "name, cert, chain, created FROM keybindings WHERE name = ?", "s",
	    "kb1"), 0);
	assert_int_equal(s.n, 1);
	assert_true(s.id == id);
	assert_string_equal(s.name, "kb1");
	assert_true(s.cert_ok);
	assert_true(s.chain_null);
	assert_true(s.created == 1234567890123LL);

	/* No rows, a callback that stops, bad SQL. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_select(fx->st, NULL, kb_cb, &s, &err, "SELECT id, "
	    "name, cert, chain, created FROM keybindings WHERE name = ?", "s",
	    "none"), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(store_select(fx->st, NULL, stop_row, &calls, &err,
	    "SELECT key FROM settings UNION ALL SELECT name FROM keybindings",
	    ""), 5);
	assert_int_equal(calls, 1);
	sp_err_clear(&err);
	assert_int_equal(store_exec(fx->st, NULL, NULL, &err, "INSERT INTO nowhere "
	    "VALUES (1)", ""), SP_ERR_DB);
	assert_int_equal(err.code, SP_ERR_DB);
	assert_true(strlen(err.msg) > 0);

	/* Inside a transaction that is rolled back. */
	assert_int_equal(store_txn_begin(fx->st, &tx, &err), 0);
	assert_int_equal(store_exec(fx->st, tx, NULL, &err, "DELETE FROM settings",
	    ""), 1);
	store_txn_rollback(tx);
	assert_int_equal(raw_int(fx, "SELECT count(*) FROM settings"), 1);
}

struct txn_holder {
	struct store	*st;
	pthread_mutex_t	 mtx;
	pthread_cond_t	 cond;
	int		 begun;
	struct store_txn *tx;
};

/* Opens a transaction, inserts a row, waits a little, then rolls back. */
static void *
txn_holder_run(void *arg)
{
	struct txn_holder	*h = arg;
	struct sp_err		 err = { 0 };
	struct timespec		 ts = { 0, 200 * 1000 * 1000 };

	if (store_txn_begin(h->st, &h->tx, &err) != 0 || store_exec(h->st,
	    h->tx, NULL, &err, "INSERT INTO settings (key, value) VALUES "
	    "('txn-holder', '1')", "") != 1)
		return (void *)1;
	pthread_mutex_lock(&h->mtx);
	h->begun = 1;
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->mtx);
	nanosleep(&ts, NULL);	/* give a stray commit the chance to run */
	store_txn_rollback(h->tx);
	return NULL;
}

/*
 * store_txn_commit() without an open transaction of this thread's is a
 * caller bug: it is refused, and it neither unlocks a mutex it does not
 * hold nor commits another thread's open transaction.
 */
static void
test_commit_without_transaction(void **state)
{
	struct fixture		*fx = *state;
	struct sp_err		 err = { 0 };
	struct txn_holder	 h = { .st = fx->st };
	struct store_txn	*tx = NULL;
	pthread_t		 t;
	void			*rv = (void *)1;

	assert_int_equal(store_txn_commit(NULL, &err), SP_ERR_INTERNAL);
	assert_string_equal(err.msg, "store: commit without an open "
	    "transaction");
	store_txn_rollback(NULL);	/* a no-op, as documented */

	/* The store still works: a normal transaction commits. */
	sp_err_clear(&err);
	assert_int_equal(store_txn_begin(fx->st, &tx, &err), 0);
	assert_int_equal(store_exec(fx->st, tx, NULL, &err, "INSERT INTO "
	    "settings (key, value) VALUES ('after', '1')", ""), 1);
	assert_int_equal(store_txn_commit(tx, &err), 0);
	assert_int_equal(raw_int(fx, "SELECT count(*) FROM settings WHERE "
	    "key = 'after'"), 1);

	/* A stray commit while another thread's transaction is open. */
	pthread_mutex_init(&h.mtx, NULL);
	pthread_cond_init(&h.cond, NULL);
	assert_int_equal(pthread_create(&t, NULL, txn_holder_run, &h), 0);
	pthread_mutex_lock(&h.mtx);
	while (!h.begun)
		pthread_cond_wait(&h.cond, &h.mtx);
	pthread_mutex_unlock(&h.mtx);
	sp_err_clear(&err);
	assert_int_equal(store_txn_commit(h.tx, &err), SP_ERR_INTERNAL);
	store_txn_rollback(h.tx);	/* not ours: ignored */
	assert_int_equal(pthread_join(t, &rv), 0);
	assert_null(rv);
	pthread_cond_destroy(&h.cond);
	pthread_mutex_destroy(&h.mtx);
	/* The other thread's row was rolled back, not committed by us. */
	assert_int_equal(raw_int(fx, "SELECT count(*) FROM settings WHERE "
	    "key = 'txn-holder'"), 0);
}

/* --- readers and the writer ------------------------------------------------ */

struct writer {
	struct store	*st;
	pthread_mutex_t	 mtx;
	pthread_cond_t	 cond;
	bool		 open;		/* its transaction is open, row written */
	bool		 read_done;	/* the reader finished */
	bool		 timed_out;	/* gave up waiting for the reader */
	bool		 committed;
	int		 rc;
	struct store_txn *tx;
};

/*
 * Opens a transaction, writes a row, and keeps the transaction open until
 * the reader says it is done (or 10 s pass: then the reader was blocked).
 */
static void *
writer_run(void *arg)
{
	struct writer	*w = arg;
	struct sp_err	 err = { 0 };
	struct timespec	 until;
	int		 r;

	if ((r = store_txn_begin(w->st, &w->tx, &err)) == 0 &&
	    (r = store_exec(w->st, w->tx, NULL, &err, "INSERT INTO settings (key, "
	    "value) VALUES ('writer', '1')", "")) == 1)
		r = 0;
	pthread_mutex_lock(&w->mtx);
	w->rc = r;
	w->open = true;
	pthread_cond_broadcast(&w->cond);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	while (!w->read_done && !w->timed_out)
		if (pthread_cond_timedwait(&w->cond, &w->mtx, &until) != 0)
			w->timed_out = true;
	pthread_mutex_unlock(&w->mtx);
	if (r == 0)
		w->rc = store_txn_commit(w->tx, &err);
	pthread_mutex_lock(&w->mtx);
	w->committed = true;
	pthread_mutex_unlock(&w->mtx);
	return NULL;
}

static int
row_count_cb(const struct store_row *row, void *arg)
{
	*(int64_t *)arg = store_row_int(row, 0);
	return 0;
}

static int
ca_count_cb(const struct store_ca *ca, void *arg)
{
	(void)ca;
	(*(int *)arg)++;
	return 0;
}

/*
 * A reader is never blocked by a writer's open transaction: with the
 * writer holding its transaction open until the reader says it is done,
 * the reads complete (and see the last committed state, not the open
 * transaction's row). Without a separate reader connection this would
 * time out: the writer would wait for a reader that waits for it.
 */
static void
test_reader_not_blocked_by_writer(void **state)
{
	struct fixture	*fx = *state;
	struct sp_err	 err = { 0 };
	struct writer	 w = { .st = fx->st };
	struct timespec	 t0, t1;
	pthread_t	 t;
	int64_t		 n = -1;
	int		 ncas = 0;
	double		 ms;

	pthread_mutex_init(&w.mtx, NULL);
	pthread_cond_init(&w.cond, NULL);
	assert_int_equal(pthread_create(&t, NULL, writer_run, &w), 0);
	pthread_mutex_lock(&w.mtx);
	while (!w.open)
		pthread_cond_wait(&w.cond, &w.mtx);
	pthread_mutex_unlock(&w.mtx);
	assert_int_equal(w.rc, 0);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(store_select(fx->st, NULL, row_count_cb, &n, &err,
	    "SELECT count(*) FROM settings WHERE key = 'writer'", ""), 0);
	assert_int_equal(store_ca_foreach(fx->st, NULL, ca_count_cb, &ncas), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);

	pthread_mutex_lock(&w.mtx);
	/* Measured: the writer's transaction was still open. */
	assert_false(w.committed);
	assert_false(w.timed_out);
	w.read_done = true;
	pthread_cond_broadcast(&w.cond);
	pthread_mutex_unlock(&w.mtx);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(w.rc, 0);
	assert_false(w.timed_out);
	ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	print_message("reads took %.2f ms with the writer's transaction open\n",
	    ms);
	/* The open transaction's row was not visible; once committed it is. */
	assert_int_equal(n, 0);
	assert_int_equal(store_select(fx->st, NULL, row_count_cb, &n, &err,
	    "SELECT count(*) FROM settings WHERE key = 'writer'", ""), 0);
	assert_int_equal(n, 1);
	pthread_cond_destroy(&w.cond);
	pthread_mutex_destroy(&w.mtx);
}

/*
 * The writer lock is not recursive: a thread with an open transaction
 * that writes outside it, or begins another, gets an error instead of a
 * deadlock; a handle that is not open is refused.
 */
static void
test_txn_misuse(void **state)
{
	struct fixture		*fx = *state;
	struct sp_err		 err = { 0 };
	struct store_txn	*tx = NULL, *tx2 = NULL;

	assert_int_equal(store_txn_commit(NULL, &err), SP_ERR_INTERNAL);
	store_txn_rollback(NULL);
	sp_err_clear(&err);
	assert_int_equal(store_txn_begin(fx->st, &tx, &err), 0);
	assert_non_null(tx);
	assert_int_equal(store_txn_begin(fx->st, &tx2, &err), SP_ERR_INTERNAL);
	assert_null(tx2);
	sp_err_clear(&err);
	assert_int_equal(store_exec(fx->st, NULL, NULL, &err, "INSERT INTO settings "
	    "(key, value) VALUES ('x', '1')", ""), SP_ERR_INTERNAL);
	assert_non_null(strstr(err.msg, "transaction"));
	sp_err_clear(&err);
	assert_int_equal(store_txn_commit(tx, &err), 0);
	/* Ended: the handle is refused. */
	assert_int_equal(store_txn_commit(tx, &err), SP_ERR_INTERNAL);
	store_txn_rollback(tx);
	/* And the lazy variant commits, then durable commits follow. */
	sp_err_clear(&err);
	assert_int_equal(store_txn_begin_lazy(fx->st, &tx, &err), 0);
	assert_int_equal(store_txn_commit(tx, &err), 0);
	assert_int_equal(raw_int(fx, "SELECT count(*) FROM settings WHERE "
	    "key = 'x'"), 0);
}

/*
 * The store's own codes and words: UNIQUE is SP_ERR_EXISTS without the
 * database's wording, a value too large to bind is SP_ERR_LIMIT (64-bit
 * length, never wrapped through an int), a parameter count that does not
 * match, or an id asked of a statement without RETURNING, is a caller bug.
 */
static void
test_errors_are_the_stores(void **state)
{
	struct fixture	*fx = *state;
	struct sp_err	 err = { 0 };
	int64_t		 id = 0;
	static const unsigned char b[4];

	assert_int_equal(store_token_insert(fx->st, NULL, "dup", "v", &id,
	    &err), 0);
	assert_true(id > 0);
	assert_int_equal(store_token_insert(fx->st, NULL, "dup", "v", &id,
	    &err), SP_ERR_EXISTS);
	assert_int_equal(id, 0);
	assert_string_equal(err.msg, "database: insert token: already exists");
	assert_null(strstr(err.msg, "UNIQUE"));
	assert_null(strstr(err.msg, "constraint"));

	/* 3 GB claimed for a 4-byte buffer: refused before it is read. */
	sp_err_clear(&err);
	assert_int_equal(store_exec(fx->st, NULL, NULL, &err, "INSERT INTO "
	    "settings VALUES (?, ?)", "sb", "big", (const void *)b,
	    (size_t)3000000000u), SP_ERR_LIMIT);
	assert_non_null(strstr(err.msg, "too large"));
	assert_int_equal(raw_int(fx, "SELECT count(*) FROM settings"), 0);

	sp_err_clear(&err);
	assert_int_equal(store_exec(fx->st, NULL, NULL, &err, "INSERT INTO "
	    "settings VALUES (?, ?)", "s", "k"), SP_ERR_INTERNAL);
	assert_non_null(strstr(err.msg, "parameters"));
	sp_err_clear(&err);
	assert_int_equal(store_exec(fx->st, NULL, NULL, &err, "DELETE FROM "
	    "settings WHERE key = ?", "ss", "k", "v"), SP_ERR_INTERNAL);
	sp_err_clear(&err);
	assert_int_equal(store_exec(fx->st, NULL, &id, &err, "INSERT INTO "
	    "settings VALUES ('k', 'v')", ""), SP_ERR_INTERNAL);
	assert_non_null(strstr(err.msg, "RETURNING"));
	assert_int_equal(raw_int(fx, "SELECT count(*) FROM settings"), 0);
	/* With RETURNING the id is the new row's. */
	sp_err_clear(&err);
	assert_int_equal(store_exec(fx->st, NULL, &id, &err, "INSERT INTO roles "
	    "(name, created) VALUES ('r', 0) RETURNING id", ""), 1);
	assert_int_equal(id, raw_int(fx, "SELECT id FROM roles WHERE "
	    "name = 'r'"));
}

/*
 * A read transaction is one snapshot on a reader connection: a commit
 * made after its first read is not seen until it ends; writes in it are
 * refused; it does not hold the writer (a write transaction runs while
 * it is open, on the same thread).
 */
static void
test_read_txn_snapshot(void **state)
{
	struct fixture			*fx = *state;
	struct sp_err			 err = { 0 };
	struct store_txn		*rt = NULL, *wt = NULL;
	struct store_audit_report	 rep;
	int64_t				 n = -1;

	assert_int_equal(store_txn_begin_read(fx->st, &rt, &err), 0);
	assert_non_null(rt);
	assert_int_equal(store_select(fx->st, rt, row_count_cb, &n, &err,
	    "SELECT count(*) FROM settings", ""), 0);
	assert_int_equal(n, 0);
	/* A writer commits meanwhile. */
	assert_int_equal(store_txn_begin(fx->st, &wt, &err), 0);
	assert_int_equal(store_exec(fx->st, wt, NULL, &err, "INSERT INTO "
	    "settings VALUES ('snap', '1')", ""), 1);
	assert_int_equal(store_txn_commit(wt, &err), 0);
	/* Not in the snapshot; seen outside it. */
	assert_int_equal(store_select(fx->st, rt, row_count_cb, &n, &err,
	    "SELECT count(*) FROM settings", ""), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_select(fx->st, NULL, row_count_cb, &n, &err,
	    "SELECT count(*) FROM settings", ""), 0);
	assert_int_equal(n, 1);
	/* No writes in it. */
	assert_int_equal(store_exec(fx->st, rt, NULL, &err, "DELETE FROM "
	    "settings", ""), SP_ERR_INTERNAL);
	assert_non_null(strstr(err.msg, "read transaction"));
	assert_int_equal(store_txn_commit(rt, &err), 0);
	/* Rolled back the same way, and the audit walk uses one. */
	sp_err_clear(&err);
	assert_int_equal(store_txn_begin_read(fx->st, &rt, &err), 0);
	store_txn_rollback(rt);
	assert_int_equal(store_audit_append(fx->st, NULL, "e", "a", "{}", &err),
	    0);
	assert_int_equal(store_audit_verify(fx->st, NULL, &rep, &err), 0);
	assert_int_equal(rep.rows, 1);
}

/*
 * Writers, readers and read transactions from several threads at once:
 * every write lands, every read succeeds, the chain stays whole.
 */
#define MIXTHREADS	6
#define MIXROUNDS	20

static void *
mixed_thread(void *arg)
{
	struct store			*st = arg;
	struct sp_err			 err = { 0 };
	struct store_txn		*tx;
	struct store_audit_report	 rep;
	char				 key[32];
	int64_t				 n;
	intptr_t			 bad = 0;
	static _Atomic int		 next;

	for (int i = 0; i < MIXROUNDS; i++) {
		snprintf(key, sizeof(key), "mix-%d", next++);
		if (store_txn_begin(st, &tx, &err) != 0 ||
		    store_exec(st, tx, NULL, &err, "INSERT INTO settings "
		    "VALUES (?, '1')", "s", key) != 1 ||
		    store_audit_append(st, tx, "mix", key, "{}", &err) != 0 ||
		    store_txn_commit(tx, &err) != 0)
			bad++;
		if (store_select(st, NULL, row_count_cb, &n, &err, "SELECT "
		    "count(*) FROM settings WHERE key = ?", "s", key) != 0 ||
		    n != 1)
			bad++;
		if (i % 5 == 0 && store_audit_verify(st, NULL, &rep, &err) != 0)
			bad++;
	}
	if (bad != 0)
		print_error("mixed: %s\n", err.msg);
	return (void *)bad;
}

static void
test_mixed_threads(void **state)
{
	struct fixture			*fx = *state;
	struct sp_err			 err = { 0 };
	struct store_audit_report	 rep;
	pthread_t			 th[MIXTHREADS];
	void				*ret;

	for (int i = 0; i < MIXTHREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, mixed_thread,
		    fx->st), 0);
	for (int i = 0; i < MIXTHREADS; i++) {
		assert_int_equal(pthread_join(th[i], &ret), 0);
		assert_null(ret);
	}
	assert_int_equal(store_audit_verify(fx->st, NULL, &rep, &err), 0);
	assert_int_equal(rep.rows, MIXTHREADS * MIXROUNDS);
	assert_int_equal(raw_int(fx, "SELECT count(*) FROM settings"),
	    MIXTHREADS * MIXROUNDS);
}

#define T(f)	cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_open_schema),
		T(test_open_newer_refused),
		T(test_module_migrations_in_order),
		T(test_open_legacy_v3),
		T(test_open_bad_path),
		T(test_reopen_keeps_data),
		T(test_tokens),
		T(test_token_keys),
		T(test_cas),
		T(test_profiles),
		T(test_cert_lifecycle),
		T(test_cert_duplicate_serial),
		T(test_cert_foreach_filters),
		T(test_cert_abandon_reserved),
		T(test_crl),
		T(test_crl_pruned),
		T(test_transaction_rollback),
		T(test_commit_without_transaction),
		T(test_audit_intact),
		T(test_audit_tamper_update),
		T(test_audit_tamper_fields),
		T(test_audit_delete_last),
		T(test_audit_delete_middle),
		T(test_audit_delete_all),
		T(test_audit_inserted_row),
		T(test_audit_threads),
		T(test_generic_statements),
		T(test_reader_not_blocked_by_writer),
		T(test_txn_misuse),
		T(test_errors_are_the_stores),
		T(test_read_txn_snapshot),
		T(test_mixed_threads),
	};

	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
