#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "crypto/dn.h"
#include "peer/peer_int.h"
#include "util/log.h"
#include "util/util.h"

#define DEFAULT_MAX	4
#define PING_KEEP	100	/* per-ping details returned */
#define PING_MAX	100000

struct outconn;
struct outreq;
TAILQ_HEAD(outconn_list, outconn);
TAILQ_HEAD(outreq_list, outreq);

/* Result of one request through a connector. */
typedef void out_cb(void *arg, int status, json_t *body, const char *conn,
    const struct sp_err *err);

struct outreq {
	struct connector	*c;
	struct outconn		*oc;
	enum evhttp_cmd_type	 method;
	char			 path[128];
	char			*body;
	out_cb			*cb;
	void			*arg;
	TAILQ_ENTRY(outreq)	 q;
};

struct outconn {
	struct connector		*c;
	struct evhttp_connection	*evcon;
	struct bufferevent		*bev;
	struct outreq			*cur;	/* request in flight */
	struct evhttp_request		*req;	/* its evhttp request */
	struct event			*deadline; /* for the whole response */
	bool				 used;	/* a request completed */
	bool				 dead;
	TAILQ_ENTRY(outconn)		 e;
};

struct connector {
	struct peer		*p;
	int64_t			 id;
	char			 name[PEER_NAME_MAX + 1];
	char			 url[PEER_URL_MAX + 1];
	char			 host[256];
	char			 base_path[128];
	int			 port;
	char			 auth[PEER_NAME_MAX + 1];
	int			 max;
	bool			 enabled;
	bool			 deleted;
	bool			 dropping;	/* drop_pool() running */
	SSL_CTX			*ctx;
	uint64_t		 trust_gen;	/* of ctx's trust store */
	SSL_SESSION		*sess;
	char			 tls_peer[256];
	struct outconn_list	 conns;
	int			 nconns;
	struct outreq_list	 queue;
	int			 nqueued;
	TAILQ_ENTRY(connector)	 e;
};

static void	pump(struct connector *);

/* --- URL ----------------------------------------------------------------- */

/* https://host:port/peer/v1 (host may be [v6]); path must be /peer/v1. */
static int
url_parse(struct connector *c, const char *url, struct sp_err *err)
{
	struct evhttp_uri	*u = NULL;
	const char		*host, *path;
	int			 r = SP_ERR_INVALID;

	if (strlen(url) > PEER_URL_MAX ||
	    (u = evhttp_uri_parse_with_flags(url, 0)) == NULL ||
	    evhttp_uri_get_scheme(u) == NULL ||
	    strcmp(evhttp_uri_get_scheme(u), "https") != 0 ||
	    (host = evhttp_uri_get_host(u)) == NULL || *host == '\0' ||
	    strlen(host) >= sizeof(c->host) ||
	    evhttp_uri_get_userinfo(u) != NULL ||
	    evhttp_uri_get_query(u) != NULL ||
	    evhttp_uri_get_fragment(u) != NULL) {
		sp_err_set(err, r, "URL must look like https://host:port"
		    PEER_PREFIX);
		goto out;
	}
	path = evhttp_uri_get_path(u);
	if (path == NULL || strcmp(path, PEER_PREFIX) != 0) {
		sp_err_set(err, r, "URL path must be %s", PEER_PREFIX);
		goto out;
	}
	snprintf(c->host, sizeof(c->host), "%s", host);
	c->port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : 443;
	snprintf(c->base_path, sizeof(c->base_path), "%s", path);
	snprintf(c->url, sizeof(c->url), "%s", url);
	r = 0;
 out:
	if (u != NULL)
		evhttp_uri_free(u);
	return r;
}

/* --- TLS client context --------------------------------------------------- */

static int
client_ctx(struct connector *c, struct sp_err *err)
{
	struct peer	*p = c->p;
	X509		*cert = NULL;
	STACK_OF(X509)	*chain = NULL;
	EVP_PKEY	*key = NULL;
	X509_STORE	*trust = NULL;
	SSL_CTX		*ctx = NULL;
	int		 r;

	if (c->ctx != NULL)
		return 0;
	if ((r = p->hooks.identity(p->hooks.arg, c->auth, &cert, &chain, &key,
	    err)) != 0 || (r = p->hooks.trust(p->hooks.arg, &trust, err)) != 0)
		goto out;
	r = SP_ERR_CRYPTO;
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    SSL_CTX_use_certificate(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		sp_err_ossl(err, r, "connector TLS context");
		goto out;
	}
	for (int i = 0; i < sk_X509_num(chain); i++)
		(void)SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i));
	X509_STORE_set_purpose(trust, X509_PURPOSE_SSL_SERVER);
	SSL_CTX_set_cert_store(ctx, trust);
	trust = NULL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
	c->trust_gen = p->hooks.generation(p->hooks.arg);
	c->ctx = ctx;
	ctx = NULL;
	r = 0;
 out:
	SSL_CTX_free(ctx);
	X509_free(cert);
	sk_X509_pop_free(chain, X509_free);
	EVP_PKEY_free(key);
	X509_STORE_free(trust);
	ERR_clear_error();
	return r;
}

