"""The in-memory form of one split of a benchmark: video ids, clip features and scores."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aqakit.errors import DataError


@dataclass
class VideoSet:
    """Scored videos of one split.

    Attributes:
        ids: video ids, unique, in label-file order.
        features: one float32 array of shape (T_i, D) per video; T_i >= 1 varies, D is shared.
        scores: (N,) float64 judge scores on the benchmark's original scale.
        source: where the set came from (label file or generator), used in error messages.
        extras: per-video arrays a benchmark adds, (N, ...) each.
        left_out: ids of labelled videos this set leaves out because they have no feature file
            (only where the benchmark's ``allow_missing`` option allows it); a run records them.
    """

    ids: list[str]
    features: list[np.ndarray]
    scores: np.ndarray
    source: str = "<memory>"
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.scores = np.asarray(self.scores, dtype=np.float64)
        if not (len(self.ids) == len(self.features) == len(self.scores)):
            raise DataError(
                f"{self.source}: {len(self.ids)} ids, {len(self.features)} feature arrays and "
                f"{len(self.scores)} scores do not match"
            )
        if len(self.ids) == 0:
            raise DataError(f"{self.source}: the split is empty")
        dims = {f.shape[1] for f in self.features}
        if len(dims) > 1:
            raise DataError(f"{self.source}: videos have different feature dimensions {sorted(dims)}")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def feature_dim(self) -> int:
        return int(self.features[0].shape[1])

    @property
    def lengths(self) -> np.ndarray:
        """(N,) number of clips of each video."""
        return np.array([f.shape[0] for f in self.features], dtype=np.int64)

    def subset(self, indices, source: str | None = None) -> "VideoSet":
        """The videos at ``indices`` (in that order); what the whole set left out stays recorded."""
        indices = [int(i) for i in indices]
        return VideoSet(
            ids=[self.ids[i] for i in indices],
            features=[self.features[i] for i in indices],
            scores=self.scores[indices],
            source=source or self.source,
            extras={k: v[indices] for k, v in self.extras.items()},
            left_out=list(self.left_out),
        )
