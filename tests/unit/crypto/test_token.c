#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "crypto/key.h"
#include "crypto/token.h"

#define PIN	"correct horse"

/* Cheap scrypt for these tests; the service's default is tested there. */
static const struct token_kdf KDF = { 1024, 8, 1 };

static const unsigned char msg[] = "TBSCertificate stand-in";

struct fixture {
	char		*verifier;	/* of PIN */
	char		*verifier2;	/* of another PIN */
	/* One P-256 key generated in an active token, as stored. */
	unsigned char	*wrapped;
	size_t		 wlen;
	unsigned char	*spki;
	size_t		 spkilen;
};

static int
setup(void **state)
{
	struct fixture	*f;
	struct token	*tok;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return -1;
	if (token_create("other", "other pin", &KDF, &tok, &f->verifier2,
	    NULL) != 0)
		return -1;
	token_free(tok);
	if (token_create("setup", PIN, &KDF, &tok, &f->verifier, NULL) != 0 ||
	    token_genkey(tok, "stored", KEY_EC_P256, &f->wrapped, &f->wlen,
	    &f->spki, &f->spkilen, NULL) != 0)
		return -1;
	token_free(tok);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	free(f->verifier);
	free(f->verifier2);
	free(f->wrapped);
	free(f->spki);
	free(f);
	return 0;
}

static struct token *
active_token(const struct fixture *f)
{
	struct token	*tok;

	assert_non_null(tok = token_new("test", f->verifier));
	assert_int_equal(token_activate(tok, PIN, NULL, NULL, NULL), 0);
	return tok;
}

/* Signs msg with ctx (which it frees) and returns the signature. */
static unsigned char *
sign(EVP_MD_CTX *ctx, size_t *len)
{
	unsigned char	*sig;

	assert_int_equal(EVP_DigestSign(ctx, NULL, len, msg, sizeof(msg)), 1);
	assert_non_null(sig = malloc(*len));
	assert_int_equal(EVP_DigestSign(ctx, sig, len, msg, sizeof(msg)), 1);
	EVP_MD_CTX_free(ctx);
	return sig;
}

/* Checks sig over msg with the public key in spki. */
static void
verify(const unsigned char *spki, size_t spkilen, enum key_alg alg,
    const unsigned char *sig, size_t siglen)
{
	const unsigned char	*p = spki;
	EVP_PKEY		*pub;
	EVP_MD_CTX		*ctx;

	assert_non_null(pub = d2i_PUBKEY(NULL, &p, (long)spkilen));
	assert_int_equal(key_alg_of(pub), alg);
	assert_non_null(ctx = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestVerifyInit_ex(ctx, NULL, key_alg_md(alg),
	    NULL, NULL, pub, NULL), 1);
	assert_int_equal(EVP_DigestVerify(ctx, sig, siglen, msg,
	    sizeof(msg)), 1);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pub);
}

/* Signs with alias and verifies against spki. */
static void
sign_verify(struct token *tok, const char *alias,
    const unsigned char *spki, size_t spkilen, enum key_alg alg)
{
	struct sp_err	 err = { 0 };
	EVP_MD_CTX	*ctx;
	unsigned char	*sig;
	size_t		 siglen;
	int		 r;

	r = token_sign_init(tok, alias, &ctx, &err);
	if (r != 0)
		print_error("token_sign_init %s: %s\n", alias, err.msg);
	assert_int_equal(r, 0);
	sig = sign(ctx, &siglen);
	verify(spki, spkilen, alg, sig, siglen);
	free(sig);
}

