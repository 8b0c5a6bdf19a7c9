/*
 * Issuance benchmark: certificates per second through the CA core
 * (ca_issue_batch(), the path the node serves: CSR verify, profile check,
 * serial and TBS recorded in SQLite before signing, signed certificate and
 * audit row stored after), side by side with baselines measured in the
 * same run on the same machine:
 *
 *   (a) openssl speed: signatures per second, the ceiling;
 *   (b) a bare loop over OpenSSL's X509 API building the same certificate,
 *       storing nothing;
 *   (b') the same loop with the CA core's CSR decoder (csr_decode()) and
 *       a signing context prepared once and copied: the new ceiling;
 *   (c) one "openssl x509 -req" process per certificate.
 *
 * See bench/README.md for how to read the ratios.
 */
#include <sys/statfs.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "ca/ca.h"
#include "net/pool.h"
#include "store/store.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#define DEF_BATCH	64	/* CSRs per ca_issue_batch() call */
#define REPEATS		3	/* runs per core and (b) figure; median */
#define MAX_THREADS	2
#define DEF_COUNT	4000
#define DEF_NAIVE	200
#define DEF_SINGLE	64	/* concurrent ca_issue_one() callers */
#define QUICK_COUNT	256
#define QUICK_NAIVE	20
#define PROFILE		"TLS_SERVER"
#define DAYS		397	/* TLS_SERVER's maximum, what the core uses */
#define PIN		"bench-pin-1234"
#define ACTOR		"bench"
#define NARGS(a)	(sizeof(a) / sizeof((a)[0]))
#define ARG_CSR		4	/* indexes into naive()'s argv */
#define ARG_SERIAL	10
#define PATH_BUF	256	/* dir (< 128) plus a file name */

extern char **environ;

enum calg {
	CALG_P256,
	CALG_RSA2048,
	CALG__MAX
};

static const struct {
	const char	*label;		/* table */
	const char	*tag;		/* file names, CA and key aliases */
	const char	*token_alg;	/* tokens_genkey() */
	const char	*speed_alg;	/* openssl speed */
	const char	*speed_line;	/* its summary line */
	const char	*speed_mr;	/* its machine-readable line */
} calgs[CALG__MAX] = {
	{ "P-256", "p256", "ec-p256", "ecdsap256", "ecdsa (nistp256)",
	    "+F4:" },
	{ "RSA-2048", "rsa2048", "rsa2048", "rsa2048", "rsa 2048 bits",
	    "+F2:" },
};

struct bcsr {
	unsigned char	*der;
	size_t		 len;
};

/* Throwaway CA of (b) and (c): not in the token, not in the store. */
struct bare_ca {
	EVP_PKEY		*key;
	EVP_MD_CTX		*proto;	/* (b'): prepared, copied per cert */
	X509			*cert;
	const ASN1_OCTET_STRING	*ski;	/* borrowed from cert */
};

struct bench {
	size_t			 count;		/* certificates per run */
	size_t			 naive;		/* (c) certificates */
	size_t			 batch;		/* CSRs per core call */
	int			 speed_secs;	/* (a) */
	bool			 keep;
	bool			 core_only;	/* no baselines: profiling */
	int			 single;	/* ca_issue_one() callers, 0: skip */
	int			 alg;		/* only this CA key, -1: all */
	int			 threads;	/* only this many, 0: all */
	char			 dir[128];
	char			 load[64];	/* /proc/loadavg at start */
	struct store		*st;
	struct tokens		*tk;
	struct ca_service	*svc;
	struct bcsr		*csrs;
	struct bare_ca		 bca[CALG__MAX];
};

/* One thread's share of a run. */
struct job {
	struct bench		*b;
	enum calg		 alg;
	size_t			 lo, hi;	/* CSR indexes [lo, hi) */
	double			 rq;		/* s waiting for a CPU */
	int			 rc;
};

/*
 * One run of the core or of (b). Per certificate, summed over threads,
 * in microseconds: the thread time (threads x elapsed) is cpu + rq +
 * blocked.
 */
struct sample {
	double	rate;		/* certs/s, wall clock */
	double	cpu;		/* on a CPU (process CPU time) */
	double	rq;		/* runnable, waiting for a CPU: other load */
	double	blocked;	/* the rest: fsync, locks, idle at the end */
};

/* Medians per thread count; a value < 0 reads n/a. */
struct result {
	bool		done[MAX_THREADS];	/* row measured */
	struct sample	core[MAX_THREADS];
	struct sample	bare[MAX_THREADS];
	struct sample	fast[MAX_THREADS];	/* (b') */
	double		speed[MAX_THREADS];	/* (a) sign/s */
	double		naive;			/* (c) certs/s */
	double		single;			/* ca_issue_one() certs/s */
	double		submit;			/* ca_issue_submit() certs/s */
};

static double
clock_sec(clockid_t id)
{
	struct timespec	ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
now_sec(void)
{
	return clock_sec(CLOCK_MONOTONIC);
}

/*
 * Seconds the calling thread has spent runnable but waiting for a CPU
 * (the second field of schedstat), or -1 if the kernel does not say.
 */
static double
rq_wait(void)
{
	FILE			*f;
	unsigned long long	 run, wait;
	double			 w = -1;

	if ((f = fopen("/proc/thread-self/schedstat", "r")) == NULL)
		return -1;
	if (fscanf(f, "%llu %llu", &run, &wait) == 2)
		w = (double)wait / 1e9;
	fclose(f);
	return w;
}

static void
ossl_warn(const char *what)
{
	unsigned long	e = ERR_get_error();
	char		buf[256];

	ERR_error_string_n(e, buf, sizeof(buf));
	fprintf(stderr, "bench_issue: %s: %s\n", what, e ? buf : "failed");
	ERR_clear_error();
}

static int
cmp_double(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int
cmp_str(const void *a, const void *b)
{
	const char	*x = *(char *const *)a, *y = *(char *const *)b;

	return strcmp(x ? x : "", y ? y : "");
}

static double
median3(double v[REPEATS])
{
	qsort(v, REPEATS, sizeof(v[0]), cmp_double);
	return v[REPEATS / 2];
}

/* Fresh random serial as cert_build() makes it: 20 bytes, positive. */
static int
random_serial(unsigned char sn[SERIAL_LEN])
{
	do {
		if (RAND_bytes(sn, SERIAL_LEN) != 1)
			return -1;
		sn[0] &= 0x7f;
	} while (sn[0] == 0);
	return 0;
}

/* --- set-up ------------------------------------------------------------ */

static EVP_PKEY *
keygen(enum calg alg)
{
	if (alg == CALG_P256)
		return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
}

/* A P-256 CSR for host<i>.bench.example with a DNS SAN request (DER). */
static int
csr_make(size_t i, struct bcsr *c, FILE *pem)
{
	EVP_PKEY			*pk = NULL;
	X509_REQ			*req = NULL;
	X509_NAME			*name;
	GENERAL_NAMES			*gens = NULL;
	GENERAL_NAME			*gn = NULL;
	ASN1_IA5STRING			*ia5 = NULL;
	STACK_OF(X509_EXTENSION)	*exts = NULL;
	X509_EXTENSION			*ext = NULL;
	unsigned char			*der = NULL;
	char				 host[64];
	int				 len, r = -1;

	snprintf(host, sizeof(host), "host%zu.bench.example", i);
	if ((pk = keygen(CALG_P256)) == NULL ||
	    (req = X509_REQ_new()) == NULL ||
	    !X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
	    !X509_REQ_set_pubkey(req, pk))
		goto out;
	name = X509_REQ_get_subject_name(req);
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)host, -1, -1, 0))
		goto out;
	if ((gens = GENERAL_NAMES_new()) == NULL ||
	    (gn = GENERAL_NAME_new()) == NULL ||
	    (ia5 = ASN1_IA5STRING_new()) == NULL ||
	    !ASN1_STRING_set(ia5, host, -1))
		goto out;
	GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
	ia5 = NULL;
	if (!sk_GENERAL_NAME_push(gens, gn))
		goto out;
	gn = NULL;
	if ((ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens)) == NULL ||
	    (exts = sk_X509_EXTENSION_new_null()) == NULL ||
	    !sk_X509_EXTENSION_push(exts, ext))
		goto out;
	ext = NULL;
	if (!X509_REQ_add_extensions(req, exts) ||
	    X509_REQ_sign(req, pk, EVP_sha256()) <= 0 ||
	    (len = i2d_X509_REQ(req, &der)) <= 0)
		goto out;
	if (pem != NULL && !PEM_write_X509_REQ(pem, req))
		goto out;
	c->der = der;
	c->len = (size_t)len;
	der = NULL;
	r = 0;
 out:
	if (r != 0)
		ossl_warn("making a CSR");
	OPENSSL_free(der);
	X509_EXTENSION_free(ext);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	ASN1_IA5STRING_free(ia5);
	GENERAL_NAME_free(gn);
	GENERAL_NAMES_free(gens);
	X509_REQ_free(req);
	EVP_PKEY_free(pk);
	return r;
}

