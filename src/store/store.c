#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "store/store.h"
#include "util/log.h"
#include "util/util.h"

/*
 * The store's own tables: the audit log and its head, and settings (a
 * key/value table several modules use). Every other module's tables are
 * in its own *_schema.c, listed in schemas.c.
 */
static const char *const core_migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE audit (seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL,"
	"  event TEXT NOT NULL, actor TEXT NOT NULL, details TEXT NOT NULL,"
	"  prev TEXT NOT NULL, hash TEXT NOT NULL);"
	"INSERT INTO meta VALUES ('audit_head', '0:');"
	"CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
};

const struct store_schema store_core_schema = {
	"store", core_migrations,
	sizeof(core_migrations) / sizeof(core_migrations[0]), 1,
};

/* Prepared statements, created on first use and kept for the store's life. */
enum q {
	Q_TOKEN_INSERT, Q_TOKEN_ALL, Q_TKEY_INSERT, Q_TKEY_DELETE, Q_TKEY_ALL,
	Q_CA_INSERT, Q_CA_ALL, Q_CERT_ABANDON, Q_CA_CRLNUM, Q_CA_CRLNUM_GET,
	Q_PROFILE_PUT, Q_PROFILE_ALL,
	Q_CERT_RESERVE, Q_CERT_ISSUED, Q_CERT_FAILED, Q_CERT_STATUS,
	Q_CERT_GET, Q_CERT_LIST,
	Q_CRL_INSERT, Q_CRL_PRUNE, Q_CRL_LATEST,
	Q_AUDIT_HEAD, Q_AUDIT_INSERT, Q_AUDIT_SETHEAD, Q_AUDIT_ALL,
	Q_AUDIT_RECENT,
	Q__MAX
};

#define CERT_COLS "id, ca_id, serial, status, subject, profile, not_before, " \
	"not_after, revoked_at, reason, fingerprint, der"

static const char *const qsql[Q__MAX] = {
	[Q_TOKEN_INSERT] = "INSERT INTO tokens (name, verifier, created) "
	    "VALUES (?, ?, ?)",
	[Q_TOKEN_ALL] = "SELECT id, name, verifier FROM tokens ORDER BY name",
	[Q_TKEY_INSERT] = "INSERT INTO token_keys VALUES (?, ?, ?, ?, ?, ?)",
	[Q_TKEY_DELETE] = "DELETE FROM token_keys WHERE token_id = ? "
	    "AND alias = ?",
	[Q_TKEY_ALL] = "SELECT token_id, alias, alg, wrapped, spki "
	    "FROM token_keys ORDER BY token_id, alias",
	[Q_CA_INSERT] = "INSERT INTO cas (name, subject, token, key_alias, "
	    "issuer_id, cert, crl_period, crl_number, next_crl, created) "
	    "VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
	[Q_CA_ALL] = "SELECT id, name, subject, token, key_alias, "
	    "coalesce(issuer_id, 0), cert, crl_period, crl_number, next_crl, "
	    "created FROM cas ORDER BY id",
	[Q_CERT_ABANDON] = "UPDATE certs SET status = 3 WHERE status = 0",
	[Q_CA_CRLNUM] = "UPDATE cas SET crl_number = crl_number + 1, "
	    "next_crl = ? WHERE id = ?",
	[Q_CA_CRLNUM_GET] = "SELECT crl_number FROM cas WHERE id = ?",
	[Q_PROFILE_PUT] = "INSERT INTO profiles (name, json, builtin) "
	    "VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
	    "json = excluded.json, builtin = excluded.builtin",
	[Q_PROFILE_ALL] = "SELECT name, json, builtin FROM profiles "
	    "ORDER BY name",
	[Q_CERT_RESERVE] = "INSERT INTO certs (ca_id, serial, status, "
	    "subject, profile, not_before, not_after, der, created) "
	    "VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?)",
	[Q_CERT_ISSUED] = "UPDATE certs SET status = 1, der = ?, "
	    "fingerprint = ? WHERE id = ? AND status = 0",
	[Q_CERT_FAILED] = "UPDATE certs SET status = 3 WHERE id = ? "
	    "AND status = 0",
	[Q_CERT_STATUS] = "UPDATE certs SET status = ?, revoked_at = ?, "
	    "reason = ? WHERE id = ?",
	[Q_CERT_GET] = "SELECT " CERT_COLS " FROM certs WHERE ca_id = ? "
	    "AND serial = ?",
	[Q_CERT_LIST] = "SELECT " CERT_COLS " FROM certs WHERE "
	    "(? = 0 OR ca_id = ?) AND (? = -1 OR status = ?) "
	    "ORDER BY id LIMIT ?",
	[Q_CRL_INSERT] = "INSERT INTO crls VALUES (?, ?, ?, ?, ?)",
	/* All but the newest ? CRLs of a CA. */
	[Q_CRL_PRUNE] = "DELETE FROM crls WHERE ca_id = ? AND number < "
	    "(SELECT min(number) FROM (SELECT number FROM crls WHERE "
	    "ca_id = ? ORDER BY number DESC LIMIT ?) AS newest)",
	[Q_CRL_LATEST] = "SELECT number, der FROM crls WHERE ca_id = ? "
	    "ORDER BY number DESC LIMIT 1",
	[Q_AUDIT_HEAD] = "SELECT value FROM meta WHERE key = 'audit_head'",
	[Q_AUDIT_INSERT] = "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?)",
	[Q_AUDIT_SETHEAD] = "UPDATE meta SET value = ? "
	    "WHERE key = 'audit_head'",
	[Q_AUDIT_ALL] = "SELECT seq, ts, event, actor, details, prev, hash "
	    "FROM audit ORDER BY seq",
	[Q_AUDIT_RECENT] = "SELECT seq, ts, event, actor, details "
	    "FROM audit ORDER BY seq DESC LIMIT ?",
};

