/*
 * Unit tests for crypto/x509.c: CSR parsing and its error paths, serial
 * numbers, certificate building and signing (every extension checked by
 * decoding the result), CRL building and the reason names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "crypto/x509.h"
#include "util/log.h"
#include "util/util.h"

/* Keys made once for the whole group (key generation is the slow part). */
struct keys {
	EVP_PKEY	*ec;		/* P-256 */
	EVP_PKEY	*ec2;		/* P-256, the issuer */
	EVP_PKEY	*rsa;		/* 2048 */
	EVP_PKEY	*ed;		/* Ed25519 */
};

static struct keys	K;

static int
group_setup(void **state)
{
	(void)state;
	log_init(LOG_LVL_WARN);
	K.ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	K.ec2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	K.rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	K.ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	return K.ec && K.ec2 && K.rsa && K.ed ? 0 : -1;
}

static int
group_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(K.ec);
	EVP_PKEY_free(K.ec2);
	EVP_PKEY_free(K.rsa);
	EVP_PKEY_free(K.ed);
	return 0;
}

/* --- helpers -------------------------------------------------------------- */

/*
 * GENERAL_NAMES from "DNS:x", "IP:1.2.3.4", "email:a@b", "URI:u" specs.
 */
static GENERAL_NAMES *
make_sans(const char *const *specs, size_t n)
{
	GENERAL_NAMES	*gens = GENERAL_NAMES_new();

	assert_non_null(gens);
	for (size_t i = 0; i < n; i++) {
		GENERAL_NAME	*gn = GENERAL_NAME_new();
		const char	*s = specs[i], *v = strchr(s, ':') + 1;

		assert_non_null(gn);
		if (strncmp(s, "IP:", 3) == 0) {
			ASN1_OCTET_STRING *ip = a2i_IPADDRESS(v);

			assert_non_null(ip);
			GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
		} else {
			ASN1_IA5STRING	*ia5 = ASN1_IA5STRING_new();
			int		 type = GEN_URI;

			if (strncmp(s, "DNS:", 4) == 0)
				type = GEN_DNS;
			else if (strncmp(s, "email:", 6) == 0)
				type = GEN_EMAIL;
			assert_non_null(ia5);
			assert_true(ASN1_STRING_set(ia5, v, -1));
			GENERAL_NAME_set0_value(gn, type, ia5);
		}
		assert_true(sk_GENERAL_NAME_push(gens, gn) > 0);
	}
	return gens;
}

/* Adds an extensionRequest with these extensions (already encoded). */
static void
req_add_exts(X509_REQ *req, STACK_OF(X509_EXTENSION) *exts)
{
	assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
}

/*
 * A signed CSR for pk with CN=cn (UTF8String, no length limit, NULL for
 * an empty subject) and optional SANs.
 */
static X509_REQ *
make_req(EVP_PKEY *pk, const char *cn, GENERAL_NAMES *sans)
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
	if (sans != NULL) {
		STACK_OF(X509_EXTENSION) *exts = NULL;

		assert_int_equal(X509V3_add1_i2d(&exts, NID_subject_alt_name,
		    sans, 0, 0), 1);
		req_add_exts(req, exts);
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	}
	assert_true(X509_REQ_sign(req, pk, md) > 0);
	return req;
}

static unsigned char *
req_der(X509_REQ *req, size_t *len)
{
	unsigned char	*der = NULL;
	int		 n = i2d_X509_REQ(req, &der);

	assert_true(n > 0);
	*len = (size_t)n;
	return der;
}

static char *
req_pem(X509_REQ *req, size_t *len)
{
	BIO	*b = BIO_new(BIO_s_mem());
	BUF_MEM	*bm;
	char	*s;

	assert_non_null(b);
	assert_true(PEM_write_bio_X509_REQ(b, req));
	BIO_get_mem_ptr(b, &bm);
	assert_non_null(s = malloc(bm->length + 1));
	memcpy(s, bm->data, bm->length);
	s[bm->length] = '\0';
	*len = bm->length;
	BIO_free(b);
	return s;
}

static void
parse_bad(const unsigned char *data, size_t len, const char *want)
{
	struct sp_err	 err = { 0 };
	X509_REQ	*req = (X509_REQ *)(uintptr_t)1;

	assert_int_equal(csr_parse(data, len, &req, &err), SP_ERR_INVALID);
	assert_null(req);
	assert_int_equal(err.code, SP_ERR_INVALID);
	if (want != NULL && strstr(err.msg, want) == NULL) {
		print_error("message \"%s\" lacks \"%s\"\n", err.msg, want);
		fail();
	}
	/* Nothing left behind on OpenSSL's queue. */
	assert_int_equal(ERR_peek_error(), 0);
}

static X509_REQ *
parse_ok(const unsigned char *data, size_t len)
{
	struct sp_err	 err = { 0 };
	X509_REQ	*req = NULL;

	if (csr_parse(data, len, &req, &err) != 0)
		print_error("csr_parse: %s\n", err.msg);
	assert_non_null(req);
	return req;
}

static EVP_MD_CTX *
signer(EVP_PKEY *pk)
{
	EVP_MD_CTX	*md = EVP_MD_CTX_new();
	const char	*mdname = EVP_PKEY_is_a(pk, "ED25519") ? NULL :
			    "SHA256";

	assert_non_null(md);
	assert_int_equal(EVP_DigestSignInit_ex(md, NULL, mdname, NULL, NULL,
	    pk, NULL), 1);
	return md;
}

static X509_PUBKEY *
pubkey_of(EVP_PKEY *pk)
{
	X509_PUBKEY	*xpk = NULL;

	assert_int_equal(X509_PUBKEY_set(&xpk, pk), 1);
	return xpk;
}

static X509_NAME *
name_of(const char *cn)
{
	X509_NAME	*n = X509_NAME_new();

	assert_non_null(n);
	assert_true(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0));
	return n;
}

/* i2d then d2i: what a relying party would see. */
static X509 *
reparse(X509 *x)
{
	unsigned char		*der = NULL;
	const unsigned char	*p;
	X509			*y;
	int			 n = i2d_X509(x, &der);

	assert_true(n > 0);
	p = der;
	assert_non_null(y = d2i_X509(NULL, &p, n));
	assert_ptr_equal(p, der + n);
	OPENSSL_free(der);
	return y;
}

