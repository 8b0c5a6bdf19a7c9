/*
 * Admin commands for publishers (pub/pub.h). Each runs on a worker thread
 * (the fn form): they read and write the store, never the loop's state.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/args.h"
#include "admin/handlers.h"
#include "admin/proto.h"
#include "pub/pub.h"

static int
need_pub(struct admin_ctx *ctx, struct sp_err *err)
{
	if (ctx->pub == NULL)
		return sp_err_set(err, SP_ERR_STATE, "publishers are not "
		    "available on this node");
	return 0;
}

/* A flag pair: on sets 1, off sets 0, neither -1 (unchanged). */
static int
flag(json_t *args, const char *on, const char *off, int *out,
    struct sp_err *err)
{
	bool	a = false, b = false;
	int	r;

	if ((r = admin_arg_bool(args, on, &a, err)) != 0 ||
	    (off != NULL && (r = admin_arg_bool(args, off, &b, err)) != 0))
		return r;
	if (a && b)
		return sp_err_set(err, SP_ERR_INVALID, "\"%s\" and \"%s\" "
		    "contradict each other", on, off);
	*out = a ? 1 : b ? 0 : -1;
	return 0;
}

static int
settings(json_t *args, bool edit, struct pub_settings *s, const char ***cas,
    struct sp_err *err)
{
	bool	allcas = false;
	int	r;

	*cas = NULL;
	if ((r = admin_arg_str(args, "connector", !edit, &s->connector,
	    err)) != 0 ||
	    (r = admin_arg_strlist(args, "cas", PUB_CAS_MAX, cas, &s->ncas,
	    err)) != 0 ||
	    (r = flag(args, "only_revoked", edit ? "all_certs" : NULL,
	    &s->only_revoked, err)) != 0 ||
	    (r = flag(args, "no_der", edit ? "der" : NULL, &s->no_der,
	    err)) != 0 ||
	    (r = flag(args, "no_crls", edit ? "crls" : NULL, &s->no_crls,
	    err)) != 0 ||
	    (edit && (r = admin_arg_bool(args, "all_cas", &allcas, err)) != 0))
		return r;
	if (allcas && *cas != NULL)
		return sp_err_set(err, SP_ERR_INVALID, "--all-cas and --ca "
		    "contradict each other");
	s->cas = *cas;
	if (allcas) {
		static const char *const none[1] = { NULL };

		s->cas = none;
		s->ncas = 0;
	} else if (!edit && s->cas == NULL)
		s->ncas = 0;
	return 0;
}

/* publisher.add and publisher.edit: the same arguments. */
static int
add_or_edit(struct admin_ctx *ctx, json_t *args, bool edit,
    const char *actor, json_t **out, struct sp_err *err)
{
	struct pub_settings	 s = { 0 };
	const char		*name, **cas = NULL;
	int			 r;

	if ((r = need_pub(ctx, err)) == 0 &&
	    (r = admin_arg_str(args, "name", true, &name, err)) == 0 &&
	    (r = settings(args, edit, &s, &cas, err)) == 0)
		r = edit ? pub_edit(ctx->pub, name, &s, actor, out, err) :
		    pub_add(ctx->pub, name, &s, actor, out, err);
	free(cas);
	return r;
}

static int
h_add(struct admin_ctx *ctx, json_t *args, const char *actor, json_t **out,
    struct sp_err *err)
{
	return add_or_edit(ctx, args, false, actor, out, err);
}

static int
h_edit(struct admin_ctx *ctx, json_t *args, const char *actor, json_t **out,
    struct sp_err *err)
{
	return add_or_edit(ctx, args, true, actor, out, err);
}

static int
h_delete(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	const char	*name;
	int		 r;

	if ((r = need_pub(ctx, err)) != 0 ||
	    (r = admin_arg_str(args, "name", true, &name, err)) != 0)
		return r;
	return pub_delete(ctx->pub, name, actor, out, err);
}

static int
h_list(struct admin_ctx *ctx, json_t *args, const char *actor, json_t **out,
    struct sp_err *err)
{
	int	r;

	(void)args;
	(void)actor;
	if ((r = need_pub(ctx, err)) != 0)
		return r;
	return pub_list(ctx->pub, out, err);
}

static int
h_show(struct admin_ctx *ctx, json_t *args, const char *actor, json_t **out,
    struct sp_err *err)
{
	const char	*name;
	int		 r;

	(void)actor;
	if ((r = need_pub(ctx, err)) != 0 ||
	    (r = admin_arg_str(args, "name", true, &name, err)) != 0)
		return r;
	return pub_show(ctx->pub, name, out, err);
}

static int
h_queue(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	const char	*name;
	long long	 limit = 0;
	int		 r;

	(void)actor;
	if ((r = need_pub(ctx, err)) != 0 ||
	    (r = admin_arg_str(args, "name", true, &name, err)) != 0 ||
	    (r = admin_arg_int(args, "limit", 0, 10000, &limit, err)) != 0)
		return r;
	return pub_queue(ctx->pub, name, (size_t)limit, out, err);
}

static int
h_retry(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	const char	*name;
	int		 r;

	if ((r = need_pub(ctx, err)) != 0 ||
	    (r = admin_arg_str(args, "name", true, &name, err)) != 0)
		return r;
	r = pub_retry(ctx->pub, name, actor, out, err);
	if (r == 0)
		pub_wake(ctx->pub);
	return r;
}

