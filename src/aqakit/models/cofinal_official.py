"""CoFInAl as its released code behaves: GDLT plus a revert branch and an ETF head over score digits.

The released code (github.com/ZhouKanglei/CoFInAl_AQA, ``models/model.py`` class ``cofinal``,
``models/loss.py``, ``train.py``, ``test.py``) does not implement the paper's Temporal Fusion
Module, Grade Parsing Module or graph regulariser (the paper's model is ``cofinal``). It is this,
for comparison with the published numbers. Shapes: B videos, T clips, G = ``n_queries`` (4), H =
``hidden_dim``::

    GDLT trunk (aqakit.models.gdlt): projection, encoder, G grade queries through the decoder
        -> query_embeddings (B, G, H)
    coarse branch: GDLT's Likert weights (diagonal Linear(H, G), sigmoid, sum 1) . anchors   -> coarse (B,)
    revert branch: the same with its own Linear(H, G) and the "revert" anchors               -> revert (B,)
    digit head:    multi-head self-attention over the G query embeddings of each video,
                   Flatten -> Linear(G*H, 256) -> Linear(256, 100) -> L2-normalise           -> (B, 100)
                   digit logits = embedding . E, E a fixed 100-class simplex ETF in R^100    -> (B, 100)
    label = (coarse + 1 - revert) / 2 + argmax(digit logits) / 10^4

Labels. The model learns ``label = score / score_divisor`` (25, as the released loader divides
every score by 25, also Fis-V's); ``score_divisor=None`` learns the run's normalised score
(``ScoreScale``, [0, 1]) instead. The label's first two decimals are the coarse target,
``c = floor(label * 100) / 100``; the revert branch's target is ``1 - c``; its third and fourth
decimals ``d = floor(label * 10^4) mod 100`` pick the digit head's target, ETF column ``e_d``.
Loss = MSE(coarse, c) + MSE(revert, 1 - c) + L1(embedding, e_d) (mean over the 100 entries, as
``nn.L1Loss``) + ``triplet_weight`` x batch-hard triplet loss (cosine, GDLT's) on the query
embeddings. The released Fis-V script uses ``triplet_weight`` 0.5 and anchor mode 3, RG 1.0.

Anchor modes (the released ``--activate_regular_restrictions``; coarse / revert anchors):
0: linspace(0, 1, G) / reversed; 1: linspace(0, 1, G + 1)[1:] / reversed; 2: [0.1, 0.2, 0.8, 1] /
[1, 1, -1, -1] (not a reversal: as released); 3: [-1, -0.8, 0.8, 1] / reversed. Modes 2 and 3
exist only for G = 4. Triplet labels (the released ``--loss_align``): ``"query"`` (modes 0 and 1,
which give the same equalities: each query index is a class, as GDLT) or ``"embedding"`` (mode 2:
every query embedding of the batch its own class, so the loss only pushes nearest neighbours apart).

Released quirks and how they are handled here (each bug that silently changes results is fixed,
its old behaviour behind a legacy flag that is off by default):

- ``legacy_batch_argmax``: the released ``get_score`` takes ``torch.argmax`` of the whole
  (B, 100) logit matrix, one flat index in [0, 100 B) added (/10^4) to every video of the batch.
  Its test loader has batch 1, so published test numbers are per-video; aqakit scores in batches,
  where this bug would change every score. Default: argmax per video.
- ``legacy_batch_attention``: the released ``nn.MultiheadAttention`` is built without
  ``batch_first`` and called on (B, G, H), so it attends across the B videos of the batch (one
  attention per query index), not over a video's G queries; at test time (batch 1) it degenerates
  to a per-query linear map. Default: attention over each video's own G query embeddings. To mimic
  the released one-video test pass too, add ``--set train.eval_batch_size=1``.
- ``legacy_float32_digits``: the released targets are ``(label * 10000).long()`` in float32, which
  truncates e.g. 1.1484 to 11483 (digit 83, not 84): on Fis-V 39 of the 500 TES labels and 22 of
  the 500 PCS labels get a digit one unit low. Default: float64 floor with a 1e-6 tolerance, after
  reading float32 scores back as their shortest decimal (:func:`decimal_scores`), exact for
  scores with two decimals; the flag reproduces the released digits.
- ``score_divisor`` (25): every score / 25 as released, also for Fis-V, whose TES (6-43) and PCS
  (10-38) mostly exceed 25 (with anchor mode 3 the coarse branch cannot reach labels above 1 and
  nothing above 37.75 points can be predicted; docs/models/cofinal-official.md). A model option,
  not a ``score_range``, so the run's ScoreScale (and R-l2) stay comparable with other models;
  ``None`` learns the run's normalised [0, 1] score instead.
- ``digit_hidden_dim``: the released head is ``Linear(4 H, 256) -> Linear(H, 100)``, which only runs
  for H = 256 (its Fis-V script's H = 448 fails there); here the middle width is its own setting
  (256), so any H works, and the Flatten width follows G (the released code hard-codes 4).
- Kept as released: no activation between the two Linears; the decoded label is not clamped; the
  ETF is fixed (a seeded buffer; the released one comes from numpy's global seed).
- Differences inherited from aqakit's ``gdlt`` (docs/models/gdlt.md): masks on padded batches,
  every Fis-V label row kept.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aqakit.data.scale import ScoreScale
from aqakit.errors import ConfigError
from aqakit.models import register_model
from aqakit.models.base import Prediction
from aqakit.models.blocks import hardest_triplet_loss
from aqakit.models.etf import SimplexETF
from aqakit.models.gdlt import GDLT, likert_weights

DIGIT_CLASSES = 100  # the label's 3rd and 4th decimals: 00..99
DIGIT_SCALE = 10_000  # a digit class d adds d / 10^4 to the label
DIGIT_TOLERANCE = 1e-6  # absorbs float64 error in label * 10^4 (1.1484 * 10^4 is 11483.999...)
ANCHOR_MODES = (0, 1, 2, 3)
TRIPLET_LABELS = ("query", "embedding")


def released_anchors(mode: int, n_queries: int) -> tuple[Tensor, Tensor]:
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

    def __init__(
        self,
        in_dim: int,
        score_scale: ScoreScale,
        hidden_dim: int = 256,
        proj_dim: int | None = None,
        n_heads: int = 1,
        n_encoder_layers: int = 1,
        n_decoder_layers: int = 2,
        n_queries: int = 4,
        ffn_mult: int = 3,
        dropout: float = 0.3,
        triplet_weight: float = 1.0,
        triplet_margin: float = 1.0,
        anchor_mode: int = 3,
        triplet_labels: str = "query",
        digit_attention_heads: int = 4,
        digit_hidden_dim: int = 256,
        score_divisor: float | None = 25.0,
        etf_seed: int = 0,
        legacy_batch_argmax: bool = False,
        legacy_batch_attention: bool = False,
        legacy_float32_digits: bool = False,
    ) -> None:
        super().__init__(
            in_dim, score_scale, hidden_dim=hidden_dim, proj_dim=proj_dim, n_heads=n_heads,
            n_encoder_layers=n_encoder_layers, n_decoder_layers=n_decoder_layers, n_queries=n_queries,
            ffn_mult=ffn_mult, dropout=dropout, triplet_weight=triplet_weight, triplet_margin=triplet_margin,
        )  # fmt: skip
        released: dict[str, Any] = dict(
            anchor_mode=anchor_mode, triplet_labels=triplet_labels,
            digit_attention_heads=digit_attention_heads, digit_hidden_dim=digit_hidden_dim,
            score_divisor=score_divisor, etf_seed=etf_seed, legacy_batch_argmax=legacy_batch_argmax,
            legacy_batch_attention=legacy_batch_attention, legacy_float32_digits=legacy_float32_digits,
        )  # fmt: skip
        self.hparams.update(released)
        _validate(self.hparams)
        self.triplet_labels = triplet_labels
        self.score_divisor = None if score_divisor is None else float(score_divisor)
        self.legacy_batch_argmax = legacy_batch_argmax
        self.legacy_batch_attention = legacy_batch_attention
        self.legacy_float32_digits = legacy_float32_digits

        coarse_anchors, revert_anchors = released_anchors(anchor_mode, n_queries)
        if self.score_divisor is not None:
            _warn_if_out_of_reach(score_scale, self.score_divisor, coarse_anchors, revert_anchors, anchor_mode)
        self.grade_anchors = coarse_anchors  # replaces GDLT's linspace(0, 1, G) buffer
        self.register_buffer("revert_anchors", revert_anchors)  # (G,)
        self.revert_head = nn.Linear(hidden_dim, n_queries)
        self.digit_attention = nn.MultiheadAttention(
            hidden_dim, digit_attention_heads, dropout=dropout, batch_first=True
        )
        self.digit_head = nn.Sequential(
            nn.Flatten(), nn.Linear(n_queries * hidden_dim, digit_hidden_dim), nn.Linear(digit_hidden_dim, DIGIT_CLASSES)
        )
        self.digit_etf = SimplexETF(DIGIT_CLASSES, DIGIT_CLASSES, etf_seed)

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


def _validate(hp: dict[str, Any]) -> None:
    """Raise ConfigError on a released-CoFInAl setting that cannot build a model (the trunk's are GDLT's)."""
    name = CoFInAlOfficial.name

    def positive_int(key: str) -> int:
        value = hp[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name}: {key} must be a positive integer, got {value!r}")
        return value

    mode = hp["anchor_mode"]
    if isinstance(mode, bool) or mode not in ANCHOR_MODES:
        raise ConfigError(f"{name}: anchor_mode must be 0, 1, 2 or 3, got {mode!r}")
    if mode in (2, 3) and hp["n_queries"] != 4:
        raise ConfigError(f"{name}: anchor_mode {mode} has four anchors, so n_queries must be 4, got {hp['n_queries']}")
    if hp["triplet_labels"] not in TRIPLET_LABELS:
        raise ConfigError(
            f"{name}: triplet_labels must be one of {', '.join(TRIPLET_LABELS)}, got {hp['triplet_labels']!r}"
        )
    heads = positive_int("digit_attention_heads")
    if hp["hidden_dim"] % heads:
        raise ConfigError(
            f"{name}: hidden_dim ({hp['hidden_dim']}) must be divisible by digit_attention_heads ({heads})"
        )
    positive_int("digit_hidden_dim")
    divisor = hp["score_divisor"]
    if divisor is not None and (
        isinstance(divisor, bool) or not isinstance(divisor, (int, float)) or not math.isfinite(divisor) or divisor <= 0
    ):
        raise ConfigError(f"{name}: score_divisor must be a positive number or null, got {divisor!r}")
    seed = hp["etf_seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"{name}: etf_seed must be a non-negative integer, got {seed!r}")
    for key in ("legacy_batch_argmax", "legacy_batch_attention", "legacy_float32_digits"):
        if not isinstance(hp[key], bool):
            raise ConfigError(f"{name}: {key} must be true or false, got {hp[key]!r}")
