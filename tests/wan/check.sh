#!/usr/bin/env bash
# How true the internet rig is (tests/wan/rig.sh): for the school's uplink and each home cell, the
# round trips of 1,000 pings (user to user, `ping -U`, 5 ms apart) against what the cell asks for, and
# a TCP download's throughput (iperf3, 8 s, cloud to home) against its rate. Needs root.
#
#   tests/wan/check.sh              writes docs/bench/wan-rig.jsonl and docs/bench/wan-rig.md
#   tests/wan/check.sh --strict     (CI) also fails if a link is far from what it asks: a median round
#                                   trip off by more than a fifth or 10 ms, a p99 beyond the asked RTT
#                                   and jitter by more than a fifth, or a download under 70% of the rate
set -euo pipefail
STRICT="${1:-}"
cd "$(dirname "$0")/../.."
if [ "$(id -u)" -ne 0 ]; then
  echo "skipping: the internet rig needs root (network namespaces); CI runs as root"
  exit 0
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lectern-target}"
OUT="${OUT:-docs/bench}"
mkdir -p "$OUT"
cargo build --release --locked -q -p lectern-bench --bin lectern-netem
# shellcheck source=tests/wan/rig.sh
source tests/wan/rig.sh
trap wan_down EXIT
wan_up
# The three cells of issue 24: RTT, jitter (±), loss each way (%), rate (Mbit/s).
CELLS=("broadband 40 5 0.5 20" "mobile 120 30 2 4" "poor 250 60 5 1")
for c in "${CELLS[@]}"; do
  # shellcheck disable=SC2086
  wan_home $c
done

# ping_stats NS ADDR: one JSON object of the round trips (ms) and the loss of 1,000 pings.
ping_stats() {
  ip netns exec "$1" ping -n -q -c 5 -i 0.05 "$2" >/dev/null 2>&1 || true # neighbours resolved first
  ip netns exec "$1" ping -U -n -c 1000 -i 0.005 -W 3 "$2" 2>/dev/null | python3 -c '
import json, sys
times, sent, got = [], 0, 0
for line in sys.stdin:
    if "time=" in line:
        times.append(float(line.split("time=")[1].split()[0]))
    if "packets transmitted" in line:
        sent, got = int(line.split()[0]), int(line.split()[3])
times.sort()
q = lambda p: times[min(len(times) - 1, int(p * len(times)))] if times else None
print(json.dumps({"pings": sent, "lost_pct": round(100 * (sent - got) / max(sent, 1), 2),
                  "rtt_min": q(0), "rtt_p50": q(0.5), "rtt_p99": q(0.99), "rtt_max": times[-1] if times else None}))'
}

# tcp_mbit NS SERVER_NS ADDR: a TCP download from ADDR (in SERVER_NS) to NS, Mbit/s received.
tcp_mbit() {
  ip netns exec "$2" iperf3 -s -1 -p 5299 >/dev/null 2>&1 &
  local srv=$!
  sleep 0.3
  ip netns exec "$1" iperf3 -c "$3" -p 5299 -R -t 8 -J 2>/dev/null | python3 -c '
import json, sys
e = json.load(sys.stdin)["end"]
print(round(e["sum_received"]["bits_per_second"] / 1e6, 2))' || echo null
  wait "$srv" 2>/dev/null || true
}

RESULTS="$OUT/wan-rig.jsonl"; : >"$RESULTS"
measure() { # LABEL NS ADDR SERVER_NS RTT JITTER LOSS RATE
  local ping tcp
  ping=$(ping_stats "$2" "$3")
  tcp=$(tcp_mbit "$2" "$4" "$3")
  python3 -c "import json,sys; d=json.loads(sys.argv[1]); d.update(cell=sys.argv[2], want_rtt=float(sys.argv[3]), want_jitter=float(sys.argv[4]), want_loss_each_way=float(sys.argv[5]), want_mbit=float(sys.argv[6]), tcp_mbit=json.loads(sys.argv[7])); print(json.dumps(d))" \
    "$ping" "$1" "$5" "$6" "$7" "$8" "$tcp" | tee -a "$RESULTS"
}
measure "school uplink" "$WAN_SCHOOL" "$WAN_CLOUD_ADDR" "$WAN_CLOUD" 20 0 0 100
for c in "${CELLS[@]}"; do
  read -r cell rtt jitter loss rate <<<"$c"
  measure "$cell" "$(wan_ns "$cell")" "$(wan_cloud_addr "$cell")" "$WAN_CLOUD" "$rtt" "$jitter" "$loss" "$rate"
done

python3 - "$RESULTS" >"$OUT/wan-rig.md" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| link | asked: RTT, loss each way, rate | RTT min | p50 | p99 | max | ping loss (both ways) | TCP download |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    asked = f"{r['want_rtt']:g} ± {r['want_jitter']:g} ms, {r['want_loss_each_way']:g}%, {r['want_mbit']:g} Mbit/s"
    print(f"| {r['cell']} | {asked} | {r['rtt_min']} ms | {r['rtt_p50']} ms | {r['rtt_p99']} ms | {r['rtt_max']} ms "
          f"| {r['lost_pct']}% | {r['tcp_mbit']} Mbit/s |")
EOF
cat "$OUT/wan-rig.md"
if [ "$STRICT" = --strict ]; then
  python3 - "$RESULTS" <<'EOF'
import json, sys
bad = []
for r in map(json.loads, open(sys.argv[1])):
    rtt, jitter = r["want_rtt"], r["want_jitter"]
    if r["rtt_p50"] is None or abs(r["rtt_p50"] - rtt) > max(10, rtt / 5):
        bad.append(f"{r['cell']}: median round trip {r['rtt_p50']} ms, asked {rtt}")
    if r["rtt_p99"] is None or r["rtt_p99"] > (rtt + jitter) * 1.2 + 2:
        bad.append(f"{r['cell']}: p99 round trip {r['rtt_p99']} ms, asked {rtt} ± {jitter}")
    if r["tcp_mbit"] is None or r["tcp_mbit"] < 0.7 * r["want_mbit"]:
        bad.append(f"{r['cell']}: TCP {r['tcp_mbit']} Mbit/s, asked {r['want_mbit']}")
if bad:
    sys.exit("the rig is not the internet it was asked for:\n  " + "\n  ".join(bad))
EOF
fi
echo "emulators' verdicts (how late against their schedule):"
wan_down
trap - EXIT
cat "$WAN_DIR"/netem-*.json | python3 -c '
import json, sys
for line in sys.stdin:
    d = json.loads(line)
    s = d["stats"]
    print("  queue %s: %d packets, %d lost, %d past the buffer, late mean %.0f us, max %d us"
          % (d["queue"], s["packets"], s["lost"], s["overflowed"], s["late_mean_us"], s["late_max_us"]))'
rm -rf "$WAN_DIR"
