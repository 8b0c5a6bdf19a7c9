/*
 * Unit tests for authz/authz.c on a SQLite store in a temporary
 * directory, with certificates made here: rule evaluation, member
 * matching per type, several roles, the generation counter, persistence,
 * the incoming connections list and its authorize step, presets, bad
 * input, the audit rows, the admin commands, and checks racing changes.
 */
#include <sys/stat.h>

#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "admin/handlers.h"
#include "authz/authz.h"
#include "crypto/dn.h"
#include "peer/peer.h"
#include "store/store.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#define ISSUER1	"CN=Peer CA One,O=Example,C=SE"
#define ISSUER2	"CN=Peer CA Two,O=Example,C=SE"

struct fixture {
	char		 dir[64];
	char		 path[128];
	struct store	*st;
	struct authz	*a;
};

static EVP_PKEY	*key;

static int
rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static int
group_setup(void **state)
{
	(void)state;
	log_init(LOG_LVL_ERROR);
	key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	return key == NULL ? -1 : 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(key);
	return 0;
}

static int
setup(void **state)
{
	struct fixture	*fx;
	struct sp_err	 err = { 0 };

	if ((fx = calloc(1, sizeof(*fx))) == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/sp_test_authz.XXXXXX");
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->path, sizeof(fx->path), "%s/store.db", fx->dir);
	if (store_open(fx->path, &fx->st, &err) != 0 ||
	    authz_open(fx->st, &fx->a, &err) != 0) {
		fprintf(stderr, "open: %s\n", err.msg);
		store_close(fx->st);
		nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		free(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;
	int		 r;

	sp_time_set_fake(0);
	authz_free(fx->a);
	store_close(fx->st);
	r = nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return r == 0 ? 0 : -1;
}

/*
 * A certificate as a peer would present it: built, signed, then encoded
 * and parsed again. serial is hex.
 */
static X509 *
mkcert(const char *issuer, const char *subject, const char *serial)
{
	X509		*x = X509_new(), *y;
	X509_NAME	*in = NULL, *sn = NULL;
	BIGNUM		*bn = NULL;
	ASN1_INTEGER	*ai = NULL;
	unsigned char	*der = NULL;
	const unsigned char *p;
	int		 len;

	assert_non_null(x);
	assert_int_equal(dn_parse(issuer, &in, NULL), 0);
	assert_int_equal(dn_parse(subject, &sn, NULL), 0);
	assert_true(BN_hex2bn(&bn, serial) > 0);
	assert_non_null(ai = BN_to_ASN1_INTEGER(bn, NULL));
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(X509_set_serialNumber(x, ai), 1);
	assert_int_equal(X509_set_issuer_name(x, in), 1);
	assert_int_equal(X509_set_subject_name(x, sn), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	assert_true((len = i2d_X509(x, &der)) > 0);
	p = der;
	assert_non_null(y = d2i_X509(NULL, &p, len));
	OPENSSL_free(der);
	X509_free(x);
	X509_NAME_free(in);
	X509_NAME_free(sn);
	BN_free(bn);
	ASN1_INTEGER_free(ai);
	return y;
}

static void
fingerprint(X509 *x, char out[65])
{
	unsigned char	md[32];
	unsigned int	len = 0;

	assert_int_equal(X509_digest(x, EVP_sha256(), md, &len), 1);
	assert_int_equal(len, 32);
	sp_hex_encode(md, len, out);
}

/* authz_check() of one path; returns the code, err and role filled. */
static int
check1(struct authz *a, X509 *x, const char *path, char role[65],
    struct sp_err *err)
{
	const char	*paths[] = { path };

	sp_err_clear(err);
	return authz_check(a, x, paths, 1, role, err);
}

static void
allowed(struct authz *a, X509 *x, const char *path)
{
	struct sp_err	err = { 0 };
	char		role[65];

	if (check1(a, x, path, role, &err) != 0)
		fail_msg("%s refused: %s", path, err.msg);
}

/* Refused, with a message that holds want. */
static void
refused(struct authz *a, X509 *x, const char *path, const char *want)
{
	struct sp_err	err = { 0 };
	char		role[65];

	assert_int_equal(check1(a, x, path, role, &err), SP_ERR_DENIED);
	if (strstr(err.msg, want) == NULL)
		fail_msg("%s: \"%s\" lacks \"%s\"", path, err.msg, want);
}

static void
ok(int r, const struct sp_err *err)
{
	if (r != 0)
		fail_msg("unexpected %s: %s", sp_rc_str(r), err->msg);
}

static void
mkrole(struct authz *a, const char *name)
{
	struct sp_err	err = { 0 };

	ok(authz_role_create(a, name, "test", &err), &err);
}

static void
rule(struct authz *a, const char *role, const char *path, bool allow,
    bool recursive)
{
	struct sp_err	err = { 0 };

	ok(authz_rule_set(a, role, path, allow, recursive, "test", &err), &err);
}

static void
member(struct authz *a, const char *role, const char *match,
    const char *value, const char *issuer)
{
	struct sp_err	err = { 0 };

	ok(authz_member_add(a, role, match, value, issuer, "test", &err), &err);
}

/* A role whose member is x (by fingerprint). */
static void
role_for(struct authz *a, const char *name, X509 *x)
{
	char	fp[65];

	fingerprint(x, fp);
	mkrole(a, name);
	member(a, name, "fingerprint", fp, NULL);
}

/* --- rule evaluation ----------------------------------------------------- */

static void
test_rules_exact_and_recursive(void **state)
{
	struct fixture	*fx = *state;
	X509		*x = mkcert(ISSUER1, "CN=peer,O=Example", "1001");

	role_for(fx->a, "r", x);
	/* No rule at all: deny. */
	refused(fx->a, x, "/peerincoming", "role r: no rule allows "
	    "/peerincoming");

	rule(fx->a, "r", "/peerincoming", true, false);
	allowed(fx->a, x, "/peerincoming");
	/* Exact rules do not cover what is below them. */
	refused(fx->a, x, "/peerincoming/x", "no rule allows");

	rule(fx->a, "r", "/ca/Foo", true, true);
	allowed(fx->a, x, "/ca/Foo");
	allowed(fx->a, x, "/ca/Foo/profiles/x");
	/* A prefix that is not a whole component does not match. */
	refused(fx->a, x, "/ca/FooBar", "no rule allows /ca/FooBar");
	refused(fx->a, x, "/ca", "no rule allows /ca");

	/* A rule ending in '/' covers what is below it, not itself less
	 * the slash. */
	rule(fx->a, "r", "/kb/", true, true);
	allowed(fx->a, x, "/kb/ocsp1");
	allowed(fx->a, x, "/kb/");
	refused(fx->a, x, "/kb", "no rule allows");
	refused(fx->a, x, "/kbx", "no rule allows");

	/* "/" recursive covers everything. */
	rule(fx->a, "r", "/", true, true);
	allowed(fx->a, x, "/anything/at/all");
	X509_free(x);
}

static void
test_rules_deny_wins(void **state)
{
	struct fixture	*fx = *state;
	X509		*x = mkcert(ISSUER1, "CN=peer,O=Example", "1002");

	role_for(fx->a, "r", x);
	rule(fx->a, "r", "/ca/", true, true);
	rule(fx->a, "r", "/ca/Secret", false, true);
	allowed(fx->a, x, "/ca/Public");
	refused(fx->a, x, "/ca/Secret", "role r: denied by rule /ca/Secret "
	    "for /ca/Secret");
	refused(fx->a, x, "/ca/Secret/x", "denied by rule /ca/Secret");
	/* The deny is not a prefix match either. */
	allowed(fx->a, x, "/ca/SecretNot");

	/* Deny (recursive) above beats an exact allow below it. */
	rule(fx->a, "r", "/d/e/f", true, false);
	rule(fx->a, "r", "/d", false, true);
	refused(fx->a, x, "/d/e/f", "denied by rule /d for /d/e/f");

	/* Deny and allow on the same path: replace, then deny exact. */
	rule(fx->a, "r", "/p", true, false);
	allowed(fx->a, x, "/p");
	rule(fx->a, "r", "/p", false, false);
	refused(fx->a, x, "/p", "denied by rule /p");
	X509_free(x);
}

static void
test_rules_several_paths(void **state)
{
	struct fixture	*fx = *state;
	X509		*x = mkcert(ISSUER1, "CN=peer,O=Example", "1003");
	const char	*good[] = { "/peerincoming", "/peerpublish/writecert",
			    "/ca/A" };
	const char	*bad[] = { "/peerincoming", "/peerpublish/writecrl",
			    "/ca/B" };
	const char	*malformed[] = { "/peerincoming", "/ca/../x" };
	struct sp_err	 err = { 0 };
	char		 role[65] = "junk";

	role_for(fx->a, "va", x);
	rule(fx->a, "va", "/peerincoming", true, false);
	rule(fx->a, "va", "/peerpublish/writecert", true, false);
	rule(fx->a, "va", "/ca/A", true, true);
	ok(authz_check(fx->a, x, good, 3, role, &err), &err);
	assert_string_equal(role, "va");
	/* The first path refused is named. */
	assert_int_equal(authz_check(fx->a, x, bad, 3, role, &err),
	    SP_ERR_DENIED);
	assert_non_null(strstr(err.msg, "/peerpublish/writecrl"));
	assert_string_equal(role, "va");
	/* No path, or a malformed one, is never "allowed". */
	sp_err_clear(&err);
	assert_int_equal(authz_check(fx->a, x, good, 0, role, &err),
	    SP_ERR_DENIED);
	sp_err_clear(&err);
	assert_int_equal(authz_check(fx->a, x, malformed, 2, role, &err),
	    SP_ERR_DENIED);
	assert_non_null(strstr(err.msg, "malformed"));
	sp_err_clear(&err);
	assert_int_equal(authz_check(fx->a, NULL, good, 1, role, &err),
	    SP_ERR_DENIED);
	assert_string_equal(role, "");
	X509_free(x);
}

/* --- member matching ----------------------------------------------------- */

static void
test_member_serial(void **state)
{
	struct fixture	*fx = *state;
	/* Same serial, two issuers: must not be confused. */
	X509		*c1 = mkcert(ISSUER1, "CN=peer1,O=Example", "0A1234");
	X509		*c2 = mkcert(ISSUER2, "CN=peer2,O=Example", "0A1234");
	X509		*c3 = mkcert(ISSUER1, "CN=peer3,O=Example", "0A1235");
	struct sp_err	 err = { 0 };
	char		 role[65] = "junk";
	json_t		*j = NULL;

	mkrole(fx->a, "s");
	rule(fx->a, "s", "/peerincoming", true, false);
	/* Typed with colons, leading zeros and the issuer in another case
	 * and spacing: normalised to what the certificate gives. */
	member(fx->a, "s", "serial", "00:0a:12:34",
	    "cn=peer ca  one, o=Example, c=SE");
	allowed(fx->a, c1, "/peerincoming");
	assert_int_equal(check1(fx->a, c2, "/peerincoming", role, &err),
	    SP_ERR_DENIED);
	assert_non_null(strstr(err.msg, "no role matches this certificate"));
	assert_string_equal(role, "");
	refused(fx->a, c3, "/peerincoming", "no role");

	ok(authz_role_show(fx->a, "s", &j, &err), &err);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(json_object_get(j, "members"), 0), "value")),
	    "0a1234");
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(json_object_get(j, "members"), 0), "issuer")),
	    "CN=peer ca  one,O=Example,C=SE");
	json_decref(j);

	/* The default match type is serial (so an issuer is needed). */
	member(fx->a, "s", NULL, "0a1234", ISSUER2);
	allowed(fx->a, c2, "/peerincoming");
	X509_free(c1);
	X509_free(c2);
	X509_free(c3);
}

