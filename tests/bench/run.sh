#!/usr/bin/env bash
# The benchmark: Lectern vs the floor (a minimal Rust broadcaster) vs Socket.IO, same machine, same
# client, same run; servers alternate; server on core 0, load generator on core 1.
#
#   tests/bench/run.sh            full run: N = 30, 300 and 1,000 at 60 changes/s, N = 30 at a 1,000/s
#                                 burst, N = 5,000 at 10/s (60/s would be 300,000 deliveries a second,
#                                 more than one core can send or the one-core client can read), 3 repeats
#                                 each, idle memory at 10,000 connections; writes docs/bench/table.md and
#                                 docs/bench/latency.svg
#   tests/bench/run.sh --smoke    10 s at N = 30 for each server (CI): fails if a delivery is lost or
#                                 the report is not written; no timing assertions
#   tests/bench/run.sh --logging  Lectern alone, session log on and off alternating (issue 3's figure)
#   tests/bench/run.sh --wifi     weak Wi-Fi (tests/wifi/rig.sh, root): server and students in two network
#                                 namespaces, random loss of 0, 1, 5 and 10% of the packets to the students,
#                                 sparse (4/s) and dense (60/s) changes, N = 30, the three servers
#                                 alternating; then Lectern's tail measures one at a time at 5% loss, sparse;
#                                 writes docs/bench/wifi.md and docs/bench/wifi.svg
#   tests/bench/run.sh --compare DIR
#                                 Lectern before and after a change, alternating in one run: DIR holds the
#                                 `lectern` binary built from the old commit; N = 30 and 1,000 at 60/s
#   tests/bench/run.sh --compare DIR --wifi
#                                 the same on the weak Wi-Fi rig at 5% loss (root): N = 30, sparse (4/s)
#                                 and dense (60/s) changes, SECONDS_PER_RUN 20
#   tests/bench/run.sh --ink      the teacher's ink (issue 25), REPEATS times: on loopback, a pointer move's
#                                 cost with the lesson full of ink (10,000 strokes) against none, Lectern
#                                 alternating, N = 30 at 60/s; then on the weak Wi-Fi rig at 5% loss (root),
#                                 the three servers carrying a writer's pen steps (60/s, 2 points each) to
#                                 N = 30; writes $OUT/ink.jsonl
#   tests/bench/run.sh --wan      students at home through a relay over the internet rig (root; see
#                                 tests/wan/bench.sh): three home cells, page-turn latency from the teacher;
#                                 then a 600-page scanned book opened through the relay (tests/wan/book.sh)
#
# Environment: REPEATS (3; --wifi: WIFI_REPEATS, 1), SECONDS_PER_RUN (10; --wifi: 20), OUT (docs/bench, or target/bench for --smoke).
set -euo pipefail
cd "$(dirname "$0")/../.."
MODE="${1:-full}"
if [ "$MODE" = --wan ]; then bash tests/wan/bench.sh; exec bash tests/wan/book.sh; fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lectern-target}"
REPEATS="${REPEATS:-3}"; SECS="${SECONDS_PER_RUN:-10}"
case "$MODE" in
  --smoke) REPEATS=1; SECS=10; OUT="${OUT:-$CARGO_TARGET_DIR/bench}"; SCENARIOS="30:60"; IDLE="" ;;
  --logging) OUT="${OUT:-$CARGO_TARGET_DIR/bench-logging}"; SCENARIOS="30:60"; IDLE="" ;;
  --wifi) OUT="${OUT:-docs/bench}"; SECS="${SECONDS_PER_RUN:-20}"; REPEATS="${WIFI_REPEATS:-1}"; IDLE="" ;;
  --ink) OUT="${OUT:-$CARGO_TARGET_DIR/bench-ink}"; SECS="${SECONDS_PER_RUN:-20}"; REPEATS="${REPEATS:-3}"; IDLE="" ;;
  --compare) OUT="${OUT:-$CARGO_TARGET_DIR/bench-compare}"; SCENARIOS="30:60 1000:60"; IDLE=""; BEFORE="$2"
    if [ "${3:-}" = --wifi ]; then COMPARE_WIFI=1; SCENARIOS="30:4 30:60"; SECS="${SECONDS_PER_RUN:-20}"; fi ;;
  *) OUT="${OUT:-docs/bench}"; SCENARIOS="30:60 30:1000 300:60 1000:60 5000:10"; IDLE="10000" ;;
