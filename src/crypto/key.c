/*
 * Key algorithms, generation, the PIN-wrapped PKCS#8 storage format and
 * the PIN verifier. See docs/internals/crypto.md.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "crypto/key.h"
#include "util/util.h"

/*
 * PBKDF2 iterations of the earlier token scheme (wrapped keys and PIN
 * verifiers). Tokens no longer use it for new keys (scrypt, see
 * crypto/token.c); it is kept to read old tokens, which are re-wrapped
 * at their next activation. Both formats carry the count.
 */
#define KEY_PBKDF2_ITER		20000
/* Refuse stored counts above this: a hostile blob must not stall us. */
#define KEY_PBKDF2_ITER_MAX	10000000
#define KEY_SALT_LEN		16
#define KEY_HASH_LEN		32	/* SHA-256 */
#define KEY_WRAP_MAX		65536	/* bytes of wrapped DER accepted */
#define KEY_VERIFIER_MAX	512
#define VERIFIER_PREFIX		"pbkdf2-sha256$"

static const char *const alg_names[KEY__MAX] = {
	[KEY_EC_P256] = "ec-p256",
	[KEY_EC_P384] = "ec-p384",
	[KEY_RSA2048] = "rsa2048",
	[KEY_RSA3072] = "rsa3072",
	[KEY_RSA4096] = "rsa4096",
	[KEY_ED25519] = "ed25519",
};

const char *
key_alg_name(enum key_alg alg)
{
	if ((int)alg < 0 || alg >= KEY__MAX)
		return NULL;
	return alg_names[alg];
}

int
key_alg_parse(const char *s)
{
	if (s == NULL)
		return -1;
	for (int i = 0; i < KEY__MAX; i++)
		if (strcmp(s, alg_names[i]) == 0)
			return i;
	return -1;
}

int
key_alg_of(const EVP_PKEY *pk)
{
	char	group[64];
	int	nid;

	if (pk == NULL)
		return -1;
	if (EVP_PKEY_is_a(pk, "RSA")) {
		switch (EVP_PKEY_get_bits(pk)) {
		case 2048:
			return KEY_RSA2048;
		case 3072:
			return KEY_RSA3072;
		case 4096:
			return KEY_RSA4096;
		default:
			return -1;
		}
	}
	if (EVP_PKEY_is_a(pk, "ED25519"))
		return KEY_ED25519;
	if (!EVP_PKEY_is_a(pk, "EC"))
		return -1;
	/* Keys with explicit curve parameters have no group name. */
	if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME,
	    group, sizeof(group), NULL)) {
		ERR_clear_error();
		return -1;
	}
	if ((nid = OBJ_sn2nid(group)) == NID_undef)
		nid = EC_curve_nist2nid(group);
	if (nid == NID_X9_62_prime256v1)
		return KEY_EC_P256;
	if (nid == NID_secp384r1)
		return KEY_EC_P384;
	return -1;
}

const char *
key_alg_md(enum key_alg alg)
{
	switch (alg) {
	case KEY_EC_P256:
	case KEY_RSA2048:
	case KEY_RSA3072:
	case KEY_RSA4096:
		return "SHA256";
	case KEY_EC_P384:
		return "SHA384";
	case KEY_ED25519:
	case KEY__MAX:
		break;
	}
	return NULL;
}

int
key_generate(enum key_alg alg, EVP_PKEY **out, struct sp_err *err)
{
	EVP_PKEY	*pk = NULL;

	*out = NULL;
	switch (alg) {
	case KEY_EC_P256:
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		break;
	case KEY_EC_P384:
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
		break;
	case KEY_RSA2048:
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
		break;
	case KEY_RSA3072:
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
		break;
	case KEY_RSA4096:
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
		break;
	case KEY_ED25519:
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		break;
	default:
		return sp_err_set(err, SP_ERR_INVALID,
		    "unknown key algorithm %d", (int)alg);
	}
	if (pk == NULL)
		return sp_err_ossl(err, SP_ERR_CRYPTO, "EVP_PKEY_Q_keygen");
	*out = pk;
	return 0;
}

static int
pin_check(const char *pin, size_t *len, struct sp_err *err)
{
	size_t	n;

	*len = 0;
	if (pin == NULL)
		return sp_err_set(err, SP_ERR_INVALID, "PIN missing");
	n = strnlen(pin, KEY_PIN_MAX + 1);
	if (n < KEY_PIN_MIN || n > KEY_PIN_MAX)
		return sp_err_set(err, SP_ERR_INVALID,
		    "PIN must have %d to %d characters", KEY_PIN_MIN,
		    KEY_PIN_MAX);
	*len = n;
	return 0;
}

