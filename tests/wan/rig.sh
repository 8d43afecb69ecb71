#!/usr/bin/env bash
# The internet on one machine (docs/RELAY.md, "The internet rig"): network namespaces for a school, a
# cloud and homes, joined by emulated links. This kernel has no netem, so each direction of each link
# is a `lectern-netem` process holding the packets that arrive on a veth (iptables NFQUEUE, in the
# namespace they arrive in) until the link would have delivered them: a rate with a buffer, a delay
# with jitter kept in order, and random loss. Sourced by tests/wan/check.sh and tests/bench/run.sh
# --wan; needs root. Nothing leaves the namespaces, and wan_down removes them.
#
#   source tests/wan/rig.sh
#   wan_up                  # the school and the cloud, joined by a 20 ms uplink (10 ms each way)
#   wan_home mobile 120 30 2 4      # a home cell: RTT 120 ms ± 30, 2% loss each way, 4 Mbit/s
#   wan_addr mobile         # the home's address (the cloud is CLOUD_ON_<cell>, the school SCHOOL_ADDR)
#   wan_down
#
#   WAN_SCHOOL, WAN_CLOUD and WAN_HOME_<cell> name the namespaces; the cloud's address on the
#   school's link is WAN_CLOUD_ADDR, on a home's link wan_cloud_addr CELL.
#
# Homes reach the cloud only (relays, as students at home do); the school reaches the cloud (Redis).
# A cell's RTT and jitter are split evenly between its two directions; jitter is uniform within ±.

WAN_NETEM="${WAN_NETEM:-${CARGO_TARGET_DIR:-$HOME/.cache/lectern-target}/release/lectern-netem}"
WAN_PIDS=()
WAN_CELLS=()

wan_need() {
  local missing=()
  command -v iptables >/dev/null 2>&1 || missing+=(iptables)
  command -v ethtool >/dev/null 2>&1 || missing+=(ethtool)
  command -v ping >/dev/null 2>&1 || missing+=(iputils-ping)
  command -v iperf3 >/dev/null 2>&1 || missing+=(iperf3)
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  [ -x "$WAN_NETEM" ] || { echo "build lectern-netem first (cargo build --release -p lectern-bench)" >&2; return 1; }
}

# wan_session: what a measured run on the rig shares: redis-server at hand, a work folder ($WORK), the
# processes it starts ($PIDS: stopped on exit, then the rig is taken down) and `ready FILE WHAT`, which
# waits for a process's ready line.
wan_session() {
  command -v redis-server >/dev/null 2>&1 || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null
  }
  WORK=$(mktemp -d)
  PIDS=()
  trap wan_session_end EXIT
}
wan_session_end() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  wan_down # (its emulators are background jobs too: a bare `wait` would wait for them for ever)
  rm -rf "$WORK" "${WAN_DIR:-}"
}
ready() { for _ in $(seq 400); do [ -s "$1" ] && return 0; sleep 0.05; done; echo "$2 did not start: $(cat "$1.err" 2>/dev/null)" >&2; return 1; }

# wan_relay LECTERN: Redis and one relay (the binary LECTERN) in the cloud, as every measured run has
# them; sets RELAY_PID, and the relay's ready line is in $WORK/relay.
wan_relay() {
  ip netns exec "$WAN_CLOUD" redis-server --port 6379 --bind 0.0.0.0 --protected-mode no --save "" \
    --appendonly no --dir "$WORK" >/dev/null &
  PIDS+=($!)
  for _ in $(seq 200); do ip netns exec "$WAN_CLOUD" redis-cli ping >/dev/null 2>&1 && break; sleep 0.05; done
  ip netns exec "$WAN_CLOUD" "$1" relay --json --redis redis://127.0.0.1:6379 --listen 0.0.0.0:7443 \
    >"$WORK/relay" 2>"$WORK/relay.err" &
  PIDS+=($!); RELAY_PID=$!
  ready "$WORK/relay" "lectern relay"
}

# wan_pair NS_A DEV_A ADDR_A NS_B DEV_B ADDR_B: a veth pair between two namespaces, offloads off (one
# packet on the wire is one packet held and one packet lost).
wan_pair() {
  ip link add "$2" netns "$1" type veth peer name "$5" netns "$4"
  ip -n "$1" addr add "$3/30" dev "$2"
  ip -n "$4" addr add "$6/30" dev "$5"
  for ns_dev in "$1:$2" "$4:$5"; do
    ip -n "${ns_dev%%:*}" link set "${ns_dev##*:}" up
    ip netns exec "${ns_dev%%:*}" ethtool -K "${ns_dev##*:}" tso off gso off gro off >/dev/null 2>&1 || true
  done
}

