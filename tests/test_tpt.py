"""TPT and its group-aware head: the losses on hand-made attention, the intervals, learning, parsing."""

import numpy as np
import pytest
import torch

from aqakit.data.batches import ClipBank, EvalBatches, TrainBatches
from aqakit.data.benchmarks import get_benchmark
from aqakit.data.exemplars import ExemplarBatches, ExemplarPool, Exemplars
from aqakit.data.scale import ScoreScale
from aqakit.errors import ConfigError, DataError
from aqakit.models import create_model
from aqakit.models.group_aware import GroupAwareHead, interval_boundaries, pair_differences
from aqakit.models.tpt import attention_centres, ranking_loss, sparsity_loss
from conftest import random_videos


def one_hot(length: int, *positions: int) -> torch.Tensor:
    """(1, K, length) attention putting all its weight on clip ``positions[k]`` (1-based) for part k."""
    attention = torch.zeros(1, len(positions), length)
    for k, t in enumerate(positions):
        attention[0, k, t - 1] = 1.0
    return attention


def test_ranking_loss_is_zero_for_ordered_centres_a_margin_apart():
    margin = torch.tensor([2.0])
    assert float(ranking_loss(one_hot(10, 3, 7), torch.tensor([10.0]), margin)) == 0.0


def test_ranking_loss_sums_the_violated_hinges():
    # centres 7, 3 on 10 clips, margin 2: 1+2 <= 7 holds, 7+2 <= 3 misses by 6, 3+2 <= 10 holds
    assert float(ranking_loss(one_hot(10, 7, 3), torch.tensor([10.0]), torch.tensor([2.0]))) == pytest.approx(6.0)
    # centres 2, 9: the first is 1 short of 1+2, the last 1 past 10-2
    assert float(ranking_loss(one_hot(10, 2, 9), torch.tensor([10.0]), torch.tensor([2.0]))) == pytest.approx(2.0)


def test_the_last_virtual_centre_is_the_real_length_not_the_padded_one():
    attention = one_hot(12, 2, 5)  # a 6-clip video padded to 12: centre 5 is within 2 of its end
    assert float(ranking_loss(attention, torch.tensor([6.0]), torch.tensor([1.0]))) == pytest.approx(0.0)
    assert float(ranking_loss(attention, torch.tensor([6.0]), torch.tensor([2.0]))) == pytest.approx(1.0 + 1.0)


def test_sparsity_loss_is_zero_for_a_peak_and_the_mean_distance_for_a_spread():
    assert float(sparsity_loss(one_hot(8, 2, 6))) == 0.0
    uniform = torch.full((1, 1, 4), 0.25)  # centre 2.5: distances 1.5, 0.5, 0.5, 1.5
    assert float(attention_centres(uniform)) == pytest.approx(2.5)
    assert float(sparsity_loss(uniform)) == pytest.approx(1.0)


def test_the_margin_scales_with_the_length_or_is_refused():
    scaled = create_model("tpt", in_dim=4, score_scale=ScoreScale(0, 1), hidden_dim=8, n_heads=2, n_parts=2)
    margins = scaled.ranking_margin(torch.tensor([4.0, 7.0, 100.0]))  # (T - 1) / (K + 1) up to 2
    torch.testing.assert_close(margins, torch.tensor([1.0, 2.0, 2.0]))
    refusing = create_model("tpt", in_dim=4, score_scale=ScoreScale(0, 1), hidden_dim=8, n_heads=2, n_parts=2,
                            margin_policy="refuse")
    with pytest.raises(DataError, match="margin of 2 between 2 parts needs at least 7 clips .* has 4"):
        refusing.ranking_margin(torch.tensor([4.0, 9.0]))


def test_intervals_are_symmetric_and_hold_equal_numbers_of_pairs():
    scores = np.random.default_rng(0).uniform(size=60)
    differences = pair_differences(scores)
    assert len(differences) == 60 * 59 // 2
    boundaries = interval_boundaries(differences, 8)
    np.testing.assert_allclose(boundaries, -boundaries[::-1])
    counts, _ = np.histogram(differences, bins=boundaries[4:])
    assert counts.max() - counts.min() <= 1 and counts.sum() == len(differences)


def test_pairs_are_counted_within_groups_only():
    differences = pair_differences(np.array([0.0, 0.1, 5.0, 5.3]), np.array(["a", "a", "b", "b"]))
    np.testing.assert_allclose(sorted(differences), [0.1, 0.3])


def test_an_odd_number_of_intervals_is_refused():
    with pytest.raises(ConfigError, match="n_intervals must be even"):
        create_model("tpt", in_dim=4, score_scale=ScoreScale(0, 1), n_intervals=5)


def test_a_difference_survives_its_interval_label_and_offset():
    head = GroupAwareHead(4, 4)
    head.set_boundaries(np.array([-1.0, -0.3, 0.0, 0.3, 1.0]))
    difference = torch.tensor([-0.9, -0.1, 0.0, 0.2, 0.65])
    label, offset = head.targets(difference)
    assert label.tolist() == [0, 1, 2, 2, 3]
    logits = torch.nn.functional.one_hot(label, 4).float()
    offsets = offset[:, None].expand(-1, 4)
    torch.testing.assert_close(head.difference(logits, offsets), difference)


