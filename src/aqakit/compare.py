"""Paired comparison of two models on the same test videos (``aqakit compare``).

A results table gives each model's test Spearman with its spread over seeds, but the seeds share
one test split: the spread says nothing about how much a lead depends on which videos happen to
be in that split. ``compare_runs`` answers that with a paired bootstrap: it resamples the test
videos with replacement, scores both models on each resample, and reports the observed
difference A - B, its percentile interval over the resamples and the share of resamples in which
A is ahead. Both models are scored on the same resample, so what they have in common (the
videos that are easy or hard for both) cancels out of the difference.

The figures are those of ``aqakit results``:

- per benchmark, the mean over finished seeds of the selected checkpoint's test Spearman
  (each seed's ``predictions.csv``);
- over two or more benchmarks (Fis-V TES and PCS), the Fisher-z average: seeds are z-averaged
  per benchmark, then the benchmarks.

Benchmarks scored on the same videos (identical test ids, as Fis-V's TES and PCS are) are
resampled jointly, with one draw per resample; otherwise each benchmark's videos are drawn
separately. A resample in which a Spearman is undefined (every drawn truth equal, possible on
tiny test sets) is left out and counted.

Runs are paired by benchmark name. Where one model has two runs of the same name (the generic
``csv`` benchmark on two data sets), that name is told apart by its data source from
``config.yaml`` (the data root and the benchmark options that choose the labels), so A's run on a
data set pairs with B's run on the same one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from aqakit.errors import DataError
from aqakit.metrics import check_bootstrap_settings, fisher_z_nested, resampled_spearman
from aqakit.results import read_run
from aqakit.rundir import RunDir

#: Label of the Fisher-z row when the models cover two or more benchmarks.
AVERAGE_LABEL = "Fisher-z average"
#: Resamples are scored in chunks of at most this many (seed x resample x video) values.
_CHUNK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class RunTestPredictions:
    """The test predictions of one run's finished seeds, videos in id order."""

    run: Path
    benchmark: str
    source: str  # where its labels came from (data root, benchmark options); "" for none recorded
    ids: tuple[str, ...]
    true: np.ndarray  # (V,)
    predicted: np.ndarray  # (S seeds, V)


def read_test_predictions(run_dir: Path) -> RunTestPredictions:
    """The test predictions of a run directory's finished seeds (those with a summary).

    DataError if it is not a run directory, has no finished seed, or its seeds disagree on the
    test videos or their true scores.
    """
    row = read_run(run_dir)
    if not row.seeds:
        raise DataError(f"{run_dir}: no finished seed (no seed-<k>/summary.json)")
    run = RunDir(run_dir)
    first_path = run.seed(row.seeds[0]).predictions_path
    first = run.seed(row.seeds[0]).read_test_predictions()
    ids = tuple(sorted(first))
    true = np.array([first[i][0] for i in ids])
    predicted = []
    for seed in row.seeds:
        path = run.seed(seed).predictions_path
        rows = first if seed == row.seeds[0] else run.seed(seed).read_test_predictions()
        if tuple(sorted(rows)) != ids or any(rows[i][0] != first[i][0] for i in ids):
            raise DataError(f"{path}: its test videos or true scores differ from {first_path}")
        scores = np.array([rows[i][1] for i in ids])
        if not np.all(np.isfinite(scores)) or np.all(scores == scores[0]):
            raise DataError(f"{path}: the predictions are not finite or all equal (a diverged seed?); "
                            "its Spearman is undefined, so the runs cannot be compared")
        predicted.append(scores)
    return RunTestPredictions(Path(run_dir), row.benchmark, data_source(run.read_config()), ids, true,
                              np.stack(predicted))


def data_source(config: dict[str, Any]) -> str:
    """Where a run's test videos and scores came from: its data root and the benchmark options
    other than the feature folder (``labels``, ``score_type``...), e.g. ``/data/x, labels=y.csv``."""
    options = config.get("benchmark_args") or {}
    parts = [str(config["data_root"])] if config.get("data_root") else []
    parts += [f"{key}={value}" for key, value in sorted(options.items()) if key != "features_dir" and value is not None]
    return ", ".join(parts)


