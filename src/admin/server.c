#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include <openssl/crypto.h>

#include "admin/proto.h"
#include "admin/server.h"
#include "util/log.h"

#define IDLE_TIMEOUT	60	/* seconds a connection may sit idle */

struct conn;

struct admin_server {
	struct evconnlistener	*lev;
	struct pool		*pool;
	struct admin_ctx	*ctx;
	struct conn		*conns;
	char			 path[108];
};

struct conn {
	struct admin_server	*srv;
	struct bufferevent	*bev;
	struct conn		*next, *prev;
	struct event		*ev_next;	/* read the next request */
	char			 actor[64];
	bool			 busy;		/* a request is on the pool */
	bool			 dead;		/* closed while busy */
	bool			 stalled;	/* replies unread: not reading */
};

/*
 * Back-pressure: a client that sends requests and does not read the
 * replies is not served further once this much output waits; reading
 * resumes when its output has drained to half of it. Memory per client is
 * bounded by this, one request in flight and the input watermark.
 */
#define ADMIN_OUT_MAX	(1024 * 1024)
#define ADMIN_OUT_RESUME	(ADMIN_OUT_MAX / 2)

struct req {
	struct conn			*c;
	json_t				*root;
	const char			*cmd;
	json_t				*args;
	json_t				*resp;
	const struct admin_handler	*h;
};

static void
conn_free(struct conn *c)
{
	struct admin_server	*srv = c->srv;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	if (c->ev_next != NULL)
		event_free(c->ev_next);
	bufferevent_free(c->bev);
	free(c);
}

/* Closes now, or once the request in flight has come back. */
static void
conn_close(struct conn *c)
{
	if (c->busy) {
		c->dead = true;
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		return;
	}
	conn_free(c);
}

/*
 * True if the client's unread replies have reached the limit: stops
 * reading from it until on_write() sees the output drained.
 */
static bool
stall_if_full(struct conn *c)
{
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) <
	    ADMIN_OUT_MAX)
		return false;
	if (!c->stalled) {
		c->stalled = true;
		bufferevent_disable(c->bev, EV_READ);
		/* on_write() runs when the output drops to this. */
		bufferevent_setwatermark(c->bev, EV_WRITE, ADMIN_OUT_RESUME, 0);
	}
	return true;
}

static void
send_json(struct conn *c, json_t *doc)
{
	char		*s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	unsigned char	 hdr[4];
	size_t		 len;

	if (s == NULL) {
		s = strdup("{\"ok\":false,\"error\":{\"code\":\"alloc\","
		    "\"message\":\"out of memory\"}}");
		if (s == NULL) {
			conn_close(c);
			return;
		}
	}
	len = strlen(s);
	if (len > ADMIN_MAX_MSG) {
		/* The client would refuse it: say why instead. */
		free(s);
		s = strdup("{\"ok\":false,\"error\":{\"code\":\"limit\","
		    "\"message\":\"response larger than the admin protocol "
		    "allows; narrow it (--limit, --ca, --status)\"}}");
		if (s == NULL) {
			conn_close(c);
			return;
		}
		len = strlen(s);
	}
	admin_frame_header(len, hdr);
	evbuffer_add(bufferevent_get_output(c->bev), hdr, 4);
	evbuffer_add(bufferevent_get_output(c->bev), s, len);
	free(s);
}

static void
req_work(void *arg)
{
	struct req	*rq = arg;

	rq->resp = admin_dispatch(rq->c->srv->ctx, rq->h, rq->args,
	    rq->c->actor);
}

static void	on_read(struct bufferevent *, void *);

static void
req_done(void *arg)
{
	struct req	*rq = arg;
	struct conn	*c = rq->c;

	c->busy = false;
	if (c->dead)
		conn_free(c);
	else {
		send_json(c, rq->resp);
		if (stall_if_full(c))
			goto out;
		bufferevent_enable(c->bev, EV_READ);
		/*
		 * A pipelined request may already be buffered. Read it on the
		 * next loop turn, never from here: this may run inside a peer
		 * connection's own callback (an async command's reply), and
		 * the next command could free that connection under it.
		 */
		event_active(c->ev_next, 0, 0);
	}
 out:
	json_decref(rq->resp);
	json_decref(rq->root);
	free(rq);
}

/* Completion of a loop-thread command. */
static void
async_reply(void *cookie, json_t *response)
{
	struct req	*rq = cookie;

	rq->resp = response;
	req_done(rq);
}