static void
test_inactive(void **state)
{
	struct fixture	*f = *state;
	struct token	*tok;
	struct sp_err	 err = { 0 };
	EVP_MD_CTX	*ctx = (EVP_MD_CTX *)(uintptr_t)1;
	unsigned char	*w = (unsigned char *)(uintptr_t)1, *s;
	size_t		 wl, sl;

	assert_non_null(tok = token_new("ca-token", f->verifier));
	assert_string_equal(token_name(tok), "ca-token");
	assert_false(token_is_active(tok));
	assert_int_equal(token_key_count(tok), 0);
	assert_int_equal(token_genkey(tok, "k", KEY_EC_P256, &w, &wl, &s, &sl,
	    &err), SP_ERR_STATE);
	assert_null(w);
	assert_int_equal(err.code, SP_ERR_STATE);
	assert_int_equal(token_key_count(tok), 0);

	/* A stored key is there, but cannot sign. */
	assert_int_equal(token_key_load(tok, "k", KEY_EC_P256, f->wrapped,
	    f->wlen, f->spki, f->spkilen, NULL), 0);
	sp_err_clear(&err);
	assert_int_equal(token_sign_init(tok, "k", &ctx, &err),
	    SP_ERR_STATE);
	assert_null(ctx);
	assert_int_equal(err.code, SP_ERR_STATE);
	assert_int_equal(token_sign_init(tok, "nokey", &ctx, NULL),
	    SP_ERR_STATE);
	token_free(tok);
	token_free(NULL);
	assert_null(token_new(NULL, f->verifier));
	assert_null(token_new("x", NULL));
}

static void
test_wrong_pin(void **state)
{
	struct fixture	*f = *state;
	struct token	*tok;
	struct sp_err	 err = { 0 };

	assert_non_null(tok = token_new("t", f->verifier));
	assert_int_equal(token_activate(tok, "correct horsE", NULL, NULL, &err),
	    SP_ERR_PIN);
	assert_int_equal(err.code, SP_ERR_PIN);
	assert_false(token_is_active(tok));
	assert_int_equal(token_activate(tok, "", NULL, NULL, NULL), SP_ERR_PIN);
	assert_int_equal(token_activate(tok, NULL, NULL, NULL, NULL), SP_ERR_PIN);
	assert_false(token_is_active(tok));

	assert_int_equal(token_activate(tok, PIN, NULL, NULL, NULL), 0);
	assert_true(token_is_active(tok));
	/* Re-activation checks the PIN; a wrong one changes nothing. */
	assert_int_equal(token_activate(tok, PIN, NULL, NULL, NULL), 0);
	assert_int_equal(token_activate(tok, "wrong pin", NULL, NULL, NULL),
	    SP_ERR_PIN);
	assert_true(token_is_active(tok));
	token_deactivate(tok);
	assert_false(token_is_active(tok));
	token_deactivate(tok);
	token_free(tok);

	/* A verifier that is not one. */
	assert_non_null(tok = token_new("t", "garbage"));
	assert_int_equal(token_activate(tok, PIN, NULL, NULL, NULL), SP_ERR_PIN);
	token_free(tok);
}

static void
test_genkey_sign(void **state)
{
	static const enum key_alg algs[] = { KEY_EC_P256, KEY_EC_P384,
	    KEY_ED25519, KEY_RSA2048 };
	static const char *const aliases[] = { "p256", "p384", "ed", "rsa" };
	struct fixture		*f = *state;
	struct token		*tok = active_token(f), *re;
	struct token_keyinfo	 info;
	unsigned char		*w, *s;
	size_t			 wl, sl;

	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		assert_int_equal(token_genkey(tok, aliases[i], algs[i], &w,
		    &wl, &s, &sl, NULL), 0);
		assert_int_equal(token_key_count(tok), i + 1);
		assert_int_equal(token_key_find(tok, aliases[i], &info), 0);
		assert_string_equal(info.alias, aliases[i]);
		assert_int_equal(info.alg, algs[i]);
		assert_int_equal(info.spkilen, sl);
		assert_memory_equal(info.spki, s, sl);
		assert_ptr_not_equal(info.spki, s);	/* a copy */
		sign_verify(tok, aliases[i], s, sl, algs[i]);

		/* The blob handed back is what a restart would load. */
		assert_non_null(re = token_new("restart", f->verifier));
		assert_int_equal(token_key_load(re, aliases[i], algs[i], w, wl,
		    s, sl, NULL), 0);
		assert_int_equal(token_activate(re, PIN, NULL, NULL, NULL), 0);
		sign_verify(re, aliases[i], s, sl, algs[i]);
		token_free(re);
		free(w);
		free(s);
	}
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		assert_int_equal(token_key_info(tok, i, &info), 0);
		assert_string_equal(info.alias, aliases[i]);
	}
	assert_int_equal(token_key_info(tok, 4, &info), SP_ERR_NOTFOUND);
	assert_int_equal(token_key_find(tok, "nope", &info),
	    SP_ERR_NOTFOUND);
	assert_int_equal(token_key_find(tok, NULL, &info), SP_ERR_NOTFOUND);
	token_free(tok);
}