static void
test_member_dn_cn_fingerprint(void **state)
{
	struct fixture	*fx = *state;
	X509		*d = mkcert(ISSUER1, "CN=va1,O=Example,C=SE", "2001");
	X509		*d2 = mkcert(ISSUER1, "CN=va1,O=Other,C=SE", "2002");
	X509		*c = mkcert(ISSUER1, "CN=ra1,OU=RA,O=Example", "2003");
	X509		*cx = mkcert(ISSUER1, "CN=ra1x,OU=RA,O=Example",
			    "2004");
	/* Two CNs: only the most specific (first in the string) counts. */
	X509		*c2 = mkcert(ISSUER1, "CN=other,CN=ra1,O=Example",
			    "2005");
	X509		*f = mkcert(ISSUER2, "CN=signer,O=Example", "2006");
	X509		*none = mkcert(ISSUER2, "CN=nobody", "2007");
	char		 fp[65], upper[100];
	struct sp_err	 err = { 0 };
	char		 role[65] = "junk";

	mkrole(fx->a, "bydn");
	rule(fx->a, "bydn", "/dn", true, false);
	member(fx->a, "bydn", "dn", "CN=VA1, O=example, C=SE", ISSUER1);
	allowed(fx->a, d, "/dn");
	refused(fx->a, d2, "/dn", "no role");
	{
		/* The same subject from another trusted CA (F9). */
		X509	*dx = mkcert(ISSUER2, "CN=va1,O=Example,C=SE", "2001");
		json_t	*j = NULL;

		refused(fx->a, dx, "/dn", "no role");
		/* Unless the operator asks for any issuer, on purpose. */
		mkrole(fx->a, "anydn");
		rule(fx->a, "anydn", "/anydn", true, false);
		member(fx->a, "anydn", "dn", "CN=va1,O=Example,C=SE", "*");
		allowed(fx->a, dx, "/anydn");
		allowed(fx->a, d, "/anydn");
		/* role show says which. */
		ok(authz_role_show(fx->a, "anydn", &j, &err), &err);
		assert_true(json_is_true(json_object_get(json_array_get(
		    json_object_get(j, "members"), 0), "any_issuer")));
		json_decref(j);
		ok(authz_role_show(fx->a, "bydn", &j, &err), &err);
		assert_true(json_is_false(json_object_get(json_array_get(
		    json_object_get(j, "members"), 0), "any_issuer")));
		assert_string_equal(json_string_value(json_object_get(
		    json_array_get(json_object_get(j, "members"), 0),
		    "issuer")), ISSUER1);
		json_decref(j);
		X509_free(dx);
	}

	mkrole(fx->a, "bycn");
	rule(fx->a, "bycn", "/cn", true, false);
	member(fx->a, "bycn", "cn", "ra1", NULL);
	allowed(fx->a, c, "/cn");
	refused(fx->a, cx, "/cn", "no role");
	refused(fx->a, c2, "/cn", "no role");

	mkrole(fx->a, "byfp");
	rule(fx->a, "byfp", "/fp", true, false);
	fingerprint(f, fp);
	/* Upper case with colons is the same fingerprint. */
	for (size_t i = 0, o = 0; i < 64; i += 2) {
		upper[o++] = (char)(fp[i] >= 'a' ? fp[i] - 32 : fp[i]);
		upper[o++] = (char)(fp[i + 1] >= 'a' ? fp[i + 1] - 32 :
		    fp[i + 1]);
		upper[o++] = i + 2 < 64 ? ':' : '\0';
	}
	member(fx->a, "byfp", "fingerprint", upper, NULL);
	allowed(fx->a, f, "/fp");

	/* Each role is only its own members' business. */
	refused(fx->a, f, "/dn", "role byfp: no rule allows /dn");
	assert_int_equal(check1(fx->a, none, "/dn", role, &err),
	    SP_ERR_DENIED);
	assert_string_equal(role, "");
	assert_non_null(strstr(err.msg, "no role"));
	X509_free(d);
	X509_free(d2);
	X509_free(c);
	X509_free(cx);
	X509_free(c2);
	X509_free(f);
	X509_free(none);
}

