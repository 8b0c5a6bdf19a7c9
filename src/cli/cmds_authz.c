#include <stddef.h>

#include "cli/cli_int.h"

const struct cmd cli_cmds_authz[] = {
	{ "role", "create", "role.create", { "name" }, { { NULL } }, OUT_OBJ,
	  NULL, "role create NAME\n"
	  "  Creates an empty role (no members, no rules: it allows nothing)."
	  "\n  NAME is 1..64 characters of [A-Za-z0-9_.-]. Peers whose client"
	  "\n  certificate matches a member get what the role's rules allow."
	  "\n  See also: peer incoming authorize." },
	{ "role", "delete", "role.delete", { "name" }, { { NULL } }, OUT_OBJ,
	  NULL, "role delete NAME\n"
	  "  Deletes the role with its members and rules. Its peers are "
	  "refused\n  unless another role matches them." },
	{ "role", "list", "role.list", { NULL }, { { NULL } }, OUT_TABLE,
	  "name,members,rules", "role list\n"
	  "  Lists the roles with their number of members and rules." },
	{ "role", "show", "role.show", { "name" }, { { NULL } }, OUT_OBJ, NULL,
	  "role show NAME\n  Shows a role's members and access rules; "
	  "\"preset\" says which\n  presets made a rule (empty once an "
	  "operator set it with role rule\n  set), \"presets\" the presets "
	  "the role still has rules of." },
	{ "role", "member add", "role.member.add", { "role" },
	  { { "--match", "match", O_STR, false },
	  { "--value", "value", O_STR, true },
	  { "--issuer", "issuer", O_STR, false },
	  { "--any-issuer", "any_issuer", O_BOOL, false } }, OUT_OBJ, NULL,
	  "role member add ROLE [--match serial|dn|cn|fingerprint] --value V "
	  "[--issuer DN | --any-issuer]\n"
	  "  Adds a member: the client certificates that match it get the "
	  "role.\n"
	  "    serial       (default) V is the serial number in hex (colons "
	  "and\n"
	  "                 leading zeros allowed) and --issuer the issuer's "
	  "DN\n"
	  "                 (required: serials are unique per issuer only)\n"
	  "    dn           V is the subject DN, e.g. \"CN=va1,O=Example,"
	  "C=SE\",\n"
	  "                 and --issuer its CA's DN; --any-issuer matches "
	  "that\n"
	  "                 subject from every trusted CA (role show says "
	  "which)\n"
	  "    cn           V is the subject's common name, exactly\n"
	  "    fingerprint  V is the SHA-256 of the certificate (64 hex "
	  "digits)\n"
	  "  DNs are RFC 4514 strings and compare as RFC 5280 says (case and"
	  "\n  repeated spaces do not matter)." },
	{ "role", "member remove", "role.member.remove", { "role" },
	  { { "--match", "match", O_STR, false },
	  { "--value", "value", O_STR, true },
	  { "--issuer", "issuer", O_STR, false },
	  { "--any-issuer", "any_issuer", O_BOOL, false } }, OUT_OBJ, NULL,
	  "role member remove ROLE [--match serial|dn|cn|fingerprint] "
	  "--value V [--issuer DN | --any-issuer]\n"
	  "  Removes a member, given as it was added (see role show)." },
	{ "role", "rule set", "role.rule.set", { "role", "path", "action" },
	  { { "--recursive", "recursive", O_BOOL, false } }, OUT_OBJ, NULL,
	  "role rule set ROLE PATH allow|deny [--recursive]\n"
	  "  Sets (adds or replaces) the role's access rule for PATH, e.g.\n"
	  "  /peerincoming, /peerpublish/writecert, /ca/ManagementCA.\n"
	  "  --recursive makes the rule cover the paths below PATH too\n"
	  "  (/ca/Foo covers /ca/Foo/x, never /ca/FooBar). A path is allowed"
	  "\n  when an allow rule covers it and no deny rule does: deny wins,\n"
	  "  and no rule means deny. Every peer request needs /peerincoming."
	},
	{ "role", "rule remove", "role.rule.remove", { "role", "path" },
	  { { NULL } }, OUT_OBJ, NULL,
	  "role rule remove ROLE PATH\n  Removes the role's rule for PATH." },
	{ "peer", "incoming list", "peer.incoming.list", { NULL }, { { NULL } },
	  OUT_TABLE, "id,subject,issuer,serial,count,last_seen,role",
	  "peer incoming list\n"
	  "  Lists the peers that connected with a trusted client "
	  "certificate,\n"
	  "  most recent first, with the role they matched (empty: none, so "
	  "they\n"
	  "  were refused). --json shows fingerprints, addresses and first "
	  "seen." },
	{ "peer", "incoming authorize", "peer.incoming.authorize", { "id" },
	  { { "--new-role", "new_role", O_STR, false },
	  { "--rules", "preset", O_STR, false },
	  { "--role", "role", O_STR, false },
	  { "--match", "match", O_STR, false } }, OUT_OBJ, NULL,
	  "peer incoming authorize ID --new-role NAME [--rules PRESET[,...]]"
	  "\n"
	  "          [--match M] | --role NAME [--match M]\n"
	  "  Lets the peer of incoming connection ID (see peer incoming list)"
	  "\n  in: creates role NAME with a preset of rules, or adds the peer "
	  "to\n  an existing role. Presets (default ping; several, comma "
	  "separated,\n  give the union of their rules), for the CA's "
	  "certificate:\n"
	  "    va       on a VA: publish certificates and CRLs, sync; every "
	  "CA\n"
	  "    ra       on an RA: fetch requests over long-hanging "
	  "connections;\n"
	  "             every CA\n"
	  "    renewal  on a VA or signer: renew key bindings (CSRs, new "
	  "keys)\n"
	  "    ping     ping and info only\n"
	  "  --match picks what identifies the peer: serial (default: issuer"
	  "\n  and serial number), dn, cn or fingerprint. Narrow /ca/ to the "
	  "CAs\n  the peer serves with role rule set / role rule remove." },
	{ NULL },
};
