"""Results tables made from run directories (``aqakit results``).

A table in the docs is regenerated from the runs themselves, never typed by hand: this module
reads what ``aqakit train`` wrote (``config.yaml`` and each ``seed-<k>/summary.json``) and
renders one row per run: test Spearman of the selected checkpoint (mean ± sample std over the
finished seeds, and per seed), test R-l2, and the best per-epoch test Spearman, labelled as the
test-selected figure papers report. Seeds still training (no ``summary.json`` yet) are listed as
unfinished and left out of the statistics, so a table can be filled in steps. A tuning run
(trained with ``train.evaluate_test=false``) has no test figures: found in a folder of runs it is
named under the table instead of shown as a row; named on its own it is an error.

Averages over a dataset's scores or classes (Fis-V TES and PCS, the four RG apparatus) follow the
papers: Fisher's z-transform. Runs are averaged together when their directory names differ only by
the benchmark name (``cofinal-fisv-tes`` and ``cofinal-fisv-pcs`` form the variant ``cofinal``):
each benchmark's seeds are first z-averaged, then the benchmarks are.

A cross-validated run (``aqakit train ... --folds``, :mod:`aqakit.crossval`) gives one row per fold
(``<run>/fold-<k>``) and then its own row: per seed the Fisher-z mean over folds of the test
Spearman (R-l2: the plain mean over folds), mean ± std over the seeds finished in every fold. That
row, not its folds, enters the averages over benchmarks (the three JIGSAWS tasks).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from aqakit.crossval import CrossValDir, over_folds
from aqakit.errors import DataError
from aqakit.metrics import TERMS_NOTE, fisher_z_nested, format_mean_std, mean_std
from aqakit.rundir import RunDir
from aqakit.train.stability import MIN_WINDOW, SWING_THRESHOLD, late_swing

BEST_TEST_HEADER = "best test epoch (papers' rule, chosen on test)"
#: Shown for seeds trained before summaries recorded their precision.
PRECISION_NOT_RECORDED = "not recorded"


@dataclass(frozen=True)
class RunRow:
    """The finished seeds of one run directory.

    ``spearman``/``rl2`` are the selected checkpoint's test figures, one per finished seed;
    ``best_test`` the best per-epoch test Spearman of each seed (empty when the run did not
    evaluate the test set every epoch); ``precisions`` the numeric precision each seed trained in
    (``train.precision: auto`` differs between machines, and so do the figures). ``fold`` is set on
    the row of one fold of a cross-validated run, ``folds`` on that run's own row (the folds it
    averages by Fisher's z).
    """

    name: str
    model: str
    benchmark: str
    selection: str
    epochs: int
    seeds: tuple[int, ...]
    unfinished: tuple[int, ...]
    spearman: tuple[float, ...]
    rl2: tuple[float, ...]
    best_test: tuple[float, ...]
    precisions: tuple[str, ...] = ()
    swings: tuple[dict[str, Any] | None, ...] = ()  # per finished seed, :func:`aqakit.train.stability.late_swing`
    fold: int | None = None
    folds: tuple[int, ...] = ()

    @property
    def unstable_seeds(self) -> tuple[int, ...]:
        """Seeds whose held-out curve swung more than the threshold over their last epochs."""
        return tuple(seed for seed, swing in zip(self.seeds, self.swings) if swing and swing["unstable"])

    @property
    def precision(self) -> str:
        """The precisions its seeds trained in, e.g. ``32-true`` or ``32-true, bf16-mixed`` (mixed)."""
        return ", ".join(sorted(set(self.precisions))) or "–"

    @property
    def variant(self) -> str:
        """The run's name without its benchmark name: what pairs TES with PCS for an average."""
        stripped = self.name.replace(self.benchmark, "")
        return re.sub(r"[-_]{2,}", "-", stripped).strip("-_") or self.model

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "model": self.model, "benchmark": self.benchmark,
            "selection": self.selection, "epochs": self.epochs, "seeds": list(self.seeds),
            "unfinished_seeds": list(self.unfinished), "precision_per_seed": list(self.precisions),
            "late_swing_per_seed": list(self.swings), "unstable_seeds": list(self.unstable_seeds),
            "test_spearman": {**mean_std(self.spearman), "per_seed": list(self.spearman)},
            "test_rl2": {**mean_std(self.rl2), "per_seed": list(self.rl2)},
            "best_test_epoch_spearman": {**mean_std(self.best_test), "per_seed": list(self.best_test)} if self.best_test else None,
            **({"fold": self.fold} if self.fold is not None else {}),
            **({"fisher_z_over_folds": list(self.folds)} if self.folds else {}),
        }  # fmt: skip