/* Makes a self-signed CA certificate for pk with cert_build(). */
static X509 *
make_ca(EVP_PKEY *pk, const char *cn, time_t now)
{
	struct cert_template	 t = { 0 };
	struct sp_err		 err = { 0 };
	unsigned char		 serial[SERIAL_LEN];
	X509_NAME		*name = name_of(cn);
	X509_PUBKEY		*xpk = pubkey_of(pk);
	EVP_MD_CTX		*md = signer(pk);
	X509			*x = NULL, *y;

	assert_int_equal(serial_generate(serial), 0);
	t.serial = serial;
	t.subject = name;
	t.spki = xpk;
	t.not_before = now - 60;
	t.not_after = now + 86400 * 365;
	t.key_usage = 1u << 5 | 1u << 6;	/* keyCertSign, cRLSign */
	t.key_usage_critical = true;
	t.ca = true;
	t.path_len = 0;
	if (cert_build(&t, &x, &err) != 0)
		print_error("cert_build: %s\n", err.msg);
	assert_non_null(x);
	assert_int_equal(cert_sign(x, md, &err), 0);
	y = reparse(x);
	X509_free(x);
	EVP_MD_CTX_free(md);
	X509_PUBKEY_free(xpk);
	X509_NAME_free(name);
	return y;
}

/* --- CSR parsing ---------------------------------------------------------- */

static void
test_csr_parse_der_pem(void **state)
{
	EVP_PKEY	*keys[] = { K.ec, K.rsa, K.ed };

	(void)state;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		X509_REQ	*req = make_req(keys[i], "test", NULL), *a, *b;
		unsigned char	*der;
		char		*pem;
		size_t		 dlen, plen;

		der = req_der(req, &dlen);
		pem = req_pem(req, &plen);
		a = parse_ok(der, dlen);
		b = parse_ok((const unsigned char *)pem, plen);
		assert_int_equal(X509_NAME_cmp(X509_REQ_get_subject_name(a),
		    X509_REQ_get_subject_name(req)), 0);
		assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(b),
		    keys[i]), 1);
		X509_REQ_free(a);
		X509_REQ_free(b);
		OPENSSL_free(der);
		free(pem);
		X509_REQ_free(req);
	}
}

static void
test_csr_parse_garbage(void **state)
{
	static const char	pem_junk[] =
	    "-----BEGIN CERTIFICATE REQUEST-----\n"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
	    "-----END CERTIFICATE REQUEST-----\n";
	static const unsigned char seq[] = { 0x30, 0x03, 0x02, 0x01, 0x00 };
	static const unsigned char trunc[] = { 0x30, 0x82, 0x01 };

	(void)state;
	parse_bad((const unsigned char *)"hello world", 11, "PKCS#10");
	parse_bad((const unsigned char *)pem_junk, strlen(pem_junk), NULL);
	parse_bad(seq, sizeof(seq), NULL);
	parse_bad(trunc, sizeof(trunc), NULL);
	parse_bad((const unsigned char *)"x", 1, NULL);
	/* Empty input. */
	parse_bad((const unsigned char *)"", 0, "size");
}

static void
test_csr_parse_certificate_refused(void **state)
{
	X509		*ca = make_ca(K.ec2, "Not a CSR", time(NULL));
	BIO		*b = BIO_new(BIO_s_mem());
	BUF_MEM		*bm;
	unsigned char	*der = NULL;
	int		 n;

	(void)state;
	/* A certificate, in DER and in PEM, is not a request. */
	n = i2d_X509(ca, &der);
	assert_true(n > 0);
	parse_bad(der, (size_t)n, NULL);
	assert_non_null(b);
	assert_true(PEM_write_bio_X509(b, ca));
	BIO_get_mem_ptr(b, &bm);
	parse_bad((const unsigned char *)bm->data, bm->length, NULL);
	BIO_free(b);
	OPENSSL_free(der);
	X509_free(ca);
}

static void
test_csr_parse_bad_signature(void **state)
{
	EVP_PKEY	*keys[] = { K.ec, K.rsa, K.ed };

	(void)state;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		X509_REQ	*req = make_req(keys[i], "sig", NULL);
		unsigned char	*der;
		size_t		 len;

		der = req_der(req, &len);
		/* The signature BIT STRING ends the encoding. */
		der[len - 3] ^= 0x01;
		parse_bad(der, len, "signature");
		der[len - 3] ^= 0x01;
		X509_REQ_free(parse_ok(der, len));

		/* A changed subject no longer matches the signature. */
		for (size_t j = 0; j + 4 < len; j++)
			if (memcmp(der + j, "sig", 3) == 0) {
				der[j] = 'S';
				break;
			}
		parse_bad(der, len, "signature");
		OPENSSL_free(der);
		X509_REQ_free(req);
	}
}

static void
test_csr_parse_signed_by_other_key(void **state)
{
	X509_REQ	*req = make_req(K.ec, "swap", NULL);
	unsigned char	*der;
	size_t		 len;

	(void)state;
	/* Public key of one pair, signature of another: proof of possession
	 * fails. */
	assert_true(X509_REQ_sign(req, K.ec2, EVP_sha256()) > 0);
	der = req_der(req, &len);
	parse_bad(der, len, "signature");
	OPENSSL_free(der);
	X509_REQ_free(req);
}

static void
test_csr_parse_trailing(void **state)
{
	X509_REQ	*req = make_req(K.ec, "trailing", NULL);
	unsigned char	*der, *buf;
	size_t		 len;

	(void)state;
	der = req_der(req, &len);
	assert_non_null(buf = malloc(len + 1));
	memcpy(buf, der, len);
	buf[len] = 0x00;
	parse_bad(buf, len + 1, "trailing");
	/* Truncated by one byte. */
	parse_bad(der, len - 1, NULL);
	free(buf);
	OPENSSL_free(der);
	X509_REQ_free(req);
}

static void
test_csr_parse_size_limit(void **state)
{
	X509_REQ	*req = make_req(K.ec, "big", NULL);
	X509_REQ	*got;
	unsigned char	*der, *buf;
	char		*pem;
	size_t		 len, plen;

	(void)state;
	/* A valid DER request followed by padding beyond the limit. */
	der = req_der(req, &len);
	assert_non_null(buf = calloc(1, CSR_MAX_SIZE + 1));
	memcpy(buf, der, len);
	parse_bad(buf, CSR_MAX_SIZE + 1, "size");

	/* PEM padded with newlines to exactly the limit is fine... */
	pem = req_pem(req, &plen);
	memset(buf, '\n', CSR_MAX_SIZE + 1);
	memcpy(buf, pem, plen);
	got = parse_ok(buf, CSR_MAX_SIZE);
	X509_REQ_free(got);
	/* ...one byte more is not. */
	parse_bad(buf, CSR_MAX_SIZE + 1, "size");
	free(buf);
	free(pem);
	OPENSSL_free(der);
	X509_REQ_free(req);
}

