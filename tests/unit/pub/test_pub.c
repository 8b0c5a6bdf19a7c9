/*
 * Tests of the publishers' outbox (pub/pub.c) over a SQLite store in a
 * temporary directory and a real CA service: the backoff, the commit
 * hook (rows queued in the change's own transaction, the CA, only_revoked,
 * no_der and no_crls filters), the administration (add, show, list,
 * queue, retry, republish, delete) and refused adds. Delivery (pub_start,
 * worker.c) needs a peer and is left to the e2e tests.
 */
#include <sys/stat.h>

#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ca/ca.h"
#include "pub/pub.h"
#include "store/store.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#define PIN	"correct horse"
#define ACTOR	"test:unit"

struct fixture {
	char			 dir[64];
	char			 path[128];
	struct store		*st;
	struct tokens		*tk;
	struct ca_service	*svc;
	struct pub		*pub;
};

static EVP_PKEY	*k_leaf;

/* The second commit hook: refuses every change while set. */
static int	 refuse_changes;

static int
group_setup(void **state)
{
	(void)state;
	log_init(LOG_LVL_ERROR);
	k_leaf = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	return k_leaf != NULL ? 0 : -1;
}

static int
group_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(k_leaf);
	return 0;
}

static int
rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static void
create_ca(struct ca_service *svc, const char *name, const char *dn,
    const char *key)
{
	struct ca_create_req	 req = { 0 };
	struct sp_err		 err = { 0 };
	json_t			*j = NULL;

	req.name = name;
	req.dn = dn;
	req.token = "tok";
	req.key = key;
	if (ca_create(svc, &req, ACTOR, &j, &err) != 0)
		print_error("ca_create %s: %s\n", name, err.msg);
	assert_non_null(j);
	json_decref(j);
}

/*
 * Store, token "tok", CA service and publishers as the node opens them
 * (pub_open registers pub_commit_hook and pub_wake), then two roots "A"
 * and "B" (no publisher yet, so nothing is queued).
 */
static int
setup(void **state)
{
	static const char *const aliases[] = { "a-key", "b-key", "c-key" };
	struct fixture	*fx;
	struct sp_err	 err = { 0 };
	json_t		*j = NULL;

	if ((fx = calloc(1, sizeof(*fx))) == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/sp_test_pub.XXXXXX");
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->path, sizeof(fx->path), "%s/ca.db", fx->dir);
	if (store_open(fx->path, &fx->st, &err) != 0 ||
	    tokens_open(fx->st, &fx->tk, &err) != 0 ||
	    ca_service_open(fx->st, fx->tk, &fx->svc, &err) != 0 ||
	    pub_open(fx->st, fx->svc, &fx->pub, &err) != 0 ||
	    tokens_create(fx->tk, "tok", PIN, ACTOR, &err) != 0) {
		print_error("setup: %s\n", err.msg);
		return -1;
	}
	for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++) {
		if (tokens_genkey(fx->tk, "tok", aliases[i], "ec-p256", ACTOR,
		    &j, &err) != 0) {
			print_error("genkey: %s\n", err.msg);
			return -1;
		}
		json_decref(j);
	}
	*state = fx;
	create_ca(fx->svc, "A", "CN=Pub Test A,O=Sallyport,C=SE", "a-key");
	create_ca(fx->svc, "B", "CN=Pub Test B,O=Sallyport,C=SE", "b-key");
	refuse_changes = 0;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;
	int		 r;

	pub_free(fx->pub);
	ca_service_free(fx->svc);
	tokens_free(fx->tk);
	store_close(fx->st);
	r = nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return r == 0 ? 0 : -1;
}

/* --- helpers -------------------------------------------------------------- */

static void
expect_rc(int got, int want, const struct sp_err *err, const char *what,
    const char *msg)
{
	if (got != want)
		print_error("%s: want %s, got %s (%s)\n", what, sp_rc_str(want),
		    sp_rc_str(got), err->msg);
	assert_int_equal(got, want);
	if (msg != NULL && strstr(err->msg, msg) == NULL) {
		print_error("%s: message \"%s\" lacks \"%s\"\n", what, err->msg,
		    msg);
		fail();
	}
}

/* Adds a publisher over connector "va"; cas NULL covers every CA. */
static void
add_pub(struct fixture *fx, const char *name, const char *const *cas,
    size_t ncas, int only_revoked, int no_der, int no_crls)
{
	struct pub_settings	 s = { "va", cas, ncas, only_revoked, no_der,
				    no_crls };
	struct sp_err		 err = { 0 };
	json_t			*j = NULL;

	if (pub_add(fx->pub, name, &s, ACTOR, &j, &err) != 0)
		print_error("pub_add %s: %s\n", name, err.msg);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "name")),
	    name);
	json_decref(j);
}

/* pub_show() of name (new reference). */
static json_t *
show(struct fixture *fx, const char *name)
{
	struct sp_err	 err = { 0 };
	json_t		*j = NULL;

	if (pub_show(fx->pub, name, &j, &err) != 0)
		print_error("pub_show %s: %s\n", name, err.msg);
	assert_non_null(j);
	return j;
}

static json_int_t
show_int(struct fixture *fx, const char *name, const char *key)
{
	json_t		*j = show(fx, name), *v = json_object_get(j, key);
	json_int_t	 n;

	assert_true(json_is_integer(v));
	n = json_integer_value(v);
	json_decref(j);
	return n;
}

/* The queue length pub_show() reports, checked against pub_queue(). */
static size_t
qlen(struct fixture *fx, const char *name)
{
	struct sp_err	 err = { 0 };
	json_t		*q = NULL;
	size_t		 n;

	assert_int_equal(pub_queue(fx->pub, name, 10000, &q, &err), 0);
	n = json_array_size(q);
	json_decref(q);
	assert_int_equal(show_int(fx, name, "queue"), n);
	return n;
}