/* --- connections ---------------------------------------------------------- */

static void
conn_free_now(struct outconn *oc)
{
	struct connector	*c = oc->c;

	TAILQ_REMOVE(&c->conns, oc, e);
	c->nconns--;
	evhttp_connection_set_closecb(oc->evcon, NULL, NULL);
	evhttp_connection_free(oc->evcon);
	if (oc->deadline != NULL)
		event_free(oc->deadline);
	free(oc);
}

static void
connector_free(struct connector *c)
{
	SSL_CTX_free(c->ctx);
	SSL_SESSION_free(c->sess);
	free(c);
}

/* libevent must not free a connection from inside its own callbacks. */
static void
conn_reap(evutil_socket_t fd, short what, void *arg)
{
	struct outconn		*oc = arg;
	struct connector	*c = oc->c;

	(void)fd;
	(void)what;
	conn_free_now(oc);
	if (c->deleted && c->nconns == 0)
		connector_free(c);
	else
		pump(c);
}

static void
conn_kill(struct outconn *oc)
{
	struct timeval	tv = { 0, 0 };

	if (oc->dead)
		return;
	oc->dead = true;
	if (event_base_once(oc->c->p->base, -1, EV_TIMEOUT, conn_reap, oc,
	    &tv) == -1)
		log_warnx("peer: cannot schedule connection cleanup");
}

static void
on_close(struct evhttp_connection *evcon, void *arg)
{
	struct outconn	*oc = arg;

	(void)evcon;
	/* The peer closed an idle keep-alive connection. */
	if (oc->cur == NULL)
		conn_kill(oc);
}

static void	req_finish(struct outreq *, int, json_t *, const char *,
		    const struct sp_err *);

/*
 * The inactivity timeout alone lets a server that trickles its response
 * hold a request for ever (hostile test F5): the whole response must
 * arrive within PEER_REQUEST_DEADLINE of sending the request.
 */
static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct outconn	*oc = arg;
	struct outreq	*rq = oc->cur;
	struct sp_err	 err = { 0 };

	(void)fd;
	(void)what;
	if (rq == NULL || oc->req == NULL)
		return;
	oc->cur = NULL;
	/* Frees the request without calling on_response. */
	evhttp_cancel_request(oc->req);
	oc->req = NULL;
	conn_kill(oc);
	sp_err_set(&err, SP_ERR_IO, "request to %s:%d timed out: no complete "
	    "response within %d s", oc->c->host, oc->c->port,
	    PEER_REQUEST_DEADLINE);
	req_finish(rq, 0, NULL, oc->used ? "reused" : "full", &err);
}

static struct outconn *
conn_new(struct connector *c, struct sp_err *err)
{
	struct outconn	*oc = NULL;
	SSL		*ssl = NULL;
	X509_VERIFY_PARAM *vp;

	if (client_ctx(c, err) != 0)
		return NULL;
	if ((oc = calloc(1, sizeof(*oc))) == NULL ||
	    (oc->deadline = evtimer_new(c->p->base, on_deadline, oc)) ==
	    NULL || (ssl = SSL_new(c->ctx)) == NULL) {
		sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto fail;
	}
	/* The server certificate must name the host in the URL. */
	vp = SSL_get0_param(ssl);
	/* Verify by the node's clock (it differs only in tests). */
	if (sp_time_offset() != 0)
		X509_VERIFY_PARAM_set_time(vp, sp_now());
	if (X509_VERIFY_PARAM_set1_ip_asc(vp, c->host) != 1) {
		ERR_clear_error();
		if (!SSL_set1_host(ssl, c->host) ||
		    !SSL_set_tlsext_host_name(ssl, c->host)) {
			sp_err_ossl(err, SP_ERR_CRYPTO, "TLS host name");
			goto fail;
		}
	}
	if (c->sess != NULL)
		SSL_set_session(ssl, c->sess);
	oc->c = c;
	if ((oc->bev = bufferevent_openssl_socket_new(c->p->base, -1, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS)) == NULL) {
		sp_err_set(err, SP_ERR_ALLOC, "bufferevent");
		goto fail;
	}
	ssl = NULL;	/* owned by the bufferevent */
	if ((oc->evcon = evhttp_connection_base_bufferevent_new(c->p->base,
	    NULL, oc->bev, c->host, (ev_uint16_t)c->port)) == NULL) {
		bufferevent_free(oc->bev);
		sp_err_set(err, SP_ERR_ALLOC, "HTTP connection");
		goto fail;
	}
	evhttp_connection_set_retries(oc->evcon, 0);
	evhttp_connection_set_timeout(oc->evcon, PEER_TIMEOUT);
	evhttp_connection_set_max_body_size(oc->evcon, PEER_MAX_BODY);
	evhttp_connection_set_max_headers_size(oc->evcon, PEER_MAX_HEADERS);
	evhttp_connection_set_closecb(oc->evcon, on_close, oc);
	TAILQ_INSERT_TAIL(&c->conns, oc, e);
	c->nconns++;
	return oc;
 fail:
	SSL_free(ssl);
	if (oc != NULL && oc->deadline != NULL)
		event_free(oc->deadline);
	free(oc);
	ERR_clear_error();
	return NULL;
}