static void
test_load(void **state)
{
	struct fixture	*f = *state;
	struct token	*tok;

	/* Loaded while inactive, unwrapped on activation. */
	assert_non_null(tok = token_new("fresh", f->verifier));
	assert_int_equal(token_key_load(tok, "ca", KEY_EC_P256, f->wrapped,
	    f->wlen, f->spki, f->spkilen, NULL), 0);
	assert_int_equal(token_key_count(tok), 1);
	assert_int_equal(token_activate(tok, PIN, NULL, NULL, NULL), 0);
	sign_verify(tok, "ca", f->spki, f->spkilen, KEY_EC_P256);
	/* Loaded while active: unwrapped right away. */
	assert_int_equal(token_key_load(tok, "ca2", KEY_EC_P256, f->wrapped,
	    f->wlen, f->spki, f->spkilen, NULL), 0);
	sign_verify(tok, "ca2", f->spki, f->spkilen, KEY_EC_P256);
	/* Deactivate and activate again. */
	token_deactivate(tok);
	assert_int_equal(token_activate(tok, PIN, NULL, NULL, NULL), 0);
	sign_verify(tok, "ca", f->spki, f->spkilen, KEY_EC_P256);
	token_free(tok);
}

static void
test_load_bad(void **state)
{
	struct fixture	*f = *state;
	struct token	*tok, *other;
	struct sp_err	 err = { 0 };
	unsigned char	*w, *s;
	size_t		 wl, sl;

	assert_non_null(tok = token_new("t", f->verifier));
	/* The SPKI must parse and be of the stated algorithm. */
	assert_int_equal(token_key_load(tok, "k", KEY_EC_P384, f->wrapped,
	    f->wlen, f->spki, f->spkilen, &err), SP_ERR_INVALID);
	assert_int_equal(token_key_load(tok, "k", KEY_EC_P256, f->wrapped,
	    f->wlen, f->spki, f->spkilen - 1, NULL), SP_ERR_INVALID);
	assert_int_equal(token_key_load(tok, "k", KEY_EC_P256, f->wrapped,
	    0, f->spki, f->spkilen, NULL), SP_ERR_INVALID);
	assert_int_equal(token_key_load(tok, "k", KEY__MAX, f->wrapped,
	    f->wlen, f->spki, f->spkilen, NULL), SP_ERR_INVALID);
	assert_int_equal(token_key_count(tok), 0);

	/* A key wrapped under another token's PIN. */
	assert_non_null(other = token_new("other", f->verifier2));
	assert_int_equal(token_activate(other, "other pin", NULL, NULL, NULL), 0);
	assert_int_equal(token_genkey(other, "k", KEY_EC_P256, &w, &wl, &s,
	    &sl, NULL), 0);
	token_free(other);
	/* Into an inactive token: activation fails and changes nothing. */
	assert_int_equal(token_key_load(tok, "good", KEY_EC_P256, f->wrapped,
	    f->wlen, f->spki, f->spkilen, NULL), 0);
	assert_int_equal(token_key_load(tok, "foreign", KEY_EC_P256, w, wl, s,
	    sl, NULL), 0);
	assert_int_equal(token_activate(tok, PIN, NULL, NULL, NULL), SP_ERR_PIN);
	assert_false(token_is_active(tok));
	assert_int_equal(token_key_remove(tok, "foreign", NULL), 0);
	assert_int_equal(token_activate(tok, PIN, NULL, NULL, NULL), 0);
	/* Into an active token: refused at once. */
	assert_int_equal(token_key_load(tok, "foreign", KEY_EC_P256, w, wl, s,
	    sl, NULL), SP_ERR_PIN);
	assert_int_equal(token_key_count(tok), 1);

	/* Our wrapped key with another key's SPKI. */
	sp_err_clear(&err);
	assert_int_equal(token_key_load(tok, "swapped", KEY_EC_P256,
	    f->wrapped, f->wlen, s, sl, &err), SP_ERR_INVALID);
	assert_non_null(strstr(err.msg, "does not match"));
	assert_int_equal(token_key_count(tok), 1);
	free(w);
	free(s);
	token_free(tok);
}

