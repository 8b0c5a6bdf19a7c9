/* Key bindings, the peer trust store and trusted peer CAs' CRLs. */
#include <stddef.h>

#include "store/store.h"

static const char *const kb_migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE keybindings (id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE, type TEXT NOT NULL, token TEXT NOT NULL,"
	"  key_alias TEXT NOT NULL, cert BLOB, chain BLOB,"
	"  created INTEGER NOT NULL);"
	"CREATE TABLE trust (fingerprint TEXT PRIMARY KEY, subject TEXT NOT NULL,"
	"  cert BLOB NOT NULL, added INTEGER NOT NULL);"
	/* CRLs of trusted peer CAs (revoked peers are refused). */
	"CREATE TABLE trust_crls (issuer TEXT PRIMARY KEY,"
	"  number INTEGER NOT NULL, this_update INTEGER NOT NULL,"
	"  next_update INTEGER NOT NULL, der BLOB NOT NULL,"
	"  added INTEGER NOT NULL);",
};

const struct store_schema kb_schema = {
	"kb", kb_migrations, sizeof(kb_migrations) / sizeof(kb_migrations[0]),
	1,
};
