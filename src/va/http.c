/*
 * The VA's client listener: OCSP (RFC 6960, RFC 5019) and CRLs over plain
 * HTTP (docs/internals/va.md, "Responder").
 *
 * Threads. Event loop threads of its own (one per core by default, [va]
 * loops) each run evhttp on a base made with
 * EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST and a listening socket of their own
 * in one SO_REUSEPORT group, so the kernel spreads the connections over
 * them and no lock is shared on the way in. A loop decodes requests, finds
 * the issuer in the current snapshot and answers a nonce-less
 * single-CertID request from the pre-signed response cache, all without a
 * lock held across I/O, a signature or the database. Everything else (a
 * cache miss, a nonce, several CertIDs, a CRL) is a job for the signer
 * threads, which read the store, sign and hand the reply back to the loop
 * the request came from through its queue and event. The main loop's worker pool is not used:
 * it takes jobs from the main loop thread only.
 *
 * Snapshot. The issuer index and the signers (the active key bindings of
 * type ocsp, each matched to the issuer whose key signed its certificate,
 * with a signing context prepared once) are an immutable, reference
 * counted snapshot; each loop holds a reference to the current one and
 * takes the new one at its next request (one atomic load per request
 * tells it there is one). It is rebuilt on a signer thread at start, when a CA
 * certificate is published (va_issuers_changed()) and when the key
 * bindings' generation moves (a certificate installed: a renewed signer
 * takes effect for the next response); the issuers it touches lose their
 * cached responses.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <netdb.h>
#include <netinet/in.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "kb/kb.h"
#include "token/token.h"
#include "util/log.h"
#include "util/util.h"
#include "va/va_int.h"

#define SIGNERS_MAX	64		/* ocsp bindings used */
#define LOOPS_MAX	8		/* event loop threads */
#define BACKLOG		1024		/* listen(2) */
#define JOBS_MAX	4096		/* queued jobs; then tryLater */
#define BACKDATE	60		/* thisUpdate, seconds before now */
#define TICK_MS		250		/* signer generation check */
#define RESCAN_TICKS	20		/* rebuild anyway every 5 s: a token
					 * activated moves no generation */
#define CT_OCSP		"application/ocsp-response"
#define MEMO_SLOTS	1024		/* per loop, a power of two */
#define MEMO_DER_MAX	192		/* longer requests are not memoized */

enum outcome {
	OUT_GOOD, OUT_REVOKED, OUT_UNKNOWN, OUT_CACHED, OUT_MALFORMED,
	OUT_UNAUTHORIZED, OUT_INTERNAL, OUT_TRYLATER, OUT_CRL, OUT__MAX
};
static const char *const outcome_names[OUT__MAX] = {
	"good", "revoked", "unknown", "cache_hits", "malformed",
	"unauthorized", "internal_error", "try_later", "crl",
};

struct signer {
	int64_t		 issuer;
	char		 name[KB_NAME_MAX + 1];
	X509		*cert;
	STACK_OF(X509)	*extra;
	EVP_MD_CTX	*md;		/* prepared: copied per signature */
	time_t		 not_after;
};

struct snap {
	atomic_int	 refs;
	struct va_index	*ix;
	struct signer	 s[SIGNERS_MAX];
	size_t		 n;
};

enum job_kind { JOB_OCSP, JOB_CRL, JOB_SNAP };

struct job {
	TAILQ_ENTRY(job)	 q;
	enum job_kind		 kind;
	struct va_responder	*rs;
	struct loop		*loop;		/* where the reply goes */
	struct evhttp_request	*req;		/* NULL once the client left */
	struct ocsp_req		*rq;		/* JOB_OCSP */
	int64_t			 issuer;
	struct snap		*snap;		/* a reference */
	char			 etag[64];	/* JOB_CRL: If-None-Match */
	/* the reply */
	int			 status;
	unsigned char		*body;
	size_t			 len;
	struct va_resp		*resp;		/* instead of body, or NULL */
	char			 ctype[40];
	char			 hdr_cc[96], hdr_lm[64], hdr_etag[64];
	enum outcome		 out;
	struct snap		*newsnap;	/* JOB_SNAP */
};
TAILQ_HEAD(jobq, job);

/*
 * The request memo: the CertID that a nonce-less single-CertID request
 * decoded to, keyed by the request's bytes, so that the next identical
 * request (clients send the same bytes for the same certificate) is
 * answered from the cache without decoding it again. Direct mapped, so a
 * flood of distinct requests only evicts; a hit is a byte comparison.
 */
struct memo {
	uint64_t		 h;
	size_t			 len;		/* 0: empty */
	unsigned char		 der[MEMO_DER_MAX];
	struct ocsp_certid	 id;
};

/* One event loop thread: its own base, evhttp and listening socket. */
struct loop {
	struct va_responder	*rs;
	struct event_base	*base;
	struct evhttp		*http;
	struct event		*wake;		/* jobs done for this loop */
	pthread_t		 thr;
	bool			 started;
	struct jobq		 done;		/* under rs->mtx */
	struct snap		*snap;		/* this loop's reference */
	uint64_t		 snap_gen;	/* of snap */
	_Atomic uint64_t	 count[OUT__MAX];
	struct memo		*memo;		/* MEMO_SLOTS */
	time_t			 cc_now, cc_expires;	/* of cc */
	char			 cc[96];	/* the last Cache-Control */
};

struct va_responder {
	struct va		*va;
	struct loop		 loops[LOOPS_MAX];
	int			 nloops;
	struct event		*tick;		/* on loops[0] */
	int			 nthr;
	pthread_t		 thr[8];
	pthread_mutex_t		 mtx;
	pthread_cond_t		 cond;
	struct jobq		 pending;	/* to run */
	size_t			 npending;
	bool			 stopping;
	struct snap		*snap;		/* the current one */
	pthread_mutex_t		 snap_mtx;	/* guards snap, snap_gen */
	_Atomic uint64_t	 snap_gen;	/* moves with each install */
	bool			 snap_building;	/* loops[0] thread */
	atomic_bool		 snap_dirty;
	uint64_t		 kb_gen;	/* loops[0] thread */
	unsigned		 ticks;		/* loops[0] thread */
};

