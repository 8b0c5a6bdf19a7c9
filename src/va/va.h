/*
 * The Validation Authority (DESIGN.md section 5; docs/internals/va.md).
 *
 * A VA node keeps what its CAs publish to it (issuers, certificate status
 * entries, CRLs) and answers OCSP and serves CRLs from it. The CAs reach
 * it through the peer listener (publish endpoints, va_peer_register());
 * clients reach it through its own HTTP listener (va_listen()).
 *
 * The service object is made on the loop thread at node start; unless a
 * function says otherwise it is used from the loop thread, and the
 * settings getters are safe from any thread.
 */
#ifndef SP_VA_VA_H
#define SP_VA_VA_H

#include <stdint.h>

#include <jansson.h>

#include "util/err.h"

struct authz;
struct event_base;
struct kb_service;
struct peer;
struct pool;
struct store;
struct tokens;

#define VA_VALIDITY_MIN		60		/* response_validity, seconds */
#define VA_VALIDITY_MAX		(7 * 86400)
#define VA_VALIDITY_DEFAULT	3600

struct va;

/* A VA over st (all borrowed; they outlive it). Loads its settings. */
int	va_open(struct store *st, struct tokens *tokens, struct kb_service *kb,
	    struct event_base *base, struct pool *pool, struct va **out,
	    struct sp_err *err) SP_WUR;
void	va_free(struct va *va);

/*
 * Settings ("non_issued": "unknown" | "revoked"; "response_validity":
 * seconds as a decimal string, VA_VALIDITY_MIN..MAX). Validated, stored
 * and audited in one transaction, then applied (worker thread or loop).
 * SP_ERR_INVALID for an unknown key or a bad value.
 */
int	va_set(struct va *va, const char *key, const char *value,
	    const char *actor, struct sp_err *err) SP_WUR;
/*
 * Registers POST /publish/cas, /publish/certs and /publish/crls with p's
 * endpoint registry; each entry is authorized with az (authz_check(),
 * /ca/<name> for the caller's certificate). Loop thread, before serving.
 */
int	va_peer_register(struct va *va, struct peer *p, struct authz *az,
	    struct sp_err *err) SP_WUR;

/* {"non_issued": "...", "response_validity": N} (new reference). */
json_t	*va_settings_json(struct va *va);

/*
 * What `va status`, `va cert list` and `va cert show` show (worker
 * thread; new references). Status: {"issuers": [{"name", "subject",
 * "fingerprint", "entries": {"good", "revoked", "hold"}, "crl": {"number",
 * "this_update", "next_update"} or null}], "settings", "cache_size",
 * "published": {"cas", "certs", "crls", "refused"}}; the responder adds its
 * signers and request counters there. List: issuer, status ("good",
 * "revoked", "hold") may be NULL; limit 0 means VA_LIST_DEFAULT, else
 * 1..VA_LIST_MAX. Show: the serial in any case, with leading zeros;
 * SP_ERR_NOTFOUND if the VA has no entry.
 */
#define VA_LIST_DEFAULT	100
#define VA_LIST_MAX	10000
int	va_status_json(struct va *va, json_t **out, struct sp_err *err) SP_WUR;

/*
 * Starts the client listener on HOST:PORT (plain HTTP): POST /ocsp, GET
 * /ocsp/<base64>, GET /crl/<CA name>.crl, served by loops event loop
 * threads (0: one per core, at most 8) and signer threads of its own
 * (http.c). va_free() stops it.
 */
int	va_listen(struct va *va, const char *hostport, int loops,
	    struct sp_err *err) SP_WUR;
int	va_cert_list_json(struct va *va, const char *issuer,
	    const char *status, long long limit, json_t **out,
	    struct sp_err *err) SP_WUR;
int	va_cert_show_json(struct va *va, const char *issuer,
	    const char *serial, json_t **out, struct sp_err *err) SP_WUR;

#endif
