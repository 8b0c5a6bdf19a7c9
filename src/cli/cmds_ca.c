#include <stddef.h>

#include "cli/cli_int.h"

const struct cmd cli_cmds_ca[] = {
	{ "status", NULL, "status", { NULL }, { { NULL } }, OUT_OBJ, NULL,
	  "status\n  Shows the node's name, version and what it holds." },
	{ "token", "create", "token.create", { "name" },
	  { { "--pin", "pin", O_STR, false }, { "--pin-file", "pin", O_PINFILE,
	  false } }, OUT_OBJ, NULL,
	  "token create NAME --pin PIN | --pin-file FILE\n"
	  "  Creates a soft crypto token protected by PIN (4..256 characters)."
	  "\n  The new token is active." },
	{ "token", "activate", "token.activate", { "name" },
	  { { "--pin", "pin", O_STR, false }, { "--pin-file", "pin", O_PINFILE,
	  false } }, OUT_OBJ, NULL,
	  "token activate NAME --pin PIN | --pin-file FILE\n"
	  "  Unlocks the token's keys until deactivate or node restart." },
	{ "token", "deactivate", "token.deactivate", { "name" }, { { NULL } },
	  OUT_OBJ, NULL, "token deactivate NAME\n"
	  "  Forgets the PIN and keys; the token's CAs stop signing." },
	{ "token", "list", "token.list", { NULL }, { { NULL } }, OUT_TABLE,
	  "name,active,keys", "token list" },
	{ "token", "genkey", "token.genkey", { "token", "alias" },
	  { { "--alg", "alg", O_STR, true } }, OUT_OBJ, NULL,
	  "token genkey TOKEN ALIAS --alg ec-p256|ec-p384|rsa2048|rsa3072|"
	  "rsa4096|ed25519\n  Generates a key pair in an active token." },
	{ "token", "delkey", "token.delkey", { "token", "alias" }, { { NULL } },
	  OUT_OBJ, NULL, "token delkey TOKEN ALIAS\n"
	  "  Deletes a key no CA uses." },
	{ "ca", "create", "ca.create", { "name" },
	  { { "--dn", "dn", O_STR, true }, { "--token", "token", O_STR, true },
	  { "--key", "key", O_STR, true },
	  { "--signed-by", "signed_by", O_STR, false },
	  { "--validity", "validity_days", O_INT, false },
	  { "--profile", "profile", O_STR, false },
	  { "--crl-period", "crl_period", O_INT, false } }, OUT_OBJ, NULL,
	  "ca create NAME --dn DN --token TOKEN --key ALIAS [--signed-by CA]\n"
	  "          [--validity DAYS] [--profile PROFILE] "
	  "[--crl-period SECONDS]\n"
	  "  Creates a root CA (self-signed), or a sub CA signed by another CA"
	  "\n  on this node. DN is RFC 4514: \"CN=Issuing CA,O=Example,C=SE\"."
	  "\n  Profile defaults to ROOTCA or SUBCA; CRLs are made every "
	  "--crl-period\n  seconds (default 86400), the first one right "
	  "away." },
	{ "ca", "list", "ca.list", { NULL }, { { NULL } }, OUT_TABLE,
	  "name,issuer,subject,not_after", "ca list" },
	{ "ca", "show", "ca.show", { "name" }, { { NULL } }, OUT_OBJ, NULL,
	  "ca show NAME" },
	{ "ca", "cert", "ca.cert", { "name" },
	  { { "--chain", "chain", O_BOOL, false } }, OUT_PEM, NULL,
	  "ca cert NAME [--chain]\n"
	  "  Prints the CA certificate (PEM); --chain adds its issuers up to "
	  "the root." },
	{ "profile", "list", "profile.list", { NULL }, { { NULL } }, OUT_TABLE,
	  "name,builtin,ca,validity_days", "profile list" },
	{ "profile", "show", "profile.show", { "name" }, { { NULL } }, OUT_OBJ,
	  NULL, "profile show NAME" },
	{ "profile", "create", "profile.create", { "name" },
	  { { "--from", "from", O_STR, true }, { "--set", "sets", O_LIST,
	  false } }, OUT_OBJ, NULL,
	  "profile create NAME --from PROFILE [--set key=value ...]\n"
	  "  Copies a profile and changes it. Keys: validity_days, key_algs,\n"
	  "  key_usage, key_usage_critical, ext_key_usage, ca, path_len,\n"
	  "  san_types, san_required, crl_dp, ocsp_url, ocsp_nocheck,\n"
	  "  subject_max_attrs, subject_max_len; lists are comma separated\n"
	  "  (--set key_algs=ec-p256,rsa3072)." },
	{ "profile", "edit", "profile.edit", { "name" },
	  { { "--set", "sets", O_LIST, true } }, OUT_OBJ, NULL,
	  "profile edit NAME --set key=value ...\n"
	  "  Changes an operator profile (built-in ones are read-only)." },
	{ "cert", "issue", "cert.issue", { NULL },
	  { { "--ca", "ca", O_STR, true }, { "--profile", "profile", O_STR,
	  true }, { "--csr", "csr", O_FILE, true },
	  { "--days", "days", O_INT, false } }, OUT_CERT, NULL,
	  "cert issue --ca CA --profile PROFILE --csr FILE [--days N]\n"
	  "  Issues a certificate for a PKCS#10 request (PEM or DER) and "
	  "prints it (PEM)." },
	{ "cert", "revoke", "cert.revoke", { NULL },
	  { { "--ca", "ca", O_STR, true }, { "--serial", "serial", O_STR,
	  true }, { "--reason", "reason", O_STR, false } }, OUT_OBJ, NULL,
	  "cert revoke --ca CA --serial HEX [--reason REASON]\n"
	  "  REASON (RFC 5280): unspecified, keyCompromise, cACompromise,\n"
	  "  affiliationChanged, superseded, cessationOfOperation,\n"
	  "  certificateHold, privilegeWithdrawn, aACompromise; removeFromCRL"
	  "\n  lifts a certificateHold." },
	{ "cert", "unrevoke", "cert.unrevoke", { NULL },
	  { { "--ca", "ca", O_STR, true }, { "--serial", "serial", O_STR,
	  true } }, OUT_OBJ, NULL,
	  "cert unrevoke --ca CA --serial HEX\n  Lifts a certificateHold." },
	{ "cert", "list", "cert.list", { NULL },
	  { { "--ca", "ca", O_STR, false }, { "--status", "status", O_STR,
	  false }, { "--limit", "limit", O_INT, false } }, OUT_TABLE,
	  "ca,serial,status,subject,not_after",
	  "cert list [--ca CA] [--status active|revoked|reserved|failed] "
	  "[--limit N]" },
	{ "cert", "show", "cert.show", { NULL },
	  { { "--ca", "ca", O_STR, true }, { "--serial", "serial", O_STR,
	  true } }, OUT_SHOW, NULL, "cert show --ca CA --serial HEX" },
	{ "crl", "create", "crl.create", { NULL },
	  { { "--ca", "ca", O_STR, true } }, OUT_OBJ, NULL,
	  "crl create --ca CA\n  Makes a new CRL now." },
	{ "crl", "get", "crl.get", { NULL },
	  { { "--ca", "ca", O_STR, true }, { "--der", "der", O_BOOL, false } },
	  OUT_CRL, NULL, "crl get --ca CA [--der]\n"
	  "  Prints the latest CRL, PEM or (--der) DER." },
	{ "audit", "verify", "audit.verify", { NULL }, { { NULL } }, OUT_OBJ,
	  NULL, "audit verify\n"
	  "  Recomputes the audit log's hash chain; fails if a row was "
	  "changed,\n  inserted or deleted." },
	{ "audit", "list", "audit.list", { NULL },
	  { { "--limit", "limit", O_INT, false } }, OUT_TABLE,
	  "seq,time,event,actor", "audit list [--limit N]" },
	{ NULL },
};
