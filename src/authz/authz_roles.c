/*
 * Role administration: creating and deleting roles, their members and
 * access rules, each change one audited transaction that also loads the
 * fresh cache (authz.c installs it); reading roles; the rule presets and
 * authz_grant(), which gives a recorded certificate a role.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "authz/authz_int.h"
#include "crypto/dn.h"
#include "crypto/ids.h"
#include "util/log.h"
#include "util/util.h"

/* Rule presets for authz_grant(). */
struct preset_rule {
	const char	*path;
	bool		 recursive;
};
static const struct {
	const char		*name;
	struct preset_rule	 rules[6];	/* ended by a NULL path */
} presets[] = {
	{ "va", { { "/peerincoming", false },
	    { "/peerpublish/writecert", false },
	    { "/peerpublish/readcert", false },
	    { "/peerpublish/writecrl", false }, { "/ca/", true } } },
	{ "ra", { { "/peerincoming", false }, { "/ra/longhanging", false },
	    { "/ca/", true } } },
	{ "renewal", { { "/peerincoming", false },
	    { "/internalkeybinding/view/", true },
	    { "/internalkeybinding/modify/", true },
	    { "/cryptotoken/view/", true },
	    { "/cryptotoken/keys/generate/", true } } },
	{ "ping", { { "/peerincoming", false } } },
};
#define NPRESETS	(sizeof(presets) / sizeof(presets[0]))

static int
role_name_check(const char *name, struct sp_err *err)
{
	if (name == NULL || !authz_role_name_valid(name))
		return sp_err_set(err, SP_ERR_INVALID, "role name must be "
		    "1..%d characters of [A-Za-z0-9_.-], not \".\" or "
		    "\"..\"", AUTHZ_ROLE_MAX);
	return 0;
}

static int
path_check(const char *p, struct sp_err *err)
{
	if (!authz_path_valid(p))
		return sp_err_set(err, SP_ERR_INVALID, "access rule path "
		    "\"%.64s\" must start with '/' and hold at most %d "
		    "characters of [A-Za-z0-9_./-], without empty, \".\" or "
		    "\"..\" components", p ? p : "", AUTHZ_PATH_MAX);
	return 0;
}

