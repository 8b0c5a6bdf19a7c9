/*
 * The peer protocol transport (DESIGN.md section 5): the incoming side
 * (a TLS listener that requires client certificates, records who
 * connects, authorizes every request through authz_check() and serves the
 * /peer/v1/ endpoints) and the outgoing side (Peer Connectors: pools of
 * keep-alive mutually authenticated TLS connections with session
 * resumption, ping and reset).
 *
 * Everything here runs on the event loop thread, except where noted.
 * Identities and trust come from the node through hooks, so this layer
 * does not know about key bindings or tokens.
 */
#ifndef SP_PEER_PEER_H
#define SP_PEER_PEER_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/x509.h>

#include "authz/authz.h"
#include "net/pool.h"
#include "store/store.h"
#include "util/err.h"

#define PEER_PREFIX		"/peer/v1"
#define PEER_MAX_BODY		(1024 * 1024)	/* request/response bodies */
#define PEER_MAX_HEADERS	(16 * 1024)
#define PEER_TIMEOUT		10		/* seconds: slow clients */
#define PEER_REQUEST_DEADLINE	20		/* seconds: a whole response */
#define PEER_AUTHZ_CACHE_TTL	60		/* seconds */
#define PEER_CONNECTOR_MAX	64		/* connections per pool */
#define PEER_NAME_MAX		64
#define PEER_URL_MAX		512

/* Listener bounds (defaults of struct peer_limits). */
#define PEER_MAX_CONNECTIONS	1024	/* concurrent, per listener */
#define PEER_MAX_PER_ADDRESS	64	/* concurrent, per client address */
#define PEER_HANDSHAKE_TIMEOUT	10	/* seconds: the whole TLS handshake */
#define PEER_HEAD_TIMEOUT	10	/* seconds: the whole request head */
#define PEER_NOROLE_TIMEOUT	2	/* seconds: a head from a role-less peer */
#define PEER_NOROLE_MAX_BODY	4096	/* bytes: a body from a role-less peer */
#define PEER_ACCEPT_PAUSE_MS	250	/* accept() failed: pause the listener */

/* Where the node's TLS identities and trust anchors come from. */
struct peer_hooks {
	void	*arg;
	/* New references to a key binding's certificate, chain and key. */
	int	(*identity)(void *arg, const char *keybinding, X509 **cert,
		    STACK_OF(X509) **chain, EVP_PKEY **key, struct sp_err *err);
	/* A new store with the trusted peer CAs. */
	int	(*trust)(void *arg, X509_STORE **out, struct sp_err *err);
	/* Changes whenever an identity or the trust anchors change. */
	uint64_t (*generation)(void *arg);
};

struct peer;

/*
 * Sets up the peer service. listen is "HOST:PORT" (NULL: no listener,
 * outgoing only). Connectors and settings are loaded from the store.
 * Incoming-connection records are written on pool (which must outlive
 * the loop's use of it: free the pool before peer_free()).
 */
int	peer_new(struct event_base *base, struct pool *pool, struct store *st,
	    struct authz *az, const struct peer_hooks *hooks,
	    const char *node_name, const char *listen, struct peer **out,
	    struct sp_err *err) SP_WUR;
void	peer_free(struct peer *p);

/* The address actually bound ("127.0.0.1:4443"), "" without listener. */
const char *peer_listen_address(const struct peer *p);

/* The listener's resource bounds; 0 in a field keeps its default. */
struct peer_limits {
	int	max_connections;	/* PEER_MAX_CONNECTIONS */
	int	max_per_address;	/* PEER_MAX_PER_ADDRESS */
	int	handshake_timeout;	/* PEER_HANDSHAKE_TIMEOUT */
	int	head_timeout;		/* PEER_HEAD_TIMEOUT */
	int	idle_timeout;		/* PEER_TIMEOUT: keep-alive, slow I/O */
};
/* Applies to connections accepted from now on. */
void	peer_set_limits(struct peer *p, const struct peer_limits *l);

