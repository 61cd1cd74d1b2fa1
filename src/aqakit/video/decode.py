"""Streaming video decoding with PyAV: frames resampled to a target rate (or sampled uniformly),
turned upright, resized and centre-cropped, grouped into clips.

A video is any file FFmpeg reads, or a frame folder (one image per frame). Frames are decoded one
at a time, so a long video never sits in memory. Every failure is a
:class:`~aqakit.errors.DataError` naming the file. How each step works, and why: docs/video.md.
"""

from __future__ import annotations

import errno
import heapq
import math
import os
import re
import stat
from collections import Counter, deque
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from aqakit.errors import ConfigError, DataError, one_line_reason

#: A decoded video whose last frame ends more than this fraction before the container's
#: declared duration is reported as truncated.
TRUNCATION_TOLERANCE = 0.1

#: Decoded frames whose timestamps are sorted together (see the module's docstring): more than
#: the farthest a B-frame's timestamp lands from its place (a few frames for common encoders).
REORDER_WINDOW = 8


def _av():
    """Import PyAV, or explain how to install it."""
    try:
        import av
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConfigError("video decoding needs PyAV: pip install 'aqakit[video]'") from None
    return av


@dataclass(frozen=True)
class DecodeOptions:
    """How frames are prepared for a backbone.

    Attributes:
        fps: target frame rate (frames are picked by timestamp); ``None`` keeps the source frames.
        size: side of the square centre crop, in pixels.
        short_side: the short side is resized to this before cropping; ``None`` means ``size``
            (the whole short side is kept). DeepMind's I3D preprocessing, and MUSDL, CoRe and TPT,
            use 256 then a 224 crop.
        upright: apply the container's display rotation and pixel aspect ratio (as players do);
            ``False`` uses the stored pixels as they are, as extraction did before this option
            (feature manifests without an ``upright`` entry).
        folder_fps: the frame rate of a frame folder (a folder of images, one per frame), whose
            files carry no timestamps; videos use their own.
        frames: take this many frames spread uniformly over the video (after ``fps`` resampling,
            when both are given), repeating frames evenly when it has fewer; ``None`` takes all.
    """

    fps: float | None = None
    size: int = 224
    short_side: int | None = None
    upright: bool = True
    folder_fps: float = 25.0
    frames: int | None = None

    def __post_init__(self) -> None:
        if self.fps is not None and not (self.fps > 0 and math.isfinite(self.fps)):
            raise ConfigError(f"fps must be a positive number, got {self.fps}")
        if not (self.folder_fps > 0 and math.isfinite(self.folder_fps)):
            raise ConfigError(f"the frame rate of frame folders must be a positive number, got {self.folder_fps}")
        if self.size < 1:
            raise ConfigError(f"crop size must be positive, got {self.size}")
        if self.short_side is not None and self.short_side < self.size:
            raise ConfigError(f"short side {self.short_side} is smaller than the crop size {self.size}")
        if self.frames is not None and self.frames < 1:
            raise ConfigError(f"the number of frames to sample must be positive, got {self.frames}")


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video's first video stream (before decoding).

    ``width`` and ``height`` are the stored pixels; ``pixel_aspect`` is the width of a pixel over its
    height as displayed (1 for square pixels).
    """

    path: Path
    width: int
    height: int
    codec: str
    average_fps: float | None
    duration_seconds: float | None
    declared_frames: int | None
    pixel_aspect: Fraction = Fraction(1)


def probe(path: Path) -> VideoInfo:
    """Read a video's header; DataError when it is missing, not a video or has no video stream."""
    with _open(Path(path)) as (container, stream):
        return _info(Path(path), container, stream)


def _info(path: Path, container, stream) -> VideoInfo:
    rate = stream.average_rate or stream.guessed_rate
    return VideoInfo(
        path=path, width=stream.codec_context.width, height=stream.codec_context.height,
        codec=stream.codec_context.name, average_fps=float(rate) if rate else None,
        duration_seconds=_stream_duration(container, stream), declared_frames=stream.frames or None,
        pixel_aspect=_pixel_aspect(stream),
    )


