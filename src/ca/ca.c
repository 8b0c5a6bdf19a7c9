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
#include "ca/profile.h"
#include "crypto/dn.h"
#include "crypto/key.h"
#include "token/token.h"
#include "util/log.h"
#include "util/util.h"

#define CRL_PERIOD_MIN	10		/* seconds */
#define CRL_PERIOD_MAX	(366 * 86400)
#define CA_DAYS_MAX	36500
#define BACKDATE	60		/* seconds of clock skew tolerated */

struct ca {
	int64_t		 id;
	char		 name[CA_NAME_MAX + 1];
	char		 token[CA_TOKEN_NAME_MAX + 1];
	char		 key[TOKEN_ALIAS_MAX + 1];
	int64_t		 issuer_id;
	X509		*cert;
	long long	 crl_period;
	bool		 crl_warned;	/* scheduled CRL failure logged */
};

/*
 * The lock guards the arrays; CAs are immutable once loaded, profiles are
 * replaced (not changed) by edits. Tokens are the token service's.
 */
struct gc_item;

struct ca_service {
	struct store		 *st;
	pthread_rwlock_t	  lk;
	/* Group commit of single issuance requests (ca_issue_one()). */
	pthread_mutex_t		  gc_mtx;
	pthread_cond_t		  gc_cond;
	struct gc_item		 *gc_head, *gc_tail;
	bool			  gc_leader;
	struct tokens		 *tokens;
	struct ca		**cas;
	size_t			  ncas;
	struct profile		**profs;
	size_t			  nprofs;
};

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
	for (size_t i = 0; i < svc->ncas; i++)
		ca_free(svc->cas[i]);
	free(svc->cas);
	for (size_t i = 0; i < svc->nprofs; i++)
		profile_free(svc->profs[i]);
	free(svc->profs);
	pthread_rwlock_destroy(&svc->lk);
	pthread_mutex_destroy(&svc->gc_mtx);
	pthread_cond_destroy(&svc->gc_cond);
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

static struct ca *
ca_find_id(struct ca_service *svc, int64_t id)
{
	for (size_t i = 0; i < svc->ncas; i++)
		if (svc->cas[i]->id == id)
			return svc->cas[i];
	return NULL;
}

static struct profile **
prof_find(struct ca_service *svc, const char *name)
{
	for (size_t i = 0; i < svc->nprofs; i++)
		if (strcmp(svc->profs[i]->name, name) == 0)
			return &svc->profs[i];
	return NULL;
}

/* Looks a CA up, with the caller-facing error. Hold the lock. */
static struct ca *
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

