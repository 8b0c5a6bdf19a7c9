/*
 * Roles, members, access rules and the incoming connections list.
 *
 * The roles live in the store (tables roles, role_members, role_rules)
 * and in an immutable in-memory cache that authz_check() reads under a
 * read lock. A change runs in one store transaction: the change, its
 * audit row, and the loading of a fresh cache from the rows as they stand
 * inside that transaction; after the commit the new cache replaces the
 * old one and the generation moves. Changes are serialised by a mutex so
 * two of them cannot install their caches in the wrong order.
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

#include "authz/authz.h"
#include "crypto/dn.h"
#include "util/log.h"
#include "util/util.h"

/* Serials longer than this (RFC 5280 allows 20 octets) match by nothing. */
#define SERIAL_MAX_BYTES	64
#define SERIAL_HEX_MAX		(2 * SERIAL_MAX_BYTES + 2)	/* '-', NUL */
#define FP_HEX_LEN		64

enum match {
	MATCH_SERIAL,
	MATCH_DN,
	MATCH_CN,
	MATCH_FINGERPRINT,
	MATCH__MAX
};

static const char *const match_names[MATCH__MAX] = {
	"serial", "dn", "cn", "fingerprint",
};

struct member {
	enum match	 match;
	char		*value;
	char		*issuer;	/* serial, dn: "" for a dn of any issuer */
	X509_NAME	*name;		/* issuer (serial) or subject (dn) */
	X509_NAME	*iname;		/* dn: the pinned issuer, or NULL */
};

struct rule {
	char	*path;
	size_t	 len;
	bool	 allow;
	bool	 recursive;
};

struct role {
	int64_t		 id;
	char		 name[AUTHZ_ROLE_MAX + 1];
	struct member	*members;
	size_t		 nmembers, cmembers;
	struct rule	*rules;
	size_t		 nrules, crules;
};

/* Immutable once installed. */
struct cache {
	struct role	*roles;		/* sorted by name (strcmp) */
	size_t		 nroles, croles;
	bool		 uses[MATCH__MAX];
};

struct authz {
	struct store		*st;
	EVP_MD			*sha256;
	pthread_mutex_t		 wlk;	/* serialises changes */
	pthread_rwlock_t	 lk;	/* guards cache */
	struct cache		*cache;
	_Atomic uint64_t	 gen;
	_Atomic uint64_t	 nrecorded;	/* incoming records, for pruning */
	_Atomic int64_t		 incoming_max;	/* rows kept */
};

/* Rule presets for authz_incoming_authorize(). */
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

/* --- small helpers ------------------------------------------------------- */

static void
cache_free(struct cache *c)
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
		for (size_t j = 0; j < ro->nrules; j++)
			free(ro->rules[j].path);
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

static int
match_parse(const char *s, enum match *m, struct sp_err *err)
{
	if (s == NULL) {
		*m = MATCH_SERIAL;
		return 0;
	}
	for (int i = 0; i < MATCH__MAX; i++)
		if (strcmp(s, match_names[i]) == 0) {
			*m = (enum match)i;
			return 0;
		}
	return sp_err_set(err, SP_ERR_INVALID, "unknown match type \"%.32s\" "
	    "(serial, dn, cn or fingerprint)", s);
}

static bool
role_name_valid(const char *name)
{
	return sp_name_valid(name, AUTHZ_ROLE_MAX);
}

static int
role_name_check(const char *name, struct sp_err *err)
{
	if (name == NULL || !role_name_valid(name))
		return sp_err_set(err, SP_ERR_INVALID, "role name must be "
		    "1..%d characters of [A-Za-z0-9_.-]", AUTHZ_ROLE_MAX);
	return 0;
}

/*
 * An access rule path: '/' then components of [A-Za-z0-9_.-] separated
 * by single '/', optionally ending in '/'. "." and ".." components are
 * refused: nothing resolves them, but a rule or a request that looks
 * like it climbs the tree would only confuse the operator.
 */
static bool
path_valid(const char *p)
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

