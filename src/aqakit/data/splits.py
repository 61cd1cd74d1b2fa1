"""Validation splits carved from a training set, spread over the whole score range: one held-out
fraction (:func:`carve_validation`) or the folds of a k-fold partition (:func:`carve_fold`)."""

from __future__ import annotations

import numpy as np

from aqakit.errors import ConfigError, DataError


def carve_validation(
    scores: np.ndarray, fraction: float = 0.2, seed: int = 0, min_val: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Split a training set into (train, validation) indices, stratified by score.

    The videos are sorted by score and cut into ``round(N * fraction)`` consecutive bins of
    about ``1 / fraction`` videos each; one video of each bin, drawn with a seeded
    :func:`numpy.random.default_rng`, goes to validation. The validation set therefore holds
    about ``fraction`` of the videos and spans low to high scores.

    Args:
        scores: (N,) scores of the training set.
        fraction: share of videos for validation, in (0, 1).
        seed: seed of the draw (the same scores and seed give the same split).
        min_val: the validation part keeps at least this many videos (2 for a validation
            Spearman), however small ``N * fraction`` is.

    Returns:
        ``(train_idx, val_idx)``: sorted int64 index arrays, disjoint, together covering 0..N-1.

    Raises:
        ConfigError: ``fraction`` is not in (0, 1).
        DataError: scores are not 1-D or not finite, or the set is too small to leave at least
            one training and ``min_val`` validation videos.
    """
    fraction = float(fraction)
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"validation fraction must be in (0, 1), got {fraction}")
    scores = checked_scores(scores, min_videos=max(min_val, 1) + 1)
    n = len(scores)
    n_val = min(max(int(round(n * fraction)), min_val, 1), n - 1)
    order = np.argsort(scores, kind="stable")
    rng = np.random.default_rng(seed)
    val = np.array([bin_[rng.integers(len(bin_))] for bin_ in np.array_split(order, n_val)], dtype=np.int64)
    is_val = np.zeros(n, dtype=bool)
    is_val[val] = True
    return np.flatnonzero(~is_val).astype(np.int64), np.sort(val)


def carve_fold(
    scores: np.ndarray, n_folds: int, fold: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split a training set into (train, validation) indices for one fold of a k-fold partition.

    The videos are sorted by score and cut into consecutive bins of ``n_folds`` videos; inside each
    bin a seeded permutation gives every video a different fold. Fold ``f`` validates on the videos
    assigned ``f`` and trains on the rest, so the ``n_folds`` validation sets are disjoint, together
    cover every video once, and each spans low to high scores. The partition depends only on the
    scores and ``seed``, so every fold of one partition is carved consistently.

    Args:
        scores: (N,) scores of the training set, N >= ``n_folds``.
        n_folds: number of folds k, at least 2.
        fold: which fold validates, in [0, k).
        seed: seed of the partition.

    Returns:
        ``(train_idx, val_idx)``: sorted int64 index arrays, disjoint, together covering 0..N-1.

    Raises:
        ConfigError: ``n_folds`` below 2 or ``fold`` outside [0, k).
        DataError: scores are not 1-D or not finite, or fewer than ``n_folds`` videos.
    """
    if n_folds < 2:
        raise ConfigError(f"k-fold validation needs at least 2 folds, got {n_folds}")
    if not 0 <= fold < n_folds:
        raise ConfigError(f"fold {fold} is outside 0..{n_folds - 1}")
    scores = checked_scores(scores, min_videos=n_folds)
    order = np.argsort(scores, kind="stable")
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(scores), dtype=np.int64)
    for start in range(0, len(scores), n_folds):
        bin_ = order[start : start + n_folds]
        fold_of[bin_] = rng.permutation(n_folds)[: len(bin_)]
    is_val = fold_of == fold
    return np.flatnonzero(~is_val).astype(np.int64), np.flatnonzero(is_val).astype(np.int64)


def checked_scores(scores: np.ndarray, min_videos: int) -> np.ndarray:
    """``scores`` as a finite 1-D float64 array of at least ``min_videos`` items, else a DataError."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1:
        raise DataError(f"validation split: scores must be 1-D, got shape {scores.shape}")
    if not np.isfinite(scores).all():
        bad = int(np.argmin(np.isfinite(scores)))
        raise DataError(f"validation split: score at index {bad} is {scores[bad]}")
    if len(scores) < min_videos:
        raise DataError(
            f"validation split: {len(scores)} training video(s), at least {min_videos} needed "
            f"to leave videos to train on beside the validation videos"
        )
    return scores
