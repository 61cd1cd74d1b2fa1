"""Real data (from AQAKIT_DATA, default ../shared/data): Fis-V features, RG and MTL-AQA labels; skipped when absent."""

from __future__ import annotations

import csv
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


MTL_AQA = DATA / "mtl-aqa"


@pytest.fixture(scope="module")
def mtl_aqa_features(tmp_path_factory):
    """Stand-in features (1-5 clips of dim 8) for every dive of the real MTL-AQA split."""
    if not (MTL_AQA / "annotations.pkl").is_file():
        pytest.skip(f"MTL-AQA labels not found at {MTL_AQA} (set AQAKIT_DATA to the shared data folder)")
    bench = get_benchmark("mtl-aqa")
    rng = np.random.default_rng(0)
    features = tmp_path_factory.mktemp("mtl-aqa") / "features"
    features.mkdir()
    for vid in bench.read_labels(MTL_AQA, "train").ids + bench.read_labels(MTL_AQA, "test").ids:
        np.save(features / f"{vid}.npy", rng.normal(size=(int(rng.integers(1, 6)), 8)).astype(np.float32))
    return features


@pytest.mark.slow
def test_mtl_aqa_official_labels_train_a_model(tmp_path, mtl_aqa_features):
    """The released MTL-AQA pickles, read safely, train GDLT end to end on stand-in features."""
    from aqakit.train.config import build_config
    from aqakit.train.runner import train_run

    root, features = MTL_AQA, mtl_aqa_features
    bench = get_benchmark("mtl-aqa")
    train, test = bench.read_labels(root, "train"), bench.read_labels(root, "test")
    assert (len(train.ids), len(test.ids)) == (1059, 353) and not set(train.ids) & set(test.ids)
    assert train.ids[:2] == ["18_67", "04_105"] and train.scores[:2].tolist() == [94.35, 36.8]
    assert train.scores.min() == 0.0 and train.scores.max() == pytest.approx(102.6)
    config = build_config("gdlt", "mtl-aqa", {
        "data_root": str(root), "benchmark_args.features_dir": str(features), "train.epochs": 1,
        "train.batch_size": 64, "train.crop_len": 3, "model.args": {"hidden_dim": 16},
    })
    train_run(config, tmp_path / "run", [0])
    with open(tmp_path / "run" / "seed-0" / "predictions.csv") as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == "test"]  # the generic preset also validates
    assert [row["id"] for row in rows] == test.ids
    assert [float(row["true_score"]) for row in rows] == test.scores.tolist()
    assert all(0.0 <= float(row["predicted_score"]) <= 102.6 for row in rows)  # the training range, original scale


@pytest.mark.slow
def test_tpt_pairs_mtl_aqa_dives_of_one_difficulty(tmp_path, mtl_aqa_features):
    """As CoRe and TPT pair dives: ``exemplar_key=difficulty`` groups the real labels by degree; the
    few degrees with one training dive are paired outside it, and the summary says how many."""
    import json

    from aqakit.train.config import build_config
    from aqakit.train.runner import train_run

    config = build_config("tpt", "mtl-aqa", {
        "data_root": str(MTL_AQA), "benchmark_args.features_dir": str(mtl_aqa_features), "train.epochs": 1,
        "train.batch_size": 64, "train.crop_len": 3, "train.select": "final",
        "model.args": {"hidden_dim": 16, "n_heads": 2, "n_parts": 2, "ffn_dim": 16, "n_exemplars": 2,
                       "exemplar_key": "difficulty"},
    })
    train_run(config, tmp_path / "run", [0])
    seed = json.loads((tmp_path / "run" / "seed-0" / "summary.json").read_text())
    labels = get_benchmark("mtl-aqa").read_labels(MTL_AQA, "train")
    degrees, counts = np.unique(labels.extras["difficulty"], return_counts=True)
    alone = int(counts[counts == 1].sum())
    assert seed["exemplars"]["key"] == "difficulty" and seed["exemplars"]["pool_size"] == 1059
    assert seed["exemplars"]["videos_paired_outside_their_group"]["train"] == alone > 0
    assert np.isfinite(seed["test"]["spearman"])
