"""End to end: generated videos -> `aqakit extract` (I3D) -> train a checkpoint on those features ->
`aqakit score --report` -> a score and a self-contained HTML report, opened in headless Chromium
when it is installed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

pytest.importorskip("av", reason="PyAV is not installed (pip install 'aqakit[video]')")

from conftest import DATA  # noqa: E402
from conftest import run_cli  # noqa: E402
from videos import write_frame_folder, write_random_i3d_weights, write_video  # noqa: E402


KINETICS = DATA / "i3d" / "i3d_kinetics400_rgb.npz"
DIVING_GIF = DATA / "mtl-aqa" / "diving_sample.gif"
TRAIN = ["--set", "model.args.hidden_dim=16", "--set", "train.batch_size=4", "--set", "train.crop_len=2", "--epochs", "3"]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync", "--hide-scrollbars"]


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    return write_random_i3d_weights(tmp_path_factory.mktemp("weights"))


def train_on_extracted_videos(tmp_path, monkeypatch, capsys, weights, size: int, clip_len: int, old_port: bool = False):
    """Videos -> extract -> csv benchmark folder -> a trained GDLT run; returns the run folder.

    ``old_port``: train on the features as if aqakit's first I3D port (revision 1) had written them: a
    manifest without ``backbone_revision``."""
    videos = tmp_path / "videos"
    videos.mkdir()
    scores = {}
    for i in range(6):  # 2-3 clips each; the score follows the length
        frames = clip_len * (2 + i % 2)
        write_video(videos / f"v{i}.mp4", frames, size=(48 + 8 * i, 40))
        scores[f"v{i}"] = 50.0 + 10 * (frames // clip_len) + i
    data = tmp_path / "data"
    status, out, err = run_cli(monkeypatch, capsys, "extract", videos, "--weights", weights, "--out", data / "features",
                               "--clip-len", clip_len, "--size", size, "--batch-size", 2)
    assert status == 0, err
    assert "6 written" in out
    if old_port:
        manifest = json.loads((data / "features" / "manifest.json").read_text())
        del manifest["extraction"]["backbone_revision"]
        (data / "features" / "manifest.json").write_text(json.dumps(manifest))
    rows = ["id,score,split"] + [f"{vid},{s},{'test' if i >= 4 else 'train'}" for i, (vid, s) in enumerate(scores.items())]
    (data / "labels.csv").write_text("\n".join(rows) + "\n")
    status, _, err = run_cli(monkeypatch, capsys, "train", "gdlt", "csv", "--data-root", data, *TRAIN,
                             "--runs-dir", tmp_path / "runs", "--name", "video")
    assert status == 0, err
    return tmp_path / "runs" / "video"


def score_and_check_report(run_dir, video, weights, tmp_path, monkeypatch, capsys, expected_clips: int):
    model_json = json.loads((run_dir / "seed-0" / "checkpoint" / "model.json").read_text())
    recorded = model_json["info"]["features"]
    assert recorded["backbone"] == "i3d" and recorded["feature_dim"] == 1024 and recorded["backbone_revision"] == 2

    report = tmp_path / "report.html"
    status, out, err = run_cli(monkeypatch, capsys, "score", video, "--checkpoint", run_dir, "--weights", weights,
                               "--report", report, "--json")
    assert status == 0, err
    result = json.loads(out)
    assert np.isfinite(result["score"]) and result["clips"] == expected_clips
    grade_weights = np.array(result["parts"]["grade_weights"])
    assert grade_weights.shape == (4,) and grade_weights.sum() == pytest.approx(1.0, abs=1e-5)
    assert len(result["clip_influence"]["drop"]) == expected_clips  # one run per clip for a short video

    html = report.read_text()
    assert f">{result['score']:.2f}<" in html
    assert html.count("<svg") >= 2 and html.count("data:image/png;base64,") == expected_clips
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing fetched from elsewhere
    assert "<script" not in html

    status, out, _ = run_cli(monkeypatch, capsys, "score", video, "--checkpoint", run_dir, "--weights", weights)
    assert status == 0 and f"{result['score']:.2f}" in out and "grade_weights" in out
    status, _, err = run_cli(monkeypatch, capsys, "score", video, "--checkpoint", run_dir, "--weights", weights,
                             "--report", report)
    assert status == 2 and "--overwrite" in err
    return report


def test_video_to_score_and_report(random_weights, tmp_path, monkeypatch, capsys):
    run_dir = train_on_extracted_videos(tmp_path, monkeypatch, capsys, random_weights, size=32, clip_len=4)
    video = write_video(tmp_path / "new_routine.mkv", 20, codec="libx264")
    report = score_and_check_report(run_dir, video, random_weights, tmp_path, monkeypatch, capsys, expected_clips=5)
    screenshot_shows_the_report(report, tmp_path)

    frames = write_frame_folder(tmp_path / "routine_frames", 12)  # a frame folder scores like a video
    status, out, err = run_cli(monkeypatch, capsys, "score", frames, "--checkpoint", run_dir, "--weights", random_weights,
                               "--folder-fps", "10", "--json")
    assert status == 0, err
    assert json.loads(out)["clips"] == 3 and json.loads(out)["clip_seconds"] == pytest.approx([0.0, 0.4, 0.8])

    status, _, err = run_cli(monkeypatch, capsys, "score", video, "--checkpoint", run_dir, "--weights", random_weights,
                             "--clip-len", "8")
    assert status == 2 and "clip_len=4" in err and "never seen" in err
    other = tmp_path / "other.npz"
    shutil.copy(random_weights, other)
    with open(other, "ab") as handle:
        handle.write(b"\0")
    status, _, err = run_cli(monkeypatch, capsys, "score", video, "--checkpoint", run_dir, "--weights", other)
    assert status == 2 and "not the weights the training features were extracted with" in err
    status, _, err = run_cli(monkeypatch, capsys, "score", video, "--checkpoint", run_dir)
    assert status == 2 and "--weights" in err
    status, _, err = run_cli(monkeypatch, capsys, "score", video, "--checkpoint", run_dir, "--weights", random_weights,
                             "--report", tmp_path / "missing" / "r.html")
    assert status == 2 and "does not exist" in err


def test_checkpoint_without_a_manifest_needs_the_backbone(random_weights, tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    (data / "features").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(6):
        np.save(data / "features" / f"v{i}.npy", rng.normal(size=(3, 1024)).astype(np.float32))
    (data / "labels.csv").write_text("id,score,split\n" + "".join(f"v{i},{i},{'test' if i > 3 else 'train'}\n" for i in range(6)))
    status, _, err = run_cli(monkeypatch, capsys, "train", "gdlt", "csv", "--data-root", data, *TRAIN,
                             "--runs-dir", tmp_path / "runs", "--name", "plain")
    assert status == 0, err
    video = write_video(tmp_path / "clip.mp4", 8)
    args = ["score", video, "--checkpoint", tmp_path / "runs" / "plain", "--weights", random_weights]
    status, _, err = run_cli(monkeypatch, capsys, *args)
    assert status == 2 and "does not record how its features were extracted" in err and "--backbone" in err
    status, out, err = run_cli(monkeypatch, capsys, *args, "--backbone", "i3d", "--clip-len", "4", "--json")
    assert status == 0, err
    assert json.loads(out)["clips"] == 2


def one_error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def test_a_checkpoint_trained_on_old_port_features_is_refused_with_the_fix(random_weights, tmp_path, monkeypatch, capsys):
    run_dir = train_on_extracted_videos(tmp_path, monkeypatch, capsys, random_weights, size=32, clip_len=4, old_port=True)
    model_json = run_dir / "seed-0" / "checkpoint" / "model.json"
    meta = json.loads(model_json.read_text())
    assert meta["info"]["features"]["backbone_revision"] == 1  # the folder's revision travels into the checkpoint
    video = write_video(tmp_path / "new.mp4", 8)
    args = ["score", video, "--checkpoint", run_dir, "--weights", random_weights]
    status, _, err = run_cli(monkeypatch, capsys, *args)
    line = one_error_line(err)
    assert status == 2 and "trained on i3d features of revision 1" in line and "MaxPool3d_4a_3x3 strided by 3" in line
    assert "re-extract the training videos (aqakit extract ... --force) and train again" in line

    del meta["info"]["features"]["backbone_revision"]  # a checkpoint saved before revisions were recorded
    model_json.write_text(json.dumps(meta))
    status, _, err = run_cli(monkeypatch, capsys, *args)
    assert status == 2 and "revision 1" in one_error_line(err)

    new_features = tmp_path / "new_features"  # revision 2 features given to `predict` with that checkpoint
    status, _, err = run_cli(monkeypatch, capsys, "extract", video, "--weights", random_weights, "--out", new_features,
                             "--clip-len", 4, "--size", 32)
    assert status == 0, err
    status, _, err = run_cli(monkeypatch, capsys, "predict", run_dir, new_features, "--out", tmp_path / "p.csv")
    line = one_error_line(err)
    assert status == 2 and "features of backbone revision 2" in line and "trained on revision 1" in line
    assert (run_dir / "seed-0" / "checkpoint").is_dir() and (tmp_path / "data" / "features" / "v0.npy").is_file()


@pytest.mark.slow
def test_real_kinetics_i3d_on_the_diving_sample(tmp_path, monkeypatch, capsys):
    """The same path with the real Kinetics I3D at 224x224, scoring the real MTL-AQA dive."""
    if not KINETICS.is_file() or not DIVING_GIF.is_file():
        pytest.skip(f"{KINETICS} or {DIVING_GIF} not found (set AQAKIT_DATA to the shared data folder)")
    run_dir = train_on_extracted_videos(tmp_path, monkeypatch, capsys, KINETICS, size=224, clip_len=8)
    report = score_and_check_report(run_dir, DIVING_GIF, KINETICS, tmp_path, monkeypatch, capsys, expected_clips=2)
    screenshot_shows_the_report(report, tmp_path)


def screenshot_shows_the_report(report, tmp_path, size=(900, 1400)) -> None:
    """Open the report in headless Chromium; the screenshot has the window's size and is not blank."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium not installed (apt-get install chromium); the report was checked as HTML only")
    import av

    shot = tmp_path / "report.png"
    command = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}",
               f"--window-size={size[0]},{size[1]}", f"--screenshot={shot}", report.resolve().as_uri()]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert shot.is_file(), completed.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with av.open(str(shot)) as container:
        image = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert image.shape == (size[1], size[0], 3)
    assert image.std() > 10  # not a blank page
    score_blue = (np.abs(image.astype(int) - [29, 78, 216]).sum(-1) < 40).sum()  # the score's colour, #1d4ed8
    assert score_blue > 200
