/*
 * Shared inside the peer listener (listener.c, conn.c, registry.c) and
 * with its unit tests and fuzz target.
 */
#ifndef SP_PEER_LISTENER_INT_H
#define SP_PEER_LISTENER_INT_H

#include <sys/queue.h>

#include <stdbool.h>

#include <event2/bufferevent.h>
#include <event2/http.h>
#include <openssl/ssl.h>

#include "peer/peer_int.h"

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

/* listener.c */
void	listener_send(struct peer_req *r, int status, json_t *doc);
SSL_CTX	*listener_server_ctx(struct peer *p);
/* The base rule /peerincoming for cert (cached). */
bool	listener_base_ok(struct peer *p, X509 *cert);
struct lconn;
/* A request head is complete in the input buffer, not yet parsed by
 * evhttp: line is its request line (NULL: too long). */
void	listener_head(struct lconn *c, const char *line);

/* conn.c: the listener's connections */
struct addr_count;
enum conn_phase { PH_HANDSHAKE, PH_HEAD, PH_BUSY, PH__MAX };

/* Where the line-ending scan of a request head is (see head_scan()). */
enum head_state {
	HD_LINE_START, HD_IN_LINE, HD_CR, HD_EMPTY_CR, HD_BODY, HD__MAX
};

/* One accepted connection; freed with its SSL (ex_data free). */
struct lconn {
	struct peer			*p;
	SSL				*ssl;
	struct bufferevent		*bev;
	struct evhttp_connection	*evcon;	/* NULL once closed */
	struct addr_count		*ac;
	struct event			*deadline;
	struct event			*ev_gone;	/* while deferred */
	enum conn_phase			 phase;
	bool				 fresh;	/* accepted, not yet admitted */
	bool				 counted;
	bool				 handshake_done;
	bool				 norole;
	bool				 nocert_logged;
	bool				 noted;	/* in the incoming list */
	unsigned long			 nreq;
	enum head_state			 hd;
	bool				 hd_first;	/* on the request line */
	bool				 hd_bad;	/* bare LF/CR, obs-fold */
	bool				 rline_long;
	size_t				 rlen;
	char				 rline[PEER_URL_MAX + 32];
	char				 client[80];	/* HOST:PORT */
	const X509			*fp_cert;	/* fp is its fingerprint */
	char				 fp[65];
	struct peer_req_list		 pending;	/* deferred replies */
	TAILQ_ENTRY(lconn)		 entry;		/* l->conns */
	TAILQ_ENTRY(lconn)		 fentry;	/* l->fresh */
};
TAILQ_HEAD(lconn_list, lconn);

struct evconnlistener;
struct lconn	*conn_of_ssl(const SSL *ssl);
/*
 * The client certificate's fingerprint, computed once per connection
 * (per certificate: a new one, after renegotiation, is fingerprinted
 * again). -1 if the digest fails: never a shared fallback.
 */
int		 conn_fingerprint(struct lconn *c, X509 *cert, char out[65]);
/* Rate limit and address for a line about ssl's connection. */
bool	 conn_log_ok(const SSL *ssl, const char **client, char *tail,
	    size_t tailsz);
void	 conn_deadline_arm(struct lconn *c, enum conn_phase ph);
void	 conn_head_rescan(struct lconn *c);
void	 conn_watch_gone(struct lconn *c);
/* evhttp's bufferevent callback: a TLS bufferevent per connection. */
struct bufferevent *conn_bev(struct event_base *base, void *arg);
int	 conns_new(struct peer *p, struct sp_err *err) SP_WUR;
void	 conns_listen(struct peer *p, struct evconnlistener *lev);
void	 conns_free(struct peer *p);

#endif
