#!/usr/bin/env bash
# Rebuilds models/nanodet/nanodet.{xml,bin} from the npm package, in its own venv with
# tensorflow-cpu (kept apart from the project venv: TensorFlow is large and only needed here).
# The result is byte-identical to the committed IR (checked when this was written).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.local/venv-convert"
if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    "tensorflow-cpu>=2.16" "openvino==2026.4.1" opencv-python-headless pillow
"$VENV/bin/python" "$ROOT/models/tools/convert_nanodet.py" "$@"
