#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "crypto/dn.h"
#include "peer/peer_int.h"
#include "util/log.h"
#include "util/util.h"

#define FLUSH_SECONDS	1
#define RETRY_SECONDS	5

/* --- TLS server context ------------------------------------------------- */

/* A context with no certificate: every handshake fails (fail closed). */
static SSL_CTX *
refusing_ctx(void)
{
	SSL_CTX	*ctx = SSL_CTX_new(TLS_server_method());

	if (ctx != NULL)
		SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	return ctx;
}

/* Logs why a client certificate was refused; never changes the verdict. */
static int
log_refusal(int ok, X509_STORE_CTX *vc)
{
	X509	*c;
	char	*subj = NULL, *iss = NULL;

	if (ok)
		return ok;
	if ((c = X509_STORE_CTX_get_current_cert(vc)) != NULL) {
		subj = dn_print(X509_get_subject_name(c));
		iss = dn_print(X509_get_issuer_name(c));
	}
	log_warnx("peer: refused client certificate subject \"%s\" issuer "
	    "\"%s\" (chain depth %d): %s", subj ? subj : "?", iss ? iss : "?",
	    X509_STORE_CTX_get_error_depth(vc),
	    X509_verify_cert_error_string(X509_STORE_CTX_get_error(vc)));
	free(subj);
	free(iss);
	return ok;
}

static SSL_CTX *
server_ctx_new(struct peer *p, struct sp_err *err)
{
	SSL_CTX		*ctx = NULL;
	X509		*cert = NULL;
	STACK_OF(X509)	*chain = NULL;
	EVP_PKEY	*key = NULL;
	X509_STORE	*trust = NULL;
	static const unsigned char sid[] = "sallyport-peer";

	if (p->incoming_kb[0] == '\0') {
		sp_err_set(err, SP_ERR_STATE, "no key binding chosen for the "
		    "peer listener (sallyport peer incoming keybinding NAME)");
		return NULL;
	}
	if (p->hooks.identity(p->hooks.arg, p->incoming_kb, &cert, &chain,
	    &key, err) != 0 || p->hooks.trust(p->hooks.arg, &trust, err) != 0)
		goto out;
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    SSL_CTX_use_certificate(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1 ||
	    !SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1)) {
		sp_err_ossl(err, SP_ERR_CRYPTO, "peer listener TLS context");
		SSL_CTX_free(ctx);
		ctx = NULL;
		goto out;
	}
	for (int i = 0; i < sk_X509_num(chain); i++)
		if (!SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i)))
			log_warnx("peer: cannot add chain certificate %d", i);
	/*
	 * Client certificates are required and verified against the trusted
	 * peer CAs, for the TLS client purpose. The callback only logs a
	 * refusal; it returns OpenSSL's verdict unchanged, so nothing turns
	 * a verification error into success.
	 */
	X509_STORE_set_purpose(trust, X509_PURPOSE_SSL_CLIENT);
	SSL_CTX_set_cert_store(ctx, trust);
	trust = NULL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
	    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, log_refusal);
	SSL_CTX_set_verify_depth(ctx, 8);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_timeout(ctx, 3600);
 out:
	X509_free(cert);
	sk_X509_pop_free(chain, X509_free);
	EVP_PKEY_free(key);
	X509_STORE_free(trust);
	ERR_clear_error();
	return ctx;
}

/*
 * The context for a new connection: rebuilt when the identity or the trust
 * anchors changed, so a new binding or trust takes effect without a
 * restart; existing connections keep theirs.
 */
static SSL_CTX *
server_ctx(struct peer *p)
{
	struct sp_err	 err = { 0 };
	uint64_t	 gen = p->hooks.generation(p->hooks.arg);
	SSL_CTX		*ctx;

	if (p->srv_ctx != NULL && p->srv_gen == gen && !p->srv_dirty)
		return p->srv_ctx;
	if (p->srv_ctx == NULL && !p->srv_dirty && p->srv_gen == gen &&
	    sp_now() < p->srv_retry)
		return p->refuse_ctx;
	p->srv_gen = gen;
	p->srv_dirty = false;
	if ((ctx = server_ctx_new(p, &err)) == NULL) {
		log_warnx("peer: listener refuses TLS: %s", err.msg);
		p->srv_retry = sp_now() + RETRY_SECONDS;
		SSL_CTX_free(p->srv_ctx);
		p->srv_ctx = NULL;
		return p->refuse_ctx;
	}
	SSL_CTX_free(p->srv_ctx);
	p->srv_ctx = ctx;
	log_info("peer: listener identity is key binding %s", p->incoming_kb);
	return ctx;
}

