/*
 * Publishers and their outbox (docs/internals/pub.md). The publisher list
 * is cached in memory under a mutex: the commit hook reads it on worker
 * threads, admin edits replace entries. The store is the truth: every
 * edit writes its row first and changes the cache only after commit.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pub/pub_int.h"
#include "util/util.h"

/* --- the cache ------------------------------------------------------------ */

static int
load_row(const struct store_row *row, void *arg)
{
	struct pub		*p = arg;
	struct publisher	*nv, *e;

	if ((nv = realloc(p->v, (p->n + 1) * sizeof(*nv))) == NULL)
		return SP_ERR_ALLOC;
	p->v = nv;
	e = &p->v[p->n++];
	memset(e, 0, sizeof(*e));
	e->id = store_row_int(row, 0);
	snprintf(e->name, sizeof(e->name), "%s", store_row_text(row, 1));
	snprintf(e->connector, sizeof(e->connector), "%s",
	    store_row_text(row, 2));
	snprintf(e->cas, sizeof(e->cas), "%s", store_row_text(row, 3));
	e->only_revoked = store_row_int(row, 4) != 0;
	e->no_der = store_row_int(row, 5) != 0;
	e->no_crls = store_row_int(row, 6) != 0;
	e->created = store_row_int(row, 7);
	return 0;
}

static int
reload(struct pub *p, struct sp_err *err)
{
	int	r;

	pthread_mutex_lock(&p->lk);
	free(p->v);
	p->v = NULL;
	p->n = 0;
	r = store_select(p->st, NULL, load_row, p, err,
	    "SELECT id, name, connector, cas, only_revoked, no_der, no_crls,"
	    " created FROM publishers ORDER BY id", "");
	pthread_mutex_unlock(&p->lk);
	return r;
}

int
pub_open(struct store *st, struct ca_service *ca, struct pub **out,
    struct sp_err *err)
{
	struct pub	*p;
	int		 r;

	*out = NULL;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	p->st = st;
	p->ca = ca;
	pthread_mutex_init(&p->lk, NULL);
	if ((r = reload(p, err)) != 0 ||
	    (ca != NULL && (r = ca_add_commit_hook(ca, pub_commit_hook, p)) != 0) ||
	    (ca != NULL && (r = ca_add_commit_notify(ca, pub_wake, p)) != 0)) {
		if (err != NULL && err->msg[0] == '\0')
			sp_err_set(err, r, "publishers: setup failed");
		pub_free(p);
		return r;
	}
	*out = p;
	return 0;
}

void
pub_free(struct pub *p)
{
	if (p == NULL)
		return;
	pub_stop(p);
	pub_free_dlv(p);
	pub_sync_free_all(p);
	json_decref(p->sync_view);
	pthread_mutex_destroy(&p->lk);
	free(p->v);
	free(p);
}

/* Whether the comma list cas names ca ("" names every CA). */
bool
pub_covers(const char *cas, const char *ca)
{
	size_t		 n = strlen(ca);
	const char	*s = cas;

	if (cas[0] == '\0')
		return true;
	while (*s != '\0') {
		const char	*c = strchr(s, ',');
		size_t		 l = c ? (size_t)(c - s) : strlen(s);

		if (l == n && strncmp(s, ca, n) == 0)
			return true;
		s += l + (c ? 1 : 0);
	}
	return false;
}

/* --- the outbox hook ------------------------------------------------------ */

static const char *
status_word(enum cert_status s, int reason)
{
	if (s == CERT_REVOKED)
		return reason == 6 ? "hold" : "revoked";
	return "good";
}

struct certrow {
	bool		 found;
	int64_t		 not_before, not_after;
	char		 fingerprint[65];
	char		*subject;
	unsigned char	*der;		/* the certificate */
	size_t		 derlen;
};

