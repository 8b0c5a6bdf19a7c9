/*
 * A node: its directory, configuration, database, services, the event
 * loop with the admin socket, and the worker pool.
 */
#ifndef SP_NODE_NODE_H
#define SP_NODE_NODE_H

#include "util/err.h"

#define NODE_DB_FILE	"sallyport.db"
#define NODE_LOCK_FILE	"sallyport.lock"

/*
 * Creates a node directory: DIR (mode 0700; an existing directory must
 * not hold a configuration yet), the configuration file and the database.
 */
int	node_init(const char *dir, const char *name, const char *peer_listen,
	    const char *va_listen, struct sp_err *err) SP_WUR;

/* Validates DIR's configuration. */
int	node_check(const char *dir, struct sp_err *err) SP_WUR;

/*
 * Runs the node in the foreground until SIGTERM or SIGINT. Refuses to run
 * if another process runs a node on DIR.
 */
int	node_run(const char *dir, struct sp_err *err) SP_WUR;

#endif
