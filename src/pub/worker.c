/*
 * Delivery of the outbox (docs/internals/pub.md). One round at a time per
 * publisher, on the loop thread: a pool job reads the due items (oldest
 * first, one kind per request: CA certificates before the entries they
 * issued, then certificates, then CRLs) and builds the body; the request
 * goes over the publisher's connector; a second pool job applies the
 * answer in one transaction (acknowledged items deleted and counted,
 * refused ones kept with their error and a backed-off next try). An item
 * leaves the queue only when the VA acknowledged it.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "net/pool.h"
#include "peer/peer.h"
#include "pub/pub_int.h"
#include "util/log.h"
#include "util/util.h"

#define BATCH_CERTS	200		/* entries in one publish/certs */
#define BATCH_SMALL	16		/* cas and crls */
#define BATCH_BYTES	(512 * 1024)	/* DER in one request, about */
#define TICK_S		1
#define REQ_TIMEOUT_MS	30000

struct pub_dlv {
	int64_t	id;
	bool	busy;
	bool	again;		/* woken while busy: run once more */
	bool	seen;		/* still a publisher (reconcile) */
};

struct item {
	int64_t	id;
	char	ca[CA_NAME_MAX + 1];
	char	key[80];	/* serial or CA name: the result's id */
	int64_t	attempts;
};

struct round {
	struct pub	*p;
	int64_t		 pid;
	char		 connector[PUB_NAME_MAX + 1];
	char		 kind[8];	/* "ca", "cert", "crl" */
	json_t		*body;		/* the request */
	struct item	*it;
	size_t		 n, cap;
	size_t		 bytes;
	/* the answer */
	json_t		*results;	/* reference, or NULL */
	char		 fail[320];	/* whole-request failure, or "" */
	int64_t		 acked;
	bool		 progress;
	struct sp_err	 err;
};

static void	round_start(struct pub *p, struct pub_dlv *d);

static struct pub_dlv *
dlv_find(struct pub *p, int64_t id)
{
	for (size_t i = 0; i < p->ndlv; i++)
		if (p->dlv[i].id == id)
			return &p->dlv[i];
	return NULL;
}

static void
round_free(struct round *rd)
{
	json_decref(rd->body);
	json_decref(rd->results);
	free(rd->it);
	free(rd);
}

static char *
b64(const unsigned char *der, size_t len)
{
	char	*s;

	if ((s = malloc(4 * ((len + 2) / 3) + 1)) == NULL)
		return NULL;
	EVP_EncodeBlock((unsigned char *)s, der, (int)len);
	return s;
}

static int
item_row(const struct store_row *row, void *arg)
{
	struct round		*rd = arg;
	const char		*kind = store_row_text(row, 1);
	const unsigned char	*der;
	size_t			 dlen = 0;
	struct item		*it;
	json_t			*e = NULL;
	char			*d = NULL;
	size_t			 max = strcmp(kind, "cert") == 0 ? BATCH_CERTS :
				    BATCH_SMALL;

	if (rd->kind[0] == '\0')
		snprintf(rd->kind, sizeof(rd->kind), "%s", kind);
	if (strcmp(kind, rd->kind) != 0 || rd->n >= max ||
	    rd->bytes >= BATCH_BYTES)
		return 0;
	der = store_row_null(row, 11) ? NULL : store_row_blob(row, 11, &dlen);
	if (rd->n == rd->cap) {
		size_t	 nc = rd->cap ? rd->cap * 2 : 32;
		void	*t = realloc(rd->it, nc * sizeof(*rd->it));

		if (t == NULL)
			return SP_ERR_ALLOC;
		rd->it = t;
		rd->cap = nc;
	}
	if (der != NULL && dlen > 0 && (d = b64(der, dlen)) == NULL)
		return SP_ERR_ALLOC;
	it = &rd->it[rd->n];
	it->id = store_row_int(row, 0);
	it->attempts = store_row_int(row, 12);
	snprintf(it->ca, sizeof(it->ca), "%s", store_row_text(row, 2));
	if (strcmp(kind, "ca") == 0) {
		e = json_pack("{s:s,s:s}", "name", it->ca, "certificate",
		    d ? d : "");
		snprintf(it->key, sizeof(it->key), "%s", it->ca);
	} else if (strcmp(kind, "crl") == 0) {
		e = json_pack("{s:s,s:s}", "ca", it->ca, "crl", d ? d : "");
		snprintf(it->key, sizeof(it->key), "%s", it->ca);
	} else {
		const char	*st = store_row_text(row, 4);

		snprintf(it->key, sizeof(it->key), "%s",
		    store_row_text(row, 3));
		e = json_pack("{s:s,s:s,s:I,s:s,s:I,s:I,s:s,s:s}", "ca", it->ca,
		    "serial", it->key, "seq", (json_int_t)store_row_int(row, 13),
		    "status", st,
		    "not_before", (json_int_t)store_row_int(row, 7),
		    "not_after", (json_int_t)store_row_int(row, 8),
		    "fingerprint", store_row_text(row, 9), "subject",
		    store_row_text(row, 10));
		if (e != NULL && strcmp(st, "good") != 0) {
			json_object_set_new(e, "revoked_at",
			    json_integer(store_row_int(row, 5)));
			json_object_set_new(e, "reason",
			    json_integer(store_row_int(row, 6)));
		}
		if (e != NULL && d != NULL)
			json_object_set_new(e, "certificate", json_string(d));
	}
	free(d);
	if (e == NULL || json_array_append_new(json_object_get(rd->body,
	    strcmp(kind, "ca") == 0 ? "cas" : strcmp(kind, "crl") == 0 ?
	    "crls" : "entries"), e) != 0)
		return SP_ERR_ALLOC;
	rd->n++;
	rd->bytes += dlen;
	return 0;
}

