"""Score scale: the map between a benchmark's original scores and the [0, 1] range models learn in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from aqakit.errors import DataError


@dataclass(frozen=True)
class ScoreScale:
    """An affine map ``original = lo + normalised * (hi - lo)``.

    The scale belongs to the dataset a model is trained on and is stored in every checkpoint,
    so a trained model always reports scores on the original scale of its benchmark. By
    default it is the min/max of the *training* scores (see :meth:`from_scores`); a benchmark
    or a user may fix it instead (for example ``[0, 25]`` for rhythmic gymnastics).
    """

    lo: float
    hi: float

    def __post_init__(self) -> None:
        if not (np.isfinite(self.lo) and np.isfinite(self.hi)) or self.hi <= self.lo:
            raise DataError(f"score scale needs finite lo < hi, got lo={self.lo}, hi={self.hi}")

    @classmethod
    def from_scores(cls, scores: Sequence[float] | np.ndarray) -> "ScoreScale":
        """The min/max of ``scores`` (the training scores); a constant set gets a unit width."""
        values = np.asarray(scores, dtype=np.float64)
        if values.size == 0:
            raise DataError("cannot derive a score scale from an empty set of scores")
        lo, hi = float(values.min()), float(values.max())
        return cls(lo, hi if hi > lo else lo + 1.0)

    @property
    def width(self) -> float:
        return self.hi - self.lo

    def normalise(self, scores):
        """Original scale -> [0, 1] (values outside the training range map outside [0, 1])."""
        return (scores - self.lo) / self.width

    def denormalise(self, normalised):
        """[0, 1] -> original scale."""
        return normalised * self.width + self.lo

    def to_dict(self) -> dict[str, float]:
        return {"lo": self.lo, "hi": self.hi}
