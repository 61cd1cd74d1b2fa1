"""Wall time of a sweep through ``aqakit sweep`` on local Ray Tune against the same trials
trained one after another with ``train_run`` (what a shell loop of ``aqakit train`` does, less
its start-ups).

    python benchmarks/sweep_wall_time.py                 # 4 trials x 2 seeds of a small GDLT on synthetic
    python benchmarks/sweep_wall_time.py --epochs 20
    python benchmarks/sweep_wall_time.py --spec cofinal-ablations-fisv --data-root ../shared/data/fisv --epochs 10

``--spec`` takes a shipped spec or a YAML file (``--epochs`` then replaces its epochs, as
``aqakit sweep --set train.epochs=N``, so a long sweep can be timed at a fraction of its length). Ray runs as many trials at once as the machine has
CPUs (one CPU and one torch thread per trial); its time includes starting and stopping Ray. One
after another, each trial's seeds train in one process with ``--threads`` torch threads (default:
one per CPU, as ``aqakit train`` on an idle machine). Both sides train on the CPU. Prints one JSON
line (``--record FILE`` appends it).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from aqakit.bench import append_result
from aqakit.sweep.spec import load_spec, parse_spec, trial_name
from aqakit.sweep.tune import run_sweep
from aqakit.train.runner import train_run


def small_spec(epochs: int) -> dict:
    """Four trials (two learning rates x two dropouts) of two seeds each on a small synthetic benchmark."""
    return {
        "model": "gdlt", "benchmark": "synthetic",
        "base": {"benchmark_args": {"n_train": 96, "n_test": 48, "dim": 64}, "model.args": {"hidden_dim": 64, "n_queries": 4},
                 "train.epochs": epochs, "train.batch_size": 16, "train.crop_len": 32, "train.precision": "32-true"},
        "space": {"optim.lr": {"grid": [0.01, 0.003]}, "model.args.dropout": {"grid": [0.1, 0.3]}},
        "seeds": [0, 1], "resources": {"cpu": 1, "gpu": 0},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", help="A shipped sweep spec's name or a YAML file (default: the small GDLT sweep).")
    parser.add_argument("--data-root", type=Path, help="The spec's data folder, as aqakit sweep --data-root.")
    parser.add_argument("--epochs", type=int, help="Epochs per seed (default: 10 for the small sweep, the spec's own for --spec).")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="Torch threads one after another (default: one per CPU).")
    parser.add_argument("--record", type=Path, help="Append the JSON line to this file.")
    args = parser.parse_args()
    if args.spec is None:
        spec = parse_spec(small_spec(args.epochs or 10), "sweep_wall_time.py")
    else:
        spec = load_spec(args.spec, data_root=None if args.data_root is None else str(args.data_root),
                         settings=None if args.epochs is None else {"train.epochs": args.epochs})
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = run_sweep(spec, Path(tmp) / "sweep")
        ray_seconds = time.perf_counter() - start
        torch.set_num_threads(args.threads)
        start = time.perf_counter()
        for values in spec.grid():
            train_run(spec.config(values), Path(tmp) / "one-by-one" / trial_name(spec, values), spec.seeds, device="cpu")
        serial_seconds = time.perf_counter() - start
    result = {
        "benchmark": "sweep_wall_time", "spec": args.spec or "small-gdlt", "trials": len(spec.grid()), "seeds": len(spec.seeds),
        "epochs": spec.config(spec.grid()[0]).train.epochs, "cpus": os.cpu_count(), "one_after_another_threads": args.threads,
        "ray_sweep_seconds": round(ray_seconds, 1), "one_after_another_seconds": round(serial_seconds, 1),
        "speed_up": round(serial_seconds / ray_seconds, 2), "failed_trials": summary["failed"],
    }
    print(json.dumps(result))
    if args.record:
        append_result(args.record, result)


if __name__ == "__main__":
    main()
