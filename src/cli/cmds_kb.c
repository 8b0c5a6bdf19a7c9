#include <stddef.h>

#include "cli/cli_int.h"

const struct cmd cli_cmds_kb[] = {
	{ "keybinding", "create", "keybinding.create", { "name" },
	  { { "--token", "token", O_STR, true }, { "--key", "key", O_STR,
	  true }, { "--type", "type", O_STR, false } }, OUT_OBJ, NULL,
	  "keybinding create NAME --token TOKEN --key ALIAS [--type auth|ocsp]\n"
	  "  Binds a key of a crypto token to a name, as the node's TLS "
	  "identity\n  toward peers (auth) or a VA's OCSP signer (ocsp). Make the key first (token genkey); a CA's "
	  "signing key\n  cannot be used. Then: keybinding csr, have the CSR "
	  "issued,\n  keybinding install-cert." },
	{ "keybinding", "csr", "keybinding.csr", { "name" },
	  { { "--dn", "dn", O_STR, false }, { "--san", "sans", O_LIST,
	  false } }, OUT_PEM, NULL,
	  "keybinding csr NAME [--dn DN] [--san DNS:name|IP:addr ...]\n"
	  "  Prints a PKCS#10 request (PEM) signed by the binding's key; the "
	  "token\n  must be active. DN is RFC 4514 (default \"CN=NAME\"); "
	  "repeat --san for\n  each subjectAltName (a TLS server certificate "
	  "needs at least one):\n    sallyport keybinding csr va1 --dn "
	  "\"CN=va1,O=Example\" \\\n"
	  "        --san DNS:va1.example.com --san IP:192.0.2.10 > va1.csr" },
	{ "keybinding", "install-cert", "keybinding.install-cert", { "name" },
	  { { "--cert", "cert", O_FILE, true }, { "--chain", "chain", O_FILE,
	  false } }, OUT_OBJ, NULL,
	  "keybinding install-cert NAME --cert FILE [--chain FILE]\n"
	  "  Installs the certificate issued for the binding's key (PEM or DER;"
	  "\n  further PEM certificates in FILE count as chain). --chain is a "
	  "PEM\n  bundle of the issuing CAs; it must verify the certificate up "
	  "to a\n  self-signed root in the bundle or a trusted CA. Refused if "
	  "the\n  certificate is for another key, expired or not yet valid." },
	{ "keybinding", "list", "keybinding.list", { NULL }, { { NULL } },
	  OUT_TABLE, "name,type,token,key,status,subject,not_after",
	  "keybinding list\n"
	  "  STATUS: active, no_certificate, token_inactive, expired,\n"
	  "  not_yet_valid, key_missing (key deleted or replaced)." },
	{ "keybinding", "show", "keybinding.show", { "name" }, { { NULL } },
	  OUT_SHOW, NULL,
	  "keybinding show NAME\n"
	  "  Shows the binding, then its certificate and chain (PEM)." },
	{ "trust", "add", "trust.add", { "@cert" },
	  { { "--cert", "cert", O_FILE, false } }, OUT_TABLE,
	  "status,fingerprint,subject,not_after",
	  "trust add FILE (or --cert FILE)\n"
	  "  Trusts the CA certificates in FILE (PEM, one or more; or one DER) "
	  "to\n  verify peers. Only CA certificates (basicConstraints CA:TRUE) "
	  "are\n  accepted; a trusted sub CA anchors by itself. Certificates "
	  "already\n  trusted are reported, not refused." },
	{ "trust", "list", "trust.list", { NULL }, { { NULL } }, OUT_TABLE,
	  "fingerprint,subject,not_after", "trust list" },
	{ "trust", "crl", "trust.crl", { "@crl" }, { { NULL } }, OUT_OBJ, NULL,
	  "trust crl FILE\n"
	  "  Installs the CRL (PEM or DER) of a trusted CA, replacing an older"
	  "\n  one. Once CRLs are installed, a peer whose certificate is "
	  "revoked,\n  or whose issuer has no current CRL, is refused (fail "
	  "closed):\n  keep them fresh." },
	{ "trust", "crls", "trust.crls", { NULL }, { { NULL } }, OUT_TABLE,
	  "issuer,number,next_update", "trust crls" },
	{ "trust", "remove", "trust.remove", { "fingerprint" },
	  { { "--drop-crl", "drop_crl", O_BOOL, false } }, OUT_OBJ, NULL,
	  "trust remove FINGERPRINT [--drop-crl]\n"
	  "  Stops trusting a CA certificate (SHA-256 fingerprint as trust "
	  "list\n  shows it; colons allowed). Its installed CRL is kept, so "
	  "trusting\n  it again keeps revoked peers out; --drop-crl removes "
	  "it too. The\n  reply says which (crl: kept, removed or none)." },
	{ NULL },
};