static int
csrs_make(struct bench *b)
{
	char	path[PATH_BUF];
	FILE	*pem = NULL;
	int	 r = 0;

	if ((b->csrs = calloc(b->count, sizeof(*b->csrs))) == NULL)
		return -1;
	for (size_t i = 0; i < b->count && r == 0; i++) {
		/* The first ones also go to files for (c). */
		if (i < b->naive) {
			snprintf(path, sizeof(path), "%s/csr-%zu.pem", b->dir,
			    i);
			if ((pem = fopen(path, "w")) == NULL) {
				fprintf(stderr, "bench_issue: %s: %s\n", path,
				    strerror(errno));
				return -1;
			}
		}
		r = csr_make(i, &b->csrs[i], pem);
		if (pem != NULL && fclose(pem) != 0)
			r = -1;
		pem = NULL;
	}
	return r;
}

static int
add_ext_conf(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION	*ext;
	int		 ok;

	if ((ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value)) == NULL)
		return 0;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

/* Self-signed throwaway CA for (b) and (c), written as PEM for (c). */
static int
bare_ca_make(struct bench *b, enum calg alg)
{
	struct bare_ca	*bc = &b->bca[alg];
	X509V3_CTX	 ctx;
	unsigned char	 sn[SERIAL_LEN];
	BIGNUM		*bn = NULL;
	FILE		*f = NULL;
	char		 cn[64], path[PATH_BUF];
	time_t		 now = time(NULL);
	int		 r = -1;

	/* The core's CA name (O, then CN), so certificates are alike. */
	snprintf(cn, sizeof(cn), "Bench Root %s", calgs[alg].label);
	if ((bc->key = keygen(alg)) == NULL ||
	    (bc->cert = X509_new()) == NULL ||
	    random_serial(sn) != 0 ||
	    (bn = BN_bin2bn(sn, sizeof(sn), NULL)) == NULL ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(bc->cert)) == NULL ||
	    !X509_set_version(bc->cert, X509_VERSION_3) ||
	    !X509_NAME_add_entry_by_txt(X509_get_subject_name(bc->cert), "O",
	    MBSTRING_UTF8, (const unsigned char *)"Sallyport", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(X509_get_subject_name(bc->cert), "CN",
	    MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) ||
	    !X509_set_issuer_name(bc->cert, X509_get_subject_name(bc->cert)) ||
	    ASN1_TIME_set(X509_getm_notBefore(bc->cert), now - 60) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(bc->cert),
	    now + 3650L * 86400) == NULL ||
	    !X509_set_pubkey(bc->cert, bc->key))
		goto out;
	X509V3_set_ctx(&ctx, bc->cert, bc->cert, NULL, NULL, 0);
	if (!add_ext_conf(bc->cert, &ctx, NID_basic_constraints,
	    "critical,CA:TRUE") ||
	    !add_ext_conf(bc->cert, &ctx, NID_key_usage,
	    "critical,keyCertSign,cRLSign") ||
	    !add_ext_conf(bc->cert, &ctx, NID_subject_key_identifier, "hash") ||
	    X509_sign(bc->cert, bc->key, EVP_sha256()) <= 0 ||
	    (bc->ski = X509_get0_subject_key_id(bc->cert)) == NULL ||
	    (bc->proto = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit_ex(bc->proto, NULL, "SHA256", NULL, NULL,
	    bc->key, NULL) != 1)
		goto out;

	snprintf(path, sizeof(path), "%s/%s-ca.pem", b->dir, calgs[alg].tag);
	if ((f = fopen(path, "w")) == NULL || !PEM_write_X509(f, bc->cert) ||
	    fclose(f) != 0) {
		f = NULL;
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%s-cakey.pem", b->dir,
	    calgs[alg].tag);
	if ((f = fopen(path, "w")) == NULL ||
	    !PEM_write_PrivateKey(f, bc->key, NULL, NULL, 0, NULL, NULL) ||
	    fclose(f) != 0) {
		f = NULL;
		goto out;
	}
	f = NULL;
	r = 0;
 out:
	if (r != 0)
		ossl_warn("making the baseline CA");
	if (f != NULL)
		fclose(f);
	BN_free(bn);
	return r;
}

/* The CA core's side: store, service, token, keys and two root CAs. */
static int
core_setup(struct bench *b)
{
	struct sp_err		 err = { 0 };
	struct ca_create_req	 cr = { 0 };
	json_t			*j = NULL;
	char			 path[PATH_BUF], name[32], dn[64];
	int			 r;

	snprintf(path, sizeof(path), "%s/bench.db", b->dir);
	if ((r = store_open(path, &b->st, &err)) != 0 ||
	    (r = tokens_open(b->st, &b->tk, &err)) != 0 ||
	    (r = ca_service_open(b->st, b->tk, &b->svc, &err)) != 0 ||
	    (r = tokens_create(b->tk, "bench", PIN, ACTOR, &err)) != 0)
		goto out;
	for (int a = 0; a < CALG__MAX; a++) {
		if ((r = tokens_genkey(b->tk, "bench", calgs[a].tag,
		    calgs[a].token_alg, ACTOR, &j, &err)) != 0)
			goto out;
		json_decref(j);
		j = NULL;
		snprintf(name, sizeof(name), "root-%s", calgs[a].tag);
		snprintf(dn, sizeof(dn), "CN=Bench Root %s,O=Sallyport",
		    calgs[a].label);
		cr.name = name;
		cr.dn = dn;
		cr.token = "bench";
		cr.key = calgs[a].tag;
		if ((r = ca_create(b->svc, &cr, ACTOR, &j, &err)) != 0)
			goto out;
		json_decref(j);
		j = NULL;
	}
 out:
	if (r != 0)
		fprintf(stderr, "bench_issue: setting up the CA: %s (%s)\n",
		    err.msg, sp_rc_str(r));
	return r;
}

/* --- core: ca_issue_batch() -------------------------------------------- */

