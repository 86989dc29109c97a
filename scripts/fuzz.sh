#!/usr/bin/env bash
# Fuzzes Reflex's parsers of untrusted input with cargo-fuzz (libFuzzer, nightly toolchain):
#   decode       every CDR message type, fresh and in place, and the borrowed views
#   launch_file  the launch-file loader (substitution, YAML, typed structs, includes)
#   scenario     the scenario-file parser and its grid expansion
# For each target: the committed corpus (fuzz/corpus/<target>, seeds and what earlier runs
# found) is replayed, then the target is fuzzed for SECONDS (default 60) into a scratch corpus.
# A crash, a timeout or an out-of-memory stops with the input saved under fuzz/artifacts/.
#   scripts/fuzz.sh            # CI: replay + 60 s per target
#   scripts/fuzz.sh 3600       # an hour per target
#   scripts/fuzz.sh 600 decode # one target
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
(( ${#targets[@]} )) || targets=(decode launch_file scenario)

say() { printf '\033[1mfuzz:\033[0m %s\n' "$*" >&2; }

if ! cargo +nightly --version >/dev/null 2>&1; then
    say "no nightly toolchain (rustup toolchain install nightly): fuzzing skipped"
    echo "fuzz: skipped (no nightly toolchain)"
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz 0.13.2"
    if ! cargo install cargo-fuzz --locked --version 0.13.2 >/dev/null 2>&1; then
        echo "fuzz install: FAILED (cargo install cargo-fuzz)"
        exit 1
    fi
fi
cd fuzz
flags=(-O -s none --debug-assertions)
if ! cargo +nightly fuzz build "${flags[@]}" >&2; then
    echo "fuzz build: FAILED"
    exit 1
fi
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
passed=0
failed=0
for target in "${targets[@]}"; do
    mkdir -p "$scratch/$target" "corpus/$target"
    options=(-rss_limit_mb=2048 -timeout=10 -max_len=65536)
    say "$target: replaying $(ls "corpus/$target" | wc -l) corpus inputs"
    if ! cargo +nightly fuzz run "${flags[@]}" "$target" "corpus/$target" -- -runs=0 "${options[@]}" >"$scratch/$target.log" 2>&1; then
        tail -n 30 "$scratch/$target.log" >&2
        echo "fuzz $target: FAILED replaying the corpus"
        failed=$((failed + 1))
        continue
    fi
    say "$target: fuzzing for $seconds s"
    if cargo +nightly fuzz run "${flags[@]}" "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$seconds" "${options[@]}" >"$scratch/$target.log" 2>&1; then
        runs="$(grep -o 'Done [0-9]* runs' "$scratch/$target.log" | tail -n 1 | grep -o '[0-9]*' || echo '?')"
        echo "fuzz $target: ok ($runs runs in $seconds s, $(ls "$scratch/$target" | wc -l) new inputs)"
        passed=$((passed + 1))
    else
        tail -n 30 "$scratch/$target.log" >&2
        echo "fuzz $target: FAILED (input saved under fuzz/artifacts/$target/)"
        failed=$((failed + 1))
    fi
done
echo "fuzz: $passed passed, $failed failed"
(( failed == 0 ))
