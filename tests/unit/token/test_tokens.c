/*
 * The token service (token/token.c) over a SQLite store in a temporary
 * directory: a database written with the earlier PIN scheme (PBKDF2
 * verifier, keys in PBES2 PKCS#8, a 4-character PIN) is re-wrapped at its
 * first activation and then works as a new one; the key registry refuses
 * a key to two kinds of user.
 */
#include <sys/stat.h>

#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "crypto/key.h"
#include "store/store.h"
#include "token/token.h"
#include "util/err.h"
#include "util/log.h"

#define ACTOR	"test:unit"
#define OLD_PIN	"1234"

static const unsigned char msg[] = "to be signed";

struct fixture {
	char		 dir[64];
	char		 path[128];
	struct store	*st;
	struct tokens	*tk;
};

static int
rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static int
setup(void **state)
{
	struct fixture	*fx;

	log_init(LOG_LVL_ERROR);
	if ((fx = calloc(1, sizeof(*fx))) == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/sp_test_tokens.XXXXXX");
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->path, sizeof(fx->path), "%s/t.db", fx->dir);
	if (store_open(fx->path, &fx->st, NULL) != 0)
		return -1;
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;
	int		 r;

	tokens_free(fx->tk);
	store_close(fx->st);
	r = nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return r == 0 ? 0 : -1;
}

static void
ok(int r, const struct sp_err *err, const char *what)
{
	if (r < 0)
		print_error("%s: %s\n", what, err->msg);
	assert_true(r >= 0);
}

static void
reopen(struct fixture *fx)
{
	struct sp_err	err = { 0 };

	tokens_free(fx->tk);
	fx->tk = NULL;
	store_close(fx->st);
	fx->st = NULL;
	ok(store_open(fx->path, &fx->st, &err), &err, "store_open");
	ok(tokens_open(fx->st, &fx->tk, &err), &err, "tokens_open");
}

/* Signs msg with token/alias and checks it against spki. */
static void
sign_check(struct tokens *tk, const char *alias, const unsigned char *spki,
    size_t spkilen)
{
	struct sp_err		 err = { 0 };
	EVP_MD_CTX		*ctx = NULL, *vctx;
	EVP_PKEY		*pub;
	const unsigned char	*p = spki;
	unsigned char		 sig[256];
	size_t			 siglen = sizeof(sig);

	ok(tokens_sign_init(tk, "old", alias, &ctx, &err), &err, "sign_init");
	assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, msg, sizeof(msg)),
	    1);
	EVP_MD_CTX_free(ctx);
	assert_non_null(pub = d2i_PUBKEY(NULL, &p, (long)spkilen));
	assert_non_null(vctx = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestVerifyInit_ex(vctx, NULL, "SHA256", NULL,
	    NULL, pub, NULL), 1);
	assert_int_equal(EVP_DigestVerify(vctx, sig, siglen, msg,
	    sizeof(msg)), 1);
	EVP_MD_CTX_free(vctx);
	EVP_PKEY_free(pub);
}

struct seen {
	char	verifier[256];
	int	spk1;		/* wrapped keys in the new format */
	int	keys;
	int	rewraps;	/* token.rewrap audit rows */
};

static int
row_verifier(const struct store_row *row, void *arg)
{
	struct seen	*s = arg;

	snprintf(s->verifier, sizeof(s->verifier), "%s",
	    store_row_text(row, 0));
	return 0;
}

static int
row_wrapped(const struct store_row *row, void *arg)
{
	struct seen		*s = arg;
	size_t			 len;
	const unsigned char	*b = store_row_blob(row, 0, &len);

	s->keys++;
	if (b != NULL && len > 4 && memcmp(b, "SPK1", 4) == 0)
		s->spk1++;
	return 0;
}

static int
row_count(const struct store_row *row, void *arg)
{
	*(int *)arg = (int)store_row_int(row, 0);
	return 0;
}

