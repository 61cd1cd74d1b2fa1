"""The backbones by name: :func:`load_backbone` builds one (``i3d``, ``swin3d_b``) from a weights
file the user points at; nothing is ever downloaded."""

from __future__ import annotations

from pathlib import Path

from aqakit.errors import ConfigError
from aqakit.video.backbone import ClipBackbone
from aqakit.video.i3d import I3DBackbone
from aqakit.video.swin import SwinBackbone

_BACKBONES: dict[str, type[ClipBackbone]] = {"i3d": I3DBackbone, "swin3d_b": SwinBackbone}


def list_backbones() -> list[str]:
    """Names accepted by :func:`load_backbone`."""
    return sorted(_BACKBONES)


def backbone_class(name: str) -> type[ClipBackbone]:
    """The backbone class registered as ``name``."""
    if name not in _BACKBONES:
        raise ConfigError(f"unknown backbone {name!r}; available: {', '.join(list_backbones())}")
    return _BACKBONES[name]


def load_backbone(name: str, weights: Path, device: str | None = None) -> ClipBackbone:
    """Build backbone ``name`` from the user's ``weights`` file on ``device`` (default: GPU if present).

    The file's hash says which known weights it is (:func:`aqakit.video.weights.identify`): those
    give the input transform and the feature dimension.
    """
    return backbone_class(name).from_weights(Path(weights), device)
