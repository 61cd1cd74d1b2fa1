"""What decoding in a child process (``aqakit.video.isolated``) costs per video, against decoding in
this process: the same clips of the same video, the two taken in turn ``--repeats`` times.

    python benchmarks/decode_isolation.py                  # a generated 10 s 320x240 H.264 clip at 25 fps
    python benchmarks/decode_isolation.py --video dive.mp4 --frames 160

The first isolated decoding also starts the fork server; it is reported apart. Prints one JSON
line (``--record FILE`` appends it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from extract_throughput import write_test_video

from aqakit.bench import append_result
from aqakit.video.decode import DecodeOptions, iter_timed_clips
from aqakit.video.isolated import isolated_timed_clips


def seconds(clips) -> tuple[float, int]:
    """Wall time to take every clip of ``clips``, and how many there were."""
    start = time.perf_counter()
    count = sum(1 for _ in clips)
    return time.perf_counter() - start, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=None, help="a video to decode (default: a generated one)")
    parser.add_argument("--seconds", type=int, default=10, help="length of the generated video")
    parser.add_argument("--clip-len", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--frames", type=int, default=None, help="a uniform sample of N frames (two passes)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--record", type=Path, default=None, help="append the result to this .jsonl file")
    args = parser.parse_args()

    options = DecodeOptions(size=args.size, frames=args.frames)
    with tempfile.TemporaryDirectory() as folder:
        video = args.video or write_test_video(Path(folder) / "clip.mp4", 25 * args.seconds)
        first, _ = seconds(isolated_timed_clips(video, args.clip_len, options))
        direct, isolated = [], []
        for _ in range(args.repeats):
            direct.append(seconds(iter_timed_clips(video, args.clip_len, options))[0])
            elapsed, clips = seconds(isolated_timed_clips(video, args.clip_len, options))
            isolated.append(elapsed)
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "benchmark": "decode-isolation",
        "load_average_1min": round(os.getloadavg()[0], 2),  # other processes sharing the CPU
        "video": f"generated {args.seconds} s 320x240 h264 at 25 fps" if args.video is None else str(args.video),
        "clips": clips,
        "clip_len": args.clip_len,
        "size": args.size,
        "in_process_seconds_median": round(statistics.median(direct), 4),
        "isolated_seconds_median": round(statistics.median(isolated), 4),
        "overhead_seconds_per_video": round(statistics.median(isolated) - statistics.median(direct), 4),
        "first_isolated_seconds (starts the fork server)": round(first, 4),
    }
    print(json.dumps(result))
    if args.record:
        append_result(args.record, result)


if __name__ == "__main__":
    main()
