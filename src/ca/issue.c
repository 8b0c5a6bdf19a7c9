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
#include "net/pool.h"
#include "ca/profile.h"
#include "crypto/certs.h"
#include "crypto/dn.h"
#include "crypto/ids.h"
#include "crypto/key.h"
#include "token/token.h"
#include "util/log.h"
#include "util/util.h"


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
		if ((r = ca_sign_with(svc, ca->token, ca->key, &proto, err)) != 0)
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

void
ca_pending_cleanup(struct pending *pd)
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
	if (rq->profile == NULL || (pp = ca_prof_find(svc, rq->profile)) == NULL)
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
	ca_template_from_profile(&t, *pp);
	t.key_usage = ca_key_usage_for(t.key_usage,
	    key_alg_of(csr_get0_pubkey(pd->req)));
	t.serial = serial;
	t.subject = csr_get0_subject(pd->req);
	t.spki = csr_get0_spki(pd->req);
	t.issuer = pd->ca->cert;
	t.not_before = now - BACKDATE;
	t.not_after = now + (time_t)days * 86400;
	limit = certs_time(X509_get0_notAfter(pd->ca->cert));
	if (t.not_after > limit)
		t.not_after = limit;	/* never outlive the CA */
	t.sans = sans;
	if ((r = sign_copy(svc, sc, pd->ca, &pd->md, err)) != 0 ||
	    (r = cert_build(&t, &pd->x, err)) != 0 ||
	    (r = cert_set_sigalg(pd->x, pd->md, err)) != 0 ||
	    (r = ca_tbs_der(pd->x, &pd->tbs, &pd->tbslen, err)) != 0)
		goto out;
	if ((pd->subject = dn_print(t.subject)) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}
	snprintf(pd->profile, sizeof(pd->profile), "%s", (*pp)->name);
 out:
	GENERAL_NAMES_free(sans);
	return r;
}

static int
issue_reserve(struct ca_service *svc, struct store_txn *tx,
    struct pending *pd, struct ca_issue_res *res)
{
	struct store_cert	sc = { 0 };

	ca_serial_hex(pd->x, res->serial);
	sc.ca_id = pd->ca->id;
	sc.serial = res->serial;
	sc.subject = pd->subject;
	sc.profile = pd->profile;
	sc.not_before = certs_time(X509_get0_notBefore(pd->x));
	sc.not_after = certs_time(X509_get0_notAfter(pd->x));
	sc.der = pd->tbs;
	sc.derlen = pd->tbslen;
	return store_cert_reserve(svc->st, tx, &sc, &pd->rowid, &res->err);
}

/*
 * After a failed batch: its stored reservations are marked failed now, in
 * one transaction, so `cert list` never shows them reserved (no
 * certificate of the batch left the node). If even that fails, start-up
 * does it (store_cert_abandon_reserved()).
 */
static void
mark_batch_failed(struct ca_service *svc, struct pending *pd, size_t n)
{
	struct store_txn	*tx = NULL;
	struct sp_err		 err = { 0 };
	size_t			 i;

	if (store_txn_begin(svc->st, &tx, &err) != 0)
		goto fail;
	for (i = 0; i < n; i++)
		if (pd[i].rowid != 0 && store_cert_failed(svc->st, tx,
		    pd[i].rowid, &err) != 0)
			break;
	if (i < n) {
		store_txn_rollback(tx);
		goto fail;
	}
	if (store_txn_commit(tx, &err) == 0)
		return;
 fail:
	log_warnx("issuance batch: its reservations stay reserved until the "
	    "next start: %s", err.msg);
}

int
ca_record_sign_store(struct ca_service *svc, struct pending *pd,
    struct ca_issue_res *res, size_t n, ca_finish_fn *finish, void *arg)
{
	struct store_txn	*tx = NULL;
	struct sp_err		 err = { 0 };
	char			 fp[65];
	bool			 reserved = false;
	int			 r = 0;

