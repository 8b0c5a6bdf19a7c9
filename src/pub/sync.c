/*
 * Certificate synchronization to a VA (issue 9; docs/internals/pub.md,
 * "Sync"): a background task per connector walks the CA's certificates in
 * batches, asks the VA which entries it lacks or holds differently
 * (POST /publish/readcerts), pushes only those (POST /publish/certs), and
 * keeps every entry that could not be synchronized with its error.
 *
 * The task lives in sync_tasks: its cursor (the last certificate id done)
 * and counters move with each batch in one transaction, so a CA restart
 * leaves it "interrupted" where it was and `peer sync start` resumes it.
 *
 * Order with the publisher queue: a batch draws a new update sequence
 * *before* it reads the certificates. A change committed after the read
 * has a higher sequence and wins at the VA; one committed before it is in
 * what was read. So sync and queue never undo each other.
 *
 * The admin functions run on worker threads; the runners run on the loop
 * thread, one step at a time each (a pool job or a peer request), driven
 * by the publishers' tick and wake (worker.c).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "crypto/ids.h"
#include "net/pool.h"
#include "peer/peer.h"
#include "pub/pub_int.h"
#include "util/log.h"
#include "util/util.h"

#define SYNC_BATCH_DEFAULT	2000
#define SYNC_BATCH_MAX		2000	/* the VA's readcerts limit */
#define SYNC_PUSH_MAX		500	/* the VA's publish/certs limit */
#define SYNC_RETRY_S		5
#define SYNC_REQ_TIMEOUT_MS	60000
#define SYNC_MSG_MAX		256

struct srow {
	int64_t		 id;
	char		 ca[CA_NAME_MAX + 1];
	char		*issuer;		/* the CA's subject DN */
	char		 serial[ID_SERIAL_HEX_MAX];
	const char	*status;		/* good, revoked, hold */
	int64_t		 revoked_at, reason, not_before, not_after;
	char		 fp[65];
	char		*subject;
	unsigned char	*der;
	size_t		 derlen;
	/* the outcome */
	bool		 push;
	const char	*etype;			/* NULL: synchronized */
	char		 emsg[SYNC_MSG_MAX];
};

enum stage { ST_IDLE, ST_BUSY, ST_WAIT };

struct pub_sync {
	struct pub_sync	*next;
	struct pub	*p;
	char		 connector[PUB_NAME_MAX + 1];
	char		 cas[PUB_CAS_MAX * (CA_NAME_MAX + 1) + 1];
	char		 subset[8];
	int64_t		 since, batch, cursor;
	enum stage	 stage;
	time_t		 retry_at;
	bool		 cas_sent;
	bool		 ended;		/* the task is no longer running */
	/* the batch */
	int64_t		 seq, last_id;
	struct srow	*rows;
	size_t		 n, cap, next_push;
	json_t		*cas_body;
	char		 error[320];	/* whole-request failure */
	bool		 fatal;		/* the task fails (not retried) */
	bool		 empty;		/* nothing left after the cursor */
	struct sp_err	 err;
	/* a staleness check (pub_sync_check()) instead of a sync */
	bool		 check;
	int64_t		 sample;	/* entries at random; 0: all */
	int64_t		 same, missing, differs, errors, checked;
	pub_check_done	*cb;		/* NULL: a scheduled check */
	void		*cb_arg;
};

/* --- helpers ---------------------------------------------------------------- */

static void
rows_clear(struct pub_sync *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->rows[i].issuer);
		free(s->rows[i].subject);
		free(s->rows[i].der);
	}
	s->n = 0;
	s->next_push = 0;
}

