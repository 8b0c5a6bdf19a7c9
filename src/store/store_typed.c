/*
 * The typed accessors: the CA's tables (tokens, CAs, profiles,
 * certificates, CRLs) and the hash-chained audit log. Each is one
 * store_run() of a cached statement plus a row conversion.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "store/store_int.h"
#include "util/log.h"
#include "util/util.h"

#define CERT_COLS "id, ca_id, serial, status, subject, profile, not_before, " \
	"not_after, revoked_at, reason, fingerprint, der"

const char *const store_qsql[Q__MAX] = {
	[Q_TOKEN_INSERT] = "INSERT INTO tokens (name, verifier, created) "
	    "VALUES (?, ?, ?) RETURNING id",
	[Q_TOKEN_ALL] = "SELECT id, name, verifier FROM tokens ORDER BY name",
	[Q_TKEY_INSERT] = "INSERT INTO token_keys VALUES (?, ?, ?, ?, ?, ?)",
	[Q_TKEY_DELETE] = "DELETE FROM token_keys WHERE token_id = ? "
	    "AND alias = ?",
	[Q_TKEY_ALL] = "SELECT token_id, alias, alg, wrapped, spki "
	    "FROM token_keys ORDER BY token_id, alias",
	[Q_CA_INSERT] = "INSERT INTO cas (name, subject, token, key_alias, "
	    "issuer_id, cert, crl_period, crl_number, next_crl, created) "
	    "VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?) RETURNING id",
	[Q_CA_ALL] = "SELECT id, name, subject, token, key_alias, "
	    "coalesce(issuer_id, 0), cert, crl_period, crl_number, next_crl, "
	    "created FROM cas ORDER BY id",
	[Q_CERT_ABANDON] = "UPDATE certs SET status = 3 WHERE status = 0",
	[Q_CA_CRLNUM] = "UPDATE cas SET crl_number = crl_number + 1, "
	    "next_crl = ? WHERE id = ? RETURNING crl_number",
	[Q_PROFILE_PUT] = "INSERT INTO profiles (name, json, builtin) "
	    "VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
	    "json = excluded.json, builtin = excluded.builtin",
	[Q_PROFILE_ALL] = "SELECT name, json, builtin FROM profiles "
	    "ORDER BY name",
	[Q_CERT_RESERVE] = "INSERT INTO certs (ca_id, serial, status, "
	    "subject, profile, not_before, not_after, der, created) "
	    "VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?) RETURNING id",
	[Q_CERT_ISSUED] = "UPDATE certs SET status = 1, der = ?, "
	    "fingerprint = ? WHERE id = ? AND status = 0",
	[Q_CERT_FAILED] = "UPDATE certs SET status = 3 WHERE id = ? "
	    "AND status = 0",
	[Q_CERT_STATUS] = "UPDATE certs SET status = ?, revoked_at = ?, "
	    "reason = ? WHERE id = ?",
	[Q_CERT_GET] = "SELECT " CERT_COLS " FROM certs WHERE ca_id = ? "
	    "AND serial = ?",
	[Q_CERT_LIST] = "SELECT " CERT_COLS " FROM certs WHERE "
	    "(? = 0 OR ca_id = ?) AND (? = -1 OR status = ?) "
	    "ORDER BY id LIMIT ?",
	[Q_CRL_INSERT] = "INSERT INTO crls VALUES (?, ?, ?, ?, ?)",
	/* All but the newest ? CRLs of a CA. */
	[Q_CRL_PRUNE] = "DELETE FROM crls WHERE ca_id = ? AND number < "
	    "(SELECT min(number) FROM (SELECT number FROM crls WHERE "
	    "ca_id = ? ORDER BY number DESC LIMIT ?) AS newest)",
	[Q_CRL_LATEST] = "SELECT number, der FROM crls WHERE ca_id = ? "
	    "ORDER BY number DESC LIMIT 1",
	[Q_AUDIT_HEAD] = "SELECT value FROM meta WHERE key = 'audit_head'",
	[Q_AUDIT_INSERT] = "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?)",
	[Q_AUDIT_SETHEAD] = "UPDATE meta SET value = ? "
	    "WHERE key = 'audit_head'",
	[Q_AUDIT_ALL] = "SELECT seq, ts, event, actor, details, prev, hash "
	    "FROM audit ORDER BY seq",
	[Q_AUDIT_RECENT] = "SELECT seq, ts, event, actor, details "
	    "FROM audit ORDER BY seq DESC LIMIT ?",
};

