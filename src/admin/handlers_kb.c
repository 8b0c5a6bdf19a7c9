/*
 * Admin commands for key bindings and the trust store (kb/kb.h).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "admin/args.h"
#include "admin/handlers.h"
#include "crypto/x509.h"
#include "kb/kb.h"

/* --- preconditions ------------------------------------------------------- */

static int
need_kb(struct admin_ctx *ctx, struct sp_err *err)
{
	if (ctx->kb == NULL)
		return sp_err_set(err, SP_ERR_STATE, "key bindings are not "
		    "available on this node");
	return 0;
}

/* --- key bindings --------------------------------------------------------- */

static int
h_kb_create(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	const char	*name, *token, *key, *type;
	int		 r;

	if ((r = need_kb(ctx, err)) != 0 ||
	    (r = admin_arg_str(args, "name", true, &name, err)) != 0 ||
	    (r = admin_arg_str(args, "token", true, &token, err)) != 0 ||
	    (r = admin_arg_str(args, "key", true, &key, err)) != 0 ||
	    (r = admin_arg_str(args, "type", false, &type, err)) != 0)
		return r;
	return kb_create(ctx->kb, name, token, key, type, actor, out, err);
}

static int
h_kb_csr(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	const char	*name, *dn, **sans = NULL;
	char		*pem = NULL;
	size_t		 nsans;
	int		 r;

	if ((r = need_kb(ctx, err)) != 0 ||
	    (r = admin_arg_str(args, "name", true, &name, err)) != 0 ||
	    (r = admin_arg_str(args, "dn", false, &dn, err)) != 0 ||
	    (r = admin_arg_strlist(args, "sans", CERT_MAX_SANS, &sans, &nsans,
	    err)) != 0)
		return r;
	if ((r = kb_csr(ctx->kb, name, dn, sans, nsans, actor, &pem,
	    err)) == 0 && (*out = json_pack("{s:s,s:s}", "name", name, "pem",
	    pem)) == NULL)
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	free(sans);
	free(pem);
	return r;
}

static int
h_kb_install_cert(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	const char	*name;
	unsigned char	*cert = NULL, *chain = NULL;
	size_t		 len, chainlen;
	int		 r;

	if ((r = need_kb(ctx, err)) == 0 &&
	    (r = admin_arg_str(args, "name", true, &name, err)) == 0 &&
	    (r = admin_arg_b64(args, "cert", true, KB_FILE_MAX, &cert, &len,
	    err)) == 0 &&
	    (r = admin_arg_b64(args, "chain", false, KB_FILE_MAX, &chain, &chainlen,
	    err)) == 0)
		r = kb_install_cert(ctx->kb, name, cert, len, chain, chainlen,
		    actor, out, err);
	free(cert);
	free(chain);
	return r;
}

static int
h_kb_list(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	int	r;

	(void)args;
	(void)actor;
	if ((r = need_kb(ctx, err)) != 0)
		return r;
	if ((*out = kb_list(ctx->kb)) == NULL)
		return sp_err_set(err, SP_ERR_DB, "reading the key bindings "
		    "failed");
	return 0;
}

static int
h_kb_show(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	const char	*name;
	int		 r;

	(void)actor;
	if ((r = need_kb(ctx, err)) != 0 ||
	    (r = admin_arg_str(args, "name", true, &name, err)) != 0)
		return r;
	return kb_show(ctx->kb, name, out, err);
}

/* --- trust store ---------------------------------------------------------- */

static int
h_trust_add(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	unsigned char	*cert = NULL;
	size_t		 len;
	int		 r;

	if ((r = need_kb(ctx, err)) == 0 &&
	    (r = admin_arg_b64(args, "cert", true, KB_FILE_MAX, &cert, &len,
	    err)) == 0)
		r = kb_trust_add(ctx->kb, cert, len, actor, out, err);
	free(cert);
	return r;
}

static int
h_trust_crl(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	unsigned char	*crl = NULL;
	size_t		 len;
	int		 r;

	if ((r = need_kb(ctx, err)) == 0 &&
	    (r = admin_arg_b64(args, "crl", true, KB_FILE_MAX, &crl, &len,
	    err)) == 0)
		r = kb_trust_crl_add(ctx->kb, crl, len, actor, out, err);
	free(crl);
	return r;
}

static int
h_trust_crls(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	int	r;

	(void)args;
	(void)actor;
	if ((r = need_kb(ctx, err)) != 0)
		return r;
	if ((*out = kb_trust_crl_list(ctx->kb)) == NULL)
		return sp_err_set(err, SP_ERR_DB, "reading the CRLs failed");
	return 0;
}

static int
h_trust_list(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	int	r;

	(void)args;
	(void)actor;
	if ((r = need_kb(ctx, err)) != 0)
		return r;
	if ((*out = kb_trust_list(ctx->kb)) == NULL)
		return sp_err_set(err, SP_ERR_DB, "reading the trust store "
		    "failed");
	return 0;
}

static int
h_trust_remove(struct admin_ctx *ctx, json_t *args, const char *actor,
    json_t **out, struct sp_err *err)
{
	const char	*fp, *crl;
	bool		 drop = false;
	int		 r;

	if ((r = need_kb(ctx, err)) != 0 ||
	    (r = admin_arg_str(args, "fingerprint", true, &fp, err)) != 0 ||
	    (r = admin_arg_bool(args, "drop_crl", &drop, err)) != 0 ||
	    (r = kb_trust_remove(ctx->kb, fp, drop, &crl, actor, err)) != 0)
		return r;
	if ((*out = json_pack("{s:s,s:b,s:s}", "fingerprint", fp, "removed",
	    1, "crl", crl)) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	return 0;
}

const struct admin_handler admin_handlers_kb[] = {
	{ "keybinding.create", h_kb_create, NULL },
	{ "keybinding.csr", h_kb_csr, NULL },
	{ "keybinding.install-cert", h_kb_install_cert, NULL },
	{ "keybinding.list", h_kb_list, NULL },
	{ "keybinding.show", h_kb_show, NULL },
	{ "trust.add", h_trust_add, NULL },
	{ "trust.list", h_trust_list, NULL },
	{ "trust.crl", h_trust_crl, NULL },
	{ "trust.crls", h_trust_crls, NULL },
	{ "trust.remove", h_trust_remove, NULL },
	{ NULL },
};