static struct bufferevent *
on_bev(struct event_base *base, void *arg)
{
	struct peer	*p = arg;
	SSL		*ssl;

	/*
	 * Out of memory refuses this connection only. evhttp then falls back
	 * to a plain socket; on_request() answers a connection without TLS
	 * 401 and closes it, so nothing is served without a certificate.
	 */
	if ((ssl = SSL_new(server_ctx(p))) == NULL) {
		log_warnx("peer: SSL_new failed: refusing a connection");
		ERR_clear_error();
		return NULL;
	}
	return bufferevent_openssl_socket_new(base, -1, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS);
}

/* --- responses ---------------------------------------------------------- */

static void
reply(struct evhttp_request *req, int status, json_t *doc)
{
	struct evbuffer	*buf = evbuffer_new();
	char		*s = json_dumps(doc, JSON_COMPACT);

	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "application/json");
	if (buf != NULL && s != NULL)
		evbuffer_add(buf, s, strlen(s));
	evhttp_send_reply(req, status, NULL, buf);
	evbuffer_free(buf);
	free(s);
	json_decref(doc);
}

static void
reply_err(struct evhttp_request *req, int status, const char *code,
    const char *msg)
{
	reply(req, status, json_pack("{s:{s:s,s:s}}", "error", "code", code,
	    "message", msg));
}

#define REFUSALS_LOGGED_PER_SEC	10

/*
 * A refused request (401/403) is logged with the client's address, at
 * most REFUSALS_LOGGED_PER_SEC lines a second (loop thread only), so a
 * flood of refused requests cannot fill the disk; the lines left out are
 * counted and the count goes with the next line logged.
 */
static void
log_refused(struct evhttp_request *req, int status, const char *code,
    const char *msg)
{
	static time_t		 sec;
	static int		 n;
	static unsigned long	 skipped;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct timespec		 now;
	char			*host = NULL, clean[256];
	ev_uint16_t		 port = 0;
	size_t			 i;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec != sec) {
		sec = now.tv_sec;
		n = 0;
	}
	if (n >= REFUSALS_LOGGED_PER_SEC) {
		skipped++;
		return;
	}
	n++;
	if (evcon != NULL)
		evhttp_connection_get_peer(evcon, &host, &port);
	/* Messages may quote a certificate's names: no control bytes. */
	for (i = 0; msg[i] != '\0' && i < sizeof(clean) - 1; i++)
		clean[i] = (unsigned char)msg[i] < 0x20 || msg[i] == 0x7f ?
		    '?' : msg[i];
	clean[i] = '\0';
	if (skipped > 0)
		log_warnx("peer: refused %s:%u: %d %s: %s (and %lu refusals "
		    "not logged)", host ? host : "?", (unsigned)port, status,
		    code, clean, skipped);
	else
		log_warnx("peer: refused %s:%u: %d %s: %s", host ? host : "?",
		    (unsigned)port, status, code, clean);
	skipped = 0;
}

/* Logs (rate limited) and answers a refusal. */
static void
refuse_req(struct evhttp_request *req, int status, const char *code,
    const char *msg)
{
	log_refused(req, status, code, msg);
	reply_err(req, status, code, msg);
}

/* --- endpoints ---------------------------------------------------------- */

enum route { R_PING, R_INFO, R__MAX };

/*
 * Every request needs the base rule, checked before routing; a route lists
 * only the rules it needs on top (none so far). The authorization cache
 * keys the base decision with R_BASE, never a route's number.
 */
#define R_BASE	(-1)
static const char *const base_rules[] = { "/peerincoming" };

