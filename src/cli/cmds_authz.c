#include <stddef.h>

#include "cli/cli_int.h"

const struct cmd cli_cmds_authz[] = {
	{ NULL },
};
