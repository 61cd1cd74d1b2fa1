"""Run configuration: presets shipped in ``aqakit/configs`` plus command-line overrides.

A preset is a YAML file named ``<model>-<benchmark>.yaml`` (``gdlt-fisv-tes.yaml``), else
``<model>-<benchmark family>.yaml`` (``gdlt-rg.yaml``), else ``<model>-generic.yaml`` (the robust
default for data without a preset of its own: ``csv``, MTL-AQA, FineDiving), else ``<model>.yaml``
(the paper's or released settings, which the paper presets build on): the most specific one that
exists is used. ``base: <preset>`` starts from another preset. It has three
sections that map onto the dataclasses here::

    model: {name: gdlt, args: {hidden_dim: 256, dropout: 0.3}}
    optim: {name: sgd, lr: 0.01, momentum: 0.9, weight_decay: 1.0e-4, scheduler: cosine, min_lr: 1.0e-4}
    train: {epochs: 200, batch_size: 32, crop_len: 68}

Overrides use dotted keys (``train.epochs=5``, ``model.args.dropout=0.5``); an unknown key
is an error, never silently ignored. ``model.args`` are checked against the model's config
dataclass (:mod:`aqakit.models.config`); presets state only what differs from its defaults, and a
built configuration states every hyper-parameter.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from aqakit.data.benchmarks import DATA_ENV, Benchmark, get_benchmark
from aqakit.errors import ConfigError
from aqakit.models import HParams, is_closed_form, model_config, model_defaults

SELECTION_RULES = ("final", "best-val", "best-test")
OPTIMISERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("cosine", "step", "none")
SCHEDULER_INTERVALS = ("epoch", "step")
#: Lightning precision strings aqakit accepts; "auto" is bf16-mixed where the hardware has bf16, else 32-true.
PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed", "64-true")
#: ``train.logger``: ``tensorboard`` also writes each epoch's figures as TensorBoard events.
LOGGERS = ("none", "tensorboard")


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule.

    ``scheduler``: ``cosine`` (to ``min_lr``), ``step`` (multiply by ``gamma`` every ``step_size``
    scheduler steps) or ``none``; ``scheduler_interval``: one scheduler step per ``epoch`` (default)
    or per optimiser ``step`` (iteration; a cosine then spans every iteration of the run).
    """

    name: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    scheduler: str = "cosine"
    min_lr: float = 1e-4  # cosine floor (eta_min)
    step_size: int = 30  # step scheduler: scheduler steps between decays
    gamma: float = 0.1  # step scheduler: decay factor
    scheduler_interval: str = "epoch"  # epoch | step

    def check(self) -> None:
        if self.name not in OPTIMISERS:
            raise ConfigError(f"optim.name {self.name!r} is not one of {', '.join(OPTIMISERS)}")
        if self.scheduler not in SCHEDULERS:
            raise ConfigError(f"optim.scheduler {self.scheduler!r} is not one of {', '.join(SCHEDULERS)}")
        if self.scheduler_interval not in SCHEDULER_INTERVALS:
            raise ConfigError(
                f"optim.scheduler_interval {self.scheduler_interval!r} is not one of {', '.join(SCHEDULER_INTERVALS)}"
            )
        if self.lr <= 0:
            raise ConfigError(f"optim.lr must be positive, got {self.lr}")
        if self.step_size < 1 or not 0 < self.gamma <= 1:
            raise ConfigError(f"optim.step_size must be >= 1 and optim.gamma in (0, 1], got {self.step_size}, {self.gamma}")