/* Copies an OpenSSL allocation into malloc(3) memory, as callers free(). */
static int
dup_der(const unsigned char *p, int n, unsigned char **der, size_t *len,
    struct sp_err *err)
{
	if (n <= 0)
		return sp_err_set(err, SP_ERR_INTERNAL, "empty encoding");
	if ((*der = malloc((size_t)n)) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	memcpy(*der, p, (size_t)n);
	*len = (size_t)n;
	return 0;
}

int
key_wrap(const EVP_PKEY *pk, const char *pin, unsigned char **der,
    size_t *len, struct sp_err *err)
{
	PKCS8_PRIV_KEY_INFO	*p8inf = NULL;
	X509_ALGOR		*pbe = NULL;
	X509_SIG		*p8 = NULL;
	EVP_CIPHER		*cipher = NULL;
	unsigned char		*buf = NULL;
	unsigned char		 salt[KEY_SALT_LEN];
	size_t			 pinlen;
	int			 n = 0, r;

	*der = NULL;
	*len = 0;
	if ((r = pin_check(pin, &pinlen, err)) != 0)
		goto out;
	/* PKCS8_PRIV_KEY_INFO_free() wipes the key bytes (p8_pkey.c). */
	if ((p8inf = EVP_PKEY2PKCS8(pk)) == NULL) {
		r = sp_err_ossl(err, SP_ERR_CRYPTO, "EVP_PKEY2PKCS8");
		goto out;
	}
	if ((cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL)) == NULL) {
		r = sp_err_ossl(err, SP_ERR_CRYPTO, "EVP_CIPHER_fetch");
		goto out;
	}
	/*
	 * PBES2, HMAC-SHA256 PRF, random IV (the NULL). Our own salt: 3.0's
	 * default (PKCS5_SALT_LEN) is only 8 bytes.
	 */
	if (RAND_bytes(salt, sizeof(salt)) != 1) {
		r = sp_err_ossl(err, SP_ERR_CRYPTO, "RAND_bytes");
		goto out;
	}
	if ((pbe = PKCS5_pbe2_set_iv_ex(cipher, KEY_PBKDF2_ITER, salt,
	    sizeof(salt), NULL, NID_hmacWithSHA256, NULL)) == NULL) {
		r = sp_err_ossl(err, SP_ERR_CRYPTO, "PKCS5_pbe2_set_iv_ex");
		goto out;
	}
	/* Takes pbe on success only. */
	if ((p8 = PKCS8_set0_pbe_ex(pin, (int)pinlen, p8inf, pbe, NULL,
	    NULL)) == NULL) {
		r = sp_err_ossl(err, SP_ERR_CRYPTO, "PKCS8_set0_pbe_ex");
		goto out;
	}
	pbe = NULL;
	if ((n = i2d_X509_SIG(p8, &buf)) <= 0) {
		r = sp_err_ossl(err, SP_ERR_CRYPTO, "i2d_X509_SIG");
		goto out;
	}
	r = dup_der(buf, n, der, len, err);
 out:
	OPENSSL_free(buf);
	X509_SIG_free(p8);
	X509_ALGOR_free(pbe);
	EVP_CIPHER_free(cipher);
	PKCS8_PRIV_KEY_INFO_free(p8inf);
	return r;
}

/*
 * Checks that sig uses PBES2 with PBKDF2, a cipher we know and a sane
 * iteration count, so that a decryption failure afterwards can only mean
 * a wrong PIN (or ciphertext damage, which looks the same).
 */
