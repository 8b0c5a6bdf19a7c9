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
	va_responder_stop(va);
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

/* --- what the admin commands show (worker thread) ------------------------ */

static const char *const status_names[VA__STATUS_MAX] = {
	[VA_GOOD] = "good", [VA_REVOKED] = "revoked", [VA_ON_HOLD] = "hold",
};

static const char *
status_name(int64_t s)
{
	return s >= 0 && s < VA__STATUS_MAX ? status_names[s] : "?";
}

static int
issuer_status_row(const struct store_row *row, void *arg)
{
	json_t	*arr = arg, *o, *counts;

	counts = json_pack("{s:I,s:I,s:I}", "good", (json_int_t)store_row_int(
	    row, 3), "revoked", (json_int_t)store_row_int(row, 4), "hold",
	    (json_int_t)store_row_int(row, 5));
	o = json_pack("{s:s,s:s,s:s,s:o}", "name", store_row_text(row, 0),
	    "subject", store_row_text(row, 1), "fingerprint",
	    store_row_text(row, 2), "entries", counts);
	if (o == NULL)
		return SP_ERR_ALLOC;
	if (store_row_null(row, 6))
		json_object_set_new(o, "crl", json_null());
	else
		json_object_set_new(o, "crl", json_pack("{s:I,s:I,s:I}",
		    "number", (json_int_t)store_row_int(row, 6), "this_update",
		    (json_int_t)store_row_int(row, 7), "next_update",
		    (json_int_t)store_row_int(row, 8)));
	return json_array_append_new(arr, o) == 0 ? 0 : SP_ERR_ALLOC;
}

int
va_status_json(struct va *va, json_t **out, struct sp_err *err)
{
	json_t	*doc, *issuers = json_array();
	int	 r;

	*out = NULL;
	if (issuers == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	if ((r = store_select(va->st, NULL, issuer_status_row, issuers, err,
	    "SELECT i.name, i.subject, i.fingerprint, "
	    "(SELECT COUNT(*) FROM va_certs c WHERE c.issuer_id = i.id AND "
	    "c.status = 0), "
	    "(SELECT COUNT(*) FROM va_certs c WHERE c.issuer_id = i.id AND "
	    "c.status = 1), "
	    "(SELECT COUNT(*) FROM va_certs c WHERE c.issuer_id = i.id AND "
	    "c.status = 2), "
	    "l.number, l.this_update, l.next_update FROM va_issuers i "
	    "LEFT JOIN va_crls l ON l.issuer_id = i.id ORDER BY i.name",
	    "")) != 0) {
		json_decref(issuers);
		return r == SP_ERR_ALLOC ? sp_err_set(err, r, "out of memory") :
		    r;
	}
	doc = json_pack("{s:o,s:o,s:I,s:{s:I,s:I,s:I,s:I}}", "issuers",
	    issuers, "settings", va_settings_json(va), "cache_size",
	    (json_int_t)va_cache_count(va->cache), "published",
	    "cas", (json_int_t)va->published[VA_PUB_CA],
	    "certs", (json_int_t)va->published[VA_PUB_CERT],
	    "crls", (json_int_t)va->published[VA_PUB_CRL],
	    "refused", (json_int_t)va->pub_refused);
	if (doc == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	json_object_set_new(doc, "responder", va_responder_status_json(va));
	*out = doc;
	return 0;
}

static int
cert_row(const struct store_row *row, void *arg)
{
	json_t	*arr = arg, *o;

	o = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:s,s:s,s:I,s:b}",
	    "issuer", store_row_text(row, 0), "serial", store_row_text(row, 1),
	    "status", status_name(store_row_int(row, 2)), "revoked_at",
	    (json_int_t)store_row_int(row, 3), "reason",
	    (json_int_t)store_row_int(row, 4), "not_before",
	    (json_int_t)store_row_int(row, 5), "not_after",
	    (json_int_t)store_row_int(row, 6), "fingerprint",
	    store_row_text(row, 7), "subject", store_row_text(row, 8), "seq",
	    (json_int_t)store_row_int(row, 9), "has_der",
	    store_row_int(row, 10) != 0);
	if (o == NULL)
		return SP_ERR_ALLOC;
	return json_array_append_new(arr, o) == 0 ? 0 : SP_ERR_ALLOC;
}

#define CERT_COLS "SELECT i.name, c.serial, c.status, c.revoked_at, " \
	"c.reason, c.not_before, c.not_after, c.fingerprint, c.subject, " \
	"c.seq, CASE WHEN c.der IS NULL THEN 0 ELSE 1 END FROM va_certs c JOIN va_issuers i ON " \
	"i.id = c.issuer_id "

int
va_cert_list_json(struct va *va, const char *issuer, const char *status,
    long long limit, json_t **out, struct sp_err *err)
{
	json_t	*arr;
	int64_t	 st = -1;
	int	 r;

	*out = NULL;
	if (limit == 0)
		limit = VA_LIST_DEFAULT;
	if (limit < 1 || limit > VA_LIST_MAX)
		return sp_err_set(err, SP_ERR_INVALID, "--limit must be 1..%d",
		    VA_LIST_MAX);
	if (status != NULL) {
		for (int i = 0; i < VA__STATUS_MAX; i++)
			if (strcmp(status, status_names[i]) == 0)
				st = i;
		if (st < 0)
			return sp_err_set(err, SP_ERR_INVALID, "--status: good, "
			    "revoked or hold");
	}
	if ((arr = json_array()) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	r = store_select(va->st, NULL, cert_row, arr, err, CERT_COLS
	    "WHERE (? = '' OR i.name = ?) AND (? < 0 OR c.status = ?) "
	    "ORDER BY i.name, c.serial LIMIT ?", "ssiii", issuer ? issuer : "",
	    issuer ? issuer : "", st, st, (int64_t)limit);
	if (r != 0) {
		json_decref(arr);
		return r == SP_ERR_ALLOC ? sp_err_set(err, r, "out of memory") :
		    r;
	}
	*out = arr;
	return 0;
}

int
va_cert_show_json(struct va *va, const char *issuer, const char *serial,
    json_t **out, struct sp_err *err)
{
	char	 s[ID_SERIAL_HEX_MAX];
	json_t	*arr;
	int	 r;

	*out = NULL;
	if ((r = id_serial_parse(serial, s, err)) != 0)
		return r;
	if ((arr = json_array()) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	if ((r = store_select(va->st, NULL, cert_row, arr, err, CERT_COLS
	    "WHERE i.name = ? AND c.serial = ?", "ss", issuer, s)) != 0) {
		json_decref(arr);
		return r;
	}
	if (json_array_size(arr) == 0) {
		json_decref(arr);
		return sp_err_set(err, SP_ERR_NOTFOUND, "the VA has no entry "
		    "for serial %s of issuer %s", s, issuer);
	}
	*out = json_incref(json_array_get(arr, 0));
	json_decref(arr);
	return 0;
}
