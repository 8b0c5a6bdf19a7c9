/*
 * Authorization of peers (DESIGN.md section 6): roles, their members
 * (matched on a client certificate) and their access rules. authz.c is
 * the check and the role cache, authz_roles.c the administration. The
 * node's list of incoming connections is the peer layer's
 * (peer/incoming.c, declared in peer/peer.h); it records certificates
 * in the form this module matches them and turns them into members with
 * authz_grant().
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

#include "crypto/ids.h"
#include "store/store.h"
#include "util/err.h"

#define AUTHZ_ROLE_MAX		64	/* characters in a role name */
#define AUTHZ_PATH_MAX		255	/* characters in a rule path */
#define AUTHZ_MAX_ROLES		1000
#define AUTHZ_MAX_MEMBERS	10000	/* per role */
#define AUTHZ_MAX_RULES		1000	/* per role */
#define AUTHZ_VALUE_MAX		1024	/* characters in a member value */
/* Serials longer than this (RFC 5280 allows 20 octets) match by nothing. */
#define AUTHZ_SERIAL_MAX_BYTES	ID_SERIAL_MAX_BYTES
#define AUTHZ_SERIAL_HEX_MAX	(2 * AUTHZ_SERIAL_MAX_BYTES + 2) /* '-', NUL */

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

/* --- two principals ---------------------------------------------------- */

/*
 * A principal of a request: a certificate matched against the roles'
 * members, and a label for messages and the audit row ("RA",
 * "RA administrator"; NULL: "principal" / "second principal").
 */
struct authz_principal {
	X509		*cert;		/* borrowed */
	const char	*label;
};

#define AUTHZ_DECISION_PATHS	8	/* paths a decision keeps */
#define AUTHZ_LABEL_MAX		32

/* What authz_check2() decided, for the caller's audit row. */
struct authz_decision {
	bool	allowed;
	size_t	npaths;		/* checked; the first AUTHZ_DECISION_PATHS */
	char	paths[AUTHZ_DECISION_PATHS][AUTHZ_PATH_MAX + 1];
	uint64_t generation;	/* of the roles both were checked against */
	struct authz_decision_principal {
		bool	present;
		bool	allowed;
		char	label[AUTHZ_LABEL_MAX + 1];
		char	subject[256];	/* RFC 4514, cut on a character */
		char	serial[AUTHZ_SERIAL_HEX_MAX];
		char	fingerprint[65];
		char	role[AUTHZ_ROLE_MAX + 1];	/* "" if none */
	} p[2];
	char	reason[256];	/* "" if allowed */
};

/*
 * THE authorization function for a request on behalf of someone: the
 * intersection of two principals' rights (an RA's role on the CA and the
 * RA administrator or end entity it authenticated; DESIGN.md section 5).
 * Each principal is checked as authz_check() checks one certificate,
 * both against the same roles (one snapshot), for every one of the
 * npaths paths; allowed (0) only if both are allowed every path, else
 * SP_ERR_DENIED: deny wins across the two, and a role of one can never
 * widen the other. err then names the principal refused first (the
 * first principal's reason if both were), "LABEL: " and authz_check()'s
 * reason.
 *
 * second NULL means there is no second principal: the decision is the
 * single-principal one, exactly authz_check(first->cert) (same code,
 * same message, no label prefix). A second principal given without a
 * certificate is refused ("LABEL: no client certificate"): a caller that
 * has a second principal but lost its identity fails closed.
 *
 * d (may be NULL) is filled whatever the result; authz_decision_audit()
 * writes it as one audit row naming both. Paths may be computed from the
 * request (authz_rules_add()) before its body is acted on.
 */
int	authz_check2(struct authz *a, const struct authz_principal *first,
	    const struct authz_principal *second, const char *const *paths,
	    size_t npaths, struct authz_decision *d, struct sp_err *err)
	    SP_WUR;

/*
 * {"allowed", "paths": [...], "principals": [{"label", "subject",
 *  "serial", "fingerprint", "role", "allowed"}], "reason" if refused,
 *  "more_paths" if more were checked than kept}; NULL if out of memory.
 */
json_t	*authz_decision_json(const struct authz_decision *d);
/* Appends d as one audit row (event, actor), in the caller's
 * transaction if one is open. */
int	authz_decision_audit(struct authz *a, const char *event,
	    const char *actor, const struct authz_decision *d,
	    struct sp_err *err) SP_WUR;

