"""Feature files: every bad input is a one-line DataError naming the file and what is wrong."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from aqakit.data.features import load_feature_file, load_videoset
from aqakit.errors import DataError


def save(path: Path, array: np.ndarray) -> Path:
    np.save(path, array)
    return path


def error_of(call, *args, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_loads_float32_c_contiguous(tmp_path):
    data = np.asfortranarray(np.arange(12, dtype=np.float64).reshape(4, 3))
    out = load_feature_file(save(tmp_path / "a.npy", data))
    assert out.dtype == np.float32 and out.flags.c_contiguous and out.shape == (4, 3)
    np.testing.assert_array_equal(out, data)


def test_float16_is_converted_before_any_arithmetic(tmp_path):
    # 2000 clips of 60000: the float16 sum overflows to inf, the float32 one does not.
    data = np.full((2000, 2), 60000, dtype=np.float16)
    out = load_feature_file(save(tmp_path / "h.npy", data))
    assert out.dtype == np.float32
    assert np.isfinite(out.sum(axis=0)).all()
    assert out.mean() == pytest.approx(60000.0)


def test_single_clip_and_odd_dim_are_fine(tmp_path):
    out = load_feature_file(save(tmp_path / "one.npy", np.ones((1, 7), np.float32)), expected_dim=7)
    assert out.shape == (1, 7)


def test_missing_file(tmp_path):
    message = error_of(load_feature_file, tmp_path / "nope.npy")
    assert "nope.npy" in message and "not found" in message


def test_truncated_file(tmp_path):
    full = save(tmp_path / "full.npy", np.ones((50, 8), np.float32))
    cut = tmp_path / "cut.npy"
    cut.write_bytes(full.read_bytes()[:200])
    message = error_of(load_feature_file, cut)
    assert "cut.npy" in message and "truncated" in message


def test_header_only_truncated(tmp_path):
    cut = tmp_path / "head.npy"
    cut.write_bytes(save(tmp_path / "x.npy", np.ones((2, 2), np.float32)).read_bytes()[:12])
    assert "head.npy" in error_of(load_feature_file, cut)


def test_empty_file(tmp_path):
    (tmp_path / "zero.npy").write_bytes(b"")
    message = error_of(load_feature_file, tmp_path / "zero.npy")
    assert "zero.npy" in message and "empty" in message


def test_not_npy_text(tmp_path):
    (tmp_path / "text.npy").write_text("1 2 3\n")
    message = error_of(load_feature_file, tmp_path / "text.npy")
    assert "text.npy" in message and "not a .npy file" in message


def test_pickle_file_is_refused(tmp_path):
    with (tmp_path / "p.npy").open("wb") as fh:
        pickle.dump(np.ones((3, 3)), fh)
    message = error_of(load_feature_file, tmp_path / "p.npy")
    assert "p.npy" in message and "not a .npy file" in message


def test_object_array(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([[1, "a"]], dtype=object), allow_pickle=True)
    message = error_of(load_feature_file, tmp_path / "obj.npy")
    assert "obj.npy" in message and "object" in message


def test_npz_archive(tmp_path):
    np.savez(tmp_path / "arch.npz", x=np.ones((2, 2)))
    (tmp_path / "arch.npz").rename(tmp_path / "arch.npy")
    message = error_of(load_feature_file, tmp_path / "arch.npy")
    assert "arch.npy" in message and ".npz" in message


@pytest.mark.parametrize("dtype", [np.int64, np.bool_, np.complex64])
def test_non_float_dtype(tmp_path, dtype):
    path = save(tmp_path / "ints.npy", np.ones((3, 4), dtype=dtype))
    message = error_of(load_feature_file, path)
    assert "ints.npy" in message and str(np.dtype(dtype)) in message


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4)])
def test_wrong_ndim(tmp_path, shape):
    path = save(tmp_path / "nd.npy", np.ones(shape, np.float32))
    message = error_of(load_feature_file, path)
    assert "nd.npy" in message and str(shape) in message


def test_zero_clips(tmp_path):
    path = save(tmp_path / "empty.npy", np.ones((0, 16), np.float32))
    message = error_of(load_feature_file, path)
    assert "empty.npy" in message and "0 clips" in message


def test_nan_names_first_bad_row(tmp_path):
    data = np.zeros((10, 4), np.float32)
    data[6, 2] = np.nan
    data[8, 0] = np.inf
    message = error_of(load_feature_file, save(tmp_path / "nan.npy", data))
    assert "nan.npy" in message and "row 6" in message and "NaN" in message


def test_inf_names_row(tmp_path):
    data = np.zeros((4, 4), np.float16)
    data[3, 1] = -np.inf
    message = error_of(load_feature_file, save(tmp_path / "inf.npy", data))
    assert "inf.npy" in message and "row 3" in message and "inf" in message


def test_float64_beyond_float32_range_is_reported(tmp_path):
    data = np.zeros((3, 2))
    data[1, 1] = 1e300
    message = error_of(load_feature_file, save(tmp_path / "big.npy", data))
    assert "big.npy" in message and "row 1" in message


def test_expected_dim(tmp_path):
    path = save(tmp_path / "d.npy", np.ones((3, 512), np.float32))
    message = error_of(load_feature_file, path, expected_dim=1024)
    assert "d.npy" in message and "512" in message and "1024" in message


# ---- load_videoset ---------------------------------------------------------------------------


def test_load_videoset_keeps_order_and_scores(tmp_path):
    for i, n in enumerate([1, 5, 3000]):
        save(tmp_path / f"v{i}.npy", np.full((n, 3), i, np.float16))
    vs = load_videoset(tmp_path, ["v2", "v0", "v1"], np.array([3.0, 1.0, 2.0]), "labels.txt")
    assert vs.ids == ["v2", "v0", "v1"]
    assert list(vs.lengths) == [3000, 1, 5]
    assert vs.features[0].dtype == np.float32 and vs.feature_dim == 3
    np.testing.assert_array_equal(vs.scores, [3.0, 1.0, 2.0])
    assert vs.source == "labels.txt"


def test_missing_feature_names_id_path_and_label_line(tmp_path):
    save(tmp_path / "a.npy", np.ones((2, 3), np.float32))
    message = error_of(
        load_videoset, tmp_path, ["a", "b"], np.array([1.0, 2.0]), "train.txt", lines=[4, 17]
    )
    assert "train.txt line 17" in message and "'b'" in message and str(tmp_path / "b.npy") in message


def test_mixed_dims_name_first_differing_file_and_both_dims(tmp_path):
    save(tmp_path / "a.npy", np.ones((2, 8), np.float32))
    save(tmp_path / "b.npy", np.ones((2, 8), np.float32))
    save(tmp_path / "c.npy", np.ones((2, 6), np.float32))
    message = error_of(load_videoset, tmp_path, ["a", "b", "c"], np.zeros(3), "t.txt")
    assert "c.npy" in message and "6" in message and "8" in message


def test_missing_feature_folder(tmp_path):
    message = error_of(load_videoset, tmp_path / "features", ["a"], np.zeros(1), "t.txt")
    assert str(tmp_path / "features") in message and "not found" in message


def test_bad_file_inside_set_is_named(tmp_path):
    save(tmp_path / "a.npy", np.ones((2, 3), np.float32))
    save(tmp_path / "b.npy", np.full((2, 3), np.nan, np.float32))
    message = error_of(load_videoset, tmp_path, ["a", "b"], np.zeros(2), "t.txt")
    assert "b.npy" in message and "row 0" in message


def test_progress_bar_can_be_forced_on(tmp_path, capsys):
    for i in range(3):
        save(tmp_path / f"{i}.npy", np.ones((2, 2), np.float32))
    vs = load_videoset(tmp_path, ["0", "1", "2"], np.zeros(3), "t.txt", progress=True)
    assert len(vs) == 3


def test_duplicate_ids(tmp_path):
    save(tmp_path / "a.npy", np.ones((2, 3), np.float32))
    message = error_of(load_videoset, tmp_path, ["a", "a"], np.zeros(2), "t.txt", lines=[2, 9])
    assert "t.txt line 9" in message and "'a'" in message and "line 2" in message
