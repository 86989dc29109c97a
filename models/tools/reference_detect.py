#!/usr/bin/env python3
"""Reference detections computed with OpenVINO's own Python runtime and NumPy, written apart
from the Rust code, to check the detector node's preprocessing and decoding.

    reference_detect.py MODEL_CONFIG IMAGE...   -> one JSON line per detection, like `reflex detect`

Same graph as the node: the frame goes in as u8 RGB NHWC of its own size, and OpenVINO's
PrePostProcessor resizes it (linear) and converts type and layout to what the model takes.
Supports the model configs' `stretch` resize and the nanodet decoder (what the shipped model uses).
"""
import json
import sys
from pathlib import Path

import numpy as np
import openvino as ov
import yaml
from openvino.preprocess import PrePostProcessor, ResizeAlgorithm
from PIL import Image


def build(core, config, base, width, height):
    model = core.read_model(base / config["model"])
    ppp = PrePostProcessor(model)
    inp = config["input"]
    info = ppp.input(inp["name"]) if inp.get("name") else ppp.input()
    info.tensor().set_element_type(ov.Type.u8).set_shape([1, height, width, 3]).set_layout(ov.Layout("NHWC"))
    if (width, height) != (inp["width"], inp["height"]):
        info.preprocess().resize(ResizeAlgorithm.RESIZE_LINEAR)
    if inp.get("element", "u8") == "f32":
        info.preprocess().convert_element_type(ov.Type.f32)
    info.model().set_layout(ov.Layout(inp.get("layout", "NHWC")))
    for i in range(len(model.outputs)):
        ppp.output(i).tensor().set_element_type(ov.Type.f32)
    return core.compile_model(ppp.build(), "CPU", {"PERFORMANCE_HINT": "LATENCY"})


def nanodet(outputs, decoder, size, threshold):
    """Vectorised GFL decoding: sigmoid scores per class, softmax-expected distances per side."""
    reg_max = decoder.get("reg_max", 7)
    offset = decoder.get("center_offset", 0.5)
    found = []
    for score_name, box_name, stride in zip(decoder["scores"], decoder["boxes"], decoder["strides"]):
        scores = outputs[score_name][0]
        if not decoder.get("scores_are_probabilities", True):
            scores = 1.0 / (1.0 + np.exp(-scores))
        columns = -(-size[0] // stride)
        bins = outputs[box_name][0].reshape(-1, 4, reg_max + 1)
        bins = np.exp(bins - bins.max(axis=2, keepdims=True))
        distances = (bins / bins.sum(axis=2, keepdims=True)) @ np.arange(reg_max + 1, dtype=np.float32) * stride
        cells, classes = np.nonzero(scores >= threshold)
        cx = (cells % columns + offset) * stride
        cy = (cells // columns + offset) * stride
        d = distances[cells]
        boxes = np.stack([cx - d[:, 0], cy - d[:, 1], cx + d[:, 2], cy + d[:, 3]], axis=1)
        found += [(int(c), float(scores[cell, c]), box) for cell, c, box in zip(cells, classes, boxes)]
    return found


def iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def nms(found, threshold, limit):
    kept = []
    for candidate in sorted(found, key=lambda d: -d[1]):
        if len(kept) == limit:
            break
        if all(k[0] != candidate[0] or iou(k[2], candidate[2]) <= threshold for k in kept):
            kept.append(candidate)
    return kept


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    config_path = Path(sys.argv[1])
    config = yaml.safe_load(config_path.read_text())
    if config["decoder"]["kind"] != "nanodet" or config["input"].get("resize", "stretch") != "stretch":
        sys.exit("the reference supports the nanodet decoder with stretch resizing")
    base = config_path.parent
    labels = [l.strip() for l in (base / config["labels"]).read_text().splitlines() if l.strip()]
    threshold = float(config.get("score_threshold", 0.35))
    core = ov.Core()
    compiled = {}
    size = (config["input"]["width"], config["input"]["height"])
    for image_path in sys.argv[2:]:
        frame = np.asarray(Image.open(image_path).convert("RGB"))
        height, width = frame.shape[:2]
        if (width, height) not in compiled:
            compiled[(width, height)] = build(core, config, base, width, height)
        model = compiled[(width, height)]
        result = model(frame[np.newaxis])
        outputs = {name: result[model.output(name)] for name in config["decoder"]["scores"] + config["decoder"]["boxes"]}
        found = nms(nanodet(outputs, config["decoder"], size, threshold), config.get("nms_iou", 0.6),
                    config.get("max_detections", 100))
        sx, sy = width / size[0], height / size[1]
        for c, score, box in found:
            x0, y0, x1, y1 = (min(max(v, 0.0), limit) for v, limit in
                              zip((box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy), (width, height, width, height)))
            print(json.dumps({"file": image_path, "class": labels[c], "class_index": c, "score": score,
                              "box": [float(x0), float(y0), float(x1), float(y1)]}))


if __name__ == "__main__":
    main()
