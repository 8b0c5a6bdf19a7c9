#include <stdbool.h>
#include <string.h>

#include <pthread.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto/dn.h"
#include "crypto/x509.h"
#include "util/util.h"

int
csr_parse(const unsigned char *data, size_t len, X509_REQ **out,
    struct sp_err *err)
{
	X509_REQ		*req = NULL;
	BIO			*bio = NULL;
	const unsigned char	*p = data;
	EVP_PKEY		*pk;
	int			 r = SP_ERR_INVALID, v;

	*out = NULL;
	if (len == 0 || len > CSR_MAX_SIZE)
		return sp_err_set(err, SP_ERR_INVALID, "CSR: size %zu outside "
		    "1..%d bytes", len, CSR_MAX_SIZE);
	if (len > 10 && memcmp(data, "-----BEGIN", 10) == 0) {
		if ((bio = BIO_new_mem_buf(data, (int)len)) == NULL) {
			r = sp_err_ossl(err, SP_ERR_ALLOC, "BIO_new_mem_buf");
			goto out;
		}
		req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
	} else {
		req = d2i_X509_REQ(NULL, &p, (long)len);
		if (req != NULL && p != data + len) {
			sp_err_set(err, SP_ERR_INVALID, "CSR: trailing data "
			    "after the DER request");
			goto out;
		}
	}
	if (req == NULL) {
		sp_err_ossl(err, SP_ERR_INVALID, "CSR: not a PKCS#10 request");
		goto out;
	}
	if (X509_REQ_get_version(req) != X509_REQ_VERSION_1) {
		sp_err_set(err, SP_ERR_INVALID, "CSR: RFC 2986 4.1: version "
		    "must be 0");
		goto out;
	}
	if ((pk = X509_REQ_get0_pubkey(req)) == NULL) {
		sp_err_ossl(err, SP_ERR_INVALID, "CSR: unreadable public key");
		goto out;
	}
	/* This weird API returns 1 if good, 0 if bad, -1 on error. */
	if ((v = X509_REQ_verify(req, pk)) != 1) {
		sp_err_ossl(err, SP_ERR_INVALID, "CSR: signature does not "
		    "verify");
		goto out;
	}
	*out = req;
	req = NULL;
	r = 0;
 out:
	ERR_clear_error();
	BIO_free(bio);
	X509_REQ_free(req);
	return r;
}

/*
 * The names in a SAN that software compares as strings must be text:
 * "evil.example\0.good.example" reads as "evil.example" in C. IP
 * addresses are binary; the other types are the profile's to refuse.
 */
static int
sans_check_text(const GENERAL_NAMES *gens, struct sp_err *err)
{
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME	*gn = sk_GENERAL_NAME_value(gens, i);
		const char		*what;

		switch (gn->type) {
		case GEN_DNS:
			what = "CSR: subjectAltName dNSName";
			break;
		case GEN_EMAIL:
			what = "CSR: subjectAltName rfc822Name";
			break;
		case GEN_URI:
			what = "CSR: subjectAltName URI";
			break;
		default:
			continue;
		}
		/* dNSName, rfc822Name and URI are all IA5String. */
		if (dn_check_string(gn->d.ia5, what, 0, err) != 0)
			return SP_ERR_INVALID;
	}
	return 0;
}

int
csr_exts_get_sans(STACK_OF(X509_EXTENSION) *exts, GENERAL_NAMES **out,
    struct sp_err *err)
{
	GENERAL_NAMES	*gens;
	int		 crit = -1, r;

	*out = NULL;
	if (exts == NULL) {
		ERR_clear_error();
		return 0;
	}
	gens = X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	if (gens == NULL) {
		ERR_clear_error();
		if (crit == -1)
			return 0;
		return sp_err_set(err, SP_ERR_INVALID, crit == -2 ?
		    "CSR: more than one subjectAltName requested" :
		    "CSR: malformed subjectAltName");
	}
	if (sk_GENERAL_NAME_num(gens) > CERT_MAX_SANS) {
		GENERAL_NAMES_free(gens);
		return sp_err_set(err, SP_ERR_INVALID, "CSR: more than %d "
		    "subjectAltName entries", CERT_MAX_SANS);
	}
	if ((r = sans_check_text(gens, err)) != 0) {
		GENERAL_NAMES_free(gens);
		return r;
	}
	*out = gens;
	return 0;
}

int
csr_get_sans(const X509_REQ *req, GENERAL_NAMES **out, struct sp_err *err)
{
	*out = NULL;
	return csr_exts_get_sans(X509_REQ_get_extensions(
	    (X509_REQ *)(uintptr_t)req), out, err);
}

