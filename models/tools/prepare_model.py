#!/usr/bin/env python3
"""Bakes a detector's input normalisation into its graph, so the Reflex detector node can hand it
u8 RGB frames and do all preprocessing inside OpenVINO.

    prepare_model.py MODEL --out OUT.xml [--mean R G B] [--scale R G B] [--layout NCHW] [--bgr]

MODEL is anything `openvino.convert_model` reads: ONNX (.onnx), TFLite (.tflite), a TensorFlow
frozen graph (.pb) or OpenVINO IR (.xml). The result is IR whose input, named `image`, takes u8
RGB NHWC at the model's own size; inside: to f32, (x - mean) / scale, RGB->BGR if --bgr, and the
model's layout. Write the model config with `element: u8, layout: NHWC` for it.

Without this step a model config can still say `element: f32` with `mean`/`scale`: the node then
normalises on the CPU (the Rust bindings have no mean/scale preprocessing step), a little slower.
Runs in the project venv (.local/venv/bin/python), which has openvino.
"""
import argparse
import sys
from pathlib import Path

import openvino as ov
from openvino.preprocess import ColorFormat, PrePostProcessor


def bake(model, mean=None, scale=None, layout="NCHW", bgr=False, input_name=None):
    """Returns a new ov.Model with u8 RGB NHWC input named `image` and the normalisation inside."""
    ppp = PrePostProcessor(model)
    info = ppp.input(input_name) if input_name else ppp.input()
    info.tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(ColorFormat.RGB)
    steps = info.preprocess().convert_element_type(ov.Type.f32)
    if bgr:
        steps.convert_color(ColorFormat.BGR)
    # A number applies to every channel; a list of three is per channel.
    if mean is not None:
        steps.mean(mean if isinstance(mean, float) else list(mean))
    if scale is not None:
        steps.scale(scale if isinstance(scale, float) else list(scale))
    info.model().set_layout(ov.Layout(layout))
    baked = ppp.build()
    baked.inputs[0].get_tensor().set_names({"image"})
    return baked


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="output IR (.xml; the .bin goes beside it)")
    parser.add_argument("--mean", type=float, nargs=3, metavar=("R", "G", "B"))
    parser.add_argument("--scale", type=float, nargs=3, metavar=("R", "G", "B"))
    parser.add_argument("--layout", default="NCHW", help="layout of the model's input (default NCHW)")
    parser.add_argument("--bgr", action="store_true", help="the model was trained on BGR")
    parser.add_argument("--input", help="input name, when the model has several")
    args = parser.parse_args()
    if not args.model.exists():
        sys.exit(f"{args.model}: no such file")
    model = ov.convert_model(str(args.model))
    if len(model.inputs) != 1 and not args.input:
        sys.exit(f"{args.model} has {len(model.inputs)} inputs; name the image input with --input")
    baked = bake(model, args.mean, args.scale, args.layout, args.bgr, args.input)
    ov.save_model(baked, args.out, compress_to_fp16=False)
    print(f"{args.out}: input image u8 {baked.inputs[0].get_partial_shape()} NHWC RGB", file=sys.stderr)
    for output in baked.outputs:
        print(f"  output {output.get_any_name()}: {output.get_partial_shape()}", file=sys.stderr)


if __name__ == "__main__":
    main()
