"""Run directories as `aqakit train` lays them out, written by tests of `aqakit results` and `aqakit compare`."""

from __future__ import annotations

import csv
import json

import yaml


def write_run(root, name, benchmark, spearmans, *, best=None, unfinished=(), model="cofinal", epochs=200,
              precisions=None, predictions=None):
    """A run directory: config.yaml and seed-<k>/summary.json, one seed per entry of ``spearmans``.

    ``precisions``: each seed's, or None for summaries that predate the field. ``predictions``:
    per seed a list of (split, id, true, predicted) rows for its predictions.csv, or None for none.
    """
    run = root / name
    run.mkdir()
    config = {"model": {"name": model, "args": {}}, "benchmark": benchmark, "train": {"epochs": epochs, "select": "final"}}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    for seed, rho in enumerate(spearmans):
        summary = {"seed": seed, "model": model, "benchmark": benchmark, "selection": "final", "epochs": epochs,
                   "test": {"spearman": rho, "rl2": 2.0 + seed}}
        if precisions is not None:
            summary["precision"] = precisions[seed]
        if best is not None:
            summary["best_test_epoch_spearman"] = {"epoch": 10, "spearman": best[seed]}
        (run / f"seed-{seed}").mkdir()
        (run / f"seed-{seed}" / "summary.json").write_text(json.dumps(summary))
        if predictions is not None:
            with open(run / f"seed-{seed}" / "predictions.csv", "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["split", "id", "true_score", "predicted_score"])
                writer.writerows(predictions[seed])
    for seed in unfinished:
        (run / f"seed-{seed}").mkdir()
        (run / f"seed-{seed}" / "metrics.csv").write_text("epoch\n0\n")
    return run