static const char *const status_names[CERT__MAX] = {
	"reserved", "active", "revoked", "failed",
};

const char *
cert_status_name(enum cert_status s)
{
	return (s >= 0 && s < CERT__MAX) ? status_names[s] : "unknown";
}

/* --- tokens --------------------------------------------------------- */

int
store_token_insert(struct store *st, struct store_txn *tx, const char *name,
    const char *verifier, int64_t *id, struct sp_err *err)
{
	*id = 0;
	return store_done(store_run(st, tx, true, Q_TOKEN_INSERT, NULL, NULL, id,
	    "insert token", err, "ssi", name, verifier, (int64_t)sp_now()));
}

struct token_it {
	store_token_cb	*cb;
	void		*arg;
};

static int
token_row(const struct store_row *row, void *arg)
{
	struct token_it		*it = arg;
	struct store_token	 t;

	t.id = store_row_int(row, 0);
	t.name = store_row_text(row, 1);
	t.verifier = store_row_text(row, 2);
	return it->cb(&t, it->arg);
}

int
store_token_foreach(struct store *st, struct store_txn *tx,
    store_token_cb *cb, void *arg)
{
	struct token_it	it = { cb, arg };

	return store_run(st, tx, false, Q_TOKEN_ALL, token_row, &it, NULL, "tokens",
	    NULL, "");
}

int
store_token_key_insert(struct store *st, struct store_txn *tx,
    const struct store_token_key *k, struct sp_err *err)
{
	return store_done(store_run(st, tx, true, Q_TKEY_INSERT, NULL, NULL, NULL,
	    "insert key", err, "isibbi", k->token_id, k->alias,
	    (int64_t)k->alg, k->wrapped, k->wlen, k->spki, k->spkilen,
	    (int64_t)sp_now()));
}

int
store_token_key_delete(struct store *st, struct store_txn *tx,
    int64_t token_id, const char *alias, struct sp_err *err)
{
	return store_one_row(store_run(st, tx, true, Q_TKEY_DELETE, NULL, NULL, NULL,
	    "delete key", err, "is", token_id, alias), "delete key", err);
}

struct tkey_it {
	store_token_key_cb	*cb;
	void			*arg;
};

static int
tkey_row(const struct store_row *row, void *arg)
{
	struct tkey_it		*it = arg;
	struct store_token_key	 k;

	k.token_id = store_row_int(row, 0);
	k.alias = store_row_text(row, 1);
	k.alg = (int)store_row_int(row, 2);
	k.wrapped = store_row_blob(row, 3, &k.wlen);
	k.spki = store_row_blob(row, 4, &k.spkilen);
	return it->cb(&k, it->arg);
}

int
store_token_key_foreach(struct store *st, struct store_txn *tx,
    store_token_key_cb *cb, void *arg)
{
	struct tkey_it	it = { cb, arg };

	return store_run(st, tx, false, Q_TKEY_ALL, tkey_row, &it, NULL,
	    "token keys", NULL, "");
}

/* --- CAs ------------------------------------------------------------ */

int
store_ca_insert(struct store *st, struct store_txn *tx,
    const struct store_ca *ca, int64_t *id, struct sp_err *err)
{
	*id = 0;
	/* issuer_id 0 (a root) is NULL in the table: bound as a NULL text. */
	if (ca->issuer_id == 0)
		return store_done(store_run(st, tx, true, Q_CA_INSERT, NULL, NULL, id,
		    "insert CA", err, "sssssbiii", ca->name, ca->subject,
		    ca->token, ca->key_alias, (const char *)NULL, ca->cert,
		    ca->certlen, ca->crl_period, (int64_t)ca->next_crl,
		    (int64_t)sp_now()));
	return store_done(store_run(st, tx, true, Q_CA_INSERT, NULL, NULL, id,
	    "insert CA", err, "ssssibiii", ca->name, ca->subject, ca->token,
	    ca->key_alias, ca->issuer_id, ca->cert, ca->certlen,
	    ca->crl_period, (int64_t)ca->next_crl, (int64_t)sp_now()));
}

struct ca_it {
	store_ca_cb	*cb;
	void		*arg;
};