esac
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"; [ "$MODE" = --wifi ] && RESULTS="$OUT/wifi.jsonl"; [ "$MODE" = --ink ] && RESULTS="$OUT/ink.jsonl"
: > "$RESULTS"

cargo build --release --locked -q -p lectern -p lectern-bench -p lectern-floor
BIN="$CARGO_TARGET_DIR/release"
(cd tests/bench/peers/socketio && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

WORK=$(mktemp -d)
SERVER=""
# Where the servers listen and the load generator runs: loopback, or the rig's two namespaces.
HOST=127.0.0.1; IN_SRV=(); IN_CLI=(); COUNT=()
if [ "$MODE" = --wifi ] || [ -n "${COMPARE_WIFI:-}" ]; then
  source tests/wifi/rig.sh
  wifi_up
  HOST="$WIFI_ADDR_S"; IN_SRV=(ip netns exec "$WIFI_SRV"); IN_CLI=(ip netns exec "$WIFI_CLI"); COUNT=(--count-dev "$WIFI_VC")
fi
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"
  if [ "$MODE" = --wifi ] || [ -n "${COMPARE_WIFI:-}" ]; then wifi_down; fi
}
trap cleanup EXIT

wait_ready() { for _ in $(seq 400); do [ -s "$1" ] && return 0; sleep 0.05; done; echo "server did not start" >&2; cat "$WORK/err" >&2; return 1; }

# One Lectern data directory gives all three servers the same certificate.
"$BIN/lectern" serve --json --no-mdns --data-dir "$WORK/cert" --listen 127.0.0.1:0 > "$WORK/cert.ready" 2>/dev/null & SERVER=$!
wait_ready "$WORK/cert.ready"; kill -TERM "$SERVER"; wait "$SERVER" || true; SERVER=""
FP=$(sed -n 's/.*"fingerprint":"\([^"]*\)".*/\1/p' "$WORK/cert.ready")

