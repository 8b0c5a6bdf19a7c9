/*
 * Requests through a connector: the public request API, the two lanes'
 * bounded queues, sending on a lane's connections, the per-request
 * deadline and the typed outcome of every request.
 *
 * A request is accepted (queued) or refused at once; an accepted one
 * completes exactly once, on the loop, never from inside
 * peer_connector_request(): it is sent at once if its lane has a
 * connection to spare, and a failure to send it is completed from an
 * event of the connector's own (ev_pump).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "crypto/dn.h"
#include "peer/connector_int.h"
#include "util/log.h"
#include "util/util.h"

static const char *const req_error_names[PEER_REQ__MAX] = {
	"ok", "transport", "timeout", "tls", "http", "bad reply",
	"queue full", "state",
};

const char *
peer_req_error_str(enum peer_req_error e)
{
	if ((int)e < 0 || e >= PEER_REQ__MAX)
		return "unknown";
	return req_error_names[e];
}

enum peer_req_error
peer_req_refusal(int rc)
{
	switch (rc) {
	case 0:
		return PEER_REQ_OK;
	case SP_ERR_LIMIT:
		return PEER_REQ_QUEUE_FULL;
	case SP_ERR_STATE:
	case SP_ERR_NOTFOUND:
		return PEER_REQ_STATE;
	default:
		return PEER_REQ_TRANSPORT;
	}
}

static int
lane_timeout_ms(enum peer_lane lane)
{
	return (lane == PEER_LANE_LONG ? PEER_LONG_DEADLINE :
	    PEER_REQUEST_DEADLINE) * 1000;
}

/* Completes rq (freed): done runs with what we know. */
static void
req_finish(struct outreq *rq, enum peer_req_error e, int status,
    const json_t *body, const char *kind, const struct sp_err *err)
{
	struct peer_response	res = { e, status, body, kind, err };
	struct sp_err		none = { 0 };

	if (e != PEER_REQ_OK && err == NULL)
		res.err = &none;
	rq->done(rq->arg, &res);
	free(rq->body);
	free(rq);
}

/* "20 s" or "250 ms", for messages. */
static void
fmt_timeout(int ms, char *buf, size_t len)
{
	if (ms % 1000 == 0)
		snprintf(buf, len, "%d s", ms / 1000);
	else
		snprintf(buf, len, "%d ms", ms);
}

/*
 * The inactivity timeout alone lets a server that trickles its response
 * hold a request for ever (hostile test F5): the whole response must
 * arrive within the request's timeout of sending it.
 */
void
connector_on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct outconn	*oc = arg;
	struct outreq	*rq = oc->cur;
	struct sp_err	 err = { 0 };
	char		 t[32];

	(void)fd;
	(void)what;
	if (rq == NULL || oc->req == NULL)
		return;
	oc->cur = NULL;
	/* Frees the request without calling on_response. */
	evhttp_cancel_request(oc->req);
	oc->req = NULL;
	conn_kill(oc);
	fmt_timeout(rq->timeout_ms, t, sizeof(t));
	sp_err_set(&err, SP_ERR_IO, "request to %s:%d timed out: no complete "
	    "response within %s", oc->c->host, oc->c->port, t);
	req_finish(rq, PEER_REQ_TIMEOUT, 0, NULL, oc->used ? "reused" : "full",
	    &err);
}

static void
on_req_error(enum evhttp_request_error e, void *arg)
{
	struct outreq	*rq = arg;

	rq->evreq_err = (int)e;
}

/* No response: say which of transport, TLS or timeout, and why. */
static enum peer_req_error
no_response(struct outconn *oc, struct outreq *rq, SSL *ssl,
    struct sp_err *err)
{
	struct connector	*c = oc->c;
	unsigned long		 e = bufferevent_get_openssl_error(oc->bev);
	long			 vr = ssl ? SSL_get_verify_result(ssl) :
				    X509_V_OK;
	char			 buf[160];
	enum peer_req_error	 r;