static void
test_deactivate(void **state)
{
	struct fixture	*f = *state;
	struct token	*tok = active_token(f);
	EVP_MD_CTX	*ctx, *ctx2;
	unsigned char	*w, *s, *w2, *s2, *sig;
	size_t		 wl, sl, sl2, siglen;

	assert_int_equal(token_genkey(tok, "k", KEY_ED25519, &w, &wl, &s, &sl,
	    NULL), 0);
	assert_int_equal(token_sign_init(tok, "k", &ctx, NULL), 0);
	assert_int_equal(token_sign_init(tok, "k", &ctx2, NULL), 0);
	token_deactivate(tok);
	assert_false(token_is_active(tok));
	assert_int_equal(token_sign_init(tok, "k", &(EVP_MD_CTX *){ NULL },
	    NULL), SP_ERR_STATE);
	assert_int_equal(token_genkey(tok, "k2", KEY_ED25519, &w2, &wl, &s2,
	    &sl2, NULL), SP_ERR_STATE);
	assert_null(w2);
	assert_null(s2);

	/* Contexts made before keep their own reference to the key. */
	sig = sign(ctx, &siglen);
	verify(s, sl, KEY_ED25519, sig, siglen);
	free(sig);
	token_free(tok);
	sig = sign(ctx2, &siglen);
	verify(s, sl, KEY_ED25519, sig, siglen);
	free(sig);
	free(w);
	free(s);
}

static void
test_remove(void **state)
{
	struct fixture		*f = *state;
	struct token		*tok = active_token(f);
	struct token_keyinfo	 info;
	struct sp_err		 err = { 0 };
	EVP_MD_CTX		*ctx;
	unsigned char		*w, *s;
	size_t			 wl, sl;

	assert_int_equal(token_genkey(tok, "a", KEY_EC_P256, &w, &wl, &s, &sl,
	    NULL), 0);
	free(w);
	free(s);
	assert_int_equal(token_key_load(tok, "b", KEY_EC_P256, f->wrapped,
	    f->wlen, f->spki, f->spkilen, NULL), 0);
	assert_int_equal(token_key_count(tok), 2);

	assert_int_equal(token_key_remove(tok, "a", NULL), 0);
	assert_int_equal(token_key_count(tok), 1);
	assert_int_equal(token_key_find(tok, "a", &info), SP_ERR_NOTFOUND);
	assert_int_equal(token_key_info(tok, 0, &info), 0);
	assert_string_equal(info.alias, "b");
	assert_int_equal(token_key_remove(tok, "a", &err), SP_ERR_NOTFOUND);
	assert_int_equal(err.code, SP_ERR_NOTFOUND);
	assert_int_equal(token_sign_init(tok, "a", &ctx, NULL),
	    SP_ERR_NOTFOUND);
	assert_int_equal(token_key_remove(tok, NULL, NULL), SP_ERR_NOTFOUND);
	sign_verify(tok, "b", f->spki, f->spkilen, KEY_EC_P256);

	/* The alias is free again. */
	assert_int_equal(token_genkey(tok, "a", KEY_EC_P256, &w, &wl, &s, &sl,
	    NULL), 0);
	sign_verify(tok, "a", s, sl, KEY_EC_P256);
	free(w);
	free(s);
	token_free(tok);
}

static void
test_duplicate_alias(void **state)
{
	struct fixture	*f = *state;
	struct token	*tok = active_token(f);
	struct sp_err	 err = { 0 };
	unsigned char	*w, *s;
	size_t		 wl, sl;

	assert_int_equal(token_genkey(tok, "dup", KEY_EC_P256, &w, &wl, &s,
	    &sl, NULL), 0);
	free(w);
	free(s);
	assert_int_equal(token_genkey(tok, "dup", KEY_ED25519, &w, &wl, &s,
	    &sl, &err), SP_ERR_EXISTS);
	assert_null(w);
	assert_null(s);
	assert_int_equal(err.code, SP_ERR_EXISTS);
	assert_int_equal(token_key_load(tok, "dup", KEY_EC_P256, f->wrapped,
	    f->wlen, f->spki, f->spkilen, NULL), SP_ERR_EXISTS);
	assert_int_equal(token_key_count(tok), 1);
	token_free(tok);
}