static int
h_republish(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	const char	*name, *ca;
	int		 r;

	if ((r = need_pub(ctx, err)) != 0 ||
	    (r = admin_arg_str(args, "name", true, &name, err)) != 0 ||
	    (r = admin_arg_str(args, "ca", false, &ca, err)) != 0)
		return r;
	r = pub_republish(ctx->pub, name, ca, actor, out, err);
	if (r == 0)
		pub_wake(ctx->pub);
	return r;
}

/* "2026-12-01", "2026-12-01T10:00:00Z": seconds since the epoch (UTC). */
static int
iso_time(const char *s, int64_t *out, struct sp_err *err)
{
	struct tm	 tm = { 0 };
	const char	*e;

	if ((e = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) != NULL) {
		if (*e == 'Z')
			e++;
	} else {
		memset(&tm, 0, sizeof(tm));
		e = strptime(s, "%Y-%m-%d", &tm);
	}
	if (e == NULL || *e != '\0')
		return sp_err_set(err, SP_ERR_INVALID, "--since: not "
		    "YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)");
	*out = (int64_t)timegm(&tm);
	return 0;
}

static int
h_sync_start(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	struct pub_sync_opts	 o = { 0 };
	const char		*since = NULL, **cas = NULL;
	long long		 batch = 0;
	int			 r;

	if ((r = need_pub(ctx, err)) != 0 ||
	    (r = admin_arg_str(args, "connector", true, &o.connector,
	    err)) != 0 ||
	    (r = admin_arg_strlist(args, "cas", PUB_CAS_MAX, &cas, &o.ncas,
	    err)) != 0 ||
	    (r = admin_arg_str(args, "subset", false, &o.subset, err)) != 0 ||
	    (r = admin_arg_str(args, "since", false, &since, err)) != 0 ||
	    (r = admin_arg_int(args, "batch", 0, 2000, &batch, err)) != 0 ||
	    (r = admin_arg_bool(args, "restart", &o.restart, err)) != 0 ||
	    (since != NULL && (r = iso_time(since, &o.since, err)) != 0)) {
		free(cas);
		return r;
	}
	o.cas = cas;
	o.batch = batch;
	r = pub_sync_start(ctx->pub, &o, actor, out, err);
	free(cas);
	return r;
}

static int
h_sync_stop(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	const char	*c;
	int		 r;

	if ((r = need_pub(ctx, err)) != 0 ||
	    (r = admin_arg_str(args, "connector", true, &c, err)) != 0)
		return r;
	return pub_sync_stop(ctx->pub, c, actor, out, err);
}

static int
h_sync_status(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	const char	*c;
	int		 r;

	(void)actor;
	if ((r = need_pub(ctx, err)) != 0 ||
	    (r = admin_arg_str(args, "connector", false, &c, err)) != 0)
		return r;
	return pub_sync_status(ctx->pub, c, out, err);
}

static int
h_sync_report(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	const char	*c;
	int		 r;

	(void)actor;
	if ((r = need_pub(ctx, err)) != 0 ||
	    (r = admin_arg_str(args, "connector", true, &c, err)) != 0)
		return r;
	return pub_sync_report(ctx->pub, c, out, err);
}

struct checkctx {
	admin_reply_fn	*reply;
	void		*cookie;
};

static void
check_done(void *arg, json_t *result, int rc, const struct sp_err *err)
{
	struct checkctx	*cc = arg;

	if (rc == 0)
		cc->reply(cc->cookie, admin_response_ok(result));
	else {
		json_decref(result);
		cc->reply(cc->cookie, admin_response_err(rc, err->msg[0] ?
		    err->msg : sp_rc_str(rc)));
	}
	free(cc);
}

/* Loop thread: the check talks to the VA; it replies when it is done. */
static void
a_sync_check(struct admin_ctx *ctx, json_t *args, const char *actor,
    admin_reply_fn *reply, void *cookie)
{
	struct sp_err	 err = { 0 };
	struct checkctx	*cc;
	const char	*c;
	long long	 sample = 0;
	bool		 all = false;
	int		 r;

	(void)actor;
	if ((r = need_pub(ctx, &err)) != 0 ||
	    (r = admin_arg_str(args, "connector", true, &c, &err)) != 0 ||
	    (r = admin_arg_int(args, "sample", 0, 2000, &sample, &err)) != 0 ||
	    (r = admin_arg_bool(args, "all", &all, &err)) != 0 ||
	    (cc = calloc(1, sizeof(*cc))) == NULL) {
		reply(cookie, admin_response_err(r ? r : SP_ERR_ALLOC,
		    err.msg[0] ? err.msg : "out of memory"));
		return;
	}
	cc->reply = reply;
	cc->cookie = cookie;
	pub_sync_check(ctx->pub, c, all ? 0 : sample ? sample : 1000,
	    check_done, cc);
}

const struct admin_handler admin_handlers_pub[] = {
	{ "peer.sync.check", NULL, a_sync_check },
	{ "peer.sync.start", h_sync_start, NULL },
	{ "peer.sync.stop", h_sync_stop, NULL },
	{ "peer.sync.status", h_sync_status, NULL },
	{ "peer.sync.report", h_sync_report, NULL },
	{ "publisher.add", h_add, NULL },
	{ "publisher.edit", h_edit, NULL },
	{ "publisher.delete", h_delete, NULL },
	{ "publisher.list", h_list, NULL },
	{ "publisher.show", h_show, NULL },
	{ "publisher.queue", h_queue, NULL },
	{ "publisher.retry", h_retry, NULL },
	{ "publisher.republish", h_republish, NULL },
	{ NULL },
};
