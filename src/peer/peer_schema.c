/*
 * The peer layer's tables: outgoing connectors and the list of incoming
 * connections (which authz/ reads and writes today).
 */
#include <stddef.h>

#include "store/store.h"

static const char *const peer_migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE incoming (id INTEGER PRIMARY KEY,"
	"  fingerprint TEXT NOT NULL UNIQUE, subject TEXT NOT NULL,"
	"  issuer TEXT NOT NULL, serial TEXT NOT NULL, address TEXT NOT NULL,"
	"  first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,"
	"  count INTEGER NOT NULL, role TEXT NOT NULL DEFAULT '');"
	"CREATE TABLE connectors (id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE, url TEXT NOT NULL,"
	"  enabled INTEGER NOT NULL, auth TEXT NOT NULL,"
	"  max_conns INTEGER NOT NULL, created INTEGER NOT NULL);",
};

const struct store_schema peer_schema = {
	"peer", peer_migrations,
	sizeof(peer_migrations) / sizeof(peer_migrations[0]), 1,
};
