#!/usr/bin/env bash
# The install test (root): installs the packages of `bash packaging/build.sh` into a clean Debian 12
# root made with debootstrap from Debian's own packages, and checks what a school's IT person would:
#   - apt resolves every dependency of lectern_*.deb and lectern-app_*.deb;
#   - `lectern --version`, `lectern serve --json` as the service's user, and /healthz;
#   - the data folder is 0700 and the config file a 0640 conffile;
#   - the systemd units pass `systemd-analyze verify`;
#   - the installed app starts under Xvfb in teacher mode, prints its ready line, and a protocol
#     student joins it; a screenshot of its window is saved (target/install/app.png);
#   - `apt-get remove` keeps the data and `apt-get purge` removes it;
#   - the rpm's metadata, file list and dependencies (rpm -qip, -qlp, -qRp).
# The clean root is cached as a tarball in ~/.cache/lectern-install (and apt's downloads beside it), so
# repeat runs take about a minute. Network: only the Debian mirror apt is configured with.
set -euo pipefail
# Every mount below stays in a mount namespace of this test's own: nothing it binds or mounts can
# reach the host's /dev, even if the test is killed before it cleans up.
if [ -z "${LECTERN_INSTALL_UNSHARED:-}" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "install test: needs root (debootstrap, chroot)" >&2; exit 1; }
  exec unshare --mount --propagation private env LECTERN_INSTALL_UNSHARED=1 bash "$0" "$@"
fi
repo="$(cd "$(dirname "$0")/../.." && pwd)"
pkgs="$repo/target/packages"
out="$repo/target/install"
cache="${LECTERN_INSTALL_CACHE:-$HOME/.cache/lectern-install}"
host_bin="${LECTERN_HOST_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/lectern-target}/release/lectern}"
ls "$pkgs"/lectern_*.deb "$pkgs"/lectern-app_*.deb "$pkgs"/lectern-app-*.rpm >/dev/null
mkdir -p "$cache/apt-archives/partial" "$out"

pass=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
fail() { echo "FAIL $*" >&2; exit 1; }

# The Debian mirror apt on this machine already uses (its debian.sources or sources.list), never a
# host of our own choosing; LECTERN_DEBIAN_MIRROR to name one.
mirror="${LECTERN_DEBIAN_MIRROR:-}"
[ -n "$mirror" ] || mirror="$(grep -hoE '^URIs: *\S+' /etc/apt/sources.list.d/debian.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1)"
[ -n "$mirror" ] || mirror="$(grep -hoE '^deb +\S+' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | grep -v security | head -1)"
[ -n "$mirror" ] || fail "no Debian mirror configured in apt's sources"

tarball="$cache/bookworm-minbase.tar.gz"
if [ ! -s "$tarball" ]; then
  echo "install test: debootstrap bookworm from $mirror (once; cached in $tarball)"
  boot="$(mktemp -d /tmp/lectern-debootstrap.XXXXXX)"
  debootstrap --variant=minbase --keyring=/usr/share/keyrings/debian-archive-keyring.gpg bookworm "$boot" "$mirror" \
    >"$cache/debootstrap.log" 2>&1 ||
    { tail -20 "$cache/debootstrap.log" >&2; fail "debootstrap"; }
  tar -C "$boot" -czf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
  rm -rf "$boot"
fi

