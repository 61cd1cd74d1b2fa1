"""The run report: one self-contained HTML page per training run (``aqakit report RUN``).

It reads a run folder through :class:`~aqakit.rundir.RunDir` and shows, for the finished seeds:
what was trained and the selected checkpoints' test Spearman (mean ± std, as the run's summary has
it); every loss term and the held-out Spearman per epoch, one line per seed, each seed's selected
epoch ringed; the selected checkpoints' test predictions against the true scores and their
residuals; and a table per seed. Inline CSS and SVG only: nothing is fetched when the page opens,
and it prints. A value the run does not have reads "–".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from aqakit.crossval import CrossValDir
from aqakit.errors import RunDirectoryError
from aqakit.explain import svg
from aqakit.explain.html import key_value_table, page
from aqakit.metrics import format_mean_std
from aqakit.rundir import BEST_TEST_NOTE, RunDir, RunSummary, SeedDir, SeedSummary

#: What the page shows for a value the run does not have.
MISSING = "–"

SELECTION_TEXT = {
    "final": "final: the last epoch",
    "best-val": "best-val: the epoch of best Spearman on the validation split carved from the training set",
    "best-test": f"best-test: the epoch of best test Spearman ({BEST_TEST_NOTE})",
}

_STYLE = """
body{margin:24px}
.figure{font-size:40px;font-weight:700;color:#1d4ed8;margin:8px 0 4px}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,460px),1fr));gap:12px 28px}
figure{margin:0} figcaption{font-size:13px;color:#333;margin:0 0 2px}
svg{width:100%;height:auto}
table.seeds th,table.seeds td{border-bottom:1px solid #eee;padding:3px 14px 3px 0}
table.seeds td{font-variant-numeric:tabular-nums} tr.unstable td{color:#b45309}
@media print{.charts{grid-template-columns:1fr 1fr}}
"""


@dataclass(frozen=True)
class SeedResult:
    """What the report shows of one finished seed.

    Attributes:
        summary: the seed's ``summary.json`` (metrics of the selected checkpoint).
        history: ``metrics.csv``, one row per epoch (``[]`` when the seed folder has none); NaN: no value.
        test_predictions: video id -> (true, predicted) score of the selected checkpoint on the
            test split; ``{}`` when the test split was not evaluated or there is no ``predictions.csv``.
    """

    summary: SeedSummary
    history: list[dict[str, float]]
    test_predictions: dict[str, tuple[float, float]]

    @property
    def seed(self) -> int:
        return self.summary.seed


@dataclass(frozen=True)
class RunResult:
    """A run folder as the report reads it.

    Attributes:
        path: the run folder.
        summary: the run's ``summary.json``; while some seeds are unfinished, the same summary
            computed over the finished ones.
        seeds: the finished seeds, in seed order.
        unfinished: the seeds whose folder exists but whose summary is not written yet.
    """

    path: Path
    summary: RunSummary
    seeds: list[SeedResult]
    unfinished: list[int]


def read_run(path: Path | str) -> RunResult:
    """The finished seeds of the run folder ``path``; RunDirectoryError (one line, naming the folder)
    when it is not a run or no seed has finished, DataError when a file in it is malformed."""
    run = RunDir(path)
    if not run.is_run:
        if CrossValDir(run.path).is_crossval:
            raise RunDirectoryError(f"{run.path} is a cross-validated run: report one fold, e.g. {run.path / 'fold-0'}")
        what = "no such folder" if not run.path.is_dir() else f"no {RunDir.CONFIG_FILE}"
        raise RunDirectoryError(f"{run.path} is not an aqakit run ({what})")
    seed_dirs = run.seed_dirs()
    finished = [seed_dir for seed_dir in seed_dirs if seed_dir.finished]
    if not finished:
        raise RunDirectoryError(f"{run.path}: no finished seed yet (no {RunDir.SEED_PREFIX}<k>/{RunDir.SUMMARY_FILE})")
    seeds = [_read_seed(seed_dir) for seed_dir in finished]
    summary = run.read_summary() if run.finished else None
    if summary is None or summary.seeds != [s.seed for s in seeds]:  # unfinished, or seeds added since
        summary = RunSummary.of_seeds([s.summary for s in seeds], summary.left_out if summary else None)
    return RunResult(run.path, summary, seeds, [seed_dir.seed for seed_dir in seed_dirs if not seed_dir.finished])


def _read_seed(seed_dir: SeedDir) -> SeedResult:
    summary = seed_dir.read_summary()
    has_predictions = summary.test is not None and seed_dir.predictions_path.is_file()
    return SeedResult(summary, seed_dir.read_history(), seed_dir.read_test_predictions() if has_predictions else {})


def render_run_report(run: RunResult) -> str:
    """The report of ``run`` as one self-contained HTML document."""
    body = [_header(run), _curves(run), _predictions(run), _seed_table(run),
            f'<p class="muted">Written by aqakit report from {escape(str(run.path))}.</p>']
    return page(f"aqakit run: {run.path.name}", "".join(body), _STYLE)


# --- the sections -----------------------------------------------------------------------------
def _header(run: RunResult) -> str:
    summary, n = run.summary, len(run.seeds)
    test = (summary.test or {}).get("spearman")
    seeds = f"{n} ({', '.join(str(s.seed) for s in run.seeds)})"
    if run.unfinished:
        seeds += f"; unfinished, not shown: {', '.join(map(str, run.unfinished))}"
    rows = [
        ("model", _text(summary.model)), ("benchmark", _text(summary.benchmark)), ("seeds", seeds),
        ("epochs", _text(summary.epochs)),
        ("selection", SELECTION_TEXT.get(str(summary.selection), _text(summary.selection))),
        ("test Spearman ρ", _mean_std(test, n) if test else f"{MISSING} (test split not evaluated)"),
    ]
    if summary.val:
        rows.append(("validation Spearman ρ", _mean_std(summary.val["spearman"], n)))
    if summary.best_test_epoch_spearman and summary.selection != "best-test":
        rows.append(("best test epoch (papers' rule)", f"{_mean_std(summary.best_test_epoch_spearman, n)}: {BEST_TEST_NOTE}"))
    precisions = dict.fromkeys(_text(s.summary.precision) for s in run.seeds)
    rows.append(("precision", ", ".join(precisions)))
    for split, ids in (summary.left_out or {}).items():
        rows.append((f"left out of {split}", f"{len(ids)} labelled video(s) without a feature file"))
    if summary.unstable_seeds:
        rows.append(("unstable seeds", ", ".join(map(str, summary.unstable_seeds))))
    figure = f'<div class="figure">{escape(_mean_std(test, n))}</div>' if test else ""
    return (f'<header id="run"><h1>{escape(run.path.name)}</h1>'
            f'<div class="muted">{escape(_text(summary.model))} on {escape(_text(summary.benchmark))}: '
            f"test Spearman ρ of the selected checkpoints</div>{figure}{key_value_table(rows)}</header>")


def _curves(run: RunResult) -> str:
    columns = list(dict.fromkeys(key for s in run.seeds for row in s.history for key in row))
    losses = [c for c in columns if c.startswith("train_") and c != "train_seconds"]
    test_note = ("" if run.summary.selection == "best-test"
                 else ": for reading only, the selection rule never looks at it")
    charts = [_epoch_chart(run, c, f"training loss: {_loss_name(c)}", f"loss ({_loss_name(c)})") for c in losses]
    charts.append(_epoch_chart(run, "val_spearman", "validation Spearman ρ (split carved from the training set)", "Spearman ρ"))
    charts.append(_epoch_chart(run, "test_spearman", f"test Spearman ρ{test_note}", "Spearman ρ"))
    drawn = [chart for chart in charts if chart]
    if not drawn:
        return ('<section id="curves"><h2>Training curves</h2><p class="muted">No per-epoch history '
                f"(no {RunDir.METRICS_FILE} in the seed folders).</p></section>")
    return ('<section id="curves"><h2>Training curves</h2><p class="muted">One line per seed; the ring marks '
            f"each seed's selected epoch (epochs counted from 0, as in {RunDir.METRICS_FILE}).</p>"
            f'<div class="charts">{"".join(drawn)}</div></section>')


def _epoch_chart(run: RunResult, column: str, caption: str, y_title: str) -> str:
    """The chart of ``column`` of every seed's history over epochs, or "" when no seed has a value of it."""
    series = []
    for k, s in enumerate(run.seeds):
        rows = [row for row in s.history if column in row]
        values = np.array([row[column] for row in rows])
        if not np.isfinite(values).any():
            continue
        epochs = np.array([row["epoch"] for row in rows])
        marked = tuple(int(i) for i in np.flatnonzero(epochs == s.summary.selected_epoch))
        series.append(svg.Series(f"seed {s.seed}", epochs, values, _colour(k), marked))
    if not series:
        return ""
    return _figure(caption, svg.line_chart(series, "epoch", y_title, "selected epoch"))


def _predictions(run: RunResult) -> str:
    predicted = [(k, s) for k, s in enumerate(run.seeds) if s.test_predictions]
    if not predicted:
        return ('<section id="predictions"><h2>Test predictions</h2><p class="muted">No test predictions '
                f"(the test split was not evaluated, or no {RunDir.PREDICTIONS_FILE}).</p></section>")
    truth = {s.seed: np.array([t for t, _ in s.test_predictions.values()]) for _, s in predicted}
    guess = {s.seed: np.array([p for _, p in s.test_predictions.values()]) for _, s in predicted}
    scores = [svg.Series(f"seed {s.seed}", truth[s.seed], guess[s.seed], _colour(k)) for k, s in predicted]
    residuals = [svg.Series(f"seed {s.seed}", truth[s.seed], guess[s.seed] - truth[s.seed], _colour(k)) for k, s in predicted]
    videos = len(next(iter(truth.values())))
    return ('<section id="predictions"><h2>Test predictions of the selected checkpoints</h2>'
            f'<p class="muted">{videos} test videos per seed, on the benchmark\'s score scale; '
            "the dashed line is a perfect prediction.</p><div class=\"charts\">"
            + _figure("predicted against true score", svg.scatter(scores, "true score", "predicted score", "identity"))
            + _figure("residual against true score",
                      svg.scatter(residuals, "true score", "residual: predicted − true score", "zero"))
            + "</div></section>")


def _seed_table(run: RunResult) -> str:
    summaries = [s.summary for s in run.seeds]
    columns: list[tuple[str, Callable[[SeedSummary], str]]] = [
        ("seed", lambda s: str(s.seed)),
        ("selected epoch", lambda s: _text(s.selected_epoch)),
        ("test Spearman ρ", lambda s: _number(_metric(s.test, "spearman"))),
    ]
    if any(s.test_spearman_ci95 for s in summaries):
        columns.append(("95 % interval", lambda s: _interval(s.test_spearman_ci95)))
    columns.append(("test MAE", lambda s: _number(_metric(s.test, "mae"))))
    if any(s.test and "rl2" in s.test for s in summaries):
        columns.append(("test R-l2 (×100)", lambda s: _number(_metric(s.test, "rl2"))))
    if any(s.val for s in summaries):
        columns.append(("validation Spearman ρ", lambda s: _number(_metric(s.val, "spearman"))))
    if any(s.late_swing for s in summaries):
        columns.append(("late swing", _swing_text))
    head = "".join(f"<th>{escape(name)}</th>" for name, _ in columns)
    rows = "".join(
        ('<tr class="unstable">' if (s.late_swing or {}).get("unstable") else "<tr>")
        + "".join(f"<td>{escape(cell(s))}</td>" for _, cell in columns) + "</tr>"
        for s in summaries
    )
    return (f'<section id="seeds"><h2>Per seed</h2><p class="muted">Every figure from the seed\'s selected checkpoint.</p>'
            f'<table class="seeds"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></section>')


# --- small helpers ----------------------------------------------------------------------------
def _figure(caption: str, chart: str) -> str:
    return f"<figure><figcaption>{escape(caption)}</figcaption>{chart}</figure>"


def _colour(index: int) -> str:
    return svg.PALETTE[index % len(svg.PALETTE)]


def _loss_name(column: str) -> str:
    """``train_triplet`` -> ``triplet``; ``train_loss`` (the sum of the terms) -> ``total``."""
    return "total" if column == "train_loss" else column.removeprefix("train_")


def _metric(figures: dict[str, float] | None, name: str) -> float | None:
    return (figures or {}).get(name)


def _number(value: float | None, digits: int = 3) -> str:
    """``value`` with ``digits`` decimals; :data:`MISSING` for None or a non-finite value."""
    if value is None or not math.isfinite(value):
        return MISSING
    return f"{value:.{digits}f}"


def _text(value: Any) -> str:
    return MISSING if value is None else str(value)


def _mean_std(stat: dict[str, float], n_seeds: int) -> str:
    """:func:`aqakit.metrics.format_mean_std`, or :data:`MISSING` for a non-finite figure."""
    return format_mean_std(stat, n_seeds) if math.isfinite(stat["mean"]) and math.isfinite(stat["std"]) else MISSING


def _interval(bounds: Sequence[float] | None) -> str:
    return MISSING if not bounds else f"[{_number(bounds[0])}, {_number(bounds[1])}]"


def _swing_text(summary: SeedSummary) -> str:
    """The range of the held-out Spearman over the last epochs (:func:`aqakit.train.stability.late_swing`)."""
    swing = summary.late_swing
    if not swing:
        return MISSING
    text = f"{_number(swing.get('swing'))} over the last {_text(swing.get('last_epochs'))} epochs"
    return f"{text}: unstable (above {_text(swing.get('threshold'))})" if swing.get("unstable") else text
