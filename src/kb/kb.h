/*
 * Key bindings and the node's trust store.
 *
 * A key binding names a key in a crypto token together with the
 * certificate issued for it (and that certificate's chain): the node's TLS
 * identity toward peers (DESIGN.md section 5, "remote authenticator").
 * The trust store holds the peer CA certificates this node trusts when it
 * verifies a peer's certificate.
 *
 * Both live in the store (tables keybindings and trust); nothing is cached,
 * so every call sees the latest committed state. Every function is thread
 * safe. Results meant for the admin API are JSON (new references, caller
 * decrefs). "actor" names who asked ("admin:uid=1000") and goes to the
 * audit log (NULL is recorded as "local").
 *
 * Codes: SP_ERR_INVALID for malformed input (names, DNs, SANs, unparsable
 * certificates), SP_ERR_NOTFOUND for an unknown binding, token, key or
 * fingerprint, SP_ERR_EXISTS for a duplicate binding name, SP_ERR_POLICY
 * for a well-formed certificate that is refused (wrong key, expired, not
 * yet valid, chain does not verify, not a CA), SP_ERR_STATE for a binding
 * that cannot be used now (token inactive, no certificate), SP_ERR_LIMIT
 * for the size limits below, SP_ERR_DB and SP_ERR_CRYPTO as usual.
 */
#ifndef SP_KB_KB_H
#define SP_KB_KB_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "token/token.h"
#include "store/store.h"
#include "util/err.h"

#define KB_NAME_MAX	64		/* [A-Za-z0-9_.-] */
#define KB_FILE_MAX	(64 * 1024)	/* bytes of a cert or chain */
#define KB_CHAIN_MAX	10		/* certificates in a chain */
#define KB_BINDINGS_MAX	1000		/* key bindings on a node */
#define KB_TRUST_ADD_MAX 100		/* certificates in one trust add */
#define KB_TRUST_MAX	1000		/* trusted certificates */

struct kb_service;

/*
 * New service over st, using the token service's keys (both borrowed: they
 * must outlive the service); each binding claims its key in the key
 * registry. The generation starts at 1.
 */
int	kb_open(struct store *st, struct tokens *tokens,
	    struct kb_service **out, struct sp_err *err) SP_WUR;
void	kb_free(struct kb_service *kb);

/*
 * A counter that changes whenever an identity or the trust anchors may
 * have changed: binding created, certificate installed, trust added or
 * removed. It does not change when a token is activated or deactivated or
 * when a certificate expires; callers that cache a TLS context should
 * retry kb_identity() after a failure rather than wait for a new
 * generation. Not persistent: a restart starts again at 1.
 */
uint64_t kb_generation(struct kb_service *kb);

/* --- key bindings --------------------------------------------------------- */

/*
 * Creates a binding named name for the key alias key in token token. type
 * is "auth" (NULL means "auth": a TLS identity) or "ocsp" (a VA's OCSP
 * signer; install-cert then wants id-kp-OCSPSigning). The token and key
 * must exist (SP_ERR_NOTFOUND); a key a CA signs with is refused
 * (SP_ERR_POLICY): a CA key must not double as a TLS key. Audited
 * (keybinding.create). *out is the binding as kb_list() shows it.
 */
int	kb_create(struct kb_service *kb, const char *name, const char *token,
	    const char *key, const char *type, const char *actor, json_t **out,
	    struct sp_err *err) SP_WUR;

/*
 * A PKCS#10 request for the binding's key, signed inside the token
 * (token_sign_init() and X509_REQ_sign_ctx()): *pem is a heap string the
 * caller frees. dn is an RFC 4514 subject (NULL: "CN=<name>"). sans are
 * "DNS:host.example" or "IP:192.0.2.1" / "IP:2001:db8::1" (prefix case
 * insensitive), at most CERT_MAX_SANS, no duplicates; DNS names must be
 * RFC 1034 preferred syntax (no wildcards). SP_ERR_STATE if the token is
 * inactive. Audited (keybinding.csr with subject and SANs).
 */
int	kb_csr(struct kb_service *kb, const char *name, const char *dn,
	    const char *const *sans, size_t nsans, const char *actor,
	    char **pem, struct sp_err *err) SP_WUR;

/*
 * Installs the certificate issued for the binding's key, replacing any
 * earlier one. cert is one certificate, PEM or DER; further PEM
 * certificates in the same input are taken as chain certificates (a
 * "fullchain" file). chain is an optional PEM bundle (or one DER
 * certificate); each input at most KB_FILE_MAX bytes, at most KB_CHAIN_MAX
 * chain certificates.
 *
 * Refused (SP_ERR_POLICY) if the certificate's public key is not the
 * binding's key, if it is expired or not yet valid, or, when chain
 * certificates are given, if X509_verify_cert() fails with the chain's
 * self-signed certificates and the trust store as anchors and the other
 * chain certificates as untrusted intermediates. The stored chain is the
 * verified path without the leaf (issuer first, root last): unrelated
 * certificates are dropped. Without chain certificates no chain is
 * stored. Audited (keybinding.install_cert with subject, issuer, serial,
 * fingerprint, not_after). *out is the binding as kb_list() shows it.
 */
