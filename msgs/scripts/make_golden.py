#!/usr/bin/env python3
"""Writes golden CDR fixtures for reflex-msgs with Python `rosbags`, a serializer nobody here wrote.

For every message type it serializes one fully populated value (every field non-default) and
writes two files into msgs/tests/golden/:
  <pkg>__<Type>.cdr   the bytes rosbags produced (CDR little-endian, with encapsulation header)
  <pkg>__<Type>.json  the value, so the Rust test can build the same value and compare both ways

Standard types come from rosbags' own ROS 2 Humble type store. vision_msgs (not in that store)
is registered from the upstream vision_msgs 4.x definitions written out below, independently of
the copies in msgs/msg/; reflex_msgs is registered from msgs/msg/reflex_msgs/*.msg, which checks
that the Rust field order matches our published .msg text.

Usage: python3 msgs/scripts/make_golden.py [--out DIR]   (needs `pip install rosbags==0.11.9 numpy`;
./test.sh runs it into a temporary folder and compares with the committed files)
"""
import argparse
import json
import pathlib

import numpy as np
from rosbags.typesys import Stores, get_typestore, get_types_from_msg

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "golden"

# vision_msgs 4.x, from ros-perception/vision_msgs (comments dropped).
VISION_MSGS = {
    "vision_msgs/msg/Point2D": "float64 x\nfloat64 y\n",
    "vision_msgs/msg/Pose2D": "vision_msgs/Point2D position\nfloat64 theta\n",
    "vision_msgs/msg/BoundingBox2D": "vision_msgs/Pose2D center\nfloat64 size_x\nfloat64 size_y\n",
    "vision_msgs/msg/ObjectHypothesis": "string class_id\nfloat64 score\n",
    "vision_msgs/msg/ObjectHypothesisWithPose":
        "vision_msgs/ObjectHypothesis hypothesis\ngeometry_msgs/PoseWithCovariance pose\n",
    "vision_msgs/msg/Detection2D":
        "std_msgs/Header header\nvision_msgs/ObjectHypothesisWithPose[] results\n"
        "vision_msgs/BoundingBox2D bbox\nstring id\n",
    "vision_msgs/msg/Detection2DArray": "std_msgs/Header header\nvision_msgs/Detection2D[] detections\n",
}


def header(sec, frame):
    return {"stamp": {"sec": sec, "nanosec": 123_456_789}, "frame_id": frame}


def hypothesis(label, score, x):
    return {
        "hypothesis": {"class_id": label, "score": score},
        "pose": {
            "pose": {"position": {"x": x, "y": -2.5, "z": 0.75},
                     "orientation": {"x": 0.1, "y": 0.2, "z": 0.3, "w": 0.9}},
            "covariance": [0.01 * (i + 1) for i in range(36)],
        },
    }


def detection(label, score, cx):
    return {
        "header": header(1700000001, "camera"),
        "results": [hypothesis(label, score, 12.5), hypothesis("car", 0.125, 40.0)],
        "bbox": {"center": {"position": {"x": cx, "y": 240.25}, "theta": 0.015625}, "size_x": 64.5, "size_y": 128.0},
        "id": f"track-{label}",
    }


