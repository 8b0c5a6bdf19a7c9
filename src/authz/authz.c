/*
 * The authorization check and the role cache it reads.
 *
 * The roles live in the store (tables roles, role_members, role_rules)
 * and in an immutable in-memory cache that authz_check() reads under a
 * read lock. A change (authz_roles.c) runs in one store transaction: the
 * change, its audit row, and the loading of a fresh cache from the rows
 * as they stand inside that transaction; after the commit the new cache
 * replaces the old one and the generation moves. Changes are serialised
 * by a mutex so two of them cannot install their caches in the wrong
 * order.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "authz/authz_int.h"
#include "crypto/dn.h"
#include "crypto/ids.h"
#include "util/log.h"
#include "util/util.h"

const char *const authz_match_names[MATCH__MAX] = {
	"serial", "dn", "cn", "fingerprint",
};

/* --- small helpers ------------------------------------------------------- */

void
authz_cache_free(struct cache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nroles; i++) {
		struct role	*ro = &c->roles[i];

		for (size_t j = 0; j < ro->nmembers; j++) {
			free(ro->members[j].value);
			free(ro->members[j].issuer);
			X509_NAME_free(ro->members[j].name);
			X509_NAME_free(ro->members[j].iname);
		}
		for (size_t j = 0; j < ro->nrules; j++) {
			free(ro->rules[j].path);
			free(ro->rules[j].preset);
		}
		free(ro->members);
		free(ro->rules);
	}
	free(c->roles);
	free(c);
}

/* Grows *arr (of *cap elements of size sz) to hold one more. */
static int
grow(void **arr, size_t *cap, size_t n, size_t sz)
{
	void	*p;
	size_t	 ncap;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 8;
	if ((p = reallocarray(*arr, ncap, sz)) == NULL)
		return SP_ERR_ALLOC;
	*arr = p;
	*cap = ncap;
	return 0;
}

int
authz_match_parse(const char *s, enum match *m, struct sp_err *err)
{
	if (s == NULL) {
		*m = MATCH_SERIAL;
		return 0;
	}
	for (int i = 0; i < MATCH__MAX; i++)
		if (strcmp(s, authz_match_names[i]) == 0) {
			*m = (enum match)i;
			return 0;
		}
	return sp_err_set(err, SP_ERR_INVALID, "unknown match type \"%.32s\" "
	    "(serial, dn, cn or fingerprint)", s);
}

bool
authz_role_name_valid(const char *name)
{
	return sp_name_valid(name, AUTHZ_ROLE_MAX);
}

/*
 * An access rule path: '/' then components of [A-Za-z0-9_.-] separated
 * by single '/', optionally ending in '/'. "." and ".." components are
 * refused: nothing resolves them, but a rule or a request that looks
 * like it climbs the tree would only confuse the operator.
 */
bool
authz_path_valid(const char *p)
{
	size_t	seg = 1, i;

	if (p == NULL || p[0] != '/')
		return false;
	for (i = 1; ; i++) {
		char	c = p[i];

		if (i > AUTHZ_PATH_MAX)
			return false;
		if (c == '/' || c == '\0') {
			size_t	len = i - seg;

			if (len == 0 && c == '/')
				return false;		/* "//" */
			if ((len == 1 && p[seg] == '.') ||
			    (len == 2 && p[seg] == '.' && p[seg + 1] == '.'))
				return false;
			if (c == '\0')
				return true;
			seg = i + 1;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return false;
	}
}

/* The certificate's serial in crypto/ids.h's form; "" if too long. */
void
authz_cert_serial(const X509 *x, char out[SERIAL_HEX_MAX])
{
	/* Too long: "", which matches no member. */
	if (id_serial_of(x, out) != 0)
		out[0] = '\0';
}

/* The certificate's fingerprint; "" (which matches no member) if none. */
static void
cert_fp(const X509 *x, char out[FP_HEX_LEN + 1])
{
	if (id_fingerprint_of(x, out) != 0)
		out[0] = '\0';
}

/*
 * UTF-8 of name's most specific commonName (the last in DER order, the
 * first in the RFC 4514 string), heap (OPENSSL_free); NULL if there is
 * none, it cannot be converted, or it holds a NUL byte (which would let
 * "a\0b" pass as "a").
 */
char *
authz_name_cn(const X509_NAME *name)
{
	const ASN1_STRING	*s;
	unsigned char		*u = NULL;
	int			 i = -1, last = -1, len;

	while ((i = X509_NAME_get_index_by_NID(name, NID_commonName, i)) >= 0)
		last = i;
	if (last < 0)
		return NULL;
	s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, last));
	if ((len = ASN1_STRING_to_UTF8(&u, s)) < 0) {
		ERR_clear_error();
		return NULL;
	}
	if (strlen((char *)u) != (size_t)len) {
		OPENSSL_free(u);
		return NULL;
	}
	return (char *)u;
}

