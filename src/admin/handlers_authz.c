/*
 * Admin commands for roles, members, access rules and the incoming
 * connections list (src/authz). Each runs on a worker thread; arguments
 * are checked here for type and presence, and by authz for meaning.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "admin/args.h"
#include "admin/handlers.h"
#include "authz/authz.h"
#include "peer/peer.h"
#include "util/util.h"

/* --- preconditions ------------------------------------------------------- */

static int
need_authz(struct admin_ctx *ctx, struct sp_err *err)
{
	if (ctx->authz == NULL)
		return sp_err_set(err, SP_ERR_STATE, "roles are not available "
		    "on this node");
	return 0;
}

/* --- roles ---------------------------------------------------------------- */

static int
h_role_create(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	static const char *const keys[] = { "name", NULL };
	const char	*name;
	int		 r;

	if ((r = need_authz(ctx, err)) != 0 ||
	    (r = admin_args_only(args, keys, err)) != 0 ||
	    (r = admin_arg_str(args, "name", true, &name, err)) != 0 ||
	    (r = authz_role_create(ctx->authz, name, actor, err)) != 0)
		return r;
	return authz_role_show(ctx->authz, name, out, err);
}

static int
h_role_delete(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	static const char *const keys[] = { "name", NULL };
	const char	*name;
	int		 r;

	if ((r = need_authz(ctx, err)) != 0 ||
	    (r = admin_args_only(args, keys, err)) != 0 ||
	    (r = admin_arg_str(args, "name", true, &name, err)) != 0 ||
	    (r = authz_role_delete(ctx->authz, name, actor, err)) != 0)
		return r;
	*out = json_pack("{s:s,s:b}", "role", name, "deleted", 1);
	return 0;
}