int	kb_install_cert(struct kb_service *kb, const char *name,
	    const unsigned char *cert, size_t len, const unsigned char *chain,
	    size_t chainlen, const char *actor, json_t **out,
	    struct sp_err *err) SP_WUR;

/*
 * Every binding, by name: [{"name", "type", "token", "key", "status",
 * "subject", "issuer", "serial", "not_before", "not_after", "fingerprint",
 * "chain_length", "created"}]. Certificate fields are null without a
 * certificate; times are ISO 8601 UTC; serial is lower-case hex;
 * fingerprint is the SHA-256 of the DER, lower-case hex. status is the
 * first that applies of:
 *   "key_missing"     the token or key is gone, or the alias now holds
 *                     another key than the certificate's
 *   "no_certificate"  no certificate installed yet
 *   "expired", "not_yet_valid"
 *   "token_inactive"  the token's PIN is not known to the node
 *   "active"          usable: kb_identity() succeeds
 * NULL if the database or memory fails.
 */
json_t	*kb_list(struct kb_service *kb);

/*
 * One binding as in kb_list(), plus "pem": the certificate and its chain
 * as PEM (absent without a certificate). SP_ERR_NOTFOUND if none.
 */
int	kb_show(struct kb_service *kb, const char *name, json_t **out,
	    struct sp_err *err) SP_WUR;

/*
 * The binding's TLS identity as new references: *cert, *chain (possibly
 * empty; free with sk_X509_pop_free(chain, X509_free)) and *key (from
 * token_key_get1_tls()). SP_ERR_NOTFOUND if there is no such binding,
 * SP_ERR_STATE unless kb_list() would show it "active" (the message says
 * why). Out-params are set only on success.
 */
int	kb_identity(struct kb_service *kb, const char *name, X509 **cert,
	    STACK_OF(X509) **chain, EVP_PKEY **key, struct sp_err *err) SP_WUR;

/* --- trust store ---------------------------------------------------------- */

/*
 * Adds trusted peer CA certificates: one or more PEM certificates or one
 * DER certificate, at most KB_FILE_MAX bytes and KB_TRUST_ADD_MAX
 * certificates. Each must be a CA certificate (basicConstraints CA:TRUE;
 * keyCertSign if keyUsage is present) and not expired, else the whole
 * input is refused (SP_ERR_POLICY) and nothing is added. Certificates
 * already trusted are not an error. *out is [{"fingerprint", "subject",
 * "not_after", "status"}] in input order, status "added" or "already
 * trusted". Each addition is audited (trust.add). SP_ERR_LIMIT past
 * KB_TRUST_MAX trusted certificates.
 */
int	kb_trust_add(struct kb_service *kb, const unsigned char *data,
	    size_t len, const char *actor, json_t **out, struct sp_err *err)
	    SP_WUR;

/*
 * [{"fingerprint", "subject", "issuer", "not_before", "not_after",
 * "added"}] ordered by subject; NULL if the database or memory fails.
 */
json_t	*kb_trust_list(struct kb_service *kb);

/*
 * Removes the certificate with this SHA-256 fingerprint (hex, either case,
 * colons allowed). SP_ERR_NOTFOUND if none. Audited (trust.remove).
 * Its subject's installed CRL stays (so re-adding the anchor keeps
 * revocation checking) unless drop_crl; *crl says what happened to it:
 * "kept", "removed" or "none".
 */
int	kb_trust_remove(struct kb_service *kb, const char *fingerprint,
	    bool drop_crl, const char **crl, const char *actor,
	    struct sp_err *err) SP_WUR;

/*
 * Installs a CRL (PEM or DER) of a trusted CA: its signature must verify
 * with a trusted certificate whose subject is the CRL's issuer, and it
 * must be newer (cRLNumber) than the one it replaces; an identical number
 * is "already installed". Once any CRL is installed, peers are checked
 * against their issuer's CRL and refused if revoked, or if their issuer
 * has no current CRL (fail closed). *out: {"issuer","number",
 * "this_update","next_update","entries","status"}. Audited (trust.crl).
 * trust remove of the CA's certificate removes its CRL too.
 */
int	kb_trust_crl_add(struct kb_service *kb, const unsigned char *data,
	    size_t len, const char *actor, json_t **out, struct sp_err *err)
	    SP_WUR;
/* [{"issuer","number","this_update","next_update"}] */
json_t	*kb_trust_crl_list(struct kb_service *kb);

/*
 * A new X509_STORE (caller frees) holding every trusted certificate, for
 * verifying peers. X509_V_FLAG_PARTIAL_CHAIN is set, so a trusted
 * intermediate CA is an anchor by itself: trusting a sub CA does not trust
 * its siblings. An empty trust store gives an empty X509_STORE, which
 * verifies nothing.
 */
int	kb_trust_store(struct kb_service *kb, X509_STORE **out,
	    struct sp_err *err) SP_WUR;

#endif