static void
test_csr_parse_version(void **state)
{
	X509_REQ		*req = make_req(K.ec, "v2", NULL), *v2;
	unsigned char		*der, *der2 = NULL;
	const unsigned char	*p;
	size_t			 len;
	int			 n;
	bool			 patched = false;

	(void)state;
	/* Change INTEGER 0 (the version) into 1, decode and re-sign. */
	der = req_der(req, &len);
	for (size_t i = 0; i + 3 < len && i < 16; i++)
		if (der[i] == 0x02 && der[i + 1] == 0x01 && der[i + 2] == 0) {
			der[i + 2] = 1;
			patched = true;
			break;
		}
	assert_true(patched);
	p = der;
	assert_non_null(v2 = d2i_X509_REQ(NULL, &p, (long)len));
	assert_true(X509_REQ_sign(v2, K.ec, EVP_sha256()) > 0);
	assert_int_equal(X509_REQ_get_version(v2), 1);
	n = i2d_X509_REQ(v2, &der2);
	assert_true(n > 0);
	parse_bad(der2, (size_t)n, "version");
	OPENSSL_free(der);
	OPENSSL_free(der2);
	X509_REQ_free(v2);
	X509_REQ_free(req);
}

static void
test_csr_get_sans(void **state)
{
	static const char *const	 specs[] = { "DNS:a.example",
					    "IP:192.0.2.1",
					    "email:a@example.org",
					    "URI:https://example.org/" };
	GENERAL_NAMES			*sans = make_sans(specs, 4);
	GENERAL_NAMES			*got = NULL;
	X509_REQ			*req = make_req(K.ec, "s", sans);
	X509_REQ			*none = make_req(K.ec, "n", NULL);
	struct sp_err			 err = { 0 };

	(void)state;
	assert_int_equal(csr_get_sans(req, &got, &err), 0);
	assert_non_null(got);
	assert_int_equal(sk_GENERAL_NAME_num(got), 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(GENERAL_NAME_cmp(sk_GENERAL_NAME_value(got, i),
		    sk_GENERAL_NAME_value(sans, i)), 0);
	GENERAL_NAMES_free(got);

	got = (GENERAL_NAMES *)(uintptr_t)1;
	assert_int_equal(csr_get_sans(none, &got, &err), 0);
	assert_null(got);

	GENERAL_NAMES_free(sans);
	X509_REQ_free(req);
	X509_REQ_free(none);
}

static void
test_csr_get_sans_bad(void **state)
{
	static const char *const	 one[] = { "DNS:a.example" };
	GENERAL_NAMES			*sans = make_sans(one, 1), *got;
	STACK_OF(X509_EXTENSION)	*exts = NULL;
	X509_EXTENSION			*ext;
	ASN1_OCTET_STRING		*junk = ASN1_OCTET_STRING_new();
	X509_REQ			*req;
	struct sp_err			 err = { 0 };
	char				 dns[32];

	(void)state;
	/* Two subjectAltName extensions. */
	assert_non_null(req = X509_REQ_new());
	assert_true(X509_REQ_set_pubkey(req, K.ec));
	assert_non_null(ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, sans));
	assert_true(sk_X509_EXTENSION_push(exts =
	    sk_X509_EXTENSION_new_null(), ext) > 0);
	assert_non_null(ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, sans));
	assert_true(sk_X509_EXTENSION_push(exts, ext) > 0);
	req_add_exts(req, exts);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	got = (GENERAL_NAMES *)(uintptr_t)1;
	assert_int_equal(csr_get_sans(req, &got, &err), SP_ERR_INVALID);
	assert_null(got);
	assert_non_null(strstr(err.msg, "more than one"));
	X509_REQ_free(req);

	/* A subjectAltName whose value does not decode. */
	assert_non_null(junk);
	assert_true(ASN1_OCTET_STRING_set(junk,
	    (const unsigned char *)"\x30\x05\x82\x09zz", 6));
	assert_non_null(ext = X509_EXTENSION_create_by_NID(NULL,
	    NID_subject_alt_name, 0, junk));
	exts = sk_X509_EXTENSION_new_null();
	assert_true(sk_X509_EXTENSION_push(exts, ext) > 0);
	assert_non_null(req = X509_REQ_new());
	assert_true(X509_REQ_set_pubkey(req, K.ec));
	req_add_exts(req, exts);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	sp_err_clear(&err);
	assert_int_equal(csr_get_sans(req, &got, &err), SP_ERR_INVALID);
	assert_null(got);
	assert_non_null(strstr(err.msg, "malformed"));
	assert_int_equal(ERR_peek_error(), 0);
	X509_REQ_free(req);
	ASN1_OCTET_STRING_free(junk);
	GENERAL_NAMES_free(sans);

	/* More entries than CERT_MAX_SANS. */
	assert_non_null(sans = GENERAL_NAMES_new());
	for (int i = 0; i <= CERT_MAX_SANS; i++) {
		char		*spec = dns;
		GENERAL_NAMES	*g;

		snprintf(dns, sizeof(dns), "DNS:h%d.example", i);
		g = make_sans((const char *const *)&spec, 1);
		assert_true(sk_GENERAL_NAME_push(sans,
		    sk_GENERAL_NAME_pop(g)) > 0);
		GENERAL_NAMES_free(g);
	}
	req = make_req(K.ec, "many", sans);
	sp_err_clear(&err);
	assert_int_equal(csr_get_sans(req, &got, &err), SP_ERR_INVALID);
	assert_null(got);
	assert_non_null(strstr(err.msg, "subjectAltName entries"));
	X509_REQ_free(req);
	/* Exactly CERT_MAX_SANS is fine. */
	GENERAL_NAME_free(sk_GENERAL_NAME_pop(sans));
	req = make_req(K.ec, "many", sans);
	assert_int_equal(csr_get_sans(req, &got, &err), 0);
	assert_int_equal(sk_GENERAL_NAME_num(got), CERT_MAX_SANS);
	GENERAL_NAMES_free(got);
	X509_REQ_free(req);
	GENERAL_NAMES_free(sans);
}

/* A one-entry SAN of this type with exactly these bytes. */
static GENERAL_NAMES *
raw_san(int type, const char *bytes, size_t len)
{
	GENERAL_NAMES		*gens = GENERAL_NAMES_new();
	GENERAL_NAME		*gn = GENERAL_NAME_new();
	ASN1_STRING		*v;

	assert_non_null(gens);
	assert_non_null(gn);
	v = type == GEN_IPADD ? ASN1_OCTET_STRING_new() :
	    ASN1_IA5STRING_new();
	assert_non_null(v);
	assert_true(ASN1_STRING_set(v, bytes, (int)len));
	GENERAL_NAME_set0_value(gn, type, v);
	assert_true(sk_GENERAL_NAME_push(gens, gn) > 0);
	return gens;
}

