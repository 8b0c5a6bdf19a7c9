/*
 * libFuzzer target for csr_decode(), the CSR decoder of the issuance
 * hot path (crypto/csr.c), as a differential against csr_parse(): both
 * must accept or refuse the input alike (same code, same message up to
 * OpenSSL's reason), and when they accept, give the same subject, public
 * key bits and requested extensions. An accepted request then goes
 * through profile_check_csr() against every built-in profile and, where
 * a profile accepts it, cert_build() and cert_sign() from the decoded
 * fields, as the CA does.
 *
 * Seed corpus: tests/fuzz/corpus/csr_fast/.
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
static EVP_MD_CTX	*proto;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct sp_err	 err = { 0 };
	EVP_PKEY	*ca_key;

	(void)argc;
	(void)argv;
	log_init(LOG_LVL_ERROR);
	nprofs = profile_builtin_count();
	if (nprofs > sizeof(profs) / sizeof(profs[0]))
		abort();
	for (size_t i = 0; i < nprofs; i++)
		if (profile_builtin(i, &profs[i], &err) != 0)
			abort();
	if ((ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL ||
	    (proto = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit_ex(proto, NULL, "SHA256", NULL, NULL, ca_key,
	    NULL) != 1)
		abort();
	EVP_PKEY_free(ca_key);
	return 0;
}

/* Length of msg without OpenSSL's reason (": error:..." or " failed"). */
static size_t
msg_core(const char *msg)
{
	const char	*e = strstr(msg, ": error:");
	size_t		 n = e != NULL ? (size_t)(e - msg) : strlen(msg);

	if (n > 7 && memcmp(msg + n - 7, " failed", 7) == 0)
		n -= 7;
	return n;
}

static void
same_der(const unsigned char *a, int alen, const unsigned char *b, int blen)
{
	if (alen != blen || alen < 0 || memcmp(a, b, (size_t)alen) != 0)
		abort();
}

static void
compare(X509_REQ *req, const struct csr *c)
{
	STACK_OF(X509_EXTENSION)	*e1, *e2;
	unsigned char			*d1 = NULL, *d2 = NULL;
	const unsigned char		*b1, *b2;
	int				 l1, l2;

	l1 = i2d_X509_NAME(X509_REQ_get_subject_name(req), &d1);
	l2 = i2d_X509_NAME(csr_get0_subject(c), &d2);
	same_der(d1, l1, d2, l2);
	OPENSSL_free(d1);
	OPENSSL_free(d2);
	d1 = d2 = NULL;
	if (!X509_PUBKEY_get0_param(NULL, &b1, &l1, NULL,
	    X509_REQ_get_X509_PUBKEY(req)) ||
	    !X509_PUBKEY_get0_param(NULL, &b2, &l2, NULL, csr_get0_spki(c)))
		abort();
	same_der(b1, l1, b2, l2);
	if (EVP_PKEY_eq(X509_REQ_get0_pubkey(req), csr_get0_pubkey(c)) != 1)
		abort();
	e1 = X509_REQ_get_extensions(req);
	e2 = csr_get_extensions(c);
	if ((e1 == NULL) != (e2 == NULL))
		abort();
	if (e1 != NULL) {
		l1 = ASN1_item_i2d((ASN1_VALUE *)e1, &d1,
		    ASN1_ITEM_rptr(X509_EXTENSIONS));
		l2 = ASN1_item_i2d((ASN1_VALUE *)e2, &d2,
		    ASN1_ITEM_rptr(X509_EXTENSIONS));
		same_der(d1, l1, d2, l2);
	}
	OPENSSL_free(d1);
	OPENSSL_free(d2);
	sk_X509_EXTENSION_pop_free(e1, X509_EXTENSION_free);
	sk_X509_EXTENSION_pop_free(e2, X509_EXTENSION_free);
	ERR_clear_error();
}

/* Builds and signs the certificate a CA would make for c. */
static void
build(const struct profile *p, const struct csr *c, GENERAL_NAMES *sans)
{
	static const unsigned char	 serial[SERIAL_LEN] = { 0x42 };
	struct cert_template		 t;
	struct sp_err			 err = { 0 };
	X509				*x = NULL;
	EVP_MD_CTX			*md = EVP_MD_CTX_new();
	unsigned char			*der = NULL;

	if (md == NULL || !EVP_MD_CTX_copy_ex(md, proto))
		abort();
	memset(&t, 0, sizeof(t));
	t.serial = serial;
	t.subject = csr_get0_subject(c);
	t.spki = csr_get0_spki(c);
	t.not_before = 1700000000;
	t.not_after = 1700000000 + 86400;
	t.key_usage = p->key_usage;
	t.key_usage_critical = p->key_usage_critical;
	t.eku = p->eku;
	t.neku = p->neku;
	t.ca = p->ca;
	t.path_len = p->path_len;
	t.sans = sans;
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
	struct sp_err	 e1 = { 0 }, e2 = { 0 };
	X509_REQ	*req = NULL;
	struct csr	*c = NULL;
	int		 r1, r2;
	size_t		 n1, n2;

	r1 = csr_parse(data, size, &req, &e1);
	r2 = csr_decode(data, size, &c, &e2);
	if (r1 != r2 || ERR_peek_error() != 0)
		abort();
	if (r1 != 0) {
		n1 = msg_core(e1.msg);
		n2 = msg_core(e2.msg);
		if (req != NULL || c != NULL || e2.msg[0] == '\0' || n1 != n2 ||
		    memcmp(e1.msg, e2.msg, n1) != 0)
			abort();
		return 0;
	}
	compare(req, c);
	X509_REQ_free(req);
	for (size_t i = 0; i < nprofs; i++) {
		GENERAL_NAMES	*sans = NULL;
		struct sp_err	 perr = { 0 };

		if (profile_check_csr(profs[i], c, 0, &sans, &perr) == 0)
			build(profs[i], c, sans);
		else if (sans != NULL || perr.msg[0] == '\0')
			abort();
		GENERAL_NAMES_free(sans);
	}
	csr_free(c);
	ERR_clear_error();
	return 0;
}
