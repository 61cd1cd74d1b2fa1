"""Person masks per frame: made with MediaPipe's Pose solution, or read from the user's PNG folders.

A mask folder (``aqakit masks VIDEOS --out MASKS``) holds one ``<video_id>.npz`` per video with
``masks`` uint8 (T, size, size), 1 on the person and 0 elsewhere, and ``found`` bool (T,), whether a
person was found in that frame (a frame without one has an all-zero mask and ``found`` False: it is
recorded, never filled in from its neighbours), plus a ``manifest.json`` (the manifest machinery of
:mod:`aqakit.video.manifest`) with the settings and, per video, its frames and how many have a person.
The frames are the ones the backbone sees: decoded with the same :class:`DecodeOptions` (frame rate,
uniform sample, resize and centre crop) as ``aqakit extract``, so mask t belongs to frame t of the clips.

User masks in FineDiving-HM's layout (a folder per video holding one PNG per frame, nested like
FineDiving's frame folders) are read by the same :func:`read_masks`: each PNG is decoded like a frame
(same resize, crop and sampling) and a pixel brighter than half is the person.

MediaPipe is an optional extra (``pip install 'aqakit[masks]'``, version 0.10.14 of its legacy
``solutions.pose`` with ``enable_segmentation``; its models ship in the wheel, nothing is downloaded)
and is imported only when masks are made.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from aqakit.atomic import atomic_write, remove_partials
from aqakit.errors import AqakitError, ConfigError, DataError
from aqakit.locking import folder_lock
from aqakit.video.decode import DecodeOptions, frame_folders_below, iter_frames
from aqakit.video.isolated import DEFAULT_DECODE_TIMEOUT, isolated_frames
from aqakit.video.manifest import MANIFEST_FILE, new_manifest, read_manifest, write_manifest

#: MediaPipe's segmentation confidence above which a pixel is the person.
SEGMENTATION_THRESHOLD = 0.5
#: MediaPipe Pose's model size (0 lite, 1 full, 2 heavy); 1 is its default.
MODEL_COMPLEXITY = 1
#: What ``aqakit masks`` says when MediaPipe does not import.
INSTALL_HINT = "person masks need MediaPipe: pip install 'aqakit[masks]'"


@dataclass
class FrameMasks:
    """One video's person masks: ``masks`` uint8 (T, size, size) in {0, 1}, ``found`` bool (T,)."""

    masks: np.ndarray
    found: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.masks)


def decode_settings(options: DecodeOptions) -> dict[str, Any]:
    """The decoding that decides which frames a mask belongs to (the same keys as a feature manifest)."""
    return {"fps": options.fps, "crop_size": options.size, "short_side": options.short_side or options.size,
            "upright": options.upright, "folder_fps": options.folder_fps, "frames_per_video": options.frames}


def _import_mediapipe() -> Any:
    """MediaPipe, made to import beside protobuf >= 5.

    Compatibility shim: mediapipe 0.10.14 pins protobuf < 5 and calls ``GetPrototype`` on protobuf's
    ``MessageFactory`` and ``SymbolDatabase``, which protobuf 5 removed (``GetMessageClass`` replaces
    it); aqakit's environment keeps a newer protobuf for tensorboard. Where the method is missing it is
    restored as ``GetMessageClass`` before MediaPipe is imported; with protobuf < 5 nothing changes.
    """
    try:
        from google.protobuf import message_factory, symbol_database
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    for owner in (message_factory.MessageFactory, symbol_database.SymbolDatabase):
        if not hasattr(owner, "GetPrototype"):
            owner.GetPrototype = lambda self, descriptor: message_factory.GetMessageClass(descriptor)
    try:
        import mediapipe

        mediapipe.solutions.pose  # the legacy solution this module uses
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{INSTALL_HINT} ({type(exc).__name__}: {exc})") from None
    return mediapipe


def mediapipe_settings() -> dict[str, Any]:
    """The mask maker's part of a mask manifest."""
    mediapipe = _import_mediapipe()
    return {"masks": "mediapipe pose segmentation", "mediapipe": mediapipe.__version__,
            "model_complexity": MODEL_COMPLEXITY, "threshold": SEGMENTATION_THRESHOLD}


