#!/usr/bin/env bash
# Builds the release tree in build/ (if needed) and runs the issuance
# benchmark; arguments go to bench_issue (--quick, --count N, --naive N,
# --keep). See bench/README.md.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=$top/build
bin=$build/bench/bench_issue

cd "$top"
scripts/deps.sh build
if [ ! -f "$build/CMakeCache.txt" ]; then
	cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
# Only the library and the benchmark: a broken unrelated target (tests,
# the daemon) must not stop a measurement.
cmake --build "$build" -j "$(nproc)" --target bench_issue
exec "$bin" "$@"
