/*
 * The CSR decoder of the issuance hot path (csr_decode()).
 *
 * On OpenSSL 3.0, d2i_X509_REQ() decodes the request's public key through
 * the provider decoder machinery: a new OSSL_DECODER_CTX per request,
 * which costs more than the CA's own signature and takes the provider
 * stores' locks, so issuing threads serialize on it. Here the request is
 * read with OpenSSL's ASN.1 templates into a structure of the same shape
 * as X509_REQ whose SubjectPublicKeyInfo is a plain SEQUENCE (algorithm,
 * BIT STRING), kept as received, and the key is built directly:
 *
 *   EC P-256/P-384   EVP_PKEY_copy_parameters() from a prepared key of the
 *                    curve, then EVP_PKEY_set1_encoded_public_key() (the
 *                    provider API: EC_POINT_oct2point checks the point);
 *   Ed25519          EVP_PKEY_new_raw_public_key_ex();
 *   RSA              RSAPublicKey read with a template, EVP_PKEY_fromdata().
 *
 * The signature is verified over the exact CertificationRequestInfo bytes
 * received. Anything off this narrow road (another key type or curve, key
 * parameters of an unusual shape, another signature algorithm, a key or
 * signature algorithm that does not match, a structure OpenSSL would not
 * read) goes to the ordinary path, csr_parse(), which decides and words
 * the refusal exactly as before. So csr_decode() accepts what csr_parse()
 * accepts: tests/unit/crypto/test_csr.c checks that on a corpus.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include <openssl/asn1t.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "crypto/x509.h"

/* SubjectPublicKeyInfo, RFC 5280 4.1: no key decode attached. */
typedef struct {
	ASN1_ENCODING	 enc;
	X509_ALGOR	*alg;
	ASN1_BIT_STRING	*bits;
} SP_CSR_SPKI;

/* CertificationRequestInfo, RFC 2986 4.1, shaped as OpenSSL's. */
typedef struct {
	ASN1_ENCODING			 enc;	/* as received */
	ASN1_INTEGER			*version;
	X509_NAME			*subject;
	SP_CSR_SPKI			*spki;
	STACK_OF(X509_ATTRIBUTE)	*attrs;
} SP_CSR_INFO;

typedef struct {
	SP_CSR_INFO	*info;
	X509_ALGOR	*sigalg;
	ASN1_BIT_STRING	*sig;
} SP_CSR;

/* RSAPublicKey, RFC 8017 A.1.1, as OpenSSL reads it (BIGNUM primitive). */
typedef struct {
	BIGNUM	*n;
	BIGNUM	*e;
} SP_RSA_PUB;

ASN1_SEQUENCE_enc(SP_CSR_SPKI, enc, NULL) = {
	ASN1_SIMPLE(SP_CSR_SPKI, alg, X509_ALGOR),
	ASN1_SIMPLE(SP_CSR_SPKI, bits, ASN1_BIT_STRING)
} static_ASN1_SEQUENCE_END_ref(SP_CSR_SPKI, SP_CSR_SPKI)

/*
 * The attributes are [0] IMPLICIT SET OF; OpenSSL reads them as OPTIONAL
 * (some encoders leave an empty set out), and so do we.
 */
ASN1_SEQUENCE_enc(SP_CSR_INFO, enc, NULL) = {
	ASN1_SIMPLE(SP_CSR_INFO, version, ASN1_INTEGER),
	ASN1_SIMPLE(SP_CSR_INFO, subject, X509_NAME),
	ASN1_SIMPLE(SP_CSR_INFO, spki, SP_CSR_SPKI),
	ASN1_IMP_SET_OF_OPT(SP_CSR_INFO, attrs, X509_ATTRIBUTE, 0)
} static_ASN1_SEQUENCE_END_ref(SP_CSR_INFO, SP_CSR_INFO)

