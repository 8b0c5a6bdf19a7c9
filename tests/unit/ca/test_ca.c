/*
 * End-to-end tests of the CA service (ca/ca.c) in one process, over a
 * SQLite store in a temporary directory: tokens, root and sub CAs, batch
 * issuance with good and bad requests, revocation, CRLs, profiles, the
 * audit trail, and re-opening the service on the same store.
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sqlite3.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "ca/ca.h"
#include "net/pool.h"
#include "store/store.h"
#include "util/err.h"
#include "util/log.h"

#define PIN	"correct horse"
#define ACTOR	"test:unit"

struct fixture {
	char			 dir[64];
	char			 path[128];
	struct store		*st;
	struct tokens		*tk;
	struct ca_service	*svc;
};

/* Leaf keys, made once. */
static EVP_PKEY	*k_ec, *k_rsa, *k_ed;

static int
group_setup(void **state)
{
	(void)state;
	log_init(LOG_LVL_ERROR);
	k_ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	k_rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	k_ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	return k_ec && k_rsa && k_ed ? 0 : -1;
}

static int
group_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(k_ec);
	EVP_PKEY_free(k_rsa);
	EVP_PKEY_free(k_ed);
	return 0;
}

static int
rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static void
svc_open(struct fixture *fx)
{
	struct sp_err	err = { 0 };

	if (store_open(fx->path, &fx->st, &err) != 0 ||
	    tokens_open(fx->st, &fx->tk, &err) != 0 ||
	    ca_service_open(fx->st, fx->tk, &fx->svc, &err) != 0)
		print_error("open: %s\n", err.msg);
	assert_non_null(fx->st);
	assert_non_null(fx->svc);
}

static void
svc_close(struct fixture *fx)
{
	ca_service_free(fx->svc);
	tokens_free(fx->tk);
	store_close(fx->st);
	fx->svc = NULL;
	fx->tk = NULL;
	fx->st = NULL;
}

static int
setup(void **state)
{
	struct fixture	*fx;
	struct sp_err	 err = { 0 };

	if ((fx = calloc(1, sizeof(*fx))) == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/sp_test_ca.XXXXXX");
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->path, sizeof(fx->path), "%s/ca.db", fx->dir);
	if (store_open(fx->path, &fx->st, &err) != 0 ||
	    tokens_open(fx->st, &fx->tk, &err) != 0 ||
	    ca_service_open(fx->st, fx->tk, &fx->svc, &err) != 0) {
		fprintf(stderr, "setup: %s\n", err.msg);
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

	svc_close(fx);
	r = nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return r == 0 ? 0 : -1;
}

/* --- helpers -------------------------------------------------------------- */

#define OK(call) do {							\
	struct sp_err	 err_ = { 0 };					\
	int		 r_ = (call);					\
									\
	(void)err_;							\
	if (r_ != 0)							\
		print_error("%s: %s\n", #call, err_.msg);		\
	assert_int_equal(r_, 0);					\
} while (0)

static void
expect_rc(int got, int want, const struct sp_err *err, const char *what,
    const char *msg)
{
	if (got != want)
		print_error("%s: want %s, got %s (%s)\n", what, sp_rc_str(want),
		    sp_rc_str(got), err->msg);
	assert_int_equal(got, want);
	if (msg != NULL && strstr(err->msg, msg) == NULL) {
		print_error("%s: message \"%s\" lacks \"%s\"\n", what, err->msg,
		    msg);
		fail();
	}
}

static void
token_with_keys(struct tokens *tk, const char *token,
    const char *const *aliases, size_t n)
{
	struct sp_err	 err = { 0 };
	json_t		*j = NULL;

	if (tokens_create(tk, token, PIN, ACTOR, &err) != 0)
		print_error("token: %s\n", err.msg);
	assert_int_equal(err.code, 0);
	for (size_t i = 0; i < n; i++) {
		if (tokens_genkey(tk, token, aliases[i], "ec-p256", ACTOR,
		    &j, &err) != 0)
			print_error("genkey: %s\n", err.msg);
		assert_non_null(j);
		json_decref(j);
	}
}

static void
create_ca(struct ca_service *svc, const char *name, const char *dn,
    const char *key, const char *signed_by, int days)
{
	struct ca_create_req	 req = { 0 };
	struct sp_err		 err = { 0 };
	json_t			*j = NULL;

	req.name = name;
	req.dn = dn;
	req.token = "tok";
	req.key = key;
	req.signed_by = signed_by;
	req.validity_days = days;
	if (ca_create(svc, &req, ACTOR, &j, &err) != 0)
		print_error("ca_create %s: %s\n", name, err.msg);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "name")),
	    name);
	json_decref(j);
}

/* Token "tok" with keys, a root "Root" and a sub CA "Sub" under it. */
static void
make_pki(struct tokens *tk, struct ca_service *svc)
{
	static const char *const aliases[] = { "root-key", "sub-key",
				    "spare-key" };

	token_with_keys(tk, "tok", aliases, 3);
	create_ca(svc, "Root", "CN=Test Root,O=Sallyport,C=SE", "root-key",
	    NULL, 0);
	create_ca(svc, "Sub", "CN=Test Sub,O=Sallyport,C=SE", "sub-key", "Root",
	    0);
}

/* A DER CSR (heap, free()) with CN and optional SANs (NULL terminated). */
static unsigned char *
make_csr(EVP_PKEY *pk, const char *cn, const char *const *dns, size_t *len)
{
	X509_REQ	*req = X509_REQ_new();
	X509_NAME	*name = X509_NAME_new();
	unsigned char	*der = NULL, *out;
	int		 n;

	assert_non_null(req);
	assert_true(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0));
	assert_true(X509_REQ_set_subject_name(req, name));
	X509_NAME_free(name);
	assert_true(X509_REQ_set_pubkey(req, pk));
	if (dns != NULL) {
		STACK_OF(X509_EXTENSION)	*exts = NULL;
		GENERAL_NAMES			*gens = GENERAL_NAMES_new();

		for (size_t i = 0; dns[i] != NULL; i++) {
			GENERAL_NAME	*gn = GENERAL_NAME_new();
			ASN1_IA5STRING	*s = ASN1_IA5STRING_new();
			int		 type = GEN_DNS;
			const char	*v = dns[i];

			if (strncmp(v, "email:", 6) == 0) {
				type = GEN_EMAIL;
				v += 6;
			}
			assert_true(ASN1_STRING_set(s, v, -1));
			GENERAL_NAME_set0_value(gn, type, s);
			assert_true(sk_GENERAL_NAME_push(gens, gn) > 0);
		}
		assert_int_equal(X509V3_add1_i2d(&exts, NID_subject_alt_name,
		    gens, 0, 0), 1);
		assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
		GENERAL_NAMES_free(gens);
	}
	assert_true(X509_REQ_sign(req, pk, EVP_PKEY_is_a(pk, "ED25519") ?
	    NULL : EVP_sha256()) > 0);
	n = i2d_X509_REQ(req, &der);
	assert_true(n > 0);
	assert_non_null(out = malloc((size_t)n));
	memcpy(out, der, (size_t)n);
	OPENSSL_free(der);
	X509_REQ_free(req);
	*len = (size_t)n;
	return out;
}

static const char *const www[] = { "www.example.com", NULL };

/* Issues one TLS_SERVER certificate from Sub; returns the result. */
static void
issue_one(struct ca_service *svc, const char *ca, const char *profile,
    int days, struct ca_issue_res *res)
{
	struct ca_issue_req	 req = { 0 };
	size_t			 len;
	unsigned char		*csr = make_csr(k_ec, "www.example.com", www,
				    &len);

	req.ca = ca;
	req.profile = profile;
	req.csr = csr;
	req.csrlen = len;
	req.days = days;
	assert_int_equal(ca_issue_batch(svc, &req, 1, res, ACTOR), 0);
	free(csr);
}

static void
issue_ok(struct ca_service *svc, char serial[2 * SERIAL_LEN + 1])
{
	struct ca_issue_res	res;

	issue_one(svc, "Sub", "TLS_SERVER", 0, &res);
	if (res.rc != 0)
		print_error("issue: %s\n", res.err.msg);
	assert_int_equal(res.rc, 0);
	memcpy(serial, res.serial, sizeof(res.serial));
	OPENSSL_free(res.der);
}

static X509 *
d2i_cert(const unsigned char *der, size_t len)
{
	const unsigned char	*p = der;
	X509			*x = d2i_X509(NULL, &p, (long)len);

	assert_non_null(x);
	assert_ptr_equal(p, der + len);
	return x;
}

/* The CA's certificates from ca_cert_pem() (leaf first). */
static STACK_OF(X509) *
ca_chain(struct ca_service *svc, const char *name, bool chain)
{
	struct sp_err	 err = { 0 };
	char		*pem = NULL;
	BIO		*b;
	X509		*x;
	STACK_OF(X509)	*sk = sk_X509_new_null();

	assert_int_equal(ca_cert_pem(svc, name, chain, &pem, &err), 0);
	assert_non_null(b = BIO_new_mem_buf(pem, -1));
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		assert_true(sk_X509_push(sk, x) > 0);
	BIO_free(b);
	free(pem);
	return sk;
}

static X509 *
ca_cert(struct ca_service *svc, const char *name)
{
	STACK_OF(X509)	*sk = ca_chain(svc, name, false);
	X509		*x;

	assert_int_equal(sk_X509_num(sk), 1);
	x = sk_X509_pop(sk);
	sk_X509_free(sk);
	return x;
}