# One fully populated value per type: every field differs from its default.
VALUES = {
    "builtin_interfaces/msg/Time": {"sec": -12345, "nanosec": 999_999_999},
    "std_msgs/msg/Header": header(1700000000, "camera_optical"),
    "rosgraph_msgs/msg/Clock": {"clock": {"sec": 1700000100, "nanosec": 33_333_333}},
    "sensor_msgs/msg/Image": {
        "header": header(1700000000, "camera"), "height": 3, "width": 2, "encoding": "rgb8",
        "is_bigendian": 1, "step": 6, "data": list(range(7, 25)),
    },
    "sensor_msgs/msg/CompressedImage": {
        "header": header(1700000002, "camera"), "format": "jpeg",
        "data": [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0x4A, 0x46, 0x49],
    },
    "sensor_msgs/msg/RegionOfInterest": {"x_offset": 1, "y_offset": 2, "height": 3, "width": 4, "do_rectify": True},
    "sensor_msgs/msg/CameraInfo": {
        "header": header(1700000003, "camera"), "height": 480, "width": 640, "distortion_model": "plumb_bob",
        "d": [-0.25, 0.125, 0.001, -0.002, 0.0625],
        "k": [500.0, 0.0, 320.5, 0.0, 501.0, 240.5, 0.0, 0.0, 1.0],
        "r": [1.0, 0.5, 0.25, 0.125, 1.0, 0.0625, 0.03125, 0.015625, 1.0],
        "p": [500.0, 0.0, 320.5, 1.5, 0.0, 501.0, 240.5, 2.5, 0.0, 0.0, 1.0, 3.5],
        "binning_x": 2, "binning_y": 3,
        "roi": {"x_offset": 10, "y_offset": 20, "height": 300, "width": 400, "do_rectify": True},
    },
    "vision_msgs/msg/Detection2DArray": {
        "header": header(1700000004, "camera"),
        "detections": [detection("person", 0.875, 320.5), detection("bicycle", 0.5, 100.0)],
    },
    "geometry_msgs/msg/TwistStamped": {
        "header": header(1700000005, "base_link"),
        "twist": {"linear": {"x": 13.9, "y": -0.1, "z": 0.01}, "angular": {"x": 0.001, "y": -0.002, "z": 0.05}},
    },
    "diagnostic_msgs/msg/DiagnosticArray": {
        "header": header(1700000006, ""),
        "status": [
            {"level": 2, "name": "monitor: /camera/image", "message": "deadline missed", "hardware_id": "cam0",
             "values": [{"key": "gap_ms", "value": "112.5"}, {"key": "deadline_ms", "value": "100"}]},
            {"level": 0, "name": "monitor: detector", "message": "alive", "hardware_id": "",
             "values": []},
        ],
    },
    "reflex_msgs/msg/VehicleState": {
        "header": header(1700000007, "base_link"), "speed_mps": 13.875, "acceleration_mps2": -4.5, "yaw_rate_radps": 0.0125,
    },
    "reflex_msgs/msg/BrakeRequest": {
        "header": header(1700000008, "camera"), "level": 3, "deceleration_mps2": 9.0, "time_to_collision_s": 0.875,
        "reason": "ttc below full-braking threshold", "source": "aeb",
    },
    "reflex_msgs/msg/SafeStop": {
        "header": header(1700000009, ""), "state": 2, "engaged": True,
        "reason": "deadline missed on /perception/detections", "source": "monitor",
    },
    "reflex_msgs/msg/TrackedObjectArray": {
        "header": header(1700000010, "camera"),
        "objects": [
            {"track_id": 7, "class_id": "car", "range_m": 23.5, "range_rate_mps": -13.875, "lateral_m": 0.25,
             "time_to_collision_s": 1.6875, "in_path": True},
            {"track_id": 9, "class_id": "person", "range_m": 41.0, "range_rate_mps": 1.5, "lateral_m": -3.75,
             "time_to_collision_s": 1e300, "in_path": False},
        ],
    },
    "reflex_msgs/msg/MonitorEvent": {
        "header": header(1700000011, ""), "kind": 0, "node": "detector", "topic": "/camera/image",
        "value_ms": 112.5, "limit_ms": 100.0, "detail": "no message for 112.5 ms",
    },
}

PRIMITIVE_ARRAY_DTYPES = {"uint8": np.uint8, "float64": np.float64}


def build(typestore, typename, value):
    """Turns a nested dict into rosbags message objects, using the type store's field list."""
    _, fields = typestore.fielddefs[typename]
    kwargs = {}
    for name, (nodetype, detail) in fields:
        raw = value[name]
        kind = nodetype.name
        if kind == "BASE":
            kwargs[name] = raw
        elif kind == "NAME":
            kwargs[name] = build(typestore, detail, raw)
        else:  # ARRAY or SEQUENCE
            (element_kind, element_detail), _ = detail
            if element_kind.name == "BASE":
                kwargs[name] = np.array(raw, dtype=PRIMITIVE_ARRAY_DTYPES[element_detail[0]])
            else:
                kwargs[name] = [build(typestore, element_detail, item) for item in raw]
    return typestore.types[typename](**kwargs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=OUT, help="where to write (default: msgs/tests/golden)")
    out = parser.parse_args().out
    typestore = get_typestore(Stores.ROS2_HUMBLE)
    extra = {}
    for name, text in VISION_MSGS.items():
        extra.update(get_types_from_msg(text, name))
    for path in sorted((ROOT / "msg" / "reflex_msgs").glob("*.msg")):
        extra.update(get_types_from_msg(path.read_text(), f"reflex_msgs/msg/{path.stem}"))
    typestore.register(extra)

    out.mkdir(parents=True, exist_ok=True)
    for typename, value in VALUES.items():
        message = build(typestore, typename, value)
        data = bytes(typestore.serialize_cdr(message, typename))
        stem = typename.replace("/msg/", "__")
        (out / f"{stem}.cdr").write_bytes(data)
        (out / f"{stem}.json").write_text(json.dumps(value, indent=1) + "\n")
        print(f"{typename:40} {len(data):5} bytes")


if __name__ == "__main__":
    main()
