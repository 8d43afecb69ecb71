#!/usr/bin/env bash
# Page turns to students at home over the internet rig (tests/wan/rig.sh; issue 24): the teacher's
# server in the school, Redis and a relay in the cloud, and STUDENTS remote students in each home
# cell checking every signature, at RATE changes a second. Latency is from just before the teacher
# sends a change (its connection made in the school's namespace) to when a student at home has read
# it (the load generator runs in the home's namespace): one process, one clock. Needs root.
#
#   tests/wan/bench.sh      (also: tests/bench/run.sh --wan) writes docs/bench/wan.jsonl, wan.md
#
# Socket.IO with its Redis adapter runs on the same rig in the same run, for comparison
# (docs/bench/wan-socketio.jsonl).
#
# Each student is at a home of its own: a cell's link carries STUDENTS times the cell's rate (a cell is
# one namespace, one link), so the figures are not one 4 Mbit/s line shared by 30 devices.
# LINK=shared gives the whole cell the one rate instead.
#
# Environment: STUDENTS (30), RATE (4), SECONDS_PER_RUN (30), OUT (docs/bench), LINK (each or shared),
# ONLY (a cell's name: run just that one), SOCKETIO (1; 0 skips the comparison), LECTERN_BIN (the
# lectern binary to measure: another build's, for a before and after), RELAY_SYSCTL (kernel settings
# for the relay's namespace, "key=value ..."), PATHS ("1 2": each cell is run with one path per student,
# then with a second path (PROTOCOL-ADDITIONS N), one after the other in the same run).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" -ne 0 ]; then
  echo "skipping: the internet rig needs root (network namespaces)"
  exit 0
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lectern-target}"
# A run that is not the whole comparison (one cell, another binary, another shape) does not replace
# the committed figures unless OUT says so.
if [ -n "${ONLY:-}${LECTERN_BIN:-}${RELAY_SYSCTL:-}" ] || [ "${SOCKETIO:-1}" = 0 ] || [ "${LINK:-each}" != each ] ||
  [ "${WAN_ORDER:-flow}" != flow ] || [ "${PATHS:-1 2}" != "1 2" ]; then
  OUT="${OUT:-${CARGO_TARGET_DIR}/bench-wan}"
fi
OUT="${OUT:-docs/bench}"
STUDENTS="${STUDENTS:-30}"; RATE="${RATE:-4}"; SECS="${SECONDS_PER_RUN:-30}"
mkdir -p "$OUT"
cargo build --release --locked -q -p lectern -p lectern-bench
BIN="$CARGO_TARGET_DIR/release"
LECTERN="${LECTERN_BIN:-$BIN/lectern}"
LINK="${LINK:-each}"
# shellcheck source=tests/wan/rig.sh
source tests/wan/rig.sh
wan_session

wan_up
# RELAY_SYSCTL="key=value ...": kernel settings for the cloud's namespace (the relay's host), to try
# one. Only per-namespace settings (net.ipv4.tcp_*, say): others would stay on this machine.
read -ra sysctls <<<"${RELAY_SYSCTL:-}"
for kv in "${sysctls[@]+"${sysctls[@]}"}"; do ip netns exec "$WAN_CLOUD" sysctl -qw "$kv"; done
# The three cells of issue 24: RTT, jitter (±), loss each way (%), rate (Mbit/s).
CELLS=("broadband 40 5 0.5 20" "mobile 120 30 2 4" "poor 250 60 5 1")
if [ -n "${ONLY:-}" ]; then
  for c in "${CELLS[@]}"; do [ "${c%% *}" = "$ONLY" ] && CELLS=("$c") && break; done
  [ "${#CELLS[@]}" -eq 1 ] || { echo "ONLY=$ONLY names no cell (broadband, mobile, poor)" >&2; exit 1; }
fi
for c in "${CELLS[@]}"; do
  read -r cell rtt jitter loss rate <<<"$c"
  [ "$LINK" = shared ] || rate=$(python3 -c "print($rate * $STUDENTS)")
  wan_home "$cell" "$rtt" "$jitter" "$loss" "$rate"
done

# Redis and one relay in the cloud; the teacher's server in the school, bridged over the uplink.
wan_relay "$LECTERN"
ip netns exec "$WAN_SCHOOL" "$LECTERN" serve --json --no-mdns --data-dir "$WORK/teacher" \
  --listen "$SCHOOL_ADDR:8443" --redis "redis://$WAN_CLOUD_ADDR:6379" >"$WORK/server" 2>"$WORK/server.err" &