start() { # target [lectern flags...]
  local target=$1; shift
  rm -f "$WORK/ready"
  case "$target" in
    lectern|before)
      local bin="$BIN/lectern"; [ "$target" = before ] && bin="$BEFORE/lectern"
      rm -rf "$WORK/data"; cp -r "$WORK/cert" "$WORK/data"
      # Every simulated student comes from this one machine: the per-address limits are lifted.
      LECTERN_MAX_CONNECTIONS_PER_ADDRESS=1000000 LECTERN_MAX_STUDENTS_PER_ADDRESS=1000000 \
      "${IN_SRV[@]}" taskset -c 0 "$bin" serve --json --no-mdns --data-dir "$WORK/data" --listen "$HOST:0" --new-lesson \
        --teacher-rate 1000000 --max-participants 1000000 "$@" > "$WORK/ready" 2> "$WORK/err" & ;;
    floor) "${IN_SRV[@]}" taskset -c 0 "$BIN/lectern-floor" "$WORK/cert" "$HOST" > "$WORK/ready" 2> "$WORK/err" & ;;
    socketio) "${IN_SRV[@]}" taskset -c 0 node tests/bench/peers/socketio/server.js "$WORK/cert" "$HOST" > "$WORK/ready" 2> "$WORK/err" & ;;
  esac
  SERVER=$!
  wait_ready "$WORK/ready"
}
stop() { kill -TERM "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; SERVER=""; }

bench() { # target students rate label [bench flags...]
  local target=$1 n=$2 rate=$3 label=$4; shift 4
  [ "$target" = before ] && { target=lectern; label="before,$label"; }
  "${IN_CLI[@]}" taskset -c 1 "$BIN/lectern-bench" "${COUNT[@]}" --target "$target" --ready "$(head -1 "$WORK/ready")" --fingerprint="$FP" \
    --server-pid "$SERVER" --students "$n" --rate "$rate" --seconds "$SECS" --label "$label" "$@" >> "$RESULTS"
}

if [ "$MODE" = "--logging" ]; then
  for i in $(seq "$REPEATS"); do
    start lectern; bench lectern 30 60 "log,$i"; stop
    start lectern --no-log; bench lectern 30 60 "no-log,$i"; stop
  done
  cat "$RESULTS"
  exit 0
fi

if [ "$MODE" = "--ink" ]; then
  for i in $(seq "$REPEATS"); do
    for fill in 0 10000; do
      start lectern; bench lectern 30 60 "prefill=$fill,$i" --prefill "$fill" || true; stop
    done
  done
  if [ "$(id -u)" -eq 0 ]; then
    source tests/wifi/rig.sh
    wifi_up; COMPARE_WIFI=1 # cleanup takes the rig down
    wifi_loss 0.05
    HOST="$WIFI_ADDR_S"; IN_SRV=(ip netns exec "$WIFI_SRV"); IN_CLI=(ip netns exec "$WIFI_CLI"); COUNT=(--count-dev "$WIFI_VC")
    for i in $(seq "$REPEATS"); do
      for target in lectern floor socketio; do
        start "$target"; bench "$target" 30 60 "ink,loss=0.05,$i" --ink || true; stop
      done
    done
  else
    echo "the Wi-Fi part needs root (network namespaces): skipped" >&2
  fi
  python3 - "$RESULTS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print("| run | server | p50 | p99 | max | server CPU per delivery | bytes per delivery | lost |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    wire = r.get("wire_bytes_per_delivery")
    print(f"| {r['label']} | {r['target']} | {r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms | {r['max_ms']:.2f} ms | {r['server_cpu_us_per_delivery']:.1f} µs | {'%.0f' % wire if wire else '-'} | {r['lost']} |")
PY
  exit 0
fi

if [ "$MODE" = "--wifi" ]; then
  for i in $(seq "$REPEATS"); do
    for loss in 0 0.01 0.05 0.10; do
      wifi_loss "$loss"
      for rate in 4 60; do
        for target in lectern floor socketio; do
          start "$target"; bench "$target" 30 "$rate" "loss=$loss,$i" || true; stop
        done
      done
    done
    # What each of Lectern's measures buys on its own, at 5% loss, sparse changes.
    wifi_loss 0.05
    for variant in "none:0:0" "rto-min:5:0" "tail-probe:0:2" "both:5:2"; do
      IFS=: read -r name rto probe <<< "$variant"
      LECTERN_RTO_MIN_MS="$rto" LECTERN_TAIL_PROBE_MS="$probe" start lectern
      bench lectern 30 4 "measure=$name,loss=0.05,$i" || true; stop
    done
  done
  "$BIN/lectern-bench-report" --wifi "$RESULTS" "$OUT"
  echo "weak Wi-Fi report: $OUT/wifi.md, $OUT/wifi.svg"
  exit 0
fi

if [ "$MODE" = "--compare" ]; then
  [ -n "${COMPARE_WIFI:-}" ] && wifi_loss 0.05
  for i in $(seq "$REPEATS"); do
    for scenario in $SCENARIOS; do
      n=${scenario%%:*}; rate=${scenario##*:}
      for target in before lectern; do
        start "$target"; bench "$target" "$n" "$rate" "$i" || echo "run with losses: $target N=$n" >&2; stop
      done
    done
  done
  cat "$RESULTS"
  exit 0
fi

for i in $(seq "$REPEATS"); do
  for scenario in $SCENARIOS; do
    n=${scenario%%:*}; rate=${scenario##*:}
    for target in lectern floor socketio; do
      start "$target"
      # A run that loses deliveries still reports them (and the report shows it); only --smoke fails.
      bench "$target" "$n" "$rate" "$i" || echo "run with losses or errors: $target N=$n rate=$rate" >&2
      stop
    done
  done
done
for n in $IDLE; do
  for target in lectern floor socketio; do
    start "$target"; bench "$target" "$n" 60 idle --idle; stop
  done
done

"$BIN/lectern-bench-report" "$RESULTS" "$OUT"
test -s "$OUT/table.md" && test -s "$OUT/latency.svg"
if [ "$MODE" = "--smoke" ]; then
  runs=$(grep -c '"lost":' "$RESULTS"); clean=$(grep -c '"lost":0[,}]' "$RESULTS")
  [ "$runs" -eq 3 ] && [ "$runs" -eq "$clean" ] || { echo "smoke: $((runs - clean)) of $runs runs lost deliveries" >&2; exit 1; }
fi
echo "benchmark report: $OUT/table.md, $OUT/latency.svg"
