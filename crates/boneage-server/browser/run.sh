#!/usr/bin/env bash
# The browser test of `boneage serve`'s page: starts the server on a free loopback
# port with a fresh audit store, makes a phantom film (assessed) and a blank one
# (refused), and drives the page in headless Chromium (page.mjs), writing its
# screenshots to OUT_DIR.
#
#   bash crates/boneage-server/browser/run.sh BONEAGE_BINARY [OUT_DIR]
#
# Needs chromium and Node >= 20.10 (its WebSocket); .ci/run installs chromium.
set -euo pipefail
bin=$(realpath "${1:?usage: run.sh BONEAGE_BINARY [OUT_DIR]}")
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
out=${2:-$tmp/shots}
mkdir -p "$out"
pid=
cleanup() { [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a == 20 && b >= 10) ? 0 : 1)' ||
  { echo "the browser test needs Node >= 20.10 (found $(node --version))" >&2; exit 1; }
"$bin" phantom --n 2 --seed 3 --out "$tmp/ph" > /dev/null 2>&1
python3 - "$tmp/blank.png" <<'PY'
import struct, sys, zlib
w, h = 300, 400
raw = b"".join(b"\x00" + bytes([20]) * w for _ in range(h))
chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) \
    + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PY
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" serve --addr "127.0.0.1:$port" --db "$tmp/audit.sqlite" 2> "$tmp/serve.log" &
pid=$!
for _ in $(seq 1 300); do
  python3 -c "import urllib.request, sys; urllib.request.urlopen('http://127.0.0.1:$port/readyz', timeout=1)" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat "$tmp/serve.log" >&2; exit 1; }
  sleep 0.5
done
node --experimental-websocket --no-warnings "$here/page.mjs" "http://127.0.0.1:$port" \
  "$tmp/ph/ph00002.png" "$tmp/blank.png" "$out"
kill -TERM "$pid"
wait "$pid"
pid=
