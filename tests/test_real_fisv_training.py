"""Integration on the real Fis-V features (skipped when ../shared/data is absent; CI runs it).

A short GDLT run (10 epochs of the released settings, cosine schedule over those 10 epochs)
must learn PCS well above chance: a broken pipeline (features and scores misaligned, the
first label row dropped, padding leaking) stays near 0. The full 200-epoch figures are in
the README, from the command written there.
"""

from __future__ import annotations

import json

import pytest

from aqakit.train.config import build_config
from aqakit.train.runner import train_run


@pytest.mark.slow
def test_gdlt_learns_fisv_pcs_in_a_short_run(fisv_root, tmp_path):
    config = build_config("gdlt", "fisv-pcs", {"data_root": str(fisv_root), "train.epochs": 10})
    summary = train_run(config, tmp_path / "run", [0])
    seed = json.loads((tmp_path / "run" / "seed-0" / "summary.json").read_text())
    assert seed["selected_epoch"] == 9 and seed["selection"] == "final"
    assert summary["test"]["spearman"]["mean"] > 0.5
    assert seed["test_spearman_ci95"][0] < seed["test"]["spearman"] < seed["test_spearman_ci95"][1]
    assert seed["timing"]["train_samples_per_second"] > 0