/* The queue item at index i (-1: the last) as pub_queue() gives it. */
static json_t *
qitem(struct fixture *fx, const char *name, long i)
{
	struct sp_err	 err = { 0 };
	json_t		*q = NULL, *it;

	assert_int_equal(pub_queue(fx->pub, name, 10000, &q, &err), 0);
	assert_true(json_array_size(q) > 0);
	if (i < 0)
		i = (long)json_array_size(q) + i;
	assert_non_null(it = json_array_get(q, (size_t)i));
	json_incref(it);
	json_decref(q);
	return it;
}

static const char *
jstr(json_t *o, const char *key)
{
	const char	*s = json_string_value(json_object_get(o, key));

	assert_non_null(s);
	return s;
}

static int
int_row(const struct store_row *row, void *arg)
{
	*(int64_t *)arg = store_row_int(row, 0);
	return 0;
}

/* One integer from a query with one integer parameter (or none). */
static int64_t
sql_int(struct fixture *fx, const char *sql, int64_t a, bool bind)
{
	struct sp_err	err = { 0 };
	int64_t		v = -1;
	int		r;

	r = bind ? store_select(fx->st, NULL, int_row, &v, &err, sql, "i", a) :
	    store_select(fx->st, NULL, int_row, &v, &err, sql, "");
	if (r != 0)
		print_error("%s: %s\n", sql, err.msg);
	assert_int_equal(r, 0);
	return v;
}

static int64_t
total_rows(struct fixture *fx)
{
	return sql_int(fx, "SELECT count(*) FROM pub_queue", 0, false);
}

struct qrow {
	bool		 found;
	int64_t		 seq, revoked_at, reason;
	bool		 der_null;
	unsigned char	*der;
	size_t		 derlen;
};

static int
qrow_cb(const struct store_row *row, void *arg)
{
	struct qrow		*q = arg;
	const unsigned char	*d;

	q->found = true;
	q->seq = store_row_int(row, 0);
	q->revoked_at = store_row_int(row, 1);
	q->reason = store_row_int(row, 2);
	q->der_null = store_row_null(row, 3);
	free(q->der);
	q->der = NULL;
	q->derlen = 0;
	if (!q->der_null && (d = store_row_blob(row, 3, &q->derlen)) != NULL &&
	    q->derlen > 0) {
		if ((q->der = malloc(q->derlen)) == NULL)
			return SP_ERR_ALLOC;
		memcpy(q->der, d, q->derlen);
	}
	return 0;
}

/* The columns pub_queue() leaves out, of the item with id (heap der). */
static void
qrow_get(struct fixture *fx, json_int_t id, struct qrow *q)
{
	struct sp_err	err = { 0 };

	memset(q, 0, sizeof(*q));
	assert_int_equal(store_select(fx->st, NULL, qrow_cb, q, &err,
	    "SELECT seq, revoked_at, reason, der FROM pub_queue WHERE id = ?",
	    "i", (int64_t)id), 0);
	assert_true(q->found);
}

/* A DER CSR (heap) for CN=www.example.com with that DNS name. */
static unsigned char *
make_csr(size_t *len)
{
	X509_REQ			*req = X509_REQ_new();
	X509_NAME			*name = X509_NAME_new();
	STACK_OF(X509_EXTENSION)	*exts = NULL;
	GENERAL_NAMES			*gens = GENERAL_NAMES_new();
	GENERAL_NAME			*gn = GENERAL_NAME_new();
	ASN1_IA5STRING			*s = ASN1_IA5STRING_new();
	unsigned char			*der = NULL, *out;
	int				 n;

	assert_true(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)"www.example.com", -1, -1, 0));
	assert_true(X509_REQ_set_subject_name(req, name));
	X509_NAME_free(name);
	assert_true(X509_REQ_set_pubkey(req, k_leaf));
	assert_true(ASN1_STRING_set(s, "www.example.com", -1));
	GENERAL_NAME_set0_value(gn, GEN_DNS, s);
	assert_true(sk_GENERAL_NAME_push(gens, gn) > 0);
	assert_int_equal(X509V3_add1_i2d(&exts, NID_subject_alt_name, gens, 0,
	    0), 1);
	assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	GENERAL_NAMES_free(gens);
	assert_true(X509_REQ_sign(req, k_leaf, EVP_sha256()) > 0);
	n = i2d_X509_REQ(req, &der);
	assert_true(n > 0);
	assert_non_null(out = malloc((size_t)n));
	memcpy(out, der, (size_t)n);
	OPENSSL_free(der);
	X509_REQ_free(req);
	*len = (size_t)n;
	return out;
}

/* Tries to issue one certificate from ca; returns the batch's result. */
static int
try_issue(struct fixture *fx, const char *ca, struct ca_issue_res *res)
{
	struct ca_issue_req	 req = { 0 };
	size_t			 len;
	unsigned char		*csr = make_csr(&len);
	int			 r;

	req.ca = ca;
	req.profile = "TLS_SERVER";
	req.csr = csr;
	req.csrlen = len;
	r = ca_issue_batch(fx->svc, &req, 1, res, ACTOR);
	free(csr);
	return r != 0 ? r : res->rc;
}

/* Issues one certificate from ca: its serial, and its DER if der. */
static void
issue(struct fixture *fx, const char *ca, char serial[2 * SERIAL_LEN + 1],
    unsigned char **der, size_t *derlen)
{
	struct ca_issue_res	res;

	if (try_issue(fx, ca, &res) != 0)
		print_error("issue from %s: %s\n", ca, res.err.msg);
	assert_int_equal(res.rc, 0);
	memcpy(serial, res.serial, sizeof(res.serial));
	if (der != NULL) {
		*der = res.der;
		*derlen = res.derlen;
	} else
		OPENSSL_free(res.der);
}

