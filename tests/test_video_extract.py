"""Feature extraction: layout + manifest, batching, resume, --force, failures, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("av", reason="PyAV is not installed (pip install 'aqakit[video]')")

from conftest import run_cli  # noqa: E402
from videos import write_frame_folder, write_video  # noqa: E402

from aqakit.data.features import load_feature_file  # noqa: E402
from aqakit.errors import ConfigError  # noqa: E402
from aqakit.video.i3d import I3DBackbone  # noqa: E402
from aqakit.video.decode import DecodeOptions, iter_frames  # noqa: E402
from aqakit.video.extract import _EvenlySpaced, extract_folder, extract_video, find_videos  # noqa: E402

SMALL = DecodeOptions(size=32)


@pytest.fixture
def videos(tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    return [write_video(folder / "a.mp4", 9), write_video(folder / "b.mkv", 13, codec="libx264")]


def test_one_array_per_video_and_a_manifest(backbone, videos, tmp_path):
    out = tmp_path / "features"
    report = extract_folder(videos, backbone, out, clip_len=4, options=SMALL, batch_size=2)
    assert report.written == ["a", "b"] and not report.failed
    assert load_feature_file(out / "a.npy", expected_dim=1024).shape == (2, 1024)  # 9 frames -> 2 clips of 4
    assert load_feature_file(out / "b.npy").shape == (3, 1024)
    manifest = json.loads((out / "manifest.json").read_text())
    settings = manifest["extraction"]
    assert settings["backbone"] == "i3d" and settings["clip_len"] == 4 and settings["crop_size"] == 32
    assert settings["weights_sha256"] == backbone.weights_sha256 and len(settings["weights_sha256"]) == 64
    assert manifest["videos"]["b"] == {"source": str(videos[1]), "clips": 3, "frames": 12}
    assert report.timing.clips == 5 and report.timing.decode_seconds > 0 and report.timing.model_seconds > 0


def test_batch_size_does_not_change_features(backbone, videos):
    one = extract_video(videos[1], backbone, 4, SMALL, batch_size=1).features
    three = extract_video(videos[1], backbone, 4, SMALL, batch_size=3).features
    np.testing.assert_allclose(one, three, rtol=1e-4, atol=1e-5)
    assert not np.allclose(one[0], one[1])  # different frames, different features


def test_resume_skips_complete_videos_and_force_redoes_them(backbone, videos, tmp_path):
    out = tmp_path / "features"
    extract_folder(videos[:1], backbone, out, clip_len=4, options=SMALL)
    report = extract_folder(videos, backbone, out, clip_len=4, options=SMALL)
    assert report.skipped == ["a"] and report.written == ["b"]
    np.save(out / "b.npy", np.zeros((1, 1024), np.float32))  # wrong clip count: incomplete
    report = extract_folder(videos, backbone, out, clip_len=4, options=SMALL)
    assert report.skipped == ["a"] and report.written == ["b"]
    report = extract_folder(videos, backbone, out, clip_len=4, options=SMALL, force=True)
    assert report.written == ["a", "b"]


def test_other_settings_are_refused_without_force(backbone, videos, tmp_path):
    out = tmp_path / "features"
    extract_folder(videos[:1], backbone, out, clip_len=4, options=SMALL)
    with pytest.raises(ConfigError, match=r"other settings \(clip_len 4 vs 8\).*--force"):
        extract_folder(videos[:1], backbone, out, clip_len=8, options=SMALL)


def test_force_with_other_settings_must_cover_every_video_of_the_folder(backbone, videos, tmp_path):
    out = tmp_path / "features"
    extract_folder(videos, backbone, out, clip_len=4, options=SMALL)
    before = np.load(out / "b.npy")
    with pytest.raises(ConfigError, match=r"would leave 1 arrays made with the old settings .*\(b\.npy\)"):
        extract_folder(videos[:1], backbone, out, clip_len=2, options=SMALL, force=True)
    np.testing.assert_array_equal(np.load(out / "b.npy"), before)
    report = extract_folder(videos, backbone, out, clip_len=2, options=SMALL, force=True)
    assert report.written == ["a", "b"] and json.loads((out / "manifest.json").read_text())["extraction"]["clip_len"] == 2


def test_a_manifest_from_before_upright_reads_as_stored_pixels(backbone, videos, tmp_path):
    out = tmp_path / "features"
    stored = DecodeOptions(size=32, upright=False)
    extract_folder(videos, backbone, out, clip_len=4, options=stored)
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["extraction"]["upright"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert extract_folder(videos, backbone, out, clip_len=4, options=stored).skipped == ["a", "b"]
    with pytest.raises(ConfigError, match="upright False vs True"):
        extract_folder(videos, backbone, out, clip_len=4, options=SMALL)


def test_out_must_be_a_folder(backbone, videos, tmp_path):
    (tmp_path / "features").write_text("")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        extract_folder(videos, backbone, tmp_path / "features", clip_len=4, options=SMALL)


def test_thumbnails_are_copies_of_at_most_the_limit_evenly_spaced(backbone, videos):
    result = extract_video(videos[1], backbone, 2, SMALL, max_thumbnails=4)  # 13 frames: 6 clips
    assert sorted(result.thumbnails) == [0, 2, 4] and all(t.base is None for t in result.thumbnails.values())
    assert result.clip_seconds == pytest.approx([i * 2 / 30 for i in range(6)], abs=1e-3)  # mkv: 1 ms time base
    kept = _EvenlySpaced(10)
    for i in range(1000):
        kept.offer(i, lambda: np.zeros(1))
    assert sorted(kept.items) == list(range(0, 1000, 128))


def test_a_users_file_is_never_replaced_silently(backbone, videos, tmp_path):
    out = tmp_path / "features"
    out.mkdir()
    mine = np.ones((7, 5), np.float32)
    np.save(out / "a.npy", mine)
    report = extract_folder(videos, backbone, out, clip_len=4, options=SMALL)
    assert "does not record it" in report.failed[str(videos[0])] and report.written == ["b"]
    np.testing.assert_array_equal(np.load(out / "a.npy"), mine)


def test_failures_are_reported_and_the_rest_continue(backbone, videos, tmp_path):
    broken = tmp_path / "videos" / "broken.mp4"
    broken.write_text("not a video")
    short = write_video(tmp_path / "videos" / "short.mp4", 3)
    report = extract_folder([broken, *videos, short], backbone, tmp_path / "f", clip_len=4, options=SMALL)
    assert report.written == ["a", "b"]
    assert "broken.mp4: not a video" in report.failed[str(broken)]
    assert "fewer than one clip of 4 frames" in report.failed[str(short)]


def test_two_videos_with_one_id_are_refused(backbone, videos, tmp_path):
    other = write_video(tmp_path / "a.mkv", 5)
    with pytest.raises(ConfigError, match="both be written as a.npy"):
        extract_folder([videos[0], other], backbone, tmp_path / "f", clip_len=4, options=SMALL)


def test_cli_extract(weights_file, videos, tmp_path, monkeypatch, capsys):
    out = tmp_path / "features"
    broken = videos[0].parent / "broken.webm"
    broken.write_text("nope")
    args = ["extract", videos[0].parent, "--weights", weights_file, "--out", out, "--clip-len", "4", "--size", "32"]
    status, stdout, stderr = run_cli(monkeypatch, capsys, *args)
    assert status == 1 and "broken.webm: not a video" in stderr
    assert "2 written, 0 skipped (already complete), 1 failed" in stdout and "clips/s" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["a.npy", "b.npy", "manifest.json"]
    broken.unlink()
    status, stdout, _ = run_cli(monkeypatch, capsys, *args)
    assert status == 0 and "0 written, 2 skipped" in stdout
    status, _, stderr = run_cli(monkeypatch, capsys, *args[:-4], "--device", "cuda:7")
    assert status == 2 and ("CUDA is not available" in stderr or "cuda:7" in stderr)


def test_backbone_input_is_rgb_in_minus_one_to_one(backbone):
    clips = np.zeros((1, 2, 4, 4, 3), np.uint8)
    clips[..., 0] = 255
    inputs = backbone.normalise(torch.from_numpy(clips))
    assert inputs.shape == (1, 3, 2, 4, 4)
    assert float(inputs[:, 0].min()) == 1.0 and float(inputs[:, 1].max()) == -1.0
    assert isinstance(backbone, I3DBackbone)


def test_find_videos_names_frame_folders_as_the_diving_adapters_expect(tmp_path, videos):
    mtl = tmp_path / "new_total_frames_256s"
    for name in ("01_01", "01_02"):
        write_frame_folder(mtl / name, 2)
    assert find_videos([mtl]) == {"01_01": mtl / "01_01", "01_02": mtl / "01_02"}
    fine = tmp_path / "FineDiving"
    for competition, clip in [("WorldCup_Men3m_r1", "0"), ("WorldCup_Men3m_r1", "11"), ("Tokyo2020_10m", "3")]:
        write_frame_folder(fine / competition / clip, 2)
    assert list(find_videos([fine])) == ["Tokyo2020_10m_3", "WorldCup_Men3m_r1_0", "WorldCup_Men3m_r1_11"]
    assert find_videos([mtl / "01_02", videos[0].parent]) == {"01_02": mtl / "01_02", "a": videos[0], "b": videos[1]}
    other = write_frame_folder(tmp_path / "elsewhere" / "0", 1)
    with pytest.raises(ConfigError, match="would both be written as 0.npy"):
        find_videos([fine / "WorldCup_Men3m_r1" / "0", other])
    (tmp_path / "nothing").mkdir()
    with pytest.raises(ConfigError, match="nothing: no video files .* and no frame folders"):
        find_videos([tmp_path / "nothing"])


def test_a_frame_folder_is_extracted_like_the_video_of_its_frames(backbone, tmp_path):
    """A folder of PNGs and a lossless video of the same frames decode to the same pixels (up to the video's
    4:2:0 colour rounding) and give features of the same shape."""
    video = write_video(tmp_path / "dive.mkv", 8, codec="ffv1")
    folder = write_frame_folder(tmp_path / "frames" / "dive", 8, name="{index}.png")
    from_video, from_folder = (np.stack(list(iter_frames(path, SMALL))).astype(int) for path in (video, folder))
    assert from_video.shape == from_folder.shape == (8, 32, 32, 3) and np.abs(from_video - from_folder).max() <= 2
    assert extract_video(folder, backbone, 4, SMALL).features.shape == (2, 1024)
    out = tmp_path / "features"
    report = extract_folder(find_videos([tmp_path / "frames"]), backbone, out, clip_len=4, options=SMALL)
    assert report.written == ["dive"] and json.loads((out / "manifest.json").read_text())["extraction"]["folder_fps"] == 25.0


def test_a_manifest_from_before_frame_folders_still_skips_its_videos(backbone, videos, tmp_path):
    out = tmp_path / "features"
    extract_folder(videos, backbone, out, clip_len=4, options=SMALL)
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["extraction"]["folder_fps"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert extract_folder(videos, backbone, out, clip_len=4, options=SMALL).skipped == ["a", "b"]


def test_cli_extract_frame_folders(weights_file, tmp_path, monkeypatch, capsys):
    root = tmp_path / "FineDiving"
    for competition, clip in [("Final_r1", "0"), ("Final_r1", "1")]:
        write_frame_folder(root / competition / clip, 4)
    out = tmp_path / "features"
    args = ["extract", root, "--weights", weights_file, "--out", out, "--clip-len", "2", "--size", "32", "--folder-fps", "30"]
    status, stdout, stderr = run_cli(monkeypatch, capsys, *args)
    assert status == 0 and "2 written" in stdout, stderr
    assert sorted(p.name for p in out.glob("*.npy")) == ["Final_r1_0.npy", "Final_r1_1.npy"]
    assert json.loads((out / "manifest.json").read_text())["extraction"]["folder_fps"] == 30.0


def make_old_port_folder(out):
    """Rewrite ``out``'s manifest as aqakit's first I3D port wrote it: no backbone_revision, no frames_per_video."""
    manifest = json.loads((out / "manifest.json").read_text())
    for key in ("backbone_revision", "frames_per_video"):
        del manifest["extraction"][key]
    (out / "manifest.json").write_text(json.dumps(manifest))


def test_the_manifest_records_the_backbone_revision(backbone, videos, tmp_path):
    out = tmp_path / "features"
    extract_folder(videos, backbone, out, clip_len=4, options=SMALL)
    settings = json.loads((out / "manifest.json").read_text())["extraction"]
    assert settings["backbone_revision"] == 2 and settings["frames_per_video"] is None


def test_a_folder_of_the_old_i3d_port_is_refused_and_re_extracted_with_force(backbone, videos, tmp_path):
    out = tmp_path / "features"
    extract_folder(videos, backbone, out, clip_len=4, options=SMALL)
    make_old_port_folder(out)
    before = {vid: np.load(out / f"{vid}.npy") for vid in ("a", "b")}
    with pytest.raises(ConfigError, match=r"holds i3d features of revision 1 \(aqakit's first I3D port, whose "
                                          r"MaxPool3d_4a_3x3 strided by 3.*not revision 2.*--force"):
        extract_folder(videos, backbone, out, clip_len=4, options=SMALL)
    for vid, array in before.items():  # refused: nothing touched
        np.testing.assert_array_equal(np.load(out / f"{vid}.npy"), array)
    assert "backbone_revision" not in json.loads((out / "manifest.json").read_text())["extraction"]
    with pytest.raises(ConfigError, match=r"other settings \(backbone_revision 1 vs 2\) would leave 1 arrays made with the old settings"):
        extract_folder(videos[:1], backbone, out, clip_len=4, options=SMALL, force=True)
    report = extract_folder(videos, backbone, out, clip_len=4, options=SMALL, force=True)
    assert report.written == ["a", "b"]
    assert json.loads((out / "manifest.json").read_text())["extraction"]["backbone_revision"] == 2


def test_cli_extract_into_an_old_port_folder(weights_file, videos, tmp_path, monkeypatch, capsys):
    out = tmp_path / "features"
    args = ["extract", *videos, "--weights", weights_file, "--out", out, "--clip-len", "4", "--size", "32"]
    assert run_cli(monkeypatch, capsys, *args)[0] == 0
    make_old_port_folder(out)
    status, _, stderr = run_cli(monkeypatch, capsys, *args)
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert status == 2 and len(errors) == 1 and "revision 1" in errors[0] and "--force" in errors[0]
    status, stdout, _ = run_cli(monkeypatch, capsys, *args, "--force")
    assert status == 0 and "2 written" in stdout


@pytest.fixture
def cheap_i3d(monkeypatch):
    """I3D features replaced by a cheap function of the clip (the mean colour, repeated to 1024): for tests of
    which frames become clips at 224 x 224, where the network's cost would dominate."""
    monkeypatch.setattr(I3DBackbone, "features", lambda self, inputs: inputs.mean(dim=(2, 3, 4)).repeat(1, 342)[:, :1024])


