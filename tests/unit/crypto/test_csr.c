/*
 * Differential test of crypto/csr.c: csr_decode() (the issuance fast
 * path) against csr_parse(), the ordinary path (d2i_X509_REQ() and
 * X509_REQ_verify(), with our size, trailing-data and version checks).
 * For every request of a corpus, and for mutations of each (every
 * truncation length class, bit flips through the whole encoding, a bad
 * signature, trailing bytes, PEM wrapping), both must accept or both
 * refuse, with the same code and message (up to OpenSSL's own reason);
 * when they accept, the subject, the SubjectPublicKeyInfo (the received
 * bytes and the fields the certificate copies), the public key, the
 * requested extensions and the subjectAltName must be the same.
 *
 * The corpus: fixtures/csr/ (made by openssl req, GnuTLS certtool and
 * python3-cryptography, see fixtures/csr/make.sh), plus requests made
 * here with OpenSSL's API (compressed EC point, RSA 4096).
 */
#include <dirent.h>
#include <libgen.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto/x509.h"
#include "util/log.h"

#define MAX_INPUTS	128

struct input {
	char		 name[64];
	unsigned char	*der;
	size_t		 len;
	bool		 want_fast;	/* the fast path must take it */
	bool		 any_path;	/* either path may take it */
};

static struct input	in[MAX_INPUTS];
static size_t		nin;

/* Totals over the run, printed at the end. */
static size_t	n_ok, n_refused, n_fast;

static void
add(const char *name, const unsigned char *der, size_t len, bool fast)
{
	assert_true(nin < MAX_INPUTS);
	snprintf(in[nin].name, sizeof(in[nin].name), "%s", name);
	assert_non_null(in[nin].der = malloc(len));
	memcpy(in[nin].der, der, len);
	in[nin].len = len;
	in[nin].want_fast = fast;
	nin++;
}

/*
 * Which fixtures the fast path must take: P-256/P-384 named curves,
 * RSA with SHA-2, Ed25519. The others (explicit curve parameters,
 * secp256k1, Ed448, RSA-PSS, SHA-1) go to the ordinary path.
 */
static bool
fast_expected(const char *name)
{
	static const char *const slow[] = { "explicit", "secp256k1",
	    "ed448", "pss", "sha1" };

	for (size_t i = 0; i < sizeof(slow) / sizeof(slow[0]); i++)
		if (strstr(name, slow[i]) != NULL)
			return false;
	return true;
}

static void
load_fixtures(void)
{
	char		 dir[2048], path[2400];
	DIR		*d;
	struct dirent	*de;
	FILE		*f;
	unsigned char	 buf[8192];
	size_t		 n;

	snprintf(dir, sizeof(dir), "%s", __FILE__);
	snprintf(path, sizeof(path), "%s/fixtures/csr", dirname(dir));
	assert_non_null(d = opendir(path));
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);

		if (l < 5 || (strcmp(de->d_name + l - 4, ".der") != 0 &&
		    strcmp(de->d_name + l - 4, ".pem") != 0))
			continue;
		if ((size_t)snprintf(path, sizeof(path),
		    "%s/fixtures/csr/%.255s", dir, de->d_name) >= sizeof(path))
			fail();
		assert_non_null(f = fopen(path, "rb"));
		n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		assert_true(n > 0 && n < sizeof(buf));
		add(de->d_name, buf, n, fast_expected(de->d_name));
	}
	closedir(d);
}

/*
 * Odd shapes, each signed with the request's own key after the tweak,
 * so that the signature verifies and what is compared is how each path
 * reads the rest: the fast path must fall back, or read as OpenSSL does.
 */
enum tweak {
	TW_NONE,
	TW_PARAMS_ABSENT,	/* algorithm parameters left out */
	TW_PARAMS_NULL,		/* NULL parameters */
	TW_PARAMS_OID,		/* an OID as parameters */
	TW_BITS_TRAILING,	/* two bytes after the key in the BIT STRING */
	TW_CURVE_P384,		/* the P-256 point under the P-384 OID */
	TW_TWO_EXTREQ,		/* Microsoft's (empty), then ours */
	TW_MS_EXTREQ,		/* Microsoft's extension request only */
	TW_EXTREQ_INTEGER,	/* an extensionRequest, not a SEQUENCE */
	TW_EXTREQ_EMPTY,	/* an extensionRequest without value */
	TW_CHALLENGE,		/* challengePassword, then extensions */
	TW_BMP_SUBJECT,		/* subject in BMPString, several RDNs */
	TW__MAX
};