static void
revoke(struct fixture *fx, const char *ca, const char *serial,
    const char *reason)
{
	struct sp_err	err = { 0 };

	if (ca_revoke(fx->svc, ca, serial, reason, ACTOR, &err) != 0)
		print_error("revoke: %s\n", err.msg);
	assert_int_equal(err.code, 0);
}

static void
make_crl(struct fixture *fx, const char *ca)
{
	struct sp_err	 err = { 0 };
	json_t		*j = NULL;

	if (ca_crl_create(fx->svc, ca, ACTOR, &j, &err) != 0)
		print_error("crl: %s\n", err.msg);
	assert_non_null(j);
	json_decref(j);
}

/* How many audit rows have event. */
static size_t
audit_events(struct fixture *fx, const char *event)
{
	json_t	*a = ca_audit_list(fx->svc, 0), *v;
	size_t	 i, n = 0;

	assert_non_null(a);
	json_array_foreach(a, i, v) {
		const char	*e = json_string_value(json_object_get(v,
				    "event"));

		if (e != NULL && strcmp(e, event) == 0)
			n++;
	}
	json_decref(a);
	return n;
}

static size_t
pub_count(struct fixture *fx)
{
	struct sp_err	 err = { 0 };
	json_t		*j = NULL;
	size_t		 n;

	assert_int_equal(pub_list(fx->pub, &j, &err), 0);
	assert_true(json_is_array(j));
	n = json_array_size(j);
	json_decref(j);
	return n;
}

/* --- backoff -------------------------------------------------------------- */

/* Every delay lies within +-20% of min(2^(attempts-1), 300), in [1, 360]. */
static void
test_backoff_bounds(void **state)
{
	static const double	 rnds[] = { 0, 0.5, 0.999999 };
	int64_t			 prev[3] = { 0, 0, 0 };

	(void)state;
	for (int64_t a = 1; a <= 20; a++) {
		int64_t	base = a > 10 ? PUB_BACKOFF_MAX :
			    (int64_t)1 << (a - 1);

		if (base > PUB_BACKOFF_MAX)
			base = PUB_BACKOFF_MAX;
		for (size_t i = 0; i < 3; i++) {
			int64_t	d = pub_backoff(a, rnds[i]);
			double	lo = 0.8 * (double)base;
			double	hi = 1.2 * (double)base;

			if (d < 1 || d > 360 || (double)d < lo - 0.5 ||
			    (double)d > hi + 0.5)
				print_error("pub_backoff(%lld, %g) = %lld, "
				    "base %lld\n", (long long)a, rnds[i],
				    (long long)d, (long long)base);
			assert_true(d >= 1 && d <= 360);
			assert_true((double)d >= lo - 0.5);
			assert_true((double)d <= hi + 0.5);
			/* Never shorter for a later attempt. */
			assert_true(d >= prev[i]);
			prev[i] = d;
		}
		/* No jitter in the middle of the range. */
		assert_int_equal(pub_backoff(a, 0.5), base);
		/* Jitter only ever widens the range around it. */
		assert_true(pub_backoff(a, 0) <= base);
		assert_true(pub_backoff(a, 0.999999) >= base);
	}
}

/* The doubling, the cap, and the edges of the arguments. */
static void
test_backoff_values(void **state)
{
	(void)state;
	assert_int_equal(pub_backoff(1, 0.5), PUB_BACKOFF_MIN);
	assert_int_equal(pub_backoff(2, 0.5), 2);
	assert_int_equal(pub_backoff(3, 0.5), 4);
	assert_int_equal(pub_backoff(9, 0.5), 256);
	assert_int_equal(pub_backoff(10, 0.5), PUB_BACKOFF_MAX);
	assert_int_equal(pub_backoff(1000000, 0.5), PUB_BACKOFF_MAX);
	assert_int_equal(pub_backoff(INT64_MAX, 0.5), PUB_BACKOFF_MAX);
	/* The cap with its jitter: 240 .. 360. */
	assert_int_equal(pub_backoff(20, 0), 240);
	assert_int_equal(pub_backoff(20, 0.999999), 360);
	/* 0.8 s rounds up to the 1 s floor. */
	assert_int_equal(pub_backoff(1, 0), 1);
	/* rnd outside [0, 1] is clamped, attempts below 1 act as 1. */
	assert_int_equal(pub_backoff(20, -5), 240);
	assert_int_equal(pub_backoff(20, 7), 360);
	assert_int_equal(pub_backoff(0, 0.5), 1);
	assert_int_equal(pub_backoff(-3, 0.5), 1);
}

/* --- add, show, list, queue ----------------------------------------------- */