static int
audit(struct ca_service *svc, struct store_txn *tx, const char *event,
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
	pthread_mutex_init(&svc->gc_mtx, NULL);
	pthread_cond_init(&svc->gc_cond, NULL);
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
		if (prof_find(svc, p->name) != NULL) {
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
		if ((r = audit(svc, NULL, "cert.reservation_abandoned", "node",
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

static void
serial_hex(const X509 *x, char out[2 * SERIAL_LEN + 1])
{
	const ASN1_INTEGER	*ai = X509_get0_serialNumber(x);
	int			 n = ASN1_STRING_length(ai);

	if (n > SERIAL_LEN)
		n = SERIAL_LEN;
	sp_hex_encode(ASN1_STRING_get0_data(ai), (size_t)n, out);
}

/* Normalises an operator-typed serial: strips colons, lower case. */
static int
serial_norm(const char *in, char out[2 * SERIAL_LEN + 1], struct sp_err *err)
{
	size_t	n = 0;

	if (in == NULL)
		return sp_err_set(err, SP_ERR_INVALID, "serial is required");
	if (strncmp(in, "0x", 2) == 0 || strncmp(in, "0X", 2) == 0)
		in += 2;
	for (; *in != '\0'; in++) {
		char c = *in;

		if (c == ':')
			continue;
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) ||
		    n == 2 * SERIAL_LEN)
			return sp_err_set(err, SP_ERR_INVALID, "serial must be "
			    "at most %d hex digits", 2 * SERIAL_LEN);
		out[n++] = c;
	}
	out[n] = '\0';
	if (n == 0)
		return sp_err_set(err, SP_ERR_INVALID, "serial is empty");
	if (n % 2 == 1) {
		memmove(out + 1, out, n + 1);
		out[0] = '0';
	}
	return 0;
}

/* The certificate body as recorded before signing (TBSCertificate DER). */
static int
tbs_der(X509 *x, unsigned char **der, size_t *len, struct sp_err *err)
{
	int	n;

	*der = NULL;
	if ((n = i2d_re_X509_tbs(x, der)) <= 0)
		return sp_err_ossl(err, SP_ERR_CRYPTO, "encoding TBS");
	*len = (size_t)n;
	return 0;
}

static time_t
asn1_time_t(const ASN1_TIME *t)
{
	struct tm	tm;

	if (!ASN1_TIME_to_tm(t, &tm))
		return 0;
	return timegm(&tm);
}

static int
sign_with(struct ca_service *svc, const char *token, const char *key,
    EVP_MD_CTX **md, struct sp_err *err)
{
	return tokens_sign_init(svc->tokens, token, key, md, err);
}

static int
cert_der(X509 *x, unsigned char **der, size_t *len, struct sp_err *err)
{
	int	n;

	*der = NULL;
	if ((n = i2d_X509(x, der)) <= 0)
		return sp_err_ossl(err, SP_ERR_CRYPTO, "encoding certificate");
	*len = (size_t)n;
	return 0;
}

static void
template_from_profile(struct cert_template *t, const struct profile *p)
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
static unsigned int
key_usage_for(unsigned int ku, int alg)
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

/* A reservation whose certificate will never be released. */
static void
mark_failed(struct ca_service *svc, int64_t rowid)
{
	struct sp_err	err = { 0 };

	if (rowid != 0 && store_cert_failed(svc->st, NULL, rowid, &err) != 0)
		log_warnx("reservation %lld stays reserved until restart: %s",
		    (long long)rowid, err.msg);
}

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
	serial_hex(ca->cert, serial);
	sp_time_fmt(asn1_time_t(X509_get0_notBefore(ca->cert)), nb,
	    sizeof(nb));
	sp_time_fmt(asn1_time_t(X509_get0_notAfter(ca->cert)), na, sizeof(na));
	j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I}",
	    "name", ca->name, "subject", subj ? subj : "",
	    "issuer", iss ? iss->name : ca->name, "token", ca->token,
	    "key", ca->key, "serial", serial, "not_before", nb,
	    "not_after", na, "fingerprint", fp, "crl_period",
	    (json_int_t)ca->crl_period);
	free(subj);
	return j;
}

