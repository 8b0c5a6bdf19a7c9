/*
 * The peer listener's connections (listener.c serves their requests):
 * caps per listener and per client address, checked as soon as evhttp
 * has accepted a connection; deadlines for the whole TLS handshake and
 * the whole request; the role decided when the handshake ends; pauses
 * when accept() fails; the line-end scan of request heads; and the watch
 * for a client that hangs up while its reply is deferred.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "peer/listener_int.h"
#include "util/log.h"
#include "util/util.h"


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

struct lconn *
conn_of_ssl(const SSL *ssl)
{
	return ssl != NULL && conn_idx >= 0 ? SSL_get_ex_data(ssl, conn_idx) :
	    NULL;
}

/* For the verify callback: the rate limit and the client's address. */
bool
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

void
conn_deadline_arm(struct lconn *c, enum conn_phase ph)
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
	size_t		 max;

	c->handshake_done = true;
	c->norole = cert == NULL || !p->incoming_enabled ||
	    !listener_base_ok(p, cert);
	max = c->norole ? PEER_NOROLE_MAX_BODY : registry_max_body(p);
	evhttp_connection_set_max_body_size(c->evcon, (ev_ssize_t)max);
	conn_deadline_arm(c, PH_HEAD);
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
/* The request line, kept for listener_head(). */
static void
rline_add(struct lconn *c, unsigned char ch)
{
	if (c->rlen < sizeof(c->rline) - 1)
		c->rline[c->rlen++] = (char)ch;
	else
		c->rline_long = true;
}

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
			else {
				c->hd = HD_IN_LINE;
				if (c->hd_first)
					rline_add(c, b[i]);
			}
			break;
		case HD_IN_LINE:
			if (b[i] == '\r')
				c->hd = HD_CR;
			else if (b[i] == '\n')
				c->hd_bad = true;
			else if (c->hd_first)
				rline_add(c, b[i]);
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
			if (c->hd == HD_BODY && !c->hd_bad) {
				c->rline[c->rlen] = '\0';
				listener_head(c, c->rline_long ? NULL :
				    c->rline);
			}
			break;
		default:
			break;
		}
	}
}

/* Scans len bytes of buf from off, however many chunks they span. */
static void
scan_buf(struct lconn *c, struct evbuffer *buf, size_t off, size_t len)
{
	struct evbuffer_ptr	 pos;
	struct evbuffer_iovec	 v[8];
	size_t			 done;
	int			 nv;

	while (len > 0 && c->hd != HD_BODY && !c->hd_bad) {
		if (evbuffer_ptr_set(buf, &pos, off, EVBUFFER_PTR_SET) != 0)
			return;
		if ((nv = evbuffer_peek(buf, (ev_ssize_t)len, &pos, v, 8)) <= 0)
			return;
		done = 0;
		for (int i = 0; i < nv && i < 8; i++) {
			size_t n = v[i].iov_len < len - done ? v[i].iov_len :
			    len - done;

			head_scan(c, v[i].iov_base, n);
			done += n;
		}
		off += done;
		len -= done;
	}
}

static void
on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct lconn	*c = arg;
	size_t		 len = evbuffer_get_length(buf);

	if (info->n_added == 0 || c->hd == HD_BODY || c->hd_bad ||
	    info->n_added > len)
		return;
	/* The bytes just added are the last n_added of the buffer. */
	scan_buf(c, buf, len - info->n_added, info->n_added);
}

/* A request head starts (the connection's first, or the next one). */
static void
head_start(struct lconn *c)
{
	c->hd = HD_LINE_START;
	c->hd_first = true;
	c->rlen = 0;
	c->rline_long = false;
}

/* evhttp has read a whole request: what is left starts the next one. */
void
conn_head_rescan(struct lconn *c)
{
	struct evbuffer	*buf = bufferevent_get_input(c->bev);

	head_start(c);
	scan_buf(c, buf, 0, evbuffer_get_length(buf));
}

