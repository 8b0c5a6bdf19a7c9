/*
 * The sallyport command line. Node-local commands (init, run, check) act
 * on a directory; everything else is a request to a running node over
 * its admin socket (admin/proto.h). The CLI does not link the node's
 * internals beyond those.
 */
#ifndef SP_CLI_CLI_H
#define SP_CLI_CLI_H

/* Exit codes. */
#define CLI_OK		0
#define CLI_FAILED	1	/* the node refused or failed the request */
#define CLI_USAGE	2	/* bad command line */
#define CLI_UNREACHABLE	3	/* no node answers on the admin socket */

int	cli_main(int argc, char **argv);

#endif
