/*
 * Unit tests for key bindings and the trust store (kb/kb.c), over a real
 * CA service on a SQLite store in a temporary directory: the binding's
 * CSR is issued by a root CA on the same node (TLS_SERVER / TLS_CLIENT
 * profiles) and installed back; certificates for another key, expired,
 * not yet valid or with a chain that does not verify are refused; the
 * trust store takes CA certificates only and verifies what they issued;
 * token state and key deletion show in the status; everything survives a
 * restart; and the admin commands validate their arguments.
 */
#include <sys/stat.h>

#include <arpa/inet.h>
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

#include <cmocka.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "admin/handlers.h"
#include "ca/ca.h"
#include "crypto/dn.h"
#include "crypto/token.h"
#include "crypto/x509.h"
#include "kb/kb.h"
#include "store/store.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#define PIN	"correct horse"
#define ACTOR	"test:unit"

/* What kb_trust_remove() did with the CRL (the e2e tests check it). */
static const char	*crlst;
#define DAY	86400

struct fixture {
	char			 dir[64];
	char			 path[128];
	struct store		*st;
	struct tokens		*tk;
	struct ca_service	*ca;
	struct kb_service	*kb;
};

static int
rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

#define OK(call) do {							\
	struct sp_err	err_ = { 0 };					\
	int		r_ = (call);					\
									\
	if (r_ != 0)							\
		print_error("%s: %s\n", #call, err_.msg);		\
	assert_int_equal(r_, 0);					\
} while (0)

/* Asserts a failure code and, if want_msg, a word of its message. */
#define FAILS(call, want, want_msg) do {				\
	struct sp_err	 err_ = { 0 };					\
	const char	*m_ = (want_msg);				\
	int		 r_ = (call);					\
									\
	if (r_ != (want))						\
		print_error("%s: want %s, got %s (%s)\n", #call,	\
		    sp_rc_str(want), sp_rc_str(r_), err_.msg);		\
	assert_int_equal(r_, (want));					\
	if (m_ != NULL && strstr(err_.msg, m_) == NULL) {		\
		print_error("%s: message \"%s\" lacks \"%s\"\n", #call,	\
		    err_.msg, m_);					\
		fail();							\
	}								\
} while (0)

static void
genkey(struct fixture *fx, const char *alias, const char *alg)
{
	json_t	*j = NULL;

	OK(tokens_genkey(fx->tk, "tok", alias, alg, ACTOR, &j, &err_));
	json_decref(j);
}

static void
create_ca(struct fixture *fx, const char *name, const char *dn,
    const char *key, const char *signed_by)
{
	struct ca_create_req	 req = { 0 };
	json_t			*j = NULL;

	req.name = name;
	req.dn = dn;
	req.token = "tok";
	req.key = key;
	req.signed_by = signed_by;
	OK(ca_create(fx->ca, &req, ACTOR, &j, &err_));
	json_decref(j);
}

static void
services_open(struct fixture *fx)
{
	OK(store_open(fx->path, &fx->st, &err_));
	OK(tokens_open(fx->st, &fx->tk, &err_));
	OK(ca_service_open(fx->st, fx->tk, &fx->ca, &err_));
	OK(kb_open(fx->st, fx->tk, &fx->kb, &err_));
}

static void
services_close(struct fixture *fx)
{
	kb_free(fx->kb);
	ca_service_free(fx->ca);
	tokens_free(fx->tk);
	store_close(fx->st);
	fx->kb = NULL;
	fx->ca = NULL;
	fx->st = NULL;
}

/*
 * A token "tok" with keys "root" (the Root CA's), "tls" and "other"
 * (ec-p256), a root CA "Root", and the key binding service.
 */
static int
setup(void **state)
{
	struct fixture	*fx;

	if ((fx = calloc(1, sizeof(*fx))) == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/sp_test_kb.XXXXXX");
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->path, sizeof(fx->path), "%s/kb.db", fx->dir);
	*state = fx;
	services_open(fx);
	OK(tokens_create(fx->tk, "tok", PIN, ACTOR, &err_));
	genkey(fx, "root", "ec-p256");
	genkey(fx, "tls", "ec-p256");
	genkey(fx, "other", "ec-p256");
	create_ca(fx, "Root", "CN=Test Root,O=Sallyport", "root", NULL);
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;
	int		 r;

	sp_time_set_fake(0);
	services_close(fx);
	r = nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return r == 0 ? 0 : -1;
}

/* --- helpers -------------------------------------------------------------- */

static void
create_binding(struct fixture *fx, const char *name, const char *key)
{
	json_t	*j = NULL;

	OK(kb_create(fx->kb, name, "tok", key, NULL, ACTOR, &j, &err_));
	assert_non_null(j);
	json_decref(j);
}

static char *
csr(struct fixture *fx, const char *name, const char *dn,
    const char *const *sans, size_t n)
{
	char	*pem = NULL;

	OK(kb_csr(fx->kb, name, dn, sans, n, ACTOR, &pem, &err_));
	assert_non_null(pem);
	return pem;
}

/* Issues a certificate for the PEM CSR (DER, OPENSSL_free). */
static unsigned char *
issue(struct fixture *fx, const char *ca, const char *profile,
    const char *csrpem, int days, size_t *len)
{
	struct ca_issue_req	req = { 0 };
	struct ca_issue_res	res = { 0 };

	req.ca = ca;
	req.profile = profile;
	req.csr = (const unsigned char *)csrpem;
	req.csrlen = strlen(csrpem);
	req.days = days;
	assert_int_equal(ca_issue_batch(fx->ca, &req, 1, &res, ACTOR), 0);
	if (res.rc != 0)
		print_error("issue: %s\n", res.err.msg);
	assert_int_equal(res.rc, 0);
	*len = res.derlen;
	return res.der;
}

/* The binding's CSR (DNS SAN) issued with TLS_SERVER (DER). */
static unsigned char *
issue_for(struct fixture *fx, const char *name, int days, size_t *len)
{
	static const char *const sans[] = { "DNS:node.example.com" };
	char			*pem = csr(fx, name, NULL, sans, 1);
	unsigned char		*der = issue(fx, "Root", "TLS_SERVER", pem,
				    days, len);

	free(pem);
	return der;
}

