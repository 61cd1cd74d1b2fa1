"""What every aqakit model shares: the Prediction it returns and the AQAModel interface.

A model is a plain ``nn.Module`` (no training-framework imports). It takes clip features
``(B, T, D)`` with a boolean ``mask`` ``(B, T)`` (True = a real clip, False = padding) and
returns a :class:`Prediction`. Models learn in the normalised score space [0, 1] of their
:class:`~aqakit.data.scale.ScoreScale`; ``Prediction.score`` is always on the original scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple

import torch
from torch import Tensor, nn

from aqakit.data.scale import ScoreScale
from aqakit.errors import ConfigError, DataError
from aqakit.models.config import HParams

if TYPE_CHECKING:
    from aqakit.data.exemplars import Exemplars
    from aqakit.data.videoset import VideoSet


@dataclass
class Prediction:
    """A batch of predictions.

    Attributes:
        score: (B,) predicted scores on the dataset's original scale.
        normalised_score: (B,) the same in the model's [0, 1] space (what losses compare).
        parts: named interpretable parts, each with the batch on its first axis
            (for GDLT: ``grade_weights`` (B, G) and ``query_embeddings`` (B, G, H)).
        internals: what the loss needs beyond the parts, not indexed by the batch (a pair model's
            exemplar attention, for instance).
    """

    score: Tensor
    normalised_score: Tensor
    parts: dict[str, Tensor] = field(default_factory=dict)
    internals: dict[str, Tensor] = field(default_factory=dict)


#: How a report draws a part of one video (batch axis removed; T = the video's clips):
#: ``bars`` (N,) one bar per item; ``clips`` (T,) a line over time; ``clip_map`` (K, T) K rows
#: over time; ``matrix`` (K, N) a heat map of items against items.
PlotKind = Literal["bars", "clips", "clip_map", "matrix"]


@dataclass(frozen=True)
class Explanation:
    """One part of a model's prediction that explains its score, and how a report draws it.

    A model lists its explanations in :attr:`AQAModel.explanations`; parts it does not list (loss
    intermediates, embeddings, logits) are never drawn.

    Attributes:
        part: the name in ``Prediction.parts``.
        kind: the plot (:data:`PlotKind`).
        title: the section heading, plain words.
        caption: one line: what the plot shows and how to read it.
        item: what one bar or one row is (``grade``, ``procedure``, ``query``): the axis title of
            bars, the row title of maps.
        value: what the values are, with their unit (``weight (sums to 1)``); the value axis
            title of bars and lines, the colour scale's title of maps.
        columns: what a column of a ``matrix`` is.
        normalised: the values are scores in the model's [0, 1] space; the report shows them on
            the original score scale (and says so in the value title).
        marks: for ``clips``: the part holding clip indices to ring on the line (FineCausal's
            predicted transitions), and ``mark_note`` what a ring means.
    """

    part: str
    kind: PlotKind
    title: str
    caption: str
    item: str = ""
    value: str = ""
    columns: str = ""
    normalised: bool = False
    marks: str = ""
    mark_note: str = ""


class GradeBand(NamedTuple):
    """The grade a grade model gives each video: its index (B,) long, 0 = the lowest of ``count``
    grades, and the band of normalised scores [``low``, ``high``] (B,) each that grade covers."""

    index: Tensor
    low: Tensor
    high: Tensor
    count: int


class AQAModel(nn.Module):
    """Base class of aqakit models.

    A model is built as ``Model(in_dim, score_scale, config)``, ``config`` an instance of its
    ``config_class`` (a frozen :class:`~aqakit.models.config.HParams` dataclass holding every
    hyper-parameter; None means all defaults). Subclasses set ``name`` and ``config_class`` and
    implement :meth:`predict_normalised` and :meth:`loss`.
    """

    name: ClassVar[str] = "base"
    config_class: ClassVar[type[HParams]] = HParams
    #: True for a model fitted in one closed-form step (:meth:`fit_closed_form`) rather than by epochs of gradient steps.
    closed_form: ClassVar[bool] = False
    #: True for a model that scores a video against exemplars of known score (:mod:`aqakit.models.pair`).
    needs_exemplars: ClassVar[bool] = False
    #: The built-in benchmark (no files needed) whose videos carry what this model reads: ``aqakit bench``'s and
    #: the benchmarks' default data for it (FineCausal's two streams and stage transitions: ``synthetic-confounded``).
    synthetic_benchmark: ClassVar[str] = "synthetic"
    #: The parts a report draws, in order (:class:`Explanation`); the rest are never drawn.
    explanations: ClassVar[tuple[Explanation, ...]] = ()

    def __init__(self, in_dim: int, score_scale: ScoreScale, config: HParams | None = None) -> None:
        super().__init__()
        if in_dim < 1:
            raise ConfigError(f"in_dim must be positive, got {in_dim}")
        config = self.config_class() if config is None else config
        if not isinstance(config, self.config_class):
            raise ConfigError(f"{self.name} needs a {self.config_class.__name__}, got a {type(config).__name__}")
        self.in_dim = int(in_dim)
        self.score_scale = score_scale
        self.config = config

    @property
    def hparams(self) -> dict[str, Any]:
        """The config's fields as JSON values: what a checkpoint records to rebuild the model."""
        return self.config.to_dict()

    def forward(
        self, features: Tensor, mask: Tensor | None = None, exemplars: "Exemplars | None" = None, *,
        check_clips: bool = True,
    ) -> Prediction:
        """Score a batch: features (B, T, D) float, mask (B, T) bool or None (all real).

        ``exemplars`` (the batch's, :class:`~aqakit.data.exemplars.Exemplars`) are used by pair
        models (``needs_exemplars``) and ignored by the others.

        ``check_clips=False`` skips the check that every video has a real clip: a data-dependent
        test that ``torch.func.vmap`` cannot run (the batched ensemble checks its batches first).
        """
        features, mask = self.check_input(features, mask, check_clips)
        normalised, parts = self.predict_normalised(features, mask)
        return Prediction(self.score_scale.denormalise(normalised), normalised, parts)

    def predict_normalised(self, features: Tensor, mask: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Return (B,) normalised scores and the named interpretable parts."""
        raise NotImplementedError

    def loss(self, prediction: Prediction, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Named loss terms (each a scalar) whose sum is optimised; ``batch['score']`` is original-scale."""
        raise NotImplementedError

    def grade_band(self, parts: dict[str, Tensor]) -> GradeBand | None:
        """A grade model's grade for each video of a batch's ``parts``; None for a model without grades."""
        return None

    def prepare(self, train: "VideoSet") -> dict[str, Any]:
        """Fix what the model derives from its training set before training (a pair model's score
        intervals); returns what it fixed (recorded in the summary). Nothing by default."""
        return {}

    def parameter_groups(self, lr: float) -> list[dict[str, Any]]:
        """The optimiser's parameter groups at base learning rate ``lr`` (one group by default)."""
        return [{"params": list(self.parameters()), "lr": lr}]

    def fit_closed_form(self, videos: "VideoSet") -> dict[str, Any]:
        """Fit a ``closed_form`` model on the training ``videos``; returns what the fit chose (recorded in the summary)."""
        raise NotImplementedError(f"{self.name} is trained by gradient steps, not fitted in closed form")

    def normalised_target(self, batch: dict[str, Tensor]) -> Tensor:
        """(B,) the batch's judge scores mapped to the model's [0, 1] space."""
        return self.score_scale.normalise(batch["score"].float())

    def check_input(self, features: Tensor, mask: Tensor | None, check_clips: bool = True) -> tuple[Tensor, Tensor]:
        """Validate shapes up front so bad input fails here with a clear message."""
        if features.dim() != 3:
            raise DataError(f"features must have shape (batch, clips, dim), got {tuple(features.shape)}")
        batch, clips, dim = features.shape
        if dim != self.in_dim:
            raise DataError(
                f"feature dimension {dim} does not match the model's input dimension {self.in_dim}"
            )
        if clips == 0:
            raise DataError("features have zero clips (T=0); every video needs at least one clip")
        if mask is None:
            mask = torch.ones(batch, clips, dtype=torch.bool, device=features.device)
        elif mask.shape != (batch, clips):
            raise DataError(f"mask shape {tuple(mask.shape)} does not match features {(batch, clips)}")
        mask = mask.bool()
        if check_clips and not bool(mask.any(dim=1).all()):
            raise DataError("a video in the batch has no real clip (its mask is all False)")
        return features.float(), mask
