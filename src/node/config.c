#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <ini.h>

#include "node/config.h"
#include "util/util.h"

enum ckey {
	CK_NAME, CK_LOG_LEVEL, CK_DATABASE, CK_WORKERS, CK_PEER_LISTEN,
	CK_PEER_INCOMING_MAX, CK_CA_CRL_KEEP, CK_PEER_MAX_CONN,
	CK_PEER_MAX_CONN_ADDR, CK_PEER_HANDSHAKE_TIMEOUT, CK_PEER_HEAD_TIMEOUT,
	CK_PEER_IDLE_TIMEOUT, CK_VA_LISTEN, CK_VA_LOOPS,
	CK__MAX
};

/* One row per directive: the table is the documentation's source. */
static const struct {
	const char	*section;
	const char	*name;
	bool		 required;
} ckeys[CK__MAX] = {
	[CK_NAME] = { "node", "name", true },
	[CK_LOG_LEVEL] = { "node", "log_level", false },
	[CK_DATABASE] = { "node", "database", true },
	[CK_WORKERS] = { "node", "workers", false },
	[CK_PEER_LISTEN] = { "peer", "listen", false },
	[CK_PEER_INCOMING_MAX] = { "peer", "incoming_max", false },
	[CK_CA_CRL_KEEP] = { "ca", "crl_keep", false },
	[CK_PEER_MAX_CONN] = { "peer", "max_connections", false },
	[CK_PEER_MAX_CONN_ADDR] = { "peer", "max_connections_per_address",
	    false },
	[CK_PEER_HANDSHAKE_TIMEOUT] = { "peer", "handshake_timeout", false },
	[CK_PEER_HEAD_TIMEOUT] = { "peer", "head_timeout", false },
	[CK_PEER_IDLE_TIMEOUT] = { "peer", "idle_timeout", false },
	[CK_VA_LISTEN] = { "va", "listen", false },
	[CK_VA_LOOPS] = { "va", "loops", false },
};

/* Integer keys: their bounds and where they go. */
static const struct {
	int		 key;
	long long	 min, max;
	size_t		 off;
} ikeys[] = {
	{ CK_PEER_MAX_CONN, 1, 1000000,
	    offsetof(struct config, max_connections) },
	{ CK_PEER_MAX_CONN_ADDR, 1, 1000000,
	    offsetof(struct config, max_connections_per_address) },
	{ CK_PEER_HANDSHAKE_TIMEOUT, 1, 300,
	    offsetof(struct config, handshake_timeout) },
	{ CK_PEER_HEAD_TIMEOUT, 1, 300,
	    offsetof(struct config, head_timeout) },
	{ CK_PEER_IDLE_TIMEOUT, 1, 3600,
	    offsetof(struct config, idle_timeout) },
	{ CK_VA_LOOPS, 1, 8, offsetof(struct config, va_loops) },
};

struct parse {
	struct config	*c;
	FILE		*f;
	int		 line;		/* lines read so far */
	int		 errline;	/* line of msg, 0 if none */
	bool		 seen[CK__MAX];
	char		 msg[sizeof(((struct sp_err *)0)->msg)];
};

/*
 * fgets for inih that counts lines, so errors name the right one, and
 * checks section headers: inih tells the handler only about keys, so an
 * unknown section with no keys would pass unnoticed.
 */
static char *
reader(char *buf, int size, void *arg)
{
	struct parse	*ps = arg;
	char		*r = fgets(buf, size, ps->f), *p, *end;
	size_t		 n;
	bool		 known = false;

	if (r == NULL)
		return NULL;
	ps->line++;
	p = buf + strspn(buf, " \t");
	if (*p != '[' || ps->errline != 0 || (end = strchr(p, ']')) == NULL)
		return r;
	p++;
	n = (size_t)(end - p);
	for (int k = 0; k < CK__MAX; k++)
		if (strlen(ckeys[k].section) == n &&
		    strncmp(ckeys[k].section, p, n) == 0)
			known = true;
	if (!known) {
		ps->errline = ps->line;
		snprintf(ps->msg, sizeof(ps->msg), "unknown section [%.*s]",
		    (int)(n > 64 ? 64 : n), p);
	}
	return r;
}

