#!/usr/bin/env python3
"""Trains SimNet, the small detector for the simulator's camera images, on CPU with TensorFlow,
and exports it to OpenVINO IR (FP32).

    train_simnet.py --train DIR --out models/simnet [--epochs 24] [--batch 32]

DIR is what `reflex sim dataset` writes (images/*.png at 320x240 and labels.json). The network:
nine 3x3 conv+BN+ReLU layers down to strides 8, 16 and 32, one anchor-free head per stride
(FCOS-style: per cell, distances to the box's four sides and a sigmoid score per class; a cell
is positive when it lies in the box's centre region and the box's size suits its stride). Loss:
sigmoid focal loss for the classes, GIoU for the boxes. Augmentation: horizontal flips (the
renderer already randomises light, colours, noise, camera and actors).

The exported graph decodes its own output into the YOLOv8 layout `[1, 4 + classes, N]` (centre
x, centre y, width, height in input pixels; class scores), so the detector node runs it with
its stock `yolov8` decoder and no special code path. Input: `image`, u8 RGB NHWC 1x240x320x3,
/255 inside the graph. Runs in models/tools' conversion venv (.local/venv-convert: tensorflow-cpu,
openvino); models/tools/train_simnet.sh runs the whole pipeline. Held-out evaluation and the
INT8 model: quantize_simnet.py.
"""
import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

STRIDES = (8, 16, 32)
WIDTH, HEIGHT = 320, 240
# A box goes to the strides whose range holds its larger side (pixels); ranges overlap so
# boundary sizes train two heads.
SIZE_RANGES = {8: (0, 64), 16: (32, 144), 32: (96, 10_000)}
CENTRE_RADIUS = 1.5  # cells


def grid(stride):
    h, w = math.ceil(HEIGHT / stride), math.ceil(WIDTH / stride)
    ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return (xs.reshape(-1) + 0.5) * stride, (ys.reshape(-1) + 0.5) * stride


GRIDS = [grid(s) for s in STRIDES]
CELLS = sum(len(g[0]) for g in GRIDS)
CELL_X = np.concatenate([g[0] for g in GRIDS]).astype(np.float32)
CELL_Y = np.concatenate([g[1] for g in GRIDS]).astype(np.float32)
CELL_STRIDE = np.concatenate([np.full(len(g[0]), s) for g, s in zip(GRIDS, STRIDES)]).astype(np.float32)