static void
test_bad_alias(void **state)
{
	static const char *const bad[] = { "", "a b", "a/b", "../x", "\xc3\xa5",
	    "a\n" };
	struct fixture	*f = *state;
	struct token	*tok = active_token(f);
	unsigned char	*w, *s;
	size_t		 wl, sl;
	char		 alias[TOKEN_ALIAS_MAX + 2];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(token_genkey(tok, bad[i], KEY_EC_P256, &w,
		    &wl, &s, &sl, NULL), SP_ERR_INVALID);
		assert_int_equal(token_key_load(tok, bad[i], KEY_EC_P256,
		    f->wrapped, f->wlen, f->spki, f->spkilen, NULL),
		    SP_ERR_INVALID);
	}
	assert_int_equal(token_genkey(tok, NULL, KEY_EC_P256, &w, &wl, &s,
	    &sl, NULL), SP_ERR_INVALID);
	assert_int_equal(token_genkey(tok, "x", KEY__MAX, &w, &wl, &s, &sl,
	    NULL), SP_ERR_INVALID);

	memset(alias, 'a', sizeof(alias) - 1);
	alias[TOKEN_ALIAS_MAX + 1] = '\0';
	assert_int_equal(token_key_load(tok, alias, KEY_EC_P256, f->wrapped,
	    f->wlen, f->spki, f->spkilen, NULL), SP_ERR_INVALID);
	alias[TOKEN_ALIAS_MAX] = '\0';
	assert_int_equal(token_key_load(tok, alias, KEY_EC_P256, f->wrapped,
	    f->wlen, f->spki, f->spkilen, NULL), 0);
	assert_int_equal(token_key_count(tok), 1);
	token_free(tok);
}

static void
test_limit(void **state)
{
	struct fixture	*f = *state;
	struct token	*tok;
	struct sp_err	 err = { 0 };
	char		 alias[32];

	/* Inactive, so no unwrapping: only the count matters here. */
	assert_non_null(tok = token_new("big", f->verifier));
	for (int i = 0; i < TOKEN_KEYS_MAX; i++) {
		snprintf(alias, sizeof(alias), "key-%d", i);
		assert_int_equal(token_key_load(tok, alias, KEY_EC_P256,
		    f->wrapped, f->wlen, f->spki, f->spkilen, NULL), 0);
	}
	assert_int_equal(token_key_count(tok), TOKEN_KEYS_MAX);
	assert_int_equal(token_key_load(tok, "one-more", KEY_EC_P256,
	    f->wrapped, f->wlen, f->spki, f->spkilen, &err), SP_ERR_LIMIT);
	assert_int_equal(err.code, SP_ERR_LIMIT);
	assert_int_equal(token_key_remove(tok, "key-500", NULL), 0);
	assert_int_equal(token_key_load(tok, "one-more", KEY_EC_P256,
	    f->wrapped, f->wlen, f->spki, f->spkilen, NULL), 0);
	token_free(tok);
}

struct worker {
	struct token	*tok;
	int		 signed_ok;
	int		 inactive;
};

static void *
worker_run(void *arg)
{
	struct worker	*w = arg;
	EVP_MD_CTX	*ctx;
	unsigned char	 sig[128];
	size_t		 len;

	for (int i = 0; i < 100; i++) {
		switch (token_sign_init(w->tok, "k", &ctx, NULL)) {
		case 0:
			len = sizeof(sig);
			if (EVP_DigestSign(ctx, sig, &len, msg,
			    sizeof(msg)) == 1)
				w->signed_ok++;
			EVP_MD_CTX_free(ctx);
			break;
		case SP_ERR_STATE:
			w->inactive++;
			break;
		default:
			return w;	/* counted as missing below */
		}
	}
	return w;
}

