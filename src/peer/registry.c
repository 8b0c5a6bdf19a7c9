/*
 * The listener's endpoint registry (DESIGN.md section 5): a table of rows
 * (method, path pattern, rules, body limit, handler) that va/, ra/ and
 * signer/ add to; ping and info are its first two rows. The requests being
 * served (struct peer_req), their replies and deferred replies live here
 * too; the listener does the transport (listener.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "peer/listener_int.h"
#include "util/log.h"
#include "util/util.h"

#define DEFER_MAX_MS	3600000

struct registry {
	struct peer_endpoint	rows[PEER_ENDPOINTS_MAX];
	size_t			n;
};

/* --- path patterns --------------------------------------------------------- */

static bool
seg_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/* One segment of a request path: a name, never "." or "..". */
static bool
seg_ok(const char *s, size_t n)
{
	if (n == 0 || n > PEER_NAME_MAX)
		return false;
	if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!seg_char(s[i]))
			return false;
	return true;
}

/* A pattern: "/" segments, literal names, "*", and "**" only last. */
static bool
pattern_ok(const char *pat)
{
	size_t	n, wild = 0;

	if (pat == NULL || *pat != '/' || strlen(pat) > PEER_URL_MAX)
		return false;
	while (*pat == '/') {
		pat++;
		n = strcspn(pat, "/");
		if (n == 2 && strncmp(pat, "**", 2) == 0) {
			if (pat[2] != '\0')
				return false;
			wild++;
		} else if (n == 1 && *pat == '*')
			wild++;
		else if (!seg_ok(pat, n))
			return false;
		pat += n;
	}
	return *pat == '\0' && wild <= PEER_PARAMS_MAX;
}

/*
 * Matches path against pat; on success r's params point into r->pbuf.
 * "*" takes one segment, "**" the rest (every segment of it a name).
 */
static bool
pattern_match(const char *pat, const char *path, struct peer_req *r)
{
	size_t	np, nq, used = 0, k = 0;
	char	*out = r->pbuf;

	memset(r->params, 0, sizeof(r->params));
	while (*pat == '/' && *path == '/') {
		pat++;
		path++;
		np = strcspn(pat, "/");
		nq = strcspn(path, "/");
		if (np == 2 && strncmp(pat, "**", 2) == 0) {
			const char	*s = path;
			size_t		 len = strlen(path);

			for (;;) {
				size_t m = strcspn(s, "/");

				if (!seg_ok(s, m))
					return false;
				if (s[m] == '\0')
					break;
				s += m + 1;
			}
			if (len == 0 || used + len + 1 > sizeof(r->pbuf))
				return false;
			memcpy(out + used, path, len + 1);
			r->params[k++] = out + used;
			return true;
		}
		if (np == 1 && *pat == '*') {
			if (!seg_ok(path, nq) || used + nq + 1 > sizeof(r->pbuf))
				return false;
			memcpy(out + used, path, nq);
			out[used + nq] = '\0';
			r->params[k++] = out + used;
			used += nq + 1;
		} else if (np != nq || strncmp(pat, path, np) != 0)
			return false;
		pat += np;
		path += nq;
	}
	return *pat == '\0' && *path == '\0';
}

/* --- the table ------------------------------------------------------------- */

static struct registry *
reg_get(struct peer *p)
{
	if (p->reg == NULL)
		p->reg = calloc(1, sizeof(*p->reg));
	return p->reg;
}

int
peer_endpoint_add(struct peer *p, const struct peer_endpoint *ep,
    struct sp_err *err)
{
	struct registry	*g;
	const int	 all = PEER_GET | PEER_POST | PEER_PUT;

	if ((g = reg_get(p)) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	if (ep->handler == NULL || ep->methods == 0 ||
	    (ep->methods & ~all) != 0 || ep->max_body > PEER_MAX_BODY ||
	    !pattern_ok(ep->path))
		return sp_err_set(err, SP_ERR_INVALID, "peer endpoint \"%s\": "
		    "bad row (path, methods, body limit or handler)",
		    ep->path ? ep->path : "");
	for (size_t i = 0; i < g->n; i++)
		if (strcmp(g->rows[i].path, ep->path) == 0 &&
		    (g->rows[i].methods & ep->methods) != 0)
			return sp_err_set(err, SP_ERR_EXISTS, "peer endpoint "
			    "\"%s\" is already registered", ep->path);
	if (g->n == PEER_ENDPOINTS_MAX)
		return sp_err_set(err, SP_ERR_LIMIT, "more than %d peer "
		    "endpoints", PEER_ENDPOINTS_MAX);
	g->rows[g->n++] = *ep;
	return 0;
}

int
registry_match(struct peer *p, const char *path, int method,
    struct peer_req *r, int *idx)
{
	struct registry	*g = p->reg;
	int		 status = 404;

