/*
 * Authorization of peers (DESIGN.md section 6): roles, their members
 * (matched on a client certificate) and their access rules, plus the
 * node's list of incoming connections.
 *
 * A role has members and access rules. A member matches a certificate by
 * one attribute:
 *   "serial"       issuer DN and serial number (the default). value is the
 *                  serial as lower-case hex of the INTEGER's magnitude
 *                  without leading zero bytes ("-" first if negative);
 *                  issuer is an RFC 4514 DN.
 *   "dn"           subject DN (RFC 4514) and, unless the operator gave
 *                  issuer "*" (any issuer), the issuer DN too: the same
 *                  subject from another trusted CA does not match.
 *   "cn"           the subject's most specific commonName, byte for byte.
 *   "fingerprint"  SHA-256 of the DER certificate, lower-case hex.
 * DNs are compared as RFC 5280 section 7.1 says (X509_NAME_cmp(): case and
 * inner spaces are not significant), so "CN=Peer CA" is "cn=peer  ca".
 *
 * An access rule is a path (AUTHZ_PATH_MAX characters of [A-Za-z0-9_./-],
 * starting with '/', no empty, "." or ".." component), allow or deny, and
 * a recursive flag. Rule R matches path P if R == P, or if R is recursive
 * and P starts with R followed by '/' (R itself when R ends with '/'):
 * /ca/Foo recursive matches /ca/Foo/x but not /ca/FooBar. A role allows P
 * iff an allow rule matches and no deny rule matches: deny wins, no rule
 * means deny. A certificate that matches several roles may do what ANY of
 * them allows (the union, as in EJBCA).
 *
 * Roles are cached in memory and re-read from the store after every
 * change made here; authz_check() never touches the database. Every
 * function is thread safe. Changes are audited in the transaction that
 * makes them. "actor" names who asked and goes to the audit log.
 */
#ifndef SP_AUTHZ_AUTHZ_H
#define SP_AUTHZ_AUTHZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "store/store.h"
#include "util/err.h"

#define AUTHZ_ROLE_MAX		64	/* characters in a role name */
#define AUTHZ_PATH_MAX		255	/* characters in a rule path */
#define AUTHZ_MAX_ROLES		1000
#define AUTHZ_MAX_MEMBERS	10000	/* per role */
#define AUTHZ_MAX_RULES		1000	/* per role */
#define AUTHZ_VALUE_MAX		1024	/* characters in a member value */
#define AUTHZ_ADDRESS_MAX	255	/* characters of an incoming address */
#define AUTHZ_INCOMING_LIST_MAX	1000	/* rows authz_incoming_list() shows */
#define AUTHZ_INCOMING_MAX	10000	/* rows kept: the oldest seen go */

struct authz;

/*
 * Loads the roles from st (borrowed; it must outlive the authz). *out is
 * freed with authz_free().
 */
int	authz_open(struct store *st, struct authz **out, struct sp_err *err)
	    SP_WUR;
void	authz_free(struct authz *a);

/*
 * A counter that grows on every change to roles, members or rules, so a
 * caller that caches decisions (per TLS session, per certificate) drops
 * them when it moves.
 */
uint64_t authz_generation(struct authz *a);

/*
 * THE authorization function: every peer endpoint calls it. Returns 0 if
 * cert (borrowed) is authorized for every one of the npaths paths, else
 * SP_ERR_DENIED with err naming the first path refused and why:
 *   "no role matches this certificate"
 *   "role X: denied by rule /a/ for /a/b"
 *   "role X: no rule allows /a"
 * (when several roles match and none allows the path, the reason is the
 * first role's, followed by how many roles matched). A malformed path
 * is refused (SP_ERR_DENIED), and so is an empty list (npaths == 0),
 * which is a caller bug that must not turn into "allowed". Callers list
 * every path the endpoint needs, /peerincoming included: nothing is
 * added implicitly. role (may be NULL) gets the name of the matching
 * role, the first in name order if several, "" if none, whatever the
 * result.
 */
int	authz_check(struct authz *a, X509 *cert, const char *const *paths,
	    size_t npaths, char role[AUTHZ_ROLE_MAX + 1], struct sp_err *err)
	    SP_WUR;

/* --- roles ------------------------------------------------------------ */

/*
 * Role names are sp_name_valid() names of at most AUTHZ_ROLE_MAX
 * characters. SP_ERR_EXISTS if taken, SP_ERR_LIMIT beyond AUTHZ_MAX_ROLES.
 */
int	authz_role_create(struct authz *a, const char *name, const char *actor,
	    struct sp_err *err) SP_WUR;
