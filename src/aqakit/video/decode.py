"""Streaming video decoding with PyAV: frames resampled to a target rate, resized, centre-cropped.

Any container and codec FFmpeg reads (mp4, mkv, webm, avi, mov, gif...) at constant or variable
frame rate. Frames are decoded one at a time and grouped into fixed-length clips, so a long video
never sits in memory: at most one clip (``clip_len x size x size x 3`` bytes) plus one frame.

Resampling works on timestamps, not frame indices: output frame k shows the source frame on
screen at ``t0 + k / fps`` (``t0`` = the first frame's time), repeating or skipping source frames
as needed. Timestamps within half a container time-base unit of an output time count as on time
(containers round them: a 30 fps frame in a 1/1000 s time base sits at 67 ms, not 66.67 ms). ``fps=None`` keeps every decoded frame as it is.

Every failure is a :class:`~aqakit.errors.DataError` naming the file: not a video, a truncated or
corrupt file, a video with zero frames, or one with fewer frames than a clip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from aqakit.errors import ConfigError, DataError

#: A decoded video whose last frame ends more than this fraction before the container's
#: declared duration is reported as truncated.
TRUNCATION_TOLERANCE = 0.1


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
            (the whole short side is kept). DeepMind's I3D preprocessing used 256 then a 224 crop.
    """

    fps: float | None = None
    size: int = 224
    short_side: int | None = None

    def __post_init__(self) -> None:
        if self.fps is not None and not (self.fps > 0 and math.isfinite(self.fps)):
            raise ConfigError(f"fps must be a positive number, got {self.fps}")
        if self.size < 1:
            raise ConfigError(f"crop size must be positive, got {self.size}")
        if self.short_side is not None and self.short_side < self.size:
            raise ConfigError(f"short side {self.short_side} is smaller than the crop size {self.size}")


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video's first video stream (before decoding)."""

    path: Path
    width: int
    height: int
    codec: str
    average_fps: float | None
    duration_seconds: float | None
    declared_frames: int | None


def probe(path: Path) -> VideoInfo:
    """Read a video's header; DataError when it is missing, not a video or has no video stream."""
    with _open(Path(path)) as (container, stream):
        return _info(Path(path), container, stream)


def _info(path: Path, container, stream) -> VideoInfo:
    rate = stream.average_rate or stream.guessed_rate
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000
    return VideoInfo(
        path=path, width=stream.codec_context.width, height=stream.codec_context.height,
        codec=stream.codec_context.name, average_fps=float(rate) if rate else None,
        duration_seconds=duration, declared_frames=stream.frames or None,
    )