	/*
	 * Record before signing: serials and TBS are stored before anything
	 * is signed. That commit need not wait for the disk: no certificate
	 * leaves the node before the durable commit below, which makes the
	 * reservations durable with it (WAL keeps them in order), so one
	 * fsync per batch suffices. A root's own certificate has no issuer
	 * to record it: it is stored with its CA row below.
	 */
	if ((r = store_txn_begin_lazy(svc->st, &tx, &err)) != 0)
		goto fail_all;
	for (size_t i = 0; i < n; i++) {
		if (res[i].rc != 0)
			continue;
		if (pd[i].ca == NULL) {
			ca_serial_hex(pd[i].x, res[i].serial);
			continue;
		}
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
	reserved = true;

	for (size_t i = 0; i < n; i++) {
		if (res[i].rc != 0)
			continue;
		if ((res[i].rc = cert_sign(pd[i].x, pd[i].md,
		    &res[i].err)) == 0)
			res[i].rc = certs_der(pd[i].x, &res[i].der,
			    &res[i].derlen, &res[i].err);
	}

	/* Store what was signed (and mark what was not) with its audit. */
	if ((r = store_txn_begin(svc->st, &tx, &err)) != 0)
		goto fail_all;
	for (size_t i = 0; i < n; i++) {
		r = 0;
		if (res[i].rc != 0) {
			if (pd[i].rowid != 0)
				r = store_cert_failed(svc->st, tx, pd[i].rowid,
				    &err);
		} else {
			cert_fingerprint(res[i].der, res[i].derlen, fp);
			if (pd[i].rowid != 0)
				r = store_cert_issued(svc->st, tx, pd[i].rowid,
				    res[i].der, res[i].derlen, fp, &err);
			if (r == 0)
				r = finish(arg, tx, i, &pd[i], &res[i], fp,
				    &err);
		}
		if (r != 0) {
			store_txn_rollback(tx);
			goto fail_all;
		}
	}
	if ((r = store_txn_commit(tx, &err)) != 0)
		goto fail_all;
	ca_run_notify(svc);
	return 0;
 fail_all:
	/* Nothing signed in this batch leaves the node. */
	log_warnx("issuance batch failed: %s", err.msg);
	if (reserved)
		mark_batch_failed(svc, pd, n);
	for (size_t i = 0; i < n; i++) {
		OPENSSL_free(res[i].der);
		res[i].der = NULL;
		res[i].derlen = 0;
		if (res[i].rc == 0) {
			res[i].rc = r;
			res[i].err = err;
		}
	}
	return r;
}

struct issue_finish {
	struct ca_service		*svc;
	const struct ca_issue_req	*reqs;
	const char			*actor;
};

/* A certificate issued from a CSR: the commit hooks, then its audit row. */
static int
issue_finish(void *arg, struct store_txn *tx, size_t i, struct pending *pd,
    struct ca_issue_res *res, const char *fp, struct sp_err *err)
{
	struct issue_finish	*f = arg;
	int			 r;

	if ((r = ca_run_hooks(f->svc, tx, &(struct ca_change_ev){
	    .what = CA_CHANGE_CERT, .ca = pd->ca->name, .ca_id = pd->ca->id,
	    .serial = res->serial, .status = CERT_ACTIVE, .reason = -1,
	    .der = res->der, .derlen = res->derlen }, err)) != 0)
		return r;
	return ca_audit(f->svc, tx, "cert.issue", f->reqs[i].actor ?
	    f->reqs[i].actor : f->actor, json_pack("{s:s,s:s,s:s,s:s,s:s}",
	    "ca", pd->ca->name, "serial", res->serial, "subject", pd->subject,
	    "profile", pd->profile, "fingerprint", fp), err);
}

int
ca_issue_batch(struct ca_service *svc, const struct ca_issue_req *reqs,
    size_t n, struct ca_issue_res *res, const char *actor)
{
	struct issue_finish	 f = { svc, reqs, actor };
	struct pending		*pd = NULL;
	struct sign_cache	 sc = { 0 };
	int			 r;

	if (n == 0)
		return 0;
	if (n > CA_BATCH_MAX)
		return SP_ERR_LIMIT;
	if ((pd = calloc(n, sizeof(*pd))) == NULL)
		return SP_ERR_ALLOC;
	memset(res, 0, n * sizeof(*res));
	/*
	 * The lock only for the lookups: CAs are never freed while the
	 * service lives, and what a request needs of its profile is copied,
	 * so signing and the commits hold no lock a CA or profile change
	 * waits on.
	 */
	pthread_rwlock_rdlock(&svc->lk);
	for (size_t i = 0; i < n; i++)
		res[i].rc = issue_prepare(svc, &reqs[i], &pd[i], &sc,
		    &res[i].err);
	pthread_rwlock_unlock(&svc->lk);
	r = ca_record_sign_store(svc, pd, res, n, issue_finish, &f);
	for (size_t i = 0; i < n; i++)
		ca_pending_cleanup(&pd[i]);
	sign_cache_cleanup(&sc);
	free(pd);
	return r;
}

void
ca_issue_stats(struct ca_service *svc, uint64_t *batches, uint64_t *requests)
{
	pthread_mutex_lock(&svc->gc_mtx);
	*batches = svc->gc_batches;
	*requests = svc->gc_requests;
	pthread_mutex_unlock(&svc->gc_mtx);
}

/*
 * A waiting caller. Each waits on its own condition, so a finished batch
 * wakes only its callers and, when requests wait, the one at the head of
 * the queue (to lead the next batch): never all 64 waiters for each batch.
 */
struct gc_item {
	const struct ca_issue_req	*req;
	struct ca_issue_res		*res;
	bool				 done;
	pthread_cond_t			 cv;
	struct gc_item			*next;
};

/* Under gc_mtx: lets the head of the queue lead if a CPU is free. */
static void
wake_head(struct ca_service *svc)
{
	if (svc->gc_head != NULL && svc->gc_leaders < svc->gc_leaders_max)
		pthread_cond_signal(&svc->gc_head->cv);
}

int
ca_issue_one(struct ca_service *svc, const struct ca_issue_req *req,
    struct ca_issue_res *res, const char *actor)
{
	struct gc_item		 me = { .req = req, .res = res }, *it, *batch;
	struct ca_issue_req	*reqs = NULL;
	struct ca_issue_res	*ress = NULL;
	struct ca_issue_req	 mine = *req;
	size_t			 n, i;
	int			 r;

