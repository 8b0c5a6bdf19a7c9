/*
 * Unit tests for ca/profile.c: the built-in profiles, the JSON schema and
 * its cross-field rules, "key=value" edits, and profile_check() against
 * CSRs built here (key algorithms, validity, names, subjectAltName).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca/profile.h"
#include "crypto/dn.h"
#include "crypto/key.h"
#include "util/log.h"

struct keys {
	EVP_PKEY	*ec;		/* P-256 */
	EVP_PKEY	*ec384;
	EVP_PKEY	*ec521;		/* not supported */
	EVP_PKEY	*rsa1024;	/* not supported */
	EVP_PKEY	*rsa2048;
	EVP_PKEY	*ed;
};

static struct keys	K;

static int
group_setup(void **state)
{
	(void)state;
	log_init(LOG_LVL_WARN);
	K.ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	K.ec384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	K.ec521 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
	K.rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	K.rsa2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	K.ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	return K.ec && K.ec384 && K.ec521 && K.rsa1024 && K.rsa2048 && K.ed ?
	    0 : -1;
}

static int
group_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(K.ec);
	EVP_PKEY_free(K.ec384);
	EVP_PKEY_free(K.ec521);
	EVP_PKEY_free(K.rsa1024);
	EVP_PKEY_free(K.rsa2048);
	EVP_PKEY_free(K.ed);
	return 0;
}

/* --- helpers -------------------------------------------------------------- */

/* The built-in profile with this name. */
static struct profile *
builtin(const char *name)
{
	struct sp_err	 err = { 0 };
	struct profile	*p;

	for (size_t i = 0; i < profile_builtin_count(); i++) {
		p = NULL;
		assert_int_equal(profile_builtin(i, &p, &err), 0);
		if (strcmp(p->name, name) == 0)
			return p;
		profile_free(p);
	}
	print_error("no builtin %s\n", name);
	fail();
	return NULL;
}

static struct profile *
from_json(const char *name, const char *text, struct sp_err *err, int *rc)
{
	json_error_t	 je;
	json_t		*doc = json_loads(text, 0, &je);
	struct profile	*p = (struct profile *)(uintptr_t)1;

	if (doc == NULL)
		print_error("bad test JSON: %s\n", je.text);
	assert_non_null(doc);
	*rc = profile_from_json(name, doc, false, &p, err);
	json_decref(doc);
	if (*rc != 0)
		assert_null(p);
	return p;
}

static void
json_bad(const char *text, const char *want)
{
	struct sp_err	 err = { 0 };
	struct profile	*p;
	int		 rc;

	p = from_json("P", text, &err, &rc);
	assert_int_equal(rc, SP_ERR_INVALID);
	assert_null(p);
	if (want != NULL && strstr(err.msg, want) == NULL) {
		print_error("%s: message \"%s\" lacks \"%s\"\n", text, err.msg,
		    want);
		fail();
	}
}

static void
set_ok(struct profile *p, const char *assignment)
{
	struct sp_err	err = { 0 };

	if (profile_set(p, assignment, &err) != 0)
		print_error("profile_set(%s): %s\n", assignment, err.msg);
	assert_int_equal(err.code, 0);
}

/* Expects the assignment to fail and leave p exactly as it was. */
static void
set_bad(struct profile *p, const char *assignment, const char *want)
{
	struct sp_err	 err = { 0 };
	json_t		*before = profile_to_json(p), *after;
	bool		 was_builtin = p->builtin;
	int		 r;

	r = profile_set(p, assignment, &err);
	if (r != SP_ERR_INVALID)
		print_error("profile_set(%s) = %d (%s)\n", assignment, r,
		    err.msg);
	assert_int_equal(r, SP_ERR_INVALID);
	if (want != NULL && strstr(err.msg, want) == NULL) {
		print_error("%s: message \"%s\" lacks \"%s\"\n", assignment,
		    err.msg, want);
		fail();
	}
	after = profile_to_json(p);
	assert_true(json_equal(before, after));
	assert_int_equal(p->builtin, was_builtin);
	json_decref(before);
	json_decref(after);
}

/*
 * Appends a GeneralName to gens: "DNS:", "IP:", "email:", "URI:" or
 * "ipraw:" (the raw bytes after the colon as an iPAddress).
 */
static void
san_push(GENERAL_NAMES *gens, const char *spec)
{
	GENERAL_NAME	*gn = GENERAL_NAME_new();
	const char	*v = strchr(spec, ':') + 1;

	assert_non_null(gn);
	if (strncmp(spec, "IP:", 3) == 0) {
		ASN1_OCTET_STRING *ip = a2i_IPADDRESS(v);

		assert_non_null(ip);
		GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
	} else if (strncmp(spec, "ipraw:", 6) == 0) {
		ASN1_OCTET_STRING *ip = ASN1_OCTET_STRING_new();

		assert_non_null(ip);
		assert_true(ASN1_OCTET_STRING_set(ip,
		    (const unsigned char *)v, (int)strlen(v)));
		GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
	} else if (strncmp(spec, "dir:", 4) == 0) {
		X509_NAME *n = X509_NAME_new();

		assert_non_null(n);
		assert_true(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
		    (const unsigned char *)v, -1, -1, 0));
		GENERAL_NAME_set0_value(gn, GEN_DIRNAME, n);
	} else {
		ASN1_IA5STRING	*s = ASN1_IA5STRING_new();
		int		 type = GEN_URI;

		if (strncmp(spec, "DNS:", 4) == 0)
			type = GEN_DNS;
		else if (strncmp(spec, "email:", 6) == 0)
			type = GEN_EMAIL;
		assert_non_null(s);
		assert_true(ASN1_STRING_set(s, v, -1));
		GENERAL_NAME_set0_value(gn, type, s);
	}
	assert_true(sk_GENERAL_NAME_push(gens, gn) > 0);
}

/*
 * A signed CSR: CN as a UTF8String (no length limit applied; NULL for an
 * empty subject), and a subjectAltName extension request from the NULL
 * terminated specs (NULL specs: no extension; { NULL }: an empty one).
 */
