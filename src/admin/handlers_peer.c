/*
 * Admin commands for the peer transport. They touch loop-owned state
 * (connectors, pools, the listener), so they run on the loop thread
 * (admin_async_fn). Those that change something reply when its database
 * write, done on a worker, has come back (the loop never waits for a
 * commit); ping replies when its requests have come back.
 */
#include <stdlib.h>
#include <string.h>

#include "admin/args.h"
#include "admin/handlers.h"
#include "admin/proto.h"
#include "net/pool.h"
#include "peer/peer.h"
#include "pub/pub.h"
#include "util/util.h"

static void
done(admin_reply_fn *reply, void *cookie, int r, const struct sp_err *err,
    json_t *result)
{
	if (r == 0)
		reply(cookie, admin_response_ok(result));
	else {
		json_decref(result);
		reply(cookie, admin_response_err(r, err->msg[0] ? err->msg :
		    sp_rc_str(r)));
	}
}

/* A required string argument; otherwise replies with the reason. */
static bool
need(json_t *args, const char *key, const char **out, admin_reply_fn *reply,
    void *cookie)
{
	struct sp_err	err = { 0 };
	int		r;

	if ((r = admin_arg_str(args, key, true, out, &err)) == 0)
		return true;
	done(reply, cookie, r, &err, NULL);
	return false;
}

/* For a value already read as optional: replies if it is missing. */
static bool
present(admin_reply_fn *reply, void *cookie, const char *v, const char *what)
{
	struct sp_err	err = { 0 };

	if (v != NULL)
		return true;
	sp_err_set(&err, SP_ERR_INVALID, "missing argument \"%s\"", what);
	done(reply, cookie, err.code, &err, NULL);
	return false;
}

static void
a_status(struct admin_ctx *ctx, json_t *args, const char *actor,
    admin_reply_fn *reply, void *cookie)
{
	(void)args;
	(void)actor;
	done(reply, cookie, 0, NULL, peer_status(ctx->peer));
}

static json_t	*connector_json(struct peer *, const char *);

/* A change in flight: what to answer once its write has come back. */
enum later_kind { LK_STATUS, LK_CONNECTOR, LK_DELETED };

struct later {
	struct admin_ctx	*ctx;
	admin_reply_fn		*reply;
	void			*cookie;
	enum later_kind		 kind;
	char			 name[128];
};

static void
later_done(void *arg, int rc, const struct sp_err *err)
{
	struct later	*l = arg;
	json_t		*res = NULL;

	if (rc == 0) {
		switch (l->kind) {
		case LK_STATUS:
			res = peer_status(l->ctx->peer);
			break;
		case LK_CONNECTOR:
			res = connector_json(l->ctx->peer, l->name);
			break;
		case LK_DELETED:
			res = json_pack("{s:s,s:b}", "name", l->name,
			    "deleted", 1);
			break;
		}
	}
	done(l->reply, l->cookie, rc, err, res);
	free(l);
}

/* NULL (and the reply sent) if out of memory. */
static struct later *
later_new(struct admin_ctx *ctx, enum later_kind kind, const char *name,
    admin_reply_fn *reply, void *cookie)
{
	struct later	*l;
	struct sp_err	 err = { 0 };

	if ((l = calloc(1, sizeof(*l))) == NULL) {
		sp_err_set(&err, SP_ERR_ALLOC, "out of memory");
		done(reply, cookie, err.code, &err, NULL);
		return NULL;
	}
	l->ctx = ctx;
	l->reply = reply;
	l->cookie = cookie;
	l->kind = kind;
	snprintf(l->name, sizeof(l->name), "%s", name ? name : "");
	return l;
}

/* The change was refused before anything was queued: answer now. */
static void
later_refused(struct later *l, int r, const struct sp_err *err)
{
	done(l->reply, l->cookie, r, err, NULL);
	free(l);
}

typedef int set_fn(struct peer *, bool, const char *, peer_done_fn *, void *,
    struct sp_err *);

/* An on/off switch of the peer service; replies with the new status. */
static void
toggle(struct admin_ctx *ctx, set_fn *set, bool on, const char *actor,
    admin_reply_fn *reply, void *cookie)
{
	struct sp_err	 err = { 0 };
	struct later	*l;
	int		 r;

	if ((l = later_new(ctx, LK_STATUS, NULL, reply, cookie)) == NULL)
		return;
	if ((r = set(ctx->peer, on, actor, later_done, l, &err)) != 0)
		later_refused(l, r, &err);
}

