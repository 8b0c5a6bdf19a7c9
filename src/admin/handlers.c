#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "admin/args.h"
#include "admin/handlers.h"
#include "ca/profile.h"
#include "admin/proto.h"
#include "util/log.h"
#include "util/util.h"

#define MAX_SETS	64

/* --- handlers ------------------------------------------------------------ */

/* Wipes a PIN argument in place once used (it lives in the request). */
static void
pin_wipe(const char *pin)
{
	OPENSSL_cleanse((char *)(uintptr_t)pin, strlen(pin));
}

static int
h_status(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	json_t	*cas = ca_list(ctx->ca), *toks = tokens_list(ctx->tokens);

	(void)args;
	(void)actor;
	(void)err;
	*out = json_pack("{s:s,s:s,s:i,s:I,s:s,s:i,s:i}", "name", ctx->name,
	    "version", SP_VERSION, "pid", (int)getpid(), "uptime_s",
	    (json_int_t)(sp_now() - ctx->started), "dir", ctx->dir,
	    "cas", (int)json_array_size(cas), "tokens",
	    (int)json_array_size(toks));
	json_decref(cas);
	json_decref(toks);
	return 0;
}

static int
h_token_create(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	const char	*name, *pin;
	int		 r;

	if ((r = admin_arg_str(args, "name", true, &name, err)) != 0 ||
	    (r = admin_arg_str(args, "pin", true, &pin, err)) != 0)
		return r;
	r = tokens_create(ctx->tokens, name, pin, actor, err);
	pin_wipe(pin);
	if (r != 0)
		return r;
	*out = json_pack("{s:s,s:b}", "token", name, "active", 1);
	return 0;
}

static int
h_token_activate(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	const char	*name, *pin;
	int		 r;

	if ((r = admin_arg_str(args, "name", true, &name, err)) != 0 ||
	    (r = admin_arg_str(args, "pin", true, &pin, err)) != 0)
		return r;
	r = tokens_activate(ctx->tokens, name, pin, actor, err);
	pin_wipe(pin);
	if (r != 0)
		return r;
	*out = json_pack("{s:s,s:b}", "token", name, "active", 1);
	return 0;
}

static int
h_token_deactivate(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	const char	*name;
	int		 r;

	if ((r = admin_arg_str(args, "name", true, &name, err)) != 0 ||
	    (r = tokens_deactivate(ctx->tokens, name, actor, err)) != 0)
		return r;
	*out = json_pack("{s:s,s:b}", "token", name, "active", 0);
	return 0;
}

static int
h_token_list(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	(void)args;
	(void)actor;
	(void)err;
	*out = tokens_list(ctx->tokens);
	return 0;
}

static int
h_token_genkey(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	const char	*tok, *alias, *alg;
	int		 r;

	if ((r = admin_arg_str(args, "token", true, &tok, err)) != 0 ||
	    (r = admin_arg_str(args, "alias", true, &alias, err)) != 0 ||
	    (r = admin_arg_str(args, "alg", true, &alg, err)) != 0)
		return r;
	return tokens_genkey(ctx->tokens, tok, alias, alg, actor, out, err);
}

static int
h_token_delkey(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	const char	*tok, *alias;
	int		 r;

	if ((r = admin_arg_str(args, "token", true, &tok, err)) != 0 ||
	    (r = admin_arg_str(args, "alias", true, &alias, err)) != 0 ||
	    (r = tokens_delkey(ctx->tokens, tok, alias, actor, err)) != 0)
		return r;
	*out = json_pack("{s:s,s:s,s:b}", "token", tok, "alias", alias,
	    "deleted", 1);
	return 0;
}