static void
tweak_spki(X509_REQ *req, enum tweak tw)
{
	X509_PUBKEY		*pub = X509_REQ_get_X509_PUBKEY(req);
	const ASN1_OBJECT	*aobj;
	const unsigned char	*bits;
	X509_ALGOR		*alg;
	const void		*pval;
	unsigned char		*nb;
	int			 blen, ptype, nlen;
	void			*np = NULL;

	assert_true(X509_PUBKEY_get0_param(NULL, &bits, &blen, &alg, pub));
	X509_ALGOR_get0(&aobj, &ptype, &pval, alg);
	nlen = blen + (tw == TW_BITS_TRAILING ? 2 : 0);
	assert_non_null(nb = OPENSSL_zalloc((size_t)nlen));
	memcpy(nb, bits, (size_t)blen);
	switch (tw) {
	case TW_PARAMS_ABSENT:
		ptype = V_ASN1_UNDEF;
		break;
	case TW_PARAMS_NULL:
		ptype = V_ASN1_NULL;
		break;
	case TW_PARAMS_OID:
		ptype = V_ASN1_OBJECT;
		np = OBJ_nid2obj(NID_sha256);
		break;
	case TW_CURVE_P384:
		ptype = V_ASN1_OBJECT;
		np = OBJ_nid2obj(NID_secp384r1);
		break;
	default:
		if (ptype == V_ASN1_OBJECT)
			np = OBJ_dup(pval);
		else if (ptype == V_ASN1_SEQUENCE)
			np = ASN1_STRING_dup(pval);
		break;
	}
	assert_true(X509_PUBKEY_set0_param(pub, OBJ_dup(aobj), ptype, np, nb,
	    nlen));
}

static void
add_attr(X509_REQ *req, int nid, int type, const unsigned char *der,
    int len)
{
	assert_true(X509_REQ_add1_attr_by_NID(req, nid, type, der, len));
}