/* --- snapshots ------------------------------------------------------------ */

static void
snap_unref(struct snap *s)
{
	if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	for (size_t i = 0; i < s->n; i++) {
		X509_free(s->s[i].cert);
		sk_X509_pop_free(s->s[i].extra, X509_free);
		EVP_MD_CTX_free(s->s[i].md);
	}
	va_index_free(s->ix);
	free(s);
}

static struct snap *
snap_ref(struct snap *s)
{
	if (s != NULL)
		atomic_fetch_add(&s->refs, 1);
	return s;
}

/* The issuer of the index whose key signed cert, or -1. */
static int64_t
issuer_of(const struct va_index *ix, X509 *cert, int64_t *ids, size_t nids)
{
	for (size_t i = 0; i < nids; i++) {
		X509	*ic = va_index_cert(ix, ids[i]);

		if (ic != NULL && X509_check_issued(ic, cert) == X509_V_OK &&
		    X509_verify(cert, X509_get0_pubkey(ic)) == 1)
			return ids[i];
	}
	ERR_clear_error();
	return -1;
}

static int
collect_id(const struct store_row *row, void *arg)
{
	struct { int64_t *ids; size_t n, max; } *c = arg;

	if (c->n < c->max)
		c->ids[c->n++] = store_row_int(row, 0);
	return 0;
}

/* Builds a snapshot (signer thread: database and tokens). */
static struct snap *
snap_build(struct va *va)
{
	struct sp_err	 err = { 0 };
	struct snap	*s;
	json_t		*list = NULL, *b;
	int64_t		 ids[VA_INDEX_MAX > 256 ? 256 : VA_INDEX_MAX];
	struct { int64_t *ids; size_t n, max; } c = { ids, 0, 256 };
	size_t		 i;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->refs = 1;
	if (va_index_load(va->st, NULL, &s->ix, &err) != 0) {
		log_warnx("va: cannot load the issuers: %s", err.msg);
		if (va_index_new(&s->ix) != 0) {
			free(s);
			return NULL;
		}
	}
	if (store_select(va->st, NULL, collect_id, &c, &err,
	    "SELECT id FROM va_issuers ORDER BY id", "") != 0)
		log_warnx("va: cannot list the issuers: %s", err.msg);
	if ((list = kb_list(va->kb)) == NULL)
		log_warnx("va: cannot list the key bindings");
	json_array_foreach(list, i, b) {
		struct signer	*sg = &s->s[s->n];
		const char	*name, *type, *status, *tok, *key;
		EVP_PKEY	*pk = NULL;

		if (s->n >= SIGNERS_MAX)
			break;
		name = json_string_value(json_object_get(b, "name"));
		type = json_string_value(json_object_get(b, "type"));
		status = json_string_value(json_object_get(b, "status"));
		tok = json_string_value(json_object_get(b, "token"));
		key = json_string_value(json_object_get(b, "key"));
		if (name == NULL || type == NULL || status == NULL ||
		    tok == NULL || key == NULL || strcmp(type, "ocsp") != 0 ||
		    strcmp(status, "active") != 0)
			continue;
		memset(&err, 0, sizeof(err));
		if (kb_identity(va->kb, name, &sg->cert, &sg->extra, &pk,
		    &err) != 0) {
			log_warnx("va: OCSP signer %s: %s", name, err.msg);
			continue;
		}
		EVP_PKEY_free(pk);
		sg->issuer = issuer_of(s->ix, sg->cert, ids, c.n);
		if (sg->issuer < 0 || (X509_get_extended_key_usage(sg->cert) &
		    XKU_OCSP_SIGN) == 0 || tokens_sign_init(va->tokens, tok,
		    key, &sg->md, &err) != 0) {
			if (sg->issuer >= 0)
				log_warnx("va: OCSP signer %s unusable: %s",
				    name, err.msg[0] ? err.msg :
				    "no OCSPSigning");
			X509_free(sg->cert);
			sk_X509_pop_free(sg->extra, X509_free);
			memset(sg, 0, sizeof(*sg));
			continue;
		}
		snprintf(sg->name, sizeof(sg->name), "%s", name);
		{
			const ASN1_TIME	*na = X509_get0_notAfter(sg->cert);
			struct tm	 tm;

			sg->not_after = ASN1_TIME_to_tm(na, &tm) == 1 ?
			    timegm(&tm) : 0;
		}
		s->n++;
	}
	json_decref(list);
	return s;
}

/* The newest usable signer for issuer, or NULL. */
static const struct signer *
signer_for(const struct snap *s, int64_t issuer, time_t now)
{
	const struct signer	*best = NULL;

	for (size_t i = 0; i < s->n; i++)
		if (s->s[i].issuer == issuer && s->s[i].not_after > now &&
		    (best == NULL || s->s[i].not_after > best->not_after))
			best = &s->s[i];
	return best;
}

/* --- the signer threads --------------------------------------------------- */

struct lookup_arg {
	struct va	*va;
	struct snap	*snap;
};

static int64_t
lk_issuer(void *arg, const struct ocsp_certid *id)
{
	struct lookup_arg	*a = arg;

	return va_index_find(a->snap->ix, id);
}

static int
lk_status(void *arg, int64_t issuer, const char *serial,
    struct ocsp_single *out)
{
	struct lookup_arg	*a = arg;
	struct sp_err		 err = { 0 };
	int			 r;

