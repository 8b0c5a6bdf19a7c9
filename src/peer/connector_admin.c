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

int
peer_connector_add(struct peer *p, const struct peer_connector_conf *cf,
    const char *actor, struct sp_err *err)
{
	struct connector	*c;
	int			 r;

	if ((r = check_conf(cf, true, err)) != 0)
		return r;
	if (connector_find(p, cf->name) != NULL)
		return sp_err_set(err, SP_ERR_EXISTS, "connector \"%s\" already "
		    "exists", cf->name);
	if ((c = connector_new(p)) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	snprintf(c->name, sizeof(c->name), "%s", cf->name);
	snprintf(c->auth, sizeof(c->auth), "%s", cf->auth);
	c->max = cf->max ? cf->max : DEFAULT_MAX;
	c->enabled = cf->enabled != 0;
	if (cf->url == NULL ||
	    (r = connector_url_parse(c, cf->url, err)) != 0 ||
	    (r = save(p, c, true, actor, err)) != 0) {
		if (cf->url == NULL)
			r = sp_err_set(err, SP_ERR_INVALID, "--url is required");
		connector_free(c);
		return r;
	}
	TAILQ_INSERT_TAIL(&p->connectors, c, e);
	return 0;
}

int
peer_connector_edit(struct peer *p, const struct peer_connector_conf *cf,
    const char *actor, struct sp_err *err)
{
	struct connector	*c, tmp;
	int			 r;

	if ((c = connector_find(p, cf->name)) == NULL)
		return sp_err_set(err, SP_ERR_NOTFOUND, "no connector named "
		    "\"%.64s\"", cf->name ? cf->name : "");
	if ((r = check_conf(cf, false, err)) != 0)
		return r;
	tmp = *c;
	if (cf->url != NULL &&
	    (r = connector_url_parse(&tmp, cf->url, err)) != 0)
		return r;
	if (cf->auth != NULL)
		snprintf(tmp.auth, sizeof(tmp.auth), "%s", cf->auth);
	if (cf->max > 0)
		tmp.max = cf->max;
	if (cf->enabled >= 0)
		tmp.enabled = cf->enabled != 0;
	if ((r = save(p, &tmp, false, actor, err)) != 0)
		return r;
	connector_drop_pool(c, "connector was changed", false);
	memcpy(c->url, tmp.url, sizeof(c->url));
	memcpy(c->host, tmp.host, sizeof(c->host));
	memcpy(c->base_path, tmp.base_path, sizeof(c->base_path));
	memcpy(c->auth, tmp.auth, sizeof(c->auth));
	c->port = tmp.port;
	c->max = tmp.max;
	c->enabled = tmp.enabled;
	SSL_CTX_free(c->ctx);
	c->ctx = NULL;
	SSL_SESSION_free(c->sess);
	c->sess = NULL;
	return 0;
}

int
peer_connector_clone(struct peer *p, const char *from, const char *to,
    const char *actor, struct sp_err *err)
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
	return peer_connector_add(p, &cf, actor, err);
}

int
peer_connector_delete(struct peer *p, const char *name, const char *actor,
    struct sp_err *err)
{
	struct store_txn	*tx = NULL;
	struct connector	*c;
	int			 r;

	if ((c = connector_find(p, name)) == NULL)
		return sp_err_set(err, SP_ERR_NOTFOUND, "no connector named "
		    "\"%.64s\"", name ? name : "");
	if ((r = store_txn_begin(p->st, &tx, err)) != 0)
		return r;
	if ((r = store_exec(p->st, tx, NULL, err, "DELETE FROM connectors WHERE "
	    "id = ?", "i", c->id)) < 0 || (r = audit(p, tx, "connector.delete",
	    actor, json_pack("{s:s}", "connector", c->name), err)) != 0) {
		store_txn_rollback(tx);
		return r;
	}
	if ((r = store_txn_commit(tx, err)) != 0)
		return r;
	TAILQ_REMOVE(&p->connectors, c, e);
	c->deleted = true;
	connector_drop_pool(c, "connector was deleted", false);
	/* Dead connections awaiting cleanup free the connector last. */
	if (c->nconns == 0)
		connector_free(c);
	return 0;
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