static int
h_ca_create(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	struct ca_create_req	req = { 0 };
	long long		days, period;
	int			r;

	if ((r = admin_arg_str(args, "name", true, &req.name, err)) != 0 ||
	    (r = admin_arg_str(args, "dn", true, &req.dn, err)) != 0 ||
	    (r = admin_arg_str(args, "token", true, &req.token, err)) != 0 ||
	    (r = admin_arg_str(args, "key", true, &req.key, err)) != 0 ||
	    (r = admin_arg_str(args, "signed_by", false, &req.signed_by, err)) != 0 ||
	    (r = admin_arg_str(args, "profile", false, &req.profile, err)) != 0 ||
	    (r = admin_arg_int(args, "validity_days", 1, 36500, &days, err)) != 0 ||
	    (r = admin_arg_int(args, "crl_period", 10, 366 * 86400, &period,
	    err)) != 0)
		return r;
	req.validity_days = (int)days;
	req.crl_period = period;
	return ca_create(ctx->ca, &req, actor, out, err);
}

static int
h_ca_list(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	(void)args;
	(void)actor;
	(void)err;
	*out = ca_list(ctx->ca);
	return 0;
}

static int
h_ca_show(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	const char	*name;
	int		 r;

	(void)actor;
	if ((r = admin_arg_str(args, "name", true, &name, err)) != 0)
		return r;
	return ca_show(ctx->ca, name, out, err);
}

static int
h_ca_cert(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	const char	*name;
	char		*pem = NULL;
	int		 r;

	(void)actor;
	if ((r = admin_arg_str(args, "name", true, &name, err)) != 0 ||
	    (r = ca_cert_pem(ctx->ca, name, json_is_true(json_object_get(args,
	    "chain")), &pem, err)) != 0)
		return r;
	*out = json_pack("{s:s,s:s}", "ca", name, "pem", pem);
	free(pem);
	return 0;
}

static int
h_profile_list(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	(void)args;
	(void)actor;
	(void)err;
	*out = ca_profile_list(ctx->ca);
	return 0;
}

static int
h_profile_show(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	const char	*name;
	int		 r;

	(void)actor;
	if ((r = admin_arg_str(args, "name", true, &name, err)) != 0)
		return r;
	return ca_profile_show(ctx->ca, name, out, err);
}

static int
h_profile_create(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	const char	*name, *from, **sets = NULL;
	size_t		 n = 0;
	int		 r;

	if ((r = admin_arg_str(args, "name", true, &name, err)) == 0 &&
	    (r = admin_arg_str(args, "from", true, &from, err)) == 0 &&
	    (r = admin_arg_strlist(args, "sets", MAX_SETS, &sets, &n,
	    err)) == 0 &&
	    (r = ca_profile_create(ctx->ca, name, from, sets, n, actor,
	    err)) == 0)
		r = ca_profile_show(ctx->ca, name, out, err);
	free(sets);
	return r;
}

static int
h_profile_edit(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	const char	*name, **sets = NULL;
	size_t		 n = 0;
	int		 r;

	if ((r = admin_arg_str(args, "name", true, &name, err)) != 0 ||
	    (r = admin_arg_strlist(args, "sets", MAX_SETS, &sets, &n,
	    err)) != 0)
		goto out;
	if (n == 0) {
		r = sp_err_set(err, SP_ERR_INVALID, "nothing to change: give "
		    "--set key=value");
		goto out;
	}
	if ((r = ca_profile_edit(ctx->ca, name, sets, n, actor, err)) == 0)
		r = ca_profile_show(ctx->ca, name, out, err);
 out:
	free(sets);
	return r;
}

/*
 * cert.issue runs on the loop and queues the request for group commit
 * (ca_issue_submit()): no worker waits for another request's batch. The
 * reply goes out when the batch that carried it has come back.
 */
struct issue_wait {
	admin_reply_fn	*reply;
	void		*cookie;
	char		 ca[CA_NAME_MAX + 1];
	char		 profile[PROFILE_NAME_MAX + 1];
};

