#!/usr/bin/env bash
# Screenshot of the real window on the built-in sample, for the README (needs Xvfb and ImageMagick:
# apt-get install -y xvfb imagemagick libxcb-cursor0).   usage: scripts/screenshot.sh [OUT.png]
set -euo pipefail
out="${1:-docs/main-window.png}"
export DISPLAY=:97 XDG_CONFIG_HOME="$(mktemp -d)"
Xvfb "$DISPLAY" -screen 0 1600x1000x24 >/dev/null 2>&1 &
xvfb=$!
trap 'kill $xvfb $app 2>/dev/null || true' EXIT
sleep 1
.venv/bin/paretolab "${@:2}" >/dev/null 2>&1 &
app=$!
sleep "${WAIT:-12}"
import -window root "$out"
echo "wrote $out"
