#!/usr/bin/env bash
# The Sallyport demonstration: one node, a root CA and a sub CA, a TLS
# server certificate from an `openssl req` CSR, verified by OpenSSL,
# revoked, and listed on the CRL. Narrates each step in one line.
set -euo pipefail

SP=${1:-build/sallyport}
SP=$(realpath "$SP")
WORK=$(mktemp -d /tmp/sallyport-demo.XXXXXX)
NODE=$WORK/ca-node
VA=$WORK/va-node
PID=
VAPID=

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
sp() { echo "\$ sallyport $*" >&2; "$SP" -d "$NODE" "$@"; }
va() { echo "\$ sallyport (va) $*" >&2; "$SP" -d "$VA" "$@"; }
cleanup() {
	for p in $PID $VAPID; do
		if kill -0 "$p" 2>/dev/null; then
			kill -TERM "$p"
			wait "$p" || true
		fi
	done
	rm -rf "$WORK"
}
wait_up() {
	for _ in $(seq 1 100); do
		"$SP" -d "$1" status >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "node in $1 did not start" >&2
	return 1
}
trap cleanup EXIT

step "Create a node directory (config file + SQLite database) in $NODE"
"$SP" init "$NODE" --name demo-ca

step "Start the node in the background; it listens on $NODE/admin.sock"
"$SP" run "$NODE" 2>"$WORK/node.log" &
PID=$!
wait_up "$NODE"
sp status

step "Create a soft crypto token; its keys are stored encrypted under the PIN"
# The PIN comes from a 0600 file: on the command line (--pin) every local
# user could read it in /proc.
(umask 077; printf '%s\n' demo-pin-1234 >"$WORK/ca.pin")
sp token create DemoToken --pin-file "$WORK/ca.pin"

step "Generate an EC P-384 key for the root CA and a P-256 key for the sub CA"
sp token genkey DemoToken root-key --alg ec-p384
sp token genkey DemoToken sub-key --alg ec-p256

step "Create the root CA (self-signed) and a sub CA signed by it"
sp ca create DemoRoot --dn "CN=Demo Root CA,O=Sallyport Demo,C=SE" \
    --token DemoToken --key root-key
sp ca create DemoIssuing --dn "CN=Demo Issuing CA,O=Sallyport Demo,C=SE" \
    --token DemoToken --key sub-key --signed-by DemoRoot
sp ca list

step "Make a key and CSR for www.example.com with openssl req"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$WORK/www.key" -subj "/CN=www.example.com" \
    -addext "subjectAltName=DNS:www.example.com,DNS:example.com" \
    -out "$WORK/www.csr" 2>/dev/null
echo "wrote $WORK/www.csr"

step "Issue a TLS server certificate from the CSR with the TLS_SERVER profile"
sp cert issue --ca DemoIssuing --profile TLS_SERVER --csr "$WORK/www.csr" \
    >"$WORK/www.pem"
openssl x509 -in "$WORK/www.pem" -noout -subject -issuer -serial -ext \
    subjectAltName,keyUsage,extendedKeyUsage

step "Verify it with openssl verify against the root, via the sub CA"
sp ca cert DemoRoot >"$WORK/root.pem"
sp ca cert DemoIssuing >"$WORK/issuing.pem"
openssl verify -CAfile "$WORK/root.pem" -untrusted "$WORK/issuing.pem" \
    "$WORK/www.pem"

step "A CSR the profile forbids is refused with the rule that stopped it"
openssl req -new -newkey ed25519 -nodes -keyout "$WORK/bad.key" \
    -subj "/CN=bad.example.com" -out "$WORK/bad.csr" 2>/dev/null
sp cert issue --ca DemoIssuing --profile TLS_SERVER --csr "$WORK/bad.csr" \
    || echo "(refused, as it should be)"

step "Revoke the certificate (keyCompromise) and make a new CRL"
SERIAL=$(openssl x509 -in "$WORK/www.pem" -noout -serial | cut -d= -f2)
sp cert revoke --ca DemoIssuing --serial "$SERIAL" --reason keyCompromise
sp crl create --ca DemoIssuing

