"""The sweep's summary table: one row per trial, the trial chosen on validation marked.

Each row shows the configuration, the seed mean ± std of the test Spearman (shown, never used for
choosing) and the validation figure the trials are ranked by; the chosen trial is the one with the
highest validation figure among those that trained. Failed trials are listed with their error.
Written to ``<sweep>/summary.md`` and ``<sweep>/summary.json``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

from aqakit.atomic import atomic_write_text
from aqakit.metrics import format_mean_std
from aqakit.sweep.spec import SweepSpec, value_text
from aqakit.sweep.trial import FAILED, TrialResult

SUMMARY_MD = "summary.md"
SUMMARY_JSON = "summary.json"


def chosen_trial(spec: SweepSpec, results: Sequence[TrialResult]) -> TrialResult | None:
    """The trial with the highest validation figure (the first of equals); None with ``rank: none``
    or when no trial has a finite one."""
    ranked = [r for r in results if r.status != FAILED and r.validation is not None and math.isfinite(r.validation)]
    if spec.rank == "none" or not ranked:
        return None
    return max(ranked, key=lambda r: r.validation)  # type: ignore[arg-type, return-value]


def render_markdown(spec: SweepSpec, results: Sequence[TrialResult], chosen: TrialResult | None) -> str:
    """The summary as markdown: the table of trials, then the failed ones with their errors."""
    rank = {"best-val": "validation Spearman (best-val, seed mean; ranks the trials)",
            "val_folds": "validation Spearman (train.val_folds, seed mean; ranks the trials)",
            "none": "validation (not ranked)"}[spec.rank]
    lines = [
        f"# Sweep: {spec.model} on {', '.join(spec.benchmarks)} ({spec.search} search, seeds {', '.join(map(str, spec.seeds))})",
        "",
        f"Spec: `{spec.source}`. The test figures are shown, never used for choosing; the chosen trial is "
        f"the one with the highest validation figure{' (rank: none, so none is chosen)' if spec.rank == 'none' else ''}.",
        "",
        f"| trial | configuration | seeds | test Spearman (mean ± std) | {rank} | status |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        test = "–" if r.test_spearman is None else format_mean_std(r.test_spearman, len(r.seeds))
        validation = "–" if r.validation is None else f"{r.validation:.3f}"
        status = "**chosen**" if r is chosen else r.status
        configuration = ", ".join(f"`{key}={value_text(value)}`" for key, value in r.values.items())
        lines.append(f"| {r.name} | {configuration} | {len(r.seeds)} | {test} | {validation} | {status} |")
    failed = [r for r in results if r.status == FAILED]
    if failed:
        lines += ["", f"Failed trials ({len(failed)}):", ""]
        lines += [f"- {r.name}: {r.error}" for r in failed]
    return "\n".join(lines) + "\n"


def write_summary(sweep_dir: Path, spec: SweepSpec, results: Sequence[TrialResult]) -> dict[str, Any]:
    """Write ``summary.md`` and ``summary.json`` into ``sweep_dir`` (atomically); returns the JSON."""
    chosen = chosen_trial(spec, results)
    record = {
        "spec": spec.to_dict(),
        "rank": spec.rank,
        "chosen": None if chosen is None else chosen.name,
        "failed": [r.name for r in results if r.status == FAILED],
        "trials": [r.to_json() for r in results],
    }
    atomic_write_text(Path(sweep_dir) / SUMMARY_JSON, json.dumps(record, indent=2, allow_nan=True) + "\n")
    atomic_write_text(Path(sweep_dir) / SUMMARY_MD, render_markdown(spec, results, chosen))
    return record