int
ca_create(struct ca_service *svc, const struct ca_create_req *req,
    const char *actor, json_t **out, struct sp_err *err)
{
	struct store_txn	*tx = NULL;
	struct ca		*iss = NULL, *ca = NULL;
	enum key_alg		 kalg;
	unsigned char		*kspki = NULL;
	size_t			 kspkilen = 0;
	bool			 claimed = false;
	struct profile		**pp;
	struct cert_template	 t = { 0 };
	struct store_ca		 sca = { 0 };
	struct store_cert	 sc = { 0 };
	X509_NAME		*name = NULL;
	X509_PUBKEY		*spki = NULL;
	X509			*x = NULL;
	EVP_MD_CTX		*md = NULL;
	const unsigned char	*p;
	unsigned char		 serial[SERIAL_LEN], *tbs = NULL, *der = NULL;
	size_t			 tbslen = 0, derlen = 0;
	char			 fp[65], shex[2 * SERIAL_LEN + 1];
	const char		*pname;
	int64_t			 rowid = 0;
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
	pthread_rwlock_wrlock(&svc->lk);
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
	if ((pp = prof_find(svc, pname)) == NULL) {
		r = sp_err_set(err, SP_ERR_NOTFOUND, "no profile named "
		    "\"%.64s\"", pname);
		goto out;
	}
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
	template_from_profile(&t, *pp);
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
		time_t limit = asn1_time_t(X509_get0_notAfter(iss->cert));

		if (t.not_after > limit)
			t.not_after = limit;	/* never outlive the issuer */
	}
	if ((r = sign_with(svc, iss ? iss->token : req->token,
	    iss ? iss->key : req->key, &md, err)) != 0 ||
	    (r = cert_build(&t, &x, err)) != 0 ||
	    (r = cert_set_sigalg(x, md, err)) != 0 ||
	    (r = tbs_der(x, &tbs, &tbslen, err)) != 0)
		goto out;
	serial_hex(x, shex);
	sc.subject = req->dn;
	sc.profile = pname;
	sc.serial = shex;
	sc.not_before = t.not_before;
	sc.not_after = t.not_after;
	sc.der = tbs;
	sc.derlen = tbslen;
	/* A sub CA's certificate is one the issuer issues: record first. */
	if (iss != NULL) {
		sc.ca_id = iss->id;
		if ((r = store_cert_reserve(svc->st, NULL, &sc, &rowid, err)) != 0)
			goto out;
	}
	r = cert_sign(x, md, err);
	if (r == 0)
		r = cert_der(x, &der, &derlen, err);
	if (r != 0) {
		mark_failed(svc, rowid);
		goto out;
	}
	cert_fingerprint(der, derlen, fp);
	if ((ca = calloc(1, sizeof(*ca))) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		mark_failed(svc, rowid);
		goto out;
	}
	sca.name = req->name;
	sca.subject = req->dn;
	sca.token = req->token;
	sca.key_alias = req->key;
	sca.issuer_id = iss ? iss->id : 0;
	sca.cert = der;
	sca.certlen = derlen;
	sca.crl_period = period;
	sca.next_crl = now;	/* the first CRL is made right away */
	if ((r = store_txn_begin(svc->st, &tx, err)) != 0) {
		mark_failed(svc, rowid);
		goto out;
	}
	if ((rowid != 0 && (r = store_cert_issued(svc->st, tx, rowid, der, derlen,
	    fp, err)) != 0) ||
	    (r = store_ca_insert(svc->st, tx, &sca, &ca->id, err)) != 0 ||
	    (r = audit(svc, tx, "ca.create", actor, json_pack("{s:s,s:s,s:s,s:s,"
	    "s:s,s:s}", "ca", req->name, "subject", req->dn, "issuer",
	    iss ? iss->name : req->name, "serial", shex, "fingerprint", fp,
	    "profile", pname), err)) != 0) {
		store_txn_rollback(tx);
		mark_failed(svc, rowid);
		goto out;
	}
	if ((r = store_txn_commit(tx, err)) != 0) {
		mark_failed(svc, rowid);
		goto out;
	}
	snprintf(ca->name, sizeof(ca->name), "%s", req->name);
	snprintf(ca->token, sizeof(ca->token), "%s", req->token);
	snprintf(ca->key, sizeof(ca->key), "%s", req->key);
	ca->issuer_id = iss ? iss->id : 0;
	ca->crl_period = period;
	/* Re-parse: a built certificate has no decoded public key. */
	p = der;
	if ((ca->cert = d2i_X509(NULL, &p, (long)derlen)) == NULL)
		fatalx("CA %s: cannot parse its own certificate", req->name);
	if (push(&svc->cas, &svc->ncas, sizeof(ca), &ca) != 0)
		fatalx("out of memory adding CA");
	*out = ca_json(svc, ca);
	ca = NULL;
	claimed = false;	/* the CA keeps its key */
	log_info("CA %s created by %s (%s)", req->name, actor, shex);
 out:
	if (claimed)
		tokens_key_release(svc->tokens, req->token, req->key,
		    TOKENS_USE_CA, req->name);
	pthread_rwlock_unlock(&svc->lk);
	free(kspki);
	ca_free(ca);
	X509_NAME_free(name);
	X509_PUBKEY_free(spki);
	X509_free(x);
	EVP_MD_CTX_free(md);
	OPENSSL_free(tbs);
	OPENSSL_free(der);
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
	if (name == NULL || (pp = prof_find(svc, name)) == NULL)
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
	    (r = audit(svc, tx, event, actor, j, err)) != 0) {
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
	int		  r;

	pthread_rwlock_wrlock(&svc->lk);
	if (name != NULL && prof_find(svc, name) != NULL) {
		r = sp_err_set(err, SP_ERR_EXISTS, "profile \"%s\" already "
		    "exists", name);
		goto out;
	}
	if (from == NULL || (src = prof_find(svc, from)) == NULL) {
		r = sp_err_set(err, SP_ERR_NOTFOUND, "no profile named "
		    "\"%.64s\" to copy", from ? from : "");
		goto out;
	}
	if ((r = profile_clone(*src, name ? name : "", &p, err)) != 0 ||
	    (r = profile_apply(svc, p, "profile.create", sets, nsets, actor,
	    err)) != 0)
		goto out;
	if (push(&svc->profs, &svc->nprofs, sizeof(p), &p) != 0)
		fatalx("out of memory adding profile");
	p = NULL;
 out:
	pthread_rwlock_unlock(&svc->lk);
	profile_free(p);
	return r;
}

