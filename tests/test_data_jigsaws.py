"""The JIGSAWS adapter: the real label and fold pickles (skipped when absent) with generated features,
and every bad input on tiny generated pickles."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from aqakit.data.benchmarks import get_benchmark
from aqakit.data.scale import ScoreScale
from aqakit.errors import ConfigError
from conftest import DATA
from test_data_benchmarks import error_of

JIGSAWS = DATA / "jigsaws"
TASKS = {"jigsaws-suturing": "Suturing", "jigsaws-knot-tying": "Knot_Tying", "jigsaws-needle-passing": "Needle_Passing"}


def real_pickles() -> tuple[dict, dict]:
    """The real ``label.pkl`` and ``splits.pkl``, or a skip with the reason when they are absent."""
    if not (JIGSAWS / "label.pkl").is_file() or not (JIGSAWS / "splits.pkl").is_file():
        pytest.skip(f"JIGSAWS labels not found at {JIGSAWS} (set AQAKIT_DATA to the shared data folder)")
    return tuple(pickle.loads((JIGSAWS / name).read_bytes()) for name in ("label.pkl", "splits.pkl"))  # type: ignore[return-value]


def write_features(folder: Path, trials, dim: int = 8, skip: tuple[str, ...] = ()) -> Path:
    """One ``<trial>_capture1.npy`` of 3-6 random clips per trial (but those in ``skip``)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for k, trial in enumerate(trials):
        if trial not in skip:
            np.save(folder / f"{trial}_capture1.npy", rng.normal(size=(3 + k % 4, dim)).astype(np.float32))
    return folder


def tiny_layout(root: Path, labels: dict | None = None, splits: dict | None = None) -> Path:
    """A JIGSAWS folder of eight Suturing trials in four folds of two, with their features."""
    trials = [f"Suturing_{c}00{i}" for c in "BC" for i in range(1, 5)]
    labels = labels if labels is not None else {t: [1 + k % 5, 2, 3, 4, 5, 1] for k, t in enumerate(trials)}
    splits = splits if splits is not None else {"Suturing": [trials[k::4] for k in range(4)]}
    root.mkdir(parents=True, exist_ok=True)
    (root / "label.pkl").write_bytes(pickle.dumps(labels))
    (root / "splits.pkl").write_bytes(pickle.dumps(splits))
    write_features(root / "features", trials)
    return root


# ---- the real pickles --------------------------------------------------------------------------


@pytest.mark.parametrize("name", TASKS)
@pytest.mark.parametrize("fold", [0, 1, 2, 3])
def test_fold_k_is_the_test_set_of_split_k(tmp_path, name, fold):
    labels, splits = real_pickles()
    task = TASKS[name]
    features = write_features(tmp_path / "features", labels)
    bench = get_benchmark(name, fold=fold, features_dir=features)
    train, test = (bench.load(JIGSAWS, split) for split in ("train", "test"))
    folds = splits[task]
    assert test.ids == [f"{t}_capture1" for t in folds[fold]]
    assert train.ids == [f"{t}_capture1" for k in range(4) if k != fold for t in folds[k]]
    assert len(train) + len(test) == sum(t.startswith(f"{task}_") for t in labels)
    np.testing.assert_array_equal(test.scores, [sum(labels[t]) for t in folds[fold]])
    assert 6 <= train.scores.min() and train.scores.max() <= 30 and train.feature_dim == 8
    assert bench.score_scale(train) == ScoreScale(6.0, 30.0)
    assert bench.official_folds == (0, 1, 2, 3) and not train.left_out
    assert f"{task} split {fold} test: fold {fold}" in test.source


def test_every_trial_of_the_real_labels_is_in_one_fold():
    labels, splits = real_pickles()
    assert len(labels) == 103 and set(splits) == set(TASKS.values())
    in_folds = [t for folds in splits.values() for fold in folds for t in fold]
    assert sorted(in_folds) == sorted(labels)


def test_a_missing_feature_file_is_named_with_the_count(tmp_path):
    labels, splits = real_pickles()
    test_trials = splits["Suturing"][0]
    features = write_features(tmp_path / "features", labels, skip=tuple(test_trials[:2]))
    bench = get_benchmark("jigsaws-suturing", fold=0, features_dir=features)
    message = error_of(bench.load, JIGSAWS, "test")
    assert message.startswith(f"{features / (test_trials[0] + '_capture1.npy')}: feature file not found (2 of the "
                              f"{len(test_trials)} trials in ")
    assert "benchmark_args.allow_missing=true" in message
    bench.load(JIGSAWS, "train")  # the training folds have every file


