"""FineCausal (Han et al., 2025) on frozen two-stream clip features.

The input is ``[O | F]`` per clip (B, T, 2D): the whole-frame stream O and the foreground stream F
on one clip grid (:func:`aqakit.data.features.with_foreground`). Four steps:

1. intervention: a 2-layer GATv2 over the 2T nodes of ONE video (its O and F clips, each tagged
   with a learnt stream embedding), ``F2 = elu(GAT2(F1)) + lambda * F1`` with ``F1 = elu(GAT1(nodes))``
   and a learnable ``lambda``; the refined clips are the F nodes' outputs. Without it
   (``intervention: false``) the clips are the naive fusion ``(O + F) / 2``;
2. temporal action parsing: a per-clip transition logit (BCE against the annotated transitions,
   batch field ``transition``); the ``S - 1`` most likely clips cut the video into S stages, in
   training as at test;
3. temporal causal attention over the S stage tokens (masked means of the refined clips): stage
   ``i`` attends to itself and earlier stages only;
4. exemplar regression: each stage of the query is compared with the same stage of an exemplar, the
   comparisons are weighted (paper 3:5:2) and a group-aware head predicts the score difference
   (:class:`~aqakit.models.pair.PairModel`). Task losses are weighted by their learnt uncertainty
   (Kendall et al., 2018). Paper vs released code and the choices made: docs/models/finecausal.md.
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
from aqakit.models.blocks import DenseGATv2
from aqakit.models.config import DropoutRate, NonNegative, Positive, PositiveInt
from aqakit.models.group_aware import GroupAwareHead
from aqakit.models.pair import PairConfig, PairModel
from aqakit.models.registry import register_model


@dataclass(frozen=True)
class FineCausalConfig(PairConfig):
    """FineCausal's hyper-parameters (docs/models/finecausal.md).

    ``stage_weights`` (one per stage, normalised to sum 1) weight the stage comparisons;
    ``graph`` ``video`` builds one graph per video (the paper), ``batch`` one over every video of
    the batch (the released code: a score then depends on its batch mates). ``loss_weighting``
    ``uncertainty`` learns a log-variance per task (regression, parsing), ``fixed`` sums them with
    ``transition_weight`` on the parsing term; a ``transition_weight`` of 0 trains no parser.
    """

    hidden_dim: PositiveInt = 256
    attention_dim: PositiveInt = 32
    n_stages: PositiveInt = 3
    stage_weights: tuple[float, ...] = (3.0, 5.0, 2.0)
    intervention: bool = True
    graph: Literal["video", "batch"] = "video"
    n_heads: PositiveInt = 1
    dropout: DropoutRate = 0.1
    residual_weight: float = 1.0
    loss_weighting: Literal["uncertainty", "fixed"] = "uncertainty"
    transition_weight: NonNegative = 1.0
    transition_pos_weight: Positive = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_stages < 2:
            raise ConfigError(f"finecausal: n_stages must be at least 2, got {self.n_stages}")
        if len(self.stage_weights) != self.n_stages or min(self.stage_weights) < 0 or sum(self.stage_weights) <= 0:
            raise ConfigError(f"finecausal: stage_weights {list(self.stage_weights)} must be {self.n_stages} "
                              "non-negative numbers with a positive sum")
        if self.hidden_dim % self.n_heads:
            raise ConfigError(f"hidden_dim ({self.hidden_dim}) must be divisible by n_heads ({self.n_heads})")


def predicted_transitions(logits: Tensor, mask: Tensor, n_transitions: int) -> Tensor:
    """logits (N, T), mask (N, T) -> (N, n_transitions) increasing clips: the most likely
    transitions among a video's clips but its last (a video of fewer than S clips gets transitions
    past its end: empty last stages)."""
    lengths = mask.sum(dim=1, keepdim=True)  # (N, 1)
    positions = torch.arange(logits.shape[1], device=logits.device)[None, :]
    allowed = positions < lengths - 1
    ranked = torch.where(allowed, logits, -1e9 - positions.to(logits.dtype))  # disallowed last, earliest first
    width = max(n_transitions, 1)
    if ranked.shape[1] < width:  # pad the grid so topk has room
        ranked = F.pad(ranked, (0, width - ranked.shape[1]), value=-2e9)
    return ranked.topk(n_transitions, dim=1).indices.sort(dim=1).values


def stage_membership(transitions: Tensor, mask: Tensor, n_stages: int) -> Tensor:
    """transitions (N, S - 1), mask (N, T) -> (N, S, T) bool: clip t is in stage s (real clips only)."""
    positions = torch.arange(mask.shape[1], device=mask.device)
    stage = (transitions[:, None, :] < positions[None, :, None]).sum(-1)  # (N, T) stage index of each clip
    return (stage[:, None, :] == torch.arange(n_stages, device=mask.device)[None, :, None]) & mask[:, None, :]


class CausalStageAttention(nn.Module):
    """One transformer-encoder layer over the stage tokens whose attention lets stage i see stages <= i."""

    def __init__(self, dim: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, n_heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dim, dim))
        self.norm_attention, self.norm_ffn = nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, stages: Tensor) -> tuple[Tensor, Tensor]:
        """stages (N, S, d) -> refined (N, S, d) and the attention (N, S, S), 0 above the diagonal."""
        n = stages.shape[1]
        later = torch.triu(torch.ones(n, n, dtype=torch.bool, device=stages.device), diagonal=1)  # True: hidden
        attended, attention = self.attention(stages, stages, stages, attn_mask=later, need_weights=True)
        stages = self.norm_attention(stages + attended)
        return self.norm_ffn(stages + self.ffn(stages)), attention


@register_model
class FineCausal(PairModel):
    """FineCausal. Parts: ``stage_attention`` (B, S, S), ``of_attention`` (B, T, 2) the share of each
    refined clip's first-layer GAT attention on O and on F nodes (zeros without the intervention),
    ``foreground_attention`` (B, T) its F share alone, ``transition_probability`` (B, T) and
    ``transitions`` (B, S - 1) the predicted cuts, plus the pair model's parts."""

    name = "finecausal"
    config_class = FineCausalConfig
    config: FineCausalConfig
    synthetic_benchmark = "synthetic-confounded"  # [O | F] features and planted transitions
    explanations = (
        Explanation(
            "transition_probability", "clips", "Where the stages change",
            "The parser's probability that a clip is a stage transition (take-off to flight to entry for a dive); "
            "the stages are cut at the most likely ones, ringed.",
            value="probability of a transition", marks="transitions", mark_note="predicted stage transition",
        ),
        Explanation(
            "stage_attention", "matrix", "How the stages read each other",
            "Row i: how much stage i draws on each stage before it and itself (causal: never on a later stage; "
            "each row sums to 1).",
            item="stage", value="attention (rows sum to 1)", columns="stage attended to",
        ),
        Explanation(
            "foreground_attention", "clips", "How much each clip rests on the athlete",
            "The share of each refined clip's graph attention that goes to foreground (athlete) nodes rather than "
            "whole-frame nodes; 0 everywhere when the model runs without the intervention.",
            value="foreground share of attention",
        ),
    )  # fmt: skip

    def __init__(self, in_dim: int, score_scale: ScoreScale, config: FineCausalConfig | None = None) -> None:
        if in_dim % 2:
            raise ConfigError(f"finecausal reads [whole frame | foreground] features; in_dim {in_dim} is not even")
        super().__init__(in_dim, score_scale, config)
        c, d = self.config, self.config.hidden_dim
        self.stream_dim = in_dim // 2
        self.clip_projection = nn.Sequential(nn.Linear(self.stream_dim, d), nn.ReLU(), nn.Dropout(c.dropout))
        self.stream_embedding = nn.Parameter(torch.zeros(2, d))  # O, F
        self.gat = nn.ModuleList([DenseGATv2(d, d, c.attention_dim), DenseGATv2(d, d, c.attention_dim)])
        self.residual_weight = nn.Parameter(torch.tensor(float(c.residual_weight)))  # lambda
        self.parser = nn.Conv1d(d, 1, kernel_size=3, padding=1)
        self.stage_attention = CausalStageAttention(d, c.n_heads, c.dropout)
        self.pair_encoder = nn.Sequential(nn.Linear(2 * d, d), nn.ReLU(), nn.Dropout(c.dropout), nn.Linear(d, d))
        weights = torch.tensor(c.stage_weights, dtype=torch.float32)
        self.register_buffer("stage_weights", weights / weights.sum(), persistent=False)
        self.log_variances = nn.Parameter(torch.zeros(2))  # regression, parsing (Kendall et al.)
        self.head = GroupAwareHead(d, c.n_intervals, c.head_hidden)

    def intervene(self, whole: Tensor, foreground: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """O and F clips (N, T, d), mask (N, T) -> refined F clips (N, T, d) and of_attention (N, T, 2)."""
        n, t, d = whole.shape
        nodes = torch.cat([whole + self.stream_embedding[0], foreground + self.stream_embedding[1]], dim=1)  # (N, 2T, d)
        node_mask = torch.cat([mask, mask], dim=1)  # (N, 2T)
        if self.config.graph == "batch":  # the released graph: every node of the batch
            nodes, node_mask = nodes.reshape(1, n * 2 * t, d), node_mask.reshape(1, n * 2 * t)
        is_foreground = (torch.arange(nodes.shape[1], device=mask.device) % (2 * t)) >= t  # (nodes,)
        streams = F.one_hot(is_foreground.long(), 2).to(nodes.dtype)  # (nodes, 2): O, F senders
        first, on_streams = self.gat[0](nodes, node_mask, sender_groups=streams)  # on_streams (., nodes, 2)
        first = F.elu(first)
        second, _ = self.gat[1](first, node_mask)
        refined = (F.elu(second) + self.residual_weight * first).reshape(n, 2 * t, d)[:, t:] + foreground
        of_attention = on_streams.reshape(n, 2 * t, 2)[:, t:]  # rows of the F nodes
        return torch.where(mask[..., None], refined, 0.0), of_attention

    def encode(self, features: Tensor, mask: Tensor) -> dict[str, Tensor]:
        """features (N, T, 2D), mask (N, T) -> stage tokens (N, S, d) and what the parts show."""
        whole, foreground = features.split(self.stream_dim, dim=-1)
        if self.config.intervention:
            clips, of_attention = self.intervene(self.clip_projection(whole), self.clip_projection(foreground), mask)
        else:
            clips = torch.where(mask[..., None], self.clip_projection((whole + foreground) / 2), 0.0)
            of_attention = clips.new_zeros(*mask.shape, 2)
        logits = self.parser(clips.transpose(1, 2)).squeeze(1)  # (N, T)
        transitions = predicted_transitions(logits.detach(), mask, self.config.n_stages - 1)
        members = stage_membership(transitions, mask, self.config.n_stages).to(clips.dtype)  # (N, S, T)
        stages = members @ clips / members.sum(-1, keepdim=True).clamp(min=1.0)  # (N, S, d)
        stages, stage_attention = self.stage_attention(stages)
        return {"stages": stages, "stage_attention": stage_attention, "of_attention": of_attention,
                "transition_logits": logits, "transitions": transitions}

    def compare(
        self, features: Tensor, mask: Tensor, exemplars: Exemplars
    ) -> tuple[Tensor, Tensor, dict[str, Tensor], dict[str, Tensor]]:
        query = self.encode(features, mask)
        exemplar_stages = self.encode(exemplars.features, exemplars.mask)["stages"]  # (U, S, d)
        paired = exemplar_stages[exemplars.index]  # (B, M, S, d)
        asked = query["stages"][:, None].expand_as(paired)
        compared = self.pair_encoder(torch.cat([asked, paired], -1))  # (B, M, S, d)
        logits, offsets = self.head((compared * self.stage_weights[:, None]).sum(dim=2))  # (B, M, n) twice
        probability = torch.where(mask, query["transition_logits"].sigmoid(), 0.0)
        parts = {"stage_attention": query["stage_attention"], "of_attention": query["of_attention"],
                 "foreground_attention": query["of_attention"][..., 1],
                 "transition_probability": probability, "transitions": query["transitions"]}
        return logits, offsets, parts, {"transition_logits": query["transition_logits"]}

    def loss(self, prediction: Prediction, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        terms = self.pair_loss(prediction, batch)
        c = self.config
        if c.transition_weight > 0:
            if "transition" not in batch:
                raise DataError("finecausal trains its temporal parser on annotated stage transitions and the batch has "
                                "none (a set needs extras['transition_clips']; or set transition_weight: 0)")
            mask = batch["mask"]
            bce = F.binary_cross_entropy_with_logits(
                prediction.internals["transition_logits"], batch["transition"].to(mask.device).float(), reduction="none",
                pos_weight=torch.tensor(c.transition_pos_weight, device=mask.device))
            terms["transition"] = c.transition_weight * (bce * mask).sum() / mask.sum()
        if c.loss_weighting == "uncertainty":
            precision = torch.exp(-self.log_variances)  # (2,)
            weighted = {name: precision[1 if name == "transition" else 0] * value for name, value in terms.items()}
            used = self.log_variances[: 2 if "transition" in terms else 1]
            return {**weighted, "uncertainty": used.sum()}
        return terms
