"""The sweep spec: a YAML file naming the model, the benchmark, fixed settings and a search space.

::

    model: gdlt
    benchmark: synthetic          # or a list of benchmarks, one dimension of the space: [fisv-tes, fisv-pcs]
    preset: gdlt-small            # optional: a built-in preset's name or a YAML file
    data_root: ../shared/data/fisv  # optional, as ``aqakit train --data-root``
    base: {train.epochs: 50}      # ``--set`` keys every trial shares
    variants:                     # optional: named sets of ``--set`` keys, one dimension of the space
      full: {}
      no-fgs: {model.args.use_fgs: false}
    space:                        # ``--set`` key -> {grid: [...]} | {choice: [...]} | {uniform: [lo, hi]} | {loguniform: [lo, hi]}
      optim.lr: {loguniform: [1.0e-3, 1.0e-1]}
    seeds: [0, 1, 2]              # a trial is one configuration trained with every seed (one run folder)
    search: grid                  # grid | random | optuna
    num_samples: 1                # configurations drawn (random, optuna); grid: 1
    search_seed: 0                # the draws of random and optuna search, so a resumed sweep draws the same
    resources: {cpu: 1, gpu: 0}   # per trial
    rank: best-val                # best-val | val_folds | none: the validation figure trials are ranked by

Every key of ``base``, ``variants`` and ``space`` is checked by the configuration machinery of
``aqakit train --set`` (:func:`aqakit.train.config.build_config`), so an unknown key or a bad value
is a one-line ConfigError naming it before anything trains. Trials are ranked on validation only
(``train.select=best-val``'s validation Spearman, or that of ``train.val_folds``); a spec asking to
rank on test, or to select checkpoints on test (``train.select=best-test``), is refused.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from aqakit.errors import ConfigError
from aqakit.train.config import RunConfig, build_config, load_yaml, named_yaml

SEARCHES = ("grid", "random", "optuna")
#: What trials are ranked by: the validation Spearman of train.select=best-val or of train.val_folds; none: not ranked.
RANKS = ("best-val", "val_folds", "none")
KINDS = ("grid", "choice", "uniform", "loguniform")
#: The space dimension the named ``variants`` of a spec form.
VARIANT = "variant"
#: The space dimension a spec listing several benchmarks forms (last, so trial names end with the benchmark).
BENCHMARK = "benchmark"
_KEYS = ("model", "benchmark", "preset", "data_root", "base", "variants", "space", "seeds", "search", "num_samples",
         "search_seed", "resources", "rank")
_RESOURCES = ("cpu", "gpu")


@dataclass(frozen=True)
class Dimension:
    """One axis of the search space: a ``--set`` key (or :data:`VARIANT`) and how its values are drawn.

    ``values`` are the listed values of ``grid`` and ``choice``, and ``(lo, hi)`` of ``uniform``
    and ``loguniform``.
    """

    key: str
    kind: str
    values: tuple[Any, ...]


@dataclass
class SweepSpec:
    """A checked sweep spec (see the module docstring for the meaning of each field).

    ``benchmarks`` holds the spec's benchmark, or its list; with two or more they are the
    :data:`BENCHMARK` dimension of ``space``.
    """

    source: str
    model: str
    benchmarks: list[str]
    space: list[Dimension]
    seeds: list[int]
    preset: str | None = None
    data_root: str | None = None
    base: dict[str, Any] = field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    search: str = "grid"
    num_samples: int = 1
    search_seed: int = 0
    resources: dict[str, float] = field(default_factory=lambda: {"cpu": 1.0, "gpu": 0.0})
    rank: str = "best-val"

    def overrides(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The ``--set`` keys of the trial with space values ``values``: base, then its variant's, then its own."""
        merged = dict(self.base)
        if self.data_root is not None:
            merged["data_root"] = self.data_root
        merged.update(self.variants.get(values.get(VARIANT), {}) if self.variants else {})
        merged.update({key: value for key, value in values.items() if key not in (VARIANT, BENCHMARK)})
        return merged

    def benchmark_of(self, values: Mapping[str, Any]) -> str:
        """The benchmark the trial with space values ``values`` trains on."""
        return str(values.get(BENCHMARK, self.benchmarks[0]))

    def config(self, values: Mapping[str, Any]) -> RunConfig:
        """The trial's run configuration, built as ``aqakit train`` builds one."""
        return build_config(self.model, self.benchmark_of(values), self.overrides(values), preset=self.preset)

    def to_dict(self) -> dict[str, Any]:
        """The spec as saved in the sweep folder (``sweep.yaml``), and compared on ``--resume``."""
        return {
            "model": self.model, "benchmark": self.benchmarks[0] if len(self.benchmarks) == 1 else list(self.benchmarks),
            "preset": self.preset, "data_root": self.data_root,
            "base": dict(self.base), "variants": {k: dict(v) for k, v in self.variants.items()},
            "space": {d.key: {d.kind: list(d.values)} for d in self.space if d.key not in (VARIANT, BENCHMARK)},
            "seeds": list(self.seeds), "search": self.search, "num_samples": self.num_samples,
            "search_seed": self.search_seed, "resources": dict(self.resources), "rank": self.rank,
        }

    def grid(self) -> list[dict[str, Any]]:
        """Every configuration of a grid search, in the order of the spec."""
        return [dict(zip([d.key for d in self.space], combo)) for combo in itertools.product(*(d.values for d in self.space))]


