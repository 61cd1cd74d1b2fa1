"""Streaming video decoding with PyAV: frames resampled to a target rate, resized, centre-cropped.

Any container and codec FFmpeg reads (mp4, mkv, webm, avi, mov, gif...) at constant or variable
frame rate. Frames are decoded one at a time and grouped into fixed-length clips, so a long video
never sits in memory: at most one clip (``clip_len x size x size x 3`` bytes) plus one frame.

Resampling works on timestamps, not frame indices: output frame k shows the source frame on
screen at ``t0 + k / fps`` (``t0`` = the first frame's time), repeating or skipping source frames
as needed. Timestamps within half a container time-base unit of an output time count as on time
(containers round them: a 30 fps frame in a 1/1000 s time base sits at 67 ms, not 66.67 ms). ``fps=None`` keeps every decoded frame as it is.

Frames are turned upright as a player shows them (``DecodeOptions.upright``, the default): the
container's display rotation (phones store portrait video as landscape pixels plus a rotation) is
applied in quarter turns, and non-square pixels are stretched to the display aspect ratio before
the resize. Mirroring in a display matrix is not applied (PyAV exposes only its rotation).

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
        upright: apply the container's display rotation and pixel aspect ratio (as players do);
            ``False`` uses the stored pixels as they are, as extraction did before this option
            (feature manifests without an ``upright`` entry).
    """

    fps: float | None = None
    size: int = 224
    short_side: int | None = None
    upright: bool = True

    def __post_init__(self) -> None:
        if self.fps is not None and not (self.fps > 0 and math.isfinite(self.fps)):
            raise ConfigError(f"fps must be a positive number, got {self.fps}")
        if self.size < 1:
            raise ConfigError(f"crop size must be positive, got {self.size}")
        if self.short_side is not None and self.short_side < self.size:
            raise ConfigError(f"short side {self.short_side} is smaller than the crop size {self.size}")


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


def iter_timed_frames(path: Path, options: DecodeOptions = DecodeOptions()) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(seconds, frame)``: each frame of :func:`iter_frames` with its time since the first frame
    (``k / fps`` when resampling, else the frame's own timestamp, so variable rates keep true times).

    Raises:
        DataError: as :func:`iter_frames`.
    """
    path = Path(path)
    av = _av()
    short = options.short_side or options.size
    emitted = decoded = 0
    with _open(path) as (container, stream):
        info = _info(path, container, stream)
        pixel_aspect = info.pixel_aspect if options.upright else Fraction(1)
        time_base = stream.time_base or Fraction(1, 1)
        step = 1.0 / options.fps if options.fps else None
        tolerance = float(time_base) / 2 + 1e-9  # timestamps are rounded to the container's time base
        nominal = 1.0 / info.average_fps if info.average_fps else (step or 0.04)
        previous: tuple[float, np.ndarray] | None = None  # the frame on screen before the current one
        first_time: float | None = None  # t0: output times are t0 + k / fps
        last_time = 0.0
        try:
            for frame in container.decode(stream):
                decoded += 1
                time = float(frame.pts * time_base) if frame.pts is not None else last_time + nominal
                last_time = time
                first_time = time if first_time is None else first_time
                turns = _quarter_turns(frame) if options.upright else 0
                image = _prepare(frame, short, options.size, pixel_aspect, turns)
                if step is None:
                    emitted += 1
                    yield time - first_time, image
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
        _check_complete(path, info, last_time + nominal, decoded)


def _emit_until(
    image: np.ndarray, start: float, step: float, emitted: int, end: float
) -> Iterator[tuple[float, np.ndarray]]:
    """Repeat ``image`` for every output time ``start + k * step`` (k >= emitted) before ``end``;
    yields ``(k * step, image)``."""
    k = emitted
    while start + k * step < end:
        yield k * step, image
        k += 1


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
    path: Path, clip_len: int, options: DecodeOptions = DecodeOptions()
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(seconds, clip)``: each clip of :func:`iter_clips` with its first frame's time (see
    :func:`iter_timed_frames`).

    Raises:
        DataError: as :func:`iter_clips`.
    """
    if clip_len < 1:
        raise ConfigError(f"clip length must be positive, got {clip_len}")
    buffer = np.empty((clip_len, options.size, options.size, 3), dtype=np.uint8)
    filled = clips = 0
    start = 0.0
    for time, frame in iter_timed_frames(path, options):
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
