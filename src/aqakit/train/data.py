"""The data of a run: the benchmark's splits, the validation split each seed carves, the held-out
batches, and the fingerprint a resumed run is checked against."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aqakit.data.benchmarks import FileBenchmark, get_benchmark
from aqakit.data.exemplars import ExemplarPool, HeldOutBatches, held_out_batches
from aqakit.data.scale import ScoreScale
from aqakit.data.splits import carve_fold, carve_validation
from aqakit.data.videoset import VideoSet
from aqakit.errors import DataError
from aqakit.train.config import RunConfig, TrainConfig, require_data_root
from aqakit.video.manifest import read_manifest


@dataclass
class Splits:
    """The data of a run: what trains, what selects (val) and what is reported (test)."""

    train: VideoSet
    test: VideoSet | None  # None: the run never scores the test split (train.evaluate_test=false)
    val: VideoSet | None
    scale: ScoreScale


def read_data(config: RunConfig, *, with_test: bool | None = None) -> Splits:
    """Read the benchmark's official train (and test) sets and fix the score scale.

    ``with_test`` None follows ``train.evaluate_test``: a tuning run does not even read the
    test features from disk. The score scale comes from the training set (or ``score_range``).
    """
    benchmark = get_benchmark(config.benchmark, **config.benchmark_args)
    root = require_data_root(benchmark, config.data_root)
    with_test = config.train.evaluate_test if with_test is None else with_test
    train = benchmark.load(root, "train")
    test = benchmark.load(root, "test") if with_test else None
    check_splits(train, test)
    scale = ScoreScale(*config.score_range) if config.score_range else benchmark.score_scale(train)
    return Splits(train=train, test=test, val=None, scale=scale)


def check_splits(train: VideoSet, test: VideoSet | None) -> None:
    """DataError unless the training scores vary, the test split has the two videos a Spearman
    needs, and no video is in both splits."""
    if np.ptp(train.scores) == 0:
        raise DataError(
            f"{train.source}: all {len(train)} training scores are {train.scores[0]:g}; "
            "a model cannot learn from scores that do not vary"
        )
    if test is None:
        return
    if len(test) < 2:
        raise DataError(f"{test.source}: the test split has {len(test)} video; test metrics (Spearman) need at least 2")
    both = sorted(set(train.ids) & set(test.ids))
    if both:
        shown = ", ".join(both[:5]) + (f" and {len(both) - 5} more" if len(both) > 5 else "")
        raise DataError(f"{len(both)} video(s) are in both the training and the test split: {shown}")


def seed_splits(data: Splits, config: RunConfig, seed: int) -> Splits:
    """The splits seed ``seed`` trains on.

    First a validation split is carved out of the training set when ``best-val`` selects or
    ``train.val_folds`` asks for k-fold validation (seed ``s`` validates on fold ``s mod k`` of one
    partition, drawn with seed 0, so seeds 0..k-1 validate on every training video once). Then,
    with ``train.train_fraction`` below 1, the seed trains on that share of what is left, drawn
    score-stratified with the seed (as :func:`carve_validation` draws, keeping one part): a
    learning curve at a smaller training set, over the same validation videos.
    """
    train_cfg = config.train
    if not train_cfg.carves_validation and train_cfg.train_fraction == 1:
        return data
    train_idx, val = np.arange(len(data.train.scores)), None
    if train_cfg.val_folds is not None:
        fold = seed % train_cfg.val_folds
        train_idx, val_idx = carve_fold(data.train.scores, train_cfg.val_folds, fold)
        val = data.train.subset(val_idx, source=f"{data.train.source} (validation fold {fold} of {train_cfg.val_folds})")
    elif train_cfg.select == "best-val":
        train_idx, val_idx = carve_validation(data.train.scores, train_cfg.val_fraction, seed, min_val=2)
        val = data.train.subset(val_idx, source=f"{data.train.source} (validation part)")
    if val is not None and len(val) < 2:
        raise DataError(
            f"{val.source}: {len(val)} video; a validation Spearman needs at least 2, so {train_cfg.val_folds} folds "
            f"need at least {2 * train_cfg.val_folds} training videos (there are {len(data.train)})"
        )
    if train_cfg.train_fraction < 1:
        kept, _ = carve_validation(data.train.scores[train_idx], 1.0 - train_cfg.train_fraction, seed)
        train_idx = train_idx[kept]
    return Splits(train=data.train.subset(train_idx), test=data.test, val=val, scale=data.scale)


def feature_extraction_info(config: RunConfig) -> dict[str, Any]:
    """``{"features": settings}`` when the run's feature folder was written by ``aqakit extract``.

    The settings (backbone, weights hash, clip length, fps, crop) go into every checkpoint so
    ``aqakit score`` extracts a new video the way the training features were made; with a
    foreground stream (``foreground=true``) its folder's settings too, under ``"foreground"``.
    """
    benchmark = get_benchmark(config.benchmark, **config.benchmark_args)
    if not isinstance(benchmark, FileBenchmark):
        return {}
    try:
        feature_dir = benchmark.feature_dir(Path(config.data_root) if config.data_root else None)
    except DataError:
        return {}
    manifest = read_manifest(feature_dir)
    if not manifest:
        return {}
    info = {"features": manifest["extraction"]}
    foreground = read_manifest(feature_dir.parent / "foreground") if benchmark.options.get("foreground") else None
    if foreground is not None:  # the foreground stream F beside it (aqakit extract --masks)
        info["foreground"] = foreground["extraction"]
    return info


def data_fingerprint(data: Splits) -> dict[str, Any]:
    """What a resumed run must still train and test on: per split its number of videos and a
    SHA-256 of its ids and scores (the features themselves are not hashed)."""

    def of(videos: VideoSet | None) -> dict[str, Any] | None:
        if videos is None:
            return None
        text = "\n".join(f"{vid}\t{score!r}" for vid, score in zip(videos.ids, videos.scores.tolist()))
        return {"videos": len(videos), "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}

    return {"train": of(data.train), "test": of(data.test)}


def left_out_videos(data: Splits) -> dict[str, list[str]]:
    """Per split, the labelled videos its benchmark left out for want of a feature file (only with
    the benchmark's ``allow_missing`` option); splits that left none out are not listed."""
    sets = {"train": data.train, "test": data.test}
    return {split: list(videos.left_out) for split, videos in sets.items() if videos is not None and videos.left_out}


def held_out_sets(
    splits: Splits, train_cfg: TrainConfig, exemplars: tuple[ExemplarPool, int, int] | None = None
) -> tuple[dict[str, tuple[HeldOutBatches, VideoSet]], dict[str, tuple[HeldOutBatches, np.ndarray]]]:
    """Batches of the val/test sets, built once: every held-out set (for the final evaluation)
    and those evaluated after every epoch (with their true scores).

    ``exemplars`` (pool, M, seed) attaches M exemplars from the training pool to every video, for
    a pair model.
    """
    held_out = {
        name: (held_out_batches(videos, train_cfg.eval_batch_size, exemplars), videos)
        for name, videos in (("val", splits.val), ("test", splits.test))
        if videos is not None
    }
    per_epoch = {"val"} | ({"test"} if train_cfg.eval_test_every_epoch or train_cfg.select == "best-test" else set())
    eval_sets = {name: (batches, videos.scores) for name, (batches, videos) in held_out.items() if name in per_epoch}
    return held_out, eval_sets


def checkpoint_info(config: RunConfig, seed: int, train_scores: np.ndarray) -> dict[str, Any]:
    """What a seed's checkpoint records about its data (and how its features were extracted), with
    the scores of the videos it was fitted on, sorted (a score report places a new score among them)."""
    return {"benchmark": config.benchmark, "benchmark_args": config.benchmark_args, "seed": seed,
            **feature_extraction_info(config), "training_scores": sorted(float(s) for s in train_scores)}
