"""Run a sweep's trials on Ray Tune: the only module of aqakit that imports Ray or Optuna (lazily,
when a sweep runs; ``pip install 'aqakit[ray]'``).

Each Tune trial calls :func:`aqakit.sweep.trial.run_trial` (one configuration, every seed, one run
folder) with the CPUs and GPUs of the spec's ``resources``. Grid search is ``tune.grid_search``;
random search draws with Tune's sample functions (seeded by ``search_seed``); ``optuna`` is Tune's
:class:`~ray.tune.search.optuna.OptunaSearch`, maximising the validation figure. Without an
address, Ray starts on this machine with every CPU and stops at the end; ``ray_address`` attaches to
a running cluster (``ray start --head``), whose nodes must see the sweep folder at the same path.
``resume`` keeps the trials whose run folders are finished (the folders are checked, not Tune's
experiment state). One sweep at a time writes a sweep folder.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable

from aqakit.errors import ConfigError, one_line_reason
from aqakit.locking import folder_lock
from aqakit.ray_address import check_ray_address
from aqakit.sweep.folder import RAY_FOLDER, prepare_sweep_folder
from aqakit.sweep.progress import SweepProgress, SweepWatcher, watch
from aqakit.sweep.spec import SweepSpec, trial_name
from aqakit.sweep.summary import write_summary
from aqakit.sweep.trial import FAILED, TrialResult, run_trial

INSTALL_HINT = "pip install 'aqakit[ray]'"
#: The metric a trial reports for Tune's searchers: its validation figure (see :func:`aqakit.sweep.trial.ranking_figure`).
METRIC = "validation"


def run_sweep(spec: SweepSpec, sweep_dir: Path, *, resume: bool = False, ray_address: str | None = None,
              on_progress: Callable[[SweepProgress], None] | None = None) -> dict[str, Any]:
    """Run every trial of ``spec`` into ``sweep_dir`` and write its summary; returns the summary's JSON.

    A failed trial does not stop the others (its error is in the summary's ``failed`` and its row).
    ``on_progress`` is called from a thread with the folder's progress every few seconds
    (:mod:`aqakit.sweep.progress`), and once more at the end.
    """
    ray, tune = import_ray(spec.search)
    if ray_address is not None:
        check_ray_address(ray_address)
    sweep_dir = Path(sweep_dir).absolute()
    with folder_lock(sweep_dir, "sweep"):  # a second sweep into the same folder is refused
        prepare_sweep_folder(sweep_dir, spec, resume=resume)
        finish_watching = watch(SweepWatcher(sweep_dir, spec), on_progress) if on_progress else None
        try:
            start_ray(ray, ray_address)
            try:
                results = _tune(tune, spec, sweep_dir, resume)
            finally:
                ray.shutdown()
        finally:
            if finish_watching:
                finish_watching()
        return write_summary(sweep_dir, spec, results)


def start_ray(ray: Any, address: str | None) -> None:
    """Ray on this machine with every CPU (no dashboard), or attached to the cluster at ``address``;
    a start that fails (a version mismatch with the cluster, no room for Ray's processes) is one line."""
    try:
        if address is None:
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="WARNING", log_to_driver=False)
        else:
            ray.init(address=address, logging_level="WARNING", log_to_driver=False)
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError ... here
        where = f"attach to the Ray cluster at {address}" if address else "start Ray on this machine"
        raise ConfigError(f"cannot {where}: {one_line_reason(exc)}") from None


def import_ray(search: str) -> tuple[Any, Any]:
    """``ray`` and ``ray.tune`` (and a check that Optuna is there for ``search: optuna``); a one-line
    ConfigError naming the extra to install when they are not."""
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")  # trials keep the driver's working directory
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's console output that verbose=0 silences
    # Ctrl-C raises KeyboardInterrupt in the driver; Tune's own handler would return a partial result instead.
    os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")
    try:
        import ray
        from ray import tune
    except ImportError:
        raise ConfigError(f"aqakit sweep runs on Ray Tune, which is not installed: {INSTALL_HINT}") from None
    if search == "optuna":
        try:
            import optuna
        except ImportError:
            raise ConfigError(f"search optuna needs Optuna, which is not installed: {INSTALL_HINT}") from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no line per study and trial
    return ray, tune


def param_space(tune: Any, spec: SweepSpec) -> dict[str, Any]:
    """The spec's space in Tune's terms: grid as ``tune.grid_search``, choice and ranges as sample functions."""
    make: dict[str, Callable[..., Any]] = {"grid": tune.grid_search, "choice": tune.choice,
                                           "uniform": lambda values: tune.uniform(*values),
                                           "loguniform": lambda values: tune.loguniform(*values)}
    return {dim.key: make[dim.kind](list(dim.values)) for dim in spec.space}


def trainable(config: dict[str, Any], *, spec: SweepSpec, sweep_dir: str, resume: bool) -> None:
    """The Tune trainable: run one trial and report its figures (the whole result as JSON, and the
    validation figure for the searcher; NaN when it failed)."""
    import torch
    from ray import tune

    torch.set_num_threads(max(1, int(spec.resources["cpu"])))
    result = run_trial(spec, Path(sweep_dir), config, resume=resume, device="cuda" if spec.resources["gpu"] > 0 else "cpu")
    report = {"trial": json.dumps(result.to_json())}
    if spec.rank != "none":
        report[METRIC] = float("nan") if result.validation is None else result.validation
    tune.report(report)


def _tune(tune: Any, spec: SweepSpec, sweep_dir: Path, resume: bool) -> list[TrialResult]:
    if spec.search == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        search_alg = OptunaSearch(metric=METRIC, mode="max", seed=spec.search_seed)
    else:
        from ray.tune.search.basic_variant import BasicVariantGenerator

        search_alg = BasicVariantGenerator(random_state=spec.search_seed)
    resources = {"cpu": spec.resources["cpu"], "gpu": spec.resources["gpu"]}
    function = tune.with_resources(tune.with_parameters(trainable, spec=spec, sweep_dir=str(sweep_dir), resume=resume), resources)
    tuner = tune.Tuner(
        function,
        param_space=param_space(tune, spec),
        tune_config=tune.TuneConfig(num_samples=spec.num_samples, search_alg=search_alg),
        run_config=tune.RunConfig(storage_path=str(sweep_dir / RAY_FOLDER), name=time.strftime("tune-%Y%m%d-%H%M%S"),
                                  verbose=0),
    )
    results = []
    for result in tuner.fit():
        if result.config is None:  # Tune was stopped (SIGUSR1) before this trial started: an interruption
            raise KeyboardInterrupt
        if result.error is not None or "trial" not in (result.metrics or {}):  # the worker itself died
            values = {key: result.config[key] for key in (d.key for d in spec.space)}
            results.append(TrialResult(trial_name(spec, values), values, FAILED, list(spec.seeds),
                                       error=one_line_reason(result.error) if result.error else "no result reported"))
        else:
            results.append(TrialResult.from_json(json.loads(result.metrics["trial"])))
    order = {trial_name(spec, values): i for i, values in enumerate(spec.grid())} if spec.search == "grid" else {}
    return sorted(results, key=lambda r: order.get(r.name, len(order)))
