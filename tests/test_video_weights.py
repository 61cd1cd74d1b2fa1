"""Typed backbone weights: the input transforms, identifying a file by its hash, and the errors for
a missing or wrong weights file."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from conftest import DATA, run_cli
from videos import write_random_i3d_weights

from aqakit.errors import ConfigError
from aqakit.video.i3d import I3D_KINETICS400
from aqakit.video.manifest import file_sha256
from aqakit.video.registry import backbone_class, load_backbone
from aqakit.video.swin import IMAGENET_MEAN, IMAGENET_STD, SWIN3D_B_KINETICS400_V1
from aqakit.video.weights import identify

KINETICS = DATA / "i3d" / "i3d_kinetics400_rgb.npz"


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    return write_random_i3d_weights(tmp_path_factory.mktemp("weights"))


def test_transforms_compute_what_each_network_was_trained_on():
    clips = torch.from_numpy(np.random.default_rng(0).integers(0, 256, size=(2, 3, 4, 5, 3), dtype=np.uint8))
    pixels = clips.permute(0, 4, 1, 2, 3).float()
    assert torch.equal(I3D_KINETICS400.transform.normalise(clips), pixels / 127.5 - 1.0)  # [-1, 1]
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1, 1)
    assert torch.equal(SWIN3D_B_KINETICS400_V1.transform.normalise(clips), (pixels / 255.0 - mean) / std)


def test_each_backbone_reads_its_defaults_from_its_weights():
    for name, clip_len in (("i3d", 16), ("swin3d_b", 32)):
        weights = backbone_class(name).default_weights()
        assert weights.backbone == name and weights.transform.clip_len == clip_len and weights.feature_dim == 1024
        options = weights.transform.decode_options()
        assert (options.size, options.short_side, options.fps) == (224, None, None)
    assert I3D_KINETICS400.transform.decode_options(size=112, fps=10.0).size == 112


def test_a_file_is_known_weights_by_its_hash_only(random_weights, tmp_path):
    own = identify(random_weights, file_sha256(random_weights), (I3D_KINETICS400,))
    assert own.name == "own" and own.sha256 is None and own.file_name == "i3d_random.npz"
    assert own.transform == I3D_KINETICS400.transform
    assert identify(tmp_path / "any.npz", I3D_KINETICS400.sha256, (I3D_KINETICS400,)) is I3D_KINETICS400
    assert identify(tmp_path / "x.pth", "24f7c7c6" + "0" * 56, (SWIN3D_B_KINETICS400_V1,)) is SWIN3D_B_KINETICS400_V1

    impostor = tmp_path / "i3d_kinetics400_rgb.npz"  # the released file's name, other contents
    shutil.copy(random_weights, impostor)
    with pytest.raises(ConfigError, match=rf"{impostor}: sha256 \w+\.\.\. is not that of i3d KINETICS400 "
                                          r"\(i3d_kinetics400_rgb.npz, DeepMind .*\), which starts e9a49722a863caeb"):
        load_backbone("i3d", impostor, "cpu")


def test_a_wrong_weights_file_is_one_line_of_extract(random_weights, tmp_path, monkeypatch, capsys):
    pytest.importorskip("av", reason="PyAV is not installed (pip install 'aqakit[video]')")
    impostor = tmp_path / "i3d_kinetics400_rgb.npz"
    shutil.copy(random_weights, impostor)
    video = tmp_path / "v.mp4"
    video.write_bytes(b"")
    status, _, err = run_cli(monkeypatch, capsys, "extract", video, "--weights", impostor, "--out", tmp_path / "f")
    assert status == 2 and len(err.strip().splitlines()) == 1 and str(impostor) in err and "e9a49722a863caeb" in err
    status, _, err = run_cli(monkeypatch, capsys, "extract", video, "--weights", tmp_path / "nope.npz", "--out", tmp_path / "f")
    assert status == 2 and "nope.npz: I3D weights file not found (pass the path to i3d_kinetics400_rgb.npz)" in err


def test_the_real_kinetics_file_is_identified():
    if not KINETICS.is_file():
        pytest.skip(f"{KINETICS} not found (set AQAKIT_DATA to the shared data folder)")
    backbone = load_backbone("i3d", KINETICS, "cpu")
    assert backbone.weights is I3D_KINETICS400 and backbone.weights_sha256 == I3D_KINETICS400.sha256
    assert backbone.describe()["weights_file"] == "i3d_kinetics400_rgb.npz"
