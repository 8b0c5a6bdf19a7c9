#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

static void
ca_free(struct ca *ca)
{
	if (ca == NULL)
		return;
	X509_free(ca->cert);
	free(ca);
}

void
ca_service_free(struct ca_service *svc)
{
	if (svc == NULL)
		return;
	/* The pool ran every batch's completion before (node_cleanup()). */
	if (svc->aq_head != NULL)
		log_warnx("ca: issuance requests still queued at exit");
	ca_issue_queue_free(svc);
	for (size_t i = 0; i < svc->ncas; i++)
		ca_free(svc->cas[i]);
	free(svc->cas);
	for (size_t i = 0; i < svc->nprofs; i++)
		profile_free(svc->profs[i]);
	free(svc->profs);
	pthread_rwlock_destroy(&svc->lk);
	pthread_mutex_destroy(&svc->chg_mtx);
	pthread_mutex_destroy(&svc->gc_mtx);
	free(svc);
}

/* Appends p to a pointer array (*arr, *n). */
static int
push(void *arrp, size_t *n, size_t elsize, const void *el)
{
	void	**arr = arrp;
	char	 *na;

	if ((na = realloc(*arr, (*n + 1) * elsize)) == NULL)
		return SP_ERR_ALLOC;
	memcpy(na + *n * elsize, el, elsize);
	*arr = na;
	(*n)++;
	return 0;
}

static struct ca *
ca_find(struct ca_service *svc, const char *name)
{
	for (size_t i = 0; i < svc->ncas; i++)
		if (strcmp(svc->cas[i]->name, name) == 0)
			return svc->cas[i];
	return NULL;
}

struct ca *
ca_find_id(struct ca_service *svc, int64_t id)
{
	for (size_t i = 0; i < svc->ncas; i++)
		if (svc->cas[i]->id == id)
			return svc->cas[i];
	return NULL;
}

struct profile **
ca_prof_find(struct ca_service *svc, const char *name)
{
	for (size_t i = 0; i < svc->nprofs; i++)
		if (strcmp(svc->profs[i]->name, name) == 0)
			return &svc->profs[i];
	return NULL;
}

/* Looks a CA up, with the caller-facing error. Hold the lock. */
struct ca *
ca_get(struct ca_service *svc, const char *name, struct sp_err *err)
{
	struct ca	*ca;

	if (name == NULL || (ca = ca_find(svc, name)) == NULL)
		sp_err_set(err, SP_ERR_NOTFOUND, "no CA named \"%.64s\"",
		    name ? name : "");
	else
		return ca;
	return NULL;
}

/* Audit details as compact JSON text (heap). */
static char *
details(json_t *obj)
{
	char	*s = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);

	json_decref(obj);
	return s;
}

