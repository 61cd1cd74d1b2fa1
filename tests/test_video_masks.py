"""Person masks (MediaPipe, or the user's PNGs), the foreground stream of `aqakit extract --masks`,
`aqakit score --masks` with a FineCausal checkpoint, and their bad input."""

from __future__ import annotations

import json
import pickle
import re
import types

import numpy as np
import pytest

pytest.importorskip("av", reason="PyAV is not installed (pip install 'aqakit[video]')")

from aqakit.errors import ConfigError, DataError  # noqa: E402
from aqakit.video.decode import DecodeOptions, iter_frames  # noqa: E402
from aqakit.video import masks as masks_module  # noqa: E402
from aqakit.video.masks import FrameMasks, mask_folder, person_masks, read_masks  # noqa: E402
from conftest import DATA, run_cli  # noqa: E402
from videos import write_frame_folder, write_hostile_corpus, write_video  # noqa: E402

DIVING_GIF = DATA / "mtl-aqa" / "diving_sample.gif"
SIZE, CLIP_LEN = 32, 4
OPTIONS = DecodeOptions(size=SIZE)
DECODING = ["--clip-len", CLIP_LEN, "--size", SIZE, "--batch-size", 2]


def needs_mediapipe() -> None:
    from aqakit.video.masks import _import_mediapipe

    try:
        _import_mediapipe()
    except ConfigError as exc:
        pytest.skip(f"MediaPipe cannot be imported ({exc})")


