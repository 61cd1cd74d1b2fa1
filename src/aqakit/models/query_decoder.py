"""The interpretable long-term query decoder: weight-score regression with an attention loss.

Dong, Liu, Li, Adeyemi-Ejeye, Gilbert. "Interpretable Long-term Action Quality Assessment",
BMVC 2024 (https://github.com/dx199771/Interpretability-AQA).

Shapes (B videos, T clips, D = ``in_dim``, d = ``width``, K = ``n_queries``, N = ``n_layers``)::

    clips (B, T, D) --Linear D -> d (only when D != d)--> memory (B, T, d)
    queries Q (K, d), learnable, initialised N(0, query_init_variance); positions P (K, d) sinusoidal
    N pre-norm DETR decoder layers, each (x starts as Q):
        A_S = SelfAttn(q = k = LN(x) + P, v = LN(x))            (B, K, d)
        x   = x + Dropout(A_S)                                    the skip carrying A_S past cross-attention
        A_C = CrossAttn(q = LN(x) + P, k = v = memory, padded clips masked)   (B, K, d), weights (B, K, T)
        x   = x + Dropout(A_C);  x = x + Dropout(FFN(LN(x)))
    final LayerNorm -> query features (B, K, d)
    weight head MLP d -> d/2 -> d/4 -> 1, softmax over the K queries -> w (B, K)
    score head  MLP d -> d/2 -> d/4 -> 1                            -> s (B, K)
    score = sum_k w_k s_k  (Eq. 4), in the [0, 1] space of the dataset's ScoreScale
    loss = lambda_reg MSE + lambda_att sum_n KL(softmax(A_S A_S^T) || softmax(A_C A_C^T))  (Eqs. 1-3, 6)

Choices where the paper is silent or ambiguous (docs/models/query-decoder.md):

- **Width.** The paper's decoder is 1024 wide on 1024-d features with no projection. ``width``
  (default 1024) is the decoder width; features of another dimension go through one Linear
  ``in_dim -> width`` (no projection when they match).
- **Layer layout** follows the released code: pre-norm layers, FFN width = ``ffn_mult * width``
  (released: 1024, ``ffn_mult=1``), dropout also on the attention weights, a final LayerNorm,
  ReLU MLP heads ``d -> d/2 -> d/4 -> 1`` (released 1024 -> 512 -> 256 -> 1).
- **Query positions.** ``query_position="attention"`` (default) adds the sinusoidal code to the
  queries' attention inputs in every layer, as DETR and the released code do; ``"input"`` adds it
  once to the query content; ``"none"`` is Table 4's ablation. ``clip_position=True`` also adds a
  sinusoidal code to the cross-attention keys (Table 4's "memory" encoding; off by default).
- **Query initialisation.** The paper speaks of the *variance* (best 5); ``query_init_variance`` is
  the variance (std = its square root). The released code passes the value as a *std*
  (``init.normal_(std=query_var)``, 5 for Fis-V, 2 for RG).
- **Attention loss.** A_S, A_C are the sub-layer *outputs* (K x d) as the paper defines them.
  ``gram_scale="dim"`` (default) divides A A^T by d before the row softmax, as the released code
  does; ``"none"`` is Eq. 1-2 taken literally (the Gram entries grow with d and the softmax
  saturates). KL(L_S || L_C) (Eq. 3, ``attention_kl="self||cross"``) is summed over the K rows
  (the KL of two row-stochastic matrices), over layers, and averaged over videos
  (``attention_batch_reduction="mean"``). The released code computes KL(L_C || L_S)
  (``"cross||self"``: ``nn.KLDivLoss(log L_S, L_C)``) and sums over videos (``"sum"``).
- **Padding.** Padded clips are masked out of the cross-attention keys (the released code pads
  its 136-clip crops with zeros and never masks), so a padded clip never changes a score.

Legacy flags (default off) reproduce what the released code does differently:
``legacy_resample_queries`` draws the queries afresh from N(0, query_init_variance) for every video
on every forward pass, evaluation included (the learnable queries are unused, predictions are
random); ``legacy_drop_self_attention_residual`` makes the self-attention sub-layer return
``A_S + Dropout(A_S)`` instead of ``x + Dropout(A_S)``; ``legacy_prediction_noise_std`` (released:
0.05) adds N(0, std^2) noise to the predictions before the MSE (in aqakit's [0, 1] score space; the
released code works on Fis-V scores / 43). The released per-iteration learning-rate decay is a
training setting: ``optim.scheduler=step``, ``optim.scheduler_interval=step``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aqakit.data.scale import ScoreScale
from aqakit.errors import ConfigError
from aqakit.models import register_model
from aqakit.models.base import AQAModel, Prediction
from aqakit.models.blocks import sinusoidal_positions

QUERY_POSITIONS = ("attention", "input", "none")
GRAM_SCALES = ("dim", "none")
ATTENTION_KLS = ("self||cross", "cross||self")
BATCH_REDUCTIONS = ("mean", "sum")


def gram_similarity_logits(outputs: Tensor, gram_scale: str) -> Tensor:
    """(..., K, d) sub-layer outputs -> (..., K, K) logits ``A A^T`` (divided by d for ``"dim"``)."""
    gram = outputs @ outputs.transpose(-1, -2)
    return gram / outputs.shape[-1] if gram_scale == "dim" else gram


def attention_kl(self_outputs: Tensor, cross_outputs: Tensor, gram_scale: str = "dim", direction: str = "self||cross") -> Tensor:
    """Eq. 3 for one layer: row-wise KL between softmax(A_S A_S^T) and softmax(A_C A_C^T).

    Args:
        self_outputs: A_S (B, K, d), the self-attention sub-layer's output.
        cross_outputs: A_C (B, K, d), the cross-attention sub-layer's output.
        gram_scale: ``"dim"`` divides the Gram matrices by d, ``"none"`` does not.
        direction: ``"self||cross"`` is KL(L_S || L_C) (the paper), ``"cross||self"`` KL(L_C || L_S).

    Returns:
        (B,) the KL of every row summed over the K rows.
    """
    log_self = F.log_softmax(gram_similarity_logits(self_outputs, gram_scale), dim=-1)  # log L_S (B, K, K)
    log_cross = F.log_softmax(gram_similarity_logits(cross_outputs, gram_scale), dim=-1)  # log L_C
    if direction == "cross||self":
        log_self, log_cross = log_cross, log_self
    return (log_self.exp() * (log_self - log_cross)).sum(dim=(-1, -2))


class QueryDecoderLayer(nn.Module):
    """One pre-norm DETR decoder layer over K queries and T clips (see the module docstring)."""

    def __init__(self, width: int, n_heads: int, ffn_dim: int, dropout: float, self_residual: bool = True) -> None:
        super().__init__()
        self.self_residual = self_residual
        self.self_attention = nn.MultiheadAttention(width, n_heads, dropout=dropout, batch_first=True)
        self.cross_attention = nn.MultiheadAttention(width, n_heads, dropout=dropout, batch_first=True)
        self.feed_forward = nn.Sequential(
            nn.Linear(width, ffn_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn_dim, width)
        )
        self.self_norm, self.cross_norm, self.ffn_norm = (nn.LayerNorm(width) for _ in range(3))
        self.self_dropout, self.cross_dropout, self.ffn_dropout = (nn.Dropout(dropout) for _ in range(3))

    def forward(
        self, queries: Tensor, positions: Tensor | None, memory: Tensor, memory_keys: Tensor, padding: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """queries (B, K, d), positions (K, d) or None, memory and its keys (B, T, d), padding (B, T)
        True = padded -> queries (B, K, d), A_S (B, K, d), A_C (B, K, d), cross weights (B, K, T)."""
        normed = self.self_norm(queries)
        attend = normed if positions is None else normed + positions
        self_out = self.self_attention(attend, attend, normed, need_weights=False)[0]  # A_S
        queries = (queries if self.self_residual else self_out) + self.self_dropout(self_out)
        normed = self.cross_norm(queries)
        attend = normed if positions is None else normed + positions
        cross_out, cross_weights = self.cross_attention(
            attend, memory_keys, memory, key_padding_mask=padding, need_weights=True, average_attn_weights=True
        )  # A_C (B, K, d), head-averaged weights (B, K, T), exactly 0 on padding
        queries = queries + self.cross_dropout(cross_out)
        queries = queries + self.ffn_dropout(self.feed_forward(self.ffn_norm(queries)))
        return queries, self_out, cross_out, cross_weights


def _mlp(width: int) -> nn.Sequential:
    """The 3-layer head ``width -> width/2 -> width/4 -> 1`` with ReLUs (released 1024 -> 512 -> 256 -> 1)."""
    half, quarter = max(width // 2, 1), max(width // 4, 1)
    return nn.Sequential(nn.Linear(width, half), nn.ReLU(), nn.Linear(half, quarter), nn.ReLU(), nn.Linear(quarter, 1))


@register_model
class QueryDecoder(AQAModel):
    """The interpretable long-term query decoder (BMVC 2024); see the module docstring.

    Parts (batch first): ``query_weights`` w (B, K) (sum to 1), ``query_scores`` s (B, K) in the
    normalised score space (score = sum w s), ``cross_attention`` (B, K, T) head-averaged weights
    of the last layer and ``cross_attention_layers`` (B, N, K, T) of every layer (0 on padding),
    ``self_similarity`` L_S (B, K, K) of the last layer (the paper's Fig. 2 map), and
    ``attention_kl`` (B,) every video's attention loss summed over layers.
    """

    name = "query-decoder"

    def __init__(
        self,
        in_dim: int,
        score_scale: ScoreScale,
        width: int = 1024,
        n_heads: int = 4,
        n_layers: int = 2,
        n_queries: int = 136,
        ffn_mult: int = 1,
        dropout: float = 0.7,
        query_init_variance: float = 5.0,
        query_position: str = "attention",
        clip_position: bool = False,
        lambda_reg: float = 1.0,
        lambda_att: float = 1.0,
        gram_scale: str = "dim",
        attention_kl: str = "self||cross",
        attention_batch_reduction: str = "mean",
        legacy_resample_queries: bool = False,
        legacy_drop_self_attention_residual: bool = False,
        legacy_prediction_noise_std: float = 0.0,
    ) -> None:
        hparams: dict[str, Any] = dict(
            width=width, n_heads=n_heads, n_layers=n_layers, n_queries=n_queries, ffn_mult=ffn_mult,
            dropout=dropout, query_init_variance=query_init_variance, query_position=query_position,
            clip_position=clip_position, lambda_reg=lambda_reg, lambda_att=lambda_att,
            gram_scale=gram_scale, attention_kl=attention_kl,
            attention_batch_reduction=attention_batch_reduction,
            legacy_resample_queries=legacy_resample_queries,
            legacy_drop_self_attention_residual=legacy_drop_self_attention_residual,
            legacy_prediction_noise_std=legacy_prediction_noise_std,
        )  # fmt: skip
        super().__init__(in_dim, score_scale, hparams)
        _validate(hparams)
        self.query_position, self.clip_position = query_position, clip_position
        self.lambda_reg, self.lambda_att = float(lambda_reg), float(lambda_att)
        self.gram_scale, self.attention_kl_direction = gram_scale, attention_kl
        self.attention_batch_reduction = attention_batch_reduction
        self.legacy_resample_queries = legacy_resample_queries
        self.legacy_prediction_noise_std = float(legacy_prediction_noise_std)
        self.query_init_std = math.sqrt(float(query_init_variance))

        self.input_projection = nn.Identity() if in_dim == width else nn.Linear(in_dim, width)
        self.queries = nn.Parameter(torch.randn(n_queries, width) * self.query_init_std)  # Q (K, d)
        self.register_buffer("query_positions", sinusoidal_positions(n_queries, width), persistent=False)
        self.layers = nn.ModuleList(
            QueryDecoderLayer(width, n_heads, ffn_mult * width, dropout, not legacy_drop_self_attention_residual)
            for _ in range(n_layers)
        )
        self.final_norm = nn.LayerNorm(width)
        self.weight_head, self.score_head = _mlp(width), _mlp(width)

    def initial_queries(self, batch: int) -> Tensor:
        """(B, K, d): the learnable queries, or fresh N(0, variance) noise per video (legacy)."""
        if self.legacy_resample_queries:
            return torch.randn(batch, *self.queries.shape, device=self.queries.device) * self.query_init_std
        return self.queries.unsqueeze(0).expand(batch, -1, -1)

    def predict_normalised(self, features: Tensor, mask: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        memory = self.input_projection(features)  # (B, T, d)
        memory_keys = memory
        if self.clip_position:
            memory_keys = memory + sinusoidal_positions(memory.shape[1], memory.shape[2]).to(memory.device)
        queries = self.initial_queries(features.shape[0])  # (B, K, d)
        positions = self.query_positions if self.query_position == "attention" else None
        if self.query_position == "input":
            queries = queries + self.query_positions

        padding = ~mask  # torch convention: True = ignore
        kl_per_video = memory.new_zeros(features.shape[0])  # (B,)
        cross_weights: list[Tensor] = []
        for layer in self.layers:
            queries, self_out, cross_out, weights = layer(queries, positions, memory, memory_keys, padding)
            kl_per_video = kl_per_video + attention_kl(self_out, cross_out, self.gram_scale, self.attention_kl_direction)
            cross_weights.append(weights)
        query_features = self.final_norm(queries)  # (B, K, d)

        query_weights = self.weight_head(query_features).squeeze(-1).softmax(dim=1)  # w (B, K)
        query_scores = self.score_head(query_features).squeeze(-1)  # s (B, K)
        score = (query_weights * query_scores).sum(dim=1)  # Eq. 4, (B,)
        parts = {
            "query_weights": query_weights,
            "query_scores": query_scores,
            "cross_attention": cross_weights[-1],
            "cross_attention_layers": torch.stack(cross_weights, dim=1),  # (B, N, K, T)
            "self_similarity": gram_similarity_logits(self_out, self.gram_scale).softmax(dim=-1),  # L_S (B, K, K)
            "attention_kl": kl_per_video,
        }
        return score, parts

    def loss(self, prediction: Prediction, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        predicted = prediction.normalised_score
        if self.legacy_prediction_noise_std > 0:  # released: predictions + N(0, 0.05^2) before the MSE
            predicted = predicted + torch.randn_like(predicted) * self.legacy_prediction_noise_std
        target = self.normalised_target(batch).to(predicted.device)
        kl = prediction.parts["attention_kl"]
        attention = kl.mean() if self.attention_batch_reduction == "mean" else kl.sum()
        return {"mse": self.lambda_reg * F.mse_loss(predicted, target), "attention": self.lambda_att * attention}


def _validate(hp: dict[str, Any]) -> None:
    """Raise ConfigError on a query-decoder hyper-parameter that cannot build a model."""
    for key in ("width", "n_heads", "n_layers", "n_queries", "ffn_mult"):
        value = hp[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"query-decoder: {key} must be a positive integer, got {value!r}")
    if hp["width"] % hp["n_heads"]:
        raise ConfigError(
            f"query-decoder: width ({hp['width']}) must be divisible by n_heads ({hp['n_heads']})"
        )
    if not 0.0 <= _number(hp, "dropout") < 1.0:
        raise ConfigError(f"query-decoder: dropout must be in [0, 1), got {hp['dropout']!r}")
    if not _number(hp, "query_init_variance") > 0.0:
        raise ConfigError(f"query-decoder: query_init_variance must be positive, got {hp['query_init_variance']!r}")
    for key in ("lambda_reg", "lambda_att", "legacy_prediction_noise_std"):
        if not _number(hp, key) >= 0.0:
            raise ConfigError(f"query-decoder: {key} must be a non-negative number, got {hp[key]!r}")
    for key in ("clip_position", "legacy_resample_queries", "legacy_drop_self_attention_residual"):
        if not isinstance(hp[key], bool):
            raise ConfigError(f"query-decoder: {key} must be true or false, got {hp[key]!r}")
    for key, allowed in (
        ("query_position", QUERY_POSITIONS),
        ("gram_scale", GRAM_SCALES),
        ("attention_kl", ATTENTION_KLS),
        ("attention_batch_reduction", BATCH_REDUCTIONS),
    ):
        if hp[key] not in allowed:
            raise ConfigError(f"query-decoder: {key} must be one of {', '.join(allowed)}, got {hp[key]!r}")


def _number(hp: dict[str, Any], key: str) -> float:
    value = hp[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"query-decoder: {key} must be a number, got {value!r}")
    return float(value)