static int
ca_row(const struct store_row *row, void *arg)
{
	struct ca_it	*it = arg;
	struct store_ca	 c;

	c.id = store_row_int(row, 0);
	c.name = store_row_text(row, 1);
	c.subject = store_row_text(row, 2);
	c.token = store_row_text(row, 3);
	c.key_alias = store_row_text(row, 4);
	c.issuer_id = store_row_int(row, 5);
	c.cert = store_row_blob(row, 6, &c.certlen);
	c.crl_period = store_row_int(row, 7);
	c.crl_number = store_row_int(row, 8);
	c.next_crl = (time_t)store_row_int(row, 9);
	c.created = (time_t)store_row_int(row, 10);
	return it->cb(&c, it->arg);
}

int
store_ca_foreach(struct store *st, struct store_txn *tx, store_ca_cb *cb,
    void *arg)
{
	struct ca_it	it = { cb, arg };

	return store_run(st, tx, false, Q_CA_ALL, ca_row, &it, NULL, "CAs", NULL,
	    "");
}

int
store_ca_next_crl(struct store *st, struct store_txn *tx, int64_t ca_id,
    time_t next_crl, int64_t *number, struct sp_err *err)
{
	return store_one_row(store_run(st, tx, true, Q_CA_CRLNUM, NULL, NULL, number,
	    "CRL number", err, "ii", (int64_t)next_crl, ca_id), "CRL number",
	    err);
}

/* --- profiles -------------------------------------------------------- */

int
store_profile_put(struct store *st, struct store_txn *tx,
    const struct store_profile *p, struct sp_err *err)
{
	return store_done(store_run(st, tx, true, Q_PROFILE_PUT, NULL, NULL, NULL,
	    "store profile", err, "ssi", p->name, p->json,
	    (int64_t)p->builtin));
}

struct profile_it {
	store_profile_cb	*cb;
	void			*arg;
};

static int
profile_row(const struct store_row *row, void *arg)
{
	struct profile_it	*it = arg;
	struct store_profile	 p;

	p.name = store_row_text(row, 0);
	p.json = store_row_text(row, 1);
	p.builtin = store_row_int(row, 2) != 0;
	return it->cb(&p, it->arg);
}

int
store_profile_foreach(struct store *st, struct store_txn *tx,
    store_profile_cb *cb, void *arg)
{
	struct profile_it	it = { cb, arg };

	return store_run(st, tx, false, Q_PROFILE_ALL, profile_row, &it, NULL,
	    "profiles", NULL, "");
}

/* --- certificates ------------------------------------------------------ */

int
store_cert_reserve(struct store *st, struct store_txn *tx,
    const struct store_cert *c, int64_t *id, struct sp_err *err)
{
	*id = 0;
	return store_done(store_run(st, tx, true, Q_CERT_RESERVE, NULL, NULL, id,
	    "reserve serial", err, "isssiibi", c->ca_id, c->serial,
	    c->subject, c->profile, (int64_t)c->not_before,
	    (int64_t)c->not_after, c->der, c->derlen, (int64_t)sp_now()));
}

int
store_cert_issued(struct store *st, struct store_txn *tx, int64_t id,
    const unsigned char *der, size_t len, const char *fingerprint,
    struct sp_err *err)
{
	return store_one_row(store_run(st, tx, true, Q_CERT_ISSUED, NULL, NULL, NULL,
	    "store certificate", err, "bsi", der, len, fingerprint, id),
	    "store certificate", err);
}

int
store_cert_abandon_reserved(struct store *st, struct store_txn *tx,
    struct sp_err *err)
{
	return store_run(st, tx, true, Q_CERT_ABANDON, NULL, NULL, NULL,
	    "abandon reserved", err, "");
}

int
store_cert_failed(struct store *st, struct store_txn *tx, int64_t id,
    struct sp_err *err)
{
	return store_one_row(store_run(st, tx, true, Q_CERT_FAILED, NULL, NULL, NULL,
	    "mark failed", err, "i", id), "mark failed", err);
}

int
store_cert_set_status(struct store *st, struct store_txn *tx, int64_t id,
    enum cert_status status, time_t revoked_at, int reason,
    struct sp_err *err)
{
	return store_one_row(store_run(st, tx, true, Q_CERT_STATUS, NULL, NULL, NULL,
	    "certificate status", err, "iiii", (int64_t)status,
	    (int64_t)revoked_at, (int64_t)reason, id), "certificate status",
	    err);
}