class _open:
    """Context manager yielding (container, first video stream) with one-line errors."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.container = None

    def __enter__(self):
        av = _av()
        if not self.path.exists():
            raise DataError(f"{self.path}: video file not found")
        if not self.path.is_file():
            raise DataError(f"{self.path}: is not a file")
        if self.path.stat().st_size == 0:
            raise DataError(f"{self.path}: empty file, not a video")
        try:
            self.container = av.open(str(self.path), mode="r")
        except av.EOFError:
            raise DataError(f"{self.path}: the video has zero frames (the file ends before any frame)") from None
        except av.FFmpegError as exc:
            raise DataError(f"{self.path}: not a video, or a truncated one (FFmpeg: {_reason(exc)})") from None
        if not self.container.streams.video:
            self.container.close()
            raise DataError(f"{self.path}: has no video stream")
        stream = self.container.streams.video[0]
        stream.thread_type = "AUTO"
        return self.container, stream

    def __exit__(self, *exc) -> None:
        if self.container is not None:
            self.container.close()


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split()) or type(exc).__name__


def _resized_shape(width: int, height: int, short_side: int) -> tuple[int, int]:
    scale = short_side / min(width, height)
    return max(short_side, round(width * scale)), max(short_side, round(height * scale))


def iter_frames(path: Path, options: DecodeOptions = DecodeOptions()) -> Iterator[np.ndarray]:
    """Yield the video's frames as uint8 RGB arrays (size, size, 3), resampled and centre-cropped.

    Raises:
        DataError: the file is missing, not a video, truncated/corrupt, or has zero frames.
    """
    path = Path(path)
    av = _av()
    short = options.short_side or options.size
    emitted = 0
    with _open(path) as (container, stream):
        info = _info(path, container, stream)
        time_base = stream.time_base or Fraction(1, 1)
        step = 1.0 / options.fps if options.fps else None
        tolerance = float(time_base) / 2 + 1e-9  # timestamps are rounded to the container's time base
        nominal = 1.0 / info.average_fps if info.average_fps else (step or 0.04)
        previous: tuple[float, np.ndarray] | None = None  # the frame on screen before the current one
        first_time: float | None = None  # t0: output times are t0 + k / fps
        last_time = 0.0
        try:
            for frame in container.decode(stream):
                time = float(frame.pts * time_base) if frame.pts is not None else last_time + nominal
                last_time = time
                first_time = time if first_time is None else first_time
                image = _prepare(frame, short, options.size)
                if step is None:
                    emitted += 1
                    yield image
                    continue
                if previous is not None:
                    for out in _emit_until(previous[1], first_time, step, emitted, time - tolerance):
                        emitted += 1
                        yield out
                previous = (time, image)
        except av.FFmpegError as exc:
            raise DataError(f"{path}: truncated or corrupt video ({_reason(exc)}) after {emitted} frames") from None
        if previous is not None and step is not None:  # the last frame stays on screen for one frame period
            for out in _emit_until(previous[1], first_time, step, emitted, previous[0] + nominal - tolerance):
                emitted += 1
                yield out
        if emitted == 0:
            raise DataError(f"{path}: the video has zero frames")
        _check_complete(path, info, last_time + nominal)


def _emit_until(image: np.ndarray, start: float, step: float, emitted: int, end: float) -> Iterator[np.ndarray]:
    """Repeat ``image`` for every output time ``start + k * step`` (k >= emitted) before ``end``."""
    k = emitted
    while start + k * step < end:
        yield image
        k += 1


def _prepare(frame, short_side: int, size: int) -> np.ndarray:
    """Resize the short side to ``short_side`` (bilinear) and crop the centre ``size`` square."""
    width, height = _resized_shape(frame.width, frame.height, short_side)
    rgb = frame.to_ndarray(width=width, height=height, format="rgb24", interpolation="BILINEAR")
    top, left = (height - size) // 2, (width - size) // 2
    return np.ascontiguousarray(rgb[top:top + size, left:left + size])


def _check_complete(path: Path, info: VideoInfo, decoded_end: float) -> None:
    """DataError when the decoded frames end (timestamp ``decoded_end``) well before the duration the
    container declares.

    Containers disagree on whether that duration counts from time 0 (Matroska) or from the first
    frame (MP4 edit lists); comparing it with the last frame's absolute end time never flags a
    complete file in either case, at the price of missing a truncation hidden by a late start.
    """
    declared = info.duration_seconds
    if declared is None or declared <= 0:
        return
    if decoded_end < declared * (1 - TRUNCATION_TOLERANCE) - 0.5:
        raise DataError(
            f"{path}: truncated video: frames stop at {decoded_end:.2f} s of a declared {declared:.2f} s"
        )


def iter_clips(path: Path, clip_len: int, options: DecodeOptions = DecodeOptions()) -> Iterator[np.ndarray]:
    """Yield consecutive non-overlapping clips, uint8 (clip_len, size, size, 3); a shorter tail is dropped.

    Raises:
        DataError: as :func:`iter_frames`, and when the video has fewer frames than one clip.
    """
    if clip_len < 1:
        raise ConfigError(f"clip length must be positive, got {clip_len}")
    buffer = np.empty((clip_len, options.size, options.size, 3), dtype=np.uint8)
    filled = clips = 0
    for frame in iter_frames(path, options):
        buffer[filled] = frame
        filled += 1
        if filled == clip_len:
            clips += 1
            yield buffer.copy()
            filled = 0
    if clips == 0:
        rate = f" at {options.fps:g} fps" if options.fps else ""
        raise DataError(f"{path}: only {filled} frames{rate}, fewer than one clip of {clip_len} frames")