/* A signed request for pk with a DNS SAN, DER, tweaked. */
static void
add_odd(const char *name, EVP_PKEY *pk, const char *md, enum tweak tw)
{
	static const unsigned char	 integer[] = { 0x02, 0x01, 0x05 };
	X509_REQ			*req = X509_REQ_new();
	X509_NAME			*nm = X509_NAME_new();
	STACK_OF(X509_EXTENSION)	*exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION			*ext;
	X509_ATTRIBUTE			*attr;
	unsigned char			*der = NULL, *ed = NULL;
	int				 len, elen;
	char				 full[64];

	assert_non_null(req);
	if (tw == TW_BMP_SUBJECT) {
		assert_true(X509_NAME_add_entry_by_txt(nm, "C", MBSTRING_ASC,
		    (const unsigned char *)"DE", -1, -1, 0));
		assert_true(X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_BMP,
		    (const unsigned char *)"\0E\0x", 4, -1, 0));
		assert_true(X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
		    (const unsigned char *)name, -1, -1, 1));
	} else
		assert_true(X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
		    (const unsigned char *)name, -1, -1, 0));
	assert_true(X509_REQ_set_subject_name(req, nm));
	assert_true(X509_REQ_set_pubkey(req, pk));
	if (tw >= TW_PARAMS_ABSENT && tw <= TW_CURVE_P384)
		tweak_spki(req, tw);
	assert_non_null(ext = X509V3_EXT_conf_nid(NULL, NULL,
	    NID_subject_alt_name, "DNS:made.example"));
	assert_true(sk_X509_EXTENSION_push(exts, ext));
	assert_true((elen = ASN1_item_i2d((ASN1_VALUE *)exts, &ed,
	    ASN1_ITEM_rptr(X509_EXTENSIONS))) > 0);
	switch (tw) {
	case TW_MS_EXTREQ:
		add_attr(req, NID_ms_ext_req, V_ASN1_SEQUENCE, ed, elen);
		break;
	case TW_EXTREQ_INTEGER:
		add_attr(req, NID_ext_req, V_ASN1_OCTET_STRING, integer,
		    sizeof(integer));
		break;
	case TW_EXTREQ_EMPTY:
		assert_non_null(attr = X509_ATTRIBUTE_create_by_NID(NULL,
		    NID_ext_req, 0, NULL, 0));
		assert_true(X509_REQ_add1_attr(req, attr));
		X509_ATTRIBUTE_free(attr);
		break;
	case TW_TWO_EXTREQ:
		/* Microsoft's first: the standard OID is looked up first. */
		add_attr(req, NID_ms_ext_req, V_ASN1_SEQUENCE,
		    (const unsigned char *)"\x30\x00", 2);
		add_attr(req, NID_ext_req, V_ASN1_SEQUENCE, ed, elen);
		break;
	case TW_CHALLENGE:
		add_attr(req, NID_pkcs9_challengePassword, MBSTRING_ASC,
		    (const unsigned char *)"secret", 6);
		add_attr(req, NID_ext_req, V_ASN1_SEQUENCE, ed, elen);
		break;
	default:
		add_attr(req, NID_ext_req, V_ASN1_SEQUENCE, ed, elen);
		break;
	}
	assert_true(X509_REQ_sign(req, pk, md != NULL ?
	    EVP_get_digestbyname(md) : NULL) > 0);
	assert_true((len = i2d_X509_REQ(req, &der)) > 0);
	snprintf(full, sizeof(full), "odd_%s_%d", name, (int)tw);
	/* Which of these the fast path takes is what check() reports. */
	add(full, der, (size_t)len, false);
	in[nin - 1].any_path = true;
	OPENSSL_free(der);
	OPENSSL_free(ed);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(nm);
	X509_REQ_free(req);
}

/* A signed request for pk with a DNS SAN, DER. */
static void
add_made(const char *name, EVP_PKEY *pk, const char *md)
{
	X509_REQ			*req = X509_REQ_new();
	X509_NAME			*nm = X509_NAME_new();
	STACK_OF(X509_EXTENSION)	*exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION			*ext;
	unsigned char			*der = NULL;
	int				 len;

	assert_non_null(req);
	assert_true(X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
	    (const unsigned char *)name, -1, -1, 0));
	assert_true(X509_REQ_set_subject_name(req, nm));
	assert_true(X509_REQ_set_pubkey(req, pk));
	assert_non_null(ext = X509V3_EXT_conf_nid(NULL, NULL,
	    NID_subject_alt_name, "DNS:made.example"));
	assert_true(sk_X509_EXTENSION_push(exts, ext));
	assert_true(X509_REQ_add_extensions(req, exts));
	assert_true(X509_REQ_sign(req, pk, md != NULL ?
	    EVP_get_digestbyname(md) : NULL) > 0);
	assert_true((len = i2d_X509_REQ(req, &der)) > 0);
	add(name, der, (size_t)len, true);
	OPENSSL_free(der);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(nm);
	X509_REQ_free(req);
}

static bool
add_odd_all(void)
{
	EVP_PKEY	*ec, *rsa, *ed;

	ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (ec == NULL || rsa == NULL || ed == NULL)
		return false;
	for (int tw = TW_NONE; tw < TW__MAX; tw++) {
		add_odd("ec", ec, "SHA256", tw);
		add_odd("rsa", rsa, "SHA256", tw);
		if (tw <= TW_CURVE_P384)
			add_odd("ed", ed, NULL, tw);
	}
	add_odd("ec_sha1", ec, "SHA1", TW_NONE);
	add_odd("ec_sha384", ec, "SHA384", TW_NONE);
	add_odd("rsa_sha512", rsa, "SHA512", TW_NONE);
	add_odd("rsa_sha224", rsa, "SHA224", TW_NONE);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ed);
	return true;
}

