/*
 * The node's database (SQLite, WAL). One logical schema, each module's
 * tables with their own versioned migrations. Every function is thread
 * safe; a transaction is an explicit handle (struct store_txn) that the
 * statements belonging to it are given.
 *
 * Callbacks receive borrowed rows, valid only during the call; a callback
 * returning non-zero stops the iteration and that value is returned.
 */
#ifndef SP_STORE_STORE_H
#define SP_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "util/err.h"

struct store;

enum cert_status {
	CERT_RESERVED,	/* serial and TBS recorded, not (yet) signed */
	CERT_ACTIVE,	/* issued */
	CERT_REVOKED,	/* revoked (reason says whether it is on hold) */
	CERT_FAILED,	/* reserved but signing failed: never issued */
	CERT__MAX
};

const char	*cert_status_name(enum cert_status s);

/*
 * Each module owns its tables: a schema is its name (the key in the
 * schema_versions table) and its migrations, applied in order;
 * migrations[i] brings the module from version i to i + 1 (one SQL
 * script, run in one transaction with the version update). Never edit a
 * released entry: append one. DDL is written in the portable subset
 * store.md describes (INTEGER, TEXT, BLOB, "INTEGER PRIMARY KEY" for an
 * id the database assigns) so that a PostgreSQL backend can map it.
 *
 * legacy is the module's version in a database made before per-module
 * versions (PRAGMA user_version 3): its tables exist, nothing is re-run.
 * 0 for a module that did not exist then.
 */
struct store_schema {
	const char		*module;
	const char *const	*migrations;
	size_t			 count;
	int			 legacy;
};

/* Every module schema this binary knows, NULL-terminated (schemas.c). */
extern const struct store_schema *const store_schemas[];

/*
 * PRAGMA user_version of a database with per-module versions: a number
 * no older binary knows, so one refuses the file instead of using it.
 */
#define STORE_USER_VERSION	100
/* The user_version of the last database without per-module versions. */
#define STORE_LEGACY_VERSION	3

/*
 * Opens (creating if needed) the database at path and brings every
 * schema in store_schemas up to its last version. A module whose
 * recorded version is above its number of migrations (a newer binary
 * wrote it) is refused, and so is a database from before
 * STORE_LEGACY_VERSION.
 */
int	store_open(const char *path, struct store **out, struct sp_err *err)
	    SP_WUR;
/* Like store_open(), with an explicit NULL-terminated schema list. */
int	store_open_schemas(const char *path,
	    const struct store_schema *const *schemas, struct store **out,
	    struct sp_err *err) SP_WUR;
void	store_close(struct store *st);
/* A module's recorded version: 0 if it has none, -1 on error. */
int	store_module_version(struct store *st, const char *module);
/*
 * PRAGMA user_version: STORE_USER_VERSION once open. Kept for callers
 * that only ask "are the tables there"; use store_module_version().
 */
int	store_schema_version(struct store *st);

/*
 * Transactions. There is one writer connection; a transaction holds it
 * (behind a plain, error-checking mutex) from begin to commit or
 * rollback, and is used by the thread that began it. Readers never wait
 * for it: a statement given no transaction reads on a connection of its
 * own from a small pool (WAL), seeing what was committed last.
 *
 * store_txn_begin() runs BEGIN IMMEDIATE and returns the handle;
 * store_txn_commit() commits (rolling back if that fails) and
 * store_txn_rollback() (NULL-safe) rolls back; either ends the handle.
 * A thread that holds a transaction and asks for another one, or runs a
 * write without it, gets SP_ERR_INTERNAL instead of a deadlock.
 *
 * The lazy variant is for a transaction whose commit does not wait for
 * the disk (WAL, synchronous=NORMAL for this one transaction): it is
 * visible and ordered before every later one, and the next durable
 * commit makes it durable with it. Only for changes whose consequences
 * do not leave the node before such a commit (a serial reservation: the
 * certificate is released only after its own, durable, commit).
 */
struct store_txn;

int	store_txn_begin(struct store *st, struct store_txn **tx,
	    struct sp_err *err) SP_WUR;
int	store_txn_begin_lazy(struct store *st, struct store_txn **tx,
	    struct sp_err *err) SP_WUR;
/*
 * A read transaction: one snapshot over several reads, on a reader
 * connection of its own (never behind the writer); writes in it are
 * refused. Committed or rolled back like the others; its handle is freed
 * then, so it must not be used after.
 */
int	store_txn_begin_read(struct store *st, struct store_txn **tx,
	    struct sp_err *err) SP_WUR;
int	store_txn_commit(struct store_txn *tx, struct sp_err *err) SP_WUR;
void	store_txn_rollback(struct store_txn *tx);

/*
 * Every statement function below takes the store and a transaction:
 * NULL runs the statement on its own (a read on a reader connection, a
 * write as its own autocommit transaction); a handle runs it inside that
 * transaction (reads see its uncommitted writes).
 */