	r = va_cert_status(a->va->st, NULL, issuer, serial, out, &err);
	if (r != 0 && r != SP_ERR_NOTFOUND)
		log_warnx("va: status lookup: %s", err.msg);
	return r;
}

static void
job_error(struct job *j, int status, enum outcome out)
{
	struct sp_err	err = { 0 };

	j->out = out;
	j->status = 200;
	snprintf(j->ctype, sizeof(j->ctype), CT_OCSP);
	if (ocsp_resp_error(status, &j->body, &j->len, &err) != 0) {
		j->status = 500;
		j->body = NULL;
		j->len = 0;
	}
}

static void
http_date(time_t t, char *buf, size_t len)
{
	struct tm	tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static void
work_ocsp(struct job *j)
{
	struct va		*va = j->rs->va;
	struct lookup_arg	 la = { va, j->snap };
	struct va_lookup	 lk = { lk_issuer, lk_status, &la };
	struct va_decision	 d;
	struct ocsp_resp_params	 p = { 0 };
	const struct signer	*sg;
	struct sp_err		 err = { 0 };
	EVP_MD_CTX		*md = NULL;
	uint64_t		 gen = va_cache_gen(va->cache);
	time_t			 now = sp_now();
	int			 validity = va->response_validity;

	va_decide(j->rq, &lk, (enum va_non_issued)va->non_issued, &d);
	if (d.resp_status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
		job_error(j, d.resp_status, d.resp_status ==
		    OCSP_RESPONSE_STATUS_INTERNALERROR ? OUT_INTERNAL :
		    OUT_UNAUTHORIZED);
		return;
	}
	if ((sg = signer_for(j->snap, d.issuer, now)) == NULL) {
		job_error(j, OCSP_RESPONSE_STATUS_UNAUTHORIZED,
		    OUT_UNAUTHORIZED);
		return;
	}
	p.this_update = now - BACKDATE;
	p.next_update = now + validity;
	p.extended_revoke = d.extended_revoke;
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_MD_CTX_copy_ex(md, sg->md) != 1 ||
	    ocsp_resp_sign(j->rq, d.st, &p, sg->cert, sg->extra, md,
	    &j->body, &j->len, &err) != 0) {
		EVP_MD_CTX_free(md);
		log_warnx("va: signing a response: %s", err.msg[0] ? err.msg :
		    "cannot copy the signing context");
		job_error(j, OCSP_RESPONSE_STATUS_INTERNALERROR, OUT_INTERNAL);
		return;
	}
	EVP_MD_CTX_free(md);
	j->status = 200;
	snprintf(j->ctype, sizeof(j->ctype), CT_OCSP);
	j->out = d.st[0].status == OCSP_GOOD ? OUT_GOOD :
	    d.st[0].status == OCSP_REVOKED ? OUT_REVOKED : OUT_UNKNOWN;
	if (d.cacheable) {
		/* Re-signed a tenth of the validity before it runs out. */
		struct va_resp	*r = va_resp_new(j->body, j->len,
		    p.next_update - validity / 10, p.next_update);

		if (r != NULL) {
			http_date(p.this_update, r->lm, sizeof(r->lm));
			/* Refused if a publish came in meanwhile: not cached. */
			if (va_cache_put(va->cache, d.issuer,
			    j->rq->ids[0].serial, j->rq->ids[0].hash, r,
			    gen) != 0)
				log_debug("va: response for %s not cached",
				    j->rq->ids[0].serial);
			free(j->body);
			j->body = NULL;
			j->resp = r;
		}
		snprintf(j->hdr_cc, sizeof(j->hdr_cc), "max-age=%d, public, "
		    "no-transform, must-revalidate", validity - validity / 10);
		http_date(p.this_update, j->hdr_lm, sizeof(j->hdr_lm));
	}
}

static int
crl_row(const struct store_row *row, void *arg)
{
	struct job	*j = arg;
	const unsigned char *der;
	size_t		 len;
	int64_t		 num = store_row_int(row, 0);
	time_t		 tu = (time_t)store_row_int(row, 1);
	time_t		 nu = (time_t)store_row_int(row, 2), now = sp_now();

	der = store_row_blob(row, 3, &len);
	snprintf(j->hdr_etag, sizeof(j->hdr_etag), "\"%lld-%lld\"",
	    (long long)j->issuer, (long long)num);
	http_date(tu, j->hdr_lm, sizeof(j->hdr_lm));
	snprintf(j->hdr_cc, sizeof(j->hdr_cc), "max-age=%lld, public",
	    (long long)(nu > now ? nu - now : 0));
	if (strcmp(j->etag, j->hdr_etag) == 0) {
		j->status = 304;
		return 0;
	}
	if ((j->body = malloc(len ? len : 1)) == NULL)
		return SP_ERR_ALLOC;
	memcpy(j->body, der, len);
	j->len = len;
	j->status = 200;
	snprintf(j->ctype, sizeof(j->ctype), "application/pkix-crl");
	return 0;
}

static void
work_crl(struct job *j)
{
	struct sp_err	err = { 0 };

	j->out = OUT_CRL;
	j->status = 404;
	if (store_select(j->rs->va->st, NULL, crl_row, j, &err, "SELECT "
	    "number, this_update, next_update, der FROM va_crls WHERE "
	    "issuer_id = ?", "i", j->issuer) != 0) {
		log_warnx("va: reading a CRL: %s", err.msg);
		j->status = 500;
	}
}

