/*
 * The node's list of incoming connections (DESIGN.md section 5): every
 * verified client certificate the peer listener saw, with the role it
 * matched, so an operator can give an unknown peer a role. A peer
 * concern, so it lives here; the names stay authz_incoming_*() and take
 * the authz, whose store it writes and whose authz_grant() turns a row
 * into a role member.
 *
 * The cap and the pruning cadence are process wide (one node per
 * process): authz_set_incoming_max() sets the cap.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "crypto/dn.h"
#include "peer/peer_int.h"
#include "util/log.h"
#include "util/util.h"

#define INCOMING_PRUNE_EVERY	16	/* records between two cap checks */

static _Atomic uint64_t	nrecorded;	/* records, for pruning */
static _Atomic int64_t	incoming_max = AUTHZ_INCOMING_MAX;	/* rows kept */

/*
 * Deletes the least recently seen rows beyond max, in the caller's
 * transaction if one is open; the count goes to the log and adds up in
 * the "incoming_dropped" setting.
 */
static int
incoming_prune(struct store *st, struct store_txn *tx, int64_t max,
    struct sp_err *err)
{
	char	num[24];
	int	n, r;

	n = store_exec(st, tx, NULL, err, "DELETE FROM incoming WHERE id IN "
	    "(SELECT id FROM incoming ORDER BY last_seen, id LIMIT "
	    "(SELECT CASE WHEN count(*) > ? THEN count(*) - ? ELSE 0 END "
	    "FROM incoming))", "ii", max, max);
	if (n <= 0)
		return n;
	snprintf(num, sizeof(num), "%d", n);
	if ((r = store_exec(st, tx, NULL, err, "INSERT INTO settings (key, "
	    "value) VALUES ('authz.incoming_dropped', ?) ON CONFLICT (key) DO "
	    "UPDATE SET value = CAST(CAST(settings.value AS BIGINT) + "
	    "CAST(excluded.value AS BIGINT) AS TEXT)", "s", num)) < 0)
		return r;
	log_info("peer: incoming-connections list over %lld rows: dropped "
	    "the %d least recently seen", (long long)max, n);
	return 0;
}

void
authz_set_incoming_max(struct authz *a, int64_t max)
{
	(void)a;
	atomic_store(&incoming_max, max > 0 ? max : AUTHZ_INCOMING_MAX);
}

int
authz_incoming_record(struct authz *a, struct store_txn *tx, X509 *cert,
    const char *address, const char *role, struct sp_err *err)
{
	struct store	*st = authz_store(a);
	char		*subject = NULL, *issuer = NULL;
	char		 serial[AUTHZ_SERIAL_HEX_MAX], fp[65];
	int64_t		 now = (int64_t)sp_now();
	int		 r;

	if (cert == NULL)
		return sp_err_set(err, SP_ERR_INVALID, "no certificate");
	if (address == NULL)
		address = "";
	if (role == NULL)
		role = "";
	if (strlen(address) > AUTHZ_ADDRESS_MAX)
		return sp_err_set(err, SP_ERR_INVALID, "address longer than %d "
		    "characters", AUTHZ_ADDRESS_MAX);
	if (*role != '\0' && !authz_role_name_valid(role))
		return sp_err_set(err, SP_ERR_INVALID, "bad role name");
	if (peer_fingerprint(cert, fp) != 0)
		return sp_err_set(err, SP_ERR_CRYPTO, "certificate "
		    "fingerprint");
	authz_cert_serial(cert, serial);
	if ((subject = dn_print(X509_get_subject_name(cert))) == NULL ||
	    (issuer = dn_print(X509_get_issuer_name(cert))) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}
	/* One statement: this runs for every verified peer handshake. */
	r = store_exec(st, tx, NULL, err, "INSERT INTO incoming (fingerprint, "
	    "subject, issuer, serial, address, first_seen, last_seen, count, "
	    "role) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?) "
	    "ON CONFLICT (fingerprint) DO UPDATE SET "
	    "address = excluded.address, last_seen = excluded.last_seen, "
	    "count = incoming.count + 1, role = excluded.role", "sssssiis",
	    fp, subject, issuer, serial, address, now, now, role);
	if (r > 0)
		r = 0;
	/* Any holder of a trusted certificate adds a row: keep it bounded. */
	if (r == 0 && atomic_fetch_add(&nrecorded, 1) %
	    INCOMING_PRUNE_EVERY == 0)
		r = incoming_prune(st, tx, atomic_load(&incoming_max), err);
 out:
	free(subject);
	free(issuer);
	return r;
}

struct list_arg {
	struct authz	*a;
	json_t		*arr;
};