static X509_REQ *
make_req(EVP_PKEY *pk, const char *cn, const char *const *specs)
{
	X509_REQ	*req = X509_REQ_new();
	X509_NAME	*name = X509_NAME_new();
	const EVP_MD	*md = EVP_PKEY_is_a(pk, "ED25519") ? NULL :
			    EVP_sha256();

	assert_non_null(req);
	assert_non_null(name);
	if (cn != NULL)
		assert_true(X509_NAME_add_entry_by_txt(name, "CN",
		    V_ASN1_UTF8STRING, (const unsigned char *)cn, -1, -1, 0));
	assert_true(X509_REQ_set_subject_name(req, name));
	X509_NAME_free(name);
	assert_true(X509_REQ_set_pubkey(req, pk));
	if (specs != NULL) {
		STACK_OF(X509_EXTENSION)	*exts = NULL;
		GENERAL_NAMES			*gens = GENERAL_NAMES_new();

		assert_non_null(gens);
		for (size_t i = 0; specs[i] != NULL; i++)
			san_push(gens, specs[i]);
		assert_int_equal(X509V3_add1_i2d(&exts, NID_subject_alt_name,
		    gens, 0, 0), 1);
		assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
		GENERAL_NAMES_free(gens);
	}
	assert_true(X509_REQ_sign(req, pk, md) > 0);
	return req;
}

static void
check_ok(const struct profile *p, EVP_PKEY *pk, const char *cn,
    const char *const *specs, int days, int want_sans)
{
	X509_REQ	*req = make_req(pk, cn, specs);
	GENERAL_NAMES	*sans = (GENERAL_NAMES *)(uintptr_t)1;
	struct sp_err	 err = { 0 };

	if (profile_check(p, req, days, &sans, &err) != 0)
		print_error("profile %s: %s\n", p->name, err.msg);
	assert_int_equal(err.code, 0);
	if (want_sans < 0)
		assert_null(sans);
	else {
		assert_non_null(sans);
		assert_int_equal(sk_GENERAL_NAME_num(sans), want_sans);
	}
	GENERAL_NAMES_free(sans);
	X509_REQ_free(req);
}

static void
check_bad(const struct profile *p, EVP_PKEY *pk, const char *cn,
    const char *const *specs, int days, const char *want)
{
	X509_REQ	*req = make_req(pk, cn, specs);
	GENERAL_NAMES	*sans = (GENERAL_NAMES *)(uintptr_t)1;
	struct sp_err	 err = { 0 };
	int		 r;

	r = profile_check(p, req, days, &sans, &err);
	if (r != SP_ERR_POLICY)
		print_error("profile %s: want policy, got %d (%s)\n", p->name,
		    r, err.msg);
	assert_int_equal(r, SP_ERR_POLICY);
	assert_int_equal(err.code, SP_ERR_POLICY);
	assert_null(sans);
	if (want != NULL && strstr(err.msg, want) == NULL) {
		print_error("message \"%s\" lacks \"%s\"\n", err.msg, want);
		fail();
	}
	/* Rejections name the profile. */
	assert_non_null(strstr(err.msg, p->name));
	X509_REQ_free(req);
}

/*
 * profile_check() on a fresh CSR; returns its code with everything freed,
 * so a failing assertion afterwards leaks nothing.
 */
static int
check_rc(const struct profile *p, EVP_PKEY *pk, const char *cn,
    const char *const *specs, int days, struct sp_err *err)
{
	X509_REQ	*req = make_req(pk, cn, specs);
	GENERAL_NAMES	*sans = NULL;
	int		 r;

	r = profile_check(p, req, days, &sans, err);
	GENERAL_NAMES_free(sans);
	X509_REQ_free(req);
	return r;
}

/* --- built-in profiles ---------------------------------------------------- */

static void
test_builtins_load(void **state)
{
	static const char *const	 names[] = { "ROOTCA", "SUBCA",
					    "ENDUSER", "TLS_SERVER",
					    "TLS_CLIENT", "OCSPSIGNER" };
	struct sp_err			 err = { 0 };
	struct profile			*p = (struct profile *)(uintptr_t)1;

	(void)state;
	assert_int_equal(profile_builtin_count(), 6);
	for (size_t i = 0; i < profile_builtin_count(); i++) {
		struct profile	*q = NULL;
		json_t		*a, *b;

		assert_int_equal(profile_builtin(i, &p, &err), 0);
		assert_non_null(p);
		assert_string_equal(p->name, names[i]);
		assert_true(p->builtin);
		assert_true(p->key_algs != 0);
		assert_true(p->validity_days > 0);
		/* ca <=> keyCertSign. */
		assert_int_equal(p->ca, (p->key_usage & (1u << 5)) != 0);

		/* JSON round trip. */
		a = profile_to_json(p);
		assert_non_null(a);
		assert_int_equal(profile_from_json(p->name, a, true, &q, &err),
		    0);
		b = profile_to_json(q);
		assert_true(json_equal(a, b));
		json_decref(a);
		json_decref(b);
		profile_free(q);
		profile_free(p);
	}
	assert_int_equal(profile_builtin(profile_builtin_count(), &p, &err),
	    SP_ERR_NOTFOUND);
	assert_null(p);
	profile_free(NULL);
}

static void
test_builtin_contents(void **state)
{
	struct profile	*p;

	(void)state;
	p = builtin("ROOTCA");
	assert_true(p->ca);
	assert_int_equal(p->path_len, -1);
	assert_true(p->key_usage & (1u << 5) && p->key_usage & (1u << 6));
	assert_true(p->key_usage_critical);
	profile_free(p);

	p = builtin("SUBCA");
	assert_true(p->ca);
	assert_int_equal(p->path_len, 0);
	profile_free(p);

	p = builtin("TLS_SERVER");
	assert_false(p->ca);
	assert_true(p->san_required);
	assert_int_equal(p->san_types, SAN_DNS | SAN_IP);
	assert_int_equal(p->validity_days, 397);
	assert_int_equal(p->neku, 1);
	assert_int_equal(p->eku[0], NID_server_auth);
	assert_false(p->key_algs & (1u << KEY_ED25519));
	assert_true(p->key_algs & (1u << KEY_EC_P256));
	profile_free(p);

	p = builtin("OCSPSIGNER");
	assert_true(p->ocsp_nocheck);
	assert_int_equal(p->eku[0], NID_OCSP_sign);
	assert_int_equal(p->key_usage, 1u << 0);
	profile_free(p);

	p = builtin("ENDUSER");
	assert_int_equal(p->san_types, SAN_DNS | SAN_EMAIL);
	assert_false(p->san_required);
	profile_free(p);
}