ASN1_SEQUENCE(SP_CSR) = {
	ASN1_SIMPLE(SP_CSR, info, SP_CSR_INFO),
	ASN1_SIMPLE(SP_CSR, sigalg, X509_ALGOR),
	ASN1_SIMPLE(SP_CSR, sig, ASN1_BIT_STRING)
} static_ASN1_SEQUENCE_END(SP_CSR)

ASN1_SEQUENCE(SP_RSA_PUB) = {
	ASN1_SIMPLE(SP_RSA_PUB, n, BIGNUM),
	ASN1_SIMPLE(SP_RSA_PUB, e, BIGNUM)
} static_ASN1_SEQUENCE_END(SP_RSA_PUB)

static SP_CSR *
d2i_SP_CSR(const unsigned char **in, long len)
{
	return (SP_CSR *)ASN1_item_d2i(NULL, in, len, ASN1_ITEM_rptr(SP_CSR));
}

static void
SP_CSR_free(SP_CSR *a)
{
	ASN1_item_free((ASN1_VALUE *)a, ASN1_ITEM_rptr(SP_CSR));
}

static SP_RSA_PUB *
d2i_SP_RSA_PUB(const unsigned char **in, long len)
{
	return (SP_RSA_PUB *)ASN1_item_d2i(NULL, in, len,
	    ASN1_ITEM_rptr(SP_RSA_PUB));
}

static void
SP_RSA_PUB_free(SP_RSA_PUB *a)
{
	ASN1_item_free((ASN1_VALUE *)a, ASN1_ITEM_rptr(SP_RSA_PUB));
}

struct csr {
	SP_CSR		*asn;		/* fast path */
	X509_PUBKEY	*spki;		/* fast path: no decode */
	X509_REQ	*req;		/* ordinary path */
	EVP_PKEY	*pkey;		/* fast path: ours; else req's */
};

/* Prepared keys whose parameters new keys copy; made once. */
static pthread_once_t	 tmpl_once = PTHREAD_ONCE_INIT;
static EVP_PKEY		*tmpl_p256, *tmpl_p384;

static EVP_PKEY *
tmpl_ec(const char *group)
{
	EVP_PKEY_CTX	*ctx;
	EVP_PKEY	*pk = NULL;
	OSSL_PARAM	 params[2];

	params[0] = OSSL_PARAM_construct_utf8_string(
	    OSSL_PKEY_PARAM_GROUP_NAME, (char *)(uintptr_t)group, 0);
	params[1] = OSSL_PARAM_construct_end();
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_KEY_PARAMETERS, params) <= 0)
		pk = NULL;
	EVP_PKEY_CTX_free(ctx);
	return pk;
}

static void
tmpl_init(void)
{
	/* A failure leaves the template NULL: that key type falls back. */
	tmpl_p256 = tmpl_ec("P-256");
	tmpl_p384 = tmpl_ec("P-384");
	ERR_clear_error();
}

void
csr_free(struct csr *c)
{
	if (c == NULL)
		return;
	SP_CSR_free(c->asn);
	X509_PUBKEY_free(c->spki);
	X509_REQ_free(c->req);
	if (c->asn != NULL)
		EVP_PKEY_free(c->pkey);
	free(c);
}

/* A key of the parameters of tmpl with the encoded public key bits. */
static EVP_PKEY *
key_from_tmpl(const EVP_PKEY *tmpl, const ASN1_BIT_STRING *bits)
{
	EVP_PKEY	*pk;

	if (tmpl == NULL || (pk = EVP_PKEY_new()) == NULL)
		return NULL;
	if (!EVP_PKEY_copy_parameters(pk, tmpl) ||
	    !EVP_PKEY_set1_encoded_public_key(pk,
	    ASN1_STRING_get0_data(bits), (size_t)ASN1_STRING_length(bits))) {
		EVP_PKEY_free(pk);
		return NULL;
	}
	return pk;
}

