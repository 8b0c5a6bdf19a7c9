/*
 * Unit tests for the connector request API on a loopback harness: a real
 * evhttp TLS server on 127.0.0.1 in this process (certificates made
 * here), and a peer with one or more connectors to it, on one event loop.
 * The server's endpoints answer at once, hold a request for a while, or
 * never; the tests drive the loop until their callbacks ran.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>

#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "authz/authz.h"
#include "net/pool.h"
#include "peer/peer.h"
#include "store/store.h"
#include "util/err.h"
#include "util/log.h"

/* --- certificates -------------------------------------------------------- */

static EVP_PKEY	*ca_key, *srv_key, *cli_key, *rogue_key;
static X509	*ca_cert, *srv_cert, *cli_cert, *rogue_cert;

static void
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX	 ctx;
	X509_EXTENSION	*ext;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	assert_non_null(ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value));
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

static X509 *
mkcert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey,
    long serial, bool ca, bool server)
{
	X509		*x;
	X509_NAME	*n;

	assert_non_null(x = X509_new());
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial),
	    1);
	assert_non_null(n = X509_NAME_new());
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0), 1);
	assert_int_equal(X509_set_subject_name(x, n), 1);
	assert_int_equal(X509_set_issuer_name(x, issuer ?
	    X509_get_subject_name(issuer) : n), 1);
	X509_NAME_free(n);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -60));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	if (ca) {
		add_ext(x, issuer ? issuer : x, NID_basic_constraints,
		    "critical,CA:TRUE");
		add_ext(x, issuer ? issuer : x, NID_key_usage,
		    "critical,keyCertSign,cRLSign");
	} else {
		add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
		add_ext(x, issuer, NID_ext_key_usage, server ? "serverAuth" :
		    "clientAuth");
		if (server)
			add_ext(x, issuer, NID_subject_alt_name,
			    "IP:127.0.0.1");
	}
	assert_true(X509_sign(x, ikey, EVP_sha256()) > 0);
	return x;
}

static EVP_PKEY *
mkkey(void)
{
	EVP_PKEY	*k;

	assert_non_null(k = EVP_EC_gen("P-256"));
	return k;
}

/* --- the peer's hooks ---------------------------------------------------- */

static bool	trust_nothing;	/* the next TLS context trusts no CA */

static int
hook_identity(void *arg, const char *kb, X509 **cert, STACK_OF(X509) **chain,
    EVP_PKEY **key, struct sp_err *err)
{
	X509		*x = cli_cert;
	EVP_PKEY	*k = cli_key;

	(void)arg;
	(void)err;
	/* "rogue": a self-signed identity the server does not trust. */
	if (strcmp(kb, "rogue") == 0) {
		x = rogue_cert;
		k = rogue_key;
	} else
		assert_string_equal(kb, "client");
	X509_up_ref(x);
	EVP_PKEY_up_ref(k);
	*cert = x;
	*key = k;
	*chain = sk_X509_new_null();
	return 0;
}

static int
hook_trust(void *arg, X509_STORE **out, struct sp_err *err)
{
	(void)arg;
	(void)err;
	assert_non_null(*out = X509_STORE_new());
	if (!trust_nothing)
		assert_int_equal(X509_STORE_add_cert(*out, ca_cert), 1);
	return 0;
}

static uint64_t
hook_generation(void *arg)
{
	(void)arg;
	return 1;
}

/* --- the server ---------------------------------------------------------- */

/* A request the server holds, answered later (or at teardown). */
struct held {
	struct evhttp_request	*req;
	struct event		*ev;
	bool			 used;
};

#define HELD_MAX	32

struct fixture {
	char			 dir[64];
	char			 path[128];
	struct event_base	*base;
	struct pool		*pool;
	struct store		*st;
	struct authz		*az;
	struct peer		*p;
	SSL_CTX			*srv_ctx;
	struct evhttp		*http;
	int			 port;
	int			 hang_ms;	/* /hang answers after this */
	int			 served;	/* requests the server saw */
	struct held		 held[HELD_MAX];
	struct evhttp_connection *flaky_seen[8];	/* /flaky answered */
};

static struct bufferevent *
srv_bev(struct event_base *base, void *arg)
{
	struct fixture	*fx = arg;

	return bufferevent_openssl_socket_new(base, -1, SSL_new(fx->srv_ctx),
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
}

static void
reply_json(struct evhttp_request *req, int code, const char *json)
{
	struct evbuffer	*b = evbuffer_new();

	assert_non_null(b);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "application/json");
	evbuffer_add(b, json, strlen(json));
	evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", b);
	evbuffer_free(b);
}

