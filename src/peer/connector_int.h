/*
 * Shared by the connector files: connector.c (the pool: TLS context and
 * connections), connector_req.c (requests: lanes, queues, sending,
 * replies), connector_admin.c (the stored connectors and their admin
 * operations) and connector_ping.c (ping, a user of the request API).
 */
#ifndef SP_PEER_CONNECTOR_INT_H
#define SP_PEER_CONNECTOR_INT_H

#include <sys/queue.h>

#include <stdbool.h>
#include <stdint.h>

#include <event2/http.h>
#include <openssl/ssl.h>

#include "peer/peer_int.h"

#define DEFAULT_MAX	4

struct outconn;
struct outreq;
TAILQ_HEAD(outconn_list, outconn);
TAILQ_HEAD(outreq_list, outreq);

struct outreq {
	struct connector	*c;
	struct outconn		*oc;
	enum evhttp_cmd_type	 method;
	enum peer_lane		 lane;
	int			 timeout_ms;
	int			 evreq_err;	/* evhttp's reason, or -1 */
	char			 path[sizeof(PEER_PREFIX) + PEER_PATH_MAX];
	char			*body;
	bool			 retried;	/* resent once (see on_response) */
	enum peer_req_error	 fail;		/* failed, completion pending */
	struct sp_err		 ferr;
	peer_request_done	*done;
	void			*arg;
	TAILQ_ENTRY(outreq)	 q;
};

struct outconn {
	struct connector		*c;
	enum peer_lane			 lane;
	struct evhttp_connection	*evcon;
	struct bufferevent		*bev;
	struct outreq			*cur;	/* request in flight */
	struct evhttp_request		*req;	/* its evhttp request */
	struct event			*deadline; /* for the whole response */
	bool				 used;	/* a request completed */
	bool				 dead;
	bool				 in_cb;	/* its request's done runs */
	TAILQ_ENTRY(outconn)		 e;
};

struct lane {
	struct outreq_list	 queue;
	int			 nqueued;
	int			 qmax;
	int			 max;		/* long lane: connections */
	int			 nconns;	/* this lane's, dead included */
};

struct connector {
	struct peer		*p;
	int64_t			 id;
	char			 name[PEER_NAME_MAX + 1];
	char			 url[PEER_URL_MAX + 1];
	char			 host[256];
	char			 base_path[128];
	int			 port;
	char			 auth[PEER_NAME_MAX + 1];
	int			 max;		/* normal lane's connections */
	bool			 enabled;
	bool			 deleted;
	bool			 dropping;	/* drop_pool() running */
	SSL_CTX			*ctx;
	uint64_t		 trust_gen;	/* of ctx's trust store */
	SSL_SESSION		*sess;
	char			 tls_peer[256];
	struct outconn_list	 conns;		/* every lane's */
	int			 nconns;
	struct lane		 lanes[PEER_LANE__MAX];
	struct outreq_list	 failed;	/* to complete from ev_pump */
	struct event		*ev_pump;	/* completes failed, pumps */
	TAILQ_ENTRY(connector)	 e;
};

/* connector.c: the pool */
int	connector_url_parse(struct connector *c, const char *url,
	    struct sp_err *err) SP_WUR;
struct connector *connector_new(struct peer *p);
void	connector_free(struct connector *c);
struct outconn *conn_new(struct connector *c, enum peer_lane lane,
	    struct sp_err *err);
void	conn_kill(struct outconn *oc);
void	conn_free_now(struct outconn *oc);
int	conn_lane_max(const struct connector *c, enum peer_lane lane);
void	connector_refresh_trust(struct connector *c);

/* connector_req.c: requests */
void	connector_pump(struct connector *c);
void	connector_pump_later(struct connector *c);
void	connector_on_pump(evutil_socket_t fd, short what, void *arg);
void	connector_on_deadline(evutil_socket_t fd, short what, void *arg);
/* Drops the pool: queued and in-flight requests fail with why. */
void	connector_drop_pool(struct connector *c, const char *why, bool all);

/* connector_admin.c */
struct connector *connector_find(struct peer *p, const char *name);

#endif
