/*
 * The stored connectors (table connectors) and their admin operations:
 * load, add, edit, clone, delete, list, reset. Every change is one
 * audited transaction; edit, delete and reset drop the pool, failing the
 * requests it holds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peer/connector_int.h"
#include "util/log.h"
#include "util/util.h"

/* --- store ---------------------------------------------------------------- */

struct connector *
connector_find(struct peer *p, const char *name)
{
	struct connector	*c;

	TAILQ_FOREACH(c, &p->connectors, e)
		if (name != NULL && strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

static int
load_row(const struct store_row *row, void *arg)
{
	struct peer		*p = arg;
	struct connector	*c;
	struct sp_err		 err = { 0 };

	if ((c = connector_new(p)) == NULL)
		return SP_ERR_ALLOC;
	c->id = store_row_int(row, 0);
	snprintf(c->name, sizeof(c->name), "%s", store_row_text(row, 1));
	c->enabled = store_row_int(row, 3) != 0;
	snprintf(c->auth, sizeof(c->auth), "%s", store_row_text(row, 4));
	c->max = (int)store_row_int(row, 5);
	if (connector_url_parse(c, store_row_text(row, 2), &err) != 0) {
		log_warnx("connector %s: %s", c->name, err.msg);
		connector_free(c);
		return SP_ERR_DB;
	}
	TAILQ_INSERT_TAIL(&p->connectors, c, e);
	return 0;
}

int
connectors_load(struct peer *p, struct sp_err *err)
{
	return store_select(p->st, NULL, load_row, p, err, "SELECT id, name, url, "
	    "enabled, auth, max_conns FROM connectors ORDER BY name", "");
}

void
connectors_free(struct peer *p)
{
	struct connector	*c;

	while ((c = TAILQ_FIRST(&p->connectors)) != NULL) {
		TAILQ_REMOVE(&p->connectors, c, e);
		connector_drop_pool(c, "node is shutting down", true);
		connector_free(c);
	}
}

static int
audit(struct peer *p, struct store_txn *tx, const char *event,
    const char *actor, json_t *d, struct sp_err *err)
{
	char	*s = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	int	 r;

	json_decref(d);
	if (s == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	r = store_audit_append(p->st, tx, event, actor, s, err);
	free(s);
	return r;
}

static int
save(struct peer *p, struct connector *c, bool insert, const char *actor,
    struct sp_err *err)
{
	struct store_txn	*tx = NULL;
	int	r;

	if ((r = store_txn_begin(p->st, &tx, err)) != 0)
		return r;
	if (insert)
		r = store_exec(p->st, tx, &c->id, err, "INSERT INTO connectors "
		    "(name, url, enabled, auth, max_conns, created) VALUES "
		    "(?, ?, ?, ?, ?, ?) RETURNING id", "ssisii", c->name, c->url,
		    (int64_t)c->enabled, c->auth, (int64_t)c->max,
		    (int64_t)sp_now());
	else
		r = store_exec(p->st, tx, NULL, err, "UPDATE connectors SET url = ?, "
		    "enabled = ?, auth = ?, max_conns = ? WHERE id = ?", "sisii",
		    c->url, (int64_t)c->enabled, c->auth, (int64_t)c->max,
		    c->id);
	if (r >= 0)
		r = audit(p, tx, insert ? "connector.add" : "connector.edit", actor,
		    json_pack("{s:s,s:s,s:s,s:b,s:i}", "connector", c->name,
		    "url", c->url, "auth", c->auth, "enabled", c->enabled,
		    "max", c->max), err);
	if (r != 0) {
		store_txn_rollback(tx);
		if (r == SP_ERR_EXISTS)
			sp_err_set(err, r, "connector \"%s\" already exists",
			    c->name);
		return r;
	}
	return store_txn_commit(tx, err);
}

static int
check_conf(const struct peer_connector_conf *cf, bool add, struct sp_err *err)
{
	if (add && !sp_name_valid(cf->name, PEER_NAME_MAX))
		return sp_err_set(err, SP_ERR_INVALID, "connector name must be "
		    "1 to %d characters of [A-Za-z0-9_.-], not \".\" or "
		    "\"..\"", PEER_NAME_MAX);
	if ((add || cf->auth != NULL) && !sp_name_valid(cf->auth,
	    PEER_NAME_MAX))
		return sp_err_set(err, SP_ERR_INVALID, "--auth must name a key "
		    "binding");
	if (cf->max < 0 || cf->max > PEER_CONNECTOR_MAX)
		return sp_err_set(err, SP_ERR_INVALID, "pool size must be "
		    "1..%d", PEER_CONNECTOR_MAX);
	return 0;
}

/*
 * A change to the stored connectors: validated on the loop, written by
 * conn_write() (a worker, or inline), applied by conn_apply() on the loop.
 */
enum conn_op { CW_ADD, CW_EDIT, CW_DELETE };

struct conn_write {
	struct peer_write	 w;		/* first */
	enum conn_op		 op;
	struct connector	*c;		/* CW_ADD: the new one, owned */
	struct connector	 tmp;		/* CW_EDIT: the new fields */
	int64_t			 id;		/* CW_DELETE */
	char			 name[PEER_NAME_MAX + 1];
	char			 actor[128];
};

static int
conn_delete_row(struct peer *p, int64_t id, const char *name,
    const char *actor, struct sp_err *err)
{
	struct store_txn	*tx = NULL;
	int			 r;

	if ((r = store_txn_begin(p->st, &tx, err)) != 0)
		return r;
	if ((r = store_exec(p->st, tx, NULL, err, "DELETE FROM connectors "
	    "WHERE id = ?", "i", id)) < 0 || (r = audit(p, tx,
	    "connector.delete", actor, json_pack("{s:s}", "connector", name),
	    err)) != 0) {
		store_txn_rollback(tx);
		return r;
	}
	return store_txn_commit(tx, err);
}

static int
conn_write(struct peer_write *w, struct sp_err *err)
{
	struct conn_write	*cw = (struct conn_write *)w;

	switch (cw->op) {
	case CW_ADD:
		return save(w->p, cw->c, true, cw->actor, err);
	case CW_EDIT:
		return save(w->p, &cw->tmp, false, cw->actor, err);
	default:
		return conn_delete_row(w->p, cw->id, cw->name, cw->actor, err);
	}
}

static void
conn_apply(struct peer_write *w, int rc, const struct sp_err *err)
{
	struct conn_write	*cw = (struct conn_write *)w;
	struct peer		*p = w->p;
	struct connector	*c = connector_find(p, cw->name);
	struct sp_err		 e = { 0 };

	if (rc == 0) {
		switch (cw->op) {
		case CW_ADD:
			TAILQ_INSERT_TAIL(&p->connectors, cw->c, e);
			cw->c = NULL;
			break;
		case CW_EDIT:
			if (c == NULL || c->id != cw->tmp.id) {
				/* Deleted while the edit was written. */
				rc = sp_err_set(&e, SP_ERR_NOTFOUND, "connector "
				    "%s was deleted meanwhile", cw->name);
				err = &e;
				break;
			}
			connector_drop_pool(c, "connector was changed", false);
			memcpy(c->url, cw->tmp.url, sizeof(c->url));
			memcpy(c->host, cw->tmp.host, sizeof(c->host));
			memcpy(c->base_path, cw->tmp.base_path,
			    sizeof(c->base_path));
			memcpy(c->auth, cw->tmp.auth, sizeof(c->auth));
			c->port = cw->tmp.port;
			c->max = cw->tmp.max;
			c->enabled = cw->tmp.enabled;
			SSL_CTX_free(c->ctx);
			c->ctx = NULL;
			SSL_SESSION_free(c->sess);
			c->sess = NULL;
			break;
		case CW_DELETE:
			if (c == NULL || c->id != cw->id)
				break;		/* already gone: done */
			TAILQ_REMOVE(&p->connectors, c, e);
			c->deleted = true;
			connector_drop_pool(c, "connector was deleted", false);
			/* Dead connections awaiting cleanup free it last. */
			if (c->nconns == 0)
				connector_free(c);
			break;
		}
	}
	if (w->done != NULL)
		w->done(w->arg, rc, err);
	connector_free(cw->c);
	free(cw);
}

static struct conn_write *
conn_write_new(enum conn_op op, const char *name, const char *actor,
    peer_done_fn *done, void *arg)
{
	struct conn_write	*cw;

	if ((cw = calloc(1, sizeof(*cw))) == NULL)
		return NULL;
	cw->w.write = conn_write;
	cw->w.apply = conn_apply;
	cw->w.done = done;
	cw->w.arg = arg;
	cw->op = op;
	snprintf(cw->name, sizeof(cw->name), "%s", name);
	snprintf(cw->actor, sizeof(cw->actor), "%s", actor ? actor : "");
	return cw;
}

static int
conn_add(struct peer *p, const struct peer_connector_conf *cf,
    const char *actor, peer_done_fn *done, void *arg, struct sp_err *err)
{
	struct conn_write	*cw;
	struct connector	*c;
	int			 r;

	if ((r = check_conf(cf, true, err)) != 0)
		return r;
	if (connector_find(p, cf->name) != NULL)
		return sp_err_set(err, SP_ERR_EXISTS, "connector \"%s\" already "
		    "exists", cf->name);
	if (cf->url == NULL)
		return sp_err_set(err, SP_ERR_INVALID, "--url is required");
	if ((c = connector_new(p)) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	snprintf(c->name, sizeof(c->name), "%s", cf->name);
	snprintf(c->auth, sizeof(c->auth), "%s", cf->auth);
	c->max = cf->max ? cf->max : DEFAULT_MAX;
	c->enabled = cf->enabled != 0;
	if ((r = connector_url_parse(c, cf->url, err)) != 0) {
		connector_free(c);
		return r;
	}
	if ((cw = conn_write_new(CW_ADD, cf->name, actor, done, arg)) == NULL) {
		connector_free(c);
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	}
	cw->c = c;
	return peer_write_run(p, &cw->w, err);
}

int
peer_connector_add(struct peer *p, const struct peer_connector_conf *cf,
    const char *actor, struct sp_err *err)
{
	return conn_add(p, cf, actor, NULL, NULL, err);
}

int
peer_connector_add_async(struct peer *p, const struct peer_connector_conf *cf,
    const char *actor, peer_done_fn *done, void *arg, struct sp_err *err)
{
	return conn_add(p, cf, actor, done, arg, err);
}

static int
conn_edit(struct peer *p, const struct peer_connector_conf *cf,
    const char *actor, peer_done_fn *done, void *arg, struct sp_err *err)
{
	struct conn_write	*cw;
	struct connector	*c;
	int			 r;

	if ((c = connector_find(p, cf->name)) == NULL)
		return sp_err_set(err, SP_ERR_NOTFOUND, "no connector named "
		    "\"%.64s\"", cf->name ? cf->name : "");
	if ((r = check_conf(cf, false, err)) != 0)
		return r;
	if ((cw = conn_write_new(CW_EDIT, c->name, actor, done, arg)) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	cw->tmp = *c;
	if (cf->url != NULL &&
	    (r = connector_url_parse(&cw->tmp, cf->url, err)) != 0) {
		free(cw);
		return r;
	}
	if (cf->auth != NULL)
		snprintf(cw->tmp.auth, sizeof(cw->tmp.auth), "%s", cf->auth);
	if (cf->max > 0)
		cw->tmp.max = cf->max;
	if (cf->enabled >= 0)
		cw->tmp.enabled = cf->enabled != 0;
	return peer_write_run(p, &cw->w, err);
}

int
peer_connector_edit(struct peer *p, const struct peer_connector_conf *cf,
    const char *actor, struct sp_err *err)
{
	return conn_edit(p, cf, actor, NULL, NULL, err);
}

int
peer_connector_edit_async(struct peer *p,
    const struct peer_connector_conf *cf, const char *actor,
    peer_done_fn *done, void *arg, struct sp_err *err)
{
	return conn_edit(p, cf, actor, done, arg, err);
}

static int
conn_clone(struct peer *p, const char *from, const char *to,
    const char *actor, peer_done_fn *done, void *arg, struct sp_err *err)
{
	struct connector		*c;
	struct peer_connector_conf	 cf;

	if ((c = connector_find(p, from)) == NULL)
		return sp_err_set(err, SP_ERR_NOTFOUND, "no connector named "
		    "\"%.64s\"", from ? from : "");
	cf.name = to;
	cf.url = c->url;
	cf.auth = c->auth;
	cf.max = c->max;
	cf.enabled = c->enabled;
	return conn_add(p, &cf, actor, done, arg, err);
}

int
peer_connector_clone(struct peer *p, const char *from, const char *to,
    const char *actor, struct sp_err *err)
{
	return conn_clone(p, from, to, actor, NULL, NULL, err);
}

int
peer_connector_clone_async(struct peer *p, const char *from, const char *to,
    const char *actor, peer_done_fn *done, void *arg, struct sp_err *err)
{
	return conn_clone(p, from, to, actor, done, arg, err);
}

static int
conn_del(struct peer *p, const char *name, const char *actor,
    peer_done_fn *done, void *arg, struct sp_err *err)
{
	struct conn_write	*cw;
	struct connector	*c;

	if ((c = connector_find(p, name)) == NULL)
		return sp_err_set(err, SP_ERR_NOTFOUND, "no connector named "
		    "\"%.64s\"", name ? name : "");
	if ((cw = conn_write_new(CW_DELETE, c->name, actor, done, arg)) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	cw->id = c->id;
	return peer_write_run(p, &cw->w, err);
}

int
peer_connector_delete(struct peer *p, const char *name, const char *actor,
    struct sp_err *err)
{
	return conn_del(p, name, actor, NULL, NULL, err);
}

int
peer_connector_delete_async(struct peer *p, const char *name,
    const char *actor, peer_done_fn *done, void *arg, struct sp_err *err)
{
	return conn_del(p, name, actor, done, arg, err);
}

json_t *
peer_connector_list(struct peer *p)
{
	struct connector	*c;
	struct outconn		*oc;
	json_t			*arr = json_array();

	TAILQ_FOREACH(c, &p->connectors, e) {
		int in_use = 0, ready = 0;

		TAILQ_FOREACH(oc, &c->conns, e) {
			if (oc->dead || oc->lane != PEER_LANE_NORMAL)
				continue;
			if (oc->cur != NULL)
				in_use++;
			else
				ready++;
		}
		json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:s,s:i,s:i,"
		    "s:i,s:i,s:s}", "name", c->name, "url", c->url, "state",
		    c->enabled ? "enabled" : "disabled", "auth", c->auth,
		    "in_use", in_use, "ready", ready, "max", c->max, "queued",
		    c->lanes[PEER_LANE_NORMAL].nqueued, "tls_peer",
		    c->tls_peer));
	}
	return arr;
}

int
peer_connector_reset(struct peer *p, const char *name, struct sp_err *err)
{
	struct connector	*c;

	if ((c = connector_find(p, name)) == NULL)
		return sp_err_set(err, SP_ERR_NOTFOUND, "no connector named "
		    "\"%.64s\"", name ? name : "");
	connector_drop_pool(c, "connector was reset", false);
	SSL_CTX_free(c->ctx);
	c->ctx = NULL;
	SSL_SESSION_free(c->sess);
	c->sess = NULL;
	c->tls_peer[0] = '\0';
	log_info("peer: connector %s reset", c->name);
	return 0;
}

