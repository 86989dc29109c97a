#!/usr/bin/env bash
# Runs every test: installs what is missing, checks that the golden CDR fixtures still come
# out of Python rosbags byte for byte, then the whole Rust workspace (unit, property,
# multi-process, hardware-in-the-loop and golden tests) in release mode, every test binary
# even when one fails, then the fuzzers (corpus replayed, 60 s per target; nightly toolchain).
# The last line counts everything: `tests: N passed, M failed`.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup.sh

echo "== golden fixtures: regenerate with rosbags and compare"
fresh="$(mktemp -d)"
log="$(mktemp)"
trap 'rm -rf "$fresh" "$log"' EXIT
golden=0
if .local/venv/bin/python msgs/scripts/make_golden.py --out "$fresh" >/dev/null && diff -r "$fresh" msgs/tests/golden; then
    echo "golden fixtures reproduce: $(ls "$fresh" | wc -l) files identical"
    echo "golden: ok" >>"$log"
else
    echo "golden: FAILED" | tee -a "$log"
    golden=1
fi

echo "== cargo test"
set +e
cargo test --release --locked --workspace --no-fail-fast 2>&1 | tee -a "$log"
tests=${PIPESTATUS[0]}
if (( tests )) && ! grep -q '^test result: FAILED' "$log"; then
    echo "cargo test: FAILED (status $tests, no failing test counted: a build error or a crashed test binary)" | tee -a "$log"
fi

echo "== fuzz: the corpus replayed, then ${REFLEX_FUZZ_SECONDS:-60} s per target"
scripts/fuzz.sh "${REFLEX_FUZZ_SECONDS:-60}" 2>&1 | tee -a "$log"
fuzz=${PIPESTATUS[0]}
set -e
# One closing line for the whole run (cargo prints one per test binary, the last often a
# doc-test run with nothing in it); the golden check and each fuzz target count as one test.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     /^(golden|fuzz [a-z_]+): ok/ { p += 1 }
     /^(golden|cargo test|fuzz [a-z_]+): FAILED/ { f += 1 }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
if (( golden || tests || fuzz )); then
    exit 1
fi
