#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto/certs.h"
#include "crypto/dn.h"
#include "crypto/x509.h"
#include "kb/kb.h"
#include "kb/kb_int.h"
#include "util/log.h"
#include "util/util.h"

/*
 * The trust store: the CA certificates peers are verified against, and the
 * CRLs that go with them (policy per anchor: see kb.h).
 */

/* --- trust rows ----------------------------------------------------------- */

static int
row_trust_cert(const struct store_row *row, void *arg)
{
	STACK_OF(X509)		*sk = arg;
	const unsigned char	*der, *p;
	size_t			 len;
	X509			*x;

	p = der = store_row_blob(row, 0, &len);
	if (der == NULL || (x = d2i_X509(NULL, &p, (long)len)) == NULL) {
		ERR_clear_error();
		log_warnx("trust store: certificate %s is corrupt; skipped",
		    store_row_text(row, 1));
		return 0;
	}
	if (!sk_X509_push(sk, x)) {
		X509_free(x);
		return SP_ERR_ALLOC;
	}
	return 0;
}

/* Every trusted certificate (new stack). */
int
kb_trust_load(struct kb_service *kb, STACK_OF(X509) **out, struct sp_err *err)
{
	STACK_OF(X509)	*sk;
	int		 r;

	*out = NULL;
	if ((sk = sk_X509_new_null()) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	if ((r = store_select(kb->st, NULL, row_trust_cert, sk, err,
	    "SELECT cert, fingerprint FROM trust ORDER BY fingerprint",
	    "")) != 0) {
		if (r == SP_ERR_ALLOC)
			sp_err_set(err, r, "out of memory");
		sk_X509_pop_free(sk, X509_free);
		return r;
	}
	*out = sk;
	return 0;
}

/* --- trust store ---------------------------------------------------------- */

/* RFC 5280 checks for a certificate that is to be a trust anchor. */
static int
check_ca(X509 *x, int i, struct sp_err *err)
{
	uint32_t	 flags = X509_get_extension_flags(x);
	char		*subj = dn_print(X509_get_subject_name(x));
	char		 what[128];
	int		 r = 0;

	snprintf(what, sizeof(what), "certificate %d (%.80s)", i + 1,
	    subj ? subj : "?");
	if (flags & EXFLAG_INVALID)
		r = sp_err_set(err, SP_ERR_INVALID, "%s has malformed "
		    "extensions", what);
	else if (!(flags & EXFLAG_CA))
		r = sp_err_set(err, SP_ERR_POLICY, "%s: RFC 5280 4.2.1.9: not "
		    "a CA certificate (basicConstraints cA is not TRUE); only "
		    "CA certificates can be trusted", what);
	else if ((flags & EXFLAG_KUSAGE) &&
	    !(X509_get_key_usage(x) & KU_KEY_CERT_SIGN))
		r = sp_err_set(err, SP_ERR_POLICY, "%s: RFC 5280 4.2.1.3: "
		    "keyUsage lacks keyCertSign", what);
	else if (certs_time(X509_get0_notAfter(x)) < sp_now())
		r = sp_err_set(err, SP_ERR_POLICY, "%s has expired", what);
	free(subj);
	return r;
}

int
kb_trust_add(struct kb_service *kb, const unsigned char *data, size_t len,
    const char *actor, json_t **out, struct sp_err *err)
{
	struct store_txn	*tx = NULL;
	STACK_OF(X509)	*sk = NULL;
	json_t		*arr = NULL;
	unsigned char	*der = NULL;
	size_t		 derlen;
	char		 fp[FP_HEX + 1], na[32], *subj = NULL;
	int64_t		 count = 0, now = sp_now();
	bool		 locked = false, intx = false, isnew;
	int		 r, added = 0;

	*out = NULL;
	if ((r = certs_parse(data, len, KB_FILE_MAX, KB_TRUST_ADD_MAX, "certificate", &sk,
	    err)) != 0)
		goto out;
	for (int i = 0; i < sk_X509_num(sk); i++)
		if ((r = check_ca(sk_X509_value(sk, i), i, err)) != 0)
			goto out;
	if ((arr = json_array()) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}

	pthread_mutex_lock(&kb->mtx);
	locked = true;
	if ((r = store_txn_begin(kb->st, &tx, err)) != 0)
		goto out;
	intx = true;
	for (int i = 0; i < sk_X509_num(sk); i++) {
		X509 *x = sk_X509_value(sk, i);

		if ((r = certs_der(x, &der, &derlen, err)) != 0)
			goto out;
		cert_fingerprint(der, derlen, fp);
		sp_time_fmt(certs_time(X509_get0_notAfter(x)), na,
		    sizeof(na));
		if ((subj = dn_print(X509_get_subject_name(x))) == NULL) {
			r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
			goto out;
		}
		if ((r = store_exec(kb->st, tx, NULL, err, "INSERT INTO trust "
		    "(fingerprint, subject, cert, added) VALUES (?, ?, ?, ?) "
		    "ON CONFLICT (fingerprint) DO NOTHING", "ssbi", fp, subj,
		    der, derlen, now)) < 0)
			goto out;
		isnew = r == 1;
		if (isnew) {
			added++;
			if ((r = kb_audit(kb, tx, "trust.add", actor, json_pack(
			    "{s:s,s:s,s:s}", "fingerprint", fp, "subject",
			    subj, "not_after", na), err)) != 0)
				goto out;
		}
		if (json_array_append_new(arr, json_pack("{s:s,s:o,s:s,s:s}",
		    "fingerprint", fp, "subject", kb_jstr(subj), "not_after", na,
		    "status", isnew ? "added" : "already trusted")) != 0) {
			r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
			goto out;
		}
		OPENSSL_free(der);
		der = NULL;
		free(subj);
		subj = NULL;
	}
	if ((r = store_select(kb->st, tx, kb_row_count, &count, err,
	    "SELECT count(*) FROM trust", "")) != 0)
		goto out;
	if (count > KB_TRUST_MAX) {
		r = sp_err_set(err, SP_ERR_LIMIT, "at most %d trusted "
		    "certificates", KB_TRUST_MAX);
		goto out;
	}
	intx = false;
	if ((r = store_txn_commit(tx, err)) != 0)
		goto out;
	if (added > 0)
		kb_bump(kb);
	*out = arr;
	arr = NULL;
 out:
	if (intx)
		store_txn_rollback(tx);
	if (locked)
		pthread_mutex_unlock(&kb->mtx);
	json_decref(arr);
	OPENSSL_free(der);
	free(subj);
	sk_X509_pop_free(sk, X509_free);
	return r;
}

static int
row_trust_json(const struct store_row *row, void *arg)
{
	json_t			*arr = arg, *o;
	const unsigned char	*der, *p;
	size_t			 len;
	X509			*x = NULL;
	char			*iss = NULL;

	p = der = store_row_blob(row, 2, &len);
	if (der != NULL)
		x = d2i_X509(NULL, &p, (long)len);
	ERR_clear_error();
	if (x != NULL)
		iss = dn_print(X509_get_issuer_name(x));
	o = json_pack("{s:s,s:o,s:o,s:o,s:o,s:o}",
	    "fingerprint", store_row_text(row, 0),
	    "subject", kb_jstr(store_row_text(row, 1)),
	    "issuer", kb_jstr(iss),
	    "not_before", x ? kb_jtime(certs_time(X509_get0_notBefore(x))) :
	    json_null(),
	    "not_after", x ? kb_jtime(certs_time(X509_get0_notAfter(x))) :
	    json_null(),
	    "added", kb_jtime((time_t)store_row_int(row, 3)));
	free(iss);
	X509_free(x);
	if (o == NULL || json_array_append_new(arr, o) != 0)
		return SP_ERR_ALLOC;
	return 0;
}

json_t *
kb_trust_list(struct kb_service *kb)
{
	json_t	*arr;

	if ((arr = json_array()) == NULL)
		return NULL;
	if (store_select(kb->st, NULL, row_trust_json, arr, NULL,
	    "SELECT fingerprint, subject, cert, added FROM trust "
	    "ORDER BY subject, fingerprint", "") != 0) {
		json_decref(arr);
		return NULL;
	}
	return arr;
}

/* Normalises an operator-typed fingerprint: colons dropped, lower case. */
static int
fp_norm(const char *in, char out[FP_HEX + 1], struct sp_err *err)
{
	size_t	n = 0;

	for (; in != NULL && *in != '\0'; in++) {
		char	c = *in;

		if (c == ':')
			continue;
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) ||
		    n == FP_HEX)
			return sp_err_set(err, SP_ERR_INVALID, "a fingerprint "
			    "is %d hex digits (SHA-256)", FP_HEX);
		out[n++] = c;
	}
	out[n] = '\0';
	if (n != FP_HEX)
		return sp_err_set(err, SP_ERR_INVALID, "a fingerprint is %d "
		    "hex digits (SHA-256)", FP_HEX);
	return 0;
}