int
ca_profile_edit(struct ca_service *svc, const char *name,
    const char *const *sets, size_t nsets, const char *actor,
    struct sp_err *err)
{
	struct profile	**pp, *p = NULL;
	int		  r;

	pthread_rwlock_wrlock(&svc->lk);
	if (name == NULL || (pp = prof_find(svc, name)) == NULL) {
		r = sp_err_set(err, SP_ERR_NOTFOUND, "no profile named "
		    "\"%.64s\"", name ? name : "");
		goto out;
	}
	if ((*pp)->builtin) {
		r = sp_err_set(err, SP_ERR_DENIED, "profile %s is built in; "
		    "create a copy with: profile create NAME --from %s", name,
		    name);
		goto out;
	}
	if ((r = profile_clone(*pp, name, &p, err)) != 0 ||
	    (r = profile_apply(svc, p, "profile.edit", sets, nsets, actor,
	    err)) != 0)
		goto out;
	profile_free(*pp);
	*pp = p;
	p = NULL;
 out:
	pthread_rwlock_unlock(&svc->lk);
	profile_free(p);
	return r;
}

/* --- issuance ------------------------------------------------------------ */

/*
 * Signing contexts prepared once per batch and key, copied for each
 * certificate: EVP_DigestSignInit_ex() fetches the digest and signature
 * algorithms (provider store lookups, shared locks) every time, a copy
 * only takes references. Lives for one batch, under svc->lk, so a token
 * deactivated meanwhile is not used past the batch that began before.
 * The prototypes outlive their copies: OpenSSL 3.0's signature dupctx
 * leaves the copy's AlgorithmIdentifier pointing into the prototype.
 */
#define SIGN_CACHE_MAX	4

struct sign_cache {
	const struct ca	*ca[SIGN_CACHE_MAX];
	EVP_MD_CTX	*md[SIGN_CACHE_MAX];
	size_t		 n;
};

static void
sign_cache_cleanup(struct sign_cache *sc)
{
	for (size_t i = 0; i < sc->n; i++)
		EVP_MD_CTX_free(sc->md[i]);
	sc->n = 0;
}

static int
sign_copy(struct ca_service *svc, struct sign_cache *sc, const struct ca *ca,
    EVP_MD_CTX **md, struct sp_err *err)
{
	EVP_MD_CTX	*proto = NULL;
	size_t		 i;
	int		 r;

	*md = NULL;
	for (i = 0; i < sc->n && sc->ca[i] != ca; i++)
		;
	if (i == sc->n) {
		if ((r = sign_with(svc, ca->token, ca->key, &proto, err)) != 0)
			return r;
		if (sc->n == SIGN_CACHE_MAX) {
			*md = proto;	/* a batch for many CAs: no copy */
			return 0;
		}
		sc->ca[i] = ca;
		sc->md[i] = proto;
		sc->n++;
	}
	if ((*md = EVP_MD_CTX_new()) == NULL ||
	    !EVP_MD_CTX_copy_ex(*md, sc->md[i])) {
		EVP_MD_CTX_free(*md);
		*md = NULL;
		return sp_err_ossl(err, SP_ERR_CRYPTO, "EVP_MD_CTX_copy_ex");
	}
	return 0;
}

