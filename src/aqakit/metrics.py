"""Evaluation metrics of action quality assessment (numpy + scipy only).

Rank correlation (Spearman's rho) is the headline metric of the AQA literature; Pearson's r,
the relative L2 distance (R-l2), MSE and MAE complete the picture. All of them are computed
on the original score scale of the benchmark. Correlations of a constant input are undefined
and come back as ``nan`` (never a warning or an exception), so that a model that predicts a
constant never wins checkpoint selection. :func:`aiou` scores temporal action parsing: how well
predicted stage segments overlap the annotated ones.
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

__all__ = [
    "aiou",
    "bootstrap_spearman_ci",
    "evaluate",
    "check_bootstrap_settings",
    "fisher_z",
    "fisher_z_mean",
    "fisher_z_nested",
    "mae",
    "mean_std",
    "mse",
    "pearson",
    "relative_l2",
    "resampled_spearman",
    "rowwise_spearman",
    "spearman",
    "stage_ious",
]

_FISHER_EPS = 1e-7

#: One line explaining the terms the tables print, with where they are defined.
TERMS_NOTE = (
    "R-l2: relative squared error x100, lower is better; Fisher-z: how Spearman values are averaged; "
    "papers' rule: the best test epoch, chosen on test (docs/protocol.md#terms)"
)


def _pair(pred: ArrayLike, true: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs as 1-D float64 arrays of the same length (at least 2), else ValueError."""
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(true, dtype=np.float64)
    if p.ndim != 1 or t.ndim != 1:
        raise ValueError(f"pred and true must be 1-D, got shapes {p.shape} and {t.shape}")
    if p.shape != t.shape:
        raise ValueError(f"pred and true must have the same length, got {p.size} and {t.size}")
    if p.size < 2:
        raise ValueError(f"need at least 2 samples, got {p.size}")
    return p, t


def _is_constant(x: np.ndarray) -> bool:
    return bool(np.all(x == x[0]))


def _correlation(func, pred: ArrayLike, true: ArrayLike) -> float:
    p, t = _pair(pred, true)
    if _is_constant(p) or _is_constant(t):
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        return float(func(p, t)[0])


def spearman(pred: ArrayLike, true: ArrayLike) -> float:
    """Spearman's rank correlation of ``pred`` and ``true`` (ties get average ranks).

    Returns ``nan`` if either input is constant. Raises ValueError if the inputs are not 1-D,
    differ in length or have fewer than 2 items.
    """
    return _correlation(stats.spearmanr, pred, true)


def pearson(pred: ArrayLike, true: ArrayLike) -> float:
    """Pearson's linear correlation of ``pred`` and ``true``.

    Returns ``nan`` if either input is constant. Raises ValueError if the inputs are not 1-D,
    differ in length or have fewer than 2 items.
    """
    return _correlation(stats.pearsonr, pred, true)


def relative_l2(pred: ArrayLike, true: ArrayLike, lo: float, hi: float) -> float:
    """Relative L2 distance (R-l2) as in Yu et al. (CoRe) and GDLT, multiplied by 100.

    ``100 * mean(((pred - true) / (hi - lo)) ** 2)``, computed on the original score scale,
    where ``[lo, hi]`` is the score range of the benchmark (aqakit passes the min/max of the
    training scores). Raises ValueError unless ``hi > lo``.
    """
    p, t = _pair(pred, true)
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        raise ValueError(f"relative_l2 needs a finite range lo < hi, got lo={lo}, hi={hi}")
    return float(100.0 * np.mean(((p - t) / (hi - lo)) ** 2))


def mse(pred: ArrayLike, true: ArrayLike) -> float:
    """Mean squared error on the original score scale."""
    p, t = _pair(pred, true)
    return float(np.mean((p - t) ** 2))


def mae(pred: ArrayLike, true: ArrayLike) -> float:
    """Mean absolute error on the original score scale."""
    p, t = _pair(pred, true)
    return float(np.mean(np.abs(p - t)))


def fisher_z_mean(correlations: Sequence[float] | np.ndarray) -> float:
    """Average of correlations (e.g. one per action class) through Fisher's z-transform.

    ``tanh(mean(arctanh(r)))``, with each ``r`` first clipped to ``(-1 + 1e-7, 1 - 1e-7)`` so that
    a perfect correlation stays finite. Raises ValueError for an empty input, a non-1-D input or
    a NaN (naming its index).
    """
    r = np.asarray(correlations, dtype=np.float64)
    if r.ndim != 1 or r.size == 0:
        raise ValueError(f"need a non-empty 1-D sequence of correlations, got shape {r.shape}")
    bad = np.flatnonzero(np.isnan(r))
    if bad.size:
        raise ValueError(f"correlation at index {int(bad[0])} is NaN (indices {bad.tolist()})")
    return float(fisher_z(r))


def fisher_transform(correlations: np.ndarray) -> np.ndarray:
    """Fisher's z = arctanh(r), each ``r`` first clipped to ``(-1 + 1e-7, 1 - 1e-7)`` so it stays finite."""
    return np.arctanh(np.clip(np.asarray(correlations, dtype=np.float64), -1.0 + _FISHER_EPS, 1.0 - _FISHER_EPS))


def fisher_z(correlations: np.ndarray, axis: int = -1) -> np.ndarray:
    """Fisher-z average along ``axis``, vectorised: :func:`fisher_z_mean` without its input checks.

    Each ``r`` is clipped as there; a NaN gives NaN (for callers that drop undefined rows after).
    """
    return np.tanh(np.mean(fisher_transform(correlations), axis=axis))