int
serial_generate(unsigned char serial[SERIAL_LEN])
{
	/* RFC 5280 4.1.2.2: positive, at most 20 octets. */
	do {
		if (RAND_bytes(serial, SERIAL_LEN) != 1)
			return SP_ERR_CRYPTO;
		serial[0] &= 0x7f;
	} while (serial[0] == 0);
	return 0;
}

static int
set_serial(ASN1_INTEGER *ai, const unsigned char *b, size_t len)
{
	BIGNUM	*bn;
	int	 ok;

	if ((bn = BN_bin2bn(b, (int)len, NULL)) == NULL)
		return 0;
	ok = BN_to_ASN1_INTEGER(bn, ai) != NULL;
	BN_free(bn);
	return ok;
}

/* Copies the SubjectPublicKeyInfo field by field: no key decode/encode. */
static int
copy_spki(X509 *x, const X509_PUBKEY *src, struct sp_err *err)
{
	ASN1_OBJECT		*obj = NULL;
	const ASN1_OBJECT	*aobj;
	const unsigned char	*pk;
	unsigned char		*pkc = NULL;
	X509_ALGOR		*alg;
	const void		*pval;
	void			*pcopy = NULL;
	int			 pklen, ptype;

	if (!X509_PUBKEY_get0_param(&obj, &pk, &pklen, &alg, src))
		return sp_err_ossl(err, SP_ERR_INVALID, "public key");
	X509_ALGOR_get0(&aobj, &ptype, &pval, alg);
	if (ptype == V_ASN1_OBJECT)
		pcopy = OBJ_dup(pval);
	else if (ptype == V_ASN1_SEQUENCE || ptype == V_ASN1_OCTET_STRING)
		pcopy = ASN1_STRING_dup(pval);
	else if (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF)
		return sp_err_set(err, SP_ERR_INVALID, "public key: "
		    "unsupported algorithm parameters");
	if ((ptype == V_ASN1_OBJECT || ptype == V_ASN1_SEQUENCE ||
	    ptype == V_ASN1_OCTET_STRING) && pcopy == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	if ((pkc = OPENSSL_memdup(pk, (size_t)pklen)) == NULL && pklen > 0)
		goto fail;
	if (!X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), OBJ_dup(aobj),
	    ptype, pcopy, pkc, pklen))
		goto fail;
	return 0;
 fail:
	if (ptype == V_ASN1_OBJECT)
		ASN1_OBJECT_free(pcopy);
	else
		ASN1_STRING_free(pcopy);
	OPENSSL_free(pkc);
	return sp_err_ossl(err, SP_ERR_ALLOC, "X509_PUBKEY_set0_param");
}

static GENERAL_NAME *
uri_name(const char *url)
{
	GENERAL_NAME	*gn = GENERAL_NAME_new();
	ASN1_IA5STRING	*s = ASN1_IA5STRING_new();

	if (gn == NULL || s == NULL || !ASN1_STRING_set(s, url, -1)) {
		GENERAL_NAME_free(gn);
		ASN1_IA5STRING_free(s);
		return NULL;
	}
	GENERAL_NAME_set0_value(gn, GEN_URI, s);
	return gn;
}

static int
add_crl_dp(X509 *x, const char *const *urls, size_t n)
{
	CRL_DIST_POINTS	*dps = sk_DIST_POINT_new_null();
	DIST_POINT	*dp = DIST_POINT_new();
	int		 ok = 0;

	if (dps == NULL || dp == NULL ||
	    (dp->distpoint = DIST_POINT_NAME_new()) == NULL ||
	    (dp->distpoint->name.fullname = GENERAL_NAMES_new()) == NULL)
		goto out;
	dp->distpoint->type = 0;
	for (size_t i = 0; i < n; i++) {
		GENERAL_NAME *gn = uri_name(urls[i]);

		if (gn == NULL || !sk_GENERAL_NAME_push(
		    dp->distpoint->name.fullname, gn)) {
			GENERAL_NAME_free(gn);
			goto out;
		}
	}
	if (!sk_DIST_POINT_push(dps, dp))
		goto out;
	dp = NULL;
	ok = X509_add1_ext_i2d(x, NID_crl_distribution_points, dps, 0,
	    X509V3_ADD_DEFAULT) == 1;
 out:
	DIST_POINT_free(dp);
	CRL_DIST_POINTS_free(dps);
	return ok;
}

