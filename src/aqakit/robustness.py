"""``aqakit suite run`` and ``aqakit suite table``: models trained on every set of the robustness suite.

A *variant* is ``MODEL`` (the model's generic preset, ``<model>.yaml``: what a user's own data gets,
whatever the set) or ``MODEL@PRESET`` (a built-in preset's name or a YAML file), or ``auto`` (the
search of :mod:`aqakit.train.auto`, ridge among its candidates). Each (set, variant) is trained into
``<runs>/<set>--<label>`` and its record (``config.yaml``, ``summary.json``, ``data.json``, and per
seed ``summary.json`` and ``metrics.csv``; for auto also ``auto.json`` and its runs' records) is
copied to ``<records>/<set>--<label>``. A (set, variant) whose record is complete is skipped, so a
later session continues a suite from the committed records alone.

The table has one row per set: each variant's test Spearman (mean ± std over seeds, ⚠ when a seed's
curve still swung at the end; :mod:`aqakit.train.stability`), and for ``auto`` its choice, its
validation figure and its test figure minus ridge's.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from aqakit.errors import ConfigError, DataError
from aqakit.metrics import format_mean_std, mean_std
from aqakit.rundir import RunDir, RunSummary
from aqakit.suite import SUITE, SuiteEntry, suite_sets
from aqakit.train.auto import AUTO_FILE, run_auto
from aqakit.train.config import build_config
from aqakit.train.runner import train_run
from aqakit.train.stability import late_swing

AUTO = "auto"
RIDGE = "ridge"
RECORD_FILES = (RunDir.CONFIG_FILE, RunDir.SUMMARY_FILE, RunDir.DATA_FILE, AUTO_FILE)
SEED_RECORD_FILES = (RunDir.SUMMARY_FILE, RunDir.METRICS_FILE)


@dataclass(frozen=True)
class Variant:
    """A model and the preset it is trained with on every set (``preset`` None: ``auto``)."""

    label: str
    model: str
    preset: str | None

    @classmethod
    def parse(cls, text: str) -> "Variant":
        """``MODEL``, ``MODEL@PRESET`` or ``auto``."""
        model, _, preset = text.strip().partition("@")
        if not model:
            raise ConfigError(f"suite variant {text!r}: expected MODEL, MODEL@PRESET or auto")
        if model == AUTO:
            if preset:
                raise ConfigError(f"suite variant {text!r}: auto chooses its own presets")
            return cls(AUTO, AUTO, None)
        label = model if not preset else f"{model}@{Path(preset).stem}"
        return cls(label, model, preset or model)


def run_name(set_name: str, variant: Variant) -> str:
    return f"{set_name}--{variant.label}"


def record_complete(record_dir: Path) -> bool:
    """Whether a record holds a finished run (its across-seed summary, or an auto search's result)."""
    return RunDir(record_dir).finished or (record_dir / AUTO_FILE).is_file()


def copy_record(run_dir: Path, record_dir: Path) -> None:
    """The small files of a finished run (or of an auto search and its runs), no checkpoints."""
    record_dir.mkdir(parents=True, exist_ok=True)
    for name in RECORD_FILES:
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, record_dir / name)
    for seed_dir in RunDir(run_dir).seed_dirs():
        for name in SEED_RECORD_FILES:
            if (seed_dir.path / name).is_file():
                (record_dir / seed_dir.path.name).mkdir(exist_ok=True)
                shutil.copy2(seed_dir.path / name, record_dir / seed_dir.path.name / name)
    for inner in sorted(p for p in run_dir.iterdir() if p.is_dir() and RunDir(p).is_run):
        copy_record(inner, record_dir / inner.name)


def run_suite(
    variants: Sequence[Variant],
    runs_dir: Path,
    records_dir: Path,
    *,
    data_dir: Path | None = None,
    set_names: Sequence[str] | None = None,
    seeds: int = 1,
    overrides: dict[str, Any] | None = None,
    budget_minutes: float = 60.0,
    on_start: Callable[[str, Variant], None] | None = None,
    on_done: Callable[[str, Variant, str], None] | None = None,
) -> list[tuple[str, str, str]]:
    """Train every variant on every available set (or those named); returns (set, label, status) rows.

    Status is ``trained``, ``recorded before`` (skipped: its record is complete) or ``missing data: ...``.
    An unfinished run folder of an interrupted suite is resumed.
    """
    done: list[tuple[str, str, str]] = []
    for entry in suite_sets(data_dir, list(set_names) if set_names else None):
        for variant in variants:
            status = _run_one(entry, variant, runs_dir, records_dir, seeds, dict(overrides or {}), budget_minutes, on_start)
            done.append((entry.name, variant.label, status))
            if on_done is not None:
                on_done(entry.name, variant, status)
    return done