def box_masks(path, options: DecodeOptions, person: bool = True, extra_frames: int = 0) -> FrameMasks:
    """Stand-in mask maker: the left half of every frame is the person (none with ``person=False``)."""
    n = sum(1 for _ in iter_frames(path, options)) + extra_frames
    masks = np.zeros((n, options.size, options.size), np.uint8)
    masks[:, :, : options.size // 2] = int(person)
    return FrameMasks(masks, np.full(n, person), str(path))


def write_png(path, image: np.ndarray) -> None:
    import av

    with av.open(str(path), mode="w", format="image2") as container:
        stream = container.add_stream("png", rate=1)
        stream.height, stream.width = image.shape[:2]
        stream.pix_fmt = "rgb24"
        for packet in [*stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")), *stream.encode()]:
            container.mux(packet)


def test_mediapipe_records_frames_without_a_person_and_resumes(tmp_path):
    needs_mediapipe()
    video = write_video(tmp_path / "grey.mp4", 6)  # flat grey frames: nobody in them
    report = mask_folder({"grey": video}, tmp_path / "masks", OPTIONS)
    assert report.written == {"grey": (6, 0)}
    masks = read_masks(tmp_path / "masks", "grey", OPTIONS)
    assert masks.masks.shape == (6, SIZE, SIZE) and not masks.found.any() and not masks.masks.any()
    manifest = json.loads((tmp_path / "masks" / "manifest.json").read_text())
    assert manifest["videos"]["grey"] == {"source": str(video), "frames": 6, "with_person": 0}
    assert manifest["extraction"]["mediapipe"] == "0.10.14" and manifest["extraction"]["crop_size"] == SIZE
    assert mask_folder({"grey": video}, tmp_path / "masks", OPTIONS).skipped == ["grey"]
    with pytest.raises(ConfigError, match="crop_size 32 vs 48"):  # masks of other frames are never used
        read_masks(tmp_path / "masks", "grey", DecodeOptions(size=48))


@pytest.mark.slow
def test_mediapipe_finds_the_diver_in_the_real_dive():
    needs_mediapipe()
    if not DIVING_GIF.is_file():
        pytest.skip(f"{DIVING_GIF} not found (set AQAKIT_DATA to the shared data folder)")
    masks = person_masks(DIVING_GIF, DecodeOptions())
    assert masks.masks.shape == (21, 224, 224) and masks.masks.max() == 1
    assert 10 <= masks.found.sum() < 21  # measured: 17 of 21; the diver leaves the crop near the end
    person = masks.masks[masks.found].reshape(int(masks.found.sum()), -1).mean(1)
    assert np.all((person > 0.002) & (person < 0.5))  # a diver, not the whole frame
    assert not masks.masks[~masks.found].any()


def test_png_masks_in_finediving_hm_layout_are_read_like_frames(tmp_path):
    clip = tmp_path / "hm" / "Tokyo2020_10m" / "3"
    clip.mkdir(parents=True)
    for t in range(4):
        image = np.zeros((40, 40, 3), np.uint8)
        image[:, :20] = 255 * (t != 2)  # frame 3 has nobody
        write_png(clip / f"{t:05d}.png", image)
    masks = read_masks(tmp_path / "hm", "Tokyo2020_10m_3", OPTIONS)
    assert masks.masks.shape == (4, SIZE, SIZE) and masks.found.tolist() == [True, True, False, True]
    assert masks.masks[0, :, :15].all() and not masks.masks[0, :, 17:].any()
    assert read_masks(clip, "any id", OPTIONS).found.tolist() == masks.found.tolist()  # one video's folder itself
    with pytest.raises(DataError, match="no mask folder for video 'Tokyo2020_10m_4'"):
        read_masks(tmp_path / "hm", "Tokyo2020_10m_4", OPTIONS)
    (clip / "00001.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"00001\.png: not a readable image \(frame 2 of"):
        read_masks(tmp_path / "hm", "Tokyo2020_10m_3", OPTIONS)


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, stderr
    return " ".join(lines)


def test_extract_masks_writes_the_foreground_stream_on_the_clip_grid(weights_file, backbone, tmp_path, monkeypatch, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    for i, frames in enumerate((8, 13)):  # 2 and 3 clips (a one-frame tail)
        write_video(videos / f"v{i}.mp4", frames, bands=True)
    mask_folder({f"v{i}": videos / f"v{i}.mp4" for i in range(2)}, tmp_path / "masks", OPTIONS, make=box_masks,
                settings={"masks": "left half (test)"})
    out = tmp_path / "data" / "features"
    args = ["extract", videos, "--weights", weights_file, "--out", out, "--masks", tmp_path / "masks", *DECODING]
    status, stdout, err = run_cli(monkeypatch, capsys, *args)
    assert status == 0, err
    assert "foreground: 2 written" in stdout
    foreground = tmp_path / "data" / "foreground"
    for i, clips in enumerate((2, 3)):
        whole, fore = np.load(out / f"v{i}.npy"), np.load(foreground / f"v{i}.npy")
        assert whole.shape == fore.shape == (clips, 1024) and not np.allclose(whole, fore)
    clip = np.stack([f for _, f in zip(range(CLIP_LEN), iter_frames(videos / "v0.mp4", OPTIONS))])
    clip[:, :, SIZE // 2:] = 0  # F is the backbone on frames x mask
    np.testing.assert_allclose(np.load(foreground / "v0.npy")[0], backbone.encode(clip[None])[0], rtol=1e-4, atol=1e-5)
    manifest = json.loads((foreground / "manifest.json").read_text())
    assert manifest["extraction"]["foreground"]["masks"]["masks"] == "left half (test)"
    status, stdout, _ = run_cli(monkeypatch, capsys, *args)  # resumable: nothing left to do
    assert status == 0 and "2 skipped" in stdout and "foreground: 0 written, 2 skipped" in stdout
    status, _, err = run_cli(monkeypatch, capsys, "extract", videos, "--weights", weights_file, "--out", out,
                             "--foreground-out", tmp_path / "f", *DECODING)
    assert status == 2 and "--foreground-out needs --masks" in err


@pytest.mark.parametrize("maker, message", [
    (lambda path, options: box_masks(path, options, extra_frames=5), "masks of 13 frames, but .* has 8 to 11 frames"),
    (lambda path, options: box_masks(path, options, person=False), "no person found in any of its 8 frames"),
])
def test_bad_masks_fail_the_video_with_one_line(maker, message, weights_file, tmp_path, monkeypatch, capsys):
    video = write_video(tmp_path / "v.mp4", 8)
    mask_folder({"v": video}, tmp_path / "masks", OPTIONS, make=maker, settings={"masks": "test"})
    status, _, err = run_cli(monkeypatch, capsys, "extract", video, "--weights", weights_file, "--out",
                             tmp_path / "features", "--masks", tmp_path / "masks", *DECODING)
    assert status == 1
    assert len([line for line in err.splitlines() if line.startswith("failed")]) == 1
    assert re.search(message, one_error_line(err)), err
    assert not (tmp_path / "foreground" / "v.npy").exists()  # no features of empty or misaligned masks


def fake_mediapipe() -> types.SimpleNamespace:
    """A MediaPipe stand-in whose Pose tracker finds nobody: the decoding around it is what is tested."""
    class Pose:
        def __init__(self, **settings):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def process(self, frame):
            return types.SimpleNamespace(pose_landmarks=None, segmentation_mask=None)

    return types.SimpleNamespace(__version__="fake", solutions=types.SimpleNamespace(pose=types.SimpleNamespace(Pose=Pose)))


def test_a_hung_decoder_fails_its_video_in_one_line_and_the_masks_go_on(tmp_path, monkeypatch, capsys):
    """The masks are made from frames decoded in a child process under --decode-timeout, as extract's."""
    monkeypatch.setattr(masks_module, "_import_mediapipe", fake_mediapipe)
    corpus = tmp_path / "videos"
    write_hostile_corpus(corpus)
    good = write_video(tmp_path / "good.mp4", 5)
    status, stdout, err = run_cli(monkeypatch, capsys, "masks", corpus / "playlist.mp4", good, "--out", tmp_path / "masks",
                                  "--size", SIZE, "--decode-timeout", 1)
    assert status == 1 and "1 written, 0 skipped (already complete), 1 failed" in stdout, err
    failed = [line for line in err.splitlines() if line.startswith("failed")]
    assert len(failed) == 1 and "playlist.mp4: " in failed[0] and "the decoder decoded no frame for 1 s" in failed[0]
    assert "good: a person in 0 of 5 frames" in stdout
    assert read_masks(tmp_path / "masks", "good", OPTIONS).masks.shape == (5, SIZE, SIZE)


def test_masks_without_mediapipe_name_the_extra(monkeypatch, tmp_path, capsys):
    import builtins

    real_import = builtins.__import__

    def no_mediapipe(name, *args, **kwargs):
        if name == "mediapipe":
            raise ImportError("No module named 'mediapipe'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mediapipe)
    video = write_video(tmp_path / "v.mp4", 4)
    status, _, err = run_cli(monkeypatch, capsys, "masks", video, "--out", tmp_path / "masks")
    assert status == 2 and "pip install 'aqakit[masks]'" in err and len(err.strip().splitlines()) == 1


def test_a_finecausal_checkpoint_scores_a_raw_video_with_its_masks(weights_file, tmp_path, monkeypatch, capsys):
    videos, data = tmp_path / "videos", tmp_path / "data"
    videos.mkdir()
    data.mkdir()
    annotations, keys = {}, []
    for k in range(8):  # 16 frames, 4 clips; stages change at frames 5 and 10
        write_video(videos / f"Gen_{k}.mp4", 16, size=(48 + 4 * k, 40))
        annotations[("Gen", k)] = ["107B", 40.0 + 5 * k, 3.0, np.array([5.0, 10.0]), np.repeat([0, 1, 2], [5, 5, 6])]
        keys.append(("Gen", k))
    for name, value in [("fine-grained_annotation_aqa.pkl", annotations), ("train_split.pkl", keys[:6]),
                        ("test_split.pkl", keys[6:])]:
        (data / name).write_bytes(pickle.dumps(value, protocol=4))
    mask_folder({f"Gen_{k}": videos / f"Gen_{k}.mp4" for k in range(8)}, tmp_path / "masks", OPTIONS, make=box_masks,
                settings={"masks": "left half (test)"})
    status, _, err = run_cli(monkeypatch, capsys, "extract", videos, "--weights", weights_file, "--out", data / "features",
                             "--masks", tmp_path / "masks", *DECODING)
    assert status == 0, err
    status, _, err = run_cli(monkeypatch, capsys, "train", "finecausal", "finediving", "--data-root", data,
                             "--preset", "finecausal-synthetic", "--set", "benchmark_args.foreground=true",
                             "--set", "model.args.n_exemplars=2", "--epochs", 2, "--runs-dir", tmp_path / "runs", "--name", "fc")
    assert status == 0, err
    run = tmp_path / "runs" / "fc"
    info = json.loads((run / "seed-0" / "checkpoint" / "model.json").read_text())["info"]
    assert info["foreground"]["foreground"]["masks"]["masks"] == "left half (test)"

    new = write_video(tmp_path / "new.mp4", 16)
    mask_folder({"new": new}, tmp_path / "new-masks", OPTIONS, make=box_masks, settings={"masks": "left half (test)"})
    report = tmp_path / "report.html"
    status, out, err = run_cli(monkeypatch, capsys, "score", new, "--checkpoint", run, "--weights", weights_file,
                               "--masks", tmp_path / "new-masks", "--report", report, "--json")
    assert status == 0, err
    result = json.loads(out)
    assert np.isfinite(result["score"]) and result["clips"] == 4
    assert np.array(result["parts"]["stage_attention"]).shape == (3, 3)
    assert len(result["marks"]["transition_probability"]) == 2  # the two predicted cuts, ringed on the timeline
    assert result["extraction"]["foreground"]["method"].startswith("frames x person mask")
    html = report.read_text()
    assert "predicted stage transition" in html and html.count('class="marked"') == 2

    status, _, err = run_cli(monkeypatch, capsys, "score", new, "--checkpoint", run, "--weights", weights_file)
    assert status == 2 and "reads [whole frame | foreground] features; pass --masks" in err
    status, _, err = run_cli(monkeypatch, capsys, "score", new, "--checkpoint", run, "--weights", weights_file,
                             "--masks", tmp_path / "masks")
    assert status == 2 and "no masks for video 'new'" in err