	if (mine.actor == NULL)
		mine.actor = actor;
	me.req = &mine;
	memset(res, 0, sizeof(*res));
	pthread_cond_init(&me.cv, NULL);
	pthread_mutex_lock(&svc->gc_mtx);
	if (svc->gc_tail != NULL)
		svc->gc_tail->next = &me;
	else
		svc->gc_head = &me;
	svc->gc_tail = &me;
	while (!me.done) {
		/*
		 * Lead when a CPU is free for another batch and requests
		 * wait (perhaps not this caller's: it may be in a batch
		 * already, and then it leads the next one until its own is
		 * done). While batches run, new requests gather for the
		 * next one, so grouping grows with the load.
		 */
		if (svc->gc_leaders >= svc->gc_leaders_max ||
		    svc->gc_head == NULL) {
			pthread_cond_wait(&me.cv, &svc->gc_mtx);
			continue;
		}
		svc->gc_leaders++;
		batch = svc->gc_head;
		for (n = 1, it = batch; it->next != NULL && n < CA_BATCH_MAX;
		    it = it->next)
			n++;
		svc->gc_head = it->next;
		if (svc->gc_head == NULL)
			svc->gc_tail = NULL;
		it->next = NULL;
		svc->gc_batches++;
		svc->gc_requests += n;
		wake_head(svc);		/* more than a batch waits */
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
			pthread_cond_signal(&it->cv);
		}
		free(reqs);
		free(ress);
		reqs = NULL;
		ress = NULL;
		svc->gc_leaders--;
		wake_head(svc);
	}
	pthread_mutex_unlock(&svc->gc_mtx);
	pthread_cond_destroy(&me.cv);
	return res->rc;
}

/* --- issuance without a waiting thread ------------------------------------ */

struct aq_item {
	struct ca_issue_req	 req;		/* points into the copies below */
	struct ca_issue_res	 res;
	char			*ca, *profile, *actor;
	unsigned char		*csr;
	ca_issue_done_fn	*done;
	void			*arg;
	struct aq_item		*next;
};

struct aq_job {
	struct ca_service	*svc;
	struct pool		*pool;
	struct aq_item		*batch;
	size_t			 n;
	int			 rc;
};

static void
aq_item_free(struct aq_item *it)
{
	free(it->ca);
	free(it->profile);
	free(it->actor);
	free(it->csr);
	OPENSSL_free(it->res.der);
	free(it);
}

void
ca_issue_queue_free(struct ca_service *svc)
{
	struct aq_item	*it;

	while ((it = svc->aq_head) != NULL) {
		svc->aq_head = it->next;
		aq_item_free(it);
	}
	svc->aq_tail = NULL;
}

static void
aq_work(void *arg)
{
	struct aq_job		*j = arg;
	struct ca_issue_req	*reqs;
	struct ca_issue_res	*ress;
	struct aq_item		*it;
	size_t			 i;

	reqs = calloc(j->n, sizeof(*reqs));
	ress = calloc(j->n, sizeof(*ress));
	if (reqs == NULL || ress == NULL) {
		j->rc = SP_ERR_ALLOC;
		goto out;
	}
	for (i = 0, it = j->batch; it != NULL; it = it->next, i++)
		reqs[i] = it->req;
	j->rc = ca_issue_batch(j->svc, reqs, j->n, ress, NULL);
	for (i = 0, it = j->batch; it != NULL; it = it->next, i++)
		it->res = ress[i];
 out:
	free(reqs);
	free(ress);
}

