"""Validation splits carved from a training set, spread over the whole score range."""

from __future__ import annotations

import numpy as np

from aqakit.errors import ConfigError, DataError


def carve_validation(
    scores: np.ndarray, fraction: float = 0.2, seed: int = 0
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

    Returns:
        ``(train_idx, val_idx)``: sorted int64 index arrays, disjoint, together covering 0..N-1.

    Raises:
        ConfigError: ``fraction`` is not in (0, 1).
        DataError: scores are not 1-D or not finite, or the set is too small to leave at least
        one training and one validation video.
    """
    fraction = float(fraction)
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"validation fraction must be in (0, 1), got {fraction}")
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1:
        raise DataError(f"validation split: scores must be 1-D, got shape {scores.shape}")
    if not np.isfinite(scores).all():
        bad = int(np.argmin(np.isfinite(scores)))
        raise DataError(f"validation split: score at index {bad} is {scores[bad]}")
    n = len(scores)
    if n < 2:
        raise DataError(
            f"validation split: {n} video(s) cannot leave at least 1 for training and 1 for validation"
        )
    n_val = min(max(int(round(n * fraction)), 1), n - 1)
    order = np.argsort(scores, kind="stable")
    rng = np.random.default_rng(seed)
    val = np.array([bin_[rng.integers(len(bin_))] for bin_ in np.array_split(order, n_val)], dtype=np.int64)
    is_val = np.zeros(n, dtype=bool)
    is_val[val] = True
    return np.flatnonzero(~is_val).astype(np.int64), np.sort(val)