int
ca_audit(struct ca_service *svc, struct store_txn *tx, const char *event,
    const char *actor, json_t *obj, struct sp_err *err)
{
	char	*d = details(obj);
	int	 r;

	if (d == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	r = store_audit_append(svc->st, tx, event, actor, d, err);
	free(d);
	return r;
}

/* --- commit hooks ------------------------------------------------------- */

int
ca_add_commit_hook(struct ca_service *svc, ca_commit_hook *fn, void *arg)
{
	if (fn == NULL)
		return SP_ERR_INVALID;
	if (svc->nhooks == CA_HOOKS_MAX)
		return SP_ERR_LIMIT;
	svc->hooks[svc->nhooks].fn = fn;
	svc->hooks[svc->nhooks].arg = arg;
	svc->nhooks++;
	return 0;
}

int
ca_add_commit_notify(struct ca_service *svc, ca_commit_notify_fn *fn,
    void *arg)
{
	if (fn == NULL)
		return SP_ERR_INVALID;
	if (svc->nnotify == CA_HOOKS_MAX)
		return SP_ERR_LIMIT;
	svc->notify[svc->nnotify].fn = fn;
	svc->notify[svc->nnotify].arg = arg;
	svc->nnotify++;
	return 0;
}

void
ca_run_notify(struct ca_service *svc)
{
	for (size_t i = 0; i < svc->nnotify; i++)
		svc->notify[i].fn(svc->notify[i].arg);
}

int
ca_run_hooks(struct ca_service *svc, struct store_txn *tx,
    const struct ca_change_ev *ev, struct sp_err *err)
{
	int	r;

	for (size_t i = 0; i < svc->nhooks; i++)
		if ((r = svc->hooks[i].fn(svc->hooks[i].arg, svc->st, tx, ev,
		    err)) != 0) {
			if (err != NULL && err->msg[0] == '\0')
				sp_err_set(err, r, "a commit hook refused the "
				    "change");
			return r;
		}
	return 0;
}

/* --- loading ----------------------------------------------------------- */

static int
load_ca(const struct store_ca *c, void *arg)
{
	struct ca_service	*svc = arg;
	struct ca		*ca;
	const unsigned char	*p = c->cert;
	struct sp_err		 err = { 0 };

	if ((ca = calloc(1, sizeof(*ca))) == NULL)
		return SP_ERR_ALLOC;
	ca->id = c->id;
	snprintf(ca->name, sizeof(ca->name), "%s", c->name);
	snprintf(ca->token, sizeof(ca->token), "%s", c->token);
	snprintf(ca->key, sizeof(ca->key), "%s", c->key_alias);
	ca->issuer_id = c->issuer_id;
	ca->crl_period = c->crl_period;
	if ((ca->cert = d2i_X509(NULL, &p, (long)c->certlen)) == NULL ||
	    push(&svc->cas, &svc->ncas, sizeof(ca), &ca) != 0) {
		log_warnx("CA %s: unreadable certificate in database", c->name);
		ca_free(ca);
		return SP_ERR_DB;
	}
	/* A database from before the key registry may hold a conflict. */
	if (tokens_key_claim_stored(svc->tokens, ca->token, ca->key,
	    TOKENS_USE_CA, ca->name, &err) < 0)
		log_warnx("CA %s: %s", ca->name, err.msg);
	return 0;
}

static int
load_profile(const struct store_profile *sp, void *arg)
{
	struct ca_service	*svc = arg;
	struct profile		*p = NULL;
	json_t			*doc;
	json_error_t		 je;
	struct sp_err		 err = { 0 };
	int			 r;

	if ((doc = json_loads(sp->json, 0, &je)) == NULL) {
		log_warnx("profile %s: %s", sp->name, je.text);
		return SP_ERR_DB;
	}
	r = profile_from_json(sp->name, doc, sp->builtin, &p, &err);
	json_decref(doc);
	if (r != 0) {
		log_warnx("%s", err.msg);
		return r;
	}
	if (push(&svc->profs, &svc->nprofs, sizeof(p), &p) != 0) {
		profile_free(p);
		return SP_ERR_ALLOC;
	}
	return 0;
}

static int
put_profile(struct ca_service *svc, struct store_txn *tx,
    const struct profile *p, struct sp_err *err)
{
	json_t			*doc = profile_to_json(p);
	char			*s = NULL;
	struct store_profile	 sp = { p->name, NULL, p->builtin };
	int			 r;

	if (doc == NULL || (s = json_dumps(doc, JSON_COMPACT)) == NULL) {
		json_decref(doc);
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	}
	sp.json = s;
	r = store_profile_put(svc->st, tx, &sp, err);
	free(s);
	json_decref(doc);
	return r;
}

int
ca_service_open(struct store *st, struct tokens *tokens,
    struct ca_service **out, struct sp_err *err)
{
	struct ca_service	*svc;
	int			 r;

	*out = NULL;
	if ((svc = calloc(1, sizeof(*svc))) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	pthread_rwlock_init(&svc->lk, NULL);
	pthread_mutex_init(&svc->chg_mtx, NULL);
	pthread_mutex_init(&svc->gc_mtx, NULL);
	{
		long	ncpu = sysconf(_SC_NPROCESSORS_ONLN);

		svc->gc_leaders_max = ncpu < 1 ? 1 : ncpu > 8 ? 8 : (int)ncpu;
	}
	svc->st = st;
	svc->tokens = tokens;
	if ((r = store_ca_foreach(st, NULL, load_ca, svc)) != 0 ||
	    (r = store_profile_foreach(st, NULL, load_profile, svc)) != 0) {
		sp_err_set(err, r, "loading the database failed");
		goto fail;
	}
	for (size_t i = 0; i < profile_builtin_count(); i++) {
		struct profile *p = NULL;

		if ((r = profile_builtin(i, &p, err)) != 0)
			goto fail;
		if (ca_prof_find(svc, p->name) != NULL) {
			profile_free(p);
			continue;
		}
		if ((r = put_profile(svc, NULL, p, err)) != 0 ||
		    (r = push(&svc->profs, &svc->nprofs, sizeof(p), &p)) != 0) {
			profile_free(p);
			goto fail;
		}
	}
	if ((r = store_cert_abandon_reserved(st, NULL, err)) < 0)
		goto fail;
	if (r > 0) {
		log_warnx("%d certificate reservation(s) left by an earlier "
		    "run were never issued; marked failed", r);
		if ((r = ca_audit(svc, NULL, "cert.reservation_abandoned", "node",
		    json_pack("{s:i}", "count", r), err)) != 0)
			goto fail;
	}
	*out = svc;
	return 0;
 fail:
	ca_service_free(svc);
	return r;
}

/* --- certificate helpers ------------------------------------------------ */

/* The serial in crypto/ids.h's form (a CA's own: at most SERIAL_LEN). */
void
ca_serial_hex(const X509 *x, char out[2 * SERIAL_LEN + 1])
{
	char	s[ID_SERIAL_HEX_MAX];

	if (id_serial_of(x, s) != 0 || strlen(s) > 2 * SERIAL_LEN)
		s[0] = '\0';
	memcpy(out, s, strlen(s) + 1);
}

/* An operator-typed serial in crypto/ids.h's form, as certs rows hold it. */
int
ca_serial_norm(const char *in, char out[2 * SERIAL_LEN + 1],
    struct sp_err *err)
{
	char	s[ID_SERIAL_HEX_MAX];
	int	r;

	out[0] = '\0';
	if ((r = id_serial_parse(in, s, err)) != 0)
		return r;
	if (strlen(s) > 2 * SERIAL_LEN)
		return sp_err_set(err, SP_ERR_INVALID, "serial longer than %d "
		    "bytes (RFC 5280 4.1.2.2)", SERIAL_LEN);
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

/* The certificate body as recorded before signing (TBSCertificate DER). */
int
ca_tbs_der(X509 *x, unsigned char **der, size_t *len, struct sp_err *err)
{
	int	n;

	*der = NULL;
	if ((n = i2d_re_X509_tbs(x, der)) <= 0)
		return sp_err_ossl(err, SP_ERR_CRYPTO, "encoding TBS");
	*len = (size_t)n;
	return 0;
}

int
ca_sign_with(struct ca_service *svc, const char *token, const char *key,
    EVP_MD_CTX **md, struct sp_err *err)
{
	return tokens_sign_init(svc->tokens, token, key, md, err);
}

void
ca_template_from_profile(struct cert_template *t, const struct profile *p)
{
	t->key_usage = p->key_usage;
	t->key_usage_critical = p->key_usage_critical;
	t->eku = p->eku;
	t->neku = p->neku;
	t->ca = p->ca;
	t->path_len = p->path_len;
	t->crl_dp = (const char *const *)p->crl_dp;
	t->ncrl_dp = p->ncrl_dp;
	t->ocsp_url = p->ocsp_url;
	t->ocsp_nocheck = p->ocsp_nocheck;
}

/*
 * The profile's key usage, less what the key cannot do: no encipherment
 * for EC (RFC 8813 3) or Ed25519 (RFC 8410 5), no key agreement for RSA.
 */
unsigned int
ca_key_usage_for(unsigned int ku, int alg)
{
	enum { ENCIPHER = 1u << 2 | 1u << 3, AGREE = 1u << 4 | 1u << 7 |
	    1u << 8 };

	switch (alg) {
	case KEY_EC_P256:
	case KEY_EC_P384:
		return ku & ~ENCIPHER;
	case KEY_ED25519:
		return ku & ~(ENCIPHER | AGREE);
	default:
		return ku & ~AGREE;
	}
}

/* --- CAs ---------------------------------------------------------------- */

static json_t *
ca_json(struct ca_service *svc, const struct ca *ca)
{
	const struct ca	*iss = ca_find_id(svc, ca->issuer_id);
	char		*subj = dn_print(X509_get_subject_name(ca->cert));
	char		 serial[2 * SERIAL_LEN + 1], nb[32], na[32];
	unsigned char	*der = NULL;
	int		 len = i2d_X509(ca->cert, &der);
	char		 fp[65] = "";
	json_t		*j;

	if (len > 0)
		cert_fingerprint(der, (size_t)len, fp);
	OPENSSL_free(der);
	ca_serial_hex(ca->cert, serial);
	sp_time_fmt(certs_time(X509_get0_notBefore(ca->cert)), nb,
	    sizeof(nb));
	sp_time_fmt(certs_time(X509_get0_notAfter(ca->cert)), na, sizeof(na));
	j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I}",
	    "name", ca->name, "subject", subj ? subj : "",
	    "issuer", iss ? iss->name : ca->name, "token", ca->token,
	    "key", ca->key, "serial", serial, "not_before", nb,
	    "not_after", na, "fingerprint", fp, "crl_period",
	    (json_int_t)ca->crl_period);
	free(subj);
	return j;
}

/* A CA's own certificate, stored: its CA row, the hooks, the audit row. */
struct create_finish {
	struct ca_service		*svc;
	const struct ca_create_req	*req;
	const char			*actor;
	struct ca			*iss, *ca;
	long long			 period;
	time_t				 now;
};

static int
create_finish(void *arg, struct store_txn *tx, size_t i, struct pending *pd,
    struct ca_issue_res *res, const char *fp, struct sp_err *err)
{
	struct create_finish	*cf = arg;
	struct store_ca		 sca = { 0 };
	int			 r;

	(void)i;
	sca.name = cf->req->name;
	sca.subject = cf->req->dn;
	sca.token = cf->req->token;
	sca.key_alias = cf->req->key;
	sca.issuer_id = cf->iss ? cf->iss->id : 0;
	sca.cert = res->der;
	sca.certlen = res->derlen;
	sca.crl_period = cf->period;
	sca.next_crl = cf->now;	/* the first CRL is made right away */
	if ((r = store_ca_insert(cf->svc->st, tx, &sca, &cf->ca->id,
	    err)) != 0 ||
	    (r = ca_run_hooks(cf->svc, tx, &(struct ca_change_ev){
	    .what = CA_CHANGE_CA, .ca = cf->req->name, .ca_id = cf->ca->id,
	    .serial = res->serial, .status = CERT_ACTIVE, .reason = -1,
	    .der = res->der, .derlen = res->derlen }, err)) != 0)
		return r;
	return ca_audit(cf->svc, tx, "ca.create", cf->actor, json_pack(
	    "{s:s,s:s,s:s,s:s,s:s,s:s}", "ca", cf->req->name, "subject",
	    cf->req->dn, "issuer", cf->iss ? cf->iss->name : cf->req->name,
	    "serial", res->serial, "fingerprint", fp, "profile", pd->profile),
	    err);
}

int
ca_create(struct ca_service *svc, const struct ca_create_req *req,
    const char *actor, json_t **out, struct sp_err *err)
{
	struct create_finish	 cf = { 0 };
	struct pending		 pd = { 0 };
	struct ca_issue_res	 res = { 0 };
	struct ca		*iss = NULL, *ca = NULL;
	enum key_alg		 kalg;
	unsigned char		*kspki = NULL;
	size_t			 kspkilen = 0;
	bool			 claimed = false, locked = true;
	struct profile		**pp, *pcopy = NULL;
	struct cert_template	 t = { 0 };
	X509_NAME		*name = NULL;
	X509_PUBKEY		*spki = NULL;
	X509			*x = NULL;
	EVP_MD_CTX		*md = NULL;
	const unsigned char	*p;
	unsigned char		 serial[SERIAL_LEN], *tbs = NULL, *der = NULL;
	size_t			 tbslen = 0, derlen = 0;
	char			 shex[2 * SERIAL_LEN + 1];
	const char		*pname;
	time_t			 now = sp_now();
	long long		 period;
	int			 days, r;

	*out = NULL;
	if (!sp_name_valid(req->name, CA_NAME_MAX))
		return sp_err_set(err, SP_ERR_INVALID, "CA name must be 1 to %d "
		    "characters of [A-Za-z0-9_.-], not \".\" or "
		    "\"..\"", CA_NAME_MAX);
	period = req->crl_period ? req->crl_period : 86400;
	if (period < CRL_PERIOD_MIN || period > CRL_PERIOD_MAX)
		return sp_err_set(err, SP_ERR_INVALID, "CRL period must be "
		    "%d..%d seconds", CRL_PERIOD_MIN, CRL_PERIOD_MAX);
	if (req->validity_days < 0 || req->validity_days > CA_DAYS_MAX)
		return sp_err_set(err, SP_ERR_INVALID, "validity must be 1..%d "
		    "days", CA_DAYS_MAX);
	if (req->dn == NULL)
		return sp_err_set(err, SP_ERR_INVALID, "a subject DN is "
		    "required");
	if ((r = dn_parse(req->dn, &name, err)) != 0)
		return r;
	pthread_mutex_lock(&svc->chg_mtx);
	pthread_rwlock_rdlock(&svc->lk);
	if (ca_find(svc, req->name) != NULL) {
		r = sp_err_set(err, SP_ERR_EXISTS, "CA \"%s\" already exists",
		    req->name);
		goto out;
	}
	if (req->signed_by != NULL &&
	    (iss = ca_get(svc, req->signed_by, err)) == NULL) {
		r = SP_ERR_NOTFOUND;
		goto out;
	}
	pname = req->profile ? req->profile : iss ? "SUBCA" : "ROOTCA";
	if ((pp = ca_prof_find(svc, pname)) == NULL) {
		r = sp_err_set(err, SP_ERR_NOTFOUND, "no profile named "
		    "\"%.64s\"", pname);
		goto out;
	}
	/*
	 * A copy of the profile, and the lock goes: signing and the commit
	 * below hold only chg_mtx (CAs are never freed, so iss stays).
	 */
	if ((r = profile_clone(*pp, (*pp)->name, &pcopy, err)) != 0)
		goto out;
	pp = &pcopy;
	pthread_rwlock_unlock(&svc->lk);
	locked = false;
	if (!(*pp)->ca) {
		r = sp_err_set(err, SP_ERR_POLICY, "profile %s is not a CA "
		    "profile (ca=false)", pname);
		goto out;
	}
	if ((r = tokens_key_find(svc->tokens, req->token, req->key, &kalg,
	    &kspki, &kspkilen, err)) != 0)
		goto out;
	if (!((*pp)->key_algs & (1u << kalg))) {
		r = sp_err_set(err, SP_ERR_POLICY, "profile %s: key algorithm "
		    "%s is not allowed (key_algs)", pname,
		    key_alg_name(kalg));
		goto out;
	}
	/* The key registry: not another CA's key, nor a key binding's. */
	if ((r = tokens_key_claim(svc->tokens, req->token, req->key,
	    TOKENS_USE_CA, req->name, err)) < 0)
		goto out;
	claimed = r == 1;
	if (iss != NULL && X509_get_pathlen(iss->cert) == 0) {
		r = sp_err_set(err, SP_ERR_POLICY, "RFC 5280 4.2.1.9: CA %s has "
		    "pathLenConstraint 0 and cannot sign a sub CA", iss->name);
		goto out;
	}
	days = req->validity_days ? req->validity_days : (*pp)->validity_days;
	if (days > (*pp)->validity_days) {
		r = sp_err_set(err, SP_ERR_POLICY, "profile %s: requested "
		    "validity %d days exceeds the maximum of %d "
		    "(validity_days)", pname, days, (*pp)->validity_days);
		goto out;
	}
	p = kspki;
	if ((spki = d2i_X509_PUBKEY(NULL, &p, (long)kspkilen)) == NULL) {
		r = sp_err_ossl(err, SP_ERR_CRYPTO, "CA public key");
		goto out;
	}
	if ((r = serial_generate(serial)) != 0) {
		sp_err_set(err, r, "random serial");
		goto out;
	}
	ca_template_from_profile(&t, *pp);
	if (iss != NULL && X509_get_pathlen(iss->cert) > 0) {
		long limit = X509_get_pathlen(iss->cert) - 1;

		/* A sub CA's path may only be shorter than its issuer's. */
		if (t.path_len < 0 || t.path_len > limit)
			t.path_len = (int)limit;
	}
	t.serial = serial;
	t.subject = name;
	t.spki = spki;
	t.issuer = iss ? iss->cert : NULL;
	t.not_before = now - BACKDATE;
	t.not_after = now + (time_t)days * 86400;
	if (iss != NULL) {
		time_t limit = certs_time(X509_get0_notAfter(iss->cert));

		if (t.not_after > limit)
			t.not_after = limit;	/* never outlive the issuer */
	}
	if ((r = ca_sign_with(svc, iss ? iss->token : req->token,
	    iss ? iss->key : req->key, &md, err)) != 0 ||
	    (r = cert_build(&t, &x, err)) != 0 ||
	    (r = cert_set_sigalg(x, md, err)) != 0 ||
	    (r = ca_tbs_der(x, &tbs, &tbslen, err)) != 0)
		goto out;
	/* The one pipeline: record (a sub CA's), sign, store with hooks. */
	if ((ca = calloc(1, sizeof(*ca))) == NULL ||
	    (pd.subject = strdup(req->dn)) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}
	pd.ca = iss;
	pd.md = md;
	pd.x = x;
	pd.tbs = tbs;
	pd.tbslen = tbslen;
	md = NULL;
	x = NULL;
	tbs = NULL;
	snprintf(pd.profile, sizeof(pd.profile), "%s", pname);
	cf.svc = svc;
	cf.req = req;
	cf.actor = actor;
	cf.iss = iss;
	cf.ca = ca;
	cf.period = period;
	cf.now = now;
	if ((r = ca_record_sign_store(svc, &pd, &res, 1, create_finish,
	    &cf)) == 0)
		r = res.rc;
	if (r != 0) {
		if (err != NULL)
			*err = res.err;
		goto out;
	}
	der = res.der;
	derlen = res.derlen;
	res.der = NULL;
	snprintf(shex, sizeof(shex), "%s", res.serial);
	snprintf(ca->name, sizeof(ca->name), "%s", req->name);
	snprintf(ca->token, sizeof(ca->token), "%s", req->token);
	snprintf(ca->key, sizeof(ca->key), "%s", req->key);
	ca->issuer_id = iss ? iss->id : 0;
	ca->crl_period = period;
	/* Re-parse: a built certificate has no decoded public key. */
	p = der;
	if ((ca->cert = d2i_X509(NULL, &p, (long)derlen)) == NULL)
		fatalx("CA %s: cannot parse its own certificate", req->name);
	pthread_rwlock_wrlock(&svc->lk);
	if (push(&svc->cas, &svc->ncas, sizeof(ca), &ca) != 0)
		fatalx("out of memory adding CA");
	pthread_rwlock_unlock(&svc->lk);
	*out = ca_json(svc, ca);
	ca = NULL;
	claimed = false;	/* the CA keeps its key */
	log_info("CA %s created by %s (%s)", req->name, actor, shex);
 out:
	if (claimed)
		tokens_key_release(svc->tokens, req->token, req->key,
		    TOKENS_USE_CA, req->name);
	if (locked)
		pthread_rwlock_unlock(&svc->lk);
	pthread_mutex_unlock(&svc->chg_mtx);
	profile_free(pcopy);
	free(kspki);
	ca_free(ca);
	X509_NAME_free(name);
	X509_PUBKEY_free(spki);
	X509_free(x);
	EVP_MD_CTX_free(md);
	OPENSSL_free(tbs);
	OPENSSL_free(der);
	OPENSSL_free(res.der);
	ca_pending_cleanup(&pd);
	return r;
}

json_t *
ca_list(struct ca_service *svc)
{
	json_t	*arr = json_array();

	pthread_rwlock_rdlock(&svc->lk);
	for (size_t i = 0; arr != NULL && i < svc->ncas; i++)
		json_array_append_new(arr, ca_json(svc, svc->cas[i]));
	pthread_rwlock_unlock(&svc->lk);
	return arr;
}

int
ca_show(struct ca_service *svc, const char *name, json_t **out,
    struct sp_err *err)
{
	struct ca	*ca;
	int		 r = 0;

	*out = NULL;
	pthread_rwlock_rdlock(&svc->lk);
	if ((ca = ca_get(svc, name, err)) == NULL)
		r = SP_ERR_NOTFOUND;
	else if ((*out = ca_json(svc, ca)) == NULL)
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	pthread_rwlock_unlock(&svc->lk);
	return r;
}

int
ca_cert_pem(struct ca_service *svc, const char *name, bool chain, char **pem,
    struct sp_err *err)
{
	struct ca	*ca;
	BIO		*bio = NULL;
	BUF_MEM		*bm;
	int		 r = 0, depth = 0;

	*pem = NULL;
	pthread_rwlock_rdlock(&svc->lk);
	if ((ca = ca_get(svc, name, err)) == NULL) {
		r = SP_ERR_NOTFOUND;
		goto out;
	}
	if ((bio = BIO_new(BIO_s_mem())) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}
	/* Leaf (this CA) first, then up to the root, as TLS orders chains. */
	for (; ca != NULL && depth < 16; depth++) {
		if (!PEM_write_bio_X509(bio, ca->cert)) {
			r = sp_err_ossl(err, SP_ERR_CRYPTO, "PEM");
			goto out;
		}
		if (!chain || ca->issuer_id == 0)
			break;
		ca = ca_find_id(svc, ca->issuer_id);
	}
	BIO_get_mem_ptr(bio, &bm);
	if ((*pem = strndup(bm->data, bm->length)) == NULL)
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
 out:
	pthread_rwlock_unlock(&svc->lk);
	BIO_free(bio);
	return r;
}

/* --- profiles ----------------------------------------------------------- */

json_t *
ca_profile_list(struct ca_service *svc)
{
	json_t	*arr = json_array();

	pthread_rwlock_rdlock(&svc->lk);
	for (size_t i = 0; arr != NULL && i < svc->nprofs; i++) {
		const struct profile *p = svc->profs[i];

		json_array_append_new(arr, json_pack("{s:s,s:b,s:b,s:i}", "name",
		    p->name, "builtin", p->builtin, "ca", p->ca,
		    "validity_days", p->validity_days));
	}
	pthread_rwlock_unlock(&svc->lk);
	return arr;
}

int
ca_profile_show(struct ca_service *svc, const char *name, json_t **out,
    struct sp_err *err)
{
	struct profile	**pp;
	int		  r = 0;

	*out = NULL;
	pthread_rwlock_rdlock(&svc->lk);
	if (name == NULL || (pp = ca_prof_find(svc, name)) == NULL)
		r = sp_err_set(err, SP_ERR_NOTFOUND, "no profile named "
		    "\"%.64s\"", name ? name : "");
	else {
		*out = json_pack("{s:s,s:b,s:o}", "name", (*pp)->name,
		    "builtin", (*pp)->builtin, "settings",
		    profile_to_json(*pp));
	}
	pthread_rwlock_unlock(&svc->lk);
	return r;
}

/* Applies sets to p, stores it and audits; p is consumed on success. */
static int
profile_apply(struct ca_service *svc, struct profile *p, const char *event,
    const char *const *sets, size_t nsets, const char *actor,
    struct sp_err *err)
{
	struct store_txn	*tx = NULL;
	json_t	*j;
	int	 r;

	for (size_t i = 0; i < nsets; i++)
		if ((r = profile_set(p, sets[i], err)) != 0)
			return r;
	if ((r = store_txn_begin(svc->st, &tx, err)) != 0)
		return r;
	j = json_pack("{s:s,s:o}", "profile", p->name, "settings",
	    profile_to_json(p));
	if ((r = put_profile(svc, tx, p, err)) != 0 ||
	    (r = ca_audit(svc, tx, event, actor, j, err)) != 0) {
		store_txn_rollback(tx);
		return r;
	}
	return store_txn_commit(tx, err);
}

int
ca_profile_create(struct ca_service *svc, const char *name, const char *from,
    const char *const *sets, size_t nsets, const char *actor,
    struct sp_err *err)
{
	struct profile	**src, *p = NULL;
	int		  r = 0;

	/* The commit holds only chg_mtx; lk for the lookup and the push. */
	pthread_mutex_lock(&svc->chg_mtx);
	pthread_rwlock_rdlock(&svc->lk);
	if (name != NULL && ca_prof_find(svc, name) != NULL)
		r = sp_err_set(err, SP_ERR_EXISTS, "profile \"%s\" already "
		    "exists", name);
	else if (from == NULL || (src = ca_prof_find(svc, from)) == NULL)
		r = sp_err_set(err, SP_ERR_NOTFOUND, "no profile named "
		    "\"%.64s\" to copy", from ? from : "");
	else
		r = profile_clone(*src, name ? name : "", &p, err);
	pthread_rwlock_unlock(&svc->lk);
	if (r != 0 || (r = profile_apply(svc, p, "profile.create", sets,
	    nsets, actor, err)) != 0)
		goto out;
	pthread_rwlock_wrlock(&svc->lk);
	if (push(&svc->profs, &svc->nprofs, sizeof(p), &p) != 0)
		fatalx("out of memory adding profile");
	pthread_rwlock_unlock(&svc->lk);
	p = NULL;
 out:
	pthread_mutex_unlock(&svc->chg_mtx);
	profile_free(p);
	return r;
}

int
ca_profile_edit(struct ca_service *svc, const char *name,
    const char *const *sets, size_t nsets, const char *actor,
    struct sp_err *err)
{
	struct profile	**pp, *p = NULL, *old;
	int		  r = 0;

	pthread_mutex_lock(&svc->chg_mtx);
	pthread_rwlock_rdlock(&svc->lk);
	if (name == NULL || (pp = ca_prof_find(svc, name)) == NULL)
		r = sp_err_set(err, SP_ERR_NOTFOUND, "no profile named "
		    "\"%.64s\"", name ? name : "");
	else if ((*pp)->builtin)
		r = sp_err_set(err, SP_ERR_DENIED, "profile %s is built in; "
		    "create a copy with: profile create NAME --from %s", name,
		    name);
	else
		r = profile_clone(*pp, name, &p, err);
	pthread_rwlock_unlock(&svc->lk);
	if (r != 0 || (r = profile_apply(svc, p, "profile.edit", sets, nsets,
	    actor, err)) != 0)
		goto out;
	/*
	 * Swap under the write lock: readers use profiles only under lk
	 * (issuance copies what it needs), so the old one can go now. The
	 * slot is found again: chg_mtx kept the array as it was.
	 */
	pthread_rwlock_wrlock(&svc->lk);
	if ((pp = ca_prof_find(svc, name)) == NULL)
		fatalx("profile %s vanished during its edit", name);
	old = *pp;
	*pp = p;
	pthread_rwlock_unlock(&svc->lk);
	profile_free(old);
	p = NULL;
 out:
	pthread_mutex_unlock(&svc->chg_mtx);
	profile_free(p);
	return r;
}

/* --- audit --------------------------------------------------------------- */

int
ca_audit_verify(struct ca_service *svc, json_t **out, struct sp_err *err)
{
	struct store_audit_report	rep;
	int				r;

	*out = NULL;
	r = store_audit_verify(svc->st, NULL, &rep, err);
	if (r != 0 && r != SP_ERR_POLICY)
		return r;
	*out = json_pack("{s:b,s:I,s:I,s:s}", "intact", r == 0,
	    "rows", (json_int_t)rep.rows, "bad_row", (json_int_t)rep.bad_seq,
	    "head", rep.head);
	return r;
}

static int
audit_row(const struct store_audit_row *a, void *arg)
{
	json_t		*arr = arg, *d;
	char		 ts[32];

	sp_time_fmt(a->ts, ts, sizeof(ts));
	d = json_loads(a->details, 0, NULL);
	json_array_append_new(arr, json_pack("{s:I,s:s,s:s,s:s,s:o}", "seq",
	    (json_int_t)a->seq, "time", ts, "event", a->event, "actor",
	    a->actor, "details", d ? d : json_string(a->details)));
	return 0;
}

json_t *
ca_audit_list(struct ca_service *svc, size_t limit)
{
	json_t	*arr = json_array();

	if (arr != NULL && store_audit_foreach(svc->st, NULL, limit, audit_row,
	    arr) != 0) {
		json_decref(arr);
		return NULL;
	}
	return arr;
}