/* Worker: the due items of one kind, and the request body. */
static void
read_work(void *arg)
{
	struct round	*rd = arg;
	int64_t		 now = sp_now();
	int		 r;

	/* CA certificates first, then certificates, then CRLs. */
	if ((rd->body = json_pack("{s:[],s:[],s:[]}", "cas", "entries",
	    "crls")) == NULL)
		return;
	r = store_select(rd->p->st, NULL, item_row, rd, &rd->err,
	    "SELECT id, kind, ca, serial, status, revoked_at, reason, "
	    "not_before, not_after, fingerprint, subject, der, attempts, seq "
	    "FROM pub_queue "
	    "WHERE publisher_id = ? AND next_try <= ? ORDER BY CASE kind "
	    "WHEN 'ca' THEN 0 WHEN 'cert' THEN 1 ELSE 2 END, id LIMIT ?",
	    "iii", rd->pid, now, (int64_t)BATCH_CERTS);
	if (r != 0) {
		log_warnx("publisher %lld: reading the queue: %s",
		    (long long)rd->pid, rd->err.msg);
		rd->n = 0;
	}
	/* Only the array of this round's kind goes out. */
	if (rd->n > 0) {
		const char	*k = strcmp(rd->kind, "ca") == 0 ? "cas" :
		    strcmp(rd->kind, "crl") == 0 ? "crls" : "entries";
		json_t		*arr = json_incref(json_object_get(rd->body, k));

		json_decref(rd->body);
		rd->body = json_pack("{s:o}", k, arr);
	}
}

