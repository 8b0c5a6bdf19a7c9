/*
 * The VA service: its settings and the state its parts share (the
 * response cache). Publishing is in publish.c, answering in http.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "util/util.h"
#include "va/va_int.h"

#define SET_NON_ISSUED	"va.non_issued"
#define SET_VALIDITY	"va.response_validity"

static const char *const non_issued_names[VA_NON_ISSUED__MAX] = {
	[VA_NON_ISSUED_UNKNOWN] = "unknown",
	[VA_NON_ISSUED_REVOKED] = "revoked",
};

/* Parses a setting; the value it stands for in *v. */
static int
setting_parse(const char *key, const char *value, int *v, struct sp_err *err)
{
	char	*end;
	long	 n;

	if (strcmp(key, "non_issued") == 0) {
		for (int i = 0; i < VA_NON_ISSUED__MAX; i++)
			if (strcmp(value, non_issued_names[i]) == 0) {
				*v = i;
				return 0;
			}
		return sp_err_set(err, SP_ERR_INVALID, "non_issued: \"%s\" is "
		    "neither unknown nor revoked", value);
	}
	if (strcmp(key, "response_validity") == 0) {
		errno = 0;
		n = strtol(value, &end, 10);
		if (errno != 0 || end == value || *end != '\0' ||
		    n < VA_VALIDITY_MIN || n > VA_VALIDITY_MAX)
			return sp_err_set(err, SP_ERR_INVALID, "response_validity:"
			    " \"%s\" is not a number of seconds in %d..%d", value,
			    VA_VALIDITY_MIN, VA_VALIDITY_MAX);
		*v = (int)n;
		return 0;
	}
	return sp_err_set(err, SP_ERR_INVALID, "unknown VA setting \"%s\" "
	    "(non_issued, response_validity)", key);
}

static void
setting_apply(struct va *va, const char *key, int v)
{
	if (strcmp(key, "non_issued") == 0)
		va->non_issued = v;
	else
		va->response_validity = v;
}

static int
setting_row(const struct store_row *row, void *arg)
{
	struct va	*va = arg;
	struct sp_err	 e = { 0 };
	const char	*k = store_row_text(row, 0) + strlen("va.");
	int		 v;

	/* A value the store holds was validated when set; skip what is not. */
	if (setting_parse(k, store_row_text(row, 1), &v, &e) == 0)
		setting_apply(va, k, v);
	return 0;
}

int
va_open(struct store *st, struct tokens *tokens, struct kb_service *kb,
    struct event_base *base, struct pool *pool, struct va **out,
    struct sp_err *err)
{
	struct va	*va;
	int		 r;

	*out = NULL;
	if ((va = calloc(1, sizeof(*va))) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "va: out of memory");
	va->st = st;
	va->tokens = tokens;
	va->kb = kb;
	va->base = base;
	va->pool = pool;
	va->non_issued = VA_NON_ISSUED_UNKNOWN;
	va->response_validity = VA_VALIDITY_DEFAULT;
	if ((r = va_cache_new(0, &va->cache)) != 0) {
		sp_err_set(err, r, "va: cannot make the response cache");
		goto fail;
	}
	if ((r = store_select(st, NULL, setting_row, va, err, "SELECT key, "
	    "value FROM settings WHERE key IN (?, ?)", "ss", SET_NON_ISSUED,
	    SET_VALIDITY)) != 0)
		goto fail;
	*out = va;
	return 0;
 fail:
	va_free(va);
	return r;
}

void
va_free(struct va *va)
{
	if (va == NULL)
		return;
	va_cache_free(va->cache);
	free(va);
}

int
va_set(struct va *va, const char *key, const char *value, const char *actor,
    struct sp_err *err)
{
	struct store_txn	*tx = NULL;
	char			 skey[64];
	json_t			*d;
	char			*det = NULL;
	int			 v, r;

	if ((r = setting_parse(key, value, &v, err)) != 0)
		return r;
	snprintf(skey, sizeof(skey), "va.%s", key);
	if ((d = json_pack("{s:s,s:s}", "key", key, "value", value)) == NULL ||
	    (det = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		json_decref(d);
		return sp_err_set(err, SP_ERR_ALLOC, "va setting %s: cannot "
		    "build the audit record", key);
	}
	json_decref(d);
	if ((r = store_txn_begin(va->st, &tx, err)) != 0)
		goto out;
	if ((r = store_exec(va->st, tx, NULL, err, "INSERT INTO settings (key, "
	    "value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = "
	    "excluded.value", "ss", skey, value)) < 0 ||
	    (r = store_audit_append(va->st, tx, "va.setting", actor, det,
	    err)) != 0) {
		store_txn_rollback(tx);
		goto out;
	}
	if ((r = store_txn_commit(tx, err)) != 0)
		goto out;
	setting_apply(va, key, v);
	/* Cached responses were made under the old rule or validity. */
	va_cache_clear(va->cache);
 out:
	free(det);
	return r;
}

json_t *
va_settings_json(struct va *va)
{
	return json_pack("{s:s,s:i}", "non_issued",
	    non_issued_names[va->non_issued], "response_validity",
	    va->response_validity);
}
