"""Clip feature extraction: videos -> one ``<video_id>.npy`` (T, D) per video plus a manifest.

The output folder is the standard feature-folder layout that :mod:`aqakit.data` reads. Clips are
non-overlapping runs of ``clip_len`` frames (a shorter tail is dropped), encoded in batches.

Safe to re-run: a video whose ``.npy`` exists and is recorded complete in the manifest with the
same settings is skipped; ``force`` re-extracts. A ``.npy`` the manifest does not know (a user's
own file) is never replaced unless ``force`` is given. Files are written under a temporary name
and renamed, so an interrupted run never leaves a half-written array that looks complete.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch

import aqakit
from aqakit.errors import AqakitError, ConfigError
from aqakit.video.backbones import ClipBackbone
from aqakit.video.decode import DecodeOptions, iter_clips
from aqakit.video.manifest import read_manifest, write_manifest


@dataclass
class ExtractionTiming:
    """Where extraction time went: decoding (incl. resize/crop) versus the network."""

    clips: int = 0
    frames: int = 0
    decode_seconds: float = 0.0
    model_seconds: float = 0.0

    def add(self, other: "ExtractionTiming") -> None:
        self.clips += other.clips
        self.frames += other.frames
        self.decode_seconds += other.decode_seconds
        self.model_seconds += other.model_seconds


@dataclass
class VideoFeatures:
    """One video's features (T, D) with the clips they came from, optionally kept as thumbnails."""

    features: np.ndarray
    timing: ExtractionTiming
    thumbnails: list[np.ndarray] = field(default_factory=list)


