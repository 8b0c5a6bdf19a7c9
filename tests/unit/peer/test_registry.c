/*
 * Unit tests for the peer listener's endpoint registry (peer/registry.c)
 * and its request handling (peer/listener.c): path patterns without a
 * network, then a loopback harness: a real listener on 127.0.0.1 with
 * certificates made here, a real authz on a temporary store, and a
 * blocking TLS client on a thread of its own while the test runs the loop.
 * Prefix routes, derived rules, per-endpoint body limits, a 404, a
 * refusal before the body is read, deferred replies and their timeout,
 * and a client that leaves while its reply is pending.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "authz/authz.h"
#include "peer/listener_int.h"
#include "store/store.h"
#include "util/err.h"
#include "util/log.h"

static void
noop(struct peer_req *r, void *arg)
{
	(void)arg;
	peer_reply(r, 200, json_pack("{s:s}", "path", peer_req_path(r)));
}

/* --- patterns, without a network ------------------------------------------ */

static void
test_patterns(void **state)
{
	struct peer	*p = calloc(1, sizeof(*p));
	struct peer_req	 r;
	struct sp_err	 err = { 0 };
	int		 idx;
	static const char *const bad[] = { "", "ping", "/a//b", "/a/**/b",
	    "/a b", "/a/%41", "/*/*/*/*/*", "/..", NULL };

	(void)state;
	assert_non_null(p);
	assert_int_equal(peer_endpoint_add(p, &(struct peer_endpoint){
	    PEER_GET, "/ping", NULL, NULL, 0, noop, NULL }, &err), 0);
	assert_int_equal(peer_endpoint_add(p, &(struct peer_endpoint){
	    PEER_POST, "/keybindings/*/csr", NULL, NULL, 0, noop, NULL },
	    &err), 0);
	assert_int_equal(peer_endpoint_add(p, &(struct peer_endpoint){
	    PEER_PUT, "/publish/**", NULL, NULL, 0, noop, NULL }, &err), 0);
	/* Same path, other method: a row of its own. Same both: refused. */
	assert_int_equal(peer_endpoint_add(p, &(struct peer_endpoint){
	    PEER_POST, "/ping", NULL, NULL, 0, noop, NULL }, &err), 0);
	assert_int_equal(peer_endpoint_add(p, &(struct peer_endpoint){
	    PEER_GET, "/ping", NULL, NULL, 0, noop, NULL }, &err),
	    SP_ERR_EXISTS);
	for (size_t i = 0; bad[i] != NULL; i++)
		assert_int_equal(peer_endpoint_add(p, &(struct peer_endpoint){
		    PEER_GET, bad[i], NULL, NULL, 0, noop, NULL }, &err),
		    SP_ERR_INVALID);
	assert_int_equal(peer_endpoint_add(p, &(struct peer_endpoint){
	    PEER_GET, "/big", NULL, NULL, PEER_MAX_BODY + 1, noop, NULL },
	    &err), SP_ERR_INVALID);

	memset(&r, 0, sizeof(r));
	assert_int_equal(registry_match(p, "/ping", PEER_GET, &r, &idx), 0);
	assert_int_equal(idx, 0);
	assert_int_equal(registry_match(p, "/ping", PEER_POST, &r, &idx), 0);
	assert_int_equal(idx, 3);
	assert_int_equal(registry_match(p, "/ping", PEER_PUT, &r, &idx), 405);
	assert_int_equal(registry_match(p, "/pong", PEER_GET, &r, &idx), 404);
	assert_int_equal(registry_match(p, "/keybindings/ocsp-1/csr",
	    PEER_POST, &r, &idx), 0);
	assert_string_equal(peer_req_param(&r, 0), "ocsp-1");
	assert_null(peer_req_param(&r, 1));
	/* One segment, a name: not empty, not "..", no '/' or '%'. */
	assert_int_equal(registry_match(p, "/keybindings//csr", PEER_POST, &r,
	    &idx), 404);
	assert_int_equal(registry_match(p, "/keybindings/../csr", PEER_POST,
	    &r, &idx), 404);
	assert_int_equal(registry_match(p, "/keybindings/a/b/csr", PEER_POST,
	    &r, &idx), 404);
	assert_int_equal(registry_match(p, "/keybindings/a%2fb/csr",
	    PEER_POST, &r, &idx), 404);
	/* A prefix takes one segment or more, each a name. */
	assert_int_equal(registry_match(p, "/publish/cas", PEER_PUT, &r,
	    &idx), 0);
	assert_string_equal(peer_req_param(&r, 0), "cas");
	assert_int_equal(registry_match(p, "/publish/a/b.c", PEER_PUT, &r,
	    &idx), 0);
	assert_string_equal(peer_req_param(&r, 0), "a/b.c");
	assert_int_equal(registry_match(p, "/publish", PEER_PUT, &r, &idx),
	    404);
	assert_int_equal(registry_match(p, "/publish/", PEER_PUT, &r, &idx),
	    404);
	assert_int_equal(registry_match(p, "/publish/a/", PEER_PUT, &r, &idx),
	    404);
	assert_int_equal(registry_match(p, "/publish/a/../b", PEER_PUT, &r,
	    &idx), 404);
	registry_free(p);
	free(p);
}