step "The CRL lists it, and openssl verify -crl_check now rejects it"
sp crl get --ca DemoIssuing >"$WORK/issuing.crl"
openssl crl -in "$WORK/issuing.crl" -noout -text | sed -n '1,20p'
cat "$WORK/root.pem" "$WORK/issuing.pem" >"$WORK/chain.pem"
if openssl verify -crl_check -CRLfile "$WORK/issuing.crl" \
    -CAfile "$WORK/chain.pem" "$WORK/www.pem"; then
	echo "unexpected: revoked certificate verified" >&2
	exit 1
fi
echo "(rejected: certificate revoked)"

step "Every step above is in the hash-chained audit log"
sp audit list --limit 20
sp audit verify

step "Second node: a VA node with a peer listener and an OCSP/CRL listener"
OPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$SP" init "$VA" --name demo-va --peer-listen 127.0.0.1:0 \
    --va-listen "127.0.0.1:$OPORT"
"$SP" run "$VA" 2>"$WORK/va.log" &
VAPID=$!
wait_up "$VA"
PORT=$("$SP" -d "$VA" --json peer status | sed -n 's/.*"listen": "127.0.0.1:\([0-9]*\)".*/\1/p')
va peer status

step "The CA node gets a Management CA that issues the nodes' TLS identities"
sp token genkey DemoToken mgmt-key --alg ec-p256
sp ca create ManagementCA --dn "CN=Demo Management CA,O=Sallyport Demo,C=SE" \
    --token DemoToken --key mgmt-key
sp ca cert ManagementCA >"$WORK/mgmt.pem"

step "VA node: a key and CSR for its TLS server identity (a key binding)"
(umask 077; printf '%s\n' va-pin-1234 >"$WORK/va.pin")
va token create VAToken --pin-file "$WORK/va.pin"
va token genkey VAToken tls --alg ec-p256
va keybinding create va-tls --token VAToken --key tls
va keybinding csr va-tls --dn "CN=demo-va,O=Sallyport Demo" --san IP:127.0.0.1 \
    >"$WORK/va-tls.csr"

step "CA node: the operator issues it on the Management CA (TLS_SERVER)"
sp cert issue --ca ManagementCA --profile TLS_SERVER --csr "$WORK/va-tls.csr" \
    >"$WORK/va-tls.pem"

step "VA node: install it, trust the Management CA, serve peers with it"
va keybinding install-cert va-tls --cert "$WORK/va-tls.pem" --chain "$WORK/mgmt.pem"
va trust add --cert "$WORK/mgmt.pem"
va peer incoming keybinding va-tls

step "CA node: its own TLS client identity, issued the same way (TLS_CLIENT)"
sp token genkey DemoToken ca-tls-key --alg ec-p256
sp keybinding create ca-tls --token DemoToken --key ca-tls-key
sp keybinding csr ca-tls --dn "CN=demo-ca,O=Sallyport Demo" >"$WORK/ca-tls.csr"
sp cert issue --ca ManagementCA --profile TLS_CLIENT --csr "$WORK/ca-tls.csr" \
    --days 365 >"$WORK/ca-tls.pem"
sp keybinding install-cert ca-tls --cert "$WORK/ca-tls.pem" --chain "$WORK/mgmt.pem"
sp trust add --cert "$WORK/mgmt.pem"

step "CA node: a Peer Connector to the VA; the CA opens every connection"
sp peer connector add demo-va --url "https://127.0.0.1:$PORT/peer/v1" --auth ca-tls --max 4

step "First ping: the VA refuses, incoming peer connections are off by default"
sp peer ping demo-va || echo "(refused, as it should be)"

step "VA node: enable incoming; the CA is now known but has no role"
va peer incoming enable
sp peer ping demo-va || echo "(refused: no role yet)"
va peer incoming list