def targets(boxes, classes):
    """Per cell: class one-hot, distances to the box sides in strides, positive mask."""
    cls = np.zeros((CELLS, classes), np.float32)
    dist = np.zeros((CELLS, 4), np.float32)
    best_area = np.full(CELLS, np.inf, np.float32)
    for x0, y0, x1, y1, c in boxes:
        size = max(x1 - x0, y1 - y0)
        area = (x1 - x0) * (y1 - y0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        for stride in STRIDES:
            lo, hi = SIZE_RANGES[stride]
            if not lo <= size < hi:
                continue
            inside = (CELL_STRIDE == stride) & (CELL_X > x0) & (CELL_X < x1) & (CELL_Y > y0) & (CELL_Y < y1)
            near = (np.abs(CELL_X - cx) <= CENTRE_RADIUS * stride) & (np.abs(CELL_Y - cy) <= CENTRE_RADIUS * stride)
            chosen = inside & near
            # The cell holding the centre always counts, however thin the box.
            home = np.flatnonzero(
                (CELL_STRIDE == stride) & (np.abs(CELL_X - cx) <= stride / 2) & (np.abs(CELL_Y - cy) <= stride / 2)
            )
            chosen[home[:1]] = True
            chosen &= area < best_area
            best_area[chosen] = area
            cls[chosen] = 0
            cls[chosen, int(c)] = 1
            s = CELL_STRIDE[chosen]
            dist[chosen] = np.stack(
                [CELL_X[chosen] - x0, CELL_Y[chosen] - y0, x1 - CELL_X[chosen], y1 - CELL_Y[chosen]], axis=1
            ) / s[:, None]
    positive = np.isfinite(best_area).astype(np.float32)
    # Cells at the centre but outside a thin box get a small positive distance.
    dist = np.maximum(dist, 0.05)
    return cls, dist, positive


def load(folder, limit=None):
    from PIL import Image

    labels = json.loads((Path(folder) / "labels.json").read_text())
    entries = labels["images"][:limit]
    images = np.zeros((len(entries), HEIGHT, WIDTH, 3), np.uint8)
    for i, entry in enumerate(entries):
        images[i] = np.asarray(Image.open(Path(folder) / entry["file"]).convert("RGB"))
    return images, [np.array(e["boxes"], np.float32).reshape(-1, 5) for e in entries], labels["classes"]


def build(classes):
    import keras
    from keras import layers

    def cbr(x, channels, stride, name):
        x = layers.Conv2D(channels, 3, strides=stride, padding="same", use_bias=False, name=name)(x)
        x = layers.BatchNormalization(name=name + "_bn")(x)
        return layers.ReLU(name=name + "_relu")(x)

    image = keras.Input((HEIGHT, WIDTH, 3), name="image")
    x = layers.Rescaling(1 / 255)(image)
    x = cbr(x, 16, 2, "c1")
    x = cbr(x, 24, 2, "c2")
    x = cbr(x, 24, 1, "c3")
    x = cbr(x, 32, 2, "c4")
    s8 = cbr(x, 32, 1, "c5")
    x = cbr(s8, 48, 2, "c6")
    s16 = cbr(x, 48, 1, "c7")
    x = cbr(s16, 64, 2, "c8")
    s32 = cbr(x, 64, 1, "c9")
    outputs = []
    for feature, stride, channels in ((s8, 8, 32), (s16, 16, 48), (s32, 32, 64)):
        h = cbr(feature, channels, 1, f"head{stride}")
        bias = keras.initializers.Constant([0.0] * 4 + [-4.6] * classes)  # scores start near 0.01
        raw = layers.Conv2D(4 + classes, 1, name=f"out{stride}", bias_initializer=bias)(h)
        outputs.append(layers.Reshape((-1, 4 + classes))(raw))
    return keras.Model(image, layers.Concatenate(axis=1, name="raw")(outputs))


def decode(raw, classes):
    """Raw (B, N, 4 + C) to the YOLOv8 layout (B, 4 + C, N) in input pixels."""
    import tensorflow as tf

    d = tf.nn.softplus(raw[..., :4]) * CELL_STRIDE[None, :, None]
    x0, y0 = CELL_X - d[..., 0], CELL_Y - d[..., 1]
    x1, y1 = CELL_X + d[..., 2], CELL_Y + d[..., 3]
    box = tf.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], axis=-1)
    scores = tf.sigmoid(raw[..., 4:])
    return tf.transpose(tf.concat([box, scores], axis=-1), [0, 2, 1])


