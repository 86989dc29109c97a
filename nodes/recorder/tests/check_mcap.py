#!/usr/bin/env python3
"""Checks a Reflex recording with code nobody on this project wrote: the `mcap` reader and
`mcap-ros2-support`'s CDR decoder (from the schemas in the file).

    check_mcap.py FILE EXPECTED.json

EXPECTED.json: {"topics": {topic: {"type": ros type, "messages": [message as JSON, ...]}}}, the
messages as the Rust side wrote them (serde_json of our structs), in publishing order. Byte
arrays appear there as "<N bytes>" with a "data_seed" beside the message: byte i must be
(i * 31 + seed) % 251. Prints one line per topic; exits 1 on the first difference.
"""
import json
import math
import sys

from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory


def plain(value):
    """A decoded ROS message as plain Python values."""
    if hasattr(value, "__slots__"):
        return {name: plain(getattr(value, name)) for name in value.__slots__}
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays for fixed-size numeric arrays
        return value.tolist()
    return value


def compare(expected, actual, path, seed):
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{path}: expected a message, got {actual!r}"
        for key, value in expected.items():
            if key not in actual:
                return f"{path}.{key}: missing in the decoded message"
            problem = compare(value, actual[key], f"{path}.{key}", seed)
            if problem:
                return problem
        return None
    if isinstance(expected, str) and expected.startswith("<") and expected.endswith(" bytes>"):
        length = int(expected[1:-len(" bytes>")])
        data = actual if isinstance(actual, bytes) else bytes(actual)
        if len(data) != length:
            return f"{path}: {len(data)} bytes, expected {length}"
        if seed is not None:
            for i, b in enumerate(data):
                if b != (i * 31 + seed) % 251:
                    return f"{path}[{i}] = {b}, expected {(i * 31 + seed) % 251}"
        return None
    if isinstance(expected, list):
        if len(expected) != len(actual):
            return f"{path}: {len(actual)} elements, expected {len(expected)}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            problem = compare(e, a, f"{path}[{i}]", seed)
            if problem:
                return problem
        return None
    if isinstance(expected, int) and isinstance(actual, bytes) and len(actual) == 1:
        actual = actual[0]  # a ROS `byte` field decodes as one byte
    if isinstance(expected, float) or isinstance(actual, float):
        if not math.isclose(expected, actual, rel_tol=1e-12, abs_tol=1e-12):
            return f"{path}: {actual!r}, expected {expected!r}"
        return None
    if expected != actual:
        return f"{path}: {actual!r}, expected {expected!r}"
    return None


def main():
    path, expected_path = sys.argv[1], sys.argv[2]
    expected = json.load(open(expected_path))["topics"]
    with open(path, "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        header = reader.get_header()
        if header.profile != "ros2":
            sys.exit(f"profile {header.profile!r}, expected 'ros2'")
        summary = reader.get_summary()
        if summary is None or summary.statistics is None:
            sys.exit("no summary section with statistics")
        seen = {}
        for schema, channel, message, decoded in reader.iter_decoded_messages():
            if channel.message_encoding != "cdr" or schema.encoding != "ros2msg":
                sys.exit(f"{channel.topic}: encodings {channel.message_encoding}/{schema.encoding}, expected cdr/ros2msg")
            seen.setdefault(channel.topic, []).append((schema.name, plain(decoded)))
        counts = {summary.channels[cid].topic: n for cid, n in summary.statistics.channel_message_counts.items()}
    for topic, want in expected.items():
        got = seen.get(topic, [])
        if len(got) != len(want["messages"]):
            sys.exit(f"{topic}: {len(got)} messages decoded, expected {len(want['messages'])}")
        if counts.get(topic) != len(got):
            sys.exit(f"{topic}: summary statistics say {counts.get(topic)}, decoded {len(got)}")
        for index, ((type_name, actual), message) in enumerate(zip(got, want["messages"])):
            if type_name != want["type"]:
                sys.exit(f"{topic}: schema {type_name}, expected {want['type']}")
            seed = message.pop("data_seed", None)
            problem = compare(message, actual, f"{topic}[{index}]", seed)
            if problem:
                sys.exit(problem)
        print(f"{topic}: {len(got)} x {want['type']} decoded and equal")


if __name__ == "__main__":
    main()