def _stream_duration(container, stream) -> float | None:
    """The video stream's own duration: its header field, else the ``DURATION`` tag Matroska/WebM
    muxers write per stream, else the container's (which covers the longest stream, audio included)."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    tagged = _parse_clock(stream.metadata.get("DURATION") or stream.metadata.get("duration"))
    if tagged is not None:
        return tagged
    return container.duration / 1_000_000 if container.duration is not None else None


def _parse_clock(text: str | None) -> float | None:
    """Seconds of an ``HH:MM:SS.fraction`` tag; None when absent or not in that form."""
    parts = (text or "").strip().split(":")
    if len(parts) != 3:
        return None
    try:
        hours, minutes, seconds = int(parts[0]), int(parts[1]), float(parts[2])
    except ValueError:
        return None
    return hours * 3600 + minutes * 60 + seconds


def _pixel_aspect(stream) -> Fraction:
    """Displayed width over height of one pixel: the container's value, else the codec's, else 1."""
    for ratio in (stream.sample_aspect_ratio, stream.codec_context.sample_aspect_ratio):
        if ratio is not None and ratio > 0:
            return Fraction(ratio)
    return Fraction(1)


#: What a path that is not a regular file is, by ``stat`` file type (for :func:`check_readable_file`).
_FILE_KINDS = {
    stat.S_IFDIR: "a folder", stat.S_IFIFO: "a named pipe (FIFO)", stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
}


def check_readable_file(path: Path, what: str = "video file") -> None:
    """DataError naming ``path`` (a ``what``) unless it is a regular, non-empty file this process can read.

    Checked before FFmpeg opens it: a named pipe would block the open until a writer appears, and
    a broken link, a link loop or a folder would otherwise read as "not a video".
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if path.is_symlink():
            raise DataError(f"{path}: a broken symbolic link (to {os.readlink(path)}), not a {what}") from None
        raise DataError(f"{path}: {what} not found") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DataError(f"{path}: a symbolic link loop, not a {what}") from None
        raise DataError(f"{path}: cannot be read ({one_line_reason(exc)})") from None
    if not stat.S_ISREG(mode):
        raise DataError(f"{path}: {_FILE_KINDS.get(stat.S_IFMT(mode), 'not a regular file')}, not a {what}")
    try:
        with path.open("rb") as handle:
            empty = handle.read(1) == b""
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({one_line_reason(exc)})") from None
    if empty:
        raise DataError(f"{path}: empty file, not a {what}")


class _open:
    """Context manager yielding (container, first video stream) with one-line errors."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.container = None

    def __enter__(self):
        av = _av()
        check_readable_file(self.path)
        try:
            self.container = av.open(str(self.path), mode="r")
        except av.EOFError:
            raise DataError(f"{self.path}: the video has zero frames (the file ends before any frame)") from None
        except av.FFmpegError as exc:
            raise DataError(f"{self.path}: not a video, or a truncated one (FFmpeg: {one_line_reason(exc)})") from None
        if not self.container.streams.video:
            self.container.close()
            raise DataError(f"{self.path}: has no video stream")
        stream = self.container.streams.video[0]
        stream.thread_type = "AUTO"
        return self.container, stream

    def __exit__(self, *exc) -> None:
        if self.container is not None:
            self.container.close()


def _resized_shape(width: float, height: float, short_side: int) -> tuple[int, int]:
    scale = short_side / min(width, height)
    return max(short_side, round(width * scale)), max(short_side, round(height * scale))


def iter_frames(path: Path, options: DecodeOptions = DecodeOptions()) -> Iterator[np.ndarray]:
    """Yield the video's frames as uint8 RGB arrays (size, size, 3), resampled and centre-cropped.

    Raises:
        DataError: the file is missing, not a video, truncated/corrupt, or has zero frames.
    """
    for _, image in iter_timed_frames(path, options):
        yield image


def iter_timed_frames(
    path: Path, options: DecodeOptions = DecodeOptions(), *, on_frame: Callable[[], None] | None = None
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(seconds, frame)``: each frame of :func:`iter_frames` with its time since the first frame
    (``k / fps`` when resampling, else the frame's own timestamp, so variable rates keep true times).

    ``path`` may also be a frame folder (see :func:`frame_folder_images`): its images are frames
    ``1 / options.folder_fps`` apart. With ``options.frames`` the frames are the uniform sample of
    the module's docstring, each with the time of the frame it repeats. ``on_frame`` is called
    after each source frame is decoded (or, in a frame folder, reached), in every pass: a watchdog's
    sign of progress (:mod:`aqakit.video.isolated`).

    Raises:
        DataError: as :func:`iter_frames`.
    """
    path = Path(path)
    on_frame = on_frame or _no_progress
    pictures = _timed_pictures(path, options, on_frame)
    if options.frames is not None:
        total = sum(1 for _ in _timed_pictures(path, options, on_frame))  # first pass: count, nothing resized
        pictures = _uniform_sample(pictures, total, options.frames)
    for time, picture in pictures:
        yield time, picture()


