"""Video Swin Transformer (Swin3D-B, Liu et al. 2022) through torchvision's ``swin3d_b``.

This is the architecture the Fis-V / RG features of GDLT, CoFInAl and the query-decoder paper
come from (1024-d average-pooled features of 32-frame clips). torchvision is an optional extra
(``pip install 'aqakit[swin]'``, with a torch/torchvision pair that match); weights are a file the
user supplies — a ``state_dict`` saved by ``torch.save`` (e.g. torchvision's
``swin3d_b_1k-24f7c7c6.pth``) or a ``.safetensors`` file — never downloaded.

Input normalisation follows torchvision's Kinetics weights: RGB in [0, 1], ImageNet mean and
standard deviation per channel. The classifier head is dropped: the feature is the global average of
the last stage after its layer norm, (N, 1024).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from aqakit.errors import ConfigError, DataError
from aqakit.video.backbones import ClipBackbone
from aqakit.video.manifest import file_sha256

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _swin3d_b(num_classes: int) -> nn.Module:
    try:
        from torchvision.models.video import swin3d_b
    except ImportError:
        raise ConfigError(
            "the swin3d_b backbone needs torchvision: pip install 'aqakit[swin]' "
            "(install torch and torchvision as a matching pair)"
        ) from None
    return swin3d_b(weights=None, num_classes=num_classes)


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """Tensors of a ``.safetensors`` file or a ``torch.save``-d state dict (loaded with ``weights_only``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: Swin3D weights file not found (pass a swin3d_b state_dict file)")
    if path.suffix == ".npz":
        raise DataError(f"{path}: an .npz archive (as I3D's weights are); swin3d_b needs a state dict saved with "
                        "torch.save (.pth) or a .safetensors file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch and safetensors raise many types for a bad file
        raise DataError(f"{path}: not a readable weights file ({' '.join(str(exc).split())[:200]})") from None
    for key in ("state_dict", "model"):  # checkpoints that wrap the state dict
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise DataError(f"{path}: does not hold a state_dict of tensors")
    return state


def build_swin3d_b(weights: Path) -> nn.Module:
    """torchvision's swin3d_b holding ``weights``, its classifier replaced by the identity (eval mode)."""
    state = read_state_dict(weights)
    head = state.get("head.weight")
    model = _swin3d_b(num_classes=int(head.shape[0]) if head is not None else 400)
    expected = set(model.state_dict())
    missing = sorted(expected - set(state) - ({"head.weight", "head.bias"} if head is None else set()))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        problem = f"missing {missing[0]!r}" if missing else f"unexpected {unexpected[0]!r}"
        raise DataError(f"{weights}: not swin3d_b weights ({problem}; {len(missing)} missing, {len(unexpected)} unexpected)")
    try:
        model.load_state_dict(state, strict=head is not None)
    except RuntimeError as exc:
        reason = " ".join(str(exc).split())[:300]
        raise DataError(f"{weights}: weights do not fit swin3d_b ({reason})") from None
    model.head = nn.Identity()
    return model.eval()


class SwinBackbone(ClipBackbone):
    """Swin3D-B: 32-frame clips by default, ImageNet-normalised RGB, 1024-d features."""

    name = "swin3d_b"
    default_clip_len = 32
    feature_dim = 1024

    def __init__(self, model: nn.Module, weights_file: Path, weights_sha256: str, device: str | None = None) -> None:
        super().__init__(model, weights_file, weights_sha256, device)
        self.mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1, 1)

    @classmethod
    def from_weights(cls, weights: Path, device: str | None = None) -> "SwinBackbone":
        model = build_swin3d_b(weights)
        return cls(model, weights, file_sha256(Path(weights)), device)

    def normalise(self, clips: Tensor) -> Tensor:
        inputs = clips.permute(0, 4, 1, 2, 3).float().div_(255.0)  # (N, 3, T, H, W) in [0, 1]
        return (inputs - self.mean) / self.std

    def features(self, inputs: Tensor) -> Tensor:
        return self.model(inputs)  # head is the identity: (N, 1024)

