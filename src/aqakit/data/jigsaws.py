"""JIGSAWS surgical skill (Gao et al. 2014) under MUSDL's 4-fold protocol: ``jigsaws-suturing``,
``jigsaws-knot-tying`` and ``jigsaws-needle-passing``.

The data folder holds two pickles, read without running code:

- ``label.pkl``: trial name (``Suturing_B001``) -> its six GRS items, each 1-5; the score is their
  sum, 6-30, on the fixed scale [6, 30];
- ``splits.pkl``: task (``Suturing``, ``Knot_Tying``, ``Needle_Passing``) -> four folds, each a list
  of trial names.

The option ``fold`` (0-3) chooses the split: **fold k is the test set of split k**, the other three
folds are its training set. It has no default: papers report the Fisher-z mean of the test Spearman
over the four splits, which ``aqakit train MODEL jigsaws-suturing --folds all`` trains
(:mod:`aqakit.train.folds`); ``benchmark_args.fold=K`` reads one split. Features are
``<root>/features/<trial>_capture1.npy`` (the first view of the stereo endoscope; ``features_dir``
moves the folder). A labelled trial without a feature file is a DataError naming the file and how
many are missing, unless ``allow_missing=true``: the trials are then left out and recorded
(:attr:`~aqakit.data.videoset.VideoSet.left_out`, the run's summary).
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from aqakit.data.benchmarks import FileBenchmark, check_split, register_benchmark
from aqakit.data.features import feature_path
from aqakit.data.labels import ScoredIds, read_label_pickle
from aqakit.data.scale import ScoreScale
from aqakit.data.videoset import VideoSet
from aqakit.errors import ConfigError, DataError


class Jigsaws(FileBenchmark):
    """One JIGSAWS task, scored by the sum of its six GRS items, on one split of the 4-fold protocol."""

    family = "jigsaws"
    #: registry suffix -> the task's name in the pickles (and its trials' prefix).
    TASKS: ClassVar[dict[str, str]] = {
        "suturing": "Suturing", "knot-tying": "Knot_Tying", "needle-passing": "Needle_Passing",
    }
    LABEL_FILE: ClassVar[str] = "label.pkl"
    SPLIT_FILE: ClassVar[str] = "splits.pkl"
    #: The feature file of a trial is ``<trial><FEATURE_SUFFIX>.npy`` (the first camera's video).
    FEATURE_SUFFIX: ClassVar[str] = "_capture1"
    FOLDS: ClassVar[tuple[int, ...]] = (0, 1, 2, 3)
    GRS_ITEMS: ClassVar[int] = 6
    GRS_RANGE: ClassVar[tuple[float, float]] = (1.0, 5.0)
    #: The fixed score scale: six items of 1-5.
    SCALE: ClassVar[ScoreScale] = ScoreScale(6.0, 30.0)
    option_defaults: ClassVar[dict[str, Any]] = {"fold": None, "allow_missing": False, "features_dir": None}
    option_types: ClassVar[dict[str, type]] = {"fold": int, "features_dir": Path}

    def __init__(self, task: str, **options: Any) -> None:
        if task not in self.TASKS:
            raise ConfigError(f"unknown JIGSAWS task '{task}' (valid: {', '.join(self.TASKS)})")
        self.task = self.TASKS[task]
        self.name = f"jigsaws-{task}"
        self.description = f"JIGSAWS surgical skill, {task.replace('-', ' ')}: GRS total (6-30), 4-fold protocol"
        super().__init__(**options)
        fold = self.options["fold"]
        if fold is not None and fold not in self.FOLDS:
            raise ConfigError(
                f"benchmark '{self.name}': fold {fold} does not exist (its official folds: {_listed(self.FOLDS)})"
            )

    @property
    def official_folds(self) -> tuple[int, ...]:
        return self.FOLDS

    def layout(self) -> str:
        return (
            f"JIGSAWS layout: <root>/{self.LABEL_FILE} (trial -> six GRS items), <root>/{self.SPLIT_FILE} "
            f"(task -> 4 folds of trials), <root>/features/<trial>{self.FEATURE_SUFFIX}.npy"
        )

    def score_scale(self, train: VideoSet) -> ScoreScale:
        return self.SCALE

    def owns_feature(self, video_id: str) -> bool:
        return video_id.startswith(f"{self.task}_")

    def read_labels(self, root: Path | None, split: str) -> ScoredIds:
        """The trials of ``split`` of the chosen fold: its test fold, or the other three folds in order.

        Raises:
            ConfigError: no ``fold`` chosen.
            DataError: missing or malformed pickle, a trial in two folds or without a GRS label.
        """
        check_split(split)
        fold = self.options["fold"]
        if fold is None:
            raise ConfigError(
                f"benchmark '{self.name}' has {len(self.FOLDS)} official folds ({_listed(self.FOLDS)}): "
                "--folds all trains each (the protocol papers report), --folds K or benchmark_args.fold=K one"
            )
        label_path = self._label_file(root, self.LABEL_FILE)
        split_path = self._label_file(root, self.SPLIT_FILE)
        grs = read_label_pickle(label_path)
        if not isinstance(grs, dict):
            raise DataError(f"{label_path}: expected a dict of trial -> six GRS items")
        folds = self._task_folds(read_label_pickle(split_path), split_path)
        chosen = [fold] if split == "test" else [k for k in self.FOLDS if k != fold]
        trials = [trial for k in chosen for trial in folds[k]]
        scores = []
        for trial in trials:
            if trial not in grs:
                raise DataError(f"{split_path}: {self.task} trial {trial!r} has no GRS label in {label_path}")
            scores.append(self._grs_total(grs[trial], f"{label_path} trial {trial!r}"))
        named = "fold" if len(chosen) == 1 else "folds"
        source = f"{split_path} ({self.task} split {fold} {split}: {named} {_listed(chosen)})"
        return ScoredIds(ids=[f"{trial}{self.FEATURE_SUFFIX}" for trial in trials],
                         scores=np.asarray(scores, dtype=np.float64), lines=list(range(1, len(trials) + 1)),
                         source=source)

    def read_features(self, feature_dir: Path, labels: ScoredIds) -> VideoSet:
        """The labelled trials' features; with ``allow_missing`` the trials without a file are left out
        (and recorded in the set's ``left_out``), else they are a DataError naming the first and their count."""
        present = [feature_path(feature_dir, video_id).is_file() for video_id in labels.ids]
        missing = [video_id for video_id, found in zip(labels.ids, present) if not found]
        if missing and not self.options["allow_missing"]:
            raise DataError(
                f"{feature_path(feature_dir, missing[0])}: feature file not found ({len(missing)} of the "
                f"{len(labels.ids)} trials in {labels.source} have no feature file; "
                "benchmark_args.allow_missing=true leaves them out and records them)"
            )
        kept = [i for i, found in enumerate(present) if found]
        videos = super().read_features(feature_dir, ScoredIds(
            ids=[labels.ids[i] for i in kept], scores=labels.scores[kept], lines=[labels.lines[i] for i in kept],
            source=labels.source,
        ))
        videos.left_out = missing
        return videos

    def _task_folds(self, splits: Any, path: Path) -> list[list[str]]:
        """The task's four folds from ``splits.pkl``; DataError for another structure or a trial in two folds."""
        if not isinstance(splits, dict) or self.task not in splits:
            tasks = ", ".join(map(str, splits)) if isinstance(splits, dict) else "none: not a dict"
            raise DataError(f"{path}: no task '{self.task}' (tasks: {tasks})")
        folds = splits[self.task]
        if not isinstance(folds, (list, tuple)) or len(folds) != len(self.FOLDS):
            count = len(folds) if isinstance(folds, (list, tuple)) else "no list of"
            raise DataError(f"{path}: task '{self.task}' has {count} folds, expected {len(self.FOLDS)}")
        for k, trials in enumerate(folds):
            if not isinstance(trials, (list, tuple)) or not trials:
                raise DataError(f"{path}: {self.task} fold {k} is not a non-empty list of trial names")
            for trial in trials:
                if not isinstance(trial, str) or not self.owns_feature(trial):
                    raise DataError(f"{path}: {self.task} fold {k} lists {trial!r}, not a {self.task} trial")
        fold_of: dict[str, int] = {}
        for k, trials in enumerate(folds):
            for trial in trials:
                if trial in fold_of:
                    raise DataError(f"{path}: {self.task} trial {trial!r} is in fold {fold_of[trial]} and fold {k}")
                fold_of[trial] = k
        return [list(trials) for trials in folds]

    def _grs_total(self, items: Any, where: str) -> float:
        """The sum of six GRS items of 1-5; DataError naming ``where`` otherwise."""
        lo, hi = self.GRS_RANGE
        try:
            values = [float(value) for value in items]
        except (TypeError, ValueError):
            values = []
        if len(values) != self.GRS_ITEMS or not all(math.isfinite(v) and lo <= v <= hi for v in values):
            raise DataError(f"{where}: GRS items {items!r} are not {self.GRS_ITEMS} numbers from {lo:g} to {hi:g}")
        return float(sum(values))


def _listed(values: Any) -> str:
    return ", ".join(map(str, values))


for _task in Jigsaws.TASKS:
    register_benchmark(f"jigsaws-{_task}", partial(Jigsaws, _task))