	if (vr != X509_V_OK) {
		/* Say which check failed, not just "verify failed". */
		sp_err_set(err, SP_ERR_IO, "connection to %s:%d failed: "
		    "server certificate: %s", c->host, c->port,
		    X509_verify_cert_error_string(vr));
		r = PEER_REQ_TLS;
	} else if (e != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		sp_err_set(err, SP_ERR_IO, "connection to %s:%d failed: %s",
		    c->host, c->port, buf);
		/*
		 * An OpenSSL library error is the handshake's (an alert, a
		 * refused certificate); a bare SSL_ERROR_SYSCALL that the
		 * bufferevent passes on is the socket's (refused, reset).
		 */
		r = ERR_GET_LIB(e) != 0 ? PEER_REQ_TLS : PEER_REQ_TRANSPORT;
	} else if (rq->evreq_err == EVREQ_HTTP_TIMEOUT) {
		sp_err_set(err, SP_ERR_IO, "connection to %s:%d timed out",
		    c->host, c->port);
		r = PEER_REQ_TIMEOUT;
	} else if (rq->evreq_err == EVREQ_HTTP_INVALID_HEADER ||
	    rq->evreq_err == EVREQ_HTTP_DATA_TOO_LONG) {
		sp_err_set(err, SP_ERR_IO, "%s:%d sent a malformed or "
		    "oversized reply", c->host, c->port);
		r = PEER_REQ_BAD_REPLY;
	} else {
		sp_err_set(err, SP_ERR_IO, "connection to %s:%d failed or "
		    "timed out", c->host, c->port);
		r = PEER_REQ_TRANSPORT;
	}
	ERR_clear_error();
	return r;
}

