#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>
#include <malloc.h>
#include <openssl/crypto.h>

#include "admin/proto.h"
#include "admin/server.h"
#include "authz/authz.h"
#include "ca/ca.h"
#include "kb/kb.h"
#include "net/pool.h"
#include "node/config.h"
#include "node/node.h"
#include "peer/peer.h"
#include "pub/pub.h"
#include "store/store.h"
#include "token/token.h"
#include "util/log.h"
#include "util/util.h"
#include "va/va.h"

#define CRL_TICK_SECONDS	5

struct node {
	struct config		 conf;
	char			 dir[PATH_MAX];
	struct store		*st;
	struct tokens		*tokens;
	struct ca_service	*ca;
	struct authz		*authz;
	struct kb_service	*kb;
	struct va		*va;
	struct peer		*peer;
	struct pub		*pub;
	struct event_base	*base;
	struct pool		*pool;
	struct admin_server	*admin;
	struct admin_ctx	 actx;
	struct event		*ev_term, *ev_int, *ev_crl;
	bool			 crl_running;
};

/*
 * jansson's buffers (admin requests, their parsed strings, the lexer's
 * scratch) may hold a token PIN: every block it frees is wiped first.
 */
static void
json_free_wiped(void *p)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, malloc_usable_size(p));
	free(p);
}

static int
path_in(char *out, size_t outsz, const char *dir, const char *file,
    struct sp_err *err)
{
	if ((size_t)snprintf(out, outsz, "%s/%s", dir, file) >= outsz)
		return sp_err_set(err, SP_ERR_INVALID, "%s: path too long",
		    dir);
	return 0;
}

/* Creates the missing parents of path (mode 0755), as mkdir -p. */
static int
mkdir_parents(const char *path, struct sp_err *err)
{
	char	buf[PATH_MAX], *p;

	if ((size_t)snprintf(buf, sizeof(buf), "%s", path) >= sizeof(buf))
		return sp_err_set(err, SP_ERR_INVALID, "%s: path too long",
		    path);
	for (p = buf + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(buf, 0755) == -1 && errno != EEXIST)
			return sp_err_set(err, SP_ERR_IO, "%s: %s", buf,
			    strerror(errno));
		*p = '/';
	}
	return 0;
}

int
node_init(const char *dir, const char *name, const char *peer_listen,
    const char *va_listen, struct sp_err *err)
{
	char		 abs[PATH_MAX], conf[PATH_MAX], db[PATH_MAX];
	struct store	*st = NULL;
	struct stat	 sb;
	int		 r;

	if (name != NULL && !sp_name_valid(name, CONFIG_NAME_MAX))
		return sp_err_set(err, SP_ERR_INVALID, "node name must be 1 to "
		    "%d characters of [A-Za-z0-9_.-], not \".\" or "
		    "\"..\"", CONFIG_NAME_MAX);
	if (peer_listen != NULL &&
	    (r = config_listen_valid(peer_listen, err)) != 0)
		return r;
	if (va_listen != NULL &&
	    (r = config_listen_valid(va_listen, err)) != 0)
		return r;
	if ((r = mkdir_parents(dir, err)) != 0)
		return r;
	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		return sp_err_set(err, SP_ERR_IO, "%s: %s", dir,
		    strerror(errno));
	if (realpath(dir, abs) == NULL)
		return sp_err_set(err, SP_ERR_IO, "%s: %s", dir,
		    strerror(errno));
	if ((r = path_in(conf, sizeof(conf), abs, CONFIG_FILE, err)) != 0 ||
	    (r = path_in(db, sizeof(db), abs, NODE_DB_FILE, err)) != 0)
		return r;
	if (stat(conf, &sb) == 0)
		return sp_err_set(err, SP_ERR_EXISTS, "%s already holds a node "
		    "(%s exists)", abs, CONFIG_FILE);
	if (chmod(abs, 0700) == -1)
		return sp_err_set(err, SP_ERR_IO, "%s: %s", abs, strerror(errno));
	if ((r = store_open(db, &st, err)) != 0)
		return r;
	store_close(st);
	/* Keys in the database are encrypted, the rest is still private. */
	if (chmod(db, 0600) == -1)
		return sp_err_set(err, SP_ERR_IO, "%s: %s", db, strerror(errno));
	if ((r = config_write_new(conf, name ? name : "sallyport", db,
	    peer_listen, va_listen, err)) != 0)
		return r;
	return 0;
}

