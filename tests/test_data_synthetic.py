"""The synthetic benchmark: deterministic, shaped as documented, and its planted signal learnable."""

from __future__ import annotations


import numpy as np
import pytest
from scipy.stats import spearmanr

from aqakit.data.benchmarks import get_benchmark
from aqakit.data.synthetic import make_synthetic
from aqakit.errors import ConfigError


def mean_pooled(videoset) -> np.ndarray:
    return np.stack([f.mean(axis=0) for f in videoset.features])


def test_deterministic_and_seed_dependent():
    a, b = make_synthetic(20, dim=16, seed=5), make_synthetic(20, dim=16, seed=5)
    c = make_synthetic(20, dim=16, seed=6)
    assert all(np.array_equal(x, y) for x, y in zip(a.features, b.features))
    np.testing.assert_array_equal(a.scores, b.scores)
    assert not np.array_equal(a.scores, c.scores)


def test_shapes_extras_and_score_range():
    vs = make_synthetic(50, dim=24, min_clips=5, max_clips=9, n_procedures=3)
    assert len(vs) == 50 and vs.feature_dim == 24
    assert vs.lengths.min() >= 5 and vs.lengths.max() <= 9
    assert all(f.dtype == np.float32 for f in vs.features)
    quality, starts = vs.extras["procedure_quality"], vs.extras["procedure_start"]
    assert quality.shape == (50, 3) and ((quality >= 0) & (quality <= 1)).all()
    assert (starts[:, 0] == 0).all() and (np.diff(starts, axis=1) >= 1).all()
    assert (starts[:, -1] < vs.lengths).all()
    # scores are not on [0, 1]: nothing may assume that
    assert vs.scores.min() > 10 and vs.scores.max() < 90 and np.ptp(vs.scores) > 10
    # subsetting keeps the hidden truth aligned
    sub = vs.subset([4, 2])
    np.testing.assert_array_equal(sub.extras["procedure_quality"], quality[[4, 2]])


def test_one_procedure_and_one_clip():
    vs = make_synthetic(3, dim=2, min_clips=1, max_clips=1, n_procedures=1)
    assert list(vs.lengths) == [1, 1, 1]


def test_bad_arguments():
    with pytest.raises(ConfigError, match="min_clips"):
        make_synthetic(5, min_clips=2, n_procedures=4)
    with pytest.raises(ConfigError, match="n_videos"):
        make_synthetic(0)


def test_nuisance_dominates_the_features():
    # same seed without the quality term: the difference is exactly the planted quality signal
    full = make_synthetic(100, seed=1)
    no_quality = make_synthetic(100, seed=1, quality_gain=0.0)
    signal = np.concatenate([f - g for f, g in zip(full.features, no_quality.features)])
    rest = np.concatenate(no_quality.features)
    assert signal.var(axis=0).sum() > 0.1
    assert rest.var(axis=0).sum() > 10 * signal.var(axis=0).sum()


def test_adapter_defaults_learnable():
    bench = get_benchmark("synthetic")
    train, test = bench.load(None, "train"), bench.load(None, "test")
    assert (len(train), len(test)) == (800, 200)
    assert not np.allclose(train.scores[:200], test.scores)
    assert train.ids[0] == "train-00000" and test.ids[0] == "test-00000"

    x_train, x_test = mean_pooled(train), mean_pooled(test)
    mean = x_train.mean(axis=0)
    a = np.vstack([x_train - mean, np.sqrt(1.0) * np.eye(x_train.shape[1])])  # ridge, lambda = 1
    b = np.concatenate([train.scores - train.scores.mean(), np.zeros(x_train.shape[1])])
    w = np.linalg.lstsq(a, b, rcond=None)[0]
    ridge = spearmanr((x_test - mean) @ w, test.scores)[0]
    oracle = spearmanr(test.extras["oracle_score"], test.scores)[0]
    assert ridge > 0.5
    assert oracle > 0.95 and oracle > ridge + 0.2
