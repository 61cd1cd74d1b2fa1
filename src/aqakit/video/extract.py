"""Clip feature extraction: videos -> one ``<video_id>.npy`` (T, D) per video plus a manifest.

A video is a video file or a frame folder (:func:`find_videos` gathers them with their ids); its
clips are non-overlapping runs of ``clip_len`` decoded frames, encoded in batches. The output is
the feature-folder layout :mod:`aqakit.data` reads. :func:`extract_folder` is resumable and never
mixes features of two settings or two backbone revisions in one folder (docs/video.md, "Extraction").
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np
import torch

from aqakit.atomic import atomic_write, remove_partials
from aqakit.errors import AqakitError, ConfigError
from aqakit.locking import folder_lock
from aqakit.video.backbone import ClipBackbone
from aqakit.video.decode import IMAGE_SUFFIXES, DecodeOptions, frame_folders_below, is_image_file
from aqakit.video.foreground import ClipMasker, foreground_settings
from aqakit.video.isolated import DEFAULT_DECODE_TIMEOUT, isolated_timed_clips
from aqakit.video.manifest import new_manifest, read_manifest, write_manifest
from aqakit.video.masks import read_masks
from aqakit.video.registry import backbone_class


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
    """One video's features (T, D), each clip's start time, and optionally some clips' middle frames.

    Attributes:
        clip_seconds: (T,) time of each clip's first frame since the video's first frame.
        thumbnails: clip index -> that clip's middle frame, uint8 (size, size, 3).
    """

    features: np.ndarray
    timing: ExtractionTiming
    clip_seconds: list[float] = field(default_factory=list)
    thumbnails: dict[int, np.ndarray] = field(default_factory=dict)


class _EvenlySpaced:
    """Keeps at most ``limit`` items of a stream of unknown length: those at multiples of a stride
    that doubles whenever more would be kept, so memory stays bounded however long the stream is."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.stride = 1
        self.items: dict[int, np.ndarray] = {}

    def offer(self, index: int, make: Callable[[], np.ndarray]) -> None:
        """Keep ``make()`` as item ``index`` if ``index`` is on the current stride."""
        if self.limit < 1 or index % self.stride:
            return
        self.items[index] = make()
        while len(self.items) > self.limit:
            self.stride *= 2
            self.items = {i: item for i, item in self.items.items() if i % self.stride == 0}


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
    max_thumbnails: int = 0,
    on_clips: Callable[[int], None] | None = None,
    decode_timeout: float = DEFAULT_DECODE_TIMEOUT,
    masker: ClipMasker | None = None,
) -> VideoFeatures:
    """Decode ``path`` into clips (in a child process, :mod:`aqakit.video.isolated`) and encode them in
    batches of ``batch_size``.

    Args:
        max_thumbnails: also keep the middle frame of at most this many clips for reports, evenly
            spaced (every 2^k-th clip), copied so that no clip stays in memory.
        on_clips: called with the number of clips just encoded (for progress bars).
        decode_timeout: seconds the decoder may go without decoding a frame before it is stopped.
        masker: multiplies each clip's frames by their person masks first (the foreground stream,
            :mod:`aqakit.video.foreground`).

    Raises:
        DataError: the video cannot be decoded, is shorter than one clip (see :mod:`aqakit.video.decode`),
            stalls the decoder for ``decode_timeout`` seconds or crashes it; masks that are not its frames'.
    """
    if batch_size < 1:
        raise ConfigError(f"batch size must be positive, got {batch_size}")
    timing = ExtractionTiming()
    batch: list[np.ndarray] = []
    outputs: list[np.ndarray] = []
    clip_seconds: list[float] = []
    thumbnails = _EvenlySpaced(max_thumbnails)

    def encode() -> None:
        start = time.perf_counter()
        outputs.append(backbone.encode(np.stack(batch)))
        _synchronise(backbone.device)
        timing.model_seconds += time.perf_counter() - start
        if on_clips:
            on_clips(len(batch))
        batch.clear()

    for start, clip in _timed(isolated_timed_clips(path, clip_len, options, decode_timeout), timing):
        thumbnails.offer(len(clip_seconds), lambda: clip[len(clip) // 2].copy())
        clip_seconds.append(start)
        batch.append(clip if masker is None else masker(clip))
        if len(batch) == batch_size:
            encode()
    if batch:
        encode()
    if masker is not None:
        masker.check_complete(clip_len)
    features = np.concatenate(outputs).astype(np.float32)
    timing.clips = len(features)
    timing.frames = len(features) * clip_len
    return VideoFeatures(features=features, timing=timing, clip_seconds=clip_seconds, thumbnails=thumbnails.items)


def extraction_settings(backbone: ClipBackbone, clip_len: int, options: DecodeOptions) -> dict[str, Any]:
    """The ``extraction`` part of a manifest: everything that changes the features."""
    return {
        **backbone.describe(),
        "clip_len": clip_len,
        "fps": options.fps,
        "crop_size": options.size,
        "short_side": options.short_side or options.size,
        "upright": options.upright,
        "folder_fps": options.folder_fps,
        "frames_per_video": options.frames,
        "clips": "non-overlapping; a tail shorter than clip_len is dropped",
    }


def video_id(path: Path) -> str:
    """A video's id in the feature folder: a file's name without the extension, a frame folder's name
    (without the extension when it is named like a video file)."""
    path = Path(path)
    return path.name if path.is_dir() and path.suffix.lower() not in VIDEO_SUFFIXES else path.stem


#: Files a folder of videos is searched for.
VIDEO_SUFFIXES = frozenset({
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".wmv", ".asf", ".flv", ".gif",
    ".ts", ".mts", ".m2ts", ".3gp", ".3g2", ".ogv", ".mxf", ".vob", ".y4m",
})


def find_videos(paths: Iterable[Path]) -> dict[str, Path]:
    """The videos named by ``paths``, by id, for :func:`extract_folder`.

    - a file is one video, id :func:`video_id`;
    - a folder holding video files gives each of them (directly inside it), and everything else
      named like one (a broken link, a link loop, a named pipe, a folder), which then fails with the
      reason rather than being skipped unseen;
    - a frame folder (image files directly inside) is one video, id its name;
    - any other folder gives every frame folder below it, id its path below that folder joined by
      ``_``: ``frames/01_01/`` is ``01_01`` (MTL-AQA), ``FineDiving/<competition>/<clip>/`` is
      ``<competition>_<clip>`` (FineDiving), the ids their aqakit adapters expect by default.

    Raises:
        ConfigError: a folder with none of these, or two videos with one id.
    """
    found: list[tuple[str, Path]] = []
    for path in map(Path, paths):
        if not path.is_dir():
            found.append((video_id(path), path))
            continue
        entries = sorted(path.iterdir())
        files = [p for p in entries if p.is_file()]
        videos = [p for p in entries if p.suffix.lower() in VIDEO_SUFFIXES]
        if videos:
            found += [(video_id(p), p) for p in videos]
        elif any(map(is_image_file, files)):
            found.append((path.name, path))
        else:
            folders = frame_folders_below(path)
            if not folders:
                raise ConfigError(
                    f"{path}: no video files ({', '.join(sorted(VIDEO_SUFFIXES))}) and no frame folders "
                    f"(folders of {', '.join(sorted(IMAGE_SUFFIXES))} files) in it or below it"
                )
            found += [("_".join(folder.relative_to(path).parts), folder) for folder in folders]
    return _by_id(found)


def _by_id(videos: Iterable[tuple[str, Path]]) -> dict[str, Path]:
    """``{id: path}``; ConfigError when two videos share an id."""
    ids: dict[str, Path] = {}
    for vid, path in videos:
        if vid in ids:
            raise ConfigError(f"{path} and {ids[vid]} would both be written as {vid}.npy")
        ids[vid] = path
    return ids


@dataclass
class ExtractionReport:
    """What :func:`extract_folder` did: per-video outcome and the total timing."""

    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # video path -> one-line reason
    timing: ExtractionTiming = field(default_factory=ExtractionTiming)


#: What a :data:`VideoRunner` yields per video: its id and its features, or why it failed.
VideoOutcome = tuple[str, VideoFeatures | AqakitError]

#: Extracts the videos it is given (``{id: path}``), calling ``started(id)`` as each one starts, and
#: yields each one's :data:`VideoOutcome` as it finishes, in any order; extraction of further
#: videos may go on while the caller records one. :func:`one_at_a_time` is the single-process
#: runner; :mod:`aqakit.video.distributed` gives one on Ray workers.
VideoRunner = Callable[[Mapping[str, Path], Callable[[str], None]], Iterator[VideoOutcome]]


def extract_stream_video(
    vid: str, path: Path, backbone: ClipBackbone, clip_len: int, options: DecodeOptions, batch_size: int,
    masks_dir: Path | None, *, on_clips: Callable[[int], None] | None = None,
    decode_timeout: float = DEFAULT_DECODE_TIMEOUT,
) -> VideoFeatures:
    """:func:`extract_video` of video ``vid``: its whole frames, or with ``masks_dir`` its frames
    times its person masks from that folder (the foreground stream)."""
    masker = None if masks_dir is None else ClipMasker(read_masks(masks_dir, vid, options), str(path))
    return extract_video(path, backbone, clip_len, options, batch_size, on_clips=on_clips,
                         decode_timeout=decode_timeout, masker=masker)


def one_at_a_time(
    backbone: ClipBackbone, clip_len: int, options: DecodeOptions, batch_size: int = 8, *,
    masks_dir: Path | None = None, on_clips: Callable[[int], None] | None = None,
    decode_timeout: float = DEFAULT_DECODE_TIMEOUT,
) -> VideoRunner:
    """The runner that extracts the videos one after another in this process
    (:func:`extract_stream_video`); the next video starts once the caller has recorded the previous one."""

    def run(videos: Mapping[str, Path], started: Callable[[str], None]) -> Iterator[VideoOutcome]:
        for vid, path in videos.items():
            started(vid)
            try:
                yield vid, extract_stream_video(vid, path, backbone, clip_len, options, batch_size, masks_dir,
                                                on_clips=on_clips, decode_timeout=decode_timeout)
            except AqakitError as exc:
                yield vid, exc

    return run


def extract_folder(
    videos: Iterable[Path] | Mapping[str, Path],
    backbone: ClipBackbone,
    out_dir: Path,
    clip_len: int | None = None,
    options: DecodeOptions = DecodeOptions(),
    batch_size: int = 8,
    *,
    force: bool = False,
    on_video: Callable[[Path, str], None] | None = None,
    on_clips: Callable[[int], None] | None = None,
    decode_timeout: float = DEFAULT_DECODE_TIMEOUT,
    masks_dir: Path | None = None,
    runner: VideoRunner | None = None,
) -> ExtractionReport:
    """Extract features of every video into ``out_dir`` (created); failures are collected, not raised,
    and recorded in the manifest's ``failed`` entry until the video is extracted.

    Safe to kill at any moment: rerunning the same call finishes the folder (docs/reliability.md).
    This process alone writes the folder (feature files and manifest), whichever runner computes.

    Args:
        videos: video files and frame folders, or ``{id: path}`` (as :func:`find_videos` gives);
            a plain list takes each id from :func:`video_id`.
        clip_len: frames per clip (default: the backbone's).
        force: re-extract videos already done and replace files the manifest does not know.
        on_video: called with (video path, status) as each video starts (``"extracting"``) or ends
            (``"written"``, ``"skipped"``, ``"failed: <reason>"``).
        decode_timeout: seconds the decoder may go without decoding a frame (see :func:`extract_video`).
        masks_dir: write the foreground stream instead: each video's frames times its person masks
            from this folder (:func:`~aqakit.video.masks.read_masks`); a video without masks, with
            masks of another frame count or with no person in any frame fails.
        runner: computes the features of the videos to extract (default: :func:`one_at_a_time` with
            ``backbone``, ``clip_len``, ``options``, ``batch_size``, ``masks_dir``, ``on_clips`` and
            ``decode_timeout``; a runner given must be made with the same ``masks_dir``);
            ``backbone``, ``clip_len``, ``options`` and ``masks_dir`` still make the manifest's settings.

    Raises:
        ConfigError: two videos share an id, or ``out_dir`` holds features made with other settings
            or another revision of the backbone (without ``force``).
    """
    if isinstance(videos, Mapping):
        ids = {vid: Path(path) for vid, path in videos.items()}
    else:
        ids = _by_id((video_id(Path(path)), Path(path)) for path in videos)
    clip_len = clip_len or backbone.default_clip_len
    runner = runner or one_at_a_time(backbone, clip_len, options, batch_size, masks_dir=masks_dir,
                                     on_clips=on_clips, decode_timeout=decode_timeout)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir} is a file, not a folder; --out needs a folder for the features")
    with folder_lock(out_dir, "feature folder"):  # a second extraction into it is refused
        out_dir.mkdir(parents=True, exist_ok=True)
        remove_partials(out_dir)  # left by a killed extraction; nobody else writes here while we hold the lock
        settings = extraction_settings(backbone, clip_len, options)
        if masks_dir is not None:
            settings["foreground"] = foreground_settings(masks_dir)
        manifest = read_manifest(out_dir)
        settings_changed = manifest is not None and manifest["extraction"] != settings
        if settings_changed:
            _check_settings_change(out_dir, manifest, settings, ids, force)
        if manifest is None or settings_changed:
            manifest = new_manifest(settings)
        report = ExtractionReport()
        notify = on_video or (lambda path, status: None)

        def fail(vid: str, path: Path, reason: str) -> None:
            report.failed[str(path)] = reason
            manifest["failed"][vid] = {"source": str(path), "reason": reason}
            notify(path, f"failed: {reason}")

        todo: dict[str, Path] = {}
        for vid, path in ids.items():
            target = out_dir / f"{vid}.npy"
            recorded = manifest["videos"].get(vid)
            interrupted = vid in manifest["writing"]  # a killed run was replacing it: ours, but not to be trusted
            if not force and not interrupted and target.is_file():
                if recorded is not None and _is_complete(target, recorded["clips"]):
                    report.skipped.append(vid)
                    notify(path, "skipped")
                    continue
                if recorded is None:
                    fail(vid, path, f"{target} exists but {out_dir / 'manifest.json'} does not record it (a file of your "
                                    "own, or features made with other settings); pass --force to replace it")
                    continue
            todo[vid] = path
        for vid, result in runner(todo, lambda vid: notify(todo[vid], "extracting")):
            path, target = todo[vid], out_dir / f"{vid}.npy"
            if isinstance(result, AqakitError):
                reason = str(result)
                if settings_changed and target.is_file():
                    reason += f"; {target} still holds its features made with the old settings"
                fail(vid, path, reason)
                continue
            manifest["writing"] = sorted({*manifest["writing"], vid})
            write_manifest(out_dir, manifest)
            with atomic_write(target, suffix=".npy") as partial:
                np.save(partial, result.features)
            manifest["videos"][vid] = {"source": str(path), "clips": result.timing.clips, "frames": result.timing.frames}
            manifest["writing"].remove(vid)
            manifest["failed"].pop(vid, None)
            write_manifest(out_dir, manifest)
            report.written.append(vid)
            report.timing.add(result.timing)
            notify(path, "written")
        write_manifest(out_dir, manifest)
        return report


def _check_settings_change(
    out_dir: Path, manifest: dict[str, Any], settings: dict[str, Any], ids: dict[str, Path], force: bool
) -> None:
    """ConfigError unless ``force`` re-extracts every video the folder holds with its old settings:
    a folder's features must all be made one way, and the manifest describes only one."""
    stale = backbone_class(settings["backbone"]).stale_features(manifest["extraction"]) \
        if manifest["extraction"].get("backbone") == settings["backbone"] else None
    if stale and not force:
        raise ConfigError(
            f"{out_dir} holds {stale}, which this aqakit computes; pass --force to re-extract every video in it "
            "(the old arrays are replaced), or use another --out folder"
        )
    if not force:
        raise ConfigError(
            f"{out_dir} holds features extracted with other settings ({_difference(manifest['extraction'], settings)}); "
            "use another --out folder or --force to re-extract"
        )
    left = sorted(vid for vid in manifest["videos"] if vid not in ids and (out_dir / f"{vid}.npy").is_file())
    if left:
        shown = ", ".join(f"{vid}.npy" for vid in left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
        raise ConfigError(
            f"{out_dir}: --force with other settings ({_difference(manifest['extraction'], settings)}) would leave "
            f"{len(left)} arrays made with the old settings beside the new ones ({shown}); pass their videos too, "
            "or use another --out folder"
        )


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
