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

#endif