def builtin_folder() -> Path:
    """Where the sweep specs shipped with aqakit live (``aqakit/configs/sweeps``)."""
    return Path(str(resources.files("aqakit") / "configs" / "sweeps"))


def spec_path(spec: str | Path) -> Path:
    """A spec file as given, or a built-in spec by name (``cofinal-ablations-fisv``)."""
    return named_yaml(spec, builtin_folder(), "sweep spec")


def load_spec(spec: str | Path, *, benchmark: str | None = None, data_root: str | None = None,
              settings: Mapping[str, Any] | None = None) -> SweepSpec:
    """Read and check a spec (a file or a built-in name); ``benchmark`` (one name) and ``data_root``
    replace the spec's, and ``settings`` (``--set`` keys) are added to its ``base``, replacing the same keys."""
    path = spec_path(spec)
    data = load_yaml(path)
    if benchmark is not None:
        data["benchmark"] = benchmark
    if data_root is not None:
        data["data_root"] = data_root
    if settings:
        data["base"] = {**_mapping(data.get("base") or {}, "base", lambda message: ConfigError(f"{path}: {message}")), **settings}
    return parse_spec(data, str(path))


def parse_spec(data: Mapping[str, Any], source: str) -> SweepSpec:
    """Check a parsed spec; every problem is a one-line ConfigError starting with ``source``."""
    def fail(message: str) -> ConfigError:
        return ConfigError(f"{source}: {message}")

    for key in data:
        if key not in _KEYS:
            raise fail(f"unknown key {key!r} (a spec has {', '.join(_KEYS)})")
    if not isinstance(data.get("model"), str):
        raise fail(f"model must be a name, got {data.get('model')!r}")
    benchmarks = _benchmarks(data.get("benchmark"), fail)
    rank = _rank(data.get("rank", "best-val"), fail)
    search = data.get("search", "grid")
    if search not in SEARCHES:
        raise fail(f"search {search!r} is not one of {', '.join(SEARCHES)}")
    base = _mapping(data.get("base") or {}, "base", fail)
    variants = _variants(data.get("variants") or {}, fail)
    space = _space(data.get("space") or {}, fail)
    if variants:
        space.insert(0, Dimension(VARIANT, "grid" if search == "grid" else "choice", tuple(variants)))
    if len(benchmarks) > 1:
        if search != "grid" or rank != "none":
            raise fail(f"several benchmarks make a table of every configuration on each (search grid, rank none); "
                       f"a sweep that draws or chooses (search {search}, rank {rank}) takes one benchmark")
        space.append(Dimension(BENCHMARK, "grid", tuple(benchmarks)))
    if not space:
        raise fail("the search space is empty: give space (a --set key -> {grid: [...]}, ...) or variants")
    num_samples = data.get("num_samples", 1 if search == "grid" else 10)
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise fail(f"num_samples must be a whole number of at least 1, got {num_samples!r}")
    _check_search(search, space, num_samples, rank, fail)
    spec = SweepSpec(
        source=source, model=data["model"], benchmarks=benchmarks, space=space, seeds=_seeds(data.get("seeds", [0]), fail),
        preset=data.get("preset"), data_root=None if data.get("data_root") is None else str(Path(data["data_root"]).absolute()),
        base=base, variants=variants, search=search, num_samples=num_samples,
        search_seed=_whole(data.get("search_seed", 0), "search_seed", fail), resources=_resources(data.get("resources") or {}, fail),
        rank=rank,
    )
    if rank == "best-val":
        spec.base.setdefault("train.select", "best-val")
    _check_settings(spec, fail)
    return spec


