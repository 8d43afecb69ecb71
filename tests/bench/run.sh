#!/usr/bin/env bash
# Measures Lectern on this machine: latency for N students at a rate, and idle memory per connection.
# Server and load generator are pinned to different cores. Usage: tests/bench/run.sh [students] [rate] [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lectern-target}"
N="${1:-30}"; RATE="${2:-60}"; SECS="${3:-10}"
cargo build --release --locked -q -p lectern -p lectern-bench
BIN="$CARGO_TARGET_DIR/release"
ulimit -n 65536 2>/dev/null || true
DATA=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$DATA"' EXIT
start_server() {
  taskset -c 0 "$BIN/lectern" serve --json --data-dir "$DATA" --listen 127.0.0.1:0 --new-lesson \
    --teacher-rate 100000 --max-participants 100000 "$@" > "$DATA/ready" 2> "$DATA/server.log" &
  SERVER=$!
  for _ in $(seq 100); do [ -s "$DATA/ready" ] && break; sleep 0.05; done
  READY=$(head -1 "$DATA/ready")
}
start_server
taskset -c 1 "$BIN/lectern-bench" --ready "$READY" --server-pid "$SERVER" --students "$N" --rate "$RATE" --seconds "$SECS"
kill -INT $SERVER; wait $SERVER || true
for IDLE in 30 1000; do
  start_server
  BASE=$(awk '/VmRSS/ {print $2}' /proc/$SERVER/status)
  OUT=$(taskset -c 1 "$BIN/lectern-bench" --ready "$READY" --server-pid "$SERVER" --students "$IDLE" --idle)
  echo "idle $IDLE students: server RSS before ${BASE} KiB, connected $OUT"
  kill -INT $SERVER; wait $SERVER || true
done