static int
wrap_params_check(const X509_SIG *sig, struct sp_err *err)
{
	const X509_ALGOR		*alg;
	const ASN1_OCTET_STRING		*data;
	PBE2PARAM			*pbe2 = NULL;
	PBKDF2PARAM			*kdf = NULL;
	EVP_CIPHER			*cipher = NULL;
	const ASN1_TYPE			*iv;
	int64_t				 iter;
	int				 nid, r = SP_ERR_INVALID;

	X509_SIG_get0(sig, &alg, &data);
	if (OBJ_obj2nid(alg->algorithm) != NID_pbes2) {
		sp_err_set(err, r, "wrapped key: not PBES2-encrypted");
		goto out;
	}
	if ((pbe2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM),
	    alg->parameter)) == NULL) {
		sp_err_set(err, r, "wrapped key: bad PBES2 parameters");
		goto out;
	}
	if (OBJ_obj2nid(pbe2->keyfunc->algorithm) != NID_id_pbkdf2 ||
	    (kdf = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM),
	    pbe2->keyfunc->parameter)) == NULL) {
		sp_err_set(err, r, "wrapped key: bad PBKDF2 parameters");
		goto out;
	}
	if (!ASN1_INTEGER_get_int64(&iter, kdf->iter) || iter < 1 ||
	    iter > KEY_PBKDF2_ITER_MAX) {
		sp_err_set(err, r, "wrapped key: bad PBKDF2 iteration count");
		goto out;
	}
	/* The PRF defaults to HMAC-SHA1 when absent (RFC 8018). */
	if (kdf->prf != NULL && !EVP_PBE_find(EVP_PBE_TYPE_PRF,
	    OBJ_obj2nid(kdf->prf->algorithm), NULL, NULL, NULL)) {
		sp_err_set(err, r, "wrapped key: unknown PBKDF2 PRF");
		goto out;
	}
	if (kdf->salt == NULL || kdf->salt->type != V_ASN1_OCTET_STRING) {
		sp_err_set(err, r, "wrapped key: bad PBKDF2 salt");
		goto out;
	}
	nid = OBJ_obj2nid(pbe2->encryption->algorithm);
	if (nid == NID_undef || (cipher = EVP_CIPHER_fetch(NULL,
	    OBJ_nid2sn(nid), NULL)) == NULL ||
	    EVP_CIPHER_get_mode(cipher) != EVP_CIPH_CBC_MODE) {
		sp_err_set(err, r, "wrapped key: unsupported cipher");
		goto out;
	}
	iv = pbe2->encryption->parameter;
	if (iv == NULL || iv->type != V_ASN1_OCTET_STRING ||
	    iv->value.octet_string->length !=
	    EVP_CIPHER_get_iv_length(cipher) || (kdf->keylength != NULL &&
	    ASN1_INTEGER_get(kdf->keylength) !=
	    EVP_CIPHER_get_key_length(cipher))) {
		sp_err_set(err, r, "wrapped key: bad cipher parameters");
		goto out;
	}
	if (data->length <= 0 ||
	    data->length % EVP_CIPHER_get_block_size(cipher) != 0) {
		sp_err_set(err, r, "wrapped key: bad ciphertext length");
		goto out;
	}
	r = 0;
 out:
	ERR_clear_error();
	EVP_CIPHER_free(cipher);
	PBKDF2PARAM_free(kdf);
	PBE2PARAM_free(pbe2);
	return r;
}

int
key_unwrap(const unsigned char *der, size_t len, const char *pin,
    EVP_PKEY **out, struct sp_err *err)
{
	const unsigned char	*p = der;
	X509_SIG		*sig = NULL;
	PKCS8_PRIV_KEY_INFO	*p8inf = NULL;
	EVP_PKEY		*pk = NULL;
	size_t			 pinlen;
	int			 r;

	*out = NULL;
	if ((r = pin_check(pin, &pinlen, err)) != 0)
		goto out;
	r = SP_ERR_INVALID;
	if (der == NULL || len == 0 || len > KEY_WRAP_MAX) {
		sp_err_set(err, r, "wrapped key: bad length %zu", len);
		goto out;
	}
	if ((sig = d2i_X509_SIG(NULL, &p, (long)len)) == NULL ||
	    p != der + len) {
		sp_err_set(err, r,
		    "wrapped key: not an EncryptedPrivateKeyInfo");
		goto out;
	}
	if ((r = wrap_params_check(sig, err)) != 0)
		goto out;
	/*
	 * Fails on bad CBC padding, or (1 in 256 for a wrong key) on
	 * padding that happens to be right around garbage that does not
	 * parse: both mean the PIN is wrong.
	 */
	if ((p8inf = PKCS8_decrypt_ex(sig, pin, (int)pinlen, NULL,
	    NULL)) == NULL) {
		ERR_clear_error();
		r = sp_err_set(err, SP_ERR_PIN, "wrong PIN");
		goto out;
	}
	if ((pk = EVP_PKCS82PKEY_ex(p8inf, NULL, NULL)) == NULL) {
		r = sp_err_ossl(err, SP_ERR_INVALID,
		    "wrapped key: EVP_PKCS82PKEY_ex");
		goto out;
	}
	*out = pk;
	r = 0;
 out:
	PKCS8_PRIV_KEY_INFO_free(p8inf);
	X509_SIG_free(sig);
	return r;
}

int
key_spki_der(const EVP_PKEY *pk, unsigned char **der, size_t *len,
    struct sp_err *err)
{
	unsigned char	*buf = NULL;
	int		 n, r;

