#include <stdio.h>

#include "cli/cli.h"
#include "util/util.h"

int
main(int argc, char **argv)
{
	struct sp_err	err = { 0 };

	/* Before anything holds a PIN or a key: no core, no ptrace (S5). */
	if (sp_harden_process(&err) != 0) {
		fprintf(stderr, "sallyport: %s\n", err.msg);
		return 1;
	}
	return cli_main(argc, argv);
}
