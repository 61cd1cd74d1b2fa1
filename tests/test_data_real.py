"""Real Fis-V data (from AQAKIT_DATA, default ../shared/data); skipped when it is absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aqakit.data.benchmarks import get_benchmark
from aqakit.data.labels import read_whitespace_table

from conftest import DATA


def expected(root: Path, split: str, column: int) -> tuple[list[str], list[float]]:
    rows = read_whitespace_table(root / f"{split}.txt", header=False).rows
    return [r[0] for r in rows], [float(r[column]) for r in rows]


@pytest.mark.slow
def test_fisv_train_and_test_load_completely(fisv_root):
    bench = get_benchmark("fisv-tes")
    for split, n in (("train", 400), ("test", 100)):
        vs = bench.load(fisv_root, split)
        ids, tes = expected(fisv_root, split, 1)
        assert len(vs) == n and vs.feature_dim == 1024
        assert vs.ids[0] == ids[0]  # the first row is not dropped
        assert vs.ids == ids
        np.testing.assert_array_equal(vs.scores, tes)
        assert all(f.dtype == np.float32 and f.flags.c_contiguous for f in vs.features)
        assert all(np.isfinite(f.sum()) for f in vs.features)
        assert vs.lengths.min() >= 1


@pytest.mark.slow
def test_fisv_pcs_scores(fisv_root):
    vs = get_benchmark("fisv-pcs").load(fisv_root, "test")
    ids, pcs = expected(fisv_root, "test", 2)
    assert vs.ids == ids
    np.testing.assert_array_equal(vs.scores, pcs)


@pytest.mark.slow
def test_rg_labels_read():
    rg = DATA / "rg"
    if not (rg / "train.txt").is_file():
        pytest.skip(f"RG labels not found at {rg} (set AQAKIT_DATA to the shared data folder)")
    bench = get_benchmark("rg-ball")
    train, test = bench.read_labels(rg, "train"), bench.read_labels(rg, "test")
    assert len(train.ids) == 200 and len(test.ids) == 50
    assert all(i.startswith("Ball_") for i in train.ids + test.ids)
    assert train.lines[0] == 2  # the line after the header
