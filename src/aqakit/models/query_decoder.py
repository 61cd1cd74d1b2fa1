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

The choices where the paper is silent or ambiguous and the ``legacy_*`` flags that reproduce the
released code: docs/models/query-decoder.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aqakit.data.scale import ScoreScale
from aqakit.errors import ConfigError
from aqakit.models.base import AQAModel, Explanation, Prediction
from aqakit.models.blocks import sinusoidal_positions
from aqakit.models.config import DropoutRate, HParams, NonNegative, Positive, PositiveInt
from aqakit.models.registry import register_model

QueryPosition = Literal["attention", "input", "none"]
GramScale = Literal["dim", "none"]
AttentionKL = Literal["self||cross", "cross||self"]
BatchReduction = Literal["mean", "sum"]


@dataclass(frozen=True)
class QueryDecoderConfig(HParams):
    """The query decoder's hyper-parameters (the paper's Fis-V settings) and the ``legacy_*`` flags
    that reproduce what the released code does differently (docs/models/query-decoder.md)."""

    width: PositiveInt = 1024
    n_heads: PositiveInt = 4
    n_layers: PositiveInt = 2
    n_queries: PositiveInt = 136
    ffn_mult: PositiveInt = 1
    dropout: DropoutRate = 0.7
    query_init_variance: Positive = 5.0
    query_position: QueryPosition = "attention"
    clip_position: bool = False
    lambda_reg: NonNegative = 1.0
    lambda_att: NonNegative = 1.0
    gram_scale: GramScale = "dim"
    attention_kl: AttentionKL = "self||cross"
    attention_batch_reduction: BatchReduction = "mean"
    legacy_resample_queries: bool = False
    legacy_drop_self_attention_residual: bool = False
    legacy_prediction_noise_std: NonNegative = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.width % self.n_heads:
            raise ConfigError(f"width ({self.width}) must be divisible by n_heads ({self.n_heads})")


def gram_similarity_logits(outputs: Tensor, gram_scale: GramScale) -> Tensor:
    """(..., K, d) sub-layer outputs -> (..., K, K) logits ``A A^T`` (divided by d for ``"dim"``)."""
    gram = outputs @ outputs.transpose(-1, -2)
    return gram / outputs.shape[-1] if gram_scale == "dim" else gram


def attention_kl(
    self_outputs: Tensor, cross_outputs: Tensor, gram_scale: GramScale = "dim", direction: AttentionKL = "self||cross"
) -> Tensor:
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
    config_class = QueryDecoderConfig
    config: QueryDecoderConfig
    explanations = (
        Explanation(
            "query_weights", "bars", "Weight of each query",
            "Each learnable query reads part of the video and scores it; the final score is the queries' "
            "scores averaged with these weights.",
            item="query", value="weight (sums to 1)",
        ),
        Explanation(
            "query_scores", "bars", "Each query's score",
            "The score each query gives the part of the video it reads; weighted by the bars above, they "
            "average to the predicted score.",
            item="query", value="score (original scale)", normalised=True,
        ),
        Explanation(
            "cross_attention", "clip_map", "What each query reads",
            "Each row is one query; dark cells are the clips it attends to in the last decoder layer (each row "
            "sums to 1 over the clips).",
            item="query", value="attention",
        ),
        Explanation(
            "self_similarity", "matrix", "How alike the queries are",
            "Row k: how much query k resembles each other query (softmax of their similarity); a dark diagonal "
            "means the queries read different things.",
            item="query", value="similarity (rows sum to 1)", columns="query",
        ),
    )  # fmt: skip

    def __init__(self, in_dim: int, score_scale: ScoreScale, config: QueryDecoderConfig | None = None) -> None:
        super().__init__(in_dim, score_scale, config)
        config = self.config
        width, n_queries = config.width, config.n_queries
        self.query_position, self.clip_position = config.query_position, config.clip_position
        self.lambda_reg, self.lambda_att = config.lambda_reg, config.lambda_att
        self.gram_scale, self.attention_kl_direction = config.gram_scale, config.attention_kl
        self.attention_batch_reduction = config.attention_batch_reduction
        self.legacy_resample_queries = config.legacy_resample_queries
        self.legacy_prediction_noise_std = config.legacy_prediction_noise_std
        self.query_init_std = math.sqrt(config.query_init_variance)

        self.input_projection = nn.Identity() if in_dim == width else nn.Linear(in_dim, width)
        self.queries = nn.Parameter(torch.randn(n_queries, width) * self.query_init_std)  # Q (K, d)
        self.register_buffer("query_positions", sinusoidal_positions(n_queries, width), persistent=False)
        self.layers = nn.ModuleList(
            QueryDecoderLayer(
                width, config.n_heads, config.ffn_mult * width, config.dropout,
                not config.legacy_drop_self_attention_residual,
            )  # fmt: skip
            for _ in range(config.n_layers)
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

