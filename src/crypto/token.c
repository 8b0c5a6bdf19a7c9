/*
 * Soft crypto tokens: keys wrapped under a KEK derived from the PIN with
 * scrypt, unwrapped while the token is active. One mutex per token guards
 * everything below it except the name, which never changes. See
 * docs/internals/crypto.md for the threading and ownership model and
 * docs/decisions.md ("Tokens: their own service, scrypt, ...") for the KDF.
 */
#include <sys/types.h>

#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "crypto/key.h"
#include "crypto/token.h"
#include "util/log.h"
#include "util/util.h"

#define TOKEN_BLOB_MAX	65536	/* bytes of wrapped key or SPKI */
#define KEK_LEN		32	/* AES-256 */
#define SALT_LEN	16
#define NONCE_LEN	12	/* GCM */
#define TAG_LEN		16
#define RECORD_MAX	256	/* characters of a record string */
#define KDF_MEM_MAX	(1ull << 30)	/* bytes scrypt may use */

#define RECORD_PREFIX	"scrypt$"
#define OLD_PREFIX	"pbkdf2-sha256$"
/* The text the record's tag covers (AAD; the plaintext is empty). */
#define CHECK_AAD	"sallyport token check v1"
/* A wrapped key: "SPK1" NONCE CIPHERTEXT TAG, AAD "SPK1" alg. */
#define KEY_MAGIC	"SPK1"
#define KEY_MAGIC_LEN	4

struct token_key {
	char		 alias[TOKEN_ALIAS_MAX + 1];
	enum key_alg	 alg;
	unsigned char	*wrapped;
	size_t		 wlen;
	unsigned char	*spki;
	size_t		 spkilen;
	EVP_PKEY	*pkey;		/* unwrapped, while active */
};

struct token {
	/*
	 * Heap, so that the const getters (token_key_count() ...) can lock
	 * it without casting away const.
	 */
	pthread_mutex_t		*mtx;
	char			*name;
	char			*record;	/* changes on re-wrapping */
	bool			 active;
	unsigned char		 kek[KEK_LEN];	/* while active */
	struct token_key	*keys;
	size_t			 nkeys;
	size_t			 cap;
};

struct token_upgrade {
	char		*oldrec;	/* the record it replaces */
	char		*record;
	unsigned char	 kek[KEK_LEN];
	size_t		 n;
	char		(*alias)[TOKEN_ALIAS_MAX + 1];
	unsigned char	**wrapped;
	size_t		*wlen;
	EVP_PKEY	**pkey;
};

/* A parsed record. */
struct record {
	bool			old;	/* pbkdf2-sha256$...: the earlier scheme */
	struct token_kdf	kdf;
	unsigned char		salt[SALT_LEN];
	unsigned char		nonce[NONCE_LEN];
	unsigned char		tag[TAG_LEN];
};

static void
lock(const struct token *tok)
{
	int	e;

	if ((e = pthread_mutex_lock(tok->mtx)) != 0)
		fatalx("%s: pthread_mutex_lock: %s", __func__, strerror(e));
}

static void
unlock(const struct token *tok)
{
	int	e;

	if ((e = pthread_mutex_unlock(tok->mtx)) != 0)
		fatalx("%s: pthread_mutex_unlock: %s", __func__, strerror(e));
}

/* Index of alias in tok->keys or -1. Called locked. */
static ssize_t
key_index(const struct token *tok, const char *alias)
{
	if (alias == NULL)
		return -1;
	for (size_t i = 0; i < tok->nkeys; i++)
		if (strcmp(tok->keys[i].alias, alias) == 0)
			return (ssize_t)i;
	return -1;
}

static void
key_cleanup(struct token_key *k)
{
	EVP_PKEY_free(k->pkey);
	free(k->wrapped);
	free(k->spki);
	memset(k, 0, sizeof(*k));
}

static void
keyinfo_fill(const struct token_key *k, struct token_keyinfo *info)
{
	memcpy(info->alias, k->alias, sizeof(info->alias));
	info->alg = k->alg;
	info->spki = k->spki;
	info->spkilen = k->spkilen;
}