static char *
ca_pem(struct fixture *fx, const char *name, bool chain)
{
	char	*pem = NULL;

	OK(ca_cert_pem(fx->ca, name, chain, &pem, &err_));
	return pem;
}

static X509 *
der_x509(const unsigned char *der, size_t len)
{
	const unsigned char	*p = der;
	X509			*x = d2i_X509(NULL, &p, (long)len);

	assert_non_null(x);
	return x;
}

static char *
der_pem(const unsigned char *der, size_t len)
{
	X509	*x = der_x509(der, len);
	BIO	*bio = BIO_new(BIO_s_mem());
	BUF_MEM	*bm;
	char	*s;

	assert_non_null(bio);
	assert_int_equal(PEM_write_bio_X509(bio, x), 1);
	BIO_get_mem_ptr(bio, &bm);
	s = strndup(bm->data, bm->length);
	BIO_free(bio);
	X509_free(x);
	return s;
}

static char *
concat(const char *a, const char *b)
{
	char	*s = malloc(strlen(a) + strlen(b) + 1);

	assert_non_null(s);
	strcpy(s, a);
	strcat(s, b);
	return s;
}

static void
install(struct fixture *fx, const char *name, const unsigned char *cert,
    size_t len, const char *chain)
{
	json_t	*j = NULL;

	OK(kb_install_cert(fx->kb, name, cert, len,
	    (const unsigned char *)chain, chain ? strlen(chain) : 0, ACTOR, &j,
	    &err_));
	assert_non_null(j);
	json_decref(j);
}

/* The status kb_list() shows for name. */
static char *
status_of(struct fixture *fx, const char *name)
{
	json_t	*arr = kb_list(fx->kb), *e;
	char	*s = NULL;
	size_t	 i;

	assert_non_null(arr);
	json_array_foreach(arr, i, e)
		if (strcmp(json_string_value(json_object_get(e, "name")),
		    name) == 0)
			s = strdup(json_string_value(json_object_get(e,
			    "status")));
	json_decref(arr);
	assert_non_null(s);
	return s;
}

static void
assert_status(struct fixture *fx, const char *name, const char *want)
{
	char	*s = status_of(fx, name);

	if (strcmp(s, want) != 0)
		print_error("status of %s: want %s, got %s\n", name, want, s);
	assert_string_equal(s, want);
	free(s);
}

/* True if the audit log's newest rows hold event. */
static int
audit_has_cb(const struct store_audit_row *a, void *arg)
{
	return strcmp(a->event, arg) == 0 ? 1 : 0;
}

static bool
audit_has(struct fixture *fx, const char *event)
{
	return store_audit_foreach(fx->st, NULL, 20, audit_has_cb,
	    (void *)(uintptr_t)event) == 1;
}

/* --- key bindings --------------------------------------------------------- */

static void
test_create(void **state)
{
	struct fixture	*fx = *state;
	struct ca_create_req req = { 0 };
	json_t		*j = NULL;
	X509		*x = NULL;
	STACK_OF(X509)	*chain = NULL;
	EVP_PKEY	*k = NULL;
	uint64_t	 g = kb_generation(fx->kb);

	OK(kb_create(fx->kb, "peer-auth", "tok", "tls", "auth", ACTOR, &j,
	    &err_));
	assert_string_equal(json_string_value(json_object_get(j, "name")),
	    "peer-auth");
	assert_string_equal(json_string_value(json_object_get(j, "type")),
	    "auth");
	assert_string_equal(json_string_value(json_object_get(j, "status")),
	    "no_certificate");
	assert_true(json_is_null(json_object_get(j, "subject")));
	json_decref(j);
	assert_true(kb_generation(fx->kb) > g);
	assert_true(audit_has(fx, "keybinding.create"));

	FAILS(kb_create(fx->kb, "peer-auth", "tok", "other", NULL, ACTOR, &j,
	    &err_), SP_ERR_EXISTS, "already exists");
	FAILS(kb_create(fx->kb, "bad name", "tok", "tls", NULL, ACTOR, &j,
	    &err_), SP_ERR_INVALID, NULL);
	FAILS(kb_create(fx->kb, "", "tok", "tls", NULL, ACTOR, &j, &err_),
	    SP_ERR_INVALID, NULL);
	FAILS(kb_create(fx->kb, "x", "tok", "tls", "tsa", ACTOR, &j, &err_),
	    SP_ERR_INVALID, "type");
	FAILS(kb_create(fx->kb, "x", "nosuch", "tls", NULL, ACTOR, &j, &err_),
	    SP_ERR_NOTFOUND, "token");
	FAILS(kb_create(fx->kb, "x", "tok", "nosuch", NULL, ACTOR, &j, &err_),
	    SP_ERR_NOTFOUND, "no key");
	FAILS(kb_create(fx->kb, "x", "tok", "root", NULL, ACTOR, &j, &err_),
	    SP_ERR_POLICY, "CA Root");
	assert_null(j);

	/*
	 * The key registry, the other way round: a binding's key never
	 * becomes a CA key. Both hold after a restart (the registry is
	 * rebuilt from the CAs and bindings as they load).
	 */
	req.name = "Evil";
	req.dn = "CN=Evil";
	req.token = "tok";
	req.key = "tls";
	FAILS(ca_create(fx->ca, &req, ACTOR, &j, &err_), SP_ERR_POLICY,
	    "key binding peer-auth");
	assert_null(j);
	services_close(fx);
	services_open(fx);
	FAILS(ca_create(fx->ca, &req, ACTOR, &j, &err_), SP_ERR_POLICY,
	    "key binding peer-auth");
	FAILS(kb_create(fx->kb, "x", "tok", "root", NULL, ACTOR, &j, &err_),
	    SP_ERR_POLICY, "CA Root");
	assert_null(j);
	OK(tokens_activate(fx->tk, "tok", PIN, ACTOR, &err_));

	/* A binding without a certificate is no identity. */
	FAILS(kb_identity(fx->kb, "peer-auth", &x, &chain, &k, &err_),
	    SP_ERR_STATE, "no_certificate");
	FAILS(kb_identity(fx->kb, "nosuch", &x, &chain, &k, &err_),
	    SP_ERR_NOTFOUND, NULL);
	FAILS(kb_show(fx->kb, "nosuch", &j, &err_), SP_ERR_NOTFOUND, NULL);
	assert_null(x);
	assert_null(chain);
	assert_null(k);

	OK(kb_show(fx->kb, "peer-auth", &j, &err_));
	assert_null(json_object_get(j, "pem"));
	json_decref(j);
	j = kb_list(fx->kb);
	assert_int_equal(json_array_size(j), 1);
	json_decref(j);
}

