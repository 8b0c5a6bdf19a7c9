/*
 * The token service: tokens and their keys over the store, activation
 * with its rate limit and re-wrapping, and the key registry. Moved out of
 * the CA service (issue 6); the soft-token crypto is crypto/token.c.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/key.h"
#include "crypto/token.h"
#include "crypto/x509.h"
#include "token/token.h"
#include "util/log.h"
#include "util/util.h"

/*
 * Online PIN guessing is slowed down per token: after ACT_FREE_FAILS
 * failures in a row, each further one makes the next attempt wait twice
 * as long (2 s, 4 s, 8 s, ... up to ACT_MAX_DELAY). A success resets it.
 * Attempts inside the delay are refused without testing the PIN.
 */
#define ACT_FREE_FAILS	3
#define ACT_MAX_DELAY	300	/* seconds */

#define CLAIMS_MAX	(64 * 1024)	/* key registry entries */

struct tok {
	int64_t		 id;
	struct token	*t;
	int		 fails;		/* failed activations in a row */
	int64_t		 retry_at;	/* monotonic ms: no attempt before */
};

/*
 * One entry of the key registry: user uses token/alias as use. While
 * tokens_delkey() works on a key it holds a claim of use USE_DELETING, so
 * that nothing claims the key meanwhile without the lock being held across
 * the commit.
 */
#define USE_DELETING	TOKENS_USE__MAX
struct claim {
	char		 token[TOKENS_NAME_MAX + 1];
	char		 alias[TOKEN_ALIAS_MAX + 1];
	char		 user[TOKENS_USER_MAX + 1];
	enum tokens_use	 use;
};

/*
 * lk guards the token array and the key registry; tokens are thread safe
 * themselves. Tokens are never removed, so a struct tok found under lk
 * stays valid while the service lives. act_mtx guards the rate-limit
 * fields; up_mtx serialises activations and key deletions, so two cannot
 * re-wrap the same token at once, nor a key go while its token is
 * re-wrapped. Order: up_mtx, lk, a token's mutex, the store.
 */
struct tokens {
	struct store		 *st;
	pthread_rwlock_t	  lk;
	pthread_mutex_t		  act_mtx;
	pthread_mutex_t		  up_mtx;
	struct tok		**toks;
	size_t			  ntoks;
	struct claim		 *claims;
	size_t			  nclaims;
};

static void
tok_free(struct tok *tk)
{
	if (tk == NULL)
		return;
	token_free(tk->t);
	free(tk);
}

void
tokens_free(struct tokens *tk)
{
	if (tk == NULL)
		return;
	for (size_t i = 0; i < tk->ntoks; i++)
		tok_free(tk->toks[i]);
	free(tk->toks);
	free(tk->claims);
	pthread_rwlock_destroy(&tk->lk);
	pthread_mutex_destroy(&tk->act_mtx);
	pthread_mutex_destroy(&tk->up_mtx);
	free(tk);
}

/* Appends a token; called with the write lock (or before sharing). */
static int
tok_push(struct tokens *tk, struct tok *t)
{
	struct tok	**na;

	if ((na = reallocarray(tk->toks, tk->ntoks + 1, sizeof(*na))) == NULL)
		return SP_ERR_ALLOC;
	na[tk->ntoks++] = t;
	tk->toks = na;
	return 0;
}

static struct tok *
tok_find(struct tokens *tk, const char *name)
{
	for (size_t i = 0; name != NULL && i < tk->ntoks; i++)
		if (strcmp(token_name(tk->toks[i]->t), name) == 0)
			return tk->toks[i];
	return NULL;
}

static struct tok *
tok_find_id(struct tokens *tk, int64_t id)
{
	for (size_t i = 0; i < tk->ntoks; i++)
		if (tk->toks[i]->id == id)
			return tk->toks[i];
	return NULL;
}

/* Looks a token up, with the caller-facing error. Hold the lock. */
static struct tok *
tok_get(struct tokens *tk, const char *name, struct sp_err *err)
{
	struct tok	*t;

	if (name == NULL || (t = tok_find(tk, name)) == NULL) {
		sp_err_set(err, SP_ERR_NOTFOUND, "no token named \"%.64s\"",
		    name ? name : "");
		return NULL;
	}
	return t;
}

