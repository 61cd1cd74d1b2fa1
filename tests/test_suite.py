"""Transforms of any benchmark, the synthetic set with a real label distribution, and the robustness suite."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from scipy.stats import spearmanr

from aqakit.data.benchmarks import TransformedBenchmark, get_benchmark
from aqakit.data.transforms import Transform, parse_transform
from aqakit.data.videoset import VideoSet
from aqakit.errors import ConfigError, DataError
from aqakit.suite import SUITE, available_sets, get_set, load_set, suite_sets
from conftest import DATA, run_cli

SYN = {"n_train": 40, "n_test": 12, "dim": 8, "min_clips": 5, "max_clips": 9}


def synthetic(**transform):
    return get_benchmark("synthetic", **SYN, **transform)


def one_line_error(call, *args, kind=ConfigError, **kwargs) -> str:
    with pytest.raises(kind) as info:
        call(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


# ---- transforms -----------------------------------------------------------------------------


def test_mean_pool_and_segment_pool_shapes():
    raw = synthetic().load(None, "train")
    pooled = synthetic(transform="mean-pool").load(None, "train")
    assert all(f.shape == (1, 8) and f.dtype == np.float32 for f in pooled.features)
    np.testing.assert_allclose(pooled.features[3][0], raw.features[3].mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(pooled.scores, raw.scores)
    assert "procedure_start" not in pooled.extras and "oracle_score" in pooled.extras
    segments = synthetic(transform="segment-pool:3").load(None, "test")
    assert {f.shape for f in segments.features} == {(3, 8)}
    video = np.arange(10, dtype=np.float32)[:, None]  # 10 clips: segments 0-2, 3-5, 6-7, 8-9 (as array_split)
    pool = Transform("segment-pool:4").apply(VideoSet(["v", "w"], [video, video[:2]], [1.0, 2.0]), split="train")
    np.testing.assert_allclose(pool.features[0][:, 0], [1.0, 4.0, 6.5, 8.5])
    assert pool.features[1].shape == (2, 1)  # fewer clips than segments: kept as they are


def test_random_projection_is_seeded_and_the_same_for_both_splits():
    base = synthetic().load(None, "train")
    one = synthetic(transform="random-projection:20").load(None, "train")
    again = synthetic(transform="random-projection:20").load(None, "train")
    other_seed = synthetic(transform="random-projection:20", transform_seed=1).load(None, "train")
    assert one.feature_dim == 20
    np.testing.assert_array_equal(one.features[0], again.features[0])
    assert not np.allclose(one.features[0], other_seed.features[0])
    # a linear map: the test split is projected by the same matrix
    test_raw, test = synthetic().load(None, "test"), synthetic(transform="random-projection:20").load(None, "test")
    matrix = np.linalg.lstsq(base.features[0], one.features[0], rcond=None)[0]
    np.testing.assert_allclose(test_raw.features[0] @ matrix, test.features[0], rtol=1e-3, atol=1e-3)
    assert "random-projection:20" in one.source and "transform_seed 1" in other_seed.source


def test_pca_is_fitted_on_the_training_split_only():
    raw_train, raw_test = synthetic().load(None, "train"), synthetic().load(None, "test")
    bench = synthetic(transform="pca:3")
    train, test = bench.load(None, "train"), bench.load(None, "test")
    clips = np.concatenate(raw_train.features).astype(np.float64)
    mean = clips.mean(0)
    _, _, vt = np.linalg.svd(clips - mean, full_matrices=False)
    projected = np.concatenate(train.features)
    for k in range(3):  # the top principal directions of the training clips, up to sign
        reference = (clips - mean) @ vt[k]
        assert abs(np.corrcoef(projected[:, k], reference)[0, 1]) > 0.999
    assert np.allclose(projected.mean(0), 0, atol=1e-4)
    # the test split is projected with the training fit, not its own
    components = np.linalg.lstsq(clips - mean, projected, rcond=None)[0]
    np.testing.assert_allclose((raw_test.features[0] - mean) @ components, test.features[0], rtol=1e-3, atol=1e-3)
    refit = Transform("pca:3").fit(raw_test)[0]
    assert not np.allclose(refit.features[0], test.features[0], atol=1e-2)
    assert "fitted on the 40 training videos" in train.source and "fitted on train" in test.source
    again = synthetic(transform="pca:3")
    np.testing.assert_array_equal(again.load(None, "test").features[2], test.features[2])  # deterministic


def test_train_subsample_is_stratified_and_leaves_test_alone():
    raw_train, raw_test = synthetic().load(None, "train"), synthetic().load(None, "test")
    bench = synthetic(transform="train-subsample:8")
    train, test = bench.load(None, "train"), bench.load(None, "test")
    assert len(train) == 8 and set(train.ids) <= set(raw_train.ids)
    assert train.ids == sorted(train.ids)  # label-file order kept
    ranks = np.searchsorted(np.sort(raw_train.scores), train.scores)
    assert sorted(ranks // 5) == list(range(8))  # one video of each bin of 5 consecutive scores
    assert test.ids == raw_test.ids
    np.testing.assert_array_equal(test.features[0], raw_test.features[0])
    assert synthetic(transform="train-subsample:8").load(None, "train").ids == train.ids
    assert synthetic(transform="train-subsample:8", transform_seed=3).load(None, "train").ids != train.ids
    message = one_line_error(synthetic(transform="train-subsample:41").load, None, "train", kind=DataError)
    assert "train-subsample:41" in message and "40" in message


def test_steps_compose_in_order():
    bench = synthetic(transform=["segment-pool:2", "train-subsample:10", "pca:4"])
    train, test = bench.load(None, "train"), bench.load(None, "test")
    assert (len(train), len(test), train.feature_dim) == (10, 12, 4)
    assert {f.shape[0] for f in train.features} == {2}
    assert "segment-pool:2, train-subsample:10 (of 40), pca:4 (fitted on the 10 training videos)" in train.source
    assert bench.options["transform"] == "segment-pool:2,train-subsample:10,pca:4"
    as_text = synthetic(transform="segment-pool:2,train-subsample:10,pca:4").load(None, "test")
    np.testing.assert_array_equal(as_text.features[5], test.features[5])
    assert parse_transform([{"pca": 4}, "mean-pool"]) == parse_transform("pca:4, mean-pool")


def test_a_transformed_benchmark_answers_as_the_one_it_wraps(tmp_path):
    bench = get_benchmark("fisv-pcs", transform="mean-pool", features_dir=tmp_path)
    assert isinstance(bench, TransformedBenchmark)
    assert (bench.name, bench.family, bench.needs_data) == ("fisv-pcs", "fisv", True)
    assert bench.options["features_dir"] == tmp_path and bench.options["transform"] == "mean-pool"
    assert "transformed: mean-pool" in bench.describe()


@pytest.mark.parametrize("value, named", [
    ("pca", "needs a number of dimensions"),
    ("pca:x", "whole number"),
    ("pca:0", "at least 1"),
    ("mean-pool:3", "takes no size"),
    ("zoom:2", "unknown step 'zoom'"),
    ("mean-pool,,pca:2", "unknown step ''"),
    ("train-subsample:1", "at least 2"),
    (7, "expected steps"),
    ([["pca", 4]], "is not a name"),
])
def test_bad_transform_specs_are_one_line_errors_naming_the_value(value, named):
    message = one_line_error(synthetic, transform=value)
    assert named in message and repr(value) in message and "benchmark 'synthetic'" in message


def test_bad_transform_seed_and_dimension():
    assert "transform_seed" in one_line_error(synthetic, transform="mean-pool", transform_seed="x")
    assert "no effect without a transform" in one_line_error(synthetic, transform_seed=2)
    message = one_line_error(synthetic(transform="pca:9").load, None, "train", kind=DataError)
    assert "pca:9" in message and "8 dimensions" in message


# ---- synthetic features with a real label distribution --------------------------------------


def diving_pickles(root, n_train=30, n_test=10):
    """MTL-AQA-shaped pickles with skewed, tied scores."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    keys = [(v, c) for v in range(1, 5) for c in range(1, 11)][: n_train + n_test]
    annotations = {key: {"final_score": float(np.round(rng.gamma(4, 15) * 2) / 2), "difficulty": 3.0} for key in keys}
    for name, value in (("annotations.pkl", annotations), ("train_split_0.pkl", keys[:n_train]),
                        ("test_split_0.pkl", keys[n_train:])):
        (root / name).write_bytes(pickle.dumps(value))
    return root, annotations, keys