static EVP_PKEY *
key_rsa(const ASN1_BIT_STRING *bits)
{
	const unsigned char	*p = ASN1_STRING_get0_data(bits);
	long			 len = ASN1_STRING_length(bits);
	SP_RSA_PUB		*rp;
	OSSL_PARAM_BLD		*bld = NULL;
	OSSL_PARAM		*params = NULL;
	EVP_PKEY_CTX		*ctx = NULL;
	EVP_PKEY		*pk = NULL;

	/* Whole bit string, positive n and e, or the ordinary path. */
	if ((rp = d2i_SP_RSA_PUB(&p, len)) == NULL)
		return NULL;
	if (p != ASN1_STRING_get0_data(bits) + len || BN_is_zero(rp->n) ||
	    BN_is_zero(rp->e) || BN_is_negative(rp->n) ||
	    BN_is_negative(rp->e))
		goto out;
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, rp->n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, rp->e) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
		goto out;
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		pk = NULL;
 out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	SP_RSA_PUB_free(rp);
	return pk;
}

/*
 * The key of the fast path, or NULL: the ordinary path decides. *kind
 * says which signature algorithms go with it.
 */
enum kind { KIND_EC, KIND_RSA, KIND_ED25519 };

static EVP_PKEY *
key_build(const SP_CSR_SPKI *spki, enum kind *kind)
{
	const ASN1_OBJECT	*aobj;
	const void		*pval;
	int			 ptype, nid;

	X509_ALGOR_get0(&aobj, &ptype, &pval, spki->alg);
	switch (OBJ_obj2nid(aobj)) {
	case NID_X9_62_id_ecPublicKey:
		if (ptype != V_ASN1_OBJECT)
			return NULL;
		*kind = KIND_EC;
		nid = OBJ_obj2nid(pval);
		if (nid == NID_X9_62_prime256v1)
			return key_from_tmpl(tmpl_p256, spki->bits);
		if (nid == NID_secp384r1)
			return key_from_tmpl(tmpl_p384, spki->bits);
		return NULL;
	case NID_ED25519:
		if (ptype != V_ASN1_UNDEF ||
		    ASN1_STRING_length(spki->bits) != 32)
			return NULL;
		*kind = KIND_ED25519;
		/* The Ed25519 key manager sets no encoded public key. */
		return EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL,
		    ASN1_STRING_get0_data(spki->bits), 32);
	case NID_rsaEncryption:
		if (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF)
			return NULL;
		*kind = KIND_RSA;
		return key_rsa(spki->bits);
	default:
		return NULL;
	}
}

/*
 * The digest for a signature algorithm that goes with kind ("" for
 * Ed25519, which has none), or NULL: the ordinary path decides.
 */
static const char *
sig_digest(const X509_ALGOR *alg, enum kind kind)
{
	const ASN1_OBJECT	*aobj;
	int			 ptype;

	X509_ALGOR_get0(&aobj, &ptype, NULL, alg);
	switch (OBJ_obj2nid(aobj)) {
	case NID_ecdsa_with_SHA256:
		return kind == KIND_EC ? "SHA256" : NULL;
	case NID_ecdsa_with_SHA384:
		return kind == KIND_EC ? "SHA384" : NULL;
	case NID_ecdsa_with_SHA512:
		return kind == KIND_EC ? "SHA512" : NULL;
	case NID_sha256WithRSAEncryption:
		return kind == KIND_RSA ? "SHA256" : NULL;
	case NID_sha384WithRSAEncryption:
		return kind == KIND_RSA ? "SHA384" : NULL;
	case NID_sha512WithRSAEncryption:
		return kind == KIND_RSA ? "SHA512" : NULL;
	case NID_ED25519:
		/* RFC 8410 3: the parameters are absent. */
		return kind == KIND_ED25519 && ptype == V_ASN1_UNDEF ? "" :
		    NULL;
	default:
		return NULL;
	}
}