/* --- crypto tokens ------------------------------------------------- */

struct store_token {
	int64_t		 id;
	const char	*name;
	const char	*verifier;
};
struct store_token_key {
	int64_t			 token_id;
	const char		*alias;
	int			 alg;
	const unsigned char	*wrapped;
	size_t			 wlen;
	const unsigned char	*spki;
	size_t			 spkilen;
};
typedef int store_token_cb(const struct store_token *, void *);
typedef int store_token_key_cb(const struct store_token_key *, void *);

int	store_token_insert(struct store *st, struct store_txn *tx,
	    const char *name, const char *verifier, int64_t *id,
	    struct sp_err *err) SP_WUR;
int	store_token_foreach(struct store *st, struct store_txn *tx,
	    store_token_cb *cb, void *arg) SP_WUR;
int	store_token_key_insert(struct store *st, struct store_txn *tx,
	    const struct store_token_key *k, struct sp_err *err) SP_WUR;
int	store_token_key_delete(struct store *st, struct store_txn *tx,
	    int64_t token_id, const char *alias, struct sp_err *err) SP_WUR;
int	store_token_key_foreach(struct store *st, struct store_txn *tx,
	    store_token_key_cb *cb, void *arg) SP_WUR;

/* --- certificate authorities --------------------------------------- */

struct store_ca {
	int64_t			 id;
	const char		*name;
	const char		*subject;
	const char		*token;
	const char		*key_alias;
	int64_t			 issuer_id;	/* 0 for a root */
	const unsigned char	*cert;
	size_t			 certlen;
	int64_t			 crl_period;	/* seconds */
	int64_t			 crl_number;	/* last number used */
	time_t			 next_crl;	/* when a CRL is due */
	time_t			 created;
};
typedef int store_ca_cb(const struct store_ca *, void *);

int	store_ca_insert(struct store *st, struct store_txn *tx,
	    const struct store_ca *ca, int64_t *id, struct sp_err *err) SP_WUR;
int	store_ca_foreach(struct store *st, struct store_txn *tx,
	    store_ca_cb *cb, void *arg) SP_WUR;
/* Reserves the next CRL number (returned) and sets the next due time. */
int	store_ca_next_crl(struct store *st, struct store_txn *tx,
	    int64_t ca_id, time_t next_crl, int64_t *number,
	    struct sp_err *err) SP_WUR;

/* --- certificate profiles (JSON documents) ------------------------- */

struct store_profile {
	const char	*name;
	const char	*json;
	bool		 builtin;
};
typedef int store_profile_cb(const struct store_profile *, void *);

/* Inserts or replaces a profile. */
int	store_profile_put(struct store *st, struct store_txn *tx,
	    const struct store_profile *p, struct sp_err *err) SP_WUR;
int	store_profile_foreach(struct store *st, struct store_txn *tx,
	    store_profile_cb *cb, void *arg) SP_WUR;

/* --- certificates -------------------------------------------------- */

struct store_cert {
	int64_t			 id;
	int64_t			 ca_id;
	const char		*serial;	/* lower-case hex */
	enum cert_status	 status;
	const char		*subject;
	const char		*profile;
	time_t			 not_before;
	time_t			 not_after;
	time_t			 revoked_at;	/* 0 if not revoked */
	int			 reason;	/* CRLReason, -1 if none */
	const char		*fingerprint;	/* SHA-256 hex, "" if unsigned */
	const unsigned char	*der;		/* certificate, or TBS if reserved */
	size_t			 derlen;
};
typedef int store_cert_cb(const struct store_cert *, void *);

/*
 * Records a reserved serial with its to-be-signed bytes (c->der);
 * SP_ERR_EXISTS if the serial is taken on this CA.
 */
int	store_cert_reserve(struct store *st, struct store_txn *tx,
	    const struct store_cert *c, int64_t *id,
	    struct sp_err *err) SP_WUR;
/* Stores the signed certificate for a reserved row and activates it. */
int	store_cert_issued(struct store *st, struct store_txn *tx, int64_t id,
	    const unsigned char *der, size_t len, const char *fingerprint,
	    struct sp_err *err) SP_WUR;
/*
 * Marks every row still reserved as failed: run at start-up, when no
 * issuance can be in flight. A reserved row left by a crash was never
 * released (certificates leave the node only after they are stored).
 * Returns the number of rows or a negative code.
 */
int	store_cert_abandon_reserved(struct store *st, struct store_txn *tx,
	    struct sp_err *err) SP_WUR;
/* Marks a reserved row as failed (signing did not happen). */
int	store_cert_failed(struct store *st, struct store_txn *tx, int64_t id,
	    struct sp_err *err) SP_WUR;
