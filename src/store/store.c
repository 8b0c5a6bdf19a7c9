#include <errno.h>
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
	Q_CA_INSERT, Q_CA_ALL, Q_CERT_ABANDON, Q_CA_CRLNUM,
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
	    "VALUES (?, ?, ?) RETURNING id",
	[Q_TOKEN_ALL] = "SELECT id, name, verifier FROM tokens ORDER BY name",
	[Q_TKEY_INSERT] = "INSERT INTO token_keys VALUES (?, ?, ?, ?, ?, ?)",
	[Q_TKEY_DELETE] = "DELETE FROM token_keys WHERE token_id = ? "
	    "AND alias = ?",
	[Q_TKEY_ALL] = "SELECT token_id, alias, alg, wrapped, spki "
	    "FROM token_keys ORDER BY token_id, alias",
	[Q_CA_INSERT] = "INSERT INTO cas (name, subject, token, key_alias, "
	    "issuer_id, cert, crl_period, crl_number, next_crl, created) "
	    "VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?) RETURNING id",
	[Q_CA_ALL] = "SELECT id, name, subject, token, key_alias, "
	    "coalesce(issuer_id, 0), cert, crl_period, crl_number, next_crl, "
	    "created FROM cas ORDER BY id",
	[Q_CERT_ABANDON] = "UPDATE certs SET status = 3 WHERE status = 0",
	[Q_CA_CRLNUM] = "UPDATE cas SET crl_number = crl_number + 1, "
	    "next_crl = ? WHERE id = ? RETURNING crl_number",
	[Q_PROFILE_PUT] = "INSERT INTO profiles (name, json, builtin) "
	    "VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
	    "json = excluded.json, builtin = excluded.builtin",
	[Q_PROFILE_ALL] = "SELECT name, json, builtin FROM profiles "
	    "ORDER BY name",
	[Q_CERT_RESERVE] = "INSERT INTO certs (ca_id, serial, status, "
	    "subject, profile, not_before, not_after, der, created) "
	    "VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?) RETURNING id",
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

/* One connection and its cached statements. */
struct conn {
	sqlite3		*db;
	sqlite3_stmt	*stmt[Q__MAX];
	struct conn	*next;		/* in the reader pool's free list */
};

/*
 * The writer's transaction. There is one writer connection, so one open
 * transaction at a time: the handle is the store's, valid from begin to
 * commit or rollback, and holds wmtx all that time.
 */
struct store_txn {
	struct store	*st;
	pthread_t	 owner;
	bool		 open;
	bool		 lazy;		/* synchronous=NORMAL for this txn */
	/*
	 * The audit head while the transaction appends to the log: read
	 * once, written to meta once at commit, forgotten at rollback.
	 */
	bool		 head_loaded;
	bool		 head_dirty;
	int64_t		 head_seq;
	char		 head_hash[65];
};

#define READERS_IDLE	8	/* idle reader connections kept */

struct store {
	char		*path;
	struct conn	 w;		/* the one writer connection */
	/*
	 * Serializes the writer: held by an open transaction, or for one
	 * autocommit statement. Error checking, not recursive: a thread
	 * that holds it and asks again gets EDEADLK (reported), not a hang.
	 */
	pthread_mutex_t	 wmtx;
	struct store_txn tx;		/* under wmtx */
	/* Readers: connections of their own (WAL), never behind wmtx. */
	pthread_mutex_t	 rmtx;
	struct conn	*rfree;
	size_t		 nrfree;
	_Atomic int64_t	 crl_keep;	/* CRLs kept per CA */
};

static const char *const status_names[CERT__MAX] = {
	"reserved", "active", "revoked", "failed",
};

const char *
cert_status_name(enum cert_status s)
{
	return (s >= 0 && s < CERT__MAX) ? status_names[s] : "unknown";
}

/*
 * The store's own codes and words: UNIQUE and PRIMARY KEY violations are
 * SP_ERR_EXISTS ("already exists"), a value too large SP_ERR_LIMIT, the
 * rest SP_ERR_DB with the database's own sentence (no result codes).
 */
static int
dberr(struct conn *c, struct sp_err *err, const char *what)
{
	int	ec = sqlite3_extended_errcode(c->db);

	if (ec == SQLITE_CONSTRAINT_UNIQUE || ec == SQLITE_CONSTRAINT_PRIMARYKEY)
		return sp_err_set(err, SP_ERR_EXISTS, "database: %s: already "
		    "exists", what);
	if (ec == SQLITE_TOOBIG)
		return sp_err_set(err, SP_ERR_LIMIT, "database: %s: value too "
		    "large", what);
	return sp_err_set(err, SP_ERR_DB, "database: %s: %s", what,
	    sqlite3_errmsg(c->db));
}

static int
exec(struct conn *c, const char *sql, struct sp_err *err)
{
	if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return dberr(c, err, "exec");
	return 0;
}