def test_allow_missing_leaves_the_trials_out_and_records_them(tmp_path):
    labels, splits = real_pickles()
    gone = tuple(splits["Suturing"][0][:2])
    features = write_features(tmp_path / "features", labels, skip=gone)
    bench = get_benchmark("jigsaws-suturing", fold=0, features_dir=features, allow_missing="true")
    test = bench.load(JIGSAWS, "test")
    assert test.left_out == [f"{t}_capture1" for t in gone]
    assert len(test) == len(splits["Suturing"][0]) - 2 and not set(test.left_out) & set(test.ids)
    assert test.subset([0, 1]).left_out == test.left_out  # still recorded in a part of the set


# ---- bad input ---------------------------------------------------------------------------------


def test_a_fold_that_does_not_exist_names_the_valid_ones():
    message = error_of(get_benchmark, "jigsaws-suturing", fold=4, kind=ConfigError)
    assert message == "benchmark 'jigsaws-suturing': fold 4 does not exist (its official folds: 0, 1, 2, 3)"
    assert "not a valid int" in error_of(get_benchmark, "jigsaws-suturing", fold="first", kind=ConfigError)


def test_no_fold_chosen_says_how_to_choose(tmp_path):
    root = tiny_layout(tmp_path / "jigsaws")
    message = error_of(get_benchmark("jigsaws-suturing").load, root, "train", kind=ConfigError)
    assert "4 official folds (0, 1, 2, 3)" in message and "--folds all" in message and "benchmark_args.fold=K" in message


def test_boolean_options_are_read_by_name():
    assert get_benchmark("jigsaws-suturing", allow_missing="false").options["allow_missing"] is False
    assert get_benchmark("jigsaws-suturing", allow_missing="Yes").options["allow_missing"] is True
    assert "not a valid bool" in error_of(get_benchmark, "jigsaws-suturing", allow_missing="maybe", kind=ConfigError)


def test_the_tiny_layout_reads(tmp_path):
    root = tiny_layout(tmp_path / "jigsaws")
    bench = get_benchmark("jigsaws-suturing", fold=1)
    assert bench.load(root, "test").ids == ["Suturing_B002_capture1", "Suturing_C002_capture1"]
    assert len(bench.load(root, "train")) == 6
    assert bench.owns_feature("Suturing_B002_capture1") and not bench.owns_feature("Knot_Tying_B001_capture1")


@pytest.mark.parametrize(
    "labels, splits, expected",
    [
        ({"Suturing_B001": [1, 2, 3, 4, 5, 6]}, None, "label.pkl trial 'Suturing_B001': GRS items [1, 2, 3, 4, 5, 6] "
         "are not 6 numbers from 1 to 5"),
        ({"Suturing_B001": [1, 2, 3]}, None, "GRS items [1, 2, 3] are not 6 numbers"),
        ({}, None, "splits.pkl: Suturing trial 'Suturing_B001' has no GRS label in"),
        (None, {"Knot_Tying": [[]] * 4}, "splits.pkl: no task 'Suturing' (tasks: Knot_Tying)"),
        (None, {"Suturing": [["Suturing_B001"]] * 3}, "splits.pkl: task 'Suturing' has 3 folds, expected 4"),
        (None, {"Suturing": [["Suturing_B001"], ["Suturing_B002"], ["Suturing_B001"], ["Suturing_B003"]]},
         "splits.pkl: Suturing trial 'Suturing_B001' is in fold 0 and fold 2"),
        (None, {"Suturing": [["Suturing_B001"], ["Knot_Tying_B001"], ["Suturing_B002"], ["Suturing_B003"]]},
         "splits.pkl: Suturing fold 1 lists 'Knot_Tying_B001', not a Suturing trial"),
        (None, {"Suturing": [["Suturing_B001"], [], ["Suturing_B002"], ["Suturing_B003"]]},
         "splits.pkl: Suturing fold 1 is not a non-empty list of trial names"),
        (["not", "a", "dict"], None, "label.pkl: expected a dict of trial -> six GRS items"),
    ],
)
def test_malformed_pickles_name_the_file_and_the_trial(tmp_path, labels, splits, expected):
    root = tiny_layout(tmp_path / "jigsaws")
    if labels is not None:
        (root / "label.pkl").write_bytes(pickle.dumps(labels))
    if splits is not None:
        (root / "splits.pkl").write_bytes(pickle.dumps(splits))
    assert expected in error_of(get_benchmark("jigsaws-suturing", fold=0).load, root, "test")


def test_missing_pickles_name_the_layout(tmp_path):
    root = tiny_layout(tmp_path / "jigsaws")
    (root / "splits.pkl").unlink()
    message = error_of(get_benchmark("jigsaws-suturing", fold=0).load, root, "test")
    assert message.startswith(f"expected {root / 'splits.pkl'} (JIGSAWS layout:")