static void
test_csr(void **state)
{
	struct fixture		*fx = *state;
	static const char *const sans[] = { "DNS:va1.example.com",
	    "IP:192.0.2.10", "ip:2001:db8::1" };
	char			*pem, *s;
	X509_REQ		*req = NULL;
	GENERAL_NAMES		*gens = NULL;
	GENERAL_NAME		*gn;
	unsigned char		*der = NULL;
	unsigned char		*kspki = NULL;
	size_t			 kspkilen = 0;
	enum key_alg		 kalg;
	unsigned char		 v6[16];
	int			 n;

	create_binding(fx, "va1", "tls");
	pem = csr(fx, "va1", "CN=va1,O=Example,C=SE", sans, 3);
	assert_non_null(strstr(pem, "BEGIN CERTIFICATE REQUEST"));
	/* csr_parse() verifies the self-signature. */
	OK(csr_parse((const unsigned char *)pem, strlen(pem), &req, &err_));
	s = dn_print(X509_REQ_get_subject_name(req));
	assert_string_equal(s, "CN=va1,O=Example,C=SE");
	free(s);
	OK(csr_get_sans(req, &gens, &err_));
	assert_int_equal(sk_GENERAL_NAME_num(gens), 3);
	gn = sk_GENERAL_NAME_value(gens, 0);
	assert_int_equal(gn->type, GEN_DNS);
	assert_string_equal((const char *)ASN1_STRING_get0_data(gn->d.dNSName),
	    "va1.example.com");
	gn = sk_GENERAL_NAME_value(gens, 1);
	assert_int_equal(gn->type, GEN_IPADD);
	assert_int_equal(ASN1_STRING_length(gn->d.iPAddress), 4);
	assert_memory_equal(ASN1_STRING_get0_data(gn->d.iPAddress),
	    "\xc0\x00\x02\x0a", 4);
	gn = sk_GENERAL_NAME_value(gens, 2);
	assert_int_equal(ASN1_STRING_length(gn->d.iPAddress), 16);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", v6), 1);
	assert_memory_equal(ASN1_STRING_get0_data(gn->d.iPAddress), v6, 16);
	/* The request carries the binding's key. */
	assert_int_equal(tokens_key_find(fx->tk, "tok", "tls", &kalg, &kspki,
	    &kspkilen, NULL), 0);
	n = i2d_X509_PUBKEY(X509_REQ_get_X509_PUBKEY(req), &der);
	assert_int_equal((size_t)n, kspkilen);
	assert_memory_equal(der, kspki, kspkilen);
	free(kspki);
	OPENSSL_free(der);
	GENERAL_NAMES_free(gens);
	X509_REQ_free(req);
	free(pem);
	assert_true(audit_has(fx, "keybinding.csr"));

	/* Default subject, no SANs. */
	pem = csr(fx, "va1", NULL, NULL, 0);
	OK(csr_parse((const unsigned char *)pem, strlen(pem), &req, &err_));
	s = dn_print(X509_REQ_get_subject_name(req));
	assert_string_equal(s, "CN=va1");
	free(s);
	OK(csr_get_sans(req, &gens, &err_));
	assert_null(gens);
	X509_REQ_free(req);
	free(pem);

	/* Bad input. */
	pem = NULL;
	{
		static const char *const wild[] = { "DNS:*.example.com" };
		static const char *const badip[] = { "IP:192.0.2.300" };
		static const char *const uri[] = { "URI:https://x" };
		static const char *const dup[] = { "DNS:a.example",
		    "dns:a.example" };
		static const char *const hyph[] = { "DNS:-a.example" };
		static const char *const empty[] = { "DNS:" };

		FAILS(kb_csr(fx->kb, "va1", NULL, wild, 1, ACTOR, &pem, &err_),
		    SP_ERR_INVALID, "DNS");
		FAILS(kb_csr(fx->kb, "va1", NULL, badip, 1, ACTOR, &pem,
		    &err_), SP_ERR_INVALID, "IP");
		FAILS(kb_csr(fx->kb, "va1", NULL, uri, 1, ACTOR, &pem, &err_),
		    SP_ERR_INVALID, NULL);
		FAILS(kb_csr(fx->kb, "va1", NULL, dup, 2, ACTOR, &pem, &err_),
		    SP_ERR_INVALID, "duplicate");
		FAILS(kb_csr(fx->kb, "va1", NULL, hyph, 1, ACTOR, &pem,
		    &err_), SP_ERR_INVALID, NULL);
		FAILS(kb_csr(fx->kb, "va1", NULL, empty, 1, ACTOR, &pem,
		    &err_), SP_ERR_INVALID, NULL);
	}
	FAILS(kb_csr(fx->kb, "va1", "CN=", NULL, 0, ACTOR, &pem, &err_),
	    SP_ERR_INVALID, NULL);
	FAILS(kb_csr(fx->kb, "nosuch", NULL, NULL, 0, ACTOR, &pem, &err_),
	    SP_ERR_NOTFOUND, NULL);
	/* Signing needs an active token. */
	OK(tokens_deactivate(fx->tk, "tok", ACTOR, &err_));
	FAILS(kb_csr(fx->kb, "va1", NULL, NULL, 0, ACTOR, &pem, &err_),
	    SP_ERR_STATE, "not active");
	assert_null(pem);
}