static void
a_incoming_enable(struct admin_ctx *ctx, json_t *args, const char *actor,
    admin_reply_fn *reply, void *cookie)
{
	(void)args;
	toggle(ctx, peer_set_incoming_async, true, actor, reply, cookie);
}

static void
a_incoming_disable(struct admin_ctx *ctx, json_t *args, const char *actor,
    admin_reply_fn *reply, void *cookie)
{
	(void)args;
	toggle(ctx, peer_set_incoming_async, false, actor, reply, cookie);
}

static void
a_incoming_keybinding(struct admin_ctx *ctx, json_t *args, const char *actor,
    admin_reply_fn *reply, void *cookie)
{
	struct sp_err	 err = { 0 };
	const char	*kb;
	struct later	*l;
	int		 r;

	if (!need(args, "keybinding", &kb, reply, cookie) ||
	    (l = later_new(ctx, LK_STATUS, NULL, reply, cookie)) == NULL)
		return;
	if ((r = peer_set_incoming_keybinding_async(ctx->peer, kb, actor,
	    later_done, l, &err)) != 0)
		later_refused(l, r, &err);
}

static void
a_outgoing_enable(struct admin_ctx *ctx, json_t *args, const char *actor,
    admin_reply_fn *reply, void *cookie)
{
	(void)args;
	toggle(ctx, peer_set_outgoing_async, true, actor, reply, cookie);
}

static void
a_outgoing_disable(struct admin_ctx *ctx, json_t *args, const char *actor,
    admin_reply_fn *reply, void *cookie)
{
	(void)args;
	toggle(ctx, peer_set_outgoing_async, false, actor, reply, cookie);
}

static json_t *
connector_json(struct peer *p, const char *name)
{
	json_t	*all = peer_connector_list(p), *v, *found = NULL;
	size_t	 i;

	json_array_foreach(all, i, v)
		if (strcmp(json_string_value(json_object_get(v, "name")),
		    name) == 0)
			found = json_incref(v);
	json_decref(all);
	return found;
}

/* Fills a connector configuration from the arguments; false if bad. */
static bool
conf_from(json_t *args, struct peer_connector_conf *cf, struct sp_err *err)
{
	long long	max;

	memset(cf, 0, sizeof(*cf));
	cf->enabled = -1;
	if (admin_arg_str(args, "name", false, &cf->name, err) != 0 ||
	    admin_arg_str(args, "url", false, &cf->url, err) != 0 ||
	    admin_arg_str(args, "auth", false, &cf->auth, err) != 0 ||
	    admin_arg_int(args, "max", 1, PEER_CONNECTOR_MAX, &max, err) != 0)
		return false;
	cf->max = (int)max;
	return true;
}

static void
a_connector_add(struct admin_ctx *ctx, json_t *args, const char *actor,
    admin_reply_fn *reply, void *cookie)
{
	struct peer_connector_conf	 cf;
	struct later			*l;
	struct sp_err			 err = { 0 };
	int				 r;

	if (!conf_from(args, &cf, &err)) {
		done(reply, cookie, err.code, &err, NULL);
		return;
	}
	if (!present(reply, cookie, cf.name, "name") ||
	    !present(reply, cookie, cf.url, "url") ||
	    !present(reply, cookie, cf.auth, "auth"))
		return;
	cf.enabled = 1;
	if ((l = later_new(ctx, LK_CONNECTOR, cf.name, reply, cookie)) == NULL)
		return;
	if ((r = peer_connector_add_async(ctx->peer, &cf, actor, later_done,
	    l, &err)) != 0)
		later_refused(l, r, &err);
}

static void	connector_edit(struct admin_ctx *ctx, json_t *args,
		    const char *actor, admin_reply_fn *reply, void *cookie);

/* --check-every: the publishers' schedule, set on a worker first. */
struct every {
	struct admin_ctx	*ctx;
	json_t			*args;
	char			 actor[128];
	admin_reply_fn		*reply;
	void			*cookie;
	long long		 secs;
	int			 rc;
	struct sp_err		 err;
};

static void
every_work(void *arg)
{
	struct every	*e = arg;
	const char	*name = json_string_value(json_object_get(e->args,
			    "name"));

	e->rc = pub_sync_check_every(e->ctx->pub, name, e->secs, &e->err);
}