int
node_check(const char *dir, struct sp_err *err)
{
	struct config	c;
	char		conf[PATH_MAX];
	int		r;

	if ((r = path_in(conf, sizeof(conf), dir, CONFIG_FILE, err)) != 0)
		return r;
	return config_load(conf, &c, err);
}

/* Holds DIR's lock for the life of the process; returns the fd. */
static int
lock_dir(const char *dir, struct sp_err *err)
{
	char	path[PATH_MAX], pid[32];
	int	fd, n;

	if (path_in(path, sizeof(path), dir, NODE_LOCK_FILE, err) != 0)
		return -1;
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1) {
		sp_err_set(err, SP_ERR_IO, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		n = (int)read(fd, pid, sizeof(pid) - 1);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		sp_err_set(err, SP_ERR_STATE, "a node is already running on %s "
		    "(pid %s)", dir, pid[0] ? pid : "?");
		close(fd);
		return -1;
	}
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) == -1 || write(fd, pid, (size_t)n) != n)
		log_warn("%s", path);
	return fd;
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct node	*n = arg;

	(void)what;
	log_info("signal %d: shutting down", (int)sig);
	event_base_loopbreak(n->base);
}

static void
crl_work(void *arg)
{
	struct node	*n = arg;

	(void)ca_crl_tick(n->ca);
}

static void
crl_done(void *arg)
{
	struct node	*n = arg;

	n->crl_running = false;
}

static void
on_crl_tick(evutil_socket_t fd, short what, void *arg)
{
	struct node	*n = arg;

	(void)fd;
	(void)what;
	if (n->crl_running)
		return;
	if (pool_submit(n->pool, crl_work, crl_done, n) == 0)
		n->crl_running = true;
}

/* The peer layer's view of key bindings and trust. */
static int
hook_identity(void *arg, const char *kb, X509 **cert, STACK_OF(X509) **chain,
    EVP_PKEY **key, struct sp_err *err)
{
	return kb_identity(arg, kb, cert, chain, key, err);
}

static int
hook_trust(void *arg, X509_STORE **out, struct sp_err *err)
{
	return kb_trust_store(arg, out, err);
}

static uint64_t
hook_generation(void *arg)
{
	return kb_generation(arg);
}

static void
node_cleanup(struct node *n)
{
	/*
	 * Accepted work finishes before anything it uses goes away; the peer
	 * service fails what is still in flight, which answers its admin
	 * requests before the admin socket closes.
	 */
	pub_stop(n->pub);
	pool_free(n->pool);
	peer_free(n->peer);
	pub_free(n->pub);
	va_free(n->va);
	admin_server_free(n->admin);
	if (n->ev_term != NULL)
		event_free(n->ev_term);
	if (n->ev_int != NULL)
		event_free(n->ev_int);
	if (n->ev_crl != NULL)
		event_free(n->ev_crl);
	if (n->base != NULL)
		event_base_free(n->base);
	kb_free(n->kb);
	authz_free(n->authz);
	ca_service_free(n->ca);
	tokens_free(n->tokens);
	store_close(n->st);
}

/*
 * Every peer connection costs a descriptor: take all the kernel allows
 * this process (the hard limit) and say what that is, so an operator can
 * size the limit before a flood finds it.
 */
static void
raise_nofile(void)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		log_warn("getrlimit(RLIMIT_NOFILE)");
		return;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
			log_warn("setrlimit(RLIMIT_NOFILE)");
			(void)getrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	log_info("node: up to %llu file descriptors",
	    (unsigned long long)rl.rlim_cur);
}