static int
raw_san_rc(int type, const char *bytes, size_t len, struct sp_err *err)
{
	GENERAL_NAMES	*sans = raw_san(type, bytes, len);
	GENERAL_NAMES	*got = (GENERAL_NAMES *)(uintptr_t)1;
	X509_REQ	*req = make_req(K.ec, "s", sans);
	int		 r;

	sp_err_clear(err);
	r = csr_get_sans(req, &got, err);
	if (r != 0)
		assert_null(got);
	GENERAL_NAMES_free(got);
	GENERAL_NAMES_free(sans);
	X509_REQ_free(req);
	return r;
}

/*
 * The NUL-prefix attack (CVE-2009-2408) and other control characters in
 * the names of a SAN; IP addresses are binary and may hold any byte.
 */
static void
test_csr_get_sans_controls(void **state)
{
	static const char	nul[] = "evil.example\0.good.example";
	static const struct {
		int		 type;
		const char	*bytes;
		size_t		 len;
		const char	*want;
	} bad[] = {
		{ GEN_DNS, nul, sizeof(nul) - 1, "dNSName: control "
		    "character U+0000" },
		{ GEN_DNS, "a\n.example", 10, "dNSName: control character "
		    "U+000A" },
		{ GEN_DNS, "a\x7f.example", 10, "U+007F" },
		{ GEN_DNS, "a\x85.example", 10, "U+0085" },
		{ GEN_EMAIL, "a@evil\0.good", 12, "rfc822Name: control "
		    "character U+0000" },
		{ GEN_EMAIL, "a\r\n@example.org", 15, "rfc822Name" },
		{ GEN_URI, "https://good/\0evil", 18, "URI: control "
		    "character U+0000" },
		{ GEN_URI, "https://x/\x1b[2J", 14, "URI: control character "
		    "U+001B" },
	};
	struct sp_err		err = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(raw_san_rc(bad[i].type, bad[i].bytes,
		    bad[i].len, &err), SP_ERR_INVALID);
		if (strstr(err.msg, bad[i].want) == NULL ||
		    strstr(err.msg, "subjectAltName") == NULL) {
			print_error("entry %zu: \"%s\" lacks \"%s\"\n", i,
			    err.msg, bad[i].want);
			fail();
		}
	}
	assert_int_equal(raw_san_rc(GEN_IPADD, "\0\0\0\0", 4, &err), 0);
	assert_int_equal(raw_san_rc(GEN_IPADD, "\x7f\0\0\x01", 4, &err), 0);
	assert_int_equal(raw_san_rc(GEN_DNS, "good.example", 12, &err), 0);
	assert_int_equal(raw_san_rc(GEN_URI, "https://x/?a=b", 14, &err), 0);
}

/* --- serials -------------------------------------------------------------- */

static int
cmp_serial(const void *a, const void *b)
{
	return memcmp(a, b, SERIAL_LEN);
}

static void
test_serial_generate(void **state)
{
	enum { N = 1000 };
	unsigned char	(*s)[SERIAL_LEN];
	int		 high = 0, low = 0;

	(void)state;
	assert_non_null(s = calloc(N, sizeof(*s)));
	for (int i = 0; i < N; i++) {
		assert_int_equal(serial_generate(s[i]), 0);
		/* Positive (top bit clear) and a full 20 octets. */
		assert_int_equal(s[i][0] & 0x80, 0);
		assert_int_not_equal(s[i][0], 0);
		if (s[i][0] >= 0x40)
			high++;
		else
			low++;
	}
	/* The first byte is spread over 1..0x7f, not pinned. */
	assert_true(high > N / 4 && low > N / 4);
	qsort(s, N, sizeof(*s), cmp_serial);
	for (int i = 1; i < N; i++)
		assert_int_not_equal(memcmp(s[i - 1], s[i], SERIAL_LEN), 0);
	free(s);
}

/* --- certificates --------------------------------------------------------- */

static void
check_ext_critical(X509 *x, int nid, int want)
{
	int	i = X509_get_ext_by_NID(x, nid, -1);

	assert_true(i >= 0);
	assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(x, i)),
	    want);
	/* Only one of each. */
	assert_int_equal(X509_get_ext_by_NID(x, nid, i), -1);
}

static void
check_uri(const GENERAL_NAME *gn, const char *want)
{
	assert_int_equal(gn->type, GEN_URI);
	assert_int_equal(ASN1_STRING_length(gn->d.uniformResourceIdentifier),
	    (int)strlen(want));
	assert_memory_equal(ASN1_STRING_get0_data(
	    gn->d.uniformResourceIdentifier), want, strlen(want));
}

static void
spki_equal(const X509_PUBKEY *a, const X509_PUBKEY *b)
{
	unsigned char	*da = NULL, *db = NULL;
	int		 na = i2d_X509_PUBKEY(a, &da);
	int		 nb = i2d_X509_PUBKEY(b, &db);

	assert_true(na > 0);
	assert_int_equal(na, nb);
	assert_memory_equal(da, db, (size_t)na);
	OPENSSL_free(da);
	OPENSSL_free(db);
}