static void
sync_free(struct pub_sync *s)
{
	struct pub_sync	**pp;

	for (pp = &s->p->syncs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	rows_clear(s);
	free(s->rows);
	json_decref(s->cas_body);
	free(s);
}

static char *
b64(const unsigned char *der, size_t len)
{
	char	*out;

	if ((out = malloc(4 * ((len + 2) / 3) + 1)) == NULL)
		return NULL;
	EVP_EncodeBlock((unsigned char *)out, der, (int)len);
	return out;
}

/* The subset as the statuses "c.status IN (?, ?)" binds: issued 1, revoked 2. */
static int64_t
subset_lo(const char *subset)
{
	return strcmp(subset, "revoked") == 0 ? 2 : 1;
}

static int64_t
subset_hi(const char *subset)
{
	return strcmp(subset, "active") == 0 ? 1 : 2;
}

static int64_t
subset_after(const char *subset)
{
	return strcmp(subset, "active") == 0 ? (int64_t)sp_now() : INT64_MIN;
}

static const char *
status_word(int64_t status, int64_t reason)
{
	if (status == 2)
		return reason == 6 ? "hold" : "revoked";
	return "good";
}

/* --- the admin side (worker threads) ---------------------------------------- */

struct countarg {
	const char	*cas;
	int64_t		 n;
};

static int
count_row(const struct store_row *row, void *arg)
{
	struct countarg	*c = arg;

	if (pub_covers(c->cas, store_row_text(row, 0)))
		c->n += store_row_int(row, 1);
	return 0;
}

struct taskrow {
	bool	found;
	char	state[16];
	int64_t	checked;
};

static int
task_row(const struct store_row *row, void *arg)
{
	struct taskrow	*t = arg;

	t->found = true;
	snprintf(t->state, sizeof(t->state), "%s", store_row_text(row, 0));
	t->checked = store_row_int(row, 1);
	return 0;
}

static int
one_row(const struct store_row *row, void *arg)
{
	(void)row;
	*(bool *)arg = true;
	return 0;
}

int
pub_sync_start(struct pub *p, const struct pub_sync_opts *o,
    const char *actor, json_t **out, struct sp_err *err)
{
	struct store_txn	*tx = NULL;
	struct taskrow		 t = { 0 };
	struct countarg		 ca = { 0 };
	char			 cas[sizeof(((struct pub_sync *)0)->cas)];
	const char		*subset = o->subset ? o->subset : "all";
	int64_t			 batch = o->batch ? o->batch : SYNC_BATCH_DEFAULT;
	int64_t			 now = (int64_t)sp_now();
	bool			 conn = false, resume;
	char			*d;
	int			 r;

	*out = NULL;
	if (o->connector == NULL || !sp_name_valid(o->connector, PUB_NAME_MAX))
		return sp_err_set(err, SP_ERR_INVALID, "invalid connector "
		    "name");
	if (strcmp(subset, "all") != 0 && strcmp(subset, "active") != 0 &&
	    strcmp(subset, "revoked") != 0)
		return sp_err_set(err, SP_ERR_INVALID, "--subset is all, "
		    "active or revoked");
	if (batch < 1 || batch > SYNC_BATCH_MAX)
		return sp_err_set(err, SP_ERR_INVALID, "--batch is 1 to %d",
		    SYNC_BATCH_MAX);
	if (o->since < 0)
		return sp_err_set(err, SP_ERR_INVALID, "bad --since");
	if ((r = pub_join_cas(o->cas, o->cas ? o->ncas : 0, cas, sizeof(cas),
	    err)) != 0)
		return r;
	if ((r = store_txn_begin(p->st, &tx, err)) != 0)
		return r;
	if ((r = store_select(p->st, tx, one_row, &conn, err, "SELECT 1 FROM "
	    "connectors WHERE name = ?", "s", o->connector)) != 0)
		goto undo;
	if (!conn) {
		r = sp_err_set(err, SP_ERR_NOTFOUND, "no connector \"%s\"",
		    o->connector);
		goto undo;
	}
	if ((r = store_select(p->st, tx, task_row, &t, err, "SELECT state, "
	    "checked FROM sync_tasks WHERE connector = ?", "s",
	    o->connector)) != 0)
		goto undo;
	if (t.found && strcmp(t.state, "running") == 0) {
		r = sp_err_set(err, SP_ERR_STATE, "a sync to \"%s\" is running "
		    "(peer sync stop %s)", o->connector, o->connector);
		goto undo;
	}
	/* Interrupted or stopped: go on from the cursor, unless told not to. */
	resume = t.found && !o->restart && (strcmp(t.state, "interrupted") ==
	    0 || strcmp(t.state, "stopped") == 0);
	if (resume) {
		r = store_exec(p->st, tx, NULL, err, "UPDATE sync_tasks SET "
		    "state = 'running', run_started = ?, run_checked = "
		    "checked, updated = ?, last_error = '' WHERE connector = ?",
		    "iis", now, now, o->connector);
	} else {
		ca.cas = cas;
		if ((r = store_select(p->st, tx, count_row, &ca, err, "SELECT "
		    "a.name, COUNT(*) FROM certs c JOIN cas a ON a.id = c.ca_id "
		    "WHERE c.status IN (?, ?) AND c.not_after > ? AND "
		    "c.not_before >= ? GROUP BY a.name", "iiii",
		    subset_lo(subset), subset_hi(subset), subset_after(subset),
		    o->since)) != 0 ||
		    (r = store_exec(p->st, tx, NULL, err, "DELETE FROM "
		    "sync_failures WHERE connector = ?", "s",
		    o->connector)) < 0 ||
		    (r = store_exec(p->st, tx, NULL, err, "DELETE FROM "
		    "sync_tasks WHERE connector = ?", "s", o->connector)) < 0)
			goto undo;
		r = store_exec(p->st, tx, NULL, err, "INSERT INTO sync_tasks "
		    "(connector, state, subset, since, cas, batch, total, "
		    "started, updated, run_started) VALUES (?, 'running', ?, "
		    "?, ?, ?, ?, ?, ?, ?)", "ssisiiiii", o->connector, subset,
		    o->since, cas, batch, ca.n, now, now, now);
	}
	if (r < 0)
		goto undo;
	d = NULL;
	{
		json_t	*a = json_pack("{s:s,s:s,s:s,s:I,s:I,s:b}", "connector",
		    o->connector, "subset", subset, "cas", cas, "since",
		    (json_int_t)o->since, "batch", (json_int_t)batch, "resumed",
		    resume);

		d = a ? json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		json_decref(a);
	}
	if (d == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto undo;
	}
	r = store_audit_append(p->st, tx, "peer.sync.start", actor ? actor :
	    "", d, err);
	free(d);
	if (r != 0 || (r = store_txn_commit(tx, err)) != 0) {
		if (r != 0 && tx != NULL)
			goto undo;
		return r;
	}
	pub_wake(p);
	return pub_sync_status(p, o->connector, out, err);
 undo:
	store_txn_rollback(tx);
	return r;
}

int
pub_sync_stop(struct pub *p, const char *connector, const char *actor,
    json_t **out, struct sp_err *err)
{
	struct store_txn	*tx = NULL;
	char			 d[128];
	int			 r;

	*out = NULL;
	if (connector == NULL || !sp_name_valid(connector, PUB_NAME_MAX))
		return sp_err_set(err, SP_ERR_INVALID, "invalid connector "
		    "name");
	if ((r = store_txn_begin(p->st, &tx, err)) != 0)
		return r;
	if ((r = store_exec(p->st, tx, NULL, err, "UPDATE sync_tasks SET "
	    "state = 'stopped', updated = ? WHERE connector = ? AND state = "
	    "'running'", "is", (int64_t)sp_now(), connector)) < 0)
		goto undo;
	if (r == 0) {
		r = sp_err_set(err, SP_ERR_STATE, "no sync to \"%s\" is "
		    "running", connector);
		goto undo;
	}
	snprintf(d, sizeof(d), "{\"connector\":\"%s\"}", connector);
	if ((r = store_audit_append(p->st, tx, "peer.sync.stop", actor ?
	    actor : "", d, err)) != 0)
		goto undo;
	if ((r = store_txn_commit(tx, err)) != 0)
		return r;
	return pub_sync_status(p, connector, out, err);
 undo:
	store_txn_rollback(tx);
	return r;
}

static int
status_row(const struct store_row *row, void *arg)
{
	json_t	*arr = arg, *o;
	int64_t	 total = store_row_int(row, 6), checked = store_row_int(row, 7);
	int64_t	 upd = store_row_int(row, 12), rs = store_row_int(row, 14);
	int64_t	 rc = store_row_int(row, 15);
	double	 rate = 0, eta = -1;
	const char *state = store_row_text(row, 1);

	if (upd > rs && checked > rc)
		rate = (double)(checked - rc) / (double)(upd - rs);
	if (rate > 0 && strcmp(state, "running") == 0)
		eta = (double)(total > checked ? total - checked : 0) / rate;
	o = json_pack("{s:s,s:s,s:s,s:I,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,"
	    "s:I,s:f,s:f,s:s}",
	    "connector", store_row_text(row, 0), "state", state,
	    "subset", store_row_text(row, 2),
	    "since", (json_int_t)store_row_int(row, 3),
	    "cas", store_row_text(row, 4),
	    "batch", (json_int_t)store_row_int(row, 5),
	    "total", (json_int_t)total, "checked", (json_int_t)checked,
	    "pushed", (json_int_t)store_row_int(row, 8),
	    "failed", (json_int_t)store_row_int(row, 9),
	    "started", (json_int_t)store_row_int(row, 10),
	    "finished", (json_int_t)store_row_int(row, 11),
	    "updated", (json_int_t)upd,
	    "cursor", (json_int_t)store_row_int(row, 13),
	    "rate", rate, "eta", eta,
	    "last_error", store_row_text(row, 16));
	if (o == NULL || json_array_append_new(arr, o) != 0)
		return SP_ERR_ALLOC;
	return 0;
}

int
pub_sync_status(struct pub *p, const char *connector, json_t **out,
    struct sp_err *err)
{
	json_t	*arr;
	int	 r;

	*out = NULL;
	if ((arr = json_array()) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	r = store_select(p->st, NULL, status_row, arr, err, "SELECT connector,"
	    " state, subset, since, cas, batch, total, checked, pushed, failed,"
	    " started, finished, updated, cursor, run_started, run_checked,"
	    " last_error FROM sync_tasks WHERE ? = '' OR connector = ? ORDER"
	    " BY connector", "ss", connector ? connector : "",
	    connector ? connector : "");
	if (r != 0) {
		json_decref(arr);
		return r;
	}
	if (connector == NULL) {
		*out = arr;
		return 0;
	}
	if (json_array_size(arr) == 0) {
		json_decref(arr);
		return sp_err_set(err, SP_ERR_NOTFOUND, "no sync to \"%s\"",
		    connector);
	}
	*out = json_incref(json_array_get(arr, 0));
	json_decref(arr);
	return 0;
}

static int
failure_row(const struct store_row *row, void *arg)
{
	json_t	*arr = arg, *o;

	o = json_pack("{s:s,s:s,s:s,s:s,s:s}", "fingerprint",
	    store_row_text(row, 0), "subjectDn", store_row_text(row, 1),
	    "issuerDn", store_row_text(row, 2), "errorType",
	    store_row_text(row, 3), "errorMessage", store_row_text(row, 4));
	if (o == NULL || json_array_append_new(arr, o) != 0)
		return SP_ERR_ALLOC;
	return 0;
}

int
pub_sync_report(struct pub *p, const char *connector, json_t **out,
    struct sp_err *err)
{
	json_t		*st = NULL, *arr;
	char		 date[32];
	time_t		 now = sp_now();
	struct tm	 tm;
	int		 r;

	*out = NULL;
	if ((r = pub_sync_status(p, connector, &st, err)) != 0)
		return r;
	json_decref(st);
	if ((arr = json_array()) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	if ((r = store_select(p->st, NULL, failure_row, arr, err, "SELECT "
	    "fingerprint, subject, issuer, error_type, error_message FROM "
	    "sync_failures WHERE connector = ? ORDER BY cert_id", "s",
	    connector)) != 0) {
		json_decref(arr);
		return r;
	}
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M", &tm);
	*out = json_pack("{s:s,s:s,s:I,s:o}", "implementation",
	    "sallyport.peer.sync", "creationDate", date, "failureCount",
	    (json_int_t)json_array_size(arr), "failures", arr);
	return *out ? 0 : sp_err_set(err, SP_ERR_ALLOC, "out of memory");
}

/* Node start: a task that was running is interrupted. */
int
pub_sync_recover(struct pub *p, struct sp_err *err)
{
	int	r = store_exec(p->st, NULL, NULL, err, "UPDATE sync_tasks SET "
	    "state = 'interrupted' WHERE state = 'running'", "");

	if (r > 0)
		log_info("peer sync: %d task(s) interrupted by the restart; "
		    "`peer sync start CONNECTOR` resumes", r);
	return r < 0 ? r : 0;
}

/* --- the runners (loop thread) ---------------------------------------------- */

static void	step(struct pub_sync *s);
static void	check_end(struct pub_sync *s);
static void	check_tally(struct pub_sync *s, json_t *results);

/* A step's end: s is idle again and takes the next one, or waits. */
static void
step_end(struct pub_sync *s)
{
	if (s->p->stopping || s->ended) {
		sync_free(s);
		return;
	}
	s->stage = ST_IDLE;
	step(s);
}

/* Pool: the task's settings, and the covered CA certificates once. */
static int
load_row(const struct store_row *row, void *arg)
{
	struct pub_sync	*s = arg;

	s->ended = strcmp(store_row_text(row, 0), "running") != 0;
	snprintf(s->subset, sizeof(s->subset), "%s", store_row_text(row, 1));
	s->since = store_row_int(row, 2);
	snprintf(s->cas, sizeof(s->cas), "%s", store_row_text(row, 3));
	s->batch = store_row_int(row, 4);
	s->cursor = store_row_int(row, 5);
	return 0;
}

static int
ca_cert_row(const struct store_row *row, void *arg)
{
	struct pub_sync		*s = arg;
	const unsigned char	*der;
	size_t			 len;
	char			*d;
	json_t			*e;

	if (!pub_covers(s->cas, store_row_text(row, 0)))
		return 0;
	der = store_row_blob(row, 1, &len);
	if ((d = b64(der, len)) == NULL)
		return SP_ERR_ALLOC;
	e = json_pack("{s:s,s:s}", "name", store_row_text(row, 0),
	    "certificate", d);
	free(d);
	if (e == NULL || json_array_append_new(json_object_get(s->cas_body,
	    "cas"), e) != 0)
		return SP_ERR_ALLOC;
	return 0;
}

static void
load_work(void *arg)
{
	struct pub_sync	*s = arg;

	s->ended = true;
	if (store_select(s->p->st, NULL, load_row, s, &s->err, "SELECT state,"
	    " subset, since, cas, batch, cursor FROM sync_tasks WHERE "
	    "connector = ?", "s", s->connector) != 0 || s->ended)
		return;
	/* Issuers first (by id: a root before the CAs it signed). */
	if ((s->cas_body = json_pack("{s:[]}", "cas")) == NULL ||
	    store_select(s->p->st, NULL, ca_cert_row, s, &s->err, "SELECT "
	    "name, cert FROM cas ORDER BY id", "") != 0) {
		json_decref(s->cas_body);
		s->cas_body = NULL;
		snprintf(s->error, sizeof(s->error), "reading the CAs: %s",
		    s->err.msg);
	}
}

/* Pool: a new sequence, then the next batch after the cursor. */
static int
batch_row(const struct store_row *row, void *arg)
{
	struct pub_sync		*s = arg;
	struct srow		*r;
	const unsigned char	*der;
	size_t			 len;

	s->last_id = store_row_int(row, 0);
	if (!pub_covers(s->cas, store_row_text(row, 1)))
		return 0;
	if (s->n == s->cap) {
		size_t	 nc = s->cap ? s->cap * 2 : 256;
		void	*t = realloc(s->rows, nc * sizeof(*s->rows));

		if (t == NULL)
			return SP_ERR_ALLOC;
		s->rows = t;
		s->cap = nc;
	}
	r = &s->rows[s->n];
	memset(r, 0, sizeof(*r));
	r->id = s->last_id;
	snprintf(r->ca, sizeof(r->ca), "%s", store_row_text(row, 1));
	snprintf(r->serial, sizeof(r->serial), "%s", store_row_text(row, 3));
	r->status = status_word(store_row_int(row, 4), store_row_int(row, 6));
	r->revoked_at = store_row_int(row, 5);
	r->reason = store_row_int(row, 6);
	r->not_before = store_row_int(row, 7);
	r->not_after = store_row_int(row, 8);
	snprintf(r->fp, sizeof(r->fp), "%s", store_row_text(row, 9));
	der = store_row_blob(row, 11, &len);
	r->issuer = strdup(store_row_text(row, 2));
	r->subject = strdup(store_row_text(row, 10));
	if (der != NULL && len > 0 && (r->der = malloc(len)) != NULL) {
		memcpy(r->der, der, len);
		r->derlen = len;
	}
	s->n++;		/* counted first: rows_clear() frees what it got */
	if (r->issuer == NULL || r->subject == NULL || (len > 0 &&
	    r->der == NULL))
		return SP_ERR_ALLOC;
	return 0;
}

static int
seq_row(const struct store_row *row, void *arg)
{
	*(int64_t *)arg = store_row_int(row, 0);
	return 0;
}

/* A check reads a random sample, or every entry batch by batch. */
static void
check_batch(struct pub_sync *s)
{
	int	r;

	s->seq = 1;	/* readcerts compares no sequence */
	if (s->sample > 0)
		r = store_select(s->p->st, NULL, batch_row, s, &s->err,
		    "SELECT c.id, a.name, a.subject, c.serial, c.status,"
		    " c.revoked_at, c.reason, c.not_before, c.not_after,"
		    " c.fingerprint, c.subject, c.der FROM certs c JOIN cas a"
		    " ON a.id = c.ca_id WHERE c.status IN (1, 2) ORDER BY"
		    " RANDOM() LIMIT ?", "i", s->sample);
	else
		r = store_select(s->p->st, NULL, batch_row, s, &s->err,
		    "SELECT c.id, a.name, a.subject, c.serial, c.status,"
		    " c.revoked_at, c.reason, c.not_before, c.not_after,"
		    " c.fingerprint, c.subject, c.der FROM certs c JOIN cas a"
		    " ON a.id = c.ca_id WHERE c.id > ? AND c.status IN (1, 2)"
		    " ORDER BY c.id LIMIT ?", "ii", s->cursor,
		    (int64_t)SYNC_BATCH_MAX);
	if (r != 0) {
		snprintf(s->error, sizeof(s->error), "reading certificates: %s",
		    s->err.msg);
		rows_clear(s);
		return;
	}
	s->empty = s->n == 0;
}

static void
batch_work(void *arg)
{
	struct pub_sync		*s = arg;
	struct store_txn	*tx = NULL;
	int			 r;

	rows_clear(s);
	s->last_id = s->cursor;
	s->empty = false;
	if (s->check) {
		check_batch(s);
		return;
	}
	/* The sequence first (see the top of the file). */
	if ((r = store_txn_begin(s->p->st, &tx, &s->err)) != 0 ||
	    (r = store_exec(s->p->st, tx, NULL, &s->err, "UPDATE pub_seq SET "
	    "next = next + 1 WHERE id = 1", "")) < 0 ||
	    (r = store_select(s->p->st, tx, seq_row, &s->seq, &s->err,
	    "SELECT next FROM pub_seq WHERE id = 1", "")) != 0 ||
	    (r = store_txn_commit(tx, &s->err)) != 0) {
		if (tx != NULL && r != 0)
			store_txn_rollback(tx);
		snprintf(s->error, sizeof(s->error), "drawing a sequence: %s",
		    s->err.msg);
		return;
	}
	if (store_select(s->p->st, NULL, batch_row, s, &s->err, "SELECT c.id,"
	    " a.name, a.subject, c.serial, c.status, c.revoked_at, c.reason,"
	    " c.not_before, c.not_after, c.fingerprint, c.subject, c.der FROM"
	    " certs c JOIN cas a ON a.id = c.ca_id WHERE c.id > ? AND c.status"
	    " IN (?, ?) AND c.not_after > ? AND c.not_before >= ? ORDER BY"
	    " c.id LIMIT ?", "iiiiii", s->cursor, subset_lo(s->subset),
	    subset_hi(s->subset), subset_after(s->subset), s->since,
	    s->batch) != 0) {
		snprintf(s->error, sizeof(s->error), "reading certificates: %s",
		    s->err.msg);
		rows_clear(s);
		return;
	}
	s->empty = s->last_id == s->cursor;
}

/* Pool: the batch's outcome, in one transaction. */
static void
save_work(void *arg)
{
	struct pub_sync		*s = arg;
	struct store_txn	*tx = NULL;
	struct taskrow		 t = { 0 };
	int64_t			 pushed = 0, failed = 0, now = (int64_t)sp_now();
	int			 r;

	for (size_t i = 0; i < s->n; i++) {
		if (s->rows[i].etype != NULL)
			failed++;
		else if (s->rows[i].push)
			pushed++;
	}
	if ((r = store_txn_begin(s->p->st, &tx, &s->err)) != 0)
		goto fail;
	for (size_t i = 0; i < s->n; i++) {
		struct srow	*w = &s->rows[i];

		if (w->etype == NULL)
			continue;
		if ((r = store_exec(s->p->st, tx, NULL, &s->err, "INSERT INTO "
		    "sync_failures (connector, cert_id, fingerprint, subject, "
		    "issuer, error_type, error_message) VALUES (?, ?, ?, ?, ?, "
		    "?, ?) ON CONFLICT (connector, cert_id) DO UPDATE SET "
		    "error_type = excluded.error_type, error_message = "
		    "excluded.error_message", "sisssss", s->connector, w->id,
		    w->fp, w->subject, w->issuer, w->etype, w->emsg)) < 0)
			goto undo;
	}
	if (s->empty)
		r = store_exec(s->p->st, tx, NULL, &s->err, "UPDATE sync_tasks "
		    "SET state = CASE WHEN state = 'running' THEN 'done' ELSE "
		    "state END, finished = ?, updated = ?, last_error = '' "
		    "WHERE connector = ?", "iis", now, now, s->connector);
	else
		r = store_exec(s->p->st, tx, NULL, &s->err, "UPDATE sync_tasks "
		    "SET cursor = ?, checked = checked + ?, pushed = pushed + "
		    "?, failed = failed + ?, updated = ?, last_error = '' WHERE "
		    "connector = ?", "iiiiis", s->last_id, (int64_t)s->n, pushed,
		    failed, now, s->connector);
	if (r < 0 || (r = store_select(s->p->st, tx, task_row, &t, &s->err,
	    "SELECT state, checked FROM sync_tasks WHERE connector = ?", "s",
	    s->connector)) != 0)
		goto undo;
	if ((r = store_txn_commit(tx, &s->err)) != 0)
		goto fail;
	s->cursor = s->last_id;
	s->ended = !t.found || strcmp(t.state, "running") != 0;
	rows_clear(s);
	return;
 undo:
	store_txn_rollback(tx);
 fail:
	snprintf(s->error, sizeof(s->error), "saving progress: %s",
	    s->err.msg);
	rows_clear(s);
}

/* Pool: a whole-request failure, shown by `peer sync status`. */
static void
error_work(void *arg)
{
	struct pub_sync	*s = arg;
	struct sp_err	 err = { 0 };

	if (s->check)
		return;		/* check_end() records it */
	if (store_exec(s->p->st, NULL, NULL, &err, "UPDATE sync_tasks SET "
	    "last_error = ?, updated = ?, state = CASE WHEN ? = 1 AND state = "
	    "'running' THEN 'failed' ELSE state END WHERE connector = ?",
	    "siis", s->error, (int64_t)sp_now(), (int64_t)s->fatal,
	    s->connector) < 0)
		log_warnx("peer sync %s: %s", s->connector, err.msg);
}

static void
error_done(void *arg)
{
	struct pub_sync	*s = arg;

	if (s->check) {
		check_end(s);
		return;
	}
	log_warnx("peer sync %s: %s%s", s->connector, s->error, s->fatal ?
	    " (the sync stops)" : "; retrying");
	if (s->fatal)
		s->ended = true;
	s->error[0] = '\0';
	s->fatal = false;
	rows_clear(s);
	if (s->p->stopping || s->ended) {
		sync_free(s);
		return;
	}
	s->stage = ST_WAIT;
	s->retry_at = sp_now() + SYNC_RETRY_S;
}

static void
fail_request(struct pub_sync *s, const struct peer_response *res,
    const char *what)
{
	snprintf(s->error, sizeof(s->error), "%s: %s (HTTP %d): %.200s", what,
	    peer_req_error_str(res->error), res->status, res->err &&
	    res->err->msg[0] ? res->err->msg : "request failed");
	/* Refused by the VA (a role without the rule): retrying won't help. */
	s->fatal = res->error == PEER_REQ_HTTP && (res->status == 403 ||
	    res->status == 404);
}

static void	push_next(struct pub_sync *s);

static void
on_push(void *arg, const struct peer_response *res)
{
	struct pub_sync	*s = arg;
	json_t		*results = res->body ? json_object_get(res->body,
			    "results") : NULL;
	size_t		 k = 0;

	if (s->p->stopping) {
		sync_free(s);
		return;
	}
	if (res->error != PEER_REQ_OK)
		fail_request(s, res, "publish/certs");
	else if (!json_is_array(results))
		snprintf(s->error, sizeof(s->error), "publish/certs: bad "
		    "reply");
	if (s->error[0] != '\0') {
		if (pool_submit(s->p->pool, error_work, error_done, s) != 0)
			error_done(s);
		return;
	}
	/* The results, in order, of the entries this request carried. */
	for (size_t i = s->next_push; i < s->n && k < SYNC_PUSH_MAX; i++) {
		struct srow	*w = &s->rows[i];
		json_t		*o, *e;

		if (!w->push || w->etype != NULL)
			continue;
		o = json_array_get(results, k++);
		s->next_push = i + 1;
		if (json_is_true(json_object_get(o, "ok")))
			continue;
		e = json_object_get(o, "error");
		w->etype = json_string_value(json_object_get(e, "code")) ?
		    "publish" : "publish";
		snprintf(w->emsg, sizeof(w->emsg), "%s: %s",
		    json_string_value(json_object_get(e, "code")) ?: "error",
		    json_string_value(json_object_get(e, "message")) ?: "");
	}
	push_next(s);
}

static void
save_done(void *arg)
{
	step_end(arg);
}

/* Pushes the next chunk of entries the VA lacks; saves when none is left. */
static void
push_next(struct pub_sync *s)
{
	json_t		*arr, *body;
	struct sp_err	 err = { 0 };
	size_t		 k = 0, i;

	if ((arr = json_array()) == NULL) {
		snprintf(s->error, sizeof(s->error), "out of memory");
		if (pool_submit(s->p->pool, error_work, error_done, s) != 0)
			error_done(s);
		return;
	}
	for (i = s->next_push; i < s->n && k < SYNC_PUSH_MAX; i++) {
		struct srow	*w = &s->rows[i];
		json_t		*e;
		char		*d;

		if (!w->push || w->etype != NULL)
			continue;
		e = json_pack("{s:s,s:s,s:I,s:s,s:I,s:I,s:s,s:s}", "ca", w->ca,
		    "serial", w->serial, "seq", (json_int_t)s->seq, "status",
		    w->status, "not_before", (json_int_t)w->not_before,
		    "not_after", (json_int_t)w->not_after, "fingerprint", w->fp,
		    "subject", w->subject);
		if (e != NULL && strcmp(w->status, "good") != 0) {
			json_object_set_new(e, "revoked_at",
			    json_integer(w->revoked_at));
			json_object_set_new(e, "reason",
			    json_integer(w->reason));
		}
		if (e != NULL && w->der != NULL && (d = b64(w->der,
		    w->derlen)) != NULL) {
			json_object_set_new(e, "certificate", json_string(d));
			free(d);
		}
		json_array_append_new(arr, e);
		k++;
	}
	if (k == 0) {
		json_decref(arr);
		if (pool_submit(s->p->pool, save_work, save_done, s) != 0) {
			s->stage = ST_WAIT;	/* the pool is full: later */
			s->retry_at = sp_now() + 1;
			rows_clear(s);
		}
		return;
	}
	body = json_pack("{s:o}", "entries", arr);
	if (body == NULL || peer_connector_request(s->p->peer, s->connector,
	    &(struct peer_request){ .method = "POST", .path = "/publish/certs",
	    .body = body, .timeout_ms = SYNC_REQ_TIMEOUT_MS,
	    .lane = PEER_LANE_NORMAL }, on_push, s, &err) != 0) {
		json_decref(body);
		snprintf(s->error, sizeof(s->error), "publish/certs: %s",
		    err.msg[0] ? err.msg : "out of memory");
		if (pool_submit(s->p->pool, error_work, error_done, s) != 0)
			error_done(s);
		return;
	}
	json_decref(body);
}

static void
on_read(void *arg, const struct peer_response *res)
{
	struct pub_sync	*s = arg;
	json_t		*results = res->body ? json_object_get(res->body,
			    "results") : NULL;

	if (s->p->stopping) {
		sync_free(s);
		return;
	}
	if (res->error != PEER_REQ_OK)
		fail_request(s, res, "publish/readcerts");
	else if (!json_is_array(results) || json_array_size(results) != s->n)
		snprintf(s->error, sizeof(s->error), "publish/readcerts: the "
		    "VA did not answer one result per entry");
	if (s->error[0] != '\0') {
		if (pool_submit(s->p->pool, error_work, error_done, s) != 0)
			error_done(s);
		return;
	}
	if (s->check) {
		check_tally(s, results);
		return;
	}
	for (size_t i = 0; i < s->n; i++) {
		json_t		*o = json_array_get(results, i), *e;
		const char	*st = json_string_value(json_object_get(o,
				    "state"));
		struct srow	*w = &s->rows[i];

		if (json_is_true(json_object_get(o, "ok"))) {
			w->push = st == NULL || strcmp(st, "same") != 0;
			continue;
		}
		e = json_object_get(o, "error");
		w->etype = "readcerts";
		snprintf(w->emsg, sizeof(w->emsg), "%s: %s",
		    json_string_value(json_object_get(e, "code")) ?: "error",
		    json_string_value(json_object_get(e, "message")) ?: "");
	}
	push_next(s);
}

static void
batch_done(void *arg)
{
	struct pub_sync	*s = arg;
	json_t		*arr, *body;
	struct sp_err	 err = { 0 };

	if (s->p->stopping) {
		sync_free(s);
		return;
	}
	if (s->error[0] != '\0') {
		if (pool_submit(s->p->pool, error_work, error_done, s) != 0)
			error_done(s);
		return;
	}
	if (s->check && (s->empty || s->n == 0)) {
		check_end(s);
		return;
	}
	if (s->n == 0) {	/* done, or only CAs this task skips */
		if (pool_submit(s->p->pool, save_work, save_done, s) != 0) {
			s->stage = ST_WAIT;
			s->retry_at = sp_now() + 1;
		}
		return;
	}
	if ((arr = json_array()) == NULL)
		goto oom;
	for (size_t i = 0; i < s->n; i++) {
		struct srow	*w = &s->rows[i];
		json_t		*e = json_pack("{s:s,s:s,s:I,s:s}", "ca", w->ca,
				    "serial", w->serial, "seq",
				    (json_int_t)s->seq, "status", w->status);

		if (e != NULL && strcmp(w->status, "good") != 0) {
			json_object_set_new(e, "revoked_at",
			    json_integer(w->revoked_at));
			json_object_set_new(e, "reason",
			    json_integer(w->reason));
		}
		if (e == NULL || json_array_append_new(arr, e) != 0) {
			json_decref(arr);
			goto oom;
		}
	}
	if ((body = json_pack("{s:o}", "entries", arr)) == NULL)
		goto oom;
	if (peer_connector_request(s->p->peer, s->connector,
	    &(struct peer_request){ .method = "POST", .path =
	    "/publish/readcerts", .body = body, .timeout_ms =
	    SYNC_REQ_TIMEOUT_MS, .lane = PEER_LANE_NORMAL }, on_read, s,
	    &err) != 0) {
		json_decref(body);
		snprintf(s->error, sizeof(s->error), "publish/readcerts: %s",
		    err.msg);
		if (pool_submit(s->p->pool, error_work, error_done, s) != 0)
			error_done(s);
		return;
	}
	json_decref(body);
	return;
 oom:
	snprintf(s->error, sizeof(s->error), "out of memory");
	if (pool_submit(s->p->pool, error_work, error_done, s) != 0)
		error_done(s);
}

static void
on_cas(void *arg, const struct peer_response *res)
{
	struct pub_sync	*s = arg;

	if (s->p->stopping) {
		sync_free(s);
		return;
	}
	if (res->error != PEER_REQ_OK) {
		fail_request(s, res, "publish/cas");
		if (pool_submit(s->p->pool, error_work, error_done, s) != 0)
			error_done(s);
		return;
	}
	/* A CA refused here is refused again per entry: the report says so. */
	s->cas_sent = true;
	step_end(s);
}

static void
load_done(void *arg)
{
	struct pub_sync	*s = arg;
	struct sp_err	 err = { 0 };

	if (s->p->stopping || s->ended) {
		sync_free(s);
		return;
	}
	if (s->error[0] != '\0') {
		if (pool_submit(s->p->pool, error_work, error_done, s) != 0)
			error_done(s);
		return;
	}
	if (s->cas_body == NULL || json_array_size(json_object_get(s->cas_body,
	    "cas")) == 0) {
		json_decref(s->cas_body);
		s->cas_body = NULL;
		s->cas_sent = true;
		step_end(s);
		return;
	}
	if (peer_connector_request(s->p->peer, s->connector,
	    &(struct peer_request){ .method = "POST", .path = "/publish/cas",
	    .body = s->cas_body, .timeout_ms = SYNC_REQ_TIMEOUT_MS,
	    .lane = PEER_LANE_NORMAL }, on_cas, s, &err) != 0) {
		snprintf(s->error, sizeof(s->error), "publish/cas: %s",
		    err.msg);
		if (pool_submit(s->p->pool, error_work, error_done, s) != 0)
			error_done(s);
	}
	json_decref(s->cas_body);
	s->cas_body = NULL;
}

/* --- staleness checks (loop thread) -------------------------------------- */

static void
check_tally(struct pub_sync *s, json_t *results)
{
	for (size_t i = 0; i < s->n; i++) {
		json_t		*o = json_array_get(results, i);
		const char	*st = json_string_value(json_object_get(o,
				    "state"));

		if (!json_is_true(json_object_get(o, "ok")) || st == NULL)
			s->errors++;
		else if (strcmp(st, "same") == 0)
			s->same++;
		else if (strcmp(st, "missing") == 0)
			s->missing++;
		else
			s->differs++;
	}
	s->checked += (int64_t)s->n;
	s->cursor = s->last_id;
	rows_clear(s);
	if (s->sample > 0 || s->p->stopping) {
		check_end(s);
		return;
	}
	s->stage = ST_IDLE;
	step(s);
}

static void
check_save_work(void *arg)
{
	struct pub_sync	*s = arg;
	struct sp_err	 err = { 0 };

	if (store_exec(s->p->st, NULL, NULL, &err, "INSERT INTO sync_checks "
	    "(connector, at, checked, same, missing, differs, errors, "
	    "last_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT "
	    "(connector) DO UPDATE SET at = excluded.at, checked = "
	    "excluded.checked, same = excluded.same, missing = "
	    "excluded.missing, differs = excluded.differs, errors = "
	    "excluded.errors, last_error = excluded.last_error", "siiiiiis",
	    s->connector, (int64_t)sp_now(), s->checked, s->same, s->missing,
	    s->differs, s->errors, s->error) < 0)
		log_warnx("peer sync check %s: %s", s->connector, err.msg);
}

static void
check_save_done(void *arg)
{
	struct pub_sync	*s = arg;
	struct sp_err	 err = { 0 };
	json_t		*res = NULL;
	int		 rc = 0;

	if (s->error[0] != '\0') {
		rc = sp_err_set(&err, SP_ERR_IO, "%s", s->error);
		log_warnx("peer sync check %s: %s", s->connector, s->error);
	} else {
		res = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:b}", "connector",
		    s->connector, "checked", (json_int_t)s->checked, "same",
		    (json_int_t)s->same, "missing", (json_int_t)s->missing,
		    "differs", (json_int_t)s->differs, "errors",
		    (json_int_t)s->errors, "drifted",
		    s->missing + s->differs > 0);
		if (s->missing + s->differs > 0)
			log_warnx("peer sync check %s: the VA has drifted: %lld "
			    "of %lld entries missing, %lld different (peer "
			    "sync start %s)", s->connector,
			    (long long)s->missing, (long long)s->checked,
			    (long long)s->differs, s->connector);
		if (res == NULL)
			rc = sp_err_set(&err, SP_ERR_ALLOC, "out of memory");
	}
	if (s->cb != NULL)
		s->cb(s->cb_arg, res, rc, &err);
	else
		json_decref(res);
	sync_free(s);
}

static void
check_end(struct pub_sync *s)
{
	rows_clear(s);
	s->stage = ST_BUSY;
	if (s->p->stopping || pool_submit(s->p->pool, check_save_work,
	    check_save_done, s) != 0)
		check_save_done(s);
}

void
pub_sync_check(struct pub *p, const char *connector, int64_t sample,
    pub_check_done *cb, void *arg)
{
	struct pub_sync	*s;
	struct sp_err	 err = { 0 };

	if (connector == NULL || !sp_name_valid(connector, PUB_NAME_MAX) ||
	    sample < 0 || sample > SYNC_BATCH_MAX) {
		if (connector == NULL || !sp_name_valid(connector,
		    PUB_NAME_MAX))
			sp_err_set(&err, SP_ERR_INVALID, "invalid connector "
			    "name");
		else
			sp_err_set(&err, SP_ERR_INVALID, "--sample is 1 to %d "
			    "(0: all)", SYNC_BATCH_MAX);
		if (cb != NULL)
			cb(arg, NULL, err.code, &err);
		return;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		sp_err_set(&err, SP_ERR_ALLOC, "out of memory");
		if (cb != NULL)
			cb(arg, NULL, err.code, &err);
		return;
	}
	s->p = p;
	s->check = true;
	s->cas_sent = true;
	s->sample = sample;
	s->cb = cb;
	s->cb_arg = arg;
	snprintf(s->connector, sizeof(s->connector), "%s", connector);
	snprintf(s->subset, sizeof(s->subset), "all");
	s->batch = SYNC_BATCH_MAX;
	step(s);
	if (s->stage == ST_WAIT) {	/* the pool is full */
		snprintf(s->error, sizeof(s->error), "the node is busy; retry");
		check_save_done(s);
	}
}

/* Takes s's next step if it is idle (or its wait is over). */
static void
step(struct pub_sync *s)
{
	int	r;

	if (s->stage == ST_BUSY || (s->stage == ST_WAIT && sp_now() <
	    s->retry_at))
		return;
	s->stage = ST_BUSY;
	if (!s->cas_sent && !s->check)
		r = pool_submit(s->p->pool, load_work, load_done, s);
	else
		r = pool_submit(s->p->pool, batch_work, batch_done, s);
	if (r != 0) {		/* the pool is full: the next tick */
		s->stage = ST_WAIT;
		s->retry_at = sp_now() + 1;
	}
}

/* Pool: the running tasks; the loop starts a runner for each new one. */
struct scan {
	struct pub	*p;
	char		(*names)[PUB_NAME_MAX + 1];
	size_t		 n;
	char		(*due)[PUB_NAME_MAX + 1];	/* checks to run */
	size_t		 ndue;
	json_t		*view;		/* pub_sync_view() */
};

static int
scan_row(const struct store_row *row, void *arg)
{
	struct scan	*sc = arg;
	void		*t;

	if (sc->n >= 1024)
		return 0;
	if ((t = realloc(sc->names, (sc->n + 1) * sizeof(*sc->names))) ==
	    NULL)
		return SP_ERR_ALLOC;
	sc->names = t;
	snprintf(sc->names[sc->n++], PUB_NAME_MAX + 1, "%s",
	    store_row_text(row, 0));
	return 0;
}

static json_t *
view_entry(json_t *view, const char *connector)
{
	json_t	*e = json_object_get(view, connector);

	if (e == NULL && (e = json_object()) != NULL)
		json_object_set_new(view, connector, e);
	return e;
}

static int
view_task_row(const struct store_row *row, void *arg)
{
	json_t		*e = view_entry(arg, store_row_text(row, 0));
	int64_t		 checked = store_row_int(row, 2);
	int64_t		 total = store_row_int(row, 3);
	char		 buf[64];

	if (e == NULL)
		return SP_ERR_ALLOC;
	snprintf(buf, sizeof(buf), "%s %lld%%", store_row_text(row, 1),
	    (long long)(total > 0 ? (checked > total ? 100 : 100 * checked /
	    total) : 100));
	json_object_set_new(e, "sync", json_string(buf));
	return 0;
}

static int
view_check_row(const struct store_row *row, void *arg)
{
	json_t		*e = view_entry(arg, store_row_text(row, 0));
	int64_t		 missing = store_row_int(row, 3);
	int64_t		 differs = store_row_int(row, 4);
	char		 buf[128];

	if (e == NULL)
		return SP_ERR_ALLOC;
	if (store_row_int(row, 1) == 0)
		snprintf(buf, sizeof(buf), "never");
	else if (store_row_text(row, 6)[0] != '\0')
		snprintf(buf, sizeof(buf), "failed: %.100s",
		    store_row_text(row, 6));
	else if (missing + differs > 0)
		snprintf(buf, sizeof(buf), "DRIFT: %lld missing, %lld differ "
		    "of %lld", (long long)missing, (long long)differs,
		    (long long)store_row_int(row, 2));
	else
		snprintf(buf, sizeof(buf), "ok (%lld checked)",
		    (long long)store_row_int(row, 2));
	json_object_set_new(e, "check", json_string(buf));
	json_object_set_new(e, "check_every", json_integer(store_row_int(row,
	    5)));
	return 0;
}

static int
due_row(const struct store_row *row, void *arg)
{
	struct scan	*sc = arg;
	void		*t;

	if (sc->ndue >= 64)
		return 0;
	if ((t = realloc(sc->due, (sc->ndue + 1) * sizeof(*sc->due))) == NULL)
		return SP_ERR_ALLOC;
	sc->due = t;
	snprintf(sc->due[sc->ndue++], PUB_NAME_MAX + 1, "%s",
	    store_row_text(row, 0));
	return 0;
}

static void
scan_work(void *arg)
{
	struct scan	*sc = arg;
	struct sp_err	 err = { 0 };
	int64_t		 now = (int64_t)sp_now();

	if (store_select(sc->p->st, NULL, scan_row, sc, &err, "SELECT "
	    "connector FROM sync_tasks WHERE state = 'running'", "") != 0)
		log_warnx("peer sync: listing the tasks: %s", err.msg);
	if ((sc->view = json_object()) == NULL ||
	    store_select(sc->p->st, NULL, view_task_row, sc->view, &err,
	    "SELECT connector, state, checked, total FROM sync_tasks", "") !=
	    0 || store_select(sc->p->st, NULL, view_check_row, sc->view, &err,
	    "SELECT connector, at, checked, missing, differs, every, "
	    "last_error FROM sync_checks", "") != 0) {
		json_decref(sc->view);
		sc->view = NULL;
	}
	/* Scheduled checks that are due, moved on in the same breath. */
	if (store_select(sc->p->st, NULL, due_row, sc, &err, "SELECT "
	    "connector FROM sync_checks WHERE every > 0 AND next_at <= ?",
	    "i", now) == 0 && sc->ndue > 0 && store_exec(sc->p->st, NULL,
	    NULL, &err, "UPDATE sync_checks SET next_at = ? + every WHERE "
	    "every > 0 AND next_at <= ?", "ii", now, now) < 0)
		log_warnx("peer sync: scheduling checks: %s", err.msg);
}

static void
scan_done(void *arg)
{
	struct scan	*sc = arg;
	struct pub	*p = sc->p;

	p->sync_scanning = false;
	if (sc->view != NULL) {
		json_decref(p->sync_view);
		p->sync_view = sc->view;
	}
	for (size_t i = 0; i < sc->ndue && !p->stopping; i++)
		pub_sync_check(p, sc->due[i], 1000, NULL, NULL);
	for (size_t i = 0; i < sc->n && !p->stopping; i++) {
		struct pub_sync	*s;

		for (s = p->syncs; s != NULL; s = s->next)
			if (strcmp(s->connector, sc->names[i]) == 0)
				break;
		if (s != NULL || (s = calloc(1, sizeof(*s))) == NULL)
			continue;
		s->p = p;
		snprintf(s->connector, sizeof(s->connector), "%s",
		    sc->names[i]);
		s->next = p->syncs;
		p->syncs = s;
		log_info("peer sync %s: running", s->connector);
		step(s);
	}
	free(sc->names);
	free(sc->due);
	free(sc);
}

json_t *
pub_sync_view(struct pub *p)
{
	return p->sync_view != NULL ? json_deep_copy(p->sync_view) :
	    json_object();
}

int
pub_sync_check_every(struct pub *p, const char *connector, int64_t seconds,
    struct sp_err *err)
{
	int	r;

	if (connector == NULL || !sp_name_valid(connector, PUB_NAME_MAX))
		return sp_err_set(err, SP_ERR_INVALID, "invalid connector "
		    "name");
	if (seconds < 0 || seconds > 366 * 86400)
		return sp_err_set(err, SP_ERR_INVALID, "--check-every is 0 "
		    "(off) to 31622400 seconds");
	r = store_exec(p->st, NULL, NULL, err, "INSERT INTO sync_checks "
	    "(connector, every, next_at) VALUES (?, ?, ?) ON CONFLICT "
	    "(connector) DO UPDATE SET every = excluded.every, next_at = "
	    "excluded.next_at", "sii", connector, seconds,
	    (int64_t)sp_now() + seconds);
	return r < 0 ? r : 0;
}

void
pub_sync_run(struct pub *p)
{
	struct scan	*sc;

	if (p->stopping)
		return;
	for (struct pub_sync *s = p->syncs; s != NULL; s = s->next)
		if (s->stage == ST_WAIT)
			step(s);
	if (p->sync_scanning || (sc = calloc(1, sizeof(*sc))) == NULL)
		return;
	sc->p = p;
	if (pool_submit(p->pool, scan_work, scan_done, sc) != 0) {
		free(sc);
		return;
	}
	p->sync_scanning = true;
}

void
pub_sync_free_all(struct pub *p)
{
	struct pub_sync	*s, *next;

	/* Only idle runners are left here: a busy one frees itself. */
	for (s = p->syncs; s != NULL; s = next) {
		next = s->next;
		if (s->stage != ST_BUSY)
			sync_free(s);
	}
}