def is_tuning_run(config: dict[str, Any]) -> bool:
    """Whether a run's configuration kept it off the test split (``train.evaluate_test=false``)."""
    train = config.get("train")
    return isinstance(train, dict) and train.get("evaluate_test") is False


def read_runs(paths: Sequence[Path]) -> tuple[list[RunRow], list[str]]:
    """The rows of the runs named by ``paths`` (see :func:`run_directories`), and the names of the
    tuning runs found inside folders of runs, which have no test figures to show. A tuning run
    named directly is a DataError (:func:`read_run`)."""
    rows, tuning = [], []
    for path in map(Path, paths):
        named = RunDir(path).is_run
        for run_dir in run_directories([path]):
            if CrossValDir(run_dir).is_crossval:
                rows.extend(read_crossval(run_dir))
            elif not named and is_tuning_run(RunDir(run_dir).read_config()):
                tuning.append(run_dir.name)
            else:
                rows.append(read_run(run_dir))
    return rows, tuning


def run_directories(paths: Sequence[Path]) -> list[Path]:
    """The run directories named by ``paths``: a run directory (or a cross-validated run) stands for
    itself, and a folder of runs (``--runs-dir``) for every run directly inside it, in name order.
    DataError names a path that is neither, or a folder that holds no runs."""
    runs = []
    config_file = RunDir.CONFIG_FILE

    def is_run(path: Path) -> bool:
        return RunDir(path).is_run or CrossValDir(path).is_crossval

    for path in map(Path, paths):
        if is_run(path):
            runs.append(path)
        elif path.is_dir():
            inside = sorted(child for child in path.iterdir() if is_run(child))
            if not inside:
                raise DataError(f"{path}: not an aqakit run directory (no {config_file}), and no run directory inside it")
            runs.extend(inside)
        else:
            raise DataError(f"{path}: not an aqakit run directory (no {config_file})")
    return runs


def read_run(run_dir: Path) -> RunRow:
    """One row from an ``aqakit train`` run directory; DataError if it is not one, or if it is a
    tuning run (no test figures)."""
    run_dir = Path(run_dir)
    run = RunDir(run_dir)
    config = run.read_config()
    try:
        model, benchmark, train = config["model"]["name"], config["benchmark"], config["train"]
    except (KeyError, TypeError) as exc:
        raise DataError(f"{run.config_path}: missing {exc} (not written by aqakit train?)") from exc
    if is_tuning_run(config):
        raise DataError(f"{run_dir}: a tuning run (trained with train.evaluate_test=false: its test split was never "
                        "scored), so it has no test figures; leave it out (`aqakit results` on its folder of runs "
                        "names it under the table), or train it again without that setting")
    finished, unfinished, swings = [], [], []
    for seed_dir in run.seed_dirs():
        if seed_dir.finished:
            finished.append(seed_dir.read_summary())
            swings.append(late_swing(seed_dir.read_history()))
        else:
            unfinished.append(seed_dir.seed)
    for summary in finished:
        if summary.test is None:
            raise DataError(f"{run_dir}: seed {summary.seed} has no test metrics in its {RunDir.SUMMARY_FILE} "
                            "(a tuning run, trained with train.evaluate_test=false?)")
    best = [s.best_test_epoch_spearman["spearman"] for s in finished if s.best_test_epoch_spearman is not None]
    return RunRow(
        name=run_dir.name,
        model=str(model),
        benchmark=str(benchmark),
        selection=str(train.get("select", "final")),
        epochs=int(train.get("epochs", 0)),
        seeds=tuple(int(s.seed) for s in finished),
        unfinished=tuple(unfinished),
        spearman=tuple(float(s.test["spearman"]) for s in finished),  # type: ignore[index]
        rl2=tuple(float(s.test["rl2"]) for s in finished),  # type: ignore[index]
        best_test=tuple(float(v) for v in best) if len(best) == len(finished) else (),
        precisions=tuple(str(s.precision or PRECISION_NOT_RECORDED) for s in finished),
        swings=tuple(swings),
    )


