#!/usr/bin/env bash
# Makes models/nanodet/nanodet-int8.{xml,bin} from the FP32 IR: NNCF post-training quantisation
# calibrated on frames of OpenCV's vtest.avi and photographs from Debian packages, in the
# conversion venv. About a minute on 2 cores.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/convert_venv.sh"
convert_venv "openvino==2026.4.1" "nncf==3.4.0" opencv-python-headless
"$VENV/bin/python" "$ROOT/models/tools/quantize_nanodet.py" "$@"
