/*
 * Shared inside the peer module (listener.c, connector.c, peer.c).
 */
#ifndef SP_PEER_PEER_INT_H
#define SP_PEER_PEER_INT_H

#include <sys/queue.h>

#include <stdbool.h>
#include <stdint.h>

#include <event2/http.h>
#include <openssl/ssl.h>

#include "peer/peer.h"

#define AUTHZ_CACHE_SIZE	256
#define INCOMING_BATCH_MAX	1024

struct authz_entry {
	char		fp[65];
	int		route;
	bool		ok;
	char		role[65];
	char		msg[256];
	time_t		expires;
	uint64_t	gen;
};

struct incoming_rec {
	X509		*cert;
	char		 address[64];
	char		 role[65];
};

struct connector;
TAILQ_HEAD(connector_list, connector);
struct listener;
struct registry;

struct peer {
	struct event_base	*base;
	struct store		*st;
	struct authz		*az;
	struct pool		*pool;		/* database writes, off the loop */
	struct peer_hooks	 hooks;
	char			 node[PEER_NAME_MAX + 1];

	/* settings */
	bool			 incoming_enabled;
	bool			 outgoing_enabled;
	char			 incoming_kb[PEER_NAME_MAX + 1];

	/* listener */
	struct evhttp		*http;
	char			 listen[80];
	SSL_CTX			*srv_ctx;	/* NULL until an identity works */
	SSL_CTX			*refuse_ctx;	/* no certificate: fails closed */
	uint64_t		 srv_gen;
	bool			 srv_dirty;
	time_t			 srv_retry;	/* next attempt after a failure */
	struct authz_entry	 cache[AUTHZ_CACHE_SIZE];
	size_t			 cache_next;
	struct incoming_rec	 recs[INCOMING_BATCH_MAX];
	size_t			 nrecs;
	struct event		*ev_flush;
	time_t			 last_flush;
	struct listener		*lst;		/* connections (listener.c) */
	struct registry		*reg;		/* endpoints (registry.c) */

	/* connectors */
	struct connector_list	 connectors;
};

/* peer.c */
int	peer_setting_put(struct peer *p, const char *key, const char *value,
	    const char *actor, struct sp_err *err) SP_WUR;
int	peer_fingerprint(X509 *x, char out[65]) SP_WUR;

/* listener.c */
void	nodelay(evutil_socket_t fd);
int	listener_start(struct peer *p, const char *listen, struct sp_err *err)
	    SP_WUR;
void	listener_stop(struct peer *p);

/* registry.c: the endpoint table and the requests being served */
struct lconn;
struct peer_req {
	struct peer		*p;
	struct lconn		*conn;		/* NULL once the client left */
	struct evhttp_request	*req;		/* NULL in unit harnesses */
	const struct peer_endpoint *ep;
	int			 method;
	char			 path[PEER_URL_MAX + 1];
	const char		*params[PEER_PARAMS_MAX];
	char			 pbuf[PEER_URL_MAX + PEER_PARAMS_MAX + 1];
	json_t			*body;
	X509			*cert;		/* a reference of our own */
	char			 role[65];
	char			 client[80];
	bool			 deferred;
	bool			 listed;	/* on conn's list */
	bool			 done;		/* replied or cancelled */
	struct event		*timer;		/* deferred: its deadline */
	peer_cancel_fn		*cancel;
	void			*cancel_arg;
	TAILQ_ENTRY(peer_req)	 entry;		/* the connection's deferred */
};
TAILQ_HEAD(peer_req_list, peer_req);

/*
 * Finds the row for path (below PEER_PREFIX) and method: 0 with *idx and
 * r's params set, 404 for no such path, 405 for a path without that
 * method.
 */
int	registry_match(struct peer *p, const char *path, int method,
	    struct peer_req *r, int *idx);
const struct peer_endpoint *registry_get(struct peer *p, int idx);
/* The largest body any row takes. */
size_t	registry_max_body(struct peer *p);
int	registry_builtin(struct peer *p, struct sp_err *err) SP_WUR;
void	registry_free(struct peer *p);
/* Runs the handler for r (matched, authorized, body decoded). */
void	registry_dispatch(struct peer_req *r);
/* The client left while r was deferred: cancels it and frees it. */
void	registry_req_gone(struct peer_req *r);
void	peer_req_free(struct peer_req *r);

/* listener.c: how a reply leaves (set by the listener or a harness) */
void	listener_send(struct peer_req *r, int status, json_t *doc);

/* connector.c */
int	connectors_load(struct peer *p, struct sp_err *err) SP_WUR;
void	connectors_free(struct peer *p);

#endif