static int
cert_row(const struct store_cert *c, void *arg)
{
	struct certrow	*cr = arg;

	cr->found = true;
	cr->not_before = c->not_before;
	cr->not_after = c->not_after;
	snprintf(cr->fingerprint, sizeof(cr->fingerprint), "%s",
	    c->fingerprint ? c->fingerprint : "");
	free(cr->subject);
	cr->subject = strdup(c->subject ? c->subject : "");
	free(cr->der);
	cr->der = NULL;
	cr->derlen = 0;
	if (c->status != CERT_RESERVED && c->status != CERT_FAILED &&
	    c->derlen > 0 && (cr->der = malloc(c->derlen)) != NULL) {
		memcpy(cr->der, c->der, c->derlen);
		cr->derlen = c->derlen;
	}
	return cr->subject && (c->derlen == 0 || cr->der) ? 0 : SP_ERR_ALLOC;
}

/*
 * Moves the update sequence on, for the rows the caller inserts next in
 * tx (they take it with SEQ_NEXT). The row lock orders concurrent
 * changes on PostgreSQL too.
 */
#define SEQ_NEXT	"(SELECT next FROM pub_seq WHERE id = 1)"
static int
seq_bump(struct store *st, struct store_txn *tx, struct sp_err *err)
{
	int	r = store_exec(st, tx, NULL, err, "UPDATE pub_seq SET next = "
	    "next + 1 WHERE id = 1", "");

	return r < 0 ? r : 0;
}

static int
enqueue(struct store *st, struct store_txn *tx, int64_t pid,
    const char *kind, const struct ca_change_ev *ev, const char *status,
    const struct certrow *cr, const unsigned char *der, size_t derlen,
    struct sp_err *err)
{
	int	r;

	if ((r = seq_bump(st, tx, err)) != 0)
		return r;
	r = store_exec(st, tx, NULL, err,
	    "INSERT INTO pub_queue (publisher_id, kind, ca, serial, status,"
	    " revoked_at, reason, not_before, not_after, fingerprint, subject,"
	    " der, created, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
	    SEQ_NEXT ")",
	    "issssiiiissbi", pid, kind, ev->ca,
	    ev->serial ? ev->serial : "", status,
	    (int64_t)(ev->what == CA_CHANGE_STATUS ? ev->revoked_at : 0),
	    (int64_t)ev->reason, cr ? cr->not_before : (int64_t)0,
	    cr ? cr->not_after : (int64_t)0, cr ? cr->fingerprint : "",
	    cr && cr->subject ? cr->subject : "", der, derlen,
	    (int64_t)sp_now());
	return r < 0 ? r : 0;
}

int
pub_commit_hook(void *arg, struct store *st, struct store_txn *tx,
    const struct ca_change_ev *ev, struct sp_err *err)
{
	struct pub	*p = arg;
	struct certrow	 cr = { 0 };
	const char	*kind, *status = "";
	bool		 good = false;
	int		 r = 0;

	switch (ev->what) {
	case CA_CHANGE_CA:
		kind = "ca";
		break;
	case CA_CHANGE_CERT:
	case CA_CHANGE_STATUS:
		kind = "cert";
		status = status_word(ev->status, ev->reason);
		good = ev->status != CERT_REVOKED;
		/* The row holds what the VA checks, in this very tx. */
		if ((r = store_cert_get(st, tx, ev->ca_id, ev->serial, cert_row,
		    &cr, err)) != 0)
			goto out;
		break;
	case CA_CHANGE_CRL:
		kind = "crl";
		break;
	default:
		return 0;
	}
	pthread_mutex_lock(&p->lk);
	for (size_t i = 0; i < p->n && r == 0; i++) {
		const struct publisher	*e = &p->v[i];
		const unsigned char	*der = ev->der;
		size_t			 derlen = ev->derlen;

		if (!pub_covers(e->cas, ev->ca))
			continue;
		if (ev->what == CA_CHANGE_CRL && e->no_crls)
			continue;
		if (ev->what == CA_CHANGE_CERT && good && e->only_revoked)
			continue;
		if (ev->what == CA_CHANGE_CERT ||
		    ev->what == CA_CHANGE_STATUS) {
			der = e->no_der ? NULL : cr.der;
			derlen = e->no_der ? 0 : cr.derlen;
		}
		r = enqueue(st, tx, e->id, kind, ev, status,
		    ev->what == CA_CHANGE_CA || ev->what == CA_CHANGE_CRL ?
		    NULL : &cr, der, derlen, err);
	}
	pthread_mutex_unlock(&p->lk);
 out:
	free(cr.subject);
	free(cr.der);
	return r;
}