PIDS+=($!); SERVER_PID=$!
ready "$WORK/server" "lectern serve"

RESULTS="$OUT/wan.jsonl"; : >"$RESULTS"
read -ra paths <<<"${PATHS:-1 2}"
for c in "${CELLS[@]}"; do
  for npaths in "${paths[@]}"; do
  read -r cell rtt jitter loss rate <<<"$c"
  second=(); [ "$npaths" = 2 ] && second=(--second-path)
  # The relay as this home reaches it: the cloud's address on the home's link.
  relay=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r["addr"]=sys.argv[2]+":7443"; print(json.dumps(r))' \
    "$(head -1 "$WORK/relay")" "$(wan_cloud_addr "$cell")")
  # How the relay's TCP recovered what the cell lost: the cloud's counters before and after.
  ip netns exec "$WAN_CLOUD" nstat -asz >"$WORK/tcp-before" 2>/dev/null || true
  ip netns exec "$(wan_ns "$cell")" "$BIN/lectern-bench-relay" --server "$(head -1 "$WORK/server")" \
    --data-dir "$WORK/teacher" --server-pid "$SERVER_PID" --relay "$relay" --relay-pid "$RELAY_PID" \
    --local 0 --remote "$STUDENTS" --rate "$RATE" --seconds "$SECS" --verify --teacher-netns "$WAN_SCHOOL" \
    --label "$cell" "${second[@]+"${second[@]}"}" | python3 -c '
import json, sys
line = json.loads(sys.stdin.read())
rtt, jitter, loss, rate = map(float, sys.argv[1:5])
# The path from the teacher to a student at home: the school uplink (10 ms each way), then the cell.
line.update(cell_rtt_ms=rtt, cell_jitter_ms=jitter, cell_loss_pct=loss, cell_mbit=rate, one_way_ms=10 + rtt / 2,
            link=sys.argv[5])
def counters(text):
    return {f[0]: int(f[1]) for f in (l.split() for l in text.splitlines()) if len(f) >= 2 and f[1].isdigit()}
import subprocess  # (read now: the run above has ended)
now = subprocess.run(["ip", "netns", "exec", sys.argv[7], "nstat", "-asz"], capture_output=True, text=True).stdout
before, after = counters(open(sys.argv[6]).read()), counters(now)
# TCP in the cloud namespace: the relay connections to the home, and the Redis ones to the school
# (which lose nothing). None when nstat could not read them.
line["relay_tcp"] = None if not before or not after else {k: after.get(k, 0) - before.get(k, 0) for k in (
    "TcpOutSegs", "TcpRetransSegs", "TcpExtTCPLossProbes", "TcpExtTCPLossProbeRecovery",
    "TcpExtTCPSackRecovery", "TcpExtTCPTimeouts", "TcpExtTCPSpuriousRTOs", "TcpExtTCPDSACKRecv")}
print(json.dumps(line))' "$rtt" "$jitter" "$loss" "$rate" "$LINK" "$WORK/tcp-before" "$WAN_CLOUD" | tee -a "$RESULTS"
  done
done

# Socket.IO with its Redis adapter, the seeds' recipe, on the same rig in the same run: the teacher's
# node in the school, the students' node in the cloud, joined through the cloud's Redis (as Lectern's
# server and relay are). The same certificate as the teacher's server.
SIO_RESULTS="$OUT/wan-socketio.jsonl"
if [ "${SOCKETIO:-1}" = 0 ]; then
  CELLS=()