static int
blob_dup(const unsigned char *p, size_t len, unsigned char **out,
    struct sp_err *err)
{
	*out = NULL;
	if ((*out = malloc(len)) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	memcpy(*out, p, len);
	return 0;
}

/* Parses an SPKI and checks it is a key of alg. */
static int
spki_check(const unsigned char *spki, size_t len, enum key_alg alg,
    EVP_PKEY **out, struct sp_err *err)
{
	const unsigned char	*p = spki;
	EVP_PKEY		*pub = NULL;
	int			 r = SP_ERR_INVALID;

	if (out != NULL)
		*out = NULL;
	if ((pub = d2i_PUBKEY(NULL, &p, (long)len)) == NULL ||
	    p != spki + len) {
		ERR_clear_error();
		sp_err_set(err, r, "SPKI does not parse");
		goto out;
	}
	if (key_alg_of(pub) != (int)alg) {
		sp_err_set(err, r, "SPKI is not a %s key", key_alg_name(alg));
		goto out;
	}
	if (out != NULL) {
		*out = pub;
		pub = NULL;
	}
	r = 0;
 out:
	EVP_PKEY_free(pub);
	return r;
}

/* --- KDF, record and AEAD --------------------------------------------- */

static bool
kdf_valid(const struct token_kdf *k)
{
	return k->n >= 1024 && k->n <= (1u << 20) && (k->n & (k->n - 1)) == 0 &&
	    k->r >= 1 && k->r <= 32 && k->p >= 1 && k->p <= 16 &&
	    128ull * k->r * k->n <= KDF_MEM_MAX;
}

/* True if have costs less than want in any parameter. */
static bool
kdf_weaker(const struct token_kdf *have, const struct token_kdf *want)
{
	return have->n < want->n || have->r < want->r || have->p < want->p;
}

/* The KEK of pin under salt and k (scrypt through EVP_KDF). */
static int
kdf_derive(const char *pin, size_t pinlen, const unsigned char *salt,
    const struct token_kdf *k, unsigned char kek[KEK_LEN], struct sp_err *err)
{
	EVP_KDF		*kdf = NULL;
	EVP_KDF_CTX	*ctx = NULL;
	OSSL_PARAM	 ps[7];
	uint64_t	 n = k->n, maxmem;
	uint32_t	 r = k->r, p = k->p;
	int		 rc = SP_ERR_CRYPTO;

	/* scrypt's own accounting: 128 r (N + 2) for V plus 128 r p for B. */
	maxmem = 128ull * r * (n + 2) + 128ull * r * p + 4096;
	ps[0] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
	    (void *)(uintptr_t)pin, pinlen);
	ps[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
	    (void *)(uintptr_t)salt, SALT_LEN);
	ps[2] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
	ps[3] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
	ps[4] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p);
	ps[5] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM,
	    &maxmem);
	ps[6] = OSSL_PARAM_construct_end();
	if ((kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_SCRYPT, NULL)) == NULL ||
	    (ctx = EVP_KDF_CTX_new(kdf)) == NULL ||
	    EVP_KDF_derive(ctx, kek, KEK_LEN, ps) != 1) {
		OPENSSL_cleanse(kek, KEK_LEN);
		sp_err_ossl(err, rc, "scrypt");
		goto out;
	}
	rc = 0;
 out:
	EVP_KDF_CTX_free(ctx);	/* clears the password copy */
	EVP_KDF_free(kdf);
	return rc;
}

/*
 * AES-256-GCM of pt under kek with aad: out gets NONCE CIPHERTEXT TAG
 * after prefixlen bytes of prefix (*out heap, caller frees).
 */
static int
aead_seal(const unsigned char kek[KEK_LEN], const void *prefix,
    size_t prefixlen, const unsigned char *aad, size_t aadlen,
    const unsigned char *pt, size_t ptlen, unsigned char **out,
    size_t *outlen, struct sp_err *err)
{
	EVP_CIPHER_CTX	*ctx = NULL;
	unsigned char	*buf = NULL, *nonce, *ct;
	size_t		 len;
	int		 n, r = SP_ERR_CRYPTO;

	*out = NULL;
	*outlen = 0;
	if (ptlen > TOKEN_BLOB_MAX)
		return sp_err_set(err, SP_ERR_LIMIT, "key too large");
	len = prefixlen + NONCE_LEN + ptlen + TAG_LEN;
	if ((buf = malloc(len)) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	if (prefixlen > 0)
		memcpy(buf, prefix, prefixlen);
	nonce = buf + prefixlen;
	ct = nonce + NONCE_LEN;
	if (RAND_bytes(nonce, NONCE_LEN) != 1 ||
	    (ctx = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, kek, nonce) != 1 ||
	    (aadlen > 0 && EVP_EncryptUpdate(ctx, NULL, &n, aad,
	    (int)aadlen) != 1) ||
	    (ptlen > 0 && EVP_EncryptUpdate(ctx, ct, &n, pt, (int)ptlen) != 1) ||
	    EVP_EncryptFinal_ex(ctx, ct + ptlen, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN,
	    ct + ptlen) != 1) {
		sp_err_ossl(err, r, "AES-256-GCM");
		goto out;
	}
	*out = buf;
	*outlen = len;
	buf = NULL;
	r = 0;
 out:
	EVP_CIPHER_CTX_free(ctx);
	sp_freezero(buf, len);
	return r;
}

/*
 * Opens aead_seal() output (without its prefix): *pt heap, wiped and
 * freed by the caller; it may be NULL for an empty plaintext. SP_ERR_PIN
 * if the tag does not match (wrong KEK or damaged data).
 */
static int
aead_open(const unsigned char kek[KEK_LEN], const unsigned char *aad,
    size_t aadlen, const unsigned char *in, size_t inlen, unsigned char **pt,
    size_t *ptlen, struct sp_err *err)
{
	EVP_CIPHER_CTX	*ctx = NULL;
	unsigned char	*buf = NULL, tag[TAG_LEN];
	size_t		 len;
	int		 n, r = SP_ERR_CRYPTO;

	*pt = NULL;
	*ptlen = 0;
	if (inlen < NONCE_LEN + TAG_LEN || inlen > TOKEN_BLOB_MAX)
		return sp_err_set(err, SP_ERR_INVALID, "bad wrapped data");
	len = inlen - NONCE_LEN - TAG_LEN;
	memcpy(tag, in + inlen - TAG_LEN, TAG_LEN);
	if (len > 0 && (buf = malloc(len)) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, kek, in) != 1 ||
	    (aadlen > 0 && EVP_DecryptUpdate(ctx, NULL, &n, aad,
	    (int)aadlen) != 1) ||
	    (len > 0 && EVP_DecryptUpdate(ctx, buf, &n, in + NONCE_LEN,
	    (int)len) != 1) ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1) {
		sp_err_ossl(err, r, "AES-256-GCM");
		goto out;
	}
	if (EVP_DecryptFinal_ex(ctx, buf != NULL ? buf + len : tag, &n) != 1) {
		ERR_clear_error();
		r = sp_err_set(err, SP_ERR_PIN, "wrong PIN");
		goto out;
	}
	*pt = buf;
	*ptlen = len;
	buf = NULL;
	r = 0;
 out:
	EVP_CIPHER_CTX_free(ctx);
	sp_freezero(buf, len);
	return r;
}

