/*
 * libFuzzer target: the publish bodies (va_pub_parse()). The first byte
 * picks the kind (cas, certs, crls); the rest is the JSON body, whose
 * entries array is parsed entry by entry as the VA does.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/ids.h"
#include "va/va_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[VA_PUB__MAX] = { "cas", "entries",
	    "crls" };
	enum va_pub_kind	 kind;
	json_t			*body, *arr;
	struct va_pub		 p;
	struct sp_err		 err;
	char			 s[ID_SERIAL_HEX_MAX];

	if (size < 1 || size > 1024 * 1024)
		return 0;
	kind = (enum va_pub_kind)(data[0] % VA_PUB__MAX);
	body = json_loadb((const char *)data + 1, size - 1,
	    JSON_REJECT_DUPLICATES, NULL);
	if (body == NULL)
		return 0;
	arr = json_object_get(body, keys[kind]);
	memset(&p, 0, sizeof(p));
	for (size_t i = 0; json_is_array(arr) && i < json_array_size(arr) &&
	    i < 600; i++) {
		memset(&err, 0, sizeof(err));
		if (va_pub_parse(kind, json_array_get(arr, i), &p, &err) == 0) {
			/* What was accepted is in the form the store wants. */
			if (p.ca[0] == '\0' || strlen(p.ca) > 64)
				abort();
			if (kind == VA_PUB_CERT && (id_serial_parse(p.serial,
			    s, &err) != 0 || strcmp(s, p.serial) != 0 ||
			    p.e.seq <= 0 || p.e.status >= VA__STATUS_MAX))
				abort();
			if (kind != VA_PUB_CERT && (p.der == NULL ||
			    p.derlen == 0))
				abort();
		}
		va_pub_clear(&p);
	}
	json_decref(body);
	return 0;
}
