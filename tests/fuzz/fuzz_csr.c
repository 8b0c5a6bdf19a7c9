/*
 * libFuzzer target for the CSR path a client controls: csr_parse() on the
 * input and, if it parses, profile_check() against every built-in
 * profile; a request that a profile accepts also goes through
 * cert_build(), cert_set_sigalg(), the encoding of the to-be-signed
 * certificate and cert_sign(), as the CA does, since the public key and
 * subjectAltName are copied from the request.
 *
 * Seed corpus: tests/fuzz/corpus/csr/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca/profile.h"
#include "crypto/x509.h"
#include "util/log.h"

int	LLVMFuzzerInitialize(int *argc, char ***argv);
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Loaded once; reachable until exit, so not a leak. */
static struct profile	*profs[16];
static size_t		 nprofs;
static EVP_PKEY		*ca_key;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct sp_err	err = { 0 };

	(void)argc;
	(void)argv;
	log_init(LOG_LVL_ERROR);
	nprofs = profile_builtin_count();
	if (nprofs > sizeof(profs) / sizeof(profs[0]))
		abort();
	for (size_t i = 0; i < nprofs; i++)
		if (profile_builtin(i, &profs[i], &err) != 0)
			abort();
	if ((ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL)
		abort();
	return 0;
}

/* Builds and signs the certificate a CA would make for req. */
static void
build(const struct profile *p, X509_REQ *req, GENERAL_NAMES *sans)
{
	static const unsigned char	 serial[SERIAL_LEN] = { 0x42 };
	struct cert_template		 t;
	struct sp_err			 err = { 0 };
	X509				*x = NULL;
	EVP_MD_CTX			*md = EVP_MD_CTX_new();
	unsigned char			*der = NULL;

	if (md == NULL || EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL,
	    NULL, ca_key, NULL) != 1)
		abort();
	memset(&t, 0, sizeof(t));
	t.serial = serial;
	t.subject = X509_REQ_get_subject_name(req);
	t.spki = X509_REQ_get_X509_PUBKEY(req);
	t.not_before = 1700000000;
	t.not_after = 1700000000 + 86400;
	t.key_usage = p->key_usage;
	t.key_usage_critical = p->key_usage_critical;
	t.eku = p->eku;
	t.neku = p->neku;
	t.ca = p->ca;
	t.path_len = p->path_len;
	t.sans = sans;
	/* What passed the profile must make a certificate. */
	if (cert_build(&t, &x, &err) != 0 ||
	    cert_set_sigalg(x, md, &err) != 0 ||
	    i2d_re_X509_tbs(x, &der) <= 0 ||
	    cert_sign(x, md, &err) != 0)
		abort();
	OPENSSL_free(der);
	X509_free(x);
	EVP_MD_CTX_free(md);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sp_err	 err = { 0 };
	X509_REQ	*req = NULL;

	if (csr_parse(data, size, &req, &err) != 0) {
		/* Rejections always say why. */
		if (req != NULL || err.code == 0 || err.msg[0] == '\0')
			abort();
		return 0;
	}
	for (size_t i = 0; i < nprofs; i++) {
		GENERAL_NAMES	*sans = NULL;
		struct sp_err	 perr = { 0 };

		if (profile_check(profs[i], req, 0, &sans, &perr) == 0)
			build(profs[i], req, sans);
		else if (sans != NULL || perr.msg[0] == '\0')
			abort();
		GENERAL_NAMES_free(sans);
	}
	X509_REQ_free(req);
	ERR_clear_error();
	return 0;
}