step "VA node: authorize the CA's certificate with a new role (VA preset)"
ID=$("$SP" -d "$VA" --json peer incoming list | sed -n 's/.*"id": \([0-9]*\).*/\1/p' | head -1)
va peer incoming authorize "$ID" --new-role DemoCA --rules va

step "Ping now succeeds; after a reset the first authenticates fully, later ones reuse"
sp peer reset demo-va
sp peer ping demo-va --count 5
sp peer connector list

step "VA node: an OCSP signing key binding; DemoIssuing issues it (OCSPSIGNER)"
va token genkey VAToken ocsp --alg ec-p256
va keybinding create ocsp-signer --token VAToken --key ocsp --type ocsp
va keybinding csr ocsp-signer --dn "CN=Demo OCSP Signer,O=Sallyport Demo" \
    >"$WORK/ocsp.csr"
sp cert issue --ca DemoIssuing --profile OCSPSIGNER --csr "$WORK/ocsp.csr" \
    >"$WORK/ocsp.pem"
va keybinding install-cert ocsp-signer --cert "$WORK/ocsp.pem" \
    --chain "$WORK/chain.pem"

step "CA node: a publisher; both CAs' certificates and CRLs go to the VA"
sp publisher add demo-va --connector demo-va --ca DemoRoot --ca DemoIssuing
sp publisher republish demo-va
ocsp() {
	openssl ocsp -issuer "$WORK/issuing.pem" "$@" \
	    -url "http://127.0.0.1:$OPORT/ocsp" -CAfile "$WORK/chain.pem" \
	    -no_nonce 2>&1
}
# Wait for a status (the queue is delivered in the background).
wait_status() {
	for _ in $(seq 1 100); do
		if ocsp "${@:2}" | grep -q ": $1\$"; then
			ocsp "${@:2}"
			return 0
		fi
		sleep 0.05
	done
	ocsp "${@:2}"
	"$SP" -d "$NODE" publisher queue demo-va >&2
	"$SP" -d "$VA" va cert list >&2; "$SP" -d "$VA" va status >&2
	echo "the VA never said $1" >&2
	return 1
}
sp publisher list

step "The VA answers OCSP: the certificate revoked earlier is revoked"
wait_status revoked -cert "$WORK/www.pem"

step "Issue a new certificate; the VA says good for it (openssl ocsp)"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$WORK/www2.key" -subj "/CN=www2.example.com" \
    -addext "subjectAltName=DNS:www2.example.com" -out "$WORK/www2.csr" \
    2>/dev/null
sp cert issue --ca DemoIssuing --profile TLS_SERVER --csr "$WORK/www2.csr" \
    >"$WORK/www2.pem"
wait_status good -cert "$WORK/www2.pem"

step "Revoke it; the VA says revoked within a second"
SERIAL2=$(openssl x509 -in "$WORK/www2.pem" -noout -serial | cut -d= -f2)
T0=$(date +%s%N)
sp cert revoke --ca DemoIssuing --serial "$SERIAL2" --reason superseded
wait_status revoked -cert "$WORK/www2.pem"
echo "(revoked at the VA $(( ($(date +%s%N) - T0) / 1000000 )) ms after cert revoke began)"

step "A serial the CA never issued is not good: unknown"
ocsp -serial 0x5a11e9047 | grep -E ": (unknown|revoked)$"

step "The VA also serves the CRL; its status and signers"
sp crl create --ca DemoIssuing >/dev/null
for _ in $(seq 1 50); do
	curl -sf -o "$WORK/va.crl" "http://127.0.0.1:$OPORT/crl/DemoIssuing.crl" &&
	    openssl crl -inform DER -in "$WORK/va.crl" -noout -text |
	    grep -q "$SERIAL2" && break
	sleep 0.1
done
openssl crl -inform DER -in "$WORK/va.crl" -noout -issuer -crlnumber
va va status

step "Stop both nodes (SIGTERM)"
kill -TERM "$VAPID"
wait "$VAPID"
VAPID=
kill -TERM "$PID"
wait "$PID"
PID=
echo "demo complete"
