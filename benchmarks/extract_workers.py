"""Extraction of a folder of videos on Ray workers against one process: wall time and videos/s.

Writes ``--videos`` generated videos (320x240 H.264, ``--clips`` clips of 16 frames each), extracts
them with I3D into two fresh folders, once in this process (``aqakit extract``'s default path, torch
using every core) and once on ``--workers`` local Ray workers (one backbone each, ``1`` torch
thread each: ``aqakit extract --workers N``), then compares the two folders' arrays (equal up to
the float rounding of the two thread counts).

    python benchmarks/extract_workers.py --workers 2 --record benchmarks/results/cpu-2core.jsonl

The Ray figure includes starting and stopping Ray and shipping the backbone to the workers (what a
user of the command waits for). Results print as JSON; ``--record FILE`` appends them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from aqakit.bench import append_result
from aqakit.video.distributed import RayWorkers, ray_runner
from aqakit.video.extract import extract_folder
from aqakit.video.registry import load_backbone
from extract_throughput import DEFAULT_WEIGHTS, write_test_video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--clips", type=int, default=2, help="clips per generated video")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--record", type=Path, default=None, help="append the result to this .jsonl file")
    args = parser.parse_args()

    backbone = load_backbone("i3d", args.weights, "cpu")
    options = backbone.weights.transform.decode_options()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        videos = [write_test_video(root / f"video{i:02d}.mp4", args.clips * 16 + i) for i in range(args.videos)]
        seconds = {}
        for name, runner in (("one_process", None),
                             ("ray", ray_runner(backbone, 16, options, 4, RayWorkers(args.workers)))):
            start = time.perf_counter()
            report = extract_folder(videos, backbone, root / name, 16, options, 4, runner=runner)
            seconds[name] = time.perf_counter() - start
            assert not report.failed, report.failed
        difference = max(float(np.abs(np.load(root / "one_process" / f"{path.stem}.npy")
                                      - np.load(root / "ray" / f"{path.stem}.npy")).max()) for path in videos)
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),  # other processes sharing the CPU
        "benchmark": "extract-workers",
        "videos": args.videos,
        "clips_per_video": args.clips,
        "one_process_torch_threads": torch.get_num_threads(),
        "ray_workers": args.workers,
        "one_process_seconds": round(seconds["one_process"], 2),
        "ray_seconds": round(seconds["ray"], 2),
        "one_process_videos_per_second": round(args.videos / seconds["one_process"], 3),
        "ray_videos_per_second": round(args.videos / seconds["ray"], 3),
        "max_abs_difference": difference,
    }
    print(json.dumps(result))
    if args.record:
        append_result(args.record, result)


if __name__ == "__main__":
    main()