static void
test_csr_algs(void **state)
{
	struct fixture	*fx = *state;
	static const char *const algs[] = { "ed25519", "ec-p384", "rsa2048" };
	char		*pem, alias[16];
	X509_REQ	*req = NULL;

	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		snprintf(alias, sizeof(alias), "k%zu", i);
		genkey(fx, alias, algs[i]);
		create_binding(fx, alias, alias);
		pem = csr(fx, alias, NULL, NULL, 0);
		OK(csr_parse((const unsigned char *)pem, strlen(pem), &req,
		    &err_));
		X509_REQ_free(req);
		free(pem);
	}
}

static void
test_install_identity(void **state)
{
	struct fixture	*fx = *state;
	unsigned char	*der, *kder = NULL;
	size_t		 len;
	char		*root = ca_pem(fx, "Root", false), *leafpem, *full;
	char		 fp[65];
	json_t		*j = NULL;
	X509		*x = NULL, *issued;
	STACK_OF(X509)	*chain = NULL;
	EVP_PKEY	*k = NULL;
	uint64_t	 g;

	create_binding(fx, "peer", "tls");
	der = issue_for(fx, "peer", 0, &len);
	g = kb_generation(fx->kb);
	OK(kb_install_cert(fx->kb, "peer", der, len,
	    (const unsigned char *)root, strlen(root), ACTOR, &j, &err_));
	assert_true(kb_generation(fx->kb) > g);
	assert_string_equal(json_string_value(json_object_get(j, "status")),
	    "active");
	assert_int_equal(json_integer_value(json_object_get(j,
	    "chain_length")), 1);
	assert_string_equal(json_string_value(json_object_get(j, "issuer")),
	    "CN=Test Root,O=Sallyport");
	cert_fingerprint(der, len, fp);
	assert_string_equal(json_string_value(json_object_get(j,
	    "fingerprint")), fp);
	json_decref(j);
	assert_true(audit_has(fx, "keybinding.install_cert"));

	/* show: the certificate, then the chain. */
	OK(kb_show(fx->kb, "peer", &j, &err_));
	leafpem = der_pem(der, len);
	full = concat(leafpem, root);
	assert_string_equal(json_string_value(json_object_get(j, "pem")),
	    full);
	json_decref(j);

	/* identity: the same certificate with the binding's private key. */
	OK(kb_identity(fx->kb, "peer", &x, &chain, &k, &err_));
	issued = der_x509(der, len);
	assert_int_equal(X509_cmp(x, issued), 0);
	assert_int_equal(X509_check_private_key(x, k), 1);
	assert_int_equal(sk_X509_num(chain), 1);
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(sk_X509_value(
	    chain, 0)), X509_get_issuer_name(x)), 0);
	X509_free(x);
	sk_X509_pop_free(chain, X509_free);
	EVP_PKEY_free(k);

	/* Without a chain; then a "fullchain" file as the certificate. */
	install(fx, "peer", der, len, NULL);
	OK(kb_show(fx->kb, "peer", &j, &err_));
	assert_int_equal(json_integer_value(json_object_get(j,
	    "chain_length")), 0);
	assert_string_equal(json_string_value(json_object_get(j, "pem")),
	    leafpem);
	json_decref(j);
	OK(kb_identity(fx->kb, "peer", &x, &chain, &k, &err_));
	assert_non_null(chain);
	assert_int_equal(sk_X509_num(chain), 0);
	X509_free(x);
	sk_X509_pop_free(chain, X509_free);
	EVP_PKEY_free(k);
	install(fx, "peer", (const unsigned char *)full, strlen(full), NULL);
	OK(kb_show(fx->kb, "peer", &j, &err_));
	assert_int_equal(json_integer_value(json_object_get(j,
	    "chain_length")), 1);
	json_decref(j);

	/* A chain with an unrelated extra certificate: only the path stays. */
	genkey(fx, "root2", "ec-p256");
	create_ca(fx, "Other", "CN=Other Root", "root2", NULL);
	{
		char *other = ca_pem(fx, "Other", false);
		char *both = concat(other, root);

		install(fx, "peer", der, len, both);
		OK(kb_show(fx->kb, "peer", &j, &err_));
		assert_int_equal(json_integer_value(json_object_get(j,
		    "chain_length")), 1);
		json_decref(j);
		free(both);
		free(other);
	}

	/* The TLS client profile works as well, and DER chains. */
	{
		char		*c = csr(fx, "peer", "CN=peer client", NULL,
				    0);
		unsigned char	*d2 = issue(fx, "Root", "TLS_CLIENT", c,
				    30, &len);
		X509		*r = NULL;
		BIO		*bio = BIO_new_mem_buf(root, -1);
		int		 n;

		r = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		n = i2d_X509(r, &kder);
		OK(kb_install_cert(fx->kb, "peer", d2, len, kder, (size_t)n,
		    ACTOR, &j, &err_));
		assert_string_equal(json_string_value(json_object_get(j,
		    "subject")), "CN=peer client");
		json_decref(j);
		OPENSSL_free(kder);
		X509_free(r);
		BIO_free(bio);
		OPENSSL_free(d2);
		free(c);
	}
	X509_free(issued);
	free(full);
	free(leafpem);
	free(root);
	OPENSSL_free(der);
}

