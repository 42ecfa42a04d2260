#!/usr/bin/env bash
# Two sidecars, one command: builds Bulkhead, creates a CA and SVIDs for `web` and `api`,
# starts both demo apps and both sidecars on 127.0.0.1, shows an allowed call, a forged
# identity header being ignored, denied calls and a refused plaintext client, then
# keeps everything running until Ctrl-C (or stops at once with --once).
#
#   examples/sidecars/run.sh [--once]
#
# Ports (all 127.0.0.1, checked free before anything starts):
#   8080   web app          (bulkhead-demo serve --name web)
#   8081   api app          (bulkhead-demo serve --name api)
#   9001   web sidecar, outbound: web's way to api (plaintext, loopback)
#   15006  web sidecar, inbound (mTLS)  -> 8080
#   15007  api sidecar, inbound (mTLS)  -> 8081
#   15000  web sidecar admin (/ready, /metrics, /config)
#   15001  api sidecar admin
#
# Generated files go to examples/sidecars/out/ (gitignored): the CA and SVIDs (kept and
# reused while valid; delete out/ to start afresh) and logs (rewritten every run).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$HERE/out
TD=example.org
NS=demo
ONCE=0
for arg in "$@"; do
    case $arg in
        --once) ONCE=1 ;;
        -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "error: unknown argument $arg (try --help)" >&2; exit 2 ;;
    esac
done

PIDS=()
NAMES=()

die() { echo "error: $*" >&2; exit 1; }

