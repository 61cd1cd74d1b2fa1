"""The clip backbone interface: uint8 RGB clips in, one feature vector per clip out.

:class:`ClipBackbone` is what feature extraction and scoring call; each network (I3D in
:mod:`aqakit.video.i3d`, Video Swin in :mod:`aqakit.video.swin`) subclasses it, and
:mod:`aqakit.video.registry` builds one by name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from aqakit.errors import ConfigError
from aqakit.video.weights import BackboneWeights


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
        known_weights: the released weights it knows; the first gives the input and output of a
            user's own file and of checkpoints that do not record their extraction.
        revision: the revision of aqakit's implementation of the network, recorded in feature
            manifests as ``backbone_revision``; raised whenever a change alters the features, so
            that features of two revisions are never mixed. Manifests without it are revision 1.
        revisions: what each revision computed, for messages.
        weights: the weights it holds; ``weights_file`` the file they were read from,
            ``weights_sha256`` its hash.
    """

    name: ClassVar[str]
    known_weights: ClassVar[tuple[BackboneWeights, ...]]
    revision: ClassVar[int] = 1
    revisions: ClassVar[dict[int, str]] = {}

    def __init__(
        self, model: nn.Module, weights: BackboneWeights, weights_file: Path, weights_sha256: str, device: str | None = None
    ) -> None:
        self.model = model.eval()
        self.to(device)
        self.weights = weights
        self.weights_file = Path(weights_file)
        self.weights_sha256 = weights_sha256

    def to(self, device: str | None) -> "ClipBackbone":
        """Move the network to ``device`` (see :func:`resolve_device`); returns this backbone."""
        self.device = resolve_device(device)
        self.model.to(self.device)
        return self

    @classmethod
    def default_weights(cls) -> BackboneWeights:
        """The weights whose input and output this backbone assumes when nothing else says."""
        return cls.known_weights[0]

    @property
    def default_clip_len(self) -> int:
        """Frames per clip when the user does not choose (the weights' clip length)."""
        return self.weights.transform.clip_len

    @property
    def feature_dim(self) -> int:
        """Length of each clip's feature vector."""
        return self.weights.feature_dim

    def normalise(self, clips: Tensor) -> Tensor:
        """uint8 clips (N, T, H, W, 3) on the device -> the network's float input (the weights' transform)."""
        return self.weights.transform.normalise(clips)

    @classmethod
    @abstractmethod
    def from_weights(cls, weights: Path, device: str | None = None) -> "ClipBackbone":
        """Build it from the user's weights file, identified by its hash among :attr:`known_weights`."""

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