static void *
core_worker(void *arg)
{
	struct job		*jb = arg;
	size_t			 batch = jb->b->batch, i, n;
	struct ca_issue_req	*reqs = NULL;
	struct ca_issue_res	*res = NULL;
	char			 ca[32];

	jb->rc = -1;
	jb->rq = rq_wait();
	snprintf(ca, sizeof(ca), "root-%s", calgs[jb->alg].tag);
	if ((reqs = calloc(batch, sizeof(*reqs))) == NULL ||
	    (res = calloc(batch, sizeof(*res))) == NULL)
		goto out;
	for (i = jb->lo; i < jb->hi; i += n) {
		n = jb->hi - i < batch ? jb->hi - i : batch;
		for (size_t k = 0; k < n; k++) {
			reqs[k].ca = ca;
			reqs[k].profile = PROFILE;
			reqs[k].csr = jb->b->csrs[i + k].der;
			reqs[k].csrlen = jb->b->csrs[i + k].len;
			reqs[k].days = 0;
		}
		if (ca_issue_batch(jb->b->svc, reqs, n, res, ACTOR) != 0) {
			fprintf(stderr, "bench_issue: batch failed: %s\n",
			    res[0].err.msg);
			goto out;
		}
		for (size_t k = 0; k < n; k++) {
			if (res[k].rc != 0) {
				fprintf(stderr, "bench_issue: CSR %zu: %s\n",
				    i + k, res[k].err.msg);
				goto out;
			}
			OPENSSL_free(res[k].der);
			res[k].der = NULL;
		}
	}
	jb->rc = 0;
	jb->rq = jb->rq < 0 ? -1 : rq_wait() - jb->rq;
 out:
	if (jb->rc != 0 && res != NULL)
		for (size_t k = 0; k < batch; k++)
			OPENSSL_free(res[k].der);
	free(res);
	free(reqs);
	return NULL;
}

/* One request at a time through group commit (ca_issue_one()). */
static void *
single_worker(void *arg)
{
	struct job		*jb = arg;
	struct ca_issue_req	 rq = { 0 };
	struct ca_issue_res	 res;
	char			 ca[32];

	jb->rc = -1;
	jb->rq = rq_wait();
	snprintf(ca, sizeof(ca), "root-%s", calgs[jb->alg].tag);
	rq.ca = ca;
	rq.profile = PROFILE;
	for (size_t i = jb->lo; i < jb->hi; i++) {
		rq.csr = jb->b->csrs[i].der;
		rq.csrlen = jb->b->csrs[i].len;
		if (ca_issue_one(jb->b->svc, &rq, &res, ACTOR) != 0) {
			fprintf(stderr, "bench_issue: CSR %zu: %s\n", i,
			    res.err.msg);
			OPENSSL_free(res.der);
			return NULL;
		}
		OPENSSL_free(res.der);
	}
	jb->rq = jb->rq < 0 ? -1 : rq_wait() - jb->rq;
	jb->rc = 0;
	return NULL;
}

/*
 * One request at a time through ca_issue_submit(), as the node's
 * cert.issue does: one loop thread keeps b->single requests outstanding,
 * the batches run on a pool of MAX_THREADS workers.
 */
struct submit_run {
	struct job		*jb;
	struct event_base	*base;
	struct pool		*pool;
	struct ca_issue_req	 rq;
	char			 ca[32];
	size_t			 next, done, total;
	int			 failed;
};

static void	submit_more(struct submit_run *s);

static void
on_submitted(void *arg, const struct ca_issue_res *res)
{
	struct submit_run	*s = arg;

	if (res->rc != 0 && s->failed++ == 0)
		fprintf(stderr, "bench_issue: submit: %s\n", res->err.msg);
	if (++s->done == s->total)
		event_base_loopbreak(s->base);
	else
		submit_more(s);
}

static void
submit_more(struct submit_run *s)
{
	struct sp_err	err = { 0 };

	while (s->next < s->jb->hi &&
	    s->next - s->jb->lo - s->done < (size_t)s->jb->b->single) {
		s->rq.csr = s->jb->b->csrs[s->next].der;
		s->rq.csrlen = s->jb->b->csrs[s->next].len;
		if (ca_issue_submit(s->jb->b->svc, s->pool, &s->rq, ACTOR,
		    on_submitted, s, &err) != 0) {
			fprintf(stderr, "bench_issue: submit: %s\n", err.msg);
			s->failed++;
			event_base_loopbreak(s->base);
			return;
		}
		s->next++;
	}
}

static void
on_keepalive(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

static void *
submit_worker(void *arg)
{
	struct submit_run	 s = { 0 };
	struct event		*tick = NULL;
	struct timeval		 tv = { 1, 0 };

	s.jb = arg;
	s.jb->rc = -1;
	s.jb->rq = -1;
	s.total = s.jb->hi - s.jb->lo;
	s.next = s.jb->lo;
	snprintf(s.ca, sizeof(s.ca), "root-%s", calgs[s.jb->alg].tag);
	s.rq.ca = s.ca;
	s.rq.profile = PROFILE;
	if ((s.base = event_base_new()) == NULL ||
	    (s.pool = pool_new(s.base, MAX_THREADS)) == NULL ||
	    (tick = event_new(s.base, -1, EV_PERSIST, on_keepalive,
	    NULL)) == NULL || event_add(tick, &tv) != 0)
		goto out;
	submit_more(&s);
	if (s.failed == 0)
		event_base_dispatch(s.base);
	if (s.failed == 0 && s.done == s.total)
		s.jb->rc = 0;
 out:
	if (tick != NULL)
		event_free(tick);
	pool_free(s.pool);
	if (s.base != NULL)
		event_base_free(s.base);
	return NULL;
}

/* --- (b): the bare X509 API loop --------------------------------------- */

/* The CSR's SubjectPublicKeyInfo, copied as src/crypto/x509.c does. */
static int
spki_copy(X509 *x, const X509_PUBKEY *src)
{
	ASN1_OBJECT		*obj = NULL;
	const ASN1_OBJECT	*aobj;
	const unsigned char	*pk;
	unsigned char		*pkc = NULL;
	X509_ALGOR		*alg;
	const void		*pval;
	void			*pcopy = NULL;
	int			 pklen, ptype;

	if (!X509_PUBKEY_get0_param(&obj, &pk, &pklen, &alg, src))
		return -1;
	X509_ALGOR_get0(&aobj, &ptype, &pval, alg);
	if (ptype == V_ASN1_OBJECT)
		pcopy = OBJ_dup(pval);
	else if (ptype == V_ASN1_SEQUENCE)
		pcopy = ASN1_STRING_dup(pval);
	else if (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF)
		return -1;
	if ((pkc = OPENSSL_memdup(pk, (size_t)pklen)) == NULL ||
	    !X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), OBJ_dup(aobj),
	    ptype, pcopy, pkc, pklen)) {
		if (ptype == V_ASN1_OBJECT)
			ASN1_OBJECT_free(pcopy);
		else
			ASN1_STRING_free(pcopy);
		OPENSSL_free(pkc);
		return -1;
	}
	return 0;
}

/* SHA-1 of the subjectPublicKey bits (RFC 5280 4.2.1.2 method 1). */
static ASN1_OCTET_STRING *
spki_keyid(const X509_PUBKEY *spki)
{
	const unsigned char	*pk;
	unsigned char		 md[20];
	int			 pklen;
	ASN1_OCTET_STRING	*oct;

	if (!X509_PUBKEY_get0_param(NULL, &pk, &pklen, NULL, spki) ||
	    !EVP_Digest(pk, (size_t)pklen, md, NULL, EVP_sha1(), NULL) ||
	    (oct = ASN1_OCTET_STRING_new()) == NULL)
		return NULL;
	if (!ASN1_OCTET_STRING_set(oct, md, sizeof(md))) {
		ASN1_OCTET_STRING_free(oct);
		return NULL;
	}
	return oct;
}