/* Per-request state between the two transactions of a batch. */
struct pending {
	struct ca	*ca;
	EVP_MD_CTX	*md;
	X509		*x;
	struct csr	*req;
	char		*subject;
	const char	*profile;
	int64_t		 rowid;
	unsigned char	*tbs;
	size_t		 tbslen;
};

static void
pending_cleanup(struct pending *pd)
{
	EVP_MD_CTX_free(pd->md);
	X509_free(pd->x);
	csr_free(pd->req);
	free(pd->subject);
	OPENSSL_free(pd->tbs);
}

/* Parses and checks one request and builds its certificate. Hold lk. */
static int
issue_prepare(struct ca_service *svc, const struct ca_issue_req *rq,
    struct pending *pd, struct sign_cache *sc, struct sp_err *err)
{
	struct profile		**pp;
	struct cert_template	 t = { 0 };
	GENERAL_NAMES		*sans = NULL;
	unsigned char		 serial[SERIAL_LEN];
	time_t			 now = sp_now(), limit;
	int			 r, days;

	if ((pd->ca = ca_get(svc, rq->ca, err)) == NULL)
		return SP_ERR_NOTFOUND;
	if (rq->profile == NULL || (pp = prof_find(svc, rq->profile)) == NULL)
		return sp_err_set(err, SP_ERR_NOTFOUND, "no profile named "
		    "\"%.64s\"", rq->profile ? rq->profile : "");
	if ((*pp)->ca)
		return sp_err_set(err, SP_ERR_POLICY, "profile %s makes CA "
		    "certificates; create sub CAs with: ca create --signed-by",
		    rq->profile);
	if ((r = csr_decode(rq->csr, rq->csrlen, &pd->req, err)) != 0)
		return r;
	days = rq->days ? rq->days : (*pp)->validity_days;
	if ((r = profile_check_csr(*pp, pd->req, days, &sans, err)) != 0)
		return r;
	if ((r = serial_generate(serial)) != 0) {
		sp_err_set(err, r, "random serial");
		goto out;
	}
	template_from_profile(&t, *pp);
	t.key_usage = key_usage_for(t.key_usage,
	    key_alg_of(csr_get0_pubkey(pd->req)));
	t.serial = serial;
	t.subject = csr_get0_subject(pd->req);
	t.spki = csr_get0_spki(pd->req);
	t.issuer = pd->ca->cert;
	t.not_before = now - BACKDATE;
	t.not_after = now + (time_t)days * 86400;
	limit = asn1_time_t(X509_get0_notAfter(pd->ca->cert));
	if (t.not_after > limit)
		t.not_after = limit;	/* never outlive the CA */
	t.sans = sans;
	if ((r = sign_copy(svc, sc, pd->ca, &pd->md, err)) != 0 ||
	    (r = cert_build(&t, &pd->x, err)) != 0 ||
	    (r = cert_set_sigalg(pd->x, pd->md, err)) != 0 ||
	    (r = tbs_der(pd->x, &pd->tbs, &pd->tbslen, err)) != 0)
		goto out;
	if ((pd->subject = dn_print(t.subject)) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}
	pd->profile = (*pp)->name;
 out:
	GENERAL_NAMES_free(sans);
	return r;
}

static int
issue_reserve(struct ca_service *svc, struct store_txn *tx,
    struct pending *pd, struct ca_issue_res *res)
{
	struct store_cert	sc = { 0 };

	serial_hex(pd->x, res->serial);
	sc.ca_id = pd->ca->id;
	sc.serial = res->serial;
	sc.subject = pd->subject;
	sc.profile = pd->profile;
	sc.not_before = asn1_time_t(X509_get0_notBefore(pd->x));
	sc.not_after = asn1_time_t(X509_get0_notAfter(pd->x));
	sc.der = pd->tbs;
	sc.derlen = pd->tbslen;
	return store_cert_reserve(svc->st, tx, &sc, &pd->rowid, &res->err);
}

