/* libFuzzer target: decoding of peer request bodies (and the ping body). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "peer/peer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t		*body = NULL;
	const char	*nonce = NULL;
	struct sp_err	 err = { 0 };

	if (peer_body_decode(data, size, &body, &err) != 0) {
		if (body != NULL || err.msg[0] == '\0')
			abort();
		return 0;
	}
	if (!json_is_object(body))
		abort();
	if (peer_ping_decode(body, &nonce, &err) == 0 && nonce != NULL) {
		size_t n = strlen(nonce);

		if (n == 0 || n > 64)
			abort();
		for (size_t i = 0; i < n; i++)
			if (nonce[i] < 0x21 || nonce[i] > 0x7e)
				abort();
	}
	json_decref(body);
	return 0;
}