/* --- requests ------------------------------------------------------------- */

static void
req_finish(struct outreq *rq, int status, json_t *body, const char *kind,
    const struct sp_err *err)
{
	rq->cb(rq->arg, status, body, kind, err);
	free(rq->body);
	free(rq);
}

static void
on_response(struct evhttp_request *req, void *arg)
{
	struct outreq		*rq = arg;
	struct outconn		*oc = rq->oc;
	struct connector	*c = oc->c;
	SSL			*ssl = bufferevent_openssl_get_ssl(oc->bev);
	struct sp_err		 err = { 0 };
	json_t			*body = NULL;
	const char		*kind;
	X509			*peer;
	int			 status = req ? evhttp_request_get_response_code(req)
				    : 0;

	oc->cur = NULL;
	oc->req = NULL;
	evtimer_del(oc->deadline);
	kind = oc->used ? "reused" : (ssl && SSL_session_reused(ssl)) ?
	    "resumed" : "full";
	if (status == 0) {
		unsigned long e = bufferevent_get_openssl_error(oc->bev);
		long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
		char buf[160];

		if (vr != X509_V_OK)
			/* Say which check failed, not just "verify failed". */
			sp_err_set(&err, SP_ERR_IO, "connection to %s:%d "
			    "failed: server certificate: %s", c->host, c->port,
			    X509_verify_cert_error_string(vr));
		else if (e != 0) {
			ERR_error_string_n(e, buf, sizeof(buf));
			sp_err_set(&err, SP_ERR_IO, "connection to %s:%d "
			    "failed: %s", c->host, c->port, buf);
		} else
			sp_err_set(&err, SP_ERR_IO, "connection to %s:%d "
			    "failed or timed out", c->host, c->port);
		ERR_clear_error();
		conn_kill(oc);
		req_finish(rq, 0, NULL, kind, &err);
		return;
	}
	oc->used = true;
	if (ssl != NULL && (peer = SSL_get0_peer_certificate(ssl)) != NULL) {
		char *s = dn_print(X509_get_subject_name(peer));

		snprintf(c->tls_peer, sizeof(c->tls_peer), "%s", s ? s : "?");
		free(s);
	}
	/* Keep a session to resume: TLS 1.3 tickets arrive after the
	 * handshake, so take it once a response came back. */
	if (ssl != NULL && (c->sess == NULL || strcmp(kind, "full") == 0)) {
		SSL_SESSION *s = SSL_get1_session(ssl), *copy = NULL;

		/*
		 * Keep a copy: the original belongs to this connection, and
		 * OpenSSL marks it unresumable if the connection later ends
		 * without a TLS shutdown (an idle close by the peer).
		 */
		if (s != NULL && SSL_SESSION_is_resumable(s) &&
		    (copy = SSL_SESSION_dup(s)) != NULL) {
			SSL_SESSION_free(c->sess);
			c->sess = copy;
		}
		SSL_SESSION_free(s);
	}
	{
		struct evbuffer *in = evhttp_request_get_input_buffer(req);
		size_t len = evbuffer_get_length(in);
		unsigned char *b = len ? evbuffer_pullup(in,
		    (ev_ssize_t)len) : NULL;

		if (b != NULL && peer_body_decode(b, len, &body, &err) != 0)
			body = NULL;
	}
	req_finish(rq, status, body, kind, &err);
	json_decref(body);
	if (!oc->dead)
		pump(c);
}

