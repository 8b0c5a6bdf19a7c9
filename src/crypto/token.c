/*
 * Soft crypto tokens: PIN-wrapped keys, unwrapped while the token is
 * active. One mutex per token guards everything below it except name and
 * verifier, which never change after token_new(). See
 * docs/internals/crypto.md for the threading and ownership model.
 */
#include <sys/types.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "crypto/key.h"
#include "crypto/token.h"
#include "util/log.h"
#include "util/util.h"

#define TOKEN_BLOB_MAX	65536	/* bytes of wrapped key or SPKI */

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
	char			*verifier;
	bool			 active;
	char			*pin;		/* while active */
	size_t			 pinlen;
	struct token_key	*keys;
	size_t			 nkeys;
	size_t			 cap;
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

/*
 * Unwraps k with pin and checks the private key against the stored
 * algorithm and SPKI, so a swapped blob cannot sign under another alias.
 */
static int
key_open(const struct token_key *k, const char *pin, EVP_PKEY **out,
    struct sp_err *err)
{
	EVP_PKEY	*pk = NULL, *pub = NULL;
	int		 r;

	*out = NULL;
	if ((r = key_unwrap(k->wrapped, k->wlen, pin, &pk, err)) != 0) {
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
token_new(const char *name, const char *pin_verifier)
{
	struct token	*tok;

	if (name == NULL || pin_verifier == NULL)
		return NULL;
	if ((tok = calloc(1, sizeof(*tok))) == NULL)
		return NULL;
	if ((tok->name = strdup(name)) == NULL ||
	    (tok->verifier = strdup(pin_verifier)) == NULL ||
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
	free(tok->verifier);
	free(tok->mtx);
	free(tok);
	return NULL;
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
	free(tok->verifier);
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
	/* XXX PBKDF2 under the lock; fine for a handful of loads. */
	if (tok->active && (r = key_open(&k, tok->pin, &k.pkey, err)) != 0)
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

int
token_activate(struct token *tok, const char *pin, struct sp_err *err)
{
	EVP_PKEY	**pk = NULL;
	char		 *pincopy = NULL;
	size_t		  n = 0, pinlen = 0;
	bool		  locked = false;
	int		  r;

	/* The verifier never changes: no lock needed for the slow part. */
	if (!key_pin_verify(pin, tok->verifier)) {
		r = sp_err_set(err, SP_ERR_PIN, "token %s: wrong PIN",
		    tok->name);
		goto out;
	}
	pinlen = strlen(pin);
	if ((pincopy = strdup(pin)) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}
	lock(tok);
	locked = true;
	if (tok->active) {
		r = 0;
		goto out;
	}
	/* Unwrap into a side array so that a failure changes nothing. */
	n = tok->nkeys;
	if (n > 0 && (pk = calloc(n, sizeof(*pk))) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if ((r = key_open(&tok->keys[i], pin, &pk[i], err)) != 0)
			goto out;
	for (size_t i = 0; i < n; i++) {
		tok->keys[i].pkey = pk[i];
		pk[i] = NULL;
	}
	tok->pin = pincopy;
	tok->pinlen = pinlen;
	pincopy = NULL;
	tok->active = true;
	r = 0;
 out:
	if (locked)
		unlock(tok);
	for (size_t i = 0; pk != NULL && i < n; i++)
		EVP_PKEY_free(pk[i]);
	free(pk);
	sp_freezero(pincopy, pinlen);
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
	sp_freezero(tok->pin, tok->pinlen);
	tok->pin = NULL;
	tok->pinlen = 0;
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
	char			*pin = NULL;
	size_t			 pinlen = 0;
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
	 * Take a copy of the PIN and generate unlocked (RSA-4096 takes
	 * seconds), then re-check everything before inserting.
	 */
	lock(tok);
	if (!tok->active)
		r = sp_err_set(err, SP_ERR_STATE, "token %s is not active",
		    tok->name);
	else if (key_index(tok, alias) != -1)
		r = sp_err_set(err, SP_ERR_EXISTS, "key %s exists", alias);
	else if ((pin = strdup(tok->pin)) == NULL)
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	else {
		pinlen = tok->pinlen;
		r = 0;
	}
	unlock(tok);
	if (r != 0)
		goto out;

	memcpy(k.alias, alias, strlen(alias) + 1);
	k.alg = alg;
	if ((r = key_generate(alg, &k.pkey, err)) != 0 ||
	    (r = key_wrap(k.pkey, pin, &k.wrapped, &k.wlen, err)) != 0 ||
	    (r = key_spki_der(k.pkey, &k.spki, &k.spkilen, err)) != 0 ||
	    (r = blob_dup(k.wrapped, k.wlen, &wcopy, err)) != 0 ||
	    (r = blob_dup(k.spki, k.spkilen, &scopy, err)) != 0)
		goto out;

	lock(tok);
	locked = true;
	if (!tok->active) {
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
	sp_freezero(pin, pinlen);
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