struct store {
	sqlite3		*db;
	pthread_mutex_t	 mtx;		/* recursive */
	sqlite3_stmt	*stmt[Q__MAX];
	int64_t		 crl_keep;	/* CRLs kept per CA */
	int		 in_txn;	/* owned by the mutex holder */
	/*
	 * The audit head while a transaction appends to the log: read once,
	 * written to meta once at commit, forgotten at rollback.
	 */
	bool		 lazy;		/* synchronous=NORMAL for this txn */
	bool		 head_loaded;
	bool		 head_dirty;
	int64_t		 head_seq;
	char		 head_hash[65];
};

static const char *const status_names[CERT__MAX] = {
	"reserved", "active", "revoked", "failed",
};

const char *
cert_status_name(enum cert_status s)
{
	return (s >= 0 && s < CERT__MAX) ? status_names[s] : "unknown";
}

static int
dberr(struct store *st, struct sp_err *err, const char *what)
{
	int	code = SP_ERR_DB;
	int	ec = sqlite3_extended_errcode(st->db);

	if (ec == SQLITE_CONSTRAINT_UNIQUE || ec == SQLITE_CONSTRAINT_PRIMARYKEY)
		code = SP_ERR_EXISTS;
	return sp_err_set(err, code, "database: %s: %s", what,
	    sqlite3_errmsg(st->db));
}

static void
lock(struct store *st)
{
	pthread_mutex_lock(&st->mtx);
}

static void
unlock(struct store *st)
{
	pthread_mutex_unlock(&st->mtx);
}

/* Statement for q, reset and unbound; NULL on failure. Hold the lock. */
static sqlite3_stmt *
stmt(struct store *st, enum q q)
{
	sqlite3_stmt	*s = st->stmt[q];

	if (s == NULL) {
		if (sqlite3_prepare_v3(st->db, qsql[q], -1,
		    SQLITE_PREPARE_PERSISTENT, &st->stmt[q], NULL) != SQLITE_OK) {
			log_warnx("store: prepare %d: %s", q,
			    sqlite3_errmsg(st->db));
			return NULL;
		}
		return st->stmt[q];
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

static int
exec(struct store *st, const char *sql, struct sp_err *err)
{
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return dberr(st, err, "exec");
	return 0;
}

/* One integer from a query without parameters; -1 on error. */
static int64_t
query_int(struct store *st, const char *sql)
{
	sqlite3_stmt	*s = NULL;
	int64_t		 v = -1;

	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

static int
module_version(struct store *st, const char *module, int *v,
    struct sp_err *err)
{
	sqlite3_stmt	*s = NULL;
	int		 r = 0, rc;

	*v = 0;
	if (sqlite3_prepare_v2(st->db, "SELECT version FROM schema_versions "
	    "WHERE module = ?", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(s, 1, module, -1, SQLITE_STATIC) != SQLITE_OK) {
		r = dberr(st, err, "schema versions");
		goto out;
	}
	if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t x = sqlite3_column_int64(s, 0);

		if (x < 0 || x > INT_MAX)
			r = sp_err_set(err, SP_ERR_DB, "module %s: bad schema "
			    "version %lld", module, (long long)x);
		else
			*v = (int)x;
	} else if (rc != SQLITE_DONE)
		r = dberr(st, err, "schema versions");
 out:
	sqlite3_finalize(s);
	return r;
}

static int
set_module_version(struct store *st, const char *module, int64_t v,
    struct sp_err *err)
{
	sqlite3_stmt	*s = NULL;
	int		 r = 0;

	if (sqlite3_prepare_v2(st->db, "INSERT INTO schema_versions (module, "
	    "version) VALUES (?, ?) ON CONFLICT (module) DO UPDATE SET "
	    "version = excluded.version", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(s, 1, module, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 2, v) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_DONE)
		r = dberr(st, err, "schema versions");
	sqlite3_finalize(s);
	return r;
}

/*
 * Makes sure schema_versions exists. A database of the single schema
 * (user_version STORE_LEGACY_VERSION, its tables all there) gets each
 * module recorded at its legacy version; a fresh one starts empty.
 * Either way user_version becomes STORE_USER_VERSION, which older
 * binaries refuse. In one transaction.
 */
static int
bookkeeping(struct store *st, const struct store_schema *const *schemas,
    struct sp_err *err)
{
	char	pragma[64];
	int64_t	uv;
	int	r;

	if ((r = exec(st, "BEGIN IMMEDIATE", err)) != 0)
		return r;
	uv = query_int(st, "PRAGMA user_version");
	if (uv == STORE_USER_VERSION)
		goto done;
	if (uv != 0 && uv != STORE_LEGACY_VERSION) {
		if (uv > STORE_LEGACY_VERSION)
			r = sp_err_set(err, SP_ERR_DB, "database schema version "
			    "%lld is newer than this sallyport (%d)",
			    (long long)uv, STORE_USER_VERSION);
		else
			r = sp_err_set(err, SP_ERR_DB, "database schema version "
			    "%lld is too old to convert (%d is the oldest)",
			    (long long)uv, STORE_LEGACY_VERSION);
		goto fail;
	}
	if ((r = exec(st, "CREATE TABLE schema_versions (module TEXT PRIMARY "
	    "KEY, version INTEGER NOT NULL)", err)) != 0)
		goto fail;
	for (size_t i = 0; uv != 0 && schemas[i] != NULL; i++)
		if (schemas[i]->legacy > 0 && (r = set_module_version(st,
		    schemas[i]->module, schemas[i]->legacy, err)) != 0)
			goto fail;
	snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d",
	    STORE_USER_VERSION);
	if ((r = exec(st, pragma, err)) != 0)
		goto fail;
	if (uv != 0)
		log_info("store: schema version %lld converted to per-module "
		    "versions", (long long)uv);
 done:
	if ((r = exec(st, "COMMIT", err)) == 0)
		return 0;
 fail:
	(void)exec(st, "ROLLBACK", NULL);
	return r;
}

/*
 * Brings every schema to its last version, each migration in its own
 * transaction with its version. Nothing runs if any module is newer
 * than this binary.
 */
static int
migrate(struct store *st, const struct store_schema *const *schemas,
    struct sp_err *err)
{
	int	v, r;

	for (size_t i = 0; schemas[i] != NULL; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(schemas[i]->module, schemas[j]->module) == 0)
				return sp_err_set(err, SP_ERR_INTERNAL, "schema %s "
				    "listed twice", schemas[i]->module);
	if ((r = bookkeeping(st, schemas, err)) != 0)
		return r;
	for (size_t i = 0; schemas[i] != NULL; i++) {
		if ((r = module_version(st, schemas[i]->module, &v, err)) != 0)
			return r;
		if ((size_t)v > schemas[i]->count)
			return sp_err_set(err, SP_ERR_DB, "database schema of %s "
			    "is version %d, newer than this sallyport (%zu)",
			    schemas[i]->module, v, schemas[i]->count);
	}
	for (size_t i = 0; schemas[i] != NULL; i++) {
		const struct store_schema *sc = schemas[i];

		if ((r = module_version(st, sc->module, &v, err)) != 0)
			return r;
		for (size_t k = (size_t)v; k < sc->count; k++) {
			if ((r = exec(st, "BEGIN IMMEDIATE", err)) != 0)
				return r;
			if ((r = exec(st, sc->migrations[k], err)) != 0 ||
			    (r = set_module_version(st, sc->module,
			    (int64_t)k + 1, err)) != 0 ||
			    (r = exec(st, "COMMIT", err)) != 0) {
				(void)exec(st, "ROLLBACK", NULL);
				return r;
			}
		}
		if ((size_t)v < sc->count)
			log_info("store: schema of %s migrated from version %d "
			    "to %zu", sc->module, v, sc->count);
	}
	return 0;
}

int
store_open(const char *path, struct store **out, struct sp_err *err)
{
	return store_open_schemas(path, store_schemas, out, err);
}

int
store_open_schemas(const char *path, const struct store_schema *const *schemas,
    struct store **out, struct sp_err *err)
{
	struct store		*st = NULL;
	pthread_mutexattr_t	 ma;
	int			 r = SP_ERR_DB;

	*out = NULL;
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&st->mtx, &ma);
	pthread_mutexattr_destroy(&ma);
	st->crl_keep = STORE_CRL_KEEP;
	if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
		sp_err_set(err, SP_ERR_DB, "%s: %s", path,
		    st->db ? sqlite3_errmsg(st->db) : "cannot open");
		goto out;
	}
	sqlite3_busy_timeout(st->db, 5000);
	sqlite3_extended_result_codes(st->db, 1);
	/*
	 * WAL with synchronous=FULL: every commit is durable, which "record
	 * before signing" relies on; callers batch to amortise the fsync.
	 */
	if ((r = exec(st, "PRAGMA journal_mode = WAL", err)) != 0 ||
	    (r = exec(st, "PRAGMA synchronous = FULL", err)) != 0 ||
	    (r = exec(st, "PRAGMA foreign_keys = ON", err)) != 0 ||
	    (r = migrate(st, schemas, err)) != 0)
		goto out;
	*out = st;
	st = NULL;
	r = 0;
 out:
	store_close(st);
	return r;
}

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	for (int i = 0; i < Q__MAX; i++)
		sqlite3_finalize(st->stmt[i]);
	sqlite3_close(st->db);
	pthread_mutex_destroy(&st->mtx);
	free(st);
}