/* --- loading the cache ------------------------------------------------- */

struct loader {
	struct cache	*c;
	size_t		 cur;	/* rows come in role name order */
	int		 r;
};

static int
load_role(const struct store_row *row, void *arg)
{
	struct loader	*l = arg;
	struct cache	*c = l->c;
	struct role	*ro;
	const char	*name = store_row_text(row, 1);

	if (!authz_role_name_valid(name)) {
		log_warnx("authz: ignoring role with a bad name in the store");
		return 0;
	}
	if (grow((void **)&c->roles, &c->croles, c->nroles,
	    sizeof(*c->roles)) != 0)
		return SP_ERR_ALLOC;
	ro = &c->roles[c->nroles++];
	memset(ro, 0, sizeof(*ro));
	ro->id = store_row_int(row, 0);
	snprintf(ro->name, sizeof(ro->name), "%s", name);
	return 0;
}

/* The role named name, moving the cursor forward; NULL if none. */
static struct role *
loader_role(struct loader *l, const char *name)
{
	while (l->cur < l->c->nroles &&
	    strcmp(l->c->roles[l->cur].name, name) < 0)
		l->cur++;
	if (l->cur == l->c->nroles || strcmp(l->c->roles[l->cur].name, name))
		return NULL;
	return &l->c->roles[l->cur];
}

static int
load_member(const struct store_row *row, void *arg)
{
	struct loader	*l = arg;
	struct role	*ro;
	struct member	 m = { 0 };
	struct sp_err	 e = { 0 };
	const char	*dn = NULL;

	if ((ro = loader_role(l, store_row_text(row, 0))) == NULL)
		return 0;
	if (authz_match_parse(store_row_text(row, 1), &m.match, &e) != 0) {
		log_warnx("authz: role %s: ignoring member: %s", ro->name,
		    e.msg);
		return 0;
	}
	if ((m.value = strdup(store_row_text(row, 2))) == NULL ||
	    (m.issuer = strdup(store_row_text(row, 3))) == NULL)
		goto oom;
	if (m.match == MATCH_SERIAL)
		dn = m.issuer;
	else if (m.match == MATCH_DN) {
		dn = m.value;
		if (m.issuer[0] != '\0' && (dn_parse(m.issuer, &m.iname,
		    &e) != 0 || i2d_X509_NAME(m.iname, NULL) <= 0)) {
			ERR_clear_error();
			log_warnx("authz: role %s: ignoring member with a bad "
			    "issuer DN: %s", ro->name, e.msg);
			free(m.value);
			free(m.issuer);
			X509_NAME_free(m.iname);
			return 0;
		}
	}
	if (dn != NULL) {
		/*
		 * Parse once here; encoding now also fills the canonical
		 * form X509_NAME_cmp() uses, so that concurrent checks
		 * never write to the name. A DN that does not parse can
		 * match nothing: skip the member (fail closed).
		 */
		if (dn_parse(dn, &m.name, &e) != 0 ||
		    i2d_X509_NAME(m.name, NULL) <= 0) {
			ERR_clear_error();
			log_warnx("authz: role %s: ignoring member with a bad "
			    "DN: %s", ro->name, e.msg);
			free(m.value);
			free(m.issuer);
			X509_NAME_free(m.name);
			X509_NAME_free(m.iname);
			return 0;
		}
	}
	if (grow((void **)&ro->members, &ro->cmembers, ro->nmembers,
	    sizeof(*ro->members)) != 0)
		goto oom;
	ro->members[ro->nmembers++] = m;
	l->c->uses[m.match] = true;
	return 0;
 oom:
	free(m.value);
	free(m.issuer);
	X509_NAME_free(m.name);
	X509_NAME_free(m.iname);
	return SP_ERR_ALLOC;
}