#: A frame not yet resized and cropped: calling it gives the uint8 (size, size, 3) image.
Picture = Callable[[], np.ndarray]


def _no_progress() -> None:
    """The ``on_frame`` of a decoding nobody watches."""


def _timed_pictures(path: Path, options: DecodeOptions, on_frame: Callable[[], None]) -> Iterator[tuple[float, Picture]]:
    """The output frames of a video file or frame folder, resampled by ``options.fps``, not yet prepared;
    ``on_frame()`` after each source frame."""
    return _folder_frames(path, options, on_frame) if path.is_dir() else _video_frames(path, options, on_frame)


def _once(make: Picture) -> Picture:
    """``make``, computed at most once (a frame repeated by resampling is resized once)."""
    image: list[np.ndarray] = []

    def picture() -> np.ndarray:
        if not image:
            image.append(make())
        return image[0]

    return picture


def uniform_indices(total: int, count: int) -> list[int]:
    """The ``count`` frame indices spread uniformly over ``total`` frames: ``round(i * (total - 1) /
    (count - 1))`` (halves up), so the first and the last frame are included; frames repeat evenly
    when ``total < count``; ``[0]`` when ``count`` is 1."""
    if count == 1:
        return [0]
    return [(2 * i * (total - 1) + count - 1) // (2 * (count - 1)) for i in range(count)]


def _uniform_sample(
    pictures: Iterator[tuple[float, Picture]], total: int, count: int
) -> Iterator[tuple[float, Picture]]:
    """The frames of ``pictures`` (``total`` of them) at :func:`uniform_indices`, each as often as chosen."""
    repeats = Counter(uniform_indices(total, count))
    for index, item in enumerate(pictures):
        for _ in range(repeats.get(index, 0)):
            yield item


class _Resampler:
    """Turns decoded ``(time, picture)`` pairs, in display order, into output frames.

    With ``fps`` it emits the picture on screen at each time ``t0 + k / fps`` (``t0``: the first
    frame's time), repeating or skipping frames; timestamps within ``tolerance`` of an output
    time count as on time. Without ``fps`` every frame passes, timed from the first.
    """

    def __init__(self, fps: float | None, tolerance: float) -> None:
        self.step = 1.0 / fps if fps else None
        self.tolerance = tolerance
        self.emitted = 0
        self.first_time: float | None = None
        self.previous: tuple[float, Picture] | None = None  # the frame on screen before the current one

    def feed(self, time: float, picture: Picture) -> Iterator[tuple[float, Picture]]:
        """The output frames that end before ``picture`` (decoded at ``time``) comes on screen."""
        self.first_time = time if self.first_time is None else self.first_time
        if self.step is None:
            self.emitted += 1
            yield time - self.first_time, picture
            return
        if self.previous is not None:
            yield from self._until(time - self.tolerance)
        self.previous = (time, picture)

    def finish(self, period: float) -> Iterator[tuple[float, Picture]]:
        """The output frames of the last picture, which stays on screen for one frame ``period``."""
        if self.previous is not None and self.step is not None:
            yield from self._until(self.previous[0] + period - self.tolerance)

    def _until(self, end: float) -> Iterator[tuple[float, Picture]]:
        """Repeat the previous picture for every output time ``t0 + k * step`` (k >= emitted) before ``end``."""
        assert self.previous is not None and self.first_time is not None and self.step is not None
        while self.first_time + self.emitted * self.step < end:
            yield self.emitted * self.step, self.previous[1]
            self.emitted += 1


def _presentation_order(frames: Iterable[tuple[float | None, Any]], nominal: float) -> Iterator[tuple[float, Any]]:
    """``(time, frame)`` with the timestamps of each :data:`REORDER_WINDOW` of frames sorted, the frames
    kept in the order given (a decoder's output order is the display order; see the module's docstring).

    A frame without a timestamp is timed ``nominal`` after the latest timestamp so far.
    """
    waiting: deque[Any] = deque()
    times: list[float] = []  # a heap
    latest: float | None = None
    for time, frame in frames:
        if time is None:
            time = latest + nominal if latest is not None else 0.0
        latest = time if latest is None else max(latest, time)
        heapq.heappush(times, time)
        waiting.append(frame)
        if len(waiting) == REORDER_WINDOW:
            yield heapq.heappop(times), waiting.popleft()
    while waiting:
        yield heapq.heappop(times), waiting.popleft()


def _video_frames(path: Path, options: DecodeOptions, on_frame: Callable[[], None]) -> Iterator[tuple[float, Picture]]:
    """:func:`_timed_pictures` of a video file."""
    av = _av()
    short = options.short_side or options.size
    decoded = 0
    with _open(path) as (container, stream):
        info = _info(path, container, stream)
        pixel_aspect = info.pixel_aspect if options.upright else Fraction(1)
        time_base = stream.time_base or Fraction(1, 1)
        # timestamps are rounded to the container's time base
        resampler = _Resampler(options.fps, tolerance=float(time_base) / 2 + 1e-9)
        nominal = 1.0 / info.average_fps if info.average_fps else (resampler.step or 0.04)
        last_time = 0.0

        def decode() -> Iterator[tuple[float | None, Any]]:
            nonlocal decoded
            for frame in container.decode(stream):
                decoded += 1
                on_frame()
                yield (float(frame.pts * time_base) if frame.pts is not None else None), frame

        def picture(frame) -> Picture:
            turns = _quarter_turns(frame) if options.upright else 0
            return _once(lambda: _prepare(frame, short, options.size, pixel_aspect, turns))

        try:
            for time, frame in _presentation_order(decode(), nominal):
                last_time = max(last_time, time)
                yield from resampler.feed(time, picture(frame))
        except av.FFmpegError as exc:
            raise DataError(
                f"{path}: truncated or corrupt video ({one_line_reason(exc)}) after {resampler.emitted} frames"
            ) from None
        yield from resampler.finish(nominal)
        if resampler.emitted == 0:
            raise DataError(f"{path}: the video has zero frames")
        _check_complete(path, info, last_time + nominal, decoded)


#: Image files that make up a frame folder (the layout MTL-AQA and FineDiving release).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


def is_image_file(name: str | Path) -> bool:
    """Whether a file name has one of the :data:`IMAGE_SUFFIXES` (a frame of a frame folder)."""
    return Path(name).suffix.lower() in IMAGE_SUFFIXES


def frame_folder_images(folder: Path) -> list[Path]:
    """The frames of a frame folder: its image files, in natural order (``img_9`` before ``img_10``).

    Raises:
        DataError: the folder holds no image files.
    """
    images = [p for p in Path(folder).iterdir() if is_image_file(p)]  # a link or pipe so named fails when read
    if not images:
        raise DataError(f"{folder}: a folder with no image files ({', '.join(sorted(IMAGE_SUFFIXES))}), not a frame folder")
    return sorted(images, key=_natural_key)


def frame_folders_below(root: Path) -> list[Path]:
    """Folders below ``root`` that hold image files, in sorted order (not searched further down)."""
    folders: list[Path] = []
    for folder, subfolders, files in os.walk(root):
        subfolders.sort()
        if Path(folder) != root and any(map(is_image_file, files)):
            folders.append(Path(folder))
            subfolders.clear()
    return folders


def _natural_key(path: Path) -> list[tuple[int, int | str]]:
    """Sort key comparing runs of digits as numbers: ``frame2.jpg`` < ``frame10.jpg``."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", path.name) if part]


def _folder_frames(folder: Path, options: DecodeOptions, on_frame: Callable[[], None]) -> Iterator[tuple[float, Picture]]:
    """:func:`_timed_pictures` of a frame folder: image k is shown at ``k / options.folder_fps``.

    Each image is read, resized and cropped on its own when its frame is used; EXIF orientation is
    not applied.
    """
    short = options.short_side or options.size
    period = 1.0 / options.folder_fps
    resampler = _Resampler(options.fps, tolerance=1e-9)
    images = frame_folder_images(folder)
    for index, image_path in enumerate(images):
        picture = _once(lambda image_path=image_path, index=index: _read_image(image_path, index, folder, short, options.size))
        on_frame()
        yield from resampler.feed(index * period, picture)
    yield from resampler.finish(period)


def _read_image(image_path: Path, index: int, folder: Path, short_side: int, size: int) -> np.ndarray:
    """Frame ``index`` of a frame folder, resized and cropped; DataError naming it when unreadable."""
    av = _av()
    check_readable_file(image_path, "frame image")
    try:
        with av.open(str(image_path), mode="r") as container:
            frame = next(container.decode(video=0))
    except (av.FFmpegError, StopIteration, IndexError) as exc:
        raise DataError(f"{image_path}: not a readable image (frame {index + 1} of {folder}; {one_line_reason(exc)})") from None
    return _prepare(frame, short_side, size, Fraction(1), 0)


def _quarter_turns(frame) -> int:
    """Counter-clockwise quarter turns (``np.rot90``'s k) that show ``frame`` upright.

    PyAV's ``frame.rotation`` is the display matrix's angle, counter-clockwise in degrees (a phone's
    portrait video reads -90: turn it a quarter clockwise); angles between quarters round to the nearest.
    """
    return round(frame.rotation / 90) % 4


def _prepare(frame, short_side: int, size: int, pixel_aspect: Fraction, turns: int) -> np.ndarray:
    """Resize the short side of the displayed picture to ``short_side`` (bilinear; pixels stretched to
    ``pixel_aspect``), turn it ``turns`` quarters counter-clockwise and crop the centre ``size`` square."""
    width, height = _resized_shape(frame.width * pixel_aspect, frame.height, short_side)
    rgb = frame.to_ndarray(width=width, height=height, format="rgb24", interpolation="BILINEAR")
    if turns:
        rgb = np.rot90(rgb, turns)
        height, width = rgb.shape[:2]
    top, left = (height - size) // 2, (width - size) // 2
    return np.ascontiguousarray(rgb[top:top + size, left:left + size])


def _check_complete(path: Path, info: VideoInfo, decoded_end: float, decoded_frames: int) -> None:
    """DataError when the decoded frames end (timestamp ``decoded_end``) well before the duration the
    container declares, or are well fewer than the frame count it declares (AVI headers give one;
    FFmpeg estimates an AVI's duration from its size, which a cut file shrinks too).

    Containers disagree on whether that duration counts from time 0 (Matroska) or from the first
    frame (MP4 edit lists); comparing it with the last frame's absolute end time never flags a
    complete file in either case, at the price of missing a truncation hidden by a late start.
    """
    declared = info.duration_seconds
    if declared is not None and declared > 0 and decoded_end < declared * (1 - TRUNCATION_TOLERANCE) - 0.5:
        raise DataError(
            f"{path}: truncated video: frames stop at {decoded_end:.2f} s of a declared {declared:.2f} s"
        )
    expected = info.declared_frames
    if expected is not None and decoded_frames < expected * (1 - TRUNCATION_TOLERANCE) - 1:
        raise DataError(f"{path}: truncated video: {decoded_frames} frames decoded of the {expected} its header declares")


def iter_clips(path: Path, clip_len: int, options: DecodeOptions = DecodeOptions()) -> Iterator[np.ndarray]:
    """Yield consecutive non-overlapping clips, uint8 (clip_len, size, size, 3); a shorter tail is dropped.

    Raises:
        DataError: as :func:`iter_frames`, and when the video has fewer frames than one clip.
    """
    for _, clip in iter_timed_clips(path, clip_len, options):
        yield clip


def iter_timed_clips(
    path: Path, clip_len: int, options: DecodeOptions = DecodeOptions(), *, on_frame: Callable[[], None] | None = None
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(seconds, clip)``: each clip of :func:`iter_clips` with its first frame's time (see
    :func:`iter_timed_frames`, which calls ``on_frame``).

    Raises:
        DataError: as :func:`iter_clips`.
    """
    if clip_len < 1:
        raise ConfigError(f"clip length must be positive, got {clip_len}")
    buffer = np.empty((clip_len, options.size, options.size, 3), dtype=np.uint8)
    filled = clips = 0
    start = 0.0
    for time, frame in iter_timed_frames(path, options, on_frame=on_frame):
        if filled == 0:
            start = time
        buffer[filled] = frame
        filled += 1
        if filled == clip_len:
            clips += 1
            yield start, buffer.copy()
            filled = 0
    if clips == 0:
        rate = f" at {options.fps:g} fps" if options.fps else ""
        raise DataError(f"{path}: only {filled} frames{rate}, fewer than one clip of {clip_len} frames")
