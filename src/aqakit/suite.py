"""The robustness suite: the data sets on which aqakit's default presets are chosen and checked.

aqakit's models were tuned on few benchmarks; on data of other shapes (one vector per video, a
few dimensions, ten clips, fifty training videos) they fell below a ridge baseline. The suite
gathers the real data at hand and transforms of it (:mod:`aqakit.data.transforms`) that stand in
for those shapes, so a preset is judged on all of them, never on one benchmark alone
(docs/robustness.md). :data:`SUITE` is the one list of its sets; :func:`suite_sets` says which
are available on this machine::

    for entry in suite_sets():
        if entry.available:
            overrides = entry.overrides  # {"benchmark": ..., "benchmark_args": {...}, "data_root": ...}

Real data is found under the data folder: ``$AQAKIT_DATA``, else ``../shared/data`` when it exists.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from aqakit.data.benchmarks import DATA_ENV, Benchmark, TransformedBenchmark, get_benchmark
from aqakit.data.videoset import VideoSet
from aqakit.errors import AqakitError, ConfigError

#: Where the data folder is looked for when ``$AQAKIT_DATA`` is not set (the project's layout).
DEFAULT_DATA = Path("..") / "shared" / "data"

#: Generated features of the diving sets: ten clips (as I3D features of a dive), of the built-in
#: synthetic benchmark's 64 dimensions, so clip count, split sizes and score distribution are what
#: differ from ``synthetic``. (At 1024 dimensions a pooled ridge finds nearly nothing in MTL-AQA's
#: 1059 training videos: test Spearman -0.01; docs/robustness.md.)
_DIVING_FEATURES: dict[str, Any] = {"dim": 64, "min_clips": 10, "max_clips": 10}


@dataclass(frozen=True)
class SuiteSet:
    """One set of the suite.

    Attributes:
        name: the set's name in the suite (``fisv-pcs-pca16``).
        benchmark: the benchmark it reads (``fisv-pcs``).
        benchmark_args: the benchmark's options (``{"transform": "pca:16"}``).
        data: its data folder relative to the data folder (``fisv``), None when it needs no files.
        stands_for: what kind of data it stands in for.
    """

    name: str
    benchmark: str
    benchmark_args: dict[str, Any] = field(default_factory=dict)
    data: str | None = None
    stands_for: str = ""

    def data_root(self, data_dir: Path | None) -> Path | None:
        """This set's data folder under ``data_dir`` (None when it needs no files)."""
        if self.data is None:
            return None
        if data_dir is None:
            raise ConfigError(f"suite set '{self.name}' needs the data folder {self.data}/ (set {DATA_ENV})")
        return Path(data_dir) / self.data

    def overrides(self, data_dir: Path | None) -> dict[str, Any]:
        """The RunConfig settings that select this set: benchmark, benchmark_args, data_root."""
        root = self.data_root(data_dir)
        return {"benchmark": self.benchmark, "benchmark_args": dict(self.benchmark_args),
                "data_root": None if root is None else str(root.resolve())}

    def build(self) -> Benchmark:
        return get_benchmark(self.benchmark, **self.benchmark_args)


#: The suite, in one place. Fis-V is the one benchmark with real features here; the diving sets
#: have real labels and generated features.
SUITE: tuple[SuiteSet, ...] = (
    SuiteSet("fisv-tes", "fisv-tes", {}, "fisv", "Fis-V as released: 124-302 clips x 1024, 400 training videos"),
    SuiteSet("fisv-pcs", "fisv-pcs", {}, "fisv", "Fis-V as released, the easier score"),
    SuiteSet("fisv-pcs-1clip", "fisv-pcs", {"transform": "mean-pool"}, "fisv",
             "one vector per video (pooled features)"),
    SuiteSet("fisv-tes-1clip-rp2048", "fisv-tes", {"transform": "mean-pool,random-projection:2048"}, "fisv",
             "one 2048-d vector per video (e.g. a ResNet/TSN feature)"),
    SuiteSet("fisv-pcs-pca16", "fisv-pcs", {"transform": "pca:16"}, "fisv",
             "long sequences of few dimensions (e.g. 240 x 4 kinematics; pca:4 keeps almost no score signal)"),
    SuiteSet("fisv-tes-10clips", "fisv-tes", {"transform": "segment-pool:10"}, "fisv",
             "10 clips x 1024 per video (e.g. I3D features of short trials)"),
    SuiteSet("fisv-pcs-n40", "fisv-pcs", {"transform": "train-subsample:40"}, "fisv",
             "a small training set (40 videos), the full test set"),
    SuiteSet("fisv-pcs-10clips-n60", "fisv-pcs", {"transform": "segment-pool:10,train-subsample:60"}, "fisv",
             "a small surgical-skill set: 10 clips x 1024, 60 training videos"),
    SuiteSet("synthetic-finediving", "synthetic-finediving", dict(_DIVING_FEATURES), "finediving/Annotations",
             "FineDiving's real score distribution and split sizes (2251/749), generated 10 x 64 features"),
    SuiteSet("synthetic-mtl-aqa", "synthetic-mtl-aqa", dict(_DIVING_FEATURES), "mtl-aqa",
             "MTL-AQA's real score distribution and split sizes (1059/353), generated 10 x 64 features"),
    SuiteSet("synthetic", "synthetic", {}, None, "the built-in synthetic benchmark (planted structure)"),
)