def _rank(rank: Any, fail: Any) -> str:
    if isinstance(rank, str) and "test" in rank.lower():
        raise fail(f"rank {rank!r} ranks trials on the test split: refused; a sweep chooses on validation only "
                   f"(rank: {' | '.join(RANKS)})")
    if rank not in RANKS:
        raise fail(f"rank {rank!r} is not one of {', '.join(RANKS)}")
    return rank


def _benchmarks(value: Any, fail: Any) -> list[str]:
    names = value if isinstance(value, list) else [value]
    if not names or not all(isinstance(name, str) for name in names) or len(set(names)) != len(names):
        raise fail(f"benchmark must be a name or a list of distinct names, got {value!r}")
    return list(names)


def _mapping(value: Any, where: str, fail: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise fail(f"{where} must be a mapping of --set keys to values, got {value!r}")
    return dict(value)


def _variants(value: Any, fail: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict):
        raise fail(f"variants must map a name to its --set keys, got {value!r}")
    return {str(name): _mapping(keys or {}, f"variants.{name}", fail) for name, keys in value.items()}


def _space(value: Any, fail: Any) -> list[Dimension]:
    if not isinstance(value, dict):
        raise fail(f"space must map --set keys to {{grid: [...]}} and the like, got {value!r}")
    dims = []
    for key, how in value.items():
        if key in (VARIANT, BENCHMARK):
            raise fail(f"space.{key}: {key!r} is the dimension of the spec's {'variants' if key == VARIANT else 'benchmarks'}; "
                       f"{'name it otherwise' if key == VARIANT else 'list them under benchmark'}")
        if not isinstance(how, dict) or len(how) != 1 or next(iter(how)) not in KINDS:
            raise fail(f"space.{key} must be one of {{grid: [...]}}, {{choice: [...]}}, {{uniform: [lo, hi]}}, "
                       f"{{loguniform: [lo, hi]}}, got {how!r}")
        kind, values = next(iter(how.items()))
        if not isinstance(values, list) or not values:
            raise fail(f"space.{key}.{kind} must be a non-empty list, got {values!r}")
        if kind in ("uniform", "loguniform"):
            if (len(values) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)
                    or not values[0] < values[1] or (kind == "loguniform" and values[0] <= 0)):
                raise fail(f"space.{key}.{kind} needs [lo, hi] with lo < hi{' and lo > 0' if kind == 'loguniform' else ''}, "
                           f"got {values!r}")
            values = [float(v) for v in values]
        dims.append(Dimension(str(key), kind, tuple(values)))
    return dims