static void *
signer_main(void *arg)
{
	struct va_responder	*rs = arg;
	struct job		*j;

	pthread_mutex_lock(&rs->mtx);
	for (;;) {
		while (!rs->stopping && TAILQ_EMPTY(&rs->pending))
			pthread_cond_wait(&rs->cond, &rs->mtx);
		if ((j = TAILQ_FIRST(&rs->pending)) == NULL)
			break;		/* stopping, nothing left */
		TAILQ_REMOVE(&rs->pending, j, q);
		rs->npending--;
		pthread_mutex_unlock(&rs->mtx);
		if (j->kind == JOB_OCSP)
			work_ocsp(j);
		else if (j->kind == JOB_CRL)
			work_crl(j);
		else
			j->newsnap = snap_build(rs->va);
		pthread_mutex_lock(&rs->mtx);
		TAILQ_INSERT_TAIL(&j->loop->done, j, q);
		if (!rs->stopping)
			event_active(j->loop->wake, EV_READ, 0);
	}
	pthread_mutex_unlock(&rs->mtx);
	return NULL;
}

/* --- the loop thread ------------------------------------------------------ */

static void
job_free(struct job *j)
{
	ocsp_req_free(j->rq);
	snap_unref(j->snap);
	snap_unref(j->newsnap);
	free(j->body);
	va_resp_unref(j->resp);
	free(j);
}

static void
on_gone(struct evhttp_connection *evcon, void *arg)
{
	struct job	*j = arg;

	(void)evcon;
	/* The request is ours to free unless evhttp still holds it. */
	if (j->req != NULL && evhttp_request_get_connection(j->req) == NULL)
		evhttp_request_free(j->req);
	j->req = NULL;
}

static void
resp_cleanup(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	va_resp_unref(arg);
}

/* Sends a reply (loop thread); the response r, if given, by reference. */
static void
send_reply(struct evhttp_request *req, int status, const char *ctype,
    const unsigned char *body, size_t len, struct va_resp *r,
    const char *cc, const char *lm, const char *etag)
{
	struct evkeyvalq	*h = evhttp_request_get_output_headers(req);
	struct evbuffer		*b = evhttp_request_get_output_buffer(req);

	if (ctype != NULL && ctype[0] != '\0')
		evhttp_add_header(h, "Content-Type", ctype);
	if (cc != NULL && cc[0] != '\0')
		evhttp_add_header(h, "Cache-Control", cc);
	if (lm != NULL && lm[0] != '\0')
		evhttp_add_header(h, "Last-Modified", lm);
	if (etag != NULL && etag[0] != '\0')
		evhttp_add_header(h, "ETag", etag);
	if (r != NULL) {
		va_resp_ref(r);
		if (evbuffer_add_reference(b, r->der, r->len, resp_cleanup,
		    r) != 0)
			va_resp_unref(r);
	} else if (body != NULL && len > 0)
		evbuffer_add(b, body, len);
	evhttp_send_reply(req, status, status == 200 ? "OK" :
	    status == 304 ? "Not Modified" : status == 404 ? "Not Found" :
	    "Error", NULL);
}

static void
plain_error(struct evhttp_request *req, int status, const char *msg)
{
	char	buf[256];
	int	n;

	n = snprintf(buf, sizeof(buf), "{\"error\":{\"code\":\"%s\","
	    "\"message\":\"%s\"}}", status == 404 ? "not_found" :
	    status == 405 ? "method_not_allowed" : status == 413 ?
	    "too_large" : "bad_request", msg);
	send_reply(req, status, "application/json", (unsigned char *)buf,
	    (size_t)n, NULL, NULL, NULL, NULL);
}

/* True if a and b answer alike (same issuers, same signers). */
static bool
snap_same(const struct snap *a, const struct snap *b)
{
	if (a == NULL || b == NULL || a->n != b->n ||
	    va_index_count(a->ix) != va_index_count(b->ix))
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (a->s[i].issuer != b->s[i].issuer ||
		    strcmp(a->s[i].name, b->s[i].name) != 0 ||
		    X509_cmp(a->s[i].cert, b->s[i].cert) != 0)
			return false;
	return true;
}

/* Installs ns unless forced is false and it answers like the current one. */
static void
snap_install(struct va_responder *rs, struct snap *ns, bool forced)
{
	struct snap	*old;

	if (!forced && snap_same(rs->snap, ns)) {
		snap_unref(ns);
		return;
	}
	pthread_mutex_lock(&rs->snap_mtx);
	old = rs->snap;
	rs->snap = ns;
	atomic_fetch_add(&rs->snap_gen, 1);
	pthread_mutex_unlock(&rs->snap_mtx);
	/* Responses signed by a signer that changed must not be served. */
	va_cache_clear(rs->va->cache);
	snap_unref(old);
}

/* The current snapshot, as this loop sees it (its thread; NULL at first). */
static struct snap *
loop_snap(struct loop *l)
{
	struct va_responder	*rs = l->rs;

	if (atomic_load_explicit(&rs->snap_gen, memory_order_acquire) !=
	    l->snap_gen) {
		pthread_mutex_lock(&rs->snap_mtx);
		snap_unref(l->snap);
		l->snap = snap_ref(rs->snap);
		l->snap_gen = atomic_load(&rs->snap_gen);
		pthread_mutex_unlock(&rs->snap_mtx);
	}
	return l->snap;
}

static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct loop		*l = arg;
	struct va_responder	*rs = l->rs;
	struct jobq		 q = TAILQ_HEAD_INITIALIZER(q);
	struct job		*j;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&rs->mtx);
	TAILQ_CONCAT(&q, &l->done, q);
	pthread_mutex_unlock(&rs->mtx);
	while ((j = TAILQ_FIRST(&q)) != NULL) {
		TAILQ_REMOVE(&q, j, q);
		if (j->kind == JOB_SNAP) {
			rs->snap_building = false;
			if (j->newsnap != NULL) {
				snap_install(rs, j->newsnap, j->issuer != 0);
				j->newsnap = NULL;
			}
		} else if (j->req != NULL) {
			evhttp_connection_set_closecb(
			    evhttp_request_get_connection(j->req), NULL, NULL);
			atomic_fetch_add_explicit(&l->count[j->out], 1,
			    memory_order_relaxed);
			send_reply(j->req, j->status, j->ctype, j->body, j->len,
			    j->resp, j->hdr_cc, j->hdr_lm, j->hdr_etag);
		}
		job_free(j);
	}
}