struct cert_it {
	store_cert_cb	*cb;
	void		*arg;
	bool		 found;
};

static int
cert_row(const struct store_row *row, void *arg)
{
	struct cert_it		*it = arg;
	struct store_cert	 c;

	c.id = store_row_int(row, 0);
	c.ca_id = store_row_int(row, 1);
	c.serial = store_row_text(row, 2);
	c.status = (enum cert_status)store_row_int(row, 3);
	c.subject = store_row_text(row, 4);
	c.profile = store_row_text(row, 5);
	c.not_before = (time_t)store_row_int(row, 6);
	c.not_after = (time_t)store_row_int(row, 7);
	c.revoked_at = (time_t)store_row_int(row, 8);
	c.reason = (int)store_row_int(row, 9);
	c.fingerprint = store_row_text(row, 10);
	c.der = store_row_blob(row, 11, &c.derlen);
	it->found = true;
	return it->cb(&c, it->arg);
}

int
store_cert_get(struct store *st, struct store_txn *tx, int64_t ca_id,
    const char *serial, store_cert_cb *cb, void *arg, struct sp_err *err)
{
	struct cert_it	it = { cb, arg, false };
	int		r;

	r = store_run(st, tx, false, Q_CERT_GET, cert_row, &it, NULL, "certificate",
	    err, "is", ca_id, serial);
	if (r != 0 || it.found)
		return r;
	return sp_err_set(err, SP_ERR_NOTFOUND, "no certificate with serial "
	    "%s", serial);
}

int
store_cert_foreach(struct store *st, struct store_txn *tx,
    const struct store_cert_filter *f, store_cert_cb *cb, void *arg)
{
	struct cert_it	it = { cb, arg, false };
	/* No limit is the largest one, as LIMIT -1 is SQLite-only. */
	int64_t		lim = f->limit == 0 || f->limit > INT64_MAX ?
			    INT64_MAX : (int64_t)f->limit;

	return store_run(st, tx, false, Q_CERT_LIST, cert_row, &it, NULL,
	    "certificates", NULL, "iiiii", f->ca_id, f->ca_id,
	    (int64_t)f->status, (int64_t)f->status, lim);
}

/* --- CRLs -------------------------------------------------------------- */

int
store_crl_insert(struct store *st, struct store_txn *tx, int64_t ca_id,
    int64_t number, time_t this_update, time_t next_update,
    const unsigned char *der, size_t len, struct sp_err *err)
{
	struct store_txn	*own = NULL;
	int			 r;

	/* Insert and prune together, in the caller's transaction or one of
	 * its own. */
	if (tx == NULL) {
		if ((r = store_txn_begin(st, &own, err)) != 0)
			return r;
		tx = own;
	}
	if ((r = store_done(store_run(st, tx, true, Q_CRL_INSERT, NULL, NULL, NULL,
	    "store CRL", err, "iiiib", ca_id, number, (int64_t)this_update,
	    (int64_t)next_update, der, len))) == 0)
		/* Only the latest few are ever served: the table stays
		 * bounded. */
		r = store_done(store_run(st, tx, true, Q_CRL_PRUNE, NULL, NULL, NULL,
		    "prune CRLs", err, "iii", ca_id, ca_id,
		    (int64_t)st->crl_keep));
	if (own != NULL) {
		if (r == 0)
			r = store_txn_commit(own, err);
		else
			store_txn_rollback(own);
	}
	return r;
}

void
store_set_crl_keep(struct store *st, int64_t keep)
{
	st->crl_keep = keep > 0 ? keep : STORE_CRL_KEEP;
}

struct crl_it {
	unsigned char	**der;
	size_t		 *len;
	int64_t		 *number;
	struct sp_err	 *err;
};

static int
crl_row(const struct store_row *row, void *arg)
{
	struct crl_it		*it = arg;
	const unsigned char	*b;
	size_t			 n;

	b = store_row_blob(row, 1, &n);
	if ((*it->der = malloc(n ? n : 1)) == NULL)
		return sp_err_set(it->err, SP_ERR_ALLOC, "out of memory");
	if (n > 0)
		memcpy(*it->der, b, n);
	*it->len = n;
	*it->number = store_row_int(row, 0);
	return 1;
}

