#!/usr/bin/env python3
"""Quantises SimNet to INT8 with NNCF (post-training on rendered calibration images, full bias
correction, the heads' 1x1 output convolutions kept in FP32) and measures both precisions:
mAP@0.5 on held-out renders and latency.

    quantize_simnet.py --model models/simnet/simnet.xml --calibration DIR --val DIR
                       [--out models/simnet/simnet-int8.xml] [--report models/simnet/eval.json]

mAP@0.5: Pascal VOC style (all-point interpolated precision, boxes matched greedily by score at
IoU >= 0.5 within a class), per class, then the mean over classes; detections above score 0.01
after class-wise NMS at IoU 0.6, as the detector node does. Latency: one synchronous request
with the LATENCY hint on the CPU, median and p99 of 300 inferences after 30 warm-up ones (the
same loop for both models, in one run). Recall by distance: detections scoring at least
0.4 (the AEB's threshold) matched at IoU >= 0.5 to the labelled boxes of each class, by the
actor's distance ahead of the camera (`distances_m` in the labels). `--baseline OLD.xml` measures
another FP32 model the same way in the same run (the model before a retraining).
Runs in .local/venv-convert (openvino, nncf).
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np

NMS_IOU = 0.6


def load(folder, limit=None):
    from PIL import Image

    labels = json.loads((Path(folder) / "labels.json").read_text())
    entries = labels["images"][:limit]
    images = np.stack([np.asarray(Image.open(Path(folder) / e["file"]).convert("RGB")) for e in entries])
    return images, [np.array(e["boxes"], np.float32).reshape(-1, 5) for e in entries], labels["classes"]


def load_distances(folder):
    """Each labelled box's distance ahead of the camera, m (None for labels without them)."""
    labels = json.loads((Path(folder) / "labels.json").read_text())
    if not all("distances_m" in e for e in labels["images"]):
        return None
    return [np.array(e["distances_m"], np.float32) for e in labels["images"]]


DISTANCE_BINS = (0, 10, 20, 30, 40, 50, 75)
AEB_SCORE = 0.4


def recall_by_distance(detections, truths, distances, classes):
    """{class: {"0-10": [found, labelled], ...}} at score >= AEB_SCORE and IoU >= 0.5."""
    table = {c: {f"{lo}-{hi}": [0, 0] for lo, hi in zip(DISTANCE_BINS, DISTANCE_BINS[1:])} for c in classes}
    for found, truth, distance in zip(detections, truths, distances):
        for box, d in zip(truth, distance):
            c = int(box[4])
            mine = [f for f in found if f[5] == c and f[4] >= AEB_SCORE]
            hit = bool(mine) and bool((iou(box[:4], np.array([f[:4] for f in mine])) >= 0.5).any())
            for lo, hi in zip(DISTANCE_BINS, DISTANCE_BINS[1:]):
                if lo <= d < hi:
                    cell = table[classes[c]][f"{lo}-{hi}"]
                    cell[0] += int(hit)
                    cell[1] += 1
    return table


def print_recall(name, table):
    bins = list(next(iter(table.values())))
    print(f"{name} recall at score >= {AEB_SCORE} by distance (m): " + " | ".join(bins))
    for c, row in table.items():
        print(f"  {c:8s} " + " | ".join(f"{f}/{n} {f / n:.2f}" if n else "-" for f, n in row.values()))


def iou(a, b):
    x0, y0 = np.maximum(a[0], b[:, 0]), np.maximum(a[1], b[:, 1])
    x1, y1 = np.minimum(a[2], b[:, 2]), np.minimum(a[3], b[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda r: (r[..., 2] - r[..., 0]) * (r[..., 3] - r[..., 1])
    return inter / (area(a) + area(b) - inter + 1e-9)


def detect(compiled, image, threshold=0.01):
    out = compiled(image[None])[0][0]  # (4 + C, N)
    scores = out[4:]
    cls, score = scores.argmax(0), scores.max(0)
    keep = score >= threshold
    cx, cy, w, h = out[:4, keep]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
    cls, score = cls[keep], score[keep]
    result = []
    for c in np.unique(cls):
        idx = np.flatnonzero(cls == c)
        idx = idx[np.argsort(-score[idx])]
        while len(idx):
            best, idx = idx[0], idx[1:]
            result.append((*boxes[best], score[best], c))
            idx = idx[iou(boxes[best], boxes[idx]) < NMS_IOU] if len(idx) else idx
    result.sort(key=lambda d: -d[4])
    return result[:100]


def average_precision(detections, truths, classes):
    aps = {}
    for c in range(len(classes)):
        gts = {i: t[t[:, 4] == c, :4] for i, t in enumerate(truths)}
        total = sum(len(g) for g in gts.values())
        used = {i: np.zeros(len(g), bool) for i, g in gts.items()}
        found = sorted(((d[4], i, d[:4]) for i, ds in enumerate(detections) for d in ds if d[5] == c),
                       key=lambda x: -x[0])
        tp = np.zeros(len(found))
        for k, (_, i, box) in enumerate(found):
            if len(gts[i]) == 0:
                continue
            overlaps = iou(np.array(box), gts[i])
            j = int(overlaps.argmax())
            if overlaps[j] >= 0.5 and not used[i][j]:
                used[i][j] = True
                tp[k] = 1
        if total == 0:
            continue
        recall = np.cumsum(tp) / total
        precision = np.cumsum(tp) / np.arange(1, len(tp) + 1)
        r = np.concatenate([[0], recall, [1]])
        p = np.concatenate([[0], precision, [0]])
        for k in range(len(p) - 2, -1, -1):
            p[k] = max(p[k], p[k + 1])
        steps = np.flatnonzero(r[1:] != r[:-1])
        aps[classes[c]] = float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))
    return aps


