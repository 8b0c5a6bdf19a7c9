/*
 * libFuzzer target for what an EST client sends the RA (RFC 7030 4.2.1):
 * est_b64_decode() on the body and, if it decodes, csr_parse() and
 * csr_get_sans() on the DER, as the simpleenroll handler does before it
 * queues a request.
 *
 * Seed corpus: tests/fuzz/corpus/est_body/ (base64 CSRs as curl sends
 * them, with and without line breaks).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto/est.h"
#include "crypto/x509.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sp_err	 err = { 0 };
	unsigned char	*der = NULL;
	size_t		 len;
	X509_REQ	*req = NULL;
	GENERAL_NAMES	*sans = NULL;

	if (est_b64_decode((const char *)data, size, &der, &len, &err) != 0)
		return 0;
	if (csr_parse(der, len, &req, &err) == 0) {
		if (csr_get_sans(req, &sans, &err) == 0)
			GENERAL_NAMES_free(sans);
		X509_REQ_free(req);
	}
	free(der);
	ERR_clear_error();
	return 0;
}