def test_scores_from_keeps_the_real_split_sizes_and_scores(tmp_path):
    root, annotations, keys = diving_pickles(tmp_path / "mtl")
    bench = get_benchmark("synthetic-mtl-aqa", dim=8, min_clips=5, max_clips=6)
    assert bench.name == "synthetic-mtl-aqa" and bench.needs_data and bench.data_family == "mtl-aqa"
    assert get_benchmark("synthetic", scores_from="mtl-aqa", dim=8).name == "synthetic-mtl-aqa"
    train, test = bench.load(root, "train"), bench.load(root, "test")
    assert (len(train), len(test), train.feature_dim) == (30, 10, 8)
    real_train = sorted(annotations[k]["final_score"] for k in keys[:30])
    np.testing.assert_array_equal(np.sort(train.scores), real_train)  # exactly the real distribution
    np.testing.assert_array_equal(np.sort(test.scores), sorted(annotations[k]["final_score"] for k in keys[30:]))
    # ordered as the generated scores are (the planted structure decides the ranks)
    assert spearmanr(train.scores, train.extras["generated_score"]).statistic > 0.95
    assert "with the scores of" in train.source and "train_split_0.pkl" in train.source
    np.testing.assert_array_equal(bench.load(root, "train").features[4], train.features[4])


def test_scores_from_errors():
    assert "n_train" in one_line_error(get_benchmark, "synthetic-finediving", n_train=10)
    assert "label files" in one_line_error(get_benchmark, "synthetic", scores_from="synthetic")
    assert "already takes its scores" in one_line_error(get_benchmark, "synthetic-mtl-aqa", scores_from="finediving")
    message = one_line_error(get_benchmark("synthetic-finediving").load, None, "train", kind=DataError)
    assert message.startswith("synthetic-finediving takes its scores from finediving: ") and "needs a data folder" in message


