/*
 * Peer Connectors, the pool (DESIGN.md section 5, "Outgoing"): the URL,
 * the client TLS context (identity and trust from the node's hooks) and
 * the keep-alive TLS connections, each serving one lane. Requests are in
 * connector_req.c, the stored connectors in connector_admin.c, ping in
 * connector_ping.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "peer/connector_int.h"
#include "util/log.h"
#include "util/util.h"

/* --- URL ----------------------------------------------------------------- */

/* https://host:port/peer/v1 (host may be [v6]); path must be /peer/v1. */
int
connector_url_parse(struct connector *c, const char *url, struct sp_err *err)
{
	struct evhttp_uri	*u = NULL;
	const char		*host, *path;
	int			 r = SP_ERR_INVALID;

	if (strlen(url) > PEER_URL_MAX ||
	    (u = evhttp_uri_parse_with_flags(url, 0)) == NULL ||
	    evhttp_uri_get_scheme(u) == NULL ||
	    strcmp(evhttp_uri_get_scheme(u), "https") != 0 ||
	    (host = evhttp_uri_get_host(u)) == NULL || *host == '\0' ||
	    strlen(host) >= sizeof(c->host) ||
	    evhttp_uri_get_userinfo(u) != NULL ||
	    evhttp_uri_get_query(u) != NULL ||
	    evhttp_uri_get_fragment(u) != NULL) {
		sp_err_set(err, r, "URL must look like https://host:port"
		    PEER_PREFIX);
		goto out;
	}
	path = evhttp_uri_get_path(u);
	if (path == NULL || strcmp(path, PEER_PREFIX) != 0) {
		sp_err_set(err, r, "URL path must be %s", PEER_PREFIX);
		goto out;
	}
	snprintf(c->host, sizeof(c->host), "%s", host);
	c->port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : 443;
	snprintf(c->base_path, sizeof(c->base_path), "%s", path);
	snprintf(c->url, sizeof(c->url), "%s", url);
	r = 0;
 out:
	if (u != NULL)
		evhttp_uri_free(u);
	return r;
}

/* --- TLS client context --------------------------------------------------- */

static int
client_ctx(struct connector *c, struct sp_err *err)
{
	struct peer	*p = c->p;
	X509		*cert = NULL;
	STACK_OF(X509)	*chain = NULL;
	EVP_PKEY	*key = NULL;
	X509_STORE	*trust = NULL;
	SSL_CTX		*ctx = NULL;
	int		 r;

	if (c->ctx != NULL)
		return 0;
	if ((r = p->hooks.identity(p->hooks.arg, c->auth, &cert, &chain, &key,
	    err)) != 0 || (r = p->hooks.trust(p->hooks.arg, &trust, err)) != 0)
		goto out;
	r = SP_ERR_CRYPTO;
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    SSL_CTX_use_certificate(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		sp_err_ossl(err, r, "connector TLS context");
		goto out;
	}
	for (int i = 0; i < sk_X509_num(chain); i++)
		(void)SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i));
	X509_STORE_set_purpose(trust, X509_PURPOSE_SSL_SERVER);
	SSL_CTX_set_cert_store(ctx, trust);
	trust = NULL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
	c->trust_gen = p->hooks.generation(p->hooks.arg);
	c->ctx = ctx;
	ctx = NULL;
	r = 0;
 out:
	SSL_CTX_free(ctx);
	X509_free(cert);
	sk_X509_pop_free(chain, X509_free);
	EVP_PKEY_free(key);
	X509_STORE_free(trust);
	ERR_clear_error();
	return r;
}

/* --- connections ---------------------------------------------------------- */

void
conn_free_now(struct outconn *oc)
{
	struct connector	*c = oc->c;

	TAILQ_REMOVE(&c->conns, oc, e);
	c->nconns--;
	c->lanes[oc->lane].nconns--;
	evhttp_connection_set_closecb(oc->evcon, NULL, NULL);
	evhttp_connection_free(oc->evcon);
	if (oc->deadline != NULL)
		event_free(oc->deadline);
	free(oc);
}

struct connector *
connector_new(struct peer *p)
{
	struct connector	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if ((c->ev_pump = event_new(p->base, -1, 0, connector_on_pump, c)) ==
	    NULL) {
		free(c);
		return NULL;
	}
	c->p = p;
	c->max = DEFAULT_MAX;
	TAILQ_INIT(&c->conns);
	TAILQ_INIT(&c->failed);
	for (int i = 0; i < PEER_LANE__MAX; i++) {
		TAILQ_INIT(&c->lanes[i].queue);
		c->lanes[i].qmax = PEER_QUEUE_MAX;
	}
	c->lanes[PEER_LANE_LONG].max = PEER_LONG_CONNS;
	return c;
}

void
connector_free(struct connector *c)
{
	if (c == NULL)
		return;
	if (c->ev_pump != NULL)
		event_free(c->ev_pump);
	SSL_CTX_free(c->ctx);
	SSL_SESSION_free(c->sess);
	free(c);
}

