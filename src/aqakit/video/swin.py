"""Video Swin Transformer (Swin3D-B, Liu et al. 2022) as a clip backbone, through torchvision's ``swin3d_b``.

Weights are a file the user supplies (a ``torch.save``-d state dict or ``.safetensors``), never
downloaded; torchvision is an optional extra (``pip install 'aqakit[swin]'``). The feature is the
global average of the last stage after its layer norm, (N, 1024). See docs/video.md.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from aqakit.errors import ConfigError, DataError
from aqakit.video.backbone import ClipBackbone
from aqakit.video.manifest import file_sha256
from aqakit.video.weights import BackboneWeights, ClipTransform, WeightsMeta, identify

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: torchvision's ``Swin3D_B_Weights.KINETICS400_V1`` (ported from the Video Swin paper's release):
#: the architecture and training data of the Fis-V / RG features of GDLT, CoFInAl and the
#: query-decoder paper. torchvision publishes the first 8 hex digits of the file's SHA-256 in its name.
SWIN3D_B_KINETICS400_V1 = BackboneWeights(
    backbone="swin3d_b",
    name="KINETICS400_V1",
    file_name="swin3d_b_1k-24f7c7c6.pth",
    sha256="24f7c7c6",
    transform=ClipTransform(crop_size=224, short_side=None, clip_len=32, fps=None, value_range=(0.0, 1.0),
                            mean=IMAGENET_MEAN, std=IMAGENET_STD),
    feature_dim=1024,
    meta=WeightsMeta(
        training_data="Kinetics-400 (ImageNet-1K pre-training)",
        source="torchvision (Swin3D_B_Weights.KINETICS400_V1), ported from Video-Swin-Transformer",
        revision="KINETICS400_V1",
        license="Apache-2.0 (Video-Swin-Transformer); torchvision's terms (BSD-3-Clause)",
    ),
)


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
    """Swin3D-B as a clip backbone: ImageNet-normalised RGB, 1024-d features."""

    name = "swin3d_b"
    known_weights = (SWIN3D_B_KINETICS400_V1,)

    @classmethod
    def from_weights(cls, weights: Path, device: str | None = None) -> "SwinBackbone":
        model = build_swin3d_b(weights)
        sha256 = file_sha256(Path(weights))
        return cls(model, identify(weights, sha256, cls.known_weights), weights, sha256, device)

    def features(self, inputs: Tensor) -> Tensor:
        return self.model(inputs)  # head is the identity: (N, 1024)