/* Verifies leaf up to Root, optionally with CRLs; returns the error. */
static int
verify_chain(struct ca_service *svc, X509 *leaf, STACK_OF(X509_CRL) *crls)
{
	X509		*root = ca_cert(svc, "Root");
	STACK_OF(X509)	*untrusted = ca_chain(svc, "Sub", false);
	X509_STORE	*store = X509_STORE_new();
	X509_STORE_CTX	*ctx = X509_STORE_CTX_new();
	int		 e;

	assert_int_equal(X509_STORE_add_cert(store, root), 1);
	assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, untrusted), 1);
	if (crls != NULL) {
		X509_STORE_CTX_set0_crls(ctx, crls);
		X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_CRL_CHECK |
		    X509_V_FLAG_CRL_CHECK_ALL);
	}
	(void)X509_verify_cert(ctx);
	e = X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	sk_X509_pop_free(untrusted, X509_free);
	X509_free(root);
	return e;
}

/* Number of certificates ca_cert_list() gives. */
static size_t
cert_count(struct ca_service *svc, const char *ca, const char *status)
{
	struct sp_err	 err = { 0 };
	json_t		*j = NULL;
	size_t		 n;

	if (ca_cert_list(svc, ca, status, 0, &j, &err) != 0)
		print_error("ca_cert_list: %s\n", err.msg);
	assert_non_null(j);
	n = json_array_size(j);
	json_decref(j);
	return n;
}

/* Status of one certificate from ca_cert_show(). */
static void
cert_status(struct ca_service *svc, const char *serial, const char *status,
    const char *reason)
{
	struct sp_err	 err = { 0 };
	json_t		*j = NULL;

	if (ca_cert_show(svc, "Sub", serial, &j, &err) != 0)
		print_error("ca_cert_show: %s\n", err.msg);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "status")),
	    status);
	assert_string_equal(json_string_value(json_object_get(j, "reason")),
	    reason);
	json_decref(j);
}

static size_t
audit_events(struct ca_service *svc, const char *event)
{
	json_t	*a = ca_audit_list(svc, 0), *v;
	size_t	 i, n = 0;

	assert_non_null(a);
	json_array_foreach(a, i, v)
		if (strcmp(json_string_value(json_object_get(v, "event")),
		    event) == 0)
			n++;
	json_decref(a);
	return n;
}

static void
audit_intact(struct ca_service *svc)
{
	struct sp_err	 err = { 0 };
	json_t		*j = NULL;

	if (ca_audit_verify(svc, &j, &err) != 0)
		print_error("audit: %s\n", err.msg);
	assert_non_null(j);
	assert_true(json_is_true(json_object_get(j, "intact")));
	assert_true(json_integer_value(json_object_get(j, "rows")) > 0);
	json_decref(j);
}

/* --- tests ---------------------------------------------------------------- */

static void
test_open_installs_builtins(void **state)
{
	struct fixture	*fx = *state;
	json_t		*j = ca_profile_list(fx->svc), *v;
	size_t		 i;

	assert_int_equal(json_array_size(j), 6);
	json_array_foreach(j, i, v)
		assert_true(json_is_true(json_object_get(v, "builtin")));
	json_decref(j);
	j = ca_list(fx->svc);
	assert_int_equal(json_array_size(j), 0);
	json_decref(j);
	j = tokens_list(fx->tk);
	assert_int_equal(json_array_size(j), 0);
	json_decref(j);

	/* Re-opening does not install them twice. */
	svc_close(fx);
	svc_open(fx);
	j = ca_profile_list(fx->svc);
	assert_int_equal(json_array_size(j), 6);
	json_decref(j);
}

static void
test_tokens(void **state)
{
	struct fixture	*fx = *state;
	struct sp_err	 err = { 0 };
	json_t		*j = NULL, *t;

	expect_rc(tokens_create(fx->tk, "tok", "123", ACTOR, &err),
	    SP_ERR_INVALID, &err, "short PIN", "PIN");
	sp_err_clear(&err);
	expect_rc(tokens_create(fx->tk, "bad name", PIN, ACTOR, &err),
	    SP_ERR_INVALID, &err, "bad name", "token name");
	j = tokens_list(fx->tk);
	assert_int_equal(json_array_size(j), 0);
	json_decref(j);

	OK(tokens_create(fx->tk, "tok", PIN, ACTOR, &err_));
	sp_err_clear(&err);
	expect_rc(tokens_create(fx->tk, "tok", PIN, ACTOR, &err),
	    SP_ERR_EXISTS, &err, "duplicate", NULL);

	/* Created tokens are active. */
	j = tokens_list(fx->tk);
	t = json_array_get(j, 0);
	assert_string_equal(json_string_value(json_object_get(t, "name")),
	    "tok");
	assert_true(json_is_true(json_object_get(t, "active")));
	json_decref(j);

	/* Keys. */
	j = NULL;
	sp_err_clear(&err);
	expect_rc(tokens_genkey(fx->tk, "tok", "k", "dsa", ACTOR, &j, &err),
	    SP_ERR_INVALID, &err, "bad alg", "dsa");
	assert_null(j);
	OK(tokens_genkey(fx->tk, "tok", "k1", "ec-p256", ACTOR, &j, &err_));
	assert_string_equal(json_string_value(json_object_get(j, "alg")),
	    "ec-p256");
	assert_int_equal(strlen(json_string_value(json_object_get(j,
	    "public_key_sha256"))), 64);
	json_decref(j);
	j = NULL;
	sp_err_clear(&err);
	expect_rc(tokens_genkey(fx->tk, "tok", "k1", "ec-p256", ACTOR, &j,
	    &err), SP_ERR_EXISTS, &err, "dup alias", NULL);
	sp_err_clear(&err);
	expect_rc(tokens_genkey(fx->tk, "nope", "k2", "ec-p256", ACTOR, &j,
	    &err), SP_ERR_NOTFOUND, &err, "no token", NULL);
	sp_err_clear(&err);
	expect_rc(tokens_genkey(fx->tk, "tok", "bad alias", "ec-p256", ACTOR,
	    &j, &err), SP_ERR_INVALID, &err, "bad alias", NULL);
	/* A key that could not be made leaves nothing behind. */
	j = tokens_list(fx->tk);
	assert_int_equal(json_array_size(json_object_get(json_array_get(j, 0),
	    "keys")), 1);
	json_decref(j);

	/* Deactivate: no key generation; wrong PIN keeps it inactive. */
	OK(tokens_deactivate(fx->tk, "tok", ACTOR, &err_));
	j = tokens_list(fx->tk);
	assert_true(json_is_false(json_object_get(json_array_get(j, 0),
	    "active")));
	json_decref(j);
	j = NULL;
	sp_err_clear(&err);
	expect_rc(tokens_genkey(fx->tk, "tok", "k2", "ec-p256", ACTOR, &j,
	    &err), SP_ERR_STATE, &err, "inactive genkey", NULL);
	sp_err_clear(&err);
	expect_rc(tokens_activate(fx->tk, "tok", "wrong pin", ACTOR, &err),
	    SP_ERR_PIN, &err, "wrong PIN", NULL);
	j = tokens_list(fx->tk);
	assert_true(json_is_false(json_object_get(json_array_get(j, 0),
	    "active")));
	json_decref(j);
	sp_err_clear(&err);
	expect_rc(tokens_activate(fx->tk, "nope", PIN, ACTOR, &err),
	    SP_ERR_NOTFOUND, &err, "no token", NULL);
	OK(tokens_activate(fx->tk, "tok", PIN, ACTOR, &err_));
	j = tokens_list(fx->tk);
	assert_true(json_is_true(json_object_get(json_array_get(j, 0),
	    "active")));
	json_decref(j);
	assert_int_equal(audit_events(fx->svc, "token.activate_failed"), 1);
	assert_int_equal(audit_events(fx->svc, "token.activate"), 1);

	/* Deleting keys. */
	OK(tokens_delkey(fx->tk, "tok", "k1", ACTOR, &err_));
	sp_err_clear(&err);
	expect_rc(tokens_delkey(fx->tk, "tok", "k1", ACTOR, &err),
	    SP_ERR_NOTFOUND, &err, "delkey twice", NULL);
	audit_intact(fx->svc);
}

static void
test_ca_create_root_and_sub(void **state)
{
	struct fixture		*fx = *state;
	X509			*root, *sub;
	STACK_OF(X509)		*chain;
	BASIC_CONSTRAINTS	*bc;
	json_t			*j = NULL;
	struct sp_err		 err = { 0 };

	make_pki(fx->tk, fx->svc);

	/* Root: self-signed and verifies with its own key. */
	root = ca_cert(fx->svc, "Root");
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(root),
	    X509_get_issuer_name(root)), 0);
	assert_int_equal(X509_verify(root, X509_get0_pubkey(root)), 1);
	assert_int_equal(X509_check_ca(root), 1);
	bc = X509_get_ext_d2i(root, NID_basic_constraints, NULL, NULL);
	assert_non_null(bc);
	assert_null(bc->pathlen);		/* ROOTCA: unlimited */
	BASIC_CONSTRAINTS_free(bc);

	/* Sub: signed by Root, pathlen 0, and the chain verifies. */
	chain = ca_chain(fx->svc, "Sub", true);
	assert_int_equal(sk_X509_num(chain), 2);
	sub = sk_X509_value(chain, 0);
	assert_int_equal(X509_cmp(sk_X509_value(chain, 1), root), 0);
	assert_int_equal(X509_verify(sub, X509_get0_pubkey(root)), 1);
	assert_int_equal(X509_check_issued(root, sub), X509_V_OK);
	assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(sub),
	    X509_get0_subject_key_id(root)), 0);
	bc = X509_get_ext_d2i(sub, NID_basic_constraints, NULL, NULL);
	assert_non_null(bc);
	assert_int_equal(ASN1_INTEGER_get(bc->pathlen), 0);
	BASIC_CONSTRAINTS_free(bc);
	assert_true(X509_get_key_usage(sub) & KU_KEY_CERT_SIGN);
	assert_int_equal(verify_chain(fx->svc, sub, NULL), X509_V_OK);
	sk_X509_pop_free(chain, X509_free);

	/* The sub CA certificate is recorded as issued by Root. */
	assert_int_equal(cert_count(fx->svc, "Root", "active"), 1);
	assert_int_equal(cert_count(fx->svc, "Sub", NULL), 0);

	/* Listing. */
	j = ca_list(fx->svc);
	assert_int_equal(json_array_size(j), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(j,
	    1), "issuer")), "Root");
	json_decref(j);
	OK(ca_show(fx->svc, "Sub", &j, &err_));
	assert_string_equal(json_string_value(json_object_get(j, "subject")),
	    "CN=Test Sub,O=Sallyport,C=SE");
	json_decref(j);
	expect_rc(ca_show(fx->svc, "Nope", &j, &err), SP_ERR_NOTFOUND, &err,
	    "show", NULL);
	assert_int_equal(audit_events(fx->svc, "ca.create"), 2);
	X509_free(root);
}

