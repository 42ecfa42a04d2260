#!/usr/bin/env bash
# Control-plane benchmark: builds `bulkhead` and bulkhead-bench-control in release, then
# runs the benchmark once. It starts a real `bulkhead control` process (temporary data
# directory, 127.0.0.1, OS-chosen port), loads 5,000 Workloads in 50 namespaces (plus
# Services and policies) over the REST API, certifies and connects 1,000 simulated proxies
# (tonic clients in the benchmark process, one TLS 1.3 connection and SVID each), then
# measures push latency for 5 mesh-wide and 5 namespace policy changes, the control
# plane's own build histograms (/metrics) and its resident memory (/proc). Writes
# bench/results/control.json and prints the table. Takes about 30 s plus the build.
#
# Extra arguments go to the benchmark (see `--help`), e.g.
#   bench/control.sh --rounds 12
#   bench/control.sh --control-env MALLOC_ARENA_MAX=1     # environment of the control plane only
# The control plane is stopped when the benchmark ends, also on errors and Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo is not installed; install a Rust toolchain (https://rustup.rs) first" >&2
    exit 1
fi

out=bench/results/control.json
mkdir -p "$(dirname "$out")"
trap 'rm -f "$out.tmp"' EXIT
commit=$(git describe --always --dirty 2>/dev/null || echo unknown)

echo "==> cargo build --release -p bulkhead -p bulkhead-bench-control" >&2
cargo build --release -p bulkhead -p bulkhead-bench-control >&2

echo "==> running (about 30 s)" >&2
# --json: JSON on stdout (to the results file), the human table on stderr (to the terminal).
target/release/bulkhead-bench-control --bulkhead target/release/bulkhead --json \
    --commit "$commit" "$@" >"$out.tmp"
mv "$out.tmp" "$out"
echo "results written to $out" >&2