int
store_crl_latest(struct store *st, struct store_txn *tx, int64_t ca_id,
    unsigned char **der, size_t *len, int64_t *number, struct sp_err *err)
{
	struct crl_it	it = { der, len, number, err };
	int		r;

	*der = NULL;
	*len = 0;
	r = store_run(st, tx, false, Q_CRL_LATEST, crl_row, &it, NULL, "CRL", err,
	    "i", ca_id);
	if (r == 1)
		return 0;
	if (r < 0)
		return r;
	return sp_err_set(err, SP_ERR_NOTFOUND, "no CRL has been made for "
	    "this CA yet");
}

/* --- audit ------------------------------------------------------------- */

/*
 * hash = SHA-256("SEQ|TS|" then "LEN:" + field for prev, event, actor and
 * details), lower-case hex. The text fields are length-prefixed so no two
 * rows collide by moving a separator.
 */
static void
audit_hash(const char *prev, int64_t seq, int64_t ts, const char *event,
    const char *actor, const char *details, char out[65])
{
	EVP_MD_CTX	*md = EVP_MD_CTX_new();
	unsigned char	 h[32];
	unsigned int	 hl = 0;
	char		 num[64];
	const char	*f[] = { prev, event, actor, details };

	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		fatalx("audit: digest init");
	snprintf(num, sizeof(num), "%lld|%lld|", (long long)seq, (long long)ts);
	EVP_DigestUpdate(md, num, strlen(num));
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		size_t len = strlen(f[i]);

		snprintf(num, sizeof(num), "%zu:", len);
		EVP_DigestUpdate(md, num, strlen(num));
		EVP_DigestUpdate(md, f[i], len);
	}
	EVP_DigestFinal_ex(md, h, &hl);
	EVP_MD_CTX_free(md);
	sp_hex_encode(h, sizeof(h), out);
}

struct head_it {
	int64_t		*seq;
	char		*prev;
	struct sp_err	*err;
};

/* Parses the meta head "SEQ:HASH". */
static int
head_row(const struct store_row *row, void *arg)
{
	struct head_it	*it = arg;
	const char	*v = store_row_text(row, 0), *colon;

	if ((colon = strchr(v, ':')) == NULL || strlen(colon + 1) > 64)
		return sp_err_set(it->err, SP_ERR_DB, "audit head is corrupt");
	*it->seq = strtoll(v, NULL, 10);
	memcpy(it->prev, colon + 1, strlen(colon + 1) + 1);
	return 1;
}

static int
audit_head(struct store *st, struct store_txn *tx, int64_t *seq,
    char prev[65], struct sp_err *err)
{
	struct head_it	it = { seq, prev, err };
	int		r;

	r = store_run(st, tx, false, Q_AUDIT_HEAD, head_row, &it, NULL, "audit head",
	    err, "");
	if (r == 1)
		return 0;
	if (r < 0)
		return r;
	return sp_err_set(err, SP_ERR_DB, "audit head is missing");
}

int
store_audit_append(struct store *st, struct store_txn *tx, const char *event,
    const char *actor, const char *details, struct sp_err *err)
{
	struct store_txn	*own = NULL;
	char			 hash[65];
	int64_t			 seq, ts = sp_now();
	int			 r;

	if (tx == NULL) {
		if ((r = store_txn_begin(st, &own, err)) != 0)
			return r;
		tx = own;
	} else if ((r = store_txn_check(tx, "audit", err)) != 0)
		return r;
	if (!tx->head_loaded) {
		if ((r = audit_head(st, tx, &tx->head_seq, tx->head_hash,
		    err)) != 0)
			goto out;
		tx->head_loaded = true;
	}
	seq = tx->head_seq + 1;
	audit_hash(tx->head_hash, seq, ts, event, actor, details, hash);
	if ((r = store_done(store_run(st, tx, true, Q_AUDIT_INSERT, NULL, NULL, NULL,
	    "audit", err, "iisssss", seq, ts, event, actor, details,
	    tx->head_hash, hash))) != 0)
		goto out;
	tx->head_seq = seq;
	memcpy(tx->head_hash, hash, sizeof(tx->head_hash));
	tx->head_dirty = true;
 out:
	if (own != NULL) {
		if (r == 0)
			r = store_txn_commit(own, err);
		else
			store_txn_rollback(own);
	}
	return r;
}