static void
on_hang_done(evutil_socket_t fd, short what, void *arg)
{
	struct held	*h = arg;

	(void)fd;
	(void)what;
	reply_json(h->req, 200, "{\"hung\":true}");
	event_free(h->ev);
	h->ev = NULL;
	h->used = false;
}

static void
hold(struct fixture *fx, struct evhttp_request *req, int ms)
{
	for (int i = 0; i < HELD_MAX; i++) {
		struct held	*h = &fx->held[i];
		struct timeval	 tv = { ms / 1000, (ms % 1000) * 1000 };

		if (h->used)
			continue;
		h->used = true;
		h->req = req;
		if (ms >= 0) {
			assert_non_null(h->ev = evtimer_new(fx->base,
			    on_hang_done, h));
			evtimer_add(h->ev, &tv);
		}
		return;
	}
	fail_msg("too many held requests");
}

static void
on_drop(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	evhttp_connection_free(arg);
}

/*
 * /flaky answers the first request on a connection and drops the
 * connection, unanswered, at the next one: a keep-alive connection the
 * server closed just as the client reused it.
 */
static void
flaky(struct fixture *fx, struct evhttp_request *req)
{
	struct evhttp_connection	*evcon = evhttp_request_get_connection(req);
	size_t				 i;

	for (i = 0; i < 8 && fx->flaky_seen[i] != NULL; i++)
		if (fx->flaky_seen[i] == evcon) {
			fx->flaky_seen[i] = (void *)1;	/* gone */
			assert_int_equal(event_base_once(fx->base, -1,
			    EV_TIMEOUT, on_drop, evcon, NULL), 0);
			return;
		}
	assert_true(i < 8);
	fx->flaky_seen[i] = evcon;
	reply_json(req, 200, "{\"flaky\":true}");
}

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct fixture	*fx = arg;
	const char	*uri = evhttp_request_get_uri(req);
	struct evbuffer	*in = evhttp_request_get_input_buffer(req);
	char		 body[1024];
	size_t		 n;

	fx->served++;
	if (strcmp(uri, "/peer/v1/ping") == 0)
		reply_json(req, 200, "{\"pong\":true}");
	else if (strcmp(uri, "/peer/v1/echo") == 0) {
		n = evbuffer_remove(in, body, sizeof(body) - 1);
		body[n > 0 ? n : 0] = '\0';
		reply_json(req, 200, body);
	} else if (strcmp(uri, "/peer/v1/busy") == 0)
		reply_json(req, 503, "{\"error\":{\"code\":\"busy\","
		    "\"message\":\"try later\"}}");
	else if (strcmp(uri, "/peer/v1/notjson") == 0)
		reply_json(req, 200, "hello");
	else if (strcmp(uri, "/peer/v1/hang") == 0)
		hold(fx, req, fx->hang_ms);
	else if (strcmp(uri, "/peer/v1/never") == 0)
		hold(fx, req, -1);
	else if (strcmp(uri, "/peer/v1/flaky") == 0)
		flaky(fx, req);
	else
		reply_json(req, 404, "{\"error\":{\"code\":\"notfound\","
		    "\"message\":\"no such endpoint\"}}");
}

static int
rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static void
add_connector_as(struct fixture *fx, const char *name, int port, int max,
    const char *auth)
{
	struct peer_connector_conf	cf = { 0 };
	struct sp_err			err = { 0 };
	char				url[128];

	snprintf(url, sizeof(url), "https://127.0.0.1:%d/peer/v1", port);
	cf.name = name;
	cf.url = url;
	cf.auth = auth;
	cf.max = max;
	cf.enabled = 1;
	if (peer_connector_add(fx->p, &cf, "test", &err) != 0)
		fail_msg("connector add: %s", err.msg);
}

static void
add_connector(struct fixture *fx, const char *name, int port, int max)
{
	add_connector_as(fx, name, port, max, "client");
}

