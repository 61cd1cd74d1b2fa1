"""Exemplars of pair models: who is paired with whom, at training and at test, and the batches they make."""

import numpy as np
import pytest
import torch

from aqakit.data.batches import ClipBank, EvalBatches, TrainBatches
from aqakit.data.exemplars import ExemplarBatches, ExemplarPool, Exemplars
from aqakit.data.videoset import VideoSet
from aqakit.errors import ConfigError, DataError
from conftest import random_videos


def keyed_videos(keys: list[str], dim: int = 4, seed: int = 0) -> VideoSet:
    videos = random_videos(len(keys), dim, seed=seed)
    videos.extras["dive"] = np.array(keys)
    return videos


def test_training_never_pairs_a_video_with_itself_and_keeps_to_its_key():
    videos = keyed_videos(["a", "a", "b", "b", "b", "c", "c", "a"])
    pool = ExemplarPool(videos, key="dive")
    generator = torch.Generator().manual_seed(0)
    indices = torch.arange(len(videos))
    for _ in range(200):
        chosen = pool.for_training(indices, generator)
        assert (chosen != indices).all()
        assert (videos.extras["dive"][chosen.numpy()] == videos.extras["dive"]).all()
    assert pool.fallbacks == {"train": 0, "test": 0}


def test_training_draws_every_other_member_of_a_group():
    videos = keyed_videos(["a"] * 4 + ["b"] * 2)
    pool = ExemplarPool(videos, key="dive")
    generator = torch.Generator().manual_seed(0)
    seen = {int(pool.for_training(torch.tensor([0]), generator)) for _ in range(100)}
    assert seen == {1, 2, 3}


def test_a_key_with_one_member_falls_back_to_any_video_and_is_counted():
    videos = keyed_videos(["a", "a", "a", "lonely"])
    pool = ExemplarPool(videos, key="dive")
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        chosen = int(pool.for_training(torch.tensor([3]), generator))
        assert chosen in (0, 1, 2)
    assert pool.fallbacks["train"] == 1  # one video, counted once however often it is drawn


def test_a_key_with_one_member_is_an_error_when_fallback_is_refused():
    pool = ExemplarPool(keyed_videos(["a", "a", "lonely"]), key="dive", fallback="error")
    with pytest.raises(DataError, match="video v2 has dive 'lonely', which no other training video has"):
        pool.for_training(torch.tensor([2]), torch.Generator())


def test_an_unrecorded_key_names_the_recorded_ones():
    with pytest.raises(ConfigError, match="exemplar key 'grade' is not recorded .* recorded keys: difficulty, dive, dive_number"):
        ExemplarPool(keyed_videos(["a", "b"]), key="grade")


def test_test_exemplars_are_deterministic_per_seed_and_video_whatever_the_batch():
    train, test = keyed_videos(["a"] * 6 + ["b"] * 6), keyed_videos(["a", "b", "a"], seed=1)
    test.ids = ["t0", "t1", "t2"]
    pool = ExemplarPool(train, key="dive")
    together = pool.for_test(test, torch.arange(3), 4, seed=3)
    one_by_one = torch.cat([pool.for_test(test, torch.tensor([i]), 4, seed=3) for i in range(3)])
    assert torch.equal(together, one_by_one)
    assert torch.equal(together, ExemplarPool(train, key="dive").for_test(test, torch.arange(3), 4, seed=3))
    assert not torch.equal(together, pool.for_test(test, torch.arange(3), 4, seed=4))
    for row, key in zip(together, test.extras["dive"]):
        assert len(set(row.tolist())) == 4  # no repeats while the group has M members
        assert (train.extras["dive"][row.numpy()] == key).all()


def test_test_exemplars_cycle_through_a_small_group_and_never_include_the_video_itself():
    train = keyed_videos(["a", "a", "a", "b", "b", "b", "b", "b"])
    pool = ExemplarPool(train, key="dive")
    rows = pool.for_test(train, torch.tensor([0]), 6, seed=0)[0].tolist()  # scoring a training video
    assert sorted(set(rows)) == [1, 2] and len(rows) == 6


def test_more_exemplars_than_training_videos_is_an_error():
    pool = ExemplarPool(random_videos(5, 4))
    with pytest.raises(DataError, match="10 exemplars per test video asked for, but the training set has only 5"):
        pool.for_test(random_videos(3, 4, seed=1), torch.arange(3), 10, seed=0)


def test_exemplars_of_another_feature_dimension_are_an_error():
    pool = ExemplarPool(random_videos(6, 4))
    other = random_videos(3, 5, seed=1)
    with pytest.raises(DataError, match="exemplar features have dimension 4 .* the videos they score have 5"):
        ExemplarBatches(EvalBatches(ClipBank(other)), pool, 0, m=2, videos=other)


def test_held_out_batches_carry_each_distinct_exemplar_once_with_its_clips_and_score():
    train, test = random_videos(10, 4), random_videos(7, 4, seed=1)
    test.ids = [f"t{i}" for i in range(7)]
    pool = ExemplarPool(train)
    batches = ExemplarBatches(EvalBatches(ClipBank(test), batch_size=3), pool, seed=0, m=4, videos=test)
    for batch in batches:
        exemplars = Exemplars.from_batch(batch)
        assert exemplars.index.shape == (len(batch["index"]), 4)
        assert len(exemplars.features) == len(torch.unique(batches.test_exemplars[batch["index"]]))
        for b, query in enumerate(batch["index"].tolist()):
            for m, pool_position in enumerate(batches.test_exemplars[query].tolist()):
                row = exemplars.index[b, m]
                clips = exemplars.features[row][exemplars.mask[row]]
                np.testing.assert_array_equal(clips.numpy(), train.features[pool_position])
                assert exemplars.score[b, m] == pytest.approx(train.scores[pool_position])


def test_training_batches_draw_new_exemplars_each_epoch_reproducibly():
    videos = random_videos(12, 4)
    pool = ExemplarPool(videos)

    def epoch_pairs(epoch: int) -> list[tuple[int, float]]:
        batches = ExemplarBatches(TrainBatches(pool.bank, 4, 5, seed=0), pool, seed=0, crop_len=5)
        batches.set_epoch(epoch)
        return [(int(i), float(s)) for batch in batches for i, s in zip(batch["index"], batch["exemplar_score"][:, 0])]

    assert epoch_pairs(0) == epoch_pairs(0)
    assert epoch_pairs(0) != epoch_pairs(1)
    for batch in ExemplarBatches(TrainBatches(pool.bank, 4, 5, seed=0), pool, seed=0, crop_len=5):
        assert batch["exemplar_features"].shape[1] <= 5  # cropped like the queries