def read_crossval(path: Path) -> list[RunRow]:
    """The rows of a cross-validated run: one per fold of its plan that has a run folder (named
    ``<run>/fold-<k>``), then the run's own row (see the module); DataError if it is not one."""
    cv = CrossValDir(path)
    plan = cv.read_plan()
    folds = [int(fold) for fold in plan["folds"]]
    fold_rows = [replace(read_run(cv.fold(fold).path), name=f"{cv.name}/{cv.fold(fold).name}", fold=fold)
                 for fold in folds if cv.fold(fold).is_run]
    if not fold_rows:
        raise DataError(f"{path}: no fold has started yet (folds {', '.join(map(str, folds))} planned)")
    every_fold = len(fold_rows) == len(folds)
    complete = [seed for seed in fold_rows[0].seeds if every_fold and all(seed in row.seeds for row in fold_rows)]

    def over_seeds(figures: Callable[[RunRow], tuple[float, ...]]) -> np.ndarray:
        """(F folds, S complete seeds) of one figure."""
        return np.array([[figures(row)[row.seeds.index(seed)] for seed in complete] for row in fold_rows])

    first = fold_rows[0]
    return [*fold_rows, RunRow(
        name=cv.name, model=first.model, benchmark=first.benchmark, selection=first.selection, epochs=first.epochs,
        seeds=tuple(complete), unfinished=tuple(int(seed) for seed in plan["seeds"] if seed not in complete),
        spearman=tuple(over_folds(over_seeds(lambda row: row.spearman)).tolist()) if complete else (),
        rl2=tuple(over_seeds(lambda row: row.rl2).mean(axis=0).tolist()) if complete else (),
        best_test=(tuple(over_folds(over_seeds(lambda row: row.best_test)).tolist())
                   if complete and all(row.best_test for row in fold_rows) else ()),
        precisions=tuple(", ".join(sorted({row.precisions[row.seeds.index(seed)] for row in fold_rows}))
                         for seed in complete),
        folds=tuple(folds),
    )]


@dataclass(frozen=True)
class VariantAverage:
    """Fisher-z average over the benchmarks of one variant (e.g. Fis-V TES and PCS)."""

    variant: str
    benchmarks: tuple[str, ...]
    final: float
    best_test: float | None


def variant_averages(rows: Sequence[RunRow]) -> list[VariantAverage]:
    """Fisher-z averages of the variants that have finished runs on two or more benchmarks."""
    groups: dict[str, dict[str, RunRow]] = {}
    for row in rows:
        if row.seeds and row.fold is None:
            groups.setdefault(row.variant, {})[row.benchmark] = row
    averages = []
    for variant, by_benchmark in groups.items():
        if len(by_benchmark) < 2:
            continue
        members = [by_benchmark[name] for name in sorted(by_benchmark)]
        final = _nested_fisher_z([r.spearman for r in members])
        best = _nested_fisher_z([r.best_test for r in members]) if all(r.best_test for r in members) else None
        averages.append(VariantAverage(variant, tuple(sorted(by_benchmark)), final, best))
    return averages


def _nested_fisher_z(per_benchmark: Sequence[Sequence[float]]) -> float:
    """Fisher-z average of each benchmark's seeds, then of the benchmarks; NaN if any seed's is NaN
    (a diverged run or constant predictions), which the table then shows instead of failing."""
    if any(math.isnan(value) for values in per_benchmark for value in values):
        return math.nan
    return float(fisher_z_nested([np.asarray(values, dtype=np.float64) for values in per_benchmark]))


def _average_cell(value: float | None) -> str:
    if value is None:
        return "–"
    return "NaN (a seed's Spearman is NaN)" if math.isnan(value) else f"{value:.3f}"