static int
add_ocsp(X509 *x, const char *url)
{
	AUTHORITY_INFO_ACCESS	*aia = sk_ACCESS_DESCRIPTION_new_null();
	ACCESS_DESCRIPTION	*ad = ACCESS_DESCRIPTION_new();
	int			 ok = 0;

	if (aia == NULL || ad == NULL)
		goto out;
	ASN1_OBJECT_free(ad->method);
	ad->method = OBJ_nid2obj(NID_ad_OCSP);
	GENERAL_NAME_free(ad->location);
	if ((ad->location = uri_name(url)) == NULL ||
	    !sk_ACCESS_DESCRIPTION_push(aia, ad))
		goto out;
	ad = NULL;
	ok = X509_add1_ext_i2d(x, NID_info_access, aia, 0,
	    X509V3_ADD_DEFAULT) == 1;
 out:
	ACCESS_DESCRIPTION_free(ad);
	AUTHORITY_INFO_ACCESS_free(aia);
	return ok;
}

/*
 * SHA-1 and SHA-256 fetched once: EVP_sha1() and EVP_sha256() make
 * EVP_Digest() fetch the implementation from the provider store (a
 * locked lookup) on every call, that is twice per certificate issued.
 */
static pthread_once_t	 md_once = PTHREAD_ONCE_INIT;
static EVP_MD		*md_sha1, *md_sha256;

static void
md_init(void)
{
	md_sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
	md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	ERR_clear_error();
}

static const EVP_MD *
md_get(bool sha256)
{
	const EVP_MD	*md;

	if (pthread_once(&md_once, md_init) == 0 &&
	    (md = sha256 ? md_sha256 : md_sha1) != NULL)
		return md;
	return sha256 ? EVP_sha256() : EVP_sha1();
}

/* RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
static ASN1_OCTET_STRING *
key_id(const X509_PUBKEY *spki)
{
	const unsigned char	*pk;
	unsigned char		 md[20];
	int			 pklen;
	ASN1_OCTET_STRING	*oct;

	if (!X509_PUBKEY_get0_param(NULL, &pk, &pklen, NULL, spki) ||
	    !EVP_Digest(pk, (size_t)pklen, md, NULL, md_get(false), NULL))
		return NULL;
	if ((oct = ASN1_OCTET_STRING_new()) == NULL)
		return NULL;
	if (!ASN1_OCTET_STRING_set(oct, md, sizeof(md))) {
		ASN1_OCTET_STRING_free(oct);
		return NULL;
	}
	return oct;
}

static int
add_aki(X509 *x, const ASN1_OCTET_STRING *kid)
{
	AUTHORITY_KEYID	*aki = AUTHORITY_KEYID_new();
	int		 ok = 0;

	if (aki == NULL || (aki->keyid = ASN1_OCTET_STRING_dup(kid)) == NULL)
		goto out;
	ok = X509_add1_ext_i2d(x, NID_authority_key_identifier, aki, 0,
	    X509V3_ADD_DEFAULT) == 1;
 out:
	AUTHORITY_KEYID_free(aki);
	return ok;
}

static int
add_extensions(X509 *x, const struct cert_template *t, struct sp_err *err)
{
	ASN1_OCTET_STRING	*ski = NULL;
	const ASN1_OCTET_STRING	*iski;
	BASIC_CONSTRAINTS	*bc = NULL;
	ASN1_BIT_STRING		*ku = NULL;
	EXTENDED_KEY_USAGE	*eku = NULL;
	ASN1_NULL		*nul = NULL;
	int			 r = SP_ERR_CRYPTO;

	if ((bc = BASIC_CONSTRAINTS_new()) == NULL)
		goto fail;
	bc->ca = t->ca ? 0xff : 0;
	if (t->ca && t->path_len >= 0) {
		if ((bc->pathlen = ASN1_INTEGER_new()) == NULL ||
		    !ASN1_INTEGER_set(bc->pathlen, t->path_len))
			goto fail;
	}
	if (X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1,
	    X509V3_ADD_DEFAULT) != 1)
		goto fail;
	if ((ski = key_id(t->spki)) == NULL ||
	    X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0,
	    X509V3_ADD_DEFAULT) != 1)
		goto fail;
	iski = t->issuer != NULL ? X509_get0_subject_key_id(t->issuer) : ski;
	if (iski != NULL && !add_aki(x, iski))
		goto fail;
	if (t->key_usage != 0) {
		if ((ku = ASN1_BIT_STRING_new()) == NULL)
			goto fail;
		for (int bit = 0; bit < 9; bit++)
			if ((t->key_usage & (1u << bit)) &&
			    !ASN1_BIT_STRING_set_bit(ku, bit, 1))
				goto fail;
		if (X509_add1_ext_i2d(x, NID_key_usage, ku,
		    t->key_usage_critical, X509V3_ADD_DEFAULT) != 1)
			goto fail;
	}
	if (t->neku > 0) {
		if ((eku = sk_ASN1_OBJECT_new_null()) == NULL)
			goto fail;
		for (size_t i = 0; i < t->neku; i++)
			if (!sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(t->eku[i])))
				goto fail;
		if (X509_add1_ext_i2d(x, NID_ext_key_usage, eku, 0,
		    X509V3_ADD_DEFAULT) != 1)
			goto fail;
	}
	if (t->sans != NULL && sk_GENERAL_NAME_num(t->sans) > 0 &&
	    X509_add1_ext_i2d(x, NID_subject_alt_name, t->sans,
	    X509_NAME_entry_count(t->subject) == 0, X509V3_ADD_DEFAULT) != 1)
		goto fail;
	if (t->ncrl_dp > 0 && !add_crl_dp(x, t->crl_dp, t->ncrl_dp))
		goto fail;
	if (t->ocsp_url != NULL && !add_ocsp(x, t->ocsp_url))
		goto fail;
	if (t->ocsp_nocheck && ((nul = ASN1_NULL_new()) == NULL ||
	    X509_add1_ext_i2d(x, NID_id_pkix_OCSP_noCheck, nul, 0,
	    X509V3_ADD_DEFAULT) != 1))
		goto fail;
	r = 0;
	goto out;
 fail:
	sp_err_ossl(err, r, "certificate extensions");
 out:
	ASN1_OCTET_STRING_free(ski);
	BASIC_CONSTRAINTS_free(bc);
	ASN1_BIT_STRING_free(ku);
	sk_ASN1_OBJECT_free(eku);	/* objects are static NID objects */
	ASN1_NULL_free(nul);
	return r;
}

