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

static bool	conn_log_ok(const SSL *, const char **, char *, size_t);

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

/* --- connections: caps, deadlines, accept errors ------------------------- */

/*
 * At most max lines per window seconds (loop thread); the lines left out
 * are counted and the count goes with the next line logged.
 */
struct ratelim {
	time_t		start;
	int		window, max, n;
	unsigned long	skipped;
};

static bool
ratelim_ok(struct ratelim *rl)
{
	struct timespec	now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec >= rl->start + rl->window) {
		rl->start = now.tv_sec;
		rl->n = 0;
	}
	if (rl->n >= rl->max) {
		rl->skipped++;
		return false;
	}
	rl->n++;
	return true;
}

/* " (and N not logged)" once, after a line was let through. */
static const char *
ratelim_tail(struct ratelim *rl, char *buf, size_t sz)
{
	buf[0] = '\0';
	if (rl->skipped > 0)
		snprintf(buf, sz, " (and %lu more not logged)", rl->skipped);
	rl->skipped = 0;
	return buf;
}

#define ADDR_BUCKETS	256

struct addr_count {
	char			 host[64];
	int			 n;
	struct addr_count	*next;
};

enum conn_phase { PH_HANDSHAKE, PH_HEAD, PH_BUSY, PH__MAX };

/* Where the line-ending scan of a request head is (see head_scan()). */
enum head_state {
	HD_LINE_START, HD_IN_LINE, HD_CR, HD_EMPTY_CR, HD_BODY, HD__MAX
};

/* One accepted connection; freed with its SSL (ex_data free). */
struct lconn {
	struct peer			*p;
	SSL				*ssl;
	struct bufferevent		*bev;
	struct evhttp_connection	*evcon;	/* NULL once closed */
	struct addr_count		*ac;
	struct event			*deadline;
	struct event			*ev_gone;	/* while deferred */
	enum conn_phase			 phase;
	bool				 fresh;	/* accepted, not yet admitted */
	bool				 counted;
	bool				 handshake_done;
	bool				 norole;
	bool				 nocert_logged;
	bool				 noted;	/* in the incoming list */
	unsigned long			 nreq;
	enum head_state			 hd;
	bool				 hd_first;	/* on the request line */
	bool				 hd_bad;	/* bare LF/CR, obs-fold */
	char				 client[80];	/* HOST:PORT */
	struct peer_req_list		 pending;	/* deferred replies */
	TAILQ_ENTRY(lconn)		 entry;		/* l->conns */
	TAILQ_ENTRY(lconn)		 fentry;	/* l->fresh */
};
TAILQ_HEAD(lconn_list, lconn);

struct listener {
	struct peer_limits	 lim;
	struct evconnlistener	*lev;
	struct event		*ev_sweep;	/* admits new connections */
	struct event		*ev_resume;	/* ends an accept pause */
	struct lconn_list	 conns;
	struct lconn_list	 fresh;
	int			 nconns;
	unsigned long		 refused, pauses, expired;
	struct addr_count	*buckets[ADDR_BUCKETS];
	struct ratelim		 rl_conn;	/* connection-level lines */
	struct ratelim		 rl_accept;
	struct listener		*next;		/* all_listeners */
};

/*
 * The listeners of this process (one, but tests run several): the accept
 * error callback gets evhttp's argument, not ours, so it finds its
 * listener by the evconnlistener.
 */
static struct listener	*all_listeners;

static int	conn_idx = -1;		/* SSL ex_data index of struct lconn */

static struct lconn *
conn_of_ssl(const SSL *ssl)
{
	return ssl != NULL && conn_idx >= 0 ? SSL_get_ex_data(ssl, conn_idx) :
	    NULL;
}

/* For the verify callback: the rate limit and the client's address. */
static bool
conn_log_ok(const SSL *ssl, const char **client, char *tail, size_t sz)
{
	struct lconn	*c = conn_of_ssl(ssl);

	tail[0] = '\0';
	if (c == NULL)
		return true;
	*client = c->client;
	if (!ratelim_ok(&c->p->lst->rl_conn))
		return false;
	ratelim_tail(&c->p->lst->rl_conn, tail, sz);
	return true;
}

static unsigned
addr_hash(const char *s)
{
	unsigned	h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % ADDR_BUCKETS;
}

static struct addr_count *
addr_get(struct listener *l, const char *host)
{
	struct addr_count	**b = &l->buckets[addr_hash(host)], *a;

	for (a = *b; a != NULL; a = a->next)
		if (strcmp(a->host, host) == 0)
			return a;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	snprintf(a->host, sizeof(a->host), "%s", host);
	a->next = *b;
	*b = a;
	return a;
}