/* pub_add() answers pub_show(): every key, with the values of a new one. */
static void
test_add_show(void **state)
{
	static const char *const	 cas[] = { "A" };
	struct fixture			*fx = *state;
	struct pub_settings		 s = { "va", cas, 1, 0, 0, 0 };
	struct sp_err			 err = { 0 };
	struct qrow			 q;
	json_t				*j = NULL, *it;
	unsigned char			*der = NULL;
	char				*pem = NULL;
	BIO				*b;
	X509				*x;
	int				 n;

	assert_int_equal(pub_add(fx->pub, "va1", &s, ACTOR, &j, &err), 0);
	assert_non_null(j);
	assert_string_equal(jstr(j, "name"), "va1");
	assert_string_equal(jstr(j, "connector"), "va");
	assert_true(json_is_array(json_object_get(j, "cas")));
	assert_int_equal(json_array_size(json_object_get(j, "cas")), 1);
	assert_string_equal(json_string_value(json_array_get(
	    json_object_get(j, "cas"), 0)), "A");
	assert_true(json_is_false(json_object_get(j, "only_revoked")));
	assert_true(json_is_false(json_object_get(j, "no_der")));
	assert_true(json_is_false(json_object_get(j, "no_crls")));
	/* The CA item for A, queued by the add. */
	assert_int_equal(json_integer_value(json_object_get(j, "queue")), 1);
	assert_true(json_is_integer(json_object_get(j, "oldest_age")));
	assert_in_range(json_integer_value(json_object_get(j, "oldest_age")),
	    0, 60);
	assert_int_equal(json_integer_value(json_object_get(j, "delivered")),
	    0);
	assert_int_equal(json_integer_value(json_object_get(j, "failing")), 0);
	assert_string_equal(jstr(j, "last_error"), "");
	assert_true(json_is_integer(json_object_get(j, "next_retry")));
	assert_int_equal(json_integer_value(json_object_get(j, "next_retry")),
	    0);
	json_decref(j);

	/* The item: the CA certificate of A. */
	it = qitem(fx, "va1", 0);
	assert_string_equal(jstr(it, "kind"), "ca");
	assert_string_equal(jstr(it, "ca"), "A");
	assert_string_equal(jstr(it, "serial"), "");
	assert_int_equal(json_integer_value(json_object_get(it, "attempts")),
	    0);
	assert_string_equal(jstr(it, "last_error"), "");
	qrow_get(fx, json_integer_value(json_object_get(it, "id")), &q);
	json_decref(it);
	assert_int_equal(ca_cert_pem(fx->svc, "A", false, &pem, &err), 0);
	assert_non_null(b = BIO_new_mem_buf(pem, -1));
	assert_non_null(x = PEM_read_bio_X509(b, NULL, NULL, NULL));
	n = i2d_X509(x, &der);
	assert_true(n > 0);
	assert_int_equal(q.derlen, (size_t)n);
	assert_memory_equal(q.der, der, (size_t)n);
	OPENSSL_free(der);
	X509_free(x);
	BIO_free(b);
	free(pem);
	free(q.der);

	/* Every CA: an empty list, an item for A and one for B. */
	add_pub(fx, "all", NULL, 0, 0, 1, 1);
	j = show(fx, "all");
	assert_int_equal(json_array_size(json_object_get(j, "cas")), 0);
	assert_true(json_is_true(json_object_get(j, "no_der")));
	assert_true(json_is_true(json_object_get(j, "no_crls")));
	json_decref(j);
	assert_int_equal(qlen(fx, "all"), 2);
	assert_int_equal(qlen(fx, "va1"), 1);
	assert_int_equal(pub_count(fx), 2);
	assert_int_equal(audit_events(fx, "publisher.add"), 2);

	/* Limit and unknown names. */
	assert_int_equal(pub_queue(fx->pub, "all", 1, &j, &err), 0);
	assert_int_equal(json_array_size(j), 1);
	json_decref(j);
	expect_rc(pub_show(fx->pub, "nope", &j, &err), SP_ERR_NOTFOUND, &err,
	    "show unknown", "nope");
	assert_null(j);
	expect_rc(pub_queue(fx->pub, "nope", 0, &j, &err), SP_ERR_NOTFOUND,
	    &err, "queue unknown", NULL);
	assert_null(j);
}

/* --- the outbox hook ------------------------------------------------------ */

/* An issue, a revocation, a hold and its release each queue one item. */
static void
test_issue_revoke(void **state)
{
	static const char *const	 cas[] = { "A" };
	struct fixture			*fx = *state;
	char				 sn[2 * SERIAL_LEN + 1];
	char				 sb[sizeof(sn)];
	unsigned char			*der;
	size_t				 derlen;
	struct qrow			 q;
	json_t				*it;
	int64_t				 seq;

	add_pub(fx, "va1", cas, 1, 0, 0, 0);
	assert_int_equal(qlen(fx, "va1"), 1);

	/* Issued: a good cert item with the certificate. */
	issue(fx, "A", sn, &der, &derlen);
	assert_int_equal(qlen(fx, "va1"), 2);
	it = qitem(fx, "va1", -1);
	assert_string_equal(jstr(it, "kind"), "cert");
	assert_string_equal(jstr(it, "ca"), "A");
	assert_string_equal(jstr(it, "serial"), sn);
	assert_string_equal(jstr(it, "status"), "good");
	qrow_get(fx, json_integer_value(json_object_get(it, "id")), &q);
	/* publisher queue shows the sequence the VA gets, not the row id. */
	assert_int_equal(json_integer_value(json_object_get(it, "seq")), q.seq);
	json_decref(it);
	assert_true(q.seq > 0);
	assert_int_equal(q.revoked_at, 0);
	assert_int_equal(q.reason, -1);
	assert_int_equal(q.derlen, derlen);
	assert_memory_equal(q.der, der, derlen);
	free(q.der);
	seq = q.seq;

	/* Revoked: the status, and the DER again. */
	revoke(fx, "A", sn, "keyCompromise");
	assert_int_equal(qlen(fx, "va1"), 3);
	it = qitem(fx, "va1", -1);
	assert_string_equal(jstr(it, "kind"), "cert");
	assert_string_equal(jstr(it, "serial"), sn);
	assert_string_equal(jstr(it, "status"), "revoked");
	qrow_get(fx, json_integer_value(json_object_get(it, "id")), &q);
	json_decref(it);
	assert_true(q.seq > seq);
	assert_true(q.revoked_at > 0);
	assert_int_equal(q.reason, 1);
	assert_int_equal(q.derlen, derlen);
	assert_memory_equal(q.der, der, derlen);
	free(q.der);
	seq = q.seq;
	OPENSSL_free(der);

	/* On hold, then released. */
	issue(fx, "A", sb, NULL, NULL);
	revoke(fx, "A", sb, "certificateHold");
	assert_int_equal(qlen(fx, "va1"), 5);
	it = qitem(fx, "va1", -1);
	assert_string_equal(jstr(it, "serial"), sb);
	assert_string_equal(jstr(it, "status"), "hold");
	json_decref(it);
	{
		struct sp_err	err = { 0 };

		assert_int_equal(ca_unrevoke(fx->svc, "A", sb, ACTOR, &err),
		    0);
	}
	assert_int_equal(qlen(fx, "va1"), 6);
	it = qitem(fx, "va1", -1);
	assert_string_equal(jstr(it, "serial"), sb);
	assert_string_equal(jstr(it, "status"), "good");
	qrow_get(fx, json_integer_value(json_object_get(it, "id")), &q);
	json_decref(it);
	assert_true(q.seq > seq);
	free(q.der);

	/* B is not covered: its changes queue nothing. */
	issue(fx, "B", sb, NULL, NULL);
	revoke(fx, "B", sb, "superseded");
	make_crl(fx, "B");
	assert_int_equal(qlen(fx, "va1"), 6);
	assert_int_equal(total_rows(fx), 6);

	/* A CRL of A is. */
	make_crl(fx, "A");
	assert_int_equal(qlen(fx, "va1"), 7);
	it = qitem(fx, "va1", -1);
	assert_string_equal(jstr(it, "kind"), "crl");
	assert_string_equal(jstr(it, "ca"), "A");
	qrow_get(fx, json_integer_value(json_object_get(it, "id")), &q);
	json_decref(it);
	assert_false(q.der_null);
	assert_true(q.derlen > 0);
	free(q.der);
}

