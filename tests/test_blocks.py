"""Tests of the shared model blocks: masked clip projection and the batch-hard triplet loss."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aqakit.errors import ConfigError
from aqakit.models.blocks import (
    ClipProjection, MaskedBatchNorm1d, cosine_distance_matrix, hardest_triplet_loss, masked_attention,
    sinusoidal_positions,
)
from conftest import padded_batch


def batch_norms(module: nn.Module) -> list[nn.BatchNorm1d]:
    return [m for m in module.modules() if isinstance(m, nn.BatchNorm1d)]


# ---------------------------------------------------------------- ClipProjection


def test_projection_shapes_layers_and_zero_padding() -> None:
    torch.manual_seed(0)
    projection = ClipProjection(8, [4, 6])
    kinds = [type(m) for m in projection.net]
    assert kinds == [nn.Linear, MaskedBatchNorm1d, nn.ReLU, nn.Linear, MaskedBatchNorm1d]  # no final ReLU
    features, mask = padded_batch([5, 2, 3], 8)
    out = projection(features, mask)
    assert out.shape == (3, 5, 6)
    assert torch.all(out[~mask] == 0)
    assert out[mask].abs().sum() > 0


def test_projection_train_statistics_use_real_clips_only() -> None:
    torch.manual_seed(0)
    padded = ClipProjection(8, [4, 6])
    real_only = copy.deepcopy(padded)
    features, mask = padded_batch([5, 2, 3], 8, pad_value=100.0)  # loud padding
    real = features[mask]  # (10, 8)

    out_padded = padded.train()(features, mask)
    out_real = real_only.train()(real.unsqueeze(0), torch.ones(1, len(real), dtype=torch.bool))
    torch.testing.assert_close(out_padded[mask], out_real[0])
    for bn_padded, bn_real in zip(batch_norms(padded), batch_norms(real_only)):
        torch.testing.assert_close(bn_padded.running_mean, bn_real.running_mean)
        torch.testing.assert_close(bn_padded.running_var, bn_real.running_var)

    # and by hand for the first BatchNorm: running = (1 - momentum) * init + momentum * batch stat
    linear, bn = padded.net[0], padded.net[1]
    with torch.no_grad():
        hidden = linear(real)  # (10, 4)
    torch.testing.assert_close(bn.running_mean, 0.1 * hidden.mean(0))
    torch.testing.assert_close(bn.running_var, 0.9 + 0.1 * hidden.var(0, unbiased=True))


def test_masked_batch_norm_is_batch_norm_over_the_real_clips() -> None:
    """Same outputs, running statistics and state_dict keys as nn.BatchNorm1d on (N_real, C)."""
    torch.manual_seed(0)
    masked, reference = MaskedBatchNorm1d(6), nn.BatchNorm1d(6)
    assert masked.state_dict().keys() == reference.state_dict().keys()
    for step in range(3):
        values, mask = padded_batch([5, 2, 3], 6, pad_value=1e4)
        values = values * (step + 1) + step
        torch.testing.assert_close(masked.train()(values, mask)[mask], reference.train()(values[mask]))
    torch.testing.assert_close(masked.running_mean, reference.running_mean)
    torch.testing.assert_close(masked.running_var, reference.running_var)
    assert int(masked.num_batches_tracked) == 3
    values, mask = padded_batch([4, 1], 6)
    torch.testing.assert_close(masked.eval()(values, mask)[mask], reference.eval()(values[mask]))


def test_projection_eval_is_per_clip() -> None:
    torch.manual_seed(0)
    projection = ClipProjection(8, [4, 6])
    for _ in range(3):  # non-trivial running statistics
        projection(*padded_batch([5, 4], 8))
    projection.eval()
    features, mask = padded_batch([5, 2], 8, pad_value=-7.0)
    alone = projection(features[1:, :2], mask[1:, :2])
    batched = projection(features, mask)
    torch.testing.assert_close(batched[1, :2], alone[0])


def test_projection_rejects_bad_widths() -> None:
    with pytest.raises(ConfigError):
        ClipProjection(8, [])
    with pytest.raises(ConfigError):
        ClipProjection(8, [4, 0])


# ---------------------------------------------------------------- hardest_triplet_loss


def test_cosine_distance_matrix_range() -> None:
    embeddings = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])
    expected = torch.tensor([[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 1.0, 0.0]])
    torch.testing.assert_close(cosine_distance_matrix(embeddings), expected)


def test_triplet_hand_computed_value() -> None:
    # class 0: (1, 0), (1, 1); class 1: (0, 1), (-1, 0). With r = 1/sqrt(2), cosine distances:
    # d01 = 1 - r, d02 = 1, d03 = 2, d12 = 1 - r, d13 = 1 + r, d23 = 1.
    # margin 0.5 -> per anchor relu(hp - hn + m):
    #   a0: hp = 1 - r, hn = 1      -> 0.5 - r < 0 -> 0
    #   a1: hp = 1 - r, hn = 1 - r  -> 0.5
    #   a2: hp = 1,     hn = 1 - r  -> r + 0.5
    #   a3: hp = 1,     hn = 1 + r  -> 0.5 - r < 0 -> 0
    embeddings = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 1])
    r = 1 / math.sqrt(2)
    expected = (0.5 + r + 0.5) / 4
    loss = hardest_triplet_loss(embeddings, labels, margin=0.5)
    assert loss.shape == ()
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    # cosine distance: rescaling an embedding changes nothing
    scaled = embeddings * torch.tensor([[3.0], [0.5], [7.0], [2.0]])
    assert hardest_triplet_loss(scaled, labels, margin=0.5).item() == pytest.approx(expected, abs=1e-6)


def test_triplet_zero_when_classes_separated_beyond_margin() -> None:
    # same class: distance ~0.005; other class: distance ~1.99 > 0.005 + margin 1 -> all hinges inactive
    embeddings = torch.tensor([[1.0, 0.0], [1.0, 0.1], [-1.0, 0.0], [-1.0, -0.1]], requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1])
    loss = hardest_triplet_loss(embeddings, labels, margin=1.0)
    assert loss.item() == 0.0
    # but a margin larger than the cosine range (2) can never be satisfied
    assert hardest_triplet_loss(embeddings, labels, margin=2.5).item() > 0.0


def test_triplet_anchor_without_positive_uses_zero_as_released() -> None:
    # a single item per class: hardest positive is 0, loss = mean(relu(margin - nearest negative))
    embeddings = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    labels = torch.tensor([0, 1, 2])
    # nearest negatives: a0 -> 1, a1 -> 1, a2 -> 1; margin 1.5 -> 0.5 each
    assert hardest_triplet_loss(embeddings, labels, margin=1.5).item() == pytest.approx(0.5, abs=1e-6)


def _released_hardest_triplet(embeddings: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """GDLT's released HardTripletLoss(hardest=True) arithmetic, transcribed for comparison."""
    unit = F.normalize(embeddings, dim=-1)
    dist = 1 - unit @ unit.T
    eq = labels.unsqueeze(0) == labels.unsqueeze(1)
    pos = (eq & ~torch.eye(len(labels), dtype=torch.bool)).float()
    hardest_pos = (dist * pos).max(dim=1, keepdim=True).values
    neg = (~eq).float()
    hardest_neg = (dist + dist.max(dim=1, keepdim=True).values * (1.0 - neg)).min(dim=1, keepdim=True).values
    return F.relu(hardest_pos - hardest_neg + margin).mean()


