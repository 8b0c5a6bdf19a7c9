/*
 * The endpoints the CAs publish to (docs/peer-protocol.md, "Publishing"):
 * POST /publish/cas, /publish/certs, /publish/crls, and
 * /publish/readcerts, which compares a CA's entries with the VA's without
 * changing anything (a sync asks it which entries to push).
 *
 * The loop checks the shape (an array of 1..N entries), copies the body and
 * defers; a worker parses and authorizes every entry (authz_check(), the
 * one choke point: the caller's certificate must be allowed /ca/<name>),
 * verifies it against the issuer's certificate, and applies the entries
 * that passed in one transaction, with an audit row per refusal; back on
 * the loop the response cache is invalidated for what changed and the
 * results are sent, one per entry, in order.
 */
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "authz/authz.h"
#include "crypto/certs.h"
#include "crypto/dn.h"
#include "crypto/ids.h"
#include "net/pool.h"
#include "peer/peer.h"
#include "util/util.h"
#include "va/va_int.h"

#define PUB_DEADLINE_MS	(PEER_REQUEST_DEADLINE * 1000)
#define TIME_MAX_SANE	((int64_t)253402300799)	/* 9999-12-31T23:59:59Z */

static const char *const rules_cert[] = { "/peerpublish/writecert", NULL };
static const char *const rules_crl[] = { "/peerpublish/writecrl", NULL };
static const char *const rules_read[] = { "/peerpublish/readcert", NULL };

/* --- parsing (pure; tests/unit/va/test_va_publish.c) ---------------------- */

void
va_pub_clear(struct va_pub *p)
{
	free(p->der);
	memset(p, 0, sizeof(*p));
	p->e.reason = -1;
}

/* Standard base64, no line breaks, of at most max decoded bytes. */
static int
b64_decode(const char *in, size_t max, unsigned char **out, size_t *outlen,
    const char *what, struct sp_err *err)
{
	size_t		 n = strlen(in), cap;
	unsigned char	*buf;
	int		 len, pad = 0;

	*out = NULL;
	*outlen = 0;
	if (n == 0 || n % 4 != 0 || n / 4 * 3 > max + 2)
		return sp_err_set(err, SP_ERR_INVALID, "%s: not base64 of 1 to "
		    "%zu bytes", what, max);
	for (size_t i = 0; i < n; i++) {
		char c = in[i];

		if (c == '=') {
			if (i < n - 2)
				return sp_err_set(err, SP_ERR_INVALID, "%s: "
				    "misplaced '=' in base64", what);
			pad++;
			continue;
		}
		if (pad > 0 || !((c >= 'A' && c <= 'Z') || (c >= 'a' &&
		    c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
		    c == '/'))
			return sp_err_set(err, SP_ERR_INVALID, "%s: not "
			    "base64 (standard alphabet, no line breaks)", what);
	}
	cap = n / 4 * 3;
	if (n > INT_MAX || (buf = malloc(cap + 1)) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	len = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)n);
	if (len < 0 || (size_t)len < (size_t)pad) {
		free(buf);
		return sp_err_set(err, SP_ERR_INVALID, "%s: bad base64", what);
	}
	len -= pad;
	if (len == 0 || (size_t)len > max) {
		free(buf);
		return sp_err_set(err, SP_ERR_INVALID, "%s: not base64 of 1 to "
		    "%zu bytes", what, max);
	}
	*out = buf;
	*outlen = (size_t)len;
	return 0;
}

