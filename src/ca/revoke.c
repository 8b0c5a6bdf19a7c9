#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ca/ca.h"
#include "ca/ca_int.h"
#include "ca/profile.h"
#include "crypto/certs.h"
#include "crypto/dn.h"
#include "crypto/ids.h"
#include "crypto/key.h"
#include "token/token.h"
#include "util/log.h"
#include "util/util.h"


/* --- revocation ---------------------------------------------------------- */

struct certrow {
	int64_t			id;
	enum cert_status	status;
	int			reason;
};

static int
get_row(const struct store_cert *c, void *arg)
{
	struct certrow	*cr = arg;

	cr->id = c->id;
	cr->status = c->status;
	cr->reason = c->reason;
	return 0;
}

static int
set_revocation(struct ca_service *svc, const char *caname, const char *serial,
    int reason, bool unrevoke, const char *actor, struct sp_err *err)
{
	struct store_txn	*tx = NULL;
	struct ca		*ca;
	struct certrow		 cr = { 0 };
	char			 sn[2 * SERIAL_LEN + 2];
	time_t			 revoked_at = 0;
	int			 r;

	if ((r = ca_serial_norm(serial, sn, err)) != 0)
		return r;
	pthread_rwlock_rdlock(&svc->lk);
	if ((ca = ca_get(svc, caname, err)) == NULL) {
		r = SP_ERR_NOTFOUND;
		goto out;
	}
	if ((r = store_txn_begin(svc->st, &tx, err)) != 0)
		goto out;
	if ((r = store_cert_get(svc->st, tx, ca->id, sn, get_row, &cr, err)) != 0)
		goto undo;
	if (unrevoke) {
		if (cr.status != CERT_REVOKED || cr.reason != 6) {
			r = sp_err_set(err, SP_ERR_STATE, "certificate %s is "
			    "not on hold (only certificateHold can be lifted)",
			    sn);
			goto undo;
		}
		r = store_cert_set_status(svc->st, tx, cr.id, CERT_ACTIVE, 0, -1,
		    err);
	} else {
		if (cr.status == CERT_REVOKED && cr.reason != 6) {
			r = sp_err_set(err, SP_ERR_STATE, "certificate %s is "
			    "already revoked (%s)", sn,
			    crl_reason_name(cr.reason));
			goto undo;
		}
		if (cr.status == CERT_REVOKED && reason == 6) {
			r = sp_err_set(err, SP_ERR_STATE, "certificate %s is "
			    "already on hold", sn);
			goto undo;
		}
		if (cr.status != CERT_ACTIVE && cr.status != CERT_REVOKED) {
			r = sp_err_set(err, SP_ERR_STATE, "certificate %s was "
			    "never issued (%s)", sn,
			    cert_status_name(cr.status));
			goto undo;
		}
		revoked_at = sp_now();
		r = store_cert_set_status(svc->st, tx, cr.id, CERT_REVOKED,
		    revoked_at, reason, err);
	}
	if (r == 0)
		r = ca_run_hooks(svc, tx, &(struct ca_change_ev){
		    .what = CA_CHANGE_STATUS, .ca = ca->name, .ca_id = ca->id,
		    .serial = sn, .status = unrevoke ? CERT_ACTIVE :
		    CERT_REVOKED, .revoked_at = unrevoke ? 0 : revoked_at,
		    .reason = unrevoke ? -1 : reason }, err);
	if (r == 0)
		r = ca_audit(svc, tx, unrevoke ? "cert.unrevoke" : "cert.revoke",
		    actor, json_pack("{s:s,s:s,s:s}", "ca", ca->name, "serial",
		    sn, "reason", unrevoke ? "removeFromCRL" :
		    crl_reason_name(reason)), err);
	if (r != 0)
		goto undo;
	if ((r = store_txn_commit(tx, err)) == 0)
		ca_run_notify(svc);
	goto out;
 undo:
	store_txn_rollback(tx);
 out:
	pthread_rwlock_unlock(&svc->lk);
	return r;
}