static int
group_setup(void **state)
{
	EVP_PKEY	*pk;

	(void)state;
	log_init(LOG_LVL_WARN);
	load_fixtures();
	/* A compressed P-256 point: the same key, another encoding. */
	pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (pk == NULL || !EVP_PKEY_set_utf8_string_param(pk,
	    OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, "compressed"))
		return -1;
	add_made("made_p256_compressed", pk, "SHA256");
	EVP_PKEY_free(pk);
	if ((pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384")) == NULL)
		return -1;
	add_made("made_p384_sha256", pk, "SHA256");
	EVP_PKEY_free(pk);
	if (!add_odd_all())
		return -1;
	return nin >= 40 ? 0 : -1;
}

static int
group_teardown(void **state)
{
	(void)state;
	for (size_t i = 0; i < nin; i++)
		free(in[i].der);
	print_message("csr differential: %zu accepted (%zu by the fast "
	    "path), %zu refused by both\n", n_ok, n_fast, n_refused);
	return 0;
}

/* The message without OpenSSL's reason (": error:..."), which may differ. */
static void
msg_core(const char *msg, char *out, size_t outsz)
{
	const char	*e = strstr(msg, ": error:");
	size_t		 n = e != NULL ? (size_t)(e - msg) : strlen(msg);

	if (n >= outsz)
		n = outsz - 1;
	memcpy(out, msg, n);
	out[n] = '\0';
	/* "... failed" (empty queue) and "...: error:..." say the same. */
	if (n > 7 && strcmp(out + n - 7, " failed") == 0)
		out[n - 7] = '\0';
}

static void
same_der(const char *what, const char *name, const unsigned char *a,
    int alen, const unsigned char *b, int blen)
{
	if (alen != blen || alen < 0 || memcmp(a, b, (size_t)alen) != 0) {
		print_error("%s: %s differs\n", name, what);
		fail();
	}
}

static void
same_exts(const char *name, STACK_OF(X509_EXTENSION) *a,
    STACK_OF(X509_EXTENSION) *b)
{
	unsigned char	*da = NULL, *db = NULL;
	int		 la, lb;

	if (a == NULL || b == NULL) {
		if (a != b)
			print_error("%s: extensions NULL on one side\n", name);
		assert_true(a == b);
		return;
	}
	la = ASN1_item_i2d((ASN1_VALUE *)a, &da,
	    ASN1_ITEM_rptr(X509_EXTENSIONS));
	lb = ASN1_item_i2d((ASN1_VALUE *)b, &db,
	    ASN1_ITEM_rptr(X509_EXTENSIONS));
	same_der("requested extensions", name, da, la, db, lb);
	OPENSSL_free(da);
	OPENSSL_free(db);
	sk_X509_EXTENSION_pop_free(a, X509_EXTENSION_free);
	sk_X509_EXTENSION_pop_free(b, X509_EXTENSION_free);
}

static void
same_spki(const char *name, X509_REQ *req, const struct csr *c)
{
	const X509_PUBKEY	*rp = X509_REQ_get_X509_PUBKEY(req);
	const X509_PUBKEY	*cp = csr_get0_spki(c);
	const unsigned char	*rbits, *cbits, *raw;
	X509_ALGOR		*ralg, *calg;
	unsigned char		*der = NULL;
	size_t			 rawlen;
	int			 rlen, clen, len;

	/* The received bytes, as OpenSSL re-encodes what it read. */
	if (csr_is_fast(c)) {
		assert_int_equal(csr_get0_spki_der(c, &raw, &rawlen), 0);
		len = i2d_X509_PUBKEY(rp, &der);
		same_der("SubjectPublicKeyInfo", name, der, len, raw,
		    (int)rawlen);
		OPENSSL_free(der);
	}
	/* The fields cert_build() copies into the certificate. */
	assert_true(X509_PUBKEY_get0_param(NULL, &rbits, &rlen, &ralg, rp));
	assert_true(X509_PUBKEY_get0_param(NULL, &cbits, &clen, &calg, cp));
	if (X509_ALGOR_cmp(ralg, calg) != 0) {
		print_error("%s: SPKI algorithm differs\n", name);
		fail();
	}
	same_der("public key bits", name, rbits, rlen, cbits, clen);
	if (EVP_PKEY_eq(X509_REQ_get0_pubkey(req), csr_get0_pubkey(c)) != 1) {
		print_error("%s: public keys differ\n", name);
		fail();
	}
}

static void
same_sans(const char *name, X509_REQ *req, const struct csr *c)
{
	struct sp_err	 e1 = { 0 }, e2 = { 0 };
	GENERAL_NAMES	*g1 = NULL, *g2 = NULL;
	unsigned char	*d1 = NULL, *d2 = NULL;
	int		 r1, r2, l1, l2;

	r1 = csr_get_sans(req, &g1, &e1);
	r2 = csr_get_requested_sans(c, &g2, &e2);
	if (r1 != r2 || strcmp(e1.msg, e2.msg) != 0)
		print_error("%s: SANs: %d \"%s\" against %d \"%s\"\n", name,
		    r1, e1.msg, r2, e2.msg);
	assert_int_equal(r1, r2);
	assert_string_equal(e1.msg, e2.msg);
	assert_true((g1 == NULL) == (g2 == NULL));
	if (g1 != NULL) {
		l1 = i2d_GENERAL_NAMES(g1, &d1);
		l2 = i2d_GENERAL_NAMES(g2, &d2);
		same_der("subjectAltName", name, d1, l1, d2, l2);
	}
	OPENSSL_free(d1);
	OPENSSL_free(d2);
	GENERAL_NAMES_free(g1);
	GENERAL_NAMES_free(g2);
}

/* Both paths on one input; returns whether the fast path took it. */
static bool
check(const char *name, const unsigned char *data, size_t len)
{
	struct sp_err	 e1 = { 0 }, e2 = { 0 };
	X509_REQ	*req = NULL;
	struct csr	*c = (struct csr *)(uintptr_t)1;
	char		 m1[256], m2[256];
	unsigned char	*d1 = NULL, *d2 = NULL;
	int		 r1, r2, l1, l2;
	bool		 fast = false;

	r1 = csr_parse(data, len, &req, &e1);
	r2 = csr_decode(data, len, &c, &e2);
	assert_int_equal(ERR_peek_error(), 0);
	msg_core(e1.msg, m1, sizeof(m1));
	msg_core(e2.msg, m2, sizeof(m2));
	if (r1 != r2 || strcmp(m1, m2) != 0) {
		print_error("%s (%zu bytes): csr_parse %d \"%s\", csr_decode "
		    "%d \"%s\"\n", name, len, r1, e1.msg, r2, e2.msg);
		fail();
	}
	if (r1 != 0) {
		assert_null(req);
		assert_null(c);
		n_refused++;
		return false;
	}
	assert_non_null(c);
	fast = csr_is_fast(c);
	l1 = i2d_X509_NAME(X509_REQ_get_subject_name(req), &d1);
	l2 = i2d_X509_NAME(csr_get0_subject(c), &d2);
	same_der("subject", name, d1, l1, d2, l2);
	OPENSSL_free(d1);
	OPENSSL_free(d2);
	same_spki(name, req, c);
	same_exts(name, X509_REQ_get_extensions(req), csr_get_extensions(c));
	same_sans(name, req, c);
	X509_REQ_free(req);
	csr_free(c);
	n_ok++;
	n_fast += fast;
	return fast;
}

static void
test_corpus_as_is(void **state)
{
	(void)state;
	for (size_t i = 0; i < nin; i++) {
		bool fast = check(in[i].name, in[i].der, in[i].len);

		if (in[i].any_path) {
			if (getenv("TEST_CSR_VERBOSE") != NULL)
				print_message("%s: %s\n", in[i].name, fast ?
				    "fast" : "ordinary path or refused");
			continue;
		}
		if (fast != in[i].want_fast) {
			print_error("%s: fast path %s\n", in[i].name, fast ?
			    "taken, not expected" : "not taken");
			fail();
		}
	}
}

/* The same requests as PEM, under both names OpenSSL reads. */
static void
test_corpus_pem(void **state)
{
	static const char *const names[] = { "CERTIFICATE REQUEST",
	    "NEW CERTIFICATE REQUEST", "CERTIFICATE" };
	BIO		*b;
	BUF_MEM		*bm;

	(void)state;
	for (size_t i = 0; i < nin; i++) {
		if (in[i].len > 0 && in[i].der[0] == '-')
			continue;
		for (size_t k = 0; k < 3; k++) {
			assert_non_null(b = BIO_new(BIO_s_mem()));
			assert_true(PEM_write_bio(b, names[k], "", in[i].der,
			    (long)in[i].len) > 0);
			BIO_get_mem_ptr(b, &bm);
			check(in[i].name, (unsigned char *)bm->data,
			    bm->length);
			BIO_free(b);
		}
	}
}

static void
test_truncated(void **state)
{
	(void)state;
	for (size_t i = 0; i < nin; i++) {
		size_t	step = in[i].len / 40 + 1;

		for (size_t l = 0; l < in[i].len; l += step)
			check(in[i].name, in[i].der, l);
		check(in[i].name, in[i].der, in[i].len - 1);
	}
}

/* Bit flips through the whole encoding: tags, lengths, key, signature. */
static void
test_flipped(void **state)
{
	static const unsigned char	 bits[] = { 0x01, 0x80, 0x20 };
	unsigned char			*m;

	(void)state;
	for (size_t i = 0; i < nin; i++) {
		size_t	len = in[i].len, step = len / 60 + 1;

		if (in[i].der[0] == '-')
			continue;	/* PEM: base64 flips are garbage */
		assert_non_null(m = malloc(len));
		for (size_t p = 0; p < len; p += step)
			for (size_t k = 0; k < sizeof(bits); k++) {
				memcpy(m, in[i].der, len);
				m[(p + k) % len] ^= bits[k];
				check(in[i].name, m, len);
			}
		free(m);
	}
}

static void
test_bad_signature_trailing(void **state)
{
	unsigned char	*m;

	(void)state;
	for (size_t i = 0; i < nin; i++) {
		size_t	len = in[i].len;

		if (in[i].der[0] == '-')
			continue;
		assert_non_null(m = malloc(len + 2));
		/* The last bytes are the signature's. */
		memcpy(m, in[i].der, len);
		m[len - 1] ^= 0x01;
		assert_false(check(in[i].name, m, len));
		memcpy(m, in[i].der, len);
		m[len - 4] ^= 0x10;
		assert_false(check(in[i].name, m, len));
		/* Trailing data after a valid DER request is refused. */
		memcpy(m, in[i].der, len);
		m[len] = 0;
		m[len + 1] = 0;
		assert_false(check(in[i].name, m, len + 2));
		free(m);
	}
}

static void
test_garbage(void **state)
{
	static const char	 pem[] =
	    "-----BEGIN CERTIFICATE REQUEST-----\n"
	    "AAAA\n-----END CERTIFICATE REQUEST-----\n";
	unsigned char		 buf[512] = { 0 };
	unsigned char		 seq[] = { 0x30, 0x82, 0xff, 0xff, 0x30 };

	(void)state;
	check("empty", buf, 0);
	check("pem", (const unsigned char *)pem, sizeof(pem) - 1);
	check("seq", seq, sizeof(seq));
	for (int i = 0; i < 200; i++) {
		size_t len = 1 + (size_t)i * 2;

		assert_int_equal(RAND_bytes(buf, (int)len), 1);
		if (i % 2 == 0)
			buf[0] = 0x30;
		check("random", buf, len);
	}
	/* Larger than CSR_MAX_SIZE. */
	{
		unsigned char *big = calloc(1, CSR_MAX_SIZE + 1);

		assert_non_null(big);
		check("big", big, CSR_MAX_SIZE + 1);
		free(big);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus_as_is),
		cmocka_unit_test(test_corpus_pem),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_flipped),
		cmocka_unit_test(test_bad_signature_trailing),
		cmocka_unit_test(test_garbage),
	};

	return cmocka_run_group_tests_name("csr", tests, group_setup,
	    group_teardown);
}