static void
test_ca_create_errors(void **state)
{
	struct fixture		*fx = *state;
	struct ca_create_req	 req = { 0 };
	struct sp_err		 err = { 0 };
	json_t			*j = NULL;

	make_pki(fx->tk, fx->svc);
	req.name = "Other";
	req.dn = "CN=Other";
	req.token = "tok";
	req.key = "spare-key";

#define BAD(want, msg) do {						\
	sp_err_clear(&err);						\
	j = NULL;							\
	expect_rc(ca_create(fx->svc, &req, ACTOR, &j, &err), want, &err,\
	    #want, msg);						\
	assert_null(j);							\
} while (0)

	req.name = "Root";
	BAD(SP_ERR_EXISTS, "exists");
	req.name = "bad/name";
	BAD(SP_ERR_INVALID, "CA name");
	req.name = "Other";
	req.signed_by = "Nope";
	BAD(SP_ERR_NOTFOUND, "Nope");
	req.signed_by = "Root";
	req.profile = "TLS_SERVER";
	BAD(SP_ERR_POLICY, "not a CA profile");
	req.profile = "NOPE";
	BAD(SP_ERR_NOTFOUND, "NOPE");
	req.profile = NULL;
	req.key = "root-key";
	BAD(SP_ERR_STATE, "already used");
	req.key = "missing";
	BAD(SP_ERR_NOTFOUND, "missing");
	req.key = "spare-key";
	req.token = "notok";
	BAD(SP_ERR_NOTFOUND, "notok");
	req.token = "tok";
	req.dn = "CN=";
	BAD(SP_ERR_INVALID, NULL);
	req.dn = NULL;
	BAD(SP_ERR_INVALID, "DN");
	req.dn = "CN=Other";
	req.crl_period = 5;
	BAD(SP_ERR_INVALID, "CRL period");
	req.crl_period = 0;
	req.validity_days = 3651;		/* SUBCA allows 3650 */
	BAD(SP_ERR_POLICY, "validity_days");
	req.validity_days = -1;
	BAD(SP_ERR_INVALID, "validity");
#undef BAD

	/* None of that left a trace. */
	j = ca_list(fx->svc);
	assert_int_equal(json_array_size(j), 2);
	json_decref(j);
	assert_int_equal(cert_count(fx->svc, NULL, NULL), 1);

	/* The sub CA could not be made while the token is inactive. */
	OK(tokens_deactivate(fx->tk, "tok", ACTOR, &err_));
	req.validity_days = 0;
	sp_err_clear(&err);
	expect_rc(ca_create(fx->svc, &req, ACTOR, &j, &err), SP_ERR_STATE,
	    &err, "inactive", NULL);
	/* Nothing was issued: no active or reserved row (a failed one is
	 * allowed, should the reservation come before the token check). */
	assert_int_equal(cert_count(fx->svc, "Root", "active"), 1);
	assert_int_equal(cert_count(fx->svc, "Root", "reserved"), 0);
	assert_int_equal(cert_count(fx->svc, "Root", NULL),
	    1 + cert_count(fx->svc, "Root", "failed"));
	j = ca_list(fx->svc);
	assert_int_equal(json_array_size(j), 2);
	json_decref(j);
}

static void
test_ca_validity_nested(void **state)
{
	struct fixture		*fx = *state;
	static const char *const aliases[] = { "r", "s" };
	X509			*root, *sub, *leaf;
	struct ca_issue_res	 res;

	/* A short-lived root: nothing under it may outlive it. */
	token_with_keys(fx->tk, "tok", aliases, 2);
	create_ca(fx->svc, "Root", "CN=Short Root", "r", NULL, 10);
	create_ca(fx->svc, "Sub", "CN=Sub", "s", "Root", 0);
	root = ca_cert(fx->svc, "Root");
	sub = ca_cert(fx->svc, "Sub");
	assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(sub),
	    X509_get0_notAfter(root)), 0);
	issue_one(fx->svc, "Sub", "TLS_SERVER", 397, &res);
	assert_int_equal(res.rc, 0);
	leaf = d2i_cert(res.der, res.derlen);
	assert_true(ASN1_TIME_compare(X509_get0_notAfter(leaf),
	    X509_get0_notAfter(sub)) <= 0);
	OPENSSL_free(res.der);
	X509_free(leaf);
	X509_free(sub);
	X509_free(root);
}

static void
test_issue_batch_mixed(void **state)
{
	struct fixture		*fx = *state;
	static const char *const ipsan[] = { "api.example.com", NULL };
	static const char *const email[] = { "email:u@example.org", NULL };
	enum { GOOD_EC, GOOD_RSA, GARBAGE, NO_CA, NO_PROFILE, ED_KEY,
	    CA_PROFILE, NO_SAN, GOOD_USER, TOO_LONG, N };
	struct ca_issue_req	 req[N];
	struct ca_issue_res	 res[N];
	unsigned char		*csr[N] = { 0 };
	size_t			 len[N] = { 0 };
	static const int	 want[N] = { 0, 0, SP_ERR_INVALID,
				    SP_ERR_NOTFOUND, SP_ERR_NOTFOUND,
				    SP_ERR_POLICY, SP_ERR_POLICY,
				    SP_ERR_POLICY, 0, SP_ERR_POLICY };
	X509			*sub;
	json_t			*list = NULL, *v;
	struct sp_err		 err = { 0 };
	size_t			 i;

	make_pki(fx->tk, fx->svc);
	memset(req, 0, sizeof(req));
	csr[GOOD_EC] = make_csr(k_ec, "www.example.com", www, &len[GOOD_EC]);
	csr[GOOD_RSA] = make_csr(k_rsa, "api.example.com", ipsan,
	    &len[GOOD_RSA]);
	assert_non_null(csr[GARBAGE] = (unsigned char *)strdup("not a CSR"));
	len[GARBAGE] = 9;
	csr[NO_CA] = make_csr(k_ec, "x", www, &len[NO_CA]);
	csr[NO_PROFILE] = make_csr(k_ec, "x", www, &len[NO_PROFILE]);
	csr[ED_KEY] = make_csr(k_ed, "x", www, &len[ED_KEY]);
	csr[CA_PROFILE] = make_csr(k_ec, "x", NULL, &len[CA_PROFILE]);
	csr[NO_SAN] = make_csr(k_ec, "www.example.com", NULL, &len[NO_SAN]);
	csr[GOOD_USER] = make_csr(k_ed, "A User", email, &len[GOOD_USER]);
	csr[TOO_LONG] = make_csr(k_ec, "x", www, &len[TOO_LONG]);
	for (i = 0; i < N; i++) {
		req[i].ca = "Sub";
		req[i].profile = "TLS_SERVER";
		req[i].csr = csr[i];
		req[i].csrlen = len[i];
	}
	req[NO_CA].ca = "Nope";
	req[NO_PROFILE].profile = "NOPE";
	req[CA_PROFILE].profile = "SUBCA";
	req[GOOD_USER].profile = "ENDUSER";
	req[TOO_LONG].days = 398;

	assert_int_equal(ca_issue_batch(fx->svc, req, N, res, ACTOR), 0);
	sub = ca_cert(fx->svc, "Sub");
	for (i = 0; i < N; i++) {
		if (res[i].rc != want[i])
			print_error("request %zu: want %s, got %s (%s)\n", i,
			    sp_rc_str(want[i]), sp_rc_str(res[i].rc),
			    res[i].err.msg);
		assert_int_equal(res[i].rc, want[i]);
		if (want[i] != 0) {
			/* A clear reason, nothing issued. */
			assert_true(strlen(res[i].err.msg) > 10);
			assert_int_equal(res[i].err.code, want[i]);
			assert_null(res[i].der);
			continue;
		}
		assert_non_null(res[i].der);
		assert_int_equal(strlen(res[i].serial), 2 * SERIAL_LEN);
		{
			X509		*x = d2i_cert(res[i].der,
					    res[i].derlen);
			ASN1_INTEGER	*sn = NULL;
			BIGNUM		*bn = NULL;

			assert_true(BN_hex2bn(&bn, res[i].serial) > 0);
			assert_non_null(sn = BN_to_ASN1_INTEGER(bn, NULL));
			assert_int_equal(ASN1_INTEGER_cmp(sn,
			    X509_get0_serialNumber(x)), 0);
			assert_int_equal(X509_verify(x, X509_get0_pubkey(sub)),
			    1);
			assert_int_equal(verify_chain(fx->svc, x, NULL),
			    X509_V_OK);
			ASN1_INTEGER_free(sn);
			BN_free(bn);
			X509_free(x);
		}
	}
	assert_non_null(strstr(res[ED_KEY].err.msg, "key_algs"));
	assert_non_null(strstr(res[NO_SAN].err.msg, "san_required"));
	assert_non_null(strstr(res[TOO_LONG].err.msg, "validity_days"));
	assert_non_null(strstr(res[NO_CA].err.msg, "Nope"));
	assert_non_null(strstr(res[NO_PROFILE].err.msg, "NOPE"));

	/* Exactly the good ones are stored, active; bad ones left no row. */
	assert_int_equal(cert_count(fx->svc, "Sub", NULL), 3);
	assert_int_equal(cert_count(fx->svc, "Sub", "active"), 3);
	OK(ca_cert_list(fx->svc, "Sub", "active", 0, &list, &err_));
	json_array_foreach(list, i, v) {
		const char *sn = json_string_value(json_object_get(v,
		    "serial"));

		assert_true(strcmp(sn, res[GOOD_EC].serial) == 0 ||
		    strcmp(sn, res[GOOD_RSA].serial) == 0 ||
		    strcmp(sn, res[GOOD_USER].serial) == 0);
		assert_int_equal(strlen(json_string_value(json_object_get(v,
		    "fingerprint"))), 64);
	}
	json_decref(list);
	assert_int_equal(audit_events(fx->svc, "cert.issue"), 3);
	sp_err_clear(&err);
	expect_rc(ca_cert_list(fx->svc, "Sub", "bogus", 0, &list, &err),
	    SP_ERR_INVALID, &err, "status", "bogus");

	/* The stored certificate is the one returned. */
	OK(ca_cert_show(fx->svc, "Sub", res[GOOD_EC].serial, &list, &err_));
	assert_non_null(json_object_get(list, "pem"));
	assert_string_equal(json_string_value(json_object_get(list,
	    "profile")), "TLS_SERVER");
	json_decref(list);

	for (i = 0; i < N; i++) {
		OPENSSL_free(res[i].der);
		free(csr[i]);
	}
	X509_free(sub);
	audit_intact(fx->svc);
}

