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

/* What handlers may use; owned by the node. */
struct admin_ctx {
	struct ca_service	*ca;
	const char		*name;		/* node name */
	const char		*dir;
	time_t			 started;
};

/*
 * Runs cmd with args for actor and returns the response document (new
 * reference, never NULL unless out of memory).
 */
json_t	*admin_dispatch(struct admin_ctx *ctx, const char *cmd,
	    json_t *args, const char *actor);

#endif
