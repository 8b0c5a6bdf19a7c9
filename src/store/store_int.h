/*
 * Inside the store: its connections, its transaction handle and the one
 * statement runner, shared by store.c (connections, transactions,
 * migrations, generic statements) and store_typed.c (the typed accessors
 * of the CA's tables and the audit log). Not for other modules.
 */
#ifndef SP_STORE_STORE_INT_H
#define SP_STORE_STORE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

#include "store/store.h"
#include "util/err.h"

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

/* qsql[q]: the SQL of the typed statements (store_typed.c). */
extern const char *const store_qsql[Q__MAX];

/* One connection and its cached statements. */
struct conn {
	sqlite3		*db;
	sqlite3_stmt	*stmt[Q__MAX];
	struct conn	*next;		/* in the reader pool's free list */
};

/*
 * A transaction. The writer's: there is one writer connection, so one
 * open write transaction at a time; its handle is the store's (st->tx),
 * valid from begin to commit or rollback, and holds wmtx all that time.
 * A read transaction's handle is allocated with a reader connection of
 * its own and freed when it ends.
 */
struct store_txn {
	struct store	*st;
	struct conn	*c;		/* the writer, or a read txn's reader */
	pthread_t	 owner;
	bool		 open;
	bool		 reader;	/* a read transaction (heap handle) */
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

/*
 * Runs one statement: the cached store_qsql[q], on the connection the
 * store picks (tx's; else a reader for a read, the writer for a write),
 * fmt's parameters as store_exec()'s. cb (if any) gets each row, *id (if
 * any) the first column of the last row. Returns cb's non-zero value,
 * else 0 for a query (cb given) or the number of rows changed.
 */
int	store_run(struct store *st, struct store_txn *tx, bool write, enum q q,
	    store_row_cb *cb, void *arg, int64_t *id, const char *what,
	    struct sp_err *err, const char *fmt, ...);
/* r if it is an error, else SP_ERR_NOTFOUND unless exactly one row. */
int	store_one_row(int r, const char *what, struct sp_err *err);
/* 0 for any row count, else the error. */
static inline int
store_done(int r)
{
	return r < 0 ? r : 0;
}
/* SP_ERR_INTERNAL unless tx is open and this thread's. */
int	store_txn_check(struct store_txn *tx, const char *what,
	    struct sp_err *err);
/* Writes a transaction's cached audit head to meta, before COMMIT. */
int	store_audit_head_flush(struct store_txn *tx, struct sp_err *err);

#endif
