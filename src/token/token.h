/*
 * The token service of a node: the registry of crypto tokens over the
 * store (create, activate with a PIN, deactivate, generate and delete
 * keys), the activation rate limit, and the key registry that records what
 * uses each key. It sits below every service that uses keys (ca/, kb/,
 * later va/ and signer/), and nothing above it ever holds a private key:
 * they sign through tokens_sign_init() (a prepared signing context) and
 * get public keys as copies. The one exception is TLS, which needs an
 * EVP_PKEY (tokens_key_get1_tls(); a provider-backed key once keys move
 * behind a process boundary).
 *
 * Every function is thread safe and may run on any worker thread. Results
 * meant for the admin API are JSON (new references). "actor" names who
 * asked and is written to the audit log. Lock order: callers' own locks,
 * then this service's, then a token's, then the store; this service never
 * calls back into its users.
 */
#ifndef SP_TOKEN_TOKEN_H
#define SP_TOKEN_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "crypto/key.h"
#include "crypto/token.h"
#include "store/store.h"
#include "util/err.h"

#define TOKENS_NAME_MAX		64	/* token name, [A-Za-z0-9_.-] */
#define TOKENS_USER_MAX		64	/* name of a key's user (CA, binding) */

struct tokens;

/*
 * Loads every token (inactive) and its keys from the store. The key
 * registry starts empty: the services that use keys claim them as they
 * load (tokens_key_claim()).
 */
int	tokens_open(struct store *st, struct tokens **out, struct sp_err *err)
	    SP_WUR;
void	tokens_free(struct tokens *tk);

/* --- the registry (admin API) ----------------------------------------- */

/*
 * A new token, active (the operator just gave the PIN). SP_ERR_INVALID for
 * a bad name or a PIN of fewer than TOKEN_PIN_MIN characters,
 * SP_ERR_EXISTS if the name is taken.
 */
int	tokens_create(struct tokens *tk, const char *name, const char *pin,
	    const char *actor, struct sp_err *err) SP_WUR;
/*
 * Activates a token. Failed attempts are rate limited per token (a few
 * free, then a doubling wait: SP_ERR_STATE without testing the PIN),
 * logged and audited. A token of an earlier PIN scheme, or with a lower
 * scrypt cost than today's, is re-wrapped and stored before it becomes
 * active.
 */
int	tokens_activate(struct tokens *tk, const char *name, const char *pin,
	    const char *actor, struct sp_err *err) SP_WUR;
int	tokens_deactivate(struct tokens *tk, const char *name,
	    const char *actor, struct sp_err *err) SP_WUR;
/* [{"name", "active", "keys": [{"alias", "alg"}]}] */
json_t	*tokens_list(struct tokens *tk);
/* {"token", "alias", "alg", "public_key_sha256"} */
int	tokens_genkey(struct tokens *tk, const char *token, const char *alias,
	    const char *alg, const char *actor, json_t **out,
	    struct sp_err *err) SP_WUR;
/*
 * Refused (SP_ERR_STATE) while a CA uses the key. A key binding's key may
 * be deleted: the binding then shows "key_missing".
 */
int	tokens_delkey(struct tokens *tk, const char *token, const char *alias,
	    const char *actor, struct sp_err *err) SP_WUR;

/* --- using keys ------------------------------------------------------- */

/*
 * The algorithm and a copy of the SPKI of token/alias (*spki heap, caller
 * frees; spki may be NULL if only the algorithm is wanted).
 * SP_ERR_NOTFOUND with the reason if the token or key does not exist.
 */
int	tokens_key_find(struct tokens *tk, const char *token,
	    const char *alias, enum key_alg *alg, unsigned char **spki,
	    size_t *spkilen, struct sp_err *err) SP_WUR;
/* True if there is a token named token. */
bool	tokens_has(struct tokens *tk, const char *token);
/* False if the token does not exist or is inactive. */
bool	tokens_is_active(struct tokens *tk, const char *token);
/*
 * A signing context for token/alias (token_sign_init(): the key stays in
 * the token). SP_ERR_NOTFOUND, or SP_ERR_STATE if the token is inactive.
 */
int	tokens_sign_init(struct tokens *tk, const char *token,
	    const char *alias, EVP_MD_CTX **out, struct sp_err *err) SP_WUR;
/* For TLS only: a new reference to the private key (token_key_get1_tls()). */
int	tokens_key_get1_tls(struct tokens *tk, const char *token,
	    const char *alias, EVP_PKEY **out, struct sp_err *err) SP_WUR;

/* --- the key registry ------------------------------------------------- */

enum tokens_use {
	TOKENS_USE_CA,		/* a CA's signing key: one CA, nothing else */
	TOKENS_USE_KB,		/* a key binding's TLS key: bindings only */
	TOKENS_USE__MAX
};

/*
 * Records that user (a CA or key binding name) uses token/alias. A key has
 * users of one kind only: a key binding's key can never become a CA key,
 * nor a CA's key a binding's (SP_ERR_POLICY), and a CA key has one CA
 * (SP_ERR_STATE). The key must exist (SP_ERR_NOTFOUND). Returns 1 if
 * the claim is new, 0 if user already held it (release only what was
 * new), or a negative code.
 */
int	tokens_key_claim(struct tokens *tk, const char *token,
	    const char *alias, enum tokens_use use, const char *user,
	    struct sp_err *err) SP_WUR;
/*
 * Like tokens_key_claim() for a user loaded from the database: the key
 * need not exist any more (a binding may name a deleted key).
 */
int	tokens_key_claim_stored(struct tokens *tk, const char *token,
	    const char *alias, enum tokens_use use, const char *user,
	    struct sp_err *err) SP_WUR;
/* Drops a claim (after a failed create); no-op if there is none. */
void	tokens_key_release(struct tokens *tk, const char *token,
	    const char *alias, enum tokens_use use, const char *user);

#endif