static int
refusing_hook(void *arg, struct store *st, struct store_txn *tx,
    const struct ca_change_ev *ev, struct sp_err *err)
{
	(void)arg;
	(void)st;
	(void)tx;
	(void)ev;
	if (refuse_changes)
		return sp_err_set(err, SP_ERR_DENIED, "refused by the test");
	return 0;
}

/*
 * The items are written in the change's own transaction: a later hook
 * that refuses the change takes the publisher's rows with it.
 */
static void
test_same_txn(void **state)
{
	struct fixture		*fx = *state;
	struct ca_issue_res	 res;
	struct sp_err		 err = { 0 };
	char			 sn[2 * SERIAL_LEN + 1];
	json_t			*j = NULL;
	int64_t			 certs;

	assert_int_equal(ca_add_commit_hook(fx->svc, refusing_hook, NULL), 0);
	add_pub(fx, "all", NULL, 0, 0, 0, 0);
	issue(fx, "A", sn, NULL, NULL);
	assert_int_equal(qlen(fx, "all"), 3);
	certs = sql_int(fx, "SELECT count(*) FROM certs WHERE status = 1", 0,
	    false);

	refuse_changes = 1;
	assert_int_not_equal(try_issue(fx, "A", &res), 0);
	OPENSSL_free(res.der);
	expect_rc(ca_revoke(fx->svc, "A", sn, "superseded", ACTOR, &err),
	    SP_ERR_DENIED, &err, "refused revoke", "refused by the test");
	memset(&err, 0, sizeof(err));
	assert_int_not_equal(ca_crl_create(fx->svc, "A", ACTOR, &j, &err), 0);
	json_decref(j);
	j = NULL;
	assert_int_equal(qlen(fx, "all"), 3);
	assert_int_equal(total_rows(fx), 3);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM certs WHERE"
	    " status = 1", 0, false), certs);

	refuse_changes = 0;
	revoke(fx, "A", sn, "superseded");
	assert_int_equal(qlen(fx, "all"), 4);
	j = qitem(fx, "all", -1);
	assert_string_equal(jstr(j, "status"), "revoked");
	json_decref(j);
}

/* only_revoked, no_der and no_crls, each against a plain publisher. */
static void
test_filters(void **state)
{
	static const char *const	 cas[] = { "A" };
	struct fixture			*fx = *state;
	char				 sn[2 * SERIAL_LEN + 1];
	struct qrow			 q;
	json_t				*it;

	add_pub(fx, "plain", cas, 1, 0, 0, 0);
	add_pub(fx, "rev", cas, 1, 1, 0, 0);
	add_pub(fx, "noder", cas, 1, 0, 1, 0);
	add_pub(fx, "nocrl", cas, 1, 0, 0, 1);
	it = show(fx, "rev");
	assert_true(json_is_true(json_object_get(it, "only_revoked")));
	json_decref(it);

	/* A good certificate: not for the only_revoked publisher. */
	issue(fx, "A", sn, NULL, NULL);
	assert_int_equal(qlen(fx, "plain"), 2);
	assert_int_equal(qlen(fx, "rev"), 1);
	assert_int_equal(qlen(fx, "noder"), 2);
	assert_int_equal(qlen(fx, "nocrl"), 2);
	it = qitem(fx, "noder", -1);
	assert_string_equal(jstr(it, "serial"), sn);
	qrow_get(fx, json_integer_value(json_object_get(it, "id")), &q);
	json_decref(it);
	assert_true(q.der_null);
	assert_int_equal(q.derlen, 0);

	/* Its revocation: for every one. */
	revoke(fx, "A", sn, "keyCompromise");
	assert_int_equal(qlen(fx, "plain"), 3);
	assert_int_equal(qlen(fx, "rev"), 2);
	assert_int_equal(qlen(fx, "noder"), 3);
	assert_int_equal(qlen(fx, "nocrl"), 3);
	it = qitem(fx, "rev", -1);
	assert_string_equal(jstr(it, "kind"), "cert");
	assert_string_equal(jstr(it, "serial"), sn);
	assert_string_equal(jstr(it, "status"), "revoked");
	qrow_get(fx, json_integer_value(json_object_get(it, "id")), &q);
	json_decref(it);
	/* The VA never saw it good: the revocation carries the DER. */
	assert_false(q.der_null);
	assert_true(q.derlen > 0);
	free(q.der);
	it = qitem(fx, "noder", -1);
	qrow_get(fx, json_integer_value(json_object_get(it, "id")), &q);
	json_decref(it);
	assert_true(q.der_null);

	/* A CRL: not for no_crls. */
	make_crl(fx, "A");
	assert_int_equal(qlen(fx, "plain"), 4);
	assert_int_equal(qlen(fx, "rev"), 3);
	assert_int_equal(qlen(fx, "noder"), 4);
	assert_int_equal(qlen(fx, "nocrl"), 3);
	it = qitem(fx, "nocrl", -1);
	assert_string_equal(jstr(it, "kind"), "cert");
	json_decref(it);
}

