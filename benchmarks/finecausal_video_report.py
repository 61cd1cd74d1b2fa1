"""From a real video to a FineCausal report, through the command line, with timings:

    PYTHONPATH=src python benchmarks/finecausal_video_report.py [--data ../shared/data] [--out docs/reports]

1. ``aqakit masks`` on the two real GIFs (MTL-AQA's 21-frame dive, the 79-frame I3D check clip),
   96 frames each (``--frames 96``, FineCausal's 96-frame input: frames repeat evenly in these short
   videos), MediaPipe Pose; prints the frames with a person and the milliseconds a frame;
2. ``aqakit extract --masks`` on them with the real Kinetics I3D: the whole-frame stream O into
   ``gifs/features/`` and the foreground stream F into ``gifs/foreground/`` (6 clips of 16 frames each);
3. a small generated training set in FineDiving's layout (annotation pickles with step transitions,
   ``features/`` and ``foreground/`` from the same I3D, 96 frames): videos of a bright block (the
   "athlete") moving across a background whose brightness follows the score in training, each with
   its PNG masks (FineDiving-HM's layout, read by the same ``--masks``); ``aqakit train finecausal``;
4. ``aqakit score GIF --masks ... --report`` on both GIFs, and a headless-Chromium screenshot of the
   dive's report: ``docs/reports/finecausal-dive.png`` (stage attention, transitions ringed on the
   transition timeline, foreground share of attention).

The model learns the generated videos, not diving: the page shows what the report draws, not a
meaningful score. Nothing of the real data is written under ``--out``. Needs PyAV, MediaPipe
(``aqakit[masks]``), the I3D weights and Chromium; about 3 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from report_screenshots import screenshot

#: Frames per video (FineCausal's 96) and per I3D clip: 6 clips.
FRAMES, CLIP_LEN = 96, 16
#: Generated training and test videos, and their transition frames (take-off | flight | entry).
N_TRAIN, N_TEST, TRANSITIONS = 12, 4, (32, 64)
#: The screenshot's window (width, height), tall enough for the whole page.
WINDOW = (1280, 2300)


def aqakit(*args: object) -> tuple[str, float]:
    """Run ``aqakit ARGS`` (this interpreter), echo its output; returns stdout and the seconds it took."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "aqakit", *map(str, args)], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    noise = ("W0000", "I0000", "INFO: Created", "WARNING: All log")  # MediaPipe's C++ start-up lines
    print(f"$ aqakit {' '.join(map(str, args))}  ({seconds:.1f} s)")
    print("\n".join(line for line in (done.stdout + done.stderr).splitlines() if not line.startswith(noise)))
    if done.returncode:
        raise SystemExit(f"aqakit {args[0]} failed with status {done.returncode}")
    return done.stdout, seconds


def write_png(path: Path, image: np.ndarray) -> None:
    """An RGB uint8 image as a PNG file (PyAV)."""
    import av

    with av.open(str(path), mode="w", format="image2") as container:
        stream = container.add_stream("png", rate=1)
        stream.height, stream.width = image.shape[:2]
        stream.pix_fmt = "rgb24"
        for packet in [*stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")),
                       *stream.encode()]:
            container.mux(packet)