/* One '$'-terminated (or, if last, NUL-terminated) field of a record. */
static bool
record_field(const char **s, char *buf, size_t bufsz, bool last)
{
	size_t	n = strcspn(*s, "$");

	if (n == 0 || n >= bufsz || (last ? (*s)[n] != '\0' : (*s)[n] != '$'))
		return false;
	memcpy(buf, *s, n);
	buf[n] = '\0';
	*s += last ? n : n + 1;
	return true;
}

/* Parses a record; false if it is neither scheme's. */
static bool
record_parse(const char *rec, struct record *out)
{
	char		 f[2 * SALT_LEN + 1];
	const char	*s = rec, *errstr;
	long long	 v[3];

	memset(out, 0, sizeof(*out));
	if (rec == NULL || strnlen(rec, RECORD_MAX + 1) > RECORD_MAX)
		return false;
	if (strncmp(rec, OLD_PREFIX, strlen(OLD_PREFIX)) == 0) {
		out->old = true;	/* key_pin_verify() reads the rest */
		return true;
	}
	if (strncmp(rec, RECORD_PREFIX, strlen(RECORD_PREFIX)) != 0)
		return false;
	s += strlen(RECORD_PREFIX);
	for (int i = 0; i < 3; i++)
		if (!record_field(&s, f, sizeof(f), false) ||
		    sp_strtonum(f, 1, 1 << 20, &v[i], &errstr) != 0)
			return false;
	out->kdf.n = (uint64_t)v[0];
	out->kdf.r = (uint32_t)v[1];
	out->kdf.p = (uint32_t)v[2];
	if (!kdf_valid(&out->kdf))
		return false;
	if (!record_field(&s, f, sizeof(f), false) ||
	    sp_hex_decode(f, out->salt, SALT_LEN) != SALT_LEN ||
	    !record_field(&s, f, sizeof(f), false) ||
	    sp_hex_decode(f, out->nonce, NONCE_LEN) != NONCE_LEN ||
	    !record_field(&s, f, sizeof(f), true) ||
	    sp_hex_decode(f, out->tag, TAG_LEN) != TAG_LEN)
		return false;
	return true;
}

/* PIN length of a new token; 0 or SP_ERR_INVALID. */
static int
pin_new_check(const char *pin, size_t *len, struct sp_err *err)
{
	size_t	n = pin != NULL ? strnlen(pin, KEY_PIN_MAX + 1) : 0;

	*len = n;
	if (n < TOKEN_PIN_MIN || n > KEY_PIN_MAX)
		return sp_err_set(err, SP_ERR_INVALID, "PIN must have %d to %d "
		    "characters", TOKEN_PIN_MIN, KEY_PIN_MAX);
	return 0;
}

/* A fresh record for pin under kdf, and its KEK (*out heap). */
static int
record_make(const char *pin, size_t pinlen, const struct token_kdf *kdf,
    unsigned char kek[KEK_LEN], char **out, struct sp_err *err)
{
	unsigned char	 salt[SALT_LEN], *sealed = NULL;
	char		 hs[2 * SALT_LEN + 1], hn[2 * NONCE_LEN + 1];
	char		 ht[2 * TAG_LEN + 1], buf[RECORD_MAX + 1];
	size_t		 slen = 0;
	int		 r;

	*out = NULL;
	if (!kdf_valid(kdf))
		return sp_err_set(err, SP_ERR_INVALID, "bad scrypt parameters");
	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return sp_err_ossl(err, SP_ERR_CRYPTO, "RAND_bytes");
	if ((r = kdf_derive(pin, pinlen, salt, kdf, kek, err)) != 0)
		return r;
	if ((r = aead_seal(kek, NULL, 0, (const unsigned char *)CHECK_AAD,
	    strlen(CHECK_AAD), NULL, 0, &sealed, &slen, err)) != 0)
		goto out;
	sp_hex_encode(salt, SALT_LEN, hs);
	sp_hex_encode(sealed, NONCE_LEN, hn);
	sp_hex_encode(sealed + NONCE_LEN, TAG_LEN, ht);
	snprintf(buf, sizeof(buf), RECORD_PREFIX "%" PRIu64 "$%" PRIu32 "$%"
	    PRIu32 "$%s$%s$%s", kdf->n, kdf->r, kdf->p, hs, hn, ht);
	if ((*out = strdup(buf)) == NULL)
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
 out:
	free(sealed);
	if (r != 0)
		OPENSSL_cleanse(kek, KEK_LEN);
	return r;
}