/* Queues j for the signer threads; on refusal the caller still owns it. */
static int
job_queue(struct va_responder *rs, struct job *j)
{
	pthread_mutex_lock(&rs->mtx);
	if (rs->npending >= JOBS_MAX || rs->stopping) {
		pthread_mutex_unlock(&rs->mtx);
		return SP_ERR_LIMIT;
	}
	TAILQ_INSERT_TAIL(&rs->pending, j, q);
	rs->npending++;
	pthread_cond_signal(&rs->cond);
	pthread_mutex_unlock(&rs->mtx);
	return 0;
}

static void
snap_refresh(struct va_responder *rs)
{
	struct job	*j;

	if (rs->snap_building)
		return;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return;
	/* Forced (installed even if it looks the same): a change was told. */
	j->issuer = atomic_load(&rs->snap_dirty) ||
	    kb_generation(rs->va->kb) != rs->kb_gen;
	rs->kb_gen = kb_generation(rs->va->kb);
	atomic_store(&rs->snap_dirty, false);
	j->kind = JOB_SNAP;
	j->rs = rs;
	j->loop = &rs->loops[0];
	if (job_queue(rs, j) != 0) {
		free(j);
		atomic_store(&rs->snap_dirty, true);	/* next tick */
		return;
	}
	rs->snap_building = true;
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct va_responder	*rs = arg;

	(void)fd;
	(void)what;
	if (atomic_load(&rs->snap_dirty) || ++rs->ticks >= RESCAN_TICKS ||
	    kb_generation(rs->va->kb) != rs->kb_gen) {
		rs->ticks = 0;
		snap_refresh(rs);
	}
}

static void
answer_error(struct loop *l, struct evhttp_request *req, int st,
    enum outcome out)
{
	unsigned char	*der = NULL;
	size_t		 len = 0;
	struct sp_err	 err = { 0 };

	atomic_fetch_add_explicit(&l->count[out], 1, memory_order_relaxed);
	if (ocsp_resp_error(st, &der, &len, &err) != 0) {
		plain_error(req, 500, "cannot encode the response");
		return;
	}
	send_reply(req, 200, CT_OCSP, der, len, NULL, NULL, NULL, NULL);
	free(der);
}

/* Hands a request to the signer threads; answers tryLater if they are full. */
static void
defer(struct loop *l, struct evhttp_request *req, struct job *j)
{
	j->rs = l->rs;
	j->loop = l;
	j->req = req;
	if (job_queue(l->rs, j) != 0) {
		job_free(j);
		answer_error(l, req, OCSP_RESPONSE_STATUS_TRYLATER,
		    OUT_TRYLATER);
		return;
	}
	evhttp_connection_set_closecb(evhttp_request_get_connection(req),
	    on_gone, j);
}

static uint64_t
memo_hash(const unsigned char *p, size_t len)
{
	uint64_t	h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static const struct ocsp_certid *
memo_get(struct loop *l, const unsigned char *der, size_t len)
{
	uint64_t	 h;
	struct memo	*m;

	if (l->memo == NULL || len > MEMO_DER_MAX)
		return NULL;
	h = memo_hash(der, len);
	m = &l->memo[h & (MEMO_SLOTS - 1)];
	if (m->len != len || m->h != h || memcmp(m->der, der, len) != 0)
		return NULL;
	return &m->id;
}

static void
memo_put(struct loop *l, const unsigned char *der, size_t len,
    const struct ocsp_certid *id)
{
	uint64_t	 h;
	struct memo	*m;

	if (l->memo == NULL || len > MEMO_DER_MAX)
		return;
	h = memo_hash(der, len);
	m = &l->memo[h & (MEMO_SLOTS - 1)];
	m->h = h;
	m->len = len;
	memcpy(m->der, der, len);
	m->id = *id;
}

/* Sends cached response c (loop thread). */
static void
send_cached(struct loop *l, struct evhttp_request *req, struct va_resp *c,
    time_t now)
{
	/* max-age moves once a second: formatted once a second. */
	if (l->cc_now != now || l->cc_expires != c->expires) {
		time_t	left = c->expires - now;

		snprintf(l->cc, sizeof(l->cc), "max-age=%lld, public, "
		    "no-transform, must-revalidate",
		    (long long)(left > 0 ? left : 0));
		l->cc_now = now;
		l->cc_expires = c->expires;
	}
	atomic_fetch_add_explicit(&l->count[OUT_CACHED], 1,
	    memory_order_relaxed);
	send_reply(req, 200, CT_OCSP, NULL, 0, c, l->cc, c->lm, NULL);
}

/*
 * Answers a request seen before from the cache: true if it did, false if
 * the request must take the full path (not memoized, no usable signer,
 * not cached or due for re-signing).
 */
static bool
serve_memo(struct loop *l, struct evhttp_request *req,
    const unsigned char *der, size_t len)
{
	const struct ocsp_certid *id = memo_get(l, der, len);
	struct snap		*s;
	struct va_resp		*c;
	bool			 refresh = false;
	time_t			 now;
	int64_t			 iss;

	if (id == NULL || (s = loop_snap(l)) == NULL)
		return false;
	now = sp_now();
	if ((iss = va_index_find(s->ix, id)) < 0 ||
	    signer_for(s, iss, now) == NULL)
		return false;
	c = va_cache_get1(l->rs->va->cache, iss, id->serial, id->hash, now,
	    &refresh);
	if (c == NULL || refresh) {
		va_resp_unref(c);
		return false;
	}
	send_cached(l, req, c, now);
	va_resp_unref(c);
	return true;
}

static void
serve_ocsp(struct loop *l, struct evhttp_request *req,
    const unsigned char *der, size_t len)
{
	struct va_responder *rs = l->rs;
	struct ocsp_req	*rq = NULL;
	struct sp_err	 err = { 0 };
	struct snap	*s;
	struct job	*j;
	int64_t		 iss;
	int		 r;

	if (serve_memo(l, req, der, len))
		return;
	s = loop_snap(l);
	if ((r = ocsp_req_decode(der, len, &rq, &err)) != 0) {
		answer_error(l, req, r == SP_ERR_ALLOC ?
		    OCSP_RESPONSE_STATUS_INTERNALERROR :
		    OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, OUT_MALFORMED);
		return;
	}
	if (s == NULL) {	/* the first snapshot is being built */
		ocsp_req_free(rq);
		answer_error(l, req, OCSP_RESPONSE_STATUS_TRYLATER,
		    OUT_TRYLATER);
		return;
	}
	iss = va_index_find(s->ix, &rq->ids[0]);
	if (iss < 0 || signer_for(s, iss, sp_now()) == NULL) {
		ocsp_req_free(rq);
		answer_error(l, req, OCSP_RESPONSE_STATUS_UNAUTHORIZED,
		    OUT_UNAUTHORIZED);
		return;
	}
	if (rq->n == 1 && !rq->has_nonce) {
		bool		 refresh = false;
		time_t		 now = sp_now();
		struct va_resp	*c = va_cache_get1(rs->va->cache, iss,
		    rq->ids[0].serial, rq->ids[0].hash, now, &refresh);

		memo_put(l, der, len, &rq->ids[0]);
		if (c != NULL && !refresh) {
			send_cached(l, req, c, now);
			va_resp_unref(c);
			ocsp_req_free(rq);
			return;
		}
		/*
		 * Past its refresh time: this request has it re-signed (the
		 * others are still served the old one until it expires).
		 */
		va_resp_unref(c);
	}
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		ocsp_req_free(rq);
		answer_error(l, req, OCSP_RESPONSE_STATUS_INTERNALERROR,
		    OUT_INTERNAL);
		return;
	}
	j->kind = JOB_OCSP;
	j->rq = rq;
	j->snap = snap_ref(s);
	defer(l, req, j);
}

