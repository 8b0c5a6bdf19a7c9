/*
 * Soft crypto tokens. A token holds PIN-wrapped private keys; it is active
 * while its PIN is known to the node, and only an active token signs.
 * Every use of a private key goes through this interface (STYLE.md
 * section 6): callers receive a prepared signing context, never the key,
 * so the key holder can later move behind a process boundary (an OpenSSL
 * provider key makes the context work unchanged).
 *
 * The token is an in-memory object; persistence is the caller's: keys are
 * loaded with token_key_load() and token_genkey() hands back the wrapped
 * blob to store. All functions are thread safe.
 */
#ifndef SP_CRYPTO_TOKEN_H
#define SP_CRYPTO_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include "crypto/key.h"
#include "util/err.h"

#define TOKEN_ALIAS_MAX	64	/* key alias length, [A-Za-z0-9_.-] */
#define TOKEN_KEYS_MAX	1024	/* keys in one token */

struct token;

/*
 * Public facts about one key. spki is borrowed from the token: valid until
 * the key is removed or the token freed.
 */
struct token_keyinfo {
	char			 alias[TOKEN_ALIAS_MAX + 1];
	enum key_alg		 alg;
	const unsigned char	*spki;
	size_t			 spkilen;
};

/*
 * New inactive token with a key_pin_hash() verifier (copied). NULL if
 * name or pin_verifier is NULL or memory runs out.
 */
struct token	*token_new(const char *name, const char *pin_verifier);
void		 token_free(struct token *tok);
const char	*token_name(const struct token *tok);

/*
 * Adds a stored key (wrapped PKCS#8 and its SPKI, both copied). If the
 * token is active the key is unwrapped right away. SP_ERR_EXISTS if the
 * alias is taken, SP_ERR_LIMIT past TOKEN_KEYS_MAX, SP_ERR_INVALID for a
 * malformed alias or an SPKI that is not a key of alg.
 */
int		 token_key_load(struct token *tok, const char *alias,
		    enum key_alg alg, const unsigned char *wrapped,
		    size_t wlen, const unsigned char *spki, size_t spkilen,
		    struct sp_err *err) SP_WUR;

/*
 * Verifies pin against the verifier (SP_ERR_PIN if wrong) and unwraps
 * every key; on any failure the token stays inactive. Activating an active
 * token re-checks the pin: a wrong one gives SP_ERR_PIN and leaves the
 * token active (a bad guess must not take a CA offline). Each key is
 * checked against its algorithm and SPKI (SP_ERR_INVALID on mismatch).
 */
int		 token_activate(struct token *tok, const char *pin,
		    struct sp_err *err) SP_WUR;
/* Forgets the PIN and every unwrapped key. */
void		 token_deactivate(struct token *tok);
bool		 token_is_active(const struct token *tok);

/*
 * Generates a key under alias (token must be active: SP_ERR_STATE).
 * Returns the wrapped private key and SPKI for the caller to persist
 * (*wrapped and *spki heap, caller frees). SP_ERR_EXISTS if the alias is
 * taken, SP_ERR_INVALID if the alias is malformed.
 */
int		 token_genkey(struct token *tok, const char *alias,
		    enum key_alg alg, unsigned char **wrapped, size_t *wlen,
		    unsigned char **spki, size_t *spkilen,
		    struct sp_err *err) SP_WUR;

/* Removes a key; SP_ERR_NOTFOUND if there is none under alias. */
int		 token_key_remove(struct token *tok, const char *alias,
		    struct sp_err *err) SP_WUR;

/* Number of keys and the i-th key's facts (0 or SP_ERR_NOTFOUND). */
size_t		 token_key_count(const struct token *tok);
int		 token_key_info(const struct token *tok, size_t i,
		    struct token_keyinfo *info) SP_WUR;
/* Facts of the key under alias (SP_ERR_NOTFOUND if none). */
int		 token_key_find(const struct token *tok, const char *alias,
		    struct token_keyinfo *info) SP_WUR;

/*
 * A copy of the SPKI of the key under alias, made under the token's lock
 * (*spki heap, caller frees), so a concurrent removal cannot pull it away.
 * SP_ERR_NOTFOUND if there is no such key.
 */
int		 token_key_spki(struct token *tok, const char *alias,
		    unsigned char **spki, size_t *len) SP_WUR;

/*
 * A new EVP_MD_CTX set up with EVP_DigestSignInit_ex() for the key under
 * alias and its algorithm's digest (key_alg_md()). The context keeps its
 * own reference to the key, so deactivating the token while a signature
 * is being made is safe. SP_ERR_STATE if the token is inactive,
 * SP_ERR_NOTFOUND if there is no such key. Caller frees with
 * EVP_MD_CTX_free().
 */
int		 token_sign_init(struct token *tok, const char *alias,
		    EVP_MD_CTX **out, struct sp_err *err) SP_WUR;

/*
 * A new reference to the private key under alias, for TLS only: OpenSSL's
 * SSL_CTX takes an EVP_PKEY. (When keys move behind a process boundary
 * this becomes a provider-backed key; callers do not change.) The
 * reference stays usable after deactivation, as a signing context does;
 * deactivating does not tear down TLS contexts already made.
 * SP_ERR_STATE if inactive, SP_ERR_NOTFOUND if no such key.
 */
int		 token_key_get1_tls(struct token *tok, const char *alias,
		    EVP_PKEY **out, struct sp_err *err) SP_WUR;

#endif