/* Derives the KEK of pin and checks it against the record's tag. */
static int
record_open(const struct record *rc, const char *pin, size_t pinlen,
    unsigned char kek[KEK_LEN], struct sp_err *err)
{
	unsigned char	 in[NONCE_LEN + TAG_LEN], *pt = NULL;
	size_t		 ptlen;
	int		 r;

	if ((r = kdf_derive(pin, pinlen, rc->salt, &rc->kdf, kek, err)) != 0)
		return r;
	memcpy(in, rc->nonce, NONCE_LEN);
	memcpy(in + NONCE_LEN, rc->tag, TAG_LEN);
	r = aead_open(kek, (const unsigned char *)CHECK_AAD, strlen(CHECK_AAD),
	    in, sizeof(in), &pt, &ptlen, NULL);
	free(pt);
	if (r != 0) {
		OPENSSL_cleanse(kek, KEK_LEN);
		return r == SP_ERR_PIN ? sp_err_set(err, r, "wrong PIN") :
		    sp_err_set(err, SP_ERR_CRYPTO, "checking the PIN failed");
	}
	return 0;
}

/*
 * The AAD of a wrapped key: magic and algorithm. The alias is not bound:
 * the SPKI check at unwrapping already ties a blob to its row's key.
 */
static size_t
key_aad(enum key_alg alg, unsigned char buf[KEY_MAGIC_LEN + 1])
{
	memcpy(buf, KEY_MAGIC, KEY_MAGIC_LEN);
	buf[KEY_MAGIC_LEN] = (unsigned char)alg;
	return KEY_MAGIC_LEN + 1;
}

/* Wraps pk under kek: PKCS#8 PrivateKeyInfo in AES-256-GCM (*out heap). */
static int
key_seal(const unsigned char kek[KEK_LEN], enum key_alg alg, EVP_PKEY *pk,
    unsigned char **out, size_t *outlen,
    struct sp_err *err)
{
	PKCS8_PRIV_KEY_INFO	*p8 = NULL;
	unsigned char		 aad[KEY_MAGIC_LEN + 1];
	unsigned char		*der = NULL;
	int			 n = 0, r;

	*out = NULL;
	*outlen = 0;
	if ((p8 = EVP_PKEY2PKCS8(pk)) == NULL ||
	    (n = i2d_PKCS8_PRIV_KEY_INFO(p8, &der)) <= 0) {
		r = sp_err_ossl(err, SP_ERR_CRYPTO, "encoding the private key");
		goto out;
	}
	r = aead_seal(kek, KEY_MAGIC, KEY_MAGIC_LEN, aad, key_aad(alg, aad),
	    der, (size_t)n, out, outlen, err);
 out:
	if (der != NULL)
		OPENSSL_clear_free(der, (size_t)n);
	PKCS8_PRIV_KEY_INFO_free(p8);	/* clears the key octets */
	return r;
}

/* Unwraps a key_seal() blob. SP_ERR_PIN if kek is not its key. */
static int
key_unseal(const unsigned char kek[KEK_LEN], const struct token_key *k,
    EVP_PKEY **out, struct sp_err *err)
{
	PKCS8_PRIV_KEY_INFO	*p8 = NULL;
	unsigned char		 aad[KEY_MAGIC_LEN + 1];
	unsigned char		*pt = NULL;
	const unsigned char	*p;
	size_t			 ptlen = 0;
	int			 r;

	*out = NULL;
	if (k->wlen < KEY_MAGIC_LEN ||
	    memcmp(k->wrapped, KEY_MAGIC, KEY_MAGIC_LEN) != 0)
		return sp_err_set(err, SP_ERR_INVALID, "key %s: not a wrapped "
		    "key of this scheme", k->alias);
	if ((r = aead_open(kek, aad, key_aad(k->alg, aad),
	    k->wrapped + KEY_MAGIC_LEN, k->wlen - KEY_MAGIC_LEN, &pt, &ptlen,
	    err)) != 0)
		goto out;
	p = pt;
	if (ptlen == 0 || ptlen > LONG_MAX ||
	    (p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)ptlen)) == NULL ||
	    p != pt + ptlen ||
	    (*out = EVP_PKCS82PKEY_ex(p8, NULL, NULL)) == NULL) {
		ERR_clear_error();
		r = sp_err_set(err, SP_ERR_INVALID, "key %s: bad private key",
		    k->alias);
		goto out;
	}
	r = 0;
 out:
	PKCS8_PRIV_KEY_INFO_free(p8);
	sp_freezero(pt, ptlen);
	return r;
}

/*
 * Unwraps k, with the KEK (kek) or, for a key of the earlier scheme, the
 * PIN, and checks the private key against the stored algorithm and SPKI,
 * so a swapped blob cannot sign under another alias.
 */
static int
key_open(const struct token_key *k, const unsigned char *kek,
    const char *pin, EVP_PKEY **out, struct sp_err *err)
{
	EVP_PKEY	*pk = NULL, *pub = NULL;
	int		 r;

	*out = NULL;
	if (kek != NULL)
		r = key_unseal(kek, k, &pk, err);
	else
		r = key_unwrap(k->wrapped, k->wlen, pin, &pk, err);
	if (r != 0) {
		sp_err_set(err, r, "key %s: cannot unwrap", k->alias);
		goto out;
	}
	if ((r = spki_check(k->spki, k->spkilen, k->alg, &pub, err)) != 0)
		goto out;
	/* 1 if equal, 0 if not, negative if they cannot be compared. */
	if (key_alg_of(pk) != (int)k->alg || EVP_PKEY_eq(pk, pub) != 1) {
		ERR_clear_error();
		r = sp_err_set(err, SP_ERR_INVALID,
		    "key %s: private key does not match its SPKI", k->alias);
		goto out;
	}
	*out = pk;
	pk = NULL;
	r = 0;
 out:
	EVP_PKEY_free(pub);
	EVP_PKEY_free(pk);
	return r;
}

