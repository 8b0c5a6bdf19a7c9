#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "crypto/ocsp.h"

/* id-pkix-ocsp-extended-revoke, RFC 6960 4.4.8 */
#define OID_EXTENDED_REVOKE	"1.3.6.1.5.5.7.48.1.9"

static const struct {
	int		nid;
	const char	*name;	/* EVP_get_digestbyname */
	size_t		len;
} hashes[OCSP_HASH__MAX] = {
	[OCSP_HASH_NONE] = { NID_undef, NULL, 0 },
	[OCSP_HASH_SHA1] = { NID_sha1, "SHA1", 20 },
	[OCSP_HASH_SHA256] = { NID_sha256, "SHA256", 32 },
	[OCSP_HASH_SHA384] = { NID_sha384, "SHA384", 48 },
	[OCSP_HASH_SHA512] = { NID_sha512, "SHA512", 64 },
};

static enum ocsp_hash
hash_of(const ASN1_OBJECT *alg)
{
	int	nid = OBJ_obj2nid(alg);

	for (int h = OCSP_HASH_SHA1; h < OCSP_HASH__MAX; h++)
		if (hashes[h].nid == nid)
			return (enum ocsp_hash)h;
	return OCSP_HASH_NONE;
}

void
ocsp_req_free(struct ocsp_req *rq)
{
	if (rq == NULL)
		return;
	OCSP_REQUEST_free(rq->req);
	free(rq);
}

/* The nonce (RFC 8954): an OCTET STRING inside the extension's value. */
static int
get_nonce(struct ocsp_req *rq, struct sp_err *err)
{
	X509_EXTENSION		*ext;
	ASN1_OCTET_STRING	*v, *inner = NULL;
	const unsigned char	*p;
	int			 i, n, r = 0;

	if ((i = OCSP_REQUEST_get_ext_by_NID(rq->req, NID_id_pkix_OCSP_Nonce,
	    -1)) < 0)
		return 0;
	if (OCSP_REQUEST_get_ext_by_NID(rq->req, NID_id_pkix_OCSP_Nonce,
	    i) >= 0)
		return sp_err_set(err, SP_ERR_INVALID, "more than one nonce");
	ext = OCSP_REQUEST_get_ext(rq->req, i);
	v = X509_EXTENSION_get_data(ext);
	p = ASN1_STRING_get0_data(v);
	n = ASN1_STRING_length(v);
	if ((inner = d2i_ASN1_OCTET_STRING(NULL, &p, n)) == NULL ||
	    p != ASN1_STRING_get0_data(v) + n) {
		r = sp_err_set(err, SP_ERR_INVALID, "the nonce is not an "
		    "OCTET STRING");
		goto out;
	}
	n = ASN1_STRING_length(inner);
	if (n < 1 || n > OCSP_NONCE_MAX) {
		r = sp_err_set(err, SP_ERR_INVALID, "the nonce must be 1 to %d "
		    "bytes (RFC 8954), not %d", OCSP_NONCE_MAX, n);
		goto out;
	}
	memcpy(rq->nonce, ASN1_STRING_get0_data(inner), (size_t)n);
	rq->noncelen = (size_t)n;
	rq->has_nonce = true;
 out:
	ASN1_OCTET_STRING_free(inner);
	return r;
}

/* Refuses critical extensions other than the nonce (RFC 5280 4.2). */
static int
check_req_exts(OCSP_REQUEST *req, struct sp_err *err)
{
	int	i = -1;

	while ((i = OCSP_REQUEST_get_ext_by_critical(req, 1, i)) >= 0)
		if (OBJ_obj2nid(X509_EXTENSION_get_object(
		    OCSP_REQUEST_get_ext(req, i))) != NID_id_pkix_OCSP_Nonce)
			return sp_err_set(err, SP_ERR_INVALID, "unknown "
			    "critical extension in the request");
	return 0;
}

static int
get_certid(OCSP_ONEREQ *one, struct ocsp_certid *id, struct sp_err *err)
{
	ASN1_OCTET_STRING	*nh = NULL, *kh = NULL;
	ASN1_OBJECT		*alg = NULL;
	ASN1_INTEGER		*serial = NULL;
	OCSP_CERTID		*cid = OCSP_onereq_get0_id(one);

	if (cid == NULL || !OCSP_id_get0_info(&nh, &alg, &kh, &serial, cid) ||
	    nh == NULL || alg == NULL || kh == NULL || serial == NULL)
		return sp_err_set(err, SP_ERR_INVALID, "incomplete CertID");
	if (id_serial_from_asn1(serial, id->serial) != 0)
		return sp_err_set(err, SP_ERR_INVALID, "serial longer than %d "
		    "bytes", ID_SERIAL_MAX_BYTES);
	id->hash = hash_of(alg);
	if (id->hash == OCSP_HASH_NONE)
		return 0;
	id->hlen = hashes[id->hash].len;
	if ((size_t)ASN1_STRING_length(nh) != id->hlen ||
	    (size_t)ASN1_STRING_length(kh) != id->hlen)
		return sp_err_set(err, SP_ERR_INVALID, "CertID hashes do not "
		    "have the length of %s", hashes[id->hash].name);
	memcpy(id->name_hash, ASN1_STRING_get0_data(nh), id->hlen);
	memcpy(id->key_hash, ASN1_STRING_get0_data(kh), id->hlen);
	return 0;
}