/* Decodes the base64 (standard alphabet, padded) of a GET request. */
static int
b64_decode(const char *s, unsigned char **out, size_t *len)
{
	size_t	n = strlen(s), pad = 0;
	int	m;

	*out = NULL;
	if (n == 0 || n % 4 != 0 || n > OCSP_REQ_MAX_BYTES / 3 * 4 + 4)
		return SP_ERR_INVALID;
	if (s[n - 1] == '=')
		pad++;
	if (s[n - 2] == '=')
		pad++;
	if ((*out = malloc(n / 4 * 3 + 1)) == NULL)
		return SP_ERR_ALLOC;
	if ((m = EVP_DecodeBlock(*out, (const unsigned char *)s, (int)n)) <
	    0 || (size_t)m < pad) {
		free(*out);
		*out = NULL;
		return SP_ERR_INVALID;
	}
	*len = (size_t)m - pad;
	return 0;
}

int
va_get_decode(const char *tail, unsigned char **der, size_t *len)
{
	char	*dec;
	int	 r;

	*der = NULL;
	*len = 0;
	if (strlen(tail) > VA_GET_MAX)
		return SP_ERR_INVALID;
	if ((dec = evhttp_uridecode(tail, 0, NULL)) == NULL)
		return SP_ERR_ALLOC;
	/* A '+' decoded from %2B or left as is: both are base64. */
	r = b64_decode(dec, der, len);
	free(dec);
	return r;
}

static void
serve_get_ocsp(struct loop *l, struct evhttp_request *req,
    const char *path)
{
	unsigned char	*der = NULL;
	size_t		 len = 0;
	int		 r;

	/* "/ocsp/" then the URL-encoded base64 (RFC 6960 A.1). */
	if ((r = va_get_decode(path + strlen("/ocsp/"), &der, &len)) != 0) {
		answer_error(l, req, r == SP_ERR_ALLOC ?
		    OCSP_RESPONSE_STATUS_INTERNALERROR :
		    OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, r == SP_ERR_ALLOC ?
		    OUT_INTERNAL : OUT_MALFORMED);
		return;
	}
	serve_ocsp(l, req, der, len);
	free(der);
}

static void
serve_crl(struct loop *l, struct evhttp_request *req,
    const char *path)
{
	struct snap	*s = loop_snap(l);
	char		 name[VA_ISSUER_NAME_MAX + 1];
	const char	*p = path + strlen("/crl/"), *inm;
	size_t		 n = strlen(p);
	struct job	*j;
	int64_t		 iss;

	if (n <= 4 || strcmp(p + n - 4, ".crl") != 0 || n - 4 > sizeof(name) - 1) {
		plain_error(req, 404, "no such CRL");
		return;
	}
	memcpy(name, p, n - 4);
	name[n - 4] = '\0';
	if (s == NULL || (iss = va_index_find_name(s->ix, name)) < 0) {
		plain_error(req, 404, "no such CA");
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		plain_error(req, 500, "out of memory");
		return;
	}
	j->kind = JOB_CRL;
	j->issuer = iss;
	inm = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "If-None-Match");
	if (inm != NULL)
		snprintf(j->etag, sizeof(j->etag), "%s", inm);
	defer(l, req, j);
}

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct loop		*l = arg;
	/* evhttp parsed the target already (and refused what it could not). */
	const struct evhttp_uri	*u = evhttp_request_get_evhttp_uri(req);
	const char		*path;
	enum evhttp_cmd_type	 m = evhttp_request_get_command(req);

	if (u == NULL || (path = evhttp_uri_get_path(u)) == NULL) {
		plain_error(req, 400, "bad request target");
		return;
	}
	if (strcmp(path, "/ocsp") == 0 || strcmp(path, "/ocsp/") == 0) {
		struct evbuffer	*in = evhttp_request_get_input_buffer(req);
		const char	*ct = evhttp_find_header(
		    evhttp_request_get_input_headers(req), "Content-Type");
		size_t		 len = evbuffer_get_length(in);

		if (m != EVHTTP_REQ_POST)
			plain_error(req, 405, "POST an OCSP request here");
		else if (ct == NULL ||
		    strcasecmp(ct, "application/ocsp-request") != 0)
			plain_error(req, 415, "Content-Type must be "
			    "application/ocsp-request");
		else if (len > OCSP_REQ_MAX_BYTES)
			plain_error(req, 413, "request too large");
		else
			serve_ocsp(l, req, evbuffer_pullup(in, -1), len);
	} else if (strncmp(path, "/ocsp/", 6) == 0) {
		if (m != EVHTTP_REQ_GET)
			plain_error(req, 405, "GET here, or POST to /ocsp");
		else
			serve_get_ocsp(l, req, path);
	} else if (strncmp(path, "/crl/", 5) == 0) {
		if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD)
			plain_error(req, 405, "GET a CRL");
		else
			serve_crl(l, req, path);
	} else
		plain_error(req, 404, "not found");
}