static int
setup(void **state)
{
	struct fixture			*fx;
	struct evhttp_bound_socket	*bs;
	struct sockaddr_in		 sin;
	socklen_t			 slen = sizeof(sin);
	struct peer_hooks		 hooks = { NULL, hook_identity,
					    hook_trust, hook_generation };
	struct sp_err			 err = { 0 };

	if ((fx = calloc(1, sizeof(*fx))) == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/sp_test_conn.XXXXXX");
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->path, sizeof(fx->path), "%s/store.db", fx->dir);
	fx->hang_ms = 800;
	trust_nothing = false;
	assert_non_null(fx->base = event_base_new());
	assert_non_null(fx->pool = pool_new(fx->base, 1));
	if (store_open(fx->path, &fx->st, &err) != 0 ||
	    authz_open(fx->st, &fx->az, &err) != 0 ||
	    peer_new(fx->base, fx->pool, fx->st, fx->az, &hooks, "test", NULL,
	    &fx->p, &err) != 0)
		fail_msg("setup: %s", err.msg);

	/* The server: TLS, a client certificate from our CA required. */
	assert_non_null(fx->srv_ctx = SSL_CTX_new(TLS_server_method()));
	assert_int_equal(SSL_CTX_use_certificate(fx->srv_ctx, srv_cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(fx->srv_ctx, srv_key), 1);
	X509_up_ref(ca_cert);
	assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(
	    fx->srv_ctx), ca_cert), 1);
	X509_free(ca_cert);
	SSL_CTX_set_verify(fx->srv_ctx, SSL_VERIFY_PEER |
	    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	/* Resumption with client certificates needs a session context. */
	assert_int_equal(SSL_CTX_set_session_id_context(fx->srv_ctx,
	    (const unsigned char *)"test", 4), 1);
	assert_non_null(fx->http = evhttp_new(fx->base));
	evhttp_set_bevcb(fx->http, srv_bev, fx);
	evhttp_set_gencb(fx->http, on_request, fx);
	evhttp_set_allowed_methods(fx->http, EVHTTP_REQ_GET |
	    EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
	assert_non_null(bs = evhttp_bind_socket_with_handle(fx->http,
	    "127.0.0.1", 0));
	assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs),
	    (struct sockaddr *)&sin, &slen), 0);
	fx->port = ntohs(sin.sin_port);
	add_connector(fx, "t", fx->port, 2);
	*state = fx;
	return 0;
}

static void	loop_for(struct fixture *, int);

static int
teardown(void **state)
{
	struct fixture	*fx = *state;
	int		 r;

	/* Held requests are answered (or freed, if their client left). */
	for (int i = 0; i < HELD_MAX; i++) {
		struct held	*h = &fx->held[i];

		if (!h->used)
			continue;
		if (h->ev != NULL)
			event_free(h->ev);
		reply_json(h->req, 503, "{}");
		h->used = false;
	}
	peer_free(fx->p);
	loop_for(fx, 50);
	evhttp_free(fx->http);
	SSL_CTX_free(fx->srv_ctx);
	pool_free(fx->pool);
	authz_free(fx->az);
	store_close(fx->st);
	event_base_free(fx->base);
	r = nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return r == 0 ? 0 : -1;
}

static int
group_setup(void **state)
{
	(void)state;
	log_init(LOG_LVL_ERROR);
	ca_key = mkkey();
	srv_key = mkkey();
	cli_key = mkkey();
	ca_cert = mkcert("Test Peer CA", ca_key, NULL, ca_key, 1, true, false);
	srv_cert = mkcert("server", srv_key, ca_cert, ca_key, 2, false, true);
	cli_cert = mkcert("client", cli_key, ca_cert, ca_key, 3, false, false);
	rogue_key = mkkey();
	rogue_cert = mkcert("rogue", rogue_key, NULL, rogue_key, 4, false,
	    false);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	X509_free(ca_cert);
	X509_free(srv_cert);
	X509_free(cli_cert);
	X509_free(rogue_cert);
	EVP_PKEY_free(rogue_key);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(srv_key);
	EVP_PKEY_free(cli_key);
	return 0;
}

/* --- driving the loop ---------------------------------------------------- */

static double
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Runs the loop until *flag is at least want or limit_ms passed. */
static void
loop_until(struct fixture *fx, const int *flag, int want, int limit_ms)
{
	struct event	*tick;
	struct timeval	 tv = { 0, 20 * 1000 };
	double		 end = now_ms() + limit_ms;

	assert_non_null(tick = event_new(fx->base, -1, EV_PERSIST, on_tick,
	    NULL));
	evtimer_add(tick, &tv);
	while ((flag == NULL || *flag < want) && now_ms() < end)
		event_base_loop(fx->base, EVLOOP_ONCE);
	event_free(tick);
}

static void
loop_for(struct fixture *fx, int ms)
{
	loop_until(fx, NULL, 0, ms);
}

/* What a completion saw. */
struct result {
	int			 calls;
	enum peer_req_error	 error;
	int			 status;
	json_t			*body;
	char			 connection[16];
	char			 msg[256];
	double			 at;	/* now_ms() when it completed */
};