static void
test_install_refused(void **state)
{
	struct fixture	*fx = *state;
	unsigned char	*der, *mine;
	size_t		 len, mlen;
	char		*other, *root = ca_pem(fx, "Root", false), *pem;
	const char	*garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n"
			    "-----END CERTIFICATE-----\n";
	json_t		*j = NULL;
	time_t		 now = time(NULL);
	uint64_t	 g;

	create_binding(fx, "a", "tls");
	create_binding(fx, "b", "other");
	mine = issue_for(fx, "a", 0, &mlen);

	/* A certificate for another key. */
	der = issue_for(fx, "b", 0, &len);
	g = kb_generation(fx->kb);
	FAILS(kb_install_cert(fx->kb, "a", der, len, NULL, 0, ACTOR, &j,
	    &err_), SP_ERR_POLICY, "another key");
	OPENSSL_free(der);
	assert_int_equal(kb_generation(fx->kb), g);

	/* Expired: issued 30 days ago for one day. */
	sp_time_set_fake(now - 30 * DAY);
	der = issue_for(fx, "a", 1, &len);
	sp_time_set_fake(0);
	FAILS(kb_install_cert(fx->kb, "a", der, len, NULL, 0, ACTOR, &j,
	    &err_), SP_ERR_POLICY, "expired");
	OPENSSL_free(der);

	/* Not yet valid: issued "in ten days". */
	sp_time_set_fake(now + 10 * DAY);
	der = issue_for(fx, "a", 30, &len);
	sp_time_set_fake(0);
	FAILS(kb_install_cert(fx->kb, "a", der, len, NULL, 0, ACTOR, &j,
	    &err_), SP_ERR_POLICY, "not valid before");
	OPENSSL_free(der);

	/* A chain that does not lead to the issuer. */
	genkey(fx, "root2", "ec-p256");
	create_ca(fx, "Other", "CN=Other Root", "root2", NULL);
	other = ca_pem(fx, "Other", false);
	FAILS(kb_install_cert(fx->kb, "a", mine, mlen,
	    (const unsigned char *)other, strlen(other), ACTOR, &j, &err_),
	    SP_ERR_POLICY, "chain does not verify");
	/* Garbage and oversized input. */
	FAILS(kb_install_cert(fx->kb, "a", mine, mlen,
	    (const unsigned char *)garbage, strlen(garbage), ACTOR, &j, &err_),
	    SP_ERR_INVALID, "chain");
	FAILS(kb_install_cert(fx->kb, "a", (const unsigned char *)"junk", 4,
	    NULL, 0, ACTOR, &j, &err_), SP_ERR_INVALID, NULL);
	FAILS(kb_install_cert(fx->kb, "a", mine, mlen - 1, NULL, 0, ACTOR, &j,
	    &err_), SP_ERR_INVALID, NULL);
	FAILS(kb_install_cert(fx->kb, "a", NULL, 0, NULL, 0, ACTOR, &j,
	    &err_), SP_ERR_INVALID, NULL);
	FAILS(kb_install_cert(fx->kb, "a", mine, KB_FILE_MAX + 1, NULL, 0,
	    ACTOR, &j, &err_), SP_ERR_LIMIT, NULL);
	FAILS(kb_install_cert(fx->kb, "nosuch", mine, mlen, NULL, 0, ACTOR,
	    &j, &err_), SP_ERR_NOTFOUND, NULL);
	/* DER with trailing bytes. */
	{
		unsigned char *t = malloc(mlen + 1);

		memcpy(t, mine, mlen);
		t[mlen] = 0;
		FAILS(kb_install_cert(fx->kb, "a", t, mlen + 1, NULL, 0, ACTOR,
		    &j, &err_), SP_ERR_INVALID, "trailing");
		free(t);
	}
	assert_null(j);
	assert_status(fx, "a", "no_certificate");

	/* Too many chain certificates. */
	pem = strdup("");
	for (int i = 0; i < KB_CHAIN_MAX + 1; i++) {
		char *n = concat(pem, root);

		free(pem);
		pem = n;
	}
	FAILS(kb_install_cert(fx->kb, "a", mine, mlen,
	    (const unsigned char *)pem, strlen(pem), ACTOR, &j, &err_),
	    SP_ERR_LIMIT, NULL);
	free(pem);

	/* And the right one still goes in. */
	install(fx, "a", mine, mlen, root);
	assert_status(fx, "a", "active");
	free(other);
	free(root);
	OPENSSL_free(mine);
}

static void
test_status(void **state)
{
	struct fixture	*fx = *state;
	unsigned char	*der;
	size_t		 len;
	X509		*x = NULL;
	STACK_OF(X509)	*chain = NULL;
	EVP_PKEY	*k = NULL;
	time_t		 now = time(NULL);
	json_t		*j = NULL;

	create_binding(fx, "peer", "tls");
	der = issue_for(fx, "peer", 10, &len);
	install(fx, "peer", der, len, NULL);
	assert_status(fx, "peer", "active");

	/* Token deactivated: no identity. */
	OK(tokens_deactivate(fx->tk, "tok", ACTOR, &err_));
	assert_status(fx, "peer", "token_inactive");
	FAILS(kb_identity(fx->kb, "peer", &x, &chain, &k, &err_),
	    SP_ERR_STATE, "not active");
	assert_null(x);
	OK(tokens_activate(fx->tk, "tok", PIN, ACTOR, &err_));
	OK(kb_identity(fx->kb, "peer", &x, &chain, &k, &err_));
	X509_free(x);
	sk_X509_pop_free(chain, X509_free);
	EVP_PKEY_free(k);

	/* Expiry and the clock. */
	sp_time_set_fake(now + 11 * DAY);
	assert_status(fx, "peer", "expired");
	FAILS(kb_identity(fx->kb, "peer", &x, &chain, &k, &err_),
	    SP_ERR_STATE, "expired");
	sp_time_set_fake(now - DAY);
	assert_status(fx, "peer", "not_yet_valid");
	sp_time_set_fake(0);

	/* The key deleted, then a new key under the same alias. */
	OK(tokens_delkey(fx->tk, "tok", "tls", ACTOR, &err_));
	assert_status(fx, "peer", "key_missing");
	FAILS(kb_identity(fx->kb, "peer", &x, &chain, &k, &err_),
	    SP_ERR_STATE, "no key");
	genkey(fx, "tls", "ec-p256");
	assert_status(fx, "peer", "key_missing");
	FAILS(kb_identity(fx->kb, "peer", &x, &chain, &k, &err_),
	    SP_ERR_STATE, "no longer");
	assert_null(x);
	assert_null(chain);
	assert_null(k);
	FAILS(kb_install_cert(fx->kb, "peer", der, len, NULL, 0, ACTOR, &j,
	    &err_), SP_ERR_POLICY, "another key");
	OPENSSL_free(der);
	/* A fresh CSR and certificate bring it back. */
	der = issue_for(fx, "peer", 0, &len);
	install(fx, "peer", der, len, NULL);
	assert_status(fx, "peer", "active");
	OPENSSL_free(der);
}