int
store_schema_version(struct store *st)
{
	int64_t	v;

	lock(st);
	v = query_int(st, "PRAGMA user_version");
	unlock(st);
	return v >= 0 && v <= INT_MAX ? (int)v : -1;
}

int
store_module_version(struct store *st, const char *module)
{
	int	v, r;

	lock(st);
	r = module_version(st, module, &v, NULL);
	unlock(st);
	return r == 0 ? v : -1;
}

int
store_begin_lazy(struct store *st, struct sp_err *err)
{
	int	r;

	lock(st);
	/* SQLite refuses to change the safety level inside a transaction. */
	if ((r = exec(st, "PRAGMA synchronous = NORMAL", err)) == 0) {
		if ((r = store_begin(st, err)) == 0)
			st->lazy = true;
		else if (exec(st, "PRAGMA synchronous = FULL", NULL) != 0)
			fatalx("store: cannot restore synchronous=FULL");
	}
	unlock(st);
	return r;
}

/* Back to durable commits after a lazy transaction. Hold the lock. */
static void
end_lazy(struct store *st)
{
	if (!st->lazy)
		return;
	st->lazy = false;
	if (exec(st, "PRAGMA synchronous = FULL", NULL) != 0)
		fatalx("store: cannot restore synchronous=FULL");
}

int
store_begin(struct store *st, struct sp_err *err)
{
	int	r;

	lock(st);
	if (st->in_txn) {
		unlock(st);
		return sp_err_set(err, SP_ERR_INTERNAL, "nested transaction");
	}
	if ((r = exec(st, "BEGIN IMMEDIATE", err)) != 0) {
		unlock(st);
		return r;
	}
	st->in_txn = 1;
	return 0;
}

static int	audit_head_flush(struct store *, struct sp_err *);

int
store_commit(struct store *st, struct sp_err *err)
{
	int	r;

	/*
	 * The mutex is recursive: if this thread opened the transaction the
	 * lock is taken again at once, otherwise we wait for the holder to
	 * finish and then find no transaction. Either way in_txn is read
	 * under the lock, and only the store_begin() lock is released.
	 */
	lock(st);
	if (!st->in_txn) {
		unlock(st);
		return sp_err_set(err, SP_ERR_INTERNAL,
		    "commit without a transaction");
	}
	if ((r = audit_head_flush(st, err)) != 0 ||
	    (r = exec(st, "COMMIT", err)) != 0)
		(void)exec(st, "ROLLBACK", NULL);
	st->in_txn = 0;
	st->head_loaded = st->head_dirty = false;
	end_lazy(st);
	unlock(st);
	unlock(st);	/* the store_begin() lock */
	return r;
}