def fisher_z_nested(groups: Sequence[np.ndarray]) -> np.ndarray:
    """Fisher-z average of each group over its first axis (e.g. a benchmark's seeds), then of the
    groups: groups of shape (S_g, ...) -> (...). NaN in, NaN out (see :func:`fisher_z`)."""
    return fisher_z(np.stack([fisher_z(group, axis=0) for group in groups]), axis=0)


def mean_std(values: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Mean and sample standard deviation (ddof=1) of per-seed figures; std 0 for one value, NaNs for none."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return {"mean": float("nan"), "std": float("nan")}
    return {"mean": float(array.mean()), "std": float(array.std(ddof=1)) if array.size > 1 else 0.0}


def format_mean_std(stat: dict[str, float], n_values: int, digits: int = 3) -> str:
    """``stat`` (from :func:`mean_std`) as "mean ± std"; one value has no spread, so it reads "value (one seed)"."""
    if n_values == 1:
        return f"{stat['mean']:.{digits}f} (one seed)"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def rowwise_spearman(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Spearman's rho along the last axis, vectorised: pred, true (..., V) -> (...).

    Pearson's r of the (average) ranks of each row pair. No constant-row check: a constant row
    gives ``nan`` (with numpy's division warning), so callers drop such rows first.
    """
    rp = stats.rankdata(pred, axis=-1)
    rt = stats.rankdata(true, axis=-1)
    rp -= rp.mean(axis=-1, keepdims=True)
    rt -= rt.mean(axis=-1, keepdims=True)
    return np.sum(rp * rt, axis=-1) / np.sqrt(np.sum(rp**2, axis=-1) * np.sum(rt**2, axis=-1))


def resampled_spearman(pred: np.ndarray, true: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Spearman's rho of (pred, true) on each resample: pred, true (V,), index (R, V) -> (R,).

    Row ``r`` scores the videos at ``index[r]``; a resample on which either side is constant
    (rho undefined) gives NaN.
    """
    ps, ts = pred[index], true[index]
    valid = (ps.max(axis=1) > ps.min(axis=1)) & (ts.max(axis=1) > ts.min(axis=1))
    rho = np.full(index.shape[0], np.nan)
    if valid.any():
        rho[valid] = rowwise_spearman(ps[valid], ts[valid])
    return rho


def check_bootstrap_settings(n_boot: int, level: float) -> None:
    """ValueError unless ``n_boot`` >= 1 and 0 < ``level`` < 1."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")


def bootstrap_spearman_ci(
    pred: ArrayLike,
    true: ArrayLike,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of Spearman's rho over videos.

    Draws ``n_boot`` resamples of the (pred, true) pairs with replacement from a
    ``numpy.random.default_rng(seed)`` generator, so the interval is reproducible. Resamples in
    which either side is constant (rho undefined) are skipped; if every resample is degenerate
    (a constant input) the interval is ``(nan, nan)``.
    """
    p, t = _pair(pred, true)
    check_bootstrap_settings(n_boot, level)
    rng = np.random.default_rng(seed)
    rho = resampled_spearman(p, t, rng.integers(0, p.size, size=(n_boot, p.size)))
    rho = rho[~np.isnan(rho)]
    if rho.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(rho, [tail, 1.0 - tail])
    return float(low), float(high)


def evaluate(pred: ArrayLike, true: ArrayLike, lo: float, hi: float) -> dict[str, float]:
    """All metrics at once: keys ``spearman``, ``pearson``, ``rl2``, ``mse``, ``mae``.

    ``rl2`` is :func:`relative_l2` (x100) over the score range ``[lo, hi]``. Higher is better for
    the correlations, lower for the errors.
    """
    return {
        "spearman": spearman(pred, true),
        "pearson": pearson(pred, true),
        "rl2": relative_l2(pred, true, lo, hi),
        "mse": mse(pred, true),
        "mae": mae(pred, true),
    }


def stage_ious(pred_transitions: ArrayLike, true_transitions: ArrayLike, lengths: ArrayLike) -> np.ndarray:
    """(N, S) temporal IoU of every video's predicted and annotated stages.

    Transitions (N, S - 1) are the last position of each stage but the final one (FineDiving's
    convention, :mod:`aqakit.data.stages`): they cut positions ``0 .. lengths[i] - 1`` into S
    stages, and stage s of a video is compared with the same stage of the annotation as sets of
    positions (intersection / union of the two inclusive intervals).
    """
    pred, true = np.asarray(pred_transitions, dtype=np.int64), np.asarray(true_transitions, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    if pred.shape != true.shape or pred.ndim != 2 or lengths.shape != (len(pred),):
        raise ValueError(f"transitions {pred.shape} and {true.shape} and lengths {lengths.shape} do not match (N, S - 1), (N,)")
    ends = lengths[:, None] - 1

    def bounds(transitions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        last = np.concatenate([transitions, ends], axis=1)  # (N, S) inclusive ends
        first = np.concatenate([np.zeros_like(ends), transitions + 1], axis=1)  # (N, S) starts
        return first, last

    (p_first, p_last), (t_first, t_last) = bounds(pred), bounds(true)
    intersection = np.clip(np.minimum(p_last, t_last) - np.maximum(p_first, t_first) + 1, 0, None)
    union = (p_last - p_first + 1) + (t_last - t_first + 1) - intersection
    return intersection / union


def aiou(pred_transitions: ArrayLike, true_transitions: ArrayLike, lengths: ArrayLike, threshold: float) -> float:
    """AIoU@threshold (FineDiving, Xu et al. 2022): the share of (video, stage) pairs whose
    :func:`stage_ious` is at least ``threshold`` (0.5 and 0.75 in the papers)."""
    return float(np.mean(stage_ious(pred_transitions, true_transitions, lengths) >= threshold))