def test_triplet_matches_released_arithmetic_on_query_layout() -> None:
    torch.manual_seed(0)
    batch, queries, hidden = 5, 4, 16
    embeddings = torch.randn(batch * queries, hidden)
    labels = torch.arange(queries).repeat(batch)
    for margin in (0.0, 0.3, 1.0):
        ours = hardest_triplet_loss(embeddings, labels, margin)
        torch.testing.assert_close(ours, _released_hardest_triplet(embeddings, labels, margin))


# ---------------------------------------------------------------- sinusoidal_positions


def test_sinusoidal_positions_values_and_odd_widths() -> None:
    code = sinusoidal_positions(4, 6)
    assert code.shape == (4, 6) and code.dtype == torch.float32
    torch.testing.assert_close(code[0], torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0]))  # sin 0, cos 0
    torch.testing.assert_close(code[3, :2], torch.tensor([math.sin(3.0), math.cos(3.0)]))  # frequency 1
    slow = 10000 ** (-2 / 6)  # channel pair 1: angle p / 10000^(2/6)
    torch.testing.assert_close(code[2, 2:4], torch.tensor([math.sin(2 * slow), math.cos(2 * slow)]))
    assert sinusoidal_positions(3, 5).shape == (3, 5)  # an odd width drops the last cosine
    torch.testing.assert_close(sinusoidal_positions(3, 5)[2, 4], torch.tensor(math.sin(2 * 10000 ** (-4 / 5))))
    with pytest.raises(ConfigError, match="positive sizes"):
        sinusoidal_positions(0, 4)


def test_masked_attention_is_scaled_dot_product_attention_over_the_real_keys():
    torch.manual_seed(0)
    queries, keys, values = torch.randn(2, 3, 8), torch.randn(2, 5, 8), torch.randn(2, 5, 4)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    attended, attention = masked_attention(queries, keys, values, mask)
    assert attended.shape == (2, 3, 4) and attention.shape == (2, 3, 5)
    assert torch.all(attention[1, :, 2:] == 0)
    torch.testing.assert_close(attention.sum(-1), torch.ones(2, 3))
    reference = F.scaled_dot_product_attention(queries, keys, values, attn_mask=mask[:, None, :])
    torch.testing.assert_close(attended, reference)
    shared, _ = masked_attention(queries[0], keys, values, mask)  # one (Q, d) set of queries for the batch
    torch.testing.assert_close(shared[0], attended[0])
