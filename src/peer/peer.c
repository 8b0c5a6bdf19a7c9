#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "crypto/ids.h"
#include "net/pool.h"
#include "peer/peer_int.h"
#include "util/log.h"
#include "util/util.h"

#define SET_INCOMING	"peer.incoming_enabled"
#define SET_OUTGOING	"peer.outgoing_enabled"
#define SET_INCOMING_KB	"peer.incoming_keybinding"

int
peer_fingerprint(X509 *x, char out[65])
{
	/* No fallback value: an all-zero key would be shared by every failure. */
	return id_fingerprint_of(x, out) == 0 ? 0 : -1;
}

int
peer_setting_put(struct peer *p, const char *key, const char *value,
    const char *actor, struct sp_err *err)
{
	struct store_txn	*tx = NULL;
	json_t	*d;
	char	*det = NULL;
	int	 r;

	if ((d = json_pack("{s:s,s:s}", "key", key, "value", value)) == NULL ||
	    (det = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		json_decref(d);
		return sp_err_set(err, SP_ERR_ALLOC, "peer setting %s: cannot "
		    "build the audit record", key);
	}
	json_decref(d);
	if ((r = store_txn_begin(p->st, &tx, err)) != 0)
		goto out;
	if ((r = store_exec(p->st, tx, NULL, err, "INSERT INTO settings (key, "
	    "value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = "
	    "excluded.value", "ss", key, value)) < 0 ||
	    (r = store_audit_append(p->st, tx, "peer.setting", actor, det,
	    err)) != 0) {
		store_txn_rollback(tx);
		goto out;
	}
	r = store_txn_commit(tx, err);
 out:
	free(det);
	return r;
}

/* --- database writes off the loop ----------------------------------------- */

static void	write_next(struct peer *p);

static void
write_work(void *arg)
{
	struct peer_write	*w = arg;

	w->rc = w->write(w, &w->err);
}

static void
write_done(void *arg)
{
	struct peer_write	*w = arg;
	struct peer		*p = w->p;

	p->write_busy = false;
	w->apply(w, w->rc, &w->err);	/* frees w */
	write_next(p);
}

/* Starts the next queued write if none runs (loop thread). */
static void
write_next(struct peer *p)
{
	struct peer_write	*w;
	int			 r;

	while (!p->write_busy && (w = TAILQ_FIRST(&p->writes)) != NULL) {
		TAILQ_REMOVE(&p->writes, w, q);
		if ((r = pool_submit(p->pool, write_work, write_done, w)) == 0) {
			p->write_busy = true;
			return;
		}
		/* A full or stopping pool: this one fails, nothing waits. */
		sp_err_set(&w->err, r, "node too busy or stopping: change not "
		    "made, try again");
		w->apply(w, r, &w->err);
	}
}

int
peer_write_run(struct peer *p, struct peer_write *w, struct sp_err *err)
{
	int	r;

	w->p = p;
	if (w->done == NULL || p->pool == NULL) {
		r = w->write(w, &w->err);
		if (r != 0 && err != NULL)
			*err = w->err;
		w->done = NULL;
		w->apply(w, r, &w->err);
		return r;
	}
	TAILQ_INSERT_TAIL(&p->writes, w, q);
	write_next(p);
	return 0;
}

/* --- settings -------------------------------------------------------------- */

enum setting_kind { SK_INCOMING, SK_OUTGOING, SK_INCOMING_KB };

struct setting_write {
	struct peer_write	w;		/* first */
	enum setting_kind	kind;
	bool			on;
	char			value[PEER_NAME_MAX + 1];
	char			actor[128];
};

static const char *const setting_keys[] = {
	[SK_INCOMING] = SET_INCOMING,
	[SK_OUTGOING] = SET_OUTGOING,
	[SK_INCOMING_KB] = SET_INCOMING_KB,
};

static int
setting_write(struct peer_write *w, struct sp_err *err)
{
	struct setting_write	*sw = (struct setting_write *)w;

	return peer_setting_put(w->p, setting_keys[sw->kind], sw->value,
	    sw->actor, err);
}

static void
setting_apply(struct peer_write *w, int rc, const struct sp_err *err)
{
	struct setting_write	*sw = (struct setting_write *)w;
	struct peer		*p = w->p;

	if (rc == 0) {
		switch (sw->kind) {
		case SK_INCOMING:
			p->incoming_enabled = sw->on;
			log_info("peer: incoming connections %s by %s",
			    sw->on ? "enabled" : "disabled", sw->actor);
			break;
		case SK_OUTGOING:
			p->outgoing_enabled = sw->on;
			break;
		case SK_INCOMING_KB:
			snprintf(p->incoming_kb, sizeof(p->incoming_kb), "%s",
			    sw->value);
			/* The next connection gets the new identity. */
			p->srv_dirty = true;
			p->srv_retry = 0;
			break;
		}
	}
	if (w->done != NULL)
		w->done(w->arg, rc, err);
	free(sw);
}

static int
setting_change(struct peer *p, enum setting_kind kind, bool on,
    const char *value, const char *actor, peer_done_fn *done, void *arg,
    struct sp_err *err)
{
	struct setting_write	*sw;

	if ((sw = calloc(1, sizeof(*sw))) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	sw->w.write = setting_write;
	sw->w.apply = setting_apply;
	sw->w.done = done;
	sw->w.arg = arg;
	sw->kind = kind;
	sw->on = on;
	snprintf(sw->value, sizeof(sw->value), "%s", value != NULL ? value :
	    on ? "1" : "0");
	snprintf(sw->actor, sizeof(sw->actor), "%s", actor != NULL ? actor :
	    "");
	return peer_write_run(p, &sw->w, err);
}

static int
setting_row(const struct store_row *row, void *arg)
{
	struct peer	*p = arg;
	const char	*k = store_row_text(row, 0), *v = store_row_text(row, 1);

	if (strcmp(k, SET_INCOMING) == 0)
		p->incoming_enabled = strcmp(v, "1") == 0;
	else if (strcmp(k, SET_OUTGOING) == 0)
		p->outgoing_enabled = strcmp(v, "1") == 0;
	else if (strcmp(k, SET_INCOMING_KB) == 0)
		snprintf(p->incoming_kb, sizeof(p->incoming_kb), "%s", v);
	return 0;
}

int
peer_new(struct event_base *base, struct pool *pool, struct store *st,
    struct authz *az, const struct peer_hooks *hooks, const char *node_name,
    const char *listen, struct peer **out, struct sp_err *err)
{
	struct peer	*p;
	int		 r;

	*out = NULL;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	p->base = base;
	p->pool = pool;
	p->st = st;
	p->az = az;
	p->hooks = *hooks;
	snprintf(p->node, sizeof(p->node), "%s", node_name);
	TAILQ_INIT(&p->connectors);
	TAILQ_INIT(&p->writes);
	/* Incoming is off until an operator turns it on; outgoing is on. */
	p->incoming_enabled = false;
	p->outgoing_enabled = true;
	if ((r = store_select(st, NULL, setting_row, p, err, "SELECT key, value "
	    "FROM settings WHERE key LIKE 'peer.%'", "")) != 0 ||
	    (r = connectors_load(p, err)) != 0)
		goto fail;
	if (listen != NULL && (r = listener_start(p, listen, err)) != 0)
		goto fail;
	*out = p;
	return 0;
 fail:
	peer_free(p);
	return r;
}

void
peer_free(struct peer *p)
{
	if (p == NULL)
		return;
	p->pool = NULL;		/* freed before us (node_cleanup()) */
	{
		struct peer_write	*w;
		struct sp_err		 e = { 0 };

		/* Nothing should wait (the pool ran its completions). */
		while ((w = TAILQ_FIRST(&p->writes)) != NULL) {
			TAILQ_REMOVE(&p->writes, w, q);
			sp_err_set(&e, SP_ERR_STATE, "node stopping");
			w->apply(w, SP_ERR_STATE, &e);
		}
	}
	connectors_free(p);
	listener_stop(p);
	free(p);
}

const char *
peer_listen_address(const struct peer *p)
{
	return p->listen;
}

json_t *
peer_status(struct peer *p)
{
	return json_pack("{s:s,s:b,s:s,s:b}", "listen", p->listen,
	    "incoming_enabled", p->incoming_enabled, "incoming_keybinding",
	    p->incoming_kb, "outgoing_enabled", p->outgoing_enabled);
}

int
peer_set_incoming(struct peer *p, bool enabled, const char *actor,
    struct sp_err *err)
{
	return setting_change(p, SK_INCOMING, enabled, NULL, actor, NULL, NULL,
	    err);
}

int
peer_set_incoming_async(struct peer *p, bool enabled, const char *actor,
    peer_done_fn *done, void *arg, struct sp_err *err)
{
	return setting_change(p, SK_INCOMING, enabled, NULL, actor, done, arg,
	    err);
}

/* Refuses a binding that cannot serve TLS now (a read, on the loop). */
static int
kb_usable(struct peer *p, const char *kb, struct sp_err *err)
{
	X509		*cert = NULL;
	STACK_OF(X509)	*chain = NULL;
	EVP_PKEY	*key = NULL;
	int		 r;

	if (!sp_name_valid(kb, PEER_NAME_MAX))
		return sp_err_set(err, SP_ERR_INVALID, "bad key binding name");
	if ((r = p->hooks.identity(p->hooks.arg, kb, &cert, &chain, &key,
	    err)) != 0)
		return r;
	X509_free(cert);
	sk_X509_pop_free(chain, X509_free);
	EVP_PKEY_free(key);
	return 0;
}

int
peer_set_incoming_keybinding(struct peer *p, const char *kb,
    const char *actor, struct sp_err *err)
{
	int	r;

	if ((r = kb_usable(p, kb, err)) != 0)
		return r;
	return setting_change(p, SK_INCOMING_KB, true, kb, actor, NULL, NULL,
	    err);
}

int
peer_set_incoming_keybinding_async(struct peer *p, const char *kb,
    const char *actor, peer_done_fn *done, void *arg, struct sp_err *err)
{
	int	r;

	if ((r = kb_usable(p, kb, err)) != 0)
		return r;
	return setting_change(p, SK_INCOMING_KB, true, kb, actor, done, arg,
	    err);
}

int
peer_set_outgoing(struct peer *p, bool enabled, const char *actor,
    struct sp_err *err)
{
	return setting_change(p, SK_OUTGOING, enabled, NULL, actor, NULL, NULL,
	    err);
}

int
peer_set_outgoing_async(struct peer *p, bool enabled, const char *actor,
    peer_done_fn *done, void *arg, struct sp_err *err)
{
	return setting_change(p, SK_OUTGOING, enabled, NULL, actor, done, arg,
	    err);
}

int
peer_body_decode(const unsigned char *body, size_t len, json_t **out,
    struct sp_err *err)
{
	json_error_t	je;
	json_t		*doc;

	*out = NULL;
	if (len > PEER_MAX_BODY)
		return sp_err_set(err, SP_ERR_LIMIT, "body larger than %d bytes",
		    PEER_MAX_BODY);
	if ((doc = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES,
	    &je)) == NULL)
		return sp_err_set(err, SP_ERR_INVALID, "body is not JSON: %s "
		    "(line %d)", je.text, je.line);
	if (!json_is_object(doc)) {
		json_decref(doc);
		return sp_err_set(err, SP_ERR_INVALID, "body must be a JSON "
		    "object");
	}
	*out = doc;
	return 0;
}

int
peer_ping_decode(const json_t *body, const char **nonce, struct sp_err *err)
{
	const json_t	*v = NULL;
	const char	*s;
	size_t		 n;

	*nonce = NULL;
	if (json_object_size(body) > 1 || ((v = json_object_get(body,
	    "nonce")) == NULL && json_object_size(body) == 1))
		return sp_err_set(err, SP_ERR_INVALID, "ping body takes only "
		    "\"nonce\"");
	if (v == NULL)
		return 0;
	if (!json_is_string(v) || (n = json_string_length(v)) == 0 || n > 64)
		return sp_err_set(err, SP_ERR_INVALID, "nonce must be a string "
		    "of 1..64 characters");
	s = json_string_value(v);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return sp_err_set(err, SP_ERR_INVALID, "nonce must be "
			    "printable ASCII");
	*nonce = s;
	return 0;
}