static void
on_done(void *arg, const struct peer_response *res)
{
	struct result	*r = arg;

	r->calls++;
	r->error = res->error;
	r->status = res->status;
	json_decref(r->body);
	r->body = res->body ? json_deep_copy(res->body) : NULL;
	snprintf(r->connection, sizeof(r->connection), "%s", res->connection);
	snprintf(r->msg, sizeof(r->msg), "%s", res->err ? res->err->msg : "");
	r->at = now_ms();
}

static int
submit(struct fixture *fx, const char *conn, const char *method,
    const char *path, json_t *body, int timeout_ms, enum peer_lane lane,
    struct result *r, struct sp_err *err)
{
	struct peer_request	rq = { method, path, body, timeout_ms, lane };

	sp_err_clear(err);
	return peer_connector_request(fx->p, conn, &rq, on_done, r, err);
}

#define SUBMIT_OK(fx, c, m, p, b, t, l, r) do {				\
	struct sp_err	e_ = { 0 };					\
	if (submit(fx, c, m, p, b, t, l, r, &e_) != 0)			\
		fail_msg("submit %s: %s", p, e_.msg);			\
} while (0)

/* --- tests --------------------------------------------------------------- */

static void
test_request_completes(void **state)
{
	struct fixture	*fx = *state;
	struct result	 r1 = { 0 }, r2 = { 0 };
	json_t		*body = json_pack("{s:i,s:s}", "a", 1, "b", "é");

	SUBMIT_OK(fx, "t", "POST", "/echo", body, 0, PEER_LANE_NORMAL, &r1);
	/* Never from inside the call. */
	assert_int_equal(r1.calls, 0);
	loop_until(fx, &r1.calls, 1, 5000);
	assert_int_equal(r1.calls, 1);
	assert_int_equal(r1.error, PEER_REQ_OK);
	assert_int_equal(r1.status, 200);
	assert_true(json_equal(r1.body, body));
	assert_string_equal(r1.connection, "full");

	/* The next one reuses the keep-alive connection. */
	SUBMIT_OK(fx, "t", "GET", "/ping", NULL, 0, PEER_LANE_NORMAL, &r2);
	loop_until(fx, &r2.calls, 1, 5000);
	assert_int_equal(r2.error, PEER_REQ_OK);
	assert_true(json_is_true(json_object_get(r2.body, "pong")));
	assert_string_equal(r2.connection, "reused");
	loop_for(fx, 50);
	assert_int_equal(r1.calls + r2.calls, 2);	/* exactly once */
	json_decref(body);
	json_decref(r1.body);
	json_decref(r2.body);
}