/* Statement for q, reset and unbound; NULL on failure. */
static sqlite3_stmt *
stmt(struct conn *c, enum q q)
{
	sqlite3_stmt	*s = c->stmt[q];

	if (s == NULL) {
		if (sqlite3_prepare_v3(c->db, qsql[q], -1,
		    SQLITE_PREPARE_PERSISTENT, &c->stmt[q], NULL) != SQLITE_OK) {
			log_warnx("store: prepare %d: %s", q,
			    sqlite3_errmsg(c->db));
			return NULL;
		}
		return c->stmt[q];
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

static void
conn_close(struct conn *c)
{
	for (int i = 0; i < Q__MAX; i++) {
		sqlite3_finalize(c->stmt[i]);
		c->stmt[i] = NULL;
	}
	sqlite3_close(c->db);
	c->db = NULL;
}

static int
conn_open(struct conn *c, const char *path, bool reader, struct sp_err *err)
{
	memset(c, 0, sizeof(*c));
	if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE |
	    (reader ? 0 : SQLITE_OPEN_CREATE) | SQLITE_OPEN_FULLMUTEX,
	    NULL) != SQLITE_OK) {
		sp_err_set(err, SP_ERR_DB, "%s: %s", path,
		    c->db ? sqlite3_errmsg(c->db) : "cannot open");
		conn_close(c);
		return SP_ERR_DB;
	}
	sqlite3_busy_timeout(c->db, 5000);
	sqlite3_extended_result_codes(c->db, 1);
	if (reader)
		return exec(c, "PRAGMA query_only = ON", err);
	/*
	 * WAL with synchronous=FULL: every commit is durable, which "record
	 * before signing" relies on; callers batch to amortise the fsync.
	 */
	return exec(c, "PRAGMA journal_mode = WAL", err) ||
	    exec(c, "PRAGMA synchronous = FULL", err) ||
	    exec(c, "PRAGMA foreign_keys = ON", err) ? SP_ERR_DB : 0;
}

/* --- where a statement runs ------------------------------------------ */

static int
wlock(struct store *st, struct sp_err *err)
{
	int	e = pthread_mutex_lock(&st->wmtx);

	if (e == EDEADLK)
		return sp_err_set(err, SP_ERR_INTERNAL, "store: this thread "
		    "has a transaction open: the statement must be given it");
	if (e != 0)
		fatalx("store: writer lock: %s", strerror(e));
	return 0;
}

static void
wunlock(struct store *st)
{
	int	e = pthread_mutex_unlock(&st->wmtx);

	if (e != 0)
		fatalx("store: writer unlock: %s", strerror(e));
}

static int
reader_get(struct store *st, struct conn **out, struct sp_err *err)
{
	struct conn	*c;
	int		 r;

	pthread_mutex_lock(&st->rmtx);
	if ((c = st->rfree) != NULL) {
		st->rfree = c->next;
		st->nrfree--;
	}
	pthread_mutex_unlock(&st->rmtx);
	if (c == NULL) {
		if ((c = malloc(sizeof(*c))) == NULL)
			return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		if ((r = conn_open(c, st->path, true, err)) != 0) {
			conn_close(c);
			free(c);
			return r;
		}
	}
	*out = c;
	return 0;
}

static void
reader_put(struct store *st, struct conn *c)
{
	pthread_mutex_lock(&st->rmtx);
	if (st->nrfree < READERS_IDLE) {
		c->next = st->rfree;
		st->rfree = c;
		st->nrfree++;
		c = NULL;
	}
	pthread_mutex_unlock(&st->rmtx);
	if (c != NULL) {
		conn_close(c);
		free(c);
	}
}

struct run {
	struct store	*st;
	struct conn	*c;
	bool		 locked;	/* took wmtx for this statement */
	bool		 pooled;	/* a reader from the pool */
};

/*
 * Picks the connection for one statement: the transaction's if one is
 * given; else a reader for a read, or the writer (locked for this
 * statement, autocommit) for a write.
 */
static int
acquire(struct store *st, struct store_txn *tx, bool write, struct run *ru,
    struct sp_err *err)
{
	int	r;

	memset(ru, 0, sizeof(*ru));
	ru->st = st;
	if (tx != NULL) {
		if (tx != &st->tx || !tx->open ||
		    !pthread_equal(tx->owner, pthread_self()))
			return sp_err_set(err, SP_ERR_INTERNAL, "store: "
			    "statement on a transaction that is not open");
		ru->c = &st->w;
		return 0;
	}
	if (!write) {
		if ((r = reader_get(st, &ru->c, err)) != 0)
			return r;
		ru->pooled = true;
		return 0;
	}
	if ((r = wlock(st, err)) != 0)
		return r;
	ru->locked = true;
	ru->c = &st->w;
	return 0;
}

static void
release(struct run *ru)
{
	if (ru->pooled)
		reader_put(ru->st, ru->c);
	if (ru->locked)
		wunlock(ru->st);
}

/* --- binding and stepping -------------------------------------------- */

struct store_row {
	sqlite3_stmt	*s;
};

/*
 * Binds fmt's parameters: 's' string (NULL binds NULL), 'i' int64_t, 'b'
 * blob as (const void *, size_t) (NULL binds NULL). Every bind is
 * checked; lengths go through the 64-bit calls, so a huge one is
 * refused (SP_ERR_LIMIT) instead of wrapping.
 */
static int
vbind(struct conn *c, sqlite3_stmt *s, const char *what, struct sp_err *err,
    const char *fmt, va_list ap)
{
	if (sqlite3_bind_parameter_count(s) < 0 ||
	    (size_t)sqlite3_bind_parameter_count(s) != strlen(fmt))
		return sp_err_set(err, SP_ERR_INTERNAL, "database: %s: %d "
		    "parameters, %zu given", what,
		    sqlite3_bind_parameter_count(s), strlen(fmt));
	for (int i = 0; fmt[i] != '\0'; i++) {
		const char	*str;
		const void	*blob;
		size_t		 len;
		int		 rc;

		switch (fmt[i]) {
		case 's':
			str = va_arg(ap, const char *);
			rc = str ? sqlite3_bind_text64(s, i + 1, str,
			    strlen(str), SQLITE_STATIC, SQLITE_UTF8) :
			    sqlite3_bind_null(s, i + 1);
			break;
		case 'i':
			rc = sqlite3_bind_int64(s, i + 1, va_arg(ap, int64_t));
			break;
		case 'b':
			blob = va_arg(ap, const void *);
			len = va_arg(ap, size_t);
			rc = blob ? sqlite3_bind_blob64(s, i + 1, blob, len,
			    SQLITE_STATIC) : sqlite3_bind_null(s, i + 1);
			break;
		default:
			return sp_err_set(err, SP_ERR_INTERNAL, "database: %s: "
			    "bad parameter format", what);
		}
		if (rc == SQLITE_TOOBIG)
			return sp_err_set(err, SP_ERR_LIMIT, "database: %s: "
			    "parameter %d too large", what, i + 1);
		if (rc != SQLITE_OK)
			return sp_err_set(err, SP_ERR_DB, "database: %s: "
			    "parameter %d: %s", what, i + 1,
			    sqlite3_errmsg(c->db));
	}
	return 0;
}