static void
addr_put(struct listener *l, struct addr_count *a)
{
	struct addr_count	**b;

	if (--a->n > 0)
		return;
	for (b = &l->buckets[addr_hash(a->host)]; *b != a; b = &(*b)->next)
		;
	*b = a->next;
	free(a);
}

/* Everything but the SSL itself: counts, timers, deferred requests. */
static void
conn_release(struct lconn *c)
{
	struct listener	*l = c->p->lst;
	struct peer_req	*r;

	while ((r = TAILQ_FIRST(&c->pending)) != NULL) {
		TAILQ_REMOVE(&c->pending, r, entry);
		r->listed = false;
		registry_req_gone(r);
	}
	if (c->deadline != NULL)
		event_free(c->deadline);
	if (c->ev_gone != NULL)
		event_free(c->ev_gone);
	if (c->fresh)
		TAILQ_REMOVE(&l->fresh, c, fentry);
	TAILQ_REMOVE(&l->conns, c, entry);
	if (c->counted) {
		l->nconns--;
		addr_put(l, c->ac);
	}
	free(c);
}

/* ex_data free callback: the connection's SSL is being freed. */
static void
conn_exfree(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (ptr != NULL)
		conn_release(ptr);
}

static const char *const phase_what[PH__MAX] = {
	[PH_HANDSHAKE] = "TLS handshake",
	[PH_HEAD] = "request",
	[PH_BUSY] = "request",
};

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct lconn	*c = arg;
	struct listener	*l = c->p->lst;
	char		 tail[64];

	(void)fd;
	(void)what;
	if (c->evcon == NULL)
		return;
	l->expired++;
	if (ratelim_ok(&l->rl_conn))
		log_warnx("peer: closed %s: %s not complete in time%s",
		    c->client, phase_what[c->phase],
		    ratelim_tail(&l->rl_conn, tail, sizeof(tail)));
	evhttp_connection_free(c->evcon);	/* on_close() runs */
}

static void
deadline_arm(struct lconn *c, enum conn_phase ph)
{
	struct listener	*l = c->p->lst;
	struct timeval	 tv = { 0, 0 };

	c->phase = ph;
	if (ph == PH_BUSY) {
		evtimer_del(c->deadline);
		return;
	}
	if (ph == PH_HANDSHAKE)
		tv.tv_sec = l->lim.handshake_timeout;
	else
		tv.tv_sec = c->norole && l->lim.head_timeout >
		    PEER_NOROLE_TIMEOUT ? PEER_NOROLE_TIMEOUT :
		    l->lim.head_timeout;
	evtimer_add(c->deadline, &tv);
}

static void
on_close(struct evhttp_connection *evcon, void *arg)
{
	struct lconn	*c = arg;
	struct peer_req	*r;

	(void)evcon;
	c->evcon = NULL;
	evtimer_del(c->deadline);
	if (c->ev_gone != NULL)
		event_del(c->ev_gone);
	/*
	 * A deferred reply whose client left: evhttp has disowned the
	 * request (it is ours to free) unless it still sits on the
	 * connection, which then frees it.
	 */
	while ((r = TAILQ_FIRST(&c->pending)) != NULL) {
		TAILQ_REMOVE(&c->pending, r, entry);
		r->listed = false;
		if (r->req != NULL && evhttp_request_get_connection(r->req) ==
		    NULL)
			evhttp_request_free(r->req);
		registry_req_gone(r);
	}
}

#define R_BASE	(-1)		/* the authorization cache's base entry */
static const struct authz_entry *authorize(struct peer *, X509 *,
    const char *, int);

/*
 * The end of the handshake, before any byte of HTTP: the base rule is
 * decided on the certificate now, so a peer without a role gets a short
 * deadline for its request and a small body limit (security finding S6).
 */
static void
handshake_done(struct lconn *c)
{
	struct peer	*p = c->p;
	X509		*cert = SSL_get0_peer_certificate(c->ssl);
	char		 fp[65];
	size_t		 max;

	c->handshake_done = true;
	c->norole = true;
	if (cert != NULL && p->incoming_enabled &&
	    peer_fingerprint(cert, fp) == 0)
		c->norole = !authorize(p, cert, fp, R_BASE)->ok;
	ERR_clear_error();
	max = c->norole ? PEER_NOROLE_MAX_BODY : registry_max_body(p);
	evhttp_connection_set_max_body_size(c->evcon, (ev_ssize_t)max);
	deadline_arm(c, PH_HEAD);
}

