"""Pair models: score a video relative to exemplars of known score (CoRe, TPT, ...).

A :class:`PairModel` predicts, for a query and an exemplar, the difference of their scores in
the normalised space with a :class:`~aqakit.models.group_aware.GroupAwareHead`; its score is the
mean over the exemplars of (exemplar score + predicted difference). Difficulty-aware
(``difficulty_aware``, CoRe's and TSA's use of the diving degree of difficulty DD): the differences
are of execution scores ``score / DD`` and the prediction is the query's DD times its predicted
execution, so a model never has to read the difficulty from the video. Exemplars come with the batch
(:mod:`aqakit.data.exemplars`); which and how many are the model's own hyper-parameters
(:class:`PairConfig`), so a checkpoint says how it wants to be scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import torch
from torch import Tensor

from aqakit.data.batches import DIFFICULTY
from aqakit.data.exemplars import Exemplars, group_keys
from aqakit.data.scale import ScoreScale
from aqakit.errors import ConfigError, DataError
from aqakit.models.base import AQAModel, Prediction
from aqakit.models.config import HParams, Positive, PositiveInt, Range
from aqakit.models.group_aware import GroupAwareHead, interval_boundaries, pair_differences

if TYPE_CHECKING:
    from aqakit.data.videoset import VideoSet


@dataclass(frozen=True)
class PairConfig(HParams):
    """What every pair model shares: its exemplars and its group-aware head.

    ``n_exemplars`` exemplars vote at test; ``exemplar_key`` (a ``VideoSet.extras`` entry, e.g.
    ``difficulty``) restricts a video's exemplars to videos of the same value, and
    ``exemplar_fallback`` says what happens to a video that has no such exemplar (``any``: any
    training video, counted in the summary; ``error``: refused). The head classifies
    ``n_intervals`` intervals of score differences through ``head_hidden`` units and learns
    ``head_lr_factor`` times faster than the trunk. ``difficulty_aware`` compares execution scores
    (score / degree of difficulty, the set's ``extras["difficulty"]``) and multiplies the query's
    predicted execution by its difficulty (every video then needs a positive difficulty).
    """

    n_exemplars: PositiveInt = 10
    exemplar_key: str | None = None
    exemplar_fallback: Literal["any", "error"] = "any"
    n_intervals: Annotated[int, Range(low=2)] = 16
    head_hidden: PositiveInt = 128
    head_lr_factor: Positive = 10.0
    difficulty_aware: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_intervals % 2:
            raise ConfigError(f"n_intervals must be even (intervals are symmetric around 0), got {self.n_intervals}")


class PairModel(AQAModel):
    """Base of pair models: subclasses build ``self.head`` (a GroupAwareHead) and implement
    :meth:`compare` (query and exemplar features -> head outputs and parts)."""

    needs_exemplars: ClassVar[bool] = True
    config: PairConfig

    def __init__(self, in_dim: int, score_scale: ScoreScale, config: PairConfig | None = None) -> None:
        super().__init__(in_dim, score_scale, config)
        self.head: GroupAwareHead
        if self.config.difficulty_aware:  # the training executions' range (lo, hi), set by prepare
            self.register_buffer("execution_range", torch.tensor([0.0, 1.0], dtype=torch.float64))

    def prepare(self, train: "VideoSet") -> dict[str, Any]:
        """Set the head's intervals from the training pairs (those of one group when keyed), and a
        difficulty-aware model's execution range."""
        fixed: dict[str, Any] = {}
        scores, difficulty = torch.from_numpy(train.scores), self.difficulties(train)  # (N,) float64 each
        if difficulty is not None:
            scale = ScoreScale.from_scores((scores / difficulty).numpy())
            self.execution_range.copy_(torch.tensor([scale.lo, scale.hi], dtype=torch.float64))
            fixed["execution_range"] = [scale.lo, scale.hi]
        normalised = self.comparable(scores, difficulty).numpy()
        groups = group_keys(train, self.config.exemplar_key)
        differences = pair_differences(normalised, groups)
        if len(differences) == 0:  # every group has one member: pairs cross groups
            differences = pair_differences(normalised)
        boundaries = interval_boundaries(differences, self.config.n_intervals)
        self.head.set_boundaries(boundaries)
        return {"interval_boundaries": boundaries.tolist(), "pairs": len(differences), **fixed}

    def difficulties(self, videos: "VideoSet") -> Tensor | None:
        """(N,) the videos' degrees of difficulty when the model is difficulty-aware (else None)."""
        if not self.config.difficulty_aware:
            return None
        if DIFFICULTY not in videos.extras:
            recorded = ", ".join(sorted(videos.extras)) or "none"
            raise DataError(f"{self.name} is difficulty-aware and {videos.source} records no {DIFFICULTY} per video "
                            f"(recorded: {recorded}); set difficulty_aware: false")
        return check_difficulty(torch.as_tensor(videos.extras[DIFFICULTY], dtype=torch.float64), videos.source)

    def comparable(self, scores: Tensor, difficulty: Tensor | None) -> Tensor:
        """Scores on the original scale -> the normalised space the head compares them in: the
        score scale's, or a difficulty-aware model's execution range of ``scores / difficulty``."""
        if difficulty is None:
            return self.score_scale.normalise(scores)
        lo, hi = self.execution_range.to(scores)
        return (scores / difficulty.to(scores) - lo) / (hi - lo)

    def parameter_groups(self, lr: float) -> list[dict[str, Any]]:
        head = list(self.head.parameters())
        ids = {id(param) for param in head}
        trunk = [param for param in self.parameters() if id(param) not in ids]
        return [{"params": trunk, "lr": lr}, {"params": head, "lr": lr * self.config.head_lr_factor}]

    def forward(  # type: ignore[override]
        self, features: Tensor, mask: Tensor | None = None, exemplars: Exemplars | None = None, *,
        check_clips: bool = True,
    ) -> Prediction:
        features, mask = self.check_input(features, mask, check_clips)
        exemplars = self.check_exemplars(exemplars, len(features))
        logits, offsets, parts, internals = self.compare(features, mask, exemplars)  # (B, M, n_intervals) twice
        difference = self.head.difference(logits, offsets)  # (B, M) normalised query - exemplar
        votes = self.comparable(exemplars.score.float(), exemplars.difficulty) + difference  # (B, M)
        parts.update(interval_logits=logits, interval_offsets=offsets, exemplar_votes=votes)
        if exemplars.query_difficulty is None:
            normalised = votes.mean(dim=1)
            return Prediction(self.score_scale.denormalise(normalised), normalised, parts, internals)
        lo, hi = self.execution_range.to(votes)
        score = (votes.mean(dim=1) * (hi - lo) + lo) * exemplars.query_difficulty.to(votes)
        return Prediction(score, self.score_scale.normalise(score), parts, internals)

    def compare(
        self, features: Tensor, mask: Tensor, exemplars: Exemplars
    ) -> tuple[Tensor, Tensor, dict[str, Tensor], dict[str, Tensor]]:
        """Interval logits and offsets (B, M, n_intervals) of each (query, exemplar) pair, the parts
        and the internals (``reverse_interval_logits`` / ``_offsets`` of the reversed pairs, if trained)."""
        raise NotImplementedError

    def pair_loss(self, prediction: Prediction, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The group-aware loss terms of the (query, exemplar) pairs, and of the reversed pairs
        (exemplar, query) when the prediction holds them."""
        query = self.comparable(batch["score"].float(), self.batch_difficulty(batch, DIFFICULTY))
        exemplar = self.comparable(batch["exemplar_score"].float(), self.batch_difficulty(batch, "exemplar_difficulty"))
        target = query[:, None] - exemplar
        parts = prediction.parts
        classification, offset = self.head.loss(parts["interval_logits"], parts["interval_offsets"], target)
        if "reverse_interval_logits" in prediction.internals:
            internals = prediction.internals
            reverse = self.head.loss(internals["reverse_interval_logits"], internals["reverse_interval_offsets"], -target)
            classification, offset = classification + reverse[0], offset + reverse[1]
        return {"interval": classification, "offset": offset}

    def batch_difficulty(self, batch: dict[str, Tensor], key: str) -> Tensor | None:
        """The batch's ``key`` difficulties when the model is difficulty-aware (else None)."""
        if not self.config.difficulty_aware:
            return None
        if key not in batch:
            raise DataError(f"{self.name} is difficulty-aware and its training batch has no {key} "
                            f"(the set needs extras['{DIFFICULTY}'])")
        return check_difficulty(batch[key], f"the training batch's {key}")

    def check_exemplars(self, exemplars: Exemplars | None, n_queries: int) -> Exemplars:
        """Validate the exemplars up front, so bad input fails here with a clear message."""
        if exemplars is None:
            raise DataError(
                f"{self.name} scores a video against training exemplars of known score, and none were given "
                "(batches with exemplars come from aqakit.data.exemplars.ExemplarBatches)"
            )
        if exemplars.features.dim() != 3 or exemplars.features.shape[-1] != self.in_dim:
            raise DataError(
                f"exemplar features have shape {tuple(exemplars.features.shape)}; {self.name} needs "
                f"(exemplars, clips, {self.in_dim})"
            )
        if exemplars.mask.shape != exemplars.features.shape[:2]:
            raise DataError(f"exemplar mask shape {tuple(exemplars.mask.shape)} does not match their features")
        if exemplars.index.dim() != 2 or exemplars.index.shape[0] != n_queries:
            raise DataError(f"exemplar index shape {tuple(exemplars.index.shape)} is not ({n_queries}, exemplars)")
        if exemplars.score.shape != exemplars.index.shape:
            raise DataError(f"exemplar scores {tuple(exemplars.score.shape)} do not match their index")
        if not self.config.difficulty_aware:
            return Exemplars(exemplars.features.float(), exemplars.mask.bool(), exemplars.index, exemplars.score)
        if exemplars.difficulty is None or exemplars.query_difficulty is None:
            raise DataError(f"{self.name} is difficulty-aware: it needs the degree of difficulty of every video it "
                            f"scores and of its exemplars (extras['{DIFFICULTY}']), and these videos have none")
        if exemplars.difficulty.shape != exemplars.index.shape or exemplars.query_difficulty.shape != (n_queries,):
            raise DataError(f"exemplar difficulties {tuple(exemplars.difficulty.shape)} / query difficulties "
                            f"{tuple(exemplars.query_difficulty.shape)} do not match the index")
        return Exemplars(exemplars.features.float(), exemplars.mask.bool(), exemplars.index, exemplars.score,
                         check_difficulty(exemplars.difficulty, "the exemplars"),
                         check_difficulty(exemplars.query_difficulty, "the scored videos"))


def check_difficulty(difficulty: Tensor, where: str) -> Tensor:
    """``difficulty`` unchanged when every value is finite and positive, else a DataError naming one."""
    bad = ~(torch.isfinite(difficulty) & (difficulty > 0))
    if bool(bad.any()):
        value = float(difficulty[bad][0])
        raise DataError(f"{where}: a degree of difficulty is {value}; a difficulty-aware model divides by it "
                        "and needs every one finite and positive")
    return difficulty