static int
row_subject(const struct store_row *row, void *arg)
{
	char	**s = arg;

	free(*s);
	return (*s = strdup(store_row_text(row, 0))) == NULL ? SP_ERR_ALLOC :
	    0;
}

static int	row_number(const struct store_row *, void *);

int
kb_trust_remove(struct kb_service *kb, const char *fingerprint,
    bool drop_crl, const char **crl, const char *actor, struct sp_err *err)
{
	struct store_txn	*tx = NULL;
	char	 fp[FP_HEX + 1], *subj = NULL;
	long long crlnum = -1;
	int	 r, n = 0;

	*crl = "none";
	if ((r = fp_norm(fingerprint, fp, err)) != 0)
		return r;
	pthread_mutex_lock(&kb->mtx);
	if ((r = store_txn_begin(kb->st, &tx, err)) != 0)
		goto out;
	if ((r = store_select(kb->st, tx, row_subject, &subj, err,
	    "SELECT subject FROM trust WHERE fingerprint = ?", "s", fp)) != 0)
		goto fail;
	if (subj == NULL) {
		r = sp_err_set(err, SP_ERR_NOTFOUND, "no trusted certificate "
		    "with fingerprint %s", fp);
		goto fail;
	}
	if ((r = store_select(kb->st, tx, row_number, &crlnum, err, "SELECT "
	    "number FROM trust_crls WHERE issuer = ?", "s", subj)) != 0)
		goto fail;
	/*
	 * The CRL stays unless the operator says otherwise: dropping it with
	 * the anchor would turn revocation off for the anchor when it is
	 * trusted again (and, if it was the only CRL, for every peer).
	 */
	if (crlnum >= 0)
		*crl = drop_crl ? "removed" : "kept";
	if ((r = store_exec(kb->st, tx, NULL, err, "DELETE FROM trust WHERE "
	    "fingerprint = ?", "s", fp)) < 0 ||
	    (drop_crl && (n = store_exec(kb->st, tx, NULL, err, "DELETE FROM "
	    "trust_crls WHERE issuer = ?", "s", subj)) < 0) ||
	    (r = kb_audit(kb, tx, "trust.remove", actor, json_pack("{s:s,s:s,s:s}",
	    "fingerprint", fp, "subject", subj, "crl", *crl), err)) != 0) {
		if (n < 0)
			r = n;
		goto fail;
	}
	if ((r = store_txn_commit(tx, err)) != 0)
		goto out;
	kb_bump(kb);
	goto out;
 fail:
	if (r == SP_ERR_ALLOC)
		sp_err_set(err, r, "out of memory");
	store_txn_rollback(tx);
 out:
	pthread_mutex_unlock(&kb->mtx);
	free(subj);
	return r;
}

