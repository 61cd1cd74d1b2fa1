"""FineCausal: causal stage attention, the GAT intervention, parsing and bad input; and the must-show:
on the confounded synthetic benchmark the intervention beats the same model without it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode

from aqakit import metrics
from aqakit.data.batches import ClipBank, EvalBatches, TrainBatches
from aqakit.data.benchmarks import get_benchmark
from aqakit.data.exemplars import ExemplarBatches, ExemplarPool, Exemplars
from aqakit.data.scale import ScoreScale
from aqakit.data.videoset import VideoSet
from aqakit.errors import ConfigError, DataError
from aqakit.models import create_model
from aqakit.models.blocks import PAIR_ELEMENTS_PER_BLOCK, DenseGATv2, receiver_rows_per_block
from aqakit.models.finecausal import predicted_transitions
from conftest import exemplars_for, padded_batch

SCALE = ScoreScale(10.0, 30.0)
TINY = dict(hidden_dim=16, attention_dim=4, n_intervals=4, head_hidden=8)


def tiny(**overrides):
    torch.manual_seed(0)
    return create_model("finecausal", in_dim=8, score_scale=SCALE, **{**TINY, **overrides}).eval()


def test_a_stage_attends_to_itself_and_earlier_stages_only():
    model = tiny()
    features, mask = padded_batch([9, 12], 8)
    attention = model(features, mask, exemplars_for(2)).parts["stage_attention"]  # (B, S, S)
    earlier_or_same = torch.ones(3, 3, dtype=torch.bool).tril()
    assert torch.all(attention[:, ~earlier_or_same] == 0) and torch.all(attention[:, earlier_or_same] > 0)
    torch.testing.assert_close(attention.sum(-1), torch.ones(2, 3))
    # changing the last stage changes nothing the first stage sees
    stages = torch.randn(2, 3, 16)
    changed = stages.clone()
    changed[:, 2] += 5.0
    layer = model.stage_attention
    torch.testing.assert_close(layer(stages)[0][:, :2], layer(changed)[0][:, :2])


def test_the_intervention_graph_spans_one_video_unless_the_legacy_flag_asks():
    features, mask = padded_batch([6, 6], 8)
    other = features.clone()
    other[1] += 3.0
    for graph, same in [("video", True), ("batch", False)]:
        model = tiny(graph=graph)
        first = model(features, mask, exemplars_for(2)).score[0]
        assert torch.allclose(first, model(other, mask, exemplars_for(2)).score[0]) == same
    of = tiny()(features, mask, exemplars_for(2)).parts["of_attention"]
    torch.testing.assert_close(of.sum(-1), torch.ones(2, 6))  # each refined clip's attention: on O plus on F
    assert torch.all(tiny(intervention=False)(features, mask, exemplars_for(2)).parts["of_attention"] == 0)


def test_dense_gatv2_ignores_padded_nodes():
    torch.manual_seed(0)
    layer = DenseGATv2(4, 5, 3)
    nodes, mask = torch.randn(1, 6, 4), torch.tensor([[True] * 4 + [False] * 2])
    out, attention = layer(nodes, mask, sender_groups=torch.eye(6))  # each sender its own group: (B, N, N)
    padded = nodes.clone()
    padded[:, 4:] = 99.0
    torch.testing.assert_close(layer(padded, mask)[0][:, :4], out[:, :4])
    assert torch.all(attention[:, :, 4:] == 0) and torch.all(attention[:, 4:] == 0)


def test_dense_gatv2_in_blocks_of_receivers_equals_the_whole_graph_with_gradients():
    """Outputs, grouped attention and every gradient are those of the one-block computation, for
    any block size, with padded nodes in the batch (gradients on: the blocks are checkpointed)."""
    torch.manual_seed(0)
    layer = DenseGATv2(4, 5, 3)
    nodes = torch.randn(2, 7, 4)
    mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])
    groups = torch.nn.functional.one_hot(torch.tensor([0, 0, 1, 1, 1, 2, 2]), 3).float()  # (N, G)

    def run(block_rows):
        layer.zero_grad()
        leaf = nodes.clone().requires_grad_()
        out, grouped = layer(leaf, mask, sender_groups=groups, block_rows=block_rows)
        ((out * torch.linspace(-1, 1, 5)).sum() + (grouped * torch.arange(3.0)).sum()).backward()
        return out.detach(), grouped.detach(), leaf.grad, {name: p.grad.clone() for name, p in layer.named_parameters()}

    whole = run(7)
    for rows in (1, 2, 3, 6):
        out, grouped, node_grad, parameter_grads = run(rows)
        assert torch.allclose(out, whole[0], atol=1e-6) and torch.allclose(grouped, whole[1], atol=1e-6)
        assert torch.allclose(node_grad, whole[2], atol=1e-6)
        assert all(torch.allclose(parameter_grads[name], grad, atol=1e-6) for name, grad in whole[3].items())
    assert torch.all(whole[0][1, 4:] == 0) and torch.all(whole[1][1, 4:] == 0)  # padded receivers
    torch.testing.assert_close(whole[1][0].sum(-1), torch.ones(7))  # a row's attention over all groups sums to 1


def test_the_block_size_follows_the_graph_and_keeps_the_pair_scores_bounded():
    assert receiver_rows_per_block(1, 192, 32) == 192  # a FineDiving video (2 x 96 clips): one block
    assert receiver_rows_per_block(16, 192, 32) * 16 * 192 * 32 <= PAIR_ELEMENTS_PER_BLOCK  # a batch of them
    rows = receiver_rows_per_block(1, 40_000, 32)  # a 20,000-clip video
    assert 1 <= rows < 40_000 and rows * 40_000 * 32 <= PAIR_ELEMENTS_PER_BLOCK
    assert receiver_rows_per_block(1, 10**9, 32) == 1


class LargestTensor(TorchDispatchMode):
    """The most elements of any tensor an operation returns inside the block."""

    largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.largest = max([self.largest] + [t.numel() for t in pytree.tree_leaves(out) if isinstance(t, torch.Tensor)])
        return out


def test_a_long_video_is_scored_without_its_pairwise_scores_or_attention_whole():
    """1,200 clips: 2,400 graph nodes, whose (N, N, attention_dim) pair scores and (N, N) attention
    would be 5.8 M values each (attention_dim 1); no tensor of the forward pass is as big."""
    model = tiny(attention_dim=1)
    clips = 1_200
    nodes = 2 * clips
    features = torch.randn(1, clips, 8)
    with torch.no_grad(), LargestTensor() as counted:
        prediction = model(features, exemplars=exemplars_for(1))
    assert counted.largest <= PAIR_ELEMENTS_PER_BLOCK < nodes * nodes
    assert torch.isfinite(prediction.score).all() and prediction.parts["of_attention"].shape == (1, clips, 2)
    torch.testing.assert_close(prediction.parts["of_attention"].sum(-1), torch.ones(1, clips))


def test_a_one_clip_video_is_scored_alone_as_in_a_padded_batch():
    model = tiny()
    features, mask = padded_batch([1, 9], 8)
    with torch.no_grad():
        alone = model(features[:1, :1], exemplars=exemplars_for(1))
        batched = model(features, mask, exemplars_for(2))
    assert torch.isfinite(alone.score).all()
    torch.testing.assert_close(alone.score, batched.score[:1])
    assert alone.parts["stage_attention"].shape == (1, 3, 3) and alone.parts["transitions"].shape == (1, 2)
    torch.testing.assert_close(alone.parts["of_attention"].sum(-1), torch.ones(1, 1))  # its O and F nodes


def test_predicted_transitions_are_increasing_and_inside_the_video():
    logits = torch.tensor([[0.0, 5.0, 0.0, 4.0, 9.0, 0.0], [9.0, 8.0, 0.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[True] * 5 + [False], [True] * 6])
    # video 0: its last real clip (4) cannot end a stage; video 1: the two most likely
    assert predicted_transitions(logits, mask, 2).tolist() == [[1, 3], [0, 1]]


def test_bad_input_is_a_one_line_error():
    with pytest.raises(ConfigError, match="in_dim 7 is not even"):
        create_model("finecausal", in_dim=7, score_scale=SCALE)
    with pytest.raises(ConfigError, match="stage_weights"):
        create_model("finecausal", in_dim=8, score_scale=SCALE, stage_weights=[3, 5])
    model = tiny().train()
    features, mask = padded_batch([6, 6], 8)
    exemplars = exemplars_for(2)
    batch = {"features": features, "mask": mask, "score": torch.tensor([12.0, 20.0]), "exemplar_score": exemplars.score}
    with pytest.raises(DataError, match="annotated stage transitions and the batch has none"):
        model.loss(model(features, mask, exemplars), batch)


def fit(model, videos, epochs: int, seed: int):
    """Train with one exemplar per video (as the engine does, without Lightning)."""
    torch.manual_seed(seed)
    model.prepare(videos)
    pool = ExemplarPool(videos)
    batches = ExemplarBatches(TrainBatches(pool.bank, 16, 64, seed), pool, seed, crop_len=64)
    optimiser = torch.optim.Adam(model.parameter_groups(1e-3))
    model.train()
    for epoch in range(epochs):
        batches.set_epoch(epoch)
        for batch in batches:
            loss = sum(model.loss(model(batch["features"], batch["mask"], Exemplars.from_batch(batch)), batch).values())
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return model.eval(), pool


def spearman_and_aiou(model_pool, videos):
    model, pool = model_pool
    batch = next(iter(ExemplarBatches(EvalBatches(ClipBank(videos), len(videos)), pool, 0, m=5, videos=videos)))
    with torch.no_grad():
        prediction = model(batch["features"], batch["mask"], Exemplars.from_batch(batch))
    order = batch["index"].argsort()
    transitions = prediction.parts["transitions"][order].numpy()
    return (metrics.spearman(prediction.score[order].numpy(), videos.scores),
            metrics.aiou(transitions, videos.extras["transition_clips"], videos.lengths, 0.5))


def test_the_intervention_beats_the_naive_fusion_when_the_background_confounder_breaks():
    """Train is confounded (the background tracks the score, rho 0.9), test is not. Over 3 seeds the
    model with the intervention ranks the test videos better than the same model fusing O and F
    naively, on average by at least 0.05 and never worse; it also finds the planted stages."""
    gains, aious = [], []
    for seed in range(3):
        bench = get_benchmark("synthetic-confounded", n_train=120, n_test=120, seed=seed)
        train, test = bench.load(None, "train"), bench.load(None, "test")
        rho = {}
        for intervention in (True, False):
            model = create_model("finecausal", in_dim=32, score_scale=ScoreScale.from_scores(train.scores),
                                 hidden_dim=32, attention_dim=8, n_intervals=8, head_hidden=32, dropout=0.0,
                                 n_exemplars=5, intervention=intervention)
            rho[intervention], aiou = spearman_and_aiou(fit(model, train, epochs=25, seed=seed), test)
            if intervention:
                aious.append(aiou)
        gains.append(rho[True] - rho[False])
    assert min(gains) > 0 and np.mean(gains) > 0.05, gains
    print("test Spearman gains", gains, "AIoU@0.5", aious)
    assert min(aious) > 0.8, aious


def test_a_difficulty_aware_score_is_the_query_difficulty_times_its_execution():
    model = tiny(difficulty_aware=True)
    model.execution_range.copy_(torch.tensor([2.0, 8.0], dtype=torch.float64))
    features, mask = padded_batch([6, 9], 8)
    base = exemplars_for(2)
    aware = Exemplars(base.features, base.mask, base.index, base.score, torch.full_like(base.score, 2.5),
                      torch.tensor([2.0, 3.0]))
    score = model(features, mask, aware).score
    harder = Exemplars(*[getattr(aware, name) for name in ("features", "mask", "index", "score", "difficulty")],
                       aware.query_difficulty * 2)
    torch.testing.assert_close(model(features, mask, harder).score, 2 * score)
    # an exemplar's vote is its execution: its score and difficulty scaled together change nothing
    same_execution = Exemplars(base.features, base.mask, base.index, base.score * 2, aware.difficulty * 2,
                               aware.query_difficulty)
    torch.testing.assert_close(model(features, mask, same_execution).score, score)
    with pytest.raises(DataError, match="difficulty-aware: it needs the degree of difficulty"):
        model(features, mask, Exemplars(base.features, base.mask, base.index, base.score))
    zero = Exemplars(*[getattr(aware, name) for name in ("features", "mask", "index", "score")],
                     torch.zeros_like(base.score), aware.query_difficulty)
    with pytest.raises(DataError, match="a degree of difficulty is 0.0"):
        model(features, mask, zero)


def with_difficulty(videos, seed: int):
    """The same videos judged as dives: a degree of difficulty per video (not in its features) times
    its score, as a final diving score is DD x execution."""
    difficulty = np.random.default_rng(seed).choice([1.6, 2.4, 3.2, 3.6], size=len(videos))
    return VideoSet(videos.ids, videos.features, videos.scores * difficulty, f"{videos.source} x DD",
                    {**videos.extras, "difficulty": difficulty})


def test_the_difficulty_aware_score_ranks_dives_the_plain_one_cannot_read_the_difficulty_of():
    """Final = DD x execution with DD invisible in the features: trained on the same videos, the
    difficulty-aware model ranks the test finals far better than the plain one (which must guess DD)."""
    bench = get_benchmark("synthetic-confounded", n_train=120, n_test=120, seed=0, rho=0.0)
    train, test = (with_difficulty(bench.load(None, split), seed) for seed, split in enumerate(("train", "test")))
    rho = {}
    for aware in (True, False):
        model = create_model("finecausal", in_dim=32, score_scale=ScoreScale.from_scores(train.scores),
                             hidden_dim=32, attention_dim=8, n_intervals=8, head_hidden=32, dropout=0.0,
                             n_exemplars=5, difficulty_aware=aware)
        rho[aware], _ = spearman_and_aiou(fit(model, train, epochs=15, seed=0), test)
    print("test Spearman of the final scores, difficulty-aware / plain:", rho)
    assert rho[True] > rho[False] + 0.1, rho