def _check_search(search: str, space: list[Dimension], num_samples: int, rank: str, fail: Any) -> None:
    kinds = {d.key: d.kind for d in space}
    if search == "grid":
        drawn = [key for key, kind in kinds.items() if kind != "grid"]
        if drawn:
            raise fail(f"search grid tries listed values only: space.{drawn[0]} is {kinds[drawn[0]]}; use search random or optuna")
        if num_samples != 1:
            raise fail(f"search grid runs every configuration once (num_samples 1, got {num_samples}); repeat with seeds")
    if search == "optuna":
        gridded = [key for key, kind in kinds.items() if kind == "grid"]
        if gridded:
            raise fail(f"search optuna draws every value: space.{gridded[0]} is grid; use choice")
        if rank == "none":
            raise fail("search optuna steers by the validation figure: it needs rank best-val or val_folds, not none")


def _seeds(value: Any, fail: Any) -> list[int]:
    if (not isinstance(value, list) or not value or any(isinstance(s, bool) or not isinstance(s, int) for s in value)
            or len(set(value)) != len(value)):
        raise fail(f"seeds must be a non-empty list of distinct whole numbers, got {value!r}")
    return list(value)


def _whole(value: Any, key: str, fail: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(f"{key} must be a whole number, got {value!r}")
    return value


def _resources(value: Any, fail: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        raise fail(f"resources must be {{cpu: N, gpu: M}}, got {value!r}")
    unknown = [key for key in value if key not in _RESOURCES]
    if unknown:
        raise fail(f"resources.{unknown[0]}: unknown (resources has cpu and gpu)")
    out = {"cpu": 1.0, "gpu": 0.0}
    for key, amount in value.items():
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0 or (key == "cpu" and amount <= 0):
            raise fail(f"resources.{key} must be a number {'above' if key == 'cpu' else 'of at least'} 0, got {amount!r}")
        out[key] = float(amount)
    return out


def _check_settings(spec: SweepSpec, fail: Any) -> None:
    """Build a configuration with every listed value (both ends of a range) of every dimension and
    with every variant, as ``aqakit train --set`` would, so a bad key or value is named before anything trains."""
    first = {d.key: d.values[0] for d in spec.space}
    for dim in spec.space:
        for value in dim.values:
            where = {VARIANT: f"variants.{value}", BENCHMARK: f"benchmark {value}"}.get(dim.key, f"space.{dim.key}={value!r}")
            try:
                config = spec.config({**first, dim.key: value})
            except ConfigError as exc:
                raise fail(f"{where}: {str(exc).removeprefix('override: ')}") from None
            _check_ranked(spec, config, where, fail)


def _check_ranked(spec: SweepSpec, config: RunConfig, where: str, fail: Any) -> None:
    if config.train.select == "best-test":
        raise fail(f"{where}: train.select best-test selects checkpoints on the test split: refused in a sweep")
    if spec.rank == "best-val" and config.train.select != "best-val":
        raise fail(f"{where}: rank best-val needs train.select best-val, got {config.train.select!r}")
    if spec.rank == "val_folds" and config.train.val_folds is None:
        raise fail(f"{where}: rank val_folds needs train.val_folds (e.g. base: {{train.val_folds: 5}})")


def trial_name(spec: SweepSpec, values: Mapping[str, Any]) -> str:
    """The folder name of the trial with space values ``values``: its variant, then ``key=value`` per
    other dimension (a key by its last part, unless two dimensions share it), then its benchmark,
    joined by ``_`` (so ``aqakit results`` pairs ``full_fisv-tes`` with ``full_fisv-pcs``)."""
    keys = [d.key for d in spec.space if d.key not in (VARIANT, BENCHMARK)]
    last = [key.rsplit(".", 1)[-1] for key in keys]
    parts = [str(values[VARIANT])] if VARIANT in values else []
    for key, short in zip(keys, last):
        parts.append(f"{short if last.count(short) == 1 else key}={value_text(values[key])}")
    if BENCHMARK in values:
        parts.append(str(values[BENCHMARK]))
    return "_".join(parts).replace("/", "-").replace(" ", "")


def value_text(value: Any) -> str:
    """A space value as trial names and the summary write it (YAML's true/false/null, floats to 6 digits)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