def _run_one(
    entry: SuiteEntry, variant: Variant, runs_dir: Path, records_dir: Path, seeds: int, overrides: dict[str, Any],
    budget_minutes: float, on_start: Callable[[str, Variant], None] | None,
) -> str:
    if not entry.available:
        return f"missing data: {entry.missing}"
    name = run_name(entry.name, variant)
    if record_complete(records_dir / name):
        return "recorded before"
    if on_start is not None:
        on_start(entry.name, variant)
    data = entry.overrides
    settings = {**overrides, "benchmark_args": {**data["benchmark_args"], **overrides.get("benchmark_args", {})}}
    if data["data_root"] is not None:
        settings["data_root"] = data["data_root"]
    run_dir = runs_dir / name
    if variant.model == AUTO:
        run_auto(data["benchmark"], run_dir, overrides=settings, budget_minutes=budget_minutes,
                 seeds=list(range(seeds)), resume=run_dir.exists())
    else:
        config = build_config(variant.model, data["benchmark"], settings, preset=variant.preset)
        train_run(config, run_dir, list(range(seeds)), resume=RunDir(run_dir).is_run)
    copy_record(run_dir, records_dir / name)
    return "trained"


# --- the table ------------------------------------------------------------------------------------

def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot read a run summary ({exc})") from None


def _seed_cell(record_dir: Path) -> tuple[str, float | None]:
    """'mean ± std' of a record's test Spearman (⚠ if unstable) and its mean."""
    record = RunDir(record_dir)
    summary = RunSummary.from_json(_read(record.summary_path), record.summary_path)
    values = [float(s.test["spearman"]) for s in summary.per_seed]  # type: ignore[index]
    unstable = any(
        (swing := late_swing(record.seed(s.seed).read_history())) and swing["unstable"] for s in summary.per_seed
    )
    return format_mean_std(mean_std(values), len(values)) + (" ⚠" if unstable else ""), mean_std(values)["mean"]


def suite_table(records_dir: Path, variants: Sequence[str] | None = None) -> str:
    """The markdown table of the records in ``records_dir``: sets as rows, variants as columns."""
    records = sorted(p for p in Path(records_dir).iterdir() if p.is_dir() and "--" in p.name and record_complete(p))
    if not records:
        raise DataError(f"{records_dir}: no suite records (folders <set>--<variant> written by aqakit suite run)")
    by_set: dict[str, dict[str, Path]] = {}
    for path in records:
        set_name, label = path.name.split("--", 1)
        by_set.setdefault(set_name, {})[label] = path
    labels = list(variants) if variants else sorted({label for row in by_set.values() for label in row},
                                                    key=lambda lab: (lab != RIDGE, lab == AUTO, lab.split("@")[0], lab))
    deep = [label for label in labels if label != AUTO]
    header = ["set", *deep] + (["auto: choice", "auto: validation", "auto: test", "auto − ridge (test)"] if AUTO in labels else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    order = [s.name for s in SUITE]
    for set_name in sorted(by_set, key=lambda n: order.index(n) if n in order else len(order)):
        row = by_set[set_name]
        cells, means = [set_name], {}
        for label in deep:
            if label in row:
                text, means[label] = _seed_cell(row[label])
                cells.append(text)
            else:
                cells.append("–")
        if AUTO in labels:
            cells += _auto_cells(row.get(AUTO), means.get(RIDGE))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def suite_curves(records_dir: Path) -> str:
    """Per record, how far each seed's last epoch fell below its best one on its held-out curve
    (validation when carved, else test: descriptive only) and its late swing, as a markdown table."""
    lines = ["| run | curve | seeds | best epoch's Spearman | last epoch's | best − last (max over seeds) | late swing (max) |",
             "|---|---|---|---|---|---|---|"]
    for path in sorted(p for p in Path(records_dir).iterdir() if RunDir(p).finished and "--" in p.name):
        histories = [seed_dir.read_history() for seed_dir in RunDir(path).seed_dirs()]
        histories = [h for h in histories if len(h) > 1]
        if not histories:
            continue  # closed-form fits have one epoch
        curve = "val_spearman" if "val_spearman" in histories[0][0] else "test_spearman"
        best = [max(row[curve] for row in h) for h in histories]
        last = [h[-1][curve] for h in histories]
        swings = [late_swing(h) for h in histories]
        lines.append(
            f"| {path.name} | {curve.split('_')[0]} | {len(histories)} | {', '.join(f'{v:.3f}' for v in best)} | "
            f"{', '.join(f'{v:.3f}' for v in last)} | {max(b - l for b, l in zip(best, last)):.3f} | "
            f"{max(s['swing'] for s in swings if s):.3f} |"
        )
    return "\n".join(lines)


def _auto_cells(record_dir: Path | None, ridge: float | None) -> list[str]:
    if record_dir is None or not (record_dir / AUTO_FILE).is_file():
        return ["–"] * 4
    auto = _read(record_dir / AUTO_FILE)
    test = auto["final"]["test"]["spearman"]["mean"]
    gap = "–" if ridge is None else f"{test - ridge:+.3f}"
    return [auto["chosen"], f"{auto['chosen_validation']:.3f}", f"{test:.3f}", gap]

