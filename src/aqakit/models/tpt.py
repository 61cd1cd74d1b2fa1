"""TPT: the Temporal Parsing Transformer (Bai et al., ECCV 2022) on frozen clip features.

``K`` learnable part queries parse a video's clips into ``K`` temporal parts through a decoder of
single-head cross-attention with a learnable temperature (softmax over time, no positional
encoding), a feed-forward block and multi-head self-attention among the parts. A query video's
parts and an exemplar's are compared part by part (a shared MLP on ``[p_k ; p0_k]``, averaged over
the parts) and a group-aware head predicts their score difference
(:class:`~aqakit.models.pair.PairModel`). Two losses on every layer's attention shape the parts:
a ranking loss that orders the attention centres ``mu_k = sum_t t alpha_kt`` in time between
virtual centres at 1 and T (Eq. 9), and a sparsity loss ``sum_t |t - mu_k| alpha_kt`` (Eq. 10).
What follows the paper, what follows the released code and the choices made: docs/models/tpt.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aqakit.data.exemplars import Exemplars
from aqakit.data.scale import ScoreScale
from aqakit.errors import ConfigError, DataError
from aqakit.models.base import Explanation, Prediction
from aqakit.models.config import DropoutRate, NonNegative, Positive, PositiveInt
from aqakit.models.group_aware import GroupAwareHead
from aqakit.models.pair import PairConfig, PairModel
from aqakit.models.registry import register_model


@dataclass(frozen=True)
class TPTConfig(PairConfig):
    """TPT's hyper-parameters (released defaults where the release gives them; docs/models/tpt.md).

    ``projection``: ``shared`` embeds the clips once with one Linear from the input dimension and
    attends with ``(p_k + q_k) . v_t`` (the paper's Eq. 4); ``per-layer`` gives every layer its own
    key, value and query Linear (the released code). ``self_attention``: in the ``first`` layer
    only (released), in ``every`` layer, or ``none``. The ranking margin needs
    ``(n_parts + 1) * rank_margin + 1`` clips; ``margin_policy`` ``scale`` shrinks it for shorter
    videos, ``refuse`` raises instead. ``both_directions`` also trains each pair reversed.
    """

    hidden_dim: PositiveInt = 512
    n_parts: PositiveInt = 5
    n_layers: PositiveInt = 2
    n_heads: PositiveInt = 8
    ffn_dim: PositiveInt = 512
    dropout: DropoutRate = 0.1
    temperature: Positive = 0.07
    projection: Literal["shared", "per-layer"] = "shared"
    self_attention: Literal["first", "every", "none"] = "first"
    rank_weight: NonNegative = 1.0
    sparsity_weight: NonNegative = 0.05
    rank_margin: NonNegative = 2.0
    margin_policy: Literal["scale", "refuse"] = "scale"
    both_directions: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.hidden_dim % self.n_heads:
            raise ConfigError(f"hidden_dim ({self.hidden_dim}) must be divisible by n_heads ({self.n_heads})")


class PartDecoderLayer(nn.Module):
    """Cross-attention of the parts over the clips -> FFN -> (optional) self-attention among the parts."""

    def __init__(self, clip_dim: int, config: TPTConfig, self_attention: bool) -> None:
        super().__init__()
        d = config.hidden_dim
        self.own_projection = config.projection == "per-layer"
        if self.own_projection:
            self.key = nn.Linear(clip_dim, d)
            self.value = nn.Linear(clip_dim, d)
            self.query = nn.Linear(d, d)
        # Learnt as its logarithm so it stays positive (the release learns it directly and lets it cross 0).
        self.log_temperature = nn.Parameter(torch.tensor(config.temperature).log())
        self.norm_cross, self.norm_ffn = nn.LayerNorm(d), nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, config.ffn_dim), nn.ReLU(), nn.Dropout(config.dropout),
                                 nn.Linear(config.ffn_dim, d))
        self.dropout = nn.Dropout(config.dropout)
        self.self_attention = (
            nn.MultiheadAttention(d, config.n_heads, dropout=config.dropout, batch_first=True) if self_attention else None
        )
        self.norm_self = nn.LayerNorm(d) if self_attention else None

    def forward(self, clips: Tensor, mask: Tensor, parts: Tensor, queries: Tensor) -> tuple[Tensor, Tensor]:
        """clips (N, T, C), mask (N, T), parts (N, K, d), queries (K, d) -> parts (N, K, d), attention (N, K, T)."""
        if self.own_projection:
            keys, values, asking = self.key(clips), self.value(clips), self.query(parts + queries)
        else:
            keys = values = clips
            asking = parts + queries
        logits = asking @ keys.transpose(1, 2) / keys.shape[-1] / self.log_temperature.exp()  # (N, K, T)
        attention = logits.masked_fill(~mask[:, None, :], float("-inf")).softmax(-1)  # over time, 0 on padding
        parts = self.norm_cross(parts + self.dropout(attention @ values))
        parts = self.norm_ffn(parts + self.dropout(self.ffn(parts)))
        if self.self_attention is not None:
            asking = parts + queries
            attended, _ = self.self_attention(asking, asking, parts, need_weights=False)
            parts = self.norm_self(parts + self.dropout(attended))
        return parts, attention


@register_model
class TPT(PairModel):
    """TPT (ECCV 2022). Parts: ``part_attention`` (B, K, T) the last layer's attention of each part over
    time, ``part_centres`` (B, K) its centre in clips (0-based), and the pair model's parts."""

    name = "tpt"
    config_class = TPTConfig
    config: TPTConfig
    explanations = (
        Explanation(
            "part_attention", "clip_map", "Temporal parts",
            "Each row is one of the K temporal parts the decoder parses the video into, in order; dark cells "
            "are the clips that part covers (each row sums to 1 over the clips).",
            item="part", value="attention",
        ),
        Explanation(
            "exemplar_votes", "bars", "What each exemplar votes for",
            "Each training exemplar's known score plus the score difference the model predicts between this "
            "video and it; the predicted score is their mean.",
            item="exemplar", value="score (original scale)", normalised=True,
        ),
    )  # fmt: skip

    def __init__(self, in_dim: int, score_scale: ScoreScale, config: TPTConfig | None = None) -> None:
        super().__init__(in_dim, score_scale, config)
        config = self.config
        d = config.hidden_dim
        self.clip_embedding = nn.Linear(in_dim, d) if config.projection == "shared" else None
        clip_dim = d if config.projection == "shared" else in_dim
        self.layers = nn.ModuleList(
            PartDecoderLayer(clip_dim, config, config.self_attention == "every" or (config.self_attention == "first" and i == 0))
            for i in range(config.n_layers)
        )
        self.part_queries = nn.Embedding(config.n_parts, d)
        self.pair_encoder = nn.Sequential(nn.Linear(2 * d, d), nn.ReLU(), nn.Dropout(config.dropout), nn.Linear(d, d))
        for param in self.parameters():  # as the released decoder's _reset_parameters
            if param.dim() > 1:
                nn.init.xavier_uniform_(param)
        self.head = GroupAwareHead(d, config.n_intervals, config.head_hidden)

    def parse(self, features: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """features (N, T, D), mask (N, T) -> parts (N, K, d) and every layer's attention (N, L, K, T)."""
        clips = self.clip_embedding(features) if self.clip_embedding is not None else features
        queries = self.part_queries.weight  # (K, d)
        parts = torch.zeros(len(features), *queries.shape, device=features.device, dtype=clips.dtype)
        attentions = []
        for layer in self.layers:
            parts, attention = layer(clips, mask, parts, queries)
            attentions.append(attention)
        return parts, torch.stack(attentions, dim=1)

    def compare(
        self, features: Tensor, mask: Tensor, exemplars: Exemplars
    ) -> tuple[Tensor, Tensor, dict[str, Tensor], dict[str, Tensor]]:
        query_parts, query_attention = self.parse(features, mask)  # (B, K, d), (B, L, K, T)
        exemplar_parts, exemplar_attention = self.parse(exemplars.features, exemplars.mask)  # (U, K, d), (U, L, K, T')
        paired = exemplar_parts[exemplars.index]  # (B, M, K, d)
        query = query_parts[:, None].expand_as(paired)  # (B, M, K, d)
        logits, offsets = self.head(self.pair_encoder(torch.cat([query, paired], -1)).mean(dim=2))  # (B, M, n)
        last = query_attention[:, -1]  # (B, K, T)
        parts = {"part_attention": last, "part_centres": attention_centres(last) - 1.0}
        internals = {"layer_attention": query_attention, "exemplar_layer_attention": exemplar_attention}
        if self.training and self.config.both_directions:
            reverse = self.head(self.pair_encoder(torch.cat([paired, query], -1)).mean(dim=2))
            internals.update(reverse_interval_logits=reverse[0], reverse_interval_offsets=reverse[1])
        return logits, offsets, parts, internals

    def loss(self, prediction: Prediction, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        terms = self.pair_loss(prediction, batch)
        rank = sparsity = prediction.normalised_score.new_zeros(())
        internals = prediction.internals
        videos = ((internals["layer_attention"], batch["mask"]),
                  (internals["exemplar_layer_attention"], batch["exemplar_mask"]))
        for attention, mask in videos:  # summed over layers, averaged over queries and exemplars
            lengths = mask.sum(dim=1).to(attention.dtype)  # (N,)
            margin = self.ranking_margin(lengths)  # (N,)
            for layer in range(attention.shape[1]):
                rank = rank + ranking_loss(attention[:, layer], lengths, margin) / len(videos)
                sparsity = sparsity + sparsity_loss(attention[:, layer]) / len(videos)
        return {**terms, "rank": self.config.rank_weight * rank, "sparsity": self.config.sparsity_weight * sparsity}

    def ranking_margin(self, lengths: Tensor) -> Tensor:
        """(N,) the ranking margin for videos of ``lengths`` clips: the configured one, or (``scale``)
        the largest the length allows, ``(T - 1) / (K + 1)``; ``refuse`` raises for a video too short."""
        k, margin = self.config.n_parts, self.config.rank_margin
        room = (lengths - 1) / (k + 1)
        if self.config.margin_policy == "refuse" and bool((room < margin).any()):
            shortest = int(lengths.min())
            raise DataError(
                f"tpt: a ranking margin of {margin:g} between {k} parts needs at least {(k + 1) * margin + 1:g} clips "
                f"per video, and a training video has {shortest}; use margin_policy: scale, fewer parts or a smaller "
                "rank_margin"
            )
        return room.clamp(max=margin)


def attention_centres(attention: Tensor) -> Tensor:
    """attention (..., T) over time -> (...,) centres ``sum_t t alpha_t`` with t = 1..T (Eq. 9)."""
    positions = torch.arange(1, attention.shape[-1] + 1, device=attention.device, dtype=attention.dtype)
    return attention @ positions


def ranking_loss(attention: Tensor, lengths: Tensor, margin: Tensor) -> Tensor:
    """TPT's ranking loss (Eq. 9): attention (N, K, T), real lengths (N,), margin (N,) -> scalar.

    Consecutive centres must be at least ``margin`` apart in order, the first at least ``margin``
    after a virtual centre at 1, the last at least ``margin`` before one at T (the video's real
    length): the sum over these K + 1 hinges, averaged over the videos.
    """
    centres = attention_centres(attention)  # (N, K)
    first = torch.ones_like(centres[:, :1])
    bounded = torch.cat([first, centres, lengths[:, None]], dim=1)  # (N, K + 2)
    hinges = F.relu(bounded[:, :-1] - bounded[:, 1:] + margin[:, None])  # (N, K + 1)
    return hinges.sum(dim=1).mean()


def sparsity_loss(attention: Tensor) -> Tensor:
    """TPT's sparsity loss (Eq. 10): the mean over videos and parts of ``sum_t |t - mu_k| alpha_kt``."""
    positions = torch.arange(1, attention.shape[-1] + 1, device=attention.device, dtype=attention.dtype)
    centres = attention_centres(attention)  # (N, K)
    return ((positions - centres[..., None]).abs() * attention).sum(-1).mean()
