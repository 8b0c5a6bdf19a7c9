/* Roles: who they are given to, and what they allow. */
#include <stddef.h>

#include "store/store.h"

static const char *const authz_migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE roles (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
	"  created INTEGER NOT NULL);"
	"CREATE TABLE role_members (role_id INTEGER NOT NULL REFERENCES roles"
	"  ON DELETE CASCADE, match TEXT NOT NULL, value TEXT NOT NULL,"
	"  issuer TEXT NOT NULL DEFAULT '',"
	"  PRIMARY KEY (role_id, match, value, issuer));"
	"CREATE TABLE role_rules (role_id INTEGER NOT NULL REFERENCES roles"
	"  ON DELETE CASCADE, path TEXT NOT NULL, allow INTEGER NOT NULL,"
	"  recursive INTEGER NOT NULL, PRIMARY KEY (role_id, path));",
	/*
	 * 1 -> 2: which presets created a rule ("va,renewal"; "" once an
	 * operator set it), so role show can tell a preset's rules apart.
	 */
	"ALTER TABLE role_rules ADD COLUMN preset TEXT NOT NULL DEFAULT '';",
};

const struct store_schema authz_schema = {
	"authz", authz_migrations,
	sizeof(authz_migrations) / sizeof(authz_migrations[0]), 1,
};
