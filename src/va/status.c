#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "crypto/certs.h"
#include "crypto/dn.h"
#include "crypto/ids.h"
#include "util/util.h"
#include "va/va_int.h"

#define REASON_CERTIFICATE_HOLD	6

/*
 * The CertID hashes of an issuer (RFC 6960 4.1.1): of the DER of its
 * subject name and of its public key's BIT STRING value, hex.
 */
static int
issuer_hashes(X509 *cert, char n1[41], char k1[41], char n2[65], char k2[65])
{
	const ASN1_BIT_STRING	*key = X509_get0_pubkey_bitstr(cert);
	unsigned char		*nd = NULL, md[EVP_MAX_MD_SIZE];
	unsigned int		 mdlen;
	int			 nlen, r = -1;

	if (key == NULL || (nlen = i2d_X509_NAME(X509_get_subject_name(cert),
	    &nd)) <= 0)
		return -1;
	if (!EVP_Digest(nd, (size_t)nlen, md, &mdlen, EVP_sha1(), NULL))
		goto out;
	sp_hex_encode(md, mdlen, n1);
	if (!EVP_Digest(nd, (size_t)nlen, md, &mdlen, EVP_sha256(), NULL))
		goto out;
	sp_hex_encode(md, mdlen, n2);
	if (!EVP_Digest(key->data, (size_t)key->length, md, &mdlen,
	    EVP_sha1(), NULL))
		goto out;
	sp_hex_encode(md, mdlen, k1);
	if (!EVP_Digest(key->data, (size_t)key->length, md, &mdlen,
	    EVP_sha256(), NULL))
		goto out;
	sp_hex_encode(md, mdlen, k2);
	r = 0;
 out:
	OPENSSL_free(nd);
	return r;
}

int
va_issuer_put(struct store *st, struct store_txn *tx, const char *name,
    X509 *cert, int64_t *id, struct sp_err *err)
{
	unsigned char	*der = NULL;
	size_t		 len;
	char		 fp[ID_FP_HEX_LEN + 1], *subject = NULL;
	char		 n1[41], k1[41], n2[65], k2[65];
	int		 r;

	*id = 0;
	if (name == NULL || !sp_name_valid(name, 64))
		return sp_err_set(err, SP_ERR_INVALID, "issuer name must be 1 "
		    "to 64 characters of [A-Za-z0-9_.-], not \".\" or \"..\"");
	if ((r = certs_der(cert, &der, &len, err)) != 0)
		return r;
	if (issuer_hashes(cert, n1, k1, n2, k2) != 0) {
		r = sp_err_set(err, SP_ERR_INVALID, "issuer certificate: cannot "
		    "hash its name and key");
		goto out;
	}
	if (id_fingerprint_der(der, len, fp) != 0 ||
	    (subject = dn_print(X509_get_subject_name(cert))) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}
	r = store_exec(st, tx, id, err, "INSERT INTO va_issuers (name, "
	    "subject, fingerprint, cert, updated, name_sha1, key_sha1, "
	    "name_sha256, key_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
	    "ON CONFLICT (name) DO UPDATE SET subject = excluded.subject, "
	    "fingerprint = excluded.fingerprint, cert = excluded.cert, "
	    "updated = excluded.updated, name_sha1 = excluded.name_sha1, "
	    "key_sha1 = excluded.key_sha1, name_sha256 = excluded.name_sha256, "
	    "key_sha256 = excluded.key_sha256 RETURNING id", "sssbissss", name,
	    subject, fp, der, len, (int64_t)sp_now(), n1, k1, n2, k2);
	if (r > 0)
		r = 0;
 out:
	OPENSSL_free(der);
	free(subject);
	return r;
}