/* The token named name (borrowed; tokens live as long as the service). */
static struct token *
token_by_name(struct tokens *tk, const char *name, struct sp_err *err)
{
	struct tok	*t;

	pthread_rwlock_rdlock(&tk->lk);
	t = tok_get(tk, name, err);
	pthread_rwlock_unlock(&tk->lk);
	return t != NULL ? t->t : NULL;
}

static int
audit(struct tokens *tk, struct store_txn *tx, const char *event,
    const char *actor, json_t *obj,
    struct sp_err *err)
{
	char	*d = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
	int	 r;

	json_decref(obj);
	if (d == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	r = store_audit_append(tk->st, tx, event, actor, d, err);
	free(d);
	return r;
}

/* --- loading ------------------------------------------------------------ */

static int
load_token(const struct store_token *st, void *arg)
{
	struct tokens	*tk = arg;
	struct tok	*t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return SP_ERR_ALLOC;
	t->id = st->id;
	if ((t->t = token_new(st->name, st->verifier)) == NULL ||
	    tok_push(tk, t) != 0) {
		tok_free(t);
		return SP_ERR_ALLOC;
	}
	return 0;
}

static int
load_key(const struct store_token_key *k, void *arg)
{
	struct tokens	*tk = arg;
	struct tok	*t = tok_find_id(tk, k->token_id);
	struct sp_err	 err = { 0 };

	if (t == NULL || k->alg < 0 || k->alg >= KEY__MAX)
		return SP_ERR_DB;
	if (token_key_load(t->t, k->alias, k->alg, k->wrapped, k->wlen,
	    k->spki, k->spkilen, &err) != 0) {
		log_warnx("token %s: key %s: %s", token_name(t->t), k->alias,
		    err.msg);
		return SP_ERR_DB;
	}
	return 0;
}

int
tokens_open(struct store *st, struct tokens **out, struct sp_err *err)
{
	struct tokens	*tk;
	int		 r;

	*out = NULL;
	if (st == NULL)
		return sp_err_set(err, SP_ERR_INVALID, "tokens need a store");
	if ((tk = calloc(1, sizeof(*tk))) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	pthread_rwlock_init(&tk->lk, NULL);
	pthread_mutex_init(&tk->act_mtx, NULL);
	pthread_mutex_init(&tk->up_mtx, NULL);
	tk->st = st;
	if ((r = store_token_foreach(st, NULL, load_token, tk)) != 0 ||
	    (r = store_token_key_foreach(st, NULL, load_key, tk)) != 0) {
		sp_err_set(err, r, "loading the tokens failed");
		tokens_free(tk);
		return r;
	}
	*out = tk;
	return 0;
}

/* --- the registry ---------------------------------------------------- */

int
tokens_create(struct tokens *tk, const char *name, const char *pin,
    const char *actor, struct sp_err *err)
{
	struct store_txn	*tx = NULL;
	struct token_kdf	 kdf = TOKEN_KDF_DEFAULT;
	struct tok		*t = NULL;
	char			*record = NULL;
	int			 r;

	if (!sp_name_valid(name, TOKENS_NAME_MAX))
		return sp_err_set(err, SP_ERR_INVALID, "token name must be 1 to "
		    "%d characters of [A-Za-z0-9_.-], not \".\" or "
		    "\"..\"", TOKENS_NAME_MAX);
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	/* The slow part (scrypt) before taking the lock. */
	if ((r = token_create(name, pin, &kdf, &t->t, &record, err)) != 0)
		goto out;
	pthread_rwlock_wrlock(&tk->lk);
	if (tok_find(tk, name) != NULL) {
		r = sp_err_set(err, SP_ERR_EXISTS, "token \"%s\" already "
		    "exists", name);
		goto unlock;
	}
	if ((r = store_txn_begin(tk->st, &tx, err)) != 0)
		goto unlock;
	if ((r = store_token_insert(tk->st, tx, name, record, &t->id,
	    err)) != 0 || (r = audit(tk, tx, "token.create", actor,
	    json_pack("{s:s,s:s,s:I,s:I,s:I}", "token", name, "kdf", "scrypt",
	    "n", (json_int_t)kdf.n, "r", (json_int_t)kdf.r, "p",
	    (json_int_t)kdf.p), err)) != 0) {
		store_txn_rollback(tx);
		goto unlock;
	}
	if ((r = store_txn_commit(tx, err)) != 0)
		goto unlock;
	/* Stored; the only way the push can fail is memory. */
	if (tok_push(tk, t) != 0)
		fatalx("out of memory adding token");
	t = NULL;
 unlock:
	pthread_rwlock_unlock(&tk->lk);
 out:
	tok_free(t);
	free(record);
	return r;
}

/*
 * Stores a token's re-wrapping (new record, every key re-wrapped) in one
 * transaction, then puts it in force; on failure the token stays as it
 * was, inactive. Consumes up.
 */
static int
tok_upgrade(struct tokens *tk, struct tok *t, struct token_upgrade *up,
    const struct token_kdf *kdf, const char *actor, struct sp_err *err)
{
	struct store_txn	*tx = NULL;
	const unsigned char	*w;
	const char		*alias;
	size_t			 wlen;
	int			 r;

	if ((r = store_txn_begin(tk->st, &tx, err)) != 0)
		goto fail;
	if ((r = store_exec(tk->st, tx, NULL, err, "UPDATE tokens SET verifier = "
	    "? WHERE id = ?", "si", token_upgrade_record(up), t->id)) < 0)
		goto rollback;
	if (r != 1) {
		r = sp_err_set(err, SP_ERR_DB, "token %s is not in the database",
		    token_name(t->t));
		goto rollback;
	}
	for (size_t i = 0; i < token_upgrade_count(up); i++) {
		if ((r = token_upgrade_key(up, i, &alias, &w, &wlen)) != 0 ||
		    (r = store_exec(tk->st, tx, NULL, err, "UPDATE token_keys SET "
		    "wrapped = ? WHERE token_id = ? AND alias = ?", "bis", w,
		    wlen, t->id, alias)) < 0)
			goto rollback;
		if (r != 1) {
			r = sp_err_set(err, SP_ERR_DB, "token %s: key %s is not "
			    "in the database", token_name(t->t), alias);
			goto rollback;
		}
	}
	if ((r = audit(tk, tx, "token.rewrap", actor, json_pack("{s:s,s:s,s:I,"
	    "s:I,s:I,s:I}", "token", token_name(t->t), "kdf", "scrypt", "n",
	    (json_int_t)kdf->n, "r", (json_int_t)kdf->r, "p",
	    (json_int_t)kdf->p, "keys", (json_int_t)token_upgrade_count(up)),
	    err)) != 0)
		goto rollback;
	if ((r = store_txn_commit(tx, err)) != 0)
		goto fail;
	/* Activations are serialised (up_mtx): nothing changed the token. */
	if (token_upgrade_finish(t->t, up, NULL) != 0)
		fatalx("token %s: stored re-wrapping not in force",
		    token_name(t->t));
	log_info("token %s: re-wrapped with scrypt (N=%llu, r=%u, p=%u)",
	    token_name(t->t), (unsigned long long)kdf->n, kdf->r, kdf->p);
	return 0;
 rollback:
	store_txn_rollback(tx);
 fail:
	token_upgrade_free(up);
	return r;
}

int
tokens_activate(struct tokens *tk, const char *name, const char *pin,
    const char *actor, struct sp_err *err)
{
	struct token_kdf	 kdf = TOKEN_KDF_DEFAULT;
	struct token_upgrade	*up = NULL;
	struct tok		*t;
	struct timespec		 ts;
	int64_t			 now, left = 0;
	long			 wait = 0;
	int			 r, fails = 0;

	pthread_rwlock_rdlock(&tk->lk);
	t = tok_get(tk, name, err);
	pthread_rwlock_unlock(&tk->lk);
	if (t == NULL)
		return SP_ERR_NOTFOUND;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	pthread_mutex_lock(&tk->act_mtx);
	if (t->retry_at > now)
		left = t->retry_at - now;
	pthread_mutex_unlock(&tk->act_mtx);
	if (left > 0) {
		wait = (long)((left + 999) / 1000);	/* whole seconds, up */
		log_warnx("token %s: activation by %s refused: %ld s to wait "
		    "after failed activations", name, actor, wait);
		r = sp_err_set(err, SP_ERR_STATE, "token %s: too many failed "
		    "activations; retry in %ld s", name, wait);
		(void)audit(tk, NULL, "token.activate_refused", actor,
		    json_pack("{s:s,s:I}", "token", name, "wait",
		    (json_int_t)wait), NULL);
		return r;
	}
	pthread_mutex_lock(&tk->up_mtx);	/* one activation at a time */
	r = token_activate(t->t, pin, &kdf, &up, err);
	if (r == 0 && up != NULL)
		r = tok_upgrade(tk, t, up, &kdf, actor, err);
	pthread_mutex_unlock(&tk->up_mtx);
	pthread_mutex_lock(&tk->act_mtx);
	if (r == 0) {
		t->fails = 0;
		t->retry_at = 0;
	} else if (r == SP_ERR_PIN && (fails = ++t->fails) > ACT_FREE_FAILS) {
		int	n = fails - ACT_FREE_FAILS - 1;

		wait = n >= 8 ? ACT_MAX_DELAY : 2L << n;
		if (wait > ACT_MAX_DELAY)
			wait = ACT_MAX_DELAY;
		t->retry_at = now + (int64_t)wait * 1000;
	}
	pthread_mutex_unlock(&tk->act_mtx);
	if (r == SP_ERR_PIN)
		log_warnx("token %s: activation by %s failed (%d in a row%s)",
		    name, actor, fails, wait > 0 ? "; next attempt delayed" : "");
	if (audit(tk, NULL, r == 0 ? "token.activate" : "token.activate_failed",
	    actor, json_pack("{s:s}", "token", name), r == 0 ? err : NULL) != 0
	    && r == 0)
		r = SP_ERR_DB;
	return r;
}

int
tokens_deactivate(struct tokens *tk, const char *name, const char *actor,
    struct sp_err *err)
{
	struct token	*t;

	if ((t = token_by_name(tk, name, err)) == NULL)
		return SP_ERR_NOTFOUND;
	token_deactivate(t);
	return audit(tk, NULL, "token.deactivate", actor, json_pack("{s:s}",
	    "token", name), err);
}

json_t *
tokens_list(struct tokens *tk)
{
	json_t	*arr = json_array();

	pthread_rwlock_rdlock(&tk->lk);
	for (size_t i = 0; arr != NULL && i < tk->ntoks; i++) {
		struct token		*t = tk->toks[i]->t;
		struct token_keyinfo	 ki;
		json_t			*keys = json_array();

		for (size_t k = 0; k < token_key_count(t); k++)
			if (token_key_info(t, k, &ki) == 0)
				json_array_append_new(keys, json_pack("{s:s,s:s}",
				    "alias", ki.alias, "alg",
				    key_alg_name(ki.alg)));
		json_array_append_new(arr, json_pack("{s:s,s:b,s:o}", "name",
		    token_name(t), "active", token_is_active(t), "keys", keys));
	}
	pthread_rwlock_unlock(&tk->lk);
	return arr;
}

int
tokens_genkey(struct tokens *tk, const char *token, const char *alias,
    const char *alg, const char *actor, json_t **out, struct sp_err *err)
{
	struct store_txn	*tx = NULL;
	struct tok		*t;
	struct store_token_key	 sk = { 0 };
	unsigned char		*wrapped = NULL, *spki = NULL;
	size_t			 wlen = 0, spkilen = 0;
	char			 fp[65];
	int			 a, r;

	*out = NULL;
	if (alg == NULL || (a = key_alg_parse(alg)) < 0)
		return sp_err_set(err, SP_ERR_INVALID, "unknown key algorithm "
		    "\"%.32s\" (ec-p256, ec-p384, rsa2048, rsa3072, rsa4096, "
		    "ed25519)", alg ? alg : "");
	pthread_rwlock_rdlock(&tk->lk);
	t = tok_get(tk, token, err);
	pthread_rwlock_unlock(&tk->lk);
	if (t == NULL)
		return SP_ERR_NOTFOUND;
	/* Generated without the service lock: RSA-4096 takes seconds. */
	if ((r = token_genkey(t->t, alias, a, &wrapped, &wlen, &spki,
	    &spkilen, err)) != 0)
		goto out;
	cert_fingerprint(spki, spkilen, fp);
	sk.token_id = t->id;
	sk.alias = alias;
	sk.alg = a;
	sk.wrapped = wrapped;
	sk.wlen = wlen;
	sk.spki = spki;
	sk.spkilen = spkilen;
	if ((r = store_txn_begin(tk->st, &tx, err)) != 0)
		goto undo;
	if ((r = store_token_key_insert(tk->st, tx, &sk, err)) != 0 ||
	    (r = audit(tk, tx, "token.genkey", actor, json_pack("{s:s,s:s,s:s,"
	    "s:s}", "token", token, "alias", alias, "alg", alg,
	    "public_key_sha256", fp), err)) != 0) {
		store_txn_rollback(tx);
		goto undo;
	}
	if ((r = store_txn_commit(tx, err)) != 0)
		goto undo;
	*out = json_pack("{s:s,s:s,s:s,s:s}", "token", token, "alias", alias,
	    "alg", key_alg_name(a), "public_key_sha256", fp);
	goto out;
 undo:
	/* Not stored: the key must not stay in the token either. */
	if (token_key_remove(t->t, alias, NULL) != 0)
		log_warnx("token %s: could not drop unstored key %s", token,
		    alias);
 out:
	sp_freezero(wrapped, wlen);
	free(spki);
	return r;
}

/* Records a claim (lengths checked by the caller). Hold the write lock. */
static int
claim_push(struct tokens *tk, const char *token, const char *alias,
    enum tokens_use use, const char *user, struct sp_err *err)
{
	struct claim	*c;

	if (tk->nclaims >= CLAIMS_MAX)
		return sp_err_set(err, SP_ERR_LIMIT, "more than %d keys in use",
		    CLAIMS_MAX);
	if ((c = reallocarray(tk->claims, tk->nclaims + 1,
	    sizeof(*c))) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	tk->claims = c;
	c = &tk->claims[tk->nclaims++];
	memset(c, 0, sizeof(*c));
	memcpy(c->token, token, strlen(token));
	memcpy(c->alias, alias, strlen(alias));
	memcpy(c->user, user, strlen(user));
	c->use = use;
	return 0;
}

/* A claim of kind use on token/alias, or NULL. */
static struct claim *
claim_of(struct tokens *tk, const char *token, const char *alias, int use)
{
	for (size_t i = 0; i < tk->nclaims; i++) {
		struct claim *c = &tk->claims[i];

		if ((int)c->use == use && strcmp(c->token, token) == 0 &&
		    strcmp(c->alias, alias) == 0)
			return c;
	}
	return NULL;
}

/* The claim of user on token/alias, or of anyone if user is NULL. */
static struct claim *
claim_find(struct tokens *tk, const char *token, const char *alias,
    const char *user)
{
	for (size_t i = 0; i < tk->nclaims; i++) {
		struct claim *c = &tk->claims[i];

		if (strcmp(c->token, token) == 0 &&
		    strcmp(c->alias, alias) == 0 &&
		    (user == NULL || strcmp(c->user, user) == 0))
			return c;
	}
	return NULL;
}

int
tokens_delkey(struct tokens *tk, const char *token, const char *alias,
    const char *actor, struct sp_err *err)
{
	struct store_txn	*tx = NULL;
	struct tok		*t;
	struct claim		*c;
	int			 r;

	/* Not while an activation re-wraps the token's keys. */
	pthread_mutex_lock(&tk->up_mtx);
	pthread_rwlock_wrlock(&tk->lk);
	if ((t = tok_get(tk, token, err)) == NULL)
		r = SP_ERR_NOTFOUND;
	else if (alias == NULL || strlen(alias) > TOKEN_ALIAS_MAX)
		r = sp_err_set(err, SP_ERR_NOTFOUND, "token %s has no key "
		    "\"%.64s\"", token, alias ? alias : "");
	else if ((c = claim_of(tk, token, alias, TOKENS_USE_CA)) != NULL)
		r = sp_err_set(err, SP_ERR_STATE, "key %s is used by CA %s",
		    alias, c->user);
	else if (claim_of(tk, token, alias, USE_DELETING) != NULL)
		r = sp_err_set(err, SP_ERR_STATE, "key %s is being deleted",
		    alias);
	else
		r = claim_push(tk, token, alias, USE_DELETING, "", err);
	pthread_rwlock_unlock(&tk->lk);
	if (r != 0) {
		pthread_mutex_unlock(&tk->up_mtx);
		return r;
	}
	if ((r = store_txn_begin(tk->st, &tx, err)) != 0)
		goto out;
	if ((r = store_token_key_delete(tk->st, tx, t->id, alias, err)) != 0 ||
	    (r = audit(tk, tx, "token.delkey", actor, json_pack("{s:s,s:s}",
	    "token", token, "alias", alias), err)) != 0) {
		store_txn_rollback(tx);
		if (r == SP_ERR_NOTFOUND) {
			sp_err_clear(err);
			sp_err_set(err, r, "token %s has no key \"%s\"", token,
			    alias);
		}
		goto out;
	}
	if ((r = store_txn_commit(tx, err)) != 0)
		goto out;
	r = token_key_remove(t->t, alias, err);
 out:
	tokens_key_release(tk, token, alias, USE_DELETING, "");
	pthread_mutex_unlock(&tk->up_mtx);
	return r;
}

/* --- using keys --------------------------------------------------------- */

int
tokens_key_find(struct tokens *tk, const char *token, const char *alias,
    enum key_alg *alg, unsigned char **spki, size_t *spkilen,
    struct sp_err *err)
{
	struct token		*t;
	struct token_keyinfo	 ki;
	int			 r;

	if (spki != NULL) {
		*spki = NULL;
		*spkilen = 0;
	}
	if ((t = token_by_name(tk, token, err)) == NULL)
		return SP_ERR_NOTFOUND;
	if (alias == NULL || token_key_find(t, alias, &ki) != 0)
		return sp_err_set(err, SP_ERR_NOTFOUND, "token %s has no key "
		    "\"%.64s\"", token, alias ? alias : "");
	*alg = ki.alg;
	if (spki == NULL)
		return 0;
	/* A copy made under the token's lock: a removal cannot race it. */
	if ((r = token_key_spki(t, alias, spki, spkilen)) == SP_ERR_ALLOC)
		return sp_err_set(err, r, "out of memory");
	if (r != 0)
		return sp_err_set(err, SP_ERR_NOTFOUND, "token %s has no key "
		    "\"%.64s\"", token, alias);
	return 0;
}

bool
tokens_has(struct tokens *tk, const char *token)
{
	return token_by_name(tk, token, NULL) != NULL;
}

bool
tokens_is_active(struct tokens *tk, const char *token)
{
	struct token	*t = token_by_name(tk, token, NULL);

	return t != NULL && token_is_active(t);
}

int
tokens_sign_init(struct tokens *tk, const char *token, const char *alias,
    EVP_MD_CTX **out, struct sp_err *err)
{
	struct token	*t;

	*out = NULL;
	if ((t = token_by_name(tk, token, err)) == NULL)
		return SP_ERR_NOTFOUND;
	return token_sign_init(t, alias, out, err);
}

int
tokens_key_get1_tls(struct tokens *tk, const char *token, const char *alias,
    EVP_PKEY **out, struct sp_err *err)
{
	struct token	*t;

	*out = NULL;
	if ((t = token_by_name(tk, token, err)) == NULL)
		return SP_ERR_NOTFOUND;
	return token_key_get1_tls(t, alias, out, err);
}

/* --- the key registry ------------------------------------------------- */

/*
 * Checks a new claim against the existing ones and records it. Hold the
 * write lock.
 */
static int
claim_add(struct tokens *tk, const char *token, const char *alias,
    enum tokens_use use, const char *user, struct sp_err *err)
{
	struct claim	*c;

	if ((unsigned)use >= TOKENS_USE__MAX || user == NULL ||
	    strlen(user) > TOKENS_USER_MAX || token == NULL ||
	    strlen(token) > TOKENS_NAME_MAX || alias == NULL ||
	    strlen(alias) > TOKEN_ALIAS_MAX)
		return sp_err_set(err, SP_ERR_INVALID, "bad key claim");
	if ((c = claim_find(tk, token, alias, user)) != NULL && c->use == use)
		return 0;	/* already held */
	for (size_t i = 0; i < tk->nclaims; i++) {
		c = &tk->claims[i];
		if (strcmp(c->token, token) != 0 || strcmp(c->alias, alias) != 0)
			continue;
		if (c->use == TOKENS_USE_CA && use == TOKENS_USE_KB)
			return sp_err_set(err, SP_ERR_POLICY, "key %s in token "
			    "%s is the signing key of CA %s; a TLS identity "
			    "needs a key of its own", alias, token, c->user);
		if (c->use == TOKENS_USE_KB && use == TOKENS_USE_CA)
			return sp_err_set(err, SP_ERR_POLICY, "key %s in token "
			    "%s is the TLS key of key binding %s; a CA needs a "
			    "key of its own", alias, token, c->user);
		if (c->use == TOKENS_USE_CA && use == TOKENS_USE_CA)
			return sp_err_set(err, SP_ERR_STATE, "key %s is "
			    "already used by CA %s", alias, c->user);
		if (c->use == USE_DELETING)
			return sp_err_set(err, SP_ERR_STATE, "key %s is being "
			    "deleted", alias);
	}
	int	r;

	return (r = claim_push(tk, token, alias, use, user, err)) == 0 ? 1 : r;
}

int
tokens_key_claim(struct tokens *tk, const char *token, const char *alias,
    enum tokens_use use, const char *user, struct sp_err *err)
{
	struct tok		*t;
	struct token_keyinfo	 ki;
	int			 r;

	pthread_rwlock_wrlock(&tk->lk);
	if ((t = tok_get(tk, token, err)) == NULL)
		r = SP_ERR_NOTFOUND;
	else if (alias == NULL || token_key_find(t->t, alias, &ki) != 0)
		r = sp_err_set(err, SP_ERR_NOTFOUND, "token %s has no key "
		    "\"%.64s\"", token, alias ? alias : "");
	else
		r = claim_add(tk, token, alias, use, user, err);
	pthread_rwlock_unlock(&tk->lk);
	return r;
}

int
tokens_key_claim_stored(struct tokens *tk, const char *token,
    const char *alias, enum tokens_use use, const char *user,
    struct sp_err *err)
{
	int	r;

	pthread_rwlock_wrlock(&tk->lk);
	r = claim_add(tk, token, alias, use, user, err);
	pthread_rwlock_unlock(&tk->lk);
	return r;
}

void
tokens_key_release(struct tokens *tk, const char *token, const char *alias,
    enum tokens_use use, const char *user)
{
	struct claim	*c;

	if (token == NULL || alias == NULL || user == NULL)
		return;
	pthread_rwlock_wrlock(&tk->lk);
	if ((c = claim_find(tk, token, alias, user)) != NULL && c->use == use) {
		size_t i = (size_t)(c - tk->claims);

		memmove(c, c + 1, (tk->nclaims - i - 1) * sizeof(*c));
		tk->nclaims--;
	}
	pthread_rwlock_unlock(&tk->lk);
}