def test_a_pair_model_without_exemplars_or_with_exemplars_of_another_dimension_is_a_data_error():
    model = create_model("tpt", in_dim=4, score_scale=ScoreScale(0, 1), hidden_dim=8, n_heads=2)
    with pytest.raises(DataError, match="tpt scores a video against training exemplars"):
        model(torch.randn(2, 5, 4))
    wrong = Exemplars(torch.randn(3, 5, 6), torch.ones(3, 5, dtype=torch.bool), torch.zeros(2, 1, dtype=torch.long),
                      torch.zeros(2, 1))
    with pytest.raises(DataError, match=r"exemplar features have shape \(3, 5, 6\); tpt needs \(exemplars, clips, 4\)"):
        model(torch.randn(2, 5, 4), None, wrong)


def test_the_parts_are_attention_over_real_clips_and_centres_inside_the_video():
    model = create_model("tpt", in_dim=4, score_scale=ScoreScale(0, 1), hidden_dim=8, n_heads=2, n_parts=3).eval()
    features, mask = torch.randn(2, 9, 4), torch.arange(9)[None, :] < torch.tensor([[5], [9]])
    exemplars = Exemplars(torch.randn(1, 6, 4), torch.ones(1, 6, dtype=torch.bool), torch.zeros(2, 2, dtype=torch.long),
                          torch.ones(2, 2))
    parts = model(features, mask, exemplars).parts
    attention, centres = parts["part_attention"], parts["part_centres"]
    assert attention.shape == (2, 3, 9) and float(attention[0, :, 5:].abs().sum()) == 0.0
    torch.testing.assert_close(attention.sum(-1), torch.ones(2, 3))
    assert float(centres[0].max()) <= 4.0 and float(centres.min()) >= 0.0


def fit(model, videos, epochs: int, lr: float, seed: int = 0, crop_len: int = 64):
    """Train ``model`` on ``videos`` with one exemplar per video, as the engine does (without Lightning)."""
    model.prepare(videos)
    pool = ExemplarPool(videos)
    batches = ExemplarBatches(TrainBatches(pool.bank, 16, crop_len, seed), pool, seed, crop_len=crop_len)
    optimiser = torch.optim.Adam(model.parameter_groups(lr))
    model.train()
    for epoch in range(epochs):
        batches.set_epoch(epoch)
        for batch in batches:
            prediction = model(batch["features"], batch["mask"], Exemplars.from_batch(batch))
            loss = sum(model.loss(prediction, batch).values())
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return model.eval(), pool


def scored(model, pool, videos, m: int):
    """(predicted scores, parts) of ``videos`` with ``m`` exemplars each from ``pool``."""
    batch = next(iter(ExemplarBatches(EvalBatches(ClipBank(videos), len(videos)), pool, 0, m=m, videos=videos)))
    with torch.no_grad():
        prediction = model(batch["features"], batch["mask"], Exemplars.from_batch(batch))
    order = batch["index"].argsort()
    return prediction.score[order].numpy(), {k: v[order] for k, v in prediction.parts.items()}


def test_a_tiny_tpt_overfits_a_tiny_set():
    torch.manual_seed(0)
    videos = random_videos(16, 8, max_clips=12)
    model = create_model("tpt", in_dim=8, score_scale=ScoreScale.from_scores(videos.scores), hidden_dim=32,
                         n_heads=4, n_parts=2, dropout=0.0, n_intervals=8)
    model, pool = fit(model, videos, epochs=300, lr=1e-3)
    predicted, _ = scored(model, pool, videos, m=10)
    assert np.abs(predicted - videos.scores).mean() < 0.1 * np.ptp(videos.scores)
    assert np.corrcoef(predicted, videos.scores)[0, 1] > 0.95


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_part_centres_find_planted_procedures_of_unequal_length(seed):
    """On synthetic videos of 3 procedures in order with uniformly random lengths, each part's
    centre falls inside its own procedure far more often than evenly spaced centres do (what the
    ranking loss alone would give a parser that does not read the clips)."""
    torch.manual_seed(seed)
    benchmark = get_benchmark("synthetic", n_train=160, n_test=60, dim=16, min_clips=12, max_clips=30,
                              n_procedures=3, length_concentration=1.0, seed=seed)
    train, test = benchmark.load(None, "train"), benchmark.load(None, "test")
    model = create_model("tpt", in_dim=16, score_scale=ScoreScale.from_scores(train.scores), hidden_dim=32,
                         n_heads=4, n_parts=3, ffn_dim=32, n_intervals=4, dropout=0.0, rank_margin=1.0)
    model, pool = fit(model, train, epochs=60, lr=3e-3, seed=seed, crop_len=30)
    _, parts = scored(model, pool, test, m=2)
    centres = parts["part_centres"].numpy()  # (N, 3), 0-based clips
    inside, even_inside = [], []
    for video, starts in enumerate(test.extras["procedure_start"]):
        length = len(test.features[video])
        bounds = [*starts, length]
        even = [(k + 1) * (length + 1) / 4 - 1 for k in range(3)]
        for k in range(3):
            inside.append(bounds[k] <= centres[video, k] < bounds[k + 1])
            even_inside.append(bounds[k] <= even[k] < bounds[k + 1])
    assert np.mean(inside) > np.mean(even_inside) + 0.05, (np.mean(inside), np.mean(even_inside))
    ordered = np.all(np.diff(centres, axis=1) > 0, axis=1)
    assert ordered.mean() > 0.8, ordered.mean()  # and mostly in the planted order