int
ocsp_req_decode(const unsigned char *der, size_t len, struct ocsp_req **out,
    struct sp_err *err)
{
	struct ocsp_req		*rq = NULL;
	const unsigned char	*p = der;
	int			 n, r;

	*out = NULL;
	if (len > OCSP_REQ_MAX_BYTES)
		return sp_err_set(err, SP_ERR_LIMIT, "OCSP request larger "
		    "than %d bytes", OCSP_REQ_MAX_BYTES);
	if (der == NULL || len == 0)
		return sp_err_set(err, SP_ERR_INVALID, "empty OCSP request");
	if ((rq = calloc(1, sizeof(*rq))) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	if ((rq->req = d2i_OCSP_REQUEST(NULL, &p, (long)len)) == NULL) {
		r = sp_err_set(err, SP_ERR_INVALID, "not a DER OCSP request");
		goto fail;
	}
	if (p != der + len) {
		r = sp_err_set(err, SP_ERR_INVALID, "trailing bytes after the "
		    "OCSP request");
		goto fail;
	}
	n = OCSP_request_onereq_count(rq->req);
	if (n < 1) {
		r = sp_err_set(err, SP_ERR_INVALID, "no CertID in the request");
		goto fail;
	}
	if (n > OCSP_REQ_MAX_IDS) {
		r = sp_err_set(err, SP_ERR_INVALID, "more than %d CertIDs in "
		    "one request", OCSP_REQ_MAX_IDS);
		goto fail;
	}
	if ((r = check_req_exts(rq->req, err)) != 0)
		goto fail;
	rq->n = (size_t)n;
	for (int i = 0; i < n; i++) {
		OCSP_ONEREQ	*one = OCSP_request_onereq_get0(rq->req, i);

		if (OCSP_ONEREQ_get_ext_by_critical(one, 1, -1) >= 0) {
			r = sp_err_set(err, SP_ERR_INVALID, "unknown critical "
			    "extension in a CertID's request");
			goto fail;
		}
		if ((r = get_certid(one, &rq->ids[i], err)) != 0)
			goto fail;
	}
	if ((r = get_nonce(rq, err)) != 0)
		goto fail;
	ERR_clear_error();
	*out = rq;
	return 0;
 fail:
	ERR_clear_error();
	ocsp_req_free(rq);
	return r;
}

int
ocsp_issuer_hashes(X509 *issuer, struct ocsp_issuer_hashes *h,
    struct sp_err *err)
{
	const ASN1_BIT_STRING	*key = X509_get0_pubkey_bitstr(issuer);
	unsigned char		*name = NULL;
	int			 nlen, r = 0;

	memset(h, 0, sizeof(*h));
	if (key == NULL || (nlen = i2d_X509_NAME(X509_get_subject_name(issuer),
	    &name)) <= 0)
		return sp_err_ossl(err, SP_ERR_CRYPTO, "encoding the issuer");
	for (int i = OCSP_HASH_SHA1; i < OCSP_HASH__MAX; i++) {
		const EVP_MD	*md = EVP_get_digestbyname(hashes[i].name);

		if (md == NULL ||
		    !EVP_Digest(name, (size_t)nlen, h->name[i], NULL, md,
		    NULL) ||
		    !EVP_Digest(ASN1_STRING_get0_data(key),
		    (size_t)ASN1_STRING_length(key), h->key[i], NULL, md,
		    NULL)) {
			r = sp_err_ossl(err, SP_ERR_CRYPTO, "hashing the "
			    "issuer");
			break;
		}
	}
	OPENSSL_free(name);
	return r;
}

bool
ocsp_certid_matches(const struct ocsp_certid *id,
    const struct ocsp_issuer_hashes *h)
{
	if (id->hash <= OCSP_HASH_NONE || id->hash >= OCSP_HASH__MAX ||
	    id->hlen != hashes[id->hash].len)
		return false;
	return memcmp(id->name_hash, h->name[id->hash], id->hlen) == 0 &&
	    memcmp(id->key_hash, h->key[id->hash], id->hlen) == 0;
}

static int
resp_der(OCSP_RESPONSE *resp, unsigned char **der, size_t *len,
    struct sp_err *err)
{
	unsigned char	*buf = NULL;
	int		 n;

