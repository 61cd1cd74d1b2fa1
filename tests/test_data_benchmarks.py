"""Benchmark adapters on tiny generated layouts, and the registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aqakit.data.benchmarks import (
    Benchmark,
    RhythmicGymnastics,
    get_benchmark,
    list_benchmarks,
)
from aqakit.data.scale import ScoreScale
from aqakit.errors import ConfigError, DataError

RG_HEADER = "Video_Name\tDifficulty_Score    Execution_Score Total_Score\tPenalty\tVideo_length\n"


def features(root: Path, ids, dim: int = 6, length: int = 4) -> None:
    folder = root / "features"
    folder.mkdir(parents=True, exist_ok=True)
    for k, video_id in enumerate(ids):
        np.save(folder / f"{video_id}.npy", np.full((length + k, dim), k, dtype=np.float16))


def fisv_layout(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.txt").write_text("1 28.71 29.36 1\n3 28.79 27.89 1\n5 32.2 28.9 0")
    (root / "test.txt").write_text("2 30.0 31.0 0\n4 20.5 22.25 2\n")
    features(root, ["1", "2", "3", "4", "5"])
    return root


def rg_layout(root: Path) -> Path:
    # columns deliberately in another order than the released files: found by header name
    header = "Total_Score Video_Name Penalty Execution_Score Difficulty_Score Video_length\n"
    (root / "train.txt").write_text(
        header
        + "18.80 Ball_001 0.00 8.30 10.50 92\n"
        + "10.80 Hoop_001 0.60 4.20 7.20 93\n"
        + "15.00 Ball_002 0.00 7.00 8.00 90\n"
    )
    (root / "test.txt").write_text(RG_HEADER + "Ball_003\t9.0\t7.5\t16.5\t0.0\t91\nHoop_002 8 6 14 0 90\n")
    features(root, ["Ball_001", "Ball_002", "Ball_003", "Hoop_001", "Hoop_002"])
    return root


def error_of(call, *args, kind=DataError, **kwargs) -> str:
    with pytest.raises(kind) as info:
        call(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


# ---- Fis-V -----------------------------------------------------------------------------------


def test_fisv_keeps_the_first_row(tmp_path):
    root = fisv_layout(tmp_path)
    train = get_benchmark("fisv-tes").load(root, "train")
    assert train.ids == ["1", "3", "5"]
    np.testing.assert_allclose(train.scores, [28.71, 28.79, 32.2])
    assert train.features[0].dtype == np.float32 and train.feature_dim == 6
    assert train.source == str(root / "train.txt")
    test = get_benchmark("fisv-pcs").load(root, "test")
    assert test.ids == ["2", "4"]
    np.testing.assert_allclose(test.scores, [31.0, 22.25])


def test_fisv_bad_score_names_file_and_line(tmp_path):
    root = fisv_layout(tmp_path)
    (root / "train.txt").write_text("1 28.71 29.36 1\n3 28.79 x 1\n")
    message = error_of(get_benchmark("fisv-tes").load, root, "train")
    assert message == f"{root / 'train.txt'} line 2: PCS 'x' is not a number"


def test_fisv_wrong_column_count(tmp_path):
    root = fisv_layout(tmp_path)
    (root / "test.txt").write_text("2 30.0 31.0 0\n4 20.5 22.25\n")
    assert "test.txt line 2" in error_of(get_benchmark("fisv-tes").load, root, "test")


def test_fisv_missing_feature_file(tmp_path):
    root = fisv_layout(tmp_path)
    (root / "features" / "5.npy").unlink()
    message = error_of(get_benchmark("fisv-tes").load, root, "train")
    assert "train.txt line 3" in message and "'5'" in message and "5.npy" in message


def test_missing_root_and_label_file(tmp_path):
    bench = get_benchmark("fisv-tes")
    message = error_of(bench.load, tmp_path / "nowhere", "train")
    assert str(tmp_path / "nowhere") in message and "Fis-V layout" in message
    message = error_of(bench.load, tmp_path, "train")
    assert f"expected {tmp_path / 'train.txt'}" in message and "features/" in message
    assert "needs a data folder" in error_of(bench.load, None, "train")


def test_missing_feature_folder(tmp_path):
    (tmp_path / "train.txt").write_text("1 1 1 0\n")
    message = error_of(get_benchmark("fisv-tes").load, tmp_path, "train")
    assert str(tmp_path / "features") in message


def test_unknown_split_lists_valid_ones(tmp_path):
    message = error_of(get_benchmark("fisv-tes").load, fisv_layout(tmp_path), "val")
    assert "'val'" in message and "train" in message and "test" in message


def test_features_dir_option(tmp_path):
    root = fisv_layout(tmp_path / "data")
    (root / "features").rename(tmp_path / "elsewhere")
    train = get_benchmark("fisv-tes", features_dir=str(tmp_path / "elsewhere")).load(root, "train")
    assert len(train) == 3


def test_default_scale_is_train_min_max(tmp_path):
    bench = get_benchmark("fisv-tes")
    train = bench.load(fisv_layout(tmp_path), "train")
    assert bench.score_scale(train) == ScoreScale(28.71, 32.2)


# ---- RG --------------------------------------------------------------------------------------


def test_rg_columns_by_header_and_apparatus_filter(tmp_path):
    root = rg_layout(tmp_path)
    train = get_benchmark("rg-ball").load(root, "train")
    assert train.ids == ["Ball_001", "Ball_002"]
    np.testing.assert_allclose(train.scores, [18.80, 15.00])
    hoop = get_benchmark("rg-hoop", score_type="difficulty").load(root, "train")
    assert hoop.ids == ["Hoop_001"] and hoop.scores[0] == pytest.approx(7.2)
    execution = get_benchmark("rg-ball-execution")
    assert execution.name == "rg-ball-execution"
    np.testing.assert_allclose(execution.load(root, "test").scores, [7.5])
    assert get_benchmark("rg-ball").score_scale(train) == ScoreScale(0.0, 25.0)


def test_rg_empty_apparatus_names_file_and_apparatus(tmp_path):
    root = rg_layout(tmp_path)
    message = error_of(get_benchmark("rg-ribbon").load, root, "train")
    assert str(root / "train.txt") in message and "ribbon" in message


def test_rg_missing_column_names_file(tmp_path):
    root = rg_layout(tmp_path)
    (root / "test.txt").write_text("Video_Name Difficulty_Score Total_Score\nBall_003 9.0 16.5\n")
    message = error_of(get_benchmark("rg-ball-execution").load, root, "test")
    assert "test.txt" in message and "Execution_Score" in message


def test_rg_bad_value_in_another_score_column(tmp_path):
    root = rg_layout(tmp_path)
    (root / "test.txt").write_text(RG_HEADER + "Ball_003 9.0 ? 16.5 0 91\n")
    message = error_of(get_benchmark("rg-ball").load, root, "test")
    assert "test.txt line 2" in message and "Execution_Score '?'" in message


def test_rg_options_are_checked():
    assert "score_type" in error_of(get_benchmark, "rg-ball", kind=ConfigError, score_type="style")
    assert "already selects" in error_of(
        get_benchmark, "rg-ball-execution", kind=ConfigError, score_type="total"
    )


# ---- CSV -------------------------------------------------------------------------------------


def test_csv_with_split_column(tmp_path):
    (tmp_path / "labels.csv").write_text("id,score,split\na,1.5,train\nb,-3,test\nc,100,train\n")
    features(tmp_path, ["a", "b", "c"], dim=3)
    bench = get_benchmark("csv")
    train = bench.load(tmp_path, "train")
    assert train.ids == ["a", "c"] and list(train.scores) == [1.5, 100.0]
    assert bench.load(tmp_path, "test").ids == ["b"]


def test_csv_without_split_column(tmp_path):
    (tmp_path / "train.csv").write_text("score,id\n0.5,a\n0.7,b\n")
    (tmp_path / "test.csv").write_text("id,score\nc,0.1\n")
    features(tmp_path, ["a", "b", "c"], dim=2)
    bench = get_benchmark("csv")
    assert bench.load(tmp_path, "train").ids == ["a", "b"]
    assert list(bench.load(tmp_path, "test").scores) == [0.1]


def test_csv_options_override_locations(tmp_path):
    labels = tmp_path / "my.csv"
    labels.write_text("id,score,split\nx,1,train\ny,2,test\n")
    features(tmp_path / "feat_root", ["x", "y"], dim=5)
    bench = get_benchmark("csv", labels=labels, features_dir=tmp_path / "feat_root" / "features")
    assert bench.load(None, "test").ids == ["y"]


def test_csv_empty_split(tmp_path):
    (tmp_path / "labels.csv").write_text("id,score,split\na,1,train\n")
    features(tmp_path, ["a"])
    message = error_of(get_benchmark("csv").load, tmp_path, "test")
    assert "labels.csv" in message and "'test'" in message


def test_csv_bad_split_value(tmp_path):
    (tmp_path / "labels.csv").write_text("id,score,split\na,1,train\nb,2,validation\n")
    message = error_of(get_benchmark("csv").load, tmp_path, "train")
    assert "labels.csv line 3" in message and "'validation'" in message


def test_csv_missing_files(tmp_path):
    message = error_of(get_benchmark("csv").load, tmp_path, "train")
    assert "labels.csv" in message and "train.csv" in message


# ---- synthetic and registry ------------------------------------------------------------------


def test_synthetic_needs_no_root_and_is_deterministic():
    bench = get_benchmark("synthetic", n_train=30, n_test="10", dim=8)
    assert not bench.needs_data
    a, b = bench.load(None, "train"), bench.load(Path("/ignored"), "train")
    test = bench.load(None, "test")
    assert len(a) == 30 and len(test) == 10 and a.feature_dim == 8
    assert a.ids == b.ids and all(np.array_equal(x, y) for x, y in zip(a.features, b.features))
    assert not np.allclose(a.scores[:10], test.scores)


def test_registry_unknown_name_and_option():
    message = error_of(get_benchmark, "fisv-total", kind=ConfigError)
    assert "fisv-tes" in message and "rg-ball" in message and "synthetic" in message
    message = error_of(get_benchmark, "synthetic", kind=ConfigError, n_videos=3)
    assert "n_videos" in message and "n_train" in message
    assert "not a valid int" in error_of(get_benchmark, "synthetic", kind=ConfigError, dim="big")


def test_list_benchmarks_have_names_families_and_descriptions():
    benches = list_benchmarks()
    names = [b.name for b in benches]
    assert {"fisv-tes", "fisv-pcs", "rg-ball", "rg-clubs", "rg-hoop", "rg-ribbon", "mtl-aqa", "finediving", "csv",
            "synthetic", "jigsaws-suturing", "jigsaws-knot-tying", "jigsaws-needle-passing"} <= set(names)
    for bench in benches:
        assert isinstance(bench, Benchmark) and bench.description
        assert bench.family in ("fisv", "rg", "mtl-aqa", "finediving", "jigsaws", "csv", "synthetic")
        assert bench.describe().startswith(bench.name)
    assert isinstance(get_benchmark("RG-Clubs"), RhythmicGymnastics)


@pytest.mark.parametrize("protocol", [2, 5])
def test_mtl_aqa_pickles_of_any_protocol_load(tmp_path, protocol):
    assert get_benchmark("mtl-aqa").load(mtl_aqa_layout(tmp_path, protocol), "test").scores.tolist() == [60.0]


def mtl_aqa_layout(root: Path, protocol: int = 2) -> Path:
    """A tiny MTL-AQA folder: the released pickles' structure (dict of (video, clip) -> annotation with a
    numpy array of judge scores; split files are lists of keys), written by this Python."""
    import pickle

    root.mkdir(parents=True, exist_ok=True)
    annotations = {
        (1, 1): {"final_score": 88.0, "difficulty": 3.2, "judge_scores": np.array([9.5, 9.0, 9.5, 9.0, 8.5, 9.5, 8.5])},
        (1, 2): {"final_score": 18.15, "difficulty": 3.3, "judge_scores": np.full(7, 4.0)},
        (12, 40): {"final_score": 45.0, "difficulty": 2.0, "judge_scores": np.full(7, 7.5)},
        (3, 105): {"final_score": 60.0, "difficulty": 2.5, "judge_scores": np.full(7, 8.0)},
    }
    for name, value in [("annotations.pkl", annotations), ("train_split_0.pkl", [(1, 1), (12, 40), (1, 2)]),
                        ("test_split_0.pkl", [(3, 105)])]:
        (root / name).write_bytes(pickle.dumps(value, protocol=protocol))
    features(root, ["01_01", "01_02", "12_40", "03_105"])
    return root


def test_mtl_aqa_reads_the_released_pickles_and_score_types(tmp_path):
    root = mtl_aqa_layout(tmp_path)
    train = get_benchmark("mtl-aqa").load(root, "train")
    assert train.ids == ["01_01", "12_40", "01_02"] and train.scores.tolist() == [88.0, 45.0, 18.15]
    assert train.extras["difficulty"].tolist() == [3.2, 2.0, 3.3]  # every score type carries the degree
    assert get_benchmark("mtl-aqa").load(root, "test").ids == ["03_105"]
    execution = get_benchmark("mtl-aqa", score_type="execution").read_labels(root, "train")
    assert execution.scores.tolist() == [27.5, 22.5, 5.5]  # final / difficulty, also where judges say otherwise
    difficulty = get_benchmark("mtl-aqa", score_type="difficulty").read_labels(root, "train")
    assert difficulty.scores.tolist() == [3.2, 2.0, 3.3]
    (root / "features" / "video1-clip1.npy").write_bytes((root / "features" / "01_01.npy").read_bytes())
    renamed = get_benchmark("mtl-aqa", id_format="video{video}-clip{clip}").read_labels(root, "train")
    assert renamed.ids[0] == "video1-clip1"


def test_mtl_aqa_errors_name_the_file_and_entry(tmp_path):
    import os
    import pickle

    root = mtl_aqa_layout(tmp_path)
    (root / "test_split_0.pkl").write_bytes(pickle.dumps([(3, 105), (9, 9)]))
    with pytest.raises(DataError, match=r"test_split_0\.pkl entry 2: key \(9, 9\) is not a \(video, clip\) key"):
        get_benchmark("mtl-aqa").read_labels(root, "test")

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    (root / "test_split_0.pkl").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(DataError, match=r"test_split_0\.pkl: not a readable label pickle \(refusing to build"):
        get_benchmark("mtl-aqa").read_labels(root, "test")
    (root / "train_split_0.pkl").unlink()
    with pytest.raises(DataError, match="train_split_0.pkl"):
        get_benchmark("mtl-aqa").read_labels(root, "train")
    with pytest.raises(ConfigError, match="score_type 'total' unknown"):
        get_benchmark("mtl-aqa", score_type="total")
    with pytest.raises(ConfigError, match="id_format"):
        get_benchmark("mtl-aqa", id_format="{dive}")


def finediving_layout(root: Path) -> Path:
    """A tiny FineDiving folder: (competition, clip) keys to the released loaders' sequences
    (dive number, final score, difficulty, step transitions, frame labels); lists of keys per split."""
    import pickle

    root.mkdir(parents=True, exist_ok=True)
    steps = (np.array([10.0, 40.0]), np.zeros(96, dtype=np.int64))
    annotations = {
        ("WorldCup2021_Men3m_r1", 0): ("107B", 75.6, 3.0, *steps),
        ("WorldCup2021_Men3m_r1", 11): ("405B", np.float64(48.0), 3.2, *steps),
        ("Tokyo2020_10m_2", 3): ["5253B", 90.0, 3.6, *steps],
    }
    for name, value in [("fine-grained_annotation_aqa.pkl", annotations),
                        ("train_split.pkl", [("WorldCup2021_Men3m_r1", 11), ("WorldCup2021_Men3m_r1", 0)]),
                        ("test_split.pkl", [("Tokyo2020_10m_2", 3)])]:
        (root / name).write_bytes(pickle.dumps(value, protocol=4))
    features(root, ["WorldCup2021_Men3m_r1_0", "WorldCup2021_Men3m_r1_11", "Tokyo2020_10m_2_3"])
    return root


def test_finediving_reads_the_released_structure_and_score_types(tmp_path):
    root = finediving_layout(tmp_path)
    train = get_benchmark("finediving").load(root, "train")
    assert train.ids == ["WorldCup2021_Men3m_r1_11", "WorldCup2021_Men3m_r1_0"]
    assert train.scores.tolist() == [48.0, 75.6] and train.extras["difficulty"].tolist() == [3.2, 3.0]
    assert get_benchmark("finediving").load(root, "test").ids == ["Tokyo2020_10m_2_3"]
    execution = get_benchmark("finediving", score_type="execution").read_labels(root, "train")
    assert execution.scores.tolist() == [15.0, 25.2]
    assert get_benchmark("finediving", score_type="difficulty").read_labels(root, "test").scores.tolist() == [3.6]


def test_finediving_annotation_without_scores_names_the_entry(tmp_path):
    import pickle

    root = finediving_layout(tmp_path)
    (root / "fine-grained_annotation_aqa.pkl").write_bytes(pickle.dumps({("a", 1): {"final_score": 1.0}}))
    (root / "test_split.pkl").write_bytes(pickle.dumps([("a", 1)]))
    with pytest.raises(DataError, match=r"test_split\.pkl entry 1: its annotation has no numeric final score"):
        get_benchmark("finediving").read_labels(root, "test")
    with pytest.raises(DataError, match=r"train_split\.pkl entry 1: key .* not a \(video, clip\) key of "
                                        r"fine-grained_annotation_aqa\.pkl"):
        get_benchmark("finediving").read_labels(root, "train")
    with pytest.raises(ConfigError, match="FineDiving score_type 'total' unknown"):
        get_benchmark("finediving", score_type="total")


@pytest.mark.parametrize("name", ["mtl-aqa", "finediving"])
def test_a_score_type_suffix_names_the_diving_benchmark(name):
    execution = get_benchmark(f"{name}-execution")
    assert execution.score_type == "execution" and execution.name == f"{name}-execution"
    assert get_benchmark(name, score_type="difficulty").name == f"{name}-difficulty"
    assert get_benchmark(name).name == name  # the default score type (final) adds nothing
    with pytest.raises(ConfigError, match="already selects score type 'execution'"):
        get_benchmark(f"{name}-execution", score_type="final")
    with pytest.raises(ConfigError, match=f"unknown benchmark '{name}-total'"):
        get_benchmark(f"{name}-total")
