/*
 * The store's engine: connections (one writer, pooled readers), the
 * transaction handle, the one statement runner, per-module migrations
 * and the generic statements. The typed accessors are in store_typed.c.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store/store_int.h"
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
		if (sqlite3_prepare_v3(c->db, store_qsql[q], -1,
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
		if (tx->st != st || !tx->open ||
		    !pthread_equal(tx->owner, pthread_self()))
			return sp_err_set(err, SP_ERR_INTERNAL, "store: "
			    "statement on a transaction that is not open");
		if (write && tx->reader)
			return sp_err_set(err, SP_ERR_INTERNAL, "store: a write "
			    "in a read transaction");
		ru->c = tx->c;
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
 * The one statement runner: store_qsql[q] (or sql if q is Q__MAX), on the
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

int
store_run(struct store *st, struct store_txn *tx, bool write, enum q q,
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
int
store_one_row(int r, const char *what, struct sp_err *err)
{
	if (r < 0)
		return r;
	if (r != 1)
		return sp_err_set(err, SP_ERR_NOTFOUND, "%s: no such row", what);
	return 0;
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
	tx->c = &st->w;
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

int
store_txn_begin_read(struct store *st, struct store_txn **out,
    struct sp_err *err)
{
	struct store_txn	*tx;
	int			 r;

	*out = NULL;
	if ((tx = calloc(1, sizeof(*tx))) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	if ((r = reader_get(st, &tx->c, err)) != 0) {
		free(tx);
		return r;
	}
	/* Deferred: the snapshot is taken by the first read. */
	if ((r = exec(tx->c, "BEGIN", err)) != 0) {
		reader_put(st, tx->c);
		free(tx);
		return r;
	}
	tx->st = st;
	tx->owner = pthread_self();
	tx->open = true;
	tx->reader = true;
	*out = tx;
	return 0;
}

/* Ends a read transaction: its connection back to the pool. */
static void
read_end(struct store_txn *tx, const char *sql)
{
	(void)exec(tx->c, sql, NULL);
	reader_put(tx->st, tx->c);
	free(tx);
}

int
store_txn_check(struct store_txn *tx, const char *what, struct sp_err *err)
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

int
store_txn_commit(struct store_txn *tx, struct sp_err *err)
{
	int	r;

	if ((r = store_txn_check(tx, "commit", err)) != 0)
		return r;
	if (tx->reader) {
		read_end(tx, "COMMIT");
		return 0;
	}
	if ((r = store_audit_head_flush(tx, err)) != 0 ||
	    (r = exec(&tx->st->w, "COMMIT", err)) != 0)
		(void)exec(&tx->st->w, "ROLLBACK", NULL);
	txn_end(tx);
	return r;
}

void
store_txn_rollback(struct store_txn *tx)
{
	if (store_txn_check(tx, "rollback", NULL) != 0)
		return;
	if (tx->reader) {
		read_end(tx, "ROLLBACK");
		return;
	}
	(void)exec(&tx->st->w, "ROLLBACK", NULL);
	txn_end(tx);
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