/* --- backoff -------------------------------------------------------------- */

int64_t
pub_backoff(int64_t attempts, double rnd)
{
	int64_t	d = PUB_BACKOFF_MIN;
	double	j;

	for (int64_t i = 1; i < attempts && d < PUB_BACKOFF_MAX; i++)
		d *= 2;
	if (d > PUB_BACKOFF_MAX)
		d = PUB_BACKOFF_MAX;
	if (rnd < 0)
		rnd = 0;
	if (rnd > 1)
		rnd = 1;
	j = (double)d * (0.8 + 0.4 * rnd);
	return j < 1 ? 1 : (int64_t)(j + 0.5);
}

/* --- administration ------------------------------------------------------- */

static int
find(struct pub *p, const char *name, struct publisher *out,
    struct sp_err *err)
{
	int	r = SP_ERR_NOTFOUND;

	pthread_mutex_lock(&p->lk);
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->v[i].name, name) == 0) {
			*out = p->v[i];
			r = 0;
			break;
		}
	pthread_mutex_unlock(&p->lk);
	if (r != 0)
		sp_err_set(err, r, "no publisher \"%.64s\"", name);
	return r;
}

int
pub_join_cas(const char *const *cas, size_t n, char *buf, size_t cap,
    struct sp_err *err)
{
	size_t	off = 0;

	buf[0] = '\0';
	if (n > PUB_CAS_MAX)
		return sp_err_set(err, SP_ERR_LIMIT, "at most %d CAs",
		    PUB_CAS_MAX);
	for (size_t i = 0; i < n; i++) {
		int	w;

		if (!sp_name_valid(cas[i], CA_NAME_MAX))
			return sp_err_set(err, SP_ERR_INVALID, "invalid CA "
			    "name \"%.64s\"", cas[i]);
		w = snprintf(buf + off, cap - off, "%s%s", i ? "," : "",
		    cas[i]);
		if (w < 0 || (size_t)w >= cap - off)
			return sp_err_set(err, SP_ERR_LIMIT, "too many CAs");
		off += (size_t)w;
	}
	return 0;
}

struct calist {
	struct { int64_t id; char name[CA_NAME_MAX + 1]; } v[256];
	size_t	n;
};

static int
ca_row(const struct store_row *row, void *arg)
{
	struct calist	*l = arg;

	if (l->n == sizeof(l->v) / sizeof(l->v[0]))
		return SP_ERR_LIMIT;
	l->v[l->n].id = store_row_int(row, 0);
	snprintf(l->v[l->n].name, sizeof(l->v[l->n].name), "%s",
	    store_row_text(row, 1));
	l->n++;
	return 0;
}

/*
 * Queues a CA item (and, if certs, every issued certificate) for each CA
 * the publisher covers (only ca if not NULL). Counts in *ncas, *ncerts.
 */
static int
queue_cas(struct pub *p, struct store_txn *tx, const struct publisher *e,
    const char *ca, bool certs, int64_t *ncas, int64_t *ncerts,
    struct sp_err *err)
{
	struct calist	*l;
	int64_t		 now = (int64_t)sp_now();
	int		 r;

	*ncas = *ncerts = 0;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	if ((r = store_select(p->st, tx, ca_row, l, err,
	    "SELECT id, name FROM cas ORDER BY id", "")) != 0)
		goto out;
	for (size_t i = 0; i < l->n; i++) {
		if (!pub_covers(e->cas, l->v[i].name) ||
		    (ca != NULL && strcmp(ca, l->v[i].name) != 0))
			continue;
		if ((r = store_exec(p->st, tx, NULL, err,
		    "INSERT INTO pub_queue (publisher_id, kind, ca, der, created)"
		    " SELECT ?, 'ca', name, cert, ? FROM cas WHERE id = ?",
		    "iii", e->id, now, l->v[i].id)) < 0)
			goto out;
		(*ncas)++;
		if (!certs)
			continue;
		if ((r = seq_bump(p->st, tx, err)) != 0)
			goto out;
		/* Certificates without DER for a --no-der publisher. */
		r = store_exec(p->st, tx, NULL, err,
		    "INSERT INTO pub_queue (publisher_id, kind, ca,"
		    " serial, status, revoked_at, reason, not_before,"
		    " not_after, fingerprint, subject, der, created, seq)"
		    " SELECT ?, 'cert', ?, serial, CASE WHEN status = 2"
		    " AND reason = 6 THEN 'hold' WHEN status = 2 THEN"
		    " 'revoked' ELSE 'good' END, revoked_at, reason,"
		    " not_before, not_after, fingerprint, subject, CASE WHEN"
		    " ? = 1 THEN NULL ELSE der END, ?, " SEQ_NEXT " FROM"
		    " certs WHERE ca_id = ? AND status IN (1, 2) ORDER BY id",
		    "isiii", e->id, l->v[i].name, (int64_t)e->no_der, now,
		    l->v[i].id);
		if (r < 0)
			goto out;
		*ncerts += r;
	}
	r = 0;
 out:
	free(l);
	return r;
}