static int
load_rule(const struct store_row *row, void *arg)
{
	struct loader	*l = arg;
	struct role	*ro;
	struct rule	 u = { 0 };
	const char	*path = store_row_text(row, 1);

	if ((ro = loader_role(l, store_row_text(row, 0))) == NULL)
		return 0;
	if (!authz_path_valid(path)) {
		log_warnx("authz: role %s: ignoring a bad rule path", ro->name);
		return 0;
	}
	if ((u.path = strdup(path)) == NULL)
		return SP_ERR_ALLOC;
	u.len = strlen(u.path);
	u.allow = store_row_int(row, 2) != 0;
	u.recursive = store_row_int(row, 3) != 0;
	if ((u.preset = strdup(store_row_text(row, 4))) == NULL) {
		free(u.path);
		return SP_ERR_ALLOC;
	}
	if (grow((void **)&ro->rules, &ro->crules, ro->nrules,
	    sizeof(*ro->rules)) != 0) {
		free(u.path);
		free(u.preset);
		return SP_ERR_ALLOC;
	}
	ro->rules[ro->nrules++] = u;
	return 0;
}

/*
 * Reads every role into a new cache. Run inside a transaction so the
 * three queries see the same rows.
 */
int
authz_cache_load(struct authz *a, struct store_txn *tx, struct cache **out,
    struct sp_err *err)
{
	struct loader	l = { 0 };
	int		r;