/*
 * One certificate the way a program calling OpenSSL directly makes it:
 * parse and verify the CSR, build what TLS_SERVER makes, sign, encode.
 * With fast, (b'): the CSR through csr_decode() and the signature with a
 * copy of the prepared context.
 */
static int
bare_issue(const struct bcsr *c, const struct bare_ca *ca, bool fast,
    unsigned char **der, int *derlen)
{
	const unsigned char		*p = c->der;
	X509_REQ			*req = NULL;
	struct csr			*dc = NULL;
	const X509_NAME			*subj;
	const X509_PUBKEY		*spki;
	EVP_MD_CTX			*md = NULL;
	X509				*x = NULL;
	EVP_PKEY			*pk;
	STACK_OF(X509_EXTENSION)	*exts = NULL;
	GENERAL_NAMES			*sans = NULL;
	BASIC_CONSTRAINTS		*bc = NULL;
	ASN1_OCTET_STRING		*ski = NULL;
	AUTHORITY_KEYID			*aki = NULL;
	ASN1_BIT_STRING			*ku = NULL;
	EXTENDED_KEY_USAGE		*eku = NULL;
	BIGNUM				*bn = NULL;
	unsigned char			 sn[SERIAL_LEN];
	time_t				 now = time(NULL);
	int				 r = -1;

	*der = NULL;
	if (fast) {
		if (csr_decode(c->der, c->len, &dc, NULL) != 0)
			goto out;
		subj = csr_get0_subject(dc);
		spki = csr_get0_spki(dc);
		exts = csr_get_extensions(dc);
	} else {
		if ((req = d2i_X509_REQ(NULL, &p, (long)c->len)) == NULL ||
		    (pk = X509_REQ_get0_pubkey(req)) == NULL ||
		    X509_REQ_verify(req, pk) != 1)
			goto out;
		subj = X509_REQ_get_subject_name(req);
		spki = X509_REQ_get_X509_PUBKEY(req);
		exts = X509_REQ_get_extensions(req);
	}
	if (exts == NULL ||
	    (sans = X509V3_get_d2i(exts, NID_subject_alt_name, NULL,
	    NULL)) == NULL)
		goto out;

	if ((x = X509_new()) == NULL ||
	    !X509_set_version(x, X509_VERSION_3) ||
	    random_serial(sn) != 0 ||
	    (bn = BN_bin2bn(sn, sizeof(sn), NULL)) == NULL ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL ||
	    !X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) ||
	    !X509_set_subject_name(x, subj) ||
	    ASN1_TIME_set(X509_getm_notBefore(x), now - 60) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x),
	    now + (time_t)DAYS * 86400) == NULL ||
	    spki_copy(x, spki) != 0)
		goto out;

	if ((bc = BASIC_CONSTRAINTS_new()) == NULL ||
	    X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1,
	    X509V3_ADD_DEFAULT) != 1)
		goto out;
	if ((ski = spki_keyid(spki)) == NULL ||
	    X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0,
	    X509V3_ADD_DEFAULT) != 1)
		goto out;
	if ((aki = AUTHORITY_KEYID_new()) == NULL ||
	    (aki->keyid = ASN1_OCTET_STRING_dup(ca->ski)) == NULL ||
	    X509_add1_ext_i2d(x, NID_authority_key_identifier, aki, 0,
	    X509V3_ADD_DEFAULT) != 1)
		goto out;
	if ((ku = ASN1_BIT_STRING_new()) == NULL ||
	    !ASN1_BIT_STRING_set_bit(ku, 0, 1) ||	/* digitalSignature */
	    !ASN1_BIT_STRING_set_bit(ku, 2, 1) ||	/* keyEncipherment */
	    X509_add1_ext_i2d(x, NID_key_usage, ku, 1,
	    X509V3_ADD_DEFAULT) != 1)
		goto out;
	if ((eku = sk_ASN1_OBJECT_new_null()) == NULL ||
	    !sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_server_auth)) ||
	    X509_add1_ext_i2d(x, NID_ext_key_usage, eku, 0,
	    X509V3_ADD_DEFAULT) != 1)
		goto out;
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, sans, 0,
	    X509V3_ADD_DEFAULT) != 1)
		goto out;

	if (fast) {
		if ((md = EVP_MD_CTX_new()) == NULL ||
		    !EVP_MD_CTX_copy_ex(md, ca->proto) ||
		    X509_sign_ctx(x, md) <= 0)
			goto out;
	} else if (X509_sign(x, ca->key, EVP_sha256()) <= 0)
		goto out;
	if ((*derlen = i2d_X509(x, der)) <= 0)
		goto out;
	r = 0;
 out:
	if (r != 0)
		ossl_warn("bare issuance");
	BN_free(bn);
	sk_ASN1_OBJECT_free(eku);	/* static NID objects */
	ASN1_BIT_STRING_free(ku);
	AUTHORITY_KEYID_free(aki);
	ASN1_OCTET_STRING_free(ski);
	BASIC_CONSTRAINTS_free(bc);
	GENERAL_NAMES_free(sans);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_free(x);
	X509_REQ_free(req);
	csr_free(dc);
	EVP_MD_CTX_free(md);
	return r;
}

static void *
bare_loop(struct job *jb, bool fast)
{
	unsigned char	*der = NULL;
	int		 len;

	jb->rc = -1;
	jb->rq = rq_wait();
	for (size_t i = jb->lo; i < jb->hi; i++) {
		if (bare_issue(&jb->b->csrs[i], &jb->b->bca[jb->alg], fast,
		    &der, &len) != 0)
			return NULL;
		OPENSSL_free(der);
		der = NULL;
	}
	jb->rq = jb->rq < 0 ? -1 : rq_wait() - jb->rq;
	jb->rc = 0;
	return NULL;
}

static void *
bare_worker(void *arg)
{
	return bare_loop(arg, false);
}

static void *
fast_worker(void *arg)
{
	return bare_loop(arg, true);
}

/* --- running and timing -------------------------------------------------- */

/*
 * Splits [0, n) over nthr threads running fn and times it (struct
 * sample). Returns 0 or -1.
 */
static int
run(struct bench *b, void *(*fn)(void *), enum calg alg, int nthr, size_t n,
    struct sample *sm)
{
	struct job	*jobs;
	pthread_t	*tid;
	double		 t0, t1, c0, c1, rq = 0;
	int		 started = 0, ok = 1;

	jobs = calloc((size_t)nthr, sizeof(*jobs));
	tid = calloc((size_t)nthr, sizeof(*tid));
	if (jobs == NULL || tid == NULL) {
		free(jobs);
		free(tid);
		return -1;
	}

