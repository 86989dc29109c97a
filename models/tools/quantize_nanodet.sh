#!/usr/bin/env bash
# Makes models/nanodet/nanodet-int8.{xml,bin} from the FP32 IR: NNCF post-training quantisation
# calibrated on frames of OpenCV's vtest.avi (Debian opencv-doc), in the conversion venv
# .local/venv-convert (kept apart from the project venv). A few minutes on 2 cores.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.local/venv-convert"
if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    "openvino==2026.4.1" "nncf==3.4.0" opencv-python-headless
"$VENV/bin/python" "$ROOT/models/tools/quantize_nanodet.py" "$@"