	*out = NULL;
	if ((l.c = calloc(1, sizeof(*l.c))) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	if ((r = store_select(a->st, tx, load_role, &l, err,
	    "SELECT id, name FROM roles ORDER BY name", "")) != 0)
		goto out;
	l.cur = 0;
	if ((r = store_select(a->st, tx, load_member, &l, err,
	    "SELECT r.name, m.match, m.value, m.issuer FROM role_members m "
	    "JOIN roles r ON r.id = m.role_id "
	    "ORDER BY r.name, m.match, m.value, m.issuer", "")) != 0)
		goto out;
	l.cur = 0;
	if ((r = store_select(a->st, tx, load_rule, &l, err,
	    "SELECT r.name, u.path, u.allow, u.recursive, u.preset "
	    "FROM role_rules u "
	    "JOIN roles r ON r.id = u.role_id ORDER BY r.name, u.path",
	    "")) != 0)
		goto out;
	*out = l.c;
	l.c = NULL;
 out:
	if (r == SP_ERR_ALLOC)
		sp_err_set(err, r, "out of memory loading roles");
	authz_cache_free(l.c);
	return r;
}

void
authz_cache_install(struct authz *a, struct cache *c)
{
	struct cache	*old;

	pthread_rwlock_wrlock(&a->lk);
	old = a->cache;
	a->cache = c;
	pthread_rwlock_unlock(&a->lk);
	atomic_fetch_add(&a->gen, 1);
	authz_cache_free(old);
}

/* --- open / free ----------------------------------------------------- */

int
authz_open(struct store *st, struct authz **out, struct sp_err *err)
{
	struct store_txn	*tx = NULL;
	struct authz		*a = NULL;
	struct cache		*c = NULL;
	pthread_rwlockattr_t	 ra;
	int			 r;

	*out = NULL;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	a->st = st;
	atomic_init(&a->gen, 1);
	pthread_mutex_init(&a->wlk, NULL);
	pthread_rwlockattr_init(&ra);
	/* Checks are short and frequent; do not let them starve a change. */
	pthread_rwlockattr_setkind_np(&ra,
	    PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&a->lk, &ra);
	pthread_rwlockattr_destroy(&ra);
	if ((r = store_txn_begin(st, &tx, err)) != 0)
		goto out;
	if ((r = authz_cache_load(a, tx, &c, err)) != 0) {
		store_txn_rollback(tx);
		goto out;
	}
	if ((r = store_txn_commit(tx, err)) != 0)
		goto out;
	a->cache = c;
	c = NULL;
	*out = a;
	a = NULL;
 out:
	authz_cache_free(c);
	authz_free(a);
	return r;
}

void
authz_free(struct authz *a)
{
	if (a == NULL)
		return;
	authz_cache_free(a->cache);
	pthread_rwlock_destroy(&a->lk);
	pthread_mutex_destroy(&a->wlk);
	free(a);
}

uint64_t
authz_generation(struct authz *a)
{
	return atomic_load(&a->gen);
}

/* --- the check ---------------------------------------------------------- */

/* What members are compared with, computed once per check. */
struct ident {
	const X509_NAME	*issuer;
	const X509_NAME	*subject;
	char		 serial[SERIAL_HEX_MAX];
	char		 fp[FP_HEX_LEN + 1];
	char		*cn;		/* OPENSSL_free */
};

static void
ident_init(const struct cache *c, X509 *x, struct ident *id)
{
	memset(id, 0, sizeof(*id));
	id->issuer = X509_get_issuer_name(x);
	id->subject = X509_get_subject_name(x);
	if (c->uses[MATCH_SERIAL])
		authz_cert_serial(x, id->serial);
	if (c->uses[MATCH_FINGERPRINT])
		cert_fp(x, id->fp);
	if (c->uses[MATCH_CN])
		id->cn = authz_name_cn(id->subject);
}

static bool
member_matches(const struct member *m, const struct ident *id)
{
	switch (m->match) {
	case MATCH_SERIAL:
		/* Serials are unique per issuer only: both must agree. */
		return id->serial[0] != '\0' &&
		    strcmp(id->serial, m->value) == 0 &&
		    X509_NAME_cmp(id->issuer, m->name) == 0;
	case MATCH_DN:
		return X509_NAME_cmp(id->subject, m->name) == 0 &&
		    (m->iname == NULL ||
		    X509_NAME_cmp(id->issuer, m->iname) == 0);
	case MATCH_CN:
		return id->cn != NULL && strcmp(id->cn, m->value) == 0;
	case MATCH_FINGERPRINT:
		return id->fp[0] != '\0' && strcmp(id->fp, m->value) == 0;
	default:
		return false;
	}
}

static bool
role_has(const struct role *ro, const struct ident *id)
{
	for (size_t i = 0; i < ro->nmembers; i++)
		if (member_matches(&ro->members[i], id))
			return true;
	return false;
}

/*
 * R matches P if R == P, or if R is recursive and P continues R at a
 * component boundary: "/ca/Foo" covers "/ca/Foo/x", not "/ca/FooBar".
 */
static bool
rule_matches(const struct rule *u, const char *p, size_t plen)
{
	if (u->len == plen && memcmp(u->path, p, plen) == 0)
		return true;
	if (!u->recursive || plen <= u->len || memcmp(u->path, p, u->len) != 0)
		return false;
	return u->path[u->len - 1] == '/' || p[u->len] == '/';
}

/*
 * True if ro allows p: an allow rule matches and no deny rule does. When
 * false, *deny is the deny rule that matched, or NULL if no rule allowed.
 */
static bool
role_allows(const struct role *ro, const char *p, const struct rule **deny)
{
	size_t	plen = strlen(p);
	bool	allow = false;

	*deny = NULL;
	for (size_t i = 0; i < ro->nrules; i++) {
		const struct rule	*u = &ro->rules[i];

		if (!rule_matches(u, p, plen))
			continue;
		if (!u->allow) {
			*deny = u;	/* deny wins */
			return false;
		}
		allow = true;
	}
	return allow;
}

/*
 * The check of one certificate against cache c (read-locked by the
 * caller); paths were validated. As authz_check() says.
 */
static int
check_locked(const struct cache *c, X509 *cert,
    const char *const *paths, size_t npaths, char role[AUTHZ_ROLE_MAX + 1],
    struct sp_err *err)
{
	struct ident		 id = { 0 };
	size_t			*matched = NULL, nm = 0;
	int			 r = SP_ERR_DENIED;

