import numpy as np
import torch

from aqakit.data.batches import ClipBank, EvalBatches, TrainBatches
from aqakit.data.videoset import VideoSet


def make_videos(lengths, dim=3):
    # Clip t of video i holds the value 1000 * i + t in every dimension: easy to trace.
    features = [np.full((n, dim), 0, np.float32) + (1000 * i + np.arange(n, dtype=np.float32))[:, None]
                for i, n in enumerate(lengths)]
    return VideoSet([f"v{i}" for i in range(len(lengths))], features, np.arange(len(lengths), dtype=float) * 10)


def test_crop_takes_consecutive_clips_and_pads_short_videos():
    bank = ClipBank(make_videos([10, 3]))
    batch = bank.crop(torch.tensor([0, 1]), 5, torch.Generator().manual_seed(0))
    assert batch["features"].shape == (2, 5, 3)
    long_clips = batch["features"][0, :, 0]
    assert torch.all(long_clips[1:] - long_clips[:-1] == 1)  # a window of consecutive clips
    assert 0 <= long_clips[0] <= 5 and batch["mask"][0].all()
    assert batch["mask"][1].tolist() == [True, True, True, False, False]
    assert batch["features"][1, :3, 0].tolist() == [1000, 1001, 1002]
    assert torch.all(batch["features"][1, 3:] == 0)
    assert batch["score"].tolist() == [0.0, 10.0]


def test_crop_start_covers_every_valid_window():
    bank = ClipBank(make_videos([6]))
    generator = torch.Generator().manual_seed(1)
    starts = {int(bank.crop(torch.tensor([0]), 4, generator)["features"][0, 0, 0]) for _ in range(200)}
    assert starts == {0, 1, 2}


def test_whole_videos_keep_every_clip_in_order():
    videos = make_videos([4, 7, 1])
    batches = list(EvalBatches(ClipBank(videos), batch_size=2))
    seen = {}
    for batch in batches:
        for row, index in enumerate(batch["index"].tolist()):
            n = int(batch["mask"][row].sum())
            seen[index] = batch["features"][row, :n, 0].tolist()
            assert not batch["mask"][row, n:].any()
    assert seen == {i: videos.features[i][:, 0].tolist() for i in range(3)}


def test_eval_batches_respect_the_clip_budget():
    batches = EvalBatches(ClipBank(make_videos([5, 5, 5, 50])), batch_size=8, max_clips=60)
    sizes = [tuple(b["features"].shape[:2]) for b in batches]
    assert sizes == [(3, 5), (1, 50)]


def test_train_batches_depend_only_on_seed_and_epoch():
    bank = ClipBank(make_videos([12] * 10))

    def epoch(seed, number):
        loader = TrainBatches(bank, batch_size=4, crop_len=5, seed=seed)
        loader.set_epoch(number)
        return [b["features"] for b in loader]

    first, again = epoch(0, 3), epoch(0, 3)
    assert len(first) == 3 and all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, epoch(0, 4)))
    assert not all(torch.equal(a, b) for a, b in zip(first, epoch(1, 3)))
    indices = torch.cat([b for b in (x["index"] for x in TrainBatches(bank, 4, 5, 0))])
    assert sorted(indices.tolist()) == list(range(10))


def test_a_lone_last_video_joins_the_previous_batch():
    loader = TrainBatches(ClipBank(make_videos([1] * 9)), batch_size=4, crop_len=2, seed=0)
    sizes = [len(b["index"]) for b in loader]
    assert sizes == [4, 5] and len(loader) == 2
    single = TrainBatches(ClipBank(make_videos([3])), batch_size=4, crop_len=2, seed=0)
    assert [len(b["index"]) for b in single] == [1] and len(single) == 1


def test_a_batch_of_videos_shorter_than_the_crop_is_padded_to_its_longest():
    bank = ClipBank(make_videos([1, 3, 2, 30]))
    generator = torch.Generator().manual_seed(0)
    short = bank.crop(torch.tensor([0, 1, 2]), 68, generator)
    assert short["features"].shape == (3, 3, 3) and short["mask"].sum(1).tolist() == [1, 3, 2]
    mixed = bank.crop(torch.tensor([0, 3]), 8, generator)  # a video longer than the crop: crop_len clips
    assert mixed["features"].shape == (2, 8, 3) and mixed["mask"][0].sum() == 1