int
cert_build(const struct cert_template *t, X509 **out, struct sp_err *err)
{
	X509	*x = NULL;
	int	 r = SP_ERR_CRYPTO;

	*out = NULL;
	if ((x = X509_new()) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	if (!X509_set_version(x, X509_VERSION_3) ||
	    !set_serial(X509_get_serialNumber(x), t->serial, SERIAL_LEN) ||
	    !X509_set_issuer_name(x, t->issuer != NULL ?
	    X509_get_subject_name(t->issuer) : t->subject) ||
	    !X509_set_subject_name(x, t->subject) ||
	    ASN1_TIME_set(X509_getm_notBefore(x), t->not_before) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), t->not_after) == NULL) {
		sp_err_ossl(err, r, "certificate fields");
		goto out;
	}
	if ((r = copy_spki(x, t->spki, err)) != 0 ||
	    (r = add_extensions(x, t, err)) != 0)
		goto out;
	*out = x;
	x = NULL;
	r = 0;
 out:
	X509_free(x);
	return r;
}

int
cert_set_sigalg(X509 *crt, EVP_MD_CTX *md, struct sp_err *err)
{
	EVP_PKEY_CTX		*pctx = EVP_MD_CTX_get_pkey_ctx(md);
	unsigned char		 aid[256];
	const unsigned char	*p = aid;
	X509_ALGOR		*alg = NULL;
	OSSL_PARAM		 params[2];
	int			 ok;

	params[0] = OSSL_PARAM_construct_octet_string(
	    OSSL_SIGNATURE_PARAM_ALGORITHM_ID, aid, sizeof(aid));
	params[1] = OSSL_PARAM_construct_end();
	if (pctx == NULL || !EVP_PKEY_CTX_get_params(pctx, params) ||
	    !OSSL_PARAM_modified(params) || (alg = d2i_X509_ALGOR(NULL, &p,
	    (long)params[0].return_size)) == NULL)
		return sp_err_ossl(err, SP_ERR_CRYPTO, "signature algorithm");
	/*
	 * OpenSSL has no setter for the TBS signature field; the pointer
	 * X509_get0_tbs_sigalg() returns is the field itself, which
	 * X509_sign_ctx() overwrites with the same value when it signs.
	 */
	ok = X509_ALGOR_copy((X509_ALGOR *)(uintptr_t)X509_get0_tbs_sigalg(crt),
	    alg);
	X509_ALGOR_free(alg);
	if (!ok)
		return sp_err_ossl(err, SP_ERR_CRYPTO, "signature algorithm");
	return 0;
}

int
cert_sign(X509 *crt, EVP_MD_CTX *md, struct sp_err *err)
{
	if (X509_sign_ctx(crt, md) <= 0)
		return sp_err_ossl(err, SP_ERR_CRYPTO, "signing certificate");
	return 0;
}