static int
send_on(struct outconn *oc, struct outreq *rq, struct sp_err *err)
{
	struct evhttp_request	*req;
	struct evkeyvalq	*h;
	char			 hostport[300];

	if ((req = evhttp_request_new(on_response, rq)) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	h = evhttp_request_get_output_headers(req);
	snprintf(hostport, sizeof(hostport), "%s:%d", oc->c->host,
	    oc->c->port);
	evhttp_add_header(h, "Host", hostport);
	evhttp_add_header(h, "Connection", "keep-alive");
	if (rq->body != NULL) {
		evhttp_add_header(h, "Content-Type", "application/json");
		evbuffer_add(evhttp_request_get_output_buffer(req), rq->body,
		    strlen(rq->body));
	}
	rq->oc = oc;
	oc->cur = rq;
	if (evhttp_make_request(oc->evcon, req, rq->method, rq->path) != 0) {
		/* evhttp freed req. */
		oc->cur = NULL;
		conn_kill(oc);
		return sp_err_set(err, SP_ERR_IO, "cannot send request");
	}
	oc->req = req;
	{
		struct timeval	tv = { PEER_REQUEST_DEADLINE, 0 };

		evtimer_add(oc->deadline, &tv);
	}
	/* The socket exists once the request started connecting. */
	nodelay(bufferevent_getfd(oc->bev));
	return 0;
}

/*
 * The trust anchors or CRLs changed: new connections verify the server
 * against the new ones, without resuming (a resumed session would skip
 * the check), and idle connections verified under the old ones close.
 * The client identity stays until reset (as operators expect).
 */
static void
refresh_trust(struct connector *c)
{
	struct peer	*p = c->p;
	struct outconn	*oc;
	X509_STORE	*trust = NULL;
	struct sp_err	 err = { 0 };
	uint64_t	 gen = p->hooks.generation(p->hooks.arg);

	if (c->ctx == NULL || gen == c->trust_gen)
		return;
	if (p->hooks.trust(p->hooks.arg, &trust, &err) != 0) {
		log_warnx("connector %s: trust store: %s", c->name, err.msg);
		return;		/* keep the old one; retried next time */
	}
	X509_STORE_set_purpose(trust, X509_PURPOSE_SSL_SERVER);
	SSL_CTX_set_cert_store(c->ctx, trust);
	c->trust_gen = gen;
	SSL_SESSION_free(c->sess);
	c->sess = NULL;
	TAILQ_FOREACH(oc, &c->conns, e)
		if (oc->cur == NULL)
			conn_kill(oc);
}

/* Hands queued requests to ready connections, opening new ones up to max. */
static void
pump(struct connector *c)
{
	struct outreq	*rq;
	struct outconn	*oc;
	struct sp_err	 err = { 0 };

	if (!TAILQ_EMPTY(&c->queue))
		refresh_trust(c);

	while ((rq = TAILQ_FIRST(&c->queue)) != NULL) {
		TAILQ_FOREACH(oc, &c->conns, e)
			if (oc->cur == NULL && !oc->dead)
				break;
		if (oc == NULL && c->nconns < c->max &&
		    (oc = conn_new(c, &err)) == NULL) {
			TAILQ_REMOVE(&c->queue, rq, q);
			c->nqueued--;
			req_finish(rq, 0, NULL, "none", &err);
			continue;
		}
		if (oc == NULL)
			return;		/* all busy: stays queued */
		TAILQ_REMOVE(&c->queue, rq, q);
		c->nqueued--;
		sp_err_clear(&err);
		if (send_on(oc, rq, &err) != 0)
			req_finish(rq, 0, NULL, "none", &err);
	}
}

static void
connector_request(struct connector *c, enum evhttp_cmd_type method,
    const char *endpoint, json_t *body, out_cb *cb, void *arg)
{
	struct outreq	*rq;
	struct sp_err	 err = { 0 };

	if (!c->p->outgoing_enabled)
		sp_err_set(&err, SP_ERR_STATE, "outgoing peer connections are "
		    "disabled on this node");
	else if (!c->enabled)
		sp_err_set(&err, SP_ERR_STATE, "connector %s is disabled",
		    c->name);
	else if (c->dropping || c->deleted)
		sp_err_set(&err, SP_ERR_STATE, "connector %s is being reset",
		    c->name);
	if (err.code != 0) {
		cb(arg, 0, NULL, "none", &err);
		return;
	}
	if ((rq = calloc(1, sizeof(*rq))) == NULL) {
		sp_err_set(&err, SP_ERR_ALLOC, "out of memory");
		cb(arg, 0, NULL, "none", &err);
		return;
	}
	rq->c = c;
	rq->method = method;
	/* base_path is always PEER_PREFIX (url_parse), so this fits. */
	if ((size_t)snprintf(rq->path, sizeof(rq->path), "%s%s", c->base_path,
	    endpoint) >= sizeof(rq->path)) {
		free(rq);
		sp_err_set(&err, SP_ERR_INTERNAL, "request path too long");
		cb(arg, 0, NULL, "none", &err);
		return;
	}
	rq->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
	rq->cb = cb;
	rq->arg = arg;
	TAILQ_INSERT_TAIL(&c->queue, rq, q);
	c->nqueued++;
	pump(c);
}

/* --- store ---------------------------------------------------------------- */

static struct connector *
find(struct peer *p, const char *name)
{
	struct connector	*c;

	TAILQ_FOREACH(c, &p->connectors, e)
		if (name != NULL && strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

static int
load_row(const struct store_row *row, void *arg)
{
	struct peer		*p = arg;
	struct connector	*c;
	struct sp_err		 err = { 0 };

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return SP_ERR_ALLOC;
	c->p = p;
	c->id = store_row_int(row, 0);
	snprintf(c->name, sizeof(c->name), "%s", store_row_text(row, 1));
	c->enabled = store_row_int(row, 3) != 0;
	snprintf(c->auth, sizeof(c->auth), "%s", store_row_text(row, 4));
	c->max = (int)store_row_int(row, 5);
	TAILQ_INIT(&c->conns);
	TAILQ_INIT(&c->queue);
	if (url_parse(c, store_row_text(row, 2), &err) != 0) {
		log_warnx("connector %s: %s", c->name, err.msg);
		free(c);
		return SP_ERR_DB;
	}
	TAILQ_INSERT_TAIL(&p->connectors, c, e);
	return 0;
}

int
connectors_load(struct peer *p, struct sp_err *err)
{
	return store_select(p->st, NULL, load_row, p, err, "SELECT id, name, url, "
	    "enabled, auth, max_conns FROM connectors ORDER BY name", "");
}

static void
fail_queue(struct connector *c, const char *why)
{
	struct outreq	*rq;
	struct sp_err	 err = { 0 };

	sp_err_set(&err, SP_ERR_STATE, "%s", why);
	while ((rq = TAILQ_FIRST(&c->queue)) != NULL) {
		TAILQ_REMOVE(&c->queue, rq, q);
		c->nqueued--;
		req_finish(rq, 0, NULL, "none", &err);
	}
}

/*
 * Drops the pool: queued and in-flight requests fail. Connections already
 * dead wait for their scheduled cleanup, unless all (shutdown: the loop
 * has stopped and will not run it).
 */
static void
drop_pool(struct connector *c, const char *why, bool all)
{
	struct outconn	*oc, *next;
	struct sp_err	 err = { 0 };

	c->dropping = true;
	fail_queue(c, why);
	sp_err_set(&err, SP_ERR_STATE, "%s", why);
	for (oc = TAILQ_FIRST(&c->conns); oc != NULL; oc = next) {
		struct outreq *rq = oc->cur;

		next = TAILQ_NEXT(oc, e);
		if (oc->dead && !all)
			continue;
		oc->cur = NULL;
		if (rq != NULL)
			req_finish(rq, 0, NULL, "none", &err);
		/* Freeing the connection frees its evhttp request too. */
		conn_free_now(oc);
	}
	c->dropping = false;
}

void
connectors_free(struct peer *p)
{
	struct connector	*c;

	while ((c = TAILQ_FIRST(&p->connectors)) != NULL) {
		TAILQ_REMOVE(&p->connectors, c, e);
		drop_pool(c, "node is shutting down", true);
		connector_free(c);
	}
}

static int
audit(struct peer *p, struct store_txn *tx, const char *event,
    const char *actor, json_t *d, struct sp_err *err)
{
	char	*s = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	int	 r;

	json_decref(d);
	if (s == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	r = store_audit_append(p->st, tx, event, actor, s, err);
	free(s);
	return r;
}

static int
save(struct peer *p, struct connector *c, bool insert, const char *actor,
    struct sp_err *err)
{
	struct store_txn	*tx = NULL;
	int	r;

	if ((r = store_txn_begin(p->st, &tx, err)) != 0)
		return r;
	if (insert)
		r = store_exec(p->st, tx, &c->id, err, "INSERT INTO connectors "
		    "(name, url, enabled, auth, max_conns, created) VALUES "
		    "(?, ?, ?, ?, ?, ?) RETURNING id", "ssisii", c->name, c->url,
		    (int64_t)c->enabled, c->auth, (int64_t)c->max,
		    (int64_t)sp_now());
	else
		r = store_exec(p->st, tx, NULL, err, "UPDATE connectors SET url = ?, "
		    "enabled = ?, auth = ?, max_conns = ? WHERE id = ?", "sisii",
		    c->url, (int64_t)c->enabled, c->auth, (int64_t)c->max,
		    c->id);
	if (r >= 0)
		r = audit(p, tx, insert ? "connector.add" : "connector.edit", actor,
		    json_pack("{s:s,s:s,s:s,s:b,s:i}", "connector", c->name,
		    "url", c->url, "auth", c->auth, "enabled", c->enabled,
		    "max", c->max), err);
	if (r != 0) {
		store_txn_rollback(tx);
		if (r == SP_ERR_EXISTS)
			sp_err_set(err, r, "connector \"%s\" already exists",
			    c->name);
		return r;
	}
	return store_txn_commit(tx, err);
}

static int
check_conf(const struct peer_connector_conf *cf, bool add, struct sp_err *err)
{
	if (add && !sp_name_valid(cf->name, PEER_NAME_MAX))
		return sp_err_set(err, SP_ERR_INVALID, "connector name must be "
		    "1 to %d characters of [A-Za-z0-9_.-]", PEER_NAME_MAX);
	if ((add || cf->auth != NULL) && !sp_name_valid(cf->auth,
	    PEER_NAME_MAX))
		return sp_err_set(err, SP_ERR_INVALID, "--auth must name a key "
		    "binding");
	if (cf->max < 0 || cf->max > PEER_CONNECTOR_MAX)
		return sp_err_set(err, SP_ERR_INVALID, "pool size must be "
		    "1..%d", PEER_CONNECTOR_MAX);
	return 0;
}

int
peer_connector_add(struct peer *p, const struct peer_connector_conf *cf,
    const char *actor, struct sp_err *err)
{
	struct connector	*c;
	int			 r;

	if ((r = check_conf(cf, true, err)) != 0)
		return r;
	if (find(p, cf->name) != NULL)
		return sp_err_set(err, SP_ERR_EXISTS, "connector \"%s\" already "
		    "exists", cf->name);
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	c->p = p;
	TAILQ_INIT(&c->conns);
	TAILQ_INIT(&c->queue);
	snprintf(c->name, sizeof(c->name), "%s", cf->name);
	snprintf(c->auth, sizeof(c->auth), "%s", cf->auth);
	c->max = cf->max ? cf->max : DEFAULT_MAX;
	c->enabled = cf->enabled != 0;
	if (cf->url == NULL || (r = url_parse(c, cf->url, err)) != 0 ||
	    (r = save(p, c, true, actor, err)) != 0) {
		if (cf->url == NULL)
			r = sp_err_set(err, SP_ERR_INVALID, "--url is required");
		free(c);
		return r;
	}
	TAILQ_INSERT_TAIL(&p->connectors, c, e);
	return 0;
}

int
peer_connector_edit(struct peer *p, const struct peer_connector_conf *cf,
    const char *actor, struct sp_err *err)
{
	struct connector	*c, tmp;
	int			 r;

	if ((c = find(p, cf->name)) == NULL)
		return sp_err_set(err, SP_ERR_NOTFOUND, "no connector named "
		    "\"%.64s\"", cf->name ? cf->name : "");
	if ((r = check_conf(cf, false, err)) != 0)
		return r;
	tmp = *c;
	if (cf->url != NULL && (r = url_parse(&tmp, cf->url, err)) != 0)
		return r;
	if (cf->auth != NULL)
		snprintf(tmp.auth, sizeof(tmp.auth), "%s", cf->auth);
	if (cf->max > 0)
		tmp.max = cf->max;
	if (cf->enabled >= 0)
		tmp.enabled = cf->enabled != 0;
	if ((r = save(p, &tmp, false, actor, err)) != 0)
		return r;
	drop_pool(c, "connector was changed", false);
	memcpy(c->url, tmp.url, sizeof(c->url));
	memcpy(c->host, tmp.host, sizeof(c->host));
	memcpy(c->base_path, tmp.base_path, sizeof(c->base_path));
	memcpy(c->auth, tmp.auth, sizeof(c->auth));
	c->port = tmp.port;
	c->max = tmp.max;
	c->enabled = tmp.enabled;
	SSL_CTX_free(c->ctx);
	c->ctx = NULL;
	SSL_SESSION_free(c->sess);
	c->sess = NULL;
	return 0;
}

int
peer_connector_clone(struct peer *p, const char *from, const char *to,
    const char *actor, struct sp_err *err)
{
	struct connector		*c;
	struct peer_connector_conf	 cf;

	if ((c = find(p, from)) == NULL)
		return sp_err_set(err, SP_ERR_NOTFOUND, "no connector named "
		    "\"%.64s\"", from ? from : "");
	cf.name = to;
	cf.url = c->url;
	cf.auth = c->auth;
	cf.max = c->max;
	cf.enabled = c->enabled;
	return peer_connector_add(p, &cf, actor, err);
}

int
peer_connector_delete(struct peer *p, const char *name, const char *actor,
    struct sp_err *err)
{
	struct store_txn	*tx = NULL;
	struct connector	*c;
	int			 r;

	if ((c = find(p, name)) == NULL)
		return sp_err_set(err, SP_ERR_NOTFOUND, "no connector named "
		    "\"%.64s\"", name ? name : "");
	if ((r = store_txn_begin(p->st, &tx, err)) != 0)
		return r;
	if ((r = store_exec(p->st, tx, NULL, err, "DELETE FROM connectors WHERE "
	    "id = ?", "i", c->id)) < 0 || (r = audit(p, tx, "connector.delete",
	    actor, json_pack("{s:s}", "connector", c->name), err)) != 0) {
		store_txn_rollback(tx);
		return r;
	}
	if ((r = store_txn_commit(tx, err)) != 0)
		return r;
	TAILQ_REMOVE(&p->connectors, c, e);
	c->deleted = true;
	drop_pool(c, "connector was deleted", false);
	/* Dead connections awaiting cleanup free the connector last. */
	if (c->nconns == 0)
		connector_free(c);
	return 0;
}

json_t *
peer_connector_list(struct peer *p)
{
	struct connector	*c;
	struct outconn		*oc;
	json_t			*arr = json_array();

	TAILQ_FOREACH(c, &p->connectors, e) {
		int in_use = 0, ready = 0;

		TAILQ_FOREACH(oc, &c->conns, e) {
			if (oc->dead)
				continue;
			if (oc->cur != NULL)
				in_use++;
			else
				ready++;
		}
		json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:s,s:i,s:i,"
		    "s:i,s:i,s:s}", "name", c->name, "url", c->url, "state",
		    c->enabled ? "enabled" : "disabled", "auth", c->auth,
		    "in_use", in_use, "ready", ready, "max", c->max, "queued",
		    c->nqueued, "tls_peer", c->tls_peer));
	}
	return arr;
}

int
peer_connector_reset(struct peer *p, const char *name, struct sp_err *err)
{
	struct connector	*c;

	if ((c = find(p, name)) == NULL)
		return sp_err_set(err, SP_ERR_NOTFOUND, "no connector named "
		    "\"%.64s\"", name ? name : "");
	drop_pool(c, "connector was reset", false);
	SSL_CTX_free(c->ctx);
	c->ctx = NULL;
	SSL_SESSION_free(c->sess);
	c->sess = NULL;
	c->tls_peer[0] = '\0';
	log_info("peer: connector %s reset", c->name);
	return 0;
}

/* --- ping ----------------------------------------------------------------- */

struct pingjob {
	struct peer		*p;
	char			 name[PEER_NAME_MAX + 1];
	int			 count, parallel, launched, finished, ok;
	int			 max_in_use, max_queued;
	bool			 in_launch;
	struct timespec		 start;
	double			*rtt;
	json_t			*details;
	struct sp_err		 first_err;
	peer_ping_done		*done;
	void			*arg;
};

struct pingone {
	struct pingjob	*job;
	struct timespec	 t0;
};

static void	ping_launch(struct pingjob *);

static int
cmp_double(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
ping_finish(struct pingjob *j)
{
	json_t		*res;
	double		 med = 0, p99 = 0, elapsed;
	struct timespec	 now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	elapsed = (double)(now.tv_sec - j->start.tv_sec) * 1e3 +
	    (double)(now.tv_nsec - j->start.tv_nsec) / 1e6;
	if (j->ok > 0) {
		qsort(j->rtt, (size_t)j->ok, sizeof(double), cmp_double);
		med = j->rtt[j->ok / 2];
		/* Nearest rank: the smallest value >= 99% of the samples. */
		p99 = j->rtt[(size_t)ceil(j->ok * 0.99) - 1];
	}
	if (j->ok == 0) {
		json_decref(j->details);
		j->done(j->arg, NULL, j->first_err.code ? j->first_err.code :
		    SP_ERR_IO, &j->first_err);
	} else {
		res = json_pack("{s:s,s:i,s:i,s:i,s:f,s:f,s:f,s:f,s:i,s:i,s:o}",
		    "connector", j->name, "count", j->count, "ok", j->ok,
		    "failed", j->count - j->ok, "min_ms", j->rtt[0],
		    "median_ms", med, "p99_ms", p99, "max_ms",
		    j->rtt[j->ok - 1], "max_in_use", j->max_in_use,
		    "max_queued", j->max_queued, "pings", j->details);
		json_object_set_new(res, "elapsed_ms", json_real(elapsed));
		json_object_set_new(res, "per_second", json_real(elapsed > 0 ?
		    j->ok * 1e3 / elapsed : 0));
		if (j->first_err.code != 0)
			json_object_set_new(res, "first_error",
			    json_string(j->first_err.msg));
		j->done(j->arg, res, 0, NULL);
	}
	free(j->rtt);
	free(j);
}

static void
ping_sample(struct pingjob *j, struct connector *c)
{
	struct outconn	*oc;
	int		 in_use = 0;

	TAILQ_FOREACH(oc, &c->conns, e)
		if (oc->cur != NULL && !oc->dead)
			in_use++;
	if (in_use > j->max_in_use)
		j->max_in_use = in_use;
	if (c->nqueued > j->max_queued)
		j->max_queued = c->nqueued;
}

static void
ping_done_one(void *arg, int status, json_t *body, const char *kind,
    const struct sp_err *err)
{
	struct pingone		*po = arg;
	struct pingjob		*j = po->job;
	struct connector	*c = find(j->p, j->name);
	struct timespec		 t1;
	double			 ms;
	struct sp_err		 e = { 0 };

	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (double)(t1.tv_sec - po->t0.tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - po->t0.tv_nsec) / 1e6;
	free(po);
	j->finished++;
	if (status == 200 && json_is_true(json_object_get(body, "pong"))) {
		j->rtt[j->ok++] = ms;
		if (json_array_size(j->details) < PING_KEEP)
			json_array_append_new(j->details, json_pack("{s:f,s:s}",
			    "rtt_ms", ms, "connection", kind));
	} else if (j->first_err.code == 0) {
		const char *msg = json_string_value(json_object_get(
		    json_object_get(body, "error"), "message"));

		if (status != 0)
			sp_err_set(&e, status == 403 ? SP_ERR_DENIED :
			    SP_ERR_IO, "peer %s refused the ping (HTTP %d): %s",
			    j->name, status, msg ? msg : "no reason given");
		j->first_err = status != 0 ? e : *err;
	}
	if (c != NULL)
		ping_sample(j, c);
	/* A synchronous failure inside ping_launch(): it carries on. */
	if (j->in_launch)
		return;
	if (j->finished == j->count)
		ping_finish(j);
	else
		ping_launch(j);
}

static void
ping_fail(struct pingjob *j, const struct sp_err *err)
{
	j->finished++;
	if (j->first_err.code == 0)
		j->first_err = *err;
}

static void
ping_launch(struct pingjob *j)
{
	struct connector	*c;
	struct pingone		*po;
	struct sp_err		 err = { 0 };

	j->in_launch = true;
	while (j->launched < j->count &&
	    j->launched - j->finished < j->parallel) {
		j->launched++;
		if ((c = find(j->p, j->name)) == NULL) {
			sp_err_set(&err, SP_ERR_NOTFOUND, "connector %s is "
			    "gone", j->name);
			ping_fail(j, &err);
			continue;
		}
		if ((po = calloc(1, sizeof(*po))) == NULL) {
			sp_err_set(&err, SP_ERR_ALLOC, "out of memory");
			ping_fail(j, &err);
			continue;
		}
		po->job = j;
		clock_gettime(CLOCK_MONOTONIC, &po->t0);
		connector_request(c, EVHTTP_REQ_GET, "/ping", NULL,
		    ping_done_one, po);
		if ((c = find(j->p, j->name)) != NULL)
			ping_sample(j, c);
	}
	j->in_launch = false;
	if (j->finished == j->count)
		ping_finish(j);
}

void
peer_ping(struct peer *p, const char *name, int count, int parallel,
    peer_ping_done *done, void *arg)
{
	struct pingjob	*j;
	struct sp_err	 err = { 0 };

	if (find(p, name) == NULL) {
		sp_err_set(&err, SP_ERR_NOTFOUND, "no connector named "
		    "\"%.64s\"", name ? name : "");
		done(arg, NULL, err.code, &err);
		return;
	}
	if (count < 1 || count > PING_MAX || parallel < 1 || parallel > 1024) {
		sp_err_set(&err, SP_ERR_INVALID, "count must be 1..%d and "
		    "parallel 1..1024", PING_MAX);
		done(arg, NULL, err.code, &err);
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    (j->rtt = calloc((size_t)count, sizeof(double))) == NULL ||
	    (j->details = json_array()) == NULL) {
		if (j != NULL)
			free(j->rtt);
		free(j);
		sp_err_set(&err, SP_ERR_ALLOC, "out of memory");
		done(arg, NULL, err.code, &err);
		return;
	}
	j->p = p;
	snprintf(j->name, sizeof(j->name), "%s", name);
	j->count = count;
	j->parallel = parallel;
	j->done = done;
	j->arg = arg;
	clock_gettime(CLOCK_MONOTONIC, &j->start);
	ping_launch(j);
}
