"""A confounded synthetic benchmark: the background tracks the score in training only.

Each video is ``S`` stages in order (planted transitions, ``extras["transition_clips"]``). Its
clips come in two streams on one clip grid, stored side by side as features ``[O | F]`` (T, 2D),
the layout FineCausal reads (:func:`aqakit.data.features.with_foreground`):

    F (foreground, the athlete) = identity_s + q_s * quality_gain * quality_s + clip_noise
    O (whole frame)             = F + background_video

``q_s ~ U(0, 1)`` is stage ``s``'s hidden quality and the judges' score is
``SCORE_LO + (SCORE_HI - SCORE_LO) * (mean_s q_s + noise * N(0, 1))``. The background is one
vector per video along the stages' quality directions (so it shifts exactly what a reader of the
quality looks at): ``background_video = background_scale * c * sum_s quality_s / sqrt(S)``. In a
``confounded`` set ``c = rho * z + sqrt(1 - rho^2) * N(0, 1)`` with ``z`` the standardised
noise-free score (so it correlates with the score, as venue or competition level does, and tells
nothing the foreground does not); in a ``broken`` set ``c ~ N(0, 1)``, unrelated to the score. A
model that reads the foreground stream is unaffected; one that mixes the background in learns
the correlation in training and pays for it at test. Extras: ``stage_quality`` (N, S),
``oracle_score`` (N,), ``background`` (N,) the value of ``c``, ``transition_clips`` (N, S - 1).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from aqakit.data.stages import TRANSITION_CLIPS
from aqakit.data.synthetic import SCORE_HI, SCORE_LO, STRUCTURE_SEED, _segment_lengths
from aqakit.data.videoset import VideoSet
from aqakit.errors import ConfigError


def make_confounded(
    n_videos: int,
    *,
    confounded: bool,
    dim: int = 16,
    min_clips: int = 12,
    max_clips: int = 24,
    n_stages: int = 3,
    rho: float = 0.9,
    background_scale: float = 3.0,
    quality_gain: float = 3.0,
    clip_noise: float = 0.3,
    noise: float = 0.02,
    seed: int | Sequence[int] = 0,
    id_prefix: str = "conf",
) -> VideoSet:
    """``n_videos`` two-stream videos (see the module docstring); ``confounded`` (train) or broken (test).

    Raises:
        ConfigError: an argument out of range.
    """
    if n_videos < 2 or dim < 1 or n_stages < 2 or min_clips < n_stages or max_clips < min_clips:
        raise ConfigError(f"confounded synthetic: need n_videos >= 2, dim >= 1, n_stages >= 2 and "
                          f"n_stages <= min_clips <= max_clips (got {n_videos}, {dim}, {n_stages}, {min_clips}, {max_clips})")
    if not 0.0 <= rho <= 1.0:
        raise ConfigError(f"confounded synthetic: rho must be in [0, 1], got {rho}")
    structure = [np.random.default_rng([STRUCTURE_SEED, 100 + k]) for k in range(2)]
    identity = structure[0].normal(size=(n_stages, dim))  # (S, D)
    quality_dirs = structure[1].normal(size=(n_stages, dim))
    quality_dirs /= np.linalg.norm(quality_dirs, axis=1, keepdims=True)  # (S, D)
    background_dir = quality_dirs.sum(axis=0) / np.sqrt(n_stages)  # (D,)

    rng = np.random.default_rng(seed)
    quality = rng.uniform(size=(n_videos, n_stages))
    oracle = SCORE_LO + (SCORE_HI - SCORE_LO) * quality.mean(axis=1)
    scores = oracle + (SCORE_HI - SCORE_LO) * noise * rng.normal(size=n_videos)
    standardised = (oracle - oracle.mean()) / (oracle.std() or 1.0)
    free = rng.normal(size=n_videos)
    background = rho * standardised + np.sqrt(1.0 - rho ** 2) * free if confounded else free
    lengths = rng.integers(min_clips, max_clips + 1, size=n_videos)

    features, transitions = [], np.zeros((n_videos, n_stages - 1), dtype=np.int64)
    for i, n_clips in enumerate(lengths):
        stage_lengths = _segment_lengths(rng, int(n_clips), n_stages, 4.0)
        transitions[i] = np.cumsum(stage_lengths)[:-1] - 1  # the last clip of each stage but the final one
        stage = np.repeat(np.arange(n_stages), stage_lengths)  # (T,)
        foreground = (identity[stage] + (quality_gain * quality[i, stage])[:, None] * quality_dirs[stage]
                      + rng.normal(0.0, clip_noise, size=(n_clips, dim)))  # (T, D)
        whole = foreground + background_scale * background[i] * background_dir
        features.append(np.concatenate([whole, foreground], axis=1).astype(np.float32))
    return VideoSet(
        ids=[f"{id_prefix}{i:05d}" for i in range(n_videos)], features=features, scores=scores,
        source=f"confounded synthetic ({'confounded' if confounded else 'broken'}, seed={seed})",
        extras={"stage_quality": quality, "oracle_score": oracle, "background": background, TRANSITION_CLIPS: transitions},
    )