/* libevent must not free a connection from inside its own callbacks. */
static void
conn_reap(evutil_socket_t fd, short what, void *arg)
{
	struct outconn		*oc = arg;
	struct connector	*c = oc->c;

	(void)fd;
	(void)what;
	conn_free_now(oc);
	if (c->deleted && c->nconns == 0)
		connector_free(c);
	else
		connector_pump(c);
}

void
conn_kill(struct outconn *oc)
{
	struct timeval	tv = { 0, 0 };

	if (oc->dead)
		return;
	oc->dead = true;
	if (event_base_once(oc->c->p->base, -1, EV_TIMEOUT, conn_reap, oc,
	    &tv) == -1)
		log_warnx("peer: cannot schedule connection cleanup");
}

static void
on_close(struct evhttp_connection *evcon, void *arg)
{
	struct outconn	*oc = arg;

	(void)evcon;
	/* The peer closed an idle keep-alive connection. */
	if (oc->cur == NULL)
		conn_kill(oc);
}

int
conn_lane_max(const struct connector *c, enum peer_lane lane)
{
	return lane == PEER_LANE_NORMAL ? c->max : c->lanes[lane].max;
}

/* A new connection of lane (not connected until a request is sent). */
struct outconn *
conn_new(struct connector *c, enum peer_lane lane, struct sp_err *err)
{
	struct outconn	*oc = NULL;
	SSL		*ssl = NULL;
	X509_VERIFY_PARAM *vp;

	if (client_ctx(c, err) != 0)
		return NULL;
	if ((oc = calloc(1, sizeof(*oc))) == NULL ||
	    (oc->deadline = evtimer_new(c->p->base, connector_on_deadline,
	    oc)) == NULL || (ssl = SSL_new(c->ctx)) == NULL) {
		sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto fail;
	}
	/* The server certificate must name the host in the URL. */
	vp = SSL_get0_param(ssl);
	/* Verify by the node's clock (it differs only in tests). */
	if (sp_time_offset() != 0)
		X509_VERIFY_PARAM_set_time(vp, sp_now());
	if (X509_VERIFY_PARAM_set1_ip_asc(vp, c->host) != 1) {
		ERR_clear_error();
		if (!SSL_set1_host(ssl, c->host) ||
		    !SSL_set_tlsext_host_name(ssl, c->host)) {
			sp_err_ossl(err, SP_ERR_CRYPTO, "TLS host name");
			goto fail;
		}
	}
	if (c->sess != NULL)
		SSL_set_session(ssl, c->sess);
	oc->c = c;
	if ((oc->bev = bufferevent_openssl_socket_new(c->p->base, -1, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS)) == NULL) {
		sp_err_set(err, SP_ERR_ALLOC, "bufferevent");
		goto fail;
	}
	ssl = NULL;	/* owned by the bufferevent */
	if ((oc->evcon = evhttp_connection_base_bufferevent_new(c->p->base,
	    NULL, oc->bev, c->host, (ev_uint16_t)c->port)) == NULL) {
		bufferevent_free(oc->bev);
		sp_err_set(err, SP_ERR_ALLOC, "HTTP connection");
		goto fail;
	}
	evhttp_connection_set_retries(oc->evcon, 0);
	evhttp_connection_set_timeout(oc->evcon, PEER_TIMEOUT);
	evhttp_connection_set_max_body_size(oc->evcon, PEER_MAX_BODY);
	evhttp_connection_set_max_headers_size(oc->evcon, PEER_MAX_HEADERS);
	evhttp_connection_set_closecb(oc->evcon, on_close, oc);
	oc->lane = lane;
	TAILQ_INSERT_TAIL(&c->conns, oc, e);
	c->nconns++;
	c->lanes[lane].nconns++;
	return oc;
 fail:
	SSL_free(ssl);
	if (oc != NULL && oc->deadline != NULL)
		event_free(oc->deadline);
	free(oc);
	ERR_clear_error();
	return NULL;
}

/*
 * The trust anchors or CRLs changed: new connections verify the server
 * against the new ones, without resuming (a resumed session would skip
 * the check), and idle connections verified under the old ones close.
 * The client identity stays until reset (as operators expect).
 */
void
connector_refresh_trust(struct connector *c)
{
	struct peer	*p = c->p;
	struct outconn	*oc;
	X509_STORE	*trust = NULL;
	struct sp_err	 err = { 0 };
	uint64_t	 gen = p->hooks.generation(p->hooks.arg);

	if (c->ctx == NULL || gen == c->trust_gen)
		return;
	if (p->hooks.trust(p->hooks.arg, &trust, &err) != 0) {
		log_warnx("connector %s: trust store: %s", c->name, err.msg);
		return;		/* keep the old one; retried next time */
	}
	X509_STORE_set_purpose(trust, X509_PURPOSE_SSL_SERVER);
	SSL_CTX_set_cert_store(c->ctx, trust);
	c->trust_gen = gen;
	SSL_SESSION_free(c->sess);
	c->sess = NULL;
	TAILQ_FOREACH(oc, &c->conns, e)
		if (oc->cur == NULL)
			conn_kill(oc);
}