	if ((n = i2d_OCSP_RESPONSE(resp, &buf)) <= 0)
		return sp_err_ossl(err, SP_ERR_CRYPTO, "encoding the OCSP "
		    "response");
	if ((*der = malloc((size_t)n)) == NULL) {
		OPENSSL_free(buf);
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	}
	memcpy(*der, buf, (size_t)n);
	*len = (size_t)n;
	OPENSSL_free(buf);
	return 0;
}

/* The extension says a non-issued serial may be answered revoked. */
static int
add_extended_revoke(OCSP_BASICRESP *bs)
{
	static const unsigned char	 null_der[] = { 0x05, 0x00 };
	ASN1_OBJECT			*obj;
	ASN1_OCTET_STRING		*v = NULL;
	X509_EXTENSION			*ext = NULL;
	int				 ok = 0;

	if ((obj = OBJ_txt2obj(OID_EXTENDED_REVOKE, 1)) == NULL ||
	    (v = ASN1_OCTET_STRING_new()) == NULL ||
	    !ASN1_OCTET_STRING_set(v, null_der, sizeof(null_der)) ||
	    (ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, v)) == NULL)
		goto out;
	ok = OCSP_BASICRESP_add_ext(bs, ext, -1);
 out:
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(v);
	ASN1_OBJECT_free(obj);
	return ok;
}

int
ocsp_resp_sign(const struct ocsp_req *rq, const struct ocsp_single *st,
    const struct ocsp_resp_params *p, X509 *signer, STACK_OF(X509) *extra,
    EVP_MD_CTX *md, unsigned char **der, size_t *len, struct sp_err *err)
{
	OCSP_BASICRESP		*bs = NULL;
	OCSP_RESPONSE		*resp = NULL;
	ASN1_GENERALIZEDTIME	*thisupd = NULL, *nextupd = NULL, *rev = NULL;
	int			 r = SP_ERR_CRYPTO;

	*der = NULL;
	*len = 0;
	if ((bs = OCSP_BASICRESP_new()) == NULL ||
	    (thisupd = ASN1_GENERALIZEDTIME_set(NULL, p->this_update)) == NULL ||
	    (p->next_update != 0 && (nextupd =
	    ASN1_GENERALIZEDTIME_set(NULL, p->next_update)) == NULL)) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < rq->n; i++) {
		OCSP_CERTID	*cid = OCSP_onereq_get0_id(
				    OCSP_request_onereq_get0(rq->req, (int)i));
		int		 status, reason = OCSP_REVOKED_STATUS_NOSTATUS;

		ASN1_GENERALIZEDTIME_free(rev);
		rev = NULL;
		switch (st[i].status) {
		case OCSP_GOOD:
			status = V_OCSP_CERTSTATUS_GOOD;
			break;
		case OCSP_REVOKED:
			status = V_OCSP_CERTSTATUS_REVOKED;
			if (st[i].reason >= 0)
				reason = st[i].reason;
			if ((rev = ASN1_GENERALIZEDTIME_set(NULL,
			    st[i].revoked_at)) == NULL) {
				r = sp_err_set(err, SP_ERR_ALLOC, "out of "
				    "memory");
				goto out;
			}
			break;
		default:
			status = V_OCSP_CERTSTATUS_UNKNOWN;
			break;
		}
		if (OCSP_basic_add1_status(bs, cid, status, reason, rev,
		    thisupd, nextupd) == NULL) {
			r = sp_err_ossl(err, SP_ERR_CRYPTO, "adding a status");
			goto out;
		}
	}
	if (rq->has_nonce && OCSP_copy_nonce(bs, rq->req) != 1) {
		r = sp_err_ossl(err, SP_ERR_CRYPTO, "echoing the nonce");
		goto out;
	}
	if (p->extended_revoke && !add_extended_revoke(bs)) {
		r = sp_err_ossl(err, SP_ERR_CRYPTO, "adding the extended "
		    "revoked definition");
		goto out;
	}
	if (!OCSP_basic_sign_ctx(bs, signer, md, extra, OCSP_RESPID_KEY)) {
		r = sp_err_ossl(err, SP_ERR_CRYPTO, "signing the OCSP "
		    "response");
		goto out;
	}
	if ((resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL,
	    bs)) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}
	r = resp_der(resp, der, len, err);
 out:
	ERR_clear_error();
	ASN1_GENERALIZEDTIME_free(rev);
	ASN1_GENERALIZEDTIME_free(thisupd);
	ASN1_GENERALIZEDTIME_free(nextupd);
	OCSP_RESPONSE_free(resp);
	OCSP_BASICRESP_free(bs);
	return r;
}

int
ocsp_resp_error(int status, unsigned char **der, size_t *len,
    struct sp_err *err)
{
	OCSP_RESPONSE	*resp;
	int		 r;

	*der = NULL;
	*len = 0;
	switch (status) {
	case OCSP_RESPONSE_STATUS_MALFORMEDREQUEST:
	case OCSP_RESPONSE_STATUS_INTERNALERROR:
	case OCSP_RESPONSE_STATUS_TRYLATER:
	case OCSP_RESPONSE_STATUS_SIGREQUIRED:
	case OCSP_RESPONSE_STATUS_UNAUTHORIZED:
		break;
	default:
		return sp_err_set(err, SP_ERR_INTERNAL, "not an OCSP error "
		    "status: %d", status);
	}
	if ((resp = OCSP_response_create(status, NULL)) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	r = resp_der(resp, der, len, err);
	OCSP_RESPONSE_free(resp);
	return r;
}
