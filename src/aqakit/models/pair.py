"""Pair models: score a video relative to exemplars of known score (CoRe, TPT, ...).

A :class:`PairModel` predicts, for a query and an exemplar, the difference of their scores in
the normalised space with a :class:`~aqakit.models.group_aware.GroupAwareHead`; its score is the
mean over the exemplars of (exemplar score + predicted difference). Exemplars come with the batch
(:mod:`aqakit.data.exemplars`); which and how many are the model's own hyper-parameters
(:class:`PairConfig`), so a checkpoint says how it wants to be scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import torch
from torch import Tensor

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
    ``head_lr_factor`` times faster than the trunk.
    """

    n_exemplars: PositiveInt = 10
    exemplar_key: str | None = None
    exemplar_fallback: Literal["any", "error"] = "any"
    n_intervals: Annotated[int, Range(low=2)] = 16
    head_hidden: PositiveInt = 128
    head_lr_factor: Positive = 10.0

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

    def prepare(self, train: "VideoSet") -> dict[str, Any]:
        """Set the head's intervals from the training pairs (those of one group when keyed)."""
        groups = group_keys(train, self.config.exemplar_key)
        differences = pair_differences(self.score_scale.normalise(train.scores), groups)
        if len(differences) == 0:  # every group has one member: pairs cross groups
            differences = pair_differences(self.score_scale.normalise(train.scores))
        boundaries = interval_boundaries(differences, self.config.n_intervals)
        self.head.set_boundaries(boundaries)
        return {"interval_boundaries": boundaries.tolist(), "pairs": len(differences)}

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
        votes = self.score_scale.normalise(exemplars.score.float()) + difference  # (B, M)
        normalised = votes.mean(dim=1)
        parts.update(interval_logits=logits, interval_offsets=offsets, exemplar_votes=votes)
        return Prediction(self.score_scale.denormalise(normalised), normalised, parts, internals)

    def compare(
        self, features: Tensor, mask: Tensor, exemplars: Exemplars
    ) -> tuple[Tensor, Tensor, dict[str, Tensor], dict[str, Tensor]]:
        """Interval logits and offsets (B, M, n_intervals) of each (query, exemplar) pair, the parts
        and the internals (``reverse_interval_logits`` / ``_offsets`` of the reversed pairs, if trained)."""
        raise NotImplementedError

    def pair_loss(self, prediction: Prediction, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The group-aware loss terms of the (query, exemplar) pairs, and of the reversed pairs
        (exemplar, query) when the prediction holds them."""
        target = self.normalised_target(batch)[:, None] - self.score_scale.normalise(batch["exemplar_score"].float())
        parts = prediction.parts
        classification, offset = self.head.loss(parts["interval_logits"], parts["interval_offsets"], target)
        if "reverse_interval_logits" in prediction.internals:
            internals = prediction.internals
            reverse = self.head.loss(internals["reverse_interval_logits"], internals["reverse_interval_offsets"], -target)
            classification, offset = classification + reverse[0], offset + reverse[1]
        return {"interval": classification, "offset": offset}

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
        return Exemplars(exemplars.features.float(), exemplars.mask.bool(), exemplars.index, exemplars.score)