static void
test_typed_errors(void **state)
{
	struct fixture	*fx = *state;
	struct result	 busy = { 0 }, nj = { 0 }, nf = { 0 }, down = { 0 };
	struct result	 tls = { 0 };
	struct sp_err	 err = { 0 };
	int		 closed;

	SUBMIT_OK(fx, "t", "GET", "/busy", NULL, 0, PEER_LANE_NORMAL, &busy);
	SUBMIT_OK(fx, "t", "GET", "/notjson", NULL, 0, PEER_LANE_NORMAL, &nj);
	loop_until(fx, &nj.calls, 1, 5000);
	loop_until(fx, &busy.calls, 1, 5000);
	assert_int_equal(busy.error, PEER_REQ_HTTP);
	assert_int_equal(busy.status, 503);
	assert_non_null(strstr(busy.msg, "HTTP 503: try later"));
	/* The peer's error object is handed over too. */
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    busy.body, "error"), "code")), "busy");
	assert_int_equal(nj.error, PEER_REQ_BAD_REPLY);
	assert_int_equal(nj.status, 200);
	assert_null(nj.body);

	SUBMIT_OK(fx, "t", "GET", "/nothing", NULL, 0, PEER_LANE_NORMAL, &nf);
	loop_until(fx, &nf.calls, 1, 5000);
	assert_int_equal(nf.error, PEER_REQ_HTTP);
	assert_int_equal(nf.status, 404);

	/* Nothing listens: a transport error. */
	{
		int		 s = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in sin = { 0 };
		socklen_t	 slen = sizeof(sin);

		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof(sin)),
		    0);
		assert_int_equal(getsockname(s, (struct sockaddr *)&sin,
		    &slen), 0);
		closed = ntohs(sin.sin_port);
		close(s);
	}
	add_connector(fx, "down", closed, 1);
	SUBMIT_OK(fx, "down", "GET", "/ping", NULL, 0, PEER_LANE_NORMAL,
	    &down);
	loop_until(fx, &down.calls, 1, 5000);
	assert_int_equal(down.error, PEER_REQ_TRANSPORT);
	assert_int_equal(down.status, 0);

	/* A server certificate we do not trust: a TLS error naming why. */
	trust_nothing = true;
	add_connector(fx, "untrusted", fx->port, 1);
	SUBMIT_OK(fx, "untrusted", "GET", "/ping", NULL, 0, PEER_LANE_NORMAL,
	    &tls);
	loop_until(fx, &tls.calls, 1, 5000);
	trust_nothing = false;
	assert_int_equal(tls.error, PEER_REQ_TLS);
	assert_non_null(strstr(tls.msg, "server certificate"));

	/* The server refuses our certificate: a TLS error too. */
	add_connector_as(fx, "rogue", fx->port, 1, "rogue");
	memset(&tls, 0, sizeof(tls));
	SUBMIT_OK(fx, "rogue", "GET", "/ping", NULL, 0, PEER_LANE_NORMAL,
	    &tls);
	loop_until(fx, &tls.calls, 1, 5000);
	assert_int_equal(tls.error, PEER_REQ_TLS);

	/* Refused at once, done never called. */
	assert_int_equal(submit(fx, "nosuch", "GET", "/ping", NULL, 0,
	    PEER_LANE_NORMAL, &tls, &err), SP_ERR_NOTFOUND);
	assert_int_equal(submit(fx, "t", "PATCH", "/ping", NULL, 0,
	    PEER_LANE_NORMAL, &tls, &err), SP_ERR_INVALID);
	assert_int_equal(submit(fx, "t", "GET", "/../x", NULL, 0,
	    PEER_LANE_NORMAL, &tls, &err), SP_ERR_INVALID);
	assert_int_equal(submit(fx, "t", "GET", "ping", NULL, 0,
	    PEER_LANE_NORMAL, &tls, &err), SP_ERR_INVALID);
	assert_int_equal(submit(fx, "t", "GET", "/ping", NULL, -1,
	    PEER_LANE_NORMAL, &tls, &err), SP_ERR_INVALID);
	assert_int_equal(submit(fx, "t", "GET", "/ping", NULL,
	    PEER_TIMEOUT_MAX_MS + 1, PEER_LANE_NORMAL, &tls, &err),
	    SP_ERR_INVALID);
	loop_for(fx, 50);
	assert_int_equal(tls.calls, 1);
	assert_string_equal(peer_req_error_str(PEER_REQ_QUEUE_FULL),
	    "queue full");
	json_decref(busy.body);
	json_decref(nf.body);
}

static void
test_timeout(void **state)
{
	struct fixture	*fx = *state;
	struct result	 r = { 0 }, after = { 0 };
	double		 t0 = now_ms();

	SUBMIT_OK(fx, "t", "GET", "/never", NULL, 300, PEER_LANE_NORMAL, &r);
	loop_until(fx, &r.calls, 1, 10000);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.error, PEER_REQ_TIMEOUT);
	assert_non_null(strstr(r.msg, "no complete response within 300 ms"));
	/* Its own timeout, not the 20 s default or the 10 s idle one. */
	assert_true(r.at - t0 >= 290);
	assert_true(r.at - t0 < 5000);
	/* The connector serves on afterwards, on a fresh connection. */
	SUBMIT_OK(fx, "t", "GET", "/ping", NULL, 0, PEER_LANE_NORMAL, &after);
	loop_until(fx, &after.calls, 1, 5000);
	assert_int_equal(after.error, PEER_REQ_OK);
	json_decref(after.body);
}

static void
test_queue_full(void **state)
{
	struct fixture		*fx = *state;
	struct result		 r[6];
	struct peer_lane_stats	 st;
	struct sp_err		 err = { 0 };
	double			 t0;

	memset(r, 0, sizeof(r));
	if (peer_connector_lane_set(fx->p, "t", PEER_LANE_NORMAL, 0, 3,
	    &err) != 0)
		fail_msg("lane set: %s", err.msg);
	/* Two connections, both held by the server; then three queue. */
	for (int i = 0; i < 5; i++)
		SUBMIT_OK(fx, "t", "GET", "/never", NULL, 2000,
		    PEER_LANE_NORMAL, &r[i]);
	if (peer_connector_lane_stats(fx->p, "t", PEER_LANE_NORMAL, &st,
	    &err) != 0)
		fail_msg("stats: %s", err.msg);
	assert_int_equal(st.in_use, 2);
	assert_int_equal(st.queued, 3);
	assert_int_equal(st.queue_max, 3);
	/* The sixth fails fast: refused in the call, done never runs. */
	t0 = now_ms();
	assert_int_equal(submit(fx, "t", "GET", "/ping", NULL, 0,
	    PEER_LANE_NORMAL, &r[5], &err), SP_ERR_LIMIT);
	assert_true(now_ms() - t0 < 100);
	assert_non_null(strstr(err.msg, "waiting already"));
	assert_int_equal(peer_req_refusal(err.code), PEER_REQ_QUEUE_FULL);
	/* Another lane is not full. */
	SUBMIT_OK(fx, "t", "GET", "/ping", NULL, 0, PEER_LANE_LONG, &r[5]);
	loop_until(fx, &r[5].calls, 1, 5000);
	assert_int_equal(r[5].error, PEER_REQ_OK);
	/* A reset fails what is queued and in flight, once each. */
	if (peer_connector_reset(fx->p, "t", &err) != 0)
		fail_msg("reset: %s", err.msg);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].error, PEER_REQ_STATE);
	}
	loop_for(fx, 50);
	for (int i = 0; i < 5; i++)
		assert_int_equal(r[i].calls, 1);
	json_decref(r[5].body);
}

