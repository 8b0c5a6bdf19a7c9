/*
 * The CA service's tables (and the crypto tokens' until the token service
 * has a directory of its own: the module name, not the file, is what the
 * database records, so the schema can move with the code).
 */
#include <stddef.h>

#include "store/store.h"

static const char *const token_migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE tokens (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
	"  verifier TEXT NOT NULL, created INTEGER NOT NULL);"
	"CREATE TABLE token_keys (token_id INTEGER NOT NULL REFERENCES tokens,"
	"  alias TEXT NOT NULL, alg INTEGER NOT NULL, wrapped BLOB NOT NULL,"
	"  spki BLOB NOT NULL, created INTEGER NOT NULL,"
	"  PRIMARY KEY (token_id, alias));",
};

const struct store_schema token_schema = {
	"token", token_migrations,
	sizeof(token_migrations) / sizeof(token_migrations[0]), 1,
};

static const char *const ca_migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE cas (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
	"  subject TEXT NOT NULL, token TEXT NOT NULL, key_alias TEXT NOT NULL,"
	"  issuer_id INTEGER REFERENCES cas, cert BLOB NOT NULL,"
	"  crl_period INTEGER NOT NULL, crl_number INTEGER NOT NULL,"
	"  next_crl INTEGER NOT NULL, created INTEGER NOT NULL);"
	"CREATE TABLE profiles (name TEXT PRIMARY KEY, json TEXT NOT NULL,"
	"  builtin INTEGER NOT NULL);"
	"CREATE TABLE certs (id INTEGER PRIMARY KEY,"
	"  ca_id INTEGER NOT NULL REFERENCES cas, serial TEXT NOT NULL,"
	"  status INTEGER NOT NULL, subject TEXT NOT NULL, profile TEXT NOT NULL,"
	"  not_before INTEGER NOT NULL, not_after INTEGER NOT NULL,"
	"  revoked_at INTEGER NOT NULL DEFAULT 0,"
	"  reason INTEGER NOT NULL DEFAULT -1,"
	"  fingerprint TEXT NOT NULL DEFAULT '', der BLOB NOT NULL,"
	"  created INTEGER NOT NULL, UNIQUE (ca_id, serial));"
	"CREATE INDEX certs_status ON certs (ca_id, status);"
	"CREATE TABLE crls (ca_id INTEGER NOT NULL REFERENCES cas,"
	"  number INTEGER NOT NULL, this_update INTEGER NOT NULL,"
	"  next_update INTEGER NOT NULL, der BLOB NOT NULL,"
	"  PRIMARY KEY (ca_id, number));",
};

const struct store_schema ca_schema = {
	"ca", ca_migrations, sizeof(ca_migrations) / sizeof(ca_migrations[0]),
	1,
};