static int	aq_start(struct ca_service *svc, struct pool *pool,
		    struct aq_item *mine);

static void
aq_done(void *arg)
{
	struct aq_job	*j = arg;
	struct aq_item	*it, *next;

	for (it = j->batch; it != NULL; it = next) {
		next = it->next;
		if (j->rc == SP_ERR_ALLOC && it->res.rc == 0 &&
		    it->res.der == NULL) {
			it->res.rc = SP_ERR_ALLOC;
			sp_err_set(&it->res.err, SP_ERR_ALLOC, "out of memory");
		}
		it->done(it->arg, &it->res);
		aq_item_free(it);
	}
	j->svc->aq_jobs--;
	(void)aq_start(j->svc, j->pool, NULL);
	free(j);
}

/*
 * Starts batch jobs while a CPU is free and requests wait. A job that
 * cannot be queued fails its requests through done, except mine (the
 * request ca_issue_submit() is queueing: its failure is returned, since
 * done never runs inside that call). After this, the queue is empty or
 * every job slot is taken, so a new request with a slot free is alone in
 * its batch.
 */
static int
aq_start(struct ca_service *svc, struct pool *pool, struct aq_item *mine)
{
	struct aq_job	*j;
	struct aq_item	*it, *last;
	int		 r, rc = 0;

	while (svc->aq_head != NULL && svc->aq_jobs < svc->gc_leaders_max) {
		if ((j = calloc(1, sizeof(*j))) == NULL)
			return rc;	/* the next completion tries again */
		j->svc = svc;
		j->pool = pool;
		j->batch = last = svc->aq_head;
		for (j->n = 1; last->next != NULL && j->n < CA_BATCH_MAX;
		    last = last->next)
			j->n++;
		svc->aq_head = last->next;
		if (svc->aq_head == NULL)
			svc->aq_tail = NULL;
		last->next = NULL;
		pthread_mutex_lock(&svc->gc_mtx);
		svc->gc_batches++;
		svc->gc_requests += j->n;
		pthread_mutex_unlock(&svc->gc_mtx);
		if ((r = pool_submit(pool, aq_work, aq_done, j)) == 0) {
			svc->aq_jobs++;
			continue;
		}
		pthread_mutex_lock(&svc->gc_mtx);
		svc->gc_batches--;
		svc->gc_requests -= j->n;
		pthread_mutex_unlock(&svc->gc_mtx);
		for (it = j->batch; it != NULL; it = last) {
			last = it->next;
			if (it == mine) {
				rc = r;		/* the caller frees it */
				continue;
			}
			it->res.rc = r;
			sp_err_set(&it->res.err, r, "node too busy or stopping: "
			    "not issued, try again");
			it->done(it->arg, &it->res);
			aq_item_free(it);
		}
		free(j);
	}
	return rc;
}

static char *
dup_or_null(const char *s, bool *bad)
{
	char	*d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		*bad = true;
	return d;
}

int
ca_issue_submit(struct ca_service *svc, struct pool *pool,
    const struct ca_issue_req *req, const char *actor, ca_issue_done_fn *done,
    void *arg, struct sp_err *err)
{
	struct aq_item	*it;
	bool		 bad = false;
	int		 r;

	if (done == NULL || pool == NULL)
		return sp_err_set(err, SP_ERR_INVALID, "no completion or pool");
	if ((it = calloc(1, sizeof(*it))) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	it->ca = dup_or_null(req->ca, &bad);
	it->profile = dup_or_null(req->profile, &bad);
	it->actor = dup_or_null(req->actor ? req->actor : actor, &bad);
	if (req->csr != NULL && req->csrlen > 0) {
		if ((it->csr = malloc(req->csrlen)) == NULL)
			bad = true;
		else
			memcpy(it->csr, req->csr, req->csrlen);
	}
	if (bad) {
		aq_item_free(it);
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	}
	it->req.ca = it->ca;
	it->req.profile = it->profile;
	it->req.csr = it->csr;
	it->req.csrlen = it->csr != NULL ? req->csrlen : 0;
	it->req.days = req->days;
	it->req.actor = it->actor;
	it->done = done;
	it->arg = arg;
	if (svc->aq_tail != NULL)
		svc->aq_tail->next = it;
	else
		svc->aq_head = it;
	svc->aq_tail = it;
	if ((r = aq_start(svc, pool, it)) != 0) {
		aq_item_free(it);
		return sp_err_set(err, r, "node too busy or stopping: not "
		    "issued, try again");
	}
	return 0;
}