static void
every_done(void *arg)
{
	struct every	*e = arg;

	if (e->rc != 0)
		done(e->reply, e->cookie, e->rc, &e->err, NULL);
	else
		connector_edit(e->ctx, e->args, e->actor, e->reply, e->cookie);
	json_decref(e->args);
	free(e);
}

static void
a_connector_edit(struct admin_ctx *ctx, json_t *args, const char *actor,
    admin_reply_fn *reply, void *cookie)
{
	struct sp_err	 err = { 0 };
	struct every	*e;
	long long	 secs;
	int		 r;

	if (json_object_get(args, "check_every") == NULL) {
		connector_edit(ctx, args, actor, reply, cookie);
		return;
	}
	if ((r = admin_arg_int(args, "check_every", 0, 366 * 86400, &secs,
	    &err)) != 0 || (r = ctx->pub == NULL ? sp_err_set(&err,
	    SP_ERR_STATE, "no publishers on this node") : 0) != 0) {
		done(reply, cookie, r, &err, NULL);
		return;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL ||
	    (e->args = json_deep_copy(args)) == NULL) {
		free(e);
		sp_err_set(&err, SP_ERR_ALLOC, "out of memory");
		done(reply, cookie, err.code, &err, NULL);
		return;
	}
	json_object_del(e->args, "check_every");
	e->ctx = ctx;
	e->secs = secs;
	e->reply = reply;
	e->cookie = cookie;
	snprintf(e->actor, sizeof(e->actor), "%s", actor ? actor : "");
	if (pool_submit(ctx->pool, every_work, every_done, e) != 0) {
		json_decref(e->args);
		free(e);
		sp_err_set(&err, SP_ERR_LIMIT, "the node is busy; retry");
		done(reply, cookie, err.code, &err, NULL);
	}
}

static void
connector_edit(struct admin_ctx *ctx, json_t *args, const char *actor,
    admin_reply_fn *reply, void *cookie)
{
	struct peer_connector_conf	 cf;
	struct later			*l;
	struct sp_err			 err = { 0 };
	int				 r;

	if (!conf_from(args, &cf, &err)) {
		done(reply, cookie, err.code, &err, NULL);
		return;
	}
	if (!present(reply, cookie, cf.name, "name") ||
	    (l = later_new(ctx, LK_CONNECTOR, cf.name, reply, cookie)) == NULL)
		return;
	if ((r = peer_connector_edit_async(ctx->peer, &cf, actor, later_done,
	    l, &err)) != 0)
		later_refused(l, r, &err);
}

static void
set_enabled(struct admin_ctx *ctx, json_t *args, const char *actor, int on,
    admin_reply_fn *reply, void *cookie)
{
	struct peer_connector_conf	 cf = { 0 };
	struct later			*l;
	struct sp_err			 err = { 0 };
	int				 r;

	cf.enabled = on;
	if (!need(args, "name", &cf.name, reply, cookie) ||
	    (l = later_new(ctx, LK_CONNECTOR, cf.name, reply, cookie)) == NULL)
		return;
	if ((r = peer_connector_edit_async(ctx->peer, &cf, actor, later_done,
	    l, &err)) != 0)
		later_refused(l, r, &err);
}

static void
a_connector_enable(struct admin_ctx *ctx, json_t *args, const char *actor,
    admin_reply_fn *reply, void *cookie)
{
	set_enabled(ctx, args, actor, 1, reply, cookie);
}

static void
a_connector_disable(struct admin_ctx *ctx, json_t *args, const char *actor,
    admin_reply_fn *reply, void *cookie)
{
	set_enabled(ctx, args, actor, 0, reply, cookie);
}

static void
a_connector_clone(struct admin_ctx *ctx, json_t *args, const char *actor,
    admin_reply_fn *reply, void *cookie)
{
	struct later	*l;
	struct sp_err	 err = { 0 };
	const char	*from, *to;
	int		 r;

	if (!need(args, "name", &from, reply, cookie) ||
	    !need(args, "new_name", &to, reply, cookie) ||
	    (l = later_new(ctx, LK_CONNECTOR, to, reply, cookie)) == NULL)
		return;
	if ((r = peer_connector_clone_async(ctx->peer, from, to, actor,
	    later_done, l, &err)) != 0)
		later_refused(l, r, &err);
}

