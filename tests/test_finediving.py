"""FineDiving on its released annotation files, stage transitions, the two-stream layout and AIoU."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from aqakit import metrics
from aqakit.data.batches import ClipBank
from aqakit.data.benchmarks import get_benchmark
from aqakit.data.stages import frames_to_clips
from aqakit.errors import DataError
from conftest import DATA
from test_data_benchmarks import error_of, finediving_layout

ANNOTATIONS = DATA / "finediving" / "Annotations"
REFERENCE = DATA / "finediving" / "reference"


def real_annotations() -> Path:
    if not (ANNOTATIONS / "fine-grained_annotation_aqa.pkl").is_file():
        pytest.skip(f"FineDiving annotations not found at {ANNOTATIONS} (set AQAKIT_DATA to the shared data folder)")
    return ANNOTATIONS


def test_the_released_files_hold_3000_dives_in_the_official_split():
    root = real_annotations()
    bench = get_benchmark("finediving")
    train, test = bench.read_labels(root, "train"), bench.read_labels(root, "test")
    assert (len(train.ids), len(test.ids)) == (2251, 749) and not set(train.ids) & set(test.ids)
    first = train.extras
    assert train.ids[0] == "FINADivingWorldCup2021_Men3m_final_r1_8"
    assert (train.scores.min(), train.scores.max()) == (0.0, 114.8)
    assert set(np.unique(np.concatenate([first["difficulty"], test.extras["difficulty"]]))) <= set(np.arange(12, 42) / 10)
    assert len(set(first["dive_number"]) | set(test.extras["dive_number"])) == 52
    # a dive's transitions are the last frames of its steps: the frame labels change right after
    # each, except in the 6 dives whose annotated transitions are unusable and are read off the labels
    for extras in (first, test.extras):
        for transitions, labels, n_frames in zip(extras["step_transitions"], extras["frame_labels"], extras["n_frames"]):
            real = transitions[transitions >= 0]
            assert 2 <= len(real) and np.all(np.diff(real) > 0) and real.max() < n_frames - 1
            assert np.all(labels[:n_frames] >= 0) and np.all(labels[n_frames:] == -1)
    assert int(first["transitions_from_labels"].sum() + test.extras["transitions_from_labels"].sum()) == 6
    matching = 0
    for extras in (first, test.extras):
        for transitions, labels, n_frames in zip(extras["step_transitions"], extras["frame_labels"], extras["n_frames"]):
            changes = np.flatnonzero(labels[1:n_frames] != labels[:n_frames - 1])
            matching += changes.tolist() == transitions[transitions >= 0].tolist()
    assert matching == 2999  # one dive's labels change twice more than its (usable) annotated transitions


def test_tsa_released_predictions_give_spearman_0_9212_in_test_split_order():
    root = real_annotations()
    pred, true = np.load(REFERENCE / "pred.npy"), np.load(REFERENCE / "true.npy")
    bench = get_benchmark("finediving")
    test, train = bench.read_labels(root, "test"), bench.read_labels(root, "train")
    np.testing.assert_array_equal(test.scores, true)  # the adapter orders the test split as TSA did
    assert round(metrics.spearman(pred, true), 4) == 0.9212
    scale = bench.score_scale(train)  # the training range, 0 .. 114.8
    lo, hi = scale.lo, scale.hi
    assert (lo, hi) == (0.0, 114.8)
    assert round(metrics.relative_l2(pred, true, lo, hi), 4) == 0.2787


def test_an_annotation_of_an_unknown_layout_names_its_key(tmp_path):
    root = finediving_layout(tmp_path)
    annotations = pickle.loads((root / "fine-grained_annotation_aqa.pkl").read_bytes())
    annotations[("Tokyo2020_10m_2", 3)] = ["5253B", 90.0, 3.6, np.array([10, 40])]  # no frame labels
    (root / "fine-grained_annotation_aqa.pkl").write_bytes(pickle.dumps(annotations))
    message = error_of(get_benchmark("finediving").read_labels, root, "test")
    assert "key ('Tokyo2020_10m_2', 3): unknown annotation layout" in message and "frame_labels" in message


def test_unusable_transitions_are_read_off_the_frame_labels_or_refused(tmp_path):
    root = finediving_layout(tmp_path)
    annotations = pickle.loads((root / "fine-grained_annotation_aqa.pkl").read_bytes())
    labels = np.repeat([1, 25, 36], [5, 20, 71])
    annotations[("Tokyo2020_10m_2", 3)] = ["5253B", 90.0, 3.6, np.array([-1, 24]), labels]
    (root / "fine-grained_annotation_aqa.pkl").write_bytes(pickle.dumps(annotations))
    test = get_benchmark("finediving").read_labels(root, "test")
    assert test.extras["step_transitions"][0].tolist() == [4, 24, -1, -1] and test.extras["transitions_from_labels"][0]
    annotations[("Tokyo2020_10m_2", 3)] = ["5253B", 90.0, 3.6, np.array([99, 133]), np.zeros(96, dtype=np.int64)]
    (root / "fine-grained_annotation_aqa.pkl").write_bytes(pickle.dumps(annotations))
    assert "give 0 transitions" in error_of(get_benchmark("finediving").read_labels, root, "test")


def test_frame_transitions_land_on_the_clip_of_their_stage():
    # 96 frames on 9 clips: clip c holds frames from c * 96 / 9 (0, 10.7, 21.3, 32, 42.7, ...)
    assert frames_to_clips(np.array([10, 40]), 96, 9, "v").tolist() == [0, 3]
    assert frames_to_clips(np.array([2, 94]), 96, 96, "v").tolist() == [2, 94]
    assert "out of order" in error_of(frames_to_clips, np.array([40, 41]), 96, 9, "video v")  # one clip
    assert "outside the clip" in error_of(frames_to_clips, np.array([10, 96]), 96, 9, "video v")


def test_features_get_transition_clips_and_batches_carry_them(tmp_path):
    train = get_benchmark("finediving").load(finediving_layout(tmp_path), "train")  # 5 and 4 clips of 96 frames
    assert train.extras["transition_clips"].tolist() == [[0, 2], [0, 1]]  # frames 10 and 40
    batch = ClipBank(train).whole(torch.arange(2))
    assert batch["transition"].tolist() == [[1, 0, 1, 0, 0], [1, 1, 0, 0, 0]]
    crop = ClipBank(train).gather(torch.tensor([0]), torch.tensor([2]), 3)
    assert crop["transition"].tolist() == [[1, 0, 0]]  # the targets follow the crop


def test_the_foreground_stream_joins_the_features_or_names_the_bad_file(tmp_path):
    root = finediving_layout(tmp_path)
    (root / "foreground").mkdir()
    for path in (root / "features").iterdir():
        np.save(root / "foreground" / path.name, -np.load(path))
    videos = get_benchmark("finediving", foreground=True).load(root, "test")
    assert videos.feature_dim == 12 and np.array_equal(videos.features[0][:, 6:], -videos.features[0][:, :6])
    np.save(root / "foreground" / "Tokyo2020_10m_2_3.npy", np.zeros((3, 6), dtype=np.float32))
    message = error_of(get_benchmark("finediving", foreground=True).load, root, "test")
    assert "Tokyo2020_10m_2_3.npy: 3 clips, but the video's features have 6" in message
    (root / "foreground" / "Tokyo2020_10m_2_3.npy").unlink()
    assert "no foreground file for video 'Tokyo2020_10m_2_3'" in error_of(
        get_benchmark("finediving", foreground=True).load, root, "test")


def test_aiou_on_hand_made_segments():
    # 10 clips, 3 stages. Video 0 predicted exactly; video 1's stages [0-3][4-6][7-9] vs truth [0-1][2-6][7-9]:
    # IoUs 2/4, 3/5, 1; video 2 far off: [0-0][1-1][2-9] vs [0-5][6-7][8-9]: 1/6, 0, 2/8.
    pred = np.array([[2, 5], [3, 6], [0, 1]])
    true = np.array([[2, 5], [1, 6], [5, 7]])
    ious = metrics.stage_ious(pred, true, [10, 10, 10])
    np.testing.assert_allclose(ious, [[1, 1, 1], [0.5, 0.6, 1], [1 / 6, 0, 0.25]])
    assert metrics.aiou(pred, true, [10, 10, 10], 0.5) == pytest.approx(6 / 9)
    assert metrics.aiou(pred, true, [10, 10, 10], 0.75) == pytest.approx(4 / 9)