/* --- the loopback harness ------------------------------------------------- */

struct pki {
	EVP_PKEY	*cakey, *srvkey, *clikey, *otherkey;
	X509		*ca, *srv, *cli, *other;
};

static X509 *
make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey,
    bool ca, long serial)
{
	X509		*x = X509_new();
	X509_NAME	*n = X509_NAME_new();
	X509V3_CTX	 v;
	X509_EXTENSION	*e;

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509_NAME_free(n);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&v, issuer ? issuer : x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &v, NID_basic_constraints,
	    ca ? "critical,CA:TRUE" : "CA:FALSE");
	assert_non_null(e);
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	assert_true(X509_sign(x, ikey ? ikey : key, EVP_sha256()) > 0);
	return x;
}

static void
pki_make(struct pki *k)
{
	k->cakey = EVP_EC_gen("P-256");
	k->srvkey = EVP_EC_gen("P-256");
	k->clikey = EVP_EC_gen("P-256");
	k->otherkey = EVP_EC_gen("P-256");
	k->ca = make_cert("Test CA", k->cakey, NULL, NULL, true, 1);
	k->srv = make_cert("server", k->srvkey, k->ca, k->cakey, false, 2);
	k->cli = make_cert("client", k->clikey, k->ca, k->cakey, false, 3);
	k->other = make_cert("stranger", k->otherkey, k->ca, k->cakey, false,
	    4);
}

static void
pki_free(struct pki *k)
{
	EVP_PKEY_free(k->cakey);
	EVP_PKEY_free(k->srvkey);
	EVP_PKEY_free(k->clikey);
	EVP_PKEY_free(k->otherkey);
	X509_free(k->ca);
	X509_free(k->srv);
	X509_free(k->cli);
	X509_free(k->other);
}

static int
hook_identity(void *arg, const char *kb, X509 **cert, STACK_OF(X509) **chain,
    EVP_PKEY **key, struct sp_err *err)
{
	struct pki	*k = arg;

	(void)kb;
	(void)err;
	X509_up_ref(k->srv);
	EVP_PKEY_up_ref(k->srvkey);
	*cert = k->srv;
	*key = k->srvkey;
	*chain = sk_X509_new_null();
	return 0;
}

static int
hook_trust(void *arg, X509_STORE **out, struct sp_err *err)
{
	struct pki	*k = arg;

	(void)err;
	*out = X509_STORE_new();
	X509_STORE_add_cert(*out, k->ca);
	return 0;
}

static uint64_t
hook_generation(void *arg)
{
	(void)arg;
	return 1;
}

struct fixture {
	char			 dir[64];
	struct pki		 k;
	struct store		*st;
	struct authz		*az;
	struct event_base	*base;
	struct peer		*p;
	int			 port;
	/* what the endpoints saw */
	int			 gone, timeouts;
	atomic_int		 waiting;	/* a reply is deferred */
	struct peer_req		*held;
	struct event		*later;
};