/* --- endpoint registry (listener, loop thread) ---------------------------
 *
 * Every request the listener serves goes through one table of endpoints
 * (DESIGN.md section 5). Before a handler runs, the listener has checked
 * the client certificate (still valid, still trusted), the framing and
 * line ends, the base rule "/peerincoming" (at the end of the TLS
 * handshake, before any byte of HTTP is read: a peer without it is held to
 * PEER_NOROLE_MAX_BODY and PEER_NOROLE_TIMEOUT), the method, the
 * endpoint's rules (static, and those derived from the path) and its body
 * limit (both already when the head arrived, so a body the endpoint does
 * not take is never read), and has decoded the body (a JSON object, or
 * none). Handlers that touch the database defer, hand the work to the
 * worker pool, and reply from its completion on the loop; their cancel
 * function tells the completion to drop the request.
 */
#define PEER_GET		0x01
#define PEER_POST		0x02
#define PEER_PUT		0x04
#define PEER_ENDPOINTS_MAX	64
#define PEER_PARAMS_MAX		4	/* wildcards in one path */
#define PEER_RULES_MAX		8	/* derived rules of one request */
#define PEER_RULE_MAX		192	/* bytes of one derived rule */

struct peer_req;

/*
 * Serves one request. It either replies before it returns
 * (peer_reply()), or calls peer_req_defer() and replies later on the loop
 * thread. Returning with neither done is a bug: the listener answers 500.
 */
typedef void peer_handler_fn(struct peer_req *r, void *arg);

/*
 * Rules derived from the request: writes up to PEER_RULES_MAX rules into
 * rules[] and returns how many, or a negative code with err set (the
 * client gets 400 with err's message). Called twice: when the request
 * head has arrived, with peer_req_body() NULL (the path's parameters
 * only; a function that needs the body fails then, which only leaves the
 * body limit as it is), and after the body is decoded, before the handler
 * runs; the second call decides.
 */
typedef int peer_rules_fn(const struct peer_req *r, void *arg,
    char rules[PEER_RULES_MAX][PEER_RULE_MAX], struct sp_err *err);

struct peer_endpoint {
	int			 methods;	/* PEER_GET | PEER_POST ... */
	/*
	 * Below PEER_PREFIX, segments separated by '/': "/ping"; a segment
	 * "*" matches one name of [A-Za-z0-9_.-] ("/keybindings/ * /csr",
	 * without the spaces); a last segment "**" matches the rest of the
	 * path, one segment or more (a prefix route). Each wildcard's match
	 * is a parameter, in order.
	 */
	const char		*path;
	const char *const	*rules;		/* NULL-terminated, or NULL */
	peer_rules_fn		*derive;	/* or NULL */
	size_t			 max_body;	/* bytes, <= PEER_MAX_BODY */
	peer_handler_fn		*handler;
	void			*arg;
};

/*
 * Adds a row (copied; path, rules and arg must outlive the listener).
 * Refuses a malformed path, a row that matches the same requests as an
 * earlier one, and more than PEER_ENDPOINTS_MAX rows. Rows are tried in
 * the order added. Works with or without a listener.
 */
int	peer_endpoint_add(struct peer *p, const struct peer_endpoint *ep,
	    struct sp_err *err) SP_WUR;

/* The request, for handlers and rule functions (valid until replied). */
int		 peer_req_method(const struct peer_req *r);	/* PEER_GET */
const char	*peer_req_path(const struct peer_req *r);
/* The i-th wildcard's match, or NULL. */
const char	*peer_req_param(const struct peer_req *r, size_t i);
/* The decoded body (a JSON object, borrowed), NULL without a body. */
json_t		*peer_req_body(const struct peer_req *r);
X509		*peer_req_cert(const struct peer_req *r);	/* borrowed */
const char	*peer_req_role(const struct peer_req *r);
const char	*peer_req_client(const struct peer_req *r);	/* HOST:PORT */
const char	*peer_req_node(const struct peer_req *r);	/* our name */

/* Answers with a JSON document (stolen; NULL: no body) and ends r. */
void	peer_reply(struct peer_req *r, int status, json_t *doc);
/* {"error":{"code","message"}} with status; ends r. */
void	peer_reply_error(struct peer_req *r, int status, const char *code,
	    const char *msg);

enum peer_cancel {
	PEER_CANCEL_TIMEOUT,	/* r is still valid: cancel may reply */
	PEER_CANCEL_GONE,	/* the client went away: no reply possible */
	PEER_CANCEL__MAX
};
/*
 * Called at most once, instead of the reply, for a deferred request:
 * after timeout_ms (cancel may reply, e.g. 204; if it does not, the client
 * gets 503 "timeout"), or when the client closed its connection. r is
 * freed when cancel returns: drop every reference to it.
 */