static int
h_role_list(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	static const char *const keys[] = { NULL };
	int	r;

	(void)actor;
	if ((r = need_authz(ctx, err)) != 0 ||
	    (r = admin_args_only(args, keys, err)) != 0)
		return r;
	if ((*out = authz_role_list(ctx->authz)) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	return 0;
}

static int
h_role_show(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	static const char *const keys[] = { "name", NULL };
	const char	*name;
	int		 r;

	(void)actor;
	if ((r = need_authz(ctx, err)) != 0 ||
	    (r = admin_args_only(args, keys, err)) != 0 ||
	    (r = admin_arg_str(args, "name", true, &name, err)) != 0)
		return r;
	return authz_role_show(ctx->authz, name, out, err);
}

static int
member(struct admin_ctx *ctx, json_t *args, const char *actor, bool add,
    json_t **out, struct sp_err *err)
{
	static const char *const keys[] = { "role", "match", "value",
	    "issuer", "any_issuer", NULL };
	const char	*role, *match, *value, *issuer;
	bool		 any = false;
	int		 r;

	if ((r = need_authz(ctx, err)) != 0 ||
	    (r = admin_args_only(args, keys, err)) != 0 ||
	    (r = admin_arg_str(args, "role", true, &role, err)) != 0 ||
	    (r = admin_arg_str(args, "match", false, &match, err)) != 0 ||
	    (r = admin_arg_str(args, "value", true, &value, err)) != 0 ||
	    (r = admin_arg_str(args, "issuer", false, &issuer, err)) != 0 ||
	    (r = admin_arg_bool(args, "any_issuer", &any, err)) != 0)
		return r;
	if (any) {
		if (issuer != NULL)
			return sp_err_set(err, SP_ERR_INVALID, "give --issuer or "
			    "--any-issuer, not both");
		issuer = "*";
	}
	if (add)
		r = authz_member_add(ctx->authz, role, match, value, issuer,
		    actor, err);
	else
		r = authz_member_remove(ctx->authz, role, match, value, issuer,
		    actor, err);
	if (r != 0)
		return r;
	return authz_role_show(ctx->authz, role, out, err);
}

static int
h_member_add(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	return member(ctx, args, actor, true, out, err);
}

static int
h_member_remove(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	return member(ctx, args, actor, false, out, err);
}

/*
 * role.rule.set: "action" "allow"|"deny" (what the CLI sends), or "allow"
 * true|false (what role.show returns); exactly one of them.
 */
static int
h_rule_set(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	static const char *const keys[] = { "role", "path", "action", "allow",
	    "recursive", NULL };
	const char	*role, *path, *action;
	bool		 allow, recursive;
	int		 r;

	if ((r = need_authz(ctx, err)) != 0 ||
	    (r = admin_args_only(args, keys, err)) != 0 ||
	    (r = admin_arg_str(args, "role", true, &role, err)) != 0 ||
	    (r = admin_arg_str(args, "path", true, &path, err)) != 0 ||
	    (r = admin_arg_str(args, "action", false, &action, err)) != 0 ||
	    (r = admin_arg_bool(args, "allow", &allow, err)) != 0 ||
	    (r = admin_arg_bool(args, "recursive", &recursive, err)) != 0)
		return r;
	if ((action == NULL) == (json_object_get(args, "allow") == NULL))
		return sp_err_set(err, SP_ERR_INVALID, "give the action: "
		    "\"allow\" or \"deny\"");
	if (action != NULL) {
		if (strcmp(action, "allow") == 0)
			allow = true;
		else if (strcmp(action, "deny") == 0)
			allow = false;
		else
			return sp_err_set(err, SP_ERR_INVALID, "action must be "
			    "\"allow\" or \"deny\", not \"%.32s\"", action);
	}
	if ((r = authz_rule_set(ctx->authz, role, path, allow, recursive,
	    actor, err)) != 0)
		return r;
	return authz_role_show(ctx->authz, role, out, err);
}

static int
h_rule_remove(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	static const char *const keys[] = { "role", "path", NULL };
	const char	*role, *path;
	int		 r;

	if ((r = need_authz(ctx, err)) != 0 ||
	    (r = admin_args_only(args, keys, err)) != 0 ||
	    (r = admin_arg_str(args, "role", true, &role, err)) != 0 ||
	    (r = admin_arg_str(args, "path", true, &path, err)) != 0 ||
	    (r = authz_rule_remove(ctx->authz, role, path, actor, err)) != 0)
		return r;
	return authz_role_show(ctx->authz, role, out, err);
}

/* --- incoming connections ----------------------------------------------- */

static int
h_incoming_list(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	static const char *const keys[] = { NULL };
	int	r;

	(void)actor;
	if ((r = need_authz(ctx, err)) != 0 ||
	    (r = admin_args_only(args, keys, err)) != 0)
		return r;
	if ((*out = authz_incoming_list(ctx->authz)) == NULL)
		return sp_err_set(err, SP_ERR_DB, "reading the incoming "
		    "connections failed");
	return 0;
}

static int
h_incoming_authorize(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	static const char *const keys[] = { "id", "new_role", "preset", "role",
	    "match", NULL };
	const char	*new_role, *preset, *role, *match;
	int64_t		 id;
	int		 r;

	if ((r = need_authz(ctx, err)) != 0 ||
	    (r = admin_args_only(args, keys, err)) != 0 ||
	    (r = admin_arg_id(args, "id", &id, err)) != 0 ||
	    (r = admin_arg_str(args, "new_role", false, &new_role, err)) != 0 ||
	    (r = admin_arg_str(args, "preset", false, &preset, err)) != 0 ||
	    (r = admin_arg_str(args, "role", false, &role, err)) != 0 ||
	    (r = admin_arg_str(args, "match", false, &match, err)) != 0)
		return r;
	if ((new_role == NULL) == (role == NULL))
		return sp_err_set(err, SP_ERR_INVALID, "give exactly one of "
		    "--new-role NAME (create a role) and --role NAME (add to "
		    "an existing role)");
	return authz_incoming_authorize(ctx->authz, id, new_role, preset, role,
	    match, actor, out, err);
}

const struct admin_handler admin_handlers_authz[] = {
	{ "role.create", h_role_create, NULL },
	{ "role.delete", h_role_delete, NULL },
	{ "role.list", h_role_list, NULL },
	{ "role.show", h_role_show, NULL },
	{ "role.member.add", h_member_add, NULL },
	{ "role.member.remove", h_member_remove, NULL },
	{ "role.rule.set", h_rule_set, NULL },
	{ "role.rule.remove", h_rule_remove, NULL },
	{ "peer.incoming.list", h_incoming_list, NULL },
	{ "peer.incoming.authorize", h_incoming_authorize, NULL },
	{ NULL },
};
