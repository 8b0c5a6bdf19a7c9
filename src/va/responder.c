#include <string.h>

#include <openssl/ocsp.h>

#include "va/va_int.h"

#define REASON_CERTIFICATE_HOLD	6	/* CRLReason, RFC 5280 5.3.1 */

void
va_decide(const struct ocsp_req *rq, const struct va_lookup *lk,
    enum va_non_issued ni, struct va_decision *d)
{
	memset(d, 0, sizeof(*d));
	d->issuer = -1;
	d->resp_status = OCSP_RESPONSE_STATUS_UNAUTHORIZED;
	if (rq->n == 0 || rq->n > OCSP_REQ_MAX_IDS) {
		d->resp_status = OCSP_RESPONSE_STATUS_MALFORMEDREQUEST;
		return;
	}
	for (size_t i = 0; i < rq->n; i++) {
		int64_t	iss = lk->issuer(lk->arg, &rq->ids[i]);

		if (iss < 0 || (d->issuer >= 0 && iss != d->issuer)) {
			d->issuer = -1;
			return;
		}
		d->issuer = iss;
	}
	for (size_t i = 0; i < rq->n; i++) {
		struct ocsp_single	*s = &d->st[i];
		int			 r;

		r = lk->status(lk->arg, d->issuer, rq->ids[i].serial, s);
		if (r == SP_ERR_NOTFOUND) {
			memset(s, 0, sizeof(*s));
			s->reason = -1;
			s->status = OCSP_UNKNOWN;
			if (ni == VA_NON_ISSUED_REVOKED) {
				s->status = OCSP_REVOKED;
				s->revoked_at = 0;
				s->reason = REASON_CERTIFICATE_HOLD;
				d->extended_revoke = true;
			}
		} else if (r != 0) {
			d->resp_status = OCSP_RESPONSE_STATUS_INTERNALERROR;
			d->issuer = -1;
			return;
		}
	}
	d->resp_status = OCSP_RESPONSE_STATUS_SUCCESSFUL;
	d->cacheable = rq->n == 1 && !rq->has_nonce;
}