static void
test_cert_build_leaf(void **state)
{
	static const char *const	 specs[] = { "DNS:www.example.com",
					    "DNS:example.com", "IP:192.0.2.7" };
	static const char *const	 dps[] = { "http://crl.example/a.crl",
					    "ldap://ldap.example/cn=a" };
	static const int		 eku[] = { NID_server_auth,
					    NID_client_auth };
	time_t				 now = time(NULL);
	X509				*ca = make_ca(K.ec2, "Test CA", now);
	GENERAL_NAMES			*sans = make_sans(specs, 3);
	X509_REQ			*req = make_req(K.rsa,
					    "www.example.com", sans);
	struct cert_template		 t = { 0 };
	struct sp_err			 err = { 0 };
	unsigned char			 serial[SERIAL_LEN], buf[SERIAL_LEN];
	unsigned char			 md[20], *der = NULL;
	const unsigned char		*pk;
	int				 pklen, n;
	X509				*x = NULL, *y;
	EVP_MD_CTX			*ctx = signer(K.ec2);
	BASIC_CONSTRAINTS		*bc;
	GENERAL_NAMES			*gsans;
	CRL_DIST_POINTS			*cdp;
	AUTHORITY_INFO_ACCESS		*aia;
	ACCESS_DESCRIPTION		*ad;
	DIST_POINT			*dp;
	BIGNUM				*bn;
	char				 fp[65], want_fp[65];
	unsigned char			 dgst[32];
	unsigned int			 dlen = 0;

	(void)state;
	assert_int_equal(serial_generate(serial), 0);
	t.serial = serial;
	t.subject = X509_REQ_get_subject_name(req);
	t.spki = X509_REQ_get_X509_PUBKEY(req);
	t.issuer = ca;
	t.not_before = now - 60;
	t.not_after = now + 90 * 86400;
	/* digitalSignature, keyEncipherment */
	t.key_usage = 1u << 0 | 1u << 2;
	t.key_usage_critical = true;
	t.eku = eku;
	t.neku = 2;
	t.ca = false;
	t.path_len = -1;
	t.sans = sans;
	t.crl_dp = dps;
	t.ncrl_dp = 2;
	t.ocsp_url = "http://ocsp.example/";
	assert_int_equal(cert_build(&t, &x, &err), 0);
	assert_non_null(x);
	assert_int_equal(cert_sign(x, ctx, &err), 0);
	y = reparse(x);

	/* Signed by the issuer key, not by anything else. */
	assert_int_equal(X509_verify(y, K.ec2), 1);
	assert_int_not_equal(X509_verify(y, K.ec), 1);
	ERR_clear_error();
	assert_int_equal(X509_check_issued(ca, y), X509_V_OK);

	/* Fields. */
	assert_int_equal(X509_get_version(y), X509_VERSION_3);
	assert_non_null(bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(y),
	    NULL));
	assert_int_equal(BN_num_bytes(bn), SERIAL_LEN);
	assert_int_equal(BN_bn2bin(bn, buf), SERIAL_LEN);
	assert_memory_equal(buf, serial, SERIAL_LEN);
	BN_free(bn);
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(y),
	    X509_get_subject_name(ca)), 0);
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(y),
	    X509_REQ_get_subject_name(req)), 0);
	assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notBefore(y),
	    now - 60), 0);
	assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notAfter(y),
	    now + 90 * 86400), 0);

	/* The public key is the CSR's, byte for byte. */
	spki_equal(X509_get_X509_PUBKEY(y), X509_REQ_get_X509_PUBKEY(req));
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(y), K.rsa), 1);

	/* basicConstraints: critical, not a CA. */
	check_ext_critical(y, NID_basic_constraints, 1);
	assert_non_null(bc = X509_get_ext_d2i(y, NID_basic_constraints, NULL,
	    NULL));
	assert_int_equal(bc->ca, 0);
	assert_null(bc->pathlen);
	BASIC_CONSTRAINTS_free(bc);

	/* keyUsage: exactly the two bits, critical. */
	check_ext_critical(y, NID_key_usage, 1);
	assert_int_equal(X509_get_key_usage(y),
	    KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);

	/* extKeyUsage. */
	check_ext_critical(y, NID_ext_key_usage, 0);
	assert_int_equal(X509_get_extended_key_usage(y),
	    XKU_SSL_SERVER | XKU_SSL_CLIENT);

	/* subjectAltName: as requested, not critical (subject not empty). */
	check_ext_critical(y, NID_subject_alt_name, 0);
	assert_non_null(gsans = X509_get_ext_d2i(y, NID_subject_alt_name,
	    NULL, NULL));
	assert_int_equal(sk_GENERAL_NAME_num(gsans), 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(GENERAL_NAME_cmp(sk_GENERAL_NAME_value(gsans,
		    i), sk_GENERAL_NAME_value(sans, i)), 0);
	GENERAL_NAMES_free(gsans);

	/* CRL distribution point: one DP, both URLs. */
	check_ext_critical(y, NID_crl_distribution_points, 0);
	assert_non_null(cdp = X509_get_ext_d2i(y, NID_crl_distribution_points,
	    NULL, NULL));
	assert_int_equal(sk_DIST_POINT_num(cdp), 1);
	dp = sk_DIST_POINT_value(cdp, 0);
	assert_non_null(dp->distpoint);
	assert_int_equal(dp->distpoint->type, 0);
	assert_int_equal(sk_GENERAL_NAME_num(dp->distpoint->name.fullname), 2);
	check_uri(sk_GENERAL_NAME_value(dp->distpoint->name.fullname, 0),
	    dps[0]);
	check_uri(sk_GENERAL_NAME_value(dp->distpoint->name.fullname, 1),
	    dps[1]);
	assert_null(dp->reasons);
	assert_null(dp->CRLissuer);
	CRL_DIST_POINTS_free(cdp);

	/* AIA with the OCSP responder. */
	check_ext_critical(y, NID_info_access, 0);
	assert_non_null(aia = X509_get_ext_d2i(y, NID_info_access, NULL,
	    NULL));
	assert_int_equal(sk_ACCESS_DESCRIPTION_num(aia), 1);
	ad = sk_ACCESS_DESCRIPTION_value(aia, 0);
	assert_int_equal(OBJ_obj2nid(ad->method), NID_ad_OCSP);
	check_uri(ad->location, "http://ocsp.example/");
	AUTHORITY_INFO_ACCESS_free(aia);

	/* No OCSP no-check unless asked. */
	assert_int_equal(X509_get_ext_by_NID(y, NID_id_pkix_OCSP_noCheck, -1),
	    -1);

	/* SKI is SHA-1 of the key bits (RFC 5280 4.2.1.2 method 1). */
	check_ext_critical(y, NID_subject_key_identifier, 0);
	assert_true(X509_PUBKEY_get0_param(NULL, &pk, &pklen, NULL,
	    X509_get_X509_PUBKEY(y)));
	assert_true(EVP_Digest(pk, (size_t)pklen, md, NULL, EVP_sha1(), NULL));
	assert_int_equal(ASN1_STRING_length(X509_get0_subject_key_id(y)), 20);
	assert_memory_equal(ASN1_STRING_get0_data(X509_get0_subject_key_id(y)),
	    md, 20);
	/* AKI links to the issuer's SKI. */
	check_ext_critical(y, NID_authority_key_identifier, 0);
	assert_non_null(X509_get0_authority_key_id(y));
	assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(y),
	    X509_get0_subject_key_id(ca)), 0);
	assert_null(X509_get0_authority_issuer(y));
	assert_null(X509_get0_authority_serial(y));

	/* The fingerprint is SHA-256 of the DER. */
	n = i2d_X509(y, &der);
	assert_true(n > 0);
	cert_fingerprint(der, (size_t)n, fp);
	assert_true(X509_digest(y, EVP_sha256(), dgst, &dlen));
	sp_hex_encode(dgst, dlen, want_fp);
	assert_string_equal(fp, want_fp);
	OPENSSL_free(der);

	X509_free(x);
	X509_free(y);
	X509_free(ca);
	EVP_MD_CTX_free(ctx);
	X509_REQ_free(req);
	GENERAL_NAMES_free(sans);
}