static void *
loop_main(void *arg)
{
	struct loop	*l = arg;

	event_base_dispatch(l->base);
	return NULL;
}

/* --- start and stop ------------------------------------------------------- */

static void
responder_free(struct va_responder *rs)
{
	struct job	*j;

	if (rs == NULL)
		return;
	for (int i = 0; i < rs->nloops; i++)
		if (rs->loops[i].started) {
			event_base_loopbreak(rs->loops[i].base);
			pthread_join(rs->loops[i].thr, NULL);
		}
	pthread_mutex_lock(&rs->mtx);
	rs->stopping = true;
	pthread_cond_broadcast(&rs->cond);
	pthread_mutex_unlock(&rs->mtx);
	for (int i = 0; i < rs->nthr; i++)
		pthread_join(rs->thr[i], NULL);
	/* Jobs never started, and finished ones never sent. */
	while ((j = TAILQ_FIRST(&rs->pending)) != NULL) {
		TAILQ_REMOVE(&rs->pending, j, q);
		job_free(j);
	}
	if (rs->tick != NULL)
		event_free(rs->tick);
	for (int i = 0; i < rs->nloops; i++) {
		struct loop	*l = &rs->loops[i];

		while ((j = TAILQ_FIRST(&l->done)) != NULL) {
			TAILQ_REMOVE(&l->done, j, q);
			job_free(j);
		}
		if (l->http != NULL)
			evhttp_free(l->http);
		if (l->wake != NULL)
			event_free(l->wake);
		if (l->base != NULL)
			event_base_free(l->base);
		snap_unref(l->snap);
		free(l->memo);
	}
	snap_unref(rs->snap);
	pthread_mutex_destroy(&rs->mtx);
	pthread_cond_destroy(&rs->cond);
	pthread_mutex_destroy(&rs->snap_mtx);
	free(rs);
}

void
va_responder_stop(struct va *va)
{
	responder_free(va->resp);
	va->resp = NULL;
}

void
va_issuers_changed(struct va *va)
{
	if (va->resp != NULL) {
		atomic_store(&va->resp->snap_dirty, true);
		/* Now rather than at the next tick (thread safe). */
		event_active(va->resp->tick, EV_TIMEOUT, 0);
	}
}

/*
 * Opens n listening sockets on host:port in one SO_REUSEPORT group, into
 * fds. Port 0: the first socket's port for the others. The address is
 * first bound without SO_REUSEPORT, so that a port some other program (or
 * another node of the same user) holds is refused rather than shared.
 */
static int
listen_group(const char *host, const char *port, int n, int *fds,
    struct sp_err *err)
{
	struct addrinfo		 hints = { 0 }, *ai = NULL;
	struct sockaddr_storage	 ss;
	socklen_t		 sl = sizeof(ss);
	int			 one = 1, probe, r, i;