static void
test_multi_role(void **state)
{
	struct fixture	*fx = *state;
	X509		*x = mkcert(ISSUER1, "CN=multi,O=Example", "3001");
	struct sp_err	 err = { 0 };
	char		 role[65];

	/* Created out of name order: "alpha" still comes first. */
	role_for(fx->a, "beta", x);
	mkrole(fx->a, "alpha");
	member(fx->a, "alpha", "cn", "multi", NULL);
	rule(fx->a, "alpha", "/a", true, false);
	rule(fx->a, "alpha", "/b", false, false);
	rule(fx->a, "beta", "/b", true, false);
	/* Any role that allows a path is enough, even if another denies. */
	assert_int_equal(check1(fx->a, x, "/a", role, &err), 0);
	assert_string_equal(role, "alpha");
	assert_int_equal(check1(fx->a, x, "/b", role, &err), 0);
	assert_string_equal(role, "alpha");
	refused(fx->a, x, "/c", "role alpha: no rule allows /c (2 roles "
	    "match");
	X509_free(x);
}

/* --- generation and persistence --------------------------------------- */

static void
test_generation(void **state)
{
	struct fixture	*fx = *state;
	X509		*x = mkcert(ISSUER1, "CN=gen", "4001");
	struct sp_err	 err = { 0 };
	uint64_t	 g = authz_generation(fx->a);

	mkrole(fx->a, "g");
	assert_true(authz_generation(fx->a) > g);
	g = authz_generation(fx->a);
	member(fx->a, "g", "cn", "gen", NULL);
	assert_true(authz_generation(fx->a) > g);
	g = authz_generation(fx->a);
	rule(fx->a, "g", "/x", true, false);
	assert_true(authz_generation(fx->a) > g);
	g = authz_generation(fx->a);
	/* A refused change, a check and a record change nothing. */
	assert_int_equal(authz_role_create(fx->a, "g", "t", &err),
	    SP_ERR_EXISTS);
	allowed(fx->a, x, "/x");
	ok(authz_incoming_record(fx->a, NULL, x, "127.0.0.1:1", "g", &err), &err);
	assert_true(authz_generation(fx->a) == g);
	ok(authz_rule_remove(fx->a, "g", "/x", "t", &err), &err);
	assert_true(authz_generation(fx->a) > g);
	g = authz_generation(fx->a);
	ok(authz_member_remove(fx->a, "g", "cn", "gen", NULL, "t", &err),
	    &err);
	assert_true(authz_generation(fx->a) > g);
	g = authz_generation(fx->a);
	ok(authz_role_delete(fx->a, "g", "t", &err), &err);
	assert_true(authz_generation(fx->a) > g);
	X509_free(x);
}

static void
test_persistence(void **state)
{
	struct fixture	*fx = *state;
	X509		*x = mkcert(ISSUER1, "CN=keep,O=Example", "5001");
	X509		*y = mkcert(ISSUER2, "CN=gone,O=Example", "5002");
	struct sp_err	 err = { 0 };
	json_t		*before = NULL, *after = NULL, *list;

	mkrole(fx->a, "keep");
	member(fx->a, "keep", "serial", "5001", ISSUER1);
	member(fx->a, "keep", "dn", "CN=keep,O=Example", ISSUER1);
	rule(fx->a, "keep", "/peerincoming", true, false);
	rule(fx->a, "keep", "/ca/", true, true);
	rule(fx->a, "keep", "/ca/Other", false, true);
	role_for(fx->a, "gone", y);
	ok(authz_role_delete(fx->a, "gone", "t", &err), &err);
	ok(authz_role_show(fx->a, "keep", &before, &err), &err);

	authz_free(fx->a);
	fx->a = NULL;
	ok(authz_open(fx->st, &fx->a, &err), &err);
	ok(authz_role_show(fx->a, "keep", &after, &err), &err);
	assert_true(json_equal(before, after));
	list = authz_role_list(fx->a);
	assert_int_equal(json_array_size(list), 1);
	assert_int_equal(json_integer_value(json_object_get(
	    json_array_get(list, 0), "members")), 2);
	assert_int_equal(json_integer_value(json_object_get(
	    json_array_get(list, 0), "rules")), 3);
	allowed(fx->a, x, "/ca/Mine");
	refused(fx->a, x, "/ca/Other/x", "denied by rule /ca/Other");
	refused(fx->a, y, "/peerincoming", "no role");
	json_decref(before);
	json_decref(after);
	json_decref(list);
	/* Deleting a role took its members and rules along. */
	assert_int_equal(authz_role_show(fx->a, "gone", &after, &err),
	    SP_ERR_NOTFOUND);
	assert_null(after);
	mkrole(fx->a, "gone");
	ok(authz_role_show(fx->a, "gone", &after, &err), &err);
	assert_int_equal(json_array_size(json_object_get(after, "members")),
	    0);
	assert_int_equal(json_array_size(json_object_get(after, "rules")), 0);
	json_decref(after);
	X509_free(x);
	X509_free(y);
}

/*
 * Rows the store holds but that authz would never write (a bad DN, an
 * unknown match type, a bad path: an older version, a hand edit) are
 * skipped when loading: they match and allow nothing.
 */
static void
test_store_garbage(void **state)
{
	struct fixture	*fx = *state;
	X509		*x = mkcert(ISSUER1, "CN=junk,O=Example", "0d01");
	struct sp_err	 err = { 0 };
	int64_t		 id = 0;
	json_t		*out = NULL;
	char		 fp[65];

	fingerprint(x, fp);
	assert_int_equal(store_exec(fx->st, NULL, &id, &err, "INSERT INTO roles "
	    "(name, created) VALUES ('j', 0) RETURNING id", ""), 1);
	assert_int_equal(store_exec(fx->st, NULL, NULL, &err, "INSERT INTO "
	    "role_members VALUES (?, 'dn', 'not a dn', ''), "
	    "(?, 'serial', '0d01', 'garbage'), (?, 'email', ?, ''), "
	    "(?, 'cn', 'junk', '')", "iiisi", id, id, id, fp, id), 4);
	assert_int_equal(store_exec(fx->st, NULL, NULL, &err, "INSERT INTO "
	    "role_rules (role_id, path, allow, recursive) VALUES "
	    "(?, '/ok', 1, 0), (?, '/ca/../x', 1, 1)",
	    "ii", id, id), 2);
	authz_free(fx->a);
	fx->a = NULL;
	ok(authz_open(fx->st, &fx->a, &err), &err);
	ok(authz_role_show(fx->a, "j", &out, &err), &err);
	assert_int_equal(json_array_size(json_object_get(out, "members")), 1);
	assert_int_equal(json_array_size(json_object_get(out, "rules")), 1);
	json_decref(out);
	/* Only the cn member is real, only /ok is a rule. */
	allowed(fx->a, x, "/ok");
	refused(fx->a, x, "/ca/x", "no rule allows");
	ok(authz_member_remove(fx->a, "j", "cn", "junk", NULL, "t", &err),
	    &err);
	refused(fx->a, x, "/ok", "no role");
	X509_free(x);
}

/* --- incoming connections ---------------------------------------------- */

/* The incoming row for subject (borrowed from list), or fail. */
static json_t *
incoming_find(json_t *list, const char *subject)
{
	size_t	 i;
	json_t	*o;

	json_array_foreach(list, i, o)
		if (strcmp(json_string_value(json_object_get(o, "subject")),
		    subject) == 0)
			return o;
	fail_msg("no incoming row for %s", subject);
	return NULL;
}

