/*
 * The admin commands: one table row per command, each a function that
 * runs on a worker thread with validated arguments.
 */
#ifndef SP_ADMIN_HANDLERS_H
#define SP_ADMIN_HANDLERS_H

#include <stdbool.h>
#include <time.h>

#include <jansson.h>

#include "ca/ca.h"
#include "token/token.h"

struct authz;
struct kb_service;
struct peer;
struct pub;
struct event_base;
struct pool;

/* What handlers may use; owned by the node. */
struct admin_ctx {
	struct ca_service	*ca;
	struct tokens		*tokens;	/* crypto tokens and keys */
	struct store		*st;
	struct authz		*authz;		/* roles and access rules */
	struct kb_service	*kb;		/* key bindings and trust */
	struct peer		*peer;		/* peer listener, connectors */
	struct va		*va;		/* validation authority */
	struct pub		*pub;		/* publishers (pub/pub.h) */
	struct event_base	*base;		/* the loop */
	struct pool		*pool;		/* the workers */
	const char		*name;		/* node name */
	const char		*dir;
	time_t			 started;
};

/*
 * A command runs on a worker thread (fn) and returns its result or a
 * code with err set; or, for commands that wait on network I/O, on the
 * loop thread (async): it must call reply exactly once, later or right
 * away, with a response document (admin_response_ok/err, stolen).
 */
typedef int	admin_handler_fn(struct admin_ctx *ctx, json_t *args,
		    const char *actor, json_t **out, struct sp_err *err);
typedef void	admin_reply_fn(void *cookie, json_t *response);
typedef void	admin_async_fn(struct admin_ctx *ctx, json_t *args,
		    const char *actor, admin_reply_fn *reply, void *cookie);

struct admin_handler {
	const char	*cmd;
	admin_handler_fn *fn;
	admin_async_fn	*async;
};

/* The command tables, each ended by a NULL cmd. */
extern const struct admin_handler admin_handlers_ca[];	  /* handlers.c */
extern const struct admin_handler admin_handlers_authz[]; /* handlers_authz.c */
extern const struct admin_handler admin_handlers_peer[];  /* handlers_peer.c */
extern const struct admin_handler admin_handlers_kb[];	  /* handlers_kb.c */
extern const struct admin_handler admin_handlers_va[];	  /* handlers_va.c */
extern const struct admin_handler admin_handlers_pub[];	  /* handlers_pub.c */
/* Test hooks: empty unless built with SP_TEST_HOOKS (handlers_debug.c). */
extern const struct admin_handler admin_handlers_debug[];

/* The row for cmd, or NULL. */
const struct admin_handler *admin_handler_find(const char *cmd);

/*
 * Runs a worker-thread command and returns the response document (new
 * reference, never NULL unless out of memory).
 */
json_t	*admin_dispatch(struct admin_ctx *ctx, const struct admin_handler *h,
	    json_t *args, const char *actor);

#endif