/* Signers race against deactivation and activation. */
static void
test_threads(void **state)
{
	struct fixture	*f = *state;
	struct token	*tok = active_token(f);
	struct worker	 w[4];
	pthread_t	 th[4];
	unsigned char	*wr, *s;
	size_t		 wl, sl;

	assert_int_equal(token_genkey(tok, "k", KEY_ED25519, &wr, &wl, &s,
	    &sl, NULL), 0);
	free(wr);
	free(s);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ tok, 0, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, worker_run,
		    &w[i]), 0);
	}
	for (int i = 0; i < 3; i++) {
		token_deactivate(tok);
		assert_int_equal(token_activate(tok, PIN, NULL, NULL, NULL), 0);
		(void)token_key_count(tok);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(w[i].signed_ok + w[i].inactive, 100);
	}
	token_free(tok);
}

/* New tokens: PIN length, and a record that is no cheap verifier. */
static void
test_create(void **state)
{
	struct token		*tok = NULL;
	struct sp_err		 err = { 0 };
	struct token_kdf	 bad = { 1000, 8, 1 };	/* not a power of 2 */
	char			*rec = NULL, pin[KEY_PIN_MAX + 2];

	(void)state;
	assert_int_equal(token_create("t", "1234567", &KDF, &tok, &rec, &err),
	    SP_ERR_INVALID);
	assert_non_null(strstr(err.msg, "PIN must have 8"));
	assert_null(tok);
	assert_null(rec);
	memset(pin, 'p', sizeof(pin) - 1);
	pin[sizeof(pin) - 1] = '\0';
	assert_int_equal(token_create("t", pin, &KDF, &tok, &rec, NULL),
	    SP_ERR_INVALID);
	assert_int_equal(token_create("t", NULL, &KDF, &tok, &rec, NULL),
	    SP_ERR_INVALID);
	assert_int_equal(token_create("t", "12345678", &bad, &tok, &rec, NULL),
	    SP_ERR_INVALID);
	assert_int_equal(token_create("t", "12345678", &KDF, &tok, &rec, NULL),
	    0);
	assert_true(token_is_active(tok));
	/* scrypt$N$r$p$salt$nonce$tag: no hash of the PIN in it. */
	assert_int_equal(strncmp(rec, "scrypt$1024$8$1$", 16), 0);
	assert_false(key_pin_verify("12345678", rec));
	token_free(tok);
	assert_non_null(tok = token_new("t", rec));
	assert_int_equal(token_activate(tok, "12345679", NULL, NULL, NULL),
	    SP_ERR_PIN);
	assert_int_equal(token_activate(tok, "12345678", NULL, NULL, NULL), 0);
	token_free(tok);
	/* A damaged record is refused like a wrong PIN. */
	rec[strlen(rec) - 1] = rec[strlen(rec) - 1] == '0' ? '1' : '0';
	assert_non_null(tok = token_new("t", rec));
	assert_int_equal(token_activate(tok, "12345678", NULL, NULL, NULL),
	    SP_ERR_PIN);
	token_free(tok);
	free(rec);
}

/*
 * A token of the earlier scheme (PBKDF2 verifier, keys in PBES2 PKCS#8
 * under a 4-character PIN) still activates, through a re-wrapping.
 */
