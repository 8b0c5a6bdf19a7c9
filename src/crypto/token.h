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
 * blob to store. All functions are thread safe. While a token is active it
 * holds its KEK and the unwrapped keys, never the PIN. The token service
 * (token/token.h) is the registry above this.
 */
#ifndef SP_CRYPTO_TOKEN_H
#define SP_CRYPTO_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "crypto/key.h"
#include "util/err.h"

#define TOKEN_ALIAS_MAX	64	/* key alias length, [A-Za-z0-9_.-] */
#define TOKEN_KEYS_MAX	1024	/* keys in one token */
#define TOKEN_PIN_MIN	8	/* shortest PIN of a new token */

struct token;

/*
 * scrypt cost of a token's PIN (RFC 7914): n a power of two in
 * 2^10..2^20, r 1..32, p 1..16, 128 * r * n bytes at most 1 GiB. The
 * parameters are stored with each token, so they can be raised later:
 * token_activate() re-wraps a token whose parameters are below the ones
 * asked for.
 */
struct token_kdf {
	uint64_t	n;
	uint32_t	r;
	uint32_t	p;
};

/* N = 2^16, r = 8, p = 1: 64 MiB and about 0.2 s per activation. */
#define TOKEN_KDF_DEFAULT	((struct token_kdf){ 65536, 8, 1 })

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
 * The token's key check record, the string stored with it:
 *
 *   scrypt$N$r$p$SALT$NONCE$TAG
 *
 * The PIN and the salt give a 256-bit key (KEK) through scrypt; TAG is an
 * AES-256-GCM tag under the KEK over a fixed text, so testing a PIN costs
 * one full scrypt, as unwrapping a key does (there is no cheaper
 * verifier). Keys are AES-256-GCM under the KEK. Records of the earlier
 * scheme ("pbkdf2-sha256$...", a PBKDF2 verifier and keys in PBES2
 * PKCS#8 under the PIN) are still read, and re-wrapped at activation.
 */

/*
 * New inactive token over a stored record (copied). The record is checked
 * at activation. NULL if name or record is NULL or memory runs out.
 */
struct token	*token_new(const char *name, const char *record);

/*
 * A new token, active and without keys, with a fresh record for pin
 * (*record heap, caller frees and stores it). SP_ERR_INVALID for a PIN
 * outside TOKEN_PIN_MIN..KEY_PIN_MAX characters or bad kdf parameters.
 */
int		 token_create(const char *name, const char *pin,
		    const struct token_kdf *kdf, struct token **out,
		    char **record, struct sp_err *err) SP_WUR;
void		 token_free(struct token *tok);
const char	*token_name(const struct token *tok);

/*
 * Adds a stored key (wrapped key and its SPKI, both copied). If the
 * token is active the key is unwrapped right away. SP_ERR_EXISTS if the
 * alias is taken, SP_ERR_LIMIT past TOKEN_KEYS_MAX, SP_ERR_INVALID for a
 * malformed alias or an SPKI that is not a key of alg.
 */
int		 token_key_load(struct token *tok, const char *alias,
		    enum key_alg alg, const unsigned char *wrapped,
		    size_t wlen, const unsigned char *spki, size_t spkilen,
		    struct sp_err *err) SP_WUR;

/*
 * A token's re-wrapping, made by token_activate(): a new record and every
 * key wrapped under the new KEK, to be stored (in one transaction) before
 * token_upgrade_finish() puts it in force.
 */
struct token_upgrade;

/*
 * Checks pin against the record (SP_ERR_PIN if wrong) and unwraps every
 * key; on any failure the token stays inactive. Activating an active
 * token re-checks the pin: a wrong one gives SP_ERR_PIN and leaves the
 * token active (a bad guess must not take a CA offline). Each key is
 * checked against its algorithm and SPKI (SP_ERR_INVALID on mismatch).
 *
 * If the token's record is of the earlier scheme, or its scrypt cost is
 * below want, and up is not NULL, the PIN is checked and the keys are
 * re-wrapped into *up, but the token stays inactive: the caller stores
 * token_upgrade_record() and token_upgrade_key() and calls
 * token_upgrade_finish(), or token_upgrade_free() if storing failed.
 * With up NULL (or want NULL) a weak scrypt token is activated as it is,
 * and one of the earlier scheme gives SP_ERR_STATE.
 */
int		 token_activate(struct token *tok, const char *pin,
		    const struct token_kdf *want, struct token_upgrade **up,
		    struct sp_err *err) SP_WUR;
const char	*token_upgrade_record(const struct token_upgrade *up);
size_t		 token_upgrade_count(const struct token_upgrade *up);
/* The i-th re-wrapped key (borrowed from up); SP_ERR_NOTFOUND past the end. */
int		 token_upgrade_key(const struct token_upgrade *up, size_t i,
		    const char **alias, const unsigned char **wrapped,
		    size_t *wlen) SP_WUR;
/*
 * Puts the stored re-wrapping in force and activates the token; frees up
 * in any case. SP_ERR_STATE if the token changed in between.
 */
int		 token_upgrade_finish(struct token *tok,
		    struct token_upgrade *up, struct sp_err *err) SP_WUR;
void		 token_upgrade_free(struct token_upgrade *up);

/* Forgets the KEK and every unwrapped key. */
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