static void
refuse(struct conn *c, int code, const char *msg)
{
	json_t	*e = admin_response_err(code, msg);

	send_json(c, e);
	json_decref(e);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);
	struct req	*rq;
	struct sp_err	 err = { 0 };
	unsigned char	 hdr[4], *body;
	size_t		 len;
	int		 r;

	if (c->busy || c->dead || c->stalled || evbuffer_get_length(in) < 4)
		return;
	if (stall_if_full(c))
		return;
	evbuffer_copyout(in, hdr, 4);
	if (admin_frame_length(hdr, &len) != 0) {
		/* Refuse, then close: the stream cannot be resynchronised. */
		refuse(c, SP_ERR_LIMIT, "request larger than the limit");
		bufferevent_disable(bev, EV_READ);
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		c->dead = true;
		return;
	}
	if (evbuffer_get_length(in) < 4 + len)
		return;
	evbuffer_drain(in, 4);
	if ((body = evbuffer_pullup(in, (ev_ssize_t)len)) == NULL && len > 0) {
		conn_close(c);
		return;
	}
	if ((rq = calloc(1, sizeof(*rq))) == NULL) {
		evbuffer_drain(in, len);
		refuse(c, SP_ERR_ALLOC, "out of memory");
		return;
	}
	rq->c = c;
	r = admin_request_parse(body, len, &rq->root, &rq->cmd, &rq->args,
	    &err);
	if (body != NULL)	/* parsed: the frame may hold a PIN */
		OPENSSL_cleanse(body, len);
	if (r != 0) {
		evbuffer_drain(in, len);
		refuse(c, err.code, err.msg);
		free(rq);
		return;
	}
	evbuffer_drain(in, len);
	if ((rq->h = admin_handler_find(rq->cmd)) == NULL) {
		refuse(c, SP_ERR_NOTFOUND, "unknown command");
		json_decref(rq->root);
		free(rq);
		return;
	}
	c->busy = true;
	bufferevent_disable(bev, EV_READ);
	if (rq->h->async != NULL) {
		rq->h->async(c->srv->ctx, rq->args, c->actor, async_reply, rq);
		return;
	}
	if ((r = pool_submit(c->srv->pool, req_work, req_done, rq)) != 0) {
		c->busy = false;
		bufferevent_enable(bev, EV_READ);
		refuse(c, r, r == SP_ERR_LIMIT ? "node busy: the worker queue "
		    "is full, retry later" : r == SP_ERR_STATE ? "node is "
		    "shutting down" : "out of memory");
		json_decref(rq->root);
		free(rq);
		return;
	}
}

static void
on_next(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;

	(void)fd;
	(void)what;
	on_read(c->bev, c);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	/* A connection marked dead without a request in flight: flushed. */
	if (c->dead && !c->busy &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		conn_free(c);
		return;
	}
	if (c->stalled && !c->dead && evbuffer_get_length(
	    bufferevent_get_output(bev)) <= ADMIN_OUT_RESUME) {
		c->stalled = false;
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		if (!c->busy) {
			bufferevent_enable(bev, EV_READ);
			/* Requests may already wait in the input buffer. */
			event_active(c->ev_next, 0, 0);
		}
	}
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		conn_close(arg);
}

static void
on_accept(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct admin_server	*srv = arg;
	struct conn		*c;
	struct ucred		 uc;
	socklen_t		 ucl = sizeof(uc);
	struct timeval		 tv = { IDLE_TIMEOUT, 0 };

	(void)lev;
	(void)sa;
	(void)salen;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ucl) == -1 ||
	    (uc.uid != 0 && uc.uid != geteuid())) {
		log_warnx("admin: refused connection from uid %d",
		    ucl == sizeof(uc) ? (int)uc.uid : -1);
		evutil_closesocket(fd);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->ev_next = event_new(evconnlistener_get_base(srv->lev), -1, 0,
	    on_next, c)) == NULL ||
	    (c->bev = bufferevent_socket_new(evconnlistener_get_base(
	    srv->lev), fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		if (c != NULL && c->ev_next != NULL)
			event_free(c->ev_next);
		free(c);
		evutil_closesocket(fd);
		return;
	}
	c->srv = srv;
	snprintf(c->actor, sizeof(c->actor), "admin:uid=%u", (unsigned)uc.uid);
	c->next = srv->conns;
	if (srv->conns != NULL)
		srv->conns->prev = c;
	srv->conns = c;
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_setwatermark(c->bev, EV_READ, 0, 4 + ADMIN_MAX_MSG);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

int
admin_server_start(struct event_base *base, struct pool *pool,
    const char *sockpath, struct admin_ctx *ctx, struct admin_server **out,
    struct sp_err *err)
{
	struct admin_server	*srv;
	struct sockaddr_un	 sun = { .sun_family = AF_UNIX };
	mode_t			 old;

	*out = NULL;
	if (strlen(sockpath) >= sizeof(sun.sun_path))
		return sp_err_set(err, SP_ERR_INVALID, "%s: socket path too "
		    "long", sockpath);
	if ((srv = calloc(1, sizeof(*srv))) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	strcpy(sun.sun_path, sockpath);
	strcpy(srv->path, sockpath);
	srv->pool = pool;
	srv->ctx = ctx;
	/* The node holds DIR's lock, so a socket file here is stale. */
	(void)unlink(sockpath);
	old = umask(0177);
	srv->lev = evconnlistener_new_bind(base, on_accept, srv,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
	    (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (srv->lev == NULL) {
		sp_err_set(err, SP_ERR_IO, "%s: %s", sockpath, strerror(errno));
		free(srv);
		return SP_ERR_IO;
	}
	if (chmod(sockpath, 0600) == -1) {
		sp_err_set(err, SP_ERR_IO, "%s: %s", sockpath, strerror(errno));
		admin_server_free(srv);
		return SP_ERR_IO;
	}
	*out = srv;
	return 0;
}

void
admin_server_free(struct admin_server *srv)
{
	if (srv == NULL)
		return;
	evconnlistener_free(srv->lev);
	while (srv->conns != NULL)
		conn_free(srv->conns);
	(void)unlink(srv->path);
	free(srv);
}
