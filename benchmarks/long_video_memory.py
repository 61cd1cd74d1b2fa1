"""Peak memory of scoring one very long video (20,000 clips by default) with every model.

    python benchmarks/long_video_memory.py --clips 20000 --dim 1024 --record benchmarks/results/long-video-memory-cpu.jsonl

Each model is trained for one epoch on its built-in synthetic benchmark (``AQAModel.synthetic_benchmark``,
``--dim`` features) with the preset a CSV feature folder gets (``<model>-generic`` or ``<model>``: the
paper's widths), through ``train_run``; then a fresh process scores a feature folder holding one
float16 file of ``--clips`` clips, as wide as the model's input, with ``predict_folder`` (the code
of ``aqakit predict``) and reports its peak resident memory (``VmHWM``, Linux), the memory before
scoring (interpreter, torch, model) and the seconds. Prints one JSON line per model.

FineCausal cannot score single-stream features: it reads a whole-frame and a foreground stream
side by side and trains its parser on stage transitions. It is trained on ``synthetic-confounded``
(two streams of ``--dim`` each, planted transitions) and scores a file of ``2 x --dim`` features
``[O | F]``; its line records ``trained_on`` and ``feature_dim``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from aqakit.bench import append_result
from aqakit.models import find_checkpoint, list_models, load_checkpoint, model_class
from aqakit.train.config import build_config, preset_path
from aqakit.train.runner import train_run

#: Run in a fresh interpreter so that its peak memory is the scoring's alone.
#: The peak is the process's VmHWM (``ru_maxrss`` would carry the parent's peak over exec).
SCORE_ONE_FOLDER = """
import json, sys, time
from aqakit.models.loading import find_checkpoint, load_checkpoint
from aqakit.pipeline.predict import predict_folder
def high_water_mib():
    status = open("/proc/self/status").read()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024
load_checkpoint(find_checkpoint(sys.argv[1]))  # imports and one model in memory: the baseline
before = high_water_mib()
start = time.perf_counter()
scores = predict_folder(sys.argv[1], sys.argv[2])
print(json.dumps({"seconds": time.perf_counter() - start, "before_mib": before, "peak_mib": high_water_mib(),
                  "score": float(scores.scores[0])}))
"""


def trained_run(model: str, benchmark: str, dim: int, runs: Path) -> Path:
    """A one-epoch run of ``model`` with the preset of a CSV folder on ``benchmark``'s synthetic features of ``dim``."""
    overrides = {"benchmark_args.dim": dim, "benchmark_args.n_train": 24, "benchmark_args.n_test": 8,
                 "train.epochs": 1, "train.select": "final", "train.ema_decay": None}
    preset = preset_path(model, "csv", "csv")
    train_run(build_config(model, benchmark, overrides, preset=str(preset)), runs / model, [0])
    return runs / model


def long_video_folder(root: Path, clips: int, width: int) -> Path:
    """A feature folder holding one float16 video of ``clips`` x ``width`` (written once per width)."""
    folder = root / f"features-{width}"
    if not folder.is_dir():
        folder.mkdir()
        np.save(folder / "long.npy", np.random.default_rng(0).normal(size=(clips, width)).astype(np.float16))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="default: every registered model")
    parser.add_argument("--clips", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--record", type=Path, help="append each result as a JSON line to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models or list_models():
            benchmark = model_class(model).synthetic_benchmark
            run = trained_run(model, benchmark, args.dim, Path(tmp) / "runs")
            width = load_checkpoint(find_checkpoint(run))[0].in_dim  # 2 x dim for a two-stream model
            features = long_video_folder(Path(tmp), args.clips, width)
            measured = subprocess.run([sys.executable, "-c", SCORE_ONE_FOLDER, str(run), str(features)],
                                      capture_output=True, text=True, check=True)
            result = {"benchmark": "long_video_memory", "model": model, "clips": args.clips, "dim": args.dim,
                      **({} if benchmark == "synthetic" else {"trained_on": benchmark, "feature_dim": width}),
                      **json.loads(measured.stdout.strip().splitlines()[-1])}
            print(json.dumps(result), flush=True)
            if args.record is not None:
                append_result(args.record, result)


if __name__ == "__main__":
    main()
