#!/usr/bin/env bash
# The main job: builds Reflex and runs the full-stack CCRs demo: the simulator renders camera
# frames of a car-to-car rear stationary grid (10-50 km/h, two overlaps), and the OpenVINO
# detector, the AEB, the monitor and the arbiter run as separate processes in lock-step with it.
# Prints the Euro NCAP-style results and writes the report (plots, summary, results.json, the
# MCAP recording) to sim-results/. Extra arguments go to `reflex sim suite ccrs` (try --help);
# the transport benchmark that used to run here is `reflex bench transport`.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup.sh
cargo build --release --locked --bin reflex
exec ./target/release/reflex sim suite ccrs "$@"