struct crl_load {
	X509_STORE	*store;
	int		 n;
};

/* Adds one stored CRL to the X509_STORE. */
static int
row_crl_load(const struct store_row *row, void *arg)
{
	struct crl_load		*cl = arg;
	const unsigned char	*der, *p;
	size_t			 len;
	X509_CRL		*crl;
	int			 ok;

	p = der = store_row_blob(row, 0, &len);
	if (der == NULL || (crl = d2i_X509_CRL(NULL, &p, (long)len)) == NULL) {
		ERR_clear_error();
		log_warnx("trust store: CRL of %s is corrupt; skipped",
		    store_row_text(row, 1));
		return 0;
	}
	ok = X509_STORE_add_crl(cl->store, crl);
	X509_CRL_free(crl);
	cl->n += ok;
	return ok ? 0 : SP_ERR_CRYPTO;
}

static time_t
crl_time(const ASN1_TIME *t)
{
	struct tm	tm;

	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return 0;
	return timegm(&tm);
}

static long long
crl_number(X509_CRL *crl)
{
	ASN1_INTEGER	*n;
	int64_t		 v = -1;

	if ((n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL)) !=
	    NULL) {
		if (!ASN1_INTEGER_get_int64(&v, n))
			v = -1;
		ASN1_INTEGER_free(n);
	}
	ERR_clear_error();
	return v;
}