@dataclass
class TrainConfig:
    """How a model is fitted and which checkpoint is kept."""

    epochs: int = 200
    batch_size: int = 32
    crop_len: int = 68  # clips per training sample (random crop; padded with a mask if shorter)
    eval_batch_size: int = 32
    grad_clip: float | None = None  # max gradient norm; None = no clipping
    select: str = "final"  # final | best-val | best-test (the last one only to compare with papers)
    val_fraction: float = 0.2  # validation carved from the training set (only used by best-val)
    val_folds: int | None = None  # k-fold validation: seed s validates on fold s mod k (replaces val_fraction)
    train_fraction: float = 1.0  # learning curves: train on this score-stratified share of the training part (drawn per seed)
    eval_test_every_epoch: bool = True  # log test metrics per epoch (never used to select, except best-test)
    evaluate_test: bool = True  # False: the test split is never scored (tuning runs; needs a validation split)
    precision: str = "auto"  # a Lightning precision string, or auto (see aqakit.train.precision)
    compile: bool = False  # torch.compile the model's training forward pass
    ema_decay: float | None = None  # per-step decay of a weight moving average that is evaluated and saved; None = off
    ensemble: bool = False  # train all seeds of a run together as one batched ensemble (aqakit.train.ensemble)
    logger: str = "none"  # none | tensorboard: also log each epoch's metrics.csv row for TensorBoard (seed-<k>/tensorboard)
    devices: int = 1  # processes (GPUs, or CPU processes) per machine training one model with DDP (aqakit.train.distributed)
    num_nodes: int = 1  # machines taking part, each with train.devices processes

    @property
    def world_size(self) -> int:
        """How many processes train the model together (``devices x num_nodes``)."""
        return self.devices * self.num_nodes

    @property
    def carves_validation(self) -> bool:
        """Whether each seed holds out a validation split of the training set (best-val or k-fold)."""
        return self.select == "best-val" or self.val_folds is not None

    def check(self) -> None:
        if self.select not in SELECTION_RULES:
            raise ConfigError(f"train.select {self.select!r} is not one of {', '.join(SELECTION_RULES)}")
        for name in ("devices", "num_nodes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"train.{name} must be a whole number of at least 1, got {value!r}")
        for name in ("epochs", "batch_size", "crop_len", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be at least 1, got {getattr(self, name)}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"train.precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"train.val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.val_folds is not None and (isinstance(self.val_folds, bool) or not isinstance(self.val_folds, int)
                                           or self.val_folds < 2):
            raise ConfigError(f"train.val_folds must be an integer of at least 2 or null, got {self.val_folds!r}")
        if not 0 < self.train_fraction <= 1:
            raise ConfigError(f"train.train_fraction must be in (0, 1], got {self.train_fraction}")
        if not self.evaluate_test and not self.carves_validation:
            raise ConfigError(
                f"train.evaluate_test=false leaves only the validation split to select and report on, "
                f"so it needs train.select best-val or train.val_folds, not select {self.select!r} alone"
            )
        if self.logger not in LOGGERS:
            raise ConfigError(f"train.logger {self.logger!r} is not one of {', '.join(LOGGERS)}")
        if self.logger != "none" and self.ensemble:
            raise ConfigError("train.logger tensorboard logs seeds trained one by one; an --ensemble run has only metrics.csv")
        if self.ema_decay is not None and not 0 <= self.ema_decay < 1:
            raise ConfigError(f"train.ema_decay must be in [0, 1) or null, got {self.ema_decay}")


@dataclass
class ModelConfig:
    """The model's registered name and its hyper-parameters (the fields of its config dataclass)."""

    name: str = "gdlt"
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunConfig:
    """Everything that defines a run (saved as ``config.yaml`` in the run directory)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    benchmark: str = "synthetic"
    benchmark_args: dict[str, Any] = field(default_factory=dict)
    data_root: str | None = None
    score_range: list[float] | None = None  # [lo, hi]; None = the training scores' min/max
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def model_config(self) -> HParams:
        """The model's typed config from ``model.args``; a bad or unknown entry is a one-line
        ConfigError naming ``model.args.NAME`` and what it may be."""
        return model_config(self.model.name, self.model.args, key_prefix="model.args.")

    def check(self) -> None:
        self.optim.check()
        self.train.check()
        self.model_config()
        if is_closed_form(self.model.name) and (self.train.epochs != 1 or self.train.ensemble):
            raise ConfigError(
                f"model {self.model.name!r} is fitted in closed form, in one step: it needs train.epochs=1 "
                f"(got {self.train.epochs}) and no train.ensemble"
            )
        if self.score_range is not None and len(self.score_range) != 2:
            raise ConfigError(f"score_range needs two numbers [lo, hi], got {self.score_range}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def changed_settings(saved: dict[str, Any], current: RunConfig) -> dict[str, tuple[Any, Any]]:
    """The settings of a saved ``config.yaml`` that ``current`` changes: ``{dotted key: (saved, now)}``.

    A key the saved file lacks (a setting added by a later aqakit) counts as unchanged when
    ``current`` keeps its default, which reproduces the older behaviour; so does a key the
    current configuration no longer has. Model hyper-parameters are compared one by one
    (``model.args.X``), each absent one at the model's own default on both sides.
    """
    before, now, defaults = _flatten(saved), _flatten(current.to_dict()), _flatten(RunConfig().to_dict())
    for key, value in model_defaults(current.model.name).items():
        before.setdefault(f"model.args.{key}", value)
        now.setdefault(f"model.args.{key}", value)
    missing = object()
    changes: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(before) | set(now)):
        old, new = before.get(key, missing), now.get(key, missing)
        if (old is missing and new == defaults.get(key, missing)) or new is missing:
            continue
        if old != new:
            changes[key] = (None if old is missing else old, new)
    return changes


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; the free-form ``benchmark_args`` stays whole."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and dotted != "benchmark_args":
            flat.update(_flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def apply_overrides(config: RunConfig, overrides: dict[str, Any], source: str = "override") -> None:
    """Set dotted keys on ``config``; ``model.args.X`` and ``benchmark_args.X`` set one entry."""
    for dotted, value in overrides.items():
        *path, last = dotted.split(".")
        target: Any = config
        for part in path:
            if isinstance(target, dict):
                target = target.setdefault(part, {})
            elif dataclasses.is_dataclass(target) and part in {f.name for f in dataclasses.fields(target)}:
                target = getattr(target, part)
            else:
                raise ConfigError(f"{source}: unknown setting {dotted!r}")
        if isinstance(target, dict):
            target[last] = value
        elif dataclasses.is_dataclass(target) and last in {f.name for f in dataclasses.fields(target)}:
            current = getattr(target, last)
            if isinstance(current, dict) and isinstance(value, dict):
                current.update(value)
            else:
                setattr(target, last, _coerce(value, current, dotted, source))
        else:
            raise ConfigError(f"{source}: unknown setting {dotted!r}")


def _coerce(value: Any, current: Any, dotted: str, source: str) -> Any:
    """Keep numeric settings numeric (YAML reads ``1e-4`` as a string) and whole numbers whole."""
    if isinstance(current, bool) or not isinstance(current, (int, float)) or value is None:
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {dotted} needs a number, got {value!r}") from None
    if isinstance(current, float):
        return number
    if not number.is_integer():
        raise ConfigError(f"{source}: {dotted} needs a whole number, got {value!r}")
    return int(number)


def parse_override(text: str) -> tuple[str, Any]:
    """``'train.epochs=5'`` -> ``('train.epochs', 5)`` (the value is read as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value (e.g. train.epochs=5)")
    key, raw = text.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError:
        raise ConfigError(f"override {text!r}: the value is not valid YAML") from None


def _preset_folder() -> Path:
    return Path(str(resources.files("aqakit") / "configs"))


def preset_path(model: str, benchmark: str, family: str) -> Path | None:
    """The most specific preset for ``model`` on ``benchmark`` (of ``family``), or None if there is none."""
    folder = _preset_folder()
    for name in (f"{model}-{benchmark}.yaml", f"{model}-{family}.yaml", f"{model}-generic.yaml", f"{model}.yaml"):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def list_presets() -> list[str]:
    """Names of the built-in presets (``aqakit train --preset NAME``)."""
    return sorted(path.stem for path in _preset_folder().glob("*.yaml"))


def named_preset(preset: str) -> Path:
    """A built-in preset's file by name, or a YAML file path as given."""
    return named_yaml(preset, _preset_folder(), "preset")


def named_yaml(name: str | Path, folder: Path, kind: str) -> Path:
    """``name`` as a YAML file path when it looks like one (a ``.yaml``/``.yml`` suffix or a folder
    part), else the built-in ``folder/<name>.yaml``; ConfigError naming the built-in ``kind`` files
    when there is none."""
    given = Path(name)
    if given.suffix in (".yaml", ".yml") or given.parent != Path("."):
        if not given.is_file():
            raise ConfigError(f"{kind} file {given} not found")
        return given
    builtin = folder / f"{name}.yaml"
    if not builtin.is_file():
        names = ", ".join(sorted(path.stem for path in folder.glob("*.yaml")))
        raise ConfigError(f"unknown {kind} {str(name)!r}; built-in {kind}s: {names}")
    return builtin


def load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def apply_preset(config: RunConfig, path: Path) -> None:
    """Apply a preset file; a ``base: <preset name>`` key applies that preset first."""
    data = load_yaml(path)
    base = data.pop("base", None)
    if base is not None:
        base_path = path.parent / f"{base}.yaml"
        if not base_path.is_file():  # a preset of the user's own may build on a built-in one
            base_path = _preset_folder() / f"{base}.yaml"
        if not base_path.is_file():
            raise ConfigError(f"{path}: base preset {base!r} not found (next to it or built in)")
        apply_preset(config, base_path)
    apply_overrides(config, _flatten(data), str(path))


def find_data_root(benchmark: Benchmark, data_root: Path | str | None = None) -> Path | None:
    """The benchmark's data folder: ``data_root`` as given, else ``$AQAKIT_DATA/<family>`` when that
    folder exists, else None (always None for a benchmark that needs no data)."""
    if not benchmark.needs_data:
        return None
    if data_root is not None:
        return Path(data_root)
    env = os.environ.get(DATA_ENV)
    if env and (Path(env) / benchmark.data_family).is_dir():
        return Path(env) / benchmark.data_family
    return None


def require_data_root(benchmark: Benchmark, data_root: Path | str | None = None) -> Path | None:
    """:func:`find_data_root`, or a ConfigError saying how to give the data when it needs some and none is found."""
    root = find_data_root(benchmark, data_root)
    if root is None and benchmark.needs_data:
        raise ConfigError(
            f"benchmark {benchmark.name!r} needs its data: pass --data-root DIR "
            f"(or set {DATA_ENV} to a folder holding {benchmark.data_family}/); "
            "run `aqakit train` with no arguments for the built-in synthetic benchmark"
        )
    return root


def resolve_benchmark(benchmark: str, overrides: dict[str, Any] | None = None) -> tuple[Benchmark, dict[str, Any]]:
    """The benchmark ``benchmark`` with the options in ``overrides``, and ``overrides`` made to run from anywhere.

    The options are ``benchmark_args`` (a mapping) and ``benchmark_args.X`` keys; in the returned
    overrides, path options and ``data_root`` are absolute, and a ``data_root`` not given is
    ``$AQAKIT_DATA/<family>`` when that folder exists (see :func:`find_data_root`).
    """
    values = dict(overrides or {})
    given = values.get("benchmark_args") or {}
    if not isinstance(given, dict):
        raise ConfigError(f"benchmark_args must be a mapping of options, got {given!r}")
    options = dict(given)
    options.update({key.split(".", 1)[1]: value for key, value in values.items() if key.startswith("benchmark_args.")})
    adapter = get_benchmark(benchmark, **options)
    for key, kind in adapter.option_types.items():  # saved absolute, so eval and resume work from anywhere
        if kind is Path and options.get(key) is not None:
            values[f"benchmark_args.{key}"] = str(Path(options[key]).resolve())
    root = find_data_root(adapter, values.get("data_root"))
    if root is not None:
        values["data_root"] = str(root.resolve())
    return adapter, values


def build_config(
    model: str, benchmark: str, overrides: dict[str, Any] | None = None, preset: str | None = None
) -> RunConfig:
    """The preset for (model, benchmark) with ``overrides`` applied, checked, with every
    hyper-parameter of the model in ``model.args`` (defaults filled in).

    The benchmark and its data folder are resolved as :func:`resolve_benchmark` does (the
    ``aqakit train`` command line does nothing more), so the preset is chosen by the benchmark's
    family and a run of it finds its data under ``$AQAKIT_DATA``. ``preset`` (a built-in preset's
    name or a YAML file) replaces the one chosen by name.
    """
    adapter, values = resolve_benchmark(benchmark, overrides)
    config = RunConfig(model=ModelConfig(name=model), benchmark=benchmark)
    path = preset_path(model, benchmark, adapter.family) if preset is None else named_preset(preset)
    if path is not None:
        apply_preset(config, path)
    if config.model.name != model:
        raise ConfigError(f"preset {path} is for model {config.model.name!r}, not {model!r}")
    apply_overrides(config, values)
    config.check()
    config.model.args = config.model_config().to_dict()
    return config
