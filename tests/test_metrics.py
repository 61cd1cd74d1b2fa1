"""Tests of aqakit.metrics against hand-computed values."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from aqakit import metrics
from aqakit.metrics import (
    bootstrap_spearman_ci,
    evaluate,
    fisher_z_mean,
    mae,
    mse,
    pearson,
    relative_l2,
    spearman,
)


def _correlated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    true = rng.uniform(30.0, 100.0, size=n)
    pred = true + rng.normal(0.0, 15.0, size=n)
    return pred, true


# --- correlations ---------------------------------------------------------------------------


def test_spearman_perfect_monotone_and_reversed():
    true = [1.0, 4.0, 9.0, 100.0]  # monotone but far from linear
    assert spearman([1, 2, 3, 4], true) == pytest.approx(1.0)
    assert spearman([4, 3, 2, 1], true) == pytest.approx(-1.0)
    assert pearson([1, 2, 3, 4], true) < 0.95  # Pearson sees the non-linearity


def test_spearman_with_ties_matches_hand_computation():
    # Ranks of pred: [1, 2.5, 2.5, 4]; of true: [1, 2, 3, 4]; centred on 2.5:
    # sum(dp*dt) = 4.5, sum(dp^2) = 4.5, sum(dt^2) = 5  ->  rho = 4.5 / sqrt(4.5 * 5) = sqrt(0.9)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(math.sqrt(0.9))


def test_pearson_matches_hand_computation():
    assert pearson([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(1.0)
    assert pearson([1, 2, 3, 4], [10, 7, 4, 1]) == pytest.approx(-1.0)
    # Centred: [-1, 0, 1] and [-1, 1, 0] -> 1 / sqrt(2 * 2) = 0.5
    assert pearson([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)


def test_correlations_return_python_floats():
    assert type(spearman([1, 2, 3], [1, 3, 2])) is float
    assert type(pearson(np.array([1, 2, 3]), np.array([1, 3, 2]))) is float


@pytest.mark.parametrize("func", [spearman, pearson])
def test_constant_input_gives_nan_without_warning(func):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning would fail the test
        assert math.isnan(func([5.0, 5.0, 5.0, 5.0], [1.0, 2.0, 3.0, 4.0]))
        assert math.isnan(func([1.0, 2.0, 3.0, 4.0], [7.0, 7.0, 7.0, 7.0]))


@pytest.mark.parametrize("func", [spearman, pearson, mse, mae])
def test_bad_lengths_raise(func):
    with pytest.raises(ValueError, match="same length"):
        func([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="at least 2"):
        func([1.0], [1.0])
    with pytest.raises(ValueError, match="at least 2"):
        func([], [])
    with pytest.raises(ValueError, match="1-D"):
        func([[1, 2], [3, 4]], [[1, 2], [3, 4]])


# --- errors on the original scale -----------------------------------------------------------


def test_relative_l2_matches_hand_computation():
    # diffs / range = [-0.1, 0, -0.2] -> squares [0.01, 0, 0.04] -> mean 0.05/3 -> x100
    assert relative_l2([1, 2, 3], [2, 2, 5], lo=0.0, hi=10.0) == pytest.approx(5.0 / 3.0)
    # Same errors over a twice larger range -> a quarter of the value.
    assert relative_l2([1, 2, 3], [2, 2, 5], lo=-5.0, hi=15.0) == pytest.approx(5.0 / 12.0)
    assert relative_l2([4, 5], [4, 5], lo=0.0, hi=10.0) == 0.0


@pytest.mark.parametrize("lo,hi", [(1.0, 1.0), (2.0, 1.0), (0.0, float("nan")), (float("-inf"), 1.0)])
def test_relative_l2_bad_range_raises(lo, hi):
    with pytest.raises(ValueError, match="lo < hi"):
        relative_l2([1, 2], [1, 2], lo=lo, hi=hi)


def test_mse_and_mae_match_hand_computation():
    pred, true = [1.0, 2.0, 3.0], [2.0, 2.0, 5.0]
    assert mse(pred, true) == pytest.approx(5.0 / 3.0)
    assert mae(pred, true) == pytest.approx(1.0)


# --- Fisher z -------------------------------------------------------------------------------


def test_fisher_z_mean_known_values():
    assert fisher_z_mean([0.5, 0.5]) == pytest.approx(0.5)
    expected = math.tanh((math.atanh(0.9) + math.atanh(0.1)) / 2)
    assert fisher_z_mean([0.9, 0.1]) == pytest.approx(expected)
    assert fisher_z_mean([0.9, 0.1]) > 0.5  # larger than the arithmetic mean
    assert fisher_z_mean([0.3, -0.3]) == pytest.approx(0.0, abs=1e-12)


def test_fisher_z_mean_clips_perfect_correlations():
    assert math.isfinite(fisher_z_mean([1.0, 1.0]))
    assert fisher_z_mean([1.0, 1.0]) == pytest.approx(1.0, abs=1e-6)
    assert fisher_z_mean([1.0, -1.0]) == pytest.approx(0.0, abs=1e-12)


def test_fisher_z_mean_nan_names_index():
    with pytest.raises(ValueError, match="index 2"):
        fisher_z_mean([0.5, 0.4, float("nan"), 0.1])
    with pytest.raises(ValueError):
        fisher_z_mean([])


def test_rowwise_spearman_is_spearman_of_each_row_ties_included():
    rng = np.random.default_rng(0)
    pred = np.round(rng.normal(size=(2, 3, 12)), 1)  # rounding makes ties
    true = np.round(rng.normal(size=(2, 3, 12)), 1)
    rho = metrics.rowwise_spearman(pred, true)
    assert rho.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            assert rho[i, j] == pytest.approx(metrics.spearman(pred[i, j], true[i, j]), abs=1e-12)


def test_resampled_spearman_scores_each_resample_and_marks_undefined_ones_nan():
    true = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    pred = np.array([1.0, 3.0, 2.0, 5.0, 4.0])
    index = np.array([[0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [1, 1, 1, 1, 1], [0, 0, 2, 2, 4]])
    rho = metrics.resampled_spearman(pred, true, index)
    assert rho[0] == pytest.approx(metrics.spearman(pred, true))
    assert rho[1] == pytest.approx(rho[0]) and rho[3] == pytest.approx(metrics.spearman(pred[index[3]], true[index[3]]))
    assert np.isnan(rho[2])  # one video drawn five times: rho undefined


def test_fisher_z_nested_averages_each_group_then_the_groups():
    groups = [np.array([0.6, 0.62, 0.64]), np.array([0.8, 0.7])]
    nested = metrics.fisher_z_mean([metrics.fisher_z_mean(g) for g in groups])
    assert float(metrics.fisher_z_nested(groups)) == pytest.approx(nested, abs=1e-15)
    columns = [np.stack([g, g[::-1]], axis=1) for g in groups]  # (S_g, 2): two resamples each
    assert metrics.fisher_z_nested(columns) == pytest.approx([nested, nested])


# --- bootstrap CI ---------------------------------------------------------------------------


def test_bootstrap_ci_contains_point_estimate_and_narrows_with_more_data():
    pred, true = _correlated(40, seed=1)
    low, high = bootstrap_spearman_ci(pred, true, n_boot=500, seed=0)
    assert -1.0 <= low < high <= 1.0
    assert low <= spearman(pred, true) <= high

    big_pred, big_true = _correlated(1000, seed=1)
    big_low, big_high = bootstrap_spearman_ci(big_pred, big_true, n_boot=500, seed=0)
    assert big_low <= spearman(big_pred, big_true) <= big_high
    assert (big_high - big_low) < 0.5 * (high - low)


def test_bootstrap_ci_reproducible_for_same_seed():
    pred, true = _correlated(50, seed=2)
    first = bootstrap_spearman_ci(pred, true, n_boot=300, seed=7)
    assert bootstrap_spearman_ci(pred, true, n_boot=300, seed=7) == first
    assert bootstrap_spearman_ci(pred, true, n_boot=300, seed=8) != first


def test_bootstrap_ci_matches_unvectorised_reference():
    pred, true = _correlated(12, seed=3)
    pred[:4] = pred[0]  # ties
    n_boot, level, seed = 200, 0.9, 5
    index = np.random.default_rng(seed).integers(0, pred.size, size=(n_boot, pred.size))
    rhos = [spearman(pred[i], true[i]) for i in index]
    rhos = [r for r in rhos if not math.isnan(r)]
    expected = np.quantile(rhos, [0.05, 0.95])
    got = bootstrap_spearman_ci(pred, true, n_boot=n_boot, level=level, seed=seed)
    assert got == pytest.approx(tuple(expected))


def test_bootstrap_ci_skips_degenerate_resamples():
    # With 3 videos, about a tenth of the resamples repeat one pair only (constant).
    low, high = bootstrap_spearman_ci([1.0, 2.0, 3.0], [1.0, 3.0, 2.0], n_boot=200, seed=0)
    assert math.isfinite(low) and math.isfinite(high)
    assert -1.0 <= low <= high <= 1.0


def test_bootstrap_ci_constant_input_and_bad_arguments():
    assert all(math.isnan(v) for v in bootstrap_spearman_ci([2.0] * 5, [1, 2, 3, 4, 5], n_boot=50))
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_spearman_ci([1, 2, 3], [1, 2, 3], n_boot=0)
    with pytest.raises(ValueError, match="level"):
        bootstrap_spearman_ci([1, 2, 3], [1, 2, 3], level=1.0)
    with pytest.raises(ValueError, match="same length"):
        bootstrap_spearman_ci([1, 2, 3], [1, 2])


# --- evaluate -------------------------------------------------------------------------------


def test_evaluate_keys_and_values():
    pred, true = [1.0, 2.0, 3.0], [2.0, 2.0, 5.0]
    result = evaluate(pred, true, lo=0.0, hi=10.0)
    assert list(result) == ["spearman", "pearson", "rl2", "mse", "mae"]
    assert result["rl2"] == pytest.approx(5.0 / 3.0)
    assert result["mse"] == pytest.approx(5.0 / 3.0)
    assert result["mae"] == pytest.approx(1.0)
    assert result["spearman"] == pytest.approx(spearman(pred, true))
    assert result["pearson"] == pytest.approx(pearson(pred, true))
    assert all(type(v) is float for v in result.values())


def test_evaluate_constant_prediction_gives_nan_correlations():
    result = evaluate([3.0, 3.0, 3.0], [1.0, 2.0, 4.0], lo=1.0, hi=4.0)
    assert math.isnan(result["spearman"]) and math.isnan(result["pearson"])
    assert result["mae"] == pytest.approx(4.0 / 3.0)


def test_metrics_module_does_not_import_torch():
    source = Path(metrics.__file__).read_text(encoding="utf-8")
    assert "import torch" not in source


def test_mean_std_is_the_sample_std_over_seeds():
    assert metrics.mean_std([0.6, 0.7]) == {"mean": pytest.approx(0.65), "std": pytest.approx(np.std([0.6, 0.7], ddof=1))}
    assert metrics.mean_std([0.6]) == {"mean": 0.6, "std": 0.0}
    assert all(np.isnan(v) for v in metrics.mean_std([]).values())


def test_one_seed_is_shown_without_a_spread():
    assert metrics.format_mean_std(metrics.mean_std([0.6, 0.7]), 2) == "0.650 ± 0.071"
    assert metrics.format_mean_std(metrics.mean_std([0.6]), 1) == "0.600 (one seed)"
