#!/usr/bin/env bash
# Runs every test: installs what is missing, checks that the golden CDR fixtures still come
# out of Python rosbags byte for byte, then the whole Rust workspace (unit, property,
# two-process and golden tests) in release mode.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup.sh

echo "== golden fixtures: regenerate with rosbags and compare"
fresh="$(mktemp -d)"
trap 'rm -rf "$fresh"' EXIT
.local/venv/bin/python msgs/scripts/make_golden.py --out "$fresh" >/dev/null
diff -r "$fresh" msgs/tests/golden && echo "golden fixtures reproduce: $(ls "$fresh" | wc -l) files identical"

echo "== cargo test"
cargo test --release --locked --workspace 2>&1