static int	on_key1(struct parse *, const char *, const char *,
		    const char *);

/* inih calls this per key; returning 0 makes ini_parse report the line. */
static int
on_key(void *user, const char *section, const char *name, const char *value)
{
	struct parse	*ps = user;

	if (ps->errline != 0)
		return 0;	/* keep the first error's message */
	if (on_key1(ps, section, name, value) == 1)
		return 1;
	ps->errline = ps->line;
	return 0;
}

static int
on_key1(struct parse *ps, const char *section, const char *name,
    const char *value)
{
	struct config	*c = ps->c;
	const char	*errstr;
	long long	 n;
	int		 k, lvl;

	for (k = 0; k < CK__MAX; k++)
		if (strcmp(ckeys[k].section, section) == 0 &&
		    strcmp(ckeys[k].name, name) == 0)
			break;
	if (k == CK__MAX) {
		snprintf(ps->msg, sizeof(ps->msg), "unknown key \"%s\" in "
		    "section [%s]", name, section);
		return 0;
	}
	if (ps->seen[k]) {
		snprintf(ps->msg, sizeof(ps->msg), "duplicate key \"%s\"",
		    name);
		return 0;
	}
	ps->seen[k] = true;
	for (size_t i = 0; i < sizeof(ikeys) / sizeof(ikeys[0]); i++) {
		if (ikeys[i].key != k)
			continue;
		if (sp_strtonum(value, ikeys[i].min, ikeys[i].max, &n,
		    &errstr) != 0) {
			snprintf(ps->msg, sizeof(ps->msg), "%s is %s (%lld..%lld)",
			    name, errstr, ikeys[i].min, ikeys[i].max);
			return 0;
		}
		*(int *)(void *)((char *)c + ikeys[i].off) = (int)n;
		return 1;
	}
	switch (k) {
	case CK_NAME:
		if (!sp_name_valid(value, CONFIG_NAME_MAX)) {
			snprintf(ps->msg, sizeof(ps->msg), "name must be 1 to "
			    "%d characters of [A-Za-z0-9_.-], not \".\" or "
			    "\"..\"", CONFIG_NAME_MAX);
			return 0;
		}
		snprintf(c->name, sizeof(c->name), "%s", value);
		break;
	case CK_LOG_LEVEL:
		if ((lvl = log_level_parse(value)) < 0) {
			snprintf(ps->msg, sizeof(ps->msg), "log_level must be "
			    "error, warn, info or debug");
			return 0;
		}
		c->log_level = lvl;
		break;
	case CK_DATABASE:
		if (value[0] != '/' || strlen(value) >= sizeof(c->database)) {
			snprintf(ps->msg, sizeof(ps->msg), "database must be "
			    "an absolute path");
			return 0;
		}
		snprintf(c->database, sizeof(c->database), "%s", value);
		break;
	case CK_WORKERS:
		if (sp_strtonum(value, 1, 64, &n, &errstr) != 0) {
			snprintf(ps->msg, sizeof(ps->msg), "workers is %s "
			    "(1..64)", errstr);
			return 0;
		}
		c->workers = (int)n;
		break;
	case CK_PEER_INCOMING_MAX:
		if (sp_strtonum(value, 10, 10000000, &n, &errstr) != 0) {
			snprintf(ps->msg, sizeof(ps->msg), "incoming_max is %s "
			    "(10..10000000)", errstr);
			return 0;
		}
		c->incoming_max = n;
		break;
	case CK_CA_CRL_KEEP:
		if (sp_strtonum(value, 1, 100000, &n, &errstr) != 0) {
			snprintf(ps->msg, sizeof(ps->msg), "crl_keep is %s "
			    "(1..100000)", errstr);
			return 0;
		}
		c->crl_keep = n;
		break;
	case CK_PEER_LISTEN: {
		struct sp_err e = { 0 };

		if (config_listen_valid(value, &e) != 0) {
			memcpy(ps->msg, e.msg, sizeof(ps->msg));
			return 0;
		}
		snprintf(c->peer_listen, sizeof(c->peer_listen), "%s", value);
		break;
	}
	case CK_VA_LISTEN: {
		struct sp_err e = { 0 };

		if (config_listen_valid(value, &e) != 0) {
			memcpy(ps->msg, e.msg, sizeof(ps->msg));
			return 0;
		}
		snprintf(c->va_listen, sizeof(c->va_listen), "%s", value);
		break;
	}
	}
	return 1;
}