/* Makes room for one more key. Called locked. */
static int
keys_grow(struct token *tok, struct sp_err *err)
{
	struct token_key	*k;
	size_t			 cap;

	if (tok->nkeys >= TOKEN_KEYS_MAX)
		return sp_err_set(err, SP_ERR_LIMIT,
		    "token %s: more than %d keys", tok->name, TOKEN_KEYS_MAX);
	if (tok->nkeys < tok->cap)
		return 0;
	cap = tok->cap == 0 ? 8 : tok->cap * 2;
	if (cap > TOKEN_KEYS_MAX)
		cap = TOKEN_KEYS_MAX;
	if ((k = reallocarray(tok->keys, cap, sizeof(*k))) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	tok->keys = k;
	tok->cap = cap;
	return 0;
}

struct token *
token_new(const char *name, const char *record)
{
	struct token	*tok;

	if (name == NULL || record == NULL)
		return NULL;
	if ((tok = calloc(1, sizeof(*tok))) == NULL)
		return NULL;
	if ((tok->name = strdup(name)) == NULL ||
	    (tok->record = strdup(record)) == NULL ||
	    (tok->mtx = malloc(sizeof(*tok->mtx))) == NULL)
		goto fail;
	if (pthread_mutex_init(tok->mtx, NULL) != 0) {
		free(tok->mtx);
		tok->mtx = NULL;
		goto fail;
	}
	return tok;
 fail:
	free(tok->name);
	free(tok->record);
	free(tok->mtx);
	free(tok);
	return NULL;
}

int
token_create(const char *name, const char *pin, const struct token_kdf *kdf,
    struct token **out, char **record, struct sp_err *err)
{
	struct token	*tok = NULL;
	unsigned char	 kek[KEK_LEN];
	char		*rec = NULL;
	size_t		 pinlen;
	int		 r;

	*out = NULL;
	*record = NULL;
	if (name == NULL)
		return sp_err_set(err, SP_ERR_INVALID, "token name missing");
	if ((r = pin_new_check(pin, &pinlen, err)) != 0 ||
	    (r = record_make(pin, pinlen, kdf, kek, &rec, err)) != 0)
		return r;
	if ((tok = token_new(name, rec)) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}
	memcpy(tok->kek, kek, KEK_LEN);
	tok->active = true;
	*out = tok;
	*record = rec;
	rec = NULL;
	r = 0;
 out:
	OPENSSL_cleanse(kek, sizeof(kek));
	free(rec);
	return r;
}

void
token_free(struct token *tok)
{
	if (tok == NULL)
		return;
	token_deactivate(tok);
	for (size_t i = 0; i < tok->nkeys; i++)
		key_cleanup(&tok->keys[i]);
	free(tok->keys);
	pthread_mutex_destroy(tok->mtx);
	free(tok->mtx);
	free(tok->name);
	free(tok->record);
	free(tok);
}

const char *
token_name(const struct token *tok)
{
	return tok->name;
}

int
token_key_load(struct token *tok, const char *alias, enum key_alg alg,
    const unsigned char *wrapped, size_t wlen, const unsigned char *spki,
    size_t spkilen, struct sp_err *err)
{
	struct token_key	 k;
	bool			 locked = false;
	int			 r;

	memset(&k, 0, sizeof(k));
	if (!sp_name_valid(alias, TOKEN_ALIAS_MAX)) {
		r = sp_err_set(err, SP_ERR_INVALID, "bad key alias");
		goto out;
	}
	if (key_alg_name(alg) == NULL) {
		r = sp_err_set(err, SP_ERR_INVALID, "key %s: bad algorithm",
		    alias);
		goto out;
	}
	if (wrapped == NULL || wlen == 0 || wlen > TOKEN_BLOB_MAX ||
	    spki == NULL || spkilen == 0 || spkilen > TOKEN_BLOB_MAX) {
		r = sp_err_set(err, SP_ERR_INVALID, "key %s: bad key data",
		    alias);
		goto out;
	}
	if ((r = spki_check(spki, spkilen, alg, NULL, err)) != 0)
		goto out;
	memcpy(k.alias, alias, strlen(alias) + 1);
	k.alg = alg;
	k.wlen = wlen;
	k.spkilen = spkilen;
	if ((r = blob_dup(wrapped, wlen, &k.wrapped, err)) != 0 ||
	    (r = blob_dup(spki, spkilen, &k.spki, err)) != 0)
		goto out;

	lock(tok);
	locked = true;
	if (key_index(tok, alias) != -1) {
		r = sp_err_set(err, SP_ERR_EXISTS, "key %s exists", alias);
		goto out;
	}
	if ((r = keys_grow(tok, err)) != 0)
		goto out;
	if (tok->active && (r = key_open(&k, tok->kek, NULL, &k.pkey,
	    err)) != 0)
		goto out;
	tok->keys[tok->nkeys++] = k;
	memset(&k, 0, sizeof(k));
	r = 0;
 out:
	if (locked)
		unlock(tok);
	key_cleanup(&k);
	return r;
}

void
token_upgrade_free(struct token_upgrade *up)
{
	if (up == NULL)
		return;
	for (size_t i = 0; i < up->n; i++) {
		if (up->wrapped != NULL)
			sp_freezero(up->wrapped[i], up->wlen[i]);
		if (up->pkey != NULL)
			EVP_PKEY_free(up->pkey[i]);
	}
	free(up->alias);
	free(up->wrapped);
	free(up->wlen);
	free(up->pkey);
	free(up->oldrec);
	free(up->record);
	OPENSSL_cleanse(up->kek, sizeof(up->kek));
	free(up);
}

const char *
token_upgrade_record(const struct token_upgrade *up)
{
	return up->record;
}

size_t
token_upgrade_count(const struct token_upgrade *up)
{
	return up->n;
}

int
token_upgrade_key(const struct token_upgrade *up, size_t i,
    const char **alias, const unsigned char **wrapped, size_t *wlen)
{
	if (i >= up->n)
		return SP_ERR_NOTFOUND;
	*alias = up->alias[i];
	*wrapped = up->wrapped[i];
	*wlen = up->wlen[i];
	return 0;
}

/*
 * Unwraps every key into a side array (*pk, n entries; with the KEK, or
 * with the PIN for the earlier scheme), so that a failure changes
 * nothing. Called locked.
 */
static int
keys_open_all(struct token *tok, const unsigned char *kek, const char *pin,
    EVP_PKEY ***pk, size_t *n, struct sp_err *err)
{
	int	r = 0;

	*pk = NULL;
	*n = tok->nkeys;
	if (*n > 0 && (*pk = calloc(*n, sizeof(**pk))) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	for (size_t i = 0; i < *n; i++)
		if ((r = key_open(&tok->keys[i], kek, pin, &(*pk)[i],
		    err)) != 0)
			break;
	return r;
}

static void
pkeys_free(EVP_PKEY **pk, size_t n)
{
	for (size_t i = 0; pk != NULL && i < n; i++)
		EVP_PKEY_free(pk[i]);
	free(pk);
}

/*
 * The re-wrapping of an inactive token whose PIN was just checked: the
 * keys unwrapped with oldkek or (earlier scheme) the PIN, a new record
 * under want, and every key wrapped under the new KEK.
 */
static int
upgrade_make(struct token *tok, const char *oldrec, const unsigned char *oldkek,
    const char *pin, size_t pinlen, const struct token_kdf *want,
    struct token_upgrade **out, struct sp_err *err)
{
	struct token_upgrade	*up;
	EVP_PKEY		**pk = NULL;
	size_t			 n = 0;
	int			 r;

	*out = NULL;
	if ((up = calloc(1, sizeof(*up))) == NULL ||
	    (up->oldrec = strdup(oldrec)) == NULL) {
		token_upgrade_free(up);
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	}
	lock(tok);
	if (tok->active)
		r = sp_err_set(err, SP_ERR_STATE, "token %s became active",
		    tok->name);
	else
		r = keys_open_all(tok, oldkek, pin, &pk, &n, err);
	if (r == 0) {
		up->n = n;
		if (n > 0 && ((up->alias = calloc(n, sizeof(*up->alias))) ==
		    NULL || (up->wrapped = calloc(n, sizeof(*up->wrapped))) ==
		    NULL || (up->wlen = calloc(n, sizeof(*up->wlen))) == NULL))
			r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		for (size_t i = 0; r == 0 && i < n; i++)
			memcpy(up->alias[i], tok->keys[i].alias,
			    sizeof(up->alias[i]));
	}
	unlock(tok);
	if (r != 0)
		goto out;
	up->pkey = pk;
	pk = NULL;
	if ((r = record_make(pin, pinlen, want, up->kek, &up->record,
	    err)) != 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct token_keyinfo	ki;

		if (token_key_find(tok, up->alias[i], &ki) != 0) {
			r = sp_err_set(err, SP_ERR_STATE, "token %s changed",
			    tok->name);
			goto out;
		}
		if ((r = key_seal(up->kek, ki.alg, up->pkey[i],
		    &up->wrapped[i], &up->wlen[i], err)) != 0)
			goto out;
	}
	*out = up;
	up = NULL;
	r = 0;
 out:
	pkeys_free(pk, n);
	token_upgrade_free(up);
	return r;
}

int
token_upgrade_finish(struct token *tok, struct token_upgrade *up,
    struct sp_err *err)
{
	int	r = 0;

	lock(tok);
	if (tok->active || strcmp(tok->record, up->oldrec) != 0 ||
	    tok->nkeys != up->n)
		r = SP_ERR_STATE;
	for (size_t i = 0; r == 0 && i < up->n; i++)
		if (strcmp(tok->keys[i].alias, up->alias[i]) != 0)
			r = SP_ERR_STATE;
	if (r != 0) {
		sp_err_set(err, r, "token %s changed while it was re-wrapped",
		    tok->name);
		goto out;
	}
	for (size_t i = 0; i < up->n; i++) {
		struct token_key *k = &tok->keys[i];

		sp_freezero(k->wrapped, k->wlen);
		k->wrapped = up->wrapped[i];
		k->wlen = up->wlen[i];
		k->pkey = up->pkey[i];
		up->wrapped[i] = NULL;
		up->wlen[i] = 0;
		up->pkey[i] = NULL;
	}
	free(tok->record);
	tok->record = up->record;
	up->record = NULL;
	memcpy(tok->kek, up->kek, KEK_LEN);
	tok->active = true;
 out:
	unlock(tok);
	token_upgrade_free(up);
	return r;
}

int
token_activate(struct token *tok, const char *pin,
    const struct token_kdf *want, struct token_upgrade **up,
    struct sp_err *err)
{
	struct record	  rc;
	EVP_PKEY	**pk = NULL;
	unsigned char	  kek[KEK_LEN] = { 0 };
	char		 *rec = NULL;
	size_t		  n = 0, pinlen;
	bool		  have_kek = false, upgrade;
	int		  r;

	if (up != NULL)
		*up = NULL;
	pinlen = pin != NULL ? strnlen(pin, KEY_PIN_MAX + 1) : 0;
	if (pinlen == 0 || pinlen > KEY_PIN_MAX) {
		r = sp_err_set(err, SP_ERR_PIN, "token %s: wrong PIN",
		    tok->name);
		goto out;
	}
	/* The record changes only under the lock: test a copy, unlocked. */
	lock(tok);
	rec = strdup(tok->record);
	unlock(tok);
	if (rec == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}
	if (!record_parse(rec, &rc)) {
		r = sp_err_set(err, SP_ERR_PIN, "token %s: wrong PIN (its "
		    "stored record is unreadable)", tok->name);
		goto out;
	}
	if (rc.old) {
		if (!key_pin_verify(pin, rec)) {
			r = sp_err_set(err, SP_ERR_PIN, "token %s: wrong PIN",
			    tok->name);
			goto out;
		}
	} else {
		if ((r = record_open(&rc, pin, pinlen, kek, err)) != 0) {
			if (r == SP_ERR_PIN) {
				sp_err_clear(err);
				sp_err_set(err, r, "token %s: wrong PIN",
				    tok->name);
			}
			goto out;
		}
		have_kek = true;
	}
	upgrade = rc.old || (up != NULL && want != NULL &&
	    kdf_weaker(&rc.kdf, want));
	if (upgrade && (up == NULL || want == NULL)) {
		r = sp_err_set(err, SP_ERR_STATE, "token %s must be re-wrapped "
		    "to be activated", tok->name);
		goto out;
	}

	lock(tok);
	if (strcmp(rec, tok->record) != 0) {
		unlock(tok);
		r = sp_err_set(err, SP_ERR_STATE, "token %s was re-wrapped "
		    "meanwhile; try again", tok->name);
		goto out;
	}
	if (tok->active) {
		/* The PIN is right (it opened the record): nothing to do. */
		unlock(tok);
		r = 0;
		goto out;
	}
	if (!upgrade) {
		if ((r = keys_open_all(tok, kek, NULL, &pk, &n, err)) == 0) {
			for (size_t i = 0; i < n; i++) {
				tok->keys[i].pkey = pk[i];
				pk[i] = NULL;
			}
			memcpy(tok->kek, kek, KEK_LEN);
			tok->active = true;
		}
		unlock(tok);
		goto out;
	}
	unlock(tok);
	r = upgrade_make(tok, rec, have_kek ? kek : NULL, pin, pinlen, want, up,
	    err);
 out:
	pkeys_free(pk, n);
	OPENSSL_cleanse(kek, sizeof(kek));
	free(rec);
	return r;
}

void
token_deactivate(struct token *tok)
{
	lock(tok);
	for (size_t i = 0; i < tok->nkeys; i++) {
		EVP_PKEY_free(tok->keys[i].pkey);
		tok->keys[i].pkey = NULL;
	}
	OPENSSL_cleanse(tok->kek, sizeof(tok->kek));
	tok->active = false;
	unlock(tok);
}

bool
token_is_active(const struct token *tok)
{
	bool	active;

	lock(tok);
	active = tok->active;
	unlock(tok);
	return active;
}

int
token_genkey(struct token *tok, const char *alias, enum key_alg alg,
    unsigned char **wrapped, size_t *wlen, unsigned char **spki,
    size_t *spkilen, struct sp_err *err)
{
	struct token_key	 k;
	unsigned char		*wcopy = NULL, *scopy = NULL;
	unsigned char		 kek[KEK_LEN];
	bool			 locked = false;
	int			 r;

	*wrapped = *spki = NULL;
	*wlen = *spkilen = 0;
	memset(&k, 0, sizeof(k));
	if (!sp_name_valid(alias, TOKEN_ALIAS_MAX)) {
		r = sp_err_set(err, SP_ERR_INVALID, "bad key alias");
		goto out;
	}
	if (key_alg_name(alg) == NULL) {
		r = sp_err_set(err, SP_ERR_INVALID, "bad key algorithm");
		goto out;
	}

	/*
	 * Take a copy of the KEK and generate unlocked (RSA-4096 takes
	 * seconds), then re-check everything before inserting.
	 */
	lock(tok);
	if (!tok->active)
		r = sp_err_set(err, SP_ERR_STATE, "token %s is not active",
		    tok->name);
	else if (key_index(tok, alias) != -1)
		r = sp_err_set(err, SP_ERR_EXISTS, "key %s exists", alias);
	else {
		memcpy(kek, tok->kek, KEK_LEN);
		r = 0;
	}
	unlock(tok);
	if (r != 0)
		goto out;

	memcpy(k.alias, alias, strlen(alias) + 1);
	k.alg = alg;
	if ((r = key_generate(alg, &k.pkey, err)) != 0 ||
	    (r = key_seal(kek, alg, k.pkey, &k.wrapped, &k.wlen,
	    err)) != 0 ||
	    (r = key_spki_der(k.pkey, &k.spki, &k.spkilen, err)) != 0 ||
	    (r = blob_dup(k.wrapped, k.wlen, &wcopy, err)) != 0 ||
	    (r = blob_dup(k.spki, k.spkilen, &scopy, err)) != 0)
		goto out;

	lock(tok);
	locked = true;
	/* Deactivated, or re-wrapped under another KEK, meanwhile. */
	if (!tok->active || CRYPTO_memcmp(kek, tok->kek, KEK_LEN) != 0) {
		r = sp_err_set(err, SP_ERR_STATE, "token %s is not active",
		    tok->name);
		goto out;
	}
	if (key_index(tok, alias) != -1) {
		r = sp_err_set(err, SP_ERR_EXISTS, "key %s exists", alias);
		goto out;
	}
	if ((r = keys_grow(tok, err)) != 0)
		goto out;
	*wrapped = wcopy;
	*wlen = k.wlen;
	*spki = scopy;
	*spkilen = k.spkilen;
	wcopy = scopy = NULL;
	tok->keys[tok->nkeys++] = k;
	memset(&k, 0, sizeof(k));
	r = 0;
 out:
	if (locked)
		unlock(tok);
	key_cleanup(&k);
	free(wcopy);
	free(scopy);
	OPENSSL_cleanse(kek, sizeof(kek));
	return r;
}

int
token_key_remove(struct token *tok, const char *alias, struct sp_err *err)
{
	ssize_t	i;
	int	r;

	lock(tok);
	if ((i = key_index(tok, alias)) == -1) {
		r = sp_err_set(err, SP_ERR_NOTFOUND, "no key %s",
		    alias != NULL ? alias : "(null)");
		goto out;
	}
	key_cleanup(&tok->keys[i]);
	memmove(&tok->keys[i], &tok->keys[i + 1],
	    (tok->nkeys - (size_t)i - 1) * sizeof(tok->keys[0]));
	tok->nkeys--;
	r = 0;
 out:
	unlock(tok);
	return r;
}

size_t
token_key_count(const struct token *tok)
{
	size_t	n;

	lock(tok);
	n = tok->nkeys;
	unlock(tok);
	return n;
}

int
token_key_info(const struct token *tok, size_t i, struct token_keyinfo *info)
{
	int	r = SP_ERR_NOTFOUND;

	lock(tok);
	if (i < tok->nkeys) {
		keyinfo_fill(&tok->keys[i], info);
		r = 0;
	}
	unlock(tok);
	return r;
}

int
token_key_find(const struct token *tok, const char *alias,
    struct token_keyinfo *info)
{
	ssize_t	i;
	int	r = SP_ERR_NOTFOUND;

	lock(tok);
	if ((i = key_index(tok, alias)) != -1) {
		keyinfo_fill(&tok->keys[i], info);
		r = 0;
	}
	unlock(tok);
	return r;
}

int
token_key_spki(struct token *tok, const char *alias, unsigned char **spki,
    size_t *len)
{
	ssize_t	i;
	int	r = SP_ERR_NOTFOUND;

	*spki = NULL;
	*len = 0;
	lock(tok);
	if ((i = key_index(tok, alias)) != -1) {
		if ((*spki = malloc(tok->keys[i].spkilen)) == NULL)
			r = SP_ERR_ALLOC;
		else {
			memcpy(*spki, tok->keys[i].spki, tok->keys[i].spkilen);
			*len = tok->keys[i].spkilen;
			r = 0;
		}
	}
	unlock(tok);
	return r;
}

int
token_sign_init(struct token *tok, const char *alias, EVP_MD_CTX **out,
    struct sp_err *err)
{
	EVP_MD_CTX	*ctx = NULL;
	EVP_PKEY	*pk = NULL;
	const char	*md = NULL;
	ssize_t		 i;
	int		 r;

	*out = NULL;
	lock(tok);
	if (!tok->active)
		r = sp_err_set(err, SP_ERR_STATE, "token %s is not active",
		    tok->name);
	else if ((i = key_index(tok, alias)) == -1)
		r = sp_err_set(err, SP_ERR_NOTFOUND, "no key %s",
		    alias != NULL ? alias : "(null)");
	else if (!EVP_PKEY_up_ref(tok->keys[i].pkey))
		r = sp_err_ossl(err, SP_ERR_CRYPTO, "EVP_PKEY_up_ref");
	else {
		/* Our reference keeps the key alive after unlocking. */
		pk = tok->keys[i].pkey;
		md = key_alg_md(tok->keys[i].alg);
		r = 0;
	}
	unlock(tok);
	if (r != 0)
		goto out;

	if ((ctx = EVP_MD_CTX_new()) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}
	/* The context's EVP_PKEY_CTX takes its own reference to pk. */
	if (EVP_DigestSignInit_ex(ctx, NULL, md, NULL, NULL, pk, NULL) <= 0) {
		r = sp_err_ossl(err, SP_ERR_CRYPTO, "EVP_DigestSignInit_ex");
		goto out;
	}
	*out = ctx;
	ctx = NULL;
	r = 0;
 out:
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return r;
}

int
token_key_get1_tls(struct token *tok, const char *alias, EVP_PKEY **out,
    struct sp_err *err)
{
	ssize_t	i;
	int	r = 0;

	*out = NULL;
	lock(tok);
	if (!tok->active)
		r = sp_err_set(err, SP_ERR_STATE, "token %s is not active",
		    tok->name);
	else if ((i = key_index(tok, alias)) == -1)
		r = sp_err_set(err, SP_ERR_NOTFOUND, "token %s has no key %s",
		    tok->name, alias != NULL ? alias : "(null)");
	else if (!EVP_PKEY_up_ref(tok->keys[i].pkey))
		r = sp_err_ossl(err, SP_ERR_CRYPTO, "EVP_PKEY_up_ref");
	else
		*out = tok->keys[i].pkey;
	unlock(tok);
	return r;
}