typedef void peer_cancel_fn(struct peer_req *r, enum peer_cancel why,
    void *arg);
/* The handler answers later; within timeout_ms (1..3600000). */
int	peer_req_defer(struct peer_req *r, int timeout_ms,
	    peer_cancel_fn *cancel, void *arg) SP_WUR;

/* --- admin (loop thread) ------------------------------------------------ *
 *
 * Each change below has two forms. The plain one does its database write
 * inline (for tests and tools); the _async one, which the admin commands
 * use, validates on the loop, writes on a worker thread (the loop never
 * waits for a commit) and applies the change to memory back on the loop,
 * then calls done exactly once (never from inside the call if it returned
 * 0). Writes run one at a time in the order asked, so memory and the
 * database agree. A refusal before anything is queued is returned.
 */
typedef void peer_done_fn(void *arg, int rc, const struct sp_err *err);

/* {"listen","incoming_enabled","incoming_keybinding","outgoing_enabled"} */
json_t	*peer_status(struct peer *p);
int	peer_set_incoming(struct peer *p, bool enabled, const char *actor,
	    struct sp_err *err) SP_WUR;
/* Chooses the listener's server identity; takes effect for new
 * connections without a restart. */
int	peer_set_incoming_keybinding(struct peer *p, const char *kb,
	    const char *actor, struct sp_err *err) SP_WUR;
int	peer_set_outgoing(struct peer *p, bool enabled, const char *actor,
	    struct sp_err *err) SP_WUR;
int	peer_set_incoming_async(struct peer *p, bool enabled,
	    const char *actor, peer_done_fn *done, void *arg,
	    struct sp_err *err) SP_WUR;
int	peer_set_incoming_keybinding_async(struct peer *p, const char *kb,
	    const char *actor, peer_done_fn *done, void *arg,
	    struct sp_err *err) SP_WUR;
int	peer_set_outgoing_async(struct peer *p, bool enabled,
	    const char *actor, peer_done_fn *done, void *arg,
	    struct sp_err *err) SP_WUR;

struct peer_connector_conf {
	const char	*name;
	const char	*url;		/* https://host:port/peer/v1 */
	const char	*auth;		/* key binding */
	int		 max;		/* 0: keep / default 4 */
	int		 enabled;	/* -1: keep */
};

int	peer_connector_add(struct peer *p, const struct peer_connector_conf *c,
	    const char *actor, struct sp_err *err) SP_WUR;
/* Changes the given fields (NULL/0/-1 keep); resets the pool. */
int	peer_connector_edit(struct peer *p, const struct peer_connector_conf *c,
	    const char *actor, struct sp_err *err) SP_WUR;
int	peer_connector_clone(struct peer *p, const char *from, const char *to,
	    const char *actor, struct sp_err *err) SP_WUR;
int	peer_connector_delete(struct peer *p, const char *name,
	    const char *actor, struct sp_err *err) SP_WUR;
int	peer_connector_add_async(struct peer *p,
	    const struct peer_connector_conf *c, const char *actor,
	    peer_done_fn *done, void *arg, struct sp_err *err) SP_WUR;
int	peer_connector_edit_async(struct peer *p,
	    const struct peer_connector_conf *c, const char *actor,
	    peer_done_fn *done, void *arg, struct sp_err *err) SP_WUR;
int	peer_connector_clone_async(struct peer *p, const char *from,
	    const char *to, const char *actor, peer_done_fn *done, void *arg,
	    struct sp_err *err) SP_WUR;
int	peer_connector_delete_async(struct peer *p, const char *name,
	    const char *actor, peer_done_fn *done, void *arg,
	    struct sp_err *err) SP_WUR;
/* [{"name","url","state","auth","in_use","ready","max","queued",
 *   "tls_peer"}] */
json_t	*peer_connector_list(struct peer *p);
/* Drops the pool and the TLS context: the authenticator is re-read. */
int	peer_connector_reset(struct peer *p, const char *name,
	    struct sp_err *err) SP_WUR;