/* Worker: the answer applied in one transaction. */
static void
apply_work(void *arg)
{
	struct round		*rd = arg;
	struct store		*st = rd->p->st;
	struct store_txn	*tx = NULL;
	int64_t			 now = sp_now();
	int			 r = 0;

	if (store_txn_begin(st, &tx, &rd->err) != 0)
		goto fail;
	for (size_t i = 0; i < rd->n && r >= 0; i++) {
		json_t		*res = rd->results ?
		    json_array_get(rd->results, i) : NULL;
		const char	*code = NULL, *msg = rd->fail, *key;
		char		 e[400];

		if (rd->fail[0] == '\0') {
			key = json_string_value(json_object_get(res,
			    strcmp(rd->kind, "ca") == 0 ? "name" :
			    strcmp(rd->kind, "crl") == 0 ? "ca" : "serial"));
			if (res == NULL || key == NULL ||
			    strcasecmp(key, rd->it[i].key) != 0) {
				msg = "the VA's answer does not match the "
				    "request";
			} else if (json_is_true(json_object_get(res, "ok"))) {
				msg = NULL;
			} else {
				json_t	*er = json_object_get(res, "error");

				code = json_string_value(json_object_get(er,
				    "code"));
				msg = json_string_value(json_object_get(er,
				    "message"));
				if (code != NULL && strcmp(code, "stale") == 0)
					msg = NULL;	/* a newer CRL is there */
				else if (msg == NULL)
					msg = "refused";
			}
		}
		if (msg == NULL) {
			if ((r = store_exec(st, tx, NULL, &rd->err, "DELETE "
			    "FROM pub_queue WHERE id = ?", "i",
			    rd->it[i].id)) > 0)
				rd->acked++;
			continue;
		}
		snprintf(e, sizeof(e), "%s%s%s", code ? code : "",
		    code ? ": " : "", msg);
		r = store_exec(st, tx, NULL, &rd->err, "UPDATE pub_queue SET "
		    "attempts = attempts + 1, last_error = ?, next_try = ? "
		    "WHERE id = ?", "sii", e, now +
		    pub_backoff(rd->it[i].attempts + 1, (double)random() /
		    RAND_MAX), rd->it[i].id);
		/* A VA that lost the CA: send its certificate again first. */
		if (r >= 0 && code != NULL && strcmp(code, "unknown_ca") == 0)
			r = store_exec(st, tx, NULL, &rd->err, "INSERT INTO "
			    "pub_queue (publisher_id, kind, ca, der, created) "
			    "SELECT ?, 'ca', name, cert, ? FROM cas WHERE "
			    "name = ? AND NOT EXISTS (SELECT 1 FROM pub_queue "
			    "WHERE publisher_id = ? AND kind = 'ca' AND ca = ?)",
			    "iisis", rd->pid, now, rd->it[i].ca, rd->pid,
			    rd->it[i].ca);
	}
	if (r < 0 || (rd->acked > 0 && store_exec(st, tx, NULL, &rd->err,
	    "UPDATE publishers SET delivered = delivered + ? WHERE id = ?",
	    "ii", rd->acked, rd->pid) < 0)) {
		store_txn_rollback(tx);
		goto fail;
	}
	if (store_txn_commit(tx, &rd->err) != 0)
		goto fail;
	rd->progress = rd->acked > 0;
	return;
 fail:
	rd->acked = 0;
	log_warnx("publisher %lld: recording the VA's answer: %s (the items "
	    "stay queued)", (long long)rd->pid, rd->err.msg);
}

static void
round_end(struct round *rd)
{
	struct pub	*p = rd->p;
	struct pub_dlv	*d = dlv_find(p, rd->pid);
	bool		 again = rd->progress;

	round_free(rd);
	if (d == NULL)
		return;
	d->busy = false;
	if (p->stopping)
		return;
	if (again || d->again) {
		d->again = false;
		round_start(p, d);
	}
}

static void
apply_done(void *arg)
{
	round_end(arg);
}

static void
on_reply(void *arg, const struct peer_response *res)
{
	struct round	*rd = arg;
	json_t		*results;

	if (res->error != PEER_REQ_OK)
		snprintf(rd->fail, sizeof(rd->fail), "%s: %.200s",
		    peer_req_error_str(res->error), res->err && res->err->msg[0]
		    ? res->err->msg : "request failed");
	else if ((results = json_object_get(res->body, "results")) == NULL ||
	    !json_is_array(results) || json_array_size(results) != rd->n)
		snprintf(rd->fail, sizeof(rd->fail), "bad reply: the VA did "
		    "not answer one result per entry");
	else
		rd->results = json_incref(results);
	if (rd->p->stopping || pool_submit(rd->p->pool, apply_work,
	    apply_done, rd) != 0)
		round_end(rd);	/* items stay queued, retried later */
}