def person_masks(path: Path, options: DecodeOptions, *, decode_timeout: float = DEFAULT_DECODE_TIMEOUT) -> FrameMasks:
    """Masks of every frame of ``path`` as :func:`~aqakit.video.decode.iter_frames` gives them with
    ``options``: one MediaPipe Pose tracker over the video (frames in order), its segmentation above
    :data:`SEGMENTATION_THRESHOLD` where it found a pose, an all-zero mask and ``found`` False where not.
    The frames are decoded in a child process, as ``aqakit extract`` decodes them
    (:func:`~aqakit.video.isolated.isolated_frames`): a decoder that hangs for ``decode_timeout``
    seconds without a frame, or dies, fails this video only.

    Raises:
        ConfigError: MediaPipe missing; DataError: the video cannot be decoded, or its decoder hung or died.
    """
    pose_solution = _import_mediapipe().solutions.pose
    masks, found = [], []
    with pose_solution.Pose(static_image_mode=False, model_complexity=MODEL_COMPLEXITY, enable_segmentation=True) as pose:
        for frame in isolated_frames(path, options, decode_timeout):
            result = pose.process(frame)
            person = result.pose_landmarks is not None and result.segmentation_mask is not None
            found.append(person)
            masks.append((result.segmentation_mask > SEGMENTATION_THRESHOLD).astype(np.uint8) if person
                         else np.zeros(frame.shape[:2], np.uint8))
    return FrameMasks(np.stack(masks), np.asarray(found, bool), str(path))


def mask_path(masks_dir: Path, video_id: str) -> Path:
    """``<masks_dir>/<video_id>.npz``."""
    return Path(masks_dir) / f"{video_id}.npz"


def read_masks(masks_dir: Path, video_id: str, options: DecodeOptions) -> FrameMasks:
    """Video ``video_id``'s masks for frames decoded with ``options``: from an ``aqakit masks`` folder
    (its manifest must record the same decoding), or from a folder of PNG masks: ``masks_dir`` itself
    when it holds the images, else the folder below it whose path joined by ``_`` is the id
    (``<root>/<competition>/<clip>/`` is ``<competition>_<clip>``, as frame folders are found).

    Raises:
        ConfigError: the mask folder was made with other decoding; DataError: no masks for the video,
            an unreadable mask file or PNG.
    """
    masks_dir = Path(masks_dir)
    if not masks_dir.is_dir():
        raise DataError(f"{masks_dir}: mask folder not found (make one with aqakit masks, or give a folder of PNG masks)")
    if (masks_dir / MANIFEST_FILE).is_file():
        return _read_mask_file(masks_dir, video_id, options)
    folder = _png_folder(masks_dir, video_id)
    frames = [np.asarray(image).max(axis=-1) > 127 for image in iter_frames(folder, options)]
    masks = np.stack(frames).astype(np.uint8)
    return FrameMasks(masks, masks.reshape(len(masks), -1).any(axis=1), str(folder))


def describe_masks(masks_dir: Path) -> dict[str, Any]:
    """Where a mask folder's masks come from: its manifest's settings, or the user's PNGs."""
    manifest = read_manifest(Path(masks_dir), legacy={}) if (Path(masks_dir) / MANIFEST_FILE).is_file() else None
    return manifest["extraction"] if manifest else {"masks": "user PNG masks (a pixel above 127 is the person)"}


def _read_mask_file(masks_dir: Path, video_id: str, options: DecodeOptions) -> FrameMasks:
    manifest = read_manifest(masks_dir, legacy={})
    recorded = {key: manifest["extraction"].get(key) for key in decode_settings(options)}
    if recorded != decode_settings(options):
        difference = ", ".join(f"{key} {recorded[key]!r} vs {value!r}" for key, value in decode_settings(options).items()
                               if recorded[key] != value)
        raise ConfigError(f"{masks_dir}: masks made for frames decoded otherwise than these ({difference}); "
                          "make them again with the extraction's settings")
    path = mask_path(masks_dir, video_id)
    if video_id not in manifest["videos"] or not path.is_file():
        raise DataError(f"{masks_dir}: no masks for video '{video_id}' (expected {path}; run aqakit masks on it)")
    try:
        with np.load(path, allow_pickle=False) as stored:
            masks, found = stored["masks"], stored["found"]
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise DataError(f"{path}: not a readable mask file ({type(exc).__name__}: {exc})") from None
    if masks.ndim != 3 or found.shape != (len(masks),) or masks.shape[1:] != (options.size, options.size):
        raise DataError(f"{path}: masks {masks.shape} and found {found.shape}, expected (T, {options.size}, "
                        f"{options.size}) and (T,)")
    return FrameMasks(masks, found.astype(bool), str(path))