/*
 * Steps s to the end: cb (if any) per row, *id (if any) gets the first
 * column of the last row (an INSERT ... RETURNING id). Returns cb's
 * non-zero value, else 0 for a query (cb given) or the number of rows
 * changed.
 */
static int
step_all(struct conn *c, sqlite3_stmt *s, store_row_cb *cb, void *arg,
    int64_t *id, const char *what, struct sp_err *err)
{
	struct store_row	 row = { s };
	int			 r, rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (id != NULL)
			*id = sqlite3_column_int64(s, 0);
		if (cb != NULL && (r = cb(&row, arg)) != 0) {
			sqlite3_reset(s);
			return r;
		}
	}
	if (rc != SQLITE_DONE)
		r = dberr(c, err, what);
	else
		r = cb != NULL ? 0 : sqlite3_changes(c->db);
	sqlite3_reset(s);
	return r;
}

/*
 * The one statement runner: qsql[q] (or sql if q is Q__MAX), on the
 * connection acquire() picks, parameters as vbind(). Every typed
 * accessor is a call to this plus a row conversion.
 */
static int
vrun(struct store *st, struct store_txn *tx, bool write, enum q q,
    const char *sql, store_row_cb *cb, void *arg, int64_t *id,
    const char *what, struct sp_err *err, const char *fmt, va_list ap)
{
	struct run	 ru;
	sqlite3_stmt	*s = NULL, *tmp = NULL;
	int		 r;

	if ((r = acquire(st, tx, write, &ru, err)) != 0)
		return r;
	if (q != Q__MAX)
		s = stmt(ru.c, q);
	else if (sqlite3_prepare_v2(ru.c->db, sql, -1, &tmp, NULL) ==
	    SQLITE_OK)
		s = tmp;
	if (s == NULL) {
		r = dberr(ru.c, err, "prepare");
		goto out;
	}
	if ((r = vbind(ru.c, s, what, err, fmt, ap)) == 0)
		r = step_all(ru.c, s, cb, arg, id, what, err);
	else
		sqlite3_reset(s);
 out:
	sqlite3_finalize(tmp);
	release(&ru);
	return r;
}

static int
run(struct store *st, struct store_txn *tx, bool write, enum q q,
    store_row_cb *cb, void *arg, int64_t *id, const char *what,
    struct sp_err *err, const char *fmt, ...)
{
	va_list	ap;
	int	r;

	va_start(ap, fmt);
	r = vrun(st, tx, write, q, NULL, cb, arg, id, what, err, fmt, ap);
	va_end(ap);
	return r;
}

/* A write that must change exactly one row. */
static int
one_row(int r, const char *what, struct sp_err *err)
{
	if (r < 0)
		return r;
	if (r != 1)
		return sp_err_set(err, SP_ERR_NOTFOUND, "%s: no such row", what);
	return 0;
}

/* A write whose row count does not matter. */
static int
done(int r)
{
	return r < 0 ? r : 0;
}

