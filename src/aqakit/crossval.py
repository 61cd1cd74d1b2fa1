"""The folder of a cross-validated run (``aqakit train MODEL BENCHMARK --folds all``) and its summary.

A benchmark with official folds (JIGSAWS: four, :attr:`~aqakit.data.benchmarks.Benchmark.official_folds`)
is reported as papers do: one complete run per fold, then the Fisher-z mean of the folds' test
Spearman. Layout of ``runs/<name>/``::

    crossval.json     what is trained: model, benchmark, folds, seeds (written first; a resume must match it)
    summary.json      per fold its test metrics, and the Fisher-z mean over folds (written last)
    fold-<k>/         the run of split k (an ordinary run folder: config.yaml, data.json, seed-<s>/ ...)

With several seeds the Fisher-z mean is taken per seed (seed s's test Spearman on every fold),
then reported as mean ± sample std over the seeds, like any figure of a run. Nothing here imports
the training engine (:mod:`aqakit.train.folds` trains the folds).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from aqakit import metrics
from aqakit.atomic import atomic_write_text
from aqakit.errors import DataError, RunDirectoryError
from aqakit.rundir import BEST_TEST_NOTE, RunDir, RunSummary, check_folder_use, read_json

#: What the Fisher-z figure of a cross-validated run is, in every summary and table that shows it.
FISHER_Z_NOTE = ("Fisher-z mean over folds of the test Spearman (z = atanh(rho) averaged, then tanh), "
                 "per seed; mean ± std over seeds")


class CrossValDir:
    """A cross-validated run's folder (see the module's layout)."""

    PLAN_FILE = "crossval.json"
    SUMMARY_FILE = RunDir.SUMMARY_FILE
    FOLD_PREFIX = "fold-"

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"CrossValDir({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def plan_path(self) -> Path:
        return self.path / self.PLAN_FILE

    @property
    def summary_path(self) -> Path:
        return self.path / self.SUMMARY_FILE

    @property
    def is_crossval(self) -> bool:
        """Whether the folder is a cross-validated run (it holds a ``crossval.json``)."""
        return self.plan_path.is_file()

    def fold(self, fold: int) -> RunDir:
        """The run folder of fold ``fold`` (it may not exist yet)."""
        return RunDir(self.path / f"{self.FOLD_PREFIX}{fold}")

    def read_plan(self) -> dict[str, Any]:
        """``crossval.json``: model, benchmark, folds and seeds; DataError without the lists of folds and seeds."""
        plan = read_json(self.plan_path)
        for key in ("folds", "seeds"):
            if not isinstance(plan, dict) or not isinstance(plan.get(key), list):
                raise DataError(f"{self.plan_path}: no list of {key} in it (not written by aqakit train --folds?)")
        return plan

    def write_plan(self, plan: Mapping[str, Any]) -> None:
        atomic_write_text(self.plan_path, json.dumps(dict(plan), indent=2))

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        atomic_write_text(self.summary_path, json.dumps(dict(summary), indent=2))

    def check_use(self, *, overwrite: bool = False, resume: bool = False) -> bool:
        """As :meth:`RunDir.check_use`, for a cross-validated run (recognised by its ``crossval.json``)."""
        return check_folder_use(self.path, self.PLAN_FILE, overwrite=overwrite, resume=resume)

    def check_same_plan(self, plan: Mapping[str, Any]) -> None:
        """RunDirectoryError when a resume would train another model, benchmark or set of folds than the saved plan."""
        saved = self.read_plan()
        changed = [f"{key}: saved {saved.get(key)!r}, now {plan[key]!r}"
                   for key in ("model", "benchmark", "folds") if saved.get(key) != plan[key]]
        if changed:
            raise RunDirectoryError(
                f"{self.plan_path}: cannot resume, it trains something else ({'; '.join(changed)}); "
                "train a new run (another --name)"
            )


def over_folds(per_fold: Sequence[Sequence[float]]) -> np.ndarray:
    """Fisher-z mean over folds, per seed: (F folds, S seeds) correlations -> (S,). A NaN fold gives NaN."""
    return metrics.fisher_z(np.asarray(per_fold, dtype=np.float64), axis=0)


def crossval_summary(fold_summaries: Mapping[int, RunSummary]) -> dict[str, Any]:
    """The summary of a cross-validated run from its folds' run summaries (fold -> summary, all of the
    same seeds): per fold its test metrics, then the Fisher-z mean over folds of the test Spearman
    (and of the best-test-epoch Spearman, labelled as chosen on test, when every fold has it)."""
    folds = sorted(fold_summaries)
    first = fold_summaries[folds[0]]
    per_fold = []
    for fold in folds:
        summary = fold_summaries[fold]
        if summary.test is None:
            raise DataError(f"fold {fold}: no test metrics (a tuning run?); a cross-validated run reports test figures")
        entry: dict[str, Any] = {
            "fold": fold, "run": f"{CrossValDir.FOLD_PREFIX}{fold}", "test": summary.test,
            "test_spearman_per_seed": [s.test["spearman"] for s in summary.per_seed],  # type: ignore[index]
        }
        if summary.best_test_epoch_spearman is not None:
            entry["best_test_epoch_spearman"] = summary.best_test_epoch_spearman
        if summary.left_out:
            entry["left_out"] = summary.left_out
        per_fold.append(entry)
    spearman = over_folds([entry["test_spearman_per_seed"] for entry in per_fold])
    result: dict[str, Any] = {
        "model": first.model, "benchmark": first.benchmark, "selection": first.selection, "epochs": first.epochs,
        "folds": folds, "seeds": first.seeds,
        "test_spearman_fisher_z": {**metrics.mean_std(spearman), "per_seed": spearman.tolist(), "note": FISHER_Z_NOTE},
    }
    if all(summary.best_test_epoch_spearman is not None for summary in fold_summaries.values()):
        best = over_folds([[s.best_test_epoch_spearman["spearman"] for s in fold_summaries[fold].per_seed]  # type: ignore[index]
                           for fold in folds])
        result["best_test_epoch_spearman_fisher_z"] = {**metrics.mean_std(best), "per_seed": best.tolist(),
                                                       "note": BEST_TEST_NOTE}
    result["per_fold"] = per_fold
    return result