static void
issue_done(void *arg, const struct ca_issue_res *res)
{
	struct issue_wait	*w = arg;
	json_t			*doc;

	if (res->rc == 0 && (doc = json_pack("{s:s,s:s,s:s,s:o}", "ca",
	    w->ca, "profile", w->profile, "serial", res->serial, "der",
	    admin_b64_json(res->der, res->derlen))) != NULL)
		w->reply(w->cookie, admin_response_ok(doc));
	else
		w->reply(w->cookie, admin_response_err(res->rc != 0 ? res->rc :
		    SP_ERR_ALLOC, res->rc != 0 && res->err.msg[0] ?
		    res->err.msg : res->rc != 0 ? "issuance failed" :
		    "out of memory"));
	free(w);
}

static void
a_cert_issue(struct admin_ctx *ctx, json_t *args, const char *actor,
    admin_reply_fn *reply, void *cookie)
{
	struct ca_issue_req	 req = { 0 };
	struct issue_wait	*w = NULL;
	struct sp_err		 err = { 0 };
	unsigned char		*csr = NULL;
	long long		 days;
	int			 r;

	if ((r = admin_arg_str(args, "ca", true, &req.ca, &err)) != 0 ||
	    (r = admin_arg_str(args, "profile", true, &req.profile,
	    &err)) != 0 ||
	    (r = admin_arg_int(args, "days", 1, 36500, &days, &err)) != 0 ||
	    (r = admin_arg_b64(args, "csr", true, CSR_MAX_SIZE, &csr,
	    &req.csrlen, &err)) != 0)
		goto fail;
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		r = sp_err_set(&err, SP_ERR_ALLOC, "out of memory");
		goto fail;
	}
	w->reply = reply;
	w->cookie = cookie;
	snprintf(w->ca, sizeof(w->ca), "%s", req.ca);
	snprintf(w->profile, sizeof(w->profile), "%s", req.profile);
	req.csr = csr;
	req.days = (int)days;
	if ((r = ca_issue_submit(ctx->ca, ctx->pool, &req, actor, issue_done,
	    w, &err)) != 0)
		goto fail;
	free(csr);
	return;
 fail:
	free(w);
	free(csr);
	reply(cookie, admin_response_err(r, err.msg[0] ? err.msg :
	    sp_rc_str(r)));
}

static int
h_cert_revoke(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	const char	*ca, *serial, *reason;
	int		 r;

	if ((r = admin_arg_str(args, "ca", true, &ca, err)) != 0 ||
	    (r = admin_arg_str(args, "serial", true, &serial, err)) != 0 ||
	    (r = admin_arg_str(args, "reason", false, &reason, err)) != 0 ||
	    (r = ca_revoke(ctx->ca, ca, serial, reason, actor, err)) != 0)
		return r;
	return ca_cert_show(ctx->ca, ca, serial, out, err);
}

static int
h_cert_unrevoke(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	const char	*ca, *serial;
	int		 r;

	if ((r = admin_arg_str(args, "ca", true, &ca, err)) != 0 ||
	    (r = admin_arg_str(args, "serial", true, &serial, err)) != 0 ||
	    (r = ca_unrevoke(ctx->ca, ca, serial, actor, err)) != 0)
		return r;
	return ca_cert_show(ctx->ca, ca, serial, out, err);
}

static int
h_cert_list(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	const char	*ca, *status;
	long long	 limit;
	int		 r;

	(void)actor;
	if ((r = admin_arg_str(args, "ca", false, &ca, err)) != 0 ||
	    (r = admin_arg_str(args, "status", false, &status, err)) != 0 ||
	    (r = admin_arg_int(args, "limit", 1, 1000000, &limit, err)) != 0)
		return r;
	return ca_cert_list(ctx->ca, ca, status, (size_t)limit, out, err);
}

static int
h_cert_show(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	const char	*ca, *serial;
	int		 r;

	(void)actor;
	if ((r = admin_arg_str(args, "ca", true, &ca, err)) != 0 ||
	    (r = admin_arg_str(args, "serial", true, &serial, err)) != 0)
		return r;
	return ca_cert_show(ctx->ca, ca, serial, out, err);
}

