/*
 * The VA's tables: the issuers it answers for, the status of their
 * certificates as the CAs published them, and their latest CRLs.
 */
#include <stddef.h>

#include "store/store.h"

static const char *const va_migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE va_issuers (id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE, subject TEXT NOT NULL,"
	"  fingerprint TEXT NOT NULL, cert BLOB NOT NULL,"
	"  updated INTEGER NOT NULL);"
	"CREATE TABLE va_certs (issuer_id INTEGER NOT NULL"
	"  REFERENCES va_issuers (id), serial TEXT NOT NULL,"
	"  status INTEGER NOT NULL, revoked_at INTEGER NOT NULL,"
	"  reason INTEGER NOT NULL, not_before INTEGER NOT NULL,"
	"  not_after INTEGER NOT NULL, fingerprint TEXT NOT NULL,"
	"  subject TEXT NOT NULL, der BLOB, seq INTEGER NOT NULL,"
	"  updated INTEGER NOT NULL, PRIMARY KEY (issuer_id, serial));"
	"CREATE TABLE va_crls (issuer_id INTEGER NOT NULL PRIMARY KEY"
	"  REFERENCES va_issuers (id), number INTEGER NOT NULL,"
	"  this_update INTEGER NOT NULL, next_update INTEGER NOT NULL,"
	"  der BLOB NOT NULL, received INTEGER NOT NULL);",
	/* 1 -> 2: the CertID hashes (hex) an OCSP request finds it by */
	"ALTER TABLE va_issuers ADD COLUMN name_sha1 TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE va_issuers ADD COLUMN key_sha1 TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE va_issuers ADD COLUMN name_sha256 TEXT NOT NULL"
	"  DEFAULT '';"
	"ALTER TABLE va_issuers ADD COLUMN key_sha256 TEXT NOT NULL"
	"  DEFAULT '';",
};

const struct store_schema va_schema = {
	"va", va_migrations,
	sizeof(va_migrations) / sizeof(va_migrations[0]), 0,
};
