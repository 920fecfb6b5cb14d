#!/usr/bin/env bash
# Screenshot of a local HTML page with Debian's headless Chromium (no network, fresh profile).
#   bash scripts/screenshot.sh PAGE.html OUT.png [WIDTH [HEIGHT]]     (default 1400 x 1100)
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,3p' "$0"; exit 2; }
page=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
out=$2
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "screenshot.sh: chromium not found (apt-get install -y chromium)" >&2; exit 1; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$profile" \
  --window-size="${3:-1400},${4:-1100}" --screenshot="$out" "file://$page" 2>/dev/null
[ -s "$out" ] || { echo "screenshot.sh: no screenshot written" >&2; exit 1; }
echo "wrote $out"