static void
look(struct fixture *fx, struct seen *s)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(store_select(fx->st, NULL, row_verifier, s, NULL,
	    "SELECT verifier FROM tokens WHERE name = ?", "s", "old"), 0);
	assert_int_equal(store_select(fx->st, NULL, row_wrapped, s, NULL,
	    "SELECT wrapped FROM token_keys", ""), 0);
	assert_int_equal(store_select(fx->st, NULL, row_count, &s->rewraps, NULL,
	    "SELECT count(*) FROM audit WHERE event = 'token.rewrap'", ""), 0);
}

static void
test_old_database(void **state)
{
	struct fixture		*fx = *state;
	struct sp_err		 err = { 0 };
	struct store_token_key	 k = { 0 };
	struct seen		 s;
	EVP_PKEY		*pk[2];
	unsigned char		*w[2], *spki[2];
	size_t			 wl[2], sl[2];
	char			*ver = NULL;
	const char		*alias[2] = { "k1", "k2" };
	int64_t			 id = 0;
	json_t			*list;

	/* The rows as the earlier code wrote them. */
	ok(key_pin_hash(OLD_PIN, &ver, &err), &err, "key_pin_hash");
	ok(store_token_insert(fx->st, NULL, "old", ver, &id, &err), &err, "insert");
	for (int i = 0; i < 2; i++) {
		ok(key_generate(KEY_EC_P256, &pk[i], &err), &err, "keygen");
		ok(key_wrap(pk[i], OLD_PIN, &w[i], &wl[i], &err), &err, "wrap");
		ok(key_spki_der(pk[i], &spki[i], &sl[i], &err), &err, "spki");
		EVP_PKEY_free(pk[i]);
		k.token_id = id;
		k.alias = alias[i];
		k.alg = KEY_EC_P256;
		k.wrapped = w[i];
		k.wlen = wl[i];
		k.spki = spki[i];
		k.spkilen = sl[i];
		ok(store_token_key_insert(fx->st, NULL, &k, &err), &err, "key");
	}
	reopen(fx);
	list = tokens_list(fx->tk);
	assert_int_equal(json_array_size(list), 1);
	assert_true(json_is_false(json_object_get(json_array_get(list, 0),
	    "active")));
	json_decref(list);

	/* A wrong PIN changes nothing. */
	assert_int_equal(tokens_activate(fx->tk, "old", "4321", ACTOR, &err),
	    SP_ERR_PIN);
	look(fx, &s);
	assert_string_equal(s.verifier, ver);
	assert_int_equal(s.spk1, 0);

	/* The right one re-wraps, stores, and activates. */
	sp_err_clear(&err);
	ok(tokens_activate(fx->tk, "old", OLD_PIN, ACTOR, &err), &err,
	    "activate");
	assert_true(tokens_is_active(fx->tk, "old"));
	look(fx, &s);
	assert_int_equal(strncmp(s.verifier, "scrypt$65536$8$1$", 17), 0);
	assert_int_equal(s.keys, 2);
	assert_int_equal(s.spk1, 2);
	assert_int_equal(s.rewraps, 1);
	for (int i = 0; i < 2; i++)
		sign_check(fx->tk, alias[i], spki[i], sl[i]);

	/* After a restart: the new scheme, no second re-wrapping. */
	reopen(fx);
	assert_int_equal(tokens_activate(fx->tk, "old", "4321", ACTOR, &err),
	    SP_ERR_PIN);
	sp_err_clear(&err);
	ok(tokens_activate(fx->tk, "old", OLD_PIN, ACTOR, &err), &err,
	    "activate again");
	look(fx, &s);
	assert_int_equal(s.rewraps, 1);
	for (int i = 0; i < 2; i++)
		sign_check(fx->tk, alias[i], spki[i], sl[i]);

	for (int i = 0; i < 2; i++) {
		free(w[i]);
		free(spki[i]);
	}
	free(ver);
}