/* --- requests through a connector (loop thread) --------------------------
 *
 * Each connector has two lanes, each with connections and a queue of its
 * own: ordinary requests (at most the connector's "max" connections,
 * PEER_REQUEST_DEADLINE by default) and long-hanging calls (the RA's
 * ra/next: PEER_LONG_CONNS connections, PEER_LONG_DEADLINE by default).
 * A request only ever uses its lane's connections, so however many long
 * calls hang, ordinary requests find the connections they had.
 */
#define PEER_QUEUE_MAX		1024	/* requests waiting, per lane */
#define PEER_LONG_CONNS		8	/* connections of the long lane */
#define PEER_LONG_DEADLINE	60	/* seconds: a long call's response */
#define PEER_TIMEOUT_MAX_MS	(300 * 1000)	/* a request's timeout */
#define PEER_PATH_MAX		255	/* below PEER_PREFIX */

enum peer_lane {
	PEER_LANE_NORMAL,
	PEER_LANE_LONG,
	PEER_LANE__MAX
};

/* Why a request failed; PEER_REQ_OK for a 2xx reply. */
enum peer_req_error {
	PEER_REQ_OK,
	PEER_REQ_TRANSPORT,	/* connect refused, connection cut */
	PEER_REQ_TIMEOUT,	/* no complete response within the timeout */
	PEER_REQ_TLS,		/* handshake failed (server certificate, or
				 * the server refused ours) */
	PEER_REQ_HTTP,		/* the peer answered with a non-2xx status */
	PEER_REQ_BAD_REPLY,	/* malformed reply: a 2xx body that is not a
				 * JSON object, oversized, bad framing */
	PEER_REQ_QUEUE_FULL,	/* the lane's queue is full */
	PEER_REQ_STATE,		/* connector disabled, reset or deleted, or
				 * outgoing connections disabled */
	PEER_REQ__MAX
};

/* "ok", "transport", "timeout", "tls", "http", "bad reply", ... */
const char *peer_req_error_str(enum peer_req_error e);
/*
 * The outcome a refusal by peer_connector_request() stands for, for a
 * caller that handles refusals and completions alike: SP_ERR_LIMIT is
 * PEER_REQ_QUEUE_FULL, SP_ERR_STATE and SP_ERR_NOTFOUND PEER_REQ_STATE,
 * 0 PEER_REQ_OK, anything else PEER_REQ_TRANSPORT.
 */
enum peer_req_error peer_req_refusal(int rc);

struct peer_request {
	const char	*method;	/* "GET", "POST", "PUT" or "DELETE" */
	const char	*path;		/* below PEER_PREFIX: "/ping" */
	const json_t	*body;		/* borrowed, serialised at once; NULL */
	int		 timeout_ms;	/* whole response; 0: the lane's */
	enum peer_lane	 lane;
};

struct peer_response {
	enum peer_req_error	 error;
	int			 status;	/* HTTP status; 0 if none */
	const json_t		*body;		/* the reply's JSON object
						 * or NULL; borrowed */
	const char		*connection;	/* "full", "resumed", "reused",
						 * "none" (never sent) */
	const struct sp_err	*err;		/* why, if error != OK */
};

/* Runs exactly once per accepted request, on the loop thread. */
typedef void peer_request_done(void *arg, const struct peer_response *res);

/*
 * Sends a request through connector name. Returns 0 if it was accepted:
 * done(arg, res) then runs once on the loop, never from inside this call.
 * Otherwise done is never called and the error says why, at once:
 * SP_ERR_NOTFOUND (no such connector), SP_ERR_STATE (connector disabled,
 * being reset, outgoing disabled), SP_ERR_LIMIT (the lane's queue holds
 * its maximum: fails fast rather than queueing without bound),
 * SP_ERR_INVALID (method, path of [A-Za-z0-9_./-] below PEER_PREFIX,
 * timeout 0..PEER_TIMEOUT_MAX_MS, lane), SP_ERR_ALLOC. Requests that were
 * accepted and then meet a reset, an edit or a deletion of the connector
 * complete with PEER_REQ_STATE.
 */
int	peer_connector_request(struct peer *p, const char *name,
	    const struct peer_request *rq, peer_request_done *done, void *arg,
	    struct sp_err *err) SP_WUR;