static const struct {
	const char		*path;
	int			 methods;
	const char *const	*rules;
	size_t			 nrules;
} routes[R__MAX] = {
	[R_PING] = { PEER_PREFIX "/ping", EVHTTP_REQ_GET | EVHTTP_REQ_POST,
	    NULL, 0 },
	[R_INFO] = { PEER_PREFIX "/info", EVHTTP_REQ_GET, NULL, 0 },
};

static void
ep_ping(struct peer *p, struct evhttp_request *req, json_t *body)
{
	struct sp_err	 err = { 0 };
	const char	*nonce = NULL;
	char		 ts[32];
	json_t		*doc;

	if (body != NULL && peer_ping_decode(body, &nonce, &err) != 0) {
		reply_err(req, 400, "invalid", err.msg);
		return;
	}
	sp_time_fmt(sp_now(), ts, sizeof(ts));
	doc = json_pack("{s:b,s:s,s:s}", "pong", 1, "node", p->node, "time",
	    ts);
	if (nonce != NULL)
		json_object_set_new(doc, "nonce", json_string(nonce));
	reply(req, 200, doc);
}

static void
ep_info(struct peer *p, struct evhttp_request *req)
{
	reply(req, 200, json_pack("{s:s,s:s,s:s,s:[s]}", "node", p->node,
	    "software", "sallyport", "version", SP_VERSION, "services",
	    "peer"));
}

/* --- authorization with a per-certificate cache ------------------------- */

static const struct authz_entry *
authorize(struct peer *p, X509 *cert, const char *fp, int route)
{
	struct authz_entry	*e;
	struct sp_err		 err = { 0 };
	uint64_t		 gen = authz_generation(p->az);
	time_t			 now = sp_now();
	int			 r;

	for (size_t i = 0; i < AUTHZ_CACHE_SIZE; i++) {
		e = &p->cache[i];
		if (e->route == route && e->gen == gen && e->expires > now &&
		    strcmp(e->fp, fp) == 0)
			return e;
	}
	e = &p->cache[p->cache_next];
	p->cache_next = (p->cache_next + 1) % AUTHZ_CACHE_SIZE;
	memset(e, 0, sizeof(*e));
	if (route == R_BASE)
		r = authz_check(p->az, cert, base_rules,
		    sizeof(base_rules) / sizeof(base_rules[0]),
		    e->role, &err);
	else
		r = authz_check(p->az, cert, routes[route].rules,
		    routes[route].nrules, e->role, &err);
	e->ok = r == 0;
	snprintf(e->msg, sizeof(e->msg), "%s", err.msg);
	snprintf(e->fp, sizeof(e->fp), "%s", fp);
	e->route = route;
	e->gen = gen;
	e->expires = now + PEER_AUTHZ_CACHE_TTL;
	return e;
}

/* --- incoming connections list: batched, written once a second ---------- */

/* A batch of records on its way to the database (on a worker). */
struct rec_job {
	struct store		*st;
	struct authz		*az;
	size_t			 n;
	struct incoming_rec	 recs[];
};

static void
rec_job_write(void *arg)
{
	struct store_txn	*tx = NULL;
	struct rec_job	*j = arg;
	struct sp_err	 err = { 0 };
	size_t		 i;

	if (store_txn_begin(j->st, &tx, &err) != 0)
		goto out;
	for (i = 0; i < j->n; i++)
		if (authz_incoming_record(j->az, tx, j->recs[i].cert,
		    j->recs[i].address, j->recs[i].role, &err) != 0)
			break;
	if (i < j->n)
		store_txn_rollback(tx);
	else if (store_txn_commit(tx, &err) != 0)
		sp_err_set(&err, SP_ERR_DB, "commit failed");
 out:
	if (err.msg[0] != '\0')
		log_warnx("peer: recording incoming connections: %s", err.msg);
}

static void
rec_job_free(void *arg)
{
	struct rec_job	*j = arg;

	for (size_t i = 0; i < j->n; i++)
		X509_free(j->recs[i].cert);
	free(j);
}

/*
 * Hands the gathered records to a worker, so the loop never waits for
 * the database; written in place when there is no pool (shutdown).
 */
