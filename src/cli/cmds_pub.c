#include <stddef.h>

#include "cli/cli_int.h"

const struct cmd cli_cmds_pub[] = {
	{ "publisher", "add", "publisher.add", { "name" },
	  { { "--connector", "connector", O_STR, true },
	  { "--ca", "cas", O_LIST, false },
	  { "--only-revoked", "only_revoked", O_BOOL, false },
	  { "--no-der", "no_der", O_BOOL, false },
	  { "--no-crls", "no_crls", O_BOOL, false } }, OUT_OBJ, NULL,
	  "publisher add NAME --connector C [--ca CA ...] [--only-revoked] "
	  "[--no-der]\n    [--no-crls]\n"
	  "  Publishes the changes of the named CAs (default: every CA) to "
	  "a VA\n  through peer connector C: CA certificates, issued "
	  "certificates and\n  their status, CRLs. --only-revoked sends no "
	  "newly issued (good)\n  certificates, only status changes; "
	  "--no-der sends no certificate\n  DER (status only); --no-crls "
	  "sends no CRLs. Each covered CA's\n  certificate is queued "
	  "first." },
	{ "publisher", "edit", "publisher.edit", { "name" },
	  { { "--connector", "connector", O_STR, false },
	  { "--ca", "cas", O_LIST, false },
	  { "--all-cas", "all_cas", O_BOOL, false },
	  { "--only-revoked", "only_revoked", O_BOOL, false },
	  { "--all-certs", "all_certs", O_BOOL, false },
	  { "--no-der", "no_der", O_BOOL, false },
	  { "--der", "der", O_BOOL, false },
	  { "--no-crls", "no_crls", O_BOOL, false },
	  { "--crls", "crls", O_BOOL, false } }, OUT_OBJ, NULL,
	  "publisher edit NAME [--connector C] [--ca CA ... | --all-cas]\n"
	  "    [--only-revoked | --all-certs] [--no-der | --der] "
	  "[--no-crls | --crls]\n"
	  "  Changes what is left unnamed stays. Queued items keep what "
	  "they\n  captured; CAs newly covered get their certificate "
	  "queued." },
	{ "publisher", "delete", "publisher.delete", { "name" },
	  { { NULL } }, OUT_OBJ, NULL, "publisher delete NAME\n"
	  "  Deletes the publisher and drops its queue (DROPPED: items "
	  "never\n  delivered)." },
	{ "publisher", "list", "publisher.list", { NULL }, { { NULL } },
	  OUT_TABLE, "name,connector,queue,oldest_age,delivered,failing,"
	  "next_retry,last_error", "publisher list\n"
	  "  Per publisher: queue depth, age of the oldest item (seconds), "
	  "items\n  delivered, items failing (tried at least once), the "
	  "oldest failing\n  item's error and the seconds until its next "
	  "try." },
	{ "publisher", "show", "publisher.show", { "name" }, { { NULL } },
	  OUT_OBJ, NULL, "publisher show NAME" },
	{ "publisher", "queue", "publisher.queue", { "name" },
	  { { "--limit", "limit", O_INT, false } }, OUT_TABLE,
	  "seq,kind,ca,serial,status,attempts,next_try,last_error",
	  "publisher queue NAME [--limit N]\n"
	  "  The items waiting, oldest first (default 100): SEQ is the "
	  "update\n  sequence the VA receives, NEXT-TRY when it is due "
	  "(seconds since\n  the epoch, 0: now)." },
	{ "publisher", "retry", "publisher.retry", { "name" }, { { NULL } },
	  OUT_OBJ, NULL, "publisher retry NAME\n"
	  "  Makes every failed item due now." },
	{ "publisher", "republish", "publisher.republish", { "name" },
	  { { "--ca", "ca", O_STR, false } }, OUT_OBJ, NULL,
	  "publisher republish NAME [--ca CA]\n"
	  "  Queues each covered CA's certificate (or only CA's), then "
	  "every\n  certificate it issued with its current status, in one "
	  "transaction." },
	{ "peer", "sync start", "peer.sync.start", { "connector" },
	  { { "--ca", "cas", O_LIST, false },
	  { "--subset", "subset", O_STR, false },
	  { "--since", "since", O_STR, false },
	  { "--batch", "batch", O_INT, false },
	  { "--restart", "restart", O_BOOL, false } }, OUT_OBJ, NULL,
	  "peer sync start CONNECTOR [--ca CA ...] [--subset all|active|"
	  "revoked]\n    [--since YYYY-MM-DD[THH:MM:SSZ]] [--batch N] "
	  "[--restart]\n"
	  "  Synchronizes the VA behind CONNECTOR with this CA in the "
	  "background:\n  every certificate of the CAs named (default: "
	  "all) in the subset\n  (active: not revoked, not expired) issued "
	  "since the date is compared\n  with the VA's entry "
	  "(publish/readcerts) and pushed if the VA lacks it\n  or holds "
	  "it differently, in batches of N (default 2000). An\n  "
	  "interrupted or stopped sync resumes where it was, unless "
	  "--restart.\n  One sync per connector at a time." },
	{ "peer", "sync stop", "peer.sync.stop", { "connector" },
	  { { NULL } }, OUT_OBJ, NULL, "peer sync stop CONNECTOR\n"
	  "  Stops the sync after its current batch (state stopped; start "
	  "resumes)." },
	{ "peer", "sync status", "peer.sync.status", { "?connector" },
	  { { "--watch", "watch", O_BOOL, false } }, OUT_OBJ, NULL,
	  "peer sync status [CONNECTOR] [--watch]\n"
	  "  State (running, done, stopped, interrupted, failed), entries "
	  "total,\n  checked, pushed and failed, rate (entries/s) and ETA "
	  "(seconds).\n  --watch: again every second until the sync ends "
	  "(a progress bar on\n  a terminal, one line per second "
	  "otherwise)." },
	{ "peer", "sync check", "peer.sync.check", { "connector" },
	  { { "--sample", "sample", O_INT, false },
	  { "--all", "all", O_BOOL, false } }, OUT_OBJ, NULL,
	  "peer sync check CONNECTOR [--sample N | --all]\n"
	  "  Compares N certificates at random (default 1000, at most "
	  "2000), or all\n  of them, with the VA's entries and says how "
	  "many are missing or differ;\n  pushes nothing. DRIFTED: run "
	  "`peer sync start`." },
	{ "peer", "sync report", "peer.sync.report", { "connector" },
	  { { NULL } }, OUT_YAML, NULL, "peer sync report CONNECTOR\n"
	  "  The entries the last sync could not synchronize, as YAML: "
	  "implementation,\n  creationDate, failureCount, then per entry "
	  "fingerprint, subjectDn,\n  issuerDn, errorType, errorMessage." },
	{ NULL },
};
