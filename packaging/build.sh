#!/usr/bin/env bash
# Builds every package these machines can build, into target/packages/ with a SHA256SUMS:
#   lectern_VERSION_amd64.deb        the headless server and relay, for school servers (cargo-deb)
#   lectern-app_VERSION_amd64.deb    the desktop app, teacher and student modes (the Tauri bundler)
#   lectern-app-VERSION-1.x86_64.rpm the same app for Fedora, openSUSE and the like
# Windows (NSIS, MSI) and macOS (dmg) are built on hosted runners by .github/workflows/release.yml;
# AppImage needs a download and Android/iOS a toolchain these machines do not have (docs/INSTALL.md).
# Run `bash .ci/setup` first on a fresh machine. The version is the workspace's (Cargo.toml).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lectern-target}"
export PATH="$HOME/.cargo/bin:$PATH"
out="$root/target/packages"
staging="$root/target/staging"
rm -rf "$out" "$staging"
mkdir -p "$out" "$staging/man"

command -v cargo-deb >/dev/null 2>&1 || cargo install cargo-deb --locked --version '^3'

echo "packages: the web UI"
npm --prefix ui run build --silent >/dev/null

echo "packages: lectern (headless)"
cargo build --release --locked -p lectern
"$CARGO_TARGET_DIR/release/lectern" manpages "$staging/man"
gzip -9n "$staging/man"/*.1
cargo deb --locked -p lectern --no-build --strip --output "$out/"

echo "packages: lectern-app (deb, rpm)"
# The release profile keeps debug info for benchmarks; the packaged app does not need it. Built
# once, stripped, then bundled.
npm --prefix ui exec -- tauri build --ci --no-bundle
strip "$CARGO_TARGET_DIR/release/lectern-app"
rm -rf "$CARGO_TARGET_DIR/release/bundle"
npm --prefix ui exec -- tauri bundle --ci --bundles deb,rpm
cp "$CARGO_TARGET_DIR"/release/bundle/deb/*.deb "$CARGO_TARGET_DIR"/release/bundle/rpm/*.rpm "$out/"

(cd "$out" && sha256sum -- *.deb *.rpm >SHA256SUMS)
echo "packages: written to $out"
cat "$out/SHA256SUMS"
