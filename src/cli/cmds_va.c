#include <stddef.h>

#include "cli/cli_int.h"

const struct cmd cli_cmds_va[] = {
	{ "va", "set", "va.set", { "key", "value" }, { { NULL } }, OUT_OBJ,
	  NULL, "va set non_issued unknown|revoked\n"
	  "va set response_validity SECONDS\n"
	  "  non_issued: what OCSP says for a serial of a known issuer that "
	  "the\n  VA has no entry for: unknown (the default; never good) or "
	  "revoked\n  (RFC 6960 2.2: certificateHold, revoked at 1970-01-01, "
	  "with the\n  extended revoked definition).\n"
	  "  response_validity: how long a pre-signed response is valid, 60 "
	  "to\n  604800 seconds (default 3600). Either drops the cached "
	  "responses." },
	{ "va", "status", "va.status", { NULL }, { { NULL } }, OUT_OBJ, NULL,
	  "va status\n"
	  "  The issuers the VA answers for, with their entries per status "
	  "and\n  latest CRL (number, next update), the settings, the "
	  "response cache\n  size and what the CAs published and had refused."
	  },
	{ "va", "cert list", "va.cert.list", { NULL },
	  { { "--issuer", "issuer", O_STR, false },
	  { "--status", "status", O_STR, false },
	  { "--limit", "limit", O_INT, false } }, OUT_TABLE,
	  "issuer,serial,status,seq,subject",
	  "va cert list [--issuer NAME] [--status good|revoked|hold] "
	  "[--limit N]\n"
	  "  The certificate entries the CAs published, by issuer and serial;"
	  "\n  at most N (default 100, at most 10000)." },
	{ "va", "cert show", "va.cert.show", { NULL },
	  { { "--issuer", "issuer", O_STR, true },
	  { "--serial", "serial", O_STR, true } }, OUT_OBJ, NULL,
	  "va cert show --issuer NAME --serial HEX\n"
	  "  One entry: status, revocation time and reason, validity, "
	  "fingerprint,\n  subject, the CA's update sequence, whether the "
	  "certificate is stored.\n  HEX in any case, leading zeros and "
	  "colons allowed." },
	{ NULL },
};
