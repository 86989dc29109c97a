#!/usr/bin/env python3
"""Writes nodes/recorder/tests/fixtures/vtest.mcap: the first 50 frames of OpenCV's vtest.avi
(Debian opencv-doc; pedestrians; 768x576 at 10 fps; Apache-2.0 / BSD-3-Clause) as
sensor_msgs/msg/CompressedImage (JPEG, quality 80) on /camera/image/compressed at the video's
own 10 fps, written with mcap-ros2-support's writer (not our code), ros2 profile.

Header stamps and log times start at 1700000000 s and advance 100 ms per frame, so the file is
the same on every run. Run it in the conversion venv (OpenCV): models/tools/convert_nanodet.sh
makes it; `pip install mcap mcap-ros2-support` there first.
"""
import sys
from pathlib import Path

import cv2
from mcap_ros2.writer import Writer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import PACKAGES, unpack  # noqa: E402

FRAMES = 50
START_NS = 1_700_000_000 * 1_000_000_000
PERIOD_NS = 100_000_000
COMPRESSED_IMAGE = """std_msgs/Header header
string format
uint8[] data
================================================================================
MSG: std_msgs/Header
builtin_interfaces/Time stamp
string frame_id
================================================================================
MSG: builtin_interfaces/Time
int32 sec
uint32 nanosec
"""


def main():
    root = Path(__file__).resolve().parents[2]
    out = root / "nodes" / "recorder" / "tests" / "fixtures" / "vtest.mcap"
    video = cv2.VideoCapture(str(unpack("opencv-doc", PACKAGES["opencv-doc"], root / ".local" / "cache" / "debs")))
    with open(out, "wb") as f:
        writer = Writer(f)
        schema = writer.register_msgdef("sensor_msgs/msg/CompressedImage", COMPRESSED_IMAGE)
        for index in range(FRAMES):
            ok, frame = video.read()
            if not ok:
                sys.exit(f"vtest.avi ended at frame {index}")
            ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 80])
            stamp = START_NS + index * PERIOD_NS
            message = {
                "header": {"stamp": {"sec": stamp // 1_000_000_000, "nanosec": stamp % 1_000_000_000}, "frame_id": "camera"},
                "format": "jpeg",
                "data": jpeg.tobytes(),
            }
            writer.write_message("/camera/image/compressed", schema, message, log_time=stamp, publish_time=stamp,
                                 sequence=index)
        writer.finish()
    print(f"{out}: {FRAMES} frames, {out.stat().st_size / 1e6:.1f} MB", file=sys.stderr)


if __name__ == "__main__":
    main()
