"""GDLT: Likert scoring with grade decoupling (Xu et al., CVPR 2022), as its released code behaves.

Clip features are projected (``in_dim -> proj_dim -> hidden_dim``, BatchNorm over real clips),
encoded by a small post-norm transformer encoder, and ``G`` learnable grade queries read them
through a transformer decoder; each query's weight ``sigmoid(w_g . q_g + b_g)`` (normalised to
sum 1) weighs fixed grade anchors ``linspace(0, 1, G)``. A batch-hard triplet loss keeps the
grades apart. What follows the released code and what differs: docs/models/gdlt.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aqakit.data.scale import ScoreScale
from aqakit.errors import ConfigError
from aqakit.models.base import AQAModel, Explanation, GradeBand, Prediction
from aqakit.models.blocks import ClipProjection, hardest_triplet_loss
from aqakit.models.config import DropoutRate, HParams, NonNegative, PositiveInt, Range
from aqakit.models.registry import register_model


@dataclass(frozen=True)
class GDLTConfig(HParams):
    """GDLT's hyper-parameters (the released defaults); ``proj_dim`` None is ``in_dim // 2``."""

    hidden_dim: PositiveInt = 256
    proj_dim: PositiveInt | None = None
    n_heads: PositiveInt = 1
    n_encoder_layers: PositiveInt = 1
    n_decoder_layers: PositiveInt = 2
    n_queries: Annotated[int, Range(low=2)] = 4  # one grade per anchor
    ffn_mult: PositiveInt = 3
    dropout: DropoutRate = 0.3
    triplet_weight: NonNegative = 1.0
    triplet_margin: NonNegative = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.hidden_dim % self.n_heads:
            raise ConfigError(f"hidden_dim ({self.hidden_dim}) must be divisible by n_heads ({self.n_heads})")


@register_model
class GDLT(AQAModel):
    """GDLT (CVPR 2022) as released, with padding masks. Parts: ``grade_weights`` (B, G),
    ``query_embeddings`` (B, G, H)."""

    name = "gdlt"
    config_class = GDLTConfig
    config: GDLTConfig
    explanations = (
        Explanation(
            "grade_weights", "bars", "Weight of each grade",
            "The score is the weighted mean of the grades' anchor scores, equally spaced from the lowest "
            "training score (grade 1) to the highest; a tall bar is a grade the model judged this performance close to.",
            item="grade (1 = lowest)", value="weight (sums to 1)",
        ),
    )  # fmt: skip

    def __init__(self, in_dim: int, score_scale: ScoreScale, config: GDLTConfig | None = None) -> None:
        super().__init__(in_dim, score_scale, config)
        config = self.config
        hidden_dim, n_queries = config.hidden_dim, config.n_queries
        proj_dim = max(in_dim // 2, 1) if config.proj_dim is None else config.proj_dim
        self.triplet_weight = config.triplet_weight
        self.triplet_margin = config.triplet_margin

        self.clip_projection = ClipProjection(in_dim, [proj_dim, hidden_dim])
        layer_kwargs = dict(
            d_model=hidden_dim, nhead=config.n_heads, dim_feedforward=config.ffn_mult * hidden_dim,
            dropout=config.dropout, activation="relu", batch_first=True, norm_first=False,
        )  # fmt: skip
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(**layer_kwargs), config.n_encoder_layers,
            norm=nn.LayerNorm(hidden_dim), enable_nested_tensor=False,
        )  # fmt: skip
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(**layer_kwargs), config.n_decoder_layers, norm=nn.LayerNorm(hidden_dim)
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

    def grade_band(self, parts: dict[str, Tensor]) -> GradeBand:
        """The grade whose anchor is nearest the score (the Likert grade the weighted mean rounds to),
        covering the scores nearer its anchor than any other anchor."""
        anchors = self.grade_anchors  # (G,), ascending
        score = parts["grade_weights"] @ anchors  # (B,) normalised, as predict_normalised
        index = (score[:, None] - anchors).abs().argmin(dim=1)  # (B,)
        midpoints = (anchors[1:] + anchors[:-1]) / 2  # (G - 1,)
        low = torch.cat([anchors[:1], midpoints])[index]
        high = torch.cat([midpoints, anchors[-1:]])[index]
        return GradeBand(index, low, high, len(anchors))

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