static void
on_ssl_info(const SSL *ssl, int where, int ret)
{
	struct lconn	*c = conn_of_ssl(ssl);
	struct listener	*l;
	unsigned long	 e;
	char		 tail[64];

	(void)ret;
	if (c == NULL || c->evcon == NULL)
		return;
	l = c->p->lst;
	if ((where & SSL_CB_HANDSHAKE_DONE) && !c->handshake_done) {
		handshake_done(c);
		return;
	}
	/* The alert OpenSSL sends for a missing client certificate (F8). */
	if ((where & SSL_CB_WRITE_ALERT) == SSL_CB_WRITE_ALERT &&
	    !c->handshake_done && !c->nocert_logged &&
	    ERR_GET_LIB(e = ERR_peek_last_error()) == ERR_LIB_SSL &&
	    ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
		c->nocert_logged = true;
		if (ratelim_ok(&l->rl_conn))
			log_warnx("peer: refused %s: TLS handshake without a "
			    "client certificate%s", c->client,
			    ratelim_tail(&l->rl_conn, tail, sizeof(tail)));
	}
}

/*
 * RFC 9112 2.2 and 5.2: evhttp takes a bare LF as a line end and joins
 * obs-fold lines (a line starting with SP or HT) to the header before;
 * a proxy in front may split the same bytes otherwise (request smuggling,
 * security finding S7). evhttp has consumed the raw line ends by the time
 * the request callback sees the head, so the decrypted bytes are scanned
 * as they arrive in the connection's input buffer, before evhttp parses
 * them: from the start of a request to its empty line, every LF must
 * follow a CR, every CR precede an LF, and no header line start with
 * whitespace. A violation marks the connection; its request gets 400.
 * Bodies are not scanned (the scan restarts where evhttp's next request
 * starts, see head_rescan()).
 */
static void
head_scan(struct lconn *c, const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n && c->hd != HD_BODY && !c->hd_bad; i++) {
		switch (c->hd) {
		case HD_LINE_START:
			if (b[i] == '\r')
				c->hd = HD_EMPTY_CR;
			else if (b[i] == '\n' || (!c->hd_first &&
			    (b[i] == ' ' || b[i] == '\t')))
				c->hd_bad = true;
			else
				c->hd = HD_IN_LINE;
			break;
		case HD_IN_LINE:
			if (b[i] == '\r')
				c->hd = HD_CR;
			else if (b[i] == '\n')
				c->hd_bad = true;
			break;
		case HD_CR:
			if (b[i] != '\n')
				c->hd_bad = true;
			c->hd = HD_LINE_START;
			c->hd_first = false;
			break;
		case HD_EMPTY_CR:
			if (b[i] != '\n')
				c->hd_bad = true;
			/* Empty lines before the request line are ignored. */
			c->hd = c->hd_first ? HD_LINE_START : HD_BODY;
			break;
		default:
			break;
		}
	}
}

static void
on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct lconn		*c = arg;
	struct evbuffer_ptr	 pos;
	struct evbuffer_iovec	 v[8];
	size_t			 len = evbuffer_get_length(buf);
	int			 nv;

	if (info->n_added == 0 || c->hd == HD_BODY || c->hd_bad ||
	    info->n_added > len)
		return;
	/* The bytes just added are the last n_added of the buffer. */
	if (evbuffer_ptr_set(buf, &pos, len - info->n_added,
	    EVBUFFER_PTR_SET) != 0)
		return;
	nv = evbuffer_peek(buf, (ev_ssize_t)info->n_added, &pos, v, 8);
	for (int i = 0; i < nv && i < 8; i++)
		head_scan(c, v[i].iov_base, v[i].iov_len);
}

/* evhttp has read a whole request: what is left starts the next one. */
static void
head_rescan(struct lconn *c)
{
	struct evbuffer		*buf = bufferevent_get_input(c->bev);
	struct evbuffer_iovec	 v[8];
	int			 nv;

	c->hd = HD_LINE_START;
	c->hd_first = true;
	nv = evbuffer_peek(buf, -1, NULL, v, 8);
	for (int i = 0; i < nv && i < 8; i++)
		head_scan(c, v[i].iov_base, v[i].iov_len);
}

