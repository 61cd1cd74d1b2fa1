"""Transforms of a benchmark's videos: the same data in shapes nobody tuned for.

A *transform* is a list of steps applied in order to both splits of a benchmark. Every benchmark
takes it as the option ``transform`` (with ``transform_seed``, default 0), so any data set, a
user's own included, can be checked for how a model copes with fewer clips, other dimensions or
fewer training videos::

    aqakit train gdlt fisv-tes --data-root ../shared/data/fisv --set benchmark_args.transform=mean-pool,pca:16

A transform is written as one step (``mean-pool``), steps separated by commas
(``segment-pool:10,train-subsample:60``) or a YAML list of steps (``[pca:4, mean-pool]``; an
entry may also be a one-key mapping ``{pca: 4}``). The steps:

``mean-pool``
    each video becomes one clip: the mean of its clips.
``segment-pool:K``
    each video is cut into K contiguous segments of (nearly) equal length, as
    ``numpy.array_split`` cuts, and each segment is averaged: K clips (a video of at most K
    clips keeps its own).
``pca:D``
    clip features are centred by the training clips' mean and projected onto the top D
    principal components of the training clips (not whitened). The fit sees only the training
    split (after the steps before it); the test split is projected with that fit. Each
    component's sign is fixed (its largest entry is positive), so the fit is deterministic.
``random-projection:D``
    clip features are multiplied by a seeded Gaussian matrix (D_in, D) with entries
    N(0, 1/D), which keeps lengths in expectation; D may be larger than D_in (then the
    features span a D_in-dimensional subspace of D dimensions).
``train-subsample:N``
    N training videos are kept, spread over the score range: the training videos are sorted by
    score, cut into N bins of consecutive scores and one video of each bin is drawn (seeded).
    The test split is left untouched.

Seeded steps draw from ``numpy.random.default_rng([transform_seed, step index])``, so a transform,
its seed and the data determine the result. Temporal steps drop the clip-indexed
``procedure_start`` extra of synthetic sets (its clip numbers no longer exist); other extras are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np

from aqakit.data.videoset import VideoSet
from aqakit.errors import ConfigError, DataError

#: Extras that index clips: invalid once clips are pooled.
CLIP_INDEXED_EXTRAS = ("procedure_start",)


@dataclass(frozen=True)
class StepKind:
    """One kind of step: its name, whether it takes a size, and what it needs and does."""

    name: str
    arg: str | None  # what the size means ("clips", "dimensions", "videos"), None: takes none
    min_arg: int = 1
    fits_on_train: bool = False  # needs the training split to transform the test split
    help: str = ""


STEP_KINDS: dict[str, StepKind] = {
    kind.name: kind
    for kind in (
        StepKind("mean-pool", None, help="one clip per video: the mean of its clips"),
        StepKind("segment-pool", "clips", help="K clips per video: means of K equal segments"),
        StepKind("pca", "dimensions", fits_on_train=True, help="top D principal components of the training clips"),
        StepKind("random-projection", "dimensions", help="a seeded Gaussian projection to D dimensions"),
        StepKind("train-subsample", "videos", min_arg=2, help="N training videos, score-stratified; test untouched"),
    )
}


@dataclass(frozen=True)
class Step:
    """One parsed step, e.g. ``pca:4`` (kind ``pca``, size 4)."""

    kind: str
    size: int | None = None

    @property
    def spec(self) -> str:
        return self.kind if self.size is None else f"{self.kind}:{self.size}"

    @property
    def fits_on_train(self) -> bool:
        return STEP_KINDS[self.kind].fits_on_train


def parse_transform(value: Any, where: str = "transform") -> tuple[Step, ...]:
    """The steps of a transform given as a string, a list of strings / one-key mappings, or None.

    Raises:
        ConfigError: a one-line message naming the bad value (``where`` says which option).
    """
    if value is None:
        return ()
    if isinstance(value, str):
        entries: list[Any] = [part for part in value.split(",")]
    elif isinstance(value, (list, tuple)):
        entries = list(value)
    elif isinstance(value, dict) and len(value) == 1:
        entries = [value]
    else:
        raise ConfigError(f"{where}={value!r}: expected steps like 'mean-pool' or 'pca:4,train-subsample:40' ({_valid()})")
    steps = tuple(_parse_step(entry, value, where) for entry in entries)
    if not steps:
        raise ConfigError(f"{where}={value!r}: no steps ({_valid()})")
    return steps


def _parse_step(entry: Any, value: Any, where: str) -> Step:
    if isinstance(entry, dict) and len(entry) == 1:
        ((name, size),) = entry.items()
    elif isinstance(entry, str):
        name, _, size = entry.strip().partition(":")
        size = size.strip() or None
    else:
        raise ConfigError(f"{where}={value!r}: step {entry!r} is not a name like 'pca:4' ({_valid()})")
    name = str(name).strip().lower()
    kind = STEP_KINDS.get(name)
    if kind is None:
        raise ConfigError(f"{where}={value!r}: unknown step {name!r} ({_valid()})")
    if kind.arg is None:
        if size is not None:
            raise ConfigError(f"{where}={value!r}: step {name!r} takes no size (write just '{name}')")
        return Step(name)
    if size is None:
        raise ConfigError(f"{where}={value!r}: step {name!r} needs a number of {kind.arg}, e.g. '{name}:{max(kind.min_arg, 4)}'")
    try:
        number = int(str(size))
    except ValueError:
        raise ConfigError(f"{where}={value!r}: step {name!r} needs a whole number of {kind.arg}, got {size!r}") from None
    if number < kind.min_arg:
        raise ConfigError(f"{where}={value!r}: step {name!r} needs at least {kind.min_arg} {kind.arg}, got {number}")
    return Step(name, number)


def _valid() -> str:
    return "steps: " + ", ".join(k.name if k.arg is None else f"{k.name}:N" for k in STEP_KINDS.values())


def transform_spec(steps: Sequence[Step]) -> str:
    """The canonical string of a transform (``pca:4,mean-pool``)."""
    return ",".join(step.spec for step in steps)


#: A fitted step: transforms one split (``"train"`` or ``"test"``) of videos.
Apply = Callable[[VideoSet, str], VideoSet]


class Transform:
    """A parsed transform with its seed: fit on a training set, apply to either split.

    ``fit(train)`` returns the transformed training set and the fitted steps; ``apply(test, fitted)``
    transforms a test set with them. Steps that do not fit on train (``needs_train`` False for
    the whole transform) can transform a test set with ``apply(test)`` alone.
    """

    def __init__(self, value: Any, seed: int = 0, where: str = "transform") -> None:
        self.steps = parse_transform(value, where)
        self.seed = int(seed)

    @property
    def spec(self) -> str:
        return transform_spec(self.steps)

    @property
    def needs_train(self) -> bool:
        """Whether transforming the test split needs the training split (a ``pca`` step)."""
        return any(step.fits_on_train for step in self.steps)

    def fit(self, train: VideoSet) -> tuple[VideoSet, list[Apply]]:
        """Fit every step on the training set as transformed by the steps before it."""
        fitted: list[Apply] = []
        notes: list[str] = []
        videos = train
        for index, step in enumerate(self.steps):
            apply, note = _fit_step(step, videos, self._rng_seed(index))
            videos = apply(videos, "train")
            fitted.append(apply)
            notes.append(note)
        return self._renamed(videos, train.source, notes), fitted

    def apply(self, videos: VideoSet, fitted: list[Apply] | None = None, split: str = "test") -> VideoSet:
        """Transform a non-training split with ``fitted`` (from :meth:`fit`), or without a fit when
        no step needs one."""
        if fitted is None:
            if self.needs_train:
                raise ValueError("this transform fits on the training split: pass fit()'s steps")
            fitted = [_fit_step(step, None, self._rng_seed(i))[0] for i, step in enumerate(self.steps)]
        out = videos
        for apply in fitted:
            out = apply(out, split)
        notes = [f"{step.spec} (fitted on train)" if step.fits_on_train else step.spec for step in self.steps]
        return self._renamed(out, videos.source, notes)

    def _rng_seed(self, index: int) -> list[int]:
        return [self.seed, index]

    def _renamed(self, videos: VideoSet, source: str, notes: list[str]) -> VideoSet:
        return replace(videos, source=f"{source} [transform {', '.join(notes)}; transform_seed {self.seed}]")


def _fit_step(step: Step, train: VideoSet | None, seed: list[int]) -> tuple[Apply, str]:
    """(the step fitted on ``train``, a note for the source). ``train`` may be None for steps
    that do not fit on it."""
    if step.kind == "mean-pool":
        return _per_video(lambda f: f.mean(axis=0, keepdims=True), temporal=True), step.spec
    if step.kind == "segment-pool":
        return _per_video(lambda f: _segment_pool(f, step.size), temporal=True), step.spec
    if step.kind == "random-projection":
        return _random_projection(step.size, seed), step.spec
    if step.kind == "pca":
        assert train is not None
        return _fit_pca(train, step.size), f"{step.spec} (fitted on the {len(train)} training videos)"
    if step.kind == "train-subsample":
        if train is not None and step.size > len(train):
            raise DataError(
                f"{train.source}: train-subsample:{step.size} asks for more videos than the {len(train)} of the training split"
            )
        note = step.spec if train is None else f"{step.spec} (of {len(train)})"
        return _subsample(step.size, seed), note
    raise AssertionError(step.kind)


def _per_video(function: Callable[[np.ndarray], np.ndarray], temporal: bool = False) -> Apply:
    def apply(videos: VideoSet, split: str) -> VideoSet:
        features = [np.ascontiguousarray(function(f), dtype=np.float32) for f in videos.features]
        extras = {k: v for k, v in videos.extras.items() if not (temporal and k in CLIP_INDEXED_EXTRAS)}
        return VideoSet(ids=list(videos.ids), features=features, scores=videos.scores.copy(),
                        source=videos.source, extras=extras, left_out=list(videos.left_out))
    return apply


def _segment_pool(features: np.ndarray, n_segments: int) -> np.ndarray:
    """(T, D) -> (min(T, K), D): the mean of each of K contiguous, nearly equal segments."""
    n_clips = features.shape[0]
    if n_clips <= n_segments:
        return features
    sizes = np.full(n_segments, n_clips // n_segments)
    sizes[: n_clips % n_segments] += 1  # as numpy.array_split cuts: the first segments one clip longer
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return np.add.reduceat(features.astype(np.float64), starts, axis=0) / sizes[:, None]


def _random_projection(dim: int, seed: list[int]) -> Apply:
    matrices: dict[int, np.ndarray] = {}

    def project(f: np.ndarray) -> np.ndarray:
        d_in = f.shape[1]
        if d_in not in matrices:  # drawn from the seed and the input dimension only: the same for both splits
            rng = np.random.default_rng([*seed, d_in, dim])
            matrices[d_in] = rng.normal(0.0, 1.0 / np.sqrt(dim), size=(d_in, dim)).astype(np.float32)
        return f.astype(np.float32) @ matrices[d_in]

    return _per_video(project)


def _fit_pca(train: VideoSet, dim: int) -> Apply:
    d_in, n_clips = train.feature_dim, int(train.lengths.sum())
    if dim > d_in:
        raise DataError(f"{train.source}: pca:{dim} asks for more components than the features' {d_in} dimensions")
    if dim > n_clips - 1:
        raise DataError(f"{train.source}: pca:{dim} needs more than {dim} training clips, there are {n_clips}")
    total = np.zeros(d_in)
    gram = np.zeros((d_in, d_in))
    for f in train.features:  # accumulated, so the clips are never stacked in float64
        f64 = f.astype(np.float64)
        total += f64.sum(axis=0)
        gram += f64.T @ f64
    mean = total / n_clips
    covariance = (gram - n_clips * np.outer(mean, mean)) / (n_clips - 1)
    _, vectors = np.linalg.eigh(covariance)  # ascending eigenvalues
    components = vectors[:, ::-1][:, :dim].T  # (dim, d_in), by decreasing variance
    largest = np.argmax(np.abs(components), axis=1)
    components *= np.sign(components[np.arange(dim), largest])[:, None]
    components32, mean32 = components.T.astype(np.float32), mean.astype(np.float32)
    return _per_video(lambda f: (f.astype(np.float32) - mean32) @ components32)


def _subsample(n_videos: int, seed: list[int]) -> Apply:
    def apply(videos: VideoSet, split: str) -> VideoSet:
        if split != "train" or n_videos >= len(videos):
            return videos
        order = np.argsort(videos.scores, kind="stable")
        rng = np.random.default_rng(seed)
        chosen = [bin_[rng.integers(len(bin_))] for bin_ in np.array_split(order, n_videos)]
        return videos.subset(np.sort(chosen))
    return apply
