#!/usr/bin/env bash
# Measures Lectern on this machine, server and load generator pinned to different cores:
#   - teacher-to-student latency for N students at a rate, with the session log on and off (alternating,
#     REPEATS times each), so the cost of logging is seen in one run;
#   - server memory with 30 and 1,000 idle students;
#   - the session log's write throughput and size for a simulated hour.
# Usage: tests/bench/run.sh [students=30] [rate=60] [seconds=10] [repeats=3]
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lectern-target}"
N="${1:-30}"; RATE="${2:-60}"; SECS="${3:-10}"; REPEATS="${4:-3}"
cargo build --release --locked -q -p lectern -p lectern-bench
BIN="$CARGO_TARGET_DIR/release"
ulimit -n 65536 2>/dev/null || true
DATA=$(mktemp -d)
SERVER=""
trap '[ -n "$SERVER" ] && kill $SERVER 2>/dev/null; rm -rf "$DATA"' EXIT
start_server() {
  rm -rf "$DATA"/*
  taskset -c 0 "$BIN/lectern" serve --json --data-dir "$DATA" --listen 127.0.0.1:0 \
    --teacher-rate 100000 --max-participants 100000 "$@" > "$DATA/ready" 2> "$DATA/server.log" &
  SERVER=$!
  for _ in $(seq 200); do [ -s "$DATA/ready" ] && break; sleep 0.05; done
  READY=$(head -1 "$DATA/ready")
}
stop_server() { kill -INT "$SERVER"; wait "$SERVER" || true; SERVER=""; }

echo "== latency: $N students, $RATE changes/s, ${SECS}s, session log on and off, $REPEATS runs each"
for i in $(seq "$REPEATS"); do
  for mode in log no-log; do
    if [ "$mode" = log ]; then start_server; else start_server --no-log; fi
    printf '%-7s ' "$mode"
    taskset -c 1 "$BIN/lectern-bench" --ready "$READY" --server-pid "$SERVER" --students "$N" --rate "$RATE" --seconds "$SECS"
    stop_server
  done
done

echo "== idle memory"
for IDLE in 30 1000; do
  start_server
  BASE=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER/status")
  OUT=$(taskset -c 1 "$BIN/lectern-bench" --ready "$READY" --server-pid "$SERVER" --students "$IDLE" --idle)
  echo "$IDLE idle students: server RSS $BASE KiB before, after: $OUT"
  stop_server
done

echo "== session log: one simulated hour of 30 students with a 60 Hz pointer"
"$BIN/lectern-store-bench" "$DATA"
