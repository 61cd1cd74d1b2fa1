"""Small test videos written with PyAV: frame i is a flat grey of level ``20 + 6 * i`` (mod 240) so a
test can tell which source frame it got back, or three vertical colour bands (red, green, blue)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np


def grey_level(index: int) -> int:
    """The grey level of source frame ``index``."""
    return (20 + 6 * index) % 240


def write_video(
    path: Path,
    n_frames: int,
    *,
    fps: int = 30,
    size: tuple[int, int] = (64, 48),
    codec: str = "mpeg4",
    times_ms: list[int] | None = None,
    bands: bool = False,
    rotation: int = 0,
    pixel_aspect: Fraction | None = None,
    audio_seconds: float = 0.0,
    b_frames: int = 0,
) -> Path:
    """Write ``n_frames`` frames (width, height = ``size``, stored pixels).

    ``times_ms`` gives variable frame times; ``rotation`` a display rotation (degrees
    counter-clockwise, as PyAV's ``VideoFrame.rotation`` reads it); ``pixel_aspect`` non-square
    pixels; ``audio_seconds`` a silent mono audio track of that length; ``b_frames`` up to that many
    B-frames between reference frames (groups of 12 pictures). H.264 with B-frames in an AVI
    (``codec="libx264"``, ``path`` ending ``.avi``) decodes with out-of-order timestamps
    (pts 1, 3, 4, 2...), as real AVIs of B-frame video do.
    """
    import av

    width, height = size
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p" if codec != "gif" else "rgb8"
        if rotation:
            stream.set_display_rotation(rotation)
        if pixel_aspect is not None:
            stream.codec_context.sample_aspect_ratio = pixel_aspect
        audio = _silent_stream(container) if audio_seconds else None  # every stream before the first packet
        if codec != "gif":
            stream.bit_rate = 4_000_000  # near-lossless, so grey levels survive
        if b_frames:
            stream.codec_context.max_b_frames, stream.codec_context.gop_size = b_frames, 12
        if times_ms is not None:  # millisecond timestamps, kept exactly by the encoder and the container
            stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        for i in range(n_frames):
            image = np.full((height, width, 3), grey_level(i), np.uint8)
            if bands:
                image[:] = 0
                third = width // 3
                image[:, :third, 0] = image[:, third:2 * third, 1] = image[:, 2 * third:, 2] = 255
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if times_ms is not None:
                frame.pts, frame.time_base = times_ms[i], Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if audio is not None:
            _write_silence(container, audio, audio_seconds)
    return path


def write_frame_folder(folder: Path, n_frames: int, *, size: tuple[int, int] = (64, 48), first: int = 1,
                       name: str = "{index:05d}.jpg") -> Path:
    """A frame folder: frame i (grey level :func:`grey_level`) as the image ``name.format(index=first + i)``
    (JPEG, or PNG for a ``.png`` name), as MTL-AQA and FineDiving release their videos."""
    import av

    folder.mkdir(parents=True, exist_ok=True)
    width, height = size
    for i in range(n_frames):
        path = folder / name.format(index=first + i)
        png = path.suffix == ".png"
        with av.open(str(path), mode="w", format="image2") as container:
            stream = container.add_stream("png" if png else "mjpeg", rate=1)
            stream.width, stream.height = width, height
            stream.pix_fmt = "rgb24" if png else "yuvj444p"
            frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), grey_level(i), np.uint8), format="rgb24")
            for packet in [*stream.encode(frame), *stream.encode()]:
                container.mux(packet)
    return folder


def _silent_stream(container, rate: int = 8000):
    audio = container.add_stream("pcm_s16le", rate=rate)
    audio.layout = "mono"
    return audio


def _write_silence(container, audio, seconds: float) -> None:
    import av

    rate = audio.rate
    for start in range(0, round(seconds * rate), rate):
        frame = av.AudioFrame.from_ndarray(np.zeros((1, rate), np.int16), format="s16", layout="mono")
        frame.sample_rate, frame.pts = rate, start
        for packet in audio.encode(frame):
            container.mux(packet)
    for packet in audio.encode():
        container.mux(packet)


def i3d_flax_arrays(model) -> dict[str, np.ndarray]:
    """An I3D's weights as the arrays of a Flax-layout .npz: kernels (D, H, W, I, O) and random batch-norm
    statistics scaled (variance ~0.15) so that activations of the randomly initialised network neither
    vanish nor explode through its depth, and its features still depend on the input."""
    import torch

    generator = torch.Generator().manual_seed(0)
    arrays: dict[str, np.ndarray] = {}
    for tf_name, unit in model.units():
        channels = unit.norm_bias.shape[0]
        arrays[f"params/{tf_name}/Conv_0/kernel"] = unit.conv.weight.detach().permute(2, 3, 4, 1, 0).numpy()
        arrays[f"params/{tf_name}/BatchNorm_0/bias"] = 0.05 * torch.randn(channels, generator=generator).numpy()
        arrays[f"batch_stats/{tf_name}/BatchNorm_0/mean"] = 0.01 * torch.randn(1, 1, 1, 1, channels, generator=generator).numpy()
        arrays[f"batch_stats/{tf_name}/BatchNorm_0/var"] = 0.15 * (0.8 + 0.4 * torch.rand(1, 1, 1, 1, channels, generator=generator)).numpy()
    arrays["params/Logits/Conv3d_0c_1x1/Conv_0/kernel"] = model.classifier.weight.detach().permute(2, 3, 4, 1, 0).numpy()
    arrays["params/Logits/Conv3d_0c_1x1/Conv_0/bias"] = model.classifier.bias.detach().numpy()
    return arrays


def write_random_i3d_weights(folder: Path) -> Path:
    """A seeded, randomly initialised I3D saved as a Flax-layout .npz (a stand-in for the Kinetics file)."""
    import torch

    from aqakit.video.i3d import I3D

    torch.manual_seed(0)
    path = folder / "i3d_random.npz"
    np.savez(path, **i3d_flax_arrays(I3D()))
    return path


def write_hostile_corpus(folder: Path) -> dict[str, str | None]:
    """Files that break decoders, written into ``folder`` beside nothing else: name -> a part of the
    one-line error extraction must give (clips of 2 frames), or None for a file it must extract.

    Tiny on purpose: the 4K video is 2 frames; the header that lies is a 10-frame Matroska file whose
    stream duration tag says 1000 s; ``playlist.mp4`` is an FFmpeg concat list naming the named pipe
    ``pipe.mp4``, whose open blocks in C until a writer appears (none does): a real hang.
    """
    import os
    import re

    folder.mkdir(parents=True, exist_ok=True)
    cut_mkv = write_video(folder / "cut.mkv", 60).read_bytes()
    (folder / "cut.mkv").write_bytes(cut_mkv[: len(cut_mkv) // 2])
    cut_mp4 = write_video(folder / "cut_index.mp4", 30).read_bytes()  # MP4 keeps its index at the end
    (folder / "cut_index.mp4").write_bytes(cut_mp4[: len(cut_mp4) // 2])
    (folder / "metadata_only.mkv").write_text(";FFMETADATA1\ntitle=no streams at all\n")  # FFmpeg's metadata container
    _write_audio_only(folder / "audio_only.mp4")
    write_video(folder / "one_frame.mp4", 1)
    write_video(folder / "one_pixel.mkv", 4, size=(1, 1), codec="ffv1")
    write_video(folder / "uhd.mp4", 2, size=(3840, 2160))
    lying = write_video(folder / "lying.mkv", 10).read_bytes()
    (folder / "lying.mkv").write_bytes(re.sub(rb"00:00:00\.333000000", b"00:16:40.000000000", lying))
    (folder / "random.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 65536, dtype=np.uint8).tobytes())
    (folder / "zero.mp4").write_bytes(b"")
    os.mkfifo(folder / "pipe.mp4")
    (folder / "folder.mp4").mkdir()
    (folder / "broken.mp4").symlink_to(folder / "gone.mp4")
    (folder / "loop.mp4").symlink_to("loop.mp4")
    (folder / "cycle").symlink_to(".")  # a folder link loop: never followed
    (folder / "playlist.mp4").write_text("ffconcat version 1.0\nfile pipe.mp4\n")
    return {
        "cut.mkv": "truncated", "cut_index.mp4": "not a video, or a truncated one",
        "metadata_only.mkv": "has no video stream", "audio_only.mp4": "has no video stream",
        "one_frame.mp4": "only 1 frames, fewer than one clip of 2 frames", "one_pixel.mkv": None, "uhd.mp4": None,
        "lying.mkv": "truncated video: frames stop at 0.33 s of a declared 1000.00 s",
        "random.mp4": "not a video, or a truncated one (FFmpeg: Invalid data", "zero.mp4": "empty file",
        "pipe.mp4": "a named pipe (FIFO), not a video file", "folder.mp4": "a folder with no image files",
        "broken.mp4": "a broken symbolic link (to ", "loop.mp4": "a symbolic link loop, not a video file",
        "playlist.mp4": "the decoder decoded no frame for",
    }


def _write_audio_only(path: Path) -> None:
    """An MP4 holding one AAC audio track and no video."""
    import av

    with av.open(str(path), mode="w") as container:
        audio = container.add_stream("aac", rate=8000)
        audio.layout = "mono"
        for i in range(3):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 8000, i * 1024
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)
