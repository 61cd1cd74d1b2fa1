"""Training throughput of a model on a benchmark with its preset (batch size, crop length).

Runs a few epochs through the real training engine (the same code as ``aqakit train``) and
prints the mean seconds per epoch (training alone, and with the per-epoch test pass),
samples per second and the thread count. The first epoch is left out as warm-up
(the engine's own timing summary does so).

    python benchmarks/train_throughput.py gdlt fisv-pcs --data-root ../shared/data/fisv --epochs 6

Results are printed as JSON; append them to ``benchmarks/results/<machine>.jsonl`` by hand
or with ``--record``.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from aqakit.bench import append_result
from aqakit.train.config import build_config
from aqakit.train.runner import train_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("benchmark")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--record", type=Path, default=None, help="append the result to this .jsonl file")
    args = parser.parse_args()

    overrides = {"train.epochs": args.epochs}
    if args.data_root:
        overrides["data_root"] = str(Path(args.data_root).resolve())
    config = build_config(args.model, args.benchmark, overrides)
    with tempfile.TemporaryDirectory() as folder:
        timing = train_run(config, Path(folder) / "run", [0])["per_seed"][0]["timing"]  # epoch 0 left out
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "model": args.model,
        "benchmark": args.benchmark,
        "batch_size": config.train.batch_size,
        "crop_len": config.train.crop_len,
        "epochs_measured": timing["epochs_measured"],
        "train_seconds_per_epoch": round(timing["train_seconds_per_epoch"], 3),
        "epoch_seconds_with_test_pass": round(timing["epoch_seconds_with_eval"], 3),
        "train_samples_per_second": round(timing["train_samples_per_second"], 1),
    }
    print(json.dumps(result))
    if args.record:
        append_result(args.record, result)


if __name__ == "__main__":
    main()