int
ca_revoke(struct ca_service *svc, const char *ca, const char *serial,
    const char *reason, const char *actor, struct sp_err *err)
{
	int	code = crl_reason_parse(reason ? reason : "unspecified");

	if (code < 0)
		return sp_err_set(err, SP_ERR_INVALID, "unknown reason \"%.32s\" "
		    "(RFC 5280 5.3.1: unspecified, keyCompromise, cACompromise, "
		    "affiliationChanged, superseded, cessationOfOperation, "
		    "certificateHold, privilegeWithdrawn, aACompromise)",
		    reason);
	if (code == 8)
		return ca_unrevoke(svc, ca, serial, actor, err);
	return set_revocation(svc, ca, serial, code, false, actor, err);
}

int
ca_unrevoke(struct ca_service *svc, const char *ca, const char *serial,
    const char *actor, struct sp_err *err)
{
	return set_revocation(svc, ca, serial, -1, true, actor, err);
}

struct listctx {
	struct ca_service	*svc;
	json_t			*arr;
	bool			 full;
};

static int
cert_json(const struct store_cert *c, void *arg)
{
	struct listctx	*lc = arg;
	struct ca	*ca = ca_find_id(lc->svc, c->ca_id);
	char		 nb[32], na[32], ra[32] = "";
	json_t		*j;

	sp_time_fmt(c->not_before, nb, sizeof(nb));
	sp_time_fmt(c->not_after, na, sizeof(na));
	if (c->revoked_at != 0)
		sp_time_fmt(c->revoked_at, ra, sizeof(ra));
	j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}",
	    "ca", ca ? ca->name : "", "serial", c->serial,
	    "status", cert_status_name(c->status), "subject", c->subject,
	    "profile", c->profile, "not_before", nb, "not_after", na,
	    "revoked_at", ra, "reason", crl_reason_name(c->reason),
	    "fingerprint", c->fingerprint);
	if (j == NULL)
		return SP_ERR_ALLOC;
	if (lc->full && c->status != CERT_RESERVED && c->status != CERT_FAILED) {
		const unsigned char	*p = c->der;
		X509			*x = d2i_X509(NULL, &p, (long)c->derlen);
		BIO			*b = BIO_new(BIO_s_mem());
		BUF_MEM			*bm;

		if (x != NULL && b != NULL && PEM_write_bio_X509(b, x)) {
			BIO_get_mem_ptr(b, &bm);
			json_object_set_new(j, "pem",
			    json_stringn(bm->data, bm->length));
		}
		X509_free(x);
		BIO_free(b);
	}
	json_array_append_new(lc->arr, j);
	return 0;
}

