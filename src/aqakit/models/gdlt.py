"""GDLT: Likert scoring with grade decoupling.

Xu, Rao, Zhou, Lu. "Likert Scoring with Grade Decoupling for Long-term Action Assessment",
CVPR 2022 (https://github.com/xuangch/CVPR22_GDLT).

Clip features are projected (``in_dim -> proj_dim -> hidden_dim``, BatchNorm), encoded by a small
post-norm transformer encoder, and ``G`` learnable *grade queries* read the encoded clips through a
transformer decoder. Each query ``g`` gets a weight ``sigmoid(w_g . q_g + b_g)`` (the diagonal of a
``Linear(hidden, G)`` over the G outputs), the weights are normalised to sum to one, and the score is
their weighted mean of fixed grade anchors ``linspace(0, 1, G)`` (Likert scoring). A batch-hard
triplet loss (cosine distance) on the query embeddings keeps the grades apart.

What follows the released code: layer sizes and defaults, post-norm layers with dropout 0.3 also in
attention, final LayerNorms after encoder and decoder, no positional encoding, xavier-uniform
re-initialisation of every transformer matrix, N(0, 1) query init, the diagonal head.
What differs: padded batches are masked everywhere (the projection's BatchNorm statistics, the
encoder's self-attention and the decoder's cross-attention); the released code trains on
fixed-length crops and never masks.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aqakit.data.scale import ScoreScale
from aqakit.errors import ConfigError
from aqakit.models import register_model
from aqakit.models.base import AQAModel, Prediction
from aqakit.models.blocks import ClipProjection, hardest_triplet_loss


@register_model
class GDLT(AQAModel):
    """GDLT (CVPR 2022) as released, with padding masks. Parts: ``grade_weights`` (B, G),
    ``query_embeddings`` (B, G, H)."""

    name = "gdlt"

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
    ) -> None:
        hparams: dict[str, Any] = dict(
            hidden_dim=hidden_dim, proj_dim=proj_dim, n_heads=n_heads,
            n_encoder_layers=n_encoder_layers, n_decoder_layers=n_decoder_layers,
            n_queries=n_queries, ffn_mult=ffn_mult, dropout=dropout,
            triplet_weight=triplet_weight, triplet_margin=triplet_margin,
        )  # fmt: skip
        super().__init__(in_dim, score_scale, hparams)
        _validate(hparams, self.name)
        proj_dim = max(in_dim // 2, 1) if proj_dim is None else proj_dim
        self.triplet_weight = float(triplet_weight)
        self.triplet_margin = float(triplet_margin)

        self.clip_projection = ClipProjection(in_dim, [proj_dim, hidden_dim])
        layer_kwargs = dict(
            d_model=hidden_dim, nhead=n_heads, dim_feedforward=ffn_mult * hidden_dim,
            dropout=dropout, activation="relu", batch_first=True, norm_first=False,
        )  # fmt: skip
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(**layer_kwargs), n_encoder_layers,
            norm=nn.LayerNorm(hidden_dim), enable_nested_tensor=False,
        )  # fmt: skip
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(**layer_kwargs), n_decoder_layers, norm=nn.LayerNorm(hidden_dim)
        )
        for module in (self.encoder, self.decoder):  # as the released Transformer._reset_parameters
            for param in module.parameters():
                if param.dim() > 1:
                    nn.init.xavier_uniform_(param)

        self.grade_queries = nn.Embedding(n_queries, hidden_dim)  # N(0, 1) init, as released
        self.grade_head = nn.Linear(hidden_dim, n_queries)
        self.register_buffer("grade_anchors", torch.linspace(0, 1, n_queries))  # (G,)

    def encode_queries(self, features: Tensor, mask: Tensor) -> Tensor:
        """The trunk: features (B, T, D), mask (B, T) -> grade query embeddings (B, G, H)."""
        batch = features.shape[0]
        clips = self.clip_projection(features, mask)  # (B, T, H)
        padding = ~mask  # torch convention: True = ignore
        memory = self.encoder(clips, src_key_padding_mask=padding)  # (B, T, H)
        queries = self.grade_queries.weight.unsqueeze(0).expand(batch, -1, -1)  # (B, G, H)
        return self.decoder(queries, memory, memory_key_padding_mask=padding)  # (B, G, H)

    def predict_normalised(self, features: Tensor, mask: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        query_embeddings = self.encode_queries(features, mask)  # (B, G, H)
        grade_weights = likert_weights(self.grade_head, query_embeddings)  # (B, G)
        score = grade_weights @ self.grade_anchors  # (B,)
        return score, {"grade_weights": grade_weights, "query_embeddings": query_embeddings}

    def loss(self, prediction: Prediction, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        embeddings = prediction.parts["query_embeddings"]  # (B, G, H)
        n_batch, n_queries, _ = embeddings.shape
        grade_labels = torch.arange(n_queries, device=embeddings.device).repeat(n_batch)  # (B*G,)
        triplet = hardest_triplet_loss(embeddings.flatten(0, 1), grade_labels, self.triplet_margin)
        mse = F.mse_loss(prediction.normalised_score, self.normalised_target(batch))
        return {"mse": mse, "triplet": self.triplet_weight * triplet}


def likert_weights(head: nn.Linear, query_embeddings: Tensor) -> Tensor:
    """GDLT's grade weights: query g through output g of ``head`` (the diagonal), sigmoid, sum to 1.

    head: Linear(H, G); query_embeddings (B, G, H) -> (B, G), positive, each row sums to 1.
    """
    logits = head(query_embeddings).diagonal(dim1=-2, dim2=-1)  # (B, G): query g, output g
    weights = torch.sigmoid(logits)
    return weights / weights.sum(dim=1, keepdim=True)


def _validate(hp: dict[str, Any], model: str) -> None:
    """Raise ConfigError on a GDLT (trunk) hyper-parameter that cannot build a model."""

    def positive_int(key: str) -> None:
        value = hp[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{model}: {key} must be a positive integer, got {value!r}")

    for key in ("hidden_dim", "n_heads", "n_encoder_layers", "n_decoder_layers", "n_queries", "ffn_mult"):
        positive_int(key)
    if hp["proj_dim"] is not None:
        positive_int("proj_dim")
    if hp["hidden_dim"] % hp["n_heads"]:
        raise ConfigError(
            f"{model}: hidden_dim ({hp['hidden_dim']}) must be divisible by n_heads ({hp['n_heads']})"
        )
    if hp["n_queries"] < 2:
        raise ConfigError(f"{model}: n_queries must be at least 2 (one grade per anchor), got {hp['n_queries']}")
    if not 0.0 <= _number(hp, "dropout", model) < 1.0:
        raise ConfigError(f"{model}: dropout must be in [0, 1), got {hp['dropout']!r}")
    for key in ("triplet_weight", "triplet_margin"):
        if not _number(hp, key, model) >= 0.0:
            raise ConfigError(f"{model}: {key} must be a non-negative number, got {hp[key]!r}")


def _number(hp: dict[str, Any], key: str, model: str) -> float:
    value = hp[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{model}: {key} must be a number, got {value!r}")
    return float(value)