def test_scores_from_the_real_finediving_labels():
    root = DATA / "finediving" / "Annotations"
    if not (root / "train_split.pkl").is_file():
        pytest.skip(f"FineDiving annotations not found at {root} (set AQAKIT_DATA to the shared data folder)")
    bench = get_benchmark("synthetic-finediving", dim=4, min_clips=4, max_clips=4)
    train, test = bench.load(root, "train"), bench.load(root, "test")
    assert (len(train), len(test)) == (2251, 749)
    real = get_benchmark("finediving").read_labels(root, "test").scores
    np.testing.assert_array_equal(np.sort(test.scores), np.sort(real))


# ---- the suite ------------------------------------------------------------------------------


def test_the_suite_lists_each_set_once_with_valid_settings():
    names = [s.name for s in SUITE]
    assert len(names) == len(set(names)) and "synthetic" in names and "fisv-tes" in names
    for suite_set in SUITE:
        suite_set.build()  # every benchmark and transform parses
    assert get_set("fisv-pcs-n40").benchmark_args == {"transform": "train-subsample:40"}
    assert "fisv-tes" in one_line_error(get_set, "nope")


def test_sets_without_their_data_are_skipped_with_a_reason(tmp_path):
    root, _, _ = diving_pickles(tmp_path / "mtl-aqa")
    (tmp_path / "fisv").mkdir()
    entries = {entry.name: entry for entry in suite_sets(tmp_path)}
    assert entries["synthetic"].available and entries["synthetic-mtl-aqa"].available
    assert "finediving" in entries["synthetic-finediving"].missing
    assert "train.txt" in entries["fisv-tes"].missing
    names = [name for name, _ in available_sets(tmp_path)]
    assert names == ["synthetic-mtl-aqa", "synthetic"]
    overrides = dict(available_sets(tmp_path))["synthetic-mtl-aqa"]
    assert overrides == {"benchmark": "synthetic-mtl-aqa", "benchmark_args": {"dim": 64, "min_clips": 10, "max_clips": 10},
                         "data_root": str(root.resolve())}
    train, test = load_set(entries["synthetic-mtl-aqa"])
    assert (len(train), len(test), train.feature_dim) == (30, 10, 64)


def test_suite_list_prints_sets_sizes_and_availability(tmp_path, monkeypatch, capsys):
    diving_pickles(tmp_path / "mtl-aqa")
    monkeypatch.setenv("COLUMNS", "250")
    status, out, err = run_cli(monkeypatch, capsys, "suite", "list", "--data", tmp_path)
    assert status == 0, err
    line = next(row for row in out.splitlines() if "synthetic-mtl-aqa " in row)
    assert "30" in line and "10" in line and "64" in line
    assert "missing:" in next(row for row in out.splitlines() if "fisv-tes " in row)
    assert f"2 of {len(SUITE)} sets available" in out
    status, out, _ = run_cli(monkeypatch, capsys, "suite", "list", "--data", tmp_path, "--no-sizes", "--json")
    rows = {row["name"]: row for row in json.loads(out)}
    assert status == 0 and rows["synthetic"]["available"] and "train" not in rows["synthetic"]
    assert rows["fisv-pcs-n40"]["benchmark_args"] == {"transform": "train-subsample:40"}


def test_train_with_a_transform_end_to_end(tmp_path, monkeypatch, capsys):
    status, out, err = run_cli(
        monkeypatch, capsys, "train", "gdlt", "synthetic", "--set", "benchmark_args.n_train=40",
        "--set", "benchmark_args.n_test=12", "--set", "benchmark_args.dim=16",
        "--set", "benchmark_args.transform=[segment-pool:6,train-subsample:24,pca:8]",
        "--set", "model.args.hidden_dim=16", "--set", "train.batch_size=8", "--epochs", "1",
        "--runs-dir", tmp_path, "--name", "t", "--json")
    assert status == 0, err
    summary = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert np.isfinite(summary["test"]["spearman"]["mean"])
    assert json.loads((tmp_path / "t" / "data.json").read_text())["train"]["videos"] == 24


def test_train_on_real_fisv_with_a_transform(fisv_root, tmp_path, monkeypatch, capsys):
    status, _, err = run_cli(
        monkeypatch, capsys, "train", "gdlt", "fisv-tes", "--data-root", fisv_root,
        "--set", "benchmark_args.transform=segment-pool:10,train-subsample:30,pca:32",
        "--set", "model.args.hidden_dim=16", "--epochs", "1", "--runs-dir", tmp_path, "--name", "f", "--json")
    assert status == 0, err
    config = (tmp_path / "f" / "config.yaml").read_text()
    assert "segment-pool:10,train-subsample:30,pca:32" in config