/* One integer from a query without parameters; -1 on error. */
static int64_t
query_int(struct conn *c, const char *sql)
{
	sqlite3_stmt	*s = NULL;
	int64_t		 v = -1;

	if (sqlite3_prepare_v2(c->db, sql, -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

static int
module_version(struct conn *c, const char *module, int *v,
    struct sp_err *err)
{
	sqlite3_stmt	*s = NULL;
	int		 r = 0, rc;

	*v = 0;
	if (sqlite3_prepare_v2(c->db, "SELECT version FROM schema_versions "
	    "WHERE module = ?", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(s, 1, module, -1, SQLITE_STATIC) != SQLITE_OK) {
		r = dberr(c, err, "schema versions");
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
		r = dberr(c, err, "schema versions");
 out:
	sqlite3_finalize(s);
	return r;
}

static int
set_module_version(struct conn *c, const char *module, int64_t v,
    struct sp_err *err)
{
	sqlite3_stmt	*s = NULL;
	int		 r = 0;

	if (sqlite3_prepare_v2(c->db, "INSERT INTO schema_versions (module, "
	    "version) VALUES (?, ?) ON CONFLICT (module) DO UPDATE SET "
	    "version = excluded.version", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(s, 1, module, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 2, v) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_DONE)
		r = dberr(c, err, "schema versions");
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
bookkeeping(struct conn *c, const struct store_schema *const *schemas,
    struct sp_err *err)
{
	char	pragma[64];
	int64_t	uv;
	int	r;

	if ((r = exec(c, "BEGIN IMMEDIATE", err)) != 0)
		return r;
	uv = query_int(c, "PRAGMA user_version");
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
	if ((r = exec(c, "CREATE TABLE schema_versions (module TEXT PRIMARY "
	    "KEY, version INTEGER NOT NULL)", err)) != 0)
		goto fail;
	for (size_t i = 0; uv != 0 && schemas[i] != NULL; i++)
		if (schemas[i]->legacy > 0 && (r = set_module_version(c,
		    schemas[i]->module, schemas[i]->legacy, err)) != 0)
			goto fail;
	snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d",
	    STORE_USER_VERSION);
	if ((r = exec(c, pragma, err)) != 0)
		goto fail;
	if (uv != 0)
		log_info("store: schema version %lld converted to per-module "
		    "versions", (long long)uv);
 done:
	if ((r = exec(c, "COMMIT", err)) == 0)
		return 0;
 fail:
	(void)exec(c, "ROLLBACK", NULL);
	return r;
}

/*
 * Brings every schema to its last version, each migration in its own
 * transaction with its version. Nothing runs if any module is newer
 * than this binary.
 */
static int
migrate(struct conn *c, const struct store_schema *const *schemas,
    struct sp_err *err)
{
	int	v, r;

	for (size_t i = 0; schemas[i] != NULL; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(schemas[i]->module, schemas[j]->module) == 0)
				return sp_err_set(err, SP_ERR_INTERNAL, "schema %s "
				    "listed twice", schemas[i]->module);
	if ((r = bookkeeping(c, schemas, err)) != 0)
		return r;
	for (size_t i = 0; schemas[i] != NULL; i++) {
		if ((r = module_version(c, schemas[i]->module, &v, err)) != 0)
			return r;
		if ((size_t)v > schemas[i]->count)
			return sp_err_set(err, SP_ERR_DB, "database schema of %s "
			    "is version %d, newer than this sallyport (%zu)",
			    schemas[i]->module, v, schemas[i]->count);
	}
	for (size_t i = 0; schemas[i] != NULL; i++) {
		const struct store_schema *sc = schemas[i];

		if ((r = module_version(c, sc->module, &v, err)) != 0)
			return r;
		for (size_t k = (size_t)v; k < sc->count; k++) {
			if ((r = exec(c, "BEGIN IMMEDIATE", err)) != 0)
				return r;
			if ((r = exec(c, sc->migrations[k], err)) != 0 ||
			    (r = set_module_version(c, sc->module,
			    (int64_t)k + 1, err)) != 0 ||
			    (r = exec(c, "COMMIT", err)) != 0) {
				(void)exec(c, "ROLLBACK", NULL);
				return r;
			}
		}
		if ((size_t)v < sc->count)
			log_info("store: schema of %s migrated from version %d "
			    "to %zu", sc->module, v, sc->count);
	}
	return 0;
}

/* --- open, close ------------------------------------------------------ */

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
	if ((st = calloc(1, sizeof(*st))) == NULL ||
	    (st->path = strdup(path)) == NULL) {
		free(st);
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	}
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_init(&st->wmtx, &ma);
	pthread_mutexattr_destroy(&ma);
	pthread_mutex_init(&st->rmtx, NULL);
	st->crl_keep = STORE_CRL_KEEP;
	if ((r = conn_open(&st->w, path, false, err)) != 0 ||
	    (r = migrate(&st->w, schemas, err)) != 0)
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
	struct conn	*c;

	if (st == NULL)
		return;
	while ((c = st->rfree) != NULL) {
		st->rfree = c->next;
		conn_close(c);
		free(c);
	}
	conn_close(&st->w);
	pthread_mutex_destroy(&st->wmtx);
	pthread_mutex_destroy(&st->rmtx);
	free(st->path);
	free(st);
}

int
store_schema_version(struct store *st)
{
	int64_t	v;

	if (wlock(st, NULL) != 0)
		return -1;
	v = query_int(&st->w, "PRAGMA user_version");
	wunlock(st);
	return v >= 0 && v <= INT_MAX ? (int)v : -1;
}

int
store_module_version(struct store *st, const char *module)
{
	int	v, r;

	if (wlock(st, NULL) != 0)
		return -1;
	r = module_version(&st->w, module, &v, NULL);
	wunlock(st);
	return r == 0 ? v : -1;
}

/* --- transactions ----------------------------------------------------- */

static int
txn_begin(struct store *st, bool lazy, struct store_txn **out,
    struct sp_err *err)
{
	struct store_txn	*tx = &st->tx;
	int			 r;

	*out = NULL;
	if ((r = wlock(st, err)) != 0)
		return r;
	/* SQLite refuses to change the safety level inside a transaction. */
	if (lazy && (r = exec(&st->w, "PRAGMA synchronous = NORMAL",
	    err)) != 0) {
		wunlock(st);
		return r;
	}
	if ((r = exec(&st->w, "BEGIN IMMEDIATE", err)) != 0) {
		if (lazy && exec(&st->w, "PRAGMA synchronous = FULL", NULL) != 0)
			fatalx("store: cannot restore synchronous=FULL");
		wunlock(st);
		return r;
	}
	memset(tx, 0, sizeof(*tx));
	tx->st = st;
	tx->owner = pthread_self();
	tx->open = true;
	tx->lazy = lazy;
	*out = tx;
	return 0;
}

int
store_txn_begin(struct store *st, struct store_txn **out, struct sp_err *err)
{
	return txn_begin(st, false, out, err);
}

int
store_txn_begin_lazy(struct store *st, struct store_txn **out,
    struct sp_err *err)
{
	return txn_begin(st, true, out, err);
}

static int
txn_check(struct store_txn *tx, const char *what, struct sp_err *err)
{
	if (tx == NULL || !tx->open ||
	    !pthread_equal(tx->owner, pthread_self()))
		return sp_err_set(err, SP_ERR_INTERNAL, "store: %s without an "
		    "open transaction", what);
	return 0;
}

/* Closes the transaction: back to durable commits, lock released. */
static void
txn_end(struct store_txn *tx)
{
	struct store	*st = tx->st;

	tx->open = false;
	tx->head_loaded = tx->head_dirty = false;
	if (tx->lazy && exec(&st->w, "PRAGMA synchronous = FULL", NULL) != 0)
		fatalx("store: cannot restore synchronous=FULL");
	tx->lazy = false;
	wunlock(st);
}

static int	audit_head_flush(struct store_txn *, struct sp_err *);

int
store_txn_commit(struct store_txn *tx, struct sp_err *err)
{
	int	r;

	if ((r = txn_check(tx, "commit", err)) != 0)
		return r;
	if ((r = audit_head_flush(tx, err)) != 0 ||
	    (r = exec(&tx->st->w, "COMMIT", err)) != 0)
		(void)exec(&tx->st->w, "ROLLBACK", NULL);
	txn_end(tx);
	return r;
}

void
store_txn_rollback(struct store_txn *tx)
{
	if (txn_check(tx, "rollback", NULL) != 0)
		return;
	(void)exec(&tx->st->w, "ROLLBACK", NULL);
	txn_end(tx);
}

/* --- tokens --------------------------------------------------------- */

int
store_token_insert(struct store *st, struct store_txn *tx, const char *name,
    const char *verifier, int64_t *id, struct sp_err *err)
{
	*id = 0;
	return done(run(st, tx, true, Q_TOKEN_INSERT, NULL, NULL, id,
	    "insert token", err, "ssi", name, verifier, (int64_t)sp_now()));
}

struct token_it {
	store_token_cb	*cb;
	void		*arg;
};

static int
token_row(const struct store_row *row, void *arg)
{
	struct token_it		*it = arg;
	struct store_token	 t;

	t.id = store_row_int(row, 0);
	t.name = store_row_text(row, 1);
	t.verifier = store_row_text(row, 2);
	return it->cb(&t, it->arg);
}

int
store_token_foreach(struct store *st, struct store_txn *tx,
    store_token_cb *cb, void *arg)
{
	struct token_it	it = { cb, arg };

	return run(st, tx, false, Q_TOKEN_ALL, token_row, &it, NULL, "tokens",
	    NULL, "");
}

int
store_token_key_insert(struct store *st, struct store_txn *tx,
    const struct store_token_key *k, struct sp_err *err)
{
	return done(run(st, tx, true, Q_TKEY_INSERT, NULL, NULL, NULL,
	    "insert key", err, "isibbi", k->token_id, k->alias,
	    (int64_t)k->alg, k->wrapped, k->wlen, k->spki, k->spkilen,
	    (int64_t)sp_now()));
}

int
store_token_key_delete(struct store *st, struct store_txn *tx,
    int64_t token_id, const char *alias, struct sp_err *err)
{
	return one_row(run(st, tx, true, Q_TKEY_DELETE, NULL, NULL, NULL,
	    "delete key", err, "is", token_id, alias), "delete key", err);
}

struct tkey_it {
	store_token_key_cb	*cb;
	void			*arg;
};

static int
tkey_row(const struct store_row *row, void *arg)
{
	struct tkey_it		*it = arg;
	struct store_token_key	 k;

	k.token_id = store_row_int(row, 0);
	k.alias = store_row_text(row, 1);
	k.alg = (int)store_row_int(row, 2);
	k.wrapped = store_row_blob(row, 3, &k.wlen);
	k.spki = store_row_blob(row, 4, &k.spkilen);
	return it->cb(&k, it->arg);
}

int
store_token_key_foreach(struct store *st, struct store_txn *tx,
    store_token_key_cb *cb, void *arg)
{
	struct tkey_it	it = { cb, arg };

	return run(st, tx, false, Q_TKEY_ALL, tkey_row, &it, NULL,
	    "token keys", NULL, "");
}

/* --- CAs ------------------------------------------------------------ */

int
store_ca_insert(struct store *st, struct store_txn *tx,
    const struct store_ca *ca, int64_t *id, struct sp_err *err)
{
	*id = 0;
	/* issuer_id 0 (a root) is NULL in the table: bound as a NULL text. */
	if (ca->issuer_id == 0)
		return done(run(st, tx, true, Q_CA_INSERT, NULL, NULL, id,
		    "insert CA", err, "sssssbiii", ca->name, ca->subject,
		    ca->token, ca->key_alias, (const char *)NULL, ca->cert,
		    ca->certlen, ca->crl_period, (int64_t)ca->next_crl,
		    (int64_t)sp_now()));
	return done(run(st, tx, true, Q_CA_INSERT, NULL, NULL, id,
	    "insert CA", err, "ssssibiii", ca->name, ca->subject, ca->token,
	    ca->key_alias, ca->issuer_id, ca->cert, ca->certlen,
	    ca->crl_period, (int64_t)ca->next_crl, (int64_t)sp_now()));
}

struct ca_it {
	store_ca_cb	*cb;
	void		*arg;
};

static int
ca_row(const struct store_row *row, void *arg)
{
	struct ca_it	*it = arg;
	struct store_ca	 c;

	c.id = store_row_int(row, 0);
	c.name = store_row_text(row, 1);
	c.subject = store_row_text(row, 2);
	c.token = store_row_text(row, 3);
	c.key_alias = store_row_text(row, 4);
	c.issuer_id = store_row_int(row, 5);
	c.cert = store_row_blob(row, 6, &c.certlen);
	c.crl_period = store_row_int(row, 7);
	c.crl_number = store_row_int(row, 8);
	c.next_crl = (time_t)store_row_int(row, 9);
	c.created = (time_t)store_row_int(row, 10);
	return it->cb(&c, it->arg);
}

int
store_ca_foreach(struct store *st, struct store_txn *tx, store_ca_cb *cb,
    void *arg)
{
	struct ca_it	it = { cb, arg };

	return run(st, tx, false, Q_CA_ALL, ca_row, &it, NULL, "CAs", NULL,
	    "");
}

int
store_ca_next_crl(struct store *st, struct store_txn *tx, int64_t ca_id,
    time_t next_crl, int64_t *number, struct sp_err *err)
{
	return one_row(run(st, tx, true, Q_CA_CRLNUM, NULL, NULL, number,
	    "CRL number", err, "ii", (int64_t)next_crl, ca_id), "CRL number",
	    err);
}

/* --- profiles -------------------------------------------------------- */

int
store_profile_put(struct store *st, struct store_txn *tx,
    const struct store_profile *p, struct sp_err *err)
{
	return done(run(st, tx, true, Q_PROFILE_PUT, NULL, NULL, NULL,
	    "store profile", err, "ssi", p->name, p->json,
	    (int64_t)p->builtin));
}

struct profile_it {
	store_profile_cb	*cb;
	void			*arg;
};

static int
profile_row(const struct store_row *row, void *arg)
{
	struct profile_it	*it = arg;
	struct store_profile	 p;

	p.name = store_row_text(row, 0);
	p.json = store_row_text(row, 1);
	p.builtin = store_row_int(row, 2) != 0;
	return it->cb(&p, it->arg);
}

int
store_profile_foreach(struct store *st, struct store_txn *tx,
    store_profile_cb *cb, void *arg)
{
	struct profile_it	it = { cb, arg };

	return run(st, tx, false, Q_PROFILE_ALL, profile_row, &it, NULL,
	    "profiles", NULL, "");
}

/* --- certificates ------------------------------------------------------ */

int
store_cert_reserve(struct store *st, struct store_txn *tx,
    const struct store_cert *c, int64_t *id, struct sp_err *err)
{
	*id = 0;
	return done(run(st, tx, true, Q_CERT_RESERVE, NULL, NULL, id,
	    "reserve serial", err, "isssiibi", c->ca_id, c->serial,
	    c->subject, c->profile, (int64_t)c->not_before,
	    (int64_t)c->not_after, c->der, c->derlen, (int64_t)sp_now()));
}

int
store_cert_issued(struct store *st, struct store_txn *tx, int64_t id,
    const unsigned char *der, size_t len, const char *fingerprint,
    struct sp_err *err)
{
	return one_row(run(st, tx, true, Q_CERT_ISSUED, NULL, NULL, NULL,
	    "store certificate", err, "bsi", der, len, fingerprint, id),
	    "store certificate", err);
}

int
store_cert_abandon_reserved(struct store *st, struct store_txn *tx,
    struct sp_err *err)
{
	return run(st, tx, true, Q_CERT_ABANDON, NULL, NULL, NULL,
	    "abandon reserved", err, "");
}

int
store_cert_failed(struct store *st, struct store_txn *tx, int64_t id,
    struct sp_err *err)
{
	return one_row(run(st, tx, true, Q_CERT_FAILED, NULL, NULL, NULL,
	    "mark failed", err, "i", id), "mark failed", err);
}

int
store_cert_set_status(struct store *st, struct store_txn *tx, int64_t id,
    enum cert_status status, time_t revoked_at, int reason,
    struct sp_err *err)
{
	return one_row(run(st, tx, true, Q_CERT_STATUS, NULL, NULL, NULL,
	    "certificate status", err, "iiii", (int64_t)status,
	    (int64_t)revoked_at, (int64_t)reason, id), "certificate status",
	    err);
}

struct cert_it {
	store_cert_cb	*cb;
	void		*arg;
	bool		 found;
};

static int
cert_row(const struct store_row *row, void *arg)
{
	struct cert_it		*it = arg;
	struct store_cert	 c;

	c.id = store_row_int(row, 0);
	c.ca_id = store_row_int(row, 1);
	c.serial = store_row_text(row, 2);
	c.status = (enum cert_status)store_row_int(row, 3);
	c.subject = store_row_text(row, 4);
	c.profile = store_row_text(row, 5);
	c.not_before = (time_t)store_row_int(row, 6);
	c.not_after = (time_t)store_row_int(row, 7);
	c.revoked_at = (time_t)store_row_int(row, 8);
	c.reason = (int)store_row_int(row, 9);
	c.fingerprint = store_row_text(row, 10);
	c.der = store_row_blob(row, 11, &c.derlen);
	it->found = true;
	return it->cb(&c, it->arg);
}

int
store_cert_get(struct store *st, struct store_txn *tx, int64_t ca_id,
    const char *serial, store_cert_cb *cb, void *arg, struct sp_err *err)
{
	struct cert_it	it = { cb, arg, false };
	int		r;

	r = run(st, tx, false, Q_CERT_GET, cert_row, &it, NULL, "certificate",
	    err, "is", ca_id, serial);
	if (r != 0 || it.found)
		return r;
	return sp_err_set(err, SP_ERR_NOTFOUND, "no certificate with serial "
	    "%s", serial);
}

int
store_cert_foreach(struct store *st, struct store_txn *tx,
    const struct store_cert_filter *f, store_cert_cb *cb, void *arg)
{
	struct cert_it	it = { cb, arg, false };
	/* No limit is the largest one, as LIMIT -1 is SQLite-only. */
	int64_t		lim = f->limit == 0 || f->limit > INT64_MAX ?
			    INT64_MAX : (int64_t)f->limit;

	return run(st, tx, false, Q_CERT_LIST, cert_row, &it, NULL,
	    "certificates", NULL, "iiiii", f->ca_id, f->ca_id,
	    (int64_t)f->status, (int64_t)f->status, lim);
}

/* --- CRLs -------------------------------------------------------------- */

int
store_crl_insert(struct store *st, struct store_txn *tx, int64_t ca_id,
    int64_t number, time_t this_update, time_t next_update,
    const unsigned char *der, size_t len, struct sp_err *err)
{
	struct store_txn	*own = NULL;
	int			 r;

	/* Insert and prune together, in the caller's transaction or one of
	 * its own. */
	if (tx == NULL) {
		if ((r = store_txn_begin(st, &own, err)) != 0)
			return r;
		tx = own;
	}
	if ((r = done(run(st, tx, true, Q_CRL_INSERT, NULL, NULL, NULL,
	    "store CRL", err, "iiiib", ca_id, number, (int64_t)this_update,
	    (int64_t)next_update, der, len))) == 0)
		/* Only the latest few are ever served: the table stays
		 * bounded. */
		r = done(run(st, tx, true, Q_CRL_PRUNE, NULL, NULL, NULL,
		    "prune CRLs", err, "iii", ca_id, ca_id,
		    (int64_t)st->crl_keep));
	if (own != NULL) {
		if (r == 0)
			r = store_txn_commit(own, err);
		else
			store_txn_rollback(own);
	}
	return r;
}

void
store_set_crl_keep(struct store *st, int64_t keep)
{
	st->crl_keep = keep > 0 ? keep : STORE_CRL_KEEP;
}

struct crl_it {
	unsigned char	**der;
	size_t		 *len;
	int64_t		 *number;
	struct sp_err	 *err;
};

static int
crl_row(const struct store_row *row, void *arg)
{
	struct crl_it		*it = arg;
	const unsigned char	*b;
	size_t			 n;

	b = store_row_blob(row, 1, &n);
	if ((*it->der = malloc(n ? n : 1)) == NULL)
		return sp_err_set(it->err, SP_ERR_ALLOC, "out of memory");
	if (n > 0)
		memcpy(*it->der, b, n);
	*it->len = n;
	*it->number = store_row_int(row, 0);
	return 1;
}

int
store_crl_latest(struct store *st, struct store_txn *tx, int64_t ca_id,
    unsigned char **der, size_t *len, int64_t *number, struct sp_err *err)
{
	struct crl_it	it = { der, len, number, err };
	int		r;

	*der = NULL;
	*len = 0;
	r = run(st, tx, false, Q_CRL_LATEST, crl_row, &it, NULL, "CRL", err,
	    "i", ca_id);
	if (r == 1)
		return 0;
	if (r < 0)
		return r;
	return sp_err_set(err, SP_ERR_NOTFOUND, "no CRL has been made for "
	    "this CA yet");
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

struct head_it {
	int64_t		*seq;
	char		*prev;
	struct sp_err	*err;
};

/* Parses the meta head "SEQ:HASH". */
static int
head_row(const struct store_row *row, void *arg)
{
	struct head_it	*it = arg;
	const char	*v = store_row_text(row, 0), *colon;

	if ((colon = strchr(v, ':')) == NULL || strlen(colon + 1) > 64)
		return sp_err_set(it->err, SP_ERR_DB, "audit head is corrupt");
	*it->seq = strtoll(v, NULL, 10);
	memcpy(it->prev, colon + 1, strlen(colon + 1) + 1);
	return 1;
}

static int
audit_head(struct store *st, struct store_txn *tx, int64_t *seq,
    char prev[65], struct sp_err *err)
{
	struct head_it	it = { seq, prev, err };
	int		r;

	r = run(st, tx, false, Q_AUDIT_HEAD, head_row, &it, NULL, "audit head",
	    err, "");
	if (r == 1)
		return 0;
	if (r < 0)
		return r;
	return sp_err_set(err, SP_ERR_DB, "audit head is missing");
}

int
store_audit_append(struct store *st, struct store_txn *tx, const char *event,
    const char *actor, const char *details, struct sp_err *err)
{
	struct store_txn	*own = NULL;
	char			 hash[65];
	int64_t			 seq, ts = sp_now();
	int			 r;

	if (tx == NULL) {
		if ((r = store_txn_begin(st, &own, err)) != 0)
			return r;
		tx = own;
	} else if ((r = txn_check(tx, "audit", err)) != 0)
		return r;
	if (!tx->head_loaded) {
		if ((r = audit_head(st, tx, &tx->head_seq, tx->head_hash,
		    err)) != 0)
			goto out;
		tx->head_loaded = true;
	}
	seq = tx->head_seq + 1;
	audit_hash(tx->head_hash, seq, ts, event, actor, details, hash);
	if ((r = done(run(st, tx, true, Q_AUDIT_INSERT, NULL, NULL, NULL,
	    "audit", err, "iisssss", seq, ts, event, actor, details,
	    tx->head_hash, hash))) != 0)
		goto out;
	tx->head_seq = seq;
	memcpy(tx->head_hash, hash, sizeof(tx->head_hash));
	tx->head_dirty = true;
 out:
	if (own != NULL) {
		if (r == 0)
			r = store_txn_commit(own, err);
		else
			store_txn_rollback(own);
	}
	return r;
}

/* Writes the cached head to meta; inside the transaction, before COMMIT. */
static int
audit_head_flush(struct store_txn *tx, struct sp_err *err)
{
	char	head[96];

	if (!tx->head_dirty)
		return 0;
	snprintf(head, sizeof(head), "%lld:%s", (long long)tx->head_seq,
	    tx->head_hash);
	return one_row(run(tx->st, tx, true, Q_AUDIT_SETHEAD, NULL, NULL, NULL,
	    "audit head", err, "s", head), "audit head", err);
}

struct verify_it {
	struct store_audit_report	*rep;
	struct sp_err			*err;
	char				 prev[65];
	int64_t				 expect;
};

static int
verify_row(const struct store_row *row, void *arg)
{
	struct verify_it	*it = arg;
	int64_t			 seq = store_row_int(row, 0);
	char			 hash[65];

	if (seq != it->expect) {
		it->rep->bad_seq = it->expect;
		return sp_err_set(it->err, SP_ERR_POLICY, "audit row %lld is "
		    "missing (next row is %lld)", (long long)it->expect,
		    (long long)seq);
	}
	if (strcmp(store_row_text(row, 5), it->prev) != 0) {
		it->rep->bad_seq = seq;
		return sp_err_set(it->err, SP_ERR_POLICY, "audit row %lld does "
		    "not chain to row %lld", (long long)seq, (long long)seq - 1);
	}
	audit_hash(it->prev, seq, store_row_int(row, 1), store_row_text(row, 2),
	    store_row_text(row, 3), store_row_text(row, 4), hash);
	if (strcmp(hash, store_row_text(row, 6)) != 0) {
		it->rep->bad_seq = seq;
		return sp_err_set(it->err, SP_ERR_POLICY, "audit row %lld was "
		    "modified (hash mismatch)", (long long)seq);
	}
	memcpy(it->prev, hash, sizeof(it->prev));
	it->rep->rows++;
	it->expect++;
	return 0;
}

int
store_audit_verify(struct store *st, struct store_txn *tx,
    struct store_audit_report *rep, struct sp_err *err)
{
	struct verify_it	 it = { rep, err, "", 1 };
	struct store_txn	*own = NULL;
	char			 head_hash[65];
	int64_t			 head_seq = 0;
	int			 r;

	memset(rep, 0, sizeof(*rep));
	/* The head and the rows from one snapshot: a writer's transaction
	 * (never a half-written chain). */
	if (tx == NULL) {
		if ((r = store_txn_begin(st, &own, err)) != 0)
			return r;
		tx = own;
	}
	if ((r = audit_head(st, tx, &head_seq, head_hash, err)) != 0)
		goto out;
	if ((r = run(st, tx, false, Q_AUDIT_ALL, verify_row, &it, NULL,
	    "audit", err, "")) != 0)
		goto out;
	if (head_seq != rep->rows || strcmp(head_hash, it.prev) != 0) {
		rep->bad_seq = rep->rows + 1;
		r = sp_err_set(err, SP_ERR_POLICY, "audit log ends at row %lld "
		    "but its head records row %lld: rows were deleted",
		    (long long)rep->rows, (long long)head_seq);
	}
	memcpy(rep->head, it.prev, sizeof(rep->head));
 out:
	if (own != NULL)
		store_txn_rollback(own);
	return r;
}

struct audit_it {
	store_audit_cb	*cb;
	void		*arg;
};

static int
audit_row(const struct store_row *row, void *arg)
{
	struct audit_it		*it = arg;
	struct store_audit_row	 a;

	a.seq = store_row_int(row, 0);
	a.ts = (time_t)store_row_int(row, 1);
	a.event = store_row_text(row, 2);
	a.actor = store_row_text(row, 3);
	a.details = store_row_text(row, 4);
	return it->cb(&a, it->arg);
}

int
store_audit_foreach(struct store *st, struct store_txn *tx, size_t limit,
    store_audit_cb *cb, void *arg)
{
	struct audit_it	it = { cb, arg };

	return run(st, tx, false, Q_AUDIT_RECENT, audit_row, &it, NULL,
	    "audit", NULL, "i", limit == 0 || limit > INT64_MAX ? INT64_MAX :
	    (int64_t)limit);
}

/* --- generic statements ---------------------------------------------------- */

static int
vexec(struct store *st, struct store_txn *tx, int64_t *id, struct sp_err *err,
    const char *sql, const char *fmt, va_list ap)
{
	if (id != NULL) {
		*id = 0;
		/* The id comes from RETURNING, never from last-rowid. */
		if (strstr(sql, "RETURNING") == NULL)
			return sp_err_set(err, SP_ERR_INTERNAL, "database: an "
			    "id needs RETURNING");
	}
	return vrun(st, tx, true, Q__MAX, sql, NULL, NULL, id, "statement", err,
	    fmt, ap);
}

static int
vselect(struct store *st, struct store_txn *tx, store_row_cb *cb, void *arg,
    struct sp_err *err, const char *sql, const char *fmt, va_list ap)
{
	return vrun(st, tx, false, Q__MAX, sql, cb, arg, NULL, "query", err, fmt,
	    ap);
}

int
store_exec(struct store *st, struct store_txn *tx, int64_t *id,
    struct sp_err *err, const char *sql, const char *fmt, ...)
{
	va_list	ap;
	int	r;

	va_start(ap, fmt);
	r = vexec(st, tx, id, err, sql, fmt, ap);
	va_end(ap);
	return r;
}

int
store_select(struct store *st, struct store_txn *tx, store_row_cb *cb,
    void *arg, struct sp_err *err, const char *sql, const char *fmt, ...)
{
	va_list	ap;
	int	r;

	va_start(ap, fmt);
	r = vselect(st, tx, cb, arg, err, sql, fmt, ap);
	va_end(ap);
	return r;
}

const char *
store_row_text(const struct store_row *row, int col)
{
	const unsigned char	*t = sqlite3_column_text(row->s, col);

	return t != NULL ? (const char *)t : "";
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
