"""Paired bootstrap of the Fisher-z average difference between two models on the same test videos.

Usage (run folders as `aqakit train` writes them, with per-seed ``predictions.csv``)::

    python docs/results/paired_bootstrap.py A_TES,A_PCS B_TES,B_PCS [--n-boot 10000] [--seed 0]

For each resample of the test videos (drawn with replacement, one draw shared by all benchmarks
and both models, since Fis-V's TES and PCS are scored on the same 100 videos), each model's
figure is the Fisher-z average over benchmarks of its seed-mean test Spearman, as ``aqakit
results`` reports it. Prints the observed difference A - B, its 95 % percentile interval and the
share of resamples in which A is ahead. Used in docs/results/cofinal-fisv.md.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from aqakit import metrics


def read_predictions(run: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """A run folder -> test video ids (sorted), true scores (V,), predictions (S seeds, V)."""
    seeds = sorted(run.glob("seed-*/predictions.csv"))
    if not seeds:
        raise SystemExit(f"{run}: no seed-*/predictions.csv")
    per_seed, truth = [], None
    for path in seeds:
        rows = {r["id"]: r for r in csv.DictReader(path.open()) if r["split"] == "test"}
        ids = sorted(rows)
        true = np.array([float(rows[i]["true_score"]) for i in ids])
        if truth is None:
            truth, first_ids = true, ids
        elif ids != first_ids or not np.array_equal(true, truth):
            raise SystemExit(f"{path}: test videos differ from {seeds[0]}")
        per_seed.append([float(rows[i]["predicted_score"]) for i in ids])
    return first_ids, truth, np.array(per_seed)


def model_figure(runs: list[tuple[np.ndarray, np.ndarray]], index: np.ndarray) -> np.ndarray:
    """Fisher-z average of seed-mean Spearman for each resample ``index`` (R, V) -> (R,)."""
    means = []
    for true, pred in runs:  # one benchmark: true (V,), pred (S, V)
        true_rows = np.broadcast_to(true[index], (pred.shape[0], *index.shape))  # (S, R, V)
        means.append(metrics.rowwise_spearman(pred[:, index], true_rows).mean(0))  # (R,)
    return np.apply_along_axis(metrics.fisher_z_mean, 0, np.array(means))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("a", help="model A's run folders, one per benchmark, comma-separated")
    parser.add_argument("b", help="model B's run folders, in the same benchmark order")
    parser.add_argument("--n-boot", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    models = []
    ids = None
    for spec in (args.a, args.b):
        runs = []
        for folder in spec.split(","):
            run_ids, true, pred = read_predictions(Path(folder))
            if ids is None:
                ids = run_ids
            elif run_ids != ids:
                raise SystemExit(f"{folder}: its test videos differ from the first run's")
            runs.append((true, pred))
        models.append(runs)
    n_videos = len(ids)
    observed = np.arange(n_videos)[None]
    rng = np.random.default_rng(args.seed)
    index = rng.integers(0, n_videos, size=(args.n_boot, n_videos))
    figure_a, figure_b = (float(model_figure(runs, observed)[0]) for runs in models)
    diff = model_figure(models[0], index) - model_figure(models[1], index)
    low, high = np.quantile(diff, [0.025, 0.975])
    print(f"A: {figure_a:.3f}  B: {figure_b:.3f}  "
          f"A - B: {figure_a - figure_b:+.3f}  95 % interval [{low:+.3f}, {high:+.3f}]  "
          f"A ahead in {np.mean(diff > 0):.1%} of {args.n_boot} resamples of {n_videos} videos")


if __name__ == "__main__":
    main()