# wan_shape NS DEV QUEUE ONE_WAY_MS JITTER_MS LOSS_PCT RATE_MBIT [ORDER]: what arrives on DEV in NS
# goes through queue QUEUE of a lectern-netem shaping it so; ORDER is what jitter keeps in order (link,
# or flow: each connection on a path of its own).
wan_shape() {
  ip netns exec "$1" iptables -A INPUT -i "$2" -j NFQUEUE --queue-num "$3"
  ip netns exec "$1" chrt -f 5 "$WAN_NETEM" --queue "$3" --delay-ms "$4" --jitter-ms "$5" --loss "$6" \
    --rate-mbit "$7" --order "${8:-link}" >"$WAN_DIR/netem-$1-$3.json" 2>"$WAN_DIR/netem-$1-$3.err" &
  WAN_PIDS+=($!)
  for _ in $(seq 100); do grep -q ready "$WAN_DIR/netem-$1-$3.err" 2>/dev/null && return 0; sleep 0.02; done
  echo "lectern-netem on $1 queue $3 did not start: $(cat "$WAN_DIR/netem-$1-$3.err")" >&2
  return 1
}

wan_up() {
  [ "$(id -u)" -eq 0 ] || { echo "the internet rig needs root (network namespaces)" >&2; return 1; }
  wan_need || return 1
  local id=$(( $$ % 10000 ))
  WAN_ID=$id
  WAN_DIR=$(mktemp -d)
  WAN_SCHOOL="lwan${id}school"; WAN_CLOUD="lwan${id}cloud"
  ip netns add "$WAN_SCHOOL"
  ip netns add "$WAN_CLOUD"
  ip -n "$WAN_SCHOOL" link set lo up
  ip -n "$WAN_CLOUD" link set lo up
  SCHOOL_ADDR=10.216.0.1; WAN_CLOUD_ADDR=10.216.0.2
  wan_pair "$WAN_SCHOOL" ws0 "$SCHOOL_ADDR" "$WAN_CLOUD" wc0 "$WAN_CLOUD_ADDR"
  # The school's uplink: 20 ms round trip, 100 Mbit/s, no loss.
  wan_shape "$WAN_CLOUD" wc0 1 10 0 0 100
  wan_shape "$WAN_SCHOOL" ws0 1 10 0 0 100
  export WAN_SCHOOL WAN_CLOUD SCHOOL_ADDR WAN_CLOUD_ADDR WAN_DIR
}

# wan_home CELL RTT_MS JITTER_MS LOSS_PCT RATE_MBIT: a home cell on its own link to the cloud, its
# jitter kept in order per connection (each student a home of its own; one flow, such as check.sh's
# pings, sees exactly the link).
wan_home() {
  local cell=$1 n=$(( ${#WAN_CELLS[@]} + 1 ))
  local ns="lwan${WAN_ID}h$n"
  WAN_CELLS+=("$cell")
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  wan_pair "$ns" wh0 "10.216.$n.1" "$WAN_CLOUD" "wc$n" "10.216.$n.2"
  local one_way jitter
  one_way=$(python3 -c "print($2 / 2)"); jitter=$(python3 -c "print($3 / 2)")
  # Each connection keeps its own order: the students a cell holds are as many homes (WAN_ORDER=link
  # gives the whole cell one order, as before issue 24's third session).
  wan_shape "$WAN_CLOUD" "wc$n" $(( n + 1 )) "$one_way" "$jitter" "$4" "$5" "${WAN_ORDER:-flow}"
  wan_shape "$ns" wh0 1 "$one_way" "$jitter" "$4" "$5" "${WAN_ORDER:-flow}"
  printf -v "WAN_HOME_$cell" '%s' "$ns"
  export "WAN_HOME_$cell"
}

# wan_ns CELL: the home cell's namespace.
wan_ns() { local v="WAN_HOME_$1"; echo "${!v}"; }

# wan_addr CELL: the home's address; wan_cloud_addr CELL: the cloud's on that home's link.
wan_addr() { local i; for i in "${!WAN_CELLS[@]}"; do [ "${WAN_CELLS[$i]}" = "$1" ] && echo "10.216.$(( i + 1 )).1"; done; }
wan_cloud_addr() { local i; for i in "${!WAN_CELLS[@]}"; do [ "${WAN_CELLS[$i]}" = "$1" ] && echo "10.216.$(( i + 1 )).2"; done; }

# wan_down: stops the emulators (each prints what it did into $WAN_DIR) and removes the namespaces.
wan_down() {
  local p
  for p in "${WAN_PIDS[@]+"${WAN_PIDS[@]}"}"; do kill "$p" 2>/dev/null || true; done
  for p in "${WAN_PIDS[@]+"${WAN_PIDS[@]}"}"; do wait "$p" 2>/dev/null || true; done
  WAN_PIDS=()
  local cell
  for cell in "${WAN_CELLS[@]+"${WAN_CELLS[@]}"}"; do ip netns del "$(wan_ns "$cell")" 2>/dev/null || true; done
  WAN_CELLS=()
  # (Also when wan_up never ran or stopped early: an exit trap must get to the end.)
  [ -n "${WAN_SCHOOL:-}" ] && { ip netns del "$WAN_SCHOOL" 2>/dev/null || true; }
  [ -n "${WAN_CLOUD:-}" ] && { ip netns del "$WAN_CLOUD" 2>/dev/null || true; }
  return 0 # (what the emulators wrote stays in $WAN_DIR for the caller to read, then remove)
}