static void
flush_incoming(evutil_socket_t fd, short what, void *arg)
{
	struct peer	*p = arg;
	struct rec_job	*j;

	(void)fd;
	(void)what;
	if (p->nrecs == 0)
		return;
	p->last_flush = sp_now();
	if ((j = malloc(sizeof(*j) + p->nrecs * sizeof(j->recs[0]))) == NULL) {
		log_warnx("peer: out of memory recording incoming connections");
		for (size_t i = 0; i < p->nrecs; i++)
			X509_free(p->recs[i].cert);
		p->nrecs = 0;
		return;
	}
	j->st = p->st;
	j->az = p->az;
	j->n = p->nrecs;
	memcpy(j->recs, p->recs, p->nrecs * sizeof(j->recs[0]));
	p->nrecs = 0;
	if (p->pool == NULL ||
	    pool_submit(p->pool, rec_job_write, rec_job_free, j) != 0) {
		rec_job_write(j);
		rec_job_free(j);
	}
}

static void
note_incoming(struct peer *p, SSL *ssl, X509 *cert,
    struct evhttp_connection *evcon, const char *role)
{
	struct incoming_rec	*rec;
	char			*host = NULL;
	ev_uint16_t		 port = 0;
	struct timeval		 tv = { FLUSH_SECONDS, 0 };

	/* Once per TLS connection. */
	if (SSL_get_app_data(ssl) != NULL)
		return;
	SSL_set_app_data(ssl, p);
	nodelay(bufferevent_getfd(evhttp_connection_get_bufferevent(evcon)));
	if (p->nrecs == INCOMING_BATCH_MAX)
		flush_incoming(-1, 0, p);
	rec = &p->recs[p->nrecs];
	if (!X509_up_ref(cert))
		return;
	rec->cert = cert;
	evhttp_connection_get_peer(evcon, &host, &port);
	snprintf(rec->address, sizeof(rec->address), "%s:%u",
	    host ? host : "?", (unsigned)port);
	snprintf(rec->role, sizeof(rec->role), "%s", role);
	p->nrecs++;
	/*
	 * Sparse connections are written at once (next loop turn), so an
	 * operator sees them right away; a burst is written once a second.
	 */
	if (!evtimer_pending(p->ev_flush, NULL)) {
		if (sp_now() > p->last_flush)
			tv.tv_sec = 0;
		evtimer_add(p->ev_flush, &tv);
	}
}

/* --- request handling ---------------------------------------------------- */

/* Small request/response exchanges must not wait for delayed ACKs. */
void
nodelay(evutil_socket_t fd)
{
	int	one = 1;

	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
}

/* RFC 9110 5.6.2: a field name is a token. */
static bool
field_name_ok(const char *k)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~";

	if (*k == '\0')
		return false;
	for (; *k != '\0'; k++)
		if (!(((*k | 0x20) >= 'a' && (*k | 0x20) <= 'z') ||
		    (*k >= '0' && *k <= '9') || strchr(tchar, *k) != NULL))
			return false;
	return true;
}

/*
 * Request smuggling (RFC 9112 6.1, 6.3, 5.1): evhttp frames a body by
 * exactly "Content-Length" and "Transfer-Encoding: chunked"; a name it
 * does not recognise ("Content-Length : 5") leaves the body to be read as
 * the next request, and a proxy in front may frame it otherwise. So: every
 * field name must be a token (400), both framings or two of either is 400,
 * and a Transfer-Encoding other than "chunked" (the only coding evhttp
 * decodes) is 501. Returns 0 when the framing is sound.
 */
static int
framing_check(struct evhttp_request *req, const char **code,
    const char **msg)
{
	struct evkeyvalq	*h = evhttp_request_get_input_headers(req);
	struct evkeyval		*kv;
	const char		*te_val = NULL;
	int			 cl = 0, te = 0;

	TAILQ_FOREACH(kv, h, next) {
		if (!field_name_ok(kv->key)) {
			*code = "invalid";
			*msg = "malformed header field name";
			return 400;
		}
		if (strcasecmp(kv->key, "Content-Length") == 0)
			cl++;
		else if (strcasecmp(kv->key, "Transfer-Encoding") == 0) {
			te++;
			te_val = kv->value;
		}
	}
	if (cl > 1 || te > 1 || (cl && te)) {
		*code = "invalid";
		*msg = "conflicting Content-Length / Transfer-Encoding headers";
		return 400;
	}
	if (te && strcasecmp(te_val, "chunked") != 0) {
		*code = "not_implemented";
		*msg = "only Transfer-Encoding: chunked is supported";
		return 501;
	}
	return 0;
}