void
cert_fingerprint(const unsigned char *der, size_t len, char out[65])
{
	unsigned char	md[32];

	if (!EVP_Digest(der, len, md, NULL, md_get(true), NULL))
		memset(md, 0, sizeof(md));
	sp_hex_encode(md, sizeof(md), out);
}

static const char *const reason_names[] = {
	"unspecified", "keyCompromise", "cACompromise", "affiliationChanged",
	"superseded", "cessationOfOperation", "certificateHold", NULL,
	"removeFromCRL", "privilegeWithdrawn", "aACompromise",
};
#define NREASONS	(int)(sizeof(reason_names) / sizeof(reason_names[0]))

int
crl_reason_parse(const char *s)
{
	for (int i = 0; i < NREASONS; i++)
		if (reason_names[i] != NULL && strcasecmp(s, reason_names[i]) == 0)
			return i;
	return -1;
}

const char *
crl_reason_name(int reason)
{
	if (reason < 0 || reason >= NREASONS || reason_names[reason] == NULL)
		return "";
	return reason_names[reason];
}

static int
add_revoked(X509_CRL *crl, const struct crl_entry *e)
{
	X509_REVOKED	*rev = X509_REVOKED_new();
	ASN1_INTEGER	*sn = ASN1_INTEGER_new();
	ASN1_TIME	*t = ASN1_TIME_set(NULL, e->revoked_at);
	ASN1_ENUMERATED	*reason = NULL;
	int		 ok = 0;

	if (rev == NULL || sn == NULL || t == NULL ||
	    !set_serial(sn, e->serial, e->serial_len) ||
	    !X509_REVOKED_set_serialNumber(rev, sn) ||
	    !X509_REVOKED_set_revocationDate(rev, t))
		goto out;
	/* RFC 5280 5.3.1: omit the reason rather than use unspecified. */
	if (e->reason > 0) {
		if ((reason = ASN1_ENUMERATED_new()) == NULL ||
		    !ASN1_ENUMERATED_set(reason, e->reason) ||
		    !X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, reason, 0,
		    0))
			goto out;
	}
	if (!X509_CRL_add0_revoked(crl, rev))
		goto out;
	rev = NULL;
	ok = 1;
 out:
	X509_REVOKED_free(rev);
	ASN1_INTEGER_free(sn);
	ASN1_TIME_free(t);
	ASN1_ENUMERATED_free(reason);
	return ok;
}

int
crl_build(X509 *issuer, long long number, time_t this_update,
    time_t next_update, const struct crl_entry *entries, size_t n,
    EVP_MD_CTX *md, unsigned char **out, size_t *outlen, struct sp_err *err)
{
	X509_CRL		*crl = NULL;
	ASN1_TIME		*tu = NULL, *nu = NULL;
	ASN1_INTEGER		*num = NULL;
	AUTHORITY_KEYID		*aki = NULL;
	const ASN1_OCTET_STRING	*ski;
	unsigned char		*der = NULL;
	int			 len, r = SP_ERR_CRYPTO;

	*out = NULL;
	*outlen = 0;
	if ((crl = X509_CRL_new()) == NULL ||
	    !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) ||
	    (tu = ASN1_TIME_set(NULL, this_update)) == NULL ||
	    (nu = ASN1_TIME_set(NULL, next_update)) == NULL ||
	    !X509_CRL_set1_lastUpdate(crl, tu) ||
	    !X509_CRL_set1_nextUpdate(crl, nu))
		goto fail;
	for (size_t i = 0; i < n; i++)
		if (!add_revoked(crl, &entries[i]))
			goto fail;
	if ((num = ASN1_INTEGER_new()) == NULL ||
	    !ASN1_INTEGER_set_int64(num, number) ||
	    !X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0))
		goto fail;
	if ((ski = X509_get0_subject_key_id(issuer)) != NULL) {
		if ((aki = AUTHORITY_KEYID_new()) == NULL ||
		    (aki->keyid = ASN1_OCTET_STRING_dup(ski)) == NULL ||
		    !X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier,
		    aki, 0, 0))
			goto fail;
	}
	if (!X509_CRL_sort(crl) || X509_CRL_sign_ctx(crl, md) <= 0 ||
	    (len = i2d_X509_CRL(crl, &der)) <= 0)
		goto fail;
	*out = der;
	*outlen = (size_t)len;
	r = 0;
	goto out;
 fail:
	sp_err_ossl(err, r, "building CRL");
 out:
	X509_CRL_free(crl);
	ASN1_TIME_free(tu);
	ASN1_TIME_free(nu);
	ASN1_INTEGER_free(num);
	AUTHORITY_KEYID_free(aki);
	return r;
}
