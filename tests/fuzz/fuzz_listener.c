/*
 * libFuzzer target: the peer listener's request handling, end to end in
 * one process. A real listener on 127.0.0.1 (certificates made here, a
 * real authz on a temporary store, the endpoint registry with ping, info,
 * a prefix route, a route with derived rules, one with a small body limit
 * and one that defers its reply) serves a TLS client driven from the same
 * thread, which sends the input's bytes after the handshake.
 *
 * Input: byte 0 chooses the client (bit 0: a certificate with a role, or
 * a stranger's without one; bit 1: incoming disabled); the rest goes to
 * the listener as is (framing, routing, bodies, pipelining).
 *
 * Checked besides memory safety: the authorization order. A stranger, or
 * anyone while incoming is disabled, never gets a 2xx, nor a 404 or 405
 * that would tell which paths exist.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "authz/authz.h"
#include "peer/listener_int.h"
#include "store/store.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ROUNDS		300	/* loop turns per input, 1 ms poll each */

static struct {
	struct event_base	*base;
	struct peer		*p;
	struct store		*st;
	struct authz		*az;
	int			 port;
	EVP_PKEY		*cakey, *srvkey, *clikey, *strkey;
	X509			*ca, *srv, *cli, *str;
	SSL_CTX			*cctx[2];	/* stranger, client */
} F;

static X509 *
make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey,
    bool ca, long serial)
{
	X509		*x = X509_new();
	X509_NAME	*n = X509_NAME_new();
	X509V3_CTX	 v;
	X509_EXTENSION	*e;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509_NAME_free(n);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400 * 30);
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&v, issuer ? issuer : x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &v, NID_basic_constraints,
	    ca ? "critical,CA:TRUE" : "CA:FALSE");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	if (X509_sign(x, ikey ? ikey : key, EVP_sha256()) <= 0)
		abort();
	return x;
}

static int
hook_identity(void *arg, const char *kb, X509 **cert, STACK_OF(X509) **chain,
    EVP_PKEY **key, struct sp_err *err)
{
	(void)arg;
	(void)kb;
	(void)err;
	X509_up_ref(F.srv);
	EVP_PKEY_up_ref(F.srvkey);
	*cert = F.srv;
	*key = F.srvkey;
	*chain = sk_X509_new_null();
	return 0;
}

static int
hook_trust(void *arg, X509_STORE **out, struct sp_err *err)
{
	(void)arg;
	(void)err;
	*out = X509_STORE_new();
	X509_STORE_add_cert(*out, F.ca);
	return 0;
}

static uint64_t
hook_generation(void *arg)
{
	(void)arg;
	return 1;
}

static void
ep_echo(struct peer_req *r, void *arg)
{
	(void)arg;
	peer_reply(r, 200, json_pack("{s:s,s:O?}", "param",
	    peer_req_param(r, 0) ? peer_req_param(r, 0) : "", "body",
	    peer_req_body(r)));
}

static int
kb_rules(const struct peer_req *r, void *arg,
    char rules[PEER_RULES_MAX][PEER_RULE_MAX], struct sp_err *err)
{
	(void)arg;
	if (strcmp(peer_req_param(r, 0), "evil") == 0) {
		sp_err_set(err, SP_ERR_INVALID, "no such key binding");
		return SP_ERR_INVALID;
	}
	snprintf(rules[0], PEER_RULE_MAX, "/kb/modify/%s", peer_req_param(r,
	    0));
	return 1;
}

static void
ep_wait(struct peer_req *r, void *arg)
{
	(void)arg;
	if (peer_req_defer(r, 20, NULL, NULL) != 0)
		abort();
}