/* Deletes a role with its members and rules; SP_ERR_NOTFOUND if none. */
int	authz_role_delete(struct authz *a, const char *name, const char *actor,
	    struct sp_err *err) SP_WUR;
/* [{"name", "members", "rules"}] (counts), by name; NULL if out of memory. */
json_t	*authz_role_list(struct authz *a);
/*
 * {"name", "members": [{"match", "value", "issuer", "any_issuer"}],
 *  "rules": [{"path", "allow", "recursive"}]}; issuer is "" unless the
 * match is "serial" or a pinned "dn"; any_issuer is true for a "dn"
 * member without one. SP_ERR_NOTFOUND if there is no such role.
 */
int	authz_role_show(struct authz *a, const char *name, json_t **out,
	    struct sp_err *err) SP_WUR;

/*
 * Adds a member. match NULL means "serial". issuer is required for
 * "serial" and "dn" ("*" for a dn member of any issuer) and refused for
 * the other types. Values are normalised before
 * they are stored and compared: hex (serial, fingerprint) to lower case
 * without ':' (a serial also loses its "0x" and leading zero bytes), DNs
 * (dn value, issuer) to dn_print(dn_parse()). SP_ERR_INVALID for an
 * unknown match type or a malformed value, SP_ERR_NOTFOUND for an unknown
 * role, SP_ERR_EXISTS if the member is already there.
 */
int	authz_member_add(struct authz *a, const char *role, const char *match,
	    const char *value, const char *issuer, const char *actor,
	    struct sp_err *err) SP_WUR;
/* Same arguments; SP_ERR_NOTFOUND if the role has no such member. */
int	authz_member_remove(struct authz *a, const char *role,
	    const char *match, const char *value, const char *issuer,
	    const char *actor, struct sp_err *err) SP_WUR;

/* Inserts or replaces the role's rule for path. */
int	authz_rule_set(struct authz *a, const char *role, const char *path,
	    bool allow, bool recursive, const char *actor, struct sp_err *err)
	    SP_WUR;
/* SP_ERR_NOTFOUND if the role has no rule for path. */
int	authz_rule_remove(struct authz *a, const char *role, const char *path,
	    const char *actor, struct sp_err *err) SP_WUR;

/*
 * Rule presets for authz_incoming_authorize() (docs/internals/authz.md):
 * "va", "ra", "renewal", "ping". True if name is one.
 */
bool	authz_preset_valid(const char *name);

/* --- incoming connections --------------------------------------------- */

/*
 * Records a verified client certificate seen by the peer listener: one
 * upsert keyed by the certificate's fingerprint, keeping first_seen and
 * setting subject, issuer, serial, address (at most AUTHZ_ADDRESS_MAX
 * characters), last_seen, count + 1 and the matched role (NULL or "" if
 * none, as authz_check() reported it). The table is capped: beyond
 * AUTHZ_INCOMING_MAX rows the least recently seen are deleted (checked
 * every few records), logged with the count, which the settings row
 * "authz.incoming_dropped" accumulates. In tx (NULL: its own statements).
 */
int	authz_incoming_record(struct authz *a, struct store_txn *tx,
	    X509 *cert, const char *address, const char *role,
	    struct sp_err *err) SP_WUR;
/* The row cap (AUTHZ_INCOMING_MAX if max <= 0). */
void	authz_set_incoming_max(struct authz *a, int64_t max);

/*
 * [{"id", "subject", "issuer", "serial", "fingerprint", "address",
 *   "first_seen", "last_seen", "count", "role"}], most recently seen
 * first, at most AUTHZ_INCOMING_LIST_MAX rows; times ISO 8601. NULL if
 * the store or memory failed.
 */
json_t	*authz_incoming_list(struct authz *a);

/*
 * Gives incoming connection id a role, in one audited transaction
 * ("incoming.authorize"). Exactly one of new_role (create that role with
 * the rules of preset, default "ping") and role (add to an existing role;
 * preset must then be NULL). The member matches the recorded certificate
 * by match (default "serial": its issuer and serial; "dn": its subject;
 * "cn": its subject's most specific CN; "fingerprint"). The incoming row's
 * role is set too. *out is the role as authz_role_show() gives it.
 * SP_ERR_NOTFOUND for an unknown id or role, SP_ERR_EXISTS if new_role is
 * taken or the certificate is already a member that way.
 */
int	authz_incoming_authorize(struct authz *a, int64_t id,
	    const char *new_role, const char *preset, const char *role,
	    const char *match, const char *actor, json_t **out,
	    struct sp_err *err) SP_WUR;

#endif
