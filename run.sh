#!/usr/bin/env bash
# The main job: builds Reflex and runs the two-process transport benchmark
# (Reflex typed pub/sub vs raw zenoh; the table also goes to .local/transport.md).
# Extra arguments go to `reflex bench transport` (try --help).
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup.sh
cargo build --release --locked --bin reflex
exec ./target/release/reflex bench transport --markdown .local/transport.md "$@"