static void
a_connector_delete(struct admin_ctx *ctx, json_t *args, const char *actor,
    admin_reply_fn *reply, void *cookie)
{
	struct later	*l;
	struct sp_err	 err = { 0 };
	const char	*name;
	int		 r;

	if (!need(args, "name", &name, reply, cookie) ||
	    (l = later_new(ctx, LK_DELETED, name, reply, cookie)) == NULL)
		return;
	if ((r = peer_connector_delete_async(ctx->peer, name, actor,
	    later_done, l, &err)) != 0)
		later_refused(l, r, &err);
}

static void
a_connector_list(struct admin_ctx *ctx, json_t *args, const char *actor,
    admin_reply_fn *reply, void *cookie)
{
	json_t	*list = peer_connector_list(ctx->peer), *view, *c, *v;
	size_t	 i;

	(void)args;
	(void)actor;
	/* What the publishers know of each connector: sync and check. */
	view = ctx->pub != NULL ? pub_sync_view(ctx->pub) : NULL;
	json_array_foreach(list, i, c) {
		v = json_object_get(view, json_string_value(json_object_get(c,
		    "name")) ?: "");
		json_object_set_new(c, "sync", json_string(json_string_value(
		    json_object_get(v, "sync")) ?: "-"));
		json_object_set_new(c, "check", json_string(json_string_value(
		    json_object_get(v, "check")) ?: "-"));
	}
	json_decref(view);
	done(reply, cookie, 0, NULL, list);
}

static void
a_reset(struct admin_ctx *ctx, json_t *args, const char *actor,
    admin_reply_fn *reply, void *cookie)
{
	struct sp_err	 err = { 0 };
	const char	*name;
	int		 r;

	(void)actor;
	if (!need(args, "name", &name, reply, cookie))
		return;
	r = peer_connector_reset(ctx->peer, name, &err);
	done(reply, cookie, r, &err, r == 0 ? connector_json(ctx->peer, name) :
	    NULL);
}

struct pingctx {
	admin_reply_fn	*reply;
	void		*cookie;
};

static void
ping_done(void *arg, json_t *result, int rc, const struct sp_err *err)
{
	struct pingctx	*pc = arg;

	done(pc->reply, pc->cookie, rc, err, result);
	free(pc);
}

static void
a_ping(struct admin_ctx *ctx, json_t *args, const char *actor,
    admin_reply_fn *reply, void *cookie)
{
	struct pingctx	*pc;
	struct sp_err	 err = { 0 };
	const char	*name;
	long long	 count, par;

	(void)actor;
	if (!need(args, "name", &name, reply, cookie))
		return;
	if (admin_arg_int(args, "count", 1, 100000, &count, &err) != 0 ||
	    admin_arg_int(args, "parallel", 1, 1024, &par, &err) != 0) {
		done(reply, cookie, err.code, &err, NULL);
		return;
	}
	/* Absent: one ping, one at a time. */
	count = count ? count : 1;
	par = par ? par : 1;
	if ((pc = calloc(1, sizeof(*pc))) == NULL) {
		sp_err_set(&err, SP_ERR_ALLOC, "out of memory");
		done(reply, cookie, err.code, &err, NULL);
		return;
	}
	pc->reply = reply;
	pc->cookie = cookie;
	peer_ping(ctx->peer, name, (int)count, (int)par, ping_done, pc);
}

const struct admin_handler admin_handlers_peer[] = {
	{ "peer.status", NULL, a_status },
	{ "peer.incoming.enable", NULL, a_incoming_enable },
	{ "peer.incoming.disable", NULL, a_incoming_disable },
	{ "peer.incoming.keybinding", NULL, a_incoming_keybinding },
	{ "peer.outgoing.enable", NULL, a_outgoing_enable },
	{ "peer.outgoing.disable", NULL, a_outgoing_disable },
	{ "peer.connector.add", NULL, a_connector_add },
	{ "peer.connector.edit", NULL, a_connector_edit },
	{ "peer.connector.clone", NULL, a_connector_clone },
	{ "peer.connector.delete", NULL, a_connector_delete },
	{ "peer.connector.enable", NULL, a_connector_enable },
	{ "peer.connector.disable", NULL, a_connector_disable },
	{ "peer.connector.list", NULL, a_connector_list },
	{ "peer.ping", NULL, a_ping },
	{ "peer.reset", NULL, a_reset },
	{ NULL },
};
