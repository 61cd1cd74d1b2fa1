"""Cross-validation over a benchmark's official folds: ``aqakit train MODEL BENCHMARK --folds all``.

Fold k of a benchmark with official folds (:attr:`~aqakit.data.benchmarks.Benchmark.official_folds`,
JIGSAWS's four) is its option ``fold=k``; :func:`train_folds` trains each requested fold as its own
complete run (:func:`~aqakit.train.runner.train_run`, every seed) in ``<run>/fold-<k>/`` and writes
the cross-validated summary (:mod:`aqakit.crossval`): per fold its test metrics and the Fisher-z
mean of the folds' test Spearman, as papers report. A resumed cross-validation keeps its finished
folds and seeds and continues the interrupted one.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

from aqakit.crossval import CrossValDir, crossval_summary
from aqakit.data.benchmarks import Benchmark, get_benchmark, list_benchmarks
from aqakit.errors import ConfigError
from aqakit.train.config import RunConfig
from aqakit.train.data import read_data
from aqakit.train.runner import train_run

#: The benchmark option that chooses a fold.
FOLD_OPTION = "fold"


def parse_folds(text: str, benchmark: Benchmark) -> list[int]:
    """``--folds``: ``all`` (every official fold of ``benchmark``) or comma-separated folds (``0,2``).

    Raises:
        ConfigError: as :func:`check_folds`, or a word that is not a fold number.
    """
    official = official_folds(benchmark)
    if text.strip().lower() == "all":
        return list(official)
    folds = []
    for part in text.split(","):
        word = part.strip()
        if not word.isdigit():
            raise ConfigError(f"--folds {text}: {word!r} is not a fold (give all, or folds of {benchmark.name} like 0,2)")
        folds.append(int(word))
    return check_folds(folds, benchmark)


def check_folds(folds: Sequence[int], benchmark: Benchmark) -> list[int]:
    """``folds`` as a list, when each is an official fold of ``benchmark``, given once.

    Raises:
        ConfigError: as :func:`official_folds`, a fold it does not have (naming its folds), or a
            fold given twice.
    """
    official = official_folds(benchmark)
    for index, fold in enumerate(folds):
        if fold not in official:
            raise ConfigError(
                f"fold {fold} of {benchmark.name} does not exist (its folds: {', '.join(map(str, official))}, or all)"
            )
        if fold in folds[:index]:
            raise ConfigError(f"fold {fold} is given twice")
    return list(folds)


def official_folds(benchmark: Benchmark) -> tuple[int, ...]:
    """The benchmark's official folds; a ConfigError naming the benchmarks that have some when it has none."""
    if not benchmark.official_folds:
        with_folds = ", ".join(b.name for b in list_benchmarks() if b.official_folds)
        raise ConfigError(
            f"benchmark '{benchmark.name}' has no official folds (it has one official train/test split), so "
            f"--folds does not apply; benchmarks with official folds: {with_folds}"
        )
    return benchmark.official_folds


def fold_config(config: RunConfig, fold: int) -> RunConfig:
    """``config`` on fold ``fold``: its benchmark option ``fold`` set, everything else as it is."""
    return replace(config, benchmark_args={**config.benchmark_args, FOLD_OPTION: fold})


def train_folds(
    config: RunConfig,
    run_dir: Path,
    folds: Sequence[int],
    seeds: list[int],
    *,
    overwrite: bool = False,
    resume: bool = False,
    on_fold_start: Callable[[int], None] | None = None,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Train ``config`` on each of ``folds`` (every seed) into ``run_dir/fold-<k>``; returns (and
    writes) the cross-validated summary.

    Every fold's data is read before anything is written, so bad data (a missing feature file)
    leaves no run folder behind. With ``resume`` the saved plan must name the same model,
    benchmark and folds; each fold then resumes as :func:`~aqakit.train.runner.train_run` does.
    ``on_fold_start(fold)`` is called before each fold (for progress displays).

    Raises:
        ConfigError: no folds, a fold the benchmark does not have, ``benchmark_args.fold`` set
            as well, or a tuning run (``train.evaluate_test=false``: no test figures to report).
        RunDirectoryError: as :func:`~aqakit.train.runner.train_run`, for the whole folder.
    """
    if not folds:
        raise ConfigError("at least one fold is needed")
    if config.train.world_size > 1:
        raise ConfigError("--folds trains its folds on one device: train.devices and train.num_nodes must be 1")
    if config.benchmark_args.get(FOLD_OPTION) is not None:
        raise ConfigError(
            f"--folds chooses the folds; benchmark_args.{FOLD_OPTION}={config.benchmark_args[FOLD_OPTION]!r} "
            "cannot be given with it"
        )
    if not config.train.evaluate_test:
        raise ConfigError("a cross-validated run reports each fold's test figures; train.evaluate_test=false has none")
    benchmark = get_benchmark(config.benchmark, **config.benchmark_args)
    check_folds(folds, benchmark)
    configs = {fold: fold_config(config, fold) for fold in folds}
    cv = CrossValDir(run_dir)
    replace_existing = cv.check_use(overwrite=overwrite, resume=resume)
    plan = {"model": config.model.name, "benchmark": config.benchmark, "folds": list(folds), "seeds": list(seeds)}
    if resume:
        cv.check_same_plan(plan)
    for fold_cfg in configs.values():
        read_data(fold_cfg)
    if replace_existing:
        shutil.rmtree(cv.path)
    cv.path.mkdir(parents=True, exist_ok=True)
    cv.write_plan(plan)  # on resume too: the seeds asked for now
    summaries = {}
    for fold, fold_cfg in configs.items():
        if on_fold_start is not None:
            on_fold_start(fold)
        fold_dir = cv.fold(fold)
        train_run(fold_cfg, fold_dir.path, seeds, resume=resume and fold_dir.is_run, on_epoch_end=on_epoch_end,
                  device=device)
        summaries[fold] = fold_dir.read_summary()
    summary = crossval_summary(summaries)
    cv.write_summary(summary)
    return summary