struct peer_lane_stats {
	int	in_use;		/* connections with a request in flight */
	int	ready;		/* idle keep-alive connections */
	int	max;		/* connections at most */
	int	queued;		/* requests waiting for a connection */
	int	queue_max;
};
int	peer_connector_lane_stats(struct peer *p, const char *name,
	    enum peer_lane lane, struct peer_lane_stats *out,
	    struct sp_err *err) SP_WUR;
/*
 * Sets a lane's limits until the node restarts (0 keeps a value):
 * connections 1..PEER_CONNECTOR_MAX (the normal lane's is the
 * connector's stored max: change that with peer_connector_edit()) and
 * queue 1..PEER_QUEUE_MAX. Connections beyond a lowered max close once
 * idle.
 */
int	peer_connector_lane_set(struct peer *p, const char *name,
	    enum peer_lane lane, int max_conns, int queue_max,
	    struct sp_err *err) SP_WUR;

/*
 * Pings through a connector: count requests, at most parallel at a time,
 * through peer_connector_request(). done(arg, result, rc, err) runs once
 * on the loop with a result object (stolen) or a failure.
 */
typedef void peer_ping_done(void *arg, json_t *result, int rc,
    const struct sp_err *err);
void	peer_ping(struct peer *p, const char *name, int count, int parallel,
	    peer_ping_done *done, void *arg);

/*
 * Checks and decodes a JSON request body of at most PEER_MAX_BODY bytes:
 * it must be a JSON object. Exposed for the fuzz target.
 */
int	peer_body_decode(const unsigned char *body, size_t len, json_t **out,
	    struct sp_err *err) SP_WUR;
/* The ping body: {"nonce": string of 1..64 printable characters}. */
int	peer_ping_decode(const json_t *body, const char **nonce,
	    struct sp_err *err) SP_WUR;

/* --- incoming connections (peer/incoming.c) ----------------------------- */

/*
 * The names keep their authz_ prefix (they moved from authz/, callers
 * did not change) and take the authz whose store and roles they use.
 */
#define AUTHZ_ADDRESS_MAX	255	/* characters of an incoming address */
#define AUTHZ_INCOMING_LIST_MAX	1000	/* rows authz_incoming_list() shows */
#define AUTHZ_INCOMING_MAX	10000	/* rows kept: the oldest seen go */

/*
 * Records a verified client certificate seen by the peer listener: one
 * upsert keyed by the certificate's fingerprint, keeping first_seen and
 * setting subject, issuer, serial, address (at most AUTHZ_ADDRESS_MAX
 * characters), last_seen, count + 1 and the matched role (NULL or "" if
 * none, as authz_check() reported it). The table is capped: beyond
 * AUTHZ_INCOMING_MAX rows the least recently seen are deleted (checked
 * every few records), logged with the count, which the settings row
 * "authz.incoming_dropped" accumulates. In tx (NULL: its own statements).
 */
int	authz_incoming_record(struct authz *a, struct store_txn *tx,
	    X509 *cert, const char *address, const char *role,
	    struct sp_err *err) SP_WUR;
/* The row cap (AUTHZ_INCOMING_MAX if max <= 0), for the whole process. */
void	authz_set_incoming_max(struct authz *a, int64_t max);

/*
 * [{"id", "subject", "issuer", "serial", "fingerprint", "address",
 *   "first_seen", "last_seen", "count", "role"}], most recently seen
 * first, at most AUTHZ_INCOMING_LIST_MAX rows; times ISO 8601; role ""
 * if none matched or the role is gone. NULL if the store or memory
 * failed.
 */
json_t	*authz_incoming_list(struct authz *a);

/*
 * Gives incoming connection id a role through authz_grant(), in one
 * audited transaction ("incoming.authorize"): new_role, preset, role and
 * match as there. The incoming row's role is set too. *out is the role as
 * authz_role_show() gives it. SP_ERR_NOTFOUND for an unknown id or role,
 * SP_ERR_EXISTS if new_role is taken or the certificate is already a
 * member that way.
 */
int	authz_incoming_authorize(struct authz *a, int64_t id,
	    const char *new_role, const char *preset, const char *role,
	    const char *match, const char *actor, json_t **out,
	    struct sp_err *err) SP_WUR;

#endif