/* Group commit: concurrent ca_issue_one() callers, each gets its own. */
struct gc_arg {
	struct ca_service	*svc;
	unsigned char		*csr;
	size_t			 len;
	struct ca_issue_res	 res;
	int			 rc;
	bool			 bad;
};

static void *
gc_thread(void *p)
{
	struct gc_arg		*a = p;
	struct ca_issue_req	 req = { 0 };

	req.ca = "Sub";
	req.profile = "TLS_SERVER";
	req.csr = a->csr;
	req.csrlen = a->len;
	a->rc = ca_issue_one(a->svc, &req, &a->res, "test:gc");
	return NULL;
}

static pthread_barrier_t	gc_start;

static void *
gc_thread_sync(void *p)
{
	pthread_barrier_wait(&gc_start);
	return gc_thread(p);
}

/*
 * Callers that arrive together share batches. Grouping is a race by
 * nature (a caller that arrives after the leader took the queue waits for
 * the next batch), so the test gives it three tries; with grouping broken
 * every try has one batch per request.
 */
static void
test_issue_one_groups(void **state)
{
	struct fixture	*fx = *state;
	enum { N = 16 };
	struct gc_arg	 a[N];
	pthread_t	 t[N];
	uint64_t	 b0, r0, b1, r1;
	bool		 grouped = false;

	make_pki(fx->tk, fx->svc);
	for (int round = 0; round < 3 && !grouped; round++) {
		ca_issue_stats(fx->svc, &b0, &r0);
		memset(a, 0, sizeof(a));
		assert_int_equal(pthread_barrier_init(&gc_start, NULL, N), 0);
		for (int i = 0; i < N; i++) {
			a[i].svc = fx->svc;
			a[i].csr = make_csr(k_ec, "www.example.com", www,
			    &a[i].len);
			assert_int_equal(pthread_create(&t[i], NULL,
			    gc_thread_sync, &a[i]), 0);
		}
		for (int i = 0; i < N; i++) {
			pthread_join(t[i], NULL);
			assert_int_equal(a[i].rc, 0);
			OPENSSL_free(a[i].res.der);
			free(a[i].csr);
		}
		pthread_barrier_destroy(&gc_start);
		ca_issue_stats(fx->svc, &b1, &r1);
		assert_int_equal(r1 - r0, N);
		grouped = b1 - b0 < N;
	}
	assert_true(grouped);
}

static void
test_issue_one_group_commit(void **state)
{
	struct fixture		*fx = *state;
	enum { N = 12 };
	struct gc_arg		 a[N];
	pthread_t		 t[N];
	json_t			*out = NULL;
	struct sp_err		 err = { 0 };

	make_pki(fx->tk, fx->svc);
	memset(a, 0, sizeof(a));
	for (int i = 0; i < N; i++) {
		a[i].svc = fx->svc;
		a[i].bad = i % 4 == 3;
		if (a[i].bad) {
			assert_non_null(a[i].csr =
			    (unsigned char *)strdup("garbage"));
			a[i].len = 7;
		} else
			a[i].csr = make_csr(k_ec, "www.example.com", www,
			    &a[i].len);
		assert_int_equal(pthread_create(&t[i], NULL, gc_thread, &a[i]),
		    0);
	}
	for (int i = 0; i < N; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < N; i++) {
		if (a[i].bad) {
			assert_int_equal(a[i].rc, SP_ERR_INVALID);
			assert_null(a[i].res.der);
		} else {
			assert_int_equal(a[i].rc, 0);
			assert_non_null(a[i].res.der);
			for (int k = 0; k < i; k++)
				assert_string_not_equal(a[i].res.serial,
				    a[k].res.serial);
		}
	}
	for (int i = 0; i < N; i++) {
		OPENSSL_free(a[i].res.der);
		free(a[i].csr);
	}
	assert_int_equal(ca_cert_list(fx->svc, "Sub", "active", 0, &out,
	    &err), 0);
	/* make_pki() issued none on Sub; the good three quarters are there. */
	assert_int_equal(json_array_size(out), N - N / 4);
	json_decref(out);
	out = NULL;
	assert_int_equal(ca_audit_verify(fx->svc, &out, &err), 0);
	json_decref(out);
}

/*
 * A batch whose second transaction fails (injected: the database refuses
 * to activate any row) leaves no row reserved: its reservations are
 * marked failed at once, not at the next start.
 */
static void
test_issue_batch_failed_rows_marked(void **state)
{
	struct fixture		*fx = *state;
	struct ca_issue_req	 req[3];
	struct ca_issue_res	 res[3];
	unsigned char		*csr[3];
	size_t			 len[3];
	struct sp_err		 err = { 0 };

	make_pki(fx->tk, fx->svc);
	assert_true(store_exec(fx->st, NULL, NULL, &err, "CREATE TRIGGER "
	    "no_activate BEFORE UPDATE ON certs WHEN NEW.status = 1 BEGIN "
	    "SELECT RAISE(ABORT, 'injected'); END", "") >= 0);
	memset(req, 0, sizeof(req));
	for (int i = 0; i < 3; i++) {
		csr[i] = make_csr(k_ec, "www.example.com", www, &len[i]);
		req[i].ca = "Sub";
		req[i].profile = "TLS_SERVER";
		req[i].csr = csr[i];
		req[i].csrlen = len[i];
	}
	assert_int_not_equal(ca_issue_batch(fx->svc, req, 3, res, ACTOR), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_not_equal(res[i].rc, 0);
		assert_null(res[i].der);
		free(csr[i]);
	}
	assert_int_equal(cert_count(fx->svc, "Sub", "reserved"), 0);
	assert_int_equal(cert_count(fx->svc, "Sub", "failed"), 3);
	assert_int_equal(cert_count(fx->svc, "Sub", "active"), 0);
}

/* Commit hooks: each change, in its own transaction; a refusal undoes it. */
struct hook_log {
	int	n[CA_CHANGE__MAX];
	bool	refuse_status;
};

static int
hook_record(void *arg, struct store *st, struct store_txn *tx,
    const struct ca_change_ev *ev, struct sp_err *err)
{
	struct hook_log	*hl = arg;
	int		 r;

	if (ev->what == CA_CHANGE_STATUS && hl->refuse_status)
		return sp_err_set(err, SP_ERR_DB, "outbox full (test)");
	if (ev->what != CA_CHANGE_STATUS && (ev->der == NULL ||
	    ev->derlen == 0))
		return sp_err_set(err, SP_ERR_INTERNAL, "no DER");
	/* In the change's transaction: a row of our own. */
	if ((r = store_exec(st, tx, NULL, err, "INSERT INTO hook_rows "
	    "(what, serial, status) VALUES (?, ?, ?)", "isi",
	    (int64_t)ev->what, ev->serial, (int64_t)ev->status)) < 0)
		return r;
	hl->n[ev->what]++;
	return 0;
}

static int
row_int1(const struct store_row *row, void *arg)
{
	*(int64_t *)arg = store_row_int(row, 0);
	return 0;
}

static int64_t
hook_rows(struct store *st, int what)
{
	struct sp_err	err = { 0 };
	int64_t		n = -1;

	assert_int_equal(store_select(st, NULL, row_int1, &n, &err,
	    "SELECT count(*) FROM hook_rows WHERE what = ?", "i",
	    (int64_t)what), 0);
	return n;
}

static int
hook_nop(void *arg, struct store *st, struct store_txn *tx,
    const struct ca_change_ev *ev, struct sp_err *err)
{
	(void)arg;
	(void)st;
	(void)tx;
	(void)ev;
	(void)err;
	return 0;
}

