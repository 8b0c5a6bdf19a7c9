/*
 * libFuzzer target for the path of an OCSP GET request (RFC 6960 A.1):
 * va_get_decode() (URL decoding, then base64) on the input as the tail
 * after "/ocsp/", and ocsp_req_decode() on what it yields, as the
 * responder does.
 *
 * Seed corpus: tests/fuzz/corpus/ocsp_get/ (GET paths of requests made by
 * openssl ocsp, URL-encoded as clients send them, and broken ones).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "crypto/ocsp.h"
#include "va/va_int.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sp_err	 err = { 0 };
	struct ocsp_req	*rq = NULL;
	unsigned char	*der = NULL;
	size_t		 len = 0;
	char		*tail;

	if (size > VA_GET_MAX + 16 || (tail = malloc(size + 1)) == NULL)
		return 0;
	memcpy(tail, data, size);
	tail[size] = '\0';
	if (va_get_decode(tail, &der, &len) == 0) {
		if (len > OCSP_REQ_MAX_BYTES)
			abort();	/* the decoder's bound */
		if (ocsp_req_decode(der, len, &rq, &err) == 0)
			ocsp_req_free(rq);
	}
	free(der);
	free(tail);
	ERR_clear_error();
	return 0;
}