static int
audit(struct pub *p, struct store_txn *tx, const char *event,
    const char *actor, json_t *obj, struct sp_err *err)
{
	char	*d = obj ? json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	int	 r;

	json_decref(obj);
	if (d == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	r = store_audit_append(p->st, tx, event, actor ? actor : "", d, err);
	free(d);
	return r;
}

static int
check_settings(const struct pub_settings *s, bool add, struct sp_err *err)
{
	if ((add || s->connector != NULL) && (s->connector == NULL ||
	    !sp_name_valid(s->connector, PUB_NAME_MAX)))
		return sp_err_set(err, SP_ERR_INVALID, "invalid connector "
		    "name");
	return 0;
}

int
pub_add(struct pub *p, const char *name, const struct pub_settings *s,
    const char *actor, json_t **out, struct sp_err *err)
{
	struct publisher	 e = { 0 };
	struct store_txn	*tx = NULL;
	int64_t			 ncas, ncerts;
	int			 r;

	*out = NULL;
	if (name == NULL || !sp_name_valid(name, PUB_NAME_MAX))
		return sp_err_set(err, SP_ERR_INVALID, "invalid publisher "
		    "name");
	if ((r = check_settings(s, true, err)) != 0 ||
	    (r = pub_join_cas(s->cas, s->cas ? s->ncas : 0, e.cas,
	    sizeof(e.cas), err)) != 0)
		return r;
	snprintf(e.name, sizeof(e.name), "%s", name);
	snprintf(e.connector, sizeof(e.connector), "%s", s->connector);
	e.only_revoked = s->only_revoked > 0;
	e.no_der = s->no_der > 0;
	e.no_crls = s->no_crls > 0;
	e.created = (int64_t)sp_now();
	if ((r = store_txn_begin(p->st, &tx, err)) != 0)
		return r;
	if ((r = store_exec(p->st, tx, &e.id, err,
	    "INSERT INTO publishers (name, connector, cas, only_revoked,"
	    " no_der, no_crls, created) VALUES (?, ?, ?, ?, ?, ?, ?)"
	    " RETURNING id", "sssiiii", e.name, e.connector, e.cas,
	    (int64_t)e.only_revoked, (int64_t)e.no_der, (int64_t)e.no_crls,
	    e.created)) < 0) {
		if (r == SP_ERR_EXISTS)
			sp_err_set(err, r, "publisher \"%s\" exists", name);
		goto undo;
	}
	if ((r = queue_cas(p, tx, &e, NULL, false, &ncas, &ncerts, err)) != 0 ||
	    (r = audit(p, tx, "publisher.add", actor, json_pack(
	    "{s:s,s:s,s:s,s:b,s:b,s:b}", "name", e.name, "connector",
	    e.connector, "cas", e.cas, "only_revoked", e.only_revoked,
	    "no_der", e.no_der, "no_crls", e.no_crls), err)) != 0)
		goto undo;
	if ((r = store_txn_commit(tx, err)) != 0)
		return r;
	if ((r = reload(p, err)) != 0)
		return r;
	return pub_show(p, name, out, err);
 undo:
	store_txn_rollback(tx);
	return r;
}

int
pub_edit(struct pub *p, const char *name, const struct pub_settings *s,
    const char *actor, json_t **out, struct sp_err *err)
{
	struct publisher	 e;
	struct store_txn	*tx = NULL;
	int64_t			 ncas, ncerts;
	bool			 newcas;
	char			 old[sizeof(e.cas)];
	int			 r;

	*out = NULL;
	if ((r = find(p, name, &e, err)) != 0 ||
	    (r = check_settings(s, false, err)) != 0)
		return r;
	snprintf(old, sizeof(old), "%s", e.cas);
	if (s->cas != NULL && (r = pub_join_cas(s->cas, s->ncas, e.cas,
	    sizeof(e.cas), err)) != 0)
		return r;
	newcas = strcmp(old, e.cas) != 0;
	if (s->connector != NULL)
		snprintf(e.connector, sizeof(e.connector), "%s", s->connector);
	if (s->only_revoked >= 0)
		e.only_revoked = s->only_revoked > 0;
	if (s->no_der >= 0)
		e.no_der = s->no_der > 0;
	if (s->no_crls >= 0)
		e.no_crls = s->no_crls > 0;
	if ((r = store_txn_begin(p->st, &tx, err)) != 0)
		return r;
	if ((r = store_exec(p->st, tx, NULL, err,
	    "UPDATE publishers SET connector = ?, cas = ?, only_revoked = ?,"
	    " no_der = ?, no_crls = ? WHERE id = ?", "ssiiii", e.connector,
	    e.cas, (int64_t)e.only_revoked, (int64_t)e.no_der,
	    (int64_t)e.no_crls, e.id)) < 0)
		goto undo;
	/* CAs it now covers get their certificate first. */
	if ((newcas && (r = queue_cas(p, tx, &e, NULL, false, &ncas, &ncerts,
	    err)) != 0) ||
	    (r = audit(p, tx, "publisher.edit", actor, json_pack(
	    "{s:s,s:s,s:s,s:b,s:b,s:b}", "name", e.name, "connector",
	    e.connector, "cas", e.cas, "only_revoked", e.only_revoked,
	    "no_der", e.no_der, "no_crls", e.no_crls), err)) != 0)
		goto undo;
	if ((r = store_txn_commit(tx, err)) != 0 ||
	    (r = reload(p, err)) != 0)
		return r;
	return pub_show(p, name, out, err);
 undo:
	store_txn_rollback(tx);
	return r;
}

int
pub_delete(struct pub *p, const char *name, const char *actor,
    json_t **out, struct sp_err *err)
{
	struct publisher	 e;
	struct store_txn	*tx = NULL;
	int			 dropped, r;

	*out = NULL;
	if ((r = find(p, name, &e, err)) != 0 ||
	    (r = store_txn_begin(p->st, &tx, err)) != 0)
		return r;
	if ((dropped = store_exec(p->st, tx, NULL, err,
	    "DELETE FROM pub_queue WHERE publisher_id = ?", "i", e.id)) < 0) {
		r = dropped;
		goto undo;
	}
	if ((r = store_exec(p->st, tx, NULL, err,
	    "DELETE FROM publishers WHERE id = ?", "i", e.id)) < 0 ||
	    (r = audit(p, tx, "publisher.delete", actor, json_pack("{s:s,s:i}",
	    "name", e.name, "dropped", dropped), err)) != 0)
		goto undo;
	if ((r = store_txn_commit(tx, err)) != 0 ||
	    (r = reload(p, err)) != 0)
		return r;
	*out = json_pack("{s:s,s:b,s:i}", "name", e.name, "deleted", 1,
	    "dropped", dropped);
	return *out ? 0 : sp_err_set(err, SP_ERR_ALLOC, "out of memory");
 undo:
	store_txn_rollback(tx);
	return r;
}

struct two { int64_t a, b; };

static int
two_row(const struct store_row *row, void *arg)
{
	struct two	*t = arg;

	t->a = store_row_int(row, 0);
	t->b = store_row_int(row, 1);
	return 0;
}

struct lasterr { char s[256]; };

static int
err_row(const struct store_row *row, void *arg)
{
	struct lasterr	*l = arg;

	snprintf(l->s, sizeof(l->s), "%s", store_row_text(row, 0));
	return 0;
}

static json_t *
cas_json(const char *cas)
{
	json_t		*a = json_array();
	const char	*s = cas;

	while (a != NULL && *s != '\0') {
		const char	*c = strchr(s, ',');
		size_t		 l = c ? (size_t)(c - s) : strlen(s);

		json_array_append_new(a, json_stringn(s, l));
		s += l + (c ? 1 : 0);
	}
	return a;
}

static int
pub_json(struct pub *p, const struct publisher *e, json_t **out,
    struct sp_err *err)
{
	struct two	depth = { 0 }, fail = { 0 }, deliv = { 0 };
	struct lasterr	le = { "" };
	int64_t		now = (int64_t)sp_now();
	int		r;

	*out = NULL;
	if ((r = store_select(p->st, NULL, two_row, &depth, err,
	    "SELECT count(*), COALESCE(min(created), 0) FROM pub_queue"
	    " WHERE publisher_id = ?", "i", e->id)) != 0 ||
	    (r = store_select(p->st, NULL, two_row, &fail, err,
	    "SELECT count(*), COALESCE(min(next_try), 0) FROM pub_queue"
	    " WHERE publisher_id = ? AND attempts > 0", "i", e->id)) != 0 ||
	    (r = store_select(p->st, NULL, two_row, &deliv, err,
	    "SELECT delivered, created FROM publishers WHERE id = ?", "i",
	    e->id)) != 0 ||
	    (r = store_select(p->st, NULL, err_row, &le, err,
	    "SELECT last_error FROM pub_queue WHERE publisher_id = ? AND"
	    " attempts > 0 ORDER BY id LIMIT 1", "i", e->id)) != 0)
		return r;
	*out = json_pack("{s:s,s:s,s:o,s:b,s:b,s:b,s:I,s:I,s:I,s:I,s:s,s:I}",
	    "name", e->name, "connector", e->connector, "cas",
	    cas_json(e->cas), "only_revoked", e->only_revoked, "no_der",
	    e->no_der, "no_crls", e->no_crls, "queue", (json_int_t)depth.a,
	    "oldest_age", (json_int_t)(depth.a ? now - depth.b : 0),
	    "delivered", (json_int_t)deliv.a, "failing", (json_int_t)fail.a,
	    "last_error", le.s, "next_retry",
	    (json_int_t)(fail.a && fail.b > now ? fail.b - now : 0));
	return *out ? 0 : sp_err_set(err, SP_ERR_ALLOC, "out of memory");
}

int
pub_show(struct pub *p, const char *name, json_t **out, struct sp_err *err)
{
	struct publisher	e;
	int			r;

	*out = NULL;
	if ((r = find(p, name, &e, err)) != 0)
		return r;
	return pub_json(p, &e, out, err);
}

int
pub_snapshot(struct pub *p, struct publisher **out, size_t *n)
{
	*out = NULL;
	pthread_mutex_lock(&p->lk);
	*n = p->n;
	if (p->n > 0 && (*out = malloc(p->n * sizeof(**out))) != NULL)
		memcpy(*out, p->v, p->n * sizeof(**out));
	pthread_mutex_unlock(&p->lk);
	return *n > 0 && *out == NULL ? SP_ERR_ALLOC : 0;
}

int
pub_list(struct pub *p, json_t **out, struct sp_err *err)
{
	struct publisher	*copy = NULL;
	size_t			 n;
	json_t			*a, *o;
	int			 r = 0;

	*out = NULL;
	pthread_mutex_lock(&p->lk);
	n = p->n;
	if (n > 0 && (copy = malloc(n * sizeof(*copy))) != NULL)
		memcpy(copy, p->v, n * sizeof(*copy));
	pthread_mutex_unlock(&p->lk);
	if ((n > 0 && copy == NULL) || (a = json_array()) == NULL) {
		free(copy);
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	}
	for (size_t i = 0; i < n && r == 0; i++)
		if ((r = pub_json(p, &copy[i], &o, err)) == 0)
			json_array_append_new(a, o);
	free(copy);
	if (r != 0) {
		json_decref(a);
		return r;
	}
	*out = a;
	return 0;
}

static int
queue_row(const struct store_row *row, void *arg)
{
	json_t	*a = arg;

	return json_array_append_new(a, json_pack(
	    "{s:I,s:I,s:s,s:s,s:s,s:s,s:I,s:I,s:s}",
	    "id", (json_int_t)store_row_int(row, 0),
	    "seq", (json_int_t)store_row_int(row, 8),
	    "kind", store_row_text(row, 1), "ca", store_row_text(row, 2),
	    "serial", store_row_text(row, 3), "status",
	    store_row_text(row, 4), "attempts",
	    (json_int_t)store_row_int(row, 5), "next_try",
	    (json_int_t)store_row_int(row, 6), "last_error",
	    store_row_text(row, 7))) == 0 ? 0 : SP_ERR_ALLOC;
}

int
pub_queue(struct pub *p, const char *name, size_t limit, json_t **out,
    struct sp_err *err)
{
	struct publisher	 e;
	json_t			*a;
	int			 r;

	*out = NULL;
	if ((r = find(p, name, &e, err)) != 0)
		return r;
	if (limit == 0 || limit > 10000)
		limit = limit == 0 ? 100 : 10000;
	if ((a = json_array()) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	if ((r = store_select(p->st, NULL, queue_row, a, err,
	    "SELECT id, kind, ca, serial, status, attempts, next_try,"
	    " last_error, seq FROM pub_queue WHERE publisher_id = ? ORDER BY id"
	    " LIMIT ?", "ii", e.id, (int64_t)limit)) != 0) {
		json_decref(a);
		return r;
	}
	*out = a;
	return 0;
}

int
pub_retry(struct pub *p, const char *name, const char *actor,
    json_t **out, struct sp_err *err)
{
	struct publisher	 e;
	struct store_txn	*tx = NULL;
	int			 n, r;

	*out = NULL;
	if ((r = find(p, name, &e, err)) != 0 ||
	    (r = store_txn_begin(p->st, &tx, err)) != 0)
		return r;
	if ((n = store_exec(p->st, tx, NULL, err,
	    "UPDATE pub_queue SET next_try = 0 WHERE publisher_id = ? AND"
	    " attempts > 0", "i", e.id)) < 0) {
		r = n;
		goto undo;
	}
	if ((r = audit(p, tx, "publisher.retry", actor, json_pack("{s:s,s:i}",
	    "name", e.name, "retried", n), err)) != 0)
		goto undo;
	if ((r = store_txn_commit(tx, err)) != 0)
		return r;
	*out = json_pack("{s:s,s:i}", "name", e.name, "retried", n);
	return *out ? 0 : sp_err_set(err, SP_ERR_ALLOC, "out of memory");
 undo:
	store_txn_rollback(tx);
	return r;
}

int
pub_republish(struct pub *p, const char *name, const char *ca,
    const char *actor, json_t **out, struct sp_err *err)
{
	struct publisher	 e;
	struct store_txn	*tx = NULL;
	int64_t			 ncas = 0, ncerts = 0;
	int			 r;

	*out = NULL;
	if ((r = find(p, name, &e, err)) != 0)
		return r;
	if (ca != NULL && !pub_covers(e.cas, ca))
		return sp_err_set(err, SP_ERR_INVALID, "publisher \"%s\" does "
		    "not cover CA \"%.64s\"", name, ca);
	if ((r = store_txn_begin(p->st, &tx, err)) != 0)
		return r;
	if ((r = queue_cas(p, tx, &e, ca, true, &ncas, &ncerts, err)) != 0)
		goto undo;
	if (ca != NULL && ncas == 0) {
		r = sp_err_set(err, SP_ERR_NOTFOUND, "no CA \"%.64s\"", ca);
		goto undo;
	}
	if ((r = audit(p, tx, "publisher.republish", actor, json_pack(
	    "{s:s,s:s,s:I,s:I}", "name", e.name, "ca", ca ? ca : "",
	    "cas", (json_int_t)ncas, "certs", (json_int_t)ncerts), err)) != 0)
		goto undo;
	if ((r = store_txn_commit(tx, err)) != 0)
		return r;
	*out = json_pack("{s:s,s:I,s:I}", "name", e.name, "cas",
	    (json_int_t)ncas, "certs", (json_int_t)ncerts);
	return *out ? 0 : sp_err_set(err, SP_ERR_ALLOC, "out of memory");
 undo:
	store_txn_rollback(tx);
	return r;
}
