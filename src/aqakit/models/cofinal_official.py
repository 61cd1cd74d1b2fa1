"""CoFInAl as its released code behaves: GDLT plus a revert branch and an ETF head over score digits.

The released code (github.com/ZhouKanglei/CoFInAl_AQA) does not implement the paper's modules
(the paper's model is ``cofinal``); this is what it does, for comparison with the published
numbers. Shapes (B videos, G = ``n_queries``, H = ``hidden_dim``)::

    GDLT trunk (aqakit.models.gdlt)                                  -> query_embeddings (B, G, H)
    coarse branch: GDLT's Likert weights . coarse anchors             -> coarse (B,)
    revert branch: the same with its own Linear(H, G) and revert anchors -> revert (B,)
    digit head: self-attention over the G query embeddings, Flatten -> Linear(G*H, 256)
                -> Linear(256, 100) -> L2-normalise; logits against a fixed 100-class ETF -> (B, 100)
    label = (coarse + 1 - revert) / 2 + argmax(digit logits) / 10^4,  score = label * score_divisor

Labels, anchor modes, and the released quirks behind the ``legacy_*`` flags:
docs/models/cofinal-official.md.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aqakit.data.scale import ScoreScale
from aqakit.errors import ConfigError
from aqakit.models.base import Explanation, Prediction
from aqakit.models.blocks import hardest_triplet_loss
from aqakit.models.config import NonNegativeInt, Positive, PositiveInt
from aqakit.models.etf import SimplexETF
from aqakit.models.gdlt import GDLT, GDLTConfig, likert_weights
from aqakit.models.registry import register_model

DIGIT_CLASSES = 100  # the label's 3rd and 4th decimals: 00..99
DIGIT_SCALE = 10_000  # a digit class d adds d / 10^4 to the label
DIGIT_TOLERANCE = 1e-6  # absorbs float64 error in label * 10^4 (1.1484 * 10^4 is 11483.999...)
AnchorMode = Literal[0, 1, 2, 3]
TripletLabels = Literal["query", "embedding"]


@dataclass(frozen=True)
class CoFInAlOfficialConfig(GDLTConfig):
    """Released CoFInAl's hyper-parameters: GDLT's trunk plus the released head's settings and the
    ``legacy_*`` flags that restore released bugs (docs/models/cofinal-official.md)."""

    anchor_mode: AnchorMode = 3
    triplet_labels: TripletLabels = "query"
    digit_attention_heads: PositiveInt = 4
    digit_hidden_dim: PositiveInt = 256
    score_divisor: Positive | None = 25.0  # label = score / divisor; None learns the normalised score
    etf_seed: NonNegativeInt = 0
    legacy_batch_argmax: bool = False
    legacy_batch_attention: bool = False
    legacy_float32_digits: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.anchor_mode in (2, 3) and self.n_queries != 4:
            raise ConfigError(
                f"anchor_mode {self.anchor_mode} has four anchors, so n_queries must be 4, got {self.n_queries}"
            )
        if self.hidden_dim % self.digit_attention_heads:
            raise ConfigError(
                f"hidden_dim ({self.hidden_dim}) must be divisible by digit_attention_heads ({self.digit_attention_heads})"
            )


def released_anchors(mode: AnchorMode, n_queries: int) -> tuple[Tensor, Tensor]:
    """(coarse anchors (G,), revert anchors (G,)) of the released anchor ``mode`` 0-3."""
    if mode == 0:
        coarse = torch.linspace(0, 1, n_queries)
    elif mode == 1:
        coarse = torch.linspace(0, 1, n_queries + 1)[1:]
    elif mode == 2:
        return torch.tensor([0.1, 0.2, 0.8, 1.0]), torch.tensor([1.0, 1.0, -1.0, -1.0])
    else:
        coarse = torch.tensor([-1.0, -0.8, 0.8, 1.0])
    return coarse, coarse.flip(-1)


def label_reach(coarse_anchors: Tensor, revert_anchors: Tensor) -> tuple[float, float]:
    """The lowest and highest label :func:`decode_label` can give: the Likert weights are convex,
    so coarse and revert each stay within their anchors, and the digit adds at most 0.0099."""
    low = (float(coarse_anchors.min()) + 1.0 - float(revert_anchors.max())) / 2
    high = (float(coarse_anchors.max()) + 1.0 - float(revert_anchors.min())) / 2 + (DIGIT_CLASSES - 1) / DIGIT_SCALE
    return low, high


def _warn_if_out_of_reach(
    scale: ScoreScale, divisor: float, coarse_anchors: Tensor, revert_anchors: Tensor, anchor_mode: int
) -> None:
    """Warn when ``score_divisor`` puts training scores where the released decoding cannot reach."""
    low, high = (divisor * bound for bound in label_reach(coarse_anchors, revert_anchors))
    if scale.lo < low - 1e-9 or scale.hi > high + 1e-9:
        warnings.warn(
            f"cofinal-official: with score_divisor {divisor:g} and anchor mode {anchor_mode} only scores in "
            f"[{low:.4g}, {high:.4g}] can be predicted, but the training scores span [{scale.lo:.4g}, {scale.hi:.4g}] "
            "(the released code has the same limit); --set model.args.score_divisor=null learns the normalised score instead",
            stacklevel=3,
        )


def split_digits(label: Tensor, legacy_float32: bool = False) -> tuple[Tensor, Tensor]:
    """(B,) labels -> coarse target ``floor(label * 100) / 100`` (B,) float64 and digit (B,) long in [0, 100).

    ``coarse + digit / 10^4`` is the label truncated to four decimals (floor, so also below zero).
    ``legacy_float32`` computes ``(label * 10000).long()`` in float32 as released (truncation
    toward zero, sometimes one unit low).
    """
    if legacy_float32:
        units = (label.float() * DIGIT_SCALE).long()
    else:
        units = torch.floor(label.double() * DIGIT_SCALE + DIGIT_TOLERANCE).long()
    hundredths = torch.div(units, DIGIT_SCALE // DIGIT_CLASSES, rounding_mode="floor")
    return hundredths.double() / DIGIT_CLASSES, units - hundredths * DIGIT_CLASSES


def decimal_scores(scores: Tensor) -> Tensor:
    """(B,) scores -> float64; float32 ones rounded to the 7 significant digits float32 holds.

    aqakit batches carry scores as float32, where 28.71 is 28.7099991; the label files (and the
    released loader, which divides the float64 score) have 28.71. Any decimal of at most 7
    significant digits comes back exactly. Other dtypes are only widened. Tensor operations only,
    so it also runs inside ``torch.func.vmap`` (batched ensembles).
    """
    wide = scores.double()
    if scores.dtype != torch.float32:
        return wide
    exponent = torch.floor(torch.log10(wide.abs().clamp_min(1e-30)))
    scale = torch.pow(10.0, 6.0 - exponent)
    return torch.round(wide * scale) / scale


def decode_label(coarse: Tensor, revert: Tensor, digit: Tensor) -> Tensor:
    """The released decoding: ``(coarse + 1 - revert) / 2 + digit / 10^4``, all (B,)."""
    return (coarse + 1.0 - revert) / 2 + digit.to(coarse.dtype) / DIGIT_SCALE


@register_model
class CoFInAlOfficial(GDLT):
    """CoFInAl as released (see the module docstring): GDLT's trunk, coarse and revert Likert
    branches and a digit head on a fixed simplex ETF.

    Parts (batch first): ``grade_weights`` and ``revert_weights`` (B, G), ``coarse_score`` and
    ``revert_score`` (B,) in label space, ``digit_embedding`` (B, 100) unit length,
    ``digit_logits`` (B, 100), ``digit`` (B,) long, ``label`` (B,) the decoded label
    (score / ``score_divisor``), ``query_embeddings`` (B, G, H).
    """

    name = "cofinal-official"
    config_class = CoFInAlOfficialConfig
    config: CoFInAlOfficialConfig
    explanations = (
        Explanation(
            "grade_weights", "bars", "Weight of each coarse grade",
            "The coarse part of the score is the weighted mean of the grades' anchors; the digit head then "
            "adds the fine digits, so a tall bar is a grade the model judged this performance close to.",
            item="grade (1 = lowest)", value="weight (sums to 1)",
        ),
        Explanation(
            "revert_weights", "bars", "Weight of each reverted grade",
            "The same grades read from the top down (the released code's revert branch, trained on 1 - score); "
            "it should mirror the coarse weights.",
            item="reverted grade (1 = highest score)", value="weight (sums to 1)",
        ),
    )  # fmt: skip

    def __init__(self, in_dim: int, score_scale: ScoreScale, config: CoFInAlOfficialConfig | None = None) -> None:
        super().__init__(in_dim, score_scale, config)
        config = self.config
        hidden_dim, n_queries = config.hidden_dim, config.n_queries
        self.triplet_labels = config.triplet_labels
        self.score_divisor = config.score_divisor
        self.legacy_batch_argmax = config.legacy_batch_argmax
        self.legacy_batch_attention = config.legacy_batch_attention
        self.legacy_float32_digits = config.legacy_float32_digits

        coarse_anchors, revert_anchors = released_anchors(config.anchor_mode, n_queries)
        if self.score_divisor is not None:
            _warn_if_out_of_reach(score_scale, self.score_divisor, coarse_anchors, revert_anchors, config.anchor_mode)
        self.grade_anchors = coarse_anchors  # replaces GDLT's linspace(0, 1, G) buffer
        self.register_buffer("revert_anchors", revert_anchors)  # (G,)
        self.revert_head = nn.Linear(hidden_dim, n_queries)
        self.digit_attention = nn.MultiheadAttention(
            hidden_dim, config.digit_attention_heads, dropout=config.dropout, batch_first=True
        )
        self.digit_head = nn.Sequential(
            nn.Flatten(), nn.Linear(n_queries * hidden_dim, config.digit_hidden_dim),
            nn.Linear(config.digit_hidden_dim, DIGIT_CLASSES),
        )  # fmt: skip
        self.digit_etf = SimplexETF(DIGIT_CLASSES, DIGIT_CLASSES, config.etf_seed)

    def label_of_scores(self, scores: Tensor) -> Tensor:
        """(B,) original-scale scores -> the labels the model learns (float64)."""
        scores = decimal_scores(scores)
        return self.score_scale.normalise(scores) if self.score_divisor is None else scores / self.score_divisor

    def predict_normalised(self, features: Tensor, mask: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        query_embeddings = self.encode_queries(features, mask)  # (B, G, H)
        grade_weights = likert_weights(self.grade_head, query_embeddings)  # (B, G)
        revert_weights = likert_weights(self.revert_head, query_embeddings)  # (B, G)
        coarse, revert = grade_weights @ self.grade_anchors, revert_weights @ self.revert_anchors  # (B,)

        if self.legacy_batch_attention:  # released: sequence axis = the batch, one attention per query
            across_batch = query_embeddings.transpose(0, 1)  # (G, B, H)
            attended = self.digit_attention(across_batch, across_batch, across_batch)[0].transpose(0, 1)
        else:
            attended = self.digit_attention(query_embeddings, query_embeddings, query_embeddings)[0]  # (B, G, H)
        digit_embedding = F.normalize(self.digit_head(attended), dim=-1)  # (B, 100), unit length
        digit_logits = self.digit_etf(digit_embedding)  # (B, 100)
        if self.legacy_batch_argmax:  # released: one flat index over the whole batch, for every video
            digit = digit_logits.flatten().argmax().expand(len(digit_logits))
        else:
            digit = digit_logits.argmax(-1)  # (B,)

        label = decode_label(coarse, revert, digit)  # (B,), score / score_divisor
        if self.score_divisor is None:
            normalised = label
        else:
            normalised = self.score_scale.normalise(label * self.score_divisor)
        parts = {
            "grade_weights": grade_weights, "revert_weights": revert_weights,
            "coarse_score": coarse, "revert_score": revert,
            "digit_embedding": digit_embedding, "digit_logits": digit_logits, "digit": digit,
            "label": label, "query_embeddings": query_embeddings,
        }  # fmt: skip
        return normalised, parts

    def grade_band(self, parts: dict[str, Tensor]) -> None:
        """None: the coarse anchors live in label space and the digits move the score off them, so no
        grade covers a band of the score."""
        return None

    def loss(self, prediction: Prediction, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        parts = prediction.parts
        coarse, embeddings = parts["coarse_score"], parts["query_embeddings"]  # (B,), (B, G, H)
        coarse_target, digit_target = split_digits(
            self.label_of_scores(batch["score"]).to(coarse.device), self.legacy_float32_digits
        )
        coarse_target = coarse_target.to(coarse.dtype)
        digit_prototypes = self.digit_etf.vectors.T[digit_target]  # e_d (B, 100)

        n_batch, n_queries, _ = embeddings.shape
        if self.triplet_labels == "query":
            triplet_classes = torch.arange(n_queries, device=coarse.device).repeat(n_batch)  # (B*G,)
        else:
            triplet_classes = torch.arange(n_batch * n_queries, device=coarse.device)
        triplet = hardest_triplet_loss(embeddings.flatten(0, 1), triplet_classes, self.triplet_margin)
        return {
            "coarse": F.mse_loss(coarse, coarse_target),
            "revert": F.mse_loss(parts["revert_score"], 1.0 - coarse_target),
            "digit": F.l1_loss(parts["digit_embedding"], digit_prototypes),
            "triplet": self.triplet_weight * triplet,
        }