/* A CA created later: a CA item for "every CA", none for a list without it. */
static void
test_new_ca(void **state)
{
	static const char *const	 cas[] = { "A", "B" };
	struct fixture			*fx = *state;
	char				 sn[2 * SERIAL_LEN + 1];
	json_t				*it;

	add_pub(fx, "all", NULL, 0, 0, 0, 0);
	add_pub(fx, "ab", cas, 2, 0, 0, 0);
	assert_int_equal(qlen(fx, "all"), 2);
	assert_int_equal(qlen(fx, "ab"), 2);
	create_ca(fx->svc, "C", "CN=Pub Test C,O=Sallyport,C=SE", "c-key");
	assert_int_equal(qlen(fx, "all"), 3);
	assert_int_equal(qlen(fx, "ab"), 2);
	it = qitem(fx, "all", -1);
	assert_string_equal(jstr(it, "kind"), "ca");
	assert_string_equal(jstr(it, "ca"), "C");
	json_decref(it);
	issue(fx, "C", sn, NULL, NULL);
	issue(fx, "B", sn, NULL, NULL);
	assert_int_equal(qlen(fx, "all"), 5);
	assert_int_equal(qlen(fx, "ab"), 3);
}

/* --- failures, retry ------------------------------------------------------ */

/* A failed item (as the worker leaves it) shows in failing and last_error. */
static void
test_failing_retry(void **state)
{
	struct fixture	*fx = *state;
	struct sp_err	 err = { 0 };
	json_t		*j = NULL, *it;
	int64_t		 now = (int64_t)sp_now();
	json_int_t	 id;
	int		 r;

	add_pub(fx, "all", NULL, 0, 0, 0, 0);
	assert_int_equal(pub_retry(fx->pub, "all", ACTOR, &j, &err), 0);
	assert_int_equal(json_integer_value(json_object_get(j, "retried")), 0);
	json_decref(j);

	it = qitem(fx, "all", 0);
	id = json_integer_value(json_object_get(it, "id"));
	json_decref(it);
	r = store_exec(fx->st, NULL, NULL, &err, "UPDATE pub_queue SET"
	    " attempts = 2, next_try = ?, last_error = ? WHERE id = ?", "isi",
	    now + 30, "connect: VA down", (int64_t)id);
	assert_int_equal(r, 1);

	j = show(fx, "all");
	assert_int_equal(json_integer_value(json_object_get(j, "queue")), 2);
	assert_int_equal(json_integer_value(json_object_get(j, "failing")), 1);
	assert_string_equal(jstr(j, "last_error"), "connect: VA down");
	assert_in_range(json_integer_value(json_object_get(j, "next_retry")),
	    20, 30);
	json_decref(j);
	it = qitem(fx, "all", 0);
	assert_int_equal(json_integer_value(json_object_get(it, "attempts")),
	    2);
	assert_string_equal(jstr(it, "last_error"), "connect: VA down");
	assert_int_equal(json_integer_value(json_object_get(it, "next_try")),
	    now + 30);
	json_decref(it);

	/* Retry: due now, still counted as failing until delivered. */
	assert_int_equal(pub_retry(fx->pub, "all", ACTOR, &j, &err), 0);
	assert_string_equal(jstr(j, "name"), "all");
	assert_int_equal(json_integer_value(json_object_get(j, "retried")), 1);
	json_decref(j);
	it = qitem(fx, "all", 0);
	assert_int_equal(json_integer_value(json_object_get(it, "next_try")),
	    0);
	json_decref(it);
	assert_int_equal(show_int(fx, "all", "failing"), 1);
	/* Due now: never a negative wait. */
	assert_int_equal(show_int(fx, "all", "next_retry"), 0);
	assert_int_equal(audit_events(fx, "publisher.retry"), 2);
	expect_rc(pub_retry(fx->pub, "nope", ACTOR, &j, &err), SP_ERR_NOTFOUND,
	    &err, "retry unknown", NULL);
	assert_null(j);
}

/* --- republish ------------------------------------------------------------ */