/* Closes a connection just accepted, before any byte is read. */
static void
conn_refuse(struct lconn *c, const char *why, int cap)
{
	struct listener	*l = c->p->lst;
	char		 tail[64];

	l->refused++;
	if (ratelim_ok(&l->rl_conn))
		log_warnx("peer: refused %s: %s (%d)%s", c->client, why, cap,
		    ratelim_tail(&l->rl_conn, tail, sizeof(tail)));
	evhttp_connection_free(c->evcon);
	c->evcon = NULL;
}

/*
 * A connection evhttp has just accepted (same loop turn): count it, or
 * close it at once when a cap is reached. evhttp_set_newreqcb(), which
 * would give the connection directly, is libevent 2.2; in 2.1 the
 * connection is the argument evhttp gave its own bufferevent callbacks,
 * checked against the bufferevent before use.
 */
static void
conn_admit(struct lconn *c)
{
	struct listener			*l = c->p->lst;
	struct evhttp_connection	*evcon;
	struct addr_count		*ac;
	void				*arg = NULL;
	char				*host = NULL;
	ev_uint16_t			 port = 0;

	bufferevent_getcb(c->bev, NULL, NULL, NULL, &arg);
	evcon = arg;
	if (evcon == NULL || evhttp_connection_get_bufferevent(evcon) !=
	    c->bev) {
		log_warnx("peer: a connection not set up by evhttp: closed");
		shutdown(bufferevent_getfd(c->bev), SHUT_RDWR);
		return;
	}
	c->evcon = evcon;
	evhttp_connection_get_peer(evcon, &host, &port);
	snprintf(c->client, sizeof(c->client), "%s:%u", host ? host : "?",
	    (unsigned)port);
	if (l->nconns >= l->lim.max_connections) {
		conn_refuse(c, "connections at the listener's cap",
		    l->lim.max_connections);
		return;
	}
	if ((ac = addr_get(l, host ? host : "?")) == NULL) {
		conn_refuse(c, "out of memory", 0);
		return;
	}
	if (ac->n >= l->lim.max_per_address) {
		conn_refuse(c, "connections from this address at the cap",
		    l->lim.max_per_address);
		return;
	}
	ac->n++;
	c->ac = ac;
	c->counted = true;
	l->nconns++;
	evhttp_connection_set_closecb(evcon, on_close, c);
	c->hd = HD_LINE_START;
	c->hd_first = true;
	if (evbuffer_add_cb(bufferevent_get_input(c->bev), on_input, c) ==
	    NULL) {
		conn_refuse(c, "out of memory", 0);
		return;
	}
	/* Until the handshake has told who it is. */
	evhttp_connection_set_max_body_size(evcon, PEER_NOROLE_MAX_BODY);
	deadline_arm(c, PH_HANDSHAKE);
}

static void
on_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct listener	*l = arg;
	struct lconn	*c;

	(void)fd;
	(void)what;
	while ((c = TAILQ_FIRST(&l->fresh)) != NULL) {
		TAILQ_REMOVE(&l->fresh, c, fentry);
		c->fresh = false;
		conn_admit(c);
	}
}

static struct bufferevent *
on_bev(struct event_base *base, void *arg)
{
	struct peer		*p = arg;
	struct listener		*l = p->lst;
	struct bufferevent	*bev;
	struct lconn		*c;
	SSL			*ssl;

	/*
	 * Out of memory refuses this connection only. evhttp then falls back
	 * to a plain socket; on_request() answers a connection without TLS
	 * 401 and closes it, so nothing is served without a certificate.
	 */
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->deadline = evtimer_new(base, on_deadline, c)) == NULL ||
	    (ssl = SSL_new(server_ctx(p))) == NULL) {
		log_warnx("peer: out of memory: refusing a connection");
		if (c != NULL && c->deadline != NULL)
			event_free(c->deadline);
		free(c);
		ERR_clear_error();
		return NULL;
	}
	c->p = p;
	c->ssl = ssl;
	c->fresh = true;
	TAILQ_INIT(&c->pending);
	snprintf(c->client, sizeof(c->client), "?");
	TAILQ_INSERT_TAIL(&l->conns, c, entry);
	TAILQ_INSERT_TAIL(&l->fresh, c, fentry);
	if (!SSL_set_ex_data(ssl, conn_idx, c)) {
		conn_release(c);
		SSL_free(ssl);
		ERR_clear_error();
		return NULL;
	}
	SSL_set_info_callback(ssl, on_ssl_info);
	if ((bev = bufferevent_openssl_socket_new(base, -1, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS)) == NULL) {
		SSL_free(ssl);		/* frees c */
		return NULL;
	}
	c->bev = bev;
	event_active(l->ev_sweep, EV_TIMEOUT, 0);
	return bev;
}