/* Sets status, revocation time and reason of an existing row. */
int	store_cert_set_status(struct store *st, struct store_txn *tx,
	    int64_t id, enum cert_status status, time_t revoked_at, int reason,
	    struct sp_err *err) SP_WUR;
/* One certificate by CA and serial; SP_ERR_NOTFOUND if none. */
int	store_cert_get(struct store *st, struct store_txn *tx, int64_t ca_id,
	    const char *serial, store_cert_cb *cb, void *arg,
	    struct sp_err *err) SP_WUR;

struct store_cert_filter {
	int64_t	ca_id;		/* 0: every CA */
	int	status;		/* -1: any */
	size_t	limit;		/* 0: no limit */
};
int	store_cert_foreach(struct store *st, struct store_txn *tx,
	    const struct store_cert_filter *f, store_cert_cb *cb,
	    void *arg) SP_WUR;

/* --- CRLs ---------------------------------------------------------- */

#define STORE_CRL_KEEP	16	/* CRLs kept per CA by default */

/*
 * Stores a CRL and deletes that CA's older ones beyond the newest
 * store_set_crl_keep() (STORE_CRL_KEEP).
 */
int	store_crl_insert(struct store *st, struct store_txn *tx, int64_t ca_id,
	    int64_t number, time_t this_update, time_t next_update,
	    const unsigned char *der, size_t len, struct sp_err *err) SP_WUR;
/* CRLs kept per CA; keep <= 0 restores STORE_CRL_KEEP. */
void	store_set_crl_keep(struct store *st, int64_t keep);
/* Latest CRL of a CA (heap copy in *der); SP_ERR_NOTFOUND if none. */
int	store_crl_latest(struct store *st, struct store_txn *tx, int64_t ca_id,
	    unsigned char **der, size_t *len, int64_t *number,
	    struct sp_err *err) SP_WUR;

/* --- audit log ----------------------------------------------------- */

/*
 * Appends an event to the hash-chained audit log (inside the given
 * transaction, else in one of its own). details is a JSON object
 * text. Each row's hash covers the previous row's hash and its own
 * fields; the head (last seq and hash) is also kept in the meta table.
 */
int	store_audit_append(struct store *st, struct store_txn *tx,
	    const char *event, const char *actor, const char *details,
	    struct sp_err *err) SP_WUR;

struct store_audit_report {
	int64_t	rows;		/* rows checked */
	int64_t	bad_seq;	/* first row that fails, 0 if none */
	char	head[65];	/* hash of the last row */
};
/*
 * Recomputes the chain. Returns 0 if intact, SP_ERR_POLICY (with the
 * reason in err and the first failing row in r->bad_seq) if a row was
 * changed, deleted or inserted.
 */
int	store_audit_verify(struct store *st, struct store_txn *tx,
	    struct store_audit_report *r, struct sp_err *err) SP_WUR;

struct store_audit_row {
	int64_t		 seq;
	time_t		 ts;
	const char	*event;
	const char	*actor;
	const char	*details;
};
typedef int store_audit_cb(const struct store_audit_row *, void *);
/* The newest rows, newest first. */
int	store_audit_foreach(struct store *st, struct store_txn *tx,
	    size_t limit, store_audit_cb *cb, void *arg) SP_WUR;

/* --- generic statements --------------------------------------------------- */

/*
 * For modules whose tables are simple (keybindings, trust, roles, peer
 * settings): the module owns its SQL, the store owns the connections and
 * transactions. fmt has one letter per parameter: 's' a string (NULL binds
 * NULL), 'i' an int64_t, 'b' a blob as (const void *, size_t) (NULL binds
 * NULL); as many letters as the statement has parameters, else
 * SP_ERR_INTERNAL. Every bind is checked: a value too large is
 * SP_ERR_LIMIT. Errors never carry a database result code.
 */
struct store_row;
typedef int store_row_cb(const struct store_row *, void *);

/*
 * Runs a statement; returns the number of rows changed (>= 0) or a code.
 * If id is not NULL the statement must end in RETURNING id (never a
 * last-rowid), and *id gets it. UNIQUE violations give SP_ERR_EXISTS.
 */
int	store_exec(struct store *st, struct store_txn *tx, int64_t *id,
	    struct sp_err *err, const char *sql, const char *fmt, ...) SP_WUR;
/* Runs a query, calling cb per row (rows borrowed, valid during cb). */
int	store_select(struct store *st, struct store_txn *tx, store_row_cb *cb,
	    void *arg, struct sp_err *err, const char *sql, const char *fmt,
	    ...) SP_WUR;
const char		*store_row_text(const struct store_row *row, int col);
int64_t			 store_row_int(const struct store_row *row, int col);
const unsigned char	*store_row_blob(const struct store_row *row, int col,
			    size_t *len);
bool			 store_row_null(const struct store_row *row, int col);

#endif
