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
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "crypto/dn.h"
#include "peer/listener_int.h"
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

/*
 * Logs why a client certificate was refused, with the client's address
 * and rate limited; never changes the verdict.
 */
static int
log_refusal(int ok, X509_STORE_CTX *vc)
{
	X509		*c;
	SSL		*ssl;
	char		*subj = NULL, *iss = NULL, tail[64];
	const char	*client = "?";

	if (ok)
		return ok;
	ssl = X509_STORE_CTX_get_ex_data(vc,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
	if (!conn_log_ok(ssl, &client, tail, sizeof(tail)))
		return ok;
	if ((c = X509_STORE_CTX_get_current_cert(vc)) != NULL) {
		subj = dn_print(X509_get_subject_name(c));
		iss = dn_print(X509_get_issuer_name(c));
	}
	log_warnx("peer: refused client certificate subject \"%s\" issuer "
	    "\"%s\" (chain depth %d) from %s: %s%s", subj ? subj : "?",
	    iss ? iss : "?", X509_STORE_CTX_get_error_depth(vc), client,
	    X509_verify_cert_error_string(X509_STORE_CTX_get_error(vc)), tail);
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
	 * No TLS 1.2 renegotiation: a connection keeps the certificate it
	 * was admitted with (conn_fingerprint() relies on it), and a client
	 * cannot make the server redo handshakes on an open connection.
	 */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
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
SSL_CTX *
listener_server_ctx(struct peer *p)
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

/* --- authorization with a per-certificate cache ------------------------- */

/*
 * Every request needs the base rule, checked before routing; an endpoint
 * lists only the rules it needs on top. The cache keys the base decision
 * with R_BASE, an endpoint's static rules with its row number; rules
 * derived from a request are never cached.
 */
#define R_BASE	(-1)
static const char *const base_rules[] = { "/peerincoming", NULL };

static size_t
rules_count(const char *const *rules)
{
	size_t	n = 0;

	while (rules != NULL && rules[n] != NULL)
		n++;
	return n;
}

static const struct authz_entry *
authorize(struct peer *p, X509 *cert, const char *fp, int route)
{
	struct authz_entry		*e;
	struct sp_err			 err = { 0 };
	const struct peer_endpoint	*ep = registry_get(p, route);
	const char *const		*rules = ep ? ep->rules : base_rules;
	uint64_t			 gen = authz_generation(p->az);
	time_t				 now = sp_now();
	int				 r;

	for (size_t i = 0; i < AUTHZ_CACHE_SIZE; i++) {
		e = &p->cache[i];
		if (e->route == route && e->gen == gen && e->expires > now &&
		    strcmp(e->fp, fp) == 0)
			return e;
	}
	e = &p->cache[p->cache_next];
	p->cache_next = (p->cache_next + 1) % AUTHZ_CACHE_SIZE;
	memset(e, 0, sizeof(*e));
	r = authz_check(p->az, cert, rules, rules_count(rules), e->role, &err);
	e->ok = r == 0;
	snprintf(e->msg, sizeof(e->msg), "%s", err.msg);
	snprintf(e->fp, sizeof(e->fp), "%s", fp);
	e->route = route;
	e->gen = gen;
	e->expires = now + PEER_AUTHZ_CACHE_TTL;
	return e;
}

bool
listener_base_ok(struct peer *p, X509 *cert)
{
	char	fp[65];
	bool	ok;

	ok = peer_fingerprint(cert, fp) == 0 &&
	    authorize(p, cert, fp, R_BASE)->ok;
	ERR_clear_error();
	return ok;
}

/* An endpoint's static rules (cached per row); false with msg if refused. */
static bool
authorize_static(struct peer *p, struct peer_req *r, const char *fp, int idx,
    char *msg, size_t msgsz)
{
	const struct authz_entry	*e;

	if (rules_count(r->ep->rules) == 0 ||
	    (e = authorize(p, r->cert, fp, idx))->ok)
		return true;
	snprintf(msg, msgsz, "%s", e->msg);
	return false;
}

/*
 * An endpoint's rules derived from the request (never cached), with its
 * static ones. Returns 0, 403 (refused) or 400 (the rule function found
 * the request bad), with msg.
 */
static int
authorize_derived(struct peer *p, struct peer_req *r, char *msg, size_t msgsz)
{
	const struct peer_endpoint	*ep = r->ep;
	char				 derived[PEER_RULES_MAX][PEER_RULE_MAX];
	const char			*list[PEER_RULES_MAX + 16];
	struct sp_err			 err = { 0 };
	size_t				 ns = rules_count(ep->rules), n = 0;
	int				 nd;

	if (ep->derive == NULL)
		return 0;
	memset(derived, 0, sizeof(derived));
	if ((nd = ep->derive(r, ep->arg, derived, &err)) < 0 ||
	    nd > PEER_RULES_MAX) {
		snprintf(msg, msgsz, "%s", err.msg[0] ? err.msg :
		    "bad request");
		return 400;
	}
	for (size_t i = 0; i < ns && i < 16; i++)
		list[n++] = ep->rules[i];
	for (int i = 0; i < nd; i++) {
		derived[i][PEER_RULE_MAX - 1] = '\0';
		list[n++] = derived[i];
	}
	if (nd == 0)
		return 0;
	if (authz_check(p->az, r->cert, list, n, NULL, &err) != 0) {
		snprintf(msg, msgsz, "%s", err.msg);
		return 403;
	}
	return 0;
}

/*
 * A request head has arrived and evhttp has not parsed it yet: the
 * connection's body limit for this request becomes its endpoint's, or 0
 * when the endpoint's rules refuse the client, so such a body is answered
 * 413 before it is read (the base rule was decided at the handshake). It
 * is only a limit: on_request() makes every check again on evhttp's
 * parse. The request line is split at its spaces (RFC 9112 3) and the
 * target parsed by evhttp's URI parser; anything unexpected keeps the
 * largest limit, and evhttp's parse decides.
 */
int
conn_fingerprint(struct lconn *c, X509 *cert, char out[65])
{
	if (c->fp_cert != cert || c->fp[0] == '\0') {
		c->fp_cert = NULL;
		if (peer_fingerprint(cert, c->fp) != 0)
			return -1;
		c->fp_cert = cert;
	}
	memcpy(out, c->fp, sizeof(c->fp));
	return 0;
}

void
listener_head(struct lconn *c, const char *line)
{
	static const struct {
		const char	*name;
		int		 method;
	} methods[] = { { "GET", PEER_GET }, { "POST", PEER_POST },
	    { "PUT", PEER_PUT } };
	struct peer		*p = c->p;
	struct peer_req		 r;
	struct evhttp_uri	*uri = NULL;
	const char		*sp1, *sp2, *path;
	char			 target[PEER_URL_MAX + 1], fp[65], why[256];
	size_t			 max = registry_max_body(p), n;
	size_t			 plen = strlen(PEER_PREFIX);
	int			 idx;

	if (c->evcon == NULL || c->norole || !c->handshake_done)
		return;		/* PEER_NOROLE_MAX_BODY stays */
	memset(&r, 0, sizeof(r));
	if (line == NULL || (sp1 = strchr(line, ' ')) == NULL ||
	    (sp2 = strchr(sp1 + 1, ' ')) == NULL ||
	    (n = (size_t)(sp2 - sp1 - 1)) == 0 || n >= sizeof(target))
		goto out;
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if ((size_t)(sp1 - line) == strlen(methods[i].name) &&
		    strncmp(line, methods[i].name, (size_t)(sp1 - line)) == 0)
			r.method = methods[i].method;
	memcpy(target, sp1 + 1, n);
	target[n] = '\0';
	if (r.method == 0 || (uri = evhttp_uri_parse(target)) == NULL ||
	    (path = evhttp_uri_get_path(uri)) == NULL ||
	    strncmp(path, PEER_PREFIX, plen) != 0 || path[plen] != '/' ||
	    strlen(path + plen) > PEER_URL_MAX)
		goto out;
	snprintf(r.path, sizeof(r.path), "%s", path + plen);
	if (registry_match(p, r.path, r.method, &r, &idx) != 0)
		goto out;	/* 404/405 come from on_request() */
	r.p = p;
	if ((r.cert = SSL_get0_peer_certificate(c->ssl)) == NULL ||
	    conn_fingerprint(c, r.cert, fp) != 0)
		goto out;
	/*
	 * Derived rules without the body (not read yet): a rule function that
	 * needs it cannot decide now (400 here), which keeps the limit.
	 */
	if (!authorize_static(p, &r, fp, idx, why, sizeof(why)) ||
	    authorize_derived(p, &r, why, sizeof(why)) == 403)
		max = 0;
	else
		max = r.ep->max_body;
 out:
	ERR_clear_error();
	if (uri != NULL)
		evhttp_uri_free(uri);
	evhttp_connection_set_max_body_size(c->evcon, (ev_ssize_t)max);
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
	struct rec_job		*j = arg;
	struct store_txn	*tx = NULL;
	struct sp_err		 err = { 0 };
	size_t			 i;

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
note_incoming(struct peer *p, struct lconn *c, X509 *cert,
    struct evhttp_connection *evcon, const char *role)
{
	struct incoming_rec	*rec;
	char			*host = NULL;
	ev_uint16_t		 port = 0;
	struct timeval		 tv = { FLUSH_SECONDS, 0 };

	/* Once per TLS connection. */
	if (c->noted)
		return;
	c->noted = true;
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
	SSL_CTX		*cur = listener_server_ctx(p);
	X509_STORE_CTX	*vc;
	time_t		 now = sp_now();
	bool		 ok;

	/* This odd API returns -1 for earlier, 1 for later, 0 on error. */
	if (X509_cmp_time(X509_get0_notBefore(cert), &now) != -1 ||
	    X509_cmp_time(X509_get0_notAfter(cert), &now) != 1) {
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
	X509_STORE_CTX_set_time(vc, 0, now);
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
close_after(struct evhttp_request *req)
{
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Connection", "close");
}

void
listener_send(struct peer_req *r, int status, json_t *doc)
{
	struct evhttp_request	*req = r->req;

	if (r->listed) {
		TAILQ_REMOVE(&r->conn->pending, r, entry);
		r->listed = false;
		if (TAILQ_EMPTY(&r->conn->pending) && r->conn->ev_gone != NULL)
			event_del(r->conn->ev_gone);
	}
	r->req = NULL;
	if (req == NULL) {
		json_decref(doc);
		return;
	}
	if (doc == NULL) {
		evhttp_send_reply(req, status, NULL, NULL);
		return;
	}
	reply(req, status, doc);
}

/* The reply went out: the next request on this connection has a deadline. */
static void
on_complete(struct evhttp_request *req, void *arg)
{
	struct lconn	*c = arg;

	(void)req;
	if (c->evcon != NULL)
		conn_deadline_arm(c, PH_HEAD);
}

static int
peer_method(enum evhttp_cmd_type cmd)
{
	switch (cmd) {
	case EVHTTP_REQ_GET:
		return PEER_GET;
	case EVHTTP_REQ_POST:
		return PEER_POST;
	case EVHTTP_REQ_PUT:
		return PEER_PUT;
	default:
		return 0;
	}
}

/*
 * The order of the checks is the contract (and what the fuzz target
 * drives): TLS client certificate (401), still trusted (403), framing
 * (400/501), incoming enabled and the base rule (403), route (404/405),
 * the endpoint's rules (403, or 400 for a path its rules refuse), its
 * body limit (413), the body (400), then the handler.
 */
static void
on_request(struct evhttp_request *req, void *arg)
{
	struct peer			*p = arg;
	struct evhttp_connection	*evcon = evhttp_request_get_connection(req);
	struct bufferevent		*bev;
	SSL				*ssl = NULL;
	struct lconn			*c = NULL;
	X509				*cert = NULL;
	const struct evhttp_uri		*uri = evhttp_request_get_evhttp_uri(req);
	const char			*path = uri ? evhttp_uri_get_path(uri) : NULL;
	const struct authz_entry	*e;
	struct peer_req			*r;
	struct evbuffer			*in;
	struct sp_err			 err = { 0 };
	const char			*code, *msg;
	char				 fp[65], why[256];
	int				 idx, status;
	size_t				 len, plen = strlen(PEER_PREFIX);
	bool				 first;

	if (evcon != NULL &&
	    (bev = evhttp_connection_get_bufferevent(evcon)) != NULL)
		ssl = bufferevent_openssl_get_ssl(bev);
	if (ssl != NULL)
		c = conn_of_ssl(ssl);
	if (c == NULL || (cert = SSL_get0_peer_certificate(ssl)) == NULL) {
		close_after(req);
		refuse_req(req, 401, "no_certificate", "a client certificate "
		    "is required");
		return;
	}
	conn_deadline_arm(c, PH_BUSY);
	evhttp_request_set_on_complete_cb(req, on_complete, c);
	first = c->nreq++ == 0;
	if (!still_trusted(p, ssl, cert, first && SSL_session_reused(ssl),
	    &err)) {
		close_after(req);
		refuse_req(req, 403, "untrusted", err.msg);
		return;
	}
	if ((status = framing_check(req, &code, &msg)) != 0) {
		close_after(req);
		reply_err(req, status, code, msg);
		return;
	}
	if (c->hd_bad) {
		close_after(req);
		reply_err(req, 400, "invalid", "request head lines must end "
		    "in CRLF, without obs-fold");
		return;
	}
	conn_head_rescan(c);
	if (conn_fingerprint(c, cert, fp) != 0) {
		/* No cache key, no decision: never a shared fallback key. */
		log_warnx("peer: cannot compute a client certificate's "
		    "fingerprint");
		ERR_clear_error();
		close_after(req);
		reply_err(req, 500, "internal", "cannot fingerprint the client "
		    "certificate");
		return;
	}
	if (!p->incoming_enabled) {
		/* Every path, known or not; the client is still recorded. */
		note_incoming(p, c, cert, evcon, "");
		refuse_req(req, 403, "incoming_disabled", "incoming peer "
		    "connections are disabled on this node");
		return;
	}
	/* The base rule every request needs, before any routing. */
	e = authorize(p, cert, fp, R_BASE);
	note_incoming(p, c, cert, evcon, e->role);
	if (!e->ok) {
		refuse_req(req, 403, "denied", e->msg);
		return;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL || !X509_up_ref(cert)) {
		free(r);
		reply_err(req, 500, "internal", "out of memory");
		return;
	}
	r->p = p;
	r->conn = c;
	r->req = req;
	r->cert = cert;
	r->method = peer_method(evhttp_request_get_command(req));
	snprintf(r->role, sizeof(r->role), "%s", e->role);
	snprintf(r->client, sizeof(r->client), "%s", c->client);
	if (path == NULL || strncmp(path, PEER_PREFIX, plen) != 0 ||
	    path[plen] != '/' || strlen(path) > PEER_URL_MAX)
		status = 404;
	else {
		snprintf(r->path, sizeof(r->path), "%s", path + plen);
		status = registry_match(p, r->path, r->method, r, &idx);
	}
	if (status == 404) {
		reply_err(req, 404, "not_found", "no such peer endpoint");
		goto done;
	}
	if (status == 405) {
		reply_err(req, 405, "method", "method not allowed here");
		goto done;
	}
	if (!authorize_static(p, r, fp, idx, why, sizeof(why))) {
		refuse_req(req, 403, "denied", why);
		goto done;
	}
	in = evhttp_request_get_input_buffer(req);
	if ((len = evbuffer_get_length(in)) > r->ep->max_body) {
		close_after(req);
		reply_err(req, 413, "too_large", "request body too large for "
		    "this endpoint");
		goto done;
	}
	if (len > 0) {
		unsigned char *b = evbuffer_pullup(in, (ev_ssize_t)len);

		if (b == NULL || peer_body_decode(b, len, &r->body,
		    &err) != 0) {
			reply_err(req, 400, "invalid", err.msg[0] ? err.msg :
			    "unreadable body");
			goto done;
		}
	}
	/* After decoding, before any handler acts on the body. */
	if ((status = authorize_derived(p, r, why, sizeof(why))) == 403) {
		refuse_req(req, 403, "denied", why);
		goto done;
	} else if (status != 0) {
		reply_err(req, status, "invalid", why);
		goto done;
	}
	TAILQ_INSERT_TAIL(&c->pending, r, entry);
	r->listed = true;
	registry_dispatch(r);		/* frees r unless deferred */
	if (!TAILQ_EMPTY(&c->pending))
		conn_watch_gone(c);
	return;
 done:
	peer_req_free(r);
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
	int				 r;

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
	if ((r = conns_new(p, err)) != 0)
		return r;
	if ((p->refuse_ctx = refusing_ctx()) == NULL ||
	    (p->http = evhttp_new(p->base)) == NULL ||
	    (p->ev_flush = evtimer_new(p->base, flush_incoming, p)) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "peer listener setup");
	if (p->reg == NULL && (r = registry_builtin(p, err)) != 0)
		return r;
	evhttp_set_bevcb(p->http, conn_bev, p);
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
	conns_listen(p, evhttp_bound_socket_get_listener(bs));
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
	conns_free(p);
	registry_free(p);
	SSL_CTX_free(p->srv_ctx);
	SSL_CTX_free(p->refuse_ctx);
}
