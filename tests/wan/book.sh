#!/usr/bin/env bash
# Students at home open a big scanned book through a relay (issue 24, item 3), on the internet rig
# (tests/wan/rig.sh): the teacher's server in the school shows a BOOK_PAGES-page scanned book (about
# 83 kB a page, a scanned Mushaf's shape) at page BOOK_PAGE; Redis and a relay are in the cloud;
# each home cell's students open the relay's link for the first time in one Chromium inside the
# home's namespace, together (tests/e2e/wanbook.mjs). Reports their time to the page and the bytes
# in the first SECONDS. Needs root.
#
#   tests/wan/book.sh          (also: tests/bench/run.sh --wan) writes docs/bench/wan-book.jsonl
#   BOOK_PAGES=120 SECONDS_MEASURED=0 STUDENTS=3 tests/wan/book.sh       a quick check (CI)
#
# Cells: "mobile" is issue 24's (RTT 120 ± 30 ms, 2% loss, 4 Mbit/s) with one student on it;
# "mobile×10" is ten such students, whose links the rig gives as one of ten times the rate (a cell
# is one namespace, one link).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" -ne 0 ]; then
  echo "skipping: the internet rig needs root (network namespaces)"
  exit 0
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lectern-target}"
OUT="${OUT:-docs/bench}"
PAGES="${BOOK_PAGES:-600}"; PAGE="${BOOK_PAGE:-300}"; STUDENTS="${STUDENTS:-10}"
[ "$PAGE" -le "$PAGES" ] || PAGE=$(( PAGES / 2 ))
mkdir -p "$OUT"
cargo build --release --locked -q -p lectern -p lectern-bench
BIN="$CARGO_TARGET_DIR/release"
# The browser harness's packages (Chromium itself is Debian's: .ci/setup).
[ -d tests/e2e/node_modules/ws ] && [ -d tests/e2e/node_modules/playwright-core ] ||
  npm --prefix tests/e2e install --no-audit --no-fund --loglevel=error
# shellcheck source=tests/wan/rig.sh
source tests/wan/rig.sh
wan_session

# The book: one scan, as its own JPEG object on every page.
convert -size 1050x1480 plasma:wheat-tan -blur 0x1 -quality 65 "$WORK/scan.jpg"
BOOK_BYTES=$(node --input-type=module -e '
import { scannedBook } from "./tests/e2e/book.mjs";
import { readFileSync } from "node:fs";
console.log(scannedBook(process.argv[1], Number(process.argv[2]), readFileSync(process.argv[3]), 1050, 1480));' \
  "$WORK/mushaf.pdf" "$PAGES" "$WORK/scan.jpg")

wan_up
wan_home mobile 120 30 2 4
wan_home mobile10 120 30 2 40
wan_relay "$BIN/lectern"
ip netns exec "$WAN_SCHOOL" "$BIN/lectern" serve --json --no-mdns --data-dir "$WORK/teacher" \
  --listen "$SCHOOL_ADDR:8443" --redis "redis://$WAN_CLOUD_ADDR:6379" --doc "$WORK/mushaf.pdf" --title Mushaf \
  >"$WORK/server" 2>"$WORK/server.err" &
PIDS+=($!)
ready "$WORK/server" "lectern serve"
READY=$(head -1 "$WORK/server")
ROOM=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["room"])' "$READY")
# The teacher's server puts the book into Redis when it is shown: wait until all of it is there.
head_key() { ip netns exec "$WAN_CLOUD" redis-cli --scan --pattern "lectern:{$ROOM}:doc:*" | grep -E ':doc:[0-9a-f]{64}$' | head -1; }
for _ in $(seq 600); do
  key=$(head_key || true)
  [ -n "$key" ] && ip netns exec "$WAN_CLOUD" redis-cli GET "$key" | grep -q '"done":true' && break
  sleep 0.2
done
# The teacher's public key (base64url), from the signing key in its data directory.
PK=$(node -e '
const { createPrivateKey, createPublicKey } = require("node:crypto");
const seed = require("node:fs").readFileSync(process.argv[1]);
const der = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]);
console.log(createPublicKey(createPrivateKey({ key: der, format: "der", type: "pkcs8" })).export({ format: "jwk" }).x);' \
  "$WORK/teacher/signing.key")
HOMES=$(python3 -c '
import json, sys
print(json.dumps([{"cell": "mobile", "ns": sys.argv[1], "relay": sys.argv[2] + ":7443", "students": 1},
                  {"cell": "mobile×10", "ns": sys.argv[3], "relay": sys.argv[4] + ":7443", "students": int(sys.argv[5])}]))' \
  "$(wan_ns mobile)" "$(wan_cloud_addr mobile)" "$(wan_ns mobile10)" "$(wan_cloud_addr mobile10)" "$STUDENTS")
: >"$OUT/wan-book.jsonl"
ip netns exec "$WAN_SCHOOL" env WAN_READY="$READY" WAN_PK="$PK" WAN_HOMES="$HOMES" BOOK_BYTES="$BOOK_BYTES" RELAY_PID="$RELAY_PID" \
  BOOK_PAGE="$PAGE" SECONDS="${SECONDS_MEASURED:-60}" OUT="$OUT" node tests/e2e/wanbook.mjs