static int
row_number(const struct store_row *row, void *arg)
{
	long long	*n = arg;

	*n = store_row_int(row, 0);
	return 0;
}

int
kb_trust_crl_add(struct kb_service *kb, const unsigned char *data, size_t len,
    const char *actor, json_t **out, struct sp_err *err)
{
	struct store_txn	*tx = NULL;
	X509_CRL		*crl = NULL;
	STACK_OF(X509)		*anchors = NULL;
	BIO			*bio = NULL;
	const unsigned char	*p = data;
	unsigned char		*der = NULL;
	char			*issuer = NULL, tu[32], nu[32];
	long long		 number, old = -1;
	int			 derlen, r = SP_ERR_INVALID, signer = 0;
	bool			 locked = false;

	*out = NULL;
	if (data == NULL || len == 0 || len > KB_FILE_MAX)
		return sp_err_set(err, len > KB_FILE_MAX ? SP_ERR_LIMIT :
		    SP_ERR_INVALID, "CRL: 1..%d bytes expected", KB_FILE_MAX);
	if (len > 10 && memcmp(data, "-----BEGIN", 10) == 0) {
		if ((bio = BIO_new_mem_buf(data, (int)len)) != NULL)
			crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
	} else if ((crl = d2i_X509_CRL(NULL, &p, (long)len)) != NULL &&
	    p != data + len) {
		X509_CRL_free(crl);
		crl = NULL;
	}
	ERR_clear_error();
	if (crl == NULL) {
		sp_err_set(err, r, "not a CRL (PEM or DER)");
		goto out;
	}
	if ((number = crl_number(crl)) < 0) {
		sp_err_set(err, r, "CRL has no cRLNumber (RFC 5280 5.2.3)");
		goto out;
	}
	if (X509_CRL_get0_nextUpdate(crl) == NULL ||
	    crl_time(X509_CRL_get0_nextUpdate(crl)) <= sp_now()) {
		r = sp_err_set(err, SP_ERR_POLICY, "CRL is expired or has no "
		    "nextUpdate");
		goto out;
	}
	if ((issuer = dn_print(X509_CRL_get_issuer(crl))) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}
	if ((r = kb_trust_load(kb, &anchors, err)) != 0)
		goto out;
	for (int i = 0; i < sk_X509_num(anchors) && !signer; i++) {
		X509 *ca = sk_X509_value(anchors, i);

		if (X509_NAME_cmp(X509_get_subject_name(ca),
		    X509_CRL_get_issuer(crl)) == 0 &&
		    X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1)
			signer = 1;
		ERR_clear_error();
	}
	if (!signer) {
		r = sp_err_set(err, SP_ERR_POLICY, "CRL of %s is not signed by "
		    "a trusted CA (trust add its certificate first)", issuer);
		goto out;
	}
	if ((derlen = i2d_X509_CRL(crl, &der)) <= 0) {
		r = sp_err_ossl(err, SP_ERR_CRYPTO, "CRL");
		goto out;
	}
	pthread_mutex_lock(&kb->mtx);
	locked = true;
	if ((r = store_select(kb->st, NULL, row_number, &old, err, "SELECT number "
	    "FROM trust_crls WHERE issuer = ?", "s", issuer)) != 0)
		goto out;
	sp_time_fmt(crl_time(X509_CRL_get0_lastUpdate(crl)), tu, sizeof(tu));
	sp_time_fmt(crl_time(X509_CRL_get0_nextUpdate(crl)), nu, sizeof(nu));
	if (old > number) {
		r = sp_err_set(err, SP_ERR_POLICY, "CRL number %lld of %s is "
		    "older than the installed %lld", number, issuer, old);
		goto out;
	}
	if (old != number) {
		if ((r = store_txn_begin(kb->st, &tx, err)) != 0)
			goto out;
		if ((r = store_exec(kb->st, tx, NULL, err, "INSERT INTO trust_crls "
		    "(issuer, number, this_update, next_update, der, added) "
		    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (issuer) DO UPDATE "
		    "SET number = excluded.number, "
		    "this_update = excluded.this_update, "
		    "next_update = excluded.next_update, der = excluded.der, "
		    "added = excluded.added", "siiibi", issuer,
		    (int64_t)number,
		    (int64_t)crl_time(X509_CRL_get0_lastUpdate(crl)),
		    (int64_t)crl_time(X509_CRL_get0_nextUpdate(crl)), der,
		    (size_t)derlen, (int64_t)sp_now())) < 0 ||
		    (r = kb_audit(kb, tx, "trust.crl", actor, json_pack("{s:s,s:I}",
		    "issuer", issuer, "number", (json_int_t)number),
		    err)) != 0) {
			store_txn_rollback(tx);
			goto out;
		}
		if ((r = store_txn_commit(tx, err)) != 0)
			goto out;
		kb_bump(kb);
	}
	*out = json_pack("{s:s,s:I,s:s,s:s,s:i,s:s}", "issuer", issuer,
	    "number", (json_int_t)number, "this_update", tu, "next_update", nu,
	    "entries", X509_CRL_get_REVOKED(crl) == NULL ? 0 :
	    sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)),
	    "status", old == number ? "already installed" : "installed");
	r = 0;
 out:
	if (locked)
		pthread_mutex_unlock(&kb->mtx);
	X509_CRL_free(crl);
	BIO_free(bio);
	OPENSSL_free(der);
	free(issuer);
	sk_X509_pop_free(anchors, X509_free);
	return r;
}