/* --- JSON documents ------------------------------------------------------- */

static void
test_json_rules(void **state)
{
	struct sp_err	 err = { 0 };
	struct profile	*p;
	int		 rc;

	(void)state;
	/* Defaults for what the document leaves out. */
	p = from_json("Min", "{\"key_algs\":[\"ec-p256\"]}", &err, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(p->validity_days, 365);
	assert_int_equal(p->path_len, -1);
	assert_true(p->key_usage_critical);
	assert_false(p->ca);
	assert_false(p->builtin);
	assert_int_equal(p->key_algs, 1u << KEY_EC_P256);
	assert_null(p->ocsp_url);
	profile_free(p);

	/* RFC 5280 4.2.1.9 / 4.2.1.3: ca and keyCertSign go together. */
	json_bad("{\"ca\":true,\"key_usage\":[\"digitalSignature\"],"
	    "\"key_algs\":[\"ec-p256\"]}", "keyCertSign");
	json_bad("{\"ca\":true,\"key_algs\":[\"ec-p256\"]}", "keyCertSign");
	json_bad("{\"key_usage\":[\"keyCertSign\"],\"key_algs\":[\"ec-p256\"]}",
	    "ca=true");
	json_bad("{\"ca\":false,\"key_usage\":[\"keyCertSign\",\"cRLSign\"],"
	    "\"key_algs\":[\"ec-p256\"]}", "ca=true");

	/* Strict schema. */
	json_bad("{\"key_algs\":[\"ec-p256\"],\"colour\":\"blue\"}", "colour");
	json_bad("{}", "key_algs");
	json_bad("{\"key_algs\":[]}", "key_algs");
	json_bad("{\"key_algs\":\"ec-p256\"}", "list");
	json_bad("{\"key_algs\":[1]}", "strings");
	json_bad("{\"key_algs\":[\"dsa1024\"]}", "dsa1024");
	json_bad("{\"key_algs\":[\"ec-p256\"],\"validity_days\":\"30\"}",
	    "validity_days");
	json_bad("{\"key_algs\":[\"ec-p256\"],\"validity_days\":0}",
	    "validity_days");
	json_bad("{\"key_algs\":[\"ec-p256\"],\"validity_days\":36501}",
	    "validity_days");
	json_bad("{\"key_algs\":[\"ec-p256\"],\"validity_days\":1.5}",
	    "validity_days");
	json_bad("{\"key_algs\":[\"ec-p256\"],\"path_len\":17}", "path_len");
	json_bad("{\"key_algs\":[\"ec-p256\"],\"ca\":1}", "true or false");
	json_bad("{\"key_algs\":[\"ec-p256\"],\"san_types\":[\"x400\"]}",
	    "x400");
	json_bad("{\"key_algs\":[\"ec-p256\"],\"ext_key_usage\":[\"any\"]}",
	    "any");
	json_bad("{\"key_algs\":[\"ec-p256\"],\"key_usage\":[\"sign\"]}",
	    "sign");
	json_bad("{\"key_algs\":[\"ec-p256\"],\"crl_dp\":[\"file:///x\"]}",
	    "crl_dp");
	json_bad("{\"key_algs\":[\"ec-p256\"],\"ocsp_url\":\"gopher://x\"}",
	    "ocsp_url");
	json_bad("{\"key_algs\":[\"ec-p256\"],\"ocsp_url\":7}", "ocsp_url");
	json_bad("[1,2]", "object");

	/* Names. */
	p = from_json("bad name", "{\"key_algs\":[\"ec-p256\"]}", &err, &rc);
	assert_int_equal(rc, SP_ERR_INVALID);
	p = from_json("", "{\"key_algs\":[\"ec-p256\"]}", &err, &rc);
	assert_int_equal(rc, SP_ERR_INVALID);
	(void)p;
}

static void
test_clone(void **state)
{
	struct profile	*src = builtin("TLS_SERVER"), *c = NULL;
	struct sp_err	 err = { 0 };
	json_t		*a, *b;

	(void)state;
	assert_int_equal(profile_clone(src, "MY_TLS", &c, &err), 0);
	assert_string_equal(c->name, "MY_TLS");
	assert_false(c->builtin);
	a = profile_to_json(src);
	b = profile_to_json(c);
	assert_true(json_equal(a, b));
	json_decref(a);
	json_decref(b);
	profile_free(c);

	c = (struct profile *)(uintptr_t)1;
	assert_int_equal(profile_clone(src, "no/slash", &c, &err),
	    SP_ERR_INVALID);
	assert_null(c);
	profile_free(src);
}

/* --- profile_set ---------------------------------------------------------- */

static void
test_set_int(void **state)
{
	struct profile	*p = builtin("TLS_SERVER");

	(void)state;
	set_ok(p, "validity_days=30");
	assert_int_equal(p->validity_days, 30);
	set_ok(p, "validity_days=1");
	set_ok(p, "validity_days=36500");
	assert_int_equal(p->validity_days, 36500);
	set_bad(p, "validity_days=0", "too small");
	set_bad(p, "validity_days=36501", "too large");
	set_bad(p, "validity_days=-1", "too small");
	set_bad(p, "validity_days=abc", "invalid");
	set_bad(p, "validity_days=", "invalid");
	set_bad(p, "validity_days=30days", "invalid");
	set_bad(p, "validity_days=99999999999999999999", "too large");
	assert_int_equal(p->validity_days, 36500);

	set_ok(p, "path_len=-1");
	set_ok(p, "path_len=16");
	assert_int_equal(p->path_len, 16);
	set_bad(p, "path_len=17", "too large");
	set_bad(p, "path_len=-2", "too small");
	/* A built-in object edited in memory stays marked built-in. */
	assert_true(p->builtin);
	profile_free(p);
}

static void
test_set_bool(void **state)
{
	struct profile	*p = builtin("TLS_CLIENT");

	(void)state;
	set_ok(p, "key_usage_critical=false");
	assert_false(p->key_usage_critical);
	set_ok(p, "key_usage_critical=true");
	assert_true(p->key_usage_critical);
	set_ok(p, "san_required=true");
	assert_true(p->san_required);
	set_ok(p, "ocsp_nocheck=true");
	assert_true(p->ocsp_nocheck);
	set_bad(p, "san_required=yes", "true or false");
	set_bad(p, "san_required=TRUE", "true or false");
	set_bad(p, "san_required=1", "true or false");
	set_bad(p, "san_required=", "true or false");
	profile_free(p);
}

static void
test_set_list(void **state)
{
	struct profile	*p = builtin("TLS_CLIENT");

	(void)state;
	set_ok(p, "key_algs=ec-p384,rsa3072");
	assert_int_equal(p->key_algs, 1u << KEY_EC_P384 | 1u << KEY_RSA3072);
	set_bad(p, "key_algs=ec-p256,bogus", "bogus");
	set_bad(p, "key_algs=", "key_algs");
	set_bad(p, "key_algs=,", "key_algs");
	set_bad(p, "key_algs=EC-P256", "EC-P256");

	set_ok(p, "ext_key_usage=serverAuth,clientAuth,OCSPSigning");
	assert_int_equal(p->neku, 3);
	assert_int_equal(p->eku[0], NID_server_auth);
	assert_int_equal(p->eku[2], NID_OCSP_sign);
	set_bad(p, "ext_key_usage=fooAuth", "fooAuth");
	set_bad(p, "ext_key_usage=serverAuth,serverAuth,serverAuth,"
	    "serverAuth,serverAuth,serverAuth,serverAuth,serverAuth,"
	    "serverAuth", "too many");
	set_ok(p, "ext_key_usage=");
	assert_int_equal(p->neku, 0);

	set_ok(p, "san_types=email,uri");
	assert_int_equal(p->san_types, SAN_EMAIL | SAN_URI);
	set_bad(p, "san_types=dns,x400", "x400");
	set_ok(p, "san_types=");
	assert_int_equal(p->san_types, 0);

	set_ok(p, "key_usage=digitalSignature,keyAgreement");
	assert_int_equal(p->key_usage, 1u << 0 | 1u << 4);
	set_bad(p, "key_usage=digitalsignature", "digitalsignature");

	set_ok(p, "crl_dp=http://crl.example/a.crl,https://b.example/b.crl");
	assert_int_equal(p->ncrl_dp, 2);
	assert_string_equal(p->crl_dp[0], "http://crl.example/a.crl");
	assert_string_equal(p->crl_dp[1], "https://b.example/b.crl");
	set_bad(p, "crl_dp=ftp://crl.example/a.crl", "crl_dp");
	set_bad(p, "crl_dp=http://a b/", "crl_dp");
	set_bad(p, "crl_dp=http://1,http://2,http://3,http://4,http://5,"
	    "http://6,http://7,http://8,http://9", "too many");
	assert_int_equal(p->ncrl_dp, 2);
	set_ok(p, "crl_dp=");
	assert_int_equal(p->ncrl_dp, 0);
	profile_free(p);
}

static void
test_set_url(void **state)
{
	struct profile	*p = builtin("TLS_SERVER");
	char		 longurl[600];

	(void)state;
	set_ok(p, "ocsp_url=http://ocsp.example/");
	assert_string_equal(p->ocsp_url, "http://ocsp.example/");
	set_bad(p, "ocsp_url=ftp://ocsp.example/", "URL");
	set_bad(p, "ocsp_url=http://ocsp.example/\x7f", "URL");
	set_bad(p, "ocsp_url=ocsp.example", "URL");
	snprintf(longurl, sizeof(longurl), "ocsp_url=http://%0550d", 0);
	set_bad(p, longurl, "URL");
	assert_string_equal(p->ocsp_url, "http://ocsp.example/");
	set_ok(p, "ocsp_url=");
	assert_null(p->ocsp_url);
	profile_free(p);
}

static void
test_set_unknown(void **state)
{
	struct profile	*p = builtin("ENDUSER");
	char		 longkey[100];

	(void)state;
	set_bad(p, "colour=blue", "colour");
	set_bad(p, "validity_days", "key=value");
	set_bad(p, "", "key=value");
	set_bad(p, "=5", "unknown");
	memset(longkey, 'k', sizeof(longkey));
	memcpy(longkey + 80, "=1", 3);
	set_bad(p, longkey, "key=value");
	profile_free(p);
}

static void
test_set_ca_rules(void **state)
{
	struct profile	*p = builtin("ROOTCA");

	(void)state;
	/* A CA profile without keyCertSign. */
	set_bad(p, "key_usage=digitalSignature,cRLSign", "keyCertSign");
	set_bad(p, "ca=false", "ca=true");
	assert_true(p->ca);
	profile_free(p);

	/* keyCertSign without ca. */
	p = builtin("TLS_SERVER");
	set_bad(p, "key_usage=digitalSignature,keyCertSign", "ca=true");
	set_bad(p, "ca=true", "keyCertSign");
	assert_false(p->ca);
	profile_free(p);
}

static void
test_set_non_utf8(void **state)
{
	struct profile	*p = builtin("TLS_SERVER");
	struct sp_err	 e1 = { 0 }, e2 = { 0 };
	unsigned int	 before = p->key_algs, after;
	int		 r1, r2;

	(void)state;
	/*
	 * An entry that is not UTF-8 is a bad value like any other: it must
	 * be refused, not dropped from the list or reported as a lack of
	 * memory. Everything is freed before asserting.
	 */
	r1 = profile_set(p, "key_algs=ec-p256,\xff", &e1);
	after = p->key_algs;
	r2 = profile_set(p, "ocsp_url=http://\xff/", &e2);
	profile_free(p);
	if (r1 != SP_ERR_INVALID)
		print_error("key_algs with a non-UTF-8 entry: rc %d (%s), "
		    "key_algs 0x%x -> 0x%x\n", r1, e1.msg, before, after);
	if (r2 != SP_ERR_INVALID)
		print_error("ocsp_url with a non-UTF-8 byte: rc %d (%s)\n", r2,
		    e2.msg);
	assert_int_equal(r1, SP_ERR_INVALID);
	assert_int_equal(after, before);
	assert_int_equal(r2, SP_ERR_INVALID);
}

/* --- profile_check -------------------------------------------------------- */

static const char *const	dns1[] = { "DNS:www.example.com", NULL };

static void
test_check_key_algs(void **state)
{
	struct profile	*tls = builtin("TLS_SERVER");
	struct profile	*eu = builtin("ENDUSER");

	(void)state;
	check_ok(tls, K.ec, "www.example.com", dns1, 0, 1);
	check_ok(tls, K.ec384, "www.example.com", dns1, 0, 1);
	check_ok(tls, K.rsa2048, "www.example.com", dns1, 0, 1);
	/* Not a supported size at all. */
	check_bad(tls, K.rsa1024, "www.example.com", dns1, 0, "key_algs");
	check_bad(eu, K.rsa1024, "x", NULL, 0, "key_algs");
	check_bad(eu, K.ec521, "x", NULL, 0, "key_algs");
	/* Supported, but not by this profile. */
	check_bad(tls, K.ed, "www.example.com", dns1, 0, "ed25519");
	check_bad(tls, K.ed, "www.example.com", dns1, 0, "key_algs");
	check_ok(eu, K.ed, "Ed User", NULL, 0, -1);

	set_ok(tls, "key_algs=ec-p384");
	check_bad(tls, K.ec, "www.example.com", dns1, 0, "ec-p256");
	check_ok(tls, K.ec384, "www.example.com", dns1, 0, 1);
	profile_free(tls);
	profile_free(eu);
}

static void
test_check_validity(void **state)
{
	struct profile	*tls = builtin("TLS_SERVER");

	(void)state;
	check_ok(tls, K.ec, "v", dns1, 0, 1);		/* the profile's */
	check_ok(tls, K.ec, "v", dns1, 1, 1);
	check_ok(tls, K.ec, "v", dns1, 397, 1);
	check_bad(tls, K.ec, "v", dns1, 398, "validity_days");
	check_bad(tls, K.ec, "v", dns1, 100000, "validity_days");
	check_bad(tls, K.ec, "v", dns1, -1, "validity_days");
	set_ok(tls, "validity_days=30");
	check_ok(tls, K.ec, "v", dns1, 30, 1);
	check_bad(tls, K.ec, "v", dns1, 31, "30");
	profile_free(tls);
}

static void
test_check_san_required(void **state)
{
	struct profile		*tls = builtin("TLS_SERVER");
	struct profile		*eu = builtin("ENDUSER");
	static const char *const email[] = { "email:a@example.org", NULL };

	(void)state;
	check_bad(tls, K.ec, "www.example.com", NULL, 0, "san_required");
	/* Optional elsewhere... */
	check_ok(eu, K.ec, "A User", NULL, 0, -1);
	/* ...but an empty subject needs a SAN (RFC 5280 4.1.2.6). */
	check_bad(eu, K.ec, NULL, NULL, 0, "empty subject");
	check_ok(eu, K.ec, NULL, email, 0, 1);
	profile_free(tls);
	profile_free(eu);
}

static void
test_check_san_empty_extension(void **state)
{
	struct profile		*tls = builtin("TLS_SERVER");
	struct profile		*eu = builtin("ENDUSER");
	static const char *const none[] = { NULL };
	struct sp_err		 e1 = { 0 }, e2 = { 0 };
	int			 r1, r2;

	(void)state;
	/*
	 * A subjectAltName extension with no names carries no name: it
	 * cannot satisfy san_required, nor stand in for an empty subject
	 * (RFC 5280 4.2.1.6: the extension holds at least one name).
	 */
	r1 = check_rc(tls, K.ec, "www.example.com", none, 0, &e1);
	r2 = check_rc(eu, K.ec, NULL, none, 0, &e2);
	profile_free(tls);
	profile_free(eu);
	if (r1 != SP_ERR_POLICY)
		print_error("TLS_SERVER, empty SAN extension: rc %d\n", r1);
	if (r2 != SP_ERR_POLICY)
		print_error("ENDUSER, empty subject and empty SAN extension: "
		    "rc %d\n", r2);
	assert_int_equal(r1, SP_ERR_POLICY);
	assert_non_null(strstr(e1.msg, "san_required"));
	assert_int_equal(r2, SP_ERR_POLICY);
}

static void
test_check_san_types(void **state)
{
	struct profile		*tls = builtin("TLS_SERVER");
	struct profile		*cli = builtin("TLS_CLIENT");
	static const char *const email[] = { "DNS:ok.example",
				    "email:a@example.org", NULL };
	static const char *const uri[] = { "URI:spiffe://example/x", NULL };
	static const char *const ips[] = { "IP:192.0.2.1", "IP:2001:db8::1",
				    "DNS:ok.example", NULL };
	static const char *const badip[] = { "ipraw:12345", NULL };
	static const char *const dir[] = { "dir:Someone", NULL };

	(void)state;
	check_bad(tls, K.ec, "x", email, 0, "san_types");
	check_bad(tls, K.ec, "x", email, 0, "email");
	check_bad(tls, K.ec, "x", uri, 0, "san_types");
	check_ok(cli, K.ec, "x", uri, 0, 1);
	check_ok(cli, K.ec, "x", email, 0, 2);
	check_ok(tls, K.ec, "x", ips, 0, 3);
	check_bad(tls, K.ec, "x", badip, 0, "IP address");
	check_bad(cli, K.ec, "x", dir, 0, "not allowed");
	profile_free(tls);
	profile_free(cli);
}

static void
test_check_dns_names(void **state)
{
	struct profile	*tls = builtin("TLS_SERVER");
	static const char *const good[] = {
		"DNS:example.com", "DNS:a", "DNS:*.example.com",
		"DNS:xn--bcher-kva.example", "DNS:a-b.c-d.example",
		"DNS:123.example", NULL,
	};
	static const char *const bad[] = {
		"DNS:bad..example", "DNS:.example.com", "DNS:example.com.",
		"DNS:exa mple.com", "DNS:under_score.example",
		"DNS:x.*.example", "DNS:*", "DNS:*example.com",
		"DNS:example.com/", "DNS:b\xc3\xbc" "cher.example",
		"DNS:", NULL,
	};
	char		 label[80], spec[400];
	const char	*one[2] = { spec, NULL };

	(void)state;
	for (size_t i = 0; good[i] != NULL; i++) {
		one[0] = good[i];
		check_ok(tls, K.ec, "x", one, 0, 1);
	}
	for (size_t i = 0; bad[i] != NULL; i++) {
		one[0] = bad[i];
		check_bad(tls, K.ec, "x", one, 0, "malformed DNS name");
	}

	/* Labels up to 63 characters, names up to 253. */
	one[0] = spec;
	memset(label, 'a', 63);
	label[63] = '\0';
	snprintf(spec, sizeof(spec), "DNS:%s.example", label);
	check_ok(tls, K.ec, "x", one, 0, 1);
	snprintf(spec, sizeof(spec), "DNS:%sa.example", label);
	check_bad(tls, K.ec, "x", one, 0, "malformed DNS name");
	snprintf(spec, sizeof(spec), "DNS:%s.%s.%s.%s", label, label, label,
	    label);		/* 4 * 63 + 3 = 255 */
	check_bad(tls, K.ec, "x", one, 0, "malformed DNS name");
	spec[4 + 253] = '\0';	/* 253, ending in a full label */
	spec[4 + 252] = 'b';
	check_ok(tls, K.ec, "x", one, 0, 1);
	profile_free(tls);
}

static void
test_check_dns_hyphens(void **state)
{
	struct profile		*tls = builtin("TLS_SERVER");
	static const char *const bad[] = { "DNS:-lead.example",
				    "DNS:trail-.example", "DNS:a.-b.example",
				    NULL };
	const char		*one[2] = { NULL, NULL };
	struct sp_err		 err;
	int			 rc[3];

	(void)state;
	/*
	 * RFC 1034 3.5 preferred name syntax (which dns_valid() cites, as
	 * RFC 5280 4.2.1.6 requires): a label starts with a letter (RFC
	 * 1123 2.1: or digit) and ends with a letter or digit.
	 */
	for (size_t i = 0; bad[i] != NULL; i++) {
		one[0] = bad[i];
		sp_err_clear(&err);
		rc[i] = check_rc(tls, K.ec, "x", one, 0, &err);
	}
	profile_free(tls);
	for (size_t i = 0; bad[i] != NULL; i++) {
		if (rc[i] != SP_ERR_POLICY)
			print_error("%s: accepted\n", bad[i]);
	}
	for (size_t i = 0; bad[i] != NULL; i++)
		assert_int_equal(rc[i], SP_ERR_POLICY);
}

static void
test_check_cn_length(void **state)
{
	struct profile	*eu = builtin("ENDUSER");
	char		 cn[200];

	(void)state;
	memset(cn, 'c', sizeof(cn));
	cn[64] = '\0';
	check_ok(eu, K.ec, cn, NULL, 0, -1);
	cn[64] = 'c';
	cn[65] = '\0';
	check_bad(eu, K.ec, cn, NULL, 0, "commonName");
	cn[65] = 'c';
	cn[150] = '\0';
	check_bad(eu, K.ec, cn, NULL, 0, "64");
	profile_free(eu);
}

static void
test_check_cn_length_counts_characters(void **state)
{
	struct profile	*eu = builtin("ENDUSER");
	struct sp_err	 err = { 0 };
	char		 cn[200];
	int		 r;

	(void)state;
	/*
	 * ub-common-name (RFC 5280 A.1) is 64 characters: 40 two-byte
	 * UTF-8 characters (80 bytes) are within it.
	 */
	for (int i = 0; i < 40; i++)
		memcpy(cn + 2 * i, "\xc3\xa9", 2);
	cn[80] = '\0';
	r = check_rc(eu, K.ec, cn, NULL, 0, &err);
	profile_free(eu);
	if (r != 0)
		print_error("40-character (80-byte) CN: %s\n", err.msg);
	assert_int_equal(r, 0);
}

static void
test_check_returns_sans(void **state)
{
	struct profile		*tls = builtin("TLS_SERVER");
	static const char *const specs[] = { "DNS:a.example", "DNS:b.example",
				    "IP:192.0.2.9", NULL };
	X509_REQ		*req = make_req(K.ec, "a.example", specs);
	GENERAL_NAMES		*sans = NULL;
	struct sp_err		 err = { 0 };
	const GENERAL_NAME	*gn;

	(void)state;
	assert_int_equal(profile_check(tls, req, 0, &sans, &err), 0);
	assert_int_equal(sk_GENERAL_NAME_num(sans), 3);
	gn = sk_GENERAL_NAME_value(sans, 1);
	assert_int_equal(gn->type, GEN_DNS);
	assert_memory_equal(ASN1_STRING_get0_data(gn->d.dNSName), "b.example",
	    9);
	GENERAL_NAMES_free(sans);
	X509_REQ_free(req);
	profile_free(tls);
}

/* --- CSR subject limits and names (S2, S3) ------------------------------- */

/* subject_max_attrs and subject_max_len: defaults, JSON, edits. */
static void
test_subject_limit_keys(void **state)
{
	struct profile	*p = builtin("ENDUSER"), *q;
	struct sp_err	 err = { 0 };
	json_t		*doc;
	int		 rc;

	(void)state;
	/* The defaults are the limits of "ca create --dn". */
	for (size_t i = 0; i < profile_builtin_count(); i++) {
		assert_int_equal(profile_builtin(i, &q, &err), 0);
		assert_int_equal(q->subject_max_attrs, DN_MAX_ATTRS);
		assert_int_equal(q->subject_max_len, DN_MAX_LEN);
		profile_free(q);
	}
	doc = profile_to_json(p);
	assert_int_equal(json_integer_value(json_object_get(doc,
	    "subject_max_attrs")), DN_MAX_ATTRS);
	assert_int_equal(json_integer_value(json_object_get(doc,
	    "subject_max_len")), DN_MAX_LEN);
	json_decref(doc);

	set_ok(p, "subject_max_attrs=5");
	set_ok(p, "subject_max_len=200");
	assert_int_equal(p->subject_max_attrs, 5);
	assert_int_equal(p->subject_max_len, 200);
	set_ok(p, "subject_max_attrs=256");
	set_ok(p, "subject_max_len=16384");
	set_bad(p, "subject_max_attrs=0", "too small");
	set_bad(p, "subject_max_attrs=257", "too large");
	set_bad(p, "subject_max_attrs=many", "subject_max_attrs");
	set_bad(p, "subject_max_len=0", "too small");
	set_bad(p, "subject_max_len=16385", "subject_max_len");
	assert_int_equal(p->subject_max_attrs, 256);
	assert_int_equal(p->subject_max_len, 16384);

	/* Cloned and reloaded with the rest. */
	assert_int_equal(profile_clone(p, "C", &q, &err), 0);
	assert_int_equal(q->subject_max_attrs, 256);
	assert_int_equal(q->subject_max_len, 16384);
	profile_free(q);
	profile_free(p);

	p = from_json("J", "{\"key_algs\":[\"ec-p256\"],"
	    "\"subject_max_attrs\":3,\"subject_max_len\":99}", &err, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(p->subject_max_attrs, 3);
	assert_int_equal(p->subject_max_len, 99);
	profile_free(p);
	json_bad("{\"key_algs\":[\"ec-p256\"],\"subject_max_attrs\":0}",
	    "subject_max_attrs must be an integer in 1..256");
	json_bad("{\"key_algs\":[\"ec-p256\"],\"subject_max_len\":\"1\"}",
	    "subject_max_len");
}

/* A signed CSR with this subject (borrowed) and optional SANs. */
static X509_REQ *
req_with(EVP_PKEY *pk, const X509_NAME *name, GENERAL_NAMES *gens)
{
	X509_REQ	*req = X509_REQ_new();

	assert_non_null(req);
	assert_true(X509_REQ_set_subject_name(req, name));
	assert_true(X509_REQ_set_pubkey(req, pk));
	if (gens != NULL) {
		STACK_OF(X509_EXTENSION)	*exts = NULL;

		assert_int_equal(X509V3_add1_i2d(&exts, NID_subject_alt_name,
		    gens, 0, 0), 1);
		assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	}
	assert_true(X509_REQ_sign(req, pk, EVP_sha256()) > 0);
	return req;
}

/* profile_check() on a CSR with name; everything freed. */
static int
name_rc(const struct profile *p, const X509_NAME *name,
    GENERAL_NAMES *gens, struct sp_err *err)
{
	X509_REQ	*req = req_with(K.ec, name, gens);
	GENERAL_NAMES	*sans = (GENERAL_NAMES *)(uintptr_t)1;
	int		 r;

	sp_err_clear(err);
	r = profile_check(p, req, 0, &sans, err);
	if (r != 0)
		assert_null(sans);
	GENERAL_NAMES_free(sans);
	X509_REQ_free(req);
	return r;
}

/* A subject of n RDNs "OU=u<i>xxx", values padded to width characters. */
static X509_NAME *
name_of(int n, int width)
{
	X509_NAME	*name = X509_NAME_new();
	char		 v[300];

	assert_non_null(name);
	assert_true(width < (int)sizeof(v));
	for (int i = 0; i < n; i++) {
		int k = snprintf(v, sizeof(v), "u%d", i);

		if (k < width) {
			memset(v + k, 'x', (size_t)(width - k));
			v[width] = '\0';
		}
		/* Not MBSTRING_*: no upper bound from the string table. */
		assert_true(X509_NAME_add_entry_by_txt(name, "OU",
		    V_ASN1_UTF8STRING, (const unsigned char *)v, -1, -1, 0));
	}
	return name;
}

static void
test_check_subject_limits(void **state)
{
	struct profile	*eu = builtin("ENDUSER");
	struct sp_err	 err = { 0 };
	X509_NAME	*name;

	(void)state;
	/* 1,000 RDNs (the S3 finding) are refused by count. */
	name = name_of(1000, 20);
	assert_int_equal(name_rc(eu, name, NULL, &err), SP_ERR_POLICY);
	assert_string_equal(err.msg, "profile ENDUSER: subject has 1000 "
	    "attributes, more than 32 (subject_max_attrs)");
	X509_NAME_free(name);
	/* 32 short ones pass, 33 do not. */
	name = name_of(DN_MAX_ATTRS, 3);
	assert_int_equal(name_rc(eu, name, NULL, &err), 0);
	X509_NAME_free(name);
	name = name_of(DN_MAX_ATTRS + 1, 3);
	assert_int_equal(name_rc(eu, name, NULL, &err), SP_ERR_POLICY);
	assert_non_null(strstr(err.msg, "(subject_max_attrs)"));
	X509_NAME_free(name);

	/*
	 * Length: "OU=" + 60 characters + "," per RDN; 16 of them print in
	 * 16 * 64 - 1 = 1023 bytes, 17 in 1087.
	 */
	name = name_of(16, 60);
	assert_int_equal(name_rc(eu, name, NULL, &err), 0);
	X509_NAME_free(name);
	name = name_of(17, 60);
	assert_int_equal(name_rc(eu, name, NULL, &err), SP_ERR_POLICY);
	assert_string_equal(err.msg, "profile ENDUSER: subject is 1087 bytes "
	    "as an RFC 4514 string, more than 1024 (subject_max_len)");
	/* Both limits are the profile's. */
	set_ok(eu, "subject_max_len=1087");
	assert_int_equal(name_rc(eu, name, NULL, &err), 0);
	set_ok(eu, "subject_max_attrs=16");
	assert_int_equal(name_rc(eu, name, NULL, &err), SP_ERR_POLICY);
	assert_non_null(strstr(err.msg, "more than 16 (subject_max_attrs)"));
	X509_NAME_free(name);
	profile_free(eu);

	/* A value over DN_MAX_VALUE bytes, as dn_parse() refuses. */
	eu = builtin("ENDUSER");
	name = name_of(1, 257);
	assert_int_equal(name_rc(eu, name, NULL, &err), SP_ERR_INVALID);
	assert_non_null(strstr(err.msg, "CSR: subject OU: value longer than "
	    "256 bytes"));
	X509_NAME_free(name);
	profile_free(eu);
}

/* The NUL-prefix attack (CVE-2009-2408) and control characters. */
static void
test_check_subject_controls(void **state)
{
	static const char	nul[] = "evil.com\0.good.com";
	static const char	bmp_c1[] = { 0, 'a', 0, (char)0x9b };
	static const struct {
		const char	*attr;
		int		 type;
		const char	*bytes;
		int		 len;
		const char	*want;
	} bad[] = {
		{ "CN", V_ASN1_UTF8STRING, nul, sizeof(nul) - 1,
		    "CSR: subject CN: control character U+0000 is not "
		    "allowed" },
		{ "CN", V_ASN1_PRINTABLESTRING, nul, sizeof(nul) - 1,
		    "CSR: subject CN: control character U+0000" },
		{ "CN", V_ASN1_IA5STRING, nul, sizeof(nul) - 1,
		    "CSR: subject CN: control character U+0000" },
		{ "CN", V_ASN1_T61STRING, "a\x1b", 2, "CN: control "
		    "character U+001B" },
		{ "O", V_ASN1_BMPSTRING, bmp_c1, sizeof(bmp_c1),
		    "CSR: subject O: control character U+009B" },
		{ "OU", V_ASN1_UTF8STRING, "a\xc2\x85", 3, "OU: control "
		    "character U+0085" },
		{ "L", V_ASN1_UTF8STRING, "x\x7f", 2, "L: control character "
		    "U+007F" },
	};
	/*
	 * Strings that do not decode cannot be tested here: OpenSSL
	 * canonicalises a name (ASN1_STRING_to_UTF8()) to encode or decode
	 * it, so such a subject neither encodes nor parses (csr_parse()
	 * refuses it); test_dn.c covers dn_check_string() on them.
	 */
	struct profile		*eu = builtin("ENDUSER");
	struct profile		*tls = builtin("TLS_SERVER");
	struct sp_err		 err = { 0 };
	X509_NAME		*name;
	GENERAL_NAMES		*gens;
	GENERAL_NAME		*gn;
	ASN1_IA5STRING		*ia5;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ASN1_STRING	*v = ASN1_STRING_type_new(bad[i].type);
		X509_NAME_ENTRY	*e;

		name = X509_NAME_new();
		assert_non_null(name);
		assert_true(X509_NAME_add_entry_by_txt(name, "C",
		    MBSTRING_UTF8, (const unsigned char *)"SE", -1, -1, 0));
		/* Set the raw bytes, so no library call re-encodes them. */
		assert_non_null(v);
		assert_true(ASN1_STRING_set(v, bad[i].bytes, bad[i].len));
		assert_non_null(e = X509_NAME_ENTRY_create_by_txt(NULL,
		    bad[i].attr, V_ASN1_UTF8STRING,
		    (const unsigned char *)"x", 1));
		assert_true(ASN1_STRING_copy(X509_NAME_ENTRY_get_data(e), v));
		assert_true(X509_NAME_add_entry(name, e, -1, 0));
		X509_NAME_ENTRY_free(e);
		ASN1_STRING_free(v);
		assert_int_equal(name_rc(eu, name, NULL, &err),
		    SP_ERR_INVALID);
		if (strstr(err.msg, bad[i].want) == NULL) {
			print_error("entry %zu: \"%s\" lacks \"%s\"\n", i,
			    err.msg, bad[i].want);
			fail();
		}
		X509_NAME_free(name);
	}

	/* The same name without the NUL issues. */
	name = X509_NAME_new();
	assert_non_null(name);
	assert_true(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)"evil.com.good.com", -1, -1, 0));
	assert_int_equal(name_rc(eu, name, NULL, &err), 0);

	/* A NUL in a DNS SAN, with a good subject. */
	assert_non_null(gens = GENERAL_NAMES_new());
	assert_non_null(gn = GENERAL_NAME_new());
	assert_non_null(ia5 = ASN1_IA5STRING_new());
	assert_true(ASN1_STRING_set(ia5, "evil.com\0.good.com", 18));
	GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
	assert_true(sk_GENERAL_NAME_push(gens, gn) > 0);
	assert_int_equal(name_rc(tls, name, gens, &err), SP_ERR_INVALID);
	assert_string_equal(err.msg, "CSR: subjectAltName dNSName: control "
	    "character U+0000 is not allowed");
	GENERAL_NAMES_free(gens);
	X509_NAME_free(name);
	profile_free(eu);
	profile_free(tls);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtins_load),
		cmocka_unit_test(test_builtin_contents),
		cmocka_unit_test(test_json_rules),
		cmocka_unit_test(test_clone),
		cmocka_unit_test(test_set_int),
		cmocka_unit_test(test_set_bool),
		cmocka_unit_test(test_set_list),
		cmocka_unit_test(test_set_url),
		cmocka_unit_test(test_set_unknown),
		cmocka_unit_test(test_set_ca_rules),
		cmocka_unit_test(test_set_non_utf8),
		cmocka_unit_test(test_check_key_algs),
		cmocka_unit_test(test_check_validity),
		cmocka_unit_test(test_check_san_required),
		cmocka_unit_test(test_check_san_empty_extension),
		cmocka_unit_test(test_check_san_types),
		cmocka_unit_test(test_check_dns_names),
		cmocka_unit_test(test_check_dns_hyphens),
		cmocka_unit_test(test_check_cn_length),
		cmocka_unit_test(test_check_cn_length_counts_characters),
		cmocka_unit_test(test_check_returns_sans),
		cmocka_unit_test(test_subject_limit_keys),
		cmocka_unit_test(test_check_subject_limits),
		cmocka_unit_test(test_check_subject_controls),
	};

	return cmocka_run_group_tests_name("profile", tests, group_setup,
	    group_teardown);
}