int
ca_issue_batch(struct ca_service *svc, const struct ca_issue_req *reqs,
    size_t n, struct ca_issue_res *res, const char *actor)
{
	struct store_txn	*tx = NULL;
	struct pending		*pd = NULL;
	struct sign_cache	 sc = { 0 };
	struct sp_err		 err = { 0 };
	char			 fp[65];
	int			 r = 0;

	if (n == 0)
		return 0;
	if (n > CA_BATCH_MAX)
		return SP_ERR_LIMIT;
	if ((pd = calloc(n, sizeof(*pd))) == NULL)
		return SP_ERR_ALLOC;
	memset(res, 0, n * sizeof(*res));
	pthread_rwlock_rdlock(&svc->lk);
	for (size_t i = 0; i < n; i++)
		res[i].rc = issue_prepare(svc, &reqs[i], &pd[i], &sc,
		    &res[i].err);

	/*
	 * Record before signing: serials and TBS are stored before anything
	 * is signed. That commit need not wait for the disk: no certificate
	 * leaves the node before the durable commit below, which makes the
	 * reservations durable with it (WAL keeps them in order), so one
	 * fsync per batch suffices.
	 */
	if ((r = store_txn_begin_lazy(svc->st, &tx, &err)) != 0)
		goto fail_all;
	for (size_t i = 0; i < n; i++) {
		if (res[i].rc != 0)
			continue;
		res[i].rc = issue_reserve(svc, tx, &pd[i], &res[i]);
		if (res[i].rc == SP_ERR_EXISTS) {
			/* A 2^-159 collision: fail this one, not the batch. */
			sp_err_set(&res[i].err, SP_ERR_INTERNAL, "serial "
			    "collision, retry");
			res[i].rc = SP_ERR_INTERNAL;
		}
	}
	if ((r = store_txn_commit(tx, &err)) != 0)
		goto fail_all;

	for (size_t i = 0; i < n; i++) {
		if (res[i].rc != 0)
			continue;
		if ((res[i].rc = cert_sign(pd[i].x, pd[i].md,
		    &res[i].err)) == 0)
			res[i].rc = cert_der(pd[i].x, &res[i].der,
			    &res[i].derlen, &res[i].err);
	}

	/* Store what was signed (and mark what was not) with its audit. */
	if ((r = store_txn_begin(svc->st, &tx, &err)) != 0)
		goto fail_all;
	for (size_t i = 0; i < n; i++) {
		if (pd[i].rowid == 0)
			continue;
		if (res[i].rc != 0) {
			r = store_cert_failed(svc->st, tx, pd[i].rowid, &err);
		} else {
			cert_fingerprint(res[i].der, res[i].derlen, fp);
			if ((r = store_cert_issued(svc->st, tx, pd[i].rowid,
			    res[i].der, res[i].derlen, fp, &err)) == 0)
				r = audit(svc, tx, "cert.issue",
				    reqs[i].actor ? reqs[i].actor : actor,
				    json_pack("{s:s,s:s,s:s,s:s,s:s}", "ca",
				    pd[i].ca->name, "serial", res[i].serial,
				    "subject", pd[i].subject, "profile",
				    pd[i].profile, "fingerprint", fp), &err);
		}
		if (r != 0) {
			store_txn_rollback(tx);
			goto fail_all;
		}
	}
	if ((r = store_txn_commit(tx, &err)) != 0)
		goto fail_all;
	goto out;
 fail_all:
	/* Nothing signed in this batch leaves the node. */
	log_warnx("issuance batch failed: %s", err.msg);
	for (size_t i = 0; i < n; i++) {
		OPENSSL_free(res[i].der);
		res[i].der = NULL;
		res[i].derlen = 0;
		if (res[i].rc == 0) {
			res[i].rc = r;
			res[i].err = err;
		}
	}
 out:
	pthread_rwlock_unlock(&svc->lk);
	for (size_t i = 0; i < n; i++)
		pending_cleanup(&pd[i]);
	sign_cache_cleanup(&sc);
	free(pd);
	return r;
}

