"""I3D feature-extraction throughput: clips/s and frames/s, decoding and the network timed apart.

Decodes a video (by default one it writes itself: 320x240 H.264 with moving texture, exactly
``--clips x --clip-len`` frames) into 224x224 clips and encodes them with I3D in batches, through
the same code as ``aqakit extract``. Decode time covers demuxing, decoding, resizing and cropping;
model time covers the forward passes (synchronised on GPU). One warm-up batch runs first.

    python benchmarks/extract_throughput.py --weights ../shared/data/i3d/i3d_kinetics400_rgb.npz --clips 4

Uses the GPU when present (``--device`` to choose). Results are printed as JSON; ``--record FILE``
appends them to a ``.jsonl`` file.
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
from aqakit.video.registry import load_backbone
from aqakit.video.extract import extract_video

DEFAULT_WEIGHTS = Path(os.environ.get("AQAKIT_DATA", Path(__file__).parents[1] / ".." / "shared" / "data")) / "i3d" / "i3d_kinetics400_rgb.npz"


def write_test_video(path: Path, frames: int, size: tuple[int, int] = (320, 240), fps: int = 25) -> Path:
    """An H.264 video of moving noise texture (hard to compress, so decoding does real work)."""
    import av

    width, height = size
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, size=(height, width * 2, 3), dtype=np.uint8)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            image = np.ascontiguousarray(np.roll(texture, 4 * i, axis=1)[:, :width])
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--video", type=Path, default=None, help="a video to decode (default: a generated one)")
    parser.add_argument("--clips", type=int, default=4, help="clips in the generated video")
    parser.add_argument("--clip-len", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", default=None, help="cpu | cuda (default: the GPU when present)")
    parser.add_argument("--record", type=Path, default=None, help="append the result to this .jsonl file")
    args = parser.parse_args()

    backbone = load_backbone("i3d", args.weights, args.device)
    transform = backbone.weights.transform
    warm_up = np.zeros((min(args.batch_size, 2), args.clip_len, transform.crop_size, transform.crop_size, 3), np.uint8)
    backbone.encode(warm_up)
    with tempfile.TemporaryDirectory() as folder:
        video = args.video or write_test_video(Path(folder) / "bench.mp4", args.clips * args.clip_len)
        timing = extract_video(video, backbone, args.clip_len, transform.decode_options(), args.batch_size).timing
    total = timing.decode_seconds + timing.model_seconds
    device = backbone.device
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.processor() or platform.machine(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": round(os.getloadavg()[0], 2),  # other processes sharing the CPU
        "benchmark": "i3d-extraction",
        "video": "generated 320x240 h264" if args.video is None else str(args.video),
        "clips": timing.clips,
        "clip_len": args.clip_len,
        "batch_size": args.batch_size,
        "decode_seconds": round(timing.decode_seconds, 3),
        "model_seconds": round(timing.model_seconds, 3),
        "clips_per_second": round(timing.clips / total, 3),
        "frames_per_second": round(timing.frames / total, 2),
        "model_clips_per_second": round(timing.clips / timing.model_seconds, 3),
        "decode_frames_per_second": round(timing.frames / timing.decode_seconds, 1),
    }
    print(json.dumps(result))
    if args.record:
        append_result(args.record, result)


if __name__ == "__main__":
    main()