def write_dive(path: Path, masks: Path, rng: np.random.Generator, score: float) -> None:
    """A 96-frame 224x224 video: a block that rises (take-off), turns (flight) and falls (entry),
    its size growing with ``score``, over a background a little brighter for higher scores; its
    masks as one PNG per frame (255 on the block)."""
    import av

    masks.mkdir(parents=True)
    background = 40 + 60 * score / 100 + rng.normal(0, 8)
    side = int(24 + 40 * score / 100)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width = stream.height = 224
        stream.pix_fmt, stream.bit_rate = "yuv420p", 4_000_000
        for t in range(FRAMES):
            stage = int(t >= TRANSITIONS[0]) + int(t >= TRANSITIONS[1])
            x = 20 + int(150 * t / FRAMES)
            y = [180 - 3 * t, 84 + int(20 * np.sin(t / 3)), 84 + 4 * (t - TRANSITIONS[1])][stage] % (224 - side)
            frame = np.full((224, 224, 3), background, np.uint8)
            mask = np.zeros((224, 224), np.uint8)
            frame[y:y + side, x:x + side] = [(230, 120, 60), (60, 230, 120), (60, 120, 230)][stage]
            mask[y:y + side, x:x + side] = 255
            write_png(masks / f"{t:05d}.png", mask[..., None].repeat(3, -1))
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def generated_set(root: Path, seed: int = 0) -> tuple[Path, Path, Path]:
    """The generated FineDiving-layout videos, their PNG masks (``<root>/masks/Gen/<k>/``) and the
    annotation pickles; returns (videos folder, masks folder, data root)."""
    rng = np.random.default_rng(seed)
    videos, masks, data = root / "videos", root / "masks", root / "data"
    for folder in (videos, data):
        folder.mkdir(parents=True)
    annotations, keys = {}, []
    labels = np.repeat([0, 1, 2], np.diff([0, *TRANSITIONS, FRAMES]))
    for k in range(N_TRAIN + N_TEST):
        score = float(rng.uniform(20, 95))
        write_dive(videos / f"Gen_{k}.mp4", masks / "Gen" / str(k), rng, score)
        annotations[("Gen", k)] = ["107B", round(score, 1), 3.0, np.array(TRANSITIONS, float), labels]
        keys.append(("Gen", k))
    for name, value in [("fine-grained_annotation_aqa.pkl", annotations), ("train_split.pkl", keys[:N_TRAIN]),
                        ("test_split.pkl", keys[N_TRAIN:])]:
        (data / name).write_bytes(pickle.dumps(value, protocol=4))
    return videos, masks, data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("docs/reports"))
    parser.add_argument("--work", type=Path, default=None, help="Keep the intermediate folders here (default: a temporary one).")
    args = parser.parse_args()
    weights = args.data / "i3d" / "i3d_kinetics400_rgb.npz"
    gifs = [args.data / "mtl-aqa" / "diving_sample.gif", args.data / "i3d" / "v_CricketShot_g04_c01_rgb.gif"]
    decoding = ("--frames", FRAMES)
    with tempfile.TemporaryDirectory() as scratch:
        work = args.work or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        aqakit("masks", *gifs, "--out", work / "gif-masks", *decoding)
        aqakit("extract", *gifs, "--weights", weights, "--out", work / "gifs" / "features", "--masks", work / "gif-masks",
               "--clip-len", CLIP_LEN, *decoding)
        videos, masks, data = generated_set(work / "generated")
        aqakit("extract", videos, "--weights", weights, "--out", data / "features", "--masks", masks, "--clip-len", CLIP_LEN,
               *decoding)
        aqakit("train", "finecausal", "finediving", "--data-root", data, "--preset", "finecausal-synthetic",
               "--set", "benchmark_args.foreground=true",
               "--set", "model.args.n_exemplars=3", "--epochs", 40, "--runs-dir", work / "runs", "--name", "finecausal")
        for gif in gifs:
            page = work / f"{gif.stem}.html"
            out, _ = aqakit("score", gif, "--checkpoint", work / "runs" / "finecausal", "--weights", weights,
                            "--masks", work / "gif-masks", "--report", page, "--json")
            result = json.loads(out[out.index("{"):])
            print(f"{gif.name}: score {result['score']:.2f}, {result['clips']} clips, predicted transitions "
                  f"{result['marks']['transition_probability']}")
        args.out.mkdir(parents=True, exist_ok=True)
        screenshot(work / "diving_sample.html", args.out / "finecausal-dive.png", WINDOW, work / "chromium-profile")


if __name__ == "__main__":
    main()