static void
test_long_lane(void **state)
{
	struct fixture		*fx = *state;
	struct result		 hang[3], ping[4];
	struct peer_lane_stats	 st;
	struct sp_err		 err = { 0 };
	double			 t0;

	memset(hang, 0, sizeof(hang));
	memset(ping, 0, sizeof(ping));
	fx->hang_ms = 1500;
	/* One ordinary connection; two long ones. */
	add_connector(fx, "one", fx->port, 1);
	if (peer_connector_lane_set(fx->p, "one", PEER_LANE_LONG, 2, 0,
	    &err) != 0)
		fail_msg("lane set: %s", err.msg);
	t0 = now_ms();
	for (int i = 0; i < 3; i++)
		SUBMIT_OK(fx, "one", "POST", "/hang", NULL, 0, PEER_LANE_LONG,
		    &hang[i]);
	if (peer_connector_lane_stats(fx->p, "one", PEER_LANE_LONG, &st,
	    &err) != 0)
		fail_msg("stats: %s", err.msg);
	assert_int_equal(st.in_use, 2);
	assert_int_equal(st.queued, 1);
	/* Ordinary requests go through while every long call hangs. */
	for (int i = 0; i < 4; i++) {
		SUBMIT_OK(fx, "one", "GET", "/ping", NULL, 0,
		    PEER_LANE_NORMAL, &ping[i]);
		loop_until(fx, &ping[i].calls, 1, 5000);
		assert_int_equal(ping[i].error, PEER_REQ_OK);
		json_decref(ping[i].body);
	}
	assert_true(ping[3].at - t0 < 1000);
	assert_int_equal(hang[0].calls + hang[1].calls + hang[2].calls, 0);
	if (peer_connector_lane_stats(fx->p, "one", PEER_LANE_NORMAL, &st,
	    &err) != 0)
		fail_msg("stats: %s", err.msg);
	assert_int_equal(st.in_use + st.ready, 1);
	/* The long calls complete in their own time, with the long deadline. */
	loop_until(fx, &hang[2].calls, 1, 10000);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(hang[i].calls, 1);
		assert_int_equal(hang[i].error, PEER_REQ_OK);
		assert_true(json_is_true(json_object_get(hang[i].body,
		    "hung")));
		json_decref(hang[i].body);
	}
	/* The third waited for a long connection, not an ordinary one. */
	assert_true(hang[2].at - t0 >= 2900);
}

/*
 * A long call hangs silently for longer than the ordinary connections'
 * 10 s inactivity timeout (PEER_TIMEOUT): the long lane's connection
 * waits for its own deadline instead. (Real time: libevent's timers
 * cannot be faked.)
 */
static void
test_long_lane_outlives_idle_timeout(void **state)
{
	struct fixture	*fx = *state;
	struct result	 r = { 0 }, lowered[3];
	struct peer_lane_stats st;
	struct sp_err	 err = { 0 };
	double		 t0 = now_ms();

	memset(lowered, 0, sizeof(lowered));
	fx->hang_ms = (PEER_TIMEOUT + 1) * 1000;
	SUBMIT_OK(fx, "t", "POST", "/hang", NULL, 0, PEER_LANE_LONG, &r);
	loop_until(fx, &r.calls, 1, (PEER_TIMEOUT + 10) * 1000);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.error, PEER_REQ_OK);
	assert_true(r.at - t0 >= PEER_TIMEOUT * 1000);
	json_decref(r.body);
	/* Lowering the lane's max closes the idle connections above it. */
	fx->hang_ms = 10;
	for (int i = 0; i < 3; i++)
		SUBMIT_OK(fx, "t", "POST", "/hang", NULL, 0, PEER_LANE_LONG,
		    &lowered[i]);
	for (int i = 0; i < 3; i++) {
		loop_until(fx, &lowered[i].calls, 1, 5000);
		assert_int_equal(lowered[i].error, PEER_REQ_OK);
	}
	if (peer_connector_lane_stats(fx->p, "t", PEER_LANE_LONG, &st,
	    &err) != 0)
		fail_msg("stats: %s", err.msg);
	assert_int_equal(st.ready, 3);
	if (peer_connector_lane_set(fx->p, "t", PEER_LANE_LONG, 1, 0,
	    &err) != 0)
		fail_msg("lane set: %s", err.msg);
	loop_for(fx, 50);
	if (peer_connector_lane_stats(fx->p, "t", PEER_LANE_LONG, &st,
	    &err) != 0)
		fail_msg("stats: %s", err.msg);
	assert_int_equal(st.in_use + st.ready, 1);
	assert_int_equal(st.max, 1);
	for (int i = 0; i < 3; i++)
		json_decref(lowered[i].body);
}