	*der = NULL;
	*len = 0;
	if ((n = i2d_PUBKEY(pk, &buf)) <= 0)
		return sp_err_ossl(err, SP_ERR_CRYPTO, "i2d_PUBKEY");
	r = dup_der(buf, n, der, len, err);
	OPENSSL_free(buf);
	return r;
}

static int
pbkdf2(const char *pin, size_t pinlen, const unsigned char *salt,
    size_t saltlen, int iter, unsigned char *hash)
{
	/* 1 on success, 0 on failure. */
	if (!PKCS5_PBKDF2_HMAC(pin, (int)pinlen, salt, (int)saltlen, iter,
	    EVP_sha256(), KEY_HASH_LEN, hash)) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

int
key_pin_hash(const char *pin, char **out, struct sp_err *err)
{
	unsigned char	salt[KEY_SALT_LEN], hash[KEY_HASH_LEN];
	char		salthex[2 * KEY_SALT_LEN + 1];
	char		hashhex[2 * KEY_HASH_LEN + 1];
	char		buf[KEY_VERIFIER_MAX];
	size_t		pinlen;
	int		r;

	*out = NULL;
	if ((r = pin_check(pin, &pinlen, err)) != 0)
		goto out;
	if (RAND_bytes(salt, sizeof(salt)) != 1) {
		r = sp_err_ossl(err, SP_ERR_CRYPTO, "RAND_bytes");
		goto out;
	}
	if (pbkdf2(pin, pinlen, salt, sizeof(salt), KEY_PBKDF2_ITER,
	    hash) != 0) {
		r = sp_err_set(err, SP_ERR_CRYPTO, "PKCS5_PBKDF2_HMAC failed");
		goto out;
	}
	sp_hex_encode(salt, sizeof(salt), salthex);
	sp_hex_encode(hash, sizeof(hash), hashhex);
	snprintf(buf, sizeof(buf), VERIFIER_PREFIX "%d$%s$%s",
	    KEY_PBKDF2_ITER, salthex, hashhex);
	if ((*out = strdup(buf)) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}
	r = 0;
 out:
	OPENSSL_cleanse(hash, sizeof(hash));
	OPENSSL_cleanse(hashhex, sizeof(hashhex));
	OPENSSL_cleanse(buf, sizeof(buf));
	return r;
}

/*
 * Copies the '$'-terminated field at *s into buf and moves *s past the
 * '$' (or to the end if last). Returns -1 if missing or too long.
 */
static int
verifier_field(const char **s, char *buf, size_t bufsz, bool last)
{
	size_t	n;

	n = strcspn(*s, "$");
	if (n == 0 || n >= bufsz || (last ? (*s)[n] != '\0' :
	    (*s)[n] != '$'))
		return -1;
	memcpy(buf, *s, n);
	buf[n] = '\0';
	*s += last ? n : n + 1;
	return 0;
}

bool
key_pin_verify(const char *pin, const char *verifier)
{
	unsigned char	 salt[64], want[KEY_HASH_LEN], got[KEY_HASH_LEN];
	char		 field[2 * sizeof(salt) + 1];
	const char	*s = verifier, *errstr;
	long long	 iter;
	size_t		 pinlen;
	int		 saltlen;
	bool		 ok = false;

	if (pin_check(pin, &pinlen, NULL) != 0 || verifier == NULL ||
	    strnlen(verifier, KEY_VERIFIER_MAX) >= KEY_VERIFIER_MAX)
		goto out;
	if (strncmp(s, VERIFIER_PREFIX, strlen(VERIFIER_PREFIX)) != 0)
		goto out;
	s += strlen(VERIFIER_PREFIX);
	if (verifier_field(&s, field, sizeof(field), false) != 0 ||
	    sp_strtonum(field, 1, KEY_PBKDF2_ITER_MAX, &iter, &errstr) != 0)
		goto out;
	if (verifier_field(&s, field, sizeof(field), false) != 0 ||
	    (saltlen = sp_hex_decode(field, salt, sizeof(salt))) < 8)
		goto out;
	if (verifier_field(&s, field, sizeof(field), true) != 0 ||
	    sp_hex_decode(field, want, sizeof(want)) != KEY_HASH_LEN)
		goto out;
	if (pbkdf2(pin, pinlen, salt, (size_t)saltlen, (int)iter, got) != 0)
		goto out;
	ok = CRYPTO_memcmp(got, want, sizeof(got)) == 0;
 out:
	OPENSSL_cleanse(got, sizeof(got));
	return ok;
}
