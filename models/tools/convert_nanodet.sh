#!/usr/bin/env bash
# Rebuilds models/nanodet/nanodet.{xml,bin} from the npm package, in its own venv with
# tensorflow-cpu (kept apart from the project venv: TensorFlow is large and only needed here).
# The result is byte-identical to the committed IR (checked when this was written).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/convert_venv.sh"
convert_venv "tensorflow-cpu>=2.16" "openvino==2026.4.1" opencv-python-headless pillow
"$VENV/bin/python" "$ROOT/models/tools/convert_nanodet.py" "$@"