/*
 * A keep-alive connection or a resumed session outlives the checks of the
 * handshake that authenticated it: the certificate's validity period is
 * checked on every request, and the whole chain is verified again against
 * the current trust anchors and CRLs when they changed since the
 * handshake, or (force) on a resumed session's first request. A peer
 * whose certificate expired or was revoked is cut off at its next request.
 */
static bool
still_trusted(struct peer *p, SSL *ssl, X509 *cert, bool force,
    struct sp_err *err)
{
	SSL_CTX		*cur = server_ctx(p);
	X509_STORE_CTX	*vc;
	bool		 ok;

	/* This odd API returns -1 for earlier, 1 for later, 0 on error. */
	if (X509_cmp_current_time(X509_get0_notBefore(cert)) != -1 ||
	    X509_cmp_current_time(X509_get0_notAfter(cert)) != 1) {
		sp_err_set(err, SP_ERR_DENIED, "client certificate is expired "
		    "or not yet valid");
		return false;
	}
	if (SSL_get_SSL_CTX(ssl) == cur && !force)
		return true;
	if (cur == p->refuse_ctx) {
		sp_err_set(err, SP_ERR_STATE, "the listener's identity is no "
		    "longer usable");
		return false;
	}
	if ((vc = X509_STORE_CTX_new()) == NULL ||
	    !X509_STORE_CTX_init(vc, SSL_CTX_get_cert_store(cur), cert,
	    SSL_get_peer_cert_chain(ssl))) {
		X509_STORE_CTX_free(vc);
		sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		return false;
	}
	X509_STORE_CTX_set_purpose(vc, X509_PURPOSE_SSL_CLIENT);
	ok = X509_verify_cert(vc) == 1;
	if (!ok)
		sp_err_set(err, SP_ERR_DENIED, "client certificate no longer "
		    "verifies: %s", X509_verify_cert_error_string(
		    X509_STORE_CTX_get_error(vc)));
	X509_STORE_CTX_free(vc);
	ERR_clear_error();
	return ok;
}

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct peer			*p = arg;
	struct evhttp_connection	*evcon = evhttp_request_get_connection(req);
	SSL				*ssl;
	X509				*cert;
	const struct evhttp_uri		*uri = evhttp_request_get_evhttp_uri(req);
	const char			*path = uri ? evhttp_uri_get_path(uri) : NULL;
	const struct authz_entry	*e;
	struct evbuffer			*in;
	json_t				*body = NULL;
	struct sp_err			 err = { 0 };
	const char			*code, *msg;
	char				 fp[65];
	int				 route, status;
	size_t				 len;

	ssl = bufferevent_openssl_get_ssl(evhttp_connection_get_bufferevent(
	    evcon));
	if (ssl == NULL || (cert = SSL_get0_peer_certificate(ssl)) == NULL) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Connection", "close");
		refuse_req(req, 401, "no_certificate", "a client certificate "
		    "is required");
		return;
	}
	if (!still_trusted(p, ssl, cert, SSL_get_app_data(ssl) == NULL &&
	    SSL_session_reused(ssl), &err)) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Connection", "close");
		refuse_req(req, 403, "untrusted", err.msg);
		return;
	}
	if ((status = framing_check(req, &code, &msg)) != 0) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Connection", "close");
		reply_err(req, status, code, msg);
		return;
	}
	if (peer_fingerprint(cert, fp) != 0) {
		/* No cache key, no decision: never a shared fallback key. */
		log_warnx("peer: cannot compute a client certificate's "
		    "fingerprint");
		ERR_clear_error();
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Connection", "close");
		reply_err(req, 500, "internal", "cannot fingerprint the client "
		    "certificate");
		return;
	}
	if (!p->incoming_enabled) {
		/* Every path, known or not; the client is still recorded. */
		note_incoming(p, ssl, cert, evcon, "");
		refuse_req(req, 403, "incoming_disabled", "incoming peer "
		    "connections are disabled on this node");
		return;
	}
	/* The base rule every request needs, before any routing. */
	e = authorize(p, cert, fp, R_BASE);
	note_incoming(p, ssl, cert, evcon, e->role);
	if (!e->ok) {
		refuse_req(req, 403, "denied", e->msg);
		return;
	}
	for (route = 0; route < R__MAX; route++)
		if (path != NULL && strcmp(path, routes[route].path) == 0)
			break;
	if (route == R__MAX) {
		reply_err(req, 404, "not_found", "no such peer endpoint");
		return;
	}
	if (routes[route].nrules > 0 &&
	    !(e = authorize(p, cert, fp, route))->ok) {
		refuse_req(req, 403, "denied", e->msg);
		return;
	}
	if (!(evhttp_request_get_command(req) & routes[route].methods)) {
		reply_err(req, 405, "method", "method not allowed here");
		return;
	}
	in = evhttp_request_get_input_buffer(req);
	if ((len = evbuffer_get_length(in)) > 0) {
		unsigned char *b = evbuffer_pullup(in, (ev_ssize_t)len);

		if (b == NULL || peer_body_decode(b, len, &body, &err) != 0) {
			reply_err(req, 400, "invalid", err.msg[0] ? err.msg :
			    "unreadable body");
			return;
		}
	}
	switch (route) {
	case R_PING:
		ep_ping(p, req, body);
		break;
	case R_INFO:
		ep_info(p, req);
		break;
	}
	json_decref(body);
}