def _png_folder(root: Path, video_id: str) -> Path:
    if any(p.suffix.lower() == ".png" for p in root.iterdir()):
        return root
    folders = {"_".join(folder.relative_to(root).parts): folder for folder in frame_folders_below(root)}
    if video_id not in folders:
        raise DataError(f"{root}: no mask folder for video '{video_id}' (expected {root / video_id}/ holding one PNG "
                        "per frame, or a nested <competition>/<clip>/ folder)")
    return folders[video_id]


@dataclass
class MaskReport:
    """What :func:`mask_folder` did: per video the frames and frames with a person, skipped and failed ones."""

    written: dict[str, tuple[int, int]] = field(default_factory=dict)  # id -> (frames, frames with a person)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # video path -> one-line reason
    seconds: float = 0.0


def mask_folder(
    videos: Mapping[str, Path], out_dir: Path, options: DecodeOptions, *, force: bool = False,
    make: Callable[[Path, DecodeOptions], FrameMasks] = person_masks,
    settings: Mapping[str, Any] | None = None, on_video: Callable[[Path, str], None] | None = None,
) -> MaskReport:
    """Masks of every video (``{id: path}``, as :func:`~aqakit.video.extract.find_videos` gives) into
    ``out_dir``, resumable like extraction: videos already done are skipped, a killed run leaves no
    half file (each ``.npz`` is written beside and renamed), a second writer is refused, and a folder
    made with other settings is refused unless ``force``.

    Args:
        make: the mask maker (default MediaPipe's, :func:`person_masks`); ``settings`` describes it
            in the manifest (default :func:`mediapipe_settings`).
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir} is a file, not a folder; --out needs a folder for the masks")
    settings = {**(mediapipe_settings() if settings is None else settings), **decode_settings(options)}
    notify = on_video or (lambda path, status: None)
    report = MaskReport()
    with folder_lock(out_dir, "mask folder"):
        out_dir.mkdir(parents=True, exist_ok=True)
        remove_partials(out_dir)
        manifest = read_manifest(out_dir, legacy={})
        if manifest is not None and manifest["extraction"] != settings:
            if not force:
                raise ConfigError(f"{out_dir} holds masks made with other settings; use another --out folder or --force")
            manifest = None
        manifest = manifest or new_manifest(settings)
        for vid, path in videos.items():
            target = mask_path(out_dir, vid)
            if not force and vid in manifest["videos"] and vid not in manifest["writing"] and target.is_file():
                report.skipped.append(vid)
                notify(path, "skipped")
                continue
            notify(path, "masking")
            start = time.perf_counter()
            try:
                made = make(path, options)
            except AqakitError as exc:
                report.failed[str(path)] = manifest["failed"][vid] = str(exc)
                notify(path, f"failed: {exc}")
                continue
            report.seconds += time.perf_counter() - start
            manifest["writing"] = sorted({*manifest["writing"], vid})
            write_manifest(out_dir, manifest)
            with atomic_write(target, suffix=".npz") as partial:
                np.savez_compressed(partial, masks=made.masks, found=made.found)
            manifest["videos"][vid] = {"source": str(path), "frames": len(made), "with_person": int(made.found.sum())}
            manifest["writing"].remove(vid)
            manifest["failed"].pop(vid, None)
            write_manifest(out_dir, manifest)
            report.written[vid] = (len(made), int(made.found.sum()))
            notify(path, "written")
        write_manifest(out_dir, manifest)
    return report