/* --- trust store ---------------------------------------------------------- */

/* Verifies the DER certificate against a kb_trust_store() store. */
static int
verify_with(struct fixture *fx, const unsigned char *der, size_t len,
    STACK_OF(X509) *untrusted)
{
	X509_STORE	*store = NULL;
	X509_STORE_CTX	*ctx = X509_STORE_CTX_new();
	X509		*x = der_x509(der, len);
	int		 v;

	OK(kb_trust_store(fx->kb, &store, &err_));
	assert_non_null(store);
	assert_int_equal(X509_STORE_CTX_init(ctx, store, x, untrusted), 1);
	v = X509_verify_cert(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	X509_free(x);
	return v;
}

static json_t *
trust_add(struct fixture *fx, const char *pem)
{
	json_t	*j = NULL;

	OK(kb_trust_add(fx->kb, (const unsigned char *)pem, strlen(pem), ACTOR,
	    &j, &err_));
	assert_non_null(j);
	return j;
}

static void
test_trust(void **state)
{
	struct fixture	*fx = *state;
	char		*root = ca_pem(fx, "Root", false);
	char		*other, *both, *leaf;
	char		 fp[65], colons[100];
	unsigned char	*der, *rder = NULL;
	size_t		 len;
	json_t		*j = NULL, *e;
	uint64_t	 g;
	X509		*rx;
	BIO		*bio;
	int		 n;

	create_binding(fx, "peer", "tls");
	der = issue_for(fx, "peer", 0, &len);

	/* Empty: verifies nothing. */
	assert_int_equal(verify_with(fx, der, len, NULL), 0);
	j = kb_trust_list(fx->kb);
	assert_int_equal(json_array_size(j), 0);
	json_decref(j);

	g = kb_generation(fx->kb);
	j = trust_add(fx, root);
	assert_int_equal(json_array_size(j), 1);
	e = json_array_get(j, 0);
	assert_string_equal(json_string_value(json_object_get(e, "status")),
	    "added");
	assert_string_equal(json_string_value(json_object_get(e, "subject")),
	    "CN=Test Root,O=Sallyport");
	snprintf(fp, sizeof(fp), "%s", json_string_value(json_object_get(e,
	    "fingerprint")));
	json_decref(j);
	assert_true(kb_generation(fx->kb) > g);
	assert_true(audit_has(fx, "trust.add"));
	assert_int_equal(verify_with(fx, der, len, NULL), 1);

	/* Again, with another root: one known, one new. */
	genkey(fx, "root2", "ec-p256");
	create_ca(fx, "Other", "CN=Other Root", "root2", NULL);
	other = ca_pem(fx, "Other", false);
	both = concat(root, other);
	g = kb_generation(fx->kb);
	j = trust_add(fx, both);
	assert_int_equal(json_array_size(j), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    j, 0), "status")), "already trusted");
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    j, 1), "status")), "added");
	json_decref(j);
	assert_true(kb_generation(fx->kb) > g);
	g = kb_generation(fx->kb);
	j = trust_add(fx, root);
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    j, 0), "status")), "already trusted");
	json_decref(j);
	assert_int_equal(kb_generation(fx->kb), g);

	/* DER input. */
	bio = BIO_new_mem_buf(other, -1);
	rx = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	n = i2d_X509(rx, &rder);
	OK(kb_trust_add(fx->kb, rder, (size_t)n, ACTOR, &j, &err_));
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    j, 0), "status")), "already trusted");
	json_decref(j);
	OPENSSL_free(rder);
	X509_free(rx);
	BIO_free(bio);

	/* End-entity certificates are refused, and so is the whole input. */
	leaf = der_pem(der, len);
	FAILS(kb_trust_add(fx->kb, (const unsigned char *)leaf, strlen(leaf),
	    ACTOR, &j, &err_), SP_ERR_POLICY, "not a CA");
	free(both);
	both = concat(leaf, root);
	FAILS(kb_trust_add(fx->kb, (const unsigned char *)both, strlen(both),
	    ACTOR, &j, &err_), SP_ERR_POLICY, "certificate 1");
	FAILS(kb_trust_add(fx->kb, (const unsigned char *)"nothing", 7, ACTOR,
	    &j, &err_), SP_ERR_INVALID, NULL);
	FAILS(kb_trust_add(fx->kb, (const unsigned char *)"-----BEGIN X-----"
	    "\n", 18, ACTOR, &j, &err_), SP_ERR_INVALID, NULL);
	assert_null(j);

	j = kb_trust_list(fx->kb);
	assert_int_equal(json_array_size(j), 2);
	json_decref(j);

	/* Remove by fingerprint, as typed: colons and upper case. */
	for (int i = 0, o = 0; i < 64; i += 2) {
		colons[o++] = (char)(fp[i] >= 'a' ? fp[i] - 32 : fp[i]);
		colons[o++] = (char)(fp[i + 1] >= 'a' ? fp[i + 1] - 32 :
		    fp[i + 1]);
		colons[o++] = i < 62 ? ':' : '\0';
	}
	g = kb_generation(fx->kb);
	OK(kb_trust_remove(fx->kb, colons, false, &crlst, ACTOR, &err_));
	assert_true(kb_generation(fx->kb) > g);
	assert_true(audit_has(fx, "trust.remove"));
	FAILS(kb_trust_remove(fx->kb, fp, false, &crlst, ACTOR,
	    &err_), SP_ERR_NOTFOUND,
	    NULL);
	FAILS(kb_trust_remove(fx->kb, "abc", false, &crlst, ACTOR,
	    &err_), SP_ERR_INVALID,
	    NULL);
	FAILS(kb_trust_remove(fx->kb, NULL, false, &crlst, ACTOR,
	    &err_), SP_ERR_INVALID,
	    NULL);
	j = kb_trust_list(fx->kb);
	assert_int_equal(json_array_size(j), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    j, 0), "subject")), "CN=Other Root");
	json_decref(j);
	assert_int_equal(verify_with(fx, der, len, NULL), 0);

	free(leaf);
	free(both);
	free(other);
	free(root);
	OPENSSL_free(der);
}

