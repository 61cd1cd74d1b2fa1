"""Streaming decoding: timestamp resampling (CFR and VFR), resize + centre crop, clips, bad files."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

pytest.importorskip("av", reason="PyAV is not installed (pip install 'aqakit[video]')")

from conftest import DATA  # noqa: E402
from videos import write_frame_folder, write_video  # noqa: E402

from aqakit.errors import ConfigError, DataError  # noqa: E402
from aqakit.video.decode import (  # noqa: E402
    REORDER_WINDOW, DecodeOptions, _presentation_order, iter_clips, iter_frames, iter_timed_clips, iter_timed_frames, probe,
    uniform_indices,
)

DIVING_GIF = DATA / "mtl-aqa" / "diving_sample.gif"


def levels(frames: list[np.ndarray]) -> np.ndarray:
    return np.array([int(frame[100, 100, 0]) for frame in frames])


def source_index(levels_seen: np.ndarray) -> np.ndarray:
    """The source frame each grey level came from (the encoder is near-lossless: +-2; 36 frames at most)."""
    return np.rint((levels_seen - 20) / 6).astype(int)


def test_native_rate_keeps_every_frame_in_order(tmp_path):
    path = write_video(tmp_path / "v.mp4", 30, fps=30)
    frames = list(iter_frames(path))
    assert len(frames) == 30 and frames[0].shape == (224, 224, 3) and frames[0].dtype == np.uint8
    assert source_index(levels(frames)).tolist() == list(range(30))
    info = probe(path)
    assert (info.width, info.height, info.average_fps) == (64, 48, 30.0)


def test_constant_rate_is_resampled_by_timestamps(tmp_path):
    path = write_video(tmp_path / "v.mkv", 36, fps=30, codec="libx264")
    half = list(iter_frames(path, DecodeOptions(fps=15)))
    assert source_index(levels(half)).tolist() == list(range(0, 36, 2))
    double = list(iter_frames(path, DecodeOptions(fps=60)))
    assert len(double) == 72 and source_index(levels(double)).tolist() == [i // 2 for i in range(72)]


def test_variable_rate_shows_the_frame_on_screen_at_each_output_time(tmp_path):
    times_ms = [0, 100, 150, 400, 500, 520, 900, 1000, 1300]
    path = write_video(tmp_path / "vfr.mkv", len(times_ms), times_ms=times_ms)
    frames = list(iter_frames(path, DecodeOptions(fps=10)))
    expected = [max(i for i, t in enumerate(times_ms) if t <= k * 100) for k in range(len(frames))]
    assert len(frames) == 14  # 0.0 .. 1.3 s: the last frame is shown for one nominal frame period
    assert source_index(levels(frames)).tolist() == expected


def needs_libx264():
    import av

    if "libx264" not in av.codecs_available:
        pytest.skip("this FFmpeg has no libx264 encoder (needed for an AVI whose B-frames decode out of order)")


def test_b_frame_timestamps_are_put_in_presentation_order(tmp_path):
    """H.264 with B-frames in an AVI decodes with pts 1, 3, 4, 2...: resampling at the video's own rate
    used to drop a frame (35 of 36); the frames keep their decoded (display) order and get sorted times."""
    needs_libx264()
    import av

    path = write_video(tmp_path / "b.avi", 36, codec="libx264", b_frames=2)
    with av.open(str(path)) as container:
        raw = [frame.pts for frame in container.decode(video=0)]
    assert raw != sorted(raw)  # the file does reproduce the problem
    timed = list(iter_timed_frames(path, DecodeOptions(size=32)))
    assert [round(t * 30, 6) for t, _ in timed] == list(range(36))
    assert source_index(levels_at([f for _, f in timed], 16)).tolist() == list(range(36))
    same_rate = list(iter_frames(path, DecodeOptions(size=32, fps=30)))
    assert source_index(levels_at(same_rate, 16)).tolist() == list(range(36))
    assert len(list(iter_frames(path, DecodeOptions(size=32, fps=15)))) == 18


def test_presentation_order_sorts_times_within_the_window_and_keeps_frame_order():
    times = [1, 3, 4, 2, 6, 7, 5, None, 9]
    out = list(_presentation_order(zip(times, "abcdefghi"), nominal=1.0))
    assert out == [(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e"), (6, "f"), (7, "g"), (8, "h"), (9, "i")]
    late = [float(i) for i in range(REORDER_WINDOW + 3)]
    assert [t for t, _ in _presentation_order(zip(late, late), nominal=1.0)] == late


def test_uniform_indices_spread_over_the_video_and_repeat_short_ones():
    assert uniform_indices(160, 160) == list(range(160))
    assert uniform_indices(5, 3) == [0, 2, 4] and uniform_indices(10, 4) == [0, 3, 6, 9]
    assert uniform_indices(3, 7) == [0, 0, 1, 1, 1, 2, 2] and uniform_indices(1, 4) == [0, 0, 0, 0]
    assert uniform_indices(9, 1) == [0]
    long = uniform_indices(1000, 160)
    assert long[0] == 0 and long[-1] == 999 and len(long) == 160 and long == sorted(long)


@pytest.mark.parametrize("n_frames", [7, 30, 36])
def test_frames_option_takes_that_many_frames_spread_uniformly(tmp_path, n_frames):
    path = write_video(tmp_path / "v.mp4", n_frames)
    timed = list(iter_timed_frames(path, DecodeOptions(size=32, frames=16)))
    assert len(timed) == 16
    assert source_index(levels_at([f for _, f in timed], 16)).tolist() == uniform_indices(n_frames, 16)
    assert [t for t, _ in timed] == pytest.approx([i / 30 for i in uniform_indices(n_frames, 16)], abs=1e-3)
    clips = list(iter_clips(path, 8, DecodeOptions(size=32, frames=16)))
    assert len(clips) == 2


def test_frames_option_on_a_frame_folder_after_fps_resampling(tmp_path):
    folder = write_frame_folder(tmp_path / "dive", 20)  # 25 fps
    frames = list(iter_frames(folder, DecodeOptions(size=32, fps=12.5, frames=4)))  # 10 frames at 12.5 fps -> 4
    assert source_index(levels_at(frames, 16)).tolist() == [2 * i for i in uniform_indices(10, 4)]
    with pytest.raises(ConfigError, match="number of frames to sample must be positive"):
        DecodeOptions(frames=0)


def test_a_late_first_frame_starts_the_output_clock(tmp_path):
    times_ms = [1000 + 40 * i for i in range(30)]  # 25 fps, starting at 1 s
    path = write_video(tmp_path / "late.mkv", 30, times_ms=times_ms)
    frames = list(iter_frames(path, DecodeOptions(fps=12.5)))
    assert source_index(levels(frames)).tolist() == list(range(0, 30, 2))


def test_short_side_resize_and_centre_crop(tmp_path):
    path = write_video(tmp_path / "bands.mp4", 2, size=(96, 48), bands=True, codec="libx264")
    frame = next(iter_frames(path, DecodeOptions(size=32)))
    assert frame.shape == (32, 32, 3)
    # 96x48 -> 64x32, centre 32 columns = source columns 24..72: red edge, green centre, blue edge.
    assert [int(np.argmax(frame[16, col])) for col in (0, 16, 31)] == [0, 1, 2]
    wider = next(iter_frames(path, DecodeOptions(size=32, short_side=64)))
    assert int(np.argmax(wider[16, 0])) == 1  # cropping 32 of 128 columns keeps only green


def band_colours(row: np.ndarray) -> list[int]:
    """The colour channel (0 red, 1 green, 2 blue) of each pixel of a row of a bands frame."""
    return [int(np.argmax(pixel)) for pixel in row]


def test_display_rotation_turns_frames_upright(tmp_path):
    # stored landscape, bands left to right red, green, blue; shown turned a quarter clockwise (a phone's
    # portrait video): red on top, blue at the bottom
    path = write_video(tmp_path / "phone.mp4", 2, size=(60, 40), bands=True, rotation=-90)
    upright = next(iter_frames(path, DecodeOptions(size=40)))
    assert band_colours(upright[[2, 20, 37], 20]) == [0, 1, 2] and band_colours(upright[20, [2, 37]]) == [1, 1]
    stored = next(iter_frames(path, DecodeOptions(size=40, upright=False)))
    assert band_colours(stored[20, [2, 20, 37]]) == [0, 1, 2]
    counter = next(iter_frames(write_video(tmp_path / "ccw.mp4", 2, size=(60, 40), bands=True, rotation=90), DecodeOptions(size=40)))
    assert band_colours(counter[[2, 20, 37], 20]) == [2, 1, 0]


def test_non_square_pixels_are_stretched_to_the_display_shape(tmp_path):
    # 60x60 stored pixels twice as wide as high show as 120x60: a 60 crop of the middle keeps
    # two thirds green; with square pixels it sees all three bands equally
    path = write_video(tmp_path / "anamorphic.mp4", 2, size=(60, 60), bands=True, pixel_aspect=Fraction(2))
    assert probe(path).pixel_aspect == 2
    shown = band_colours(next(iter_frames(path, DecodeOptions(size=60)))[30])
    stored = band_colours(next(iter_frames(path, DecodeOptions(size=60, upright=False)))[30])
    assert 38 <= shown.count(1) <= 42 and 18 <= stored.count(1) <= 22


def test_clip_times_are_the_first_frames_timestamps(tmp_path):
    times_ms = [0, 100, 200, 300, 1000, 1100, 1200, 1300, 3000]  # 10 fps with two jumps
    path = write_video(tmp_path / "vfr.mkv", len(times_ms), times_ms=times_ms)
    assert [t for t, _ in iter_timed_clips(path, 2, DecodeOptions(size=16))] == pytest.approx([0.0, 0.2, 1.0, 1.2])
    resampled = [t for t, _ in iter_timed_clips(path, 4, DecodeOptions(size=16, fps=5))]
    assert resampled == pytest.approx([0.0, 0.8, 1.6, 2.4])  # output frame k is at k / 5 s


def test_a_longer_audio_track_is_not_a_truncated_video(tmp_path):
    for suffix in (".mkv", ".mp4"):
        path = write_video(tmp_path / f"talk{suffix}", 10, fps=10, audio_seconds=5)
        assert probe(path).duration_seconds == pytest.approx(1.0, abs=0.15)
        assert len(list(iter_frames(path, DecodeOptions(size=16)))) == 10


def test_an_avi_cut_short_of_its_declared_frames_is_truncated(tmp_path):
    path = write_video(tmp_path / "long.avi", 60)
    assert probe(path).declared_frames == 60
    truncated = tmp_path / "cut.avi"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size * 8 // 10])
    with pytest.raises(DataError, match=r"cut\.avi: truncated video"):
        list(iter_frames(truncated, DecodeOptions(size=16)))


def test_clips_are_fixed_length_and_drop_the_short_tail(tmp_path):
    path = write_video(tmp_path / "v.webm", 37, codec="libvpx-vp9")
    clips = list(iter_clips(path, 8, DecodeOptions(size=16)))
    assert len(clips) == 4 and all(c.shape == (8, 16, 16, 3) for c in clips)
    assert source_index(np.array([c[0, 8, 8, 0] for c in clips])).tolist() == [0, 8, 16, 24]


def test_gif_frames_follow_their_delays(tmp_path):
    path = write_video(tmp_path / "v.gif", 12, fps=10, codec="gif")
    assert len(list(iter_frames(path))) == 12
    assert len(list(iter_frames(path, DecodeOptions(fps=5)))) == 6


def test_real_diving_gif_when_present():
    if not DIVING_GIF.is_file():
        pytest.skip(f"{DIVING_GIF} not found (set AQAKIT_DATA to the shared data folder)")
    frames = list(iter_frames(DIVING_GIF))
    assert len(frames) == 21 and frames[0].shape == (224, 224, 3)
    assert len(list(iter_clips(DIVING_GIF, 8))) == 2


def test_not_a_video(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n")
    with pytest.raises(DataError, match=r"notes\.mp4: not a video"):
        list(iter_frames(path))


@pytest.mark.parametrize("suffix", [".mkv", ".webm"])
def test_truncated_file(tmp_path, suffix):
    codec = "libvpx-vp9" if suffix == ".webm" else "mpeg4"
    path = write_video(tmp_path / f"long{suffix}", 120, codec=codec)
    truncated = tmp_path / f"cut{suffix}"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match=rf"cut\{suffix}: truncated"):
        list(iter_frames(truncated))


def test_truncated_mp4_without_its_index(tmp_path):
    path = write_video(tmp_path / "long.mp4", 60)
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match=r"cut\.mp4: not a video, or a truncated one"):
        list(iter_frames(truncated))


def test_zero_frames(tmp_path):
    import av

    path = tmp_path / "empty.mkv"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height = 64, 48
        container.start_encoding()
    with pytest.raises(DataError, match=r"empty\.mkv: the video has zero frames"):
        list(iter_frames(path))


def test_fewer_frames_than_one_clip(tmp_path):
    path = write_video(tmp_path / "short.mp4", 5)
    with pytest.raises(DataError, match=r"short\.mp4: only 5 frames, fewer than one clip of 16 frames"):
        list(iter_clips(path, 16))
    with pytest.raises(DataError, match=r"only 3 frames at 15 fps"):
        list(iter_clips(path, 16, DecodeOptions(fps=15)))


def test_missing_and_empty_files_and_bad_options(tmp_path):
    with pytest.raises(DataError, match="nope.mp4: video file not found"):
        list(iter_frames(tmp_path / "nope.mp4"))
    (tmp_path / "zero.mp4").write_bytes(b"")
    with pytest.raises(DataError, match="zero.mp4: empty file"):
        list(iter_frames(tmp_path / "zero.mp4"))
    with pytest.raises(ConfigError, match="fps"):
        DecodeOptions(fps=0)
    with pytest.raises(ConfigError, match="short side"):
        DecodeOptions(size=224, short_side=100)


def test_a_frame_folder_is_a_video_in_natural_file_order(tmp_path):
    folder = write_frame_folder(tmp_path / "01_01", 12, name="img_{index}.jpg")  # img_1 ... img_12: 10 sorts after 9
    timed = list(iter_timed_clips(folder, 4, DecodeOptions(size=32, folder_fps=20)))
    assert [round(t, 6) for t, _ in timed] == [0.0, 0.2, 0.4]  # frames 1 / 20 s apart
    frames = [frame for _, clip in timed for frame in clip]
    assert frames[0].shape == (32, 32, 3) and source_index(levels_at(frames, 16)).tolist() == list(range(12))
    resampled = list(iter_frames(folder, DecodeOptions(size=32, fps=10, folder_fps=20)))
    assert source_index(levels_at(resampled, 16)).tolist() == [0, 2, 4, 6, 8, 10]


def levels_at(frames: list[np.ndarray], pixel: int) -> np.ndarray:
    return np.array([int(frame[pixel, pixel, 0]) for frame in frames])


def test_frame_folder_errors_name_the_folder_or_image(tmp_path):
    folder = write_frame_folder(tmp_path / "dive", 3)
    (folder / "00002.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"00002\.jpg: not a readable image \(frame 2 of"):
        list(iter_frames(folder))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no frames here")
    with pytest.raises(DataError, match="empty: a folder with no image files"):
        list(iter_frames(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="frame rate of frame folders"):
        DecodeOptions(folder_fps=0)