static int
path_check(const char *p, struct sp_err *err)
{
	if (!path_valid(p))
		return sp_err_set(err, SP_ERR_INVALID, "access rule path "
		    "\"%.64s\" must start with '/' and hold at most %d "
		    "characters of [A-Za-z0-9_./-], without empty, \".\" or "
		    "\"..\" components", p ? p : "", AUTHZ_PATH_MAX);
	return 0;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Serial as an operator may type it ("0x0A:1b", "-5") into the form
 * cert_serial() gives: lower-case hex of the magnitude, whole bytes, no
 * leading zero bytes, '-' first if negative. *out is heap.
 */
static int
serial_norm(const char *in, char **out, struct sp_err *err)
{
	char	 hex[2 * SERIAL_MAX_BYTES + 1], *s, *h;
	size_t	 n = 0;
	bool	 neg = false;

	*out = NULL;
	if (*in == '-') {
		neg = true;
		in++;
	}
	if (in[0] == '0' && (in[1] == 'x' || in[1] == 'X'))
		in += 2;
	for (; *in != '\0'; in++) {
		int	v;

		if (*in == ':')
			continue;
		if ((v = hexval(*in)) < 0)
			return sp_err_set(err, SP_ERR_INVALID, "serial must be "
			    "hex digits (':' separators allowed)");
		if (n == 2 * SERIAL_MAX_BYTES)
			return sp_err_set(err, SP_ERR_INVALID, "serial longer "
			    "than %d bytes", SERIAL_MAX_BYTES);
		hex[n++] = "0123456789abcdef"[v];
	}
	if (n == 0)
		return sp_err_set(err, SP_ERR_INVALID, "serial is empty");
	hex[n] = '\0';
	h = hex;
	if (n % 2 == 1) {
		memmove(hex + 1, hex, n + 1);
		hex[0] = '0';
		n++;
	}
	while (n > 2 && h[0] == '0' && h[1] == '0') {
		h += 2;
		n -= 2;
	}
	if (n == 2 && h[0] == '0' && h[1] == '0')
		neg = false;
	if ((s = malloc(n + 2)) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	snprintf(s, n + 2, "%s%s", neg ? "-" : "", h);
	*out = s;
	return 0;
}

/* The certificate's serial in serial_norm()'s form; "" if too long. */
static void
cert_serial(const X509 *x, char out[SERIAL_HEX_MAX])
{
	const ASN1_INTEGER	*ai = X509_get0_serialNumber(x);
	const unsigned char	*d = ASN1_STRING_get0_data(ai);
	int			 n = ASN1_STRING_length(ai);
	char			*p = out;

	out[0] = '\0';
	while (n > 1 && d[0] == 0) {
		d++;
		n--;
	}
	if (n > SERIAL_MAX_BYTES)
		return;
	if (n <= 0) {
		snprintf(out, SERIAL_HEX_MAX, "00");
		return;
	}
	if (ASN1_STRING_type(ai) == V_ASN1_NEG_INTEGER)
		*p++ = '-';
	sp_hex_encode(d, (size_t)n, p);
}

/* SHA-256 fingerprint: 64 hex digits, ':' separators allowed. */
static int
fp_norm(const char *in, char **out, struct sp_err *err)
{
	char	hex[FP_HEX_LEN + 1];
	size_t	n = 0;

	*out = NULL;
	for (; *in != '\0'; in++) {
		int	v;

		if (*in == ':')
			continue;
		if ((v = hexval(*in)) < 0 || n == FP_HEX_LEN)
			return sp_err_set(err, SP_ERR_INVALID, "fingerprint "
			    "must be the SHA-256 of the certificate: %d hex "
			    "digits", FP_HEX_LEN);
		hex[n++] = "0123456789abcdef"[v];
	}
	if (n != FP_HEX_LEN)
		return sp_err_set(err, SP_ERR_INVALID, "fingerprint must be "
		    "the SHA-256 of the certificate: %d hex digits",
		    FP_HEX_LEN);
	hex[n] = '\0';
	if ((*out = strdup(hex)) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	return 0;
}

static int
cert_fp(struct authz *a, const X509 *x, char out[FP_HEX_LEN + 1])
{
	unsigned char	md[EVP_MAX_MD_SIZE];
	unsigned int	len = 0;

	if (!X509_digest(x, a->sha256, md, &len) || len != FP_HEX_LEN / 2) {
		ERR_clear_error();
		out[0] = '\0';
		return SP_ERR_CRYPTO;
	}
	sp_hex_encode(md, len, out);
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
 * UTF-8 of name's most specific commonName (the last in DER order, the
 * first in the RFC 4514 string), heap (OPENSSL_free); NULL if there is
 * none, it cannot be converted, or it holds a NUL byte (which would let
 * "a\0b" pass as "a").
 */
static char *
name_cn(const X509_NAME *name)
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
	if ((r = match_parse(match, m, err)) != 0)
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

/* A JSON string even for bytes that are not UTF-8 (replaced by '?'). */
static json_t *
jstr(const char *s)
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

	if (!role_name_valid(name)) {
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
	if (match_parse(store_row_text(row, 1), &m.match, &e) != 0) {
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
	if (!path_valid(path)) {
		log_warnx("authz: role %s: ignoring a bad rule path", ro->name);
		return 0;
	}
	if ((u.path = strdup(path)) == NULL)
		return SP_ERR_ALLOC;
	u.len = strlen(u.path);
	u.allow = store_row_int(row, 2) != 0;
	u.recursive = store_row_int(row, 3) != 0;
	if (grow((void **)&ro->rules, &ro->crules, ro->nrules,
	    sizeof(*ro->rules)) != 0) {
		free(u.path);
		return SP_ERR_ALLOC;
	}
	ro->rules[ro->nrules++] = u;
	return 0;
}

/*
 * Reads every role into a new cache. Run inside a transaction so the
 * three queries see the same rows.
 */
static int
cache_load(struct authz *a, struct store_txn *tx, struct cache **out,
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
	    "SELECT r.name, u.path, u.allow, u.recursive FROM role_rules u "
	    "JOIN roles r ON r.id = u.role_id ORDER BY r.name, u.path",
	    "")) != 0)
		goto out;
	*out = l.c;
	l.c = NULL;
 out:
	if (r == SP_ERR_ALLOC)
		sp_err_set(err, r, "out of memory loading roles");
	cache_free(l.c);
	return r;
}

/* Installs c (taken) and moves the generation. */
static void
cache_install(struct authz *a, struct cache *c)
{
	struct cache	*old;

	pthread_rwlock_wrlock(&a->lk);
	old = a->cache;
	a->cache = c;
	pthread_rwlock_unlock(&a->lk);
	atomic_fetch_add(&a->gen, 1);
	cache_free(old);
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
	atomic_init(&a->incoming_max, AUTHZ_INCOMING_MAX);
	pthread_mutex_init(&a->wlk, NULL);
	pthread_rwlockattr_init(&ra);
	/* Checks are short and frequent; do not let them starve a change. */
	pthread_rwlockattr_setkind_np(&ra,
	    PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&a->lk, &ra);
	pthread_rwlockattr_destroy(&ra);
	if ((a->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL) {
		r = sp_err_ossl(err, SP_ERR_CRYPTO, "EVP_MD_fetch SHA256");
		goto out;
	}
	if ((r = store_txn_begin(st, &tx, err)) != 0)
		goto out;
	if ((r = cache_load(a, tx, &c, err)) != 0) {
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
	cache_free(c);
	authz_free(a);
	return r;
}

void
authz_free(struct authz *a)
{
	if (a == NULL)
		return;
	cache_free(a->cache);
	EVP_MD_free(a->sha256);
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
ident_init(struct authz *a, const struct cache *c, X509 *x, struct ident *id)
{
	memset(id, 0, sizeof(*id));
	id->issuer = X509_get_issuer_name(x);
	id->subject = X509_get_subject_name(x);
	if (c->uses[MATCH_SERIAL])
		cert_serial(x, id->serial);
	if (c->uses[MATCH_FINGERPRINT])
		(void)cert_fp(a, x, id->fp);
	if (c->uses[MATCH_CN])
		id->cn = name_cn(id->subject);
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

int
authz_check(struct authz *a, X509 *cert, const char *const *paths,
    size_t npaths, char role[AUTHZ_ROLE_MAX + 1], struct sp_err *err)
{
	const struct cache	*c;
	struct ident		 id = { 0 };
	size_t			*matched = NULL, nm = 0;
	int			 r = SP_ERR_DENIED;

	if (role != NULL)
		role[0] = '\0';
	if (cert == NULL)
		return sp_err_set(err, SP_ERR_DENIED, "no client certificate");
	if (npaths == 0 || paths == NULL)
		return sp_err_set(err, SP_ERR_DENIED, "no access rule to "
		    "check");
	for (size_t i = 0; i < npaths; i++)
		if (!path_valid(paths[i]))
			return sp_err_set(err, SP_ERR_DENIED, "malformed "
			    "access rule path \"%.64s\"",
			    paths[i] ? paths[i] : "");

	pthread_rwlock_rdlock(&a->lk);
	c = a->cache;
	ident_init(a, c, cert, &id);
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
	pthread_rwlock_unlock(&a->lk);
	OPENSSL_free(id.cn);
	free(matched);
	return r;
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
	    err)) != 0 || (r = cache_load(a, tx, &nc, err)) != 0)
		goto out;
	intxn = false;
	if ((r = store_txn_commit(tx, err)) != 0)
		goto out;
	cache_install(a, nc);
	nc = NULL;
	log_info("authz: %s by %s: %s", event, actor ? actor : "", d);
 out:
	if (intxn)
		store_txn_rollback(tx);
	pthread_mutex_unlock(&a->wlk);
	cache_free(nc);
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
	    match_names[m], value, issuer);
	if (r == SP_ERR_EXISTS)
		return sp_err_set(err, r, "role %s already has this member "
		    "(%s %s)", rname, match_names[m], value);
	if (r < 0)
		return sp_err_set(err, r, "%s", e.msg);
	return 0;
}

static int
rule_upsert(struct authz *a, struct store_txn *tx, const char *rname,
    int64_t rid, const char *path, bool allow, bool recursive,
    struct sp_err *err)
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
	    "path, allow, recursive) VALUES (?, ?, ?, ?) "
	    "ON CONFLICT (role_id, path) DO UPDATE SET "
	    "allow = excluded.allow, recursive = excluded.recursive", "isii",
	    rid, path, (int64_t)allow, (int64_t)recursive);
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
	    (r = store_exec(a->st, tx, NULL, err, "DELETE FROM roles WHERE id = ?",
	    "i", id)) < 0 ||
	    /* Incoming rows must not show a role that is gone. */
	    (r = store_exec(a->st, tx, NULL, err, "UPDATE incoming SET role = '' "
	    "WHERE role = ?", "s", name)) < 0)
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
		    match_names[ma->match], ma->value, ma->issuer)) < 0)
			return r;
		if (r == 0)
			return sp_err_set(err, SP_ERR_NOTFOUND, "role %s has "
			    "no such member (%s %s)", ma->role,
			    match_names[ma->match], ma->value);
	}
	json_object_set_new(details, "role", json_string(ma->role));
	json_object_set_new(details, "match",
	    json_string(match_names[ma->match]));
	json_object_set_new(details, "value", jstr(ma->value));
	if (ma->match == MATCH_SERIAL)
		json_object_set_new(details, "issuer", jstr(ma->issuer));
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
		    ra->recursive, err)) != 0)
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

