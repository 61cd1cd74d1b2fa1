"""Exemplars: training videos of known score that pair models (TPT, CoRe-style) score a video against.

A pair model predicts the *difference* between a query video's score and an exemplar's; its
prediction is the exemplar's score plus that difference, averaged over several exemplars at test.
This module chooses the exemplars and attaches them to batches:

- :class:`ExemplarPool` holds the training videos (their clips in a :class:`ClipBank`, scores,
  ids) grouped by an optional key (a ``VideoSet.extras`` entry such as a dive number or a
  difficulty degree): exemplars are drawn from the query's own group;
- :class:`ExemplarBatches` wraps training or evaluation batches and adds the exemplars:
  in training one per video, drawn afresh every epoch, never the video itself; at test ``M`` per
  video, deterministic for a given seed and video id whatever the batch it lands in.

A batch with exemplars carries, beside the query's keys, ``exemplar_features`` (U, T', D) and
``exemplar_mask`` (U, T') for the U distinct exemplars of the batch (each encoded once),
``exemplar_index`` (B, M) rows of those for every query and ``exemplar_score`` (B, M) their
scores on the original scale; when the videos have degrees of difficulty (``extras["difficulty"]``),
``exemplar_difficulty`` (B, M) too, beside the queries' own ``difficulty`` (B,).
:class:`Exemplars` is the same, as the model receives it.

A video whose group holds no other training video is paired with any training video instead
(``fallback="any"``, counted in :attr:`ExemplarPool.fallbacks` and reported in the seed's summary),
or refused (``fallback="error"``).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Iterator, Literal, Protocol

import numpy as np
import torch
from torch import Tensor

from aqakit.data.batches import DIFFICULTY, Batch, ClipBank, EvalBatches
from aqakit.data.videoset import VideoSet
from aqakit.errors import ConfigError, DataError

Fallback = Literal["any", "error"]
EXEMPLAR_KEYS = ("exemplar_features", "exemplar_mask", "exemplar_index", "exemplar_score")


@dataclass
class Exemplars:
    """The exemplars of a batch of B queries, as a pair model receives them.

    Attributes:
        features: (U, T', D) clip features of the U distinct exemplars.
        mask: (U, T') bool, True = a real clip.
        index: (B, M) int64 rows of ``features`` paired with each query.
        score: (B, M) the exemplars' judge scores on the original scale.
        difficulty: (B, M) the exemplars' degrees of difficulty, None when the set has none.
        query_difficulty: (B,) the queries' degrees of difficulty, None when their set has none.
    """

    features: Tensor
    mask: Tensor
    index: Tensor
    score: Tensor
    difficulty: Tensor | None = None
    query_difficulty: Tensor | None = None

    @classmethod
    def from_batch(cls, batch: Batch) -> "Exemplars | None":
        """The exemplars a batch carries (None when it carries none)."""
        if "exemplar_features" not in batch:
            return None
        return cls(*(batch[key] for key in EXEMPLAR_KEYS), batch.get("exemplar_difficulty"), batch.get(DIFFICULTY))

    def to(self, device: torch.device | str) -> "Exemplars":
        return Exemplars(*(None if value is None else value.to(device) for value in (
            self.features, self.mask, self.index, self.score, self.difficulty, self.query_difficulty)))


class ExemplarPool:
    """The training videos exemplars come from, grouped by ``key`` (None: one group of all).

    ``bank`` may be passed to share the clips of an existing :class:`ClipBank` of ``videos``.
    """

    def __init__(
        self, videos: VideoSet, key: str | None = None, fallback: Fallback = "any", bank: ClipBank | None = None
    ) -> None:
        if fallback not in ("any", "error"):
            raise ConfigError(f"exemplar fallback must be 'any' or 'error', got {fallback!r}")
        if len(videos) < 2:
            raise DataError(f"{videos.source}: {len(videos)} training video; exemplars need at least 2")
        self.videos = videos
        self.bank = bank if bank is not None else ClipBank(videos)
        self.key, self.fallback = key, fallback
        self.keys = group_keys(videos, key)
        self.groups = {value: np.flatnonzero(self.keys == value) for value in np.unique(self.keys)}
        self.position = {vid: i for i, vid in enumerate(videos.ids)}
        self._fell_back: dict[str, set[str]] = {"train": set(), "test": set()}  # ids paired outside their group

    def __len__(self) -> int:
        return len(self.videos)

    @property
    def fallbacks(self) -> dict[str, int]:
        """How many training and held-out videos were paired outside their group (each counted once)."""
        return {stage: len(ids) for stage, ids in self._fell_back.items()}

    def candidates(self, video_id: str, key_value: object, stage: str) -> np.ndarray:
        """Pool positions a video may be paired with: its group (itself excluded), else everything else."""
        group = self.groups.get(key_value, np.empty(0, dtype=np.int64))
        own = self.position.get(video_id)
        chosen = group[group != own] if own is not None else group
        if len(chosen):
            return chosen
        if self.fallback == "error":
            raise DataError(
                f"{self.videos.source}: video {video_id} has {self.key} {key_value!r}, which no other training "
                f"video has; a pair model needs an exemplar of the same {self.key} (or exemplar_fallback: any)"
            )
        self._fell_back[stage].add(video_id)
        everything = np.arange(len(self))
        return everything[everything != own] if own is not None else everything

    def for_training(self, indices: Tensor, generator: torch.Generator) -> Tensor:
        """(B,) one exemplar per training video ``indices`` (pool positions), drawn with ``generator``."""
        drawn = []
        for index in indices.tolist():
            pool = self.candidates(self.videos.ids[index], self.keys[index], "train")
            drawn.append(int(pool[int(torch.randint(len(pool), (1,), generator=generator))]))
        return torch.tensor(drawn, dtype=torch.int64)

    def for_test(self, videos: VideoSet, indices: Tensor, m: int, seed: int) -> Tensor:
        """(B, M) exemplars of held-out videos ``indices`` of ``videos``: the same for a given
        (seed, video id) whatever the batch; without repeats while the group has M members,
        cycling through it (in a seeded order) when it has fewer."""
        if m > len(self):
            raise DataError(
                f"{m} exemplars per test video asked for, but the training set has only {len(self)} videos "
                f"({self.videos.source}); lower the model's n_exemplars"
            )
        keys = group_keys(videos, self.key, where="the held-out videos")
        rows = []
        for index in indices.tolist():
            video_id = videos.ids[index]
            pool = self.candidates(video_id, keys[index], "test")
            rng = np.random.default_rng([seed, zlib.crc32(video_id.encode("utf-8"))])
            order = rng.permutation(pool)
            rows.append(np.resize(order, m))  # cycles when the group is smaller than m
        return torch.from_numpy(np.stack(rows).astype(np.int64))


def group_keys(videos: VideoSet, key: str | None, where: str = "the training videos") -> np.ndarray:
    """(N,) each video's group: ``videos.extras[key]`` as strings, or one group when ``key`` is None."""
    if key is None:
        return np.zeros(len(videos), dtype=object)
    if key not in videos.extras:
        recorded = ", ".join(sorted(videos.extras)) or "none"
        raise ConfigError(
            f"exemplar key {key!r} is not recorded for {where} ({videos.source}); recorded keys: {recorded}"
        )
    return np.asarray([str(value) for value in videos.extras[key]], dtype=object)


class _Batches(Protocol):
    bank: ClipBank

    def __iter__(self) -> Iterator[Batch]: ...

    def __len__(self) -> int: ...


class ExemplarBatches:
    """Batches of ``batches`` with their exemplars attached (see the module docstring).

    Training (``m`` None): the batches index the pool's own videos; each gets one exemplar,
    cropped like the queries to ``crop_len`` clips, drawn from (seed, epoch). Held-out (``m``
    set): the batches index ``videos``; each gets ``m`` whole exemplars.
    """

    def __init__(
        self,
        batches: _Batches,
        pool: ExemplarPool,
        seed: int,
        *,
        m: int | None = None,
        videos: VideoSet | None = None,
        crop_len: int | None = None,
    ) -> None:
        if (m is None) != (videos is None):
            raise ValueError("pass m and videos for held-out batches, neither for training batches")
        if videos is not None and videos.feature_dim != pool.videos.feature_dim:
            raise DataError(
                f"exemplar features have dimension {pool.videos.feature_dim} ({pool.videos.source}) but the "
                f"videos they score have {videos.feature_dim} ({videos.source})"
            )
        self.batches, self.pool, self.seed, self.m, self.videos, self.crop_len = batches, pool, seed, m, videos, crop_len
        self.epoch = 0
        if m is not None:  # draw now: an impossible request fails before training starts
            self.test_exemplars = pool.for_test(videos, torch.arange(len(videos)), m, seed)  # (N, M)

    @property
    def bank(self) -> ClipBank:
        return self.batches.bank

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.batches, "set_epoch"):
            self.batches.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[Batch]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch + 7_919)
        for batch in self.batches:
            if self.m is None:
                chosen = self.pool.for_training(batch["index"], generator)[:, None]  # (B, 1)
            else:
                chosen = self.test_exemplars[batch["index"]]  # (B, M)
            yield {**batch, **self.attach(chosen, generator)}

    def attach(self, chosen: Tensor, generator: torch.Generator) -> Batch:
        """The exemplar keys of a batch whose queries are paired with pool positions ``chosen`` (B, M)."""
        unique, inverse = torch.unique(chosen, return_inverse=True)  # (U,), (B, M)
        bank = self.pool.bank
        clips = bank.whole(unique) if self.crop_len is None else bank.crop(unique, self.crop_len, generator)
        attached = {
            "exemplar_features": clips["features"],
            "exemplar_mask": clips["mask"],
            "exemplar_index": inverse,
            "exemplar_score": bank.scores[chosen],
        }
        if bank.difficulty is not None:
            attached["exemplar_difficulty"] = bank.difficulty[chosen]
        return attached


#: Batches of a held-out set: plain, or with exemplars for a pair model.
HeldOutBatches = EvalBatches | ExemplarBatches


def held_out_batches(
    videos: VideoSet, batch_size: int, exemplars: tuple[ExemplarPool, int, int] | None = None
) -> HeldOutBatches:
    """Scoring batches of held-out ``videos`` (every clip); with ``exemplars`` (pool, M, seed),
    M exemplars from the pool attached to every video, for a pair model."""
    plain = EvalBatches(ClipBank(videos), batch_size)
    if exemplars is None:
        return plain
    pool, m, seed = exemplars
    return ExemplarBatches(plain, pool, seed, m=m, videos=videos)
