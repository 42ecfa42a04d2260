#!/usr/bin/env bash
# Policy-engine benchmark: builds bulkhead-bench-policy in release, runs it once on the
# generated cluster (10,000 pods, 200 namespaces, 2,000 NetworkPolicies, 1,000
# AuthorizationPolicies), writes bench/results/policy.json and prints the table.
# Extra arguments go to the benchmark (see `--help`), e.g. `bench/run.sh --without-audit`.
# Needs only a Rust toolchain; all inputs are generated, nothing is downloaded at run time
# beyond the crates in Cargo.lock.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo is not installed; install a Rust toolchain (https://rustup.rs) first" >&2
    exit 1
fi

out=bench/results/policy.json
mkdir -p "$(dirname "$out")"
commit=$(git describe --always --dirty 2>/dev/null || echo unknown)

echo "==> cargo build --release -p bulkhead-bench-policy" >&2
cargo build --release -p bulkhead-bench-policy >&2

echo "==> running (single thread; takes about 15 s)" >&2
# --json: JSON on stdout (to the results file), the human table on stderr (to the terminal).
cargo run --quiet --release -p bulkhead-bench-policy -- --json --commit "$commit" "$@" >"$out.tmp"
mv "$out.tmp" "$out"
echo "results written to $out" >&2