static void
test_incoming_record_list(void **state)
{
	struct fixture	*fx = *state;
	X509		*c1 = mkcert(ISSUER1, "CN=va1,O=Example", "00ff01");
	X509		*c2 = mkcert(ISSUER2, "CN=ra1,O=Example", "0101");
	struct sp_err	 err = { 0 };
	json_t		*list, *o;
	char		 fp[65];

	sp_time_set_fake(1700000000);
	ok(authz_incoming_record(fx->a, NULL, c1, "192.0.2.1:50000", NULL, &err),
	    &err);
	sp_time_set_fake(1700000100);
	ok(authz_incoming_record(fx->a, NULL, c1, "192.0.2.1:50001", "", &err),
	    &err);
	sp_time_set_fake(1700000050);
	ok(authz_incoming_record(fx->a, NULL, c2, "192.0.2.2:40000", NULL, &err),
	    &err);
	list = authz_incoming_list(fx->a);
	assert_non_null(list);
	assert_int_equal(json_array_size(list), 2);
	/* Most recently seen first. */
	o = json_array_get(list, 0);
	assert_string_equal(json_string_value(json_object_get(o, "subject")),
	    "CN=va1,O=Example");
	assert_string_equal(json_string_value(json_object_get(o, "issuer")),
	    ISSUER1);
	assert_string_equal(json_string_value(json_object_get(o, "serial")),
	    "ff01");
	fingerprint(c1, fp);
	assert_string_equal(json_string_value(json_object_get(o,
	    "fingerprint")), fp);
	assert_string_equal(json_string_value(json_object_get(o, "address")),
	    "192.0.2.1:50001");
	assert_string_equal(json_string_value(json_object_get(o,
	    "first_seen")), "2023-11-14T22:13:20Z");
	assert_string_equal(json_string_value(json_object_get(o,
	    "last_seen")), "2023-11-14T22:15:00Z");
	assert_int_equal(json_integer_value(json_object_get(o, "count")), 2);
	assert_string_equal(json_string_value(json_object_get(o, "role")), "");
	assert_true(json_integer_value(json_object_get(o, "id")) > 0);
	o = json_array_get(list, 1);
	assert_string_equal(json_string_value(json_object_get(o, "serial")),
	    "0101");
	assert_int_equal(json_integer_value(json_object_get(o, "count")), 1);
	json_decref(list);

	/* Bad input is refused. */
	{
		char	addr[AUTHZ_ADDRESS_MAX + 2];

		memset(addr, 'a', sizeof(addr) - 1);
		addr[sizeof(addr) - 1] = '\0';
		assert_int_equal(authz_incoming_record(fx->a, NULL, c1, addr, NULL,
		    &err), SP_ERR_INVALID);
		sp_err_clear(&err);
		assert_int_equal(authz_incoming_record(fx->a, NULL, NULL, "x", NULL,
		    &err), SP_ERR_INVALID);
	}
	X509_free(c1);
	X509_free(c2);
}

static int
setting_row(const struct store_row *row, void *arg)
{
	snprintf(arg, 24, "%s", store_row_text(row, 0));
	return 0;
}

/*
 * The incoming list is capped (any holder of a trusted certificate adds a
 * row): beyond the cap the least recently seen rows go, and the number
 * dropped adds up in a setting.
 */
static void
test_incoming_capped(void **state)
{
	struct fixture	*fx = *state;
	struct sp_err	 err = { 0 };
	json_t		*list;
	char		 serial[16], dropped[24] = "";
	X509		*x;

	authz_set_incoming_max(fx->a, 20);
	for (int i = 0; i < 100; i++) {
		snprintf(serial, sizeof(serial), "%04x", 0x1000 + i);
		x = mkcert(ISSUER1, "CN=flood,O=Example", serial);
		sp_time_set_fake(1700000000 + i);
		ok(authz_incoming_record(fx->a, NULL, x, "192.0.2.9:1", NULL, &err),
		    &err);
		X509_free(x);
	}
	list = authz_incoming_list(fx->a);
	assert_non_null(list);
	/* Checked every 16 records: at most 20 + 15 rows, never 100. */
	assert_true(json_array_size(list) >= 20);
	assert_true(json_array_size(list) < 20 + 16);
	/* The newest stay. */
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(list, 0), "serial")), "1063");
	json_decref(list);
	ok(store_select(fx->st, NULL, setting_row, dropped, &err, "SELECT value "
	    "FROM settings WHERE key = 'authz.incoming_dropped'", ""), &err);
	assert_true(atoi(dropped) >= 100 - 20 - 15);
	authz_set_incoming_max(fx->a, 0);
}

static void
test_incoming_authorize(void **state)
{
	struct fixture	*fx = *state;
	X509		*c1 = mkcert(ISSUER1, "CN=va1,O=Example", "7001");
	X509		*c2 = mkcert(ISSUER2, "CN=va2,O=Example", "7001");
	X509		*c3 = mkcert(ISSUER2, "CN=va3,O=Example", "7003");
	X509		*c4 = mkcert(ISSUER2, "CN=va4,O=Example", "7004");
	const char	*va[] = { "/peerincoming", "/peerpublish/writecert",
			    "/peerpublish/readcert", "/peerpublish/writecrl",
			    "/ca/Issuing" };
	struct sp_err	 err = { 0 };
	json_t		*list, *out = NULL, *o;
	int64_t		 id1, id2, id3, id4;
	char		 role[65];

	ok(authz_incoming_record(fx->a, NULL, c1, "192.0.2.1:1", NULL, &err), &err);
	ok(authz_incoming_record(fx->a, NULL, c2, "192.0.2.2:1", NULL, &err), &err);
	ok(authz_incoming_record(fx->a, NULL, c3, "192.0.2.3:1", NULL, &err), &err);
	ok(authz_incoming_record(fx->a, NULL, c4, "192.0.2.4:1", NULL, &err), &err);
	list = authz_incoming_list(fx->a);
	id1 = json_integer_value(json_object_get(incoming_find(list,
	    "CN=va1,O=Example"), "id"));
	id2 = json_integer_value(json_object_get(incoming_find(list,
	    "CN=va2,O=Example"), "id"));
	id3 = json_integer_value(json_object_get(incoming_find(list,
	    "CN=va3,O=Example"), "id"));
	id4 = json_integer_value(json_object_get(incoming_find(list,
	    "CN=va4,O=Example"), "id"));
	json_decref(list);

	/* A new role with the va preset, matched by issuer and serial. */
	ok(authz_incoming_authorize(fx->a, id1, "ca-on-va", "va", NULL, NULL,
	    "test", &out, &err), &err);
	assert_string_equal(json_string_value(json_object_get(out, "name")),
	    "ca-on-va");
	o = json_array_get(json_object_get(out, "members"), 0);
	assert_string_equal(json_string_value(json_object_get(o, "match")),
	    "serial");
	assert_string_equal(json_string_value(json_object_get(o, "value")),
	    "7001");
	assert_string_equal(json_string_value(json_object_get(o, "issuer")),
	    ISSUER1);
	assert_int_equal(json_array_size(json_object_get(out, "rules")), 5);
	json_decref(out);
	ok(authz_check(fx->a, c1, va, 5, role, &err), &err);
	assert_string_equal(role, "ca-on-va");
	/* Same serial, other issuer: still a stranger. */
	refused(fx->a, c2, "/peerincoming", "no role");

	/* Added to the existing role by common name. */
	ok(authz_incoming_authorize(fx->a, id2, NULL, NULL, "ca-on-va", "cn",
	    "test", &out, &err), &err);
	o = json_array_get(json_object_get(out, "members"), 0);
	assert_string_equal(json_string_value(json_object_get(o, "match")),
	    "cn");
	assert_string_equal(json_string_value(json_object_get(o, "value")),
	    "va2");
	assert_string_equal(json_string_value(json_object_get(o, "issuer")),
	    "");
	json_decref(out);
	ok(authz_check(fx->a, c2, va, 5, role, &err), &err);
	/* Once is enough. */
	assert_int_equal(authz_incoming_authorize(fx->a, id2, NULL, NULL,
	    "ca-on-va", "cn", "test", &out, &err), SP_ERR_EXISTS);
	assert_null(out);

	/* By subject DN and by fingerprint. */
	ok(authz_incoming_authorize(fx->a, id3, NULL, NULL, "ca-on-va", "dn",
	    "test", &out, &err), &err);
	json_decref(out);
	allowed(fx->a, c3, "/peerpublish/writecrl");
	ok(authz_incoming_authorize(fx->a, id4, "pinger", NULL, NULL,
	    "fingerprint", "test", &out, &err), &err);
	/* Default preset: ping. */
	assert_int_equal(json_array_size(json_object_get(out, "rules")), 1);
	json_decref(out);
	allowed(fx->a, c4, "/peerincoming");
	refused(fx->a, c4, "/ca/Issuing", "role pinger: no rule allows");

	/* The list shows the roles now. */
	list = authz_incoming_list(fx->a);
	assert_string_equal(json_string_value(json_object_get(incoming_find(
	    list, "CN=va1,O=Example"), "role")), "ca-on-va");
	assert_string_equal(json_string_value(json_object_get(incoming_find(
	    list, "CN=va4,O=Example"), "role")), "pinger");
	json_decref(list);

	/* Wrong combinations. */
	sp_err_clear(&err);
	assert_int_equal(authz_incoming_authorize(fx->a, id1, "x", NULL,
	    "ca-on-va", NULL, "t", &out, &err), SP_ERR_INVALID);
	sp_err_clear(&err);
	assert_int_equal(authz_incoming_authorize(fx->a, id1, NULL, NULL,
	    NULL, NULL, "t", &out, &err), SP_ERR_INVALID);
	sp_err_clear(&err);
	assert_int_equal(authz_incoming_authorize(fx->a, id1, NULL, "va",
	    "ca-on-va", NULL, "t", &out, &err), SP_ERR_INVALID);
	sp_err_clear(&err);
	assert_int_equal(authz_incoming_authorize(fx->a, id1, "x", "admin",
	    NULL, NULL, "t", &out, &err), SP_ERR_INVALID);
	sp_err_clear(&err);
	assert_int_equal(authz_incoming_authorize(fx->a, id1, "x", NULL, NULL,
	    "email", "t", &out, &err), SP_ERR_INVALID);
	sp_err_clear(&err);
	assert_int_equal(authz_incoming_authorize(fx->a, 999999, "x", NULL,
	    NULL, NULL, "t", &out, &err), SP_ERR_NOTFOUND);
	sp_err_clear(&err);
	assert_int_equal(authz_incoming_authorize(fx->a, id1, NULL, NULL,
	    "nosuchrole", NULL, "t", &out, &err), SP_ERR_NOTFOUND);
	sp_err_clear(&err);
	assert_int_equal(authz_incoming_authorize(fx->a, id1, "ca-on-va",
	    NULL, NULL, NULL, "t", &out, &err), SP_ERR_EXISTS);
	/* A refused authorize left nothing behind (one transaction). */
	sp_err_clear(&err);
	assert_int_equal(authz_role_show(fx->a, "x", &out, &err),
	    SP_ERR_NOTFOUND);
	X509_free(c1);
	X509_free(c2);
	X509_free(c3);
	X509_free(c4);
}