	for (int t = 0; t < nthr; t++) {
		jobs[t].b = b;
		jobs[t].alg = alg;
		jobs[t].lo = n * (size_t)t / (size_t)nthr;
		jobs[t].hi = n * (size_t)(t + 1) / (size_t)nthr;
		jobs[t].rc = -1;
	}
	c0 = clock_sec(CLOCK_PROCESS_CPUTIME_ID);
	t0 = now_sec();
	for (; started < nthr; started++)
		if (pthread_create(&tid[started], NULL, fn,
		    &jobs[started]) != 0) {
			ok = 0;
			break;
		}
	for (int t = 0; t < started; t++) {
		pthread_join(tid[t], NULL);
		if (jobs[t].rc != 0)
			ok = 0;
		if (rq >= 0)
			rq = jobs[t].rq < 0 ? -1 : rq + jobs[t].rq;
	}
	t1 = now_sec();
	c1 = clock_sec(CLOCK_PROCESS_CPUTIME_ID);
	sm->rate = (double)n / (t1 - t0);
	sm->cpu = (c1 - c0) * 1e6 / (double)n;
	sm->rq = rq < 0 ? -1 : rq * 1e6 / (double)n;
	sm->blocked = nthr * (t1 - t0) * 1e6 / (double)n - sm->cpu -
	    (rq < 0 ? 0 : sm->rq);
	free(jobs);
	free(tid);
	return ok ? 0 : -1;
}

/* The extension list of x, "name" or "name!" if critical, sorted. */
static void
ext_shape(const X509 *x, char *out, size_t outsz)
{
	char	*names[16];
	size_t	 off = 0;
	int	 n = X509_get_ext_count(x);

	out[0] = '\0';
	if (n > 16)
		n = 16;
	for (int i = 0; i < n; i++) {
		X509_EXTENSION	*e = X509_get_ext(x, i);
		char		 buf[64];

		snprintf(buf, sizeof(buf), "%s%s",
		    OBJ_nid2sn(OBJ_obj2nid(X509_EXTENSION_get_object(e))),
		    X509_EXTENSION_get_critical(e) ? "!" : "");
		names[i] = strdup(buf);
	}
	qsort(names, (size_t)n, sizeof(names[0]), cmp_str);
	for (int i = 0; i < n; i++) {
		int	k = snprintf(out + off, outsz - off, "%s%s",
		    i ? "," : "", names[i] ? names[i] : "?");

		if (k > 0 && (size_t)k < outsz - off)
			off += (size_t)k;
		free(names[i]);
	}
}

static int
der_shape(const unsigned char *der, size_t len, char *out, size_t outsz)
{
	const unsigned char	*p = der;
	X509			*x;

	if ((x = d2i_X509(NULL, &p, (long)len)) == NULL)
		return -1;
	ext_shape(x, out, outsz);
	X509_free(x);
	return 0;
}

/*
 * Issues one certificate both ways and checks they carry the same
 * extensions, so (b) really builds what the core builds. Warms up too.
 */
static int
same_shape(struct bench *b, enum calg alg)
{
	struct ca_issue_req	 rq = { 0 };
	struct ca_issue_res	 res = { 0 };
	unsigned char		*der = NULL;
	char			 ca[32], s1[256], s2[256];
	int			 len, r = -1;

	snprintf(ca, sizeof(ca), "root-%s", calgs[alg].tag);
	rq.ca = ca;
	rq.profile = PROFILE;
	rq.csr = b->csrs[0].der;
	rq.csrlen = b->csrs[0].len;
	if (ca_issue_batch(b->svc, &rq, 1, &res, ACTOR) != 0 || res.rc != 0) {
		fprintf(stderr, "bench_issue: core issuance: %s\n",
		    res.err.msg);
		OPENSSL_free(res.der);
		return -1;
	}
	for (int fast = 0; fast < 2; fast++) {
		OPENSSL_free(der);
		der = NULL;
		if (bare_issue(&b->csrs[0], &b->bca[alg], fast, &der,
		    &len) != 0)
			goto out;
		if (der_shape(res.der, res.derlen, s1, sizeof(s1)) != 0 ||
		    der_shape(der, (size_t)len, s2, sizeof(s2)) != 0)
			goto out;
		if (strcmp(s1, s2) != 0) {
			fprintf(stderr, "bench_issue: %s differs from the "
			    "core:\n  core: %s\n  %s:  %s\n", fast ? "(b')" :
			    "(b)", s1, fast ? "(b')" : "(b)", s2);
			goto out;
		}
	}
	fprintf(stderr, "  %s: core, (b) and (b') all make %zu/%d-byte "
	    "certificates with %s\n", calgs[alg].label, res.derlen, len, s1);
	r = 0;
 out:
	OPENSSL_free(res.der);
	OPENSSL_free(der);
	return r;
}

/* --- (a): openssl speed -------------------------------------------------- */

/* The sign/s column: the next-to-last number on the summary line. */
static double
speed_summary(const char *line)
{
	double		 nums[16];
	const char	*p = line;
	char		*end;
	int		 n = 0;

	while (*p != '\0' && n < 16) {
		double	v;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0' || *p == '\n')
			break;
		v = strtod(p, &end);
		if (end != p && (*end == ' ' || *end == '\t' || *end == '\n' ||
		    *end == '\0'))
			nums[n++] = v;
		while (*p != '\0' && *p != ' ' && *p != '\t')
			p++;
	}
	return n >= 3 ? nums[n - 2] : -1;
}

/*
 * Signatures per second with nthr processes. Single-process output has
 * one summary line ("rsa 2048 bits 0.000864s 0.000026s 1157.0 39140.0");
 * with -multi, OpenSSL 3.0 prints the same line summed over the children
 * after one "Got: +F2:k:bits:sign/s:verify/s from N" line per child, so
 * those are summed if the summary is missing. -1: n/a.
 */
static double
speed_sign(const struct bench *b, enum calg alg, int nthr)
{
	FILE	*p;
	char	 cmd[128], line[512], multi[32] = "";
	double	 summary = -1, sum = 0, v;
	int	 got = 0;

	if (nthr > 1)
		snprintf(multi, sizeof(multi), "-multi %d ", nthr);
	snprintf(cmd, sizeof(cmd), "openssl speed -seconds %d %s%s 2>&1",
	    b->speed_secs, multi, calgs[alg].speed_alg);
	if ((p = popen(cmd, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), p) != NULL) {
		const char	*mr;

		if (strstr(line, calgs[alg].speed_line) != NULL &&
		    (v = speed_summary(line)) > 0)
			summary = v;
		else if (strncmp(line, "Got: ", 5) == 0 &&
		    (mr = strstr(line, calgs[alg].speed_mr)) != NULL) {
			/* +F4:idx:bits:sign/s:verify/s */
			const char	*f = mr;

			for (int k = 0; k < 3 && f != NULL; k++)
				if ((f = strchr(f, ':')) != NULL)
					f++;
			if (f != NULL && (v = strtod(f, NULL)) > 0) {
				sum += v;
				got++;
			}
		}
	}
	if (pclose(p) != 0)
		return -1;
	if (summary > 0)
		return summary;
	return got == nthr ? sum : -1;
}

/* --- (c): one openssl process per certificate --------------------------- */

