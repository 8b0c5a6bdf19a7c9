/*
 * The publisher tables: the publishers (which connector, which CAs, what
 * they send) and their outbox, one row per publisher per change, whose id
 * is the update sequence ("seq") the VA keeps.
 */
#include <stddef.h>

#include "store/store.h"

static const char *const pub_migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE publishers (id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE, connector TEXT NOT NULL,"
	"  cas TEXT NOT NULL DEFAULT '',"
	"  only_revoked INTEGER NOT NULL DEFAULT 0,"
	"  no_der INTEGER NOT NULL DEFAULT 0,"
	"  no_crls INTEGER NOT NULL DEFAULT 0,"
	"  delivered INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL);"
	"CREATE TABLE pub_queue (id INTEGER PRIMARY KEY,"
	"  publisher_id INTEGER NOT NULL REFERENCES publishers,"
	"  kind TEXT NOT NULL, ca TEXT NOT NULL, serial TEXT NOT NULL DEFAULT '',"
	"  status TEXT NOT NULL DEFAULT '', revoked_at INTEGER NOT NULL DEFAULT 0,"
	"  reason INTEGER NOT NULL DEFAULT -1,"
	"  not_before INTEGER NOT NULL DEFAULT 0,"
	"  not_after INTEGER NOT NULL DEFAULT 0,"
	"  fingerprint TEXT NOT NULL DEFAULT '', subject TEXT NOT NULL DEFAULT '',"
	"  der BLOB, attempts INTEGER NOT NULL DEFAULT 0,"
	"  next_try INTEGER NOT NULL DEFAULT 0,"
	"  last_error TEXT NOT NULL DEFAULT '', created INTEGER NOT NULL);"
	"CREATE INDEX pub_queue_due ON pub_queue (publisher_id, next_try, id);",
	/*
	 * 1 -> 2: the update sequence the VA keeps comes from a counter, not
	 * from the queue row's id: ids are reused once the queue is empty,
	 * and a reused (lower) sequence would make the VA ignore a change.
	 */
	"CREATE TABLE pub_seq (id INTEGER PRIMARY KEY, next INTEGER NOT NULL);"
	"INSERT INTO pub_seq (id, next) VALUES (1, 1);"
	"ALTER TABLE pub_queue ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;",
	/*
	 * 2 -> 3: certificate synchronization to a VA (sync.c), one task per
	 * connector, and the entries it could not synchronize.
	 */
	"CREATE TABLE sync_tasks (connector TEXT PRIMARY KEY,"
	"  state TEXT NOT NULL, subset TEXT NOT NULL, since INTEGER NOT NULL,"
	"  cas TEXT NOT NULL, batch INTEGER NOT NULL,"
	"  cursor INTEGER NOT NULL DEFAULT 0, total INTEGER NOT NULL DEFAULT 0,"
	"  checked INTEGER NOT NULL DEFAULT 0, pushed INTEGER NOT NULL DEFAULT 0,"
	"  failed INTEGER NOT NULL DEFAULT 0, started INTEGER NOT NULL,"
	"  updated INTEGER NOT NULL, finished INTEGER NOT NULL DEFAULT 0,"
	"  run_started INTEGER NOT NULL, run_checked INTEGER NOT NULL DEFAULT 0,"
	"  last_error TEXT NOT NULL DEFAULT '');"
	"CREATE TABLE sync_failures (id INTEGER PRIMARY KEY,"
	"  connector TEXT NOT NULL, cert_id INTEGER NOT NULL,"
	"  fingerprint TEXT NOT NULL, subject TEXT NOT NULL,"
	"  issuer TEXT NOT NULL, error_type TEXT NOT NULL,"
	"  error_message TEXT NOT NULL, UNIQUE (connector, cert_id));"
	/* Staleness checks: the last result, and the schedule (every > 0). */
	"CREATE TABLE sync_checks (connector TEXT PRIMARY KEY,"
	"  every INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL DEFAULT 0,"
	"  at INTEGER NOT NULL DEFAULT 0, checked INTEGER NOT NULL DEFAULT 0,"
	"  same INTEGER NOT NULL DEFAULT 0, missing INTEGER NOT NULL DEFAULT 0,"
	"  differs INTEGER NOT NULL DEFAULT 0, errors INTEGER NOT NULL DEFAULT 0,"
	"  last_error TEXT NOT NULL DEFAULT '');",
};

const struct store_schema pub_schema = {
	"pub", pub_migrations,
	sizeof(pub_migrations) / sizeof(pub_migrations[0]), 0,
};
