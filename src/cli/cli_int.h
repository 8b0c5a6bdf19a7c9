/*
 * The CLI's command tables: each command maps argv to the arguments of
 * one admin request and says how to print the result. A table per area
 * (cmds_ca.c, cmds_authz.c, cmds_peer.c, cmds_kb.c), each ended by a NULL noun.
 */
#ifndef SP_CLI_CLI_INT_H
#define SP_CLI_CLI_INT_H

#include <stdbool.h>

#define MAX_OPTS	10
#define MAX_POS		3

enum otype {
	O_STR,		/* --flag VALUE -> "key": "VALUE" */
	O_INT,		/* --flag N -> "key": N */
	O_LIST,		/* --flag VALUE, repeatable -> "key": [...] */
	O_BOOL,		/* --flag -> "key": true */
	O_FILE,		/* --flag PATH -> "key": base64 of the file */
	O_PINFILE,	/* --flag PATH -> "key": first line of the file */
};

struct opt {
	const char	*flag;
	const char	*key;
	enum otype	 type;
	bool		 required;
};

enum out {
	OUT_OBJ,	/* key: value lines */
	OUT_TABLE,	/* array of objects as columns */
	OUT_PEM,	/* the "pem" member as is */
	OUT_CERT,	/* "der" as a PEM certificate */
	OUT_CRL,	/* "der" as a PEM CRL, or raw with --der */
	OUT_SHOW,	/* object, then its "pem" */
	OUT_YAML,	/* the document as YAML */
};

struct cmd {
	const char	*noun, *verb, *admin;
	const char	*pos[MAX_POS];	/* JSON keys of positionals; "@key":
					   a file, sent as base64; "?key":
					   optional */
	struct opt	 opts[MAX_OPTS];
	enum out	 out;
	const char	*cols;		/* OUT_TABLE columns, comma separated */
	const char	*usage;
};

extern const struct cmd cli_cmds_ca[];
extern const struct cmd cli_cmds_authz[];
extern const struct cmd cli_cmds_peer[];
extern const struct cmd cli_cmds_kb[];
extern const struct cmd cli_cmds_va[];
extern const struct cmd cli_cmds_pub[];
extern const struct cmd cli_cmds_debug[];	/* SP_TEST_HOOKS builds */

#endif