static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct listener	*l = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(l->lev);
}

/*
 * accept() failed (EMFILE, ENFILE, ENOBUFS...): the pending connection
 * stays readable, so retrying at once would spin (security finding F1).
 * The listener pauses instead, and says so at most once in 10 s.
 */
static void
on_accept_error(struct evconnlistener *lev, void *arg)
{
	struct listener	*l;
	struct timeval	 tv = { 0, PEER_ACCEPT_PAUSE_MS * 1000 };
	int		 e = EVUTIL_SOCKET_ERROR();
	char		 tail[64];

	(void)arg;
	evconnlistener_disable(lev);
	for (l = all_listeners; l != NULL && l->lev != lev; l = l->next)
		;
	if (l == NULL) {
		/* Cannot happen; never spin on it. */
		log_warnx("peer: accept failed on an unknown listener: "
		    "it stays paused");
		return;
	}
	evtimer_add(l->ev_resume, &tv);
	l->pauses++;
	if (ratelim_ok(&l->rl_accept))
		log_warnx("peer: accept: %s (%d connections open): listener "
		    "paused for %d ms%s", strerror(e), l->nconns,
		    PEER_ACCEPT_PAUSE_MS,
		    ratelim_tail(&l->rl_accept, tail, sizeof(tail)));
}

