"""``aqakit train auto``: choose a model and preset by k-fold validation on the training split only.

Every candidate (ridge among them, cheapest first) is trained as an ordinary tuning run with
``train.val_folds=K`` and ``train.evaluate_test=false``: seed ``s`` trains on K-1 folds of the
training split and validates on fold ``s``, so seeds 0..K-1 score every training video once and
the test split is never read. A candidate's validation figure is the Fisher-z mean of its K fold
Spearmans. The rule then picks one:

- ``one-se`` (default): the first candidate, in the cheap-first order, whose figure is within one
  standard error of the best figure (in Fisher-z units: the best candidate's spread over folds /
  sqrt(K)): a more complex model must beat a simpler one by more than validation noise to be chosen;
- ``max``: the highest figure.

The winner is trained again on the whole training split with its own selection rule, and only its
test figures are reported. ``budget_minutes`` bounds the search: before a gradient-trained candidate
its cost is estimated from two probe epochs on fold 0 (K fold runs plus the final run), and a
candidate that would not fit in what is left is skipped and reported as such; closed-form
candidates (ridge) always run. Layout of ``runs/<name>/``::

    auto.json            candidates, their fold figures and cost, the rule, the choice, the winner's test figures
    cv-<candidate>/      each candidate's k-fold tuning run (an ordinary run folder)
    final/               the winner trained on the whole training split (an ordinary run folder)
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from aqakit.atomic import atomic_write_text
from aqakit.errors import ConfigError, RunDirectoryError
from aqakit.metrics import fisher_transform, fisher_z_mean
from aqakit.models import is_closed_form
from aqakit.rundir import RunDir
from aqakit.train.config import RunConfig, build_config
from aqakit.train.runner import train_run

AUTO_FILE = "auto.json"
RULES = ("one-se", "max")


@dataclass(frozen=True)
class Candidate:
    """One model and preset ``auto`` may choose; ``overrides`` are dotted settings on top of the preset."""

    label: str
    model: str
    preset: str | None = None  # None: the model's preset for the benchmark (its generic one for csv)
    overrides: dict[str, Any] = field(default_factory=dict)


#: The default candidates, cheapest first (the order the one-se rule prefers).
CANDIDATES: tuple[Candidate, ...] = (
    Candidate("ridge", "ridge"),
    Candidate("ridge-mean-max-std", "ridge", overrides={"model.args.pooling": ["mean", "max", "std"]}),
    Candidate("gdlt", "gdlt"),
    Candidate("cofinal-official", "cofinal-official"),
    Candidate("query-decoder", "query-decoder"),
    Candidate("cofinal", "cofinal"),
)


def candidates_named(labels: Sequence[str]) -> list[Candidate]:
    """The default candidates with these labels, in the given order; ConfigError names an unknown one."""
    known = {c.label: c for c in CANDIDATES}
    unknown = [label for label in labels if label not in known]
    if unknown:
        raise ConfigError(f"unknown auto candidate(s) {', '.join(unknown)}; available: {', '.join(known)}")
    return [known[label] for label in labels]


@dataclass
class CandidateResult:
    """What the search learnt of one candidate."""

    label: str
    model: str
    status: str  # "validated" | "skipped: ..." (budget)
    fold_spearman: list[float] = field(default_factory=list)
    validation: float | None = None  # Fisher-z mean of the fold Spearmans
    z_standard_error: float | None = None  # of that figure in Fisher-z units, from the fold spread
    estimated_minutes: float | None = None
    minutes: float | None = None


def validation_figure(fold_spearman: Sequence[float]) -> tuple[float, float]:
    """The Fisher-z mean of the folds' Spearmans and the standard error of that mean in z units
    (z spread over folds / sqrt(K)); a NaN fold (constant predictions) counts as a Spearman of 0."""
    values = np.nan_to_num(np.asarray(fold_spearman, dtype=np.float64), nan=0.0)
    z = fisher_transform(values)
    z_se = float(np.std(z, ddof=1) / math.sqrt(len(z))) if len(z) > 1 else 0.0
    return fisher_z_mean(values), z_se


def choose(results: Sequence[CandidateResult], rule: str) -> CandidateResult:
    """The candidate ``rule`` picks among the validated ones (see the module doc)."""
    validated = [r for r in results if r.validation is not None]
    if not validated:
        raise ConfigError("no candidate was validated within the budget; raise --budget-minutes")
    best = max(validated, key=lambda r: r.validation)
    if rule == "max":
        return best
    floor = fisher_transform(best.validation) - best.z_standard_error
    return next(r for r in validated if fisher_transform(r.validation) >= floor)


def candidate_config(candidate: Candidate, benchmark: str, base: dict[str, Any]) -> RunConfig:
    """The candidate's run configuration: its preset, the user's overrides, then its own."""
    return build_config(candidate.model, benchmark, {**base, **candidate.overrides}, preset=candidate.preset)


def tuning_config(config: RunConfig, folds: int, epochs: int | None = None) -> RunConfig:
    """``config`` as a k-fold tuning run that never reads the test split (``epochs`` for a probe)."""
    train = replace(config.train, val_folds=folds, evaluate_test=False, epochs=epochs or config.train.epochs)
    tuned = replace(config, train=train)
    tuned.check()
    return tuned


def estimate_minutes(config: RunConfig, folds: int, probe_dir: Path, device: str | None) -> float:
    """Minutes ``folds`` fold runs and the final run of ``config`` should take, from two probe epochs
    on fold 0 (0 for a closed-form model)."""
    if is_closed_form(config.model.name):
        return 0.0
    summary = train_run(tuning_config(config, folds, epochs=2), probe_dir, [0], device=device)
    per_epoch = summary["per_seed"][0]["timing"]["epoch_seconds_with_eval"]
    return per_epoch * config.train.epochs * (folds + folds / (folds - 1)) / 60.0


def run_auto(
    benchmark: str,
    run_dir: Path,
    *,
    overrides: dict[str, Any] | None = None,
    candidates: Sequence[Candidate] = CANDIDATES,
    folds: int = 5,
    rule: str = "one-se",
    budget_minutes: float = 60.0,
    seeds: Sequence[int] = (0,),
    resume: bool = False,
    overwrite: bool = False,
    device: str | None = None,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    on_run_start: Callable[[str, int], None] | None = None,
    on_candidate: Callable[[CandidateResult], None] | None = None,
) -> dict[str, Any]:
    """Search ``candidates`` by ``folds``-fold validation, train the chosen one; returns (and writes) ``auto.json``.

    Callbacks, for progress displays: ``on_run_start(label, epochs)`` before each run (a candidate's
    folds, then the final run), ``on_epoch_end(seed, row)`` after each epoch (the seed is the fold
    in a candidate's run), ``on_candidate(result)`` when a candidate is validated or skipped.
    """
    if rule not in RULES:
        raise ConfigError(f"--rule {rule!r} is not one of {', '.join(RULES)}")
    if folds < 2:
        raise ConfigError(f"--folds must be at least 2, got {folds}")
    if budget_minutes <= 0:
        raise ConfigError(f"--budget-minutes must be positive, got {budget_minutes}")
    base = dict(overrides or {})
    configs = [candidate_config(c, benchmark, base) for c in candidates]  # every config error before any run
    if run_dir.exists() and any(run_dir.iterdir()):
        if not (run_dir / AUTO_FILE).is_file() and not any(run_dir.glob("cv-*")):
            raise RunDirectoryError(f"{run_dir} exists and is not an aqakit auto run; refusing to use it")
        if not resume and not overwrite:
            raise RunDirectoryError(f"{run_dir} already exists; pass --overwrite to replace it or --resume to continue it")
        if overwrite:
            shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: list[CandidateResult] = []
    for candidate, config in zip(candidates, configs):
        cv_dir = run_dir / f"cv-{candidate.label}"
        done = RunDir(cv_dir).finished
        result = CandidateResult(candidate.label, candidate.model, status="validated")
        left = budget_minutes - (time.perf_counter() - started) / 60.0
        if not done:
            with tempfile.TemporaryDirectory(prefix="aqakit-probe-") as probe:
                result.estimated_minutes = estimate_minutes(config, folds, Path(probe) / "probe", device)
            if result.estimated_minutes > max(left, 0.0):  # closed-form candidates (estimate 0) always run
                result.status = f"skipped: about {result.estimated_minutes:.0f} min, {max(left, 0):.0f} min of the budget left"
                results.append(result)
                if on_candidate is not None:
                    on_candidate(result)
                continue
        candidate_start = time.perf_counter()
        if on_run_start is not None:
            on_run_start(f"{candidate.label} validation", config.train.epochs)
        resume_cv = RunDir(cv_dir).is_run
        summary = train_run(tuning_config(config, folds), cv_dir, list(range(folds)), resume=resume_cv,
                            device=device, on_epoch_end=on_epoch_end)
        result.minutes = (time.perf_counter() - candidate_start) / 60.0
        result.fold_spearman = [float(s["val"]["spearman"]) for s in summary["per_seed"]]
        result.validation, result.z_standard_error = validation_figure(result.fold_spearman)
        results.append(result)
        if on_candidate is not None:
            on_candidate(result)
    chosen = choose(results, rule)
    winner = configs[[c.label for c in candidates].index(chosen.label)]
    final_dir = run_dir / "final"
    if on_run_start is not None:
        on_run_start(f"final {chosen.label}", winner.train.epochs)
    final = train_run(winner, final_dir, list(seeds), resume=RunDir(final_dir).is_run, device=device,
                      on_epoch_end=on_epoch_end)
    record = {
        "benchmark": benchmark,
        "folds": folds,
        "rule": rule,
        "budget_minutes": budget_minutes,
        "candidates": [asdict(r) for r in results],
        "chosen": chosen.label,
        "chosen_model": chosen.model,
        "chosen_validation": chosen.validation,
        "final_run": str(final_dir),
        "final": {key: final[key] for key in ("test", "seeds", "selection", "epochs") if key in final},
        "minutes": (time.perf_counter() - started) / 60.0,
        "note": "chosen on k-fold validation of the training split; only the chosen candidate's test figures are computed",
    }
    atomic_write_text(run_dir / AUTO_FILE, json.dumps(record, indent=2))
    record["final_summary"] = final
    return record
