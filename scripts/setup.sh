#!/usr/bin/env bash
# Installs what Reflex needs on a fresh machine, then gets out of the way on later runs.
# Sourced by ./run.sh and ./test.sh; safe to run by itself. Everything Python goes into the
# project-local folder .local/ (git-ignored); nothing is installed into the system Python.
#
#   .local/venv/           Python 3 venv: openvino (runtime + benchmark_app), rosbags, numpy,
#                          pillow + pyyaml (the detector reference check), mcap +
#                          mcap-ros2-support (recordings checked by code we did not write)
#   .local/openvino.env    exports OPENVINO_LIB=<path of libopenvino_c.so.VERSION>
#
# Debian's libclang-dev (bindgen for the V4L2 camera crate), stress-ng, nftables and libfaketime (the HIL bench) are
# installed with apt-get when running as root on Debian; otherwise the exact command is printed.
set -euo pipefail

REFLEX_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$REFLEX_ROOT/.local"
OPENVINO_VERSION="2026.4.1"   # 2025.1 or newer: the openvino crate refuses older runtimes
ROSBAGS_VERSION="0.11.9"      # golden CDR fixtures were made with this version
STAMP="$LOCAL/setup.stamp"
mkdir -p "$LOCAL"

say() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }

wanted_stamp="$(sha256sum "$REFLEX_ROOT/scripts/setup.sh" | cut -c1-16)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$wanted_stamp" && -x "$LOCAL/venv/bin/python" && -f "$LOCAL/openvino.env" ]]; then
    # shellcheck source=/dev/null
    source "$LOCAL/openvino.env"
    return 0 2>/dev/null || exit 0
fi

# 1. Rust toolchain: cannot be installed from here (no network beyond package registries).
if ! command -v cargo >/dev/null; then
    say "cargo not found. Install Rust 1.85 or newer (https://rustup.rs), then run this again."
    exit 1
fi

# 2. Debian packages: libclang-dev for the camera crate's V4L2 bindings (nokhwa/bindgen),
#    stress-ng for the hardware-in-the-loop bench's CPU-saturation row and nftables for its
#    link-cut row (iproute2 for the network namespaces is part of Debian's base).
missing=()
for package in libclang-dev stress-ng nftables libfaketime; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if (( ${#missing[@]} )); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        say "installing ${missing[*]} (apt-get)"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        say "${missing[*]} missing and I cannot install it here. Run:"
        say "    sudo apt-get install -y ${missing[*]}"
        say "(libclang-dev: only the V4L2 camera source needs it; stress-ng, nftables: one bench row each skips without it)"
    fi
fi

# 3. Python venv with the OpenVINO runtime and the fixture tools.
if [[ ! -x "$LOCAL/venv/bin/python" ]]; then
    say "creating Python venv in .local/venv"
    python3 -m venv "$LOCAL/venv" || {
        say "python3 -m venv failed: install python3-venv (sudo apt-get install -y python3-venv)"
        exit 1
    }
fi
say "installing openvino==$OPENVINO_VERSION rosbags==$ROSBAGS_VERSION numpy pillow pyyaml mcap mcap-ros2-support into .local/venv"
"$LOCAL/venv/bin/python" -m pip install -q --disable-pip-version-check \
    "openvino==$OPENVINO_VERSION" "rosbags==$ROSBAGS_VERSION" numpy pillow pyyaml \
    "mcap==1.6.0" "mcap-ros2-support==0.6.0"

# 4. Where the OpenVINO C library is: the wheel ships only the versioned file.
lib="$(find "$LOCAL/venv" -name 'libopenvino_c.so.*' -type f | sort | tail -n 1)"
if [[ -z "$lib" ]]; then
    say "the openvino wheel has no libopenvino_c.so.*: the detector will not find a runtime"
    exit 1
fi
printf 'export OPENVINO_LIB=%q\n' "$lib" > "$LOCAL/openvino.env"
say "OpenVINO runtime: $lib"
# shellcheck source=/dev/null
source "$LOCAL/openvino.env"
echo "$wanted_stamp" > "$STAMP"