/* A trusted sub CA anchors by itself: its root need not be trusted. */
static void
test_trust_subca(void **state)
{
	struct fixture	*fx = *state;
	char		*sub, *root = ca_pem(fx, "Root", false), *c;
	unsigned char	*der;
	size_t		 len;
	json_t		*j;

	genkey(fx, "sub", "ec-p256");
	create_ca(fx, "Sub", "CN=Sub CA", "sub", "Root");
	create_binding(fx, "peer", "tls");
	c = csr(fx, "peer", "CN=peer", (const char *const[]){
	    "DNS:peer.example" }, 1);
	der = issue(fx, "Sub", "TLS_SERVER", c, 0, &len);
	free(c);

	sub = ca_pem(fx, "Sub", false);
	j = trust_add(fx, sub);
	json_decref(j);
	assert_int_equal(verify_with(fx, der, len, NULL), 1);

	/* Installing with only the sub CA as chain verifies via the trust. */
	install(fx, "peer", der, len, sub);
	assert_status(fx, "peer", "active");
	/* Untrusted, the sub CA alone is no anchor: give the root too. */
	j = kb_trust_list(fx->kb);
	OK(kb_trust_remove(fx->kb, json_string_value(json_object_get(
	    json_array_get(j, 0), "fingerprint")), false, &crlst, ACTOR,
	    &err_));
	json_decref(j);
	j = NULL;
	FAILS(kb_install_cert(fx->kb, "peer", der, len,
	    (const unsigned char *)sub, strlen(sub), ACTOR, &j, &err_),
	    SP_ERR_POLICY, "chain does not verify");
	c = concat(sub, root);
	install(fx, "peer", der, len, c);
	OK(kb_show(fx->kb, "peer", &j, &err_));
	assert_int_equal(json_integer_value(json_object_get(j,
	    "chain_length")), 2);
	json_decref(j);
	free(c);
	free(sub);
	free(root);
	OPENSSL_free(der);
}

static void
test_persistence(void **state)
{
	struct fixture	*fx = *state;
	unsigned char	*der;
	size_t		 len;
	char		*root = ca_pem(fx, "Root", false);
	json_t		*j;
	X509		*x = NULL;
	STACK_OF(X509)	*chain = NULL;
	EVP_PKEY	*k = NULL;

	create_binding(fx, "peer", "tls");
	create_binding(fx, "spare", "other");
	der = issue_for(fx, "peer", 0, &len);
	install(fx, "peer", der, len, root);
	json_decref(trust_add(fx, root));

	services_close(fx);
	services_open(fx);
	assert_int_equal(kb_generation(fx->kb), 1);
	/* Tokens come back inactive. */
	assert_status(fx, "peer", "token_inactive");
	assert_status(fx, "spare", "no_certificate");
	OK(tokens_activate(fx->tk, "tok", PIN, ACTOR, &err_));
	assert_status(fx, "peer", "active");
	OK(kb_identity(fx->kb, "peer", &x, &chain, &k, &err_));
	assert_int_equal(X509_check_private_key(x, k), 1);
	assert_int_equal(sk_X509_num(chain), 1);
	X509_free(x);
	sk_X509_pop_free(chain, X509_free);
	EVP_PKEY_free(k);
	j = kb_trust_list(fx->kb);
	assert_int_equal(json_array_size(j), 1);
	json_decref(j);
	assert_int_equal(verify_with(fx, der, len, NULL), 1);
	free(root);
	OPENSSL_free(der);
}

/* Readers run while bindings, certificates and trust change. */
struct reader {
	struct kb_service	*kb;
	int			 ok, failed;
};

static void *
reader_main(void *arg)
{
	struct reader	*rd = arg;

	for (int i = 0; i < 40; i++) {
		struct sp_err	 err = { 0 };
		X509		*x = NULL;
		STACK_OF(X509)	*chain = NULL;
		EVP_PKEY	*k = NULL;
		X509_STORE	*store = NULL;
		json_t		*j;

		if (kb_identity(rd->kb, "peer", &x, &chain, &k, &err) == 0 &&
		    X509_check_private_key(x, k) == 1)
			rd->ok++;
		else if (err.code != 0 && err.code != SP_ERR_STATE &&
		    err.code != SP_ERR_NOTFOUND)
			rd->failed++;
		X509_free(x);
		sk_X509_pop_free(chain, X509_free);
		EVP_PKEY_free(k);
		if ((j = kb_list(rd->kb)) == NULL)
			rd->failed++;
		json_decref(j);
		if ((j = kb_trust_list(rd->kb)) == NULL)
			rd->failed++;
		json_decref(j);
		if (kb_trust_store(rd->kb, &store, &err) != 0)
			rd->failed++;
		X509_STORE_free(store);
		(void)kb_generation(rd->kb);
	}
	return NULL;
}

static void
test_threads(void **state)
{
	struct fixture	*fx = *state;
	struct reader	 rd[3];
	pthread_t	 th[3];
	unsigned char	*der;
	size_t		 len;
	char		*root = ca_pem(fx, "Root", false), name[16];
	json_t		*j;

	create_binding(fx, "peer", "tls");
	der = issue_for(fx, "peer", 0, &len);
	for (int i = 0; i < 3; i++) {
		rd[i] = (struct reader){ .kb = fx->kb };
		assert_int_equal(pthread_create(&th[i], NULL, reader_main,
		    &rd[i]), 0);
	}
	for (int i = 0; i < 10; i++) {
		install(fx, "peer", der, len, i % 2 ? root : NULL);
		j = trust_add(fx, root);
		json_decref(j);
		snprintf(name, sizeof(name), "b%d", i);
		create_binding(fx, name, "other");
		j = kb_trust_list(fx->kb);
		OK(kb_trust_remove(fx->kb, json_string_value(json_object_get(
		    json_array_get(j, 0), "fingerprint")), false, &crlst, ACTOR,
		    &err_));
		json_decref(j);
	}
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(rd[i].failed, 0);
	}
	free(root);
	OPENSSL_free(der);
}

