#!/usr/bin/env bash
# WAF benchmark (issue 9): bulkhead-waf against libmodsecurity 3.0.9, the same OWASP CRS
# v4.25.1 rules, in-process, no HTTP. Installs the reference (scripts/install-libmodsecurity:
# Debian's libmodsecurity3 + libmodsecurity-dev), builds bulkhead-bench-waf in release
# (tests/modsec-ref, feature `libmodsecurity`) and runs it pinned to one core, REPS times.
#
# Configuration of both engines: ci-setup/modsecurity.ci.conf with `SecRuleEngine On`,
# crs-setup.conf.example (paranoia level 1), rules/*.conf — read from ../shared/corpus/crs.
# (libmodsecurity gets the adapted copies described in tests/modsec-ref/src/crs.rs: rule
# 901181 stripped, three directives 3.0.9 rejects or cannot honour dropped or changed.)
# Per engine, each run in a fresh process: CRS compile time, RSS before/after loading, then
# per-transaction CPU time (thread CPU, /proc/thread-self/schedstat, over all of a run's
# transactions) of three benign exchanges, whole transaction (request and response phases,
# logging):
#   benign-get      GET with a query string and 6 browser headers, 200 text/html
#   form-post-10k   10 KiB application/x-www-form-urlencoded POST, 200 application/json
#   json-post-5k    ~5 KiB JSON POST, 200 application/json
# Writes bench/results/waf.json (every run's JSON lines, the medians and the speed-up) and
# prints the table. Needs root or password-less sudo for the install (skipped when
# present). About 1 minute per repetition plus the build.
#
# Usage: bench/waf.sh [--reps N] [--seconds S]
#        BENCH_WAF_BIN=... bench/waf.sh          (no build)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

REPS=3
SECONDS_PER_SCENARIO=${SECONDS_PER_SCENARIO:-3}
while [[ $# -gt 0 ]]; do
    case $1 in
        --reps) REPS=$2; shift 2 ;;
        --seconds) SECONDS_PER_SCENARIO=$2; shift 2 ;;
        *) echo "usage: $0 [--reps N] [--seconds S]" >&2; exit 2 ;;
    esac
done
CORE=${CORE:-1}      # the benchmark is single-threaded; pinned to this core

OUT=$ROOT/bench/results/waf.json
WORK=$(mktemp -d /tmp/bulkhead-waf-bench.XXXXXX)
KEEP=0
START_TIME=$SECONDS
# log, die, cleanup (the trap), apt_install
source "$ROOT/bench/lib.sh"

command -v cargo >/dev/null 2>&1 || die "cargo is not installed; install a Rust toolchain (https://rustup.rs) first"
[[ -d $ROOT/../shared/corpus/crs/rules ]] || die "CRS corpus not found at ../shared/corpus/crs"

log "installing libmodsecurity (scripts/install-libmodsecurity)"
scripts/install-libmodsecurity >&2

BIN=${BENCH_WAF_BIN:-}
if [[ -z $BIN ]]; then
    log "cargo build --release -p bulkhead-modsec-ref --features libmodsecurity"
    cargo build --release -p bulkhead-modsec-ref --features libmodsecurity --bin bulkhead-bench-waf >&2
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/bulkhead-bench-waf
fi
commit=$(git describe --always --dirty 2>/dev/null || echo unknown)

: >"$WORK/runs.jsonl"
for rep in $(seq "$REPS"); do
    # Alternate which engine goes first, so drift in the machine's load hits both alike.
    engines=(bulkhead modsecurity)
    ((rep % 2 == 0)) && engines=(modsecurity bulkhead)
    for engine in "${engines[@]}"; do
        log "run $rep/$REPS: $engine"
        taskset -c "$CORE" "$BIN" --engine "$engine" --seconds "$SECONDS_PER_SCENARIO" --crs "$ROOT/../shared/corpus/crs" \
            | python3 -c 'import json, sys; rep = int(sys.argv[1])
for line in sys.stdin:
    d = json.loads(line); d["rep"] = rep; print(json.dumps(d))' "$rep" >>"$WORK/runs.jsonl" \
            || log "the $engine run failed; its results are missing"
    done
done

python3 - "$WORK/runs.jsonl" "$OUT" "$commit" "$CORE" <<'PY'
import json, os, platform, statistics, sys
runs_path, out_path, commit, core = sys.argv[1:]
runs = [json.loads(l) for l in open(runs_path)]
engines = sorted({r["engine"] for r in runs})
med = lambda xs: statistics.median(xs) if xs else None