work="$(mktemp -d /tmp/lectern-install.XXXXXX)"
root="$work/root"
mounts=()
pids=()
display=""
for n in $(seq 90 120); do [ -e "/tmp/.X11-unix/X$n" ] || [ -e "/tmp/.X$n-lock" ] || { display=":$n"; break; }; done
cleanup() {
  for p in "${pids[@]}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done
  # Whatever still runs inside the root (the app's helpers) goes too, before the unmounts.
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -9 "${p#/proc/}" 2>/dev/null || true
  done
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[$i]}" 2>/dev/null || true; done
  # Never delete through a mount that is still there.
  if findmnt -R "$root" >/dev/null 2>&1; then
    echo "install test: mounts left under $root; not deleting it" >&2
  else
    rm -rf --one-file-system "$work"
  fi
}
trap cleanup EXIT
mkdir -p "$root"
tar -C "$root" -xzf "$tarball"
chmod 0755 "$root" # the root's own mode came from a private temporary folder
bind() { mkdir -p "$root$2"; mount --bind "$1" "$root$2"; mounts+=("$root$2"); }
mount -t proc proc "$root/proc" && mounts+=("$root/proc")
mount -t sysfs sys "$root/sys" && mounts+=("$root/sys")
bind /dev /dev
bind /dev/pts /dev/pts
mount -t tmpfs shm "$root/dev/shm" && mounts+=("$root/dev/shm")
bind "$cache/apt-archives" /var/cache/apt/archives
cp /etc/resolv.conf "$root/etc/resolv.conf"
# Nothing is started by the packages' scripts inside the root (no init runs there).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d" && chmod +x "$root/usr/sbin/policy-rc.d"
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

mkdir -p "$root/tmp/pkgs"
cp "$pkgs"/lectern_*.deb "$pkgs"/lectern-app_*.deb "$root/tmp/pkgs/"
in_root apt-get update -qq >"$out/apt-install.log" 2>&1 || { cat "$out/apt-install.log" >&2; fail "apt-get update"; }
in_root sh -c 'cd /tmp/pkgs && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ./lectern_*.deb ./lectern-app_*.deb' \
  >>"$out/apt-install.log" 2>&1 || { tail -30 "$out/apt-install.log" >&2; fail "apt-get install of both packages"; }
ok "apt-get install ./lectern_*.deb ./lectern-app_*.deb resolves every dependency in a clean Debian 12"

version="$(grep -m1 -E '^version *=' "$repo/Cargo.toml" | sed -E 's/.*"(.*)"/\1/')"
[ "$(in_root lectern --version)" = "lectern $version" ] || fail "lectern --version: $(in_root lectern --version)"
ok "lectern --version says $version, the workspace's version"

# The package's files: a system user, a private data folder, a config file only it and root read.
# (Owners are read inside the root: its users are not this machine's.)
[ "$(in_root stat -c '%a %U' /var/lib/lectern)" = "700 lectern" ] || fail "/var/lib/lectern: $(in_root stat -c '%a %U' /var/lib/lectern)"
[ "$(in_root stat -c '%a %U %G' /etc/lectern/lectern.toml)" = "640 root lectern" ] || fail "lectern.toml: $(in_root stat -c '%a %U %G' /etc/lectern/lectern.toml)"
in_root dpkg-query -W -f='${Conffiles}\n' lectern | grep -q '/etc/lectern/lectern.toml' || fail "lectern.toml is not a conffile"
in_root man -w lectern-serve >/dev/null 2>&1 || [ -f "$root/usr/share/man/man1/lectern-serve.1.gz" ] || fail "no manual page"
ok "/var/lib/lectern is 0700 lectern, /etc/lectern/lectern.toml a 0640 conffile, lectern-serve(1) installed"

# The server as the service runs it (its user, its config, its data folder), on loopback.
setsid chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 LECTERN_LOG=warn \
  runuser -u lectern -- lectern serve --json --no-mdns --listen 127.0.0.1:0 \
  --config /etc/lectern/lectern.toml --data-dir /var/lib/lectern >"$work/serve.out" 2>"$out/serve.err" &