@pytest.mark.parametrize("n_frames", [37, 160, 401])
def test_cli_extract_160_frames_gives_10_clips_of_a_b_frame_video_of_any_length(
    cheap_i3d, weights_file, tmp_path, monkeypatch, capsys, n_frames
):
    """The sampling of MUSDL, CoRe and TPT: 160 frames spread over the video (repeated evenly when it is
    shorter), short side 256, centre crop 224 -> 10 clips of 16, on H.264 AVIs whose B-frames decode out of order."""
    import av

    if "libx264" not in av.codecs_available:
        pytest.skip("this FFmpeg has no libx264 encoder (needed for an AVI whose B-frames decode out of order)")
    video = write_video(tmp_path / f"dive{n_frames}.avi", n_frames, size=(80, 60), codec="libx264", b_frames=2)
    out = tmp_path / "features"
    status, stdout, stderr = run_cli(monkeypatch, capsys, "extract", video, "--weights", weights_file, "--out", out,
                                     "--frames", 160, "--clip-len", 16, "--short-side", 256, "--size", 224)
    assert status == 0, stderr
    assert load_feature_file(out / f"dive{n_frames}.npy", expected_dim=1024).shape == (10, 1024)
    manifest = json.loads((out / "manifest.json").read_text())
    settings = manifest["extraction"]
    assert (settings["frames_per_video"], settings["short_side"], settings["crop_size"]) == (160, 256, 224)
    assert manifest["videos"][f"dive{n_frames}"]["clips"] == 10