static void
test_commit_hooks(void **state)
{
	struct fixture		*fx = *state;
	struct hook_log		 hl = { 0 };
	struct ca_issue_res	 res;
	struct sp_err		 err = { 0 };
	json_t			*out = NULL;

	assert_true(store_exec(fx->st, NULL, NULL, &err, "CREATE TABLE "
	    "hook_rows (what INTEGER, serial TEXT, status INTEGER)", "") >= 0);
	assert_int_equal(ca_add_commit_hook(fx->svc, hook_record, &hl), 0);
	for (int i = 1; i < CA_HOOKS_MAX; i++)
		assert_int_equal(ca_add_commit_hook(fx->svc, hook_nop, NULL), 0);
	assert_int_equal(ca_add_commit_hook(fx->svc, hook_nop, NULL),
	    SP_ERR_LIMIT);

	make_pki(fx->tk, fx->svc);		/* two CAs */
	assert_int_equal(hl.n[CA_CHANGE_CA], 2);
	assert_int_equal(hook_rows(fx->st, CA_CHANGE_CA), 2);

	issue_one(fx->svc, "Sub", "TLS_SERVER", 0, &res);
	assert_int_equal(res.rc, 0);
	assert_int_equal(hl.n[CA_CHANGE_CERT], 1);
	assert_int_equal(hook_rows(fx->st, CA_CHANGE_CERT), 1);

	OK(ca_revoke(fx->svc, "Sub", res.serial, "keyCompromise", ACTOR,
	    &err_));
	assert_int_equal(hook_rows(fx->st, CA_CHANGE_STATUS), 1);
	OK(ca_crl_create(fx->svc, "Sub", ACTOR, &out, &err_));
	json_decref(out);
	assert_true(hook_rows(fx->st, CA_CHANGE_CRL) >= 1);

	/* A refusing hook undoes the change: still revoked, nothing added. */
	OPENSSL_free(res.der);
	issue_one(fx->svc, "Sub", "TLS_SERVER", 0, &res);
	assert_int_equal(res.rc, 0);
	hl.refuse_status = true;
	expect_rc(ca_revoke(fx->svc, "Sub", res.serial, "superseded", ACTOR,
	    &err), SP_ERR_DB, &err, "refused by hook", "outbox full");
	assert_int_equal(cert_count(fx->svc, "Sub", "revoked"), 1);
	assert_int_equal(cert_count(fx->svc, "Sub", "active"), 1);
	assert_int_equal(hook_rows(fx->st, CA_CHANGE_STATUS), 1);
	OPENSSL_free(res.der);
}

/*
 * A CA change holds no lock readers wait on while it signs and commits:
 * with ca_create() stopped inside its transaction (a commit hook that
 * waits), ca_list() and a profile lookup still answer at once.
 */
struct slow_hook {
	pthread_mutex_t	mtx;
	pthread_cond_t	cv;
	bool		inside, release;
};

static int
hook_wait(void *arg, struct store *st, struct store_txn *tx,
    const struct ca_change_ev *ev, struct sp_err *err)
{
	struct slow_hook	*sh = arg;
	struct timespec		 until;

	(void)st;
	(void)tx;
	(void)err;
	if (ev->what != CA_CHANGE_CA)
		return 0;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&sh->mtx);
	sh->inside = true;
	pthread_cond_broadcast(&sh->cv);
	while (!sh->release && pthread_cond_timedwait(&sh->cv, &sh->mtx,
	    &until) == 0)
		;
	pthread_mutex_unlock(&sh->mtx);
	return 0;
}

struct create_arg {
	struct ca_service	*svc;
	int			 rc;
};

static void *
create_thread(void *p)
{
	struct create_arg	*a = p;
	struct ca_create_req	 req = { 0 };
	struct sp_err		 err = { 0 };
	json_t			*j = NULL;

	req.name = "Slow";
	req.dn = "CN=Slow CA";
	req.token = "tok";
	req.key = "spare-key";
	req.signed_by = "Root";
	a->rc = ca_create(a->svc, &req, ACTOR, &j, &err);
	json_decref(j);
	return NULL;
}

static void *
list_thread(void *p)
{
	struct ca_service	*svc = p;
	json_t			*j, *out = NULL;
	struct sp_err		 err = { 0 };

	j = ca_list(svc);
	json_decref(j);
	if (ca_profile_show(svc, "TLS_SERVER", &out, &err) == 0)
		json_decref(out);
	return (void *)1;
}

static void
test_change_does_not_block_readers(void **state)
{
	struct fixture		*fx = *state;
	struct slow_hook	 sh = { PTHREAD_MUTEX_INITIALIZER,
				    PTHREAD_COND_INITIALIZER, false, false };
	struct create_arg	 ca = { fx->svc, -1 };
	pthread_t		 tc, tl;
	struct timespec		 until;
	void			*ret = NULL;
	int			 joined;

	make_pki(fx->tk, fx->svc);
	assert_int_equal(ca_add_commit_hook(fx->svc, hook_wait, &sh), 0);
	assert_int_equal(pthread_create(&tc, NULL, create_thread, &ca), 0);
	pthread_mutex_lock(&sh.mtx);
	while (!sh.inside)
		pthread_cond_wait(&sh.cv, &sh.mtx);
	pthread_mutex_unlock(&sh.mtx);
	/* ca_create() is inside its transaction now. */
	assert_int_equal(pthread_create(&tl, NULL, list_thread, fx->svc), 0);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 3;
	joined = pthread_timedjoin_np(tl, &ret, &until);
	pthread_mutex_lock(&sh.mtx);
	sh.release = true;
	pthread_cond_broadcast(&sh.cv);
	pthread_mutex_unlock(&sh.mtx);
	if (joined != 0)
		pthread_join(tl, &ret);
	pthread_join(tc, NULL);
	assert_int_equal(joined, 0);	/* the readers did not wait */
	assert_int_equal(ca.rc, 0);
	assert_int_equal(cert_count(fx->svc, "Root", "active"), 2);
}

/*
 * ca_issue_submit(): queued on the loop, batches run as pool jobs, each
 * result delivered once on the loop, never inside the call; with one
 * worker, the requests still all complete (no worker waits for another
 * request), and they are grouped.
 */
struct submit_log {
	int	done, ok, bad;
	char	serial[24][2 * SERIAL_LEN + 1];
};

static void
on_issued(void *arg, const struct ca_issue_res *res)
{
	struct submit_log	*sl = arg;

	if (res->rc == 0 && res->der != NULL) {
		snprintf(sl->serial[sl->ok], sizeof(sl->serial[0]), "%s",
		    res->serial);
		sl->ok++;
	} else
		sl->bad++;
	sl->done++;
}

static void
test_issue_submit(void **state)
{
	struct fixture		*fx = *state;
	struct event_base	*base;
	struct pool		*pool;
	struct submit_log	 sl = { 0 };
	struct ca_issue_req	 req = { 0 };
	struct sp_err		 err = { 0 };
	unsigned char		*csr;
	size_t			 len;
	uint64_t		 b0, r0, b1, r1;
	enum { N = 24 };

	make_pki(fx->tk, fx->svc);
	assert_int_equal(evthread_use_pthreads(), 0);
	assert_non_null(base = event_base_new());
	assert_non_null(pool = pool_new(base, 1));
	csr = make_csr(k_ec, "www.example.com", www, &len);
	req.ca = "Sub";
	req.profile = "TLS_SERVER";
	ca_issue_stats(fx->svc, &b0, &r0);
	for (int i = 0; i < N; i++) {
		req.csr = i == 5 ? (const unsigned char *)"junk" : csr;
		req.csrlen = i == 5 ? 4 : len;
		assert_int_equal(ca_issue_submit(fx->svc, pool, &req, ACTOR,
		    on_issued, &sl, &err), 0);
	}
	/* The caller's buffers may go at once: the request was copied. */
	free(csr);
	assert_int_equal(sl.done, 0);
	/* Completions are activated from the worker: poll the loop. */
	for (int spin = 0; spin < 20000 && sl.done < N; spin++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (sl.done < N)
			usleep(1000);
	}
	assert_int_equal(sl.done, N);
	assert_int_equal(sl.ok, N - 1);
	assert_int_equal(sl.bad, 1);
	for (int i = 1; i < sl.ok; i++)
		assert_string_not_equal(sl.serial[i], sl.serial[0]);
	ca_issue_stats(fx->svc, &b1, &r1);
	assert_int_equal(r1 - r0, N);
	assert_true(b1 - b0 < N);	/* grouped while a batch ran */
	assert_int_equal(cert_count(fx->svc, "Sub", "active"), N - 1);
	assert_int_equal(ca_issue_submit(fx->svc, NULL, &req, ACTOR,
	    on_issued, &sl, &err), SP_ERR_INVALID);
	pool_free(pool);
	event_base_free(base);
}

static void
test_issue_batch_limits(void **state)
{
	struct fixture		*fx = *state;
	struct ca_issue_req	 req = { 0 };
	struct ca_issue_res	*res;

	assert_int_equal(ca_issue_batch(fx->svc, &req, 0, NULL, ACTOR), 0);
	assert_non_null(res = calloc(CA_BATCH_MAX + 1, sizeof(*res)));
	assert_int_equal(ca_issue_batch(fx->svc, &req, CA_BATCH_MAX + 1, res,
	    ACTOR), SP_ERR_LIMIT);
	free(res);
}

static void
test_issue_token_inactive(void **state)
{
	struct fixture		*fx = *state;
	struct ca_issue_res	 res;
	struct sp_err		 err = { 0 };

	make_pki(fx->tk, fx->svc);
	OK(tokens_deactivate(fx->tk, "tok", ACTOR, &err_));
	issue_one(fx->svc, "Sub", "TLS_SERVER", 0, &res);
	expect_rc(res.rc, SP_ERR_STATE, &res.err, "inactive issue", "active");
	assert_null(res.der);
	/* Never active, nothing left reserved; any row is a failed one. */
	assert_int_equal(cert_count(fx->svc, "Sub", "active"), 0);
	assert_int_equal(cert_count(fx->svc, "Sub", "reserved"), 0);
	assert_int_equal(cert_count(fx->svc, "Sub", NULL),
	    cert_count(fx->svc, "Sub", "failed"));

	/* A wrong PIN does not help. */
	expect_rc(tokens_activate(fx->tk, "tok", "not the pin", ACTOR,
	    &err), SP_ERR_PIN, &err, "wrong PIN", NULL);
	issue_one(fx->svc, "Sub", "TLS_SERVER", 0, &res);
	assert_int_equal(res.rc, SP_ERR_STATE);
	assert_int_equal(cert_count(fx->svc, "Sub", "active"), 0);

	/* The right one does. */
	OK(tokens_activate(fx->tk, "tok", PIN, ACTOR, &err_));
	issue_one(fx->svc, "Sub", "TLS_SERVER", 0, &res);
	assert_int_equal(res.rc, 0);
	OPENSSL_free(res.der);
	assert_int_equal(cert_count(fx->svc, "Sub", "active"), 1);
	assert_int_equal(cert_count(fx->svc, "Sub", "reserved"), 0);
	assert_int_equal(cert_count(fx->svc, "Sub", NULL),
	    1 + cert_count(fx->svc, "Sub", "failed"));
	audit_intact(fx->svc);
}

