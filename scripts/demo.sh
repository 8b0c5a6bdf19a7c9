#!/usr/bin/env bash
# The Sallyport demonstration: one node, a root CA and a sub CA, a TLS
# server certificate from an `openssl req` CSR, verified by OpenSSL,
# revoked, and listed on the CRL. Narrates each step in one line.
set -euo pipefail

SP=${1:-build/sallyport}
SP=$(realpath "$SP")
WORK=$(mktemp -d /tmp/sallyport-demo.XXXXXX)
NODE=$WORK/ca-node
PID=

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
sp() { echo "\$ sallyport $*" >&2; "$SP" -d "$NODE" "$@"; }
cleanup() {
	if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
		kill -TERM "$PID"
		wait "$PID" || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

step "Create a node directory (config file + SQLite database) in $NODE"
"$SP" init "$NODE" --name demo-ca

step "Start the node in the background; it listens on $NODE/admin.sock"
"$SP" run "$NODE" 2>"$WORK/node.log" &
PID=$!
for _ in $(seq 1 100); do
	"$SP" -d "$NODE" status >/dev/null 2>&1 && break
	sleep 0.1
done
sp status

step "Create a soft crypto token; its keys are stored encrypted under the PIN"
sp token create DemoToken --pin demo-pin-1234

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

step "Stop the node (SIGTERM)"
kill -TERM "$PID"
wait "$PID"
PID=
echo "demo complete"