static json_t *
role_json(const struct role *ro)
{
	json_t	*mem = json_array(), *rules = json_array();

	if (mem == NULL || rules == NULL)
		goto fail;
	for (size_t i = 0; i < ro->nmembers; i++) {
		const struct member	*m = &ro->members[i];

		/* any_issuer: a dn member that matches from every CA. */
		if (json_array_append_new(mem, json_pack("{s:s,s:o,s:o,s:b}",
		    "match", match_names[m->match], "value", jstr(m->value),
		    "issuer", jstr(m->issuer), "any_issuer",
		    m->match == MATCH_DN && m->iname == NULL)) != 0)
			goto fail;
	}
	for (size_t i = 0; i < ro->nrules; i++) {
		const struct rule	*u = &ro->rules[i];

		if (json_array_append_new(rules, json_pack("{s:s,s:b,s:b}",
		    "path", u->path, "allow", u->allow, "recursive",
		    u->recursive)) != 0)
			goto fail;
	}
	return json_pack("{s:s,s:o,s:o}", "name", ro->name, "members", mem,
	    "rules", rules);
 fail:
	json_decref(mem);
	json_decref(rules);
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

bool
authz_preset_valid(const char *name)
{
	for (size_t i = 0; name != NULL && i < NPRESETS; i++)
		if (strcmp(name, presets[i].name) == 0)
			return true;
	return false;
}

/* --- incoming connections ------------------------------------------------ */

#define INCOMING_PRUNE_EVERY	16	/* records between two cap checks */

/*
 * Deletes the least recently seen rows beyond max, in the caller's
 * transaction if one is open; the count goes to the log and adds up in
 * the "incoming_dropped" setting.
 */
static int
incoming_prune(struct authz *a, struct store_txn *tx, int64_t max,
    struct sp_err *err)
{
	char	num[24];
	int	n, r;

	n = store_exec(a->st, tx, NULL, err, "DELETE FROM incoming WHERE id IN "
	    "(SELECT id FROM incoming ORDER BY last_seen, id LIMIT "
	    "(SELECT CASE WHEN count(*) > ? THEN count(*) - ? ELSE 0 END "
	    "FROM incoming))", "ii", max, max);
	if (n <= 0)
		return n;
	snprintf(num, sizeof(num), "%d", n);
	if ((r = store_exec(a->st, tx, NULL, err, "INSERT INTO settings (key, "
	    "value) VALUES ('authz.incoming_dropped', ?) ON CONFLICT (key) DO "
	    "UPDATE SET value = CAST(CAST(settings.value AS BIGINT) + "
	    "CAST(excluded.value AS BIGINT) AS TEXT)", "s", num)) < 0)
		return r;
	log_info("peer: incoming-connections list over %lld rows: dropped "
	    "the %d least recently seen", (long long)max, n);
	return 0;
}

void
authz_set_incoming_max(struct authz *a, int64_t max)
{
	a->incoming_max = max > 0 ? max : AUTHZ_INCOMING_MAX;
}

int
authz_incoming_record(struct authz *a, struct store_txn *tx, X509 *cert,
    const char *address, const char *role, struct sp_err *err)
{
	char	*subject = NULL, *issuer = NULL;
	char	 serial[SERIAL_HEX_MAX], fp[FP_HEX_LEN + 1];
	int64_t	 now = (int64_t)sp_now();
	int	 r;

	if (cert == NULL)
		return sp_err_set(err, SP_ERR_INVALID, "no certificate");
	if (address == NULL)
		address = "";
	if (role == NULL)
		role = "";
	if (strlen(address) > AUTHZ_ADDRESS_MAX)
		return sp_err_set(err, SP_ERR_INVALID, "address longer than %d "
		    "characters", AUTHZ_ADDRESS_MAX);
	if (*role != '\0' && !role_name_valid(role))
		return sp_err_set(err, SP_ERR_INVALID, "bad role name");
	if ((r = cert_fp(a, cert, fp)) != 0)
		return sp_err_set(err, r, "certificate fingerprint");
	cert_serial(cert, serial);
	if ((subject = dn_print(X509_get_subject_name(cert))) == NULL ||
	    (issuer = dn_print(X509_get_issuer_name(cert))) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}
	/* One statement: this runs for every verified peer handshake. */
	r = store_exec(a->st, tx, NULL, err, "INSERT INTO incoming (fingerprint, "
	    "subject, issuer, serial, address, first_seen, last_seen, count, "
	    "role) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?) "
	    "ON CONFLICT (fingerprint) DO UPDATE SET "
	    "address = excluded.address, last_seen = excluded.last_seen, "
	    "count = incoming.count + 1, role = excluded.role", "sssssiis",
	    fp, subject, issuer, serial, address, now, now, role);
	if (r > 0)
		r = 0;
	/* Any holder of a trusted certificate adds a row: keep it bounded. */
	if (r == 0 && a->nrecorded++ % INCOMING_PRUNE_EVERY == 0)
		r = incoming_prune(a, tx, a->incoming_max, err);
 out:
	free(subject);
	free(issuer);
	return r;
}

static int
incoming_row(const struct store_row *row, void *arg)
{
	json_t	*arr = arg, *o;
	char	 first[32], last[32];

	sp_time_fmt((time_t)store_row_int(row, 6), first, sizeof(first));
	sp_time_fmt((time_t)store_row_int(row, 7), last, sizeof(last));
	o = json_pack("{s:I,s:o,s:o,s:s,s:s,s:o,s:s,s:s,s:I,s:s}",
	    "id", (json_int_t)store_row_int(row, 0),
	    "subject", jstr(store_row_text(row, 1)),
	    "issuer", jstr(store_row_text(row, 2)),
	    "serial", store_row_text(row, 3),
	    "fingerprint", store_row_text(row, 4),
	    "address", jstr(store_row_text(row, 5)),
	    "first_seen", first, "last_seen", last,
	    "count", (json_int_t)store_row_int(row, 8),
	    "role", store_row_text(row, 9));
	if (o == NULL || json_array_append_new(arr, o) != 0)
		return SP_ERR_ALLOC;
	return 0;
}

json_t *
authz_incoming_list(struct authz *a)
{
	json_t	*arr;

	if ((arr = json_array()) == NULL)
		return NULL;
	if (store_select(a->st, NULL, incoming_row, arr, NULL, "SELECT id, subject, "
	    "issuer, serial, fingerprint, address, first_seen, last_seen, "
	    "count, role FROM incoming ORDER BY last_seen DESC, id DESC "
	    "LIMIT ?", "i", (int64_t)AUTHZ_INCOMING_LIST_MAX) != 0) {
		json_decref(arr);
		return NULL;
	}
	return arr;
}

struct incoming_arg {
	int64_t		 id;
	const char	*new_role;
	const char	*preset;
	const char	*role;
	enum match	 match;
	const char	*rname;		/* out: the role given the member */
};

struct incoming_row {
	bool	 found;
	char	*subject, *issuer, *serial, *fp;
};

static int
incoming_get(const struct store_row *row, void *arg)
{
	struct incoming_row	*ir = arg;

	ir->found = true;
	if ((ir->subject = strdup(store_row_text(row, 0))) == NULL ||
	    (ir->issuer = strdup(store_row_text(row, 1))) == NULL ||
	    (ir->serial = strdup(store_row_text(row, 2))) == NULL ||
	    (ir->fp = strdup(store_row_text(row, 3))) == NULL)
		return SP_ERR_ALLOC;
	return 0;
}

/* The member value the recorded certificate gets for match m. */
static int
incoming_member(const struct incoming_row *ir, enum match m, char **v,
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
		if (ir->serial[0] == '\0')
			return sp_err_set(err, SP_ERR_INVALID, "the "
			    "certificate's serial is too long to match on; "
			    "use match fingerprint");
		r = member_norm("serial", ir->serial, ir->issuer, &mm, v, iss,
		    &e);
		break;
	case MATCH_DN:
		r = member_norm("dn", ir->subject, ir->issuer, &mm, v, iss,
		    &e);
		break;
	case MATCH_CN:
		if (dn_parse(ir->subject, &n, &e) != 0 ||
		    (cn = name_cn(n)) == NULL) {
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
		r = member_norm("fingerprint", ir->fp, NULL, &mm, v, iss, &e);
		break;
	default:
		return sp_err_set(err, SP_ERR_INTERNAL, "match type");
	}
	if (r != 0)
		return sp_err_set(err, r, "cannot match the certificate by %s: "
		    "%s", match_names[m], e.msg);
	return 0;
}

static int
do_incoming(struct authz *a, struct store_txn *tx, void *arg, json_t *details,
    struct sp_err *err)
{
	struct incoming_arg	*ia = arg;
	struct incoming_row	 ir = { 0 };
	char			*v = NULL, *iss = NULL;
	int64_t			 rid;
	size_t			 p = 0;
	int			 r;

	if ((r = store_select(a->st, tx, incoming_get, &ir, err, "SELECT subject, "
	    "issuer, serial, fingerprint FROM incoming WHERE id = ?", "i",
	    ia->id)) != 0)
		goto out;
	if (!ir.found) {
		r = sp_err_set(err, SP_ERR_NOTFOUND, "no incoming connection "
		    "%lld", (long long)ia->id);
		goto out;
	}
	if ((r = incoming_member(&ir, ia->match, &v, &iss, err)) != 0)
		goto out;
	if (ia->new_role != NULL) {
		ia->rname = ia->new_role;
		while (strcmp(presets[p].name, ia->preset) != 0)
			p++;
		if ((r = role_insert(a, tx, ia->new_role, &rid, err)) != 0)
			goto out;
		for (const struct preset_rule *u = presets[p].rules; u->path;
		    u++)
			if ((r = rule_upsert(a, tx, ia->new_role, rid, u->path,
			    true, u->recursive, err)) != 0)
				goto out;
	} else {
		ia->rname = ia->role;
		if ((r = role_id(a, tx, ia->role, &rid, err)) != 0)
			goto out;
	}
	if ((r = member_insert(a, tx, ia->rname, rid, ia->match, v, iss,
	    err)) != 0)
		goto out;
	if ((r = store_exec(a->st, tx, NULL, err, "UPDATE incoming SET role = ? "
	    "WHERE id = ?", "si", ia->rname, ia->id)) < 0)
		goto out;
	r = 0;
	json_object_set_new(details, "id", json_integer(ia->id));
	json_object_set_new(details, "role", json_string(ia->rname));
	json_object_set_new(details, "new_role",
	    json_boolean(ia->new_role != NULL));
	if (ia->new_role != NULL)
		json_object_set_new(details, "preset", json_string(ia->preset));
	json_object_set_new(details, "match",
	    json_string(match_names[ia->match]));
	json_object_set_new(details, "value", jstr(v));
	if (ia->match == MATCH_SERIAL)
		json_object_set_new(details, "issuer", jstr(iss));
	json_object_set_new(details, "subject", jstr(ir.subject));
	json_object_set_new(details, "fingerprint", jstr(ir.fp));
 out:
	free(ir.subject);
	free(ir.issuer);
	free(ir.serial);
	free(ir.fp);
	free(v);
	free(iss);
	return r;
}

int
authz_incoming_authorize(struct authz *a, int64_t id, const char *new_role,
    const char *preset, const char *role, const char *match,
    const char *actor, json_t **out, struct sp_err *err)
{
	struct incoming_arg	ia = { id, new_role, preset, role, MATCH_SERIAL,
				    NULL };
	int			r;

	*out = NULL;
	if ((new_role == NULL) == (role == NULL))
		return sp_err_set(err, SP_ERR_INVALID, "give exactly one of a "
		    "new role (to create) and an existing role");
	if (id <= 0)
		return sp_err_set(err, SP_ERR_INVALID, "incoming connection id "
		    "must be a positive integer");
	if ((r = role_name_check(new_role ? new_role : role, err)) != 0 ||
	    (r = match_parse(match, &ia.match, err)) != 0)
		return r;
	if (new_role == NULL && preset != NULL)
		return sp_err_set(err, SP_ERR_INVALID, "rule presets apply to "
		    "a new role only; change an existing role's rules with "
		    "role rule set");
	if (new_role != NULL && preset == NULL)
		ia.preset = "ping";
	if (new_role != NULL && !authz_preset_valid(ia.preset))
		return sp_err_set(err, SP_ERR_INVALID, "unknown rule preset "
		    "\"%.32s\" (va, ra, renewal or ping)", ia.preset);
	if ((r = change(a, "incoming.authorize", actor, do_incoming, &ia,
	    err)) != 0)
		return r;
	return authz_role_show(a, ia.rname, out, err);
}
