#!/usr/bin/env bash
# The relay benchmark (docs/RELAY.md): a real redis-server, `lectern serve --redis`, two `lectern
# relay`s, and the load generator, in one run. Redis, the server and the relays share core 0; the
# load generator has core 1.
#
#   tests/bench/relay.sh            N = 30 local and 30 remote at 10 changes/s, with the remote
#                                   students checking every signature and without, then 5,000 students
#                                   straight on the server and 5,000 across the two relays at 10/s; writes
#                                   docs/bench/relay.jsonl and docs/bench/relay.md
#   tests/bench/relay.sh --smoke    10 s of N = 30 + 30 (CI): fails if a change is lost
set -euo pipefail
cd "$(dirname "$0")/../.."
MODE="${1:-full}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lectern-target}"
SECS="${SECONDS_PER_RUN:-20}"
OUT="${OUT:-docs/bench}"
[ "$MODE" = --smoke ] && { SECS=10; OUT="$CARGO_TARGET_DIR/bench"; }
mkdir -p "$OUT"
cargo build --release --locked -q -p lectern -p lectern-bench
BIN="$CARGO_TARGET_DIR/release"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
ready() { for _ in $(seq 400); do [ -s "$1" ] && return 0; sleep 0.05; done; echo "$2 did not start" >&2; return 1; }

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
taskset -c 0 redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" >/dev/null &
PIDS+=($!)
for _ in $(seq 200); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
REDIS="redis://127.0.0.1:$PORT"

# Every simulated student comes from this one machine: the per-address limits are lifted (as in
# tests/bench/run.sh), so 5,000 can join the server directly.
LECTERN_MAX_CONNECTIONS_PER_ADDRESS=1000000 LECTERN_MAX_STUDENTS_PER_ADDRESS=1000000 \
taskset -c 0 "$BIN/lectern" serve --json --no-mdns --data-dir "$WORK/teacher" --listen 127.0.0.1:0 \
  --redis "$REDIS" --max-participants 10000 >"$WORK/server" 2>"$WORK/server.err" &
PIDS+=($!); SERVER_PID=$!
ready "$WORK/server" "lectern serve"
RELAY_ARGS=()
for r in a b; do
  taskset -c 0 "$BIN/lectern" relay --json --redis "$REDIS" --listen 127.0.0.1:0 >"$WORK/relay-$r" 2>"$WORK/relay-$r.err" &
  PIDS+=($!)
  ready "$WORK/relay-$r" "lectern relay"
  RELAY_ARGS+=(--relay "$(head -1 "$WORK/relay-$r")" --relay-pid "$!")
done

run() {
  taskset -c 1 "$BIN/lectern-bench-relay" --server "$(head -1 "$WORK/server")" --data-dir "$WORK/teacher" \
    --server-pid "$SERVER_PID" "${RELAY_ARGS[@]}" --seconds "$SECS" "$@"
}
RESULTS="$OUT/relay.jsonl"; : >"$RESULTS"
run --label "hop, N = 30 + 30, checked" --local 30 --remote 30 --rate 10 --verify | tee -a "$RESULTS"
if [ "$MODE" != --smoke ]; then
  # The same without the remote students' checks: the load generator's one core does 30 checks per
  # change one after another, which the checked run counts in the latency.
  run --label "hop, N = 30 + 30, unchecked" --local 30 --remote 30 --rate 10 | tee -a "$RESULTS"
  # Issue 24, item 6: the same 5,000 straight on the teacher's server, then through two relays, in one
  # run: the relays' p99 against the direct one, and what each relay spends per 1,000 students.
  run --label "5,000 direct" --local 5000 --remote 0 --rate 10 | tee -a "$RESULTS"
  run --label "5,000 remote on two relays" --local 0 --remote 5000 --rate 10 | tee -a "$RESULTS"
fi

# Nothing lost, and the table.
python3 - "$RESULTS" "$OUT/relay.md" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
lost = [(r["label"], g) for r in rows for g in ("local", "remote") if r[g]["students"] and r[g]["received"] < r[g]["expected"]]
out = ["| run | group | students | p50 | p99 | max | delivered | server CPU | relay CPU (each) | relay RSS (each) |", "|---|---|---|---|---|---|---|---|---|---|"]
for r in rows:
    procs = r["processes"]
    server, relays = procs[0], procs[1:]
    cpu = " / ".join("%.1f%%" % p["cpu_percent"] for p in relays)
    rss = " / ".join("%.0f MiB" % p["rss_mib"] for p in relays)
    for g in ("local", "remote"):
        x = r[g]
        if not x["students"]:
            continue
        out.append(f'| {r["label"]} | {g} | {x["students"]} | {x["p50_ms"]:.2f} ms | {x["p99_ms"]:.2f} ms | {x["max_ms"]:.2f} ms | {x["received"]}/{x["expected"]} | '
                   f'{server["cpu_percent"]:.1f}% | {cpu} | {rss} |')
direct = next((r["local"] for r in rows if r["label"] == "5,000 direct"), None)
remote = next((r for r in rows if r["label"] == "5,000 remote on two relays"), None)
if direct and remote:
    relays = remote["processes"][1:]
    per = remote["remote"]["students"] / max(1, len(relays)) / 1000
    out.append("")
    out.append(f'5,000 through two relays against 5,000 direct, same run: p99 {remote["remote"]["p99_ms"]:.1f} ms against '
               f'{direct["p99_ms"]:.1f} ms ({remote["remote"]["p99_ms"] / max(direct["p99_ms"], 1e-9):.2f}×; issue 24 asks ≤ 1.25×). '
               f'Each relay per 1,000 remote students: ' + ", ".join(
                   f'{p["cpu_percent"] / per:.1f}% of a core and {p["rss_mib"] / per:.1f} MiB' for p in relays) + ".")
out.append("")
out.append(f'Signing a change: {rows[0]["sign_us"]:.1f} µs; checking one: {rows[0]["verify_us"]:.1f} µs (this machine, one core).')
open(sys.argv[2], "w").write("\n".join(out) + "\n")
print("\n".join(out))
if lost:
    sys.exit(f"changes lost: {lost}")
PY
