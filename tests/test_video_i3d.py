"""I3D: TensorFlow 'SAME' padding, shapes for any input size, weight loading, and the real Kinetics check."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import DATA
from videos import i3d_flax_arrays

from aqakit.errors import ConfigError, DataError
from aqakit.video.i3d import I3D, I3DWeights, MaxPool3dSame, same_padding

I3D_DIR = DATA / "i3d"
WEIGHTS = I3D_DIR / "i3d_kinetics400_rgb.npz"
CRICKET = I3D_DIR / "v_CricketShot_g04_c01_rgb.gif"


def test_same_padding_matches_tensorflow():
    # TF: out = ceil(in / stride); total pad = max((out - 1) * stride + k - in, 0), extra after.
    assert same_padding((16, 224, 224), (7, 7, 7), (2, 2, 2)) == [2, 3, 2, 3, 2, 3]
    assert same_padding((8, 56, 56), (1, 3, 3), (1, 2, 2)) == [0, 1, 0, 1, 0, 0]
    assert same_padding((5, 5, 5), (3, 3, 3), (1, 1, 1)) == [1, 1, 1, 1, 1, 1]
    assert same_padding((1, 1, 1), (2, 2, 2), (2, 2, 2)) == [0, 1, 0, 1, 0, 1]


def test_max_pool_ignores_padding():
    negative = -torch.ones(1, 1, 1, 4, 4)
    pooled = MaxPool3dSame((1, 3, 3), (1, 2, 2))(negative)
    assert pooled.shape == (1, 1, 1, 2, 2) and bool((pooled == -1).all())


@pytest.mark.parametrize("shape", [(2, 3, 16, 64, 64), (1, 3, 1, 32, 40), (1, 3, 9, 48, 36)])
def test_random_weights_give_features_and_logits_for_any_input_size(shape):
    torch.manual_seed(0)
    model = I3D().eval()
    with torch.no_grad():
        output = model(torch.rand(shape) * 2 - 1)
    assert output.features.shape == (shape[0], 1024) and output.logits.shape == (shape[0], 400)
    assert torch.isfinite(output.features).all() and torch.isfinite(output.logits).all()
    assert bool((output.features >= 0).all())  # a mean of ReLU outputs


def test_bad_input_shape_is_a_clear_error():
    with pytest.raises(DataError, match=r"\(batch, 3, frames, height, width\)"):
        I3D()(torch.zeros(1, 16, 3, 224, 224))


def test_weights_round_trip_from_the_flax_layout(tmp_path):
    """Arrays written in the Flax layout load into the right tensors (transposed kernels, BN stats)."""
    torch.manual_seed(0)
    arrays = i3d_flax_arrays(I3D())
    path = tmp_path / "w.npz"
    np.savez(path, **arrays)
    model = I3DWeights(path).build()
    unit = dict(model.units())["Mixed_4c/Branch_2/Conv3d_0b_3x3"]
    kernel = arrays["params/Mixed_4c/Branch_2/Conv3d_0b_3x3/Conv_0/kernel"]  # (D, H, W, I, O)
    assert torch.equal(unit.conv.weight[5, 3, 2, 1, 0], torch.tensor(kernel[2, 1, 0, 3, 5]))
    mean = arrays["batch_stats/Mixed_4c/Branch_2/Conv3d_0b_3x3/BatchNorm_0/mean"].reshape(-1)
    assert torch.equal(unit.norm.running_mean, torch.from_numpy(mean))
    assert torch.equal(model.classifier.bias, torch.from_numpy(arrays["params/Logits/Conv3d_0c_1x1/Conv_0/bias"]))
    assert I3DWeights(path).class_names()[3] == "class_3"

    del arrays["params/Mixed_5c/Branch_3/Conv3d_0b_1x1/BatchNorm_0/bias"]
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=r"w\.npz: missing array 'params/Mixed_5c/Branch_3/Conv3d_0b_1x1"):
        I3DWeights(path).build()


def test_missing_or_unreadable_weights(tmp_path):
    with pytest.raises(ConfigError, match="nope.npz: I3D weights file not found"):
        I3DWeights(tmp_path / "nope.npz").build()
    (tmp_path / "bad.npz").write_text("not an archive")
    with pytest.raises(DataError, match=r"bad\.npz: not an \.npz archive"):
        I3DWeights(tmp_path / "bad.npz").build()
    (tmp_path / "cut.npz").write_bytes(b"PK\x03\x04 and then nothing")
    with pytest.raises(DataError, match=r"cut\.npz: not a readable \.npz"):
        I3DWeights(tmp_path / "cut.npz").build()


@pytest.mark.slow
def test_kinetics_weights_recognise_the_cricket_clip():
    """DeepMind's check clip (79 frames, RGB in [-1, 1]): top-1 is 'playing cricket'."""
    pytest.importorskip("av", reason="PyAV is not installed (pip install 'aqakit[video]')")
    if not WEIGHTS.is_file() or not CRICKET.is_file():
        pytest.skip(f"I3D weights or check clip not found in {I3D_DIR} (set AQAKIT_DATA to the shared data folder)")
    from aqakit.video.decode import iter_frames

    weights = I3DWeights(WEIGHTS)
    frames = np.stack(list(iter_frames(CRICKET)))  # (79, 224, 224, 3) uint8
    clip = torch.from_numpy(frames).permute(3, 0, 1, 2).unsqueeze(0).float() / 127.5 - 1.0
    with torch.inference_mode():
        output = weights.build()(clip)
    probabilities = output.logits.softmax(-1)[0]
    names = weights.class_names()
    assert len(names) == 400 and names[int(probabilities.argmax())] == "playing cricket"
    assert float(probabilities.max()) > 0.9
    assert len(weights.sha256()) == 64
