/*
 * The bootstrap configuration file DIR/sallyport.conf (INI). Strict:
 * unknown sections or keys, duplicates, relative paths and bad values are
 * errors reported as "FILE:LINE: message".
 */
#ifndef SP_NODE_CONFIG_H
#define SP_NODE_CONFIG_H

#include <limits.h>

#include "util/err.h"
#include "util/log.h"

#define CONFIG_FILE		"sallyport.conf"
#define CONFIG_NAME_MAX		64

struct config {
	char		name[CONFIG_NAME_MAX + 1];
	enum log_level	log_level;
	char		database[PATH_MAX];
	int		workers;
	char		peer_listen[80];	/* HOST:PORT, "" for none */
	char		va_listen[80];	/* VA's OCSP/CRL HTTP, "" for none */
	int		va_loops;	/* its event loops, 0: one per core */
	long long	incoming_max;	/* incoming rows kept, 0: default */
	long long	crl_keep;	/* CRLs kept per CA, 0: default */
	/* peer listener bounds, 0: default (peer.h) */
	int		max_connections;
	int		max_connections_per_address;
	int		handshake_timeout;	/* seconds */
	int		head_timeout;		/* seconds */
	int		idle_timeout;		/* seconds */
};

/* Parses path into *c (defaults first). */
int	config_load(const char *path, struct config *c, struct sp_err *err)
	    SP_WUR;

/* Writes a fresh configuration file for a new node (mode 0600). */
int	config_write_new(const char *path, const char *name,
	    const char *database, const char *peer_listen, const char *va_listen,
	    struct sp_err *err)
	    SP_WUR;

/* Checks a HOST:PORT listen address (IPv6 hosts in brackets). */
int	config_listen_valid(const char *s, struct sp_err *err) SP_WUR;

#endif