static int
h_crl_create(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	const char	*ca;
	int		 r;

	if ((r = admin_arg_str(args, "ca", true, &ca, err)) != 0)
		return r;
	return ca_crl_create(ctx->ca, ca, actor, out, err);
}

static int
h_crl_get(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	const char	*ca;
	unsigned char	*der = NULL;
	size_t		 len = 0;
	int		 r;

	(void)actor;
	if ((r = admin_arg_str(args, "ca", true, &ca, err)) != 0 ||
	    (r = ca_crl_get(ctx->ca, ca, &der, &len, err)) != 0)
		return r;
	*out = json_pack("{s:s,s:o}", "ca", ca, "der", admin_b64_json(der, len));
	free(der);
	return 0;
}

static int
h_audit_verify(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	(void)args;
	(void)actor;
	return ca_audit_verify(ctx->ca, out, err);
}

static int
h_audit_list(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	long long	limit;
	int		r;

	(void)actor;
	if ((r = admin_arg_int(args, "limit", 1, 100000, &limit, err)) != 0)
		return r;
	if ((*out = ca_audit_list(ctx->ca, limit ? (size_t)limit : 50)) == NULL)
		return sp_err_set(err, SP_ERR_DB, "reading the audit log "
		    "failed");
	return 0;
}

const struct admin_handler admin_handlers_ca[] = {
	{ "status", h_status, NULL },
	{ "token.create", h_token_create, NULL },
	{ "token.activate", h_token_activate, NULL },
	{ "token.deactivate", h_token_deactivate, NULL },
	{ "token.list", h_token_list, NULL },
	{ "token.genkey", h_token_genkey, NULL },
	{ "token.delkey", h_token_delkey, NULL },
	{ "ca.create", h_ca_create, NULL },
	{ "ca.list", h_ca_list, NULL },
	{ "ca.show", h_ca_show, NULL },
	{ "ca.cert", h_ca_cert, NULL },
	{ "profile.list", h_profile_list, NULL },
	{ "profile.show", h_profile_show, NULL },
	{ "profile.create", h_profile_create, NULL },
	{ "profile.edit", h_profile_edit, NULL },
	{ "cert.issue", NULL, a_cert_issue },
	{ "cert.revoke", h_cert_revoke, NULL },
	{ "cert.unrevoke", h_cert_unrevoke, NULL },
	{ "cert.list", h_cert_list, NULL },
	{ "cert.show", h_cert_show, NULL },
	{ "crl.create", h_crl_create, NULL },
	{ "crl.get", h_crl_get, NULL },
	{ "audit.verify", h_audit_verify, NULL },
	{ "audit.list", h_audit_list, NULL },
	{ NULL },
};

static const struct admin_handler *const tables[] = {
	admin_handlers_ca, admin_handlers_authz, admin_handlers_peer,
	admin_handlers_kb,
	admin_handlers_va,
	admin_handlers_pub,
	admin_handlers_debug,
};

const struct admin_handler *
admin_handler_find(const char *cmd)
{
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
		for (const struct admin_handler *h = tables[t]; h->cmd; h++)
			if (strcmp(h->cmd, cmd) == 0)
				return h;
	return NULL;
}

json_t *
admin_dispatch(struct admin_ctx *ctx, const struct admin_handler *h,
    json_t *args, const char *actor)
{
	struct sp_err	 err = { 0 };
	json_t		*out = NULL;
	int		 r;

	if ((r = h->fn(ctx, args, actor, &out, &err)) == 0)
		return admin_response_ok(out);
	json_decref(out);
	log_debug("admin: %s by %s: %s", h->cmd, actor, err.msg);
	return admin_response_err(r, err.msg[0] ? err.msg : sp_rc_str(r));
}