	*idx = -1;
	if (g == NULL || path == NULL)
		return 404;
	for (size_t i = 0; i < g->n; i++) {
		if (!pattern_match(g->rows[i].path, path, r))
			continue;
		if ((g->rows[i].methods & method) == 0) {
			status = 405;
			continue;
		}
		*idx = (int)i;
		r->ep = &g->rows[i];
		return 0;
	}
	memset(r->params, 0, sizeof(r->params));
	return status;
}

const struct peer_endpoint *
registry_get(struct peer *p, int idx)
{
	if (p->reg == NULL || idx < 0 || (size_t)idx >= p->reg->n)
		return NULL;
	return &p->reg->rows[idx];
}

size_t
registry_max_body(struct peer *p)
{
	size_t	m = 0;

	for (size_t i = 0; p->reg != NULL && i < p->reg->n; i++)
		if (p->reg->rows[i].max_body > m)
			m = p->reg->rows[i].max_body;
	return m;
}

void
registry_free(struct peer *p)
{
	free(p->reg);
	p->reg = NULL;
}

/* --- requests -------------------------------------------------------------- */

int
peer_req_method(const struct peer_req *r)
{
	return r->method;
}

const char *
peer_req_path(const struct peer_req *r)
{
	return r->path;
}

const char *
peer_req_param(const struct peer_req *r, size_t i)
{
	return i < PEER_PARAMS_MAX ? r->params[i] : NULL;
}

json_t *
peer_req_body(const struct peer_req *r)
{
	return r->body;
}

X509 *
peer_req_cert(const struct peer_req *r)
{
	return r->cert;
}

const char *
peer_req_role(const struct peer_req *r)
{
	return r->role;
}

const char *
peer_req_client(const struct peer_req *r)
{
	return r->client;
}

const char *
peer_req_node(const struct peer_req *r)
{
	return r->p->node;
}

void
peer_req_free(struct peer_req *r)
{
	if (r == NULL)
		return;
	if (r->timer != NULL)
		event_free(r->timer);
	json_decref(r->body);
	X509_free(r->cert);
	free(r);
}

/* Sends (unless the client left) and ends a request. */
static void
finish(struct peer_req *r, int status, json_t *doc)
{
	if (r->done) {
		log_warnx("peer: %s: a second reply to one request dropped",
		    r->path);
		json_decref(doc);
		return;
	}
	r->done = true;
	if (r->timer != NULL)
		evtimer_del(r->timer);
	listener_send(r, status, doc);		/* steals doc */
	/* Not deferred: the dispatcher frees r once the handler returns. */
	if (r->deferred)
		peer_req_free(r);
}

void
peer_reply(struct peer_req *r, int status, json_t *doc)
{
	finish(r, status, doc);
}

void
peer_reply_error(struct peer_req *r, int status, const char *code,
    const char *msg)
{
	finish(r, status, json_pack("{s:{s:s,s:s}}", "error", "code", code,
	    "message", msg));
}

static void
on_defer_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct peer_req	*r = arg;

	(void)fd;
	(void)what;
	if (r->done)
		return;
	/* cancel may reply; finish() would free r, so keep it for now. */
	r->deferred = false;
	if (r->cancel != NULL)
		r->cancel(r, PEER_CANCEL_TIMEOUT, r->cancel_arg);
	if (!r->done) {
		r->done = true;
		listener_send(r, 503, json_pack("{s:{s:s,s:s}}", "error",
		    "code", "timeout", "message", "no answer in time"));
	}
	peer_req_free(r);
}

int
peer_req_defer(struct peer_req *r, int timeout_ms, peer_cancel_fn *cancel,
    void *arg)
{
	struct timeval	tv;

	if (r->done || r->deferred || timeout_ms < 1 ||
	    timeout_ms > DEFER_MAX_MS)
		return SP_ERR_INVALID;
	if (r->timer == NULL &&
	    (r->timer = evtimer_new(r->p->base, on_defer_timeout, r)) == NULL)
		return SP_ERR_ALLOC;
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	if (evtimer_add(r->timer, &tv) != 0)
		return SP_ERR_ALLOC;
	r->deferred = true;
	r->cancel = cancel;
	r->cancel_arg = arg;
	return 0;
}

void
registry_req_gone(struct peer_req *r)
{
	r->conn = NULL;
	r->req = NULL;
	if (r->done)
		return;
	r->done = true;
	if (r->timer != NULL)
		evtimer_del(r->timer);
	if (r->cancel != NULL)
		r->cancel(r, PEER_CANCEL_GONE, r->cancel_arg);
	peer_req_free(r);
}

void
registry_dispatch(struct peer_req *r)
{
	r->ep->handler(r, r->ep->arg);
	if (r->deferred)
		return;		/* the handler's now; it frees on reply */
	if (!r->done) {
		log_warnx("peer: endpoint %s returned without a reply",
		    r->ep->path);
		peer_reply_error(r, 500, "internal", "no reply");
	}
	peer_req_free(r);
}

/* --- the built-in rows ----------------------------------------------------- */

static void
ep_ping(struct peer_req *r, void *arg)
{
	struct sp_err	 err = { 0 };
	const char	*nonce = NULL;
	char		 ts[32];
	json_t		*doc;

	(void)arg;
	if (r->body != NULL && peer_ping_decode(r->body, &nonce, &err) != 0) {
		peer_reply_error(r, 400, "invalid", err.msg);
		return;
	}
	sp_time_fmt(sp_now(), ts, sizeof(ts));
	doc = json_pack("{s:b,s:s,s:s}", "pong", 1, "node", r->p->node, "time",
	    ts);
	if (nonce != NULL)
		json_object_set_new(doc, "nonce", json_string(nonce));
	peer_reply(r, 200, doc);
}

static void
ep_info(struct peer_req *r, void *arg)
{
	(void)arg;
	peer_reply(r, 200, json_pack("{s:s,s:s,s:s,s:[s]}", "node", r->p->node,
	    "software", "sallyport", "version", SP_VERSION, "services",
	    "peer"));
}

int
registry_builtin(struct peer *p, struct sp_err *err)
{
	/* Every request needs /peerincoming (checked first); none more. */
	static const struct peer_endpoint rows[] = {
		{ PEER_GET | PEER_POST, "/ping", NULL, NULL, 1024, ep_ping,
		    NULL },
		{ PEER_GET, "/info", NULL, NULL, 0, ep_info, NULL },
	};
	int	r;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if ((r = peer_endpoint_add(p, &rows[i], err)) != 0)
			return r;
	return 0;
}