int
va_cert_put(struct store *st, struct store_txn *tx, int64_t issuer_id,
    const struct va_entry *e, bool *applied, struct sp_err *err)
{
	char	serial[ID_SERIAL_HEX_MAX];
	int	r;

	*applied = false;
	if ((r = id_serial_parse(e->serial, serial, err)) != 0)
		return r;
	if ((int)e->status < 0 || e->status >= VA__STATUS_MAX)
		return sp_err_set(err, SP_ERR_INVALID, "unknown status");
	if (e->seq <= 0)
		return sp_err_set(err, SP_ERR_INVALID, "update sequence must "
		    "be positive");
	/*
	 * One statement: insert, or replace only an older entry. A status-
	 * only update keeps the DER, fingerprint and subject it had.
	 */
	r = store_exec(st, tx, NULL, err, "INSERT INTO va_certs (issuer_id, "
	    "serial, status, revoked_at, reason, not_before, not_after, "
	    "fingerprint, subject, der, seq, updated) VALUES "
	    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
	    "ON CONFLICT (issuer_id, serial) DO UPDATE SET "
	    "status = excluded.status, revoked_at = excluded.revoked_at, "
	    "reason = excluded.reason, "
	    "not_before = CASE WHEN excluded.der IS NULL THEN "
	    "va_certs.not_before ELSE excluded.not_before END, "
	    "not_after = CASE WHEN excluded.der IS NULL THEN "
	    "va_certs.not_after ELSE excluded.not_after END, "
	    "fingerprint = CASE WHEN excluded.der IS NULL THEN "
	    "va_certs.fingerprint ELSE excluded.fingerprint END, "
	    "subject = CASE WHEN excluded.der IS NULL THEN va_certs.subject "
	    "ELSE excluded.subject END, "
	    "der = COALESCE(excluded.der, va_certs.der), "
	    "seq = excluded.seq, updated = excluded.updated "
	    "WHERE va_certs.seq < excluded.seq",
	    "isiiiiissbii", issuer_id, serial, (int64_t)e->status,
	    (int64_t)e->revoked_at, (int64_t)e->reason,
	    (int64_t)e->not_before, (int64_t)e->not_after,
	    e->fingerprint ? e->fingerprint : "",
	    e->subject ? e->subject : "", e->der, e->der ? e->derlen : 0,
	    e->seq, (int64_t)sp_now());
	if (r < 0)
		return r;
	*applied = r > 0;
	return 0;
}

struct status_row {
	struct ocsp_single	*out;
	bool			 found;
};

static int
status_row(const struct store_row *row, void *arg)
{
	struct status_row	*sr = arg;
	int64_t			 st = store_row_int(row, 0);

	sr->found = true;
	sr->out->revoked_at = (time_t)store_row_int(row, 1);
	sr->out->reason = (int)store_row_int(row, 2);
	switch (st) {
	case VA_GOOD:
		sr->out->status = OCSP_GOOD;
		sr->out->revoked_at = 0;
		sr->out->reason = -1;
		break;
	case VA_ON_HOLD:
		sr->out->status = OCSP_REVOKED;
		sr->out->reason = REASON_CERTIFICATE_HOLD;
		break;
	case VA_REVOKED:
		sr->out->status = OCSP_REVOKED;
		break;
	default:
		return SP_ERR_DB;	/* a row this code never wrote */
	}
	return 0;
}

int
va_cert_status(struct store *st, struct store_txn *tx, int64_t issuer_id,
    const char *serial, struct ocsp_single *out, struct sp_err *err)
{
	struct status_row	sr = { out, false };
	int			r;

	memset(out, 0, sizeof(*out));
	out->reason = -1;
	if ((r = store_select(st, tx, status_row, &sr, err, "SELECT status, "
	    "revoked_at, reason FROM va_certs WHERE issuer_id = ? AND "
	    "serial = ?", "is", issuer_id, serial)) != 0)
		return r == SP_ERR_DB ? sp_err_set(err, r, "certificate %s: "
		    "unknown status in the database", serial) : r;
	if (!sr.found)
		return SP_ERR_NOTFOUND;
	return 0;
}

int
va_crl_put(struct store *st, struct store_txn *tx, int64_t issuer_id,
    int64_t number, time_t this_update, time_t next_update,
    const unsigned char *der, size_t len, struct sp_err *err)
{
	int	r;

	if (der == NULL || len == 0)
		return sp_err_set(err, SP_ERR_INVALID, "empty CRL");
	if ((r = store_exec(st, tx, NULL, err, "INSERT INTO va_crls "
	    "(issuer_id, number, this_update, next_update, der, received) "
	    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (issuer_id) DO UPDATE SET "
	    "number = excluded.number, this_update = excluded.this_update, "
	    "next_update = excluded.next_update, der = excluded.der, "
	    "received = excluded.received "
	    "WHERE va_crls.number < excluded.number", "iiiibi", issuer_id,
	    number, (int64_t)this_update, (int64_t)next_update, der, len,
	    (int64_t)sp_now())) < 0)
		return r;
	if (r == 0)
		return sp_err_set(err, SP_ERR_STATE, "an older CRL: number "
		    "%lld is not above the one the VA has", (long long)number);
	return 0;
}