static int
row_crl_json(const struct store_row *row, void *arg)
{
	json_t		*arr = arg;
	char		 tu[32], nu[32];

	sp_time_fmt((time_t)store_row_int(row, 2), tu, sizeof(tu));
	sp_time_fmt((time_t)store_row_int(row, 3), nu, sizeof(nu));
	return json_array_append_new(arr, json_pack("{s:s,s:I,s:s,s:s}",
	    "issuer", store_row_text(row, 0), "number",
	    (json_int_t)store_row_int(row, 1), "this_update", tu,
	    "next_update", nu)) == 0 ? 0 : SP_ERR_ALLOC;
}

json_t *
kb_trust_crl_list(struct kb_service *kb)
{
	json_t	*arr = json_array();

	if (arr != NULL && store_select(kb->st, NULL, row_crl_json, arr, NULL,
	    "SELECT issuer, number, this_update, next_update FROM trust_crls "
	    "ORDER BY issuer", "") != 0) {
		json_decref(arr);
		return NULL;
	}
	return arr;
}

int
kb_trust_store(struct kb_service *kb, X509_STORE **out, struct sp_err *err)
{
	STACK_OF(X509)	*sk = NULL;
	X509_STORE	*store = NULL;
	struct crl_load	 cl = { NULL, 0 };
	int		 r;

	*out = NULL;
	if ((r = kb_trust_load(kb, &sk, err)) != 0)
		return r;
	if ((store = X509_STORE_new()) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}
	for (int i = 0; i < sk_X509_num(sk); i++)
		if (!X509_STORE_add_cert(store, sk_X509_value(sk, i))) {
			r = sp_err_ossl(err, SP_ERR_CRYPTO,
			    "X509_STORE_add_cert");
			goto out;
		}
	/*
	 * The operator trusted exactly these CAs: a trusted sub CA anchors
	 * the chain by itself, without its root (and so without trusting
	 * the root's other sub CAs).
	 */
	X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
	cl.store = store;
	if ((r = store_select(kb->st, NULL, row_crl_load, &cl, err,
	    "SELECT der, issuer FROM trust_crls", "")) != 0)
		goto out;
	/* With CRLs in use, every peer certificate must pass its issuer's. */
	if (cl.n > 0)
		X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	*out = store;
	store = NULL;
 out:
	X509_STORE_free(store);
	sk_X509_pop_free(sk, X509_free);
	return r;
}