struct gc_item {
	const struct ca_issue_req	*req;
	struct ca_issue_res		*res;
	bool				 done;
	struct gc_item			*next;
};

int
ca_issue_one(struct ca_service *svc, const struct ca_issue_req *req,
    struct ca_issue_res *res, const char *actor)
{
	struct gc_item		 me = { req, res, false, NULL }, *it, *batch;
	struct ca_issue_req	*reqs = NULL;
	struct ca_issue_res	*ress = NULL;
	struct ca_issue_req	 mine = *req;
	size_t			 n, i;
	int			 r;

	if (mine.actor == NULL)
		mine.actor = actor;
	me.req = &mine;
	memset(res, 0, sizeof(*res));
	pthread_mutex_lock(&svc->gc_mtx);
	if (svc->gc_tail != NULL)
		svc->gc_tail->next = &me;
	else
		svc->gc_head = &me;
	svc->gc_tail = &me;
	while (!me.done) {
		if (svc->gc_leader) {
			pthread_cond_wait(&svc->gc_cond, &svc->gc_mtx);
			continue;
		}
		/* Lead: take what has gathered, up to a batch. */
		svc->gc_leader = true;
		batch = svc->gc_head;
		for (n = 1, it = batch; it->next != NULL && n < CA_BATCH_MAX;
		    it = it->next)
			n++;
		svc->gc_head = it->next;
		if (svc->gc_head == NULL)
			svc->gc_tail = NULL;
		it->next = NULL;
		pthread_mutex_unlock(&svc->gc_mtx);

		reqs = calloc(n, sizeof(*reqs));
		ress = calloc(n, sizeof(*ress));
		if (reqs == NULL || ress == NULL)
			r = SP_ERR_ALLOC;
		else {
			for (i = 0, it = batch; it != NULL; it = it->next, i++)
				reqs[i] = *it->req;
			r = ca_issue_batch(svc, reqs, n, ress, actor);
		}
		pthread_mutex_lock(&svc->gc_mtx);
		for (i = 0, it = batch; it != NULL; it = it->next, i++) {
			if (r == SP_ERR_ALLOC || ress == NULL) {
				it->res->rc = SP_ERR_ALLOC;
				sp_err_set(&it->res->err, SP_ERR_ALLOC,
				    "out of memory");
			} else
				*it->res = ress[i];
			it->done = true;
		}
		free(reqs);
		free(ress);
		reqs = NULL;
		ress = NULL;
		svc->gc_leader = false;
		pthread_cond_broadcast(&svc->gc_cond);
	}
	pthread_mutex_unlock(&svc->gc_mtx);
	return res->rc;
}

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
	struct ca	*ca;
	struct certrow	 cr = { 0 };
	char		 sn[2 * SERIAL_LEN + 2];
	int		 r;

	if ((r = serial_norm(serial, sn, err)) != 0)
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
		r = store_cert_set_status(svc->st, tx, cr.id, CERT_REVOKED,
		    sp_now(), reason, err);
	}
	if (r == 0)
		r = audit(svc, tx, unrevoke ? "cert.unrevoke" : "cert.revoke",
		    actor, json_pack("{s:s,s:s,s:s}", "ca", ca->name, "serial",
		    sn, "reason", unrevoke ? "removeFromCRL" :
		    crl_reason_name(reason)), err);
	if (r != 0)
		goto undo;
	r = store_txn_commit(tx, err);
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
	if ((r = serial_norm(serial, sn, err)) != 0) {
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
	if ((r = sign_with(svc, ca->token, ca->key, &md, err)) != 0)
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
	    (r = audit(svc, tx, "crl.create", actor, json_pack("{s:s,s:I,s:i}",
	    "ca", ca->name, "number", (json_int_t)number, "entries",
	    (int)rc.n), err)) != 0)
		goto undo;
	if ((r = store_txn_commit(tx, err)) != 0)
		goto out;
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