static void
test_revoke(void **state)
{
	struct fixture	*fx = *state;
	struct sp_err	 err = { 0 };
	char		 a[2 * SERIAL_LEN + 1], b[2 * SERIAL_LEN + 1];
	char		 typed[3 * SERIAL_LEN + 3];
	size_t		 k = 0;

	make_pki(fx->tk, fx->svc);
	issue_ok(fx->svc, a);
	issue_ok(fx->svc, b);

	snprintf(typed, sizeof(typed), "0x%s", a);
	OK(ca_revoke(fx->svc, "Sub", typed, "keyCompromise", ACTOR, &err_));
	cert_status(fx->svc, a, "revoked", "keyCompromise");
	cert_status(fx->svc, b, "active", "");
	assert_int_equal(cert_count(fx->svc, "Sub", "revoked"), 1);

	/* Twice. */
	expect_rc(ca_revoke(fx->svc, "Sub", a, "superseded", ACTOR, &err),
	    SP_ERR_STATE, &err, "revoke twice", "already revoked");
	cert_status(fx->svc, a, "revoked", "keyCompromise");

	/* Bad input. */
	sp_err_clear(&err);
	expect_rc(ca_revoke(fx->svc, "Sub", b, "becauseISaidSo", ACTOR, &err),
	    SP_ERR_INVALID, &err, "bad reason", "becauseISaidSo");
	sp_err_clear(&err);
	expect_rc(ca_revoke(fx->svc, "Sub", "0123456789abcdef", NULL, ACTOR,
	    &err), SP_ERR_NOTFOUND, &err, "unknown serial", NULL);
	sp_err_clear(&err);
	expect_rc(ca_revoke(fx->svc, "Sub", "xyz", NULL, ACTOR, &err),
	    SP_ERR_INVALID, &err, "bad serial", "serial");
	sp_err_clear(&err);
	expect_rc(ca_revoke(fx->svc, "Sub", "", NULL, ACTOR, &err),
	    SP_ERR_INVALID, &err, "empty serial", "serial");
	sp_err_clear(&err);
	/* 21 bytes: longer than RFC 5280 allows (leading zeros do not count). */
	expect_rc(ca_revoke(fx->svc, "Sub",
	    "123456789abcdef0123456789abcdef0123456789a", NULL, ACTOR, &err),
	    SP_ERR_INVALID, &err, "long serial", "serial");
	sp_err_clear(&err);
	expect_rc(ca_revoke(fx->svc, "Sub",
	    "00:0123456789abcdef0123456789abcdef01234567", NULL, ACTOR, &err),
	    SP_ERR_NOTFOUND, &err, "zero-padded serial", NULL);
	sp_err_clear(&err);
	expect_rc(ca_revoke(fx->svc, "Sub", NULL, NULL, ACTOR, &err),
	    SP_ERR_INVALID, &err, "no serial", "serial");
	sp_err_clear(&err);
	expect_rc(ca_revoke(fx->svc, "Nope", b, NULL, ACTOR, &err),
	    SP_ERR_NOTFOUND, &err, "unknown CA", "Nope");
	/* The right serial on the wrong CA. */
	sp_err_clear(&err);
	expect_rc(ca_revoke(fx->svc, "Root", b, NULL, ACTOR, &err),
	    SP_ERR_NOTFOUND, &err, "wrong CA", NULL);
	cert_status(fx->svc, b, "active", "");

	/* Hold, typed the way operators copy serials: upper case, colons. */
	for (size_t i = 0; b[i] != '\0'; i += 2) {
		if (i > 0)
			typed[k++] = ':';
		typed[k++] = (char)(b[i] >= 'a' ? b[i] - 'a' + 'A' : b[i]);
		typed[k++] = (char)(b[i + 1] >= 'a' ? b[i + 1] - 'a' + 'A' :
		    b[i + 1]);
	}
	typed[k] = '\0';
	OK(ca_revoke(fx->svc, "Sub", typed, "certificateHold", ACTOR, &err_));
	cert_status(fx->svc, b, "revoked", "certificateHold");
	sp_err_clear(&err);
	expect_rc(ca_revoke(fx->svc, "Sub", b, "certificateHold", ACTOR, &err),
	    SP_ERR_STATE, &err, "hold twice", "on hold");
	OK(ca_unrevoke(fx->svc, "Sub", b, ACTOR, &err_));
	cert_status(fx->svc, b, "active", "");
	sp_err_clear(&err);
	expect_rc(ca_unrevoke(fx->svc, "Sub", b, ACTOR, &err), SP_ERR_STATE,
	    &err, "unrevoke active", "not on hold");
	/* Only a hold can be lifted. */
	sp_err_clear(&err);
	expect_rc(ca_unrevoke(fx->svc, "Sub", a, ACTOR, &err), SP_ERR_STATE,
	    &err, "unrevoke keyCompromise", NULL);
	cert_status(fx->svc, a, "revoked", "keyCompromise");

	/* removeFromCRL lifts a hold; a hold can become permanent. */
	OK(ca_revoke(fx->svc, "Sub", b, "certificateHold", ACTOR, &err_));
	OK(ca_revoke(fx->svc, "Sub", b, "removeFromCRL", ACTOR, &err_));
	cert_status(fx->svc, b, "active", "");
	OK(ca_revoke(fx->svc, "Sub", b, "certificateHold", ACTOR, &err_));
	OK(ca_revoke(fx->svc, "Sub", b, "superseded", ACTOR, &err_));
	cert_status(fx->svc, b, "revoked", "superseded");

	assert_int_equal(audit_events(fx->svc, "cert.revoke"), 5);
	assert_int_equal(audit_events(fx->svc, "cert.unrevoke"), 2);
	audit_intact(fx->svc);
}

/* The CRL's entry for serial (hex), or NULL. */
static X509_REVOKED *
crl_find(X509_CRL *crl, const char *serial)
{
	X509_REVOKED	*rev = NULL;
	BIGNUM		*bn = NULL;
	ASN1_INTEGER	*sn;
	int		 r;

	assert_true(BN_hex2bn(&bn, serial) > 0);
	assert_non_null(sn = BN_to_ASN1_INTEGER(bn, NULL));
	r = X509_CRL_get0_by_serial(crl, &rev, sn);
	ASN1_INTEGER_free(sn);
	BN_free(bn);
	return r == 1 ? rev : NULL;
}

static int
crl_reason(X509_REVOKED *rev)
{
	ASN1_ENUMERATED	*e = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason,
			    NULL, NULL);
	int		 v = e ? (int)ASN1_ENUMERATED_get(e) : -1;

	ASN1_ENUMERATED_free(e);
	return v;
}

static X509_CRL *
latest_crl(struct ca_service *svc, const char *ca)
{
	struct sp_err		 err = { 0 };
	unsigned char		*der = NULL;
	const unsigned char	*p;
	size_t			 len = 0;
	X509_CRL		*crl;

	if (ca_crl_get(svc, ca, &der, &len, &err) != 0)
		print_error("ca_crl_get: %s\n", err.msg);
	assert_non_null(der);
	p = der;
	assert_non_null(crl = d2i_X509_CRL(NULL, &p, (long)len));
	assert_ptr_equal(p, der + len);
	free(der);
	return crl;
}