int
ca_cert_list(struct ca_service *svc, const char *caname, const char *status,
    size_t limit, json_t **out, struct sp_err *err)
{
	struct store_cert_filter	 f = { 0, -1, limit };
	struct listctx			 lc = { svc, json_array(), false };
	struct ca			*ca;
	int				 r = 0;

	*out = NULL;
	if (lc.arr == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	if (status != NULL) {
		for (f.status = 0; f.status < CERT__MAX; f.status++)
			if (strcmp(status, cert_status_name(f.status)) == 0)
				break;
		if (f.status == CERT__MAX) {
			json_decref(lc.arr);
			return sp_err_set(err, SP_ERR_INVALID, "unknown status "
			    "\"%.32s\" (reserved, active, revoked, failed)",
			    status);
		}
	}
	pthread_rwlock_rdlock(&svc->lk);
	if (caname != NULL) {
		if ((ca = ca_get(svc, caname, err)) == NULL) {
			r = SP_ERR_NOTFOUND;
			goto out;
		}
		f.ca_id = ca->id;
	}
	if ((r = store_cert_foreach(svc->st, NULL, &f, cert_json, &lc)) != 0)
		sp_err_set(err, r, "listing certificates failed");
 out:
	pthread_rwlock_unlock(&svc->lk);
	if (r == 0)
		*out = lc.arr;
	else
		json_decref(lc.arr);
	return r;
}

int
ca_cert_show(struct ca_service *svc, const char *caname, const char *serial,
    json_t **out, struct sp_err *err)
{
	struct listctx	 lc = { svc, json_array(), true };
	struct ca	*ca;
	char		 sn[2 * SERIAL_LEN + 2];
	int		 r;

	*out = NULL;
	if (lc.arr == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	if ((r = ca_serial_norm(serial, sn, err)) != 0) {
		json_decref(lc.arr);
		return r;
	}
	pthread_rwlock_rdlock(&svc->lk);
	if ((ca = ca_get(svc, caname, err)) == NULL)
		r = SP_ERR_NOTFOUND;
	else
		r = store_cert_get(svc->st, NULL, ca->id, sn, cert_json, &lc, err);
	pthread_rwlock_unlock(&svc->lk);
	if (r == 0 && json_array_size(lc.arr) == 1)
		*out = json_incref(json_array_get(lc.arr, 0));
	json_decref(lc.arr);
	return r;
}

/* --- CRLs ------------------------------------------------------------------ */

struct revctx {
	struct crl_entry	*e;
	unsigned char		(*sn)[SERIAL_LEN];
	size_t			 n, cap;
};

static int
collect_revoked(const struct store_cert *c, void *arg)
{
	struct revctx	*rc = arg;
	int		 len;

	if (rc->n == rc->cap) {
		size_t			 cap = rc->cap ? rc->cap * 2 : 64;
		struct crl_entry	*e;
		unsigned char		(*sn)[SERIAL_LEN];

		if ((e = reallocarray(rc->e, cap, sizeof(*e))) == NULL)
			return SP_ERR_ALLOC;
		rc->e = e;
		if ((sn = reallocarray(rc->sn, cap, sizeof(*sn))) == NULL)
			return SP_ERR_ALLOC;
		rc->sn = sn;
		rc->cap = cap;
	}
	if ((len = sp_hex_decode(c->serial, rc->sn[rc->n], SERIAL_LEN)) < 0)
		return SP_ERR_DB;
	rc->e[rc->n].serial = rc->sn[rc->n];
	rc->e[rc->n].serial_len = (size_t)len;
	rc->e[rc->n].revoked_at = c->revoked_at;
	rc->e[rc->n].reason = c->reason;
	rc->n++;
	return 0;
}

/* Makes one CRL for ca. Hold lk (read). */
static int
crl_make(struct ca_service *svc, struct ca *ca, const char *actor,
    json_t **out, struct sp_err *err)
{
	struct store_txn	*tx = NULL;
	struct store_cert_filter	 f = { ca->id, CERT_REVOKED, 0 };
	struct revctx			 rc = { 0 };
	EVP_MD_CTX			*md = NULL;
	unsigned char			*der = NULL;
	size_t				 len = 0;
	int64_t				 number = 0;
	time_t				 now = sp_now();
	time_t				 next = now + (time_t)ca->crl_period;
	time_t				 nextupd;
	char				 nu[32];
	int				 r;

	/*
	 * nextUpdate overlaps the next scheduled CRL (a tenth of the period,
	 * 1 minute to 1 hour), so relying parties never hold an expired CRL
	 * while the next one is being made and fetched.
	 */
	nextupd = next + (time_t)(ca->crl_period / 10 < 60 ? 60 :
	    ca->crl_period / 10 > 3600 ? 3600 : ca->crl_period / 10);
	if ((r = ca_sign_with(svc, ca->token, ca->key, &md, err)) != 0)
		return r;
	if ((r = store_txn_begin(svc->st, &tx, err)) != 0)
		goto out;
	if ((r = store_cert_foreach(svc->st, tx, &f, collect_revoked, &rc)) != 0) {
		sp_err_set(err, r, "reading revoked certificates failed");
		goto undo;
	}
	if ((r = store_ca_next_crl(svc->st, tx, ca->id, next, &number, err)) != 0 ||
	    (r = crl_build(ca->cert, number, now, nextupd, rc.e, rc.n, md, &der,
	    &len, err)) != 0 ||
	    (r = store_crl_insert(svc->st, tx, ca->id, number, now, nextupd, der,
	    len, err)) != 0 ||
	    (r = ca_run_hooks(svc, tx, &(struct ca_change_ev){
	    .what = CA_CHANGE_CRL, .ca = ca->name, .ca_id = ca->id,
	    .reason = -1, .der = der, .derlen = len, .crl_number = number },
	    err)) != 0 ||
	    (r = ca_audit(svc, tx, "crl.create", actor, json_pack("{s:s,s:I,s:i}",
	    "ca", ca->name, "number", (json_int_t)number, "entries",
	    (int)rc.n), err)) != 0)
		goto undo;
	if ((r = store_txn_commit(tx, err)) != 0)
		goto out;
	ca_run_notify(svc);
	sp_time_fmt(nextupd, nu, sizeof(nu));
	if (out != NULL)
		*out = json_pack("{s:s,s:I,s:i,s:s}", "ca", ca->name, "number",
		    (json_int_t)number, "entries", (int)rc.n, "next_update", nu);
	goto out;
 undo:
	store_txn_rollback(tx);
 out:
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	free(rc.e);
	free(rc.sn);
	return r;
}

int
ca_crl_create(struct ca_service *svc, const char *caname, const char *actor,
    json_t **out, struct sp_err *err)
{
	struct ca	*ca;
	int		 r;

	*out = NULL;
	pthread_rwlock_rdlock(&svc->lk);
	if ((ca = ca_get(svc, caname, err)) == NULL)
		r = SP_ERR_NOTFOUND;
	else
		r = crl_make(svc, ca, actor, out, err);
	pthread_rwlock_unlock(&svc->lk);
	return r;
}

int
ca_crl_get(struct ca_service *svc, const char *caname, unsigned char **der,
    size_t *len, struct sp_err *err)
{
	struct ca	*ca;
	int64_t		 number;
	int		 r;

	*der = NULL;
	*len = 0;
	pthread_rwlock_rdlock(&svc->lk);
	if ((ca = ca_get(svc, caname, err)) == NULL)
		r = SP_ERR_NOTFOUND;
	else
		r = store_crl_latest(svc->st, NULL, ca->id, der, len, &number, err);
	pthread_rwlock_unlock(&svc->lk);
	return r;
}

struct duectx {
	int64_t	ids[256];
	size_t	n;
};

static int
collect_due(const struct store_ca *c, void *arg)
{
	struct duectx	*d = arg;

	if (c->next_crl <= sp_now() && d->n < 256)
		d->ids[d->n++] = c->id;
	return 0;
}

int
ca_crl_tick(struct ca_service *svc)
{
	struct duectx	d = { .n = 0 };
	int		made = 0;

	if (store_ca_foreach(svc->st, NULL, collect_due, &d) != 0)
		return SP_ERR_DB;
	pthread_rwlock_rdlock(&svc->lk);
	for (size_t i = 0; i < d.n; i++) {
		struct ca	*ca = ca_find_id(svc, d.ids[i]);
		struct sp_err	 err = { 0 };

		if (ca == NULL)
			continue;
		if (crl_make(svc, ca, "scheduler", NULL, &err) == 0) {
			made++;
			ca->crl_warned = false;
			log_info("CA %s: scheduled CRL made", ca->name);
		} else if (!ca->crl_warned) {
			/* Once until it works again, not every tick. */
			ca->crl_warned = true;
			log_warnx("CA %s: scheduled CRL: %s (retrying)",
			    ca->name, err.msg);
		}
	}
	pthread_rwlock_unlock(&svc->lk);
	return made;
}
