"""The manifest of an extracted feature folder: how its ``<video_id>.npy`` files were made.

``<feature folder>/manifest.json`` holds the ``extraction`` settings (backbone and its revision,
weights file name and SHA-256, feature dimension, clip length, frame rate or uniform sample, resize
and crop), one entry per video (source file, clips, frames), the videos an extraction was writing
when it stopped (``writing``) and those that failed, with the reason (``failed``). Training on such
a folder copies ``extraction`` into the checkpoint, so ``aqakit score`` can later extract a new
video the same way. Reading it needs no video library.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import aqakit
from aqakit.atomic import atomic_write_text
from aqakit.errors import DataError

MANIFEST_FILE = "manifest.json"

#: Extraction settings added after the first manifests, with the value a manifest without them was
#: made with: stored pixels (before frames were turned upright), frame folders at 25 fps, every
#: frame (no uniform sample), and revision 1 of the backbone (for I3D: the port whose
#: MaxPool3d_4a_3x3 strided by 3; see :data:`aqakit.video.i3d.REVISIONS`).
LEGACY_SETTINGS: dict[str, Any] = {"upright": False, "folder_fps": 25.0, "frames_per_video": None, "backbone_revision": 1}


def _empty_records() -> dict[str, Any]:
    """A manifest's per-video records, empty: finished videos (id -> source, clips, frames), ids whose
    feature file an extraction was replacing when it stopped (not trusted: extracted again), and
    videos that failed (id -> source, reason), until they are extracted."""
    return {"videos": {}, "writing": [], "failed": {}}


def with_legacy_settings(extraction: dict[str, Any], legacy: dict[str, Any] = LEGACY_SETTINGS) -> dict[str, Any]:
    """``extraction`` (a manifest's or a checkpoint's settings) with every ``legacy`` entry it lacks,
    so old and new records compare as what they were made with."""
    return {**extraction, **{key: value for key, value in legacy.items() if key not in extraction}}


def manifest_path(feature_dir: Path) -> Path:
    """``<feature_dir>/manifest.json``."""
    return Path(feature_dir) / MANIFEST_FILE


def read_manifest(feature_dir: Path, legacy: dict[str, Any] = LEGACY_SETTINGS) -> dict[str, Any] | None:
    """The folder's manifest, or None when it has none; a malformed one is a DataError.

    Settings an old manifest lacks are filled in as it was made (``legacy``: :data:`LEGACY_SETTINGS`
    for feature folders; a mask folder, :mod:`aqakit.video.masks`, has none).
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
    for key, empty in _empty_records().items():
        manifest.setdefault(key, empty)
    manifest["extraction"] = with_legacy_settings(manifest["extraction"], legacy)
    return manifest


def new_manifest(extraction: dict[str, Any]) -> dict[str, Any]:
    """The manifest of a folder with no features yet, made with ``extraction`` settings."""
    return {"aqakit_version": aqakit.__version__, "extraction": extraction, **_empty_records()}


def write_manifest(feature_dir: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest atomically (a crash never leaves half a file), its per-video records in
    the order of their ids: the same file whatever order the videos were extracted in."""
    records = {key: dict(sorted(manifest[key].items())) for key in ("videos", "failed") if key in manifest}
    atomic_write_text(manifest_path(feature_dir), json.dumps({**manifest, **records}, indent=2))


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file (weights files are recorded by hash in manifests)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
