"""Wall time of N seeds trained one after the other against N seeds as one batched ensemble.

Both go through ``train_run`` (the code of ``aqakit train --seeds N`` and ``--ensemble``), with
the model's preset for the benchmark and any ``--set`` overrides, on the same device:

    python benchmarks/ensemble_speed.py gdlt synthetic --seeds 4 --set train.epochs=3
    python benchmarks/ensemble_speed.py gdlt fisv-pcs --data-root ../shared/data/fisv --seeds 8 --device cuda

Prints one JSON line (``--record FILE`` appends it): seconds of each, the speedup, and the largest
difference of the members' test Spearman from the separate runs'.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from aqakit.bench import append_result
from aqakit.train.config import build_config, parse_override
from aqakit.train.runner import train_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("benchmark")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="key=value (repeatable)")
    parser.add_argument("--record", type=Path, default=None, help="append the result to this .jsonl file")
    args = parser.parse_args()

    overrides = dict(parse_override(text) for text in args.overrides)
    if args.data_root:
        overrides["data_root"] = str(Path(args.data_root).resolve())
    seeds = list(range(args.seeds))
    seconds, summaries = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        for mode in ("sequential", "ensemble"):
            config = build_config(args.model, args.benchmark, {**overrides, "train.ensemble": mode == "ensemble"})
            started = time.perf_counter()
            summaries[mode] = train_run(config, Path(folder) / mode, seeds, device=args.device)
            seconds[mode] = time.perf_counter() - started
    spearman_gap = max(
        abs(a["test"]["spearman"] - b["test"]["spearman"])
        for a, b in zip(summaries["sequential"]["per_seed"], summaries["ensemble"]["per_seed"])
    )
    result = {
        "kind": "ensemble-speed",
        "date": time.strftime("%Y-%m-%d"),
        "device": torch.cuda.get_device_name() if args.device == "cuda" else f"cpu, {torch.get_num_threads()} threads",
        "model": args.model, "benchmark": args.benchmark, "overrides": overrides, "seeds": args.seeds,
        "epochs": config.train.epochs, "sequential_seconds": round(seconds["sequential"], 2),
        "ensemble_seconds": round(seconds["ensemble"], 2),
        "speedup": round(seconds["sequential"] / seconds["ensemble"], 2),
        "max_test_spearman_difference": spearman_gap,
    }  # fmt: skip
    print(json.dumps(result))
    if args.record:
        append_result(args.record, result)


if __name__ == "__main__":
    main()