static void
test_presets(void **state)
{
	static const struct {
		const char	*preset;
		const char	*rules;	/* path:recursive, sorted */
	} want[] = {
		{ "va", "/ca/:1 /peerincoming:0 /peerpublish/readcert:0 "
		    "/peerpublish/writecert:0 /peerpublish/writecrl:0 " },
		{ "ra", "/ca/:1 /peerincoming:0 /ra/longhanging:0 " },
		{ "renewal", "/cryptotoken/keys/generate/:1 "
		    "/cryptotoken/view/:1 /internalkeybinding/modify/:1 "
		    "/internalkeybinding/view/:1 /peerincoming:0 " },
		{ "ping", "/peerincoming:0 " },
	};
	struct fixture	*fx = *state;
	struct sp_err	 err = { 0 };

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		char	 subj[64], serial[8], got[512] = "";
		X509	*x;
		json_t	*list, *out = NULL, *u;
		int64_t	 id;
		size_t	 k;

		assert_true(authz_preset_valid(want[i].preset));
		snprintf(subj, sizeof(subj), "CN=preset-%s", want[i].preset);
		snprintf(serial, sizeof(serial), "%zx", 0x100 + i);
		x = mkcert(ISSUER1, subj, serial);
		ok(authz_incoming_record(fx->a, NULL, x, "a", NULL, &err), &err);
		list = authz_incoming_list(fx->a);
		id = json_integer_value(json_object_get(incoming_find(list,
		    subj), "id"));
		json_decref(list);
		ok(authz_incoming_authorize(fx->a, id, want[i].preset,
		    want[i].preset, NULL, NULL, "t", &out, &err), &err);
		json_array_foreach(json_object_get(out, "rules"), k, u) {
			assert_true(json_is_true(json_object_get(u, "allow")));
			snprintf(got + strlen(got), sizeof(got) - strlen(got),
			    "%s:%d ", json_string_value(json_object_get(u,
			    "path")), json_is_true(json_object_get(u,
			    "recursive")));
		}
		assert_string_equal(got, want[i].rules);
		json_decref(out);
		allowed(fx->a, x, "/peerincoming");
		X509_free(x);
	}
	assert_false(authz_preset_valid("admin"));
	assert_false(authz_preset_valid(NULL));
}

/* --- bad input ------------------------------------------------------------ */

static void
test_bad_input(void **state)
{
	struct fixture	*fx = *state;
	static const char *const bad_paths[] = {
		"", "ca", "/ca//x", "/ca/../x", "/./x", "/ca/..", "/a b",
		"/a\\b", "/ca/Foo?", "//",
	};
	char		 longpath[300];
	struct sp_err	 err = { 0 };
	json_t		*out = NULL;
	uint64_t	 g;

	mkrole(fx->a, "r");
	g = authz_generation(fx->a);
#define BAD(code, call) do {						\
	sp_err_clear(&err);						\
	assert_int_equal((call), (code));				\
	assert_true(err.msg[0] != '\0');				\
} while (0)
	BAD(SP_ERR_EXISTS, authz_role_create(fx->a, "r", "t", &err));
	assert_non_null(strstr(err.msg, "already exists"));
	BAD(SP_ERR_INVALID, authz_role_create(fx->a, "", "t", &err));
	BAD(SP_ERR_INVALID, authz_role_create(fx->a, "a/b", "t", &err));
	BAD(SP_ERR_INVALID, authz_role_create(fx->a, NULL, "t", &err));
	BAD(SP_ERR_INVALID, authz_role_create(fx->a,
	    "a123456789012345678901234567890123456789012345678901234567890123"
	    "4", "t", &err));
	BAD(SP_ERR_NOTFOUND, authz_role_delete(fx->a, "nope", "t", &err));
	BAD(SP_ERR_NOTFOUND, authz_role_show(fx->a, "nope", &out, &err));
	assert_null(out);

	/* Members. */
	BAD(SP_ERR_INVALID, authz_member_add(fx->a, "r", "email", "x", NULL,
	    "t", &err));
	assert_non_null(strstr(err.msg, "unknown match type"));
	BAD(SP_ERR_NOTFOUND, authz_member_add(fx->a, "nope", "cn", "x", NULL,
	    "t", &err));
	BAD(SP_ERR_INVALID, authz_member_add(fx->a, "r", "serial", "01",
	    NULL, "t", &err));
	BAD(SP_ERR_INVALID, authz_member_add(fx->a, "r", "serial", "xyz",
	    ISSUER1, "t", &err));
	BAD(SP_ERR_INVALID, authz_member_add(fx->a, "r", "serial", "01",
	    "not a dn", "t", &err));
	BAD(SP_ERR_INVALID, authz_member_add(fx->a, "r", "cn", "x", ISSUER1,
	    "t", &err));
	BAD(SP_ERR_INVALID, authz_member_add(fx->a, "r", "cn", "", NULL,
	    "t", &err));
	BAD(SP_ERR_INVALID, authz_member_add(fx->a, "r", "cn", "a\tb", NULL,
	    "t", &err));
	BAD(SP_ERR_INVALID, authz_member_add(fx->a, "r", "dn", "CN", NULL,
	    "t", &err));
	/* A dn member pins its issuer unless "*" (F9). */
	BAD(SP_ERR_INVALID, authz_member_add(fx->a, "r", "dn", "CN=x", NULL,
	    "t", &err));
	BAD(SP_ERR_INVALID, authz_member_add(fx->a, "r", "dn", "CN=x",
	    "not a dn", "t", &err));
	BAD(SP_ERR_INVALID, authz_member_add(fx->a, "r", "fingerprint",
	    "abcd", NULL, "t", &err));
	BAD(SP_ERR_INVALID, authz_member_add(fx->a, "r", "fingerprint",
	    "zz", NULL, "t", &err));
	member(fx->a, "r", "cn", "x", NULL);
	g = authz_generation(fx->a);
	BAD(SP_ERR_EXISTS, authz_member_add(fx->a, "r", "cn", "x", NULL, "t",
	    &err));
	BAD(SP_ERR_NOTFOUND, authz_member_remove(fx->a, "r", "cn", "y", NULL,
	    "t", &err));
	BAD(SP_ERR_NOTFOUND, authz_member_remove(fx->a, "r", "serial", "01",
	    ISSUER1, "t", &err));

	/* Rules. */
	for (size_t i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++)
		BAD(SP_ERR_INVALID, authz_rule_set(fx->a, "r", bad_paths[i],
		    true, false, "t", &err));
	BAD(SP_ERR_INVALID, authz_rule_set(fx->a, "r", NULL, true, false,
	    "t", &err));
	longpath[0] = '/';
	memset(longpath + 1, 'a', 255);
	longpath[256] = '\0';
	BAD(SP_ERR_INVALID, authz_rule_set(fx->a, "r", longpath, true, false,
	    "t", &err));
	longpath[255] = '\0';		/* 255 characters is fine */
	rule(fx->a, "r", longpath, true, false);
	g = authz_generation(fx->a);
	BAD(SP_ERR_NOTFOUND, authz_rule_set(fx->a, "nope", "/x", true, false,
	    "t", &err));
	BAD(SP_ERR_NOTFOUND, authz_rule_remove(fx->a, "r", "/x", "t", &err));
	BAD(SP_ERR_NOTFOUND, authz_rule_remove(fx->a, "nope", "/x", "t",
	    &err));
	BAD(SP_ERR_INVALID, authz_rule_remove(fx->a, "r", "x", "t", &err));