def _timed(iterator: Iterator[np.ndarray], timing: ExtractionTiming) -> Iterator[np.ndarray]:
    """Pass items through, adding the time spent producing them to ``timing.decode_seconds``."""
    while True:
        start = time.perf_counter()
        try:
            item = next(iterator)
        except StopIteration:
            timing.decode_seconds += time.perf_counter() - start
            return
        timing.decode_seconds += time.perf_counter() - start
        yield item


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def extract_video(
    path: Path,
    backbone: ClipBackbone,
    clip_len: int,
    options: DecodeOptions,
    batch_size: int = 8,
    *,
    keep_thumbnails: bool = False,
    on_clips: Callable[[int], None] | None = None,
) -> VideoFeatures:
    """Decode ``path`` into clips and encode them in batches of ``batch_size``.

    Args:
        keep_thumbnails: also keep each clip's middle frame (uint8 (size, size, 3)) for reports.
        on_clips: called with the number of clips just encoded (for progress bars).

    Raises:
        DataError: the video cannot be decoded or is shorter than one clip (see :mod:`aqakit.video.decode`).
    """
    if batch_size < 1:
        raise ConfigError(f"batch size must be positive, got {batch_size}")
    timing = ExtractionTiming()
    batch: list[np.ndarray] = []
    outputs: list[np.ndarray] = []
    thumbnails: list[np.ndarray] = []

    def encode() -> None:
        start = time.perf_counter()
        outputs.append(backbone.encode(np.stack(batch)))
        _synchronise(backbone.device)
        timing.model_seconds += time.perf_counter() - start
        if on_clips:
            on_clips(len(batch))
        batch.clear()

    for clip in _timed(iter_clips(path, clip_len, options), timing):
        batch.append(clip)
        if keep_thumbnails:
            thumbnails.append(clip[len(clip) // 2])
        if len(batch) == batch_size:
            encode()
    if batch:
        encode()
    features = np.concatenate(outputs).astype(np.float32)
    timing.clips = len(features)
    timing.frames = len(features) * clip_len
    return VideoFeatures(features=features, timing=timing, thumbnails=thumbnails)


def extraction_settings(backbone: ClipBackbone, clip_len: int, options: DecodeOptions) -> dict[str, Any]:
    """The ``extraction`` part of a manifest: everything that changes the features."""
    return {
        **backbone.describe(),
        "clip_len": clip_len,
        "fps": options.fps,
        "crop_size": options.size,
        "short_side": options.short_side or options.size,
        "clips": "non-overlapping; a tail shorter than clip_len is dropped",
    }


def video_id(path: Path) -> str:
    """A video's id in the feature folder: its file name without the extension."""
    return Path(path).stem


@dataclass
class ExtractionReport:
    """What :func:`extract_folder` did: per-video outcome and the total timing."""

    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # video path -> one-line reason
    timing: ExtractionTiming = field(default_factory=ExtractionTiming)


def extract_folder(
    videos: Iterable[Path],
    backbone: ClipBackbone,
    out_dir: Path,
    clip_len: int | None = None,
    options: DecodeOptions = DecodeOptions(),
    batch_size: int = 8,
    *,
    force: bool = False,
    on_video: Callable[[Path, str], None] | None = None,
    on_clips: Callable[[int], None] | None = None,
) -> ExtractionReport:
    """Extract features of every video into ``out_dir`` (created); failures are collected, not raised.

    Args:
        clip_len: frames per clip (default: the backbone's).
        force: re-extract videos already done and replace files the manifest does not know.
        on_video: called with (video path, status) as each video starts (``"extracting"``) or ends
            (``"written"``, ``"skipped"``, ``"failed: <reason>"``).

    Raises:
        ConfigError: two videos share an id, or ``out_dir`` holds features made with other settings
        (without ``force``).
    """
    videos = [Path(v) for v in videos]
    clip_len = clip_len or backbone.default_clip_len
    ids: dict[str, Path] = {}
    for path in videos:
        if video_id(path) in ids:
            raise ConfigError(f"{path} and {ids[video_id(path)]} would both be written as {video_id(path)}.npy")
        ids[video_id(path)] = path
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = extraction_settings(backbone, clip_len, options)
    manifest = read_manifest(out_dir)
    if manifest is not None and manifest["extraction"] != settings and not force:
        raise ConfigError(
            f"{out_dir} holds features extracted with other settings ({_difference(manifest['extraction'], settings)}); "
            "use another --out folder or --force to re-extract"
        )
    if manifest is None or manifest["extraction"] != settings:
        manifest = {"aqakit_version": aqakit.__version__, "extraction": settings, "videos": {}}
    report = ExtractionReport()
    notify = on_video or (lambda path, status: None)
    for vid, path in ids.items():
        target = out_dir / f"{vid}.npy"
        recorded = manifest["videos"].get(vid)
        if not force and target.is_file():
            if recorded is not None and _is_complete(target, recorded["clips"]):
                report.skipped.append(vid)
                notify(path, "skipped")
                continue
            if recorded is None:
                reason = f"{target} exists and was not written by aqakit extract; pass --force to replace it"
                report.failed[str(path)] = reason
                notify(path, f"failed: {reason}")
                continue
        notify(path, "extracting")
        try:
            result = extract_video(path, backbone, clip_len, options, batch_size, on_clips=on_clips)
        except AqakitError as exc:
            report.failed[str(path)] = str(exc)
            notify(path, f"failed: {exc}")
            continue
        partial = target.with_name(target.name + ".partial.npy")
        np.save(partial, result.features)
        os.replace(partial, target)
        manifest["videos"][vid] = {"source": str(path), "clips": result.timing.clips, "frames": result.timing.frames}
        write_manifest(out_dir, manifest)
        report.written.append(vid)
        report.timing.add(result.timing)
        notify(path, "written")
    if not manifest["videos"]:
        write_manifest(out_dir, manifest)
    return report


def _is_complete(path: Path, clips: int) -> bool:
    """Whether ``path`` is a readable (clips, D) array (header check, no full read)."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError):
        return False
    return array.ndim == 2 and array.shape[0] == clips


def _difference(saved: dict[str, Any], current: dict[str, Any]) -> str:
    keys = [key for key in current if saved.get(key) != current[key]]
    return ", ".join(f"{key} {saved.get(key)!r} vs {current[key]!r}" for key in keys)
