/* Test hooks (SP_TEST_HOOKS builds only; see admin/handlers_debug.c). */
#include <stddef.h>

#include "cli/cli_int.h"

const struct cmd cli_cmds_debug[] = {
#ifdef SP_TEST_HOOKS
	{ "debug", "clock", "debug.clock", { NULL },
	  { { "--advance", "advance", O_INT, false },
	  { "--offset", "offset", O_INT, false } }, OUT_OBJ, NULL,
	  "debug clock [--advance SECONDS | --offset SECONDS]\n"
	  "  Test builds only: moves the node's clock by SECONDS (or to an "
	  "offset\n  from the real time) and shows it." },
#endif
	{ NULL },
};