#undef BAD
	/* None of that changed anything. */
	assert_true(authz_generation(fx->a) == g);
}

/* --- audit ---------------------------------------------------------------- */

struct events {
	char	buf[1024];
};

static int
audit_row(const struct store_audit_row *row, void *arg)
{
	struct events	*ev = arg;
	size_t		 len = strlen(ev->buf);

	snprintf(ev->buf + len, sizeof(ev->buf) - len, "%s ", row->event);
	return 0;
}

static void
test_audit(void **state)
{
	struct fixture			*fx = *state;
	X509				*x = mkcert(ISSUER1, "CN=aud", "0e01");
	struct store_audit_report	 rep;
	struct events			 ev = { "" };
	struct sp_err			 err = { 0 };
	json_t				*list, *out = NULL;

	mkrole(fx->a, "a");
	member(fx->a, "a", "cn", "aud", NULL);
	ok(authz_member_remove(fx->a, "a", "cn", "aud", NULL, "t", &err),
	    &err);
	rule(fx->a, "a", "/x", false, true);
	ok(authz_rule_remove(fx->a, "a", "/x", "t", &err), &err);
	ok(authz_incoming_record(fx->a, NULL, x, "a", NULL, &err), &err);
	list = authz_incoming_list(fx->a);
	ok(authz_incoming_authorize(fx->a, json_integer_value(json_object_get(
	    json_array_get(list, 0), "id")), NULL, NULL, "a", NULL, "t", &out,
	    &err), &err);
	json_decref(out);
	json_decref(list);
	ok(authz_role_delete(fx->a, "a", "t", &err), &err);
	/* A refused change writes no row. */
	assert_int_equal(authz_role_delete(fx->a, "a", "t", &err),
	    SP_ERR_NOTFOUND);
	ok(store_audit_foreach(fx->st, NULL, 100, audit_row, &ev), &err);
	/* Newest first. */
	assert_string_equal(ev.buf, "role.delete incoming.authorize "
	    "role.rule_remove role.rule_set role.member_remove "
	    "role.member_add role.create ");
	ok(store_audit_verify(fx->st, NULL, &rep, &err), &err);
	assert_int_equal(rep.rows, 7);
	X509_free(x);
}

/* --- admin commands ----------------------------------------------------- */

/* Runs cmd with args (JSON text); returns the response document. */
static json_t *
admin(struct fixture *fx, const char *cmd, const char *args)
{
	struct admin_ctx		 ctx = { 0 };
	const struct admin_handler	*h = admin_handler_find(cmd);
	json_t				*j, *res;

	ctx.st = fx->st;
	ctx.authz = fx->a;
	if (h == NULL)
		fail_msg("no admin command %s", cmd);
	assert_non_null(j = json_loads(args, 0, NULL));
	res = admin_dispatch(&ctx, h, j, "admin:test");
	json_decref(j);
	return res;
}

static void
admin_ok(struct fixture *fx, const char *cmd, const char *args)
{
	json_t	*res = admin(fx, cmd, args);

	if (!json_is_true(json_object_get(res, "ok"))) {
		char	*s = json_dumps(res, 0);

		fail_msg("%s %s: %s", cmd, args, s);
	}
	json_decref(res);
}

static void
admin_err(struct fixture *fx, const char *cmd, const char *args,
    const char *want)
{
	json_t		*res = admin(fx, cmd, args);
	const char	*msg = json_string_value(json_object_get(
			    json_object_get(res, "error"), "message"));

	assert_false(json_is_true(json_object_get(res, "ok")));
	if (msg == NULL || strstr(msg, want) == NULL)
		fail_msg("%s %s: \"%s\" lacks \"%s\"", cmd, args,
		    msg ? msg : "(none)", want);
	json_decref(res);
}

static void
test_admin_commands(void **state)
{
	struct fixture	*fx = *state;
	X509		*x = mkcert(ISSUER1, "CN=adm,O=Example", "0a0b");
	struct sp_err	 err = { 0 };
	json_t		*res;
	char		 args[128];

	admin_ok(fx, "role.create", "{\"name\": \"r1\"}");
	admin_err(fx, "role.create", "{\"name\": \"r1\"}", "already exists");
	admin_err(fx, "role.create", "{}", "missing argument \"name\"");
	admin_err(fx, "role.create", "{\"name\": 5}", "must be a string");
	admin_err(fx, "role.create", "{\"name\": \"x\", \"nmae\": \"y\"}",
	    "unknown argument \"nmae\"");
	admin_ok(fx, "role.member.add", "{\"role\": \"r1\", \"match\": "
	    "\"serial\", \"value\": \"0A:0B\", \"issuer\": \"" ISSUER1 "\"}");
	admin_err(fx, "role.member.add", "{\"role\": \"r1\", \"match\": "
	    "\"serial\", \"value\": \"0a0b\"}", "needs the issuer");
	admin_ok(fx, "role.rule.set", "{\"role\": \"r1\", \"path\": "
	    "\"/peerincoming\", \"action\": \"allow\"}");
	admin_ok(fx, "role.rule.set", "{\"role\": \"r1\", \"path\": \"/ca/\", "
	    "\"allow\": true, \"recursive\": true}");
	admin_err(fx, "role.rule.set", "{\"role\": \"r1\", \"path\": \"/x\", "
	    "\"action\": \"maybe\"}", "\"allow\" or \"deny\"");
	admin_err(fx, "role.rule.set", "{\"role\": \"r1\", \"path\": \"/x\"}",
	    "give the action");
	admin_err(fx, "role.rule.set", "{\"role\": \"r1\", \"path\": \"/x\", "
	    "\"action\": \"deny\", \"recursive\": \"yes\"}",
	    "must be true or false");
	allowed(fx->a, x, "/ca/Any/thing");

	res = admin(fx, "role.show", "{\"name\": \"r1\"}");
	assert_int_equal(json_array_size(json_object_get(json_object_get(res,
	    "result"), "rules")), 2);
	json_decref(res);
	res = admin(fx, "role.list", "{}");
	assert_int_equal(json_array_size(json_object_get(res, "result")), 1);
	json_decref(res);
	admin_ok(fx, "role.rule.remove", "{\"role\": \"r1\", \"path\": "
	    "\"/ca/\"}");
	refused(fx->a, x, "/ca/Any", "no rule allows");
	admin_ok(fx, "role.member.remove", "{\"role\": \"r1\", \"value\": "
	    "\"0a0b\", \"issuer\": \"" ISSUER1 "\"}");
	refused(fx->a, x, "/peerincoming", "no role");

	/* Incoming: the id comes as a string of digits from the CLI. */
	ok(authz_incoming_record(fx->a, NULL, x, "192.0.2.9:1", NULL, &err), &err);
	res = admin(fx, "peer.incoming.list", "{}");
	snprintf(args, sizeof(args), "{\"id\": \"%lld\", \"role\": \"r1\", "
	    "\"match\": \"dn\"}", (long long)json_integer_value(
	    json_object_get(json_array_get(json_object_get(res, "result"), 0),
	    "id")));
	json_decref(res);
	admin_err(fx, "peer.incoming.authorize", "{\"id\": \"12a\", "
	    "\"role\": \"r1\"}", "positive integer");
	admin_err(fx, "peer.incoming.authorize", "{\"id\": -1, "
	    "\"role\": \"r1\"}", "positive integer");
	admin_err(fx, "peer.incoming.authorize", "{\"id\": 1}",
	    "exactly one of");
	admin_ok(fx, "peer.incoming.authorize", args);
	allowed(fx->a, x, "/peerincoming");
	admin_ok(fx, "peer.incoming.authorize", "{\"id\": 1, \"new_role\": "
	    "\"r2\", \"preset\": \"renewal\", \"match\": \"fingerprint\"}");
	allowed(fx->a, x, "/internalkeybinding/modify/ocsp1");

	admin_ok(fx, "role.delete", "{\"name\": \"r1\"}");
	admin_err(fx, "role.delete", "{\"name\": \"r1\"}", "no role");
	X509_free(x);
}