/* Writes the cached head to meta; inside the transaction, before COMMIT. */
int
store_audit_head_flush(struct store_txn *tx, struct sp_err *err)
{
	char	head[96];

	if (!tx->head_dirty)
		return 0;
	snprintf(head, sizeof(head), "%lld:%s", (long long)tx->head_seq,
	    tx->head_hash);
	return store_one_row(store_run(tx->st, tx, true, Q_AUDIT_SETHEAD, NULL, NULL, NULL,
	    "audit head", err, "s", head), "audit head", err);
}

struct verify_it {
	struct store_audit_report	*rep;
	struct sp_err			*err;
	char				 prev[65];
	int64_t				 expect;
};

static int
verify_row(const struct store_row *row, void *arg)
{
	struct verify_it	*it = arg;
	int64_t			 seq = store_row_int(row, 0);
	char			 hash[65];

	if (seq != it->expect) {
		it->rep->bad_seq = it->expect;
		return sp_err_set(it->err, SP_ERR_POLICY, "audit row %lld is "
		    "missing (next row is %lld)", (long long)it->expect,
		    (long long)seq);
	}
	if (strcmp(store_row_text(row, 5), it->prev) != 0) {
		it->rep->bad_seq = seq;
		return sp_err_set(it->err, SP_ERR_POLICY, "audit row %lld does "
		    "not chain to row %lld", (long long)seq, (long long)seq - 1);
	}
	audit_hash(it->prev, seq, store_row_int(row, 1), store_row_text(row, 2),
	    store_row_text(row, 3), store_row_text(row, 4), hash);
	if (strcmp(hash, store_row_text(row, 6)) != 0) {
		it->rep->bad_seq = seq;
		return sp_err_set(it->err, SP_ERR_POLICY, "audit row %lld was "
		    "modified (hash mismatch)", (long long)seq);
	}
	memcpy(it->prev, hash, sizeof(it->prev));
	it->rep->rows++;
	it->expect++;
	return 0;
}

int
store_audit_verify(struct store *st, struct store_txn *tx,
    struct store_audit_report *rep, struct sp_err *err)
{
	struct verify_it	 it = { rep, err, "", 1 };
	struct store_txn	*own = NULL;
	char			 head_hash[65];
	int64_t			 head_seq = 0;
	int			 r;

	memset(rep, 0, sizeof(*rep));
	/* The head and the rows from one snapshot (a read transaction:
	 * writers go on), never a half-written chain. */
	if (tx == NULL) {
		if ((r = store_txn_begin_read(st, &own, err)) != 0)
			return r;
		tx = own;
	}
	if ((r = audit_head(st, tx, &head_seq, head_hash, err)) != 0)
		goto out;
	if ((r = store_run(st, tx, false, Q_AUDIT_ALL, verify_row, &it, NULL,
	    "audit", err, "")) != 0)
		goto out;
	if (head_seq != rep->rows || strcmp(head_hash, it.prev) != 0) {
		rep->bad_seq = rep->rows + 1;
		r = sp_err_set(err, SP_ERR_POLICY, "audit log ends at row %lld "
		    "but its head records row %lld: rows were deleted",
		    (long long)rep->rows, (long long)head_seq);
	}
	memcpy(rep->head, it.prev, sizeof(rep->head));
 out:
	if (own != NULL)
		store_txn_rollback(own);
	return r;
}

struct audit_it {
	store_audit_cb	*cb;
	void		*arg;
};

static int
audit_row(const struct store_row *row, void *arg)
{
	struct audit_it		*it = arg;
	struct store_audit_row	 a;

	a.seq = store_row_int(row, 0);
	a.ts = (time_t)store_row_int(row, 1);
	a.event = store_row_text(row, 2);
	a.actor = store_row_text(row, 3);
	a.details = store_row_text(row, 4);
	return it->cb(&a, it->arg);
}

int
store_audit_foreach(struct store *st, struct store_txn *tx, size_t limit,
    store_audit_cb *cb, void *arg)
{
	struct audit_it	it = { cb, arg };

	return store_run(st, tx, false, Q_AUDIT_RECENT, audit_row, &it, NULL,
	    "audit", NULL, "i", limit == 0 || limit > INT64_MAX ? INT64_MAX :
	    (int64_t)limit);
}