void
store_rollback(struct store *st)
{
	lock(st);
	if (st->in_txn) {
		(void)exec(st, "ROLLBACK", NULL);
		st->in_txn = 0;
		st->head_loaded = st->head_dirty = false;
		end_lazy(st);
		unlock(st);	/* the store_begin() lock */
	}
	unlock(st);
}

/* Runs a statement that returns no rows; checks it changed one row. */
static int
step_done(struct store *st, sqlite3_stmt *s, bool want_change,
    const char *what, struct sp_err *err)
{
	if (sqlite3_step(s) != SQLITE_DONE)
		return dberr(st, err, what);
	if (want_change && sqlite3_changes(st->db) != 1)
		return sp_err_set(err, SP_ERR_NOTFOUND, "%s: no such row", what);
	return 0;
}

static const char *
col_text(sqlite3_stmt *s, int i)
{
	const unsigned char	*t = sqlite3_column_text(s, i);

	return t != NULL ? (const char *)t : "";
}

/* --- tokens --------------------------------------------------------- */

int
store_token_insert(struct store *st, const char *name, const char *verifier,
    int64_t *id, struct sp_err *err)
{
	sqlite3_stmt	*s;
	int		 r;

	lock(st);
	if ((s = stmt(st, Q_TOKEN_INSERT)) == NULL) {
		r = dberr(st, err, "prepare");
		goto out;
	}
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, verifier, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, sp_now());
	if ((r = step_done(st, s, false, "insert token", err)) == 0)
		*id = sqlite3_last_insert_rowid(st->db);
	sqlite3_reset(s);
 out:
	unlock(st);
	return r;
}