static void
test_crl(void **state)
{
	struct fixture		*fx = *state;
	struct sp_err		 err = { 0 };
	char			 a[2 * SERIAL_LEN + 1], b[2 * SERIAL_LEN + 1];
	char			 c[2 * SERIAL_LEN + 1];
	unsigned char		*der = NULL;
	size_t			 len = 0;
	json_t			*j = NULL;
	X509			*sub, *leaf;
	X509_CRL		*crl;
	ASN1_INTEGER		*num;
	STACK_OF(X509_CRL)	*crls;
	struct ca_issue_res	 res;

	make_pki(fx->tk, fx->svc);
	/* No CRL yet. */
	expect_rc(ca_crl_get(fx->svc, "Sub", &der, &len, &err),
	    SP_ERR_NOTFOUND, &err, "no CRL yet", NULL);
	assert_null(der);
	sp_err_clear(&err);
	expect_rc(ca_crl_get(fx->svc, "Nope", &der, &len, &err),
	    SP_ERR_NOTFOUND, &err, "no CA", NULL);

	issue_ok(fx->svc, a);
	issue_ok(fx->svc, b);
	issue_one(fx->svc, "Sub", "TLS_SERVER", 0, &res);
	assert_int_equal(res.rc, 0);
	memcpy(c, res.serial, sizeof(c));
	OK(ca_revoke(fx->svc, "Sub", a, "keyCompromise", ACTOR, &err_));
	OK(ca_revoke(fx->svc, "Sub", b, "certificateHold", ACTOR, &err_));

	OK(ca_crl_create(fx->svc, "Sub", ACTOR, &j, &err_));
	assert_int_equal(json_integer_value(json_object_get(j, "number")), 1);
	assert_int_equal(json_integer_value(json_object_get(j, "entries")), 2);
	json_decref(j);

	sub = ca_cert(fx->svc, "Sub");
	crl = latest_crl(fx->svc, "Sub");
	assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(sub)), 1);
	assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl),
	    X509_get_subject_name(sub)), 0);
	assert_non_null(crl_find(crl, a));
	assert_int_equal(crl_reason(crl_find(crl, a)), 1);
	assert_non_null(crl_find(crl, b));
	assert_int_equal(crl_reason(crl_find(crl, b)), 6);
	assert_null(crl_find(crl, c));
	num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	assert_int_equal(ASN1_INTEGER_get(num), 1);
	ASN1_INTEGER_free(num);

	/* A relying party sees c as good and a as revoked. */
	leaf = d2i_cert(res.der, res.derlen);
	crls = sk_X509_CRL_new_null();
	assert_true(sk_X509_CRL_push(crls, crl) > 0);
	X509_CRL_up_ref(crl);
	{
		X509_CRL *rootcrl;

		OK(ca_crl_create(fx->svc, "Root", ACTOR, &j, &err_));
		json_decref(j);
		rootcrl = latest_crl(fx->svc, "Root");
		assert_true(sk_X509_CRL_push(crls, rootcrl) > 0);
	}
	assert_int_equal(verify_chain(fx->svc, leaf, crls), X509_V_OK);
	X509_free(leaf);
	X509_CRL_free(crl);

	/* Lift the hold: the next CRL has only a. */
	OK(ca_unrevoke(fx->svc, "Sub", b, ACTOR, &err_));
	OK(ca_crl_create(fx->svc, "Sub", ACTOR, &j, &err_));
	assert_int_equal(json_integer_value(json_object_get(j, "number")), 2);
	assert_int_equal(json_integer_value(json_object_get(j, "entries")), 1);
	json_decref(j);
	crl = latest_crl(fx->svc, "Sub");
	assert_non_null(crl_find(crl, a));
	assert_null(crl_find(crl, b));
	assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(sub)), 1);
	X509_CRL_free(crl);

	/* Revoked a fails with CRL checking on. */
	{
		json_t			*show = NULL;
		const char		*pem;
		BIO			*bio;
		X509			*xa;
		STACK_OF(X509_CRL)	*c2 = sk_X509_CRL_new_null();

		OK(ca_cert_show(fx->svc, "Sub", a, &show, &err_));
		pem = json_string_value(json_object_get(show, "pem"));
		assert_non_null(pem);
		bio = BIO_new_mem_buf(pem, -1);
		assert_non_null(xa = PEM_read_bio_X509(bio, NULL, NULL, NULL));
		BIO_free(bio);
		json_decref(show);
		assert_true(sk_X509_CRL_push(c2, latest_crl(fx->svc, "Sub")) >
		    0);
		assert_true(sk_X509_CRL_push(c2, latest_crl(fx->svc, "Root")) >
		    0);
		assert_int_equal(verify_chain(fx->svc, xa, c2),
		    X509_V_ERR_CERT_REVOKED);
		sk_X509_CRL_pop_free(c2, X509_CRL_free);
		X509_free(xa);
	}
	sk_X509_CRL_pop_free(crls, X509_CRL_free);

	sp_err_clear(&err);
	expect_rc(ca_crl_create(fx->svc, "Nope", ACTOR, &j, &err),
	    SP_ERR_NOTFOUND, &err, "CRL for no CA", NULL);
	/* An inactive token cannot sign a CRL. */
	OK(tokens_deactivate(fx->tk, "tok", ACTOR, &err_));
	sp_err_clear(&err);
	expect_rc(ca_crl_create(fx->svc, "Sub", ACTOR, &j, &err),
	    SP_ERR_STATE, &err, "inactive CRL", NULL);
	assert_int_equal(ca_crl_tick(fx->svc), 0);
	crl = latest_crl(fx->svc, "Sub");
	num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	assert_int_equal(ASN1_INTEGER_get(num), 2);
	ASN1_INTEGER_free(num);
	X509_CRL_free(crl);
	OPENSSL_free(res.der);
	X509_free(sub);
	assert_int_equal(audit_events(fx->svc, "crl.create"), 3);
	audit_intact(fx->svc);
}

static void
test_crl_tick(void **state)
{
	struct fixture	*fx = *state;
	struct sp_err	 err = { 0 };
	json_t		*j = NULL;

	make_pki(fx->tk, fx->svc);
	/* Both CAs are due right after creation. */
	OK(ca_crl_create(fx->svc, "Sub", ACTOR, &j, &err_));
	json_decref(j);
	assert_int_equal(ca_crl_tick(fx->svc), 1);	/* Root only */
	assert_int_equal(ca_crl_tick(fx->svc), 0);
	(void)err;
}

static void
test_audit(void **state)
{
	struct fixture	*fx = *state;
	struct sp_err	 err = { 0 };
	json_t		*j = NULL, *list;
	char		 a[2 * SERIAL_LEN + 1];
	sqlite3		*db = NULL;

	make_pki(fx->tk, fx->svc);
	issue_ok(fx->svc, a);
	OK(ca_revoke(fx->svc, "Sub", a, "superseded", ACTOR, &err_));
	audit_intact(fx->svc);

	/* Newest first, details as JSON, actor recorded. */
	list = ca_audit_list(fx->svc, 2);
	assert_int_equal(json_array_size(list), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    list, 0), "event")), "cert.revoke");
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    list, 0), "actor")), ACTOR);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    json_array_get(list, 0), "details"), "serial")), a);
	json_decref(list);

	/* Tampering is reported with the row. */
	assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE audit SET actor = 'nobody' "
	    "WHERE seq = 2", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	expect_rc(ca_audit_verify(fx->svc, &j, &err), SP_ERR_POLICY, &err,
	    "tampered audit", "2");
	assert_non_null(j);
	assert_true(json_is_false(json_object_get(j, "intact")));
	assert_int_equal(json_integer_value(json_object_get(j, "bad_row")), 2);
	json_decref(j);
}

static void
test_reopen_keeps_state(void **state)
{
	struct fixture		*fx = *state;
	struct sp_err		 err = { 0 };
	static const char *const sets[] = { "validity_days=30" };
	char			 a[2 * SERIAL_LEN + 1];
	json_t			*before, *after, *j = NULL;
	struct ca_issue_res	 res;
	struct store_cert	 sc = { 0 };
	int64_t			 rowid = 0;
	X509			*leaf, *sub;

	make_pki(fx->tk, fx->svc);
	issue_ok(fx->svc, a);
	OK(ca_revoke(fx->svc, "Sub", a, "certificateHold", ACTOR, &err_));
	OK(ca_profile_create(fx->svc, "SHORT", "TLS_SERVER", sets, 1, ACTOR,
	    &err_));
	before = ca_list(fx->svc);

	/* A reservation a crash left behind, straight into the store. */
	sc.ca_id = 2;		/* Sub */
	sc.serial = "0badc0de";
	sc.subject = "CN=crashed";
	sc.profile = "TLS_SERVER";
	sc.der = (const unsigned char *)"tbs";
	sc.derlen = 3;
	OK(store_cert_reserve(fx->st, NULL, &sc, &rowid, &err_));
	assert_int_equal(cert_count(fx->svc, "Sub", "reserved"), 1);

	svc_close(fx);
	svc_open(fx);

	/* CAs, certificates and profiles are back. */
	after = ca_list(fx->svc);
	assert_true(json_equal(before, after));
	json_decref(before);
	json_decref(after);
	cert_status(fx->svc, a, "revoked", "certificateHold");
	OK(ca_profile_show(fx->svc, "SHORT", &j, &err_));
	assert_true(json_is_false(json_object_get(j, "builtin")));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j,
	    "settings"), "validity_days")), 30);
	json_decref(j);
	j = ca_profile_list(fx->svc);
	assert_int_equal(json_array_size(j), 7);
	json_decref(j);

	/* The crashed reservation was abandoned, and that was audited. */
	assert_int_equal(cert_count(fx->svc, "Sub", "reserved"), 0);
	assert_int_equal(cert_count(fx->svc, "Sub", "failed"), 1);
	assert_int_equal(audit_events(fx->svc, "cert.reservation_abandoned"),
	    1);
	/* What was never issued cannot be revoked. */
	expect_rc(ca_revoke(fx->svc, "Sub", "0BADC0DE", "keyCompromise", ACTOR,
	    &err), SP_ERR_STATE, &err, "revoke failed row", "never issued");

	/* Tokens come back inactive; the PIN brings the keys back. */
	j = tokens_list(fx->tk);
	assert_true(json_is_false(json_object_get(json_array_get(j, 0),
	    "active")));
	assert_int_equal(json_array_size(json_object_get(json_array_get(j, 0),
	    "keys")), 3);
	json_decref(j);
	issue_one(fx->svc, "Sub", "SHORT", 0, &res);
	assert_int_equal(res.rc, SP_ERR_STATE);
	OK(tokens_activate(fx->tk, "tok", PIN, ACTOR, &err_));
	issue_one(fx->svc, "Sub", "SHORT", 0, &res);
	assert_int_equal(res.rc, 0);
	leaf = d2i_cert(res.der, res.derlen);
	sub = ca_cert(fx->svc, "Sub");
	assert_int_equal(X509_verify(leaf, X509_get0_pubkey(sub)), 1);
	assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(leaf),
	    X509_get0_subject_key_id(sub)), 0);
	assert_int_equal(verify_chain(fx->svc, leaf, NULL), X509_V_OK);
	OPENSSL_free(res.der);
	X509_free(leaf);
	X509_free(sub);
	OK(ca_unrevoke(fx->svc, "Sub", a, ACTOR, &err_));
	audit_intact(fx->svc);
	(void)err;
}