serve_pid=$!
pids+=($serve_pid)
for _ in $(seq 1 200); do grep -q '"ready"' "$work/serve.out" 2>/dev/null && break; sleep 0.05; done
http="$(grep -m1 '"ready"' "$work/serve.out" || true)"
http="$(echo "$http" | sed -E 's/.*"http":"([^"]+)".*/\1/')"
[ -n "$http" ] || { cat "$out/serve.err" >&2; fail "lectern serve --json printed no ready line"; }
curl -sfk "$http/healthz" | grep -q '"status":"ok"' || fail "/healthz at $http"
ok "lectern serve --json starts as the lectern user and /healthz answers ok ($http)"
kill -TERM -- "-$serve_pid" 2>/dev/null || true
wait "$serve_pid" 2>/dev/null || true
for _ in $(seq 1 100); do pgrep -s "$serve_pid" >/dev/null || break; sleep 0.05; done
pgrep -s "$serve_pid" >/dev/null && { ps -o pid,stat,args -s "$serve_pid" >&2; fail "lectern serve did not stop on SIGTERM"; }
[ -f "$root/var/lib/lectern/lectern.db" ] || fail "the server kept no session log"

# Installing the same packages again (a repair) keeps the data, the modes and the conffile.
echo 'name = "Room 12"' >>"$root/etc/lectern/lectern.toml"
in_root sh -c 'cd /tmp/pkgs && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall -o Dpkg::Options::=--force-confold ./lectern_*.deb' \
  >>"$out/apt-install.log" 2>&1 || fail "apt-get install --reinstall"
grep -q 'Room 12' "$root/etc/lectern/lectern.toml" || fail "a reinstall replaced the edited config file"
[ "$(in_root stat -c '%a %U' /var/lib/lectern)" = "700 lectern" ] && [ -f "$root/var/lib/lectern/lectern.db" ] ||
  fail "a reinstall changed the data folder"
ok "a reinstall keeps the edited config file, the data and its modes"

# The units, checked by systemd itself (installed for the check only; man-db so that their
# Documentation= pages are checked too).
in_root sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd man-db' >>"$out/apt-install.log" 2>&1
mkdir -p "$root/etc/lectern/relay-check"
echo 'LECTERN_REDIS=redis://127.0.0.1:6379' >"$root/etc/lectern/relay-check.env"
touch "$root/etc/lectern/relay-check/cert.pem" "$root/etc/lectern/relay-check/key.pem"
in_root systemd-analyze verify lectern.service lectern-relay@check.service >"$out/verify.log" 2>&1 ||
  { cat "$out/verify.log" >&2; fail "systemd-analyze verify"; }
[ ! -s "$out/verify.log" ] || { cat "$out/verify.log" >&2; fail "systemd-analyze verify warned"; }
rm -rf "$root/etc/lectern/relay-check" "$root/etc/lectern/relay-check.env"
ok "lectern.service and lectern-relay@.service pass systemd-analyze verify"

# The installed app, in teacher mode, on a virtual screen; a protocol student joins it.
Xvfb "$display" -screen 0 1280x860x24 -nolisten tcp >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do [ -S "/tmp/.X11-unix/X${display#:}" ] && break; sleep 0.05; done
bind /tmp/.X11-unix /tmp/.X11-unix
mkdir -p "$root/tmp/app" "$root/tmp/xdg" && chmod 0700 "$root/tmp/xdg"
setsid chroot "$root" env -i PATH=/usr/bin:/bin HOME=/tmp/app LANG=C.UTF-8 DISPLAY="$display" XDG_RUNTIME_DIR=/tmp/xdg \
  LECTERN_NO_MDNS=1 LECTERN_LISTEN=127.0.0.1:0 LECTERN_LOG=warn \
  lectern-app --mode teacher --data-dir /tmp/app/data --json >"$work/app.out" 2>"$out/app.err" &
pids+=($!)
for _ in $(seq 1 600); do grep -q '"ready"' "$work/app.out" 2>/dev/null && break; sleep 0.05; done
line="$(grep -m1 '"ready"' "$work/app.out" || true)"
[ -n "$line" ] || { tail -20 "$out/app.err" >&2; fail "the installed app printed no ready line"; }
field() { echo "$line" | sed -E "s/.*\"$1\":\"([^\"]+)\".*/\1/"; }
link="$(field http)/join#code=$(field code)&fp=$(field fingerprint)"
ok "the installed app starts under Xvfb in teacher mode and prints its ready line"
timeout 30 "$host_bin" join "$link" --name "Install check" --json --data-dir "$work/student" >"$work/join.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 400); do grep -q '"connected"' "$work/join.out" 2>/dev/null && break; sleep 0.05; done
grep -q '"connected"' "$work/join.out" || { cat "$work/join.out" >&2; fail "a protocol student could not join the installed app"; }
ok "a protocol student (lectern join) joins the installed app's class"
# The window (1180x800 at the screen's corner), once it has drawn its console with the QR code and
# the lesson's first page (neither area one flat colour).
busy() { [ "$(convert "$out/app.png" -crop "$1" -format '%[fx:standard_deviation>0.05]' info: 2>/dev/null)" = 1 ]; }
drawn() { busy 110x110+838+271 && busy 280x130+260+390; }
for _ in $(seq 1 300); do
  import -display "$display" -window root "$out/app.png" 2>/dev/null && drawn && break
  sleep 0.1
done
drawn || fail "the app's window stayed blank ($out/app.png)"
ok "a screenshot of the installed app's window: $out/app.png"
for p in "${pids[@]}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done
pids=()

# Remove keeps the lessons; purge deletes them.
in_root sh -c 'DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq lectern lectern-app' >>"$out/apt-install.log" 2>&1
[ -f "$root/var/lib/lectern/lectern.db" ] || fail "apt-get remove deleted the data"
[ -f "$root/etc/lectern/lectern.toml" ] || fail "apt-get remove deleted the config file"
ok "apt-get remove leaves /var/lib/lectern and the config file"
in_root sh -c 'DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq lectern' >>"$out/apt-install.log" 2>&1
[ ! -e "$root/var/lib/lectern" ] || fail "apt-get purge left /var/lib/lectern"
[ ! -e "$root/etc/lectern" ] || fail "apt-get purge left /etc/lectern"
ok "apt-get purge removes /var/lib/lectern and /etc/lectern"

# The rpm, read with Debian's rpm: metadata, files, dependencies.
rpmfile="$(ls "$pkgs"/lectern-app-*.rpm | head -1)"
info="$(rpm -qip "$rpmfile" 2>/dev/null)"
echo "$info" | grep -qE '^Name *: lectern-app' || fail "rpm name: $info"
echo "$info" | grep -qE "^Version *: $version" || fail "rpm version"
echo "$info" | grep -qE '^License *: MIT OR Apache-2.0' || fail "rpm licence"
files="$(rpm -qlp "$rpmfile" 2>/dev/null)"
for f in /usr/bin/lectern-app /usr/share/applications/lectern-app.desktop \
  /usr/share/icons/hicolor/16x16/apps/lectern-app.png /usr/share/icons/hicolor/512x512/apps/lectern-app.png \
  /usr/share/licenses/lectern-app/LICENSE-MIT; do
  echo "$files" | grep -qx "$f" || fail "the rpm lacks $f"
done
requires="$(rpm -qRp "$rpmfile" 2>/dev/null)"
echo "$requires" | grep -q '^webkit2gtk4.1' && echo "$requires" | grep -q '^gtk3' || fail "rpm requires: $requires"
ok "the rpm: lectern-app $version, MIT OR Apache-2.0, its binary, desktop entry, icons and licence; requires webkit2gtk4.1 and gtk3"

# The app's deb: desktop entry in English and Arabic, icons at every size.
desktop="$(dpkg-deb --fsys-tarfile "$(ls "$pkgs"/lectern-app_*.deb)" | tar -xO usr/share/applications/lectern-app.desktop)"
echo "$desktop" | grep -q '^Name=Lectern' && echo "$desktop" | grep -q '^Name\[ar\]=' &&
  echo "$desktop" | grep -q '^Comment\[ar\]=' && echo "$desktop" | grep -q 'x-scheme-handler/lectern' || fail "desktop entry: $desktop"
icons="$(dpkg-deb -c "$(ls "$pkgs"/lectern-app_*.deb)" | grep -oE 'hicolor/[0-9]+x[0-9]+/' | sort -u | wc -l)"
[ "$icons" -ge 8 ] || fail "only $icons icon sizes"
ok "the app's desktop entry is in English and Arabic and opens lectern:// links; icons at $icons sizes"

echo "install test: $pass checks passed"