def head_convolutions(model):
    """The convolutions that feed no other convolution: the heads' last 1x1 layers, whose
    outputs are box distances and class logits. Quantised, they cost the INT8 model 2.9 points
    of mAP (1.7 kept in FP32), for a few thousand multiply-adds."""
    names = []
    for conv in (n for n in model.get_ordered_ops() if n.get_type_name() == "Convolution"):
        pending, seen, feeds = [t.get_node() for o in conv.outputs() for t in o.get_target_inputs()], set(), False
        while pending and not feeds:
            node = pending.pop()
            if node.get_friendly_name() in seen:
                continue
            seen.add(node.get_friendly_name())
            feeds = node.get_type_name() == "Convolution"
            pending += [t.get_node() for o in node.outputs() for t in o.get_target_inputs()]
        if not feeds:
            names.append(conv.get_friendly_name())
    return names


def latency_ms(core, model_path, image, runs=300):
    compiled = core.compile_model(str(model_path), "CPU", {"PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    for _ in range(30):
        request.infer({0: image[None]})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        request.infer({0: image[None]})
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times)), float(np.percentile(times, 99))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--calibration", type=Path, required=True)
    parser.add_argument("--val", type=Path, required=True)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--report", type=Path)
    parser.add_argument("--calibration-size", type=int, default=300)
    parser.add_argument("--baseline", type=Path, help="another FP32 model to measure alongside")
    args = parser.parse_args()
    out = args.out or args.model.with_name(args.model.stem + "-int8.xml")

    import nncf
    import openvino as ov

    core = ov.Core()
    calibration, _, _ = load(args.calibration, args.calibration_size)
    model = core.read_model(str(args.model))
    kept = head_convolutions(model)
    print(f"kept FP32: {', '.join(kept)}", flush=True)
    quantized = nncf.quantize(
        model,
        nncf.Dataset(list(calibration), lambda image: image[None]),
        subset_size=len(calibration),
        preset=nncf.QuantizationPreset.MIXED,
        fast_bias_correction=False,
        ignored_scope=nncf.IgnoredScope(names=kept),
    )
    ov.save_model(quantized, str(out), compress_to_fp16=False)
    print(f"{out}: INT8", flush=True)

    images, truths, classes = load(args.val)
    distances = load_distances(args.val)
    report = {"val_images": len(images), "val_boxes": int(sum(len(t) for t in truths)),
              "calibration_images": len(calibration), "models": {}}
    models = [("FP32", args.model), ("INT8", out)] + ([("baseline FP32", args.baseline)] if args.baseline else [])
    for name, path in models:
        compiled = core.compile_model(str(path), "CPU")
        detections = [detect(compiled, image) for image in images]
        aps = average_precision(detections, truths, classes)
        p50, p99 = latency_ms(core, path, images[0])
        report["models"][name] = {
            "file": path.name,
            "map50": float(np.mean(list(aps.values()))),
            "ap50": aps,
            "latency_ms_p50": p50,
            "latency_ms_p99": p99,
        }
        if distances is not None:
            table = recall_by_distance(detections, truths, distances, classes)
            report["models"][name]["recall_by_distance_m"] = table
            print_recall(name, table)
        print(f"{name}: mAP@0.5 {100 * report['models'][name]['map50']:.1f} "
              f"({', '.join(f'{k} {100 * v:.1f}' for k, v in aps.items())}); latency p50 {p50:.2f} ms p99 {p99:.2f} ms",
              flush=True)
    if args.report:
        args.report.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