static int
incoming_row(const struct store_row *row, void *arg)
{
	struct list_arg	*la = arg;
	json_t		*o;
	const char	*role = store_row_text(row, 9);
	char		 first[32], last[32];

	/* A role deleted since the record is not shown. */
	if (*role != '\0' && !authz_role_exists(la->a, role))
		role = "";
	sp_time_fmt((time_t)store_row_int(row, 6), first, sizeof(first));
	sp_time_fmt((time_t)store_row_int(row, 7), last, sizeof(last));
	o = json_pack("{s:I,s:o,s:o,s:s,s:s,s:o,s:s,s:s,s:I,s:s}",
	    "id", (json_int_t)store_row_int(row, 0),
	    "subject", authz_jstr(store_row_text(row, 1)),
	    "issuer", authz_jstr(store_row_text(row, 2)),
	    "serial", store_row_text(row, 3),
	    "fingerprint", store_row_text(row, 4),
	    "address", authz_jstr(store_row_text(row, 5)),
	    "first_seen", first, "last_seen", last,
	    "count", (json_int_t)store_row_int(row, 8),
	    "role", role);
	if (o == NULL || json_array_append_new(la->arr, o) != 0)
		return SP_ERR_ALLOC;
	return 0;
}

json_t *
authz_incoming_list(struct authz *a)
{
	struct list_arg	la = { a, NULL };

	if ((la.arr = json_array()) == NULL)
		return NULL;
	if (store_select(authz_store(a), NULL, incoming_row, &la, NULL, "SELECT id, "
	    "subject, issuer, serial, fingerprint, address, first_seen, "
	    "last_seen, count, role FROM incoming ORDER BY last_seen DESC, "
	    "id DESC LIMIT ?", "i", (int64_t)AUTHZ_INCOMING_LIST_MAX) != 0) {
		json_decref(la.arr);
		return NULL;
	}
	return la.arr;
}

/* authz_incoming_authorize(): the row, read and updated in the grant. */

struct incoming_grant {
	int64_t		 id;
	bool		 found;
	char		*subject, *issuer, *serial, *fp;
};

static int
incoming_get(const struct store_row *row, void *arg)
{
	struct incoming_grant	*ig = arg;

	ig->found = true;
	if ((ig->subject = strdup(store_row_text(row, 0))) == NULL ||
	    (ig->issuer = strdup(store_row_text(row, 1))) == NULL ||
	    (ig->serial = strdup(store_row_text(row, 2))) == NULL ||
	    (ig->fp = strdup(store_row_text(row, 3))) == NULL)
		return SP_ERR_ALLOC;
	return 0;
}

static int
grant_certid(void *arg, struct store *st, struct store_txn *tx,
    struct authz_certid *out, struct sp_err *err)
{
	struct incoming_grant	*ig = arg;
	int			 r;

	if ((r = store_select(st, tx, incoming_get, ig, err, "SELECT subject, "
	    "issuer, serial, fingerprint FROM incoming WHERE id = ?", "i",
	    ig->id)) != 0)
		return r;
	if (!ig->found)
		return sp_err_set(err, SP_ERR_NOTFOUND, "no incoming "
		    "connection %lld", (long long)ig->id);
	out->subject = ig->subject;
	out->issuer = ig->issuer;
	out->serial = ig->serial;
	out->fingerprint = ig->fp;
	return 0;
}

static void
grant_certid_free(void *arg, struct authz_certid *ci)
{
	struct incoming_grant	*ig = arg;

	(void)ci;
	free(ig->subject);
	free(ig->issuer);
	free(ig->serial);
	free(ig->fp);
	ig->subject = ig->issuer = ig->serial = ig->fp = NULL;
}

static int
grant_done(void *arg, struct store *st, struct store_txn *tx,
    const char *role, json_t *details, struct sp_err *err)
{
	struct incoming_grant	*ig = arg;
	int			 r;

	if ((r = store_exec(st, tx, NULL, err, "UPDATE incoming SET role = ? "
	    "WHERE id = ?", "si", role, ig->id)) < 0)
		return r;
	json_object_set_new(details, "id", json_integer(ig->id));
	return 0;
}

static const struct authz_grant_ops incoming_ops = {
	grant_certid, grant_certid_free, grant_done,
};

int
authz_incoming_authorize(struct authz *a, int64_t id, const char *new_role,
    const char *preset, const char *role, const char *match,
    const char *actor, json_t **out, struct sp_err *err)
{
	struct incoming_grant	ig = { 0 };

	*out = NULL;
	if (id <= 0)
		return sp_err_set(err, SP_ERR_INVALID, "incoming connection id "
		    "must be a positive integer");
	ig.id = id;
	return authz_grant(a, new_role, preset, role, match,
	    "incoming.authorize", actor, &incoming_ops, &ig, out, err);
}