def giou_loss(pred, target):
    pl, pt, pr, pb = (pred[..., i] for i in range(4))
    tl, tt, tr, tb = (target[..., i] for i in range(4))
    import tensorflow as tf

    inter = (tf.minimum(pl, tl) + tf.minimum(pr, tr)) * (tf.minimum(pt, tt) + tf.minimum(pb, tb))
    union = (pl + pr) * (pt + pb) + (tl + tr) * (tt + tb) - inter
    iou = inter / (union + 1e-7)
    enclosing = (tf.maximum(pl, tl) + tf.maximum(pr, tr)) * (tf.maximum(pt, tt) + tf.maximum(pb, tb))
    return 1 - (iou - (enclosing - union) / (enclosing + 1e-7))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=24)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--weights", type=Path, default=Path(".local/simnet.weights.h5"),
                        help="trained weights are saved here (and read with --epochs 0: export only)")
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(args.seed)
    started = time.time()
    images, boxes, classes = load(args.train)
    nc = len(classes)
    print(f"{len(images)} training images, {sum(len(b) for b in boxes)} boxes, classes {classes}", flush=True)
    flipped = []
    for b in boxes:
        f = b.copy()
        f[:, 0], f[:, 2] = WIDTH - b[:, 2], WIDTH - b[:, 0]
        flipped.append(f)
    t_plain = [targets(b, nc) for b in boxes]
    t_flip = [targets(b, nc) for b in flipped]
    stack = lambda ts, k: np.stack([t[k] for t in ts])
    cls = np.stack([stack(t_plain, 0), stack(t_flip, 0)])
    dist = np.stack([stack(t_plain, 1), stack(t_flip, 1)])
    pos = np.stack([stack(t_plain, 2), stack(t_flip, 2)])
    print(f"targets in {time.time() - started:.0f} s; {pos[0].sum() / len(images):.1f} positive cells per image",
          flush=True)

    model = build(nc)
    if args.epochs == 0:
        model.load_weights(args.weights)
        args.out.mkdir(parents=True, exist_ok=True)
        export(model, nc, args.out)
        return
    print(f"{model.count_params()} parameters", flush=True)
    steps = args.epochs * (len(images) // args.batch)
    schedule = keras.optimizers.schedules.CosineDecay(args.lr, steps, alpha=0.02, warmup_target=None)
    optimizer = keras.optimizers.Adam(schedule)

    @tf.function(reduce_retracing=True)
    def step(x, c, d, p):
        with tf.GradientTape() as tape:
            raw = model(x, training=True)
            logits = raw[..., 4:]
            prob = tf.sigmoid(logits)
            ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=c, logits=logits)
            p_t = c * prob + (1 - c) * (1 - prob)
            alpha = c * 0.25 + (1 - c) * 0.75
            focal = tf.reduce_sum(alpha * (1 - p_t) ** 2 * ce)
            n = tf.maximum(tf.reduce_sum(p), 1.0)
            box = tf.reduce_sum(giou_loss(tf.nn.softplus(raw[..., :4]), d) * p)
            loss = (focal + 2.0 * box) / n
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return focal / n, box / n

    rng = np.random.default_rng(args.seed)
    for epoch in range(args.epochs):
        t0 = time.time()
        order = rng.permutation(len(images))
        sums = np.zeros(2)
        batches = len(images) // args.batch
        for b in range(batches):
            idx = order[b * args.batch:(b + 1) * args.batch]
            flip = rng.integers(0, 2, len(idx))
            x = images[idx].copy()
            x[flip == 1] = x[flip == 1][:, :, ::-1]
            x = x.astype(np.float32)
            # Photometric jitter on top of the renderer's: gain and offset per image.
            gain = rng.uniform(0.8, 1.2, (len(idx), 1, 1, 1)).astype(np.float32)
            offset = rng.uniform(-12, 12, (len(idx), 1, 1, 1)).astype(np.float32)
            x = np.clip(x * gain + offset, 0, 255)
            f, bx = step(x, cls[flip, idx], dist[flip, idx], pos[flip, idx])
            sums += (float(f), float(bx))
        print(f"epoch {epoch + 1}/{args.epochs}: focal {sums[0] / batches:.4f} giou {sums[1] / batches:.4f} "
              f"({time.time() - t0:.0f} s)", flush=True)

    args.weights.parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(args.weights)
    args.out.mkdir(parents=True, exist_ok=True)
    export(model, nc, args.out)
    print(f"trained and exported in {(time.time() - started) / 60:.1f} min", flush=True)


def export(model, nc, out):
    """SavedModel with the decode step, then OpenVINO IR with u8 input and /255 inside."""
    import tensorflow as tf
    import openvino as ov

    @tf.function(input_signature=[tf.TensorSpec([1, HEIGHT, WIDTH, 3], tf.float32, name="image")])
    def serve(image):
        return {"detections": decode(model(image, training=False), nc)}

    # A frozen graph: the variables become constants, which OpenVINO's TF front end reads.
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    frozen = convert_variables_to_constants_v2(serve.get_concrete_function())
    graph = out / "simnet.tmp.pb"
    graph.write_bytes(frozen.graph.as_graph_def().SerializeToString())
    ov_model = ov.convert_model(str(graph))
    graph.unlink()
    sys.path.insert(0, str(Path(__file__).parent))
    from prepare_model import bake

    baked = bake(ov_model, layout="NHWC")
    baked.outputs[0].get_tensor().set_names({"detections"})
    ov.save_model(baked, out / "simnet.xml", compress_to_fp16=False)
    print(f"{out / 'simnet.xml'}: {baked.inputs[0].get_partial_shape()} -> {baked.outputs[0].get_partial_shape()}",
          flush=True)


if __name__ == "__main__":
    main()