/*
 * Rule paths computed from a request: authz_rules_add(ru, "/ca", name)
 * adds "/ca/<name>", (ru, "/ra/enroll", NULL) adds "/ra/enroll". A name
 * is one path component (no '/', not empty, "." or ".."), so a request
 * cannot name a rule outside its prefix; SP_ERR_INVALID otherwise,
 * SP_ERR_LIMIT beyond AUTHZ_RULES_MAX. ru->paths, ru->n go to
 * authz_check2() / authz_check().
 */
#define AUTHZ_RULES_MAX		8
struct authz_rules {
	const char	*paths[AUTHZ_RULES_MAX];
	size_t		 n;
	char		 buf[AUTHZ_RULES_MAX][AUTHZ_PATH_MAX + 1];
};
void	authz_rules_init(struct authz_rules *ru);
int	authz_rules_add(struct authz_rules *ru, const char *prefix,
	    const char *name, struct sp_err *err) SP_WUR;

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
 * Rule presets for authz_grant() (docs/internals/authz.md):
 * "va", "ra", "renewal", "ping". True if name is one, or a comma list of
 * them without repeats ("va,renewal").
 */
#define AUTHZ_PRESET_MAX	16	/* characters in a preset name */
bool	authz_preset_valid(const char *name);

/* --- identities and grants ---------------------------------------------- */

/*
 * A JSON string for text from a certificate or the store, even if it is
 * not UTF-8 (such bytes become '?'); NULL only if out of memory. For the
 * modules that list what authz records (the incoming-connections list).
 */
json_t	*authz_jstr(const char *s);

/* True if name can be a role name (sp_name_valid(), AUTHZ_ROLE_MAX). */
bool	authz_role_name_valid(const char *name);
/* True if a role of that name exists now. */
bool	authz_role_exists(struct authz *a, const char *name);

/*
 * The certificate's serial as "serial" members hold it: lower-case hex of
 * the INTEGER's magnitude without leading zero bytes, '-' first if
 * negative; "" if longer than AUTHZ_SERIAL_MAX_BYTES (matches nothing).
 */
void	authz_cert_serial(const X509 *x, char out[AUTHZ_SERIAL_HEX_MAX]);

/* The store the authz was opened on (borrowed). */
struct store *authz_store(struct authz *a);

/*
 * A certificate as a caller recorded it: subject and issuer as RFC 4514
 * DNs, serial in authz_cert_serial()'s form, SHA-256 fingerprint in
 * lower-case hex. Strings are the caller's.
 */
struct authz_certid {
	const char	*subject;
	const char	*issuer;
	const char	*serial;
	const char	*fingerprint;
};

/*
 * How authz_grant() reaches the caller's rows, inside its transaction on
 * st: certid() fills *out (SP_ERR_NOTFOUND and a message if the record
 * is gone), certid_free() (may be NULL) releases what certid() set, even
 * after a failure; granted() (may be NULL) runs once the member is added,
 * with the role's name, updates the caller's rows and may add keys to
 * the audit details. A failure of any of them rolls everything back.
 */
struct authz_grant_ops {
	int	(*certid)(void *arg, struct store *st, struct store_txn *tx,
		    struct authz_certid *out, struct sp_err *err);
	void	(*certid_free)(void *arg, struct authz_certid *ci);
	int	(*granted)(void *arg, struct store *st, struct store_txn *tx,
		    const char *role, json_t *details, struct sp_err *err);
};

/*
 * Gives a recorded certificate a role, in one audited transaction (audit
 * event "event"). Exactly one of new_role (create that role with the
 * rules of preset, default "ping"; a comma list gives the union of
 * their rules, each recorded with the presets that named it) and role (add to an existing role;
 * preset must then be NULL). The member matches the certificate by match
 * (default "serial": its issuer and serial; "dn": its subject and issuer;
 * "cn": its subject's most specific CN; "fingerprint"). *out is the role
 * as authz_role_show() gives it. SP_ERR_NOTFOUND for an unknown role,
 * SP_ERR_EXISTS if new_role is taken or the certificate is already a
 * member that way, SP_ERR_INVALID for bad arguments.
 */
int	authz_grant(struct authz *a, const char *new_role, const char *preset,
	    const char *role, const char *match, const char *event,
	    const char *actor, const struct authz_grant_ops *ops, void *arg,
	    json_t **out, struct sp_err *err) SP_WUR;

#endif
