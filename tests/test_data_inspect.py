"""Folder inspection collects every problem in one pass instead of stopping at the first."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aqakit.data.inspect import inspect_feature_folder
from aqakit.errors import ConfigError, DataError


def fisv_folder(root: Path) -> Path:
    folder = root / "features"
    folder.mkdir(parents=True)
    (root / "train.txt").write_text("1 10 20 0\n2 11 21 0\n3 12 22 1\n4 13 23 0")
    (root / "test.txt").write_text("5 14 24 0\n6 15 25 0\n")
    return folder


def test_clean_folder(tmp_path):
    folder = fisv_folder(tmp_path)
    for i, n in zip(range(1, 7), [3, 5, 7, 9, 11, 13]):
        np.save(folder / f"{i}.npy", np.ones((n, 8), np.float16))
    report = inspect_feature_folder(tmp_path)
    assert report.ok, report.problems
    assert report.benchmark == "fisv-tes"
    assert (report.n_files, report.n_valid) == (6, 6)
    assert (report.min_clips, report.median_clips, report.max_clips) == (3, 8.0, 13)
    assert report.dims == {8: 6} and report.dtypes == {"float16": 6}
    assert report.splits["train"].n_labelled == 4 and report.splits["test"].score_max == 15
    assert "no problems found" in report.render()
    # the other score type of the same label files is shown with the benchmark name that reads it
    pcs = report.other_scores["fisv-pcs"]
    assert (pcs["train"].score_min, pcs["train"].score_max, pcs["test"].score_max) == (20, 23, 25)
    assert "fisv-pcs: train scores 20..23, test scores 24..25" in report.render()


def test_collects_several_problems_in_one_pass(tmp_path):
    folder = fisv_folder(tmp_path)
    np.save(folder / "1.npy", np.ones((4, 8), np.float32))
    bad = np.ones((4, 8), np.float32)
    bad[2, 3] = np.nan
    np.save(folder / "2.npy", bad)  # NaN
    np.save(folder / "3.npy", np.ones((0, 8), np.float32))  # no clips
    np.save(folder / "4.npy", np.ones((4, 16), np.float32))  # other dim
    (folder / "5.npy").write_bytes(b"garbage")  # unreadable
    # 6.npy missing (labelled, no features); 99.npy has no label
    np.save(folder / "99.npy", np.ones((4, 8), np.float32))
    report = inspect_feature_folder(tmp_path, "fisv-pcs")
    text = "\n".join(report.problems)
    assert report.benchmark == "fisv-pcs" and not report.ok
    assert "2.npy: row 2" in text and "NaN" in text
    assert "3.npy: is empty" in text
    assert "5.npy: not a .npy file" in text
    assert "mixed feature dimensions" in text and "16 in 1 file(s) (e.g. 4.npy)" in text
    assert "test.txt: 1 labelled video(s) have no feature file" in text and ": 6" in text
    assert "1 feature file(s) have no label: 99.npy" in text
    assert report.n_files == 6 and report.n_valid == 3
    assert report.splits["test"].n_with_features == 1
    assert len(report.problems) == 6
    assert report.render().count("\n  - ") == 6


def test_header_only_mode_skips_nan_check(tmp_path):
    folder = fisv_folder(tmp_path)
    for i in range(1, 7):
        np.save(folder / f"{i}.npy", np.full((2, 3), np.nan if i == 2 else 0.0, np.float32))
    assert inspect_feature_folder(tmp_path, check_values=False).ok
    assert not inspect_feature_folder(tmp_path, check_values=True).ok


def test_bad_label_file_and_split_overlap_are_problems(tmp_path):
    folder = fisv_folder(tmp_path)
    (tmp_path / "train.txt").write_text("1 10 20 0\n2 eleven 21 0\n")
    (tmp_path / "test.txt").write_text("1 10 20 0\n")
    for i in (1, 2):
        np.save(folder / f"{i}.npy", np.ones((2, 3), np.float32))
    report = inspect_feature_folder(tmp_path)
    assert any("train.txt line 2: TES 'eleven' is not a number" in p for p in report.problems)
    assert "train" not in report.splits and report.splits["test"].n_labelled == 1

    (tmp_path / "train.txt").write_text("1 10 20 0\n2 11 21 0\n")
    report = inspect_feature_folder(tmp_path)
    assert report.problems == ["1 video(s) are in both train and test: 1"]


def test_rg_and_bare_folders_are_recognised(tmp_path):
    root = tmp_path / "rg"
    (root / "features").mkdir(parents=True)
    header = "Video_Name Difficulty_Score Execution_Score Total_Score Penalty Video_length\n"
    (root / "train.txt").write_text(header + "Ball_001 1 2 3 0 9\nHoop_001 1 2 4 0 9\n")
    (root / "test.txt").write_text(header + "Ball_002 1 2 5 0 9\n")
    for name in ("Ball_001", "Hoop_001", "Ball_002"):
        np.save(root / "features" / f"{name}.npy", np.ones((2, 4), np.float32))
    report = inspect_feature_folder(root)
    assert report.benchmark == "rg-all" and report.ok
    report = inspect_feature_folder(root, "rg-ball")
    assert report.ok and report.splits["train"].n_labelled == 1  # Hoop file is not "unlabelled"

    bare = tmp_path / "bare"
    bare.mkdir()
    np.save(bare / "x.npy", np.ones((7, 2), np.float64))
    report = inspect_feature_folder(bare)
    assert report.benchmark is None and report.ok and report.dims == {2: 1} and report.max_clips == 7


def test_errors_that_stop_inspection(tmp_path):
    with pytest.raises(DataError, match="not found"):
        inspect_feature_folder(tmp_path / "missing")
    with pytest.raises(ConfigError, match="no files"):
        inspect_feature_folder(tmp_path, "synthetic")
    report = inspect_feature_folder(tmp_path)
    assert report.problems == [f"{tmp_path}: no .npy feature files"]


@pytest.mark.parametrize("labels, problem", [
    ("video_id,score,split\na,1,train\nb,2,test\n", "no column 'id' in the header"),
    ("id,score,split\na,1,train\nb,2,val\n", "line 3: split 'val' is not one of train, test"),
    ("id;score;split\na;1;train\nb;2;test\n", "separated by semicolons; label files are comma-separated"),
    ("id\tscore\tsplit\na\t1\ttrain\nb\t2\ttest\n", "separated by tabs"),
])
def test_a_bad_label_file_read_for_both_splits_is_one_problem(tmp_path, labels, problem):
    (tmp_path / "features").mkdir()
    (tmp_path / "labels.csv").write_text(labels)
    for name in ("a", "b"):
        np.save(tmp_path / "features" / f"{name}.npy", np.ones((2, 3), np.float32))
    report = inspect_feature_folder(tmp_path)
    assert len(report.problems) == 1 and problem in report.problems[0], report.problems


@pytest.mark.parametrize("name, missing", [("mtl-aqa", "12_40"), ("finediving", "Tokyo2020_10m_2_3")])
def test_pickled_diving_folders_are_recognised_and_their_missing_features_named(tmp_path, name, missing):
    from test_data_benchmarks import finediving_layout, mtl_aqa_layout

    root = {"mtl-aqa": mtl_aqa_layout, "finediving": finediving_layout}[name](tmp_path)
    report = inspect_feature_folder(root)
    assert report.benchmark == name and report.ok, report.render()
    assert set(report.other_scores) == {f"{name}-execution", f"{name}-difficulty"}
    (root / "features" / f"{missing}.npy").unlink()
    assert any(missing in problem for problem in inspect_feature_folder(root).problems)