struct reset_arg {
	struct fixture	*fx;
	int		 calls;
	int		 rc;
};

static void
on_done_reset(void *arg, const struct peer_response *res)
{
	struct reset_arg	*ra = arg;
	struct sp_err		 err = { 0 };

	(void)res;
	ra->calls++;
	/* From inside the completion: the pool must survive its own drop. */
	ra->rc = peer_connector_reset(ra->fx->p, "t", &err);
}

static void
test_reset_from_callback(void **state)
{
	struct fixture		*fx = *state;
	struct reset_arg	 ra = { fx, 0, -1 };
	struct peer_request	 rq = { "GET", "/ping", NULL, 0,
				    PEER_LANE_NORMAL };
	struct result		 after = { 0 };
	struct sp_err		 err = { 0 };

	if (peer_connector_request(fx->p, "t", &rq, on_done_reset, &ra,
	    &err) != 0)
		fail_msg("request: %s", err.msg);
	loop_until(fx, &ra.calls, 1, 5000);
	assert_int_equal(ra.calls, 1);
	assert_int_equal(ra.rc, 0);
	loop_for(fx, 50);
	SUBMIT_OK(fx, "t", "GET", "/ping", NULL, 0, PEER_LANE_NORMAL, &after);
	loop_until(fx, &after.calls, 1, 5000);
	assert_int_equal(after.error, PEER_REQ_OK);
	assert_string_equal(after.connection, "full");
	json_decref(after.body);
}

struct pingres {
	int	 calls;
	int	 rc;
	json_t	*result;
};

static void
on_ping(void *arg, json_t *result, int rc, const struct sp_err *err)
{
	struct pingres	*pr = arg;

	(void)err;
	pr->calls++;
	pr->rc = rc;
	pr->result = result;
}

/* Ping is a user of the request API: its numbers come through it. */
static void
test_ping(void **state)
{
	struct fixture	*fx = *state;
	struct pingres	 pr = { 0 };

	peer_ping(fx->p, "t", 6, 3, on_ping, &pr);
	loop_until(fx, &pr.calls, 1, 10000);
	assert_int_equal(pr.calls, 1);
	assert_int_equal(pr.rc, 0);
	assert_int_equal(json_integer_value(json_object_get(pr.result, "ok")),
	    6);
	assert_true(json_integer_value(json_object_get(pr.result,
	    "max_in_use")) <= 2);
	assert_true(json_integer_value(json_object_get(pr.result,
	    "max_queued")) >= 1);
	assert_int_equal(fx->served, 6);
	json_decref(pr.result);
}

/*
 * A reused connection the server dropped without answering: a GET goes
 * once more on a fresh connection and succeeds; a POST is not resent
 * (it may have been acted on) and fails.
 */
static void
test_reused_connection_dropped(void **state)
{
	struct fixture	*fx = *state;
	struct result	 r1 = { 0 }, r2 = { 0 }, r3 = { 0 };

	SUBMIT_OK(fx, "t", "GET", "/flaky", NULL, 0, PEER_LANE_NORMAL, &r1);
	loop_until(fx, &r1.calls, 1, 5000);
	assert_int_equal(r1.error, PEER_REQ_OK);
	assert_int_equal(fx->served, 1);

	SUBMIT_OK(fx, "t", "GET", "/flaky", NULL, 0, PEER_LANE_NORMAL, &r2);
	loop_until(fx, &r2.calls, 1, 5000);
	assert_int_equal(r2.error, PEER_REQ_OK);
	assert_true(json_is_true(json_object_get(r2.body, "flaky")));
	assert_string_not_equal(r2.connection, "reused");
	assert_int_equal(fx->served, 3);	/* dropped, then sent again */

	SUBMIT_OK(fx, "t", "POST", "/flaky", NULL, 0, PEER_LANE_NORMAL, &r3);
	loop_until(fx, &r3.calls, 1, 5000);
	assert_true(r3.error == PEER_REQ_TRANSPORT || r3.error == PEER_REQ_TLS);
	assert_int_equal(fx->served, 4);	/* not resent */
	loop_for(fx, 50);
	assert_int_equal(r1.calls + r2.calls + r3.calls, 3);
	json_decref(r1.body);
	json_decref(r2.body);
	json_decref(r3.body);
}