/* The X509_PUBKEY of the certificate template: the fields, copied. */
static X509_PUBKEY *
spki_build(const SP_CSR_SPKI *spki)
{
	X509_PUBKEY		*pub;
	const ASN1_OBJECT	*aobj;
	const void		*pval;
	void			*pcopy = NULL;
	unsigned char		*bits = NULL;
	int			 ptype, len = ASN1_STRING_length(spki->bits);

	X509_ALGOR_get0(&aobj, &ptype, &pval, spki->alg);
	if ((pub = X509_PUBKEY_new()) == NULL)
		return NULL;
	if (ptype == V_ASN1_OBJECT)
		pcopy = OBJ_dup(pval);
	else if (ptype == V_ASN1_SEQUENCE)
		pcopy = ASN1_STRING_dup(pval);
	if (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF && pcopy == NULL)
		goto fail;
	if (len > 0 && (bits = OPENSSL_memdup(ASN1_STRING_get0_data(
	    spki->bits), (size_t)len)) == NULL)
		goto fail;
	if (!X509_PUBKEY_set0_param(pub, OBJ_dup(aobj), ptype, pcopy, bits,
	    len))
		goto fail;
	return pub;
 fail:
	if (ptype == V_ASN1_OBJECT)
		ASN1_OBJECT_free(pcopy);
	else
		ASN1_STRING_free(pcopy);
	OPENSSL_free(bits);
	X509_PUBKEY_free(pub);
	return NULL;
}

/*
 * 1: the fast path took it and it verifies (c filled in); 0: the fast
 * path does not take it, the ordinary path decides; < 0: refused (err).
 */
static int
fast_decode(const unsigned char *der, size_t len, bool pem, struct csr *c,
    struct sp_err *err)
{
	const unsigned char	*p = der;
	const char		*md;
	EVP_MD_CTX		*vctx = NULL;
	enum kind		 kind = KIND_EC;
	int			 r = 0, v;

	if (pthread_once(&tmpl_once, tmpl_init) != 0)
		return 0;
	if ((c->asn = d2i_SP_CSR(&p, (long)len)) == NULL)
		goto out;
	/* PEM_read_bio_X509_REQ() does not look past the DER either. */
	if (!pem && p != der + len)
		goto out;
	if (ASN1_INTEGER_get(c->asn->info->version) != X509_REQ_VERSION_1 ||
	    (c->pkey = key_build(c->asn->info->spki, &kind)) == NULL ||
	    (md = sig_digest(c->asn->sigalg, kind)) == NULL)
		goto out;
	/* As ASN1_item_verify(): unused bits in the signature are refused. */
	if (c->asn->sig->flags & 0x7)
		goto out;
	if ((vctx = EVP_MD_CTX_new()) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}
	if (EVP_DigestVerifyInit_ex(vctx, NULL, *md != '\0' ? md : NULL,
	    NULL, NULL, c->pkey, NULL) <= 0)
		goto out;	/* say, a digest a FIPS provider refuses */
	/* The exact bytes received: the template kept them. */
	v = EVP_DigestVerify(vctx, ASN1_STRING_get0_data(c->asn->sig),
	    (size_t)ASN1_STRING_length(c->asn->sig),
	    c->asn->info->enc.enc, (size_t)c->asn->info->enc.len);
	if (v != 1) {
		r = sp_err_ossl(err, SP_ERR_INVALID, "CSR: signature does not "
		    "verify");
		goto out;
	}
	if ((c->spki = spki_build(c->asn->info->spki)) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}
	r = 1;
 out:
	EVP_MD_CTX_free(vctx);
	ERR_clear_error();
	if (r != 1) {
		X509_PUBKEY_free(c->spki);
		EVP_PKEY_free(c->pkey);
		SP_CSR_free(c->asn);
		c->spki = NULL;
		c->pkey = NULL;
		c->asn = NULL;
	}
	return r;
}

int
csr_decode(const unsigned char *data, size_t len, struct csr **out,
    struct sp_err *err)
{
	struct csr	*c;
	BIO		*bio = NULL;
	unsigned char	*der = NULL;
	long		 derlen = 0;
	bool		 pem;
	int		 r;

