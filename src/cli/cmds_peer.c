#include <stddef.h>

#include "cli/cli_int.h"

const struct cmd cli_cmds_peer[] = {
	{ "peer", "status", "peer.status", { NULL }, { { NULL } }, OUT_OBJ,
	  NULL, "peer status\n"
	  "  The peer listener's address, whether incoming and outgoing peer\n"
	  "  connections are enabled, and the listener's key binding." },
	{ "peer", "incoming enable", "peer.incoming.enable", { NULL },
	  { { NULL } }, OUT_OBJ, NULL, "peer incoming enable\n"
	  "  Accepts peer requests (they are refused by default)." },
	{ "peer", "incoming disable", "peer.incoming.disable", { NULL },
	  { { NULL } }, OUT_OBJ, NULL, "peer incoming disable\n"
	  "  Refuses every peer request; the TLS handshake still completes\n"
	  "  and clients are still listed in `peer incoming list`." },
	{ "peer", "incoming keybinding", "peer.incoming.keybinding",
	  { "keybinding" }, { { NULL } }, OUT_OBJ, NULL,
	  "peer incoming keybinding NAME\n"
	  "  Uses key binding NAME as the peer listener's TLS server identity;"
	  "\n  new connections get it at once, without a restart." },
	{ "peer", "outgoing enable", "peer.outgoing.enable", { NULL },
	  { { NULL } }, OUT_OBJ, NULL, "peer outgoing enable" },
	{ "peer", "outgoing disable", "peer.outgoing.disable", { NULL },
	  { { NULL } }, OUT_OBJ, NULL, "peer outgoing disable\n"
	  "  Stops every connector from opening or using connections." },
	{ "peer", "connector add", "peer.connector.add", { "name" },
	  { { "--url", "url", O_STR, true }, { "--auth", "auth", O_STR, true },
	  { "--max", "max", O_INT, false } }, OUT_OBJ, NULL,
	  "peer connector add NAME --url https://HOST:PORT/peer/v1 "
	  "--auth KEYBINDING [--max N]\n"
	  "  A connection to a remote node: KEYBINDING is the client "
	  "certificate\n  and key this node presents; the remote's server "
	  "certificate must\n  verify against `trust list` and name HOST. "
	  "Pool of at most N\n  keep-alive connections (default 4)." },
	{ "peer", "connector edit", "peer.connector.edit", { "name" },
	  { { "--url", "url", O_STR, false }, { "--auth", "auth", O_STR,
	  false }, { "--max", "max", O_INT, false },
	  { "--check-every", "check_every", O_INT, false } }, OUT_OBJ, NULL,
	  "peer connector edit NAME [--url URL] [--auth KEYBINDING] "
	  "[--max N]\n    [--check-every SECONDS]\n"
	  "  --check-every: compare 1000 certificates at random with the "
	  "VA behind\n  NAME that often (peer sync check); a drift shows "
	  "in `peer connector\n  list` (CHECK) and the log. 0 turns it "
	  "off." },
	{ "peer", "connector clone", "peer.connector.clone",
	  { "name", "new_name" }, { { NULL } }, OUT_OBJ, NULL,
	  "peer connector clone NAME NEW_NAME" },
	{ "peer", "connector delete", "peer.connector.delete", { "name" },
	  { { NULL } }, OUT_OBJ, NULL, "peer connector delete NAME" },
	{ "peer", "connector enable", "peer.connector.enable", { "name" },
	  { { NULL } }, OUT_OBJ, NULL, "peer connector enable NAME" },
	{ "peer", "connector disable", "peer.connector.disable", { "name" },
	  { { NULL } }, OUT_OBJ, NULL, "peer connector disable NAME" },
	{ "peer", "connector list", "peer.connector.list", { NULL },
	  { { NULL } }, OUT_TABLE, "name,url,state,in_use,ready,max,queued,"
	  "sync,check,tls_peer", "peer connector list\n"
	  "  Pool status: IN-USE/READY/MAX/QUEUED connections and the "
	  "server\n  certificate last seen (TLS-PEER); SYNC the state of "
	  "the last `peer sync`\n  to it, CHECK the last staleness check "
	  "(DRIFT: the VA differs)." },
	{ "peer", "ping", "peer.ping", { "name" },
	  { { "--count", "count", O_INT, false }, { "--parallel", "parallel",
	  O_INT, false } }, OUT_OBJ, NULL,
	  "peer ping NAME [--count N] [--parallel P]\n"
	  "  Application round trips through the connector's pool: each "
	  "ping says\n  whether its connection was new with a full "
	  "handshake (full), new and\n  resumed (resumed) or an open "
	  "keep-alive one (reused)." },
	{ "peer", "reset", "peer.reset", { "name" }, { { NULL } }, OUT_OBJ,
	  NULL, "peer reset NAME\n"
	  "  Drops the connector's pool and re-reads its key binding (a "
	  "renewed\n  client certificate is used only after a reset)." },
	{ NULL },
};
