#!/usr/bin/env bash
# Rebuilds models/simnet/ from nothing but this repository: renders the training and held-out
# sets with `reflex sim dataset`, trains SimNet on the CPU (TensorFlow, in the conversion venv
# .local/venv-convert, kept apart from the project venv), exports FP32 IR, quantises it to INT8
# with NNCF and measures both (mAP@0.5 on the held-out renders, latency) into eval.json.
# About 40 minutes on 2 cores. Extra arguments go to train_simnet.py (e.g. --epochs 2 to try).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.local/venv-convert"
DATA="$ROOT/.local/simdata"
OUT="$ROOT/models/simnet"
if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    "tensorflow-cpu==2.21.0" "openvino==2026.4.1" "nncf==3.4.0" pillow
cargo build --release --bin reflex --manifest-path "$ROOT/Cargo.toml"
REFLEX="$ROOT/target/release/reflex"
# Training and held-out sets from different seeds: no scene is in both.
[[ -f "$DATA/train/labels.json" ]] || "$REFLEX" sim dataset --out "$DATA/train" --count 8000 --seed 1
[[ -f "$DATA/val/labels.json" ]] || "$REFLEX" sim dataset --out "$DATA/val" --count 600 --seed 2
"$VENV/bin/python" "$ROOT/models/tools/train_simnet.py" --train "$DATA/train" --out "$OUT" --epochs 20 "$@"
"$VENV/bin/python" "$ROOT/models/tools/quantize_simnet.py" --model "$OUT/simnet.xml" \
    --calibration "$DATA/train" --val "$DATA/val" --out "$OUT/simnet-int8.xml" --report "$OUT/eval.json"