static int
spawn_wait(char *const argv[])
{
	posix_spawn_file_actions_t	fa;
	pid_t				pid;
	int				st, r;

	if (posix_spawn_file_actions_init(&fa) != 0)
		return -1;
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		return -1;
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* Shows what the last "openssl x509 -req" made, to compare. */
static void
naive_shape(const char *path, enum calg alg)
{
	FILE	*f;
	X509	*x = NULL;
	char	 shape[256];

	if ((f = fopen(path, "r")) != NULL) {
		x = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (x == NULL) {
		ossl_warn(path);
		return;
	}
	ext_shape(x, shape, sizeof(shape));
	fprintf(stderr, "  %s: (c) makes %s\n", calgs[alg].label, shape);
	X509_free(x);
}

/* Sequential "openssl x509 -req" runs; certs/s or -1. */
static double
naive(const struct bench *b, enum calg alg)
{
	static const char	 extconf[] =
	    "[v3]\n"
	    "basicConstraints = critical,CA:FALSE\n"
	    "subjectKeyIdentifier = hash\n"
	    "authorityKeyIdentifier = keyid\n"
	    "keyUsage = critical,digitalSignature,keyEncipherment\n"
	    "extendedKeyUsage = serverAuth\n";
	char			 csr[PATH_BUF], ca[PATH_BUF], cakey[PATH_BUF];
	char			 ext[PATH_BUF], out[PATH_BUF];
	char			 serial[2 + 2 * SERIAL_LEN + 1];
	unsigned char		 sn[SERIAL_LEN];
	struct sp_err		 err = { 0 };
	double			 t0, t1;
	const char		*tmpl[] = { "openssl", "x509", "-req", "-in",
	    csr, "-CA", ca, "-CAkey", cakey, "-set_serial", serial,
	    "-days", "30", "-sha256", "-extfile", ext, "-extensions", "v3",
	    "-copy_extensions", "copy", "-out", out };
	char			*argv[NARGS(tmpl) + 1] = { NULL };
	double			 rate = -1;

	if (b->naive == 0)
		return -1;
	snprintf(ext, sizeof(ext), "%s/ext.cnf", b->dir);
	snprintf(ca, sizeof(ca), "%s/%s-ca.pem", b->dir, calgs[alg].tag);
	snprintf(cakey, sizeof(cakey), "%s/%s-cakey.pem", b->dir,
	    calgs[alg].tag);
	snprintf(out, sizeof(out), "%s/naive.crt", b->dir);
	if (sp_file_write(ext, extconf, sizeof(extconf) - 1, 0600,
	    &err) != 0) {
		fprintf(stderr, "bench_issue: %s\n", err.msg);
		return -1;
	}
	/*
	 * posix_spawnp() wants writable strings: copies of the fixed ones;
	 * csr and serial are our buffers, rewritten before each run.
	 */
	for (size_t k = 0; k < NARGS(tmpl); k++)
		if (k != ARG_CSR && k != ARG_SERIAL &&
		    (argv[k] = strdup(tmpl[k])) == NULL)
			goto out;
	argv[ARG_CSR] = csr;
	argv[ARG_SERIAL] = serial;
	t0 = now_sec();
	for (size_t i = 0; i < b->naive; i++) {
		if (random_serial(sn) != 0)
			goto out;
		snprintf(csr, sizeof(csr), "%s/csr-%zu.pem", b->dir, i);
		memcpy(serial, "0x", 2);
		sp_hex_encode(sn, sizeof(sn), serial + 2);
		if (spawn_wait(argv) != 0) {
			fprintf(stderr, "bench_issue: openssl x509 -req failed "
			    "on %s\n", csr);
			goto out;
		}
	}
	t1 = now_sec();
	rate = (double)b->naive / (t1 - t0);
	naive_shape(out, alg);
 out:
	for (size_t k = 0; k < NARGS(tmpl); k++)
		if (k != ARG_CSR && k != ARG_SERIAL)
			free(argv[k]);
	return rate;
}

/* --- report -------------------------------------------------------------- */

static const char *
fs_name(const char *path)
{
	struct statfs	sf;

	if (statfs(path, &sf) != 0)
		return "?";
	switch ((unsigned long)sf.f_type) {
	case 0xef53UL:
		return "ext4";
	case 0x01021994UL:
		return "tmpfs: fsync is free";
	case 0x58465342UL:
		return "xfs";
	case 0x9123683eUL:
		return "btrfs";
	case 0x794c7630UL:
		return "overlayfs";
	default:
		return "other";
	}
}

static void
cpu_model(char *out, size_t outsz)
{
	FILE	*f;
	char	 line[256], *p;

	snprintf(out, outsz, "unknown CPU");
	if ((f = fopen("/proc/cpuinfo", "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "model name", 10) == 0 &&
		    (p = strchr(line, ':')) != NULL) {
			p += strspn(p, ": \t");
			p[strcspn(p, "\n")] = '\0';
			snprintf(out, outsz, "%s", p);
			break;
		}
	fclose(f);
}

/* The three load averages. */
static void
load_avg(char *out, size_t outsz)
{
	FILE	*f;
	double	 l1, l5, l15;

	snprintf(out, outsz, "unknown");
	if ((f = fopen("/proc/loadavg", "r")) == NULL)
		return;
	if (fscanf(f, "%lf %lf %lf", &l1, &l5, &l15) == 3)
		snprintf(out, outsz, "%.2f %.2f %.2f", l1, l5, l15);
	fclose(f);
}

static void
fmt_num(char *out, size_t outsz, double v)
{
	if (v < 0)
		snprintf(out, outsz, "n/a");
	else
		snprintf(out, outsz, "%.0f", v);
}

static void
report_header(const struct bench *b)
{
	char	cpu[128];

	cpu_model(cpu, sizeof(cpu));
	printf("\nSallyport issuance benchmark: certificates per second, "
	    "profile %s, P-256 CSRs\n", PROFILE);
	printf("machine: %ld CPUs online (%s), %s\n",
	    sysconf(_SC_NPROCESSORS_ONLN), cpu,
	    OpenSSL_version(OPENSSL_VERSION));
	printf("load average at the start: %s (other work on the machine "
	    "shows here)\n", b->load);
	printf("database: %s/bench.db (%s), WAL, synchronous=FULL\n",
	    b->dir, fs_name(b->dir));
	printf("core and (b): %zu certificates per run, median of %d runs;\n"
	    "(a): openssl speed -seconds %d; (c): %zu certificates, one "
	    "process at a time\n\n", b->count, REPEATS, b->speed_secs,
	    b->naive);
	printf("  core      ca_issue_batch(), %zu CSRs per call: parse+verify "
	    "CSR, profile check,\n"
	    "            serial+TBS committed before signing, sign, "
	    "certificate+audit committed\n", b->batch);
	printf("  (b)       bare OpenSSL X509 loop: parse+verify CSR, build "
	    "the same certificate,\n"
	    "            sign, DER-encode; nothing stored, nothing audited\n");
	printf("  core/(b)  share of the bare loop's rate the core keeps\n");
	printf("  (b')      the same loop with the core's CSR decoder "
	    "(csr_decode()) and a\n"
	    "            prepared signing context, copied: the new ceiling\n");
	printf("  core/(b') share of (b')'s rate the core keeps\n");
	printf("  (a)       openssl speed signatures/s with the CA key: "
	    "the ceiling, no X.509 work\n");
	printf("  (c)       one `openssl x509 -req` process per certificate "
	    "(measured with 1 only)\n");
	printf("  core/(c)  how many times faster the core is than scripting "
	    "openssl\n\n");
}

static void
report_rates(const struct result res[CALG__MAX])
{
	char	a[32], bb[32], c[32], cc[32], rb[32], fb[32], rf[32];

	printf("%-9s %3s %7s %7s %8s %7s %9s %10s %6s %8s\n", "CA key",
	    "thr", "core/s", "(b)/s", "core/(b)", "(b')/s", "core/(b')",
	    "(a) sign/s", "(c)/s", "core/(c)");
	for (int al = 0; al < CALG__MAX; al++)
		for (int t = 0; t < MAX_THREADS; t++) {
			const struct result	*r = &res[al];
			const struct sample	*co = &r->core[t];
			const struct sample	*ba = &r->bare[t];
			const struct sample	*fa = &r->fast[t];

			if (!r->done[t])
				continue;
			fmt_num(a, sizeof(a), r->speed[t]);
			fmt_num(bb, sizeof(bb), ba->rate);
			fmt_num(fb, sizeof(fb), fa->rate);
			snprintf(rb, sizeof(rb), "n/a");
			snprintf(rf, sizeof(rf), "n/a");
			if (ba->rate > 0)
				snprintf(rb, sizeof(rb), "%.0f%%",
				    100 * co->rate / ba->rate);
			if (fa->rate > 0)
				snprintf(rf, sizeof(rf), "%.0f%%",
				    100 * co->rate / fa->rate);
			snprintf(c, sizeof(c), t > 0 ? "-" : "n/a");
			snprintf(cc, sizeof(cc), "%s", c);
			if (t == 0 && r->naive > 0) {
				fmt_num(c, sizeof(c), r->naive);
				snprintf(cc, sizeof(cc), "%.1fx",
				    co->rate / r->naive);
			}
			printf("%-9s %3d %7.0f %7s %8s %7s %9s %10s %6s %8s\n",
			    calgs[al].label, t + 1, co->rate, bb, rb, fb, rf, a,
			    c, cc);
		}
}

static void
report_times(const struct result res[CALG__MAX])
{
	char	bcpu[32], fcpu[32], bblk[32], d[32], ratio[32], rq[32];

	printf("\nWhere the time goes, microseconds per certificate summed "
	    "over threads (medians):\n"
	    "  CPU         on a CPU (process CPU time): what the work costs, "
	    "whatever the load\n"
	    "  extra       core CPU - (b') CPU: checks, TBS record, SQLite, "
	    "audit chain\n"
	    "  ratio       (b') CPU / core CPU: about what core/(b') is on an "
	    "idle machine\n"
	    "  run queue   core runnable but waiting for a CPU: other "
	    "programs' load\n"
	    "  blocked     core asleep (fsync, locks, a thread done before "
	    "the other);\n"
	    "              (b) blk: the same for (b), which has no fsync "
	    "or locks of its own\n\n");
	printf("%-9s %3s %8s %7s %8s %6s %6s %9s %8s %7s\n", "CA key",
	    "thr", "core CPU", "(b) CPU", "(b') CPU", "extra", "ratio",
	    "run queue", "blocked", "(b) blk");
	for (int al = 0; al < CALG__MAX; al++)
		for (int t = 0; t < MAX_THREADS; t++) {
			const struct result	*r = &res[al];
			const struct sample	*co = &r->core[t];
			const struct sample	*ba = &r->bare[t];

			if (!r->done[t])
				continue;
			fmt_num(bcpu, sizeof(bcpu), ba->cpu);
			fmt_num(fcpu, sizeof(fcpu), r->fast[t].cpu);
			fmt_num(rq, sizeof(rq), co->rq);
			fmt_num(bblk, sizeof(bblk), ba->blocked);
			snprintf(d, sizeof(d), "n/a");
			snprintf(ratio, sizeof(ratio), "n/a");
			if (r->fast[t].cpu > 0) {
				snprintf(d, sizeof(d), "%+.0f",
				    co->cpu - r->fast[t].cpu);
				snprintf(ratio, sizeof(ratio), "%.0f%%",
				    100 * r->fast[t].cpu / co->cpu);
			}
			printf("%-9s %3d %8.0f %7s %8s %6s %6s %9s %8.0f %7s\n",
			    calgs[al].label, t + 1, co->cpu, bcpu, fcpu, d,
			    ratio, rq, co->blocked, bblk);
		}
}

/* --- main ---------------------------------------------------------------- */

/* Field-by-field medians of REPEATS samples. */
static void
sample_median(struct sample v[REPEATS], struct sample *out)
{
	double	f[REPEATS];

	for (int k = 0; k < REPEATS; k++)
		f[k] = v[k].rate;
	out->rate = median3(f);
	for (int k = 0; k < REPEATS; k++)
		f[k] = v[k].cpu;
	out->cpu = median3(f);
	for (int k = 0; k < REPEATS; k++)
		f[k] = v[k].rq;
	out->rq = median3(f);
	for (int k = 0; k < REPEATS; k++)
		f[k] = v[k].blocked;
	out->blocked = median3(f);
}

/* The core and (b), interleaved so drift hits both alike, then (a). */
static int
measure(struct bench *b, enum calg alg, int nthr, struct result *res)
{
	struct sample	core[REPEATS], bare[REPEATS], fast[REPEATS];
	int		t = nthr - 1;

	fprintf(stderr, "%s, %d thread(s): %d runs...\n", calgs[alg].label,
	    nthr, REPEATS);
	for (int k = 0; k < REPEATS; k++) {
		if (run(b, core_worker, alg, nthr, b->count, &core[k]) != 0)
			return -1;
		bare[k].rate = bare[k].cpu = bare[k].rq = bare[k].blocked = -1;
		fast[k] = bare[k];
		if (!b->core_only && (run(b, bare_worker, alg, nthr, b->count,
		    &bare[k]) != 0 || run(b, fast_worker, alg, nthr, b->count,
		    &fast[k]) != 0))
			return -1;
		fprintf(stderr, "  run %d: core %.0f/s (per cert: %.0f us CPU, "
		    "%.0f waiting for a CPU), (b) %.0f/s (%.0f, %.0f), "
		    "(b') %.0f/s (%.0f, %.0f)\n",
		    k + 1, core[k].rate, core[k].cpu, core[k].rq, bare[k].rate,
		    bare[k].cpu, bare[k].rq, fast[k].rate, fast[k].cpu,
		    fast[k].rq);
	}
	res->done[t] = true;
	sample_median(core, &res->core[t]);
	sample_median(bare, &res->bare[t]);
	sample_median(fast, &res->fast[t]);
	res->speed[t] = -1;
	if (!b->core_only) {
		fprintf(stderr, "%s, %d thread(s): openssl speed...\n",
		    calgs[alg].label, nthr);
		res->speed[t] = speed_sign(b, alg, nthr);
	}
	return 0;
}

/* ca_issue_one() from b->single threads at once: median of 3 runs. */
static int
measure_single(struct bench *b, enum calg alg, struct result *res)
{
	struct sample	sm[REPEATS], med;

	fprintf(stderr, "%s, %d concurrent ca_issue_one(): %d runs...\n",
	    calgs[alg].label, b->single, REPEATS);
	for (int k = 0; k < REPEATS; k++) {
		if (run(b, single_worker, alg, b->single, b->count,
		    &sm[k]) != 0)
			return -1;
		fprintf(stderr, "  run %d: %.0f/s (per cert: %.0f us CPU)\n",
		    k + 1, sm[k].rate, sm[k].cpu);
	}
	sample_median(sm, &med);
	res->single = med.rate;
	fprintf(stderr, "%s, %d outstanding ca_issue_submit() on %d workers: "
	    "%d runs...\n", calgs[alg].label, b->single, MAX_THREADS,
	    REPEATS);
	for (int k = 0; k < REPEATS; k++) {
		if (run(b, submit_worker, alg, 1, b->count, &sm[k]) != 0)
			return -1;
		fprintf(stderr, "  run %d: %.0f/s (per cert: %.0f us CPU)\n",
		    k + 1, sm[k].rate, sm[k].cpu);
	}
	sample_median(sm, &med);
	res->submit = med.rate;
	return 0;
}

static void
report_single(const struct bench *b, const struct result res[CALG__MAX])
{
	if (b->single == 0)
		return;
	printf("\nSingle requests through group commit (ca_issue_one()), %d "
	    "concurrent callers,\nagainst the batch rate (core, 64 per "
	    "call) of the same run (medians):\n\n", b->single);
	printf("%-9s %9s %12s %12s %10s %12s\n", "CA key", "single/s",
	    "/ core 1 thr", "/ core 2 thr", "submit/s", "/ core 2 thr");
	for (int al = 0; al < CALG__MAX; al++) {
		const struct result	*r = &res[al];
		char			 r1[32], r2[32];

		if (r->single <= 0)
			continue;
		snprintf(r1, sizeof(r1), r->done[0] ? "%.0f%%" : "n/a",
		    r->done[0] ? 100 * r->single / r->core[0].rate : 0);
		snprintf(r2, sizeof(r2), r->done[1] ? "%.0f%%" : "n/a",
		    r->done[1] ? 100 * r->single / r->core[1].rate : 0);
		printf("%-9s %9.0f %12s %12s %10.0f %11.0f%%\n",
		    calgs[al].label, r->single, r1, r2, r->submit,
		    r->done[1] ? 100 * r->submit / r->core[1].rate : 0);
	}
}

/* --- main ---------------------------------------------------------------- */

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
bench_cleanup(struct bench *b)
{
	ca_service_free(b->svc);
	tokens_free(b->tk);
	store_close(b->st);
	if (b->csrs != NULL)
		for (size_t i = 0; i < b->count; i++)
			OPENSSL_free(b->csrs[i].der);
	free(b->csrs);
	for (int a = 0; a < CALG__MAX; a++) {
		EVP_PKEY_free(b->bca[a].key);
		EVP_MD_CTX_free(b->bca[a].proto);
		X509_free(b->bca[a].cert);
	}
	if (b->dir[0] != '\0') {
		if (b->keep)
			fprintf(stderr, "kept %s\n", b->dir);
		else if (nftw(b->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
			fprintf(stderr, "bench_issue: removing %s: %s\n",
			    b->dir, strerror(errno));
	}
}

static void
usage(void)
{
	fprintf(stderr, "usage: bench_issue [--count N] [--naive N] "
	    "[--quick] [--keep]\n"
	    "\t\t   [--alg p256|rsa2048] [--threads 1|2] [--batch N] "
	    "[--core-only]\n\t\t   [--single N]\n"
	    "  --count N    certificates per core and (b) run (default %d)\n"
	    "  --naive N    certificates for (c), openssl x509 -req "
	    "(default %d, 0: skip)\n"
	    "  --quick      small run: --count %d --naive %d, 1 s of "
	    "openssl speed\n"
	    "  --keep       keep the temporary directory (database, PEM "
	    "files)\n"
	    "  --alg A      only the CA key A\n"
	    "  --threads T  only T threads\n"
	    "  --batch N    CSRs per ca_issue_batch() call (default %d)\n"
	    "  --core-only  no baselines (for perf record)\n"
	    "  --single N   N concurrent ca_issue_one() callers (default %d, "
	    "0: skip)\n",
	    DEF_COUNT, DEF_NAIVE, QUICK_COUNT, QUICK_NAIVE, DEF_BATCH,
	    DEF_SINGLE);
	exit(2);
}

static int
alg_parse(const char *s)
{
	for (int a = 0; a < CALG__MAX; a++)
		if (strcmp(s, calgs[a].tag) == 0)
			return a;
	return -1;
}

static size_t
opt_num(const char *s, long long min, long long max)
{
	const char	*errstr;
	long long	 v;

	if (s == NULL || sp_strtonum(s, min, max, &v, &errstr) != 0) {
		fprintf(stderr, "bench_issue: number %s: %s\n", s ? s : "",
		    s ? errstr : "missing");
		usage();
	}
	return (size_t)v;
}

int
main(int argc, char *argv[])
{
	struct bench	 b = { 0 };
	struct result	 res[CALG__MAX];
	const char	*tmp;
	bool		 quick = false, count_set = false, naive_set = false;
	int		 rc = 1;

	b.count = DEF_COUNT;
	b.naive = DEF_NAIVE;
	b.speed_secs = 3;
	b.batch = DEF_BATCH;
	b.alg = -1;
	b.single = DEF_SINGLE;
	if (evthread_use_pthreads() != 0) {	/* pool completions */
		fprintf(stderr, "bench_issue: evthread_use_pthreads failed\n");
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--count") == 0) {
			b.count = opt_num(argv[++i], MAX_THREADS, 10000000);
			count_set = true;
		} else if (strcmp(argv[i], "--naive") == 0) {
			b.naive = opt_num(argv[++i], 0, 100000);
			naive_set = true;
		} else if (strcmp(argv[i], "--quick") == 0)
			quick = true;
		else if (strcmp(argv[i], "--keep") == 0)
			b.keep = true;
		else if (strcmp(argv[i], "--batch") == 0)
			b.batch = opt_num(argv[++i], 1, CA_BATCH_MAX);
		else if (strcmp(argv[i], "--core-only") == 0)
			b.core_only = true;
		else if (strcmp(argv[i], "--single") == 0)
			b.single = (int)opt_num(argv[++i], 0, 256);
		else if (strcmp(argv[i], "--threads") == 0)
			b.threads = (int)opt_num(argv[++i], 1, MAX_THREADS);
		else if (strcmp(argv[i], "--alg") == 0) {
			if (++i == argc || (b.alg = alg_parse(argv[i])) < 0)
				usage();
		} else
			usage();
	}
	if (quick) {
		if (!count_set)
			b.count = QUICK_COUNT;
		if (!naive_set)
			b.naive = QUICK_NAIVE;
		b.speed_secs = 1;
	}
	if (b.naive > b.count)
		b.naive = b.count;
	log_init(LOG_LVL_WARN);
	log_procinit("bench_issue");

	load_avg(b.load, sizeof(b.load));
	if ((tmp = getenv("TMPDIR")) == NULL || *tmp == '\0')
		tmp = "/tmp";
	if ((size_t)snprintf(b.dir, sizeof(b.dir), "%s/sp-bench-XXXXXX",
	    tmp) >= sizeof(b.dir)) {
		fprintf(stderr, "bench_issue: TMPDIR is too long\n");
		b.dir[0] = '\0';
		goto out;
	}
	if (mkdtemp(b.dir) == NULL) {
		fprintf(stderr, "bench_issue: mkdtemp %s: %s\n", b.dir,
		    strerror(errno));
		b.dir[0] = '\0';
		goto out;
	}
	fprintf(stderr, "setting up in %s: CA, %zu CSRs...\n", b.dir,
	    b.count);
	if (core_setup(&b) != 0 || csrs_make(&b) != 0)
		goto out;
	for (int a = 0; a < CALG__MAX; a++)
		if (bare_ca_make(&b, a) != 0 || same_shape(&b, a) != 0)
			goto out;

	memset(res, 0, sizeof(res));
	for (int a = 0; a < CALG__MAX; a++) {
		if (b.alg >= 0 && a != b.alg)
			continue;
		for (int t = 1; t <= MAX_THREADS; t++) {
			if (b.threads != 0 && t != b.threads)
				continue;
			if (measure(&b, a, t, &res[a]) != 0)
				goto out;
		}
		res[a].single = -1;
		if (b.single > 0 && measure_single(&b, a, &res[a]) != 0)
			goto out;
		if (b.core_only || b.naive == 0) {
			res[a].naive = -1;
			continue;
		}
		fprintf(stderr, "%s: %zu x openssl x509 -req...\n",
		    calgs[a].label, b.naive);
		res[a].naive = naive(&b, a);
	}
	report_header(&b);
	report_rates(res);
	report_times(res);
	report_single(&b, res);
	rc = 0;
 out:
	bench_cleanup(&b);
	return rc;
}