@dataclass(frozen=True)
class SuiteEntry:
    """A suite set on this machine: its settings, or why it is not available."""

    set: SuiteSet
    data_dir: Path | None  # the data folder the set was looked for in
    missing: str | None  # None: available

    @property
    def available(self) -> bool:
        return self.missing is None

    @property
    def name(self) -> str:
        return self.set.name

    @property
    def data_root(self) -> Path | None:
        return None if self.set.data is None or self.data_dir is None else self.data_dir / self.set.data

    @property
    def overrides(self) -> dict[str, Any]:
        """The RunConfig settings of this set: ``benchmark``, ``benchmark_args``, ``data_root``."""
        return self.set.overrides(self.data_dir)


def default_data_dir() -> Path | None:
    """``$AQAKIT_DATA``, else ``../shared/data`` when that folder exists, else None."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    return DEFAULT_DATA if DEFAULT_DATA.is_dir() else None


def get_set(name: str) -> SuiteSet:
    """The suite set called ``name``; ConfigError listing the names otherwise."""
    for entry in SUITE:
        if entry.name == name:
            return entry
    raise ConfigError(f"unknown suite set {name!r} (sets: {', '.join(s.name for s in SUITE)})")


def suite_sets(data_dir: Path | None = None, names: list[str] | None = None) -> list[SuiteEntry]:
    """Every suite set (or those named) with its data folder and, when unavailable, the reason.

    A set is available when its benchmark's labels of both splits read and, for a benchmark with
    features, its feature folder exists; nothing heavier is read (see :func:`set_sizes`).
    """
    data_dir = default_data_dir() if data_dir is None else Path(data_dir)
    chosen = SUITE if names is None else tuple(get_set(name) for name in names)
    return [_entry(s, data_dir) for s in chosen]


def available_sets(data_dir: Path | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(name, RunConfig overrides)`` of each set available here, in suite order."""
    for entry in suite_sets(data_dir):
        if entry.available:
            yield entry.name, entry.overrides


def _entry(suite_set: SuiteSet, data_dir: Path | None) -> SuiteEntry:
    if suite_set.data is None:
        return SuiteEntry(suite_set, data_dir, None)
    if data_dir is None:
        return SuiteEntry(suite_set, None, f"no data folder (set {DATA_ENV}; needs {suite_set.data}/)")
    root = data_dir / suite_set.data
    if not root.is_dir():
        return SuiteEntry(suite_set, data_dir, f"{root} not found")
    benchmark = suite_set.build()
    inner = getattr(benchmark, "base", benchmark)  # the benchmark a transform wraps
    labels = getattr(inner, "score_source", None) or inner  # synthetic-<benchmark>: that one's labels
    try:
        for split in ("train", "test"):
            labels.read_labels(root, split)
        if labels is inner and not inner.feature_dir(root).is_dir():
            return SuiteEntry(suite_set, data_dir, f"{inner.feature_dir(root)}: feature folder not found")
    except AqakitError as exc:
        return SuiteEntry(suite_set, data_dir, str(exc))
    return SuiteEntry(suite_set, data_dir, None)


@dataclass(frozen=True)
class SetSizes:
    """What a loaded set looks like: videos per split, clips per video (min, median, max), dimension."""

    n_train: int
    n_test: int
    clips: tuple[int, int, int]
    dim: int
    train_scores: tuple[float, float]  # min, max

    @property
    def clips_text(self) -> str:
        lo, mid, hi = self.clips
        return str(lo) if lo == hi else f"{lo}-{hi} (median {mid})"


def load_set(entry: SuiteEntry, cache: dict | None = None) -> tuple[VideoSet, VideoSet]:
    """The (train, test) sets of an available suite set, transformed as a run reads them.

    ``cache`` (a dict kept by the caller) keeps the untransformed splits of each benchmark, so
    the several transforms of one benchmark read its files once.
    """
    benchmark = entry.set.build()
    base = benchmark.base if isinstance(benchmark, TransformedBenchmark) else benchmark
    key = (base.name, repr(sorted(base.options.items())), str(entry.data_root))
    cache = {} if cache is None else cache
    if key not in cache:
        cache[key] = (base.load(entry.data_root, "train"), base.load(entry.data_root, "test"))
    train, test = cache[key]
    if isinstance(benchmark, TransformedBenchmark):
        train, fitted = benchmark.transform.fit(train)
        test = benchmark.transform.apply(test, fitted)
    return train, test


def set_sizes(entry: SuiteEntry, cache: dict | None = None) -> SetSizes:
    """Load an available set (both splits, transformed; see :func:`load_set`) and measure it."""
    train, test = load_set(entry, cache)
    lengths = np.concatenate([train.lengths, test.lengths])
    return SetSizes(
        n_train=len(train), n_test=len(test),
        clips=(int(lengths.min()), int(np.median(lengths)), int(lengths.max())),
        dim=train.feature_dim, train_scores=(float(train.scores.min()), float(train.scores.max())),
    )