@dataclass(frozen=True)
class ComparisonRow:
    """A against B on one benchmark, or on their Fisher-z average."""

    label: str
    a: float
    b: float
    low: float  # percentile interval of A - B over the resamples
    high: float
    a_ahead: float  # share of the resamples in which A - B > 0

    @property
    def difference(self) -> float:
        return self.a - self.b


@dataclass(frozen=True)
class Comparison:
    """The outcome of :func:`compare_runs`; ``rows`` in benchmark-name order, the average last."""

    a_runs: tuple[Path, ...]
    b_runs: tuple[Path, ...]
    rows: tuple[ComparisonRow, ...]
    n_videos: dict[str, int]
    videos_shared: bool  # all benchmarks resampled with one draw
    n_boot: int
    n_undefined: int  # resamples left out: a Spearman undefined on them
    level: float
    seed: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "a_runs": [str(p) for p in self.a_runs], "b_runs": [str(p) for p in self.b_runs],
            "n_videos": self.n_videos, "videos_resampled_jointly": self.videos_shared, "n_boot": self.n_boot,
            "n_resamples_left_out": self.n_undefined, "level": self.level, "seed": self.seed,
            "rows": [{"label": r.label, "a": r.a, "b": r.b, "a_minus_b": r.difference, "low": r.low, "high": r.high,
                      "a_ahead_share": r.a_ahead} for r in self.rows],
        }  # fmt: skip


def _label(run: RunTestPredictions, ambiguous: set[str]) -> str:
    """The run's benchmark name, with its data source where the name alone is ``ambiguous``."""
    return f"{run.benchmark} ({run.source})" if run.benchmark in ambiguous and run.source else run.benchmark


def _by_benchmark(side: str, runs: Sequence[RunTestPredictions], ambiguous: set[str]) -> dict[str, RunTestPredictions]:
    found: dict[str, RunTestPredictions] = {}
    for run in runs:
        label = _label(run, ambiguous)
        if label in found:
            raise DataError(f"model {side}: {found[label].run} and {run.run} are both {label} runs; "
                            "give one run per benchmark and data set")
        found[label] = run
    return found


def _paired(a: Sequence[RunTestPredictions], b: Sequence[RunTestPredictions]) -> list[tuple[str, RunTestPredictions, RunTestPredictions]]:
    """(label, A run, B run) per benchmark, in label order; DataError unless both cover the same test videos.

    A benchmark name that one model has more than once is told apart by data source on both sides.
    """
    if not a or not b:
        raise DataError("each model needs at least one run directory")
    ambiguous = {name for side in (a, b) for name, count in Counter(r.benchmark for r in side).items() if count > 1}
    a_runs, b_runs = _by_benchmark("A", a, ambiguous), _by_benchmark("B", b, ambiguous)
    if set(a_runs) != set(b_runs):
        raise DataError(f"the models cover different benchmarks: A {', '.join(sorted(a_runs))}; "
                        f"B {', '.join(sorted(b_runs))}")
    pairs = [(label, a_runs[label], b_runs[label]) for label in sorted(a_runs)]
    for _, run_a, run_b in pairs:
        if run_a.ids != run_b.ids or not np.array_equal(run_a.true, run_b.true):
            raise DataError(f"{run_a.run} and {run_b.run}: different test videos or true scores; "
                            "a paired comparison needs the same test split")
    return pairs


