"""Time the path of docs/ten-videos.md: ten labelled videos -> features -> a model -> a report.

    python benchmarks/ten_videos.py --data ../shared/data --work /tmp/ten-videos

Ten short videos stand in for a user's own: variants of the two real GIFs in ``--data`` (the
MTL-AQA dive and the I3D check clip; mirrored, cropped, played backwards, looped, every other
frame), written as H.264 MP4 with PyAV, and a ``labels.csv`` of made-up scores (eight train, two
test). Then each command of the docs page runs as a user would type it (``python -m aqakit``), and
the seconds of each are printed, with the total. The scores are arbitrary, so the model's figures
mean nothing: the point is the time and that every step works.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np

#: (name, source GIF, how its frames are changed, made-up score, split)
VARIANTS = [
    ("dive-a", "dive", "as-is", 62.0, "train"), ("dive-b", "dive", "mirror", 55.5, "train"),
    ("dive-c", "dive", "loop", 71.0, "train"), ("dive-d", "dive", "crop", 48.0, "train"),
    ("dive-e", "dive", "backwards", 66.5, "test"), ("cricket-a", "cricket", "as-is", 40.0, "train"),
    ("cricket-b", "cricket", "mirror", 35.5, "train"), ("cricket-c", "cricket", "every-other", 51.0, "train"),
    ("cricket-d", "cricket", "crop", 44.0, "train"), ("cricket-e", "cricket", "backwards", 38.5, "test"),
]


def read_gif(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def changed(frames: list[np.ndarray], how: str) -> list[np.ndarray]:
    if how == "mirror":
        return [f[:, ::-1] for f in frames]
    if how == "loop":
        return frames + frames[::-1] + frames
    if how == "crop":
        h, w = frames[0].shape[:2]
        return [f[h // 10: h - h // 10, w // 10: w - w // 10] for f in frames]
    if how == "backwards":
        return frames[::-1]
    if how == "every-other":
        return frames[::2] * 2
    return frames


def write_mp4(path: Path, frames: list[np.ndarray], fps: int = 25) -> None:
    h, w = (d - d % 2 for d in frames[0].shape[:2])  # H.264 needs even sides
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:h, :w]), format="rgb24")))
        container.mux(stream.encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--work", type=Path, required=True, help="an empty or new folder")
    args = parser.parse_args()
    sources = {"dive": read_gif(args.data / "mtl-aqa" / "diving_sample.gif"),
               "cricket": read_gif(args.data / "i3d" / "v_CricketShot_g04_c01_rgb.gif")}
    videos, data = args.work / "videos", args.work / "data"
    videos.mkdir(parents=True)
    data.mkdir()
    for name, source, how, _, _ in VARIANTS:
        write_mp4(videos / f"{name}.mp4", changed(sources[source], how))
    (data / "labels.csv").write_text("id,score,split\n" + "".join(f"{n},{s},{split}\n" for n, _, _, s, split in VARIANTS))
    weights = args.data / "i3d" / "i3d_kinetics400_rgb.npz"
    aqakit = [sys.executable, "-m", "aqakit"]
    steps = [
        ("extract", [*aqakit, "extract", str(videos), "--weights", str(weights), "--out", str(data / "features")]),
        ("train", [*aqakit, "train", "gdlt", "csv", "--data-root", str(data), "--preset", "gdlt-small",
                   "--runs-dir", str(args.work / "runs"), "--name", "mine"]),
        ("score", [*aqakit, "score", str(videos / "dive-e.mp4"), "--checkpoint", str(args.work / "runs" / "mine"),
                   "--weights", str(weights), "--report", str(args.work / "dive-e.html")]),
        ("report", [*aqakit, "report", str(args.work / "runs" / "mine")]),
    ]
    total = 0.0
    for label, command in steps:
        start = time.perf_counter()
        subprocess.run(command, check=True)
        seconds = time.perf_counter() - start
        total += seconds
        print(f"{label}: {seconds:.1f} s", flush=True)
    print(f"total: {total:.1f} s")


if __name__ == "__main__":
    main()