static void
test_cert_build_chain_verifies(void **state)
{
	time_t			 now = time(NULL);
	X509			*ca = make_ca(K.ec2, "Chain CA", now);
	X509			*x = NULL, *y;
	static const char *const specs[] = { "DNS:leaf.example" };
	GENERAL_NAMES		*sans = make_sans(specs, 1);
	X509_REQ		*req = make_req(K.ec, "leaf.example", sans);
	static const int	 eku[] = { NID_server_auth };
	struct cert_template	 t = { 0 };
	struct sp_err		 err = { 0 };
	unsigned char		 serial[SERIAL_LEN];
	EVP_MD_CTX		*ctx = signer(K.ec2);
	X509_STORE		*store = X509_STORE_new();
	X509_STORE_CTX		*sctx = X509_STORE_CTX_new();
	BASIC_CONSTRAINTS	*bc;

	(void)state;
	/* The CA from cert_build(): critical CA basicConstraints, pathlen. */
	check_ext_critical(ca, NID_basic_constraints, 1);
	assert_non_null(bc = X509_get_ext_d2i(ca, NID_basic_constraints, NULL,
	    NULL));
	assert_int_not_equal(bc->ca, 0);
	assert_non_null(bc->pathlen);
	assert_int_equal(ASN1_INTEGER_get(bc->pathlen), 0);
	BASIC_CONSTRAINTS_free(bc);
	assert_int_equal(X509_get_key_usage(ca),
	    KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	/* Self-signed: AKI is its own SKI, and it verifies with its key. */
	assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(ca),
	    X509_get0_subject_key_id(ca)), 0);
	assert_int_equal(X509_verify(ca, K.ec2), 1);
	assert_true(X509_get_extension_flags(ca) & EXFLAG_SS);

	assert_int_equal(serial_generate(serial), 0);
	t.serial = serial;
	t.subject = X509_REQ_get_subject_name(req);
	t.spki = X509_REQ_get_X509_PUBKEY(req);
	t.issuer = ca;
	t.not_before = now - 60;
	t.not_after = now + 86400;
	t.key_usage = 1u << 0;
	t.key_usage_critical = true;
	t.eku = eku;
	t.neku = 1;
	t.path_len = -1;
	t.sans = sans;
	assert_int_equal(cert_build(&t, &x, &err), 0);
	assert_int_equal(cert_sign(x, ctx, &err), 0);
	y = reparse(x);

	assert_non_null(store);
	assert_non_null(sctx);
	assert_int_equal(X509_STORE_add_cert(store, ca), 1);
	assert_int_equal(X509_STORE_CTX_init(sctx, store, y, NULL), 1);
	X509_STORE_CTX_set_purpose(sctx, X509_PURPOSE_SSL_SERVER);
	if (X509_verify_cert(sctx) != 1)
		print_error("verify: %s\n", X509_verify_cert_error_string(
		    X509_STORE_CTX_get_error(sctx)));
	assert_int_equal(X509_STORE_CTX_get_error(sctx), X509_V_OK);
	/* Host name check against the SAN. */
	assert_int_equal(X509_check_host(y, "leaf.example", 0, 0, NULL), 1);
	assert_int_not_equal(X509_check_host(y, "other.example", 0, 0, NULL),
	    1);

	X509_STORE_CTX_free(sctx);
	X509_STORE_free(store);
	X509_free(x);
	X509_free(y);
	X509_free(ca);
	EVP_MD_CTX_free(ctx);
	X509_REQ_free(req);
	GENERAL_NAMES_free(sans);
}

static void
test_cert_build_minimal(void **state)
{
	time_t			 now = time(NULL);
	X509			*ca = make_ca(K.ed, "Ed CA", now);
	X509			*x = NULL, *y;
	X509_REQ		*req = make_req(K.ed, "minimal", NULL);
	struct cert_template	 t = { 0 };
	struct sp_err		 err = { 0 };
	unsigned char		 serial[SERIAL_LEN];
	EVP_MD_CTX		*ctx = signer(K.ed);

	(void)state;
	/* Ed25519 issuer, Ed25519 subject key; nothing optional. */
	assert_int_equal(serial_generate(serial), 0);
	t.serial = serial;
	t.subject = X509_REQ_get_subject_name(req);
	t.spki = X509_REQ_get_X509_PUBKEY(req);
	t.issuer = ca;
	t.not_before = now;
	t.not_after = now + 3600;
	t.key_usage_critical = false;
	t.path_len = -1;
	assert_int_equal(cert_build(&t, &x, &err), 0);
	assert_int_equal(cert_sign(x, ctx, &err), 0);
	y = reparse(x);
	assert_int_equal(X509_verify(y, K.ed), 1);
	assert_int_equal(X509_get_signature_nid(y), NID_ED25519);
	spki_equal(X509_get_X509_PUBKEY(y), X509_REQ_get_X509_PUBKEY(req));
	check_ext_critical(y, NID_basic_constraints, 1);
	check_ext_critical(y, NID_subject_key_identifier, 0);
	check_ext_critical(y, NID_authority_key_identifier, 0);
	assert_int_equal(X509_get_ext_by_NID(y, NID_key_usage, -1), -1);
	assert_int_equal(X509_get_ext_by_NID(y, NID_ext_key_usage, -1), -1);
	assert_int_equal(X509_get_ext_by_NID(y, NID_subject_alt_name, -1), -1);
	assert_int_equal(X509_get_ext_by_NID(y, NID_crl_distribution_points,
	    -1), -1);
	assert_int_equal(X509_get_ext_by_NID(y, NID_info_access, -1), -1);
	assert_int_equal(X509_get_ext_count(y), 3);
	X509_free(x);
	X509_free(y);
	X509_free(ca);
	EVP_MD_CTX_free(ctx);
	X509_REQ_free(req);
}

static void
test_cert_build_empty_subject(void **state)
{
	static const char *const specs[] = { "email:someone@example.org" };
	time_t			 now = time(NULL);
	X509			*ca = make_ca(K.ec2, "CA", now), *x = NULL, *y;
	GENERAL_NAMES		*sans = make_sans(specs, 1);
	X509_REQ		*req = make_req(K.ec, NULL, sans);
	X509_NAME		*empty = X509_NAME_new();
	struct cert_template	 t = { 0 };
	struct sp_err		 err = { 0 };
	unsigned char		 serial[SERIAL_LEN];
	EVP_MD_CTX		*ctx = signer(K.ec2);

	(void)state;
	assert_int_equal(serial_generate(serial), 0);
	t.serial = serial;
	t.subject = empty;
	t.spki = X509_REQ_get_X509_PUBKEY(req);
	t.issuer = ca;
	t.not_before = now;
	t.not_after = now + 3600;
	t.key_usage = 1u << 0;
	t.path_len = -1;
	t.sans = sans;
	t.ocsp_nocheck = true;
	assert_int_equal(cert_build(&t, &x, &err), 0);
	assert_int_equal(cert_sign(x, ctx, &err), 0);
	y = reparse(x);
	/* RFC 5280 4.2.1.6: an empty subject makes the SAN critical. */
	assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(y)), 0);
	check_ext_critical(y, NID_subject_alt_name, 1);
	/* keyUsage criticality follows the template. */
	check_ext_critical(y, NID_key_usage, 0);
	check_ext_critical(y, NID_id_pkix_OCSP_noCheck, 0);
	assert_int_equal(X509_verify(y, K.ec2), 1);
	X509_free(x);
	X509_free(y);
	X509_free(ca);
	EVP_MD_CTX_free(ctx);
	X509_REQ_free(req);
	X509_NAME_free(empty);
	GENERAL_NAMES_free(sans);
}