	for (i = 0; i < n; i++)
		fds[i] = -1;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((r = getaddrinfo(host, port, &hints, &ai)) != 0)
		return sp_err_set(err, SP_ERR_INVALID, "%s: %s", host,
		    gai_strerror(r));
	memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
	sl = ai->ai_addrlen;
	/* The probe: refused if the address is taken. */
	if ((probe = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) <
	    0 || setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)) != 0 || bind(probe, (struct sockaddr *)&ss, sl) != 0)
		goto fail;
	if (getsockname(probe, (struct sockaddr *)&ss, &sl) != 0)
		goto fail;
	close(probe);
	probe = -1;
	for (i = 0; i < n; i++) {
		if ((fds[i] = socket(ai->ai_family, SOCK_STREAM |
		    SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0 ||
		    setsockopt(fds[i], SOL_SOCKET, SO_REUSEADDR, &one,
		    sizeof(one)) != 0 || setsockopt(fds[i], SOL_SOCKET,
		    SO_REUSEPORT, &one, sizeof(one)) != 0 ||
		    bind(fds[i], (struct sockaddr *)&ss, sl) != 0 ||
		    listen(fds[i], BACKLOG) != 0)
			goto fail;
	}
	freeaddrinfo(ai);
	return 0;
 fail:
	r = errno;
	if (probe >= 0)
		close(probe);
	for (i = 0; i < n; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
	freeaddrinfo(ai);
	return sp_err_set(err, SP_ERR_IO, "cannot listen: %s", strerror(r));
}

/* Sets up loop l on listening socket fd, which it owns even on failure. */
static int
loop_setup(struct va_responder *rs, struct loop *l, int fd)
{
	struct event_config	*cfg;

	l->rs = rs;
	TAILQ_INIT(&l->done);
	if ((l->memo = calloc(MEMO_SLOTS, sizeof(*l->memo))) == NULL ||
	    (cfg = event_config_new()) == NULL) {
		close(fd);
		return -1;
	}
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	l->base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (l->base == NULL || (l->http = evhttp_new(l->base)) == NULL ||
	    (l->wake = event_new(l->base, -1, EV_PERSIST, on_wake, l)) ==
	    NULL) {
		close(fd);
		return -1;
	}
	evhttp_set_max_body_size(l->http, OCSP_REQ_MAX_BYTES);
	evhttp_set_max_headers_size(l->http, 16 * 1024);
	evhttp_set_timeout(l->http, 30);
	evhttp_set_allowed_methods(l->http, EVHTTP_REQ_GET |
	    EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
	evhttp_set_gencb(l->http, on_request, l);
	/* evhttp owns fd once it took it (closed with the listener). */
	if (evhttp_accept_socket(l->http, fd) != 0) {
		close(fd);
		return -1;
	}
	return 0;
}

int
va_listen(struct va *va, const char *hostport, int loops, struct sp_err *err)
{
	struct va_responder	*rs;
	struct timeval		 tv = { 0, TICK_MS * 1000 };
	char			 host[64];
	const char		*colon = strrchr(hostport, ':');
	long			 port;
	char			*end;
	int			 fds[LOOPS_MAX], ncpu, r, i;

	if (colon == NULL || (size_t)(colon - hostport) >= sizeof(host))
		return sp_err_set(err, SP_ERR_INVALID, "va listen %s: not "
		    "HOST:PORT", hostport);
	port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535)
		return sp_err_set(err, SP_ERR_INVALID, "va listen %s: bad "
		    "port", hostport);
	snprintf(host, sizeof(host), "%.*s", (int)(colon - hostport),
	    hostport);
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	ncpu = ncpu < 1 ? 1 : ncpu > LOOPS_MAX ? LOOPS_MAX : ncpu;
	if (loops <= 0)
		loops = ncpu;
	if (loops > LOOPS_MAX)
		loops = LOOPS_MAX;
	if ((r = listen_group(host, colon + 1, loops, fds, err)) != 0)
		return sp_err_set(err, r, "va: %s: %s", hostport, err->msg);
	if ((rs = calloc(1, sizeof(*rs))) == NULL) {
		for (i = 0; i < loops; i++)
			close(fds[i]);
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	}
	rs->va = va;
	TAILQ_INIT(&rs->pending);
	pthread_mutex_init(&rs->mtx, NULL);
	pthread_cond_init(&rs->cond, NULL);
	pthread_mutex_init(&rs->snap_mtx, NULL);
	for (i = 0; i < loops; i++) {
		rs->nloops = i + 1;
		if (loop_setup(rs, &rs->loops[i], fds[i]) != 0) {
			for (int k = i + 1; k < loops; k++)
				close(fds[k]);
			r = sp_err_set(err, SP_ERR_INTERNAL, "va: event setup "
			    "failed");
			goto fail;
		}
	}
	if ((rs->tick = event_new(rs->loops[0].base, -1, EV_PERSIST, on_tick,
	    rs)) == NULL || event_add(rs->tick, &tv) != 0) {
		r = sp_err_set(err, SP_ERR_INTERNAL, "va: event setup failed");
		goto fail;
	}
	rs->nthr = ncpu;
	for (i = 0; i < rs->nthr; i++)
		if (pthread_create(&rs->thr[i], NULL, signer_main, rs) != 0) {
			rs->nthr = i;
			r = sp_err_set(err, SP_ERR_INTERNAL, "va: cannot start "
			    "the signer threads");
			goto fail;
		}
	va->resp = rs;
	snap_refresh(rs);
	for (i = 0; i < rs->nloops; i++) {
		if (pthread_create(&rs->loops[i].thr, NULL, loop_main,
		    &rs->loops[i]) != 0) {
			va->resp = NULL;
			r = sp_err_set(err, SP_ERR_INTERNAL, "va: cannot start "
			    "the responder threads");
			goto fail;
		}
		rs->loops[i].started = true;
	}
	log_info("va: OCSP and CRLs on http://%s (%d loops, %d signer "
	    "threads)", hostport, rs->nloops, rs->nthr);
	return 0;
 fail:
	responder_free(rs);
	return r;
}

json_t *
va_responder_status_json(struct va *va)
{
	struct va_responder	*rs = va->resp;
	json_t			*o, *req = NULL, *sg = NULL;
	struct snap		*s;

	if (rs == NULL)
		return json_null();
	if ((o = json_object()) == NULL || (req = json_object()) == NULL ||
	    (sg = json_array()) == NULL) {
		json_decref(o);
		json_decref(req);
		return NULL;
	}
	for (int i = 0; i < OUT__MAX; i++) {
		uint64_t	n = 0;

		for (int k = 0; k < rs->nloops; k++)
			n += atomic_load_explicit(&rs->loops[k].count[i],
			    memory_order_relaxed);
		json_object_set_new(req, outcome_names[i],
		    json_integer((json_int_t)n));
	}
	pthread_mutex_lock(&rs->snap_mtx);
	s = snap_ref(rs->snap);
	pthread_mutex_unlock(&rs->snap_mtx);
	for (size_t i = 0; s != NULL && i < s->n; i++) {
		char	buf[32];

		sp_time_fmt(s->s[i].not_after, buf, sizeof(buf));
		json_array_append_new(sg, json_pack("{s:s,s:I,s:s}", "name",
		    s->s[i].name, "issuer_id", (json_int_t)s->s[i].issuer,
		    "not_after", buf));
	}
	snap_unref(s);
	json_object_set_new(o, "loops", json_integer(rs->nloops));
	json_object_set_new(o, "requests", req);
	json_object_set_new(o, "signers", sg);
	return o;
}
