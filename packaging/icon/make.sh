#!/usr/bin/env bash
# Renders Lectern's icon (an open book with its spine marked, on the app's blue) at 1024 px with
# ImageMagick, then every icon the bundles need into src-tauri/icons: the hicolor PNG sizes for Linux
# (16 to 512, RGBA), icon.ico for Windows and icon.icns for macOS (the Tauri CLI's `tauri icon`).
# Run it after changing the drawing; its output is committed.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
icons="$root/src-tauri/icons"
src="$(mktemp -d)/lectern-1024.png"
convert -size 1024x1024 xc:none \
  -fill '#1f5f8b' -draw 'roundrectangle 32,32 991,991 168,168' \
  -fill '#fdf6e3' -draw 'polygon 192,300 494,340 494,800 192,750' -draw 'polygon 530,340 834,300 834,750 530,800' \
  -fill '#e0a526' -draw 'rectangle 494,240 530,840' \
  "PNG32:$src"
npm --prefix "$root/ui" exec -- tauri icon "$src" --output "$icons" >/dev/null
for size in 16 24 48 64 256 512; do
  convert "$src" -filter Lanczos -resize "${size}x${size}" "PNG32:$icons/${size}x${size}.png"
done
cp "$src" "$icons/icon.png"
rm -rf "$icons/android" "$icons/ios" # made by `tauri icon`; the mobile builds are not set up here
file "$icons"/*.png | grep -v RGBA && { echo "an icon is not RGBA" >&2; exit 1; }
echo "icons written to $icons"
