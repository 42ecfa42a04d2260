#!/usr/bin/env bash
# Identity benchmark: builds bulkhead-bench-identity in release, runs it once (one thread:
# CSR → SVID issuances per second, and mTLS 1.3 handshakes per second with the SPIFFE
# verifiers next to rustls's WebPKI verifiers), writes bench/results/identity.json and
# prints the table. Extra arguments go to the benchmark (see `--help`), e.g.
# `bench/identity.sh --seconds 5 --rounds 7`. Needs only a Rust toolchain; all
# certificates are generated at run time.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo is not installed; install a Rust toolchain (https://rustup.rs) first" >&2
    exit 1
fi

out=bench/results/identity.json
mkdir -p "$(dirname "$out")"
commit=$(git describe --always --dirty 2>/dev/null || echo unknown)

echo "==> cargo build --release -p bulkhead-bench-identity" >&2
cargo build --release -p bulkhead-bench-identity >&2

echo "==> running (single thread; takes about 40 s)" >&2
# --json: JSON on stdout (to the results file), the human table on stderr (to the terminal).
cargo run --quiet --release -p bulkhead-bench-identity -- --json --commit "$commit" "$@" >"$out.tmp"
mv "$out.tmp" "$out"
echo "results written to $out" >&2
