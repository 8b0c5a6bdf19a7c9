#!/usr/bin/env bash
# Installs the Debian packages Sallyport needs, only those missing.
#   scripts/deps.sh build   - to build the node
#   scripts/deps.sh test    - to build and run every test (unit, fuzz, e2e)
#   scripts/deps.sh bench   - to build and run the benchmarks (make bench)
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config libssl-dev openssl libevent-dev
	libjansson-dev libsqlite3-dev libinih-dev libyaml-dev)
test_pkgs=(libcmocka-dev clang libclang-rt-14-dev python3 python3-pytest
	python3-cryptography gnutls-bin curl iproute2 sqlite3 postgresql libpq-dev
	python3-yaml)
# bench_ocsp.py: a load generator and the static-file server it compares with
bench_pkgs=(python3 python3-cryptography wrk nginx-light)

want=("${build_pkgs[@]}")
if [ "${1:-build}" = test ]; then
	want+=("${test_pkgs[@]}")
elif [ "${1:-build}" = bench ]; then
	want+=("${bench_pkgs[@]}")
fi

missing=()
for p in "${want[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	    grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