static void
test_short_pin(void **state)
{
	struct fixture	*fx = *state;
	struct sp_err	 err = { 0 };
	json_t		*list;

	ok(tokens_open(fx->st, &fx->tk, &err), &err, "tokens_open");
	assert_int_equal(tokens_create(fx->tk, "t", "1234567", ACTOR, &err),
	    SP_ERR_INVALID);
	assert_non_null(strstr(err.msg, "PIN must have 8"));
	list = tokens_list(fx->tk);
	assert_int_equal(json_array_size(list), 0);
	json_decref(list);
	sp_err_clear(&err);
	ok(tokens_create(fx->tk, "t", "12345678", ACTOR, &err), &err,
	    "create");
	assert_true(tokens_is_active(fx->tk, "t"));
}

static void
test_key_registry(void **state)
{
	struct fixture	*fx = *state;
	struct sp_err	 err = { 0 };
	json_t		*j = NULL;

	ok(tokens_open(fx->st, &fx->tk, &err), &err, "tokens_open");
	ok(tokens_create(fx->tk, "tok", "registry-pin", ACTOR, &err), &err,
	    "create");
	for (int i = 0; i < 3; i++) {
		const char *a[] = { "tls", "ca", "spare" };

		ok(tokens_genkey(fx->tk, "tok", a[i], "ec-p256", ACTOR, &j,
		    &err), &err, "genkey");
		json_decref(j);
	}
	/* Bindings may share a key; a claim held again is not new. */
	assert_int_equal(tokens_key_claim(fx->tk, "tok", "tls", TOKENS_USE_KB,
	    "peer", &err), 1);
	assert_int_equal(tokens_key_claim(fx->tk, "tok", "tls", TOKENS_USE_KB,
	    "peer", &err), 0);
	assert_int_equal(tokens_key_claim(fx->tk, "tok", "tls", TOKENS_USE_KB,
	    "peer2", &err), 1);
	/* A binding's key never becomes a CA key ... */
	assert_int_equal(tokens_key_claim(fx->tk, "tok", "tls", TOKENS_USE_CA,
	    "Root", &err), SP_ERR_POLICY);
	assert_non_null(strstr(err.msg, "key binding peer"));
	/* ... nor a CA's key a binding's, and a CA key has one CA. */
	assert_int_equal(tokens_key_claim(fx->tk, "tok", "ca", TOKENS_USE_CA,
	    "Root", &err), 1);
	sp_err_clear(&err);
	assert_int_equal(tokens_key_claim(fx->tk, "tok", "ca", TOKENS_USE_KB,
	    "peer", &err), SP_ERR_POLICY);
	assert_non_null(strstr(err.msg, "signing key of CA Root"));
	sp_err_clear(&err);
	assert_int_equal(tokens_key_claim(fx->tk, "tok", "ca", TOKENS_USE_CA,
	    "Sub", &err), SP_ERR_STATE);
	assert_non_null(strstr(err.msg, "already used by CA Root"));
	assert_int_equal(tokens_key_claim(fx->tk, "tok", "nokey",
	    TOKENS_USE_CA, "X", NULL), SP_ERR_NOTFOUND);
	assert_int_equal(tokens_key_claim(fx->tk, "notok", "ca",
	    TOKENS_USE_CA, "X", NULL), SP_ERR_NOTFOUND);

	/* A CA's key cannot be deleted; a binding's can. */
	sp_err_clear(&err);
	assert_int_equal(tokens_delkey(fx->tk, "tok", "ca", ACTOR, &err),
	    SP_ERR_STATE);
	assert_non_null(strstr(err.msg, "used by CA Root"));
	tokens_key_release(fx->tk, "tok", "ca", TOKENS_USE_CA, "Root");
	ok(tokens_delkey(fx->tk, "tok", "ca", ACTOR, &err), &err, "delkey");
	ok(tokens_delkey(fx->tk, "tok", "tls", ACTOR, &err), &err, "delkey");
	/* A deletion's own marker is gone: the spare can still be claimed. */
	assert_int_equal(tokens_key_claim(fx->tk, "tok", "spare",
	    TOKENS_USE_CA, "Root", &err), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_old_database, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_short_pin, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_key_registry, setup,
		    teardown),
	};

	return cmocka_run_group_tests_name("tokens", tests, NULL, NULL);
}