/* --- setup --------------------------------------------------------------- */

int
listener_start(struct peer *p, const char *listen, struct sp_err *err)
{
	struct evhttp_bound_socket	*bs;
	struct sockaddr_storage		 ss;
	socklen_t			 sl = sizeof(ss);
	char				 host[66], addr[64];
	const char			*colon;
	const char			*errstr;
	long long			 port;

	if ((colon = strrchr(listen, ':')) == NULL ||
	    (size_t)(colon - listen) >= sizeof(host) ||
	    sp_strtonum(colon + 1, 0, 65535, &port, &errstr) != 0)
		return sp_err_set(err, SP_ERR_INVALID, "peer listen address "
		    "\"%s\" must be HOST:PORT", listen);
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	/* "[::1]:4443": the brackets only delimit the address. */
	if (host[0] == '[' && colon > listen + 1 && colon[-1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	if ((p->refuse_ctx = refusing_ctx()) == NULL ||
	    (p->http = evhttp_new(p->base)) == NULL ||
	    (p->ev_flush = evtimer_new(p->base, flush_incoming, p)) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "peer listener setup");
	evhttp_set_bevcb(p->http, on_bev, p);
	evhttp_set_gencb(p->http, on_request, p);
	evhttp_set_max_headers_size(p->http, PEER_MAX_HEADERS);
	evhttp_set_max_body_size(p->http, PEER_MAX_BODY);
	evhttp_set_timeout(p->http, PEER_TIMEOUT);
	evhttp_set_allowed_methods(p->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_PUT);
	if ((bs = evhttp_bind_socket_with_handle(p->http, host,
	    (ev_uint16_t)port)) == NULL)
		return sp_err_set(err, SP_ERR_IO, "peer listener: cannot bind "
		    "%s", listen);
	if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss,
	    &sl) == 0) {
		if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

			inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof(addr));
			snprintf(p->listen, sizeof(p->listen), "[%s]:%u", addr,
			    ntohs(s6->sin6_port));
		} else {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

			inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof(addr));
			snprintf(p->listen, sizeof(p->listen), "%s:%u", addr,
			    ntohs(s4->sin_port));
		}
	}
	p->srv_dirty = true;
	log_info("peer: listening on %s (incoming %s)", p->listen,
	    p->incoming_enabled ? "enabled" : "disabled");
	return 0;
}

void
listener_stop(struct peer *p)
{
	if (p->ev_flush != NULL) {
		flush_incoming(-1, 0, p);	/* in place: no pool by now */
		event_free(p->ev_flush);
	}
	if (p->http != NULL)
		evhttp_free(p->http);
	SSL_CTX_free(p->srv_ctx);
	SSL_CTX_free(p->refuse_ctx);
}
