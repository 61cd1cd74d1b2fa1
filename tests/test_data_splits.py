"""Validation splits carved from the training set: disjoint, complete, seeded, spread over scores."""

from __future__ import annotations

import numpy as np
import pytest

from aqakit.data.splits import carve_fold, carve_validation
from aqakit.errors import ConfigError, DataError


def test_disjoint_covering_sized_and_spread():
    scores = np.random.default_rng(3).normal(50, 10, size=400)
    train, val = carve_validation(scores, fraction=0.2, seed=0)
    assert len(np.intersect1d(train, val)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(400))
    assert len(val) == 80
    # one val item per bin of 5 consecutive ranks: val covers the lowest and highest bins
    ranks = np.argsort(np.argsort(scores))
    assert ranks[val].min() < 5 and ranks[val].max() >= 395
    # and every bin of 5 ranks holds exactly one val item
    np.testing.assert_array_equal(np.bincount(ranks[val] // 5, minlength=80), np.ones(80))


def test_seeded_and_seed_matters():
    scores = np.linspace(0, 1, 100)
    a = carve_validation(scores, 0.25, seed=1)
    b = carve_validation(scores, 0.25, seed=1)
    c = carve_validation(scores, 0.25, seed=2)
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_smallest_sets():
    train, val = carve_validation(np.array([3.0, 1.0]), fraction=0.1)
    assert len(train) == 1 and len(val) == 1
    train, val = carve_validation(np.arange(5.0), fraction=0.99)
    assert len(train) == 1 and len(val) == 4


def test_too_small_is_data_error():
    with pytest.raises(DataError, match="1 training video"):
        carve_validation(np.array([1.0]))


def test_a_validation_part_can_be_asked_to_keep_two_videos():
    train, val = carve_validation(np.arange(7.0), fraction=0.2, min_val=2)  # round(1.4) = 1 would be too few
    assert len(val) == 2 and len(train) == 5
    with pytest.raises(DataError, match="2 training video.*at least 3"):
        carve_validation(np.arange(2.0), min_val=2)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_fraction_must_be_in_open_unit_interval(fraction):
    with pytest.raises(ConfigError, match="fraction"):
        carve_validation(np.arange(10.0), fraction=fraction)


def test_nan_score_is_data_error():
    with pytest.raises(DataError, match="index 2"):
        carve_validation(np.array([1.0, 2.0, np.nan, 4.0]))


@pytest.mark.parametrize("n, k", [(400, 5), (23, 4), (3, 3)])
def test_folds_partition_the_set_and_each_spans_the_scores(n, k):
    scores = np.random.default_rng(4).normal(20, 5, size=n)
    folds = [carve_fold(scores, k, fold, seed=7) for fold in range(k)]
    for train, val in folds:
        assert len(val) >= 1 and len(np.intersect1d(train, val)) == 0
        np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(n))
    all_val = np.concatenate([val for _, val in folds])
    np.testing.assert_array_equal(np.sort(all_val), np.arange(n))  # every video validated exactly once
    # every full bin of k consecutive ranks sends exactly one video to each fold
    ranks = np.argsort(np.argsort(scores, kind="stable"), kind="stable")
    for _, val in folds:
        full_bins = ranks[val][ranks[val] < (n // k) * k] // k
        np.testing.assert_array_equal(np.bincount(full_bins, minlength=n // k), np.ones(n // k))


def test_fold_partition_is_seeded():
    scores = np.linspace(0, 1, 50)
    np.testing.assert_array_equal(carve_fold(scores, 5, 2, seed=1)[1], carve_fold(scores, 5, 2, seed=1)[1])
    assert not np.array_equal(carve_fold(scores, 5, 2, seed=1)[1], carve_fold(scores, 5, 2, seed=2)[1])


def test_bad_folds_are_clear_errors():
    with pytest.raises(ConfigError, match="at least 2 folds"):
        carve_fold(np.arange(10.0), 1, 0)
    with pytest.raises(ConfigError, match="fold 5 is outside 0..4"):
        carve_fold(np.arange(10.0), 5, 5)
    with pytest.raises(DataError, match="4 training video\\(s\\), at least 5 needed"):
        carve_fold(np.arange(4.0), 5, 0)
    with pytest.raises(DataError, match="index 1"):
        carve_fold(np.array([1.0, np.inf, 2.0]), 2, 0)