/* --- concurrency -------------------------------------------------------- */

struct racer {
	struct authz	*a;
	X509		*x;
	int		 stop;
	int		 failures;
};

static void *
checker(void *arg)
{
	struct racer	*rc = arg;
	const char	*paths[] = { "/peerincoming" };

	while (!__atomic_load_n(&rc->stop, __ATOMIC_ACQUIRE)) {
		struct sp_err	err = { 0 };
		char		role[65];
		int		r;

		r = authz_check(rc->a, rc->x, paths, 1, role, &err);
		/* Always allowed: only the other role changes. */
		if (r != 0 || strcmp(role, "stable") != 0)
			__atomic_add_fetch(&rc->failures, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void
test_concurrent_checks(void **state)
{
	struct fixture	*fx = *state;
	struct racer	 rc = { fx->a, NULL, 0, 0 };
	pthread_t	 t[3];
	struct sp_err	 err = { 0 };

	rc.x = mkcert(ISSUER1, "CN=race", "0c01");
	mkrole(fx->a, "stable");
	member(fx->a, "stable", "cn", "race", NULL);
	rule(fx->a, "stable", "/peerincoming", true, false);
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&t[i], NULL, checker, &rc), 0);
	for (int i = 0; i < 20; i++) {
		mkrole(fx->a, "zz-churn");
		member(fx->a, "zz-churn", "cn", "race", NULL);
		rule(fx->a, "zz-churn", "/peerincoming", false, false);
		ok(authz_role_delete(fx->a, "zz-churn", "t", &err), &err);
	}
	__atomic_store_n(&rc.stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	/*
	 * While zz-churn exists and denies /peerincoming, "stable" still
	 * allows it (any role), and "stable" sorts first.
	 */
	assert_int_equal(rc.failures, 0);
	X509_free(rc.x);
}

/* A recorded role that was deleted since is not shown. */
static void
test_incoming_role_gone(void **state)
{
	struct fixture	*fx = *state;
	X509		*x = mkcert(ISSUER1, "CN=rg,O=Example", "7001");
	struct sp_err	 err = { 0 };
	json_t		*list;

	mkrole(fx->a, "rg");
	ok(authz_incoming_record(fx->a, NULL, x, "192.0.2.7:1", "rg", &err), &err);
	list = authz_incoming_list(fx->a);
	assert_string_equal(json_string_value(json_object_get(incoming_find(
	    list, "CN=rg,O=Example"), "role")), "rg");
	json_decref(list);
	ok(authz_role_delete(fx->a, "rg", "t", &err), &err);
	list = authz_incoming_list(fx->a);
	assert_string_equal(json_string_value(json_object_get(incoming_find(
	    list, "CN=rg,O=Example"), "role")), "");
	json_decref(list);
	X509_free(x);
}

/* --- two principals ----------------------------------------------------- */

/* An RA's role and an RA administrator's, as the RA issue sets them up. */
static void
two_roles(struct authz *a)
{
	mkrole(a, "ra");
	member(a, "ra", "cn", "ra.example", NULL);
	rule(a, "ra", "/ra/enroll", true, false);
	rule(a, "ra", "/ca/CA1", true, false);
	rule(a, "ra", "/certprofile/", true, true);
	mkrole(a, "admin");
	member(a, "admin", "cn", "alice", NULL);
	rule(a, "admin", "/ra/enroll", true, false);
	rule(a, "admin", "/ca/CA1", true, false);
	rule(a, "admin", "/ca/CA2", true, false);
	rule(a, "admin", "/certprofile/P1", true, false);
	rule(a, "admin", "/certprofile/P2", false, false);
}

static int
check2(struct authz *a, X509 *x1, X509 *x2, bool second,
    const char *const *paths, size_t n, struct authz_decision *d,
    struct sp_err *err)
{
	struct authz_principal	p1 = { x1, "RA" };
	struct authz_principal	p2 = { x2, "RA administrator" };

	sp_err_clear(err);
	return authz_check2(a, &p1, second ? &p2 : NULL, paths, n, d, err);
}

static void
test_check2_deny_wins(void **state)
{
	struct fixture		*fx = *state;
	X509			*ra = mkcert(ISSUER1, "CN=ra.example", "01");
	X509			*al = mkcert(ISSUER1, "CN=alice", "02");
	X509			*nobody = mkcert(ISSUER1, "CN=mallory", "03");
	const char		*ok1[] = { "/ra/enroll", "/ca/CA1",
				    "/certprofile/P1" };
	const char		*ca2[] = { "/ra/enroll", "/ca/CA2" };
	const char		*p2[] = { "/ra/enroll", "/certprofile/P2" };
	const char		*p3[] = { "/certprofile/P3" };
	const char		*mgmt[] = { "/ca/CA1", "/role/edit" };
	struct authz_decision	 d;
	struct sp_err		 err = { 0 };

	two_roles(fx->a);
	/* Both allow every path. */
	ok(check2(fx->a, ra, al, true, ok1, 3, &d, &err), &err);
	assert_true(d.allowed);
	assert_string_equal(d.p[0].role, "ra");
	assert_string_equal(d.p[1].role, "admin");
	assert_true(d.p[0].allowed && d.p[1].allowed);

	/* The administrator may use CA2, the RA may not: refused. */
	assert_int_equal(check2(fx->a, ra, al, true, ca2, 2, &d, &err),
	    SP_ERR_DENIED);
	assert_string_equal(err.msg, "RA: role ra: no rule allows /ca/CA2");
	assert_false(d.allowed);
	assert_false(d.p[0].allowed);
	assert_true(d.p[1].allowed);

	/* The RA's recursive allow does not beat the administrator's deny. */
	assert_int_equal(check2(fx->a, ra, al, true, p2, 2, &d, &err),
	    SP_ERR_DENIED);
	assert_string_equal(err.msg, "RA administrator: role admin: denied by "
	    "rule /certprofile/P2 for /certprofile/P2");
	assert_true(d.p[0].allowed);
	assert_false(d.p[1].allowed);

	/* Allowed to the RA, with no rule for the administrator. */
	assert_int_equal(check2(fx->a, ra, al, true, p3, 1, &d, &err),
	    SP_ERR_DENIED);
	assert_string_equal(err.msg, "RA administrator: role admin: no rule "
	    "allows /certprofile/P3");

	/* Neither has management rules; the first refusal is reported. */
	assert_int_equal(check2(fx->a, ra, al, true, mgmt, 2, &d, &err),
	    SP_ERR_DENIED);
	assert_string_equal(err.msg, "RA: role ra: no rule allows /role/edit");
	assert_false(d.p[0].allowed || d.p[1].allowed);

	/* A second principal in no role gets nothing, whatever the RA's. */
	assert_int_equal(check2(fx->a, ra, nobody, true, ok1, 3, &d, &err),
	    SP_ERR_DENIED);
	assert_string_equal(err.msg, "RA administrator: no role matches this "
	    "certificate");
	assert_string_equal(d.p[1].role, "");

	/* The intersection does not depend on the order. */
	assert_int_equal(check2(fx->a, al, ra, true, ca2, 2, &d, &err),
	    SP_ERR_DENIED);
	assert_string_equal(err.msg, "RA administrator: role ra: no rule "
	    "allows /ca/CA2");
	X509_free(ra);
	X509_free(al);
	X509_free(nobody);
}

static void
test_check2_no_second(void **state)
{
	struct fixture		*fx = *state;
	X509			*ra = mkcert(ISSUER1, "CN=ra.example", "01");
	X509			*nobody = mkcert(ISSUER1, "CN=mallory", "03");
	const char		*cases[][2] = {
		{ "/ra/enroll", "/ca/CA1" },	/* allowed */
		{ "/ra/enroll", "/ca/CA2" },	/* no rule */
		{ "/ca/CA1", "bad//path" },	/* malformed */
	};
	X509			*certs[] = { ra, nobody, NULL };
	struct authz_decision	 d;
	struct sp_err		 e1 = { 0 }, e2 = { 0 };
	char			 role[AUTHZ_ROLE_MAX + 1];
	int			 r1, r2;

	two_roles(fx->a);
	/*
	 * No second principal: exactly authz_check()'s decision, code and
	 * message, for allowed, refused, unknown and missing certificates.
	 */
	for (size_t c = 0; c < 3; c++)
		for (size_t i = 0; i < 3; i++) {
			sp_err_clear(&e1);
			r1 = authz_check(fx->a, certs[c], cases[i], 2, role,
			    &e1);
			r2 = check2(fx->a, certs[c], NULL, false, cases[i], 2,
			    &d, &e2);
			assert_int_equal(r1, r2);
			assert_string_equal(e1.msg, e2.msg);
			assert_string_equal(role, d.p[0].role);
			assert_int_equal(d.allowed, r1 == 0);
			assert_false(d.p[1].present);
		}
	ok(check2(fx->a, ra, NULL, false, cases[0], 2, &d, &e2), &e2);
	/* A second principal without a certificate fails closed. */
	assert_int_equal(check2(fx->a, ra, NULL, true, cases[0], 2, &d, &e2),
	    SP_ERR_DENIED);
	assert_string_equal(e2.msg, "RA administrator: no client certificate");
	assert_true(d.p[0].allowed);
	assert_true(d.p[1].present);
	assert_false(d.p[1].allowed);
	/* No principal and no paths are refused. */
	sp_err_clear(&e2);
	assert_int_equal(authz_check2(fx->a, NULL, NULL, cases[0], 2, &d,
	    &e2), SP_ERR_DENIED);
	assert_int_equal(check2(fx->a, ra, ra, true, cases[0], 0, &d, &e2),
	    SP_ERR_DENIED);
	assert_string_equal(e2.msg, "no access rule to check");
	X509_free(ra);
	X509_free(nobody);
}

struct last_row {
	char	event[64];
	json_t	*details;
};

static int
last_row(const struct store_audit_row *row, void *arg)
{
	struct last_row	*lr = arg;

	snprintf(lr->event, sizeof(lr->event), "%s", row->event);
	lr->details = json_loads(row->details, 0, NULL);
	return 0;
}

static void
test_check2_audit(void **state)
{
	struct fixture		*fx = *state;
	X509			*ra = mkcert(ISSUER1, "CN=ra.example", "0a");
	X509			*al = mkcert(ISSUER2, "CN=alice", "0b");
	const char		*paths[] = { "/ra/enroll", "/ca/CA2" };
	struct authz_decision	 d;
	struct last_row		 lr = { "", NULL };
	struct sp_err		 err = { 0 };
	json_t			*pr;
	char			 fp1[65], fp2[65];

	two_roles(fx->a);
	fingerprint(ra, fp1);
	fingerprint(al, fp2);
	assert_int_equal(check2(fx->a, ra, al, true, paths, 2, &d, &err),
	    SP_ERR_DENIED);
	ok(authz_decision_audit(fx->a, "ra.enroll", "ra:ra.example", &d,
	    &err), &err);
	ok(store_audit_foreach(fx->st, NULL, 1, last_row, &lr), &err);
	assert_string_equal(lr.event, "ra.enroll");
	assert_non_null(lr.details);
	assert_false(json_is_true(json_object_get(lr.details, "allowed")));
	assert_string_equal(json_string_value(json_object_get(lr.details,
	    "reason")), "RA: role ra: no rule allows /ca/CA2");
	assert_int_equal(json_array_size(json_object_get(lr.details,
	    "paths")), 2);
	/* One row naming both principals. */
	assert_int_equal(json_array_size(pr = json_object_get(lr.details,
	    "principals")), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    pr, 0), "label")), "RA");
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    pr, 0), "subject")), "CN=ra.example");
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    pr, 0), "fingerprint")), fp1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    pr, 0), "role")), "ra");
	assert_false(json_is_true(json_object_get(json_array_get(pr, 0),
	    "allowed")));
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    pr, 1), "label")), "RA administrator");
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    pr, 1), "subject")), "CN=alice");
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    pr, 1), "serial")), "0b");
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    pr, 1), "fingerprint")), fp2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    pr, 1), "role")), "admin");
	assert_true(json_is_true(json_object_get(json_array_get(pr, 1),
	    "allowed")));
	json_decref(lr.details);
	X509_free(ra);
	X509_free(al);
}