	*out = NULL;
	if (len == 0 || len > CSR_MAX_SIZE)
		return sp_err_set(err, SP_ERR_INVALID, "CSR: size %zu outside "
		    "1..%d bytes", len, CSR_MAX_SIZE);
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	pem = len > 10 && memcmp(data, "-----BEGIN", 10) == 0;
	if (pem) {
		/* The same PEM reading and names as PEM_read_bio_X509_REQ(). */
		if ((bio = BIO_new_mem_buf(data, (int)len)) != NULL &&
		    PEM_bytes_read_bio(&der, &derlen, NULL,
		    PEM_STRING_X509_REQ, bio, NULL, NULL) == 1)
			r = fast_decode(der, (size_t)derlen, true, c, err);
		else
			r = 0;
		ERR_clear_error();
	} else
		r = fast_decode(data, len, false, c, err);
	if (r == 0)
		r = csr_parse(data, len, &c->req, err);
	else if (r == 1)
		r = 0;
	if (r == 0 && c->req != NULL)
		c->pkey = X509_REQ_get0_pubkey(c->req);
	BIO_free(bio);
	OPENSSL_free(der);
	if (r != 0) {
		csr_free(c);
		return r;
	}
	*out = c;
	return 0;
}

bool
csr_is_fast(const struct csr *c)
{
	return c->asn != NULL;
}

const X509_NAME *
csr_get0_subject(const struct csr *c)
{
	if (c->asn != NULL)
		return c->asn->info->subject;
	return X509_REQ_get_subject_name(c->req);
}

const X509_PUBKEY *
csr_get0_spki(const struct csr *c)
{
	if (c->asn != NULL)
		return c->spki;
	return X509_REQ_get_X509_PUBKEY(c->req);
}

EVP_PKEY *
csr_get0_pubkey(const struct csr *c)
{
	return c->pkey;
}

int
csr_get0_spki_der(const struct csr *c, const unsigned char **der,
    size_t *len)
{
	if (c->asn == NULL)
		return SP_ERR_NOTFOUND;
	*der = c->asn->info->spki->enc.enc;
	*len = (size_t)c->asn->info->spki->enc.len;
	return 0;
}

/*
 * As X509_REQ_get_extensions(): the first extensionRequest (or Microsoft's
 * older OID) attribute's first value; none is an empty list, a value that
 * is not a SEQUENCE or does not decode is NULL.
 */
STACK_OF(X509_EXTENSION) *
csr_get_extensions(const struct csr *c)
{
	static const int		 nids[] = { NID_ext_req,
					    NID_ms_ext_req };
	const STACK_OF(X509_ATTRIBUTE)	*attrs;
	ASN1_TYPE			*v = NULL;
	const unsigned char		*p;
	int				 i;

	if (c->asn == NULL)
		return X509_REQ_get_extensions(c->req);
	attrs = c->asn->info->attrs;
	for (size_t k = 0; k < sizeof(nids) / sizeof(nids[0]); k++) {
		if ((i = X509at_get_attr_by_NID(attrs, nids[k], -1)) < 0)
			continue;
		v = X509_ATTRIBUTE_get0_type(X509at_get_attr(attrs, i), 0);
		break;
	}
	if (v == NULL)
		return sk_X509_EXTENSION_new_null();
	if (v->type != V_ASN1_SEQUENCE)
		return NULL;
	p = v->value.sequence->data;
	return (STACK_OF(X509_EXTENSION) *)ASN1_item_d2i(NULL, &p,
	    v->value.sequence->length, ASN1_ITEM_rptr(X509_EXTENSIONS));
}

int
csr_get_requested_sans(const struct csr *c, GENERAL_NAMES **out,
    struct sp_err *err)
{
	*out = NULL;
	return csr_exts_get_sans(csr_get_extensions(c), out, err);
}
