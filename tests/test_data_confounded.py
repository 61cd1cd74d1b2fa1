"""The confounded synthetic benchmark: the background tracks the score in train, not at test."""

import numpy as np
import torch

from aqakit.data.batches import ClipBank
from aqakit.data.benchmarks import get_benchmark
from aqakit.data.stages import stage_segments


def background_of(videos) -> tuple[np.ndarray, np.ndarray]:
    """What the whole-frame stream adds to the foreground: its largest spread over a video's clips
    (N,) and its signed size (N,) along the background direction."""
    dim = videos.feature_dim // 2
    added = [f[:, :dim] - f[:, dim:] for f in videos.features]  # (T, D) each
    direction = added[0].mean(0) / np.linalg.norm(added[0].mean(0)) * np.sign(videos.extras["background"][0])
    return np.array([np.ptp(a, axis=0).max() for a in added]), np.array([a.mean(0) @ direction for a in added])


def test_the_background_correlates_with_the_score_in_train_only():
    bench = get_benchmark("synthetic-confounded", n_train=300, n_test=300)
    train, test = bench.load(None, "train"), bench.load(None, "test")
    for videos in (train, test):
        spread, _ = background_of(videos)
        assert spread.max() < 1e-5  # O - F is one vector per video: the background
    train_r = np.corrcoef(background_of(train)[1], train.scores)[0, 1]
    test_r = np.corrcoef(background_of(test)[1], test.scores)[0, 1]
    assert train_r > 0.8 and abs(test_r) < 0.15


def test_planted_transitions_cut_the_stages_and_reach_the_batches():
    videos = get_benchmark("synthetic-confounded", n_train=20).load(None, "train")
    dim = videos.feature_dim // 2
    for features, transitions in zip(videos.features, videos.extras["transition_clips"]):
        stages = stage_segments(transitions, len(features))
        assert len(stages) == 3 and stages[-1][1] == len(features) - 1
        # the foreground's stage identity changes exactly at the transitions
        means = [features[a:b + 1, dim:].mean(0) for a, b in stages]
        assert min(np.linalg.norm(means[0] - means[1]), np.linalg.norm(means[1] - means[2])) > 1.0
    batch = ClipBank(videos).whole(torch.arange(3))
    assert batch["transition"].sum(1).tolist() == [2.0, 2.0, 2.0]