static void
test_rules_from_request(void **state)
{
	struct fixture		*fx = *state;
	X509			*ra = mkcert(ISSUER1, "CN=ra.example", "01");
	X509			*al = mkcert(ISSUER1, "CN=alice", "02");
	struct authz_rules	 ru;
	struct sp_err		 err = { 0 };
	const char		*bad[] = { "", "a/b", "..", ".", "x y",
				    "../ca/CA2" };

	two_roles(fx->a);
	authz_rules_init(&ru);
	ok(authz_rules_add(&ru, "/ra/enroll", NULL, &err), &err);
	ok(authz_rules_add(&ru, "/ca", "CA1", &err), &err);
	ok(authz_rules_add(&ru, "/certprofile/", "P1", &err), &err);
	assert_int_equal(ru.n, 3);
	assert_string_equal(ru.paths[1], "/ca/CA1");
	assert_string_equal(ru.paths[2], "/certprofile/P1");
	ok(check2(fx->a, ra, al, true, ru.paths, ru.n, NULL, &err), &err);
	/* A name from a request is one component, never a way out. */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sp_err_clear(&err);
		assert_int_equal(authz_rules_add(&ru, "/ca", bad[i], &err),
		    SP_ERR_INVALID);
	}
	assert_int_equal(ru.n, 3);
	while (ru.n < AUTHZ_RULES_MAX)
		ok(authz_rules_add(&ru, "/ca", "CA1", &err), &err);
	assert_int_equal(authz_rules_add(&ru, "/ca", "CA1", &err),
	    SP_ERR_LIMIT);
	X509_free(ra);
	X509_free(al);
}

#define T(f)	cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_rules_exact_and_recursive),
		T(test_rules_deny_wins),
		T(test_rules_several_paths),
		T(test_member_serial),
		T(test_member_dn_cn_fingerprint),
		T(test_multi_role),
		T(test_generation),
		T(test_persistence),
		T(test_store_garbage),
		T(test_incoming_record_list),
		T(test_incoming_capped),
		T(test_incoming_authorize),
		T(test_presets),
		T(test_bad_input),
		T(test_audit),
		T(test_admin_commands),
		T(test_concurrent_checks),
		T(test_incoming_role_gone),
		T(test_check2_deny_wins),
		T(test_check2_no_second),
		T(test_check2_audit),
		T(test_rules_from_request),
	};

	return cmocka_run_group_tests_name("authz", tests, group_setup,
	    group_teardown);
}
