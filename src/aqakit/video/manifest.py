"""The manifest of an extracted feature folder: how its ``<video_id>.npy`` files were made.

``<feature folder>/manifest.json`` holds the ``extraction`` settings (backbone and its revision,
weights file name and SHA-256, feature dimension, clip length, frame rate or uniform sample, resize
and crop) and one entry per video (source
file, clips, frames). Training on such a folder copies ``extraction`` into the checkpoint, so
``aqakit score`` can later extract a new video the same way. Reading it needs no video library.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from aqakit.atomic import atomic_write_text
from aqakit.errors import DataError

MANIFEST_FILE = "manifest.json"

#: Extraction settings added after the first manifests, with the value a manifest without them was
#: made with: stored pixels (before frames were turned upright), frame folders at 25 fps, every
#: frame (no uniform sample), and revision 1 of the backbone (for I3D: the port whose
#: MaxPool3d_4a_3x3 strided by 3; see :data:`aqakit.video.i3d.REVISIONS`).
LEGACY_SETTINGS: dict[str, Any] = {"upright": False, "folder_fps": 25.0, "frames_per_video": None, "backbone_revision": 1}


def with_legacy_settings(extraction: dict[str, Any]) -> dict[str, Any]:
    """``extraction`` (a manifest's or a checkpoint's settings) with every :data:`LEGACY_SETTINGS`
    entry it lacks, so old and new records compare as what they were made with."""
    return {**extraction, **{key: value for key, value in LEGACY_SETTINGS.items() if key not in extraction}}


def manifest_path(feature_dir: Path) -> Path:
    """``<feature_dir>/manifest.json``."""
    return Path(feature_dir) / MANIFEST_FILE


def read_manifest(feature_dir: Path) -> dict[str, Any] | None:
    """The folder's manifest, or None when it has none; a malformed one is a DataError.

    Settings an old manifest lacks are filled in as it was made (:func:`with_legacy_settings`).
    """
    path = manifest_path(feature_dir)
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a valid feature manifest ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("extraction"), dict):
        raise DataError(f"{path}: not a feature manifest (no 'extraction' settings)")
    manifest.setdefault("videos", {})
    manifest["extraction"] = with_legacy_settings(manifest["extraction"])
    return manifest


def write_manifest(feature_dir: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest atomically (a crash never leaves half a file)."""
    atomic_write_text(manifest_path(feature_dir), json.dumps(manifest, indent=2))


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file (weights files are recorded by hash in manifests)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
