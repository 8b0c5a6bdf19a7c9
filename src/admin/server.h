/*
 * The admin socket: DIR/admin.sock, mode 0600, only the node's own user
 * (or root) may connect (SO_PEERCRED). Requests are framed JSON
 * (admin/proto.h); each runs on the worker pool through the handler table
 * (admin/handlers.h), and its response is written back on the loop.
 */
#ifndef SP_ADMIN_SERVER_H
#define SP_ADMIN_SERVER_H

#include <event2/event.h>

#include "admin/handlers.h"
#include "net/pool.h"
#include "util/err.h"

struct admin_server;

int	admin_server_start(struct event_base *base, struct pool *pool,
	    const char *sockpath, struct admin_ctx *ctx,
	    struct admin_server **out, struct sp_err *err) SP_WUR;
/* Stops accepting and drops every connection. Call after pool_free(). */
void	admin_server_free(struct admin_server *srv);

#endif
