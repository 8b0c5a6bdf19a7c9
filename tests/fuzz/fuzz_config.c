/* libFuzzer target: the bootstrap configuration file parser. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char	 path[64];
	struct config	 c;
	struct sp_err	 err = { 0 };
	FILE		*f;

	if (path[0] == '\0')
		snprintf(path, sizeof(path), "/tmp/fuzz_config.%d", (int)getpid());
	if ((f = fopen(path, "w")) == NULL)
		return 0;
	fwrite(data, 1, size, f);
	fclose(f);
	if (config_load(path, &c, &err) == 0) {
		/* Accepted configs satisfy every invariant. */
		if (c.name[0] == '\0' || c.database[0] != '/' ||
		    c.workers < 1 || c.workers > 64)
			abort();
	} else if (err.msg[0] == '\0')
		abort();
	return 0;
}
