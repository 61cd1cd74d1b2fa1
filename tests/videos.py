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
