"""A synthetic AQA benchmark with planted, learnable structure (no files needed).

Each video is a performance of ``P`` procedures in order, each a contiguous run of clips of
random length. Procedure ``p`` performed with hidden quality ``q_p ~ U(0, 1)`` produces clips

    feature = identity_p + q_p * quality_gain * quality_p + scene_video + clip_noise

where ``identity_p`` (what the procedure is) and ``quality_p`` (how well it was done: a unit
direction) are fixed for the benchmark, drawn from ``structure_seed`` independently of the
split seed so train and test share them. ``scene_video`` (a per-video vector in a random
subspace, e.g. venue and camera) and ``clip_noise`` are nuisance unrelated to the score, with
far more variance than the quality signal, as in features of a backbone trained for
recognition. The judges' score is

    score = SCORE_LO + (SCORE_HI - SCORE_LO) * (sum_p difficulty_p * q_p / sum_p difficulty_p + noise * N(0, 1))

with fixed difficulties, so scores lie around 20..80: nothing may assume scores in [0, 1].
The hidden truth is kept in ``VideoSet.extras``: ``procedure_quality`` (N, P),
``procedure_start`` (N, P) (the first clip of each procedure) and ``oracle_score`` (N,) (the
score without judge noise: the best any model could predict).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from aqakit.data.videoset import VideoSet
from aqakit.errors import ConfigError

#: Seed of the structure (procedure identities, quality directions, difficulties, scene subspace).
STRUCTURE_SEED = 20240607
#: The score range that a raw quality of 0 and 1 map to.
SCORE_LO, SCORE_HI = 20.0, 80.0


@dataclass(frozen=True)
class SyntheticStructure:
    """What all sets of one synthetic benchmark share.

    Attributes:
        identity: (P, D) what each procedure looks like.
        quality_dirs: (P, D) unit direction along which each procedure's quality shows.
        difficulty: (P,) weight of each procedure's quality in the score.
        scene_basis: (D, K) subspace of the per-video nuisance ("scene").
    """

    identity: np.ndarray
    quality_dirs: np.ndarray
    difficulty: np.ndarray
    scene_basis: np.ndarray

    @classmethod
    def create(cls, dim: int, n_procedures: int, structure_seed: int = STRUCTURE_SEED) -> "SyntheticStructure":
        """Draw the structure; each part from its own stream, so difficulties do not depend on ``dim``."""
        streams = [np.random.default_rng([structure_seed, k]) for k in range(4)]
        quality_dirs = streams[1].normal(0.0, 1.0, size=(n_procedures, dim))
        quality_dirs /= np.linalg.norm(quality_dirs, axis=1, keepdims=True)
        k = max(1, dim // 8)
        return cls(
            identity=streams[0].normal(0.0, 1.0, size=(n_procedures, dim)),
            quality_dirs=quality_dirs,
            difficulty=streams[2].uniform(0.5, 1.5, size=n_procedures),
            scene_basis=streams[3].normal(0.0, 1.0, size=(dim, k)) / np.sqrt(k),
        )

    def oracle_scores(self, quality: np.ndarray) -> np.ndarray:
        """(N,) noise-free scores of hidden qualities (N, P), on the [SCORE_LO, SCORE_HI] scale."""
        raw = np.asarray(quality, dtype=np.float64) @ self.difficulty / self.difficulty.sum()
        return SCORE_LO + (SCORE_HI - SCORE_LO) * raw


def make_synthetic(
    n_videos: int,
    dim: int = 64,
    min_clips: int = 20,
    max_clips: int = 60,
    n_procedures: int = 4,
    noise: float = 0.03,
    seed: int | Sequence[int] = 0,
    *,
    quality_gain: float = 3.0,
    scene_scale: float = 3.0,
    clip_noise: float = 1.0,
    length_concentration: float = 8.0,
    structure_seed: int = STRUCTURE_SEED,
    source: str | None = None,
    id_prefix: str = "syn",
) -> VideoSet:
    """Generate ``n_videos`` scored videos with planted structure (see the module docstring).

    Args:
        n_videos: number of videos (>= 1).
        dim: feature dimension D.
        min_clips: each video has T ~ U{min_clips..max_clips} clips (``min_clips >= n_procedures``
            so every procedure has at least one clip).
        max_clips: the most clips a video has.
        n_procedures: procedures per video, P.
        noise: judge-noise standard deviation, as a fraction of the score range.
        seed: seed of this set (videos, lengths, qualities, nuisance); an int or a sequence of
            ints (as :func:`numpy.random.default_rng` takes).
        quality_gain: length of the quality signal ``q * quality_p`` per clip.
        scene_scale: per-dimension std of the per-video scene vector.
        clip_noise: per-dimension std of the per-clip noise.
        length_concentration: procedures take Dirichlet(length_concentration) shares of
            the clips: large values give procedures of similar length, 1 uniformly random cuts.
        structure_seed: seed of the structure shared by all sets of one benchmark.
        source: name of the set in messages (default describes the seed).
        id_prefix: video ids are ``<id_prefix>00000``, ... (give each split its own prefix).

    Returns:
        A :class:`VideoSet` with ids ``<id_prefix>00000``, ..., float32 features and float64 scores.

    Raises:
        ConfigError: an argument out of range.
    """
    _check_args(n_videos, dim, min_clips, max_clips, n_procedures, noise, length_concentration)
    structure = SyntheticStructure.create(dim, n_procedures, structure_seed)
    identity, quality_dirs, scene_basis = structure.identity, structure.quality_dirs, structure.scene_basis

    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_clips, max_clips + 1, size=n_videos)
    quality = rng.uniform(0.0, 1.0, size=(n_videos, n_procedures))
    oracle = structure.oracle_scores(quality)
    scores = oracle + (SCORE_HI - SCORE_LO) * noise * rng.normal(size=n_videos)

    features: list[np.ndarray] = []
    starts = np.zeros((n_videos, n_procedures), dtype=np.int64)
    for i, n_clips in enumerate(lengths):
        segment_lengths = _segment_lengths(rng, int(n_clips), n_procedures, length_concentration)
        starts[i, 1:] = np.cumsum(segment_lengths)[:-1]
        procedure = np.repeat(np.arange(n_procedures), segment_lengths)  # (T,) procedure of each clip
        scene = scene_basis @ rng.normal(0.0, scene_scale, size=scene_basis.shape[1])
        clips = (
            identity[procedure]
            + (quality_gain * quality[i, procedure])[:, None] * quality_dirs[procedure]
            + scene
            + rng.normal(0.0, clip_noise, size=(n_clips, dim))
        )
        features.append(np.ascontiguousarray(clips, dtype=np.float32))

    ids = [f"{id_prefix}{i:05d}" for i in range(n_videos)]
    return VideoSet(
        ids=ids,
        features=features,
        scores=scores,
        source=source or f"synthetic(seed={seed})",
        extras={"procedure_quality": quality, "procedure_start": starts, "oracle_score": oracle},
    )


def _segment_lengths(rng: np.random.Generator, n_clips: int, n_procedures: int, concentration: float) -> np.ndarray:
    """(P,) clip counts >= 1 summing to ``n_clips``: one clip each plus Dirichlet shares of the rest."""
    spare = n_clips - n_procedures
    shares = rng.dirichlet(np.full(n_procedures, concentration))
    extra = np.floor(shares * spare).astype(np.int64)
    # hand the clips lost to flooring to the procedures with the largest remainders
    leftover = spare - int(extra.sum())
    extra[np.argsort(extra - shares * spare)[:leftover]] += 1
    return extra + 1


def _check_args(
    n_videos: int, dim: int, min_clips: int, max_clips: int, n_procedures: int, noise: float, length_concentration: float
) -> None:
    if int(n_videos) < 1:
        raise ConfigError(f"synthetic: n_videos must be >= 1, got {n_videos}")
    if int(dim) < 1:
        raise ConfigError(f"synthetic: dim must be >= 1, got {dim}")
    if int(n_procedures) < 1:
        raise ConfigError(f"synthetic: n_procedures must be >= 1, got {n_procedures}")
    if int(min_clips) < int(n_procedures):
        raise ConfigError(
            f"synthetic: min_clips ({min_clips}) must be >= n_procedures ({n_procedures})"
        )
    if int(max_clips) < int(min_clips):
        raise ConfigError(f"synthetic: max_clips ({max_clips}) must be >= min_clips ({min_clips})")
    if not float(noise) >= 0.0:
        raise ConfigError(f"synthetic: noise must be >= 0, got {noise}")
    if not float(length_concentration) > 0.0:
        raise ConfigError(f"synthetic: length_concentration must be > 0, got {length_concentration}")
