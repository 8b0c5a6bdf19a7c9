/*
 * The admin protocol spoken over the node's UNIX socket (DIR/admin.sock):
 * frames of a 4-byte big-endian length followed by that many bytes of JSON.
 *   request:  {"cmd": "ca.create", "args": {...}}
 *   response: {"ok": true, "result": ...}
 *          or {"ok": false, "error": {"code": "...", "message": "..."}}
 * One request at a time per connection; a connection may carry many.
 */
#ifndef SP_ADMIN_PROTO_H
#define SP_ADMIN_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "util/err.h"

#define ADMIN_MAX_MSG		(1024 * 1024)	/* bytes of JSON in a frame */
#define ADMIN_CMD_MAX		64
#define ADMIN_SOCKET		"admin.sock"

/* Frame header value for len bytes (big-endian). */
void	admin_frame_header(size_t len, unsigned char hdr[4]);
/* Length announced by a header; SP_ERR_LIMIT if above ADMIN_MAX_MSG. */
int	admin_frame_length(const unsigned char hdr[4], size_t *len) SP_WUR;

/*
 * Parses and validates a request body: a JSON object with a "cmd" string
 * of [a-z.-] (at most ADMIN_CMD_MAX) and an optional "args" object, and
 * nothing else. *root is the parsed document (caller decrefs); *cmd and
 * *args are borrowed from it (*args is never NULL on success).
 */
int	admin_request_parse(const unsigned char *body, size_t len,
	    json_t **root, const char **cmd, json_t **args,
	    struct sp_err *err) SP_WUR;

/* Response documents (new references). */
json_t	*admin_response_ok(json_t *result);	/* steals result */
json_t	*admin_response_err(int code, const char *message);

/*
 * Client side: connects to sockpath, sends one request (args stolen) and
 * waits for the response. On success *result is the "result" member (new
 * reference). A refusal by the node returns its code (negative) with the
 * message in err; SP_ERR_CONNECT means the node could not be reached (or
 * broke off the exchange).
 */
int	admin_call(const char *sockpath, const char *cmd, json_t *args,
	    json_t **result, struct sp_err *err) SP_WUR;

/* Maps the error code names of responses back to enum sp_rc. */
int	admin_code_parse(const char *name);

#endif