	if (role != NULL)
		role[0] = '\0';
	if (cert == NULL)
		return sp_err_set(err, SP_ERR_DENIED, "no client certificate");
	ident_init(c, cert, &id);
	if (c->nroles > 0 &&
	    (matched = calloc(c->nroles, sizeof(*matched))) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < c->nroles; i++)
		if (role_has(&c->roles[i], &id))
			matched[nm++] = i;
	if (nm == 0) {
		r = sp_err_set(err, SP_ERR_DENIED, "no role matches this "
		    "certificate");
		goto out;
	}
	if (role != NULL)
		snprintf(role, AUTHZ_ROLE_MAX + 1, "%s",
		    c->roles[matched[0]].name);
	for (size_t i = 0; i < npaths; i++) {
		const struct rule	*deny = NULL, *d;
		char			 more[64] = "";
		bool			 ok = false;

		/* Any matching role may allow it. */
		for (size_t j = 0; j < nm && !ok; j++) {
			ok = role_allows(&c->roles[matched[j]], paths[i], &d);
			if (j == 0)
				deny = d;
		}
		if (ok)
			continue;
		if (nm > 1)
			snprintf(more, sizeof(more), " (%zu roles match, none "
			    "allows it)", nm);
		if (deny != NULL)
			r = sp_err_set(err, SP_ERR_DENIED, "role %s: denied by "
			    "rule %s for %s%s", c->roles[matched[0]].name,
			    deny->path, paths[i], more);
		else
			r = sp_err_set(err, SP_ERR_DENIED, "role %s: no rule "
			    "allows %s%s", c->roles[matched[0]].name,
			    paths[i], more);
		goto out;
	}
	r = 0;
 out:
	OPENSSL_free(id.cn);
	free(matched);
	return r;
}

static int
paths_check(const char *const *paths, size_t npaths, struct sp_err *err)
{
	if (npaths == 0 || paths == NULL)
		return sp_err_set(err, SP_ERR_DENIED, "no access rule to "
		    "check");
	for (size_t i = 0; i < npaths; i++)
		if (!authz_path_valid(paths[i]))
			return sp_err_set(err, SP_ERR_DENIED, "malformed "
			    "access rule path \"%.64s\"",
			    paths[i] ? paths[i] : "");
	return 0;
}

int
authz_check(struct authz *a, X509 *cert, const char *const *paths,
    size_t npaths, char role[AUTHZ_ROLE_MAX + 1], struct sp_err *err)
{
	int	r;

	if (role != NULL)
		role[0] = '\0';
	if (cert == NULL)
		return sp_err_set(err, SP_ERR_DENIED, "no client certificate");
	if ((r = paths_check(paths, npaths, err)) != 0)
		return r;
	pthread_rwlock_rdlock(&a->lk);
	r = check_locked(a->cache, cert, paths, npaths, role, err);
	pthread_rwlock_unlock(&a->lk);
	return r;
}

/* --- two principals ---------------------------------------------------- */

static void
principal_fill(struct authz_decision_principal *dp,
    const struct authz_principal *pr, const char *dflt)
{
	char	*s;

	snprintf(dp->label, sizeof(dp->label), "%s",
	    pr->label != NULL && *pr->label != '\0' ? pr->label : dflt);
	dp->present = true;
	if (pr->cert == NULL)
		return;
	if ((s = dn_print(X509_get_subject_name(pr->cert))) != NULL) {
		/* Cut on a character boundary: it goes into JSON. */
		snprintf(dp->subject, sizeof(dp->subject), "%s", s);
		sp_utf8_trunc(dp->subject, strlen(dp->subject));
		sp_utf8_clean(dp->subject);
		free(s);
	}
	authz_cert_serial(pr->cert, dp->serial);
	cert_fp(pr->cert, dp->fingerprint);
}

int
authz_check2(struct authz *a, const struct authz_principal *first,
    const struct authz_principal *second, const char *const *paths,
    size_t npaths, struct authz_decision *d, struct sp_err *err)
{
	struct authz_decision	 local;
	struct sp_err		 e1 = { 0 }, e2 = { 0 }, e = { 0 };
	int			 r, r1, r2 = 0;

	if (d == NULL)
		d = &local;
	memset(d, 0, sizeof(*d));
	d->npaths = paths != NULL ? npaths : 0;
	for (size_t i = 0; i < d->npaths && i < AUTHZ_DECISION_PATHS; i++)
		snprintf(d->paths[i], sizeof(d->paths[i]), "%s",
		    paths[i] != NULL ? paths[i] : "");
	if (first == NULL) {
		r = sp_err_set(&e, SP_ERR_DENIED, "no principal to check");
		goto out;
	}
	principal_fill(&d->p[0], first, "principal");
	if (second != NULL)
		principal_fill(&d->p[1], second, "second principal");
	if (first->cert == NULL && second == NULL) {
		/* As authz_check() answers. */
		r = sp_err_set(&e, SP_ERR_DENIED, "no client certificate");
		goto out;
	}
	if ((r = paths_check(paths, npaths, &e)) != 0)
		goto out;
	/* Both against the same roles: one read lock, one generation. */
	pthread_rwlock_rdlock(&a->lk);
	d->generation = atomic_load(&a->gen);
	r1 = check_locked(a->cache, first->cert, paths, npaths,
	    d->p[0].role, &e1);
	if (second != NULL)
		r2 = check_locked(a->cache, second->cert, paths, npaths,
		    d->p[1].role, &e2);
	pthread_rwlock_unlock(&a->lk);
	d->p[0].allowed = r1 == 0;
	d->p[1].allowed = second != NULL && r2 == 0;
	/*
	 * Deny wins: allowed only if every principal given is allowed. The
	 * reason is the first principal's if it was refused, so a single
	 * principal reads exactly as authz_check() says it.
	 */
	if (r1 != 0 && second == NULL)
		r = sp_err_set(&e, r1, "%s", e1.msg);
	else if (r1 != 0)
		r = sp_err_set(&e, r1, "%s: %s", d->p[0].label, e1.msg);
	else if (r2 != 0)
		r = sp_err_set(&e, r2, "%s: %s", d->p[1].label, e2.msg);
	else
		r = 0;
 out:
	d->allowed = r == 0;
	if (r != 0) {
		snprintf(d->reason, sizeof(d->reason), "%s", e.msg);
		sp_utf8_trunc(d->reason, strlen(d->reason));
		sp_err_set(err, r, "%s", e.msg);
	}
	return r;
}

json_t *
authz_decision_json(const struct authz_decision *d)
{
	json_t	*o = NULL, *paths = NULL, *prs = NULL, *pj;

	if ((o = json_object()) == NULL || (paths = json_array()) == NULL ||
	    (prs = json_array()) == NULL)
		goto fail;
	for (size_t i = 0; i < d->npaths && i < AUTHZ_DECISION_PATHS; i++)
		if (json_array_append_new(paths, json_string(d->paths[i])) != 0)
			goto fail;
	for (size_t i = 0; i < 2; i++) {
		const struct authz_decision_principal *dp = &d->p[i];

		if (!dp->present)
			continue;
		if ((pj = json_pack("{s:s,s:s,s:s,s:s,s:s,s:b}", "label",
		    dp->label, "subject", dp->subject, "serial", dp->serial,
		    "fingerprint", dp->fingerprint, "role", dp->role,
		    "allowed", dp->allowed)) == NULL ||
		    json_array_append_new(prs, pj) != 0)
			goto fail;
	}
	if (json_object_set_new(o, "allowed", json_boolean(d->allowed)) != 0 ||
	    json_object_set_new(o, "paths", paths) != 0 ||
	    (paths = NULL, json_object_set_new(o, "principals", prs)) != 0)
		goto fail;
	prs = NULL;
	if (d->npaths > AUTHZ_DECISION_PATHS &&
	    json_object_set_new(o, "more_paths", json_integer((json_int_t)
	    (d->npaths - AUTHZ_DECISION_PATHS))) != 0)
		goto fail;
	if (!d->allowed &&
	    json_object_set_new(o, "reason", json_string(d->reason)) != 0)
		goto fail;
	return o;
 fail:
	json_decref(paths);
	json_decref(prs);
	json_decref(o);
	return NULL;
}

int
authz_decision_audit(struct authz *a, const char *event, const char *actor,
    const struct authz_decision *d, struct sp_err *err)
{
	json_t	*o;
	char	*s = NULL;
	int	 r;

	if ((o = authz_decision_json(d)) == NULL ||
	    (s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		json_decref(o);
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	}
	json_decref(o);
	r = store_audit_append(a->st, NULL, event, actor ? actor : "", s, err);
	free(s);
	return r;
}

void
authz_rules_init(struct authz_rules *ru)
{
	memset(ru, 0, sizeof(*ru));
}

int
authz_rules_add(struct authz_rules *ru, const char *prefix, const char *name,
    struct sp_err *err)
{
	char	*p;
	int	 n;

	if (ru->n == AUTHZ_RULES_MAX)
		return sp_err_set(err, SP_ERR_LIMIT, "at most %d access rules "
		    "per request", AUTHZ_RULES_MAX);
	if (prefix == NULL)
		return sp_err_set(err, SP_ERR_INVALID, "no access rule");
	p = ru->buf[ru->n];
	/*
	 * A name taken from a request is one path component: a '/' in it
	 * would reach another rule ("/ca/x/../y"), so it is refused, as
	 * is anything authz_check() would refuse as a path.
	 */
	if (name != NULL && (*name == '\0' || strchr(name, '/') != NULL))
		return sp_err_set(err, SP_ERR_INVALID, "name \"%.64s\" cannot "
		    "be an access rule component", name);
	if (name != NULL)
		n = snprintf(p, sizeof(ru->buf[0]), "%s%s%s", prefix,
		    prefix[0] != '\0' && prefix[strlen(prefix) - 1] == '/' ?
		    "" : "/", name);
	else
		n = snprintf(p, sizeof(ru->buf[0]), "%s", prefix);
	if (n < 0 || (size_t)n >= sizeof(ru->buf[0]) || !authz_path_valid(p)) {
		p[0] = '\0';
		return sp_err_set(err, SP_ERR_INVALID, "\"%.64s%s%.64s\" is "
		    "not an access rule path", prefix, name ? "/" : "",
		    name ? name : "");
	}
	ru->paths[ru->n++] = p;
	return 0;
}