static void
test_upgrade_old(void **state)
{
	struct fixture		*f = *state;
	struct token		*tok;
	struct token_upgrade	*up = NULL;
	struct token_kdf	 want = KDF;
	EVP_PKEY		*pk;
	char			*ver = NULL;
	unsigned char		*w = NULL, *spki = NULL, *nw;
	const unsigned char	*uw;
	const char		*alias, *rec;
	size_t			 wl, sl, uwl;

	(void)f;
	assert_int_equal(key_generate(KEY_EC_P256, &pk, NULL), 0);
	assert_int_equal(key_pin_hash("1234", &ver, NULL), 0);
	assert_int_equal(key_wrap(pk, "1234", &w, &wl, NULL), 0);
	assert_int_equal(key_spki_der(pk, &spki, &sl, NULL), 0);
	EVP_PKEY_free(pk);

	assert_non_null(tok = token_new("old", ver));
	assert_int_equal(token_key_load(tok, "k", KEY_EC_P256, w, wl, spki, sl,
	    NULL), 0);
	assert_int_equal(token_activate(tok, "4321", &want, &up, NULL),
	    SP_ERR_PIN);
	assert_null(up);
	/* Without a way to store the re-wrapping it cannot be activated. */
	assert_int_equal(token_activate(tok, "1234", NULL, NULL, NULL),
	    SP_ERR_STATE);
	assert_int_equal(token_activate(tok, "1234", &want, &up, NULL), 0);
	assert_non_null(up);
	assert_false(token_is_active(tok));
	assert_int_equal(strncmp(token_upgrade_record(up), "scrypt$", 7), 0);
	assert_int_equal(token_upgrade_count(up), 1);
	assert_int_equal(token_upgrade_key(up, 0, &alias, &uw, &uwl), 0);
	assert_string_equal(alias, "k");
	assert_int_equal(token_upgrade_key(up, 1, &alias, &uw, &uwl),
	    SP_ERR_NOTFOUND);
	/* Storing failed: nothing changes, the token stays inactive. */
	token_upgrade_free(up);
	assert_false(token_is_active(tok));
	/* Stored: in force. */
	assert_int_equal(token_activate(tok, "1234", &want, &up, NULL), 0);
	assert_non_null(rec = strdup(token_upgrade_record(up)));
	assert_int_equal(token_upgrade_key(up, 0, &alias, &uw, &uwl), 0);
	assert_non_null(nw = malloc(uwl));
	memcpy(nw, uw, uwl);
	assert_int_equal(token_upgrade_finish(tok, up, NULL), 0);
	assert_true(token_is_active(tok));
	sign_verify(tok, "k", spki, sl, KEY_EC_P256);
	token_free(tok);

	/* What was stored is of the new scheme and needs no re-wrapping. */
	assert_non_null(tok = token_new("old", rec));
	assert_int_equal(token_key_load(tok, "k", KEY_EC_P256, nw, uwl, spki,
	    sl, NULL), 0);
	up = NULL;
	assert_int_equal(token_activate(tok, "1234", &want, &up, NULL), 0);
	assert_null(up);
	sign_verify(tok, "k", spki, sl, KEY_EC_P256);
	/* The old blob does not open under the new record. */
	assert_int_equal(token_key_load(tok, "k2", KEY_EC_P256, w, wl, spki,
	    sl, NULL), SP_ERR_INVALID);
	token_free(tok);
	free((void *)(uintptr_t)rec);
	free(nw);
	free(ver);
	free(w);
	free(spki);
}

/* A token whose scrypt cost is below the wanted one is re-wrapped. */
static void
test_upgrade_cost(void **state)
{
	struct fixture		*f = *state;
	struct token		*tok;
	struct token_upgrade	*up = NULL;
	struct token_kdf	 want = { 2048, 8, 1 };

	assert_non_null(tok = token_new("t", f->verifier));
	assert_int_equal(token_key_load(tok, "k", KEY_EC_P256, f->wrapped,
	    f->wlen, f->spki, f->spkilen, NULL), 0);
	assert_int_equal(token_activate(tok, PIN, &want, &up, NULL), 0);
	assert_non_null(up);
	assert_int_equal(strncmp(token_upgrade_record(up), "scrypt$2048$8$1$",
	    16), 0);
	assert_int_equal(token_upgrade_finish(tok, up, NULL), 0);
	sign_verify(tok, "k", f->spki, f->spkilen, KEY_EC_P256);
	/* Active and strong enough now: nothing more to do. */
	up = NULL;
	assert_int_equal(token_activate(tok, PIN, &want, &up, NULL), 0);
	assert_null(up);
	token_free(tok);
	/* Without want, the weak record is used as it is. */
	assert_non_null(tok = token_new("t", f->verifier));
	assert_int_equal(token_activate(tok, PIN, NULL, &up, NULL), 0);
	assert_null(up);
	assert_true(token_is_active(tok));
	token_free(tok);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inactive),
		cmocka_unit_test(test_wrong_pin),
		cmocka_unit_test(test_genkey_sign),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_load_bad),
		cmocka_unit_test(test_deactivate),
		cmocka_unit_test(test_remove),
		cmocka_unit_test(test_duplicate_alias),
		cmocka_unit_test(test_bad_alias),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_create),
		cmocka_unit_test(test_upgrade_old),
		cmocka_unit_test(test_upgrade_cost),
	};

	return cmocka_run_group_tests_name("token", tests, setup, teardown);
}