/* Every issued certificate again, with its current status, one new seq. */
static void
test_republish(void **state)
{
	static const char *const	 cas[] = { "A", "B" };
	struct fixture			*fx = *state;
	struct sp_err			 err = { 0 };
	char				 s1[2 * SERIAL_LEN + 1];
	char				 s2[sizeof(s1)], s3[sizeof(s1)];
	json_t				*j = NULL, *q = NULL, *it;
	int64_t				 maxseq, seq = 0;
	size_t				 i, before, good = 0, revoked = 0;

	issue(fx, "A", s1, NULL, NULL);
	issue(fx, "A", s2, NULL, NULL);
	revoke(fx, "A", s2, "superseded");
	issue(fx, "B", s3, NULL, NULL);
	add_pub(fx, "ab", cas, 2, 0, 0, 0);
	add_pub(fx, "onlya", cas, 1, 0, 0, 0);
	/* Only the CA items: the certificates came before the publisher. */
	assert_int_equal(qlen(fx, "ab"), 2);
	before = qlen(fx, "ab");
	maxseq = sql_int(fx, "SELECT max(seq) FROM pub_queue", 0, false);

	assert_int_equal(pub_republish(fx->pub, "ab", "A", ACTOR, &j, &err),
	    0);
	assert_string_equal(jstr(j, "name"), "ab");
	assert_int_equal(json_integer_value(json_object_get(j, "cas")), 1);
	assert_int_equal(json_integer_value(json_object_get(j, "certs")), 2);
	json_decref(j);
	assert_int_equal(qlen(fx, "ab"), before + 3);
	assert_int_equal(pub_queue(fx->pub, "ab", 0, &q, &err), 0);
	for (i = before; i < json_array_size(q); i++) {
		struct qrow	r;

		it = json_array_get(q, i);
		assert_string_equal(jstr(it, "ca"), "A");
		if (i == before) {
			assert_string_equal(jstr(it, "kind"), "ca");
			continue;
		}
		assert_string_equal(jstr(it, "kind"), "cert");
		qrow_get(fx, json_integer_value(json_object_get(it, "id")), &r);
		assert_false(r.der_null);
		free(r.der);
		assert_true(r.seq > maxseq);
		if (seq == 0)
			seq = r.seq;
		assert_int_equal(r.seq, seq);
		if (strcmp(jstr(it, "serial"), s1) == 0) {
			assert_string_equal(jstr(it, "status"), "good");
			good++;
		} else {
			assert_string_equal(jstr(it, "serial"), s2);
			assert_string_equal(jstr(it, "status"), "revoked");
			assert_int_equal(r.reason, 4);
			assert_true(r.revoked_at > 0);
			revoked++;
		}
	}
	json_decref(q);
	assert_int_equal(good, 1);
	assert_int_equal(revoked, 1);
	/* The other publisher's queue is its own. */
	assert_int_equal(qlen(fx, "onlya"), 1);

	/* Every covered CA. */
	assert_int_equal(pub_republish(fx->pub, "ab", NULL, ACTOR, &j, &err),
	    0);
	assert_int_equal(json_integer_value(json_object_get(j, "cas")), 2);
	assert_int_equal(json_integer_value(json_object_get(j, "certs")), 3);
	json_decref(j);
	assert_int_equal(qlen(fx, "ab"), before + 3 + 5);
	assert_int_equal(audit_events(fx, "publisher.republish"), 2);

	/* Refused, queue unchanged. */
	before = qlen(fx, "ab");
	expect_rc(pub_republish(fx->pub, "onlya", "B", ACTOR, &j, &err),
	    SP_ERR_INVALID, &err, "uncovered CA", "does not cover");
	assert_null(j);
	add_pub(fx, "all", NULL, 0, 0, 0, 0);
	memset(&err, 0, sizeof(err));
	expect_rc(pub_republish(fx->pub, "all", "Nope", ACTOR, &j, &err),
	    SP_ERR_NOTFOUND, &err, "unknown CA", "Nope");
	assert_null(j);
	assert_int_equal(qlen(fx, "all"), 2);
	memset(&err, 0, sizeof(err));
	expect_rc(pub_republish(fx->pub, "nope", NULL, ACTOR, &j, &err),
	    SP_ERR_NOTFOUND, &err, "unknown publisher", NULL);
	assert_null(j);
	assert_int_equal(qlen(fx, "ab"), before);
	assert_int_equal(audit_events(fx, "publisher.republish"), 2);
}

/* --- delete --------------------------------------------------------------- */

static void
test_delete(void **state)
{
	static const char *const	 cas[] = { "A" };
	struct fixture			*fx = *state;
	struct sp_err			 err = { 0 };
	char				 sn[2 * SERIAL_LEN + 1];
	json_t				*j = NULL;

	add_pub(fx, "va1", cas, 1, 0, 0, 0);
	add_pub(fx, "va2", cas, 1, 0, 0, 0);
	issue(fx, "A", sn, NULL, NULL);
	revoke(fx, "A", sn, "keyCompromise");
	assert_int_equal(qlen(fx, "va1"), 3);
	assert_int_equal(qlen(fx, "va2"), 3);

	assert_int_equal(pub_delete(fx->pub, "va1", ACTOR, &j, &err), 0);
	assert_string_equal(jstr(j, "name"), "va1");
	assert_true(json_is_true(json_object_get(j, "deleted")));
	assert_int_equal(json_integer_value(json_object_get(j, "dropped")), 3);
	json_decref(j);
	j = NULL;

	expect_rc(pub_show(fx->pub, "va1", &j, &err), SP_ERR_NOTFOUND, &err,
	    "show deleted", NULL);
	assert_null(j);
	expect_rc(pub_queue(fx->pub, "va1", 0, &j, &err), SP_ERR_NOTFOUND,
	    &err, "queue deleted", NULL);
	assert_null(j);
	assert_int_equal(pub_count(fx), 1);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM publishers WHERE"
	    " name = 'va1'", 0, false), 0);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM pub_queue WHERE"
	    " publisher_id NOT IN (SELECT id FROM publishers)", 0, false), 0);
	assert_int_equal(qlen(fx, "va2"), 3);
	assert_int_equal(total_rows(fx), 3);
	assert_int_equal(audit_events(fx, "publisher.delete"), 1);

	/* The hook forgot it; the name is free again. */
	issue(fx, "A", sn, NULL, NULL);
	assert_int_equal(total_rows(fx), 4);
	expect_rc(pub_delete(fx->pub, "va1", ACTOR, &j, &err), SP_ERR_NOTFOUND,
	    &err, "delete twice", "va1");
	assert_null(j);
	add_pub(fx, "va1", cas, 1, 0, 0, 0);
	assert_int_equal(qlen(fx, "va1"), 1);
	assert_int_equal(pub_count(fx), 2);
}

/* --- refused adds --------------------------------------------------------- */

struct snapshot {
	size_t	pubs, add_audits;
	int64_t	rows, pub_rows;
};

static void
snap(struct fixture *fx, struct snapshot *s)
{
	s->pubs = pub_count(fx);
	s->add_audits = audit_events(fx, "publisher.add");
	s->rows = total_rows(fx);
	s->pub_rows = sql_int(fx, "SELECT count(*) FROM publishers", 0, false);
}

