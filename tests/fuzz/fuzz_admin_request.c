/* libFuzzer target: the admin socket's request decoding. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "admin/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t		*root = NULL, *args = NULL;
	const char	*cmd = NULL;
	unsigned char	 hdr[4];
	size_t		 len;

	if (size >= 4) {
		if (admin_frame_length(data, &len) == 0 && len > ADMIN_MAX_MSG)
			abort();
	}
	if (admin_request_parse(data, size, &root, &cmd, &args, NULL) == 0) {
		if (cmd == NULL || args == NULL || !json_is_object(args))
			abort();
		admin_frame_header(size, hdr);
		if (admin_frame_length(hdr, &len) != 0 || len != size)
			abort();
		json_decref(root);
	}
	return 0;
}