/* An operator-typed serial in crypto/ids.h's form (*out heap). */
static int
serial_norm(const char *in, char **out, struct sp_err *err)
{
	char	s[ID_SERIAL_HEX_MAX];
	int	r;

	*out = NULL;
	if ((r = id_serial_parse(in, s, err)) != 0)
		return r;
	if ((*out = strdup(s)) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	return 0;
}

/* SHA-256 fingerprint: 64 hex digits, ':' separators allowed. */
static int
fp_norm(const char *in, char **out, struct sp_err *err)
{
	char	fp[ID_FP_HEX_LEN + 1];
	int	r;

	*out = NULL;
	if ((r = id_fingerprint_parse(in, fp, err)) != 0)
		return r;
	if ((*out = strdup(fp)) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	return 0;
}

/* A DN in canonical form, dn_print(dn_parse(in)); *out is heap. */
static int
dn_norm(const char *what, const char *in, char **out, struct sp_err *err)
{
	struct sp_err	 e = { 0 };
	X509_NAME	*n = NULL;
	int		 r;

	*out = NULL;
	if ((r = dn_parse(in, &n, &e)) != 0)
		return sp_err_set(err, r, "%s: %s", what, e.msg);
	*out = dn_print(n);
	X509_NAME_free(n);
	if (*out == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	return 0;
}

static int
cn_check(const char *cn, struct sp_err *err)
{
	size_t	n = strlen(cn);

	if (n == 0 || n > DN_MAX_VALUE)
		return sp_err_set(err, SP_ERR_INVALID, "common name must be "
		    "1..%d bytes", DN_MAX_VALUE);
	for (const unsigned char *p = (const unsigned char *)cn; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return sp_err_set(err, SP_ERR_INVALID, "common name "
			    "holds a control character");
	return 0;
}

/*
 * Validates and normalises a member: *m, *value and *issuer (both heap,
 * issuer "" unless serial) as they are stored and compared.
 */
static int
member_norm(const char *match, const char *value, const char *issuer,
    enum match *m, char **v, char **iss, struct sp_err *err)
{
	int	r;

	*v = *iss = NULL;
	if ((r = authz_match_parse(match, m, err)) != 0)
		return r;
	if (value == NULL || *value == '\0')
		return sp_err_set(err, SP_ERR_INVALID, "a member needs a "
		    "value");
	if (strlen(value) > AUTHZ_VALUE_MAX)
		return sp_err_set(err, SP_ERR_INVALID, "member value longer "
		    "than %d characters", AUTHZ_VALUE_MAX);
	if (*m == MATCH_SERIAL && (issuer == NULL || *issuer == '\0'))
		return sp_err_set(err, SP_ERR_INVALID, "match \"serial\" needs "
		    "the issuer DN (a serial is unique only per issuer)");
	/*
	 * A subject DN means something only under its issuer: any trusted
	 * CA could issue the same subject. So a dn member pins its issuer
	 * unless the operator says "*" (any issuer) on purpose.
	 */
	if (*m == MATCH_DN && (issuer == NULL || *issuer == '\0'))
		return sp_err_set(err, SP_ERR_INVALID, "match \"dn\" needs the "
		    "issuer DN (--issuer), or --any-issuer to match that "
		    "subject from every trusted CA");
	if (*m != MATCH_SERIAL && *m != MATCH_DN && issuer != NULL &&
	    *issuer != '\0')
		return sp_err_set(err, SP_ERR_INVALID, "an issuer is only "
		    "given with match \"serial\" or \"dn\"");
	switch (*m) {
	case MATCH_SERIAL:
		if ((r = serial_norm(value, v, err)) != 0 ||
		    (r = dn_norm("issuer", issuer, iss, err)) != 0)
			goto fail;
		return 0;
	case MATCH_DN:
		if ((r = dn_norm("subject DN", value, v, err)) != 0)
			goto fail;
		if (strcmp(issuer, "*") == 0) {
			if ((*iss = strdup("")) == NULL)
				r = sp_err_set(err, SP_ERR_ALLOC,
				    "out of memory");
		} else
			r = dn_norm("issuer", issuer, iss, err);
		goto fail;	/* *iss is set: skip the "" below */
	case MATCH_CN:
		if ((r = cn_check(value, err)) == 0 &&
		    (*v = strdup(value)) == NULL)
			r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		break;
	case MATCH_FINGERPRINT:
		r = fp_norm(value, v, err);
		break;
	default:
		r = sp_err_set(err, SP_ERR_INTERNAL, "match type");
		break;
	}
	if (r == 0 && (*iss = strdup("")) == NULL)
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
 fail:
	if (r != 0) {
		free(*v);
		free(*iss);
		*v = *iss = NULL;
	}
	return r;
}

json_t *
authz_jstr(const char *s)
{
	json_t	*j;
	char	*c;

	if ((j = json_string(s ? s : "")) != NULL)
		return j;
	if ((c = strdup(s)) == NULL)
		return NULL;
	for (unsigned char *p = (unsigned char *)c; *p; p++)
		if (*p >= 0x80)
			*p = '?';
	j = json_string(c);
	free(c);
	return j;
}

/* --- changes ------------------------------------------------------------ */

/*
 * A change: fn runs inside the transaction and fills details (the audit
 * row's JSON). Then the audit row, a fresh cache, the commit and the
 * swap.
 */
typedef int change_fn(struct authz *a, struct store_txn *tx, void *arg,
    json_t *details, struct sp_err *err);

static int
change(struct authz *a, const char *event, const char *actor, change_fn *fn,
    void *arg, struct sp_err *err)
{
	struct store_txn	*tx = NULL;
	struct cache	*nc = NULL;
	json_t		*details = NULL;
	char		*d = NULL;
	bool		 intxn = false;
	int		 r;

	if ((details = json_object()) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	pthread_mutex_lock(&a->wlk);
	if ((r = store_txn_begin(a->st, &tx, err)) != 0)
		goto out;
	intxn = true;
	if ((r = fn(a, tx, arg, details, err)) != 0)
		goto out;
	if ((d = json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}
	if ((r = store_audit_append(a->st, tx, event, actor ? actor : "", d,
	    err)) != 0 || (r = authz_cache_load(a, tx, &nc, err)) != 0)
		goto out;
	intxn = false;
	if ((r = store_txn_commit(tx, err)) != 0)
		goto out;
	authz_cache_install(a, nc);
	nc = NULL;
	log_info("authz: %s by %s: %s", event, actor ? actor : "", d);
 out:
	if (intxn)
		store_txn_rollback(tx);
	pthread_mutex_unlock(&a->wlk);
	authz_cache_free(nc);
	json_decref(details);
	free(d);
	return r;
}

struct one_int {
	int64_t	v;
	bool	found;
};

static int
row_int(const struct store_row *row, void *arg)
{
	struct one_int	*o = arg;

	o->v = store_row_int(row, 0);
	o->found = true;
	return 0;
}

static int
role_id(struct authz *a, struct store_txn *tx, const char *name, int64_t *id,
    struct sp_err *err)
{
	struct one_int	o = { 0 };
	int		r;

	if ((r = store_select(a->st, tx, row_int, &o, err,
	    "SELECT id FROM roles WHERE name = ?", "s", name)) != 0)
		return r;
	if (!o.found)
		return sp_err_set(err, SP_ERR_NOTFOUND, "no role \"%s\"", name);
	*id = o.v;
	return 0;
}

static int
count(struct authz *a, struct store_txn *tx, const char *sql, int64_t id,
    const char *path, int64_t *n, struct sp_err *err)
{
	struct one_int	o = { 0 };
	int		r;

	if (path != NULL)
		r = store_select(a->st, tx, row_int, &o, err, sql, "is", id, path);
	else
		r = store_select(a->st, tx, row_int, &o, err, sql, "i", id);
	*n = o.v;
	return r;
}

/* Creates role name (inside a change); *id gets its row. */
static int
role_insert(struct authz *a, struct store_txn *tx, const char *name,
    int64_t *id, struct sp_err *err)
{
	struct sp_err	e = { 0 };
	struct one_int	o = { 0 };
	int		r;

	if ((r = store_select(a->st, tx, row_int, &o, err,
	    "SELECT count(*) FROM roles", "")) != 0)
		return r;
	if (o.v >= AUTHZ_MAX_ROLES)
		return sp_err_set(err, SP_ERR_LIMIT, "a node holds at most %d "
		    "roles", AUTHZ_MAX_ROLES);
	r = store_exec(a->st, tx, id, &e, "INSERT INTO roles (name, created) "
	    "VALUES (?, ?) RETURNING id", "si", name, (int64_t)sp_now());
	if (r == SP_ERR_EXISTS)
		return sp_err_set(err, r, "role \"%s\" already exists", name);
	if (r < 0)
		return sp_err_set(err, r, "%s", e.msg);
	return 0;
}

static int
member_insert(struct authz *a, struct store_txn *tx, const char *rname,
    int64_t rid, enum match m, const char *value, const char *issuer,
    struct sp_err *err)
{
	struct sp_err	e = { 0 };
	int64_t		n;
	int		r;

	if ((r = count(a, tx, "SELECT count(*) FROM role_members "
	    "WHERE role_id = ?", rid, NULL, &n, err)) != 0)
		return r;
	if (n >= AUTHZ_MAX_MEMBERS)
		return sp_err_set(err, SP_ERR_LIMIT, "role %s has %d members "
		    "already", rname, AUTHZ_MAX_MEMBERS);
	r = store_exec(a->st, tx, NULL, &e, "INSERT INTO role_members (role_id, "
	    "match, value, issuer) VALUES (?, ?, ?, ?)", "isss", rid,
	    authz_match_names[m], value, issuer);
	if (r == SP_ERR_EXISTS)
		return sp_err_set(err, r, "role %s already has this member "
		    "(%s %s)", rname, authz_match_names[m], value);
	if (r < 0)
		return sp_err_set(err, r, "%s", e.msg);
	return 0;
}

static int
rule_upsert(struct authz *a, struct store_txn *tx, const char *rname,
    int64_t rid, const char *path, bool allow, bool recursive,
    const char *preset, struct sp_err *err)
{
	int64_t	n;
	int	r;

	if ((r = count(a, tx, "SELECT count(*) FROM role_rules WHERE role_id = ? "
	    "AND path <> ?", rid, path, &n, err)) != 0)
		return r;
	if (n >= AUTHZ_MAX_RULES)
		return sp_err_set(err, SP_ERR_LIMIT, "role %s has %d rules "
		    "already", rname, AUTHZ_MAX_RULES);
	r = store_exec(a->st, tx, NULL, err, "INSERT INTO role_rules (role_id, "
	    "path, allow, recursive, preset) VALUES (?, ?, ?, ?, ?) "
	    "ON CONFLICT (role_id, path) DO UPDATE SET "
	    "allow = excluded.allow, recursive = excluded.recursive, "
	    "preset = excluded.preset", "isiis",
	    rid, path, (int64_t)allow, (int64_t)recursive, preset);
	return r < 0 ? r : 0;
}

/* role.create */

struct name_arg {
	const char	*name;
};

static int
do_role_create(struct authz *a, struct store_txn *tx, void *arg,
    json_t *details, struct sp_err *err)
{
	struct name_arg	*na = arg;
	int64_t		 id;
	int		 r;

	if ((r = role_insert(a, tx, na->name, &id, err)) != 0)
		return r;
	json_object_set_new(details, "role", json_string(na->name));
	return 0;
}

int
authz_role_create(struct authz *a, const char *name, const char *actor,
    struct sp_err *err)
{
	struct name_arg	na = { name };
	int		r;

	if ((r = role_name_check(name, err)) != 0)
		return r;
	return change(a, "role.create", actor, do_role_create, &na, err);
}

/* role.delete */

static int
do_role_delete(struct authz *a, struct store_txn *tx, void *arg,
    json_t *details, struct sp_err *err)
{
	const char	*name = ((struct name_arg *)arg)->name;
	int64_t		 id, nm, nr;
	int		 r;

	if ((r = role_id(a, tx, name, &id, err)) != 0 ||
	    (r = count(a, tx, "SELECT count(*) FROM role_members WHERE "
	    "role_id = ?", id, NULL, &nm, err)) != 0 ||
	    (r = count(a, tx, "SELECT count(*) FROM role_rules WHERE role_id = ?",
	    id, NULL, &nr, err)) != 0)
		return r;
	/* Explicit, not only ON DELETE CASCADE, so no setting can skip it. */
	if ((r = store_exec(a->st, tx, NULL, err, "DELETE FROM role_members "
	    "WHERE role_id = ?", "i", id)) < 0 ||
	    (r = store_exec(a->st, tx, NULL, err, "DELETE FROM role_rules "
	    "WHERE role_id = ?", "i", id)) < 0 ||
	    (r = store_exec(a->st, tx, NULL, err, "DELETE FROM roles WHERE "
	    "id = ?", "i", id)) < 0)
		return r;
	json_object_set_new(details, "role", json_string(name));
	json_object_set_new(details, "members", json_integer(nm));
	json_object_set_new(details, "rules", json_integer(nr));
	return 0;
}

int
authz_role_delete(struct authz *a, const char *name, const char *actor,
    struct sp_err *err)
{
	struct name_arg	na = { name };
	int		r;

	if ((r = role_name_check(name, err)) != 0)
		return r;
	return change(a, "role.delete", actor, do_role_delete, &na, err);
}

/* role.member_add, role.member_remove */

struct member_arg {
	const char	*role;
	enum match	 match;
	const char	*value;
	const char	*issuer;
	bool		 add;
};

static int
do_member(struct authz *a, struct store_txn *tx, void *arg, json_t *details,
    struct sp_err *err)
{
	struct member_arg	*ma = arg;
	int64_t			 id;
	int			 r;

	if ((r = role_id(a, tx, ma->role, &id, err)) != 0)
		return r;
	if (ma->add) {
		if ((r = member_insert(a, tx, ma->role, id, ma->match, ma->value,
		    ma->issuer, err)) != 0)
			return r;
	} else {
		if ((r = store_exec(a->st, tx, NULL, err, "DELETE FROM "
		    "role_members WHERE role_id = ? AND match = ? AND "
		    "value = ? AND issuer = ?", "isss", id,
		    authz_match_names[ma->match], ma->value, ma->issuer)) < 0)
			return r;
		if (r == 0)
			return sp_err_set(err, SP_ERR_NOTFOUND, "role %s has "
			    "no such member (%s %s)", ma->role,
			    authz_match_names[ma->match], ma->value);
	}
	json_object_set_new(details, "role", json_string(ma->role));
	json_object_set_new(details, "match",
	    json_string(authz_match_names[ma->match]));
	json_object_set_new(details, "value", authz_jstr(ma->value));
	if (ma->match == MATCH_SERIAL)
		json_object_set_new(details, "issuer", authz_jstr(ma->issuer));
	return 0;
}

static int
member_change(struct authz *a, bool add, const char *role, const char *match,
    const char *value, const char *issuer, const char *actor,
    struct sp_err *err)
{
	struct member_arg	 ma = { role, MATCH_SERIAL, NULL, NULL, add };
	char			*v = NULL, *iss = NULL;
	int			 r;

	if ((r = role_name_check(role, err)) != 0 ||
	    (r = member_norm(match, value, issuer, &ma.match, &v, &iss,
	    err)) != 0)
		return r;
	ma.value = v;
	ma.issuer = iss;
	r = change(a, add ? "role.member_add" : "role.member_remove", actor,
	    do_member, &ma, err);
	free(v);
	free(iss);
	return r;
}

int
authz_member_add(struct authz *a, const char *role, const char *match,
    const char *value, const char *issuer, const char *actor,
    struct sp_err *err)
{
	return member_change(a, true, role, match, value, issuer, actor, err);
}

int
authz_member_remove(struct authz *a, const char *role, const char *match,
    const char *value, const char *issuer, const char *actor,
    struct sp_err *err)
{
	return member_change(a, false, role, match, value, issuer, actor, err);
}

/* role.rule_set, role.rule_remove */

struct rule_arg {
	const char	*role;
	const char	*path;
	bool		 allow;
	bool		 recursive;
	bool		 set;
};

static int
do_rule(struct authz *a, struct store_txn *tx, void *arg, json_t *details,
    struct sp_err *err)
{
	struct rule_arg	*ra = arg;
	int64_t		 id;
	int		 r;

	if ((r = role_id(a, tx, ra->role, &id, err)) != 0)
		return r;
	if (ra->set) {
		if ((r = rule_upsert(a, tx, ra->role, id, ra->path, ra->allow,
		    ra->recursive, "", err)) != 0)
			return r;
		json_object_set_new(details, "allow", json_boolean(ra->allow));
		json_object_set_new(details, "recursive",
		    json_boolean(ra->recursive));
	} else {
		if ((r = store_exec(a->st, tx, NULL, err, "DELETE FROM role_rules "
		    "WHERE role_id = ? AND path = ?", "is", id, ra->path)) < 0)
			return r;
		if (r == 0)
			return sp_err_set(err, SP_ERR_NOTFOUND, "role %s has "
			    "no rule for %s", ra->role, ra->path);
	}
	json_object_set_new(details, "role", json_string(ra->role));
	json_object_set_new(details, "path", json_string(ra->path));
	return 0;
}

int
authz_rule_set(struct authz *a, const char *role, const char *path,
    bool allow, bool recursive, const char *actor, struct sp_err *err)
{
	struct rule_arg	ra = { role, path, allow, recursive, true };
	int		r;

	if ((r = role_name_check(role, err)) != 0 ||
	    (r = path_check(path, err)) != 0)
		return r;
	return change(a, "role.rule_set", actor, do_rule, &ra, err);
}

int
authz_rule_remove(struct authz *a, const char *role, const char *path,
    const char *actor, struct sp_err *err)
{
	struct rule_arg	ra = { role, path, false, false, false };
	int		r;

	if ((r = role_name_check(role, err)) != 0 ||
	    (r = path_check(path, err)) != 0)
		return r;
	return change(a, "role.rule_remove", actor, do_rule, &ra, err);
}

/* --- reading roles ------------------------------------------------------- */

static const struct role *
cache_find(const struct cache *c, const char *name)
{
	size_t	lo = 0, hi = c->nroles;

	while (lo < hi) {
		size_t	mid = lo + (hi - lo) / 2;
		int	cmp = strcmp(name, c->roles[mid].name);

		if (cmp == 0)
			return &c->roles[mid];
		if (cmp < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

json_t *
authz_role_list(struct authz *a)
{
	json_t	*arr, *o;

	if ((arr = json_array()) == NULL)
		return NULL;
	pthread_rwlock_rdlock(&a->lk);
	for (size_t i = 0; i < a->cache->nroles; i++) {
		const struct role	*ro = &a->cache->roles[i];

		if ((o = json_pack("{s:s,s:I,s:I}", "name", ro->name,
		    "members", (json_int_t)ro->nmembers, "rules",
		    (json_int_t)ro->nrules)) == NULL ||
		    json_array_append_new(arr, o) != 0) {
			json_decref(arr);
			arr = NULL;
			break;
		}
	}
	pthread_rwlock_unlock(&a->lk);
	return arr;
}

/* Adds each name of the comma list s to the array a, once. */
static int
presets_add(json_t *a, const char *s)
{
	char	 name[AUTHZ_PRESET_MAX + 1];
	size_t	 n, i;

	for (; *s != '\0'; s += n + (s[n] == ',')) {
		n = strcspn(s, ",");
		if (n == 0 || n > AUTHZ_PRESET_MAX)
			continue;
		memcpy(name, s, n);
		name[n] = '\0';
		for (i = 0; i < json_array_size(a); i++)
			if (strcmp(json_string_value(json_array_get(a, i)),
			    name) == 0)
				break;
		if (i == json_array_size(a) &&
		    json_array_append_new(a, json_string(name)) != 0)
			return -1;
	}
	return 0;
}

static json_t *
role_json(const struct role *ro)
{
	json_t	*mem = json_array(), *rules = json_array();
	json_t	*pre = json_array();

	if (mem == NULL || rules == NULL || pre == NULL)
		goto fail;
	for (size_t i = 0; i < ro->nmembers; i++) {
		const struct member	*m = &ro->members[i];

		/* any_issuer: a dn member that matches from every CA. */
		if (json_array_append_new(mem, json_pack("{s:s,s:o,s:o,s:b}",
		    "match", authz_match_names[m->match], "value",
		    authz_jstr(m->value),
		    "issuer", authz_jstr(m->issuer), "any_issuer",
		    m->match == MATCH_DN && m->iname == NULL)) != 0)
			goto fail;
	}
	for (size_t i = 0; i < ro->nrules; i++) {
		const struct rule	*u = &ro->rules[i];

		if (json_array_append_new(rules, json_pack("{s:s,s:b,s:b,s:s}",
		    "path", u->path, "allow", u->allow, "recursive",
		    u->recursive, "preset", u->preset)) != 0)
			goto fail;
		if (presets_add(pre, u->preset) != 0)
			goto fail;
	}
	return json_pack("{s:s,s:o,s:o,s:o}", "name", ro->name, "members", mem,
	    "rules", rules, "presets", pre);
 fail:
	json_decref(mem);
	json_decref(rules);
	json_decref(pre);
	return NULL;
}

int
authz_role_show(struct authz *a, const char *name, json_t **out,
    struct sp_err *err)
{
	const struct role	*ro;
	int			 r = 0;

	*out = NULL;
	if (name == NULL)
		return sp_err_set(err, SP_ERR_INVALID, "role name is required");
	pthread_rwlock_rdlock(&a->lk);
	if ((ro = cache_find(a->cache, name)) == NULL)
		r = sp_err_set(err, SP_ERR_NOTFOUND, "no role \"%.64s\"", name);
	else if ((*out = role_json(ro)) == NULL)
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	pthread_rwlock_unlock(&a->lk);
	return r;
}

/* The preset named by s[0..n), or -1. */
static int
preset_find(const char *s, size_t n)
{
	for (size_t i = 0; i < NPRESETS; i++)
		if (strlen(presets[i].name) == n &&
		    strncmp(s, presets[i].name, n) == 0)
			return (int)i;
	return -1;
}

/*
 * The presets of the comma list s as a bit set (bit i: presets[i]), or 0
 * if s names an unknown preset, repeats one or is empty.
 */
static unsigned
preset_set(const char *s)
{
	unsigned	set = 0;
	size_t		n;
	int		i;

	if (s == NULL || *s == '\0')
		return 0;
	for (;; s += n + 1) {
		n = strcspn(s, ",");
		if ((i = preset_find(s, n)) < 0 || (set & (1u << i)) != 0)
			return 0;
		set |= 1u << i;
		if (s[n] == '\0')
			return set;
	}
}

bool
authz_preset_valid(const char *name)
{
	return preset_set(name) != 0;
}

/*
 * Inserts the union of the rules of the presets in set for role rid, each
 * with the list of the presets that name it.
 */
static int
preset_rules(struct authz *a, struct store_txn *tx, const char *rname,
    int64_t rid, unsigned set, struct sp_err *err)
{
	struct {
		const struct preset_rule	*u;
		char				 names[NPRESETS *
						    (AUTHZ_PRESET_MAX + 1)];
	}		 m[NPRESETS * 6];
	size_t		 nm = 0, j;
	int		 r;

	for (size_t p = 0; p < NPRESETS; p++) {
		if ((set & (1u << p)) == 0)
			continue;
		for (const struct preset_rule *u = presets[p].rules; u->path;
		    u++) {
			for (j = 0; j < nm; j++)
				if (strcmp(m[j].u->path, u->path) == 0)
					break;
			if (j == nm) {
				m[nm].u = u;
				m[nm++].names[0] = '\0';
			} else if (u->recursive)
				m[j].u = u;	/* the wider rule wins */
			if (m[j].names[0] != '\0')
				strcat(m[j].names, ",");
			strcat(m[j].names, presets[p].name);
		}
	}
	for (j = 0; j < nm; j++)
		if ((r = rule_upsert(a, tx, rname, rid, m[j].u->path, true,
		    m[j].u->recursive, m[j].names, err)) != 0)
			return r;
	return 0;
}

bool
authz_role_exists(struct authz *a, const char *name)
{
	bool	found;

	if (name == NULL || *name == '\0')
		return false;
	pthread_rwlock_rdlock(&a->lk);
	found = cache_find(a->cache, name) != NULL;
	pthread_rwlock_unlock(&a->lk);
	return found;
}

struct store *
authz_store(struct authz *a)
{
	return a->st;
}

/* --- giving a recorded certificate a role -------------------------------- */

struct grant_arg {
	const struct authz_grant_ops	*ops;
	void				*arg;
	const char			*new_role;
	const char			*preset;
	const char			*role;
	enum match			 match;
	const char			*rname;	/* out: the role given */
};

/* The member value the recorded certificate gets for match m. */
static int
grant_member(const struct authz_certid *ci, enum match m, char **v,
    char **iss, struct sp_err *err)
{
	struct sp_err	 e = { 0 };
	X509_NAME	*n = NULL;
	char		*cn = NULL;
	enum match	 mm;
	int		 r;

	*v = *iss = NULL;
	switch (m) {
	case MATCH_SERIAL:
		if (ci->serial[0] == '\0')
			return sp_err_set(err, SP_ERR_INVALID, "the "
			    "certificate's serial is too long to match on; "
			    "use match fingerprint");
		r = member_norm("serial", ci->serial, ci->issuer, &mm, v, iss,
		    &e);
		break;
	case MATCH_DN:
		r = member_norm("dn", ci->subject, ci->issuer, &mm, v, iss,
		    &e);
		break;
	case MATCH_CN:
		if (dn_parse(ci->subject, &n, &e) != 0 ||
		    (cn = authz_name_cn(n)) == NULL) {
			X509_NAME_free(n);
			return sp_err_set(err, SP_ERR_INVALID, "the "
			    "certificate's subject has no usable common name; "
			    "use another match");
		}
		r = member_norm("cn", cn, NULL, &mm, v, iss, &e);
		X509_NAME_free(n);
		OPENSSL_free(cn);
		break;
	case MATCH_FINGERPRINT:
		r = member_norm("fingerprint", ci->fingerprint, NULL, &mm, v,
		    iss, &e);
		break;
	default:
		return sp_err_set(err, SP_ERR_INTERNAL, "match type");
	}
	if (r != 0)
		return sp_err_set(err, r, "cannot match the certificate by %s: "
		    "%s", authz_match_names[m], e.msg);
	return 0;
}

static int
do_grant(struct authz *a, struct store_txn *tx, void *arg, json_t *details,
    struct sp_err *err)
{
	struct grant_arg	*ga = arg;
	struct authz_certid	 ci = { 0 };
	char			*v = NULL, *iss = NULL;
	int64_t			 rid;
	int			 r;

	if ((r = ga->ops->certid(ga->arg, a->st, tx, &ci, err)) != 0)
		goto out;
	if (ci.subject == NULL || ci.issuer == NULL || ci.serial == NULL ||
	    ci.fingerprint == NULL) {
		r = sp_err_set(err, SP_ERR_INTERNAL, "incomplete certificate "
		    "identity");
		goto out;
	}
	if ((r = grant_member(&ci, ga->match, &v, &iss, err)) != 0)
		goto out;
	if (ga->new_role != NULL) {
		ga->rname = ga->new_role;
		if ((r = role_insert(a, tx, ga->new_role, &rid, err)) != 0 ||
		    (r = preset_rules(a, tx, ga->new_role, rid,
		    preset_set(ga->preset), err)) != 0)
			goto out;
	} else {
		ga->rname = ga->role;
		if ((r = role_id(a, tx, ga->role, &rid, err)) != 0)
			goto out;
	}
	if ((r = member_insert(a, tx, ga->rname, rid, ga->match, v, iss,
	    err)) != 0)
		goto out;
	if (ga->ops->granted != NULL && (r = ga->ops->granted(ga->arg, a->st,
	    tx, ga->rname, details, err)) != 0)
		goto out;
	json_object_set_new(details, "role", json_string(ga->rname));
	json_object_set_new(details, "new_role",
	    json_boolean(ga->new_role != NULL));
	if (ga->new_role != NULL)
		json_object_set_new(details, "preset", json_string(ga->preset));
	json_object_set_new(details, "match",
	    json_string(authz_match_names[ga->match]));
	json_object_set_new(details, "value", authz_jstr(v));
	if (ga->match == MATCH_SERIAL)
		json_object_set_new(details, "issuer", authz_jstr(iss));
	json_object_set_new(details, "subject", authz_jstr(ci.subject));
	json_object_set_new(details, "fingerprint", authz_jstr(ci.fingerprint));
 out:
	if (ga->ops->certid_free != NULL)
		ga->ops->certid_free(ga->arg, &ci);
	free(v);
	free(iss);
	return r;
}

int
authz_grant(struct authz *a, const char *new_role, const char *preset,
    const char *role, const char *match, const char *event,
    const char *actor, const struct authz_grant_ops *ops, void *arg,
    json_t **out, struct sp_err *err)
{
	struct grant_arg	ga = { ops, arg, new_role, preset, role,
				    MATCH_SERIAL, NULL };
	int			r;

	*out = NULL;
	if ((new_role == NULL) == (role == NULL))
		return sp_err_set(err, SP_ERR_INVALID, "give exactly one of a "
		    "new role (to create) and an existing role");
	if ((r = role_name_check(new_role ? new_role : role, err)) != 0 ||
	    (r = authz_match_parse(match, &ga.match, err)) != 0)
		return r;
	if (new_role == NULL && preset != NULL)
		return sp_err_set(err, SP_ERR_INVALID, "rule presets apply to "
		    "a new role only; change an existing role's rules with "
		    "role rule set");
	if (new_role != NULL && preset == NULL)
		ga.preset = "ping";
	if (new_role != NULL && !authz_preset_valid(ga.preset))
		return sp_err_set(err, SP_ERR_INVALID, "unknown rule preset "
		    "\"%.64s\" (va, ra, renewal or ping, or a comma list of "
		    "them, each once)", ga.preset);
	if (ops == NULL || ops->certid == NULL)
		return sp_err_set(err, SP_ERR_INTERNAL, "no certificate to "
		    "grant a role to");
	if ((r = change(a, event, actor, do_grant, &ga, err)) != 0)
		return r;
	return authz_role_show(a, ga.rname, out, err);
}