def _cell(values: Sequence[float]) -> str:
    """Mean ± sample std over seeds; a single seed has no spread to show, so its value stands alone."""
    if not values:
        return "–"
    return format_mean_std(mean_std(values), len(values))


def render_markdown(rows: Sequence[RunRow], tuning: Sequence[str] = ()) -> str:
    """The runs as a markdown table, then the names of the ``tuning`` runs left out of it, then the
    Fisher-z averages of paired variants."""
    lines = [
        f"| run | model | benchmark | selection | seeds | epochs | precision | test Spearman (mean ± std) | per seed | test R-l2 x100 | {BEST_TEST_HEADER} |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        seeds = f"{len(row.seeds)} ({seed_ids(row.seeds)})" if row.seeds else "none finished"
        if row.unfinished:
            seeds += f" (unfinished: {', '.join(map(str, row.unfinished))})"
        per_seed = ", ".join(f"{v:.3f}" for v in row.spearman) or "–"
        flag = " ⚠" if row.unstable_seeds else ""
        name = f"{row.name} (Fisher-z mean over folds {', '.join(map(str, row.folds))})" if row.folds else row.name
        lines.append(
            f"| {name} | {row.model} | {row.benchmark} | {row.selection} | {seeds} | {row.epochs} | {row.precision} | "
            f"{_cell(row.spearman)}{flag} | {per_seed} | {_cell(row.rl2)} | {_cell(row.best_test)} |"
        )
    if any(row.folds for row in rows):
        lines += ["", "A cross-validated run's row averages its folds per seed: the test Spearman and the best test "
                  "epoch's by Fisher's z (as papers report JIGSAWS), the R-l2 by its plain mean; its seeds are those "
                  "finished in every fold."]
    unstable = [row for row in rows if row.unstable_seeds]
    if unstable:
        lines += ["", f"⚠ unstable (the held-out Spearman swung by more than {SWING_THRESHOLD} over a seed's last "
                  f"max({MIN_WINDOW}, 10 %) epochs, so the final epoch is a draw from that swing): " + "; ".join(
                      f"{row.name} seed(s) {', '.join(map(str, row.unstable_seeds))} "
                      f"(up to {max(s['swing'] for s in row.swings if s and s['unstable']):.3f})" for row in unstable)]
    precisions = sorted({p for row in rows for p in row.precisions})
    if len(precisions) > 1:
        lines += ["", f"Note: these seeds trained in different precisions ({', '.join(precisions)}); "
                  "compare figures of the same precision (`train.precision`)."]
    if tuning:
        lines += ["", f"Not shown (no test figures: trained with train.evaluate_test=false): {', '.join(tuning)}"]
    averages = variant_averages(rows)
    if averages:
        lines += ["", "| variant | benchmarks | Fisher-z average, selected checkpoint | Fisher-z average, best test epoch (chosen on test) |", "|---|---|---|---|"]
        for avg in averages:
            lines.append(
                f"| {avg.variant} | {', '.join(avg.benchmarks)} | {_average_cell(avg.final)} | {_average_cell(avg.best_test)} |"
            )
    lines += ["", f"Terms: {TERMS_NOTE}."]
    return "\n".join(lines)


def seed_ids(seeds: Sequence[int]) -> str:
    """Seed ids compactly: ``0-4`` for a run of consecutive ids, else ``0, 3, 7``."""
    ordered = sorted(seeds)
    if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{ordered[0]}-{ordered[-1]}"
    return ", ".join(map(str, ordered))


def results_json(rows: Sequence[RunRow], tuning: Sequence[str] = ()) -> dict[str, Any]:
    """The rows, the tuning runs left out and the averages as plain data (``aqakit results --json``)."""
    return {
        "runs": [row.as_dict() for row in rows],
        "tuning_runs_not_shown": list(tuning),
        "averages": [
            {"variant": a.variant, "benchmarks": list(a.benchmarks), "fisher_z_final": a.final, "fisher_z_best_test": a.best_test}
            for a in variant_averages(rows)
        ],
    }
