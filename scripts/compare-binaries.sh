#!/usr/bin/env bash
# Runs the same benchmarks with two builds of `reflex`, one after the other in one session, so
# their figures compare (a change that should not change behaviour, or one that should make
# something faster). Each checkout must have its release binary built
# (`cargo build --release --bin reflex`) and, for the detector, the OpenVINO runtime set up by
# ./test.sh or ./run.sh (its .local/openvino.env is sourced from the second checkout).
#
#   scripts/compare-binaries.sh OLD_CHECKOUT NEW_CHECKOUT OUT_DIR
#
# Writes OUT_DIR/<benchmark>-<old|new>[-round].out (the tables) and .err (the logs), and the
# CCRs suites' reports under OUT_DIR/ccrs-old and OUT_DIR/ccrs-new.
set -u
if [[ $# -ne 3 || $1 == -h || $1 == --help ]]; then
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
old=$(realpath "$1") new=$(realpath "$2") out=$(realpath -m "$3")
mkdir -p "$out"
for checkout in "$old" "$new"; do
    [[ -x $checkout/target/release/reflex ]] || { echo "no release binary in $checkout (cargo build --release --bin reflex)" >&2; exit 1; }
done
# shellcheck disable=SC1091
[[ -f $new/.local/openvino.env ]] && source "$new/.local/openvino.env"
run() { # name checkout arguments...
    local name=$1 checkout=$2
    shift 2
    echo "== $name: reflex $*" | tee -a "$out/log"
    (cd "$checkout" && timeout 900 ./target/release/reflex "$@") >"$out/$name.out" 2>"$out/$name.err"
    echo "exit $?" | tee -a "$out/log"
}
for round in 1 2; do
    run "transport-old-$round" "$old" bench transport --rounds 5
    run "transport-new-$round" "$new" bench transport --rounds 5
done
run reaction-old "$old" bench reaction --trials 10
run reaction-new "$new" bench reaction --trials 10
run ccrs-old "$old" sim suite ccrs --out "$out/ccrs-old"
run ccrs-new "$new" sim suite ccrs --out "$out/ccrs-new"
if cmp -s "$out/ccrs-old/results.json" "$out/ccrs-new/results.json"; then
    echo "CCRs results.json: identical" | tee -a "$out/log"
else
    echo "CCRs results.json: they differ (diff the two files)" | tee -a "$out/log"
fi