int
node_run(const char *dir, struct sp_err *err)
{
	struct node		 n = { 0 };
	struct peer_hooks	 hooks;
	char			 conf[PATH_MAX], sock[PATH_MAX];
	struct timeval		 tick = { CRL_TICK_SECONDS, 0 };
	int			 lockfd = -1, r;

	if (realpath(dir, n.dir) == NULL)
		return sp_err_set(err, SP_ERR_IO, "%s: %s", dir,
		    strerror(errno));
	if ((r = path_in(conf, sizeof(conf), n.dir, CONFIG_FILE, err)) != 0 ||
	    (r = path_in(sock, sizeof(sock), n.dir, ADMIN_SOCKET, err)) != 0 ||
	    (r = config_load(conf, &n.conf, err)) != 0)
		return r;
	log_init(n.conf.log_level);
	if ((lockfd = lock_dir(n.dir, err)) == -1)
		return SP_ERR_STATE;
	signal(SIGPIPE, SIG_IGN);
	json_set_alloc_funcs(malloc, json_free_wiped);
	if (evthread_use_pthreads() == -1) {
		r = sp_err_set(err, SP_ERR_INTERNAL, "libevent threads");
		goto out;
	}
	if ((r = store_open(n.conf.database, &n.st, err)) != 0 ||
	    (r = tokens_open(n.st, &n.tokens, err)) != 0 ||
	    (r = ca_service_open(n.st, n.tokens, &n.ca, err)) != 0 ||
	    (r = authz_open(n.st, &n.authz, err)) != 0 ||
	    (r = kb_open(n.st, n.tokens, &n.kb, err)) != 0)
		goto out;
	store_set_crl_keep(n.st, n.conf.crl_keep);
	authz_set_incoming_max(n.authz, n.conf.incoming_max);
	if ((n.base = event_base_new()) == NULL ||
	    (n.pool = pool_new(n.base, n.conf.workers)) == NULL) {
		r = sp_err_set(err, SP_ERR_INTERNAL, "event loop setup failed");
		goto out;
	}
	hooks.arg = n.kb;
	hooks.identity = hook_identity;
	hooks.trust = hook_trust;
	hooks.generation = hook_generation;
	if ((r = peer_new(n.base, n.pool, n.st, n.authz, &hooks, n.conf.name,
	    n.conf.peer_listen[0] ? n.conf.peer_listen : NULL, &n.peer,
	    err)) != 0)
		goto out;
	peer_set_limits(n.peer, &(struct peer_limits){
	    .max_connections = n.conf.max_connections,
	    .max_per_address = n.conf.max_connections_per_address,
	    .handshake_timeout = n.conf.handshake_timeout,
	    .head_timeout = n.conf.head_timeout,
	    .idle_timeout = n.conf.idle_timeout });
	if ((r = va_open(n.st, n.tokens, n.kb, n.base, n.pool, &n.va,
	    err)) != 0)
		goto out;
	if ((r = va_peer_register(n.va, n.peer, n.authz, err)) != 0 ||
	    (n.conf.va_listen[0] != '\0' &&
	    (r = va_listen(n.va, n.conf.va_listen, n.conf.va_loops,
	    err)) != 0))
		goto out;
	/* Publishers: the CA's outbox and its delivery (pub/pub.h). */
	if ((r = pub_open(n.st, n.ca, &n.pub, err)) != 0 ||
	    (r = pub_start(n.pub, n.peer, n.base, n.pool, err)) != 0)
		goto out;
	n.actx.pub = n.pub;
	n.actx.va = n.va;
	n.actx.ca = n.ca;
	n.actx.tokens = n.tokens;
	n.actx.st = n.st;
	n.actx.authz = n.authz;
	n.actx.kb = n.kb;
	n.actx.peer = n.peer;
	n.actx.base = n.base;
	n.actx.pool = n.pool;
	n.actx.name = n.conf.name;
	n.actx.dir = n.dir;
	n.actx.started = sp_now();
	if ((r = admin_server_start(n.base, n.pool, sock, &n.actx, &n.admin,
	    err)) != 0)
		goto out;
	n.ev_term = evsignal_new(n.base, SIGTERM, on_signal, &n);
	n.ev_int = evsignal_new(n.base, SIGINT, on_signal, &n);
	n.ev_crl = event_new(n.base, -1, EV_PERSIST, on_crl_tick, &n);
	if (n.ev_term == NULL || n.ev_int == NULL || n.ev_crl == NULL ||
	    evsignal_add(n.ev_term, NULL) == -1 ||
	    evsignal_add(n.ev_int, NULL) == -1 ||
	    event_add(n.ev_crl, &tick) == -1) {
		r = sp_err_set(err, SP_ERR_INTERNAL, "event setup failed");
		goto out;
	}
	raise_nofile();
	log_info("node %s running in %s (pid %d, %d workers), admin socket "
	    "%s", n.conf.name, n.dir, (int)getpid(), n.conf.workers, sock);
	if (event_base_dispatch(n.base) == -1)
		r = sp_err_set(err, SP_ERR_INTERNAL, "event loop failed");
	log_info("node %s stopped", n.conf.name);
 out:
	node_cleanup(&n);
	if (lockfd != -1)
		close(lockfd);
	return r;
}
