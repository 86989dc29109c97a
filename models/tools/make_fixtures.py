#!/usr/bin/env python3
"""Derives the perception test fixtures from real images in Debian packages.

  dog.png          <- /usr/share/darknet/data/dog.jpg from Debian `darknet` (public domain, darknet
                      is released into the public domain by its author), decoded once to PNG so the
                      Rust node and the Python reference read identical pixels.
  vtest_NNNN.png   <- frames of /usr/share/doc/opencv-doc/examples/data/vtest.avi from Debian
                      `opencv-doc` (OpenCV sample data, Apache-2.0 / BSD-3-Clause), 768x576, 10 fps.

The .deb files are fetched with `apt-get download` (no installation) and unpacked into the cache.
Needs opencv-python-headless for the video (the conversion venv has it).
"""
import argparse
import subprocess
import sys
from pathlib import Path

PACKAGES = {
    "darknet": "usr/share/darknet/data/dog.jpg",
    "opencv-doc": "usr/share/doc/opencv-doc/examples/data/vtest.avi",
}
VTEST_FRAMES = (0, 150, 300, 450)


def unpack(package: str, member: str, cache: Path) -> Path:
    root = cache / package
    target = root / member
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", package], cwd=cache, check=True, capture_output=True)
    deb = sorted(cache.glob(f"{package}_*.deb"))[-1]
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    if not target.exists():
        sys.exit(f"{deb.name} has no {member}")
    return target


def main() -> None:
    import cv2

    here = Path(__file__).resolve()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=here.parents[2] / "nodes" / "detector" / "tests" / "fixtures")
    parser.add_argument("--cache", type=Path, default=here.parents[2] / ".local" / "cache" / "debs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    dog = cv2.imread(str(unpack("darknet", PACKAGES["darknet"], args.cache)), cv2.IMREAD_COLOR)
    cv2.imwrite(str(args.out / "dog.png"), dog)
    print(f"dog.png {dog.shape[1]}x{dog.shape[0]}", file=sys.stderr)

    video = cv2.VideoCapture(str(unpack("opencv-doc", PACKAGES["opencv-doc"], args.cache)))
    index, wanted = 0, set(VTEST_FRAMES)
    while wanted:
        ok, frame = video.read()
        if not ok:
            sys.exit(f"vtest.avi ended at frame {index}; still wanted {sorted(wanted)}")
        if index in wanted:
            cv2.imwrite(str(args.out / f"vtest_{index:04}.png"), frame)
            wanted.discard(index)
            print(f"vtest_{index:04}.png {frame.shape[1]}x{frame.shape[0]}", file=sys.stderr)
        index += 1


if __name__ == "__main__":
    main()