/* The admin changes' async forms: written off the loop, in order. */
struct async_log {
	int	calls;
	int	rc[8];
};

static void
on_async(void *arg, int rc, const struct sp_err *err)
{
	struct async_log	*al = arg;

	(void)err;
	if (al->calls < 8)
		al->rc[al->calls] = rc;
	al->calls++;
}

static int
row_value(const struct store_row *row, void *arg)
{
	snprintf(arg, 8, "%s", store_row_text(row, 0));
	return 0;
}

static void
test_admin_changes_async(void **state)
{
	struct fixture			*fx = *state;
	struct async_log		 al = { 0 };
	struct peer_connector_conf	 cf = { 0 };
	struct sp_err			 err = { 0 };
	char				 url[128], v[8] = "";
	json_t				*st, *list;

	snprintf(url, sizeof(url), "https://127.0.0.1:%d/peer/v1", fx->port);
	cf.name = "later";
	cf.url = url;
	cf.auth = "client";
	cf.enabled = 1;
	assert_int_equal(peer_connector_add_async(fx->p, &cf, "test",
	    on_async, &al, &err), 0);
	/* Never inside the call: the write is on a worker. */
	assert_int_equal(al.calls, 0);
	list = peer_connector_list(fx->p);
	assert_int_equal(json_array_size(list), 1);	/* only "t" so far */
	json_decref(list);
	/* Three switches queued at once: applied in order. */
	assert_int_equal(peer_set_outgoing_async(fx->p, false, "test",
	    on_async, &al, &err), 0);
	assert_int_equal(peer_set_outgoing_async(fx->p, true, "test",
	    on_async, &al, &err), 0);
	assert_int_equal(peer_set_outgoing_async(fx->p, false, "test",
	    on_async, &al, &err), 0);
	/*
	 * The same name again while the first add is in flight: not yet in
	 * memory, so it is queued, and the database refuses it (below).
	 */
	assert_int_equal(peer_connector_add_async(fx->p, &cf, "test",
	    on_async, &al, &err), 0);
	loop_until(fx, &al.calls, 5, 5000);
	assert_int_equal(al.calls, 5);
	/* The second add lost the race at the database (UNIQUE). */
	assert_int_equal(al.rc[0], 0);
	assert_int_equal(al.rc[4], SP_ERR_EXISTS);
	list = peer_connector_list(fx->p);
	assert_int_equal(json_array_size(list), 2);
	json_decref(list);
	st = peer_status(fx->p);
	assert_false(json_is_true(json_object_get(st, "outgoing_enabled")));
	json_decref(st);
	assert_int_equal(store_select(fx->st, NULL, row_value, v, &err,
	    "SELECT value FROM settings WHERE key = 'peer.outgoing_enabled'",
	    ""), 0);
	assert_string_equal(v, "0");
	/* Delete: gone from memory once its write came back. */
	assert_int_equal(peer_connector_delete_async(fx->p, "later", "test",
	    on_async, &al, &err), 0);
	loop_until(fx, &al.calls, 6, 5000);
	assert_int_equal(al.rc[5], 0);
	list = peer_connector_list(fx->p);
	assert_int_equal(json_array_size(list), 1);
	json_decref(list);
	/* A refusal before anything is queued is returned; done never runs. */
	assert_int_equal(peer_connector_delete_async(fx->p, "later", "test",
	    on_async, &al, &err), SP_ERR_NOTFOUND);
	loop_for(fx, 50);
	assert_int_equal(al.calls, 6);
	assert_int_equal(peer_set_outgoing(fx->p, true, "test", &err), 0);
}

#define T(f)	cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_request_completes),
		T(test_typed_errors),
		T(test_timeout),
		T(test_queue_full),
		T(test_long_lane),
		T(test_ping),
		T(test_reset_from_callback),
		T(test_long_lane_outlives_idle_timeout),
		T(test_reused_connection_dropped),
		T(test_admin_changes_async),
	};

	return cmocka_run_group_tests_name("connector", tests, group_setup,
	    group_teardown);
}