void
peer_set_limits(struct peer *p, const struct peer_limits *lim)
{
	struct listener	*l = p->lst;

	if (l == NULL)
		return;
	l->lim.max_connections = lim->max_connections > 0 ?
	    lim->max_connections : PEER_MAX_CONNECTIONS;
	l->lim.max_per_address = lim->max_per_address > 0 ?
	    lim->max_per_address : PEER_MAX_PER_ADDRESS;
	l->lim.handshake_timeout = lim->handshake_timeout > 0 ?
	    lim->handshake_timeout : PEER_HANDSHAKE_TIMEOUT;
	l->lim.head_timeout = lim->head_timeout > 0 ? lim->head_timeout :
	    PEER_HEAD_TIMEOUT;
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

/* An endpoint's rules: static ones (cached), then derived ones. */
static bool
authorize_endpoint(struct peer *p, struct peer_req *r, const char *fp,
    int idx, int *status, char *msg, size_t msgsz)
{
	const struct peer_endpoint	*ep = r->ep;
	const struct authz_entry	*e;
	char				 derived[PEER_RULES_MAX][PEER_RULE_MAX];
	const char			*list[PEER_RULES_MAX + 16];
	struct sp_err			 err = { 0 };
	size_t				 ns = rules_count(ep->rules), n = 0;
	int				 nd;

	if (ns > 16)
		ns = 16;
	if (ns > 0 && !(e = authorize(p, r->cert, fp, idx))->ok) {
		*status = 403;
		snprintf(msg, msgsz, "%s", e->msg);
		return false;
	}
	if (ep->derive == NULL)
		return true;
	if ((nd = ep->derive(r, ep->arg, derived, &err)) < 0 ||
	    nd > PEER_RULES_MAX) {
		*status = 400;
		snprintf(msg, msgsz, "%s", err.msg[0] ? err.msg :
		    "bad request path");
		return false;
	}
	for (size_t i = 0; i < ns; i++)
		list[n++] = ep->rules[i];
	for (int i = 0; i < nd; i++) {
		derived[i][PEER_RULE_MAX - 1] = '\0';
		list[n++] = derived[i];
	}
	if (n == 0)
		return true;
	if (authz_check(p->az, r->cert, list, n, NULL, &err) != 0) {
		*status = 403;
		snprintf(msg, msgsz, "%s", err.msg);
		return false;
	}
	return true;
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
	struct rec_job	*j = arg;
	struct sp_err	 err = { 0 };
	size_t		 i;

	if (store_begin(j->st, &err) != 0)
		goto out;
	for (i = 0; i < j->n; i++)
		if (authz_incoming_record(j->az, j->recs[i].cert,
		    j->recs[i].address, j->recs[i].role, &err) != 0)
			break;
	if (i < j->n)
		store_rollback(j->st);
	else if (store_commit(j->st, &err) != 0)
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

/*
 * The client hung up while its reply is deferred. evhttp 2.1 does not
 * read while the application holds a request, so it would notice only
 * when the reply is written, which for a long-hanging request may be
 * minutes away: the socket is watched for the peer's close (EV_CLOSED,
 * EPOLLRDHUP; bytes it may have sent stay unread).
 */
static void
on_gone(evutil_socket_t fd, short what, void *arg)
{
	struct lconn	*c = arg;

	(void)fd;
	(void)what;
	if (c->evcon != NULL)
		evhttp_connection_free(c->evcon);	/* on_close() runs */
}

static void
watch_gone(struct lconn *c)
{
	struct event_base	*base = c->p->base;

	if (c->evcon == NULL || !(event_base_get_features(base) &
	    EV_FEATURE_EARLY_CLOSE))
		return;
	if (c->ev_gone == NULL && (c->ev_gone = event_new(base,
	    bufferevent_getfd(c->bev), EV_CLOSED | EV_PERSIST, on_gone,
	    c)) == NULL)
		return;
	event_add(c->ev_gone, NULL);
}

/* The reply went out: the next request on this connection has a deadline. */
static void
on_complete(struct evhttp_request *req, void *arg)
{
	struct lconn	*c = arg;

	(void)req;
	if (c->evcon != NULL)
		deadline_arm(c, PH_HEAD);
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
	deadline_arm(c, PH_BUSY);
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
	head_rescan(c);
	if (peer_fingerprint(cert, fp) != 0) {
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
	if (!authorize_endpoint(p, r, fp, idx, &status, why, sizeof(why))) {
		if (status == 403)
			refuse_req(req, 403, "denied", why);
		else
			reply_err(req, status, "invalid", why);
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
	TAILQ_INSERT_TAIL(&c->pending, r, entry);
	r->listed = true;
	registry_dispatch(r);		/* frees r unless deferred */
	if (!TAILQ_EMPTY(&c->pending))
		watch_gone(c);
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
	struct listener			*l;
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
	if (conn_idx < 0 && (conn_idx = SSL_get_ex_new_index(0, NULL, NULL,
	    NULL, conn_exfree)) < 0)
		return sp_err_set(err, SP_ERR_ALLOC, "peer listener setup");
	if ((p->lst = l = calloc(1, sizeof(*l))) == NULL ||
	    (p->refuse_ctx = refusing_ctx()) == NULL ||
	    (p->http = evhttp_new(p->base)) == NULL ||
	    (p->ev_flush = evtimer_new(p->base, flush_incoming, p)) == NULL ||
	    (l->ev_sweep = event_new(p->base, -1, 0, on_sweep, l)) == NULL ||
	    (l->ev_resume = evtimer_new(p->base, on_resume, l)) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "peer listener setup");
	TAILQ_INIT(&l->conns);
	TAILQ_INIT(&l->fresh);
	l->rl_conn = (struct ratelim){ .window = 1, .max = 5 };
	l->rl_accept = (struct ratelim){ .window = 10, .max = 1 };
	peer_set_limits(p, &(struct peer_limits){ 0 });
	if (p->reg == NULL && (r = registry_builtin(p, err)) != 0)
		return r;
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
	l->lev = evhttp_bound_socket_get_listener(bs);
	l->next = all_listeners;
	all_listeners = l;
	evconnlistener_set_error_cb(l->lev, on_accept_error);
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
	struct listener		*l;
	struct lconn		*c;
	struct addr_count	*a;

	if (p->ev_flush != NULL) {
		flush_incoming(-1, 0, p);	/* in place: no pool by now */
		event_free(p->ev_flush);
	}
	if (p->http != NULL)
		evhttp_free(p->http);
	if ((l = p->lst) != NULL) {
		for (struct listener **lp = &all_listeners; *lp != NULL;
		    lp = &(*lp)->next)
			if (*lp == l) {
				*lp = l->next;
				break;
			}
		/* SSLs whose bufferevents are not finalized yet: detach. */
		while ((c = TAILQ_FIRST(&l->conns)) != NULL) {
			SSL_set_ex_data(c->ssl, conn_idx, NULL);
			conn_release(c);
		}
		for (size_t i = 0; i < ADDR_BUCKETS; i++)
			while ((a = l->buckets[i]) != NULL) {
				l->buckets[i] = a->next;
				free(a);
			}
		if (l->ev_sweep != NULL)
			event_free(l->ev_sweep);
		if (l->ev_resume != NULL)
			event_free(l->ev_resume);
		free(l);
		p->lst = NULL;
	}
	registry_free(p);
	SSL_CTX_free(p->srv_ctx);
	SSL_CTX_free(p->refuse_ctx);
}
