"""Typed backbone weights: what a weights file is, the input it expects, and how it is checked.

A :class:`BackboneWeights` names one released weights file (its name and SHA-256), the input
transform aqakit feeds it by default (:class:`ClipTransform`), its feature dimension and where it
comes from (:class:`WeightsMeta`). Nothing is downloaded: the user points at a local copy, which
:meth:`BackboneWeights.check` verifies. Each backbone lists the weights it knows
(``I3D_KINETICS400`` in :mod:`aqakit.video.i3d`, ``SWIN3D_B_KINETICS400_V1`` in
:mod:`aqakit.video.swin`); see docs/video.md.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from torch import Tensor

from aqakit.errors import ConfigError
from aqakit.video.decode import DecodeOptions


@dataclass(frozen=True)
class ClipTransform:
    """The input a backbone's weights expect, from decoded uint8 RGB frames.

    Attributes:
        crop_size: side of the square centre crop, in pixels.
        short_side: the short side is resized to this before the crop; None means ``crop_size``.
        clip_len: frames per clip.
        fps: frame rate the video is resampled to; None keeps every decoded frame.
        value_range: RGB is scaled from [0, 255] to this range ...
        mean, std: ... then, when given, standardised per channel (R, G, B).
    """

    crop_size: int
    short_side: int | None
    clip_len: int
    fps: float | None
    value_range: tuple[float, float]
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None

    def decode_options(
        self, *, fps: float | None = None, size: int | None = None, short_side: int | None = None,
        upright: bool = True, folder_fps: float = DecodeOptions.folder_fps, frames: int | None = None,
    ) -> DecodeOptions:
        """Decoding with the user's choices where given, else this transform's."""
        return DecodeOptions(fps=self.fps if fps is None else fps, size=size or self.crop_size,
                             short_side=short_side or self.short_side, upright=upright, folder_fps=folder_fps,
                             frames=frames)

    def normalise(self, clips: Tensor) -> Tensor:
        """uint8 clips (N, T, H, W, 3) -> float input (N, 3, T, H, W) in ``value_range``, standardised."""
        lo, hi = self.value_range
        inputs = clips.permute(0, 4, 1, 2, 3).float().div_(255.0 / (hi - lo)).add_(lo)
        if self.mean is None or self.std is None:
            return inputs
        mean = inputs.new_tensor(self.mean).view(1, 3, 1, 1, 1)
        std = inputs.new_tensor(self.std).view(1, 3, 1, 1, 1)
        return (inputs - mean) / std


@dataclass(frozen=True)
class WeightsMeta:
    """Where weights come from: what they were trained on, who released them, under which licence."""

    training_data: str
    source: str
    revision: str
    license: str


@dataclass(frozen=True)
class BackboneWeights:
    """One weights file of a backbone: its name and hash, its input, its output, its origin.

    Attributes:
        backbone: the backbone's registry name (``i3d``, ``swin3d_b``).
        name: these weights' name among the backbone's (``KINETICS400``; ``own`` for a user's file).
        file_name: the released file's name.
        sha256: its hex SHA-256, or the leading hex digits its publisher gives (torchvision puts
            8 in its file names); None when unknown (a user's own file).
        transform: the input aqakit feeds these weights by default.
        feature_dim: length of each clip's feature vector.
        meta: origin of the weights.
    """

    backbone: str
    name: str
    file_name: str
    sha256: str | None
    transform: ClipTransform
    feature_dim: int
    meta: WeightsMeta

    def matches(self, sha256: str) -> bool:
        """Whether a file of hash ``sha256`` is these weights."""
        return self.sha256 is not None and sha256.startswith(self.sha256)

    def check(self, path: Path, sha256: str) -> None:
        """ConfigError naming ``path`` and what was expected unless its hash ``sha256`` is these weights'."""
        if self.sha256 is not None and not self.matches(sha256):
            raise ConfigError(
                f"{path}: sha256 {sha256[:16]}... is not that of {self.backbone} {self.name} ({self.file_name}, "
                f"{self.meta.source}), which starts {self.sha256[:16]}; the file is damaged or other weights "
                "(rename it to use it as weights of your own)"
            )

    def own(self, file_name: str) -> "BackboneWeights":
        """A user's own weights file of this architecture: this input and output, nothing to verify."""
        return replace(self, name="own", file_name=file_name, sha256=None,
                       meta=WeightsMeta(training_data="unknown", source="the user's own file", revision="unknown",
                                        license="unknown"))


def identify(path: Path, sha256: str, known: tuple[BackboneWeights, ...]) -> BackboneWeights:
    """Which of ``known`` the file ``path`` (of hash ``sha256``) is.

    A file with a known hash is those weights; a file named as known weights but with another hash
    is refused (ConfigError naming the path and the expected file); any other file is the user's
    own weights of the architecture (the first known weights' input and output).
    """
    path = Path(path)
    for weights in known:
        if weights.matches(sha256):
            return weights
    for weights in known:
        if weights.file_name == path.name:
            weights.check(path, sha256)
    return known[0].own(path.name)