def _chunks(n_boot: int, per_resample: int) -> Iterator[slice]:
    step = max(1, _CHUNK_ELEMENTS // max(1, per_resample))
    for start in range(0, n_boot, step):
        yield slice(start, min(start + step, n_boot))


def _figures(runs: Sequence[RunTestPredictions], indices: Sequence[np.ndarray]) -> np.ndarray:
    """Each benchmark's seed-mean Spearman and, over two or more, the Fisher-z average: (B [+1], R)."""
    per_seed = [np.stack([resampled_spearman(scores, run.true, index) for scores in run.predicted])
                for run, index in zip(runs, indices)]  # each (S, R), NaN where undefined
    rows = [rho.mean(axis=0) for rho in per_seed]
    if len(runs) > 1:
        rows.append(fisher_z_nested(per_seed))
    return np.stack(rows)


def compare_runs(
    a: Sequence[RunTestPredictions],
    b: Sequence[RunTestPredictions],
    n_boot: int = 10_000,
    level: float = 0.95,
    seed: int = 0,
) -> Comparison:
    """Paired bootstrap of model A against model B over their shared test videos.

    ``a`` and ``b`` hold one run per benchmark each (from :func:`read_test_predictions`), over
    the same benchmarks and test videos. Resamples come from ``numpy.random.default_rng(seed)``,
    so the interval is reproducible. DataError for runs that cannot be paired, ValueError for a
    bad ``n_boot`` or ``level``.
    """
    check_bootstrap_settings(n_boot, level)
    pairs = _paired(a, b)
    labels, runs_a, runs_b = [p[0] for p in pairs], [p[1] for p in pairs], [p[2] for p in pairs]
    shared = len({run.ids for run in runs_a}) == 1
    observed_a = _figures(runs_a, [np.arange(len(run.ids))[None] for run in runs_a])[:, 0]
    observed_b = _figures(runs_b, [np.arange(len(run.ids))[None] for run in runs_b])[:, 0]

    rng = np.random.default_rng(seed)
    if shared:
        draw = rng.integers(0, len(runs_a[0].ids), size=(n_boot, len(runs_a[0].ids)))
        indices = [draw] * len(pairs)
    else:
        indices = [rng.integers(0, len(run.ids), size=(n_boot, len(run.ids))) for run in runs_a]
    per_resample = sum(run.predicted.size + other.predicted.size for run, other in zip(runs_a, runs_b))
    diffs = np.concatenate([
        _figures(runs_a, [i[part] for i in indices]) - _figures(runs_b, [i[part] for i in indices])
        for part in _chunks(n_boot, per_resample)
    ], axis=1)  # (rows, n_boot)
    defined = ~np.isnan(diffs).any(axis=0)
    if not defined.any():
        raise DataError("every resample left a Spearman undefined (too few distinct true scores)")
    diffs = diffs[:, defined]
    tail = (1.0 - level) / 2.0
    rows = tuple(
        ComparisonRow(label, float(fa), float(fb), float(np.quantile(d, tail)), float(np.quantile(d, 1.0 - tail)),
                      float(np.mean(d > 0)))
        for label, fa, fb, d in zip(labels + ([AVERAGE_LABEL] if len(pairs) > 1 else []), observed_a, observed_b, diffs)
    )
    return Comparison(
        a_runs=tuple(run.run for run in runs_a), b_runs=tuple(run.run for run in runs_b), rows=rows,
        n_videos={label: len(run.ids) for label, run in zip(labels, runs_a)}, videos_shared=shared, n_boot=n_boot,
        n_undefined=int(n_boot - defined.sum()), level=level, seed=seed,
    )


def _signed(value: float) -> str:
    return f"{value:+.3f}"


def render_comparison(result: Comparison) -> str:
    """The comparison as a short markdown report: which runs, how resampled, one row per figure."""
    videos = ", ".join(f"{name} {count}" for name, count in result.n_videos.items())
    if len(result.n_videos) == 1:
        how = "drawn with replacement"
    else:
        how = "drawn jointly for every benchmark (the same videos)" if result.videos_shared else "drawn per benchmark"
    percent = f"{result.level:.0%}".replace("%", " %")
    lines = [
        f"A: {', '.join(map(str, result.a_runs))}",
        f"B: {', '.join(map(str, result.b_runs))}",
        f"Paired bootstrap over the test videos ({videos}), {how}: {result.n_boot} resamples, seed {result.seed}"
        + (f"; {result.n_undefined} left out (a Spearman undefined on them)" if result.n_undefined else "") + ".",
        "Figures: seed-mean test Spearman per benchmark"
        + ("; the Fisher-z average as `aqakit results` computes it." if len(result.rows) > 1 else "."),
        "",
        f"| benchmark | A | B | A - B | {percent} interval of A - B | A ahead in |",
        "|---|---|---|---|---|---|",
    ]
    for row in result.rows:
        lines.append(f"| {row.label} | {row.a:.3f} | {row.b:.3f} | {_signed(row.difference)} | "
                     f"[{_signed(row.low)}, {_signed(row.high)}] | {100 * row.a_ahead:.1f} % of resamples |")
    return "\n".join(lines)