per_engine = {}
for e in engines:
    loads = [r for r in runs if r["engine"] == e and r["kind"] == "load"]
    mem = [r for r in runs if r["engine"] == e and r["kind"] == "memory"]
    tx = {}
    for r in runs:
        if r["engine"] == e and r["kind"] == "transaction":
            tx.setdefault(r["scenario"], []).append(r)
    per_engine[e] = {
        "version": loads[0]["version"] if loads else None,
        "compile_ms_median": med([r["compile_ms"]["p50"] for r in loads]),
        "rss_after_load_mib_median": med([r["rss_after_load_kib"] / 1024 for r in loads if r["rss_after_load_kib"]]),
        "rss_rules_mib_median": med([r["rss_rules_kib"] / 1024 for r in loads if r["rss_rules_kib"] is not None]),
        "rss_peak_mib_median": med([r["rss_peak_kib"] / 1024 for r in mem if r["rss_peak_kib"]]),
        "scenarios": {s: {
            "what": rs[0]["what"],
            # A running thread's /proc/thread-self/schedstat advances only at scheduler ticks
            # (4 ms at HZ=250), so one ~50 ms batch reads in steps of 4 ms / batch and the
            # batches' median snaps to a step (40,000.0 µs for a 40-42 ms transaction). The
            # mean over a run's batches is its total CPU / its transactions, off by at most
            # the two ends' ticks over >= 3 s: that is the figure, median over repetitions.
            "cpu_us_per_tx_median": med([r["cpu_us_per_tx"]["mean"] for r in rs]),
            "cpu_us_per_tx_batch_p50_median": med([r["cpu_us_per_tx"]["p50"] for r in rs]),
            "wall_us_p50_median": med([r["wall_us"]["p50"] for r in rs]),
            "wall_us_p99_median": med([r["wall_us"]["p99"] for r in rs]),
            "logged_ids": rs[0]["logged_ids"],
            "blocked": rs[0]["blocked"],
        } for s, rs in tx.items()},
    }

speedup = {}
if "bulkhead" in per_engine and "modsecurity" in per_engine:
    b, m = per_engine["bulkhead"], per_engine["modsecurity"]
    for s in m["scenarios"]:
        bs, ms = b["scenarios"].get(s, {}).get("cpu_us_per_tx_median"), m["scenarios"][s]["cpu_us_per_tx_median"]
        speedup[s] = ms / bs if bs and ms else None
    if b["compile_ms_median"] and m["compile_ms_median"]:
        speedup["compile"] = m["compile_ms_median"] / b["compile_ms_median"]

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
result = {
    "benchmark": "WAF: bulkhead-waf vs libmodsecurity 3.0.9, OWASP CRS v4.25.1 at paranoia level 1, SecRuleEngine On, in-process, one core",
    "commit": commit,
    "machine": {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(), "pinned_core": int(core),
                "loadavg_at_end": open("/proc/loadavg").read().split()[:3]},
    "method": "per engine and repetition a fresh process: compile (median of 3 loads; RSS after the first), "
              "then per scenario a warm-up and >= 3 s of batches of ~50 ms; CPU per transaction = the run's thread "
              "run time over all batches / its transactions (schedstat advances per 4 ms tick, so single batches "
              "are coarse), median over repetitions",
    "per_engine": per_engine,
    "speedup_modsecurity_over_bulkhead": speedup,
    "target": {"benign-get speed-up >= 10": (speedup.get("benign-get") or 0) >= 10} if speedup else None,
    "runs": runs,
}
with open(out_path, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")

fmt = lambda v, f=".1f": "-" if v is None else format(v, f)
print(f"{'':16}" + "".join(f"{e:>28}" for e in engines) + f"{'speed-up':>12}")
for s in sorted({s for e in engines for s in per_engine[e]["scenarios"]}):
    cells = "".join(f"{fmt(per_engine[e]['scenarios'].get(s, {}).get('cpu_us_per_tx_median')) + ' µs CPU/tx':>28}" for e in engines)
    print(f"{s:16}{cells}{fmt(speedup.get(s)) + ' x':>12}")
print(f"{'compile':16}" + "".join(f"{fmt(per_engine[e]['compile_ms_median'], '.0f') + ' ms':>28}" for e in engines) + f"{fmt(speedup.get('compile')) + ' x':>12}")
print(f"{'RSS after load':16}" + "".join(f"{fmt(per_engine[e]['rss_after_load_mib_median']) + ' MiB':>28}" for e in engines))
print(f"{'RSS of the rules':16}" + "".join(f"{fmt(per_engine[e]['rss_rules_mib_median']) + ' MiB':>28}" for e in engines))
print(f"\nresults written to {out_path}")
PY