static void
test_profile_create_and_enforce(void **state)
{
	struct fixture		*fx = *state;
	struct sp_err		 err = { 0 };
	static const char *const sets[] = { "validity_days=30",
				    "key_algs=ec-p256" };
	static const char *const bad[] = { "validity_days=zero" };
	static const char *const edit[] = { "validity_days=10" };
	struct ca_issue_res	 res;
	X509			*leaf;
	json_t			*j = NULL, *before;
	int			 day;

	make_pki(fx->tk, fx->svc);
	OK(ca_profile_create(fx->svc, "SHORT", "TLS_SERVER", sets, 2, ACTOR,
	    &err_));

	/* Longer than 30 days is refused... */
	issue_one(fx->svc, "Sub", "SHORT", 31, &res);
	expect_rc(res.rc, SP_ERR_POLICY, &res.err, "31 days",
	    "validity_days");
	/* ...and the default is the new maximum. */
	issue_one(fx->svc, "Sub", "SHORT", 0, &res);
	assert_int_equal(res.rc, 0);
	leaf = d2i_cert(res.der, res.derlen);
	assert_int_equal(ASN1_TIME_diff(&day, NULL, X509_get0_notBefore(leaf),
	    X509_get0_notAfter(leaf)), 1);
	assert_int_equal(day, 30);
	/* The rest of TLS_SERVER came along. */
	assert_int_equal(X509_get_extended_key_usage(leaf), XKU_SSL_SERVER);
	X509_free(leaf);
	OPENSSL_free(res.der);
	issue_one(fx->svc, "Sub", "SHORT", 30, &res);
	assert_int_equal(res.rc, 0);
	OPENSSL_free(res.der);

	/* Errors. */
	expect_rc(ca_profile_create(fx->svc, "SHORT", "TLS_SERVER", sets, 1,
	    ACTOR, &err), SP_ERR_EXISTS, &err, "dup profile", NULL);
	sp_err_clear(&err);
	expect_rc(ca_profile_create(fx->svc, "X", "NOPE", sets, 1, ACTOR,
	    &err), SP_ERR_NOTFOUND, &err, "from unknown", "NOPE");
	sp_err_clear(&err);
	expect_rc(ca_profile_create(fx->svc, "BAD", "TLS_SERVER", bad, 1,
	    ACTOR, &err), SP_ERR_INVALID, &err, "bad set", "validity_days");
	sp_err_clear(&err);
	expect_rc(ca_profile_show(fx->svc, "BAD", &j, &err), SP_ERR_NOTFOUND,
	    &err, "bad profile not created", NULL);
	sp_err_clear(&err);
	expect_rc(ca_profile_create(fx->svc, "no good", "TLS_SERVER", NULL, 0,
	    ACTOR, &err), SP_ERR_INVALID, &err, "bad name", NULL);

	/* Built-ins are read-only. */
	OK(ca_profile_show(fx->svc, "TLS_SERVER", &before, &err_));
	sp_err_clear(&err);
	expect_rc(ca_profile_edit(fx->svc, "TLS_SERVER", edit, 1, ACTOR, &err),
	    SP_ERR_DENIED, &err, "edit builtin", "built in");
	OK(ca_profile_show(fx->svc, "TLS_SERVER", &j, &err_));
	assert_true(json_equal(before, j));
	json_decref(before);
	json_decref(j);

	/* Operator profiles can be edited, and the edit is enforced. */
	OK(ca_profile_edit(fx->svc, "SHORT", edit, 1, ACTOR, &err_));
	issue_one(fx->svc, "Sub", "SHORT", 20, &res);
	expect_rc(res.rc, SP_ERR_POLICY, &res.err, "20 days", "10");
	sp_err_clear(&err);
	expect_rc(ca_profile_edit(fx->svc, "SHORT", bad, 1, ACTOR, &err),
	    SP_ERR_INVALID, &err, "bad edit", NULL);
	OK(ca_profile_show(fx->svc, "SHORT", &j, &err_));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j,
	    "settings"), "validity_days")), 10);
	json_decref(j);
	sp_err_clear(&err);
	expect_rc(ca_profile_edit(fx->svc, "NOPE", edit, 1, ACTOR, &err),
	    SP_ERR_NOTFOUND, &err, "edit unknown", NULL);
	assert_int_equal(audit_events(fx->svc, "profile.create"), 1);
	assert_int_equal(audit_events(fx->svc, "profile.edit"), 1);
	audit_intact(fx->svc);
}

static void
test_delkey_in_use(void **state)
{
	struct fixture	*fx = *state;
	struct sp_err	 err = { 0 };

	make_pki(fx->tk, fx->svc);
	expect_rc(tokens_delkey(fx->tk, "tok", "sub-key", ACTOR, &err),
	    SP_ERR_STATE, &err, "delkey in use", "Sub");
	OK(tokens_delkey(fx->tk, "tok", "spare-key", ACTOR, &err_));
}

static void
test_key_algorithms(void **state)
{
	struct fixture		*fx = *state;
	struct sp_err		 err = { 0 };
	json_t			*j = NULL;
	struct ca_issue_res	 res;
	X509			*leaf, *sub, *root;
	X509_CRL		*crl;

	/* An Ed25519 root over an RSA sub CA over an EC leaf. */
	OK(tokens_create(fx->tk, "tok", PIN, ACTOR, &err_));
	OK(tokens_genkey(fx->tk, "tok", "ed", "ed25519", ACTOR, &j, &err_));
	json_decref(j);
	OK(tokens_genkey(fx->tk, "tok", "rsa", "rsa2048", ACTOR, &j,
	    &err_));
	json_decref(j);
	create_ca(fx->svc, "Root", "CN=Ed Root", "ed", NULL, 0);
	create_ca(fx->svc, "Sub", "CN=RSA Sub", "rsa", "Root", 0);
	root = ca_cert(fx->svc, "Root");
	sub = ca_cert(fx->svc, "Sub");
	assert_int_equal(X509_get_signature_nid(root), NID_ED25519);
	assert_int_equal(X509_get_signature_nid(sub), NID_ED25519);
	assert_int_equal(X509_verify(sub, X509_get0_pubkey(root)), 1);

	issue_one(fx->svc, "Sub", "TLS_SERVER", 0, &res);
	assert_int_equal(res.rc, 0);
	leaf = d2i_cert(res.der, res.derlen);
	assert_int_equal(X509_get_signature_nid(leaf),
	    NID_sha256WithRSAEncryption);
	assert_int_equal(verify_chain(fx->svc, leaf, NULL), X509_V_OK);

	OK(ca_crl_create(fx->svc, "Sub", ACTOR, &j, &err_));
	json_decref(j);
	crl = latest_crl(fx->svc, "Sub");
	assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(sub)), 1);
	X509_CRL_free(crl);
	OK(ca_crl_create(fx->svc, "Root", ACTOR, &j, &err_));
	json_decref(j);
	crl = latest_crl(fx->svc, "Root");
	assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(root)), 1);
	X509_CRL_free(crl);

	OPENSSL_free(res.der);
	X509_free(leaf);
	X509_free(sub);
	X509_free(root);
	(void)err;
}

static void
test_leaf_key_usage_fits_key(void **state)
{
	struct fixture		*fx = *state;
	static const char *const email[] = { "email:u@example.org", NULL };
	struct ca_issue_req	 req[2];
	struct ca_issue_res	 res[2];
	unsigned char		*csr[2];
	size_t			 len[2];
	uint32_t		 ku[2] = { 0, 0 };

	/*
	 * RFC 8813 section 3 (EC) and RFC 8410 section 5 (Ed25519): a
	 * signature-only key's certificate must not assert keyEncipherment
	 * or dataEncipherment, whatever the profile lists for RSA keys.
	 */
	make_pki(fx->tk, fx->svc);
	memset(req, 0, sizeof(req));
	csr[0] = make_csr(k_ec, "www.example.com", www, &len[0]);
	csr[1] = make_csr(k_ed, "A User", email, &len[1]);
	req[0].ca = req[1].ca = "Sub";
	req[0].profile = "TLS_SERVER";
	req[1].profile = "ENDUSER";
	for (int i = 0; i < 2; i++) {
		req[i].csr = csr[i];
		req[i].csrlen = len[i];
	}
	assert_int_equal(ca_issue_batch(fx->svc, req, 2, res, ACTOR), 0);
	for (int i = 0; i < 2; i++) {
		if (res[i].rc == 0) {
			X509 *x = d2i_cert(res[i].der, res[i].derlen);

			ku[i] = X509_get_key_usage(x);
			X509_free(x);
		}
		OPENSSL_free(res[i].der);
		free(csr[i]);
	}
	assert_int_equal(res[0].rc, 0);
	assert_int_equal(res[1].rc, 0);
	if (ku[0] & (KU_KEY_ENCIPHERMENT | KU_DATA_ENCIPHERMENT))
		print_error("EC key, TLS_SERVER: keyUsage 0x%x asserts "
		    "keyEncipherment\n", ku[0]);
	if (ku[1] & (KU_KEY_ENCIPHERMENT | KU_DATA_ENCIPHERMENT))
		print_error("Ed25519 key, ENDUSER: keyUsage 0x%x asserts "
		    "keyEncipherment\n", ku[1]);
	assert_true(ku[0] & KU_DIGITAL_SIGNATURE);
	assert_int_equal(ku[0] & (KU_KEY_ENCIPHERMENT | KU_DATA_ENCIPHERMENT),
	    0);
	assert_int_equal(ku[1] & (KU_KEY_ENCIPHERMENT | KU_DATA_ENCIPHERMENT),
	    0);
}

#define T(f)	cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_open_installs_builtins),
		T(test_tokens),
		T(test_ca_create_root_and_sub),
		T(test_ca_create_errors),
		T(test_ca_validity_nested),
		T(test_issue_batch_mixed),
		T(test_issue_one_group_commit),
		T(test_issue_one_groups),
		T(test_issue_batch_failed_rows_marked),
		T(test_commit_hooks),
		T(test_change_does_not_block_readers),
		T(test_issue_submit),
		T(test_issue_batch_limits),
		T(test_issue_token_inactive),
		T(test_revoke),
		T(test_crl),
		T(test_crl_tick),
		T(test_audit),
		T(test_reopen_keeps_state),
		T(test_profile_create_and_enforce),
		T(test_delkey_in_use),
		T(test_key_algorithms),
		T(test_leaf_key_usage_fits_key),
	};

	return cmocka_run_group_tests_name("ca", tests, group_setup,
	    group_teardown);
}
