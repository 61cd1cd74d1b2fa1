"""Building blocks shared by aqakit models: mask-aware clip projection, masked mean, softmax and attention,
metric losses, sinusoidal positions."""

from __future__ import annotations

import math
from functools import partial
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from aqakit.errors import ConfigError


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` over the real clips of a padded ``(B, T, C)`` batch, with no data-dependent shapes.

    In training it normalises with the mean and (biased) variance of the clips where ``mask`` is
    True and updates the running statistics with their unbiased variance, which is what
    ``nn.BatchNorm1d`` does on the ``(N_real, C)`` real clips; in evaluation it uses the running
    statistics. The statistics are mask-weighted sums rather than a gather of the real clips, so
    the module runs unchanged under ``torch.func.vmap`` (batched ensembles) and ``torch.compile``.
    Parameters and buffers are those of ``nn.BatchNorm1d`` (same checkpoint keys). Unlike it, a
    training batch of a single real clip is not an error: its running variance update uses 0.

    With ``sync_processes`` (set by :func:`aqakit.train.distributed.sync_batch_norm` for training on
    several processes) the training statistics are those of the real clips of every process's batch,
    summed over the process group (differentiably), as if one process held the whole batch.
    """

    sync_processes = False

    def forward(self, values: Tensor, mask: Tensor) -> Tensor:  # type: ignore[override]
        """values (B, T, C), mask (B, T) bool -> (B, T, C); padded positions are not used."""
        if self.training or not self.track_running_stats:
            weights = mask.unsqueeze(-1).to(values.dtype)  # (B, T, 1)
            real = torch.where(weights > 0, values, 0.0)  # padding may hold anything
            count, total = weights.sum()[None], real.sum((0, 1))  # (1,), (C,)
            synced = self.sync_processes and self.training
            if synced:
                count, total = _summed_over_processes(torch.cat([count, total])).split([1, total.shape[0]])
            mean = total / count  # (C,)
            squares = (torch.where(weights > 0, values - mean, 0.0).pow(2)).sum((0, 1))  # (C,)
            var = (_summed_over_processes(squares) if synced else squares) / count  # biased, (C,)
            if self.training and self.track_running_stats:
                self._update_running_stats(mean.detach(), var.detach() * count / (count - 1).clamp(min=1))
        else:
            mean, var = self.running_mean, self.running_var
        normalised = (values - mean) * torch.rsqrt(var + self.eps)
        return normalised * self.weight + self.bias if self.affine else normalised

    @torch.no_grad()
    def _update_running_stats(self, mean: Tensor, unbiased_var: Tensor) -> None:
        self.num_batches_tracked.add_(1)
        momentum = 1.0 / self.num_batches_tracked if self.momentum is None else self.momentum  # cumulative or EMA
        self.running_mean.mul_(1 - momentum).add_(momentum * mean)
        self.running_var.mul_(1 - momentum).add_(momentum * unbiased_var)


class _SumOverProcesses(torch.autograd.Function):
    """All-reduce (sum) over the default process group; the gradient is all-reduced the same way."""

    @staticmethod
    def forward(ctx: Any, values: Tensor) -> Tensor:
        summed = values.clone()
        torch.distributed.all_reduce(summed)
        return summed

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        summed = grad.clone()
        torch.distributed.all_reduce(summed)
        return summed


def _summed_over_processes(values: Tensor) -> Tensor:
    """``values`` summed over every process of the default process group, with gradients."""
    return _SumOverProcesses.apply(values)


class ClipProjection(nn.Module):
    """Per-clip MLP ``Linear -> BatchNorm1d (-> ReLU -> Linear -> BatchNorm1d)*`` over real clips only.

    This is the 1x1-``Conv1d`` + ``BatchNorm1d`` input projection of GDLT and its descendants: a
    kernel-1 convolution over time is a Linear applied to every clip. The released code runs it on
    padded tensors, so padding leaks into the BatchNorm statistics; here the BatchNorm statistics
    (train) come from the real clips (``mask`` True) alone (:class:`MaskedBatchNorm1d`), so batch
    statistics and outputs are independent of padding. Padded positions come out as zeros.
    There is a ReLU between layers but none after the last BatchNorm (as released).
    """

    def __init__(self, in_dim: int, dims: Sequence[int]) -> None:
        super().__init__()
        if in_dim < 1 or len(dims) == 0 or any(d < 1 for d in dims):
            raise ConfigError(f"ClipProjection needs positive widths, got in_dim={in_dim}, dims={list(dims)}")
        layers: list[nn.Module] = []
        for i, (d_in, d_out) in enumerate(zip([in_dim, *dims[:-1]], dims)):
            if i > 0:
                layers.append(nn.ReLU())
            layers += [nn.Linear(d_in, d_out), MaskedBatchNorm1d(d_out)]
        self.net = nn.Sequential(*layers)
        self.out_dim = int(dims[-1])

    def forward(self, features: Tensor, mask: Tensor) -> Tensor:
        """features (B, T, D), mask (B, T) bool (True = real clip) -> (B, T, out_dim), padding zero."""
        projected = features
        for layer in self.net:
            projected = layer(projected, mask) if isinstance(layer, MaskedBatchNorm1d) else layer(projected)
        return torch.where(mask.unsqueeze(-1), projected, 0.0)  # (B, T, out_dim)


def cosine_distance_matrix(embeddings: Tensor) -> Tensor:
    """(N, H) -> (N, N) pairwise cosine distances ``1 - cos``, in [0, 2]."""
    unit = F.normalize(embeddings, dim=-1)
    return 1.0 - unit @ unit.T


def hardest_triplet_loss(embeddings: Tensor, labels: Tensor, margin: float) -> Tensor:
    """Batch-hard triplet loss (Hermans et al. 2017; omoindrot's formulation) with cosine distance.

    For each anchor: hardest positive = largest distance to another item with the same label,
    hardest negative = smallest distance to an item with a different label; the loss is
    ``mean(relu(hardest_positive - hardest_negative + margin))`` over all anchors.

    The distance is the cosine distance ``d = 1 - cos`` (range [0, 2]), not the Euclidean one of
    omoindrot's original: this is what GDLT's released ``HardTripletLoss`` computes (its Euclidean
    code is commented out). As released, an anchor with no positive gets a hardest-positive
    distance of 0 (a masked max over non-negative distances).

    Args:
        embeddings: (N, H) float.
        labels: (N,) integer class labels.
        margin: the triplet margin.

    Returns:
        a scalar tensor.
    """
    distances = cosine_distance_matrix(embeddings)  # (N, N)
    same_label = labels.unsqueeze(0) == labels.unsqueeze(1)  # (N, N)
    not_self = ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    positive = same_label & not_self
    hardest_positive = (distances * positive).amax(dim=1)  # (N,)
    hardest_negative = distances.masked_fill(same_label, float("inf")).amin(dim=1)  # (N,)
    return F.relu(hardest_positive - hardest_negative + margin).mean()


def masked_mean(values: Tensor, mask: Tensor, dim: int = 1) -> Tensor:
    """Mean of ``values`` over axis ``dim`` counting only positions where ``mask`` is True.

    ``mask`` has the shape of ``values`` up to its trailing feature axes (e.g. values (B, T, D),
    mask (B, T), dim=1 -> (B, D)); every reduced slice needs at least one True.
    """
    weights = mask.to(values.dtype).reshape(*mask.shape, *([1] * (values.dim() - mask.dim())))
    return (values * weights).sum(dim) / weights.sum(dim)


def masked_softmax(scores: Tensor, mask: Tensor, dim: int = -1) -> Tensor:
    """Softmax over ``dim`` where masked-out positions (``mask`` False, broadcast) get exactly 0.

    Every softmax row needs at least one True position (else the row is NaN).
    """
    return scores.masked_fill(~mask, float("-inf")).softmax(dim)


def masked_attention(queries: Tensor, keys: Tensor, values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Single-head scaled dot-product attention over the real positions of ``keys``.

    queries (B, Q, d) or (Q, d) shared by the batch, keys (B, N, d), values (B, N, d_v), mask (B, N)
    bool (True = real) -> attended values (B, Q, d_v) and the attention (B, Q, N), exactly 0 on padding.
    """
    scores = queries @ keys.transpose(-2, -1) / math.sqrt(keys.shape[-1])  # (B, Q, N)
    attention = masked_softmax(scores, mask.unsqueeze(-2))  # rows sum to 1 over the real keys
    return attention @ values, attention


def sinusoidal_positions(length: int, dim: int) -> Tensor:
    """The fixed sine/cosine position code of Vaswani et al. (2017): (length, dim) float32.

    Position ``p``, channel ``2i`` is ``sin(p / 10000^(2i / dim))`` and channel ``2i + 1`` the
    cosine of the same angle; an odd ``dim`` drops the last cosine.
    """
    if length < 1 or dim < 1:
        raise ConfigError(f"sinusoidal_positions needs positive sizes, got length={length}, dim={dim}")
    positions = torch.arange(length, dtype=torch.float32).unsqueeze(1)  # (length, 1)
    frequencies = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    angles = positions * frequencies  # (length, ceil(dim / 2))
    code = torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1)  # sin, cos interleaved
    return code[:, :dim]


#: Elements of the (B, rows, N, attention_dim) pair scores :class:`DenseGATv2` builds at once: 2**22
#: float32 values (16 MiB), so the receiver rows per block follow from B, N and attention_dim (why: docs/models/finecausal.md).
PAIR_ELEMENTS_PER_BLOCK = 2**22


def receiver_rows_per_block(batch: int, n_nodes: int, attention_dim: int) -> int:
    """How many receiver rows of a (batch, n_nodes) graph :class:`DenseGATv2` scores at once: as many as
    keep the block's pair scores within :data:`PAIR_ELEMENTS_PER_BLOCK` (at least 1, at most ``n_nodes``)."""
    return max(1, min(n_nodes, PAIR_ELEMENTS_PER_BLOCK // max(1, batch * n_nodes * attention_dim)))


class DenseGATv2(nn.Module):
    """One GATv2 layer (Brody et al., 2022) over a dense graph whose nodes are the real positions of ``mask``.

    Every real node attends to every real node of its graph (itself included):
    ``e_ij = a . LeakyReLU(W_s x_i + W_t x_j)`` on ``attention_dim`` channels, ``alpha_ij`` its
    softmax over ``j`` and ``out_i = sum_j alpha_ij W_v x_j``. Padded nodes neither send nor
    receive (their output is zero). No torch_geometric needed.

    Memory is bounded whatever the graph's size: the receivers are scored in blocks of rows
    (:func:`receiver_rows_per_block`), each row's softmax over all its senders at once (so the
    result is the unblocked one up to float rounding), and neither the (B, N, N, attention_dim) pair
    scores nor the (B, N, N) attention are ever whole; with gradients on and more than one block,
    each block is recomputed in the backward pass (activation checkpointing) instead of kept.
    What the caller sees of the attention is its sum over groups of senders (``sender_groups``).
    """

    def __init__(self, in_dim: int, out_dim: int, attention_dim: int, negative_slope: float = 0.2) -> None:
        super().__init__()
        self.source, self.target = nn.Linear(in_dim, attention_dim), nn.Linear(in_dim, attention_dim, bias=False)
        self.value = nn.Linear(in_dim, out_dim)
        self.score = nn.Linear(attention_dim, 1, bias=False)  # the attention vector a
        self.negative_slope = negative_slope

    def forward(
        self, nodes: Tensor, mask: Tensor, sender_groups: Tensor | None = None, block_rows: int | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """nodes (B, N, C), mask (B, N) bool -> outputs (B, N, out_dim) and, given ``sender_groups``
        (N, G) float (column g: the weight of each sender in group g; ``torch.eye(N)`` gives the whole
        attention), each receiver's attention summed per group (B, N, G), else None.

        ``block_rows`` (receiver rows per block) defaults to :func:`receiver_rows_per_block`.
        """
        n_nodes = nodes.shape[1]
        receivers, senders = self.source(nodes), self.target(nodes)  # (B, N, attention_dim): W_s x_i, W_t x_j
        values = self.value(nodes)  # (B, N, out_dim)
        rows = block_rows or receiver_rows_per_block(nodes.shape[0], n_nodes, receivers.shape[-1])
        receive = self._receive
        if rows < n_nodes and torch.is_grad_enabled():
            receive = partial(checkpoint, self._receive, use_reentrant=False)
        # Filled block by block: nothing of a block outlives it but its rows here (no heap fragments between blocks).
        outputs = values.new_empty(values.shape)  # (B, N, out_dim)
        grouped = None if sender_groups is None else values.new_empty(*mask.shape, sender_groups.shape[-1])  # (B, N, G)
        for start in range(0, n_nodes, rows):
            block = slice(start, start + rows)
            outputs[:, block], block_grouped = receive(receivers[:, block], mask[:, block], senders, values, mask,
                                                       sender_groups)  # fmt: skip
            if grouped is not None:
                grouped[:, block] = block_grouped
        return outputs, grouped

    def _receive(
        self, receivers: Tensor, receiver_mask: Tensor, senders: Tensor, values: Tensor, sender_mask: Tensor,
        sender_groups: Tensor | None,
    ) -> tuple[Tensor, Tensor | None]:
        """One block of R receiver rows: receivers (B, R, A), receiver_mask (B, R) against every sender
        -> their outputs (B, R, out_dim) and grouped attention (B, R, G) or None."""
        pairs = receivers[:, :, None, :] + senders[:, None, :, :]  # (B, R, N, attention_dim)
        scores = self.score(F.leaky_relu(pairs, self.negative_slope, inplace=True)).squeeze(-1)  # (B, R, N)
        attention = masked_softmax(scores, sender_mask[:, None, :])
        attention = torch.where(receiver_mask[:, :, None], attention, 0.0)  # padded receivers: no row
        return attention @ values, None if sender_groups is None else attention @ sender_groups
