"""Batches of clip features with masks, built from tensors held in memory.

A :class:`ClipBank` stores every clip of a split in one flat float32 tensor (no padding
waste, whatever the mix of lengths), so an epoch never re-reads a file and needs no worker
processes. Batches are gathered from it by index:

- training: a random crop of ``crop_len`` consecutive clips per video; a video shorter than
  the crop is padded with zeros and its mask marks the padding. A batch whose videos are all
  shorter than the crop is padded only to its longest video (one-clip features train as batches
  of one clip, not of ``crop_len``);
- evaluation: every clip of every video, deterministically, padded to the longest video of
  the batch (videos are grouped by length so little padding is wasted).

A batch is a dict: ``features`` (B, T, D) float32, ``mask`` (B, T) bool (True = real clip),
``score`` (B,) float32 on the original scale and ``index`` (B,) int64 positions in the set; a set
with stage transitions (``extras["transition_clips"]``, :mod:`aqakit.data.stages`) adds
``transition`` (B, T) float32, 1.0 at each video's transition clips of the window, and a set
with degrees of difficulty (``extras["difficulty"]``) adds ``difficulty`` (B,) float32.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from aqakit.data.stages import TRANSITION_CLIPS, check_transitions
from aqakit.data.videoset import VideoSet

DIFFICULTY = "difficulty"
Batch = dict[str, Tensor]


class ClipBank:
    """All clips of a :class:`VideoSet` in one (sum T_i, D) float32 tensor with offsets."""

    def __init__(self, videos: VideoSet) -> None:
        lengths = videos.lengths
        self.lengths = torch.from_numpy(lengths)  # (N,)
        self.offsets = torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)[:-1]]))  # (N,)
        self.clips = torch.from_numpy(np.concatenate(videos.features, axis=0).astype(np.float32, copy=False))
        self.scores = torch.from_numpy(videos.scores.astype(np.float32))  # (N,)
        self.transitions: Tensor | None = None  # (N, S - 1) transition clips, if the set has stages
        if TRANSITION_CLIPS in videos.extras:
            self.transitions = torch.from_numpy(np.stack([
                check_transitions(row, int(length), f"{videos.source}: video {video_id}")
                for row, length, video_id in zip(videos.extras[TRANSITION_CLIPS], lengths, videos.ids)
            ]))
        self.difficulty: Tensor | None = None  # (N,) degrees of difficulty, if the set has them
        if DIFFICULTY in videos.extras:
            self.difficulty = torch.as_tensor(np.asarray(videos.extras[DIFFICULTY], dtype=np.float32))

    def __len__(self) -> int:
        return len(self.lengths)

    def gather(self, indices: Tensor, starts: Tensor, length: int) -> Batch:
        """Clips ``starts[b] .. starts[b] + length`` of videos ``indices``; missing clips are padding."""
        positions = starts[:, None] + torch.arange(length)[None, :]  # (B, length)
        mask = positions < self.lengths[indices, None]
        rows = torch.where(mask, self.offsets[indices, None] + positions, 0)
        features = self.clips[rows] * mask[..., None]  # (B, length, D)
        batch = {"features": features, "mask": mask, "score": self.scores[indices], "index": indices}
        if self.transitions is not None:
            batch["transition"] = (positions[:, :, None] == self.transitions[indices, None, :]).any(-1).float()
        if self.difficulty is not None:
            batch[DIFFICULTY] = self.difficulty[indices]
        return batch

    def crop(self, indices: Tensor, crop_len: int, generator: torch.Generator) -> Batch:
        """A random window of ``crop_len`` clips per video (uniform start, zero-padded if shorter),
        the batch padded to ``crop_len`` or to its longest video, whichever is shorter."""
        lengths = self.lengths[indices]
        room = (lengths - crop_len).clamp(min=0)  # (B,) latest valid start
        starts = (torch.rand(len(indices), generator=generator) * (room + 1)).long().clamp(max=room)
        return self.gather(indices, starts, min(crop_len, int(lengths.max())))

    def whole(self, indices: Tensor) -> Batch:
        """Every clip of videos ``indices``, padded to the longest of them."""
        length = int(self.lengths[indices].max())
        return self.gather(indices, torch.zeros_like(indices), length)


class TrainBatches:
    """Shuffled random-crop batches; the order and crops depend only on (seed, epoch).

    Call :meth:`set_epoch` before iterating, so that a resumed run sees the same batches
    as an uninterrupted one.
    """

    def __init__(self, bank: ClipBank, batch_size: int, crop_len: int, seed: int) -> None:
        self.bank, self.batch_size, self.crop_len, self.seed = bank, batch_size, crop_len, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        full, rest = divmod(len(self.bank), self.batch_size)
        return full + int(rest > 1 or (rest == 1 and full == 0))

    def __iter__(self) -> Iterator[Batch]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(len(self.bank), generator=generator)
        chunks = list(order.split(self.batch_size))
        if len(chunks) > 1 and len(chunks[-1]) == 1:
            # A lone last video may be a single clip, and BatchNorm cannot train on one value:
            # it joins the previous batch instead.
            chunks[-2:] = [torch.cat(chunks[-2:])]
        for chunk in chunks:
            yield self.bank.crop(chunk, self.crop_len, generator)


class EvalBatches:
    """Deterministic batches of whole videos, grouped by length to limit padding.

    A batch holds at most ``batch_size`` videos and at most ``max_clips`` padded clips
    (videos x longest length), so very long videos are scored in small batches.
    """

    def __init__(self, bank: ClipBank, batch_size: int = 32, max_clips: int = 65536) -> None:
        self.bank = bank
        lengths = bank.lengths.tolist()
        order = sorted(range(len(lengths)), key=lengths.__getitem__)
        self.chunks: list[Tensor] = []
        chunk: list[int] = []
        for index in order:  # ascending length: the newest video is the longest of its chunk
            if chunk and (len(chunk) == batch_size or (len(chunk) + 1) * lengths[index] > max_clips):
                self.chunks.append(torch.tensor(chunk))
                chunk = []
            chunk.append(index)
        self.chunks.append(torch.tensor(chunk))

    def __len__(self) -> int:
        return len(self.chunks)

    def __iter__(self) -> Iterator[Batch]:
        for chunk in self.chunks:
            yield self.bank.whole(chunk)
