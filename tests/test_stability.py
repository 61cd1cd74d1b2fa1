"""A run whose held-out curve still swings in its last epochs says so: in its summary and in `aqakit results`."""

import math

import pytest

from aqakit.results import read_run, render_markdown
from aqakit.train.config import build_config
from aqakit.train.runner import train_run
from aqakit.train.stability import SWING_THRESHOLD, late_swing
from runs import write_run


def curve(values, name="val_spearman"):
    return [{"epoch": k, name: v} for k, v in enumerate(values)]


def test_the_swing_is_the_range_over_the_last_max_five_or_ten_percent_epochs():
    flat_end = [0.0] * 20 + [0.50, 0.51, 0.52, 0.50, 0.51]
    assert late_swing(curve(flat_end)) == pytest.approx(
        {"curve": "val_spearman", "last_epochs": 5, "swing": 0.02, "threshold": SWING_THRESHOLD, "unstable": False})
    swinging = [0.6] * 90 + [0.6, 0.4, 0.7, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]
    result = late_swing(curve(swinging))
    assert result["last_epochs"] == 10 and result["swing"] == pytest.approx(0.3) and result["unstable"]


def test_the_test_curve_is_described_when_no_validation_split_was_carved_and_short_runs_are_not_judged():
    assert late_swing(curve([0.1, 0.9, 0.1, 0.9, 0.1], "test_spearman"))["curve"] == "test_spearman"
    assert late_swing(curve([0.1, 0.9, 0.1, 0.9])) is None
    assert late_swing(curve([math.nan] * 10)) is None
    assert late_swing([{"epoch": 0, "train_loss": 1.0}] * 10) is None


def test_a_trained_run_records_its_late_swing(tmp_path):
    config = build_config("gdlt", "synthetic", {
        "benchmark_args": {"n_train": 32, "n_test": 16, "dim": 8}, "model.args": {"hidden_dim": 16, "n_heads": 2},
        "train.epochs": 6, "train.crop_len": 12})
    summary = train_run(config, tmp_path / "run", [0])
    swing = summary["per_seed"][0]["late_swing"]
    assert swing["curve"] == "test_spearman" and swing["last_epochs"] == 5
    assert ("unstable_seeds" in summary) == swing["unstable"]


def test_aqakit_results_flags_unstable_seeds(tmp_path):
    run = write_run(tmp_path, "swinging-fisv-tes", "fisv-tes", [0.5, 0.6])
    (run / "seed-1" / "metrics.csv").write_text("epoch,val_spearman\n" + "".join(
        f"{k},{v}\n" for k, v in enumerate([0.6, 0.6, 0.3, 0.7, 0.6, 0.6])))
    (run / "seed-0" / "metrics.csv").write_text("epoch,val_spearman\n" + "".join(f"{k},0.6\n" for k in range(6)))
    row = read_run(run)
    assert row.unstable_seeds == (1,)
    table = render_markdown([row])
    assert "0.550 ± 0.071 ⚠" in table and "swinging-fisv-tes seed(s) 1 (up to 0.400)" in table