/* Keeps a session to resume, and who the server was. */
static void
note_tls(struct connector *c, SSL *ssl, const char *kind)
{
	X509	*peer;

	if (ssl == NULL)
		return;
	if ((peer = SSL_get0_peer_certificate(ssl)) != NULL) {
		char *s = dn_print(X509_get_subject_name(peer));

		snprintf(c->tls_peer, sizeof(c->tls_peer), "%s", s ? s : "?");
		free(s);
	}
	/* TLS 1.3 tickets arrive after the handshake, so take it once a
	 * response came back. */
	if (c->sess == NULL || strcmp(kind, "full") == 0) {
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
	const char		*kind, *msg;
	enum peer_req_error	 e = PEER_REQ_OK;
	struct evbuffer		*in;
	unsigned char		*b = NULL;
	size_t			 len;
	int			 status = req ?
				    evhttp_request_get_response_code(req) : 0;

	oc->cur = NULL;
	oc->req = NULL;
	evtimer_del(oc->deadline);
	kind = oc->used ? "reused" : (ssl && SSL_session_reused(ssl)) ?
	    "resumed" : "full";
	if (status == 0) {
		e = no_response(oc, rq, ssl, &err);
		conn_kill(oc);
		/*
		 * A kept-alive connection the peer closed as we reused it (its
		 * idle timeout raced our request): nothing was answered, so an
		 * idempotent request goes once more, first in line, on a fresh
		 * connection, as HTTP clients do (RFC 9112 9.3.1).
		 */
		if (oc->used && !rq->retried && rq->method != EVHTTP_REQ_POST &&
		    (e == PEER_REQ_TRANSPORT || e == PEER_REQ_TLS)) {
			struct lane	*ln = &c->lanes[rq->lane];

			log_debug("peer: %s: %s; sending %s again on a new "
			    "connection", c->name, err.msg, rq->path);
			rq->retried = true;
			rq->oc = NULL;
			rq->evreq_err = -1;
			TAILQ_INSERT_HEAD(&ln->queue, rq, q);
			ln->nqueued++;
			connector_pump_later(c);
			return;
		}
		req_finish(rq, e, 0, NULL, kind, &err);
		return;
	}
	oc->used = true;
	note_tls(c, ssl, kind);
	in = evhttp_request_get_input_buffer(req);
	if ((len = evbuffer_get_length(in)) > 0)
		b = evbuffer_pullup(in, (ev_ssize_t)len);
	if (b != NULL && peer_body_decode(b, len, &body, &err) != 0) {
		body = NULL;
		if (status >= 200 && status < 300)
			e = PEER_REQ_BAD_REPLY;
	}
	if (status < 200 || status >= 300) {
		/* The peer's own reason, from its JSON error, if any. */
		msg = json_string_value(json_object_get(json_object_get(body,
		    "error"), "message"));
		sp_err_clear(&err);
		sp_err_set(&err, status == 403 ? SP_ERR_DENIED : status == 404 ?
		    SP_ERR_NOTFOUND : SP_ERR_IO, "%s:%d answered HTTP %d: %s",
		    c->host, c->port, status, msg ? msg : "no reason given");
		e = PEER_REQ_HTTP;
	}
	/*
	 * done may reset, edit or delete the connector: the pool then kills
	 * this connection (freed later) instead of freeing it under evhttp.
	 */
	oc->in_cb = true;
	req_finish(rq, e, status, body, kind, &err);
	oc->in_cb = false;
	json_decref(body);
	if (!oc->dead)
		connector_pump(c);
}

static int
send_on(struct outconn *oc, struct outreq *rq, struct sp_err *err)
{
	struct evhttp_request	*req;
	struct evkeyvalq	*h;
	char			 hostport[300];
	struct timeval		 tv = { rq->timeout_ms / 1000,
				    (rq->timeout_ms % 1000) * 1000 };

	if ((req = evhttp_request_new(on_response, rq)) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	evhttp_request_set_error_cb(req, on_req_error);
	h = evhttp_request_get_output_headers(req);
	snprintf(hostport, sizeof(hostport), "%s:%d", oc->c->host,
	    oc->c->port);
	if (evhttp_add_header(h, "Host", hostport) != 0 ||
	    evhttp_add_header(h, "Connection", "keep-alive") != 0 ||
	    (rq->body != NULL && (evhttp_add_header(h, "Content-Type",
	    "application/json") != 0 ||
	    evbuffer_add(evhttp_request_get_output_buffer(req), rq->body,
	    strlen(rq->body)) != 0))) {
		evhttp_request_free(req);
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	}
	/*
	 * A long call is silent while it hangs: its connection's inactivity
	 * timeout must not end it before its own deadline does.
	 */
	if (oc->lane == PEER_LANE_LONG) {
		struct timeval	idle = { tv.tv_sec + 1, tv.tv_usec };

		evhttp_connection_set_timeout_tv(oc->evcon, &idle);
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
	evtimer_add(oc->deadline, &tv);
	/* The socket exists once the request started connecting. */
	nodelay(bufferevent_getfd(oc->bev));
	return 0;
}

/* Completes rq with e from ev_pump, not from the caller's stack. */
static void
fail_later(struct connector *c, struct outreq *rq, enum peer_req_error e,
    const struct sp_err *err)
{
	rq->fail = e;
	rq->ferr = *err;
	TAILQ_INSERT_TAIL(&c->failed, rq, q);
	event_active(c->ev_pump, EV_TIMEOUT, 1);
}

static void
flush_failed(struct connector *c)
{
	struct outreq	*rq;

	while ((rq = TAILQ_FIRST(&c->failed)) != NULL) {
		TAILQ_REMOVE(&c->failed, rq, q);
		req_finish(rq, rq->fail, 0, NULL, "none", &rq->ferr);
	}
}

/* Hands a lane's queued requests to its ready connections, opening new
 * ones up to the lane's max. */
static void
pump_lane(struct connector *c, enum peer_lane lane)
{
	struct lane	*ln = &c->lanes[lane];
	struct outreq	*rq;
	struct outconn	*oc;
	struct sp_err	 err = { 0 };

	while ((rq = TAILQ_FIRST(&ln->queue)) != NULL) {
		TAILQ_FOREACH(oc, &c->conns, e)
			if (oc->lane == lane && oc->cur == NULL && !oc->dead)
				break;
		if (oc == NULL && ln->nconns < conn_lane_max(c, lane) &&
		    (oc = conn_new(c, lane, &err)) == NULL) {
			TAILQ_REMOVE(&ln->queue, rq, q);
			ln->nqueued--;
			fail_later(c, rq, PEER_REQ_TLS, &err);
			sp_err_clear(&err);
			continue;
		}
		if (oc == NULL)
			return;		/* all busy: stays queued */
		TAILQ_REMOVE(&ln->queue, rq, q);
		ln->nqueued--;
		sp_err_clear(&err);
		if (send_on(oc, rq, &err) != 0) {
			fail_later(c, rq, PEER_REQ_TRANSPORT, &err);
			sp_err_clear(&err);
		}
	}
}

/* A lane's max was lowered: its idle connections beyond it close. */
static void
trim_lane(struct connector *c, enum peer_lane lane)
{
	struct outconn	*oc;
	int		 live = 0, max = conn_lane_max(c, lane);

	TAILQ_FOREACH(oc, &c->conns, e)
		if (oc->lane == lane && !oc->dead)
			live++;
	TAILQ_FOREACH(oc, &c->conns, e) {
		if (live <= max)
			break;
		if (oc->lane == lane && !oc->dead && oc->cur == NULL) {
			conn_kill(oc);
			live--;
		}
	}
}

void
connector_pump(struct connector *c)
{
	if (c->deleted || c->dropping)
		return;
	trim_lane(c, PEER_LANE_LONG);
	if (!TAILQ_EMPTY(&c->lanes[PEER_LANE_NORMAL].queue) ||
	    !TAILQ_EMPTY(&c->lanes[PEER_LANE_LONG].queue))
		connector_refresh_trust(c);
	for (int i = 0; i < PEER_LANE__MAX; i++)
		pump_lane(c, (enum peer_lane)i);
}

void
connector_on_pump(evutil_socket_t fd, short what, void *arg)
{
	struct connector	*c = arg;

	(void)fd;
	(void)what;
	flush_failed(c);
	connector_pump(c);
}

void
connector_pump_later(struct connector *c)
{
	event_active(c->ev_pump, EV_TIMEOUT, 1);
}

static int
method_parse(const char *m, enum evhttp_cmd_type *out)
{
	static const struct {
		const char		*name;
		enum evhttp_cmd_type	 type;
	} methods[] = {
		{ "GET", EVHTTP_REQ_GET }, { "POST", EVHTTP_REQ_POST },
		{ "PUT", EVHTTP_REQ_PUT }, { "DELETE", EVHTTP_REQ_DELETE },
	};

	for (size_t i = 0; m != NULL && i < sizeof(methods) /
	    sizeof(methods[0]); i++)
		if (strcmp(m, methods[i].name) == 0) {
			*out = methods[i].type;
			return 0;
		}
	return -1;
}

/* A path below PEER_PREFIX: '/' then [A-Za-z0-9_./-], no "..". */
static bool
path_valid(const char *p)
{
	size_t	len;

	if (p == NULL || p[0] != '/' || (len = strlen(p)) > PEER_PATH_MAX ||
	    strstr(p, "..") != NULL || strstr(p, "//") != NULL)
		return false;
	for (; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' ||
		    *p == '-' || *p == '/'))
			return false;
	return true;
}

int
peer_connector_request(struct peer *p, const char *name,
    const struct peer_request *in, peer_request_done *done, void *arg,
    struct sp_err *err)
{
	struct connector	*c;
	struct outreq		*rq;
	struct lane		*ln;
	enum evhttp_cmd_type	 method;

	if (in == NULL || done == NULL)
		return sp_err_set(err, SP_ERR_INVALID, "no request");
	if ((c = connector_find(p, name)) == NULL)
		return sp_err_set(err, SP_ERR_NOTFOUND, "no connector named "
		    "\"%.64s\"", name ? name : "");
	if (method_parse(in->method, &method) != 0)
		return sp_err_set(err, SP_ERR_INVALID, "method must be GET, "
		    "POST, PUT or DELETE");
	if (!path_valid(in->path))
		return sp_err_set(err, SP_ERR_INVALID, "request path must be "
		    "'/' and at most %d characters of [A-Za-z0-9_./-]",
		    PEER_PATH_MAX);
	if (in->timeout_ms < 0 || in->timeout_ms > PEER_TIMEOUT_MAX_MS)
		return sp_err_set(err, SP_ERR_INVALID, "request timeout must "
		    "be 0..%d ms", PEER_TIMEOUT_MAX_MS);
	if ((int)in->lane < 0 || in->lane >= PEER_LANE__MAX)
		return sp_err_set(err, SP_ERR_INVALID, "no such lane");
	if (!p->outgoing_enabled)
		return sp_err_set(err, SP_ERR_STATE, "outgoing peer "
		    "connections are disabled on this node");
	if (!c->enabled)
		return sp_err_set(err, SP_ERR_STATE, "connector %s is disabled",
		    c->name);
	if (c->dropping || c->deleted)
		return sp_err_set(err, SP_ERR_STATE, "connector %s is being "
		    "reset", c->name);
	ln = &c->lanes[in->lane];
	if (ln->nqueued >= ln->qmax)
		return sp_err_set(err, SP_ERR_LIMIT, "connector %s: %d %s "
		    "requests are waiting already (all %d connections busy)",
		    c->name, ln->nqueued, in->lane == PEER_LANE_LONG ? "long" :
		    "ordinary", conn_lane_max(c, in->lane));
	if ((rq = calloc(1, sizeof(*rq))) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	rq->c = c;
	rq->method = method;
	rq->lane = in->lane;
	rq->evreq_err = -1;
	rq->timeout_ms = in->timeout_ms ? in->timeout_ms :
	    lane_timeout_ms(in->lane);
	/* base_path is always PEER_PREFIX (url_parse): this fits. */
	snprintf(rq->path, sizeof(rq->path), "%s%s", c->base_path, in->path);
	if (in->body != NULL && (rq->body = json_dumps(in->body,
	    JSON_COMPACT)) == NULL) {
		free(rq);
		return sp_err_set(err, SP_ERR_ALLOC, "cannot serialise the "
		    "request body");
	}
	rq->done = done;
	rq->arg = arg;
	TAILQ_INSERT_TAIL(&ln->queue, rq, q);
	ln->nqueued++;
	connector_pump(c);
	return 0;
}

static void
fail_queue(struct connector *c, const struct sp_err *err)
{
	struct outreq	*rq;

	flush_failed(c);
	for (int i = 0; i < PEER_LANE__MAX; i++) {
		struct lane	*ln = &c->lanes[i];

		while ((rq = TAILQ_FIRST(&ln->queue)) != NULL) {
			TAILQ_REMOVE(&ln->queue, rq, q);
			ln->nqueued--;
			req_finish(rq, PEER_REQ_STATE, 0, NULL, "none", err);
		}
	}
}

/*
 * Dead connections wait for their scheduled cleanup, unless all
 * (shutdown: the loop has stopped and will not run it).
 */
void
connector_drop_pool(struct connector *c, const char *why, bool all)
{
	struct outconn	*oc, *next;
	struct sp_err	 err = { 0 };

	c->dropping = true;
	sp_err_set(&err, SP_ERR_STATE, "%s", why);
	fail_queue(c, &err);
	for (oc = TAILQ_FIRST(&c->conns); oc != NULL; oc = next) {
		struct outreq *rq = oc->cur;

		next = TAILQ_NEXT(oc, e);
		if (oc->dead && !all)
			continue;
		if (oc->in_cb && !all) {
			conn_kill(oc);
			continue;
		}
		oc->cur = NULL;
		if (rq != NULL)
			req_finish(rq, PEER_REQ_STATE, 0, NULL, "none", &err);
		/* Freeing the connection frees its evhttp request too. */
		conn_free_now(oc);
	}
	c->dropping = false;
}

int
peer_connector_lane_stats(struct peer *p, const char *name,
    enum peer_lane lane, struct peer_lane_stats *out, struct sp_err *err)
{
	struct connector	*c;
	struct outconn		*oc;

	memset(out, 0, sizeof(*out));
	if ((c = connector_find(p, name)) == NULL)
		return sp_err_set(err, SP_ERR_NOTFOUND, "no connector named "
		    "\"%.64s\"", name ? name : "");
	if ((int)lane < 0 || lane >= PEER_LANE__MAX)
		return sp_err_set(err, SP_ERR_INVALID, "no such lane");
	TAILQ_FOREACH(oc, &c->conns, e) {
		if (oc->dead || oc->lane != lane)
			continue;
		if (oc->cur != NULL)
			out->in_use++;
		else
			out->ready++;
	}
	out->max = conn_lane_max(c, lane);
	out->queued = c->lanes[lane].nqueued;
	out->queue_max = c->lanes[lane].qmax;
	return 0;
}

int
peer_connector_lane_set(struct peer *p, const char *name, enum peer_lane lane,
    int max_conns, int queue_max, struct sp_err *err)
{
	struct connector	*c;

	if ((c = connector_find(p, name)) == NULL)
		return sp_err_set(err, SP_ERR_NOTFOUND, "no connector named "
		    "\"%.64s\"", name ? name : "");
	if ((int)lane < 0 || lane >= PEER_LANE__MAX)
		return sp_err_set(err, SP_ERR_INVALID, "no such lane");
	if (max_conns < 0 || max_conns > PEER_CONNECTOR_MAX ||
	    (lane == PEER_LANE_NORMAL && max_conns != 0))
		return sp_err_set(err, SP_ERR_INVALID, "a long lane has 1..%d "
		    "connections; the ordinary lane's is the connector's max",
		    PEER_CONNECTOR_MAX);
	if (queue_max < 0 || queue_max > PEER_QUEUE_MAX)
		return sp_err_set(err, SP_ERR_INVALID, "queue must be 1..%d",
		    PEER_QUEUE_MAX);
	if (max_conns > 0)
		c->lanes[lane].max = max_conns;
	if (queue_max > 0)
		c->lanes[lane].qmax = queue_max;
	connector_pump_later(c);
	return 0;
}
