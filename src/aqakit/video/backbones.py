"""Clip backbones behind one interface: uint8 RGB clips in, one feature vector per clip out.

:func:`load_backbone` builds one by name (``i3d``, ``swin3d_b``) from a weights file the user
points at; nothing is ever downloaded. Each backbone owns its input normalisation, so callers
hand it the decoder's uint8 clips ``(N, T, H, W, 3)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from aqakit.errors import ConfigError
from aqakit.video import i3d


def resolve_device(device: str | None) -> torch.device:
    """``device`` as a torch device (default: the GPU when present); ConfigError if unusable."""
    try:
        resolved = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    except RuntimeError:
        raise ConfigError(f"unknown device {device!r} (use cpu, cuda or cuda:N)") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available")
    return resolved


class ClipBackbone(ABC):
    """A pre-trained video network that maps clips to features.

    Attributes:
        name: registry name, recorded in feature manifests.
        default_clip_len: frames per clip when the user does not choose.
        feature_dim: length of each clip's feature vector.
        revision: the revision of aqakit's implementation of the network, recorded in feature
            manifests as ``backbone_revision``; raised whenever a change alters the features, so
            that features of two revisions are never mixed. Manifests without it are revision 1.
        revisions: what each revision computed, for messages.
        weights_file: the weights it was built from; ``weights_sha256`` their hash.
    """

    name: ClassVar[str]
    default_clip_len: ClassVar[int]
    feature_dim: ClassVar[int]
    revision: ClassVar[int] = 1
    revisions: ClassVar[dict[int, str]] = {}

    def __init__(self, model: nn.Module, weights_file: Path, weights_sha256: str, device: str | None = None) -> None:
        self.device = resolve_device(device)
        self.model = model.eval().to(self.device)
        self.weights_file = Path(weights_file)
        self.weights_sha256 = weights_sha256

    @abstractmethod
    def normalise(self, clips: Tensor) -> Tensor:
        """uint8 clips (N, T, H, W, 3) on the device -> the network's float input."""

    @abstractmethod
    def features(self, inputs: Tensor) -> Tensor:
        """The network's (N, feature_dim) clip features for normalised inputs."""

    @torch.inference_mode()
    def encode(self, clips: np.ndarray) -> np.ndarray:
        """uint8 clips (N, T, H, W, 3) -> float32 features (N, feature_dim)."""
        inputs = self.normalise(torch.from_numpy(clips).to(self.device, non_blocking=True))
        return self.features(inputs).float().cpu().numpy()

    def describe(self) -> dict[str, Any]:
        """The backbone part of a feature manifest."""
        return {
            "backbone": self.name,
            "weights_file": self.weights_file.name,
            "weights_sha256": self.weights_sha256,
            "feature_dim": self.feature_dim,
            "backbone_revision": self.revision,
        }

    @classmethod
    def describe_revision(cls, revision: int) -> str:
        """``revision N (what it computed)``, for messages."""
        known = cls.revisions.get(revision)
        return f"revision {revision}" + (f" ({known})" if known else "")

    @classmethod
    def stale_features(cls, extraction: Mapping[str, Any]) -> str | None:
        """Why features made with ``extraction`` (a manifest's settings, old ones filled in by
        :func:`aqakit.video.manifest.with_legacy_settings`) differ from what this backbone computes
        now, or None when they do not: ``i3d features of revision 1 (...), not revision 2 (...)``."""
        revision = extraction.get("backbone_revision", 1)
        if revision == cls.revision:
            return None
        return f"{cls.name} features of {cls.describe_revision(revision)}, not {cls.describe_revision(cls.revision)}"


class I3DBackbone(ClipBackbone):
    """I3D RGB (Kinetics-400): 16-frame clips by default, RGB scaled to [-1, 1], 1024-d features."""

    name = "i3d"
    default_clip_len = 16
    feature_dim = 1024
    revision = i3d.REVISION
    revisions = i3d.REVISIONS

    @classmethod
    def from_weights(cls, weights: Path, device: str | None = None) -> "I3DBackbone":
        spec = i3d.I3DWeights(Path(weights))
        return cls(spec.build(), spec.path, spec.sha256(), device)

    def normalise(self, clips: Tensor) -> Tensor:
        return clips.permute(0, 4, 1, 2, 3).float().div_(127.5).sub_(1.0)  # (N, 3, T, H, W)

    def features(self, inputs: Tensor) -> Tensor:
        return self.model(inputs).features


def _swin_backbone() -> type[ClipBackbone]:
    from aqakit.video.swin import SwinBackbone

    return SwinBackbone


_BACKBONES = {"i3d": lambda: I3DBackbone, "swin3d_b": _swin_backbone}


def list_backbones() -> list[str]:
    """Names accepted by :func:`load_backbone`."""
    return sorted(_BACKBONES)


def backbone_class(name: str) -> type[ClipBackbone]:
    """The backbone class registered as ``name``."""
    if name not in _BACKBONES:
        raise ConfigError(f"unknown backbone {name!r}; available: {', '.join(list_backbones())}")
    return _BACKBONES[name]()


def load_backbone(name: str, weights: Path, device: str | None = None) -> ClipBackbone:
    """Build backbone ``name`` from the user's ``weights`` file on ``device`` (default: GPU if present)."""
    return backbone_class(name).from_weights(Path(weights), device)