static void
setup(void)
{
	struct sp_err		 err = { 0 };
	struct peer_hooks	 hooks = { NULL, hook_identity, hook_trust,
				    hook_generation };
	char			 dir[] = "/tmp/sp_fuzz_listener.XXXXXX";
	char			 path[64];
	static const char *const small_rules[] = { "/small", NULL };
	const struct peer_endpoint rows[] = {
		{ PEER_POST, "/small", small_rules, NULL, 16, ep_echo, NULL },
		{ PEER_GET | PEER_POST | PEER_PUT, "/things/**", NULL, NULL,
		    4096, ep_echo, NULL },
		{ PEER_POST, "/kb/*/csr", NULL, kb_rules, 64, ep_echo, NULL },
		{ PEER_GET, "/wait/*", NULL, NULL, 0, ep_wait, NULL },
	};

	signal(SIGPIPE, SIG_IGN);
	log_init(LOG_LVL_ERROR);
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/store.db", dir);
	F.cakey = EVP_EC_gen("P-256");
	F.srvkey = EVP_EC_gen("P-256");
	F.clikey = EVP_EC_gen("P-256");
	F.strkey = EVP_EC_gen("P-256");
	F.ca = make_cert("Fuzz CA", F.cakey, NULL, NULL, true, 1);
	F.srv = make_cert("server", F.srvkey, F.ca, F.cakey, false, 2);
	F.cli = make_cert("client", F.clikey, F.ca, F.cakey, false, 3);
	F.str = make_cert("stranger", F.strkey, F.ca, F.cakey, false, 4);
	if (store_open(path, &F.st, &err) != 0 ||
	    authz_open(F.st, &F.az, &err) != 0 ||
	    authz_role_create(F.az, "R", "f", &err) != 0 ||
	    authz_member_add(F.az, "R", "cn", "client", NULL, "f", &err) != 0 ||
	    authz_rule_set(F.az, "R", "/peerincoming", true, false, "f",
	    &err) != 0 ||
	    authz_rule_set(F.az, "R", "/small", true, false, "f", &err) != 0 ||
	    authz_rule_set(F.az, "R", "/kb/modify/", true, true, "f",
	    &err) != 0 ||
	    authz_rule_set(F.az, "R", "/kb/modify/no", false, false, "f",
	    &err) != 0 ||
	    (F.base = event_base_new()) == NULL ||
	    peer_new(F.base, NULL, F.st, F.az, &hooks, "fuzz", "127.0.0.1:0",
	    &F.p, &err) != 0 ||
	    peer_set_incoming_keybinding(F.p, "srv", "f", &err) != 0 ||
	    peer_set_incoming(F.p, true, "f", &err) != 0) {
		fprintf(stderr, "fuzz_listener setup: %s\n", err.msg);
		abort();
	}
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (peer_endpoint_add(F.p, &rows[i], &err) != 0)
			abort();
	peer_set_limits(F.p, &(struct peer_limits){ .handshake_timeout = 1,
	    .head_timeout = 1 });
	F.port = atoi(strrchr(peer_listen_address(F.p), ':') + 1);
	for (int i = 0; i < 2; i++) {
		if ((F.cctx[i] = SSL_CTX_new(TLS_client_method())) == NULL ||
		    SSL_CTX_use_certificate(F.cctx[i], i ? F.cli : F.str) != 1 ||
		    SSL_CTX_use_PrivateKey(F.cctx[i], i ? F.clikey :
		    F.strkey) != 1)
			abort();
		/* One resumable session would skip most handshakes: none. */
		SSL_CTX_set_session_cache_mode(F.cctx[i], SSL_SESS_CACHE_OFF);
		SSL_CTX_set_options(F.cctx[i], SSL_OP_NO_TICKET);
	}
}

static void
turn(void)
{
	event_base_loop(F.base, EVLOOP_NONBLOCK);
}

/* Statuses in what the listener sent back. */
static void
check(const char *resp, size_t len, bool trusted)
{
	const char	*s = resp, *end = resp + len;
	int		 status;

	if (trusted)
		return;
	while ((s = memmem(s, (size_t)(end - s), "HTTP/1.1 ", 9)) != NULL) {
		s += 9;
		status = atoi(s);
		if ((status >= 200 && status < 300) || status == 404 ||
		    status == 405) {
			fprintf(stderr, "fuzz_listener: %d for a client that "
			    "may not be served\n", status);
			abort();
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_in	 sin = { .sin_family = AF_INET };
	static char		 resp[65536];
	size_t			 rlen = 0, sent = 0;
	SSL			*ssl;
	struct pollfd		 pfd;
	bool			 hs = false, shut = false, trusted;
	int			 fd, n, e, idle = 0, who;

	if (F.base == NULL)
		setup();
	if (size < 1)
		return 0;
	F.p->incoming_enabled = !(data[0] & 2);
	who = data[0] & 1;
	trusted = who && F.p->incoming_enabled;
	data++;
	size--;
	sin.sin_port = htons((uint16_t)F.port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) == -1)
		abort();
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 &&
	    errno != EINPROGRESS)
		abort();
	if ((ssl = SSL_new(F.cctx[who])) == NULL ||
	    !SSL_set_fd(ssl, fd))
		abort();
	SSL_set_connect_state(ssl);
	for (int round = 0; round < ROUNDS && idle < 60; round++) {
		turn();
		if (!hs) {
			if ((n = SSL_do_handshake(ssl)) == 1)
				hs = true;
			else if ((e = SSL_get_error(ssl, n)) !=
			    SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
				break;
		}
		if (hs && sent < size) {
			if ((n = SSL_write(ssl, data + sent, (int)(size -
			    sent))) > 0)
				sent += (size_t)n;
			else if ((e = SSL_get_error(ssl, n)) !=
			    SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
				break;
		}
		if (hs && sent == size && !shut) {
			/* Tell evhttp nothing more comes. */
			(void)SSL_shutdown(ssl);
			shut = true;
		}
		if (hs) {
			n = SSL_read(ssl, resp + rlen, (int)(sizeof(resp) - 1 -
			    rlen));
			if (n > 0) {
				rlen += (size_t)n;
				idle = 0;
				if (rlen == sizeof(resp) - 1)
					break;
				continue;
			}
			e = SSL_get_error(ssl, n);
			if (e == SSL_ERROR_ZERO_RETURN || (e != SSL_ERROR_WANT_READ &&
			    e != SSL_ERROR_WANT_WRITE))
				break;
			if (shut)
				idle++;
		}
		pfd.fd = fd;
		pfd.events = POLLIN;
		(void)poll(&pfd, 1, 1);
	}
	ERR_clear_error();
	SSL_free(ssl);
	close(fd);
	/* Let the listener see the close and free the connection. */
	for (int i = 0; i < 20; i++) {
		turn();
		(void)poll(NULL, 0, 1);
	}
	check(resp, rlen, trusted);
	return 0;
}
