/*
 * Key algorithms, key generation, and PIN-protected key storage format.
 */
#ifndef SP_CRYPTO_KEY_H
#define SP_CRYPTO_KEY_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include "util/err.h"

enum key_alg {
	KEY_EC_P256,
	KEY_EC_P384,
	KEY_RSA2048,
	KEY_RSA3072,
	KEY_RSA4096,
	KEY_ED25519,
	KEY__MAX
};

#define KEY_PIN_MIN	4	/* shortest activation PIN accepted */
#define KEY_PIN_MAX	256	/* longest */

/* "ec-p256", "ec-p384", "rsa2048", "rsa3072", "rsa4096", "ed25519". */
const char	*key_alg_name(enum key_alg alg);
/* Inverse of key_alg_name(); -1 if unknown. */
int		 key_alg_parse(const char *s);

/*
 * The key_alg of a (public or private) key, or -1 if it is none of the
 * supported ones (RSA of another size, another curve, DSA, ...).
 */
int		 key_alg_of(const EVP_PKEY *pk);

/*
 * Digest name to sign with for a key of this algorithm: "SHA256" for
 * P-256 and RSA, "SHA384" for P-384, NULL for Ed25519 (no pre-hash).
 */
const char	*key_alg_md(enum key_alg alg);

/* Generates a new key pair (*out, caller frees). */
int		 key_generate(enum key_alg alg, EVP_PKEY **out,
		    struct sp_err *err) SP_WUR;

/*
 * Encrypted PKCS#8 (PBES2: PBKDF2-HMAC-SHA256, AES-256-CBC) DER of the
 * private key, keyed by pin. *der is heap (caller frees), *len its size.
 */
int		 key_wrap(const EVP_PKEY *pk, const char *pin,
		    unsigned char **der, size_t *len, struct sp_err *err) SP_WUR;

/*
 * Decrypts key_wrap() output. A wrong pin gives SP_ERR_PIN; malformed
 * input SP_ERR_INVALID. The structure and PBES2 parameters are checked
 * first (so garbage is SP_ERR_INVALID, as are iteration counts above ten
 * million); damaged ciphertext cannot be told from a wrong pin and gives
 * SP_ERR_PIN. A pin outside KEY_PIN_MIN..KEY_PIN_MAX is SP_ERR_INVALID,
 * as in key_wrap().
 */
int		 key_unwrap(const unsigned char *der, size_t len,
		    const char *pin, EVP_PKEY **out, struct sp_err *err) SP_WUR;

/* DER SubjectPublicKeyInfo of pk (*der heap, caller frees). */
int		 key_spki_der(const EVP_PKEY *pk, unsigned char **der,
		    size_t *len, struct sp_err *err) SP_WUR;

/*
 * PIN verifier string "pbkdf2-sha256$ITER$SALTHEX$HASHHEX" with a fresh
 * 16-byte salt (*out heap, caller frees). Rejects PINs outside
 * KEY_PIN_MIN..KEY_PIN_MAX with SP_ERR_INVALID.
 */
int		 key_pin_hash(const char *pin, char **out, struct sp_err *err)
		    SP_WUR;
/* Constant-time check of pin against a key_pin_hash() string. */
bool		 key_pin_verify(const char *pin, const char *verifier);

#endif