static void
refused(struct fixture *fx, const char *name, const char *connector,
    const char *const *cas, size_t ncas, int want, const char *msg)
{
	struct pub_settings	 s = { connector, cas, ncas, 0, 0, 0 };
	struct sp_err		 err = { 0 };
	struct snapshot		 a, b;
	json_t			*j = (json_t *)1;

	snap(fx, &a);
	expect_rc(pub_add(fx->pub, name, &s, ACTOR, &j, &err), want, &err,
	    name ? name : "(null)", msg);
	assert_null(j);
	snap(fx, &b);
	assert_int_equal(a.pubs, b.pubs);
	assert_int_equal(a.add_audits, b.add_audits);
	assert_int_equal(a.rows, b.rows);
	assert_int_equal(a.pub_rows, b.pub_rows);
}

static void
test_add_refused(void **state)
{
	static const char *const	 a[] = { "A" };
	static const char *const	 bad1[] = { "A,B" };
	static const char *const	 bad2[] = { "A", "no such/ca" };
	static const char *const	 bad3[] = { "" };
	struct fixture			*fx = *state;
	const char			*many[PUB_CAS_MAX + 1];
	char				 longname[PUB_NAME_MAX + 2];
	json_t				*j;

	add_pub(fx, "va1", a, 1, 0, 0, 0);

	refused(fx, "va1", "va", a, 1, SP_ERR_EXISTS, "exists");
	refused(fx, "va1", "other", NULL, 0, SP_ERR_EXISTS, "exists");
	refused(fx, NULL, "va", a, 1, SP_ERR_INVALID, "invalid publisher");
	refused(fx, "", "va", a, 1, SP_ERR_INVALID, "invalid publisher");
	refused(fx, "bad name", "va", a, 1, SP_ERR_INVALID,
	    "invalid publisher");
	refused(fx, "a/b", "va", a, 1, SP_ERR_INVALID, "invalid publisher");
	refused(fx, ".", "va", a, 1, SP_ERR_INVALID, "invalid publisher");
	refused(fx, "..", "va", a, 1, SP_ERR_INVALID, "invalid publisher");
	memset(longname, 'x', PUB_NAME_MAX + 1);
	longname[PUB_NAME_MAX + 1] = '\0';
	refused(fx, longname, "va", a, 1, SP_ERR_INVALID, "invalid publisher");
	refused(fx, "va2", NULL, a, 1, SP_ERR_INVALID, "connector");
	refused(fx, "va2", "bad conn", a, 1, SP_ERR_INVALID, "connector");
	refused(fx, "va2", "va", bad1, 1, SP_ERR_INVALID, "invalid CA");
	refused(fx, "va2", "va", bad2, 2, SP_ERR_INVALID, "invalid CA");
	refused(fx, "va2", "va", bad3, 1, SP_ERR_INVALID, "invalid CA");
	for (size_t i = 0; i < PUB_CAS_MAX + 1; i++)
		many[i] = "A";
	refused(fx, "va2", "va", many, PUB_CAS_MAX + 1, SP_ERR_LIMIT,
	    "at most");

	/* The first publisher is as it was. */
	j = show(fx, "va1");
	assert_string_equal(jstr(j, "connector"), "va");
	assert_int_equal(json_array_size(json_object_get(j, "cas")), 1);
	assert_int_equal(json_integer_value(json_object_get(j, "queue")), 1);
	json_decref(j);

	/* The longest name is fine. */
	longname[PUB_NAME_MAX] = '\0';
	add_pub(fx, longname, a, 1, 0, 0, 0);
	assert_int_equal(pub_count(fx), 2);
}

/* --- reopening ------------------------------------------------------------ */

/* Publishers are loaded from the store: a new service queues for them. */
static void
test_reopen(void **state)
{
	static const char *const	 a[] = { "A" };
	struct fixture			*fx = *state;
	struct sp_err			 err = { 0 };
	char				 sn[2 * SERIAL_LEN + 1];
	json_t				*j;

	add_pub(fx, "rev", a, 1, 1, 1, 1);
	issue(fx, "A", sn, NULL, NULL);
	pub_free(fx->pub);
	ca_service_free(fx->svc);
	tokens_free(fx->tk);
	store_close(fx->st);
	fx->pub = NULL;
	fx->svc = NULL;
	fx->tk = NULL;
	fx->st = NULL;
	if (store_open(fx->path, &fx->st, &err) != 0 ||
	    tokens_open(fx->st, &fx->tk, &err) != 0 ||
	    ca_service_open(fx->st, fx->tk, &fx->svc, &err) != 0 ||
	    pub_open(fx->st, fx->svc, &fx->pub, &err) != 0 ||
	    tokens_activate(fx->tk, "tok", PIN, ACTOR, &err) != 0)
		print_error("reopen: %s\n", err.msg);
	assert_int_equal(err.code, 0);

	assert_int_equal(pub_count(fx), 1);
	j = show(fx, "rev");
	assert_string_equal(jstr(j, "connector"), "va");
	assert_true(json_is_true(json_object_get(j, "only_revoked")));
	assert_true(json_is_true(json_object_get(j, "no_der")));
	assert_true(json_is_true(json_object_get(j, "no_crls")));
	assert_int_equal(json_integer_value(json_object_get(j, "queue")), 1);
	json_decref(j);
	revoke(fx, "A", sn, "keyCompromise");
	assert_int_equal(qlen(fx, "rev"), 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_bounds),
		cmocka_unit_test(test_backoff_values),
		cmocka_unit_test_setup_teardown(test_add_show, setup, teardown),
		cmocka_unit_test_setup_teardown(test_issue_revoke, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_same_txn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_ca, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failing_retry, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_republish, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_refused, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