static int
get_str(json_t *o, const char *key, bool required, size_t max,
    const char **out, struct sp_err *err)
{
	json_t	*v = json_object_get(o, key);

	*out = NULL;
	if (v == NULL || json_is_null(v)) {
		if (required)
			return sp_err_set(err, SP_ERR_INVALID, "missing "
			    "\"%s\"", key);
		return 0;
	}
	if (!json_is_string(v))
		return sp_err_set(err, SP_ERR_INVALID, "\"%s\" must be a "
		    "string", key);
	if (json_string_length(v) > max ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return sp_err_set(err, SP_ERR_INVALID, "\"%s\" is longer than "
		    "%zu bytes or holds a NUL", key, max);
	*out = json_string_value(v);
	return 0;
}

static int
get_int(json_t *o, const char *key, bool required, int64_t lo, int64_t hi,
    int64_t dflt, int64_t *out, struct sp_err *err)
{
	json_t		*v = json_object_get(o, key);
	json_int_t	 n;

	*out = dflt;
	if (v == NULL || json_is_null(v)) {
		if (required)
			return sp_err_set(err, SP_ERR_INVALID, "missing "
			    "\"%s\"", key);
		return 0;
	}
	if (!json_is_integer(v))
		return sp_err_set(err, SP_ERR_INVALID, "\"%s\" must be an "
		    "integer", key);
	n = json_integer_value(v);
	if (n < lo || n > hi)
		return sp_err_set(err, SP_ERR_INVALID, "\"%s\" out of range "
		    "%lld..%lld", key, (long long)lo, (long long)hi);
	*out = n;
	return 0;
}

static int
get_name(json_t *o, const char *key, char out[PEER_NAME_MAX + 1],
    struct sp_err *err)
{
	const char	*s;
	int		 r;

	if ((r = get_str(o, key, true, PEER_NAME_MAX, &s, err)) != 0)
		return r;
	if (!sp_name_valid(s, PEER_NAME_MAX))
		return sp_err_set(err, SP_ERR_INVALID, "\"%s\": not a CA name "
		    "(1 to 64 of [A-Za-z0-9_.-])", key);
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

int
va_pub_parse(enum va_pub_kind kind, json_t *j, struct va_pub *p,
    struct sp_err *err)
{
	const char	*s, *b64;
	int64_t		 n;
	int		 r;

	va_pub_clear(p);
	p->kind = kind;
	if (!json_is_object(j))
		return sp_err_set(err, SP_ERR_INVALID, "an entry must be an "
		    "object");
	switch (kind) {
	case VA_PUB_CA:
		if ((r = get_name(j, "name", p->ca, err)) != 0 ||
		    (r = get_str(j, "certificate", true, VA_PUB_DER_MAX * 2,
		    &b64, err)) != 0)
			return r;
		return b64_decode(b64, VA_PUB_DER_MAX, &p->der, &p->derlen,
		    "certificate", err);
	case VA_PUB_CRL:
		if ((r = get_name(j, "ca", p->ca, err)) != 0 ||
		    (r = get_str(j, "crl", true, VA_PUB_CRL_MAX * 2, &b64,
		    err)) != 0)
			return r;
		return b64_decode(b64, VA_PUB_CRL_MAX, &p->der, &p->derlen,
		    "crl", err);
	case VA_PUB_CERT:
		break;
	default:
		return sp_err_set(err, SP_ERR_INVALID, "unknown kind");
	}
	if ((r = get_name(j, "ca", p->ca, err)) != 0)
		return r;
	if ((r = get_str(j, "serial", true, ID_SERIAL_HEX_MAX, &s, err)) != 0)
		return r;
	if (id_serial_parse(s, p->serial, err) != 0)
		return sp_err_set(err, SP_ERR_INVALID, "\"serial\": not a "
		    "serial number in hex");
	p->e.serial = p->serial;
	if ((r = get_int(j, "seq", true, 1, INT64_MAX, 0, &p->e.seq,
	    err)) != 0)
		return r;
	if ((r = get_str(j, "status", true, 16, &s, err)) != 0)
		return r;
	if (strcmp(s, "good") == 0)
		p->e.status = VA_GOOD;
	else if (strcmp(s, "revoked") == 0)
		p->e.status = VA_REVOKED;
	else if (strcmp(s, "hold") == 0)
		p->e.status = VA_ON_HOLD;
	else
		return sp_err_set(err, SP_ERR_INVALID, "\"status\": good, "
		    "revoked or hold");
	if ((r = get_int(j, "revoked_at", false, 0, TIME_MAX_SANE, 0, &n,
	    err)) != 0)
		return r;
	p->e.revoked_at = (time_t)n;
	if (p->e.status == VA_GOOD && n != 0)
		return sp_err_set(err, SP_ERR_INVALID, "\"revoked_at\" on a "
		    "good entry");
	if (p->e.status != VA_GOOD && n <= 0)
		return sp_err_set(err, SP_ERR_INVALID, "a revoked or held "
		    "entry needs \"revoked_at\"");
	if ((r = get_int(j, "reason", false, -1, 10, -1, &n, err)) != 0)
		return r;
	if (n == 7)
		return sp_err_set(err, SP_ERR_INVALID, "\"reason\" 7 is not a "
		    "CRLReason");
	p->e.reason = (int)n;
	if (p->e.status == VA_GOOD)
		p->e.reason = -1;
	if ((r = get_int(j, "not_before", false, 0, TIME_MAX_SANE, 0, &n,
	    err)) != 0)
		return r;
	p->e.not_before = (time_t)n;
	if ((r = get_int(j, "not_after", false, 0, TIME_MAX_SANE, 0, &n,
	    err)) != 0)
		return r;
	p->e.not_after = (time_t)n;
	if (p->e.not_after != 0 && p->e.not_after < p->e.not_before)
		return sp_err_set(err, SP_ERR_INVALID, "\"not_after\" before "
		    "\"not_before\"");
	if ((r = get_str(j, "fingerprint", false, ID_FP_HEX_LEN, &s,
	    err)) != 0)
		return r;
	if (s != NULL && *s != '\0' && id_fingerprint_parse(s, p->fp,
	    err) != 0)
		return sp_err_set(err, SP_ERR_INVALID, "\"fingerprint\": not a "
		    "SHA-256 fingerprint in hex");
	p->e.fingerprint = p->fp;
	if ((r = get_str(j, "subject", false, VA_PUB_SUBJECT_MAX, &s,
	    err)) != 0)
		return r;
	if (s != NULL)
		memcpy(p->subject, s, strlen(s) + 1);
	p->e.subject = p->subject;
	if ((r = get_str(j, "certificate", false, VA_PUB_DER_MAX * 2, &b64,
	    err)) != 0)
		return r;
	if (b64 != NULL) {
		if ((r = b64_decode(b64, VA_PUB_DER_MAX, &p->der, &p->derlen,
		    "certificate", err)) != 0)
			return r;
		p->e.der = p->der;
		p->e.derlen = p->derlen;
	}
	return 0;
}

/* --- verification (worker) ----------------------------------------------- */

struct issuer_row {
	int64_t	 id;
	X509	*cert;
	char	 name[PEER_NAME_MAX + 1];
	X509	*want;		/* issuer_find: the certificate to place */
};

static int
issuer_row(const struct store_row *row, void *arg)
{
	struct issuer_row	*ir = arg;
	const unsigned char	*p;
	size_t			 len;

	if (ir->cert != NULL)
		return 0;
	ir->id = store_row_int(row, 0);
	p = store_row_blob(row, 1, &len);
	if (p != NULL && len <= LONG_MAX)
		ir->cert = d2i_X509(NULL, &p, (long)len);
	return 0;
}

/* The issuer named name: *id 0 and *cert NULL if the VA has none. */
static int
issuer_get(struct store *st, struct store_txn *tx, const char *name,
    int64_t *id, X509 **cert, struct sp_err *err)
{
	struct issuer_row	ir = { 0 };
	int			r;

	*id = 0;
	*cert = NULL;
	if ((r = store_select(st, tx, issuer_row, &ir, err, "SELECT id, cert "
	    "FROM va_issuers WHERE name = ?", "s", name)) != 0)
		return r;
	*id = ir.id;
	*cert = ir.cert;
	return 0;
}

static bool
signed_by(X509 *x, X509 *iss)
{
	EVP_PKEY *k = X509_get0_pubkey(iss);

	return k != NULL && X509_check_issued(iss, x) == X509_V_OK &&
	    X509_verify(x, k) == 1;
}

static int
any_issuer_row(const struct store_row *row, void *arg)
{
	struct issuer_row	*ir = arg;
	const unsigned char	*p;
	size_t			 len;
	X509			*c = NULL;

	if (ir->cert != NULL)
		return 0;
	p = store_row_blob(row, 0, &len);
	if (p != NULL && len <= LONG_MAX)
		c = d2i_X509(NULL, &p, (long)len);
	if (c != NULL && signed_by(ir->want, c))
		ir->cert = c;
	else
		X509_free(c);
	return 0;
}

static time_t
asn1_time(const ASN1_TIME *t)
{
	return t == NULL ? 0 : certs_time(t);
}

/* An entry's error: code and message into the result. */
struct res {
	const char	*code;		/* NULL: ok */
	char		 msg[256];
	bool		 applied;
	bool		 changed_issuer;
	int64_t		 issuer_id;
	const char	*state;		/* readcerts: same, missing, differs */
};

static void
res_fail(struct res *rs, const char *code, const char *msg)
{
	rs->code = code;
	snprintf(rs->msg, sizeof(rs->msg), "%s", msg);
}

/* Verifies a CA certificate entry; *x the parsed certificate. */
static void
check_ca(struct store *st, struct store_txn *tx, struct va_pub *p,
    X509 **x, struct res *rs)
{
	const unsigned char	*q = p->der;
	struct issuer_row	 ir = { 0 };
	struct sp_err		 err = { 0 };

	*x = d2i_X509(NULL, &q, (long)p->derlen);
	if (*x == NULL || q != p->der + p->derlen) {
		res_fail(rs, "invalid", "certificate: not one DER "
		    "certificate");
		return;
	}
	if (X509_check_ca(*x) != 1) {
		res_fail(rs, "invalid", "certificate: not a CA certificate");
		return;
	}
	if (signed_by(*x, *x))
		return;
	ir.want = *x;
	if (store_select(st, tx, any_issuer_row, &ir, &err, "SELECT cert "
	    "FROM va_issuers", "") != 0) {
		res_fail(rs, "internal", err.msg);
		return;
	}
	if (ir.cert == NULL) {
		res_fail(rs, "signature", "certificate: neither self-signed "
		    "nor signed by an issuer the VA knows");
		return;
	}
	X509_free(ir.cert);
}

static void
check_cert(struct va_pub *p, X509 *iss, struct res *rs)
{
	const unsigned char	*q = p->der;
	X509			*x;
	char			 serial[ID_SERIAL_HEX_MAX];
	char			 fp[ID_FP_HEX_LEN + 1], *subj = NULL;
	time_t			 nb, na;

	x = d2i_X509(NULL, &q, (long)p->derlen);
	if (x == NULL || q != p->der + p->derlen) {
		res_fail(rs, "invalid", "certificate: not one DER "
		    "certificate");
		goto out;
	}
	if (!signed_by(x, iss)) {
		res_fail(rs, "signature", "certificate: not signed by the "
		    "named CA");
		goto out;
	}
	if (id_serial_of(x, serial) != 0 || strcmp(serial, p->serial) != 0) {
		res_fail(rs, "signature", "certificate: its serial is not the "
		    "entry's");
		goto out;
	}
	nb = asn1_time(X509_get0_notBefore(x));
	na = asn1_time(X509_get0_notAfter(x));
	if ((p->e.not_before != 0 && p->e.not_before != nb) ||
	    (p->e.not_after != 0 && p->e.not_after != na)) {
		res_fail(rs, "signature", "certificate: its validity is not "
		    "the entry's");
		goto out;
	}
	if (id_fingerprint_der(p->der, p->derlen, fp) != 0 ||
	    (p->fp[0] != '\0' && strcmp(fp, p->fp) != 0)) {
		res_fail(rs, "signature", "certificate: its fingerprint is "
		    "not the entry's");
		goto out;
	}
	if ((subj = dn_print(X509_get_subject_name(x))) == NULL) {
		res_fail(rs, "internal", "out of memory");
		goto out;
	}
	if (p->subject[0] != '\0' && strcmp(subj, p->subject) != 0) {
		res_fail(rs, "signature", "certificate: its subject is not "
		    "the entry's");
		goto out;
	}
	/* Store what the certificate says. */
	p->e.not_before = nb;
	p->e.not_after = na;
	memcpy(p->fp, fp, sizeof(fp));
	snprintf(p->subject, sizeof(p->subject), "%s", subj);
 out:
	free(subj);
	X509_free(x);
}

struct crl_info {
	int64_t	number;
	time_t	this_update, next_update;
};

static void
check_crl(struct va_pub *p, X509 *iss, struct crl_info *ci, struct res *rs)
{
	const unsigned char	*q = p->der;
	X509_CRL		*crl;
	ASN1_INTEGER		*num = NULL;
	EVP_PKEY		*k = X509_get0_pubkey(iss);

	crl = d2i_X509_CRL(NULL, &q, (long)p->derlen);
	if (crl == NULL || q != p->der + p->derlen) {
		res_fail(rs, "invalid", "crl: not one DER CRL");
		goto out;
	}
	if (k == NULL || X509_NAME_cmp(X509_CRL_get_issuer(crl),
	    X509_get_subject_name(iss)) != 0 ||
	    X509_CRL_verify(crl, k) != 1) {
		res_fail(rs, "signature", "crl: not signed by the named CA");
		goto out;
	}
	num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	if (num == NULL || ASN1_INTEGER_get_int64(&ci->number, num) != 1 ||
	    ci->number < 0) {
		res_fail(rs, "invalid", "crl: no usable cRLNumber");
		goto out;
	}
	ci->this_update = asn1_time(X509_CRL_get0_lastUpdate(crl));
	ci->next_update = asn1_time(X509_CRL_get0_nextUpdate(crl));
 out:
	ASN1_INTEGER_free(num);
	X509_CRL_free(crl);
}

/* --- the request --------------------------------------------------------- */

struct pub_job {
	struct va		*va;
	struct authz		*authz;
	struct peer_req		*r;		/* NULL once gone */
	enum va_pub_kind	 kind;
	json_t			*entries;	/* a copy of our own */
	X509			*cert;		/* the caller's */
	char			 role[PEER_NAME_MAX + 1];
	char			 client[80];
	size_t			 n;
	struct va_pub		*pubs;
	struct res		*res;
	bool			 audit_failed;
	bool			 read;		/* readcerts: compare only */
};

static void
job_free(struct pub_job *j)
{
	if (j == NULL)
		return;
	for (size_t i = 0; j->pubs != NULL && i < j->n; i++)
		va_pub_clear(&j->pubs[i]);
	free(j->pubs);
	free(j->res);
	json_decref(j->entries);
	X509_free(j->cert);
	free(j);
}

static void
audit_forbidden(struct pub_job *j, struct store_txn *tx, const char *ca)
{
	struct sp_err	 err = { 0 };
	json_t		*d;
	char		*s;

	d = json_pack("{s:s,s:s,s:s,s:s}", "role", j->role, "client",
	    j->client, "ca", ca, "endpoint", j->read ? "publish/readcerts" :
	    j->kind == VA_PUB_CA ? "publish/cas" : j->kind == VA_PUB_CERT ?
	    "publish/certs" : "publish/crls");
	s = d != NULL ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	/* A failed audit row fails the commit (the store marks tx). */
	if (s != NULL && store_audit_append(j->va->st, tx,
	    "va.publish.forbidden", j->role[0] ? j->role : "peer", s,
	    &err) != 0)
		j->audit_failed = true;
	free(s);
	json_decref(d);
}

struct held {
	bool	found;
	int64_t	status, revoked_at, reason;
};

static int
held_row(const struct store_row *row, void *arg)
{
	struct held	*h = arg;

	h->found = true;
	h->status = store_row_int(row, 0);
	h->revoked_at = store_row_int(row, 1);
	h->reason = store_row_int(row, 2);
	return 0;
}

/* readcerts: how the VA's entry compares with the CA's (p). */
static void
compare_entry(struct store *st, struct store_txn *tx, int64_t issuer,
    const struct va_pub *p, struct res *rs)
{
	struct held	h = { 0 };
	struct sp_err	err = { 0 };

	if (store_select(st, tx, held_row, &h, &err, "SELECT status, "
	    "revoked_at, reason FROM va_certs WHERE issuer_id = ? AND "
	    "serial = ?", "is", issuer, p->serial) != 0) {
		res_fail(rs, "internal", err.msg);
		return;
	}
	if (!h.found)
		rs->state = "missing";
	else if (h.status != (int64_t)p->e.status ||
	    (p->e.status != VA_GOOD && (h.revoked_at !=
	    (int64_t)p->e.revoked_at || h.reason != (int64_t)p->e.reason)))
		rs->state = "differs";
	else
		rs->state = "same";
}

static void
pub_entry(struct pub_job *j, struct store_txn *tx, size_t i)
{
	struct va_pub	*p = &j->pubs[i];
	struct res	*rs = &j->res[i];
	struct sp_err	 err = { 0 };
	char		 path[AUTHZ_PATH_MAX + 1], role[AUTHZ_ROLE_MAX + 1];
	const char	*paths[1] = { path };
	X509		*iss = NULL, *x = NULL;
	struct crl_info	 ci = { 0 };
	int64_t		 id;
	int		 r;

	if (va_pub_parse(j->kind, json_array_get(j->entries, i), p,
	    &err) != 0) {
		res_fail(rs, err.code == SP_ERR_ALLOC ? "internal" : "invalid",
		    err.msg);
		return;
	}
	snprintf(path, sizeof(path), "/ca/%s", p->ca);
	if ((r = authz_check(j->authz, j->cert, paths, 1, role, &err)) != 0 &&
	    r != SP_ERR_DENIED) {
		res_fail(rs, "internal", err.msg);
		return;
	}
	if (r != 0) {
		res_fail(rs, "forbidden", err.msg);
		audit_forbidden(j, tx, p->ca);
		return;
	}
	if (j->kind == VA_PUB_CA) {
		check_ca(j->va->st, tx, p, &x, rs);
		if (rs->code == NULL) {
			if (va_issuer_put(j->va->st, tx, p->ca, x, &id,
			    &err) != 0)
				res_fail(rs, "internal", err.msg);
			else {
				rs->issuer_id = id;
				rs->changed_issuer = true;
				rs->applied = true;
			}
		}
		X509_free(x);
		return;
	}
	if ((r = issuer_get(j->va->st, tx, p->ca, &id, &iss, &err)) != 0) {
		res_fail(rs, "internal", err.msg);
		return;
	}
	if (iss == NULL) {
		res_fail(rs, "unknown_ca", id != 0 ? "the issuer's stored "
		    "certificate does not parse" : "the VA has no such issuer "
		    "(publish the CA certificate first)");
		return;
	}
	rs->issuer_id = id;
	if (j->read)
		compare_entry(j->va->st, tx, id, p, rs);
	else if (j->kind == VA_PUB_CERT) {
		if (p->der != NULL)
			check_cert(p, iss, rs);
		if (rs->code == NULL && va_cert_put(j->va->st, tx, id, &p->e,
		    &rs->applied, &err) != 0)
			res_fail(rs, "internal", err.msg);
	} else {
		check_crl(p, iss, &ci, rs);
		if (rs->code == NULL && (r = va_crl_put(j->va->st, tx, id,
		    ci.number, ci.this_update, ci.next_update, p->der,
		    p->derlen, &err)) != 0)
			res_fail(rs, r == SP_ERR_STATE ? "stale" : "internal",
			    err.msg);
		else if (rs->code == NULL)
			rs->applied = true;
	}
	X509_free(iss);
}

static void
pub_work(void *arg)
{
	struct pub_job		*j = arg;
	struct store_txn	*tx = NULL;
	struct sp_err		 err = { 0 };

	if (store_txn_begin(j->va->st, &tx, &err) != 0)
		goto fail;
	for (size_t i = 0; i < j->n; i++)
		pub_entry(j, tx, i);
	if (j->audit_failed) {
		store_txn_rollback(tx);
		sp_err_set(&err, SP_ERR_DB, "the VA could not audit a refusal");
		goto fail;
	}
	if (store_txn_commit(tx, &err) != 0)
		goto fail;
	return;
 fail:
	/* Nothing applied: every entry that passed is an internal error. */
	for (size_t i = 0; i < j->n; i++)
		if (j->res[i].code == NULL) {
			res_fail(&j->res[i], "internal", err.msg);
			j->res[i].applied = false;
			j->res[i].changed_issuer = false;
		}
}

static void
pub_done(void *arg)
{
	struct pub_job	*j = arg;
	json_t		*out, *arr, *o;
	const char	*key;

	for (size_t i = 0; i < j->n && !j->read; i++) {
		struct res *rs = &j->res[i];

		if (rs->code != NULL || !rs->applied)
			continue;
		if (rs->changed_issuer) {
			va_cache_invalidate_issuer(j->va->cache, rs->issuer_id);
			va_issuers_changed(j->va);
		}
		else if (j->kind == VA_PUB_CERT)
			va_cache_invalidate(j->va->cache, rs->issuer_id,
			    j->pubs[i].serial);
		atomic_fetch_add(&j->va->published[j->kind], 1);
	}
	for (size_t i = 0; i < j->n && !j->read; i++)
		if (j->res[i].code != NULL)
			atomic_fetch_add(&j->va->pub_refused, 1);
	if (j->r == NULL)
		goto out;
	arr = json_array();
	key = j->kind == VA_PUB_CA ? "name" : j->kind == VA_PUB_CERT ?
	    "serial" : "ca";
	for (size_t i = 0; i < j->n; i++) {
		struct res	*rs = &j->res[i];
		json_t		*ent = json_array_get(j->entries, i), *v;
		const char	*id = "";

		if (j->kind == VA_PUB_CERT && j->pubs[i].serial[0] != '\0')
			id = j->pubs[i].serial;
		else if ((v = json_object_get(ent, key)) != NULL &&
		    json_is_string(v) && json_string_length(v) <= 256)
			id = json_string_value(v);
		if (rs->code == NULL && j->read)
			o = json_pack("{s:s,s:b,s:s}", key, id, "ok", 1, "state",
			    rs->state ? rs->state : "missing");
		else if (rs->code == NULL) {
			o = json_pack("{s:s,s:b}", key, id, "ok", 1);
			if (j->kind == VA_PUB_CERT && o != NULL)
				json_object_set_new(o, "applied",
				    json_boolean(rs->applied));
		} else
			o = json_pack("{s:s,s:b,s:{s:s,s:s}}", key, id, "ok", 0,
			    "error", "code", rs->code, "message", rs->msg);
		json_array_append_new(arr, o);
	}
	out = json_pack("{s:o}", "results", arr);
	peer_reply(j->r, 200, out);
 out:
	job_free(j);
}

static void
pub_cancel(struct peer_req *r, enum peer_cancel why, void *arg)
{
	struct pub_job *j = arg;

	(void)r;
	(void)why;
	j->r = NULL;	/* the worker finishes; pub_done only frees */
}

static void
pub_handle(struct peer_req *r, enum va_pub_kind kind, bool read, size_t max,
    struct va_pub_reg *reg)
{
	static const char *const keys[VA_PUB__MAX] = { "cas", "entries",
	    "crls" };
	json_t		*body = peer_req_body(r), *arr;
	struct pub_job	*j;
	char		 msg[128];

	arr = body != NULL ? json_object_get(body, keys[kind]) : NULL;
	if (!json_is_array(arr) || json_array_size(arr) == 0 ||
	    json_array_size(arr) > max) {
		snprintf(msg, sizeof(msg), "the body must be {\"%s\": [1 to %zu "
		    "entries]}", keys[kind], max);
		peer_reply_error(r, 400, "invalid", msg);
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    (j->entries = json_deep_copy(arr)) == NULL ||
	    (j->pubs = calloc(json_array_size(arr), sizeof(*j->pubs))) ==
	    NULL ||
	    (j->res = calloc(json_array_size(arr), sizeof(*j->res))) == NULL) {
		job_free(j);
		peer_reply_error(r, 500, "internal", "out of memory");
		return;
	}
	j->va = reg->va;
	j->authz = reg->authz;
	j->kind = kind;
	j->read = read;
	j->n = json_array_size(arr);
	j->r = r;
	if ((j->cert = peer_req_cert(r)) != NULL)
		X509_up_ref(j->cert);
	snprintf(j->role, sizeof(j->role), "%s", peer_req_role(r) ?
	    peer_req_role(r) : "");
	snprintf(j->client, sizeof(j->client), "%s", peer_req_client(r) ?
	    peer_req_client(r) : "");
	if (peer_req_defer(r, PUB_DEADLINE_MS, pub_cancel, j) != 0) {
		job_free(j);
		peer_reply_error(r, 500, "internal", "cannot defer");
		return;
	}
	if (pool_submit(reg->va->pool, pub_work, pub_done, j) != 0) {
		/* Still ours: the cancel function has not run. */
		j->r = NULL;
		peer_reply_error(r, 503, "busy", "the VA is busy; retry");
		job_free(j);
	}
}

static void
ep_cas(struct peer_req *r, void *arg)
{
	pub_handle(r, VA_PUB_CA, false, VA_PUB_CAS_MAX, arg);
}

static void
ep_certs(struct peer_req *r, void *arg)
{
	pub_handle(r, VA_PUB_CERT, false, VA_PUB_CERTS_MAX, arg);
}

static void
ep_crls(struct peer_req *r, void *arg)
{
	pub_handle(r, VA_PUB_CRL, false, VA_PUB_CRLS_MAX, arg);
}

static void
ep_readcerts(struct peer_req *r, void *arg)
{
	pub_handle(r, VA_PUB_CERT, true, VA_READ_MAX, arg);
}

int
va_peer_register(struct va *va, struct peer *p, struct authz *az,
    struct sp_err *err)
{
	struct peer_endpoint	ep[4] = {
		{ PEER_POST, "/publish/cas", rules_cert, NULL, PEER_MAX_BODY,
		    ep_cas, NULL },
		{ PEER_POST, "/publish/certs", rules_cert, NULL, PEER_MAX_BODY,
		    ep_certs, NULL },
		{ PEER_POST, "/publish/crls", rules_crl, NULL, PEER_MAX_BODY,
		    ep_crls, NULL },
		{ PEER_POST, "/publish/readcerts", rules_read, NULL,
		    PEER_MAX_BODY, ep_readcerts, NULL },
	};
	int			r;

	va->reg.va = va;
	va->reg.authz = az;
	for (size_t i = 0; i < sizeof(ep) / sizeof(ep[0]); i++) {
		ep[i].arg = &va->reg;
		if ((r = peer_endpoint_add(p, &ep[i], err)) != 0)
			return r;
	}
	return 0;
}