/* --- admin commands ------------------------------------------------------- */

static json_t *
call(struct admin_ctx *ctx, const char *cmd, const char *args)
{
	const struct admin_handler	*h = admin_handler_find(cmd);
	json_t				*a, *res;

	a = json_loads(args, 0, NULL);
	assert_non_null(h);
	assert_non_null(h->fn);
	assert_non_null(a);
	res = admin_dispatch(ctx, h, a, ACTOR);
	json_decref(a);
	assert_non_null(res);
	return res;
}

static bool
ok(json_t *res)
{
	return json_is_true(json_object_get(res, "ok"));
}

static const char *
errcode(json_t *res)
{
	return json_string_value(json_object_get(json_object_get(res,
	    "error"), "code"));
}

static char *
b64(const void *p, size_t len)
{
	char	*s = malloc(4 * ((len + 2) / 3) + 1);

	assert_non_null(s);
	EVP_EncodeBlock((unsigned char *)s, p, (int)len);
	return s;
}

static void
test_admin(void **state)
{
	struct fixture		*fx = *state;
	struct admin_ctx	 ctx = { 0 };
	json_t			*res;
	char			*root = ca_pem(fx, "Root", false), *rb, *cb;
	char			 args[8192];
	const char		*pem;
	unsigned char		*der;
	size_t			 len;

	ctx.ca = fx->ca;
	ctx.st = fx->st;
	ctx.kb = fx->kb;

	res = call(&ctx, "keybinding.create", "{\"name\":\"peer\","
	    "\"token\":\"tok\",\"key\":\"tls\"}");
	assert_true(ok(res));
	json_decref(res);
	res = call(&ctx, "keybinding.create", "{\"name\":\"x\","
	    "\"token\":1,\"key\":\"tls\"}");
	assert_false(ok(res));
	assert_string_equal(errcode(res), "invalid");
	json_decref(res);

	res = call(&ctx, "keybinding.csr", "{\"name\":\"peer\","
	    "\"sans\":[\"DNS:peer.example\"]}");
	assert_true(ok(res));
	pem = json_string_value(json_object_get(json_object_get(res,
	    "result"), "pem"));
	assert_non_null(pem);
	der = issue(fx, "Root", "TLS_SERVER", pem, 0, &len);
	json_decref(res);
	res = call(&ctx, "keybinding.csr", "{\"name\":\"peer\","
	    "\"sans\":[1]}");
	assert_string_equal(errcode(res), "invalid");
	json_decref(res);
	res = call(&ctx, "keybinding.csr", "{\"name\":\"peer\","
	    "\"sans\":\"DNS:x\"}");
	assert_string_equal(errcode(res), "invalid");
	json_decref(res);

	cb = b64(der, len);
	rb = b64(root, strlen(root));
	snprintf(args, sizeof(args), "{\"name\":\"peer\",\"cert\":\"%s\","
	    "\"chain\":\"%s\"}", cb, rb);
	res = call(&ctx, "keybinding.install-cert", args);
	if (!ok(res))
		print_error("install-cert: %s\n", json_dumps(res, 0));
	assert_true(ok(res));
	json_decref(res);
	res = call(&ctx, "keybinding.install-cert", "{\"name\":\"peer\","
	    "\"cert\":\"not base64!\"}");
	assert_string_equal(errcode(res), "invalid");
	json_decref(res);
	{
		/* Larger than KB_FILE_MAX: refused before decoding. */
		size_t	 n = (KB_FILE_MAX / 3 + 8) * 4;
		char	*big = malloc(n + 64);

		memcpy(big, "{\"name\":\"peer\",\"cert\":\"", 23);
		memset(big + 23, 'A', n);
		strcpy(big + 23 + n, "\"}");
		res = call(&ctx, "keybinding.install-cert", big);
		assert_string_equal(errcode(res), "limit");
		json_decref(res);
		free(big);
	}

	res = call(&ctx, "keybinding.list", "{}");
	assert_true(ok(res));
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    json_object_get(res, "result"), 0), "status")), "active");
	json_decref(res);
	res = call(&ctx, "keybinding.show", "{\"name\":\"peer\"}");
	assert_true(ok(res));
	assert_non_null(json_object_get(json_object_get(res, "result"),
	    "pem"));
	json_decref(res);

	snprintf(args, sizeof(args), "{\"cert\":\"%s\"}", rb);
	res = call(&ctx, "trust.add", args);
	assert_true(ok(res));
	json_decref(res);
	snprintf(args, sizeof(args), "{\"cert\":\"%s\"}", cb);
	res = call(&ctx, "trust.add", args);
	assert_string_equal(errcode(res), "policy");
	json_decref(res);
	res = call(&ctx, "trust.list", "{}");
	assert_int_equal(json_array_size(json_object_get(res, "result")), 1);
	json_decref(res);
	res = call(&ctx, "trust.remove", "{\"fingerprint\":\"00\"}");
	assert_string_equal(errcode(res), "invalid");
	json_decref(res);
	res = call(&ctx, "trust.remove", "{}");
	assert_string_equal(errcode(res), "invalid");
	json_decref(res);

	/* A node without key bindings says so. */
	ctx.kb = NULL;
	res = call(&ctx, "trust.list", "{}");
	assert_string_equal(errcode(res), "state");
	json_decref(res);

	free(cb);
	free(rb);
	free(root);
	OPENSSL_free(der);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_csr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_csr_algs, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_install_identity, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_install_refused, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trust, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trust_subca, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_persistence, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_admin, setup, teardown),
	};

	log_init(LOG_LVL_ERROR);
	return cmocka_run_group_tests_name("kb", tests, NULL, NULL);
}
