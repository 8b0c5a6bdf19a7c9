/*
 * Admin commands of the Validation Authority (src/va): settings, status
 * and the certificate entries the CAs published. Each runs on a worker
 * thread; va/ checks what the arguments mean.
 */
#include <stddef.h>

#include <jansson.h>

#include "admin/args.h"
#include "admin/handlers.h"
#include "util/util.h"
#include "va/va.h"

static int
need_va(struct admin_ctx *ctx, struct sp_err *err)
{
	if (ctx->va == NULL)
		return sp_err_set(err, SP_ERR_STATE, "the VA is not available "
		    "on this node");
	return 0;
}

static int
h_va_set(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	static const char *const keys[] = { "key", "value", NULL };
	const char	*key, *value;
	int		 r;

	if ((r = need_va(ctx, err)) != 0 ||
	    (r = admin_args_only(args, keys, err)) != 0 ||
	    (r = admin_arg_str(args, "key", true, &key, err)) != 0 ||
	    (r = admin_arg_str(args, "value", true, &value, err)) != 0 ||
	    (r = va_set(ctx->va, key, value, actor, err)) != 0)
		return r;
	if ((*out = va_settings_json(ctx->va)) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	return 0;
}

static int
h_va_status(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	static const char *const keys[] = { NULL };
	int	r;

	(void)actor;
	if ((r = need_va(ctx, err)) != 0 ||
	    (r = admin_args_only(args, keys, err)) != 0)
		return r;
	return va_status_json(ctx->va, out, err);
}

static int
h_va_cert_list(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	static const char *const keys[] = { "issuer", "status", "limit",
	    NULL };
	const char	*issuer, *status;
	long long	 limit;
	int		 r;

	(void)actor;
	if ((r = need_va(ctx, err)) != 0 ||
	    (r = admin_args_only(args, keys, err)) != 0 ||
	    (r = admin_arg_str(args, "issuer", false, &issuer, err)) != 0 ||
	    (r = admin_arg_str(args, "status", false, &status, err)) != 0 ||
	    (r = admin_arg_int(args, "limit", 1, VA_LIST_MAX, &limit,
	    err)) != 0)
		return r;
	return va_cert_list_json(ctx->va, issuer, status, limit, out, err);
}

static int
h_va_cert_show(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	static const char *const keys[] = { "issuer", "serial", NULL };
	const char	*issuer, *serial;
	int		 r;

	(void)actor;
	if ((r = need_va(ctx, err)) != 0 ||
	    (r = admin_args_only(args, keys, err)) != 0 ||
	    (r = admin_arg_str(args, "issuer", true, &issuer, err)) != 0 ||
	    (r = admin_arg_str(args, "serial", true, &serial, err)) != 0)
		return r;
	return va_cert_show_json(ctx->va, issuer, serial, out, err);
}

const struct admin_handler admin_handlers_va[] = {
	{ "va.set", h_va_set, NULL },
	{ "va.status", h_va_status, NULL },
	{ "va.cert.list", h_va_cert_list, NULL },
	{ "va.cert.show", h_va_cert_show, NULL },
	{ NULL, NULL, NULL },
};
