/*
 * libFuzzer target for what an OCSP client sends the VA: ocsp_req_decode()
 * on the input and, if it decodes, the matching of every CertID against
 * an issuer and a signed response answering each of them (good, revoked,
 * unknown in turn), as the responder does.
 *
 * Seed corpus: tests/fuzz/corpus/ocsp_req/ (requests made by openssl
 * ocsp, with and without nonces, SHA-1 and SHA-256 CertIDs).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "crypto/ocsp.h"

int	LLVMFuzzerInitialize(int *argc, char ***argv);
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Made once; reachable until exit, so not a leak. */
static EVP_PKEY			*key;
static X509			*issuer;
static struct ocsp_issuer_hashes hashes;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct sp_err	 err = { 0 };
	X509_NAME	*n;

	(void)argc;
	(void)argv;
	if ((key = EVP_EC_gen("P-256")) == NULL ||
	    (issuer = X509_new()) == NULL || (n = X509_NAME_new()) == NULL)
		abort();
	if (!X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
	    (const unsigned char *)"fuzz CA", -1, -1, 0) ||
	    !X509_set_subject_name(issuer, n) ||
	    !X509_set_issuer_name(issuer, n) ||
	    !X509_gmtime_adj(X509_getm_notBefore(issuer), 0) ||
	    !X509_gmtime_adj(X509_getm_notAfter(issuer), 3600) ||
	    !X509_set_pubkey(issuer, key) ||
	    !X509_sign(issuer, key, EVP_sha256()) ||
	    ocsp_issuer_hashes(issuer, &hashes, &err) != 0)
		abort();
	X509_NAME_free(n);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sp_err		 err = { 0 };
	struct ocsp_req		*rq = NULL;
	struct ocsp_single	 st[OCSP_REQ_MAX_IDS];
	struct ocsp_resp_params	 p = { 1700000000, 1700003600, false };
	unsigned char		*der = NULL;
	size_t			 len;
	EVP_MD_CTX		*md;

	if (ocsp_req_decode(data, size, &rq, &err) != 0)
		return 0;
	for (size_t i = 0; i < rq->n; i++) {
		st[i].status = ocsp_certid_matches(&rq->ids[i], &hashes) ?
		    (enum ocsp_status)(i % 3) : OCSP_UNKNOWN;
		st[i].revoked_at = 1600000000;
		st[i].reason = (int)(i % 11) - 1;
		if (strlen(rq->ids[i].serial) == 0)
			abort();
	}
	p.extended_revoke = rq->n % 2 == 0;
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    !EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key))
		abort();
	if (ocsp_resp_sign(rq, st, &p, issuer, NULL, md, &der, &len,
	    &err) == 0)
		free(der);
	EVP_MD_CTX_free(md);
	ocsp_req_free(rq);
	ERR_clear_error();
	return 0;
}