static struct fixture	*FX;		/* for the endpoints */

static int
rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

/* --- endpoints under test --------------------------------------------------- */

static void
ep_echo(struct peer_req *r, void *arg)
{
	json_t	*b = peer_req_body(r);

	(void)arg;
	peer_reply(r, 200, json_pack("{s:s,s:s,s:s,s:O?}", "param",
	    peer_req_param(r, 0) ? peer_req_param(r, 0) : "", "role",
	    peer_req_role(r), "node", peer_req_node(r), "body", b));
}

static int
kb_rules(const struct peer_req *r, void *arg,
    char rules[PEER_RULES_MAX][PEER_RULE_MAX], struct sp_err *err)
{
	(void)arg;
	(void)err;
	snprintf(rules[0], PEER_RULE_MAX, "/kb/modify/%s", peer_req_param(r,
	    0));
	return 1;
}

/* "/ca/<body's ca>": a rule from the body, decided before the handler. */
static int
ca_rules(const struct peer_req *r, void *arg,
    char rules[PEER_RULES_MAX][PEER_RULE_MAX], struct sp_err *err)
{
	const char	*ca;

	(void)arg;
	if (peer_req_body(r) == NULL ||
	    (ca = json_string_value(json_object_get(peer_req_body(r),
	    "ca"))) == NULL)
		return sp_err_set(err, SP_ERR_INVALID, "body needs \"ca\"");
	snprintf(rules[0], PEER_RULE_MAX, "/ca/%s", ca);
	return 1;
}

static void
on_later(evutil_socket_t fd, short what, void *arg)
{
	struct fixture	*fx = arg;

	(void)fd;
	(void)what;
	if (fx->held != NULL)
		peer_reply(fx->held, 200, json_pack("{s:b}", "later", 1));
	fx->held = NULL;
}

static void
cancelled(struct peer_req *r, enum peer_cancel why, void *arg)
{
	struct fixture	*fx = arg;

	if (why == PEER_CANCEL_GONE)
		fx->gone++;
	else {
		fx->timeouts++;
		if (strcmp(peer_req_path(r), "/wait/empty") == 0)
			peer_reply(r, 204, NULL);
	}
	fx->held = NULL;
}

/* /wait/later: answered 50 ms later; /wait/slow: 11 s later (beyond
 * evhttp's 10 s inactivity timeout); /wait/empty: 204 at the timeout;
 * /wait/none: no answer, 503 at the timeout; /wait/long: held 30 s. */
static void
ep_wait(struct peer_req *r, void *arg)
{
	struct fixture	*fx = arg;
	const char	*what = peer_req_param(r, 0);
	struct timeval	 tv = { 0, 50000 };
	int		 ms = strcmp(what, "long") == 0 ? 30000 :
			    strcmp(what, "slow") == 0 ? 15000 :
			    strcmp(what, "later") == 0 ? 5000 : 100;

	assert_int_equal(peer_req_defer(r, ms, cancelled, fx), 0);
	/* Deferring twice is refused. */
	assert_int_not_equal(peer_req_defer(r, ms, cancelled, fx), 0);
	fx->held = r;
	atomic_store(&fx->waiting, 1);
	if (strcmp(what, "slow") == 0)
		tv.tv_sec = 11;
	if (strcmp(what, "later") == 0 || strcmp(what, "slow") == 0)
		evtimer_add(fx->later, &tv);
}

static void
ep_forgets(struct peer_req *r, void *arg)
{
	(void)r;
	(void)arg;
}