def test_short_side_and_crop_are_set_apart(backbone, tmp_path):
    video = write_video(tmp_path / "bands.mp4", 4, size=(96, 48), bands=True)
    whole = next(iter_frames(video, DecodeOptions(size=32)))  # short side 32: the 64 x 32 picture's centre
    zoomed = next(iter_frames(video, DecodeOptions(size=32, short_side=64)))  # 128 x 64, centre 32 x 32: green only
    assert whole.shape == zoomed.shape == (32, 32, 3)
    assert int(whole[:, 0, 0].mean()) > 200 and int(zoomed[:, 0, 1].mean()) > 200 and int(zoomed[:, 0, 0].mean()) < 50


def test_score_extracts_as_the_checkpoints_record_says(tmp_path):
    """The record of a checkpoint (a manifest's extraction) gives score's decoding: uniform sample, short side, crop;
    an old record (no revision, no frames_per_video) of i3d is refused, naming the fix."""
    from aqakit.pipeline.score_video import extraction_plan

    record = {"backbone": "i3d", "clip_len": 16, "fps": None, "crop_size": 224, "short_side": 256, "upright": True,
              "folder_fps": 25.0, "frames_per_video": 160, "backbone_revision": 2}
    name, clip_len, options = extraction_plan(record, tmp_path, None, None, None)
    assert (name, clip_len) == ("i3d", 16)
    assert options == DecodeOptions(size=224, short_side=256, frames=160)
    old = {key: value for key, value in record.items() if key not in ("backbone_revision", "frames_per_video")}
    with pytest.raises(ConfigError, match=r"trained on i3d features of revision 1 .*re-extract the training videos"):
        extraction_plan(old, tmp_path, None, None, None)