int
config_load(const char *path, struct config *c, struct sp_err *err)
{
	struct parse	 ps = { .c = c };
	int		 line;

	memset(c, 0, sizeof(*c));
	c->log_level = LOG_LVL_INFO;
	c->workers = 2;
	if ((ps.f = fopen(path, "r")) == NULL)
		return sp_err_set(err, SP_ERR_IO, "%s: cannot open: %m", path);
	line = ini_parse_stream(reader, &ps, on_key, &ps);
	fclose(ps.f);
	/* The first problem wins, whether inih or we found it. */
	if (ps.errline > 0 && (line <= 0 || ps.errline < line))
		return sp_err_set(err, SP_ERR_INVALID, "%s:%d: %s", path,
		    ps.errline, ps.msg);
	if (line > 0)
		return sp_err_set(err, SP_ERR_INVALID, "%s:%d: %s", path, line,
		    line == ps.errline ? ps.msg : "syntax error");
	if (line < 0)
		return sp_err_set(err, SP_ERR_IO, "%s: read error", path);
	for (int k = 0; k < CK__MAX; k++)
		if (ckeys[k].required && !ps.seen[k])
			return sp_err_set(err, SP_ERR_INVALID, "%s: missing "
			    "required key \"%s\" in [%s]", path, ckeys[k].name,
			    ckeys[k].section);
	return 0;
}

int
config_listen_valid(const char *s, struct sp_err *err)
{
	const char	*colon = strrchr(s, ':'), *errstr;
	long long	 port;
	size_t		 hl;

	if (colon == NULL || (hl = (size_t)(colon - s)) == 0 || hl > 64 ||
	    sp_strtonum(colon + 1, 0, 65535, &port, &errstr) != 0)
		return sp_err_set(err, SP_ERR_INVALID, "listen address must "
		    "be HOST:PORT (port 0..65535)");
	for (size_t i = 0; i < hl; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' &&
		    s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		    strchr(".-:[]", s[i]) != NULL))
			return sp_err_set(err, SP_ERR_INVALID, "listen host "
			    "has a bad character");
	return 0;
}

int
config_write_new(const char *path, const char *name, const char *database,
    const char *peer_listen, const char *va_listen, struct sp_err *err)
{
	char	buf[PATH_MAX + 1024], peer[160] = "", va[160] = "";
	int	n;

	if (peer_listen != NULL)
		snprintf(peer, sizeof(peer), "\n[peer]\n# TLS listener for "
		    "peer requests (off until `peer incoming enable`)\n"
		    "listen = %s\n", peer_listen);
	if (va_listen != NULL)
		snprintf(va, sizeof(va), "\n[va]\n# plain HTTP listener for "
		    "OCSP and CRL clients\nlisten = %s\n", va_listen);

	n = snprintf(buf, sizeof(buf),
	    "# Sallyport node configuration. Everything else lives in the\n"
	    "# database and is managed with the sallyport CLI.\n"
	    "[node]\n"
	    "name = %s\n"
	    "# error, warn, info or debug\n"
	    "log_level = info\n"
	    "database = %s\n"
	    "# threads for signing and database work\n"
	    "workers = 2\n%s%s", name, database, peer, va);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return sp_err_set(err, SP_ERR_INVALID, "path too long");
	return sp_file_write(path, buf, (size_t)n, 0600, err);
}