static int
setup(void **state)
{
	struct fixture		*fx;
	struct sp_err		 err = { 0 };
	struct peer_hooks	 hooks;
	char			 path[128];
	static const char *const small_rules[] = { "/small", NULL };

	log_init(LOG_LVL_ERROR);
	assert_non_null(fx = calloc(1, sizeof(*fx)));
	FX = fx;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/sp_test_registry.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(path, sizeof(path), "%s/store.db", fx->dir);
	pki_make(&fx->k);
	assert_int_equal(store_open(path, &fx->st, &err), 0);
	assert_int_equal(authz_open(fx->st, &fx->az, &err), 0);
	assert_int_equal(authz_role_create(fx->az, "R", "t", &err), 0);
	assert_int_equal(authz_member_add(fx->az, "R", "cn", "client", NULL,
	    "t", &err), 0);
	assert_int_equal(authz_rule_set(fx->az, "R", "/peerincoming", true,
	    false, "t", &err), 0);
	assert_int_equal(authz_rule_set(fx->az, "R", "/small", true, false,
	    "t", &err), 0);
	assert_int_equal(authz_rule_set(fx->az, "R", "/kb/modify/good", true,
	    false, "t", &err), 0);
	assert_int_equal(authz_rule_set(fx->az, "R", "/ca/good", true,
	    false, "t", &err), 0);
	assert_non_null(fx->base = event_base_new());
	assert_non_null(fx->later = evtimer_new(fx->base, on_later, fx));
	hooks.arg = &fx->k;
	hooks.identity = hook_identity;
	hooks.trust = hook_trust;
	hooks.generation = hook_generation;
	if (peer_new(fx->base, NULL, fx->st, fx->az, &hooks, "unit",
	    "127.0.0.1:0", &fx->p, &err) != 0)
		fail_msg("peer_new: %s", err.msg);
	assert_int_equal(peer_set_incoming_keybinding(fx->p, "srv", "t",
	    &err), 0);
	assert_int_equal(peer_set_incoming(fx->p, true, "t", &err), 0);
	peer_set_limits(fx->p, &(struct peer_limits){ .head_timeout = 5 });
	fx->port = atoi(strrchr(peer_listen_address(fx->p), ':') + 1);
	assert_int_equal(peer_endpoint_add(fx->p, &(struct peer_endpoint){
	    PEER_POST, "/small", small_rules, NULL, 16, ep_echo, NULL },
	    &err), 0);
	assert_int_equal(peer_endpoint_add(fx->p, &(struct peer_endpoint){
	    PEER_GET | PEER_POST, "/things/**", NULL, NULL, 4096, ep_echo,
	    NULL }, &err), 0);
	assert_int_equal(peer_endpoint_add(fx->p, &(struct peer_endpoint){
	    PEER_POST, "/kb/*/csr", NULL, kb_rules, 0, ep_echo, NULL }, &err),
	    0);
	assert_int_equal(peer_endpoint_add(fx->p, &(struct peer_endpoint){
	    PEER_GET, "/wait/*", NULL, NULL, 0, ep_wait, fx }, &err), 0);
	assert_int_equal(peer_endpoint_add(fx->p, &(struct peer_endpoint){
	    PEER_POST, "/publish", NULL, ca_rules, 256, ep_echo, NULL }, &err),
	    0);
	assert_int_equal(peer_endpoint_add(fx->p, &(struct peer_endpoint){
	    PEER_GET, "/forgets", NULL, NULL, 0, ep_forgets, NULL }, &err), 0);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;

	peer_free(fx->p);
	event_free(fx->later);
	event_base_free(fx->base);
	authz_free(fx->az);
	store_close(fx->st);
	pki_free(&fx->k);
	nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

/* --- the client thread ------------------------------------------------------ */

struct exchange {
	struct fixture	*fx;
	X509		*cert;
	EVP_PKEY	*key;
	const char	*send;		/* the whole request */
	size_t		 sendlen;
	bool		 hang_up;	/* close right after sending */
	char		 resp[8192];
	size_t		 resplen;
	double		 seconds;
	atomic_int	 done;
};

static double
now_s(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *
client_main(void *arg)
{
	struct exchange		*x = arg;
	struct sockaddr_in	 sin = { .sin_family = AF_INET };
	struct timeval		 tv = { 20, 0 };
	SSL_CTX			*ctx = SSL_CTX_new(TLS_client_method());
	SSL			*ssl = NULL;
	int			 fd, n;
	double			 t0 = now_s();

	sin.sin_port = htons((uint16_t)x->fx->port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (ctx == NULL || connect(fd, (struct sockaddr *)&sin,
	    sizeof(sin)) != 0)
		goto out;
	SSL_CTX_use_certificate(ctx, x->cert);
	SSL_CTX_use_PrivateKey(ctx, x->key);
	if ((ssl = SSL_new(ctx)) == NULL || !SSL_set_fd(ssl, fd) ||
	    SSL_connect(ssl) != 1)
		goto out;
	if (SSL_write(ssl, x->send, (int)x->sendlen) != (int)x->sendlen)
		goto out;
	if (x->hang_up) {
		/* Once the reply is deferred, not with the request. */
		for (int i = 0; i < 5000 && !atomic_load(&x->fx->waiting); i++)
			usleep(1000);
		goto out;
	}
	while (x->resplen < sizeof(x->resp) - 1 && (n = SSL_read(ssl,
	    x->resp + x->resplen, (int)(sizeof(x->resp) - 1 -
	    x->resplen))) > 0)
		x->resplen += (size_t)n;
 out:
	x->resp[x->resplen] = '\0';
	x->seconds = now_s() - t0;
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	atomic_store(&x->done, 1);
	return NULL;
}

static void
on_poll(evutil_socket_t fd, short what, void *arg)
{
	struct exchange	*x = arg;

	(void)fd;
	(void)what;
	if (atomic_load(&x->done))
		event_base_loopbreak(x->fx->base);
}

/* Runs the loop until the client is done, then for linger seconds more. */
static void
run(struct fixture *fx, struct exchange *x, double linger)
{
	pthread_t	 t;
	struct event	*poll = event_new(fx->base, -1, EV_PERSIST, on_poll, x);
	struct timeval	 tv = { 0, 10000 };

	x->fx = fx;
	assert_int_equal(pthread_create(&t, NULL, client_main, x), 0);
	event_add(poll, &tv);
	event_base_dispatch(fx->base);
	event_free(poll);
	pthread_join(t, NULL);
	if (linger > 0) {
		tv.tv_sec = (time_t)linger;
		tv.tv_usec = (suseconds_t)((linger - (double)tv.tv_sec) * 1e6);
		event_base_loopexit(fx->base, &tv);
		event_base_dispatch(fx->base);
	}
}

static int
exchange(struct fixture *fx, X509 *cert, EVP_PKEY *key, const char *req,
    char *body, size_t bodysz)
{
	struct exchange	*x = calloc(1, sizeof(*x));
	const char	*b;
	int		 status = 0;

	assert_non_null(x);
	x->cert = cert;
	x->key = key;
	x->send = req;
	x->sendlen = strlen(req);
	run(fx, x, 0);
	if (strncmp(x->resp, "HTTP/1.1 ", 9) == 0)
		status = atoi(x->resp + 9);
	if (body != NULL) {
		b = strstr(x->resp, "\r\n\r\n");
		snprintf(body, bodysz, "%s", b ? b + 4 : "");
	}
	free(x);
	return status;
}

#define GET(path)	"GET /peer/v1" path " HTTP/1.1\r\nHost: x\r\n" \
			"Connection: close\r\n\r\n"

static int
post(struct fixture *fx, const char *path, const char *data, char *out,
    size_t outsz)
{
	char	req[4096];

	snprintf(req, sizeof(req), "POST /peer/v1%s HTTP/1.1\r\nHost: x\r\n"
	    "Connection: close\r\nContent-Length: %zu\r\n\r\n%s", path,
	    strlen(data), data);
	return exchange(fx, fx->k.cli, fx->k.clikey, req, out, outsz);
}

/* --- the tests ---------------------------------------------------------------- */

static void
test_builtin_rows(void **state)
{
	struct fixture	*fx = *state;
	char		 body[4096];

	assert_int_equal(exchange(fx, fx->k.cli, fx->k.clikey, GET("/ping"),
	    body, sizeof(body)), 200);
	assert_non_null(strstr(body, "\"pong\":true"));
	assert_int_equal(exchange(fx, fx->k.cli, fx->k.clikey, GET("/info"),
	    body, sizeof(body)), 200);
	assert_non_null(strstr(body, "\"node\":\"unit\""));
	assert_int_equal(post(fx, "/ping", "{\"nonce\":\"abc\"}", body,
	    sizeof(body)), 200);
	assert_non_null(strstr(body, "\"nonce\":\"abc\""));
}

static void
test_404_405_and_base_rule(void **state)
{
	struct fixture	*fx = *state;
	char		 body[4096];

	assert_int_equal(exchange(fx, fx->k.cli, fx->k.clikey,
	    GET("/nothing"), body, sizeof(body)), 404);
	assert_non_null(strstr(body, "not_found"));
	assert_int_equal(exchange(fx, fx->k.cli, fx->k.clikey,
	    "GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	    NULL, 0), 404);
	assert_int_equal(exchange(fx, fx->k.cli, fx->k.clikey, GET("/small"),
	    body, sizeof(body)), 405);
	/* A stranger (no role) learns nothing: 403 for every path. */
	assert_int_equal(exchange(fx, fx->k.other, fx->k.otherkey,
	    GET("/nothing"), body, sizeof(body)), 403);
	assert_non_null(strstr(body, "denied"));
}

static void
test_prefix_and_derived_rules(void **state)
{
	struct fixture	*fx = *state;
	char		 body[4096];

	assert_int_equal(exchange(fx, fx->k.cli, fx->k.clikey,
	    GET("/things/a/b"), body, sizeof(body)), 200);
	assert_non_null(strstr(body, "\"param\":\"a/b\""));
	assert_non_null(strstr(body, "\"role\":\"R\""));
	/* Rules computed from the path: allowed for one name, not another. */
	assert_int_equal(post(fx, "/kb/good/csr", "", body, sizeof(body)),
	    200);
	assert_non_null(strstr(body, "\"param\":\"good\""));
	assert_int_equal(post(fx, "/kb/bad/csr", "", body, sizeof(body)),
	    403);
	assert_non_null(strstr(body, "/kb/modify/bad"));
	/* Rules computed from the body: after decoding, before the handler. */
	assert_int_equal(post(fx, "/publish", "{\"ca\":\"good\"}", body,
	    sizeof(body)), 200);
	assert_int_equal(post(fx, "/publish", "{\"ca\":\"bad\"}", body,
	    sizeof(body)), 403);
	assert_non_null(strstr(body, "/ca/bad"));
	assert_int_equal(post(fx, "/publish", "{}", body, sizeof(body)), 400);
	assert_non_null(strstr(body, "body needs"));
}

static void
test_body_limits(void **state)
{
	struct fixture	*fx = *state;
	char		 body[4096], req[512];
	struct exchange	*x;
	static const char *const before[] = {
		"POST /peer/v1/small HTTP/1.1\r\nHost: x\r\n"
		"Content-Length: 17\r\n\r\n",
		"POST /peer/v1/kb/bad/csr HTTP/1.1\r\nHost: x\r\n"
		"Content-Length: 1\r\n\r\n",
	};

	assert_int_equal(post(fx, "/small", "{\"a\":1}", body, sizeof(body)),
	    200);
	assert_non_null(strstr(body, "\"body\":{\"a\":1}"));
	/*
	 * Above the endpoint's 16 bytes: the limit is the endpoint's from
	 * the moment its head arrives, so evhttp refuses the body (413).
	 */
	assert_int_equal(post(fx, "/small", "{\"a\":\"0123456789abcdef\"}",
	    body, sizeof(body)), 413);
	/* /things takes 4 KiB. */
	assert_int_equal(post(fx, "/things/x", "{\"a\":\"0123456789abcdef\"}",
	    body, sizeof(body)), 200);
	assert_int_equal(post(fx, "/kb/good/csr", "{}", body, sizeof(body)),
	    413);
	/*
	 * Refused before the body is read: a length beyond every endpoint's
	 * limit is answered at once, though the body is never sent.
	 */
	assert_non_null(x = calloc(1, sizeof(*x)));
	snprintf(req, sizeof(req), "POST /peer/v1/things/x HTTP/1.1\r\n"
	    "Host: x\r\nContent-Length: 100000\r\n\r\n");
	x->cert = fx->k.cli;
	x->key = fx->k.clikey;
	x->send = req;
	x->sendlen = strlen(req);
	run(fx, x, 0);
	assert_memory_equal(x->resp, "HTTP/1.1 413", 12);
	assert_true(x->seconds < 2.0);
	/*
	 * An endpoint's own limit, and its rules, before the body: 16 bytes
	 * for /small; a path whose derived rules refuse the client takes
	 * none. Neither body is ever sent.
	 */
	for (size_t i = 0; i < 2; i++) {
		memset(x, 0, sizeof(*x));
		x->cert = fx->k.cli;
		x->key = fx->k.clikey;
		x->send = before[i];
		x->sendlen = strlen(before[i]);
		run(fx, x, 0);
		assert_memory_equal(x->resp, "HTTP/1.1 413", 12);
		assert_true(x->seconds < 2.0);
	}
	/* And for a stranger, a few KiB already (no role, no body). */
	memset(x, 0, sizeof(*x));
	snprintf(req, sizeof(req), "POST /peer/v1/things/x HTTP/1.1\r\n"
	    "Host: x\r\nContent-Length: 4097\r\n\r\n");
	x->cert = fx->k.other;
	x->key = fx->k.otherkey;
	x->send = req;
	x->sendlen = strlen(req);
	run(fx, x, 0);
	assert_memory_equal(x->resp, "HTTP/1.1 413", 12);
	assert_true(x->seconds < 2.0);
	free(x);
}

static void
test_deferred_replies(void **state)
{
	struct fixture	*fx = *state;
	char		 body[4096];

	assert_int_equal(exchange(fx, fx->k.cli, fx->k.clikey,
	    GET("/wait/later"), body, sizeof(body)), 200);
	assert_non_null(strstr(body, "\"later\":true"));
	assert_int_equal(fx->timeouts, 0);
	/* Longer than the connection's inactivity timeout (ra/next). */
	assert_int_equal(exchange(fx, fx->k.cli, fx->k.clikey,
	    GET("/wait/slow"), body, sizeof(body)), 200);
	assert_int_equal(fx->timeouts, 0);
	/* The timeout: cancel answers 204, or the listener 503. */
	assert_int_equal(exchange(fx, fx->k.cli, fx->k.clikey,
	    GET("/wait/empty"), body, sizeof(body)), 204);
	assert_int_equal(fx->timeouts, 1);
	assert_int_equal(exchange(fx, fx->k.cli, fx->k.clikey,
	    GET("/wait/none"), body, sizeof(body)), 503);
	assert_non_null(strstr(body, "timeout"));
	assert_int_equal(fx->timeouts, 2);
	/* A request pipelined behind a deferred one waits its turn. */
	assert_int_equal(exchange(fx, fx->k.cli, fx->k.clikey,
	    "GET /peer/v1/wait/later HTTP/1.1\r\nHost: x\r\n\r\n"
	    GET("/ping"), body, sizeof(body)), 200);
	assert_non_null(strstr(body, "\"later\":true"));
	assert_non_null(strstr(body, "\"pong\":true"));
	/* A handler that neither replies nor defers: 500, not a hang. */
	assert_int_equal(exchange(fx, fx->k.cli, fx->k.clikey,
	    GET("/forgets"), body, sizeof(body)), 500);
}

static void
test_client_gone_while_pending(void **state)
{
	struct fixture	*fx = *state;
	struct exchange	*x = calloc(1, sizeof(*x));

	assert_non_null(x);
	x->cert = fx->k.cli;
	x->key = fx->k.clikey;
	x->send = GET("/wait/long");
	x->sendlen = strlen(x->send);
	x->hang_up = true;
	fx->gone = 0;
	atomic_store(&fx->waiting, 0);
	run(fx, x, 1.0);
	/* Noticed and cleaned up long before the 30 s timeout. */
	assert_int_equal(fx->gone, 1);
	assert_null(fx->held);
	assert_int_equal(fx->timeouts, 0);
	free(x);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_patterns),
		cmocka_unit_test_setup_teardown(test_builtin_rows, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_404_405_and_base_rule,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefix_and_derived_rules,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_limits, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_deferred_replies, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_client_gone_while_pending,
		    setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
