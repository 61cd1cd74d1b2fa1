"""Group-aware regression of score differences (CoRe, Yu et al., ICCV 2021), the head of every pair model.

The differences between training pairs' scores (in the normalised space) are cut into ``B``
intervals (``B`` even) symmetric around 0, each holding the same number of pairs: the positive
half's boundaries are quantiles of the absolute differences, the negative half their mirror. The
head classifies which interval a pair's difference falls in and regresses, for every interval,
the offset of the difference inside it (0 at its lower end, 1 at its upper end); the loss is the
cross-entropy of the interval plus the squared offset error on the true interval. A difference
is read back as ``lower + offset * width`` of the most probable interval.

Ties (many equal score differences, as with integer scores) can make some boundaries coincide:
those intervals are empty and never the label of a pair; the number of intervals stays ``B`` so a
checkpoint always has the same shapes.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aqakit.errors import ConfigError, DataError

#: Above this many pairs, the boundaries are quantiles of a fixed-seed sample of them.
MAX_PAIRS = 4_000_000


def pair_differences(scores: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """|s_i - s_j| over the unordered pairs i < j of ``scores`` (within each group when given)."""
    scores = np.asarray(scores, dtype=np.float64)
    groups = np.zeros(len(scores)) if groups is None else np.asarray(groups)
    differences = []
    for value in np.unique(groups):
        members = scores[groups == value]
        upper = np.triu_indices(len(members), k=1)
        differences.append(np.abs(members[upper[0]] - members[upper[1]]))
    return np.concatenate(differences) if differences else np.empty(0)


def interval_boundaries(differences: np.ndarray, n_intervals: int) -> np.ndarray:
    """(B + 1,) ascending boundaries, symmetric around 0, with equal numbers of ``differences``
    (absolute pair differences) in each positive interval and, mirrored, each negative one."""
    if n_intervals < 2 or n_intervals % 2:
        raise ConfigError(f"the number of intervals must be even and at least 2, got {n_intervals}")
    differences = np.asarray(differences, dtype=np.float64)
    if len(differences) == 0:
        raise DataError("group-aware regression needs at least one pair of training videos")
    if len(differences) > MAX_PAIRS:
        differences = np.random.default_rng(0).choice(differences, MAX_PAIRS, replace=False)
    positive = np.quantile(differences, np.linspace(0, 1, n_intervals // 2 + 1))
    positive[0] = 0.0
    if positive[-1] <= 0:
        raise DataError("every training pair has the same score; there are no differences to learn")
    return np.concatenate([-positive[:0:-1], positive])


class GroupAwareHead(nn.Module):
    """Pair representations (..., H) -> interval logits (..., B) and in-interval offsets (..., B) in [0, 1].

    ``boundaries`` (B + 1,) is a buffer (saved with the checkpoint), set from the training pairs by
    :meth:`set_boundaries` before training; until then it is ``linspace(-1, 1, B + 1)``.
    """

    def __init__(self, in_dim: int, n_intervals: int, hidden_dim: int = 128) -> None:
        super().__init__()
        self.classify = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, n_intervals))
        self.regress = nn.Sequential(
            nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, n_intervals), nn.Sigmoid()
        )
        self.register_buffer("boundaries", torch.linspace(-1, 1, n_intervals + 1))

    def set_boundaries(self, boundaries: np.ndarray) -> None:
        if boundaries.shape != self.boundaries.shape:
            raise ConfigError(f"expected {len(self.boundaries)} boundaries, got {len(boundaries)}")
        self.boundaries.copy_(torch.as_tensor(boundaries, dtype=self.boundaries.dtype))

    def forward(self, pairs: Tensor) -> tuple[Tensor, Tensor]:
        return self.classify(pairs), self.regress(pairs)

    def difference(self, logits: Tensor, offsets: Tensor) -> Tensor:
        """(...,) the difference read from the most probable interval: lower + offset * width."""
        chosen = logits.argmax(-1, keepdim=True)  # (..., 1)
        lower, upper = self.boundaries[:-1][chosen], self.boundaries[1:][chosen]
        return (lower + offsets.gather(-1, chosen) * (upper - lower)).squeeze(-1)

    def targets(self, difference: Tensor) -> tuple[Tensor, Tensor]:
        """The true interval (...,) int64 of each difference and its offset inside it (...,) in [0, 1]."""
        inner = self.boundaries[1:-1].contiguous()
        label = torch.bucketize(difference.contiguous(), inner, right=True)  # (...,) in 0..B-1
        lower, upper = self.boundaries[:-1][label], self.boundaries[1:][label]
        offset = ((difference - lower) / (upper - lower).clamp(min=1e-12)).clamp(0.0, 1.0)
        return label, offset

    def loss(self, logits: Tensor, offsets: Tensor, difference: Tensor) -> tuple[Tensor, Tensor]:
        """(cross-entropy of the interval, squared offset error on the true interval), both means."""
        label, offset = self.targets(difference)
        classification = F.cross_entropy(logits.flatten(0, -2), label.flatten())
        predicted = offsets.gather(-1, label.unsqueeze(-1)).squeeze(-1)
        return classification, F.mse_loss(predicted, offset)
