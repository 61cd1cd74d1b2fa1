"""The foreground stream F: the backbone on each frame times its person mask.

``aqakit extract --masks MASKS`` writes, beside the whole-frame features O (``features/<id>.npy``),
the foreground features F (``foreground/<id>.npy``) of the same clips: frame t of clip k is
multiplied by its mask (:mod:`aqakit.video.masks`; 0 off the person, so the background is black) and
the clip encoded as O's is. Same ids, same clip grid, which is what FineCausal reads
(:func:`aqakit.data.features.with_foreground`). Cropping to the mask's box instead was left out: it
changes the scale of the person from frame to frame and the clip's geometry from clip to clip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from aqakit.errors import DataError
from aqakit.video.masks import FrameMasks, describe_masks

#: How F is made, recorded in the foreground folder's manifest.
METHOD = "frames x person mask (background set to black), same clips as the whole-frame features"


class ClipMasker:
    """Applies one video's masks to its clips in order, and checks they cover its frames."""

    def __init__(self, masks: FrameMasks, video: str) -> None:
        if not masks.found.any():
            raise DataError(f"{video}: no person found in any of its {len(masks)} frames ({masks.source}); its "
                            "foreground features would be those of black frames")
        self.masks, self.video, self.used = masks, video, 0

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        """uint8 clip (L, S, S, 3) -> the clip with each frame times its mask."""
        end = self.used + len(clip)
        if end > len(self.masks):
            raise DataError(self._mismatch(f"at least {end}"))
        if self.masks.masks.shape[1:] != clip.shape[1:3]:
            raise DataError(f"{self.masks.source}: masks of {self.masks.masks.shape[1:]} pixels, frames of "
                            f"{clip.shape[1:3]} for {self.video}")
        masked = clip * self.masks.masks[self.used:end, :, :, None]
        self.used = end
        return masked

    def check_complete(self, clip_len: int) -> None:
        """DataError unless the masks are the video's frames: those its clips used plus a tail shorter
        than a clip (the frames the clip grid drops, which the decoder does not report)."""
        if not self.used <= len(self.masks) < self.used + clip_len:
            raise DataError(self._mismatch(f"{self.used} to {self.used + clip_len - 1}"))

    def _mismatch(self, expected: str) -> str:
        return (f"{self.masks.source}: masks of {len(self.masks)} frames, but {self.video} has {expected} frames "
                "(masks made for another video, or with other --fps/--frames)")


def foreground_settings(masks_dir: Path) -> dict[str, Any]:
    """The ``foreground`` entry of a foreground folder's extraction settings: the method and the masks."""
    return {"method": METHOD, "masks": describe_masks(masks_dir)}