# Stops every process this script started: SIGTERM (the sidecars drain), then SIGKILL
# for anything still running after 10 s.
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if ((${#PIDS[@]})); then
        echo
        echo "stopping ${NAMES[*]}"
        kill -TERM "${PIDS[@]}" 2>/dev/null || true
        local i pid alive
        for ((i = 0; i < 100; i++)); do
            alive=0
            for pid in "${PIDS[@]}"; do
                kill -0 "$pid" 2>/dev/null && alive=1
            done
            ((alive)) || break
            sleep 0.1
        done
        kill -KILL "${PIDS[@]}" 2>/dev/null || true
        wait 2>/dev/null || true
        echo "stopped"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --------------------------------------------------------------------------- build
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}/release
echo "==> cargo build --release -p bulkhead -p bulkhead-demo"
(cd "$ROOT" && cargo build --release --quiet -p bulkhead -p bulkhead-demo)
BULKHEAD=$TARGET/bulkhead
DEMO=$TARGET/bulkhead-demo

# --------------------------------------------------------------------------- ports
for port in 8080 8081 9001 15000 15001 15006 15007; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        die "port $port on 127.0.0.1 is in use; stop what holds it first (see the port list in $0)"
    fi
done

# --------------------------------------------------------------------------- identities
mkdir -p "$OUT/logs"
rm -f "$OUT"/logs/*
if [[ ! -f $OUT/ca/ca.pem ]]; then
    "$BULKHEAD" cert init --trust-domain "$TD" --out "$OUT/ca" >"$OUT/logs/cert.log"
    echo "==> created CA for trust domain $TD in out/ca"
else
    echo "==> reusing the CA in out/ca"
fi
for name in web api; do
    id=spiffe://$TD/ns/$NS/sa/$name
    if "$BULKHEAD" cert inspect "$OUT/$name/cert.pem" --bundle "$OUT/ca/bundle.pem" \
        >/dev/null 2>&1; then
        echo "==> reusing the SVID for $id (out/$name)"
    else
        "$BULKHEAD" cert issue --ca "$OUT/ca" --id "$id" --out "$OUT/$name" >>"$OUT/logs/cert.log"
        echo "==> issued an SVID for $id (out/$name, valid 24h)"
    fi
done

# --------------------------------------------------------------------------- start
# start NAME LOGFILE COMMAND...: runs COMMAND in the background, output to LOGFILE.
start() {
    local name=$1 log=$2
    shift 2
    "$@" >"$log" 2>&1 &
    PIDS+=($!)
    NAMES+=("$name")
}

# alive NAME PID LOG: fails with the end of LOG when the process has exited.
alive() {
    kill -0 "$2" 2>/dev/null && return 0
    echo "error: $1 exited during start-up; the end of ${3#"$HERE"/}:" >&2
    tail -n 5 "$3" >&2
    exit 1
}

# wait_for NAME PID LOG SECONDS CHECK...: polls CHECK every 0.1 s until it succeeds, the
# process exits, or SECONDS pass.
wait_for() {
    local name=$1 pid=$2 log=$3 seconds=$4 i
    shift 4
    for ((i = 0; i < seconds * 10; i++)); do
        alive "$name" "$pid" "$log"
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "$name not ready after ${seconds}s; see ${log#"$HERE"/}"
}

echo "==> starting the apps and their sidecars"
for app in web:8080 api:8081; do
    name=${app%%:*}
    log=$OUT/logs/$name-app.log
    start "$name-app" "$log" "$DEMO" serve --listen "127.0.0.1:${app#*:}" --name "$name"
    wait_for "$name-app" "${PIDS[-1]}" "$log" 10 grep -q 'listening on' "$log"
done
for sidecar in web:15000 api:15001; do
    name=${sidecar%%:*}
    log=$OUT/logs/$name-proxy.log
    start "$name-sidecar" "$log" "$BULKHEAD" proxy --config "$HERE/$name.yaml"
    wait_for "$name-sidecar" "${PIDS[-1]}" "$log" 20 \
        "$DEMO" call --timeout 1s --expect 200 --raw --url "http://127.0.0.1:${sidecar#*:}/ready"
done
echo "    web app 127.0.0.1:8080, web sidecar inbound 127.0.0.1:15006, outbound to api 127.0.0.1:9001"
echo "    api app 127.0.0.1:8081, api sidecar inbound 127.0.0.1:15007"
echo "    both sidecars ready (admin 127.0.0.1:15000 and 127.0.0.1:15001 answer /ready 200)"

# --------------------------------------------------------------------------- calls
# show COMMAND...: prints the command as typed (bulkhead-demo for the demo binary), then
# runs it; its exit status is returned.
show() {
    local shown=() arg
    for arg in "$@"; do
        case $arg in
            "$DEMO") shown+=(bulkhead-demo) ;;
            *\ *) shown+=("'$arg'") ;;
            *) shown+=("$arg") ;;
        esac
    done
    echo
    echo "\$ ${shown[*]}"
    "$@"
}

echo
echo "# web's app calls api through web's sidecar: allowed, and api sees web's identity"
show "$DEMO" call --url http://127.0.0.1:9001/hello --count 3 --interval 200ms --expect 200

echo
echo "# a forged identity header from the app is dropped; api still sees the verified one"
show "$DEMO" call --url http://127.0.0.1:9001/hello/forged \
    -H "x-bulkhead-peer-identity: spiffe://$TD/ns/$NS/sa/admin" --expect 200

echo
echo "# paths and methods the policy does not allow: 403 with a request id"
denied=$(show "$DEMO" call --url http://127.0.0.1:9001/admin --expect 403)
echo "$denied"
show "$DEMO" call -X POST --url http://127.0.0.1:9001/hello --expect 403

echo
echo "# a client without a certificate at api's inbound port: refused (STRICT mTLS)"
if show "$DEMO" call --url http://127.0.0.1:15007/hello --timeout 5s; then
    die "the plaintext call to api's inbound port was answered; it must be refused"
fi

# wait_line FILE PATTERN: the first line of FILE matching PATTERN, polling up to 5 s
# (the access log is written by a background thread).
wait_line() {
    local i
    for ((i = 0; i < 50; i++)); do
        grep -m1 -F -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    die "no line with $2 in ${1#"$HERE"/}"
}

request_id=$(sed -n 's/^ *request id: //p' <<<"$denied")
echo
echo "# api's access log names the policy behind the 403 (request id $request_id):"
wait_line "$OUT/logs/api-access.log" "\"request_id\":\"$request_id\""
echo
echo "# ... and the refused plaintext connection:"
wait_line "$OUT/logs/api-access.log" '"layer":"authentication"'

echo
echo "# api's sidecar metrics: policy decisions and requests so far (series above 0):"
"$DEMO" call --raw --url http://127.0.0.1:15001/metrics |
    grep -E '^bulkhead_proxy_(policy_decisions|http_requests)_total' | grep -v ' 0$' | sort || true

cat <<EOF

Look around:
  access logs   ${OUT#"$ROOT"/}/logs/web-access.log, ${OUT#"$ROOT"/}/logs/api-access.log (one JSON line per request)
  sidecar logs  ${OUT#"$ROOT"/}/logs/web-proxy.log, ${OUT#"$ROOT"/}/logs/api-proxy.log
  app logs      ${OUT#"$ROOT"/}/logs/web-app.log, ${OUT#"$ROOT"/}/logs/api-app.log
  metrics       curl -s 127.0.0.1:15000/metrics (web), curl -s 127.0.0.1:15001/metrics (api)
  config        curl -s 127.0.0.1:15001/config
  try           ${DEMO#"$ROOT"/} call --url http://127.0.0.1:9001/hello
EOF

if ((ONCE)); then
    exit 0
fi
echo
echo "Everything keeps running; press Ctrl-C to stop."
# Returns when any of them exits (which it should not) or on Ctrl-C (the trap).
wait -n "${PIDS[@]}" || true
for i in "${!PIDS[@]}"; do
    kill -0 "${PIDS[$i]}" 2>/dev/null || die "${NAMES[$i]} exited unexpectedly; see ${OUT#"$ROOT"/}/logs/"
done
