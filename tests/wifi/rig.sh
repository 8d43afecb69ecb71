#!/usr/bin/env bash
# A classroom's weak Wi-Fi on one machine: two network namespaces joined by a veth pair, the server in
# one ("srv") and the students in the other ("cli"). Sourced by tests/bench/run.sh --wifi and by the
# tests that need a lossy link; needs root. Nothing leaves the two namespaces, and wifi_down removes them.
#
#   source tests/wifi/rig.sh
#   wifi_up                 # makes the namespaces; sets WIFI_SRV WIFI_CLI WIFI_VS WIFI_VC WIFI_ADDR_S WIFI_ADDR_C
#   wifi_loss 0.05          # drops 5% of the packets from the server, where they arrive (the students' INPUT)
#   wifi_rate 20mbit        # limits what the server sends (tbf); wifi_rate off removes the limit
#   wifi_down
#
# Loss is dropped with `iptables -m statistic` in the receiving namespace, never in the sender's OUTPUT
# chain (TCP would see a local send error and retry on a 200 ms timer, which no radio loss does), and
# with segmentation and receive offloads off, so that one dropped packet is one lost segment.

wifi_need() {
  local missing=()
  command -v iptables >/dev/null 2>&1 || missing+=(iptables)
  command -v ethtool >/dev/null 2>&1 || missing+=(ethtool)
  command -v tc >/dev/null 2>&1 || missing+=(iproute2)
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

wifi_up() {
  [ "$(id -u)" -eq 0 ] || { echo "the lossy-link rig needs root (network namespaces)" >&2; return 1; }
  wifi_need
  local id=$(( $$ % 10000 )) sub=$(( $$ % 200 + 20 ))
  WIFI_SRV="lcw${id}s"; WIFI_CLI="lcw${id}c"; WIFI_VS="lws${id}"; WIFI_VC="lwc${id}"
  WIFI_ADDR_S="10.215.${sub}.1"; WIFI_ADDR_C="10.215.${sub}.2"
  ip netns add "$WIFI_SRV"
  ip netns add "$WIFI_CLI"
  ip link add "$WIFI_VS" netns "$WIFI_SRV" type veth peer name "$WIFI_VC" netns "$WIFI_CLI"
  ip -n "$WIFI_SRV" addr add "$WIFI_ADDR_S/24" dev "$WIFI_VS"
  ip -n "$WIFI_CLI" addr add "$WIFI_ADDR_C/24" dev "$WIFI_VC"
  for ns_dev in "$WIFI_SRV:$WIFI_VS" "$WIFI_CLI:$WIFI_VC" "$WIFI_SRV:lo" "$WIFI_CLI:lo"; do
    ip -n "${ns_dev%%:*}" link set "${ns_dev##*:}" up
  done
  ip netns exec "$WIFI_SRV" ethtool -K "$WIFI_VS" tso off gso off gro off >/dev/null 2>&1 || true
  ip netns exec "$WIFI_CLI" ethtool -K "$WIFI_VC" tso off gso off gro off >/dev/null 2>&1 || true
  export WIFI_SRV WIFI_CLI WIFI_VS WIFI_VC WIFI_ADDR_S WIFI_ADDR_C
}

# wifi_loss P: drop the fraction P (0 to 1) of the packets the students' namespace receives.
wifi_loss() {
  ip netns exec "$WIFI_CLI" iptables -F INPUT
  if [ "$1" != 0 ] && [ "$1" != 0.0 ]; then
    ip netns exec "$WIFI_CLI" iptables -A INPUT -i "$WIFI_VC" -m statistic --mode random --probability "$1" -j DROP
  fi
}

# wifi_rate RATE|off: limit what the server's end sends (a classroom access point's share).
wifi_rate() {
  if [ "$1" = off ]; then
    ip netns exec "$WIFI_SRV" tc qdisc del dev "$WIFI_VS" root 2>/dev/null || true
  else
    ip netns exec "$WIFI_SRV" tc qdisc replace dev "$WIFI_VS" root tbf rate "$1" burst 32kb latency 400ms
  fi
}

wifi_down() {
  ip netns del "$WIFI_SRV" 2>/dev/null || true
  ip netns del "$WIFI_CLI" 2>/dev/null || true
}