int
store_token_foreach(struct store *st, store_token_cb *cb, void *arg)
{
	sqlite3_stmt		*s;
	struct store_token	 t;
	int			 r = 0, rc;

	lock(st);
	if ((s = stmt(st, Q_TOKEN_ALL)) == NULL) {
		r = SP_ERR_DB;
		goto out;
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		t.id = sqlite3_column_int64(s, 0);
		t.name = col_text(s, 1);
		t.verifier = col_text(s, 2);
		if ((r = cb(&t, arg)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = SP_ERR_DB;
	sqlite3_reset(s);
 out:
	unlock(st);
	return r;
}

int
store_token_key_insert(struct store *st, const struct store_token_key *k,
    struct sp_err *err)
{
	sqlite3_stmt	*s;
	int		 r;

	lock(st);
	if ((s = stmt(st, Q_TKEY_INSERT)) == NULL) {
		r = dberr(st, err, "prepare");
		goto out;
	}
	sqlite3_bind_int64(s, 1, k->token_id);
	sqlite3_bind_text(s, 2, k->alias, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, k->alg);
	sqlite3_bind_blob(s, 4, k->wrapped, (int)k->wlen, SQLITE_STATIC);
	sqlite3_bind_blob(s, 5, k->spki, (int)k->spkilen, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, sp_now());
	r = step_done(st, s, false, "insert key", err);
	sqlite3_reset(s);
 out:
	unlock(st);
	return r;
}

int
store_token_key_delete(struct store *st, int64_t token_id, const char *alias,
    struct sp_err *err)
{
	sqlite3_stmt	*s;
	int		 r;

	lock(st);
	if ((s = stmt(st, Q_TKEY_DELETE)) == NULL) {
		r = dberr(st, err, "prepare");
		goto out;
	}
	sqlite3_bind_int64(s, 1, token_id);
	sqlite3_bind_text(s, 2, alias, -1, SQLITE_STATIC);
	r = step_done(st, s, true, "delete key", err);
	sqlite3_reset(s);
 out:
	unlock(st);
	return r;
}

int
store_token_key_foreach(struct store *st, store_token_key_cb *cb, void *arg)
{
	sqlite3_stmt		*s;
	struct store_token_key	 k;
	int			 r = 0, rc;

	lock(st);
	if ((s = stmt(st, Q_TKEY_ALL)) == NULL) {
		r = SP_ERR_DB;
		goto out;
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		k.token_id = sqlite3_column_int64(s, 0);
		k.alias = col_text(s, 1);
		k.alg = sqlite3_column_int(s, 2);
		k.wrapped = sqlite3_column_blob(s, 3);
		k.wlen = (size_t)sqlite3_column_bytes(s, 3);
		k.spki = sqlite3_column_blob(s, 4);
		k.spkilen = (size_t)sqlite3_column_bytes(s, 4);
		if ((r = cb(&k, arg)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = SP_ERR_DB;
	sqlite3_reset(s);
 out:
	unlock(st);
	return r;
}

/* --- CAs ------------------------------------------------------------ */

int
store_ca_insert(struct store *st, const struct store_ca *ca, int64_t *id,
    struct sp_err *err)
{
	sqlite3_stmt	*s;
	int		 r;

	lock(st);
	if ((s = stmt(st, Q_CA_INSERT)) == NULL) {
		r = dberr(st, err, "prepare");
		goto out;
	}
	sqlite3_bind_text(s, 1, ca->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, ca->subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, ca->token, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, ca->key_alias, -1, SQLITE_STATIC);
	if (ca->issuer_id != 0)
		sqlite3_bind_int64(s, 5, ca->issuer_id);
	else
		sqlite3_bind_null(s, 5);
	sqlite3_bind_blob(s, 6, ca->cert, (int)ca->certlen, SQLITE_STATIC);
	sqlite3_bind_int64(s, 7, ca->crl_period);
	sqlite3_bind_int64(s, 8, ca->next_crl);
	sqlite3_bind_int64(s, 9, sp_now());
	if ((r = step_done(st, s, false, "insert CA", err)) == 0)
		*id = sqlite3_last_insert_rowid(st->db);
	sqlite3_reset(s);
 out:
	unlock(st);
	return r;
}

int
store_ca_foreach(struct store *st, store_ca_cb *cb, void *arg)
{
	sqlite3_stmt	*s;
	struct store_ca	 c;
	int		 r = 0, rc;

	lock(st);
	if ((s = stmt(st, Q_CA_ALL)) == NULL) {
		r = SP_ERR_DB;
		goto out;
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		c.id = sqlite3_column_int64(s, 0);
		c.name = col_text(s, 1);
		c.subject = col_text(s, 2);
		c.token = col_text(s, 3);
		c.key_alias = col_text(s, 4);
		c.issuer_id = sqlite3_column_int64(s, 5);
		c.cert = sqlite3_column_blob(s, 6);
		c.certlen = (size_t)sqlite3_column_bytes(s, 6);
		c.crl_period = sqlite3_column_int64(s, 7);
		c.crl_number = sqlite3_column_int64(s, 8);
		c.next_crl = (time_t)sqlite3_column_int64(s, 9);
		c.created = (time_t)sqlite3_column_int64(s, 10);
		if ((r = cb(&c, arg)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = SP_ERR_DB;
	sqlite3_reset(s);
 out:
	unlock(st);
	return r;
}

int
store_cert_abandon_reserved(struct store *st, struct sp_err *err)
{
	sqlite3_stmt	*s;
	int		 r;

	lock(st);
	if ((s = stmt(st, Q_CERT_ABANDON)) == NULL) {
		r = dberr(st, err, "prepare");
		goto out;
	}
	if ((r = step_done(st, s, false, "abandon reserved", err)) == 0)
		r = sqlite3_changes(st->db);
	sqlite3_reset(s);
 out:
	unlock(st);
	return r;
}

int
store_ca_next_crl(struct store *st, int64_t ca_id, time_t next_crl,
    int64_t *number, struct sp_err *err)
{
	sqlite3_stmt	*s;
	int		 r;

	lock(st);
	if ((s = stmt(st, Q_CA_CRLNUM)) == NULL) {
		r = dberr(st, err, "prepare");
		goto out;
	}
	sqlite3_bind_int64(s, 1, next_crl);
	sqlite3_bind_int64(s, 2, ca_id);
	r = step_done(st, s, true, "CRL number", err);
	sqlite3_reset(s);
	if (r != 0)
		goto out;
	if ((s = stmt(st, Q_CA_CRLNUM_GET)) == NULL) {
		r = dberr(st, err, "prepare");
		goto out;
	}
	sqlite3_bind_int64(s, 1, ca_id);
	if (sqlite3_step(s) == SQLITE_ROW)
		*number = sqlite3_column_int64(s, 0);
	else
		r = dberr(st, err, "CRL number");
	sqlite3_reset(s);
 out:
	unlock(st);
	return r;
}

/* --- profiles -------------------------------------------------------- */

int
store_profile_put(struct store *st, const struct store_profile *p,
    struct sp_err *err)
{
	sqlite3_stmt	*s;
	int		 r;

	lock(st);
	if ((s = stmt(st, Q_PROFILE_PUT)) == NULL) {
		r = dberr(st, err, "prepare");
		goto out;
	}
	sqlite3_bind_text(s, 1, p->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, p->json, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, p->builtin);
	r = step_done(st, s, false, "store profile", err);
	sqlite3_reset(s);
 out:
	unlock(st);
	return r;
}

int
store_profile_foreach(struct store *st, store_profile_cb *cb, void *arg)
{
	sqlite3_stmt		*s;
	struct store_profile	 p;
	int			 r = 0, rc;

	lock(st);
	if ((s = stmt(st, Q_PROFILE_ALL)) == NULL) {
		r = SP_ERR_DB;
		goto out;
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		p.name = col_text(s, 0);
		p.json = col_text(s, 1);
		p.builtin = sqlite3_column_int(s, 2) != 0;
		if ((r = cb(&p, arg)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = SP_ERR_DB;
	sqlite3_reset(s);
 out:
	unlock(st);
	return r;
}

/* --- certificates ------------------------------------------------------ */

int
store_cert_reserve(struct store *st, const struct store_cert *c, int64_t *id,
    struct sp_err *err)
{
	sqlite3_stmt	*s;
	int		 r;

	lock(st);
	if ((s = stmt(st, Q_CERT_RESERVE)) == NULL) {
		r = dberr(st, err, "prepare");
		goto out;
	}
	sqlite3_bind_int64(s, 1, c->ca_id);
	sqlite3_bind_text(s, 2, c->serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, c->subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, c->profile, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, c->not_before);
	sqlite3_bind_int64(s, 6, c->not_after);
	sqlite3_bind_blob(s, 7, c->der, (int)c->derlen, SQLITE_STATIC);
	sqlite3_bind_int64(s, 8, sp_now());
	if ((r = step_done(st, s, false, "reserve serial", err)) == 0)
		*id = sqlite3_last_insert_rowid(st->db);
	sqlite3_reset(s);
 out:
	unlock(st);
	return r;
}

int
store_cert_issued(struct store *st, int64_t id, const unsigned char *der,
    size_t len, const char *fingerprint, struct sp_err *err)
{
	sqlite3_stmt	*s;
	int		 r;

	lock(st);
	if ((s = stmt(st, Q_CERT_ISSUED)) == NULL) {
		r = dberr(st, err, "prepare");
		goto out;
	}
	sqlite3_bind_blob(s, 1, der, (int)len, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, fingerprint, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, id);
	r = step_done(st, s, true, "store certificate", err);
	sqlite3_reset(s);
 out:
	unlock(st);
	return r;
}

int
store_cert_failed(struct store *st, int64_t id, struct sp_err *err)
{
	sqlite3_stmt	*s;
	int		 r;

	lock(st);
	if ((s = stmt(st, Q_CERT_FAILED)) == NULL) {
		r = dberr(st, err, "prepare");
		goto out;
	}
	sqlite3_bind_int64(s, 1, id);
	r = step_done(st, s, true, "mark failed", err);
	sqlite3_reset(s);
 out:
	unlock(st);
	return r;
}

int
store_cert_set_status(struct store *st, int64_t id, enum cert_status status,
    time_t revoked_at, int reason, struct sp_err *err)
{
	sqlite3_stmt	*s;
	int		 r;

	lock(st);
	if ((s = stmt(st, Q_CERT_STATUS)) == NULL) {
		r = dberr(st, err, "prepare");
		goto out;
	}
	sqlite3_bind_int(s, 1, status);
	sqlite3_bind_int64(s, 2, revoked_at);
	sqlite3_bind_int(s, 3, reason);
	sqlite3_bind_int64(s, 4, id);
	r = step_done(st, s, true, "certificate status", err);
	sqlite3_reset(s);
 out:
	unlock(st);
	return r;
}

static void
cert_row(sqlite3_stmt *s, struct store_cert *c)
{
	c->id = sqlite3_column_int64(s, 0);
	c->ca_id = sqlite3_column_int64(s, 1);
	c->serial = col_text(s, 2);
	c->status = (enum cert_status)sqlite3_column_int(s, 3);
	c->subject = col_text(s, 4);
	c->profile = col_text(s, 5);
	c->not_before = (time_t)sqlite3_column_int64(s, 6);
	c->not_after = (time_t)sqlite3_column_int64(s, 7);
	c->revoked_at = (time_t)sqlite3_column_int64(s, 8);
	c->reason = sqlite3_column_int(s, 9);
	c->fingerprint = col_text(s, 10);
	c->der = sqlite3_column_blob(s, 11);
	c->derlen = (size_t)sqlite3_column_bytes(s, 11);
}

int
store_cert_get(struct store *st, int64_t ca_id, const char *serial,
    store_cert_cb *cb, void *arg, struct sp_err *err)
{
	sqlite3_stmt		*s;
	struct store_cert	 c;
	int			 r, rc;

	lock(st);
	if ((s = stmt(st, Q_CERT_GET)) == NULL) {
		r = dberr(st, err, "prepare");
		goto out;
	}
	sqlite3_bind_int64(s, 1, ca_id);
	sqlite3_bind_text(s, 2, serial, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		cert_row(s, &c);
		r = cb(&c, arg);
	} else if (rc == SQLITE_DONE)
		r = sp_err_set(err, SP_ERR_NOTFOUND, "no certificate with "
		    "serial %s", serial);
	else
		r = dberr(st, err, "certificate");
	sqlite3_reset(s);
 out:
	unlock(st);
	return r;
}

int
store_cert_foreach(struct store *st, const struct store_cert_filter *f,
    store_cert_cb *cb, void *arg)
{
	sqlite3_stmt		*s;
	struct store_cert	 c;
	int			 r = 0, rc;

	lock(st);
	if ((s = stmt(st, Q_CERT_LIST)) == NULL) {
		r = SP_ERR_DB;
		goto out;
	}
	/* Plain positional parameters (PostgreSQL has no ?N); no limit is
	 * the largest one, as LIMIT -1 is SQLite-only. */
	if (sqlite3_bind_int64(s, 1, f->ca_id) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 2, f->ca_id) != SQLITE_OK ||
	    sqlite3_bind_int(s, 3, f->status) != SQLITE_OK ||
	    sqlite3_bind_int(s, 4, f->status) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 5, f->limit == 0 || f->limit > INT64_MAX ?
	    INT64_MAX : (int64_t)f->limit) != SQLITE_OK) {
		r = SP_ERR_DB;
		goto out;
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		cert_row(s, &c);
		if ((r = cb(&c, arg)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = SP_ERR_DB;
	sqlite3_reset(s);
 out:
	unlock(st);
	return r;
}

/* --- CRLs -------------------------------------------------------------- */

int
store_crl_insert(struct store *st, int64_t ca_id, int64_t number,
    time_t this_update, time_t next_update, const unsigned char *der,
    size_t len, struct sp_err *err)
{
	sqlite3_stmt	*s;
	int		 r;

	lock(st);
	if ((s = stmt(st, Q_CRL_INSERT)) == NULL) {
		r = dberr(st, err, "prepare");
		goto out;
	}
	if (len > INT_MAX) {
		r = sp_err_set(err, SP_ERR_LIMIT, "CRL too large to store");
		goto out;
	}
	sqlite3_bind_int64(s, 1, ca_id);
	sqlite3_bind_int64(s, 2, number);
	sqlite3_bind_int64(s, 3, this_update);
	sqlite3_bind_int64(s, 4, next_update);
	sqlite3_bind_blob(s, 5, der, (int)len, SQLITE_STATIC);
	r = step_done(st, s, false, "store CRL", err);
	sqlite3_reset(s);
	if (r != 0)
		goto out;
	/* Only the latest few are ever served: the table stays bounded. */
	if ((s = stmt(st, Q_CRL_PRUNE)) == NULL) {
		r = dberr(st, err, "prepare");
		goto out;
	}
	if (sqlite3_bind_int64(s, 1, ca_id) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 2, ca_id) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 3, st->crl_keep) != SQLITE_OK)
		r = dberr(st, err, "bind");
	else
		r = step_done(st, s, false, "prune CRLs", err);
	sqlite3_reset(s);
 out:
	unlock(st);
	return r;
}

void
store_set_crl_keep(struct store *st, int64_t keep)
{
	lock(st);
	st->crl_keep = keep > 0 ? keep : STORE_CRL_KEEP;
	unlock(st);
}

int
store_crl_latest(struct store *st, int64_t ca_id, unsigned char **der,
    size_t *len, int64_t *number, struct sp_err *err)
{
	sqlite3_stmt	*s;
	int		 r = 0, rc;

	*der = NULL;
	*len = 0;
	lock(st);
	if ((s = stmt(st, Q_CRL_LATEST)) == NULL) {
		r = dberr(st, err, "prepare");
		goto out;
	}
	sqlite3_bind_int64(s, 1, ca_id);
	if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(s, 1);

		if ((*der = malloc(n ? n : 1)) == NULL)
			r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		else {
			memcpy(*der, sqlite3_column_blob(s, 1), n);
			*len = n;
			*number = sqlite3_column_int64(s, 0);
		}
	} else if (rc == SQLITE_DONE)
		r = sp_err_set(err, SP_ERR_NOTFOUND, "no CRL has been made "
		    "for this CA yet");
	else
		r = dberr(st, err, "CRL");
	sqlite3_reset(s);
 out:
	unlock(st);
	return r;
}

/* --- audit ------------------------------------------------------------- */

/*
 * hash = SHA-256("SEQ|TS|" then "LEN:" + field for prev, event, actor and
 * details), lower-case hex. The text fields are length-prefixed so no two
 * rows collide by moving a separator.
 */
static void
audit_hash(const char *prev, int64_t seq, int64_t ts, const char *event,
    const char *actor, const char *details, char out[65])
{
	EVP_MD_CTX	*md = EVP_MD_CTX_new();
	unsigned char	 h[32];
	unsigned int	 hl = 0;
	char		 num[64];
	const char	*f[] = { prev, event, actor, details };

	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		fatalx("audit: digest init");
	snprintf(num, sizeof(num), "%lld|%lld|", (long long)seq, (long long)ts);
	EVP_DigestUpdate(md, num, strlen(num));
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		size_t len = strlen(f[i]);

		snprintf(num, sizeof(num), "%zu:", len);
		EVP_DigestUpdate(md, num, strlen(num));
		EVP_DigestUpdate(md, f[i], len);
	}
	EVP_DigestFinal_ex(md, h, &hl);
	EVP_MD_CTX_free(md);
	sp_hex_encode(h, sizeof(h), out);
}

/* Parses the meta head "SEQ:HASH". */
static int
audit_head(struct store *st, int64_t *seq, char prev[65], struct sp_err *err)
{
	sqlite3_stmt	*s;
	const char	*v, *colon;
	int		 r = 0;

	if ((s = stmt(st, Q_AUDIT_HEAD)) == NULL)
		return dberr(st, err, "prepare");
	if (sqlite3_step(s) != SQLITE_ROW) {
		r = dberr(st, err, "audit head");
		goto out;
	}
	v = col_text(s, 0);
	if ((colon = strchr(v, ':')) == NULL || strlen(colon + 1) > 64) {
		r = sp_err_set(err, SP_ERR_DB, "audit head is corrupt");
		goto out;
	}
	*seq = strtoll(v, NULL, 10);
	memcpy(prev, colon + 1, strlen(colon + 1) + 1);
 out:
	sqlite3_reset(s);
	return r;
}

int
store_audit_append(struct store *st, const char *event, const char *actor,
    const char *details, struct sp_err *err)
{
	sqlite3_stmt	*s;
	char		 prev[65], hash[65];
	int64_t		 seq, ts = sp_now();
	int		 r, own;

	lock(st);
	own = !st->in_txn;
	if (own && (r = store_begin(st, err)) != 0)
		goto out;
	if (!st->head_loaded) {
		if ((r = audit_head(st, &st->head_seq, st->head_hash,
		    err)) != 0)
			goto done;
		st->head_loaded = true;
	}
	seq = st->head_seq + 1;
	memcpy(prev, st->head_hash, sizeof(prev));
	audit_hash(prev, seq, ts, event, actor, details, hash);
	if ((s = stmt(st, Q_AUDIT_INSERT)) == NULL) {
		r = dberr(st, err, "prepare");
		goto done;
	}
	sqlite3_bind_int64(s, 1, seq);
	sqlite3_bind_int64(s, 2, ts);
	sqlite3_bind_text(s, 3, event, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, actor, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, details, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 6, prev, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 7, hash, -1, SQLITE_STATIC);
	r = step_done(st, s, false, "audit", err);
	sqlite3_reset(s);
	if (r != 0)
		goto done;
	st->head_seq = seq;
	memcpy(st->head_hash, hash, sizeof(st->head_hash));
	st->head_dirty = true;
 done:
	if (own) {
		if (r == 0)
			r = store_commit(st, err);
		else
			store_rollback(st);
	}
 out:
	unlock(st);
	return r;
}

/* Writes the cached head to meta; inside the transaction, before COMMIT. */
static int
audit_head_flush(struct store *st, struct sp_err *err)
{
	sqlite3_stmt	*s;
	char		 head[96];
	int		 r;

	if (!st->head_dirty)
		return 0;
	snprintf(head, sizeof(head), "%lld:%s", (long long)st->head_seq,
	    st->head_hash);
	if ((s = stmt(st, Q_AUDIT_SETHEAD)) == NULL)
		return dberr(st, err, "prepare");
	sqlite3_bind_text(s, 1, head, -1, SQLITE_STATIC);
	r = step_done(st, s, true, "audit head", err);
	sqlite3_reset(s);
	return r;
}

int
store_audit_verify(struct store *st, struct store_audit_report *rep,
    struct sp_err *err)
{
	sqlite3_stmt	*s;
	char		 prev[65] = "", hash[65], head_hash[65];
	int64_t		 expect = 1, head_seq = 0;
	int		 r = 0, rc;

	memset(rep, 0, sizeof(*rep));
	lock(st);
	if ((r = audit_head(st, &head_seq, head_hash, err)) != 0)
		goto out;
	if ((s = stmt(st, Q_AUDIT_ALL)) == NULL) {
		r = dberr(st, err, "prepare");
		goto out;
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t seq = sqlite3_column_int64(s, 0);

		if (seq != expect) {
			rep->bad_seq = expect;
			r = sp_err_set(err, SP_ERR_POLICY, "audit row %lld is "
			    "missing (next row is %lld)", (long long)expect,
			    (long long)seq);
			break;
		}
		if (strcmp(col_text(s, 5), prev) != 0) {
			rep->bad_seq = seq;
			r = sp_err_set(err, SP_ERR_POLICY, "audit row %lld does "
			    "not chain to row %lld", (long long)seq,
			    (long long)seq - 1);
			break;
		}
		audit_hash(prev, seq, sqlite3_column_int64(s, 1),
		    col_text(s, 2), col_text(s, 3), col_text(s, 4), hash);
		if (strcmp(hash, col_text(s, 6)) != 0) {
			rep->bad_seq = seq;
			r = sp_err_set(err, SP_ERR_POLICY, "audit row %lld was "
			    "modified (hash mismatch)", (long long)seq);
			break;
		}
		memcpy(prev, hash, sizeof(prev));
		rep->rows++;
		expect++;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = dberr(st, err, "audit");
	sqlite3_reset(s);
	if (r == 0 && (head_seq != rep->rows || strcmp(head_hash, prev) != 0)) {
		rep->bad_seq = rep->rows + 1;
		r = sp_err_set(err, SP_ERR_POLICY, "audit log ends at row %lld "
		    "but its head records row %lld: rows were deleted",
		    (long long)rep->rows, (long long)head_seq);
	}
	memcpy(rep->head, prev, sizeof(rep->head));
 out:
	unlock(st);
	return r;
}

int
store_audit_foreach(struct store *st, size_t limit, store_audit_cb *cb,
    void *arg)
{
	sqlite3_stmt		*s;
	struct store_audit_row	 a;
	int			 r = 0, rc;

	lock(st);
	if ((s = stmt(st, Q_AUDIT_RECENT)) == NULL) {
		r = SP_ERR_DB;
		goto out;
	}
	sqlite3_bind_int64(s, 1, limit == 0 ? -1 : (int64_t)limit);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		a.seq = sqlite3_column_int64(s, 0);
		a.ts = (time_t)sqlite3_column_int64(s, 1);
		a.event = col_text(s, 2);
		a.actor = col_text(s, 3);
		a.details = col_text(s, 4);
		if ((r = cb(&a, arg)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = SP_ERR_DB;
	sqlite3_reset(s);
 out:
	unlock(st);
	return r;
}

/* --- generic statements ---------------------------------------------------- */

struct store_row {
	sqlite3_stmt	*s;
};

/* Binds fmt's parameters: 's' string (NULL binds NULL), 'i' int64_t, 'b'
 * blob as (const void *, size_t). */
static int
vbind(sqlite3_stmt *s, const char *fmt, va_list ap)
{
	for (int i = 0; fmt[i] != '\0'; i++) {
		const char	*str;
		const void	*blob;
		size_t		 len;
		int		 rc;

		switch (fmt[i]) {
		case 's':
			str = va_arg(ap, const char *);
			rc = str ? sqlite3_bind_text(s, i + 1, str, -1,
			    SQLITE_TRANSIENT) : sqlite3_bind_null(s, i + 1);
			break;
		case 'i':
			rc = sqlite3_bind_int64(s, i + 1, va_arg(ap, int64_t));
			break;
		case 'b':
			blob = va_arg(ap, const void *);
			len = va_arg(ap, size_t);
			rc = blob ? sqlite3_bind_blob(s, i + 1, blob, (int)len,
			    SQLITE_TRANSIENT) : sqlite3_bind_null(s, i + 1);
			break;
		default:
			return SP_ERR_INTERNAL;
		}
		if (rc != SQLITE_OK)
			return SP_ERR_DB;
	}
	return 0;
}

int
store_exec(struct store *st, int64_t *id, struct sp_err *err,
    const char *sql, const char *fmt, ...)
{
	sqlite3_stmt	*s = NULL;
	va_list		 ap;
	int		 r;

	if (id != NULL)
		*id = 0;
	lock(st);
	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
		r = dberr(st, err, "prepare");
		goto out;
	}
	va_start(ap, fmt);
	r = vbind(s, fmt, ap);
	va_end(ap);
	if (r != 0) {
		r = dberr(st, err, "bind");
		goto out;
	}
	if (sqlite3_step(s) != SQLITE_DONE) {
		r = dberr(st, err, "statement");
		goto out;
	}
	r = sqlite3_changes(st->db);
	if (id != NULL)
		*id = sqlite3_last_insert_rowid(st->db);
 out:
	sqlite3_finalize(s);
	unlock(st);
	return r;
}

int
store_select(struct store *st, store_row_cb *cb, void *arg,
    struct sp_err *err, const char *sql, const char *fmt, ...)
{
	struct store_row	 row;
	va_list			 ap;
	int			 r, rc;

	lock(st);
	row.s = NULL;
	if (sqlite3_prepare_v2(st->db, sql, -1, &row.s, NULL) != SQLITE_OK) {
		r = dberr(st, err, "prepare");
		goto out;
	}
	va_start(ap, fmt);
	r = vbind(row.s, fmt, ap);
	va_end(ap);
	if (r != 0) {
		r = dberr(st, err, "bind");
		goto out;
	}
	while ((rc = sqlite3_step(row.s)) == SQLITE_ROW)
		if ((r = cb(&row, arg)) != 0)
			goto out;
	if (rc != SQLITE_DONE)
		r = dberr(st, err, "query");
 out:
	sqlite3_finalize(row.s);
	unlock(st);
	return r;
}

const char *
store_row_text(const struct store_row *row, int col)
{
	return col_text(row->s, col);
}

int64_t
store_row_int(const struct store_row *row, int col)
{
	return sqlite3_column_int64(row->s, col);
}

const unsigned char *
store_row_blob(const struct store_row *row, int col, size_t *len)
{
	const unsigned char	*b = sqlite3_column_blob(row->s, col);

	*len = (size_t)sqlite3_column_bytes(row->s, col);
	return b;
}

bool
store_row_null(const struct store_row *row, int col)
{
	return sqlite3_column_type(row->s, col) == SQLITE_NULL;
}
