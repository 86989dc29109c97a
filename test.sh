#!/usr/bin/env bash
# Runs every test: installs what is missing, checks that the golden CDR fixtures still come
# out of Python rosbags byte for byte, then the whole Rust workspace (unit, property,
# two-process and golden tests) in release mode.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup.sh

echo "== golden fixtures: regenerate with rosbags and compare"
fresh="$(mktemp -d)"
log="$(mktemp)"
trap 'rm -rf "$fresh" "$log"' EXIT
.local/venv/bin/python msgs/scripts/make_golden.py --out "$fresh" >/dev/null
diff -r "$fresh" msgs/tests/golden && echo "golden fixtures reproduce: $(ls "$fresh" | wc -l) files identical"

echo "== cargo test"
set +e
cargo test --release --locked --workspace 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole run (cargo prints one per test binary, the last often a
# doc-test run with nothing in it).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
