"""Swin3D-B through torchvision with user-supplied weights (random here): loading and feature shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("torchvision", reason="torchvision is not installed (optional: pip install 'aqakit[swin]')")

from aqakit.errors import ConfigError, DataError  # noqa: E402
from aqakit.video.registry import load_backbone  # noqa: E402
from aqakit.video.swin import IMAGENET_MEAN, build_swin3d_b  # noqa: E402


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    from torchvision.models.video import swin3d_b

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("swin") / "swin3d_b_random.pth"
    torch.save(swin3d_b(weights=None).state_dict(), path)
    return path


def test_random_weights_give_1024_d_features_for_any_clip_size(weights_file):
    backbone = load_backbone("swin3d_b", weights_file, "cpu")
    assert backbone.default_clip_len == 32 and len(backbone.weights_sha256) == 64
    rng = np.random.default_rng(0)
    for shape in [(2, 4, 32, 32, 3), (1, 3, 40, 56, 3)]:
        features = backbone.encode(rng.integers(0, 256, size=shape, dtype=np.uint8))
        assert features.shape == (shape[0], 1024) and np.isfinite(features).all()


def test_input_is_imagenet_normalised(weights_file):
    backbone = load_backbone("swin3d_b", weights_file, "cpu")
    clips = np.zeros((1, 2, 4, 4, 3), np.uint8)
    inputs = backbone.normalise(torch.from_numpy(clips))
    assert inputs.shape == (1, 3, 2, 4, 4)
    assert float(inputs[0, 0, 0, 0, 0]) == pytest.approx(-IMAGENET_MEAN[0] / 0.229, abs=1e-5)


def test_wrong_or_missing_weights_are_clear_errors(tmp_path, weights_file):
    state = torch.load(weights_file, weights_only=True)
    state.pop("norm.weight")
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(DataError, match=r"partial\.pth: not swin3d_b weights \(missing 'norm.weight'"):
        build_swin3d_b(tmp_path / "partial.pth")
    with pytest.raises(ConfigError, match="nope.pth: Swin3D weights file not found"):
        build_swin3d_b(tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_text("junk")
    with pytest.raises(DataError, match=r"junk\.pth: not a readable weights file"):
        build_swin3d_b(tmp_path / "junk.pth")
    np.savez(tmp_path / "i3d.npz", a=np.zeros(2))
    with pytest.raises(DataError, match=r"i3d\.npz: an \.npz archive .* torch\.save"):
        build_swin3d_b(tmp_path / "i3d.npz")