/* Closes a connection just accepted, before any byte is read. */
static void
conn_refuse(struct lconn *c, const char *why, int cap)
{
	struct listener			*l = c->p->lst;
	struct evhttp_connection	*evcon = c->evcon;
	char				 tail[64];

	l->refused++;
	if (ratelim_ok(&l->rl_conn))
		log_warnx("peer: refused %s: %s (%d)%s", c->client, why, cap,
		    ratelim_tail(&l->rl_conn, tail, sizeof(tail)));
	/* Last use of c: freeing the connection may free it. */
	c->evcon = NULL;
	evhttp_connection_free(evcon);
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
	head_start(c);
	if (evbuffer_add_cb(bufferevent_get_input(c->bev), on_input, c) ==
	    NULL) {
		conn_refuse(c, "out of memory", 0);
		return;
	}
	/* Until the handshake has told who it is. */
	evhttp_connection_set_max_body_size(evcon, PEER_NOROLE_MAX_BODY);
	conn_deadline_arm(c, PH_HANDSHAKE);
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

struct bufferevent *
conn_bev(struct event_base *base, void *arg)
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
	    (ssl = SSL_new(listener_server_ctx(p))) == NULL) {
		log_warnx("peer: out of memory: refusing a connection");
		if (c != NULL && c->deadline != NULL)
			event_free(c->deadline);
		free(c);
		ERR_clear_error();
		return NULL;
	}
	/* Verify by the node's clock (it differs only in tests). */
	if (sp_time_offset() != 0)
		X509_VERIFY_PARAM_set_time(SSL_get0_param(ssl), sp_now());
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
	l->lim.idle_timeout = lim->idle_timeout > 0 ? lim->idle_timeout :
	    PEER_TIMEOUT;
	if (p->http != NULL)
		evhttp_set_timeout(p->http, l->lim.idle_timeout);
}

/*
 * The client hung up while its reply is deferred. evhttp 2.1 does not
 * read while the application holds a request, so it would notice only
 * when the reply is written, which for a long-hanging request may be
 * minutes away. So the socket is watched: readable with nothing to read
 * (EOF) or an error (a reset) is a client gone. Bytes waiting (a
 * pipelined request, a TLS alert) stay unread for evhttp, and the watch
 * narrows to the peer's close alone (EV_CLOSED, epoll's EPOLLRDHUP), so
 * level-triggered readiness cannot spin.
 */
static void	gone_watch(struct lconn *, short);

static void
on_gone(evutil_socket_t fd, short what, void *arg)
{
	struct lconn	*c = arg;
	char		 b;
	ssize_t		 n;

	if (c->evcon == NULL)
		return;
	if (!(what & EV_CLOSED)) {
		n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR))) {
			if (n > 0)
				gone_watch(c, EV_CLOSED);
			return;
		}
	}
	evhttp_connection_free(c->evcon);	/* on_close() runs */
}

static void
gone_watch(struct lconn *c, short what)
{
	struct event_base	*base = c->p->base;

	if (c->ev_gone != NULL && event_get_events(c->ev_gone) ==
	    (what | EV_PERSIST)) {
		event_add(c->ev_gone, NULL);
		return;
	}
	if (c->ev_gone != NULL)
		event_free(c->ev_gone);
	if ((c->ev_gone = event_new(base, bufferevent_getfd(c->bev), what |
	    EV_PERSIST, on_gone, c)) != NULL)
		event_add(c->ev_gone, NULL);
}

void
conn_watch_gone(struct lconn *c)
{
	short	what = EV_READ;

	if (c->evcon == NULL)
		return;
	if (event_base_get_features(c->p->base) & EV_FEATURE_EARLY_CLOSE)
		what |= EV_CLOSED;
	gone_watch(c, what);
}

/* --- setup ---------------------------------------------------------------- */

int
conns_new(struct peer *p, struct sp_err *err)
{
	struct listener	*l;

	if (conn_idx < 0 && (conn_idx = SSL_get_ex_new_index(0, NULL, NULL,
	    NULL, conn_exfree)) < 0)
		return sp_err_set(err, SP_ERR_ALLOC, "peer listener setup");
	if ((p->lst = l = calloc(1, sizeof(*l))) == NULL ||
	    (l->ev_sweep = event_new(p->base, -1, 0, on_sweep, l)) == NULL ||
	    (l->ev_resume = evtimer_new(p->base, on_resume, l)) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "peer listener setup");
	TAILQ_INIT(&l->conns);
	TAILQ_INIT(&l->fresh);
	l->rl_conn = (struct ratelim){ .window = 1, .max = 5 };
	l->rl_accept = (struct ratelim){ .window = 10, .max = 1 };
	peer_set_limits(p, &(struct peer_limits){ 0 });
	return 0;
}

void
conns_listen(struct peer *p, struct evconnlistener *lev)
{
	struct listener	*l = p->lst;

	l->lev = lev;
	l->next = all_listeners;
	all_listeners = l;
	evconnlistener_set_error_cb(lev, on_accept_error);
}

/* After evhttp_free(), which closed every connection. */
void
conns_free(struct peer *p)
{
	struct listener		*l;
	struct lconn		*c;
	struct addr_count	*a;

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
}