static void
test_cert_build_all_key_usages(void **state)
{
	static const unsigned int	 ku_bits[9] = {
		KU_DIGITAL_SIGNATURE, KU_NON_REPUDIATION, KU_KEY_ENCIPHERMENT,
		KU_DATA_ENCIPHERMENT, KU_KEY_AGREEMENT, KU_KEY_CERT_SIGN,
		KU_CRL_SIGN, KU_ENCIPHER_ONLY, KU_DECIPHER_ONLY,
	};
	time_t				 now = time(NULL);
	X509_NAME			*name = name_of("ku");
	X509_PUBKEY			*xpk = pubkey_of(K.ec);
	EVP_MD_CTX			*ctx = signer(K.ec);

	(void)state;
	/* template.key_usage bit i is RFC 5280 4.2.1.3 bit i. */
	for (int bit = 0; bit < 9; bit++) {
		struct cert_template	 t = { 0 };
		struct sp_err		 err = { 0 };
		unsigned char		 serial[SERIAL_LEN];
		X509			*x = NULL, *y;

		assert_int_equal(serial_generate(serial), 0);
		t.serial = serial;
		t.subject = name;
		t.spki = xpk;
		t.not_before = now;
		t.not_after = now + 60;
		t.key_usage = 1u << bit;
		t.key_usage_critical = true;
		t.ca = bit == 5;
		t.path_len = -1;
		assert_int_equal(cert_build(&t, &x, &err), 0);
		assert_int_equal(cert_sign(x, ctx, &err), 0);
		y = reparse(x);
		assert_int_equal(X509_get_key_usage(y), ku_bits[bit]);
		X509_free(x);
		X509_free(y);
		EVP_MD_CTX_free(ctx);
		ctx = signer(K.ec);
	}
	EVP_MD_CTX_free(ctx);
	X509_PUBKEY_free(xpk);
	X509_NAME_free(name);
}

static void
test_cert_set_sigalg(void **state)
{
	EVP_PKEY	*keys[] = { K.ec, K.rsa, K.ed };
	time_t		 now = time(NULL);

	(void)state;
	/*
	 * The TBSCertificate recorded before signing (after
	 * cert_set_sigalg()) is byte for byte the one that gets signed.
	 */
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		X509			*ca = make_ca(keys[i], "Sigalg CA",
					    now);
		X509_REQ		*req = make_req(K.ec, "tbs", NULL);
		struct cert_template	 t = { 0 };
		struct sp_err		 err = { 0 };
		unsigned char		 serial[SERIAL_LEN];
		unsigned char		*before = NULL, *after = NULL;
		EVP_MD_CTX		*ctx = signer(keys[i]);
		X509			*x = NULL, *y;
		int			 nb, na;

		assert_int_equal(serial_generate(serial), 0);
		t.serial = serial;
		t.subject = X509_REQ_get_subject_name(req);
		t.spki = X509_REQ_get_X509_PUBKEY(req);
		t.issuer = ca;
		t.not_before = now;
		t.not_after = now + 3600;
		t.key_usage = 1u << 0;
		t.path_len = -1;
		assert_int_equal(cert_build(&t, &x, &err), 0);
		assert_int_equal(cert_set_sigalg(x, ctx, &err), 0);
		nb = i2d_re_X509_tbs(x, &before);
		assert_true(nb > 0);
		assert_int_equal(cert_sign(x, ctx, &err), 0);
		y = reparse(x);
		na = i2d_re_X509_tbs(y, &after);	/* the parsed DER */
		assert_int_equal(na, nb);
		assert_memory_equal(before, after, (size_t)nb);
		/* Inner and outer signature algorithms agree. */
		{
			const X509_ALGOR	*outer = NULL;

			X509_get0_signature(NULL, &outer, y);
			assert_int_equal(X509_ALGOR_cmp(outer,
			    X509_get0_tbs_sigalg(y)), 0);
		}
		assert_int_equal(X509_verify(y, keys[i]), 1);
		OPENSSL_free(before);
		OPENSSL_free(after);
		X509_free(x);
		X509_free(y);
		X509_free(ca);
		EVP_MD_CTX_free(ctx);
		X509_REQ_free(req);
	}
}

/* --- CRLs ----------------------------------------------------------------- */

static int
revoked_reason(const X509_REVOKED *rev)
{
	ASN1_ENUMERATED	*e;
	int		 crit = -1;
	long		 v;

	e = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, &crit, NULL);
	if (e == NULL) {
		assert_int_equal(crit, -1);
		return -1;
	}
	assert_int_equal(crit, 0);
	v = ASN1_ENUMERATED_get(e);
	ASN1_ENUMERATED_free(e);
	return (int)v;
}