static void
read_done(void *arg)
{
	struct round	*rd = arg;
	struct sp_err	 err = { 0 };
	const char	*path;

	if (rd->n == 0 || rd->body == NULL || rd->p->stopping) {
		round_end(rd);
		return;
	}
	path = strcmp(rd->kind, "ca") == 0 ? "/publish/cas" :
	    strcmp(rd->kind, "crl") == 0 ? "/publish/crls" : "/publish/certs";
	if (peer_connector_request(rd->p->peer, rd->connector,
	    &(struct peer_request){ .method = "POST", .path = path,
	    .body = rd->body, .timeout_ms = REQ_TIMEOUT_MS,
	    .lane = PEER_LANE_NORMAL }, on_reply, rd, &err) != 0) {
		snprintf(rd->fail, sizeof(rd->fail), "%s: %.200s",
		    peer_req_error_str(peer_req_refusal(SP_ERR_STATE)),
		    err.msg);
		if (pool_submit(rd->p->pool, apply_work, apply_done, rd) != 0)
			round_end(rd);
	}
}

static void
round_start(struct pub *p, struct pub_dlv *d)
{
	struct publisher	*v = NULL;
	struct round		*rd;
	size_t			 n = 0, i;

	if (d->busy) {
		d->again = true;
		return;
	}
	if (pub_snapshot(p, &v, &n) != 0)
		return;
	for (i = 0; i < n && v[i].id != d->id; i++)
		;
	if (i == n || (rd = calloc(1, sizeof(*rd))) == NULL) {
		free(v);
		return;
	}
	rd->p = p;
	rd->pid = d->id;
	snprintf(rd->connector, sizeof(rd->connector), "%s", v[i].connector);
	free(v);
	if (pool_submit(p->pool, read_work, read_done, rd) != 0) {
		free(rd);
		return;		/* the pool is full: the tick tries again */
	}
	d->busy = true;
}

/* Every publisher gets a round (loop thread). */
static void
run_all(struct pub *p)
{
	struct publisher	*v = NULL;
	size_t			 n = 0;

	if (p->stopping || pub_snapshot(p, &v, &n) != 0)
		return;
	for (size_t i = 0; i < p->ndlv; i++)
		p->dlv[i].seen = false;
	for (size_t i = 0; i < n; i++) {
		struct pub_dlv	*d = dlv_find(p, v[i].id);

		if (d == NULL) {
			void	*t = realloc(p->dlv, (p->ndlv + 1) *
			    sizeof(*p->dlv));

			if (t == NULL)
				break;
			p->dlv = t;
			d = &p->dlv[p->ndlv++];
			memset(d, 0, sizeof(*d));
			d->id = v[i].id;
		}
		d->seen = true;
	}
	free(v);
	/* Forget deleted publishers that have no round in flight. */
	for (size_t i = 0; i < p->ndlv;)
		if (!p->dlv[i].seen && !p->dlv[i].busy)
			p->dlv[i] = p->dlv[--p->ndlv];
		else
			i++;
	for (size_t i = 0; i < p->ndlv; i++)
		if (p->dlv[i].seen)
			round_start(p, &p->dlv[i]);
	pub_sync_run(p);
}

static void
on_event(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	run_all(arg);
}

int
pub_start(struct pub *p, struct peer *peer, struct event_base *base,
    struct pool *pool, struct sp_err *err)
{
	struct timeval	tv = { TICK_S, 0 };
	int		r;

	p->peer = peer;
	p->base = base;
	p->pool = pool;
	if ((r = pub_sync_recover(p, err)) != 0)
		return r;
	if ((p->ev_wake = event_new(base, -1, EV_PERSIST, on_event, p)) ==
	    NULL || (p->ev_tick = event_new(base, -1, EV_PERSIST, on_event,
	    p)) == NULL || event_add(p->ev_tick, &tv) != 0)
		return sp_err_set(err, SP_ERR_INTERNAL, "publisher: event "
		    "setup failed");
	event_active(p->ev_wake, EV_READ, 0);
	return 0;
}

void
pub_wake(void *arg)
{
	struct pub	*p = arg;

	/* event_active is thread safe (libevent built with pthreads). */
	if (p != NULL && p->ev_wake != NULL)
		event_active(p->ev_wake, EV_READ, 0);
}

void
pub_stop(struct pub *p)
{
	if (p == NULL)
		return;
	p->stopping = true;
	if (p->ev_wake != NULL)
		event_free(p->ev_wake);
	if (p->ev_tick != NULL)
		event_free(p->ev_tick);
	p->ev_wake = p->ev_tick = NULL;
}

void
pub_free_dlv(struct pub *p)
{
	free(p->dlv);
	p->dlv = NULL;
	p->ndlv = 0;
}