else
  (cd tests/bench/peers/socketio && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  : >"$SIO_RESULTS"
fi
FP=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["fingerprint"])' "$(head -1 "$WORK/server")")
for c in "${CELLS[@]}"; do
  read -r cell rtt jitter loss rate <<<"$c"
  # Fresh nodes for each cell: each node counts changes from its start.
  ip netns exec "$WAN_SCHOOL" env REDIS_URL="redis://$WAN_CLOUD_ADDR:6379" node tests/bench/peers/socketio/server.js \
    "$WORK/teacher" "$SCHOOL_ADDR" 9443 >"$WORK/sio-school" 2>"$WORK/sio-school.err" &
  SIO_SCHOOL=$!; PIDS+=($!)
  ready "$WORK/sio-school" "the school's Socket.IO node"
  ip netns exec "$WAN_CLOUD" env REDIS_URL="redis://127.0.0.1:6379" node tests/bench/peers/socketio/server.js \
    "$WORK/teacher" 0.0.0.0 9443 >"$WORK/sio-cloud" 2>"$WORK/sio-cloud.err" &
  SIO_PID=$!; PIDS+=($!)
  ready "$WORK/sio-cloud" "the cloud's Socket.IO node"
  ip netns exec "$(wan_ns "$cell")" "$BIN/lectern-bench" --target socketio \
    --ready "{\"ready\":true,\"host\":\"$(wan_cloud_addr "$cell")\",\"port\":9443}" --fingerprint "$FP" \
    --teacher-ready "$(head -1 "$WORK/sio-school")" --teacher-netns "$WAN_SCHOOL" --server-pid "$SIO_PID" \
    --students "$STUDENTS" --rate "$RATE" --seconds "$SECS" --label "$cell" | python3 -c '
import json, sys
line = json.loads(sys.stdin.read())
rtt, jitter, loss, rate = map(float, sys.argv[1:5])
line.update(cell_rtt_ms=rtt, cell_jitter_ms=jitter, cell_loss_pct=loss, cell_mbit=rate, one_way_ms=10 + rtt / 2,
            link=sys.argv[5])
print(json.dumps(line))' "$rtt" "$jitter" "$loss" "$rate" "$LINK" | tee -a "$SIO_RESULTS" \
    || echo "Socket.IO in the $cell cell lost changes (its report above counts them)" >&2
  kill "$SIO_SCHOOL" "$SIO_PID"; wait "$SIO_SCHOOL" "$SIO_PID" 2>/dev/null || true
  rm -f "$WORK/sio-school" "$WORK/sio-cloud"
done

python3 - "$RESULTS" >"$OUT/wan.md" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| cell (RTT, loss each way, rate) | paths | students | one-way | p50 | p99 | max | p99 − one-way | goal: one-way + RTT + 25 ms | stretch: one-way + 40 ms | delivered | bytes read a change | shown offline | relay CPU, RSS |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    g = r["remote"]
    relay = r["processes"][1] if len(r["processes"]) > 1 else {"cpu_percent": 0, "rss_mib": 0}
    goal = r["one_way_ms"] + r["cell_rtt_ms"] + 25
    stretch = r["one_way_ms"] + 40
    paths = 2 if g.get("second_path") else 1
    each = " each" if r.get("link", "shared") == "each" else ", shared"
    print(f"| {r['label']} ({r['cell_rtt_ms']:g} ± {r['cell_jitter_ms']:g} ms, {r['cell_loss_pct']:g}%, {r['cell_mbit']:g} Mbit/s{each}) "
          f"| {paths} | {g['students']} | {r['one_way_ms']:g} ms | {g['p50_ms']:.1f} ms | {g['p99_ms']:.1f} ms | {g['max_ms']:.1f} ms "
          f"| {g['p99_ms'] - r['one_way_ms']:.1f} ms | {goal:g} ms ({'met' if g['p99_ms'] <= goal else 'missed'}) "
          f"| {stretch:g} ms ({'met' if g['p99_ms'] <= stretch else 'missed'}) "
          f"| {g['received']}/{g['expected']} | {g.get('bytes_per_change', 0):.0f} B | {r.get('shown_offline', '?')} | {relay['cpu_percent']:.1f}%, {relay['rss_mib']:.0f} MiB |")
EOF
[ "${SOCKETIO:-1}" = 0 ] || python3 - "$SIO_RESULTS" >>"$OUT/wan.md" <<'EOF'
import json, sys
print()
print("Socket.IO with its Redis adapter, in the same run (the teacher's node in the school, the students' in the cloud):")
print()
print("| cell | students | one-way | p50 | p99 | max | p99 − one-way | lost | cloud node CPU s |")
print("|---|---|---|---|---|---|---|---|---|")
for r in (json.loads(l) for l in open(sys.argv[1])):
    print(f"| {r['label']} | {r['students']} | {r['one_way_ms']:g} ms | {r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms | {r['max_ms']:.1f} ms "
          f"| {r['p99_ms'] - r['one_way_ms']:.1f} ms | {r['lost']} | {r['server_cpu_seconds']:.2f} |")
EOF
cat "$OUT/wan.md"
