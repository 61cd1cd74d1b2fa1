"""One trial of a sweep: one configuration trained with every seed of the spec into an ordinary run
folder ``<sweep>/trials/<trial name>/`` (so ``aqakit results`` and ``aqakit compare`` read it).

:func:`run_trial` trains through :func:`aqakit.train.runner.train_run`, the entry point of
``aqakit train``, and returns the figures the summary shows: the seed-mean test Spearman (shown,
never used for choosing) and the validation figure trials are ranked by. A trial that fails is
caught and returned as failed with its error on one line, so the sweep goes on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

from aqakit.errors import AqakitError, one_line_reason
from aqakit.rundir import RunDir
from aqakit.sweep.spec import SweepSpec, trial_name
from aqakit.train.runner import train_run

TRIALS_FOLDER = "trials"
#: A trial's status: trained now, kept from an earlier run of the sweep (``--resume``), or failed.
FINISHED, KEPT, FAILED = "finished", "kept", "failed"


@dataclass
class TrialResult:
    """What a trial gave: its name and space values, status, and figures (None where there are none).

    ``test_spearman`` is the seed mean and std of the test Spearman; ``validation`` the seed-mean
    validation Spearman the trial is ranked by (None with ``rank: none``).
    """

    name: str
    values: dict[str, Any]
    status: str
    seeds: list[int]
    test_spearman: dict[str, float] | None = None
    validation: float | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "TrialResult":
        return cls(**data)


def trial_dir(sweep_dir: Path, name: str) -> Path:
    """The run folder of trial ``name`` in the sweep folder ``sweep_dir``."""
    return Path(sweep_dir) / TRIALS_FOLDER / name


def run_trial(spec: SweepSpec, sweep_dir: Path, values: Mapping[str, Any], *, resume: bool = False,
              device: str | None = None) -> TrialResult:
    """Train the trial of space values ``values`` (all of ``spec.seeds``) and return its figures.

    With ``resume``, a trial whose run folder is finished is not trained again (its summary is
    read), and an unfinished one continues its unfinished seeds (``train_run(resume=True)``).
    Any error is caught: the trial comes back failed, with the error on one line.
    """
    values = dict(values)
    name = trial_name(spec, values)
    run = RunDir(trial_dir(sweep_dir, name))
    try:
        if resume and run.finished:
            summary, status = run.read_summary().to_json(), KEPT
        else:
            summary = train_run(spec.config(values), run.path, spec.seeds, resume=resume and run.is_run, device=device)
            status = FINISHED
    except Exception as exc:  # a failing trial is recorded and the sweep goes on
        reason = str(exc) if isinstance(exc, AqakitError) else f"{type(exc).__name__}: {one_line_reason(exc)}"
        return TrialResult(name, values, FAILED, list(spec.seeds), error=" ".join(reason.split()))
    return TrialResult(name, values, status, list(summary["seeds"]), test_spearman=(summary.get("test") or {}).get("spearman"),
                       validation=ranking_figure(spec, summary))


def ranking_figure(spec: SweepSpec, summary: Mapping[str, Any]) -> float | None:
    """The validation figure a run summary is ranked by: the seed-mean validation Spearman (of
    ``train.select=best-val``'s split or ``train.val_folds``' fold); never a test figure."""
    if spec.rank == "none":
        return None
    return float(summary["val"]["spearman"]["mean"])