static void
test_crl_build(void **state)
{
	time_t				 now = time(NULL);
	X509				*ca = make_ca(K.ec2, "CRL CA", now);
	static const unsigned char	 s1[] = { 0x7f, 0x01, 0x02 };
	static const unsigned char	 s2[] = { 0x05 };
	static const unsigned char	 s3[] = { 0x11, 0x22 };
	static const unsigned char	 s4[] = { 0x33, 0x44, 0x55, 0x66 };
	const struct crl_entry		 e[] = {
		{ s1, sizeof(s1), now - 100, 1 },	/* keyCompromise */
		{ s2, sizeof(s2), now - 200, 6 },	/* certificateHold */
		{ s3, sizeof(s3), now - 300, 0 },	/* unspecified */
		{ s4, sizeof(s4), now - 400, -1 },	/* none */
	};
	static const int		 want_reason[] = { 1, 6, -1, -1 };
	EVP_MD_CTX			*ctx = signer(K.ec2);
	unsigned char			*der = NULL;
	const unsigned char		*p;
	size_t				 len = 0;
	struct sp_err			 err = { 0 };
	X509_CRL			*crl;
	ASN1_INTEGER			*num;
	AUTHORITY_KEYID			*aki;
	STACK_OF(X509_REVOKED)		*revs;

	(void)state;
	assert_int_equal(crl_build(ca, 1234567890123LL, now, now + 3600, e, 4,
	    ctx, &der, &len, &err), 0);
	assert_non_null(der);
	p = der;
	assert_non_null(crl = d2i_X509_CRL(NULL, &p, (long)len));
	assert_ptr_equal(p, der + len);

	assert_int_equal(X509_CRL_verify(crl, K.ec2), 1);
	assert_int_not_equal(X509_CRL_verify(crl, K.ec), 1);
	ERR_clear_error();
	assert_int_equal(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
	assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl),
	    X509_get_subject_name(ca)), 0);
	assert_int_equal(ASN1_TIME_cmp_time_t(X509_CRL_get0_lastUpdate(crl),
	    now), 0);
	assert_int_equal(ASN1_TIME_cmp_time_t(X509_CRL_get0_nextUpdate(crl),
	    now + 3600), 0);

	/* The CRL number. */
	assert_non_null(num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL,
	    NULL));
	{
		int64_t v = 0;

		assert_true(ASN1_INTEGER_get_int64(&v, num));
		assert_true(v == 1234567890123LL);
	}
	ASN1_INTEGER_free(num);
	/* AKI = the issuer's SKI. */
	assert_non_null(aki = X509_CRL_get_ext_d2i(crl,
	    NID_authority_key_identifier, NULL, NULL));
	assert_int_equal(ASN1_OCTET_STRING_cmp(aki->keyid,
	    X509_get0_subject_key_id(ca)), 0);
	AUTHORITY_KEYID_free(aki);

	/* Every entry, with its date and reason. */
	revs = X509_CRL_get_REVOKED(crl);
	assert_int_equal(sk_X509_REVOKED_num(revs), 4);
	for (int i = 0; i < 4; i++) {
		X509_REVOKED	*rev = NULL;
		ASN1_INTEGER	*sn = ASN1_INTEGER_new();
		BIGNUM		*bn = BN_bin2bn(e[i].serial,
				    (int)e[i].serial_len, NULL);

		assert_non_null(bn);
		assert_non_null(BN_to_ASN1_INTEGER(bn, sn));
		assert_int_equal(X509_CRL_get0_by_serial(crl, &rev, sn), 1);
		assert_non_null(rev);
		assert_int_equal(ASN1_TIME_cmp_time_t(
		    X509_REVOKED_get0_revocationDate(rev), e[i].revoked_at), 0);
		assert_int_equal(revoked_reason(rev), want_reason[i]);
		ASN1_INTEGER_free(sn);
		BN_free(bn);
	}
	/* Sorted by serial. */
	for (int i = 1; i < 4; i++)
		assert_true(ASN1_INTEGER_cmp(
		    X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revs,
		    i - 1)), X509_REVOKED_get0_serialNumber(
		    sk_X509_REVOKED_value(revs, i))) < 0);
	X509_CRL_free(crl);
	OPENSSL_free(der);
	EVP_MD_CTX_free(ctx);
	X509_free(ca);
}

static void
test_crl_build_empty(void **state)
{
	time_t			 now = time(NULL);
	X509			*ca = make_ca(K.rsa, "RSA CA", now);
	EVP_MD_CTX		*ctx = signer(K.rsa);
	unsigned char		*der = NULL;
	const unsigned char	*p;
	size_t			 len = 0;
	struct sp_err		 err = { 0 };
	X509_CRL		*crl;
	X509_STORE		*store = X509_STORE_new();
	X509_STORE_CTX		*sctx = X509_STORE_CTX_new();

	(void)state;
	assert_int_equal(crl_build(ca, 1, now - 10, now + 60, NULL, 0, ctx,
	    &der, &len, &err), 0);
	p = der;
	assert_non_null(crl = d2i_X509_CRL(NULL, &p, (long)len));
	assert_int_equal(X509_CRL_verify(crl, K.rsa), 1);
	/* No entries: OpenSSL leaves the stack out altogether. */
	assert_true(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) <= 0);

	/* A relying party accepts it with CRL checking on. */
	assert_int_equal(X509_STORE_add_cert(store, ca), 1);
	assert_int_equal(X509_STORE_add_crl(store, crl), 1);
	X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	assert_int_equal(X509_STORE_CTX_init(sctx, store, ca, NULL), 1);
	if (X509_verify_cert(sctx) != 1)
		print_error("verify: %s\n", X509_verify_cert_error_string(
		    X509_STORE_CTX_get_error(sctx)));
	assert_int_equal(X509_STORE_CTX_get_error(sctx), X509_V_OK);
	X509_STORE_CTX_free(sctx);
	X509_STORE_free(store);
	X509_CRL_free(crl);
	OPENSSL_free(der);
	EVP_MD_CTX_free(ctx);
	X509_free(ca);
}

static void
test_crl_reason_names(void **state)
{
	(void)state;
	for (int r = 0; r <= 10; r++) {
		const char *n = crl_reason_name(r);

		if (r == 7) {	/* unused in RFC 5280 */
			assert_string_equal(n, "");
			continue;
		}
		assert_true(strlen(n) > 0);
		assert_int_equal(crl_reason_parse(n), r);
	}
	assert_string_equal(crl_reason_name(1), "keyCompromise");
	assert_string_equal(crl_reason_name(6), "certificateHold");
	assert_string_equal(crl_reason_name(8), "removeFromCRL");
	assert_string_equal(crl_reason_name(-1), "");
	assert_string_equal(crl_reason_name(11), "");
	assert_int_equal(crl_reason_parse("KEYCOMPROMISE"), 1);
	assert_int_equal(crl_reason_parse("aACompromise"), 10);
	assert_int_equal(crl_reason_parse("bogus"), -1);
	assert_int_equal(crl_reason_parse(""), -1);
	assert_int_equal(crl_reason_parse("keyCompromise "), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csr_parse_der_pem),
		cmocka_unit_test(test_csr_parse_garbage),
		cmocka_unit_test(test_csr_parse_certificate_refused),
		cmocka_unit_test(test_csr_parse_bad_signature),
		cmocka_unit_test(test_csr_parse_signed_by_other_key),
		cmocka_unit_test(test_csr_parse_trailing),
		cmocka_unit_test(test_csr_parse_size_limit),
		cmocka_unit_test(test_csr_parse_version),
		cmocka_unit_test(test_csr_get_sans),
		cmocka_unit_test(test_csr_get_sans_bad),
		cmocka_unit_test(test_csr_get_sans_controls),
		cmocka_unit_test(test_serial_generate),
		cmocka_unit_test(test_cert_build_leaf),
		cmocka_unit_test(test_cert_build_chain_verifies),
		cmocka_unit_test(test_cert_build_minimal),
		cmocka_unit_test(test_cert_build_empty_subject),
		cmocka_unit_test(test_cert_build_all_key_usages),
		cmocka_unit_test(test_cert_set_sigalg),
		cmocka_unit_test(test_crl_build),
		cmocka_unit_test(test_crl_build_empty),
		cmocka_unit_test(test_crl_reason_names),
	};

	return cmocka_run_group_tests_name("x509", tests, group_setup,
	    group_teardown);
}
