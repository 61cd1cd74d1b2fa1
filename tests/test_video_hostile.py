"""Hostile video files: a corpus written by the tests (truncated, no video stream, 1 frame, 1x1
pixels, 4K, a header that lies, random bytes, empty, a named pipe, a folder, broken links, link
loops, a playlist whose read never returns) and decoders that really hang or really die. Each bad
file is one line naming it; the extraction finishes the rest; no decoder outlives its video."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av", reason="PyAV is not installed (pip install 'aqakit[video]')")

from conftest import run_cli  # noqa: E402
from videos import write_frame_folder, write_hostile_corpus, write_video  # noqa: E402

from aqakit.data.scale import ScoreScale  # noqa: E402
from aqakit.errors import DataError  # noqa: E402
from aqakit.models import create_model, save_checkpoint  # noqa: E402
from aqakit.video.decode import DecodeOptions, iter_frames, iter_timed_clips  # noqa: E402
from aqakit.video.extract import extract_folder, find_videos  # noqa: E402
from aqakit.video.isolated import isolated_timed_clips  # noqa: E402

SMALL = DecodeOptions(size=32)


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (Linux /proc)."""
    tasks = Path(f"/proc/{pid}/task")
    if not tasks.is_dir():
        return []
    found = []
    for task in tasks.iterdir():
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:  # the task ended meanwhile
            pass
    return found


def decoders() -> list[int]:
    """The decoder processes of this test process: children of its fork server."""
    return [grandchild for child in children(os.getpid()) for grandchild in children(child)]


needs_proc = pytest.mark.skipif(not Path(f"/proc/{os.getpid()}/task").is_dir(), reason="needs Linux /proc")


@needs_proc
def test_a_folder_of_hostile_files_fails_each_in_one_line_and_extracts_the_rest(weights_file, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "videos"
    expected = write_hostile_corpus(folder)
    write_video(folder / "good.mp4", 6)
    out = tmp_path / "features"
    started = time.monotonic()
    status, stdout, stderr = run_cli(monkeypatch, capsys, "extract", folder, "--weights", weights_file, "--out", out,
                                     "--clip-len", 2, "--size", 32, "--decode-timeout", 1)
    bad = sorted(name for name, part in expected.items() if part)
    assert status == 1 and f"3 written, 0 skipped (already complete), {len(bad)} failed" in stdout, stderr
    assert time.monotonic() - started < 30  # the playlist's hang costs its 1 s limit, nothing more
    listing = stderr[stderr.index(f"{len(bad)} videos failed"):].splitlines()[1:]
    assert len(listing) == len(bad)  # the end report: one line per bad file
    manifest = json.loads((out / "manifest.json").read_text())
    for name in bad:
        reason = manifest["failed"][Path(name).stem]["reason"]
        assert reason.startswith(str(folder / name)) and expected[name] in reason and "\n" not in reason, (name, reason)
        assert any(line.strip() == reason for line in listing), reason
    assert sorted(p.name for p in out.iterdir()) == ["good.npy", "manifest.json", "one_pixel.npy", "uhd.npy"]
    assert np.load(out / "uhd.npy").shape == (1, 1024) and np.load(out / "one_pixel.npy").shape == (2, 1024)
    assert manifest["writing"] == [] and sorted(manifest["videos"]) == ["good", "one_pixel", "uhd"]
    assert decoders() == []  # the stuck decoder was killed, not left behind


@needs_proc
@pytest.mark.parametrize("crash", [signal.SIGSEGV, signal.SIGKILL], ids=["SIGSEGV", "SIGKILL"])
def test_a_decoder_that_dies_is_one_line_and_the_next_video_is_extracted(backbone, tmp_path, crash):
    """A real signal to the real decoder process (a segfault in FFmpeg; the out-of-memory killer) while it is
    blocked in C on the playlist's pipe: the extraction reports it and goes on."""
    corpus = tmp_path / "videos"
    write_hostile_corpus(corpus)
    good = write_video(tmp_path / "good.mp4", 4)
    killed: list[int] = []

    def kill_the_first_decoder() -> None:
        deadline = time.monotonic() + 20
        while not killed and time.monotonic() < deadline:
            for pid in decoders():
                os.kill(pid, crash)
                killed.append(pid)
            time.sleep(0.01)

    killer = threading.Thread(target=kill_the_first_decoder)
    killer.start()
    report = extract_folder([corpus / "playlist.mp4", good], backbone, tmp_path / "f", clip_len=2, options=SMALL,
                            decode_timeout=60)
    killer.join()
    reason = report.failed[str(corpus / "playlist.mp4")]
    assert killed and f"the decoder process died (killed by {crash.name})" in reason and "\n" not in reason
    assert report.written == ["good"]


def test_the_limit_is_on_progress_so_a_long_decoding_is_not_cut(tmp_path):
    """Decoding twice (a uniform sample counts the frames first) for longer than the limit in total, a
    frame at a time well within it: no timeout, the same clips as decoding in this process."""
    video = write_video(tmp_path / "long.mp4", 600, size=(160, 120))
    options = DecodeOptions(size=112, frames=296)
    started = time.monotonic()
    isolated = list(isolated_timed_clips(video, 8, options, timeout=0.15))
    assert time.monotonic() - started > 0.15  # longer than the limit, which is on progress
    direct = list(iter_timed_clips(video, 8, options))
    assert len(isolated) == len(direct) == 37
    assert all(a[0] == b[0] and np.array_equal(a[1], b[1]) for a, b in zip(isolated, direct))


def test_a_frame_folder_with_a_broken_link_or_a_pipe_for_a_frame_names_it(tmp_path):
    folder = write_frame_folder(tmp_path / "dive", 3)
    (folder / "00002.jpg").unlink()
    (folder / "00002.jpg").symlink_to(tmp_path / "nowhere.jpg")
    with pytest.raises(DataError, match=r"00002\.jpg: a broken symbolic link \(to .*nowhere\.jpg\), not a frame image"):
        list(iter_frames(folder, SMALL))
    (folder / "00002.jpg").unlink()
    os.mkfifo(folder / "00002.jpg")
    with pytest.raises(DataError, match=r"00002\.jpg: a named pipe \(FIFO\), not a frame image"):
        list(isolated_timed_clips(folder, 1, SMALL, timeout=5))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its permissions")
def test_an_unreadable_file_is_one_line(tmp_path):
    video = write_video(tmp_path / "locked.mp4", 4)
    video.chmod(0)
    with pytest.raises(DataError, match=r"locked\.mp4: cannot be read \(Permission denied\)"):
        list(iter_frames(video, SMALL))


def test_find_videos_lists_what_is_named_like_a_video_and_never_follows_a_link_loop(tmp_path):
    folder = tmp_path / "videos"
    write_hostile_corpus(folder)
    found = find_videos([folder])
    assert "cycle" not in found and found["loop"] == folder / "loop.mp4" and found["folder"] == folder / "folder.mp4"
    assert found["pipe"] == folder / "pipe.mp4" and found["broken"] == folder / "broken.mp4"


@pytest.fixture
def checkpoint(tmp_path):
    """A tiny GDLT over 1024-d features that records no extraction (so score takes --backbone and --clip-len)."""
    model = create_model("gdlt", in_dim=1024, score_scale=ScoreScale(0.0, 10.0), hidden_dim=8, n_heads=2)
    return save_checkpoint(model, tmp_path / "checkpoint")


@pytest.mark.parametrize("name", ["random.mp4", "pipe.mp4", "playlist.mp4", "lying.mkv"])
def test_score_of_a_hostile_file_exits_with_one_line(weights_file, checkpoint, tmp_path, monkeypatch, capsys, name):
    corpus = tmp_path / "videos"
    expected = write_hostile_corpus(corpus)
    status, stdout, stderr = run_cli(monkeypatch, capsys, "score", corpus / name, "--checkpoint", checkpoint,
                                     "--weights", weights_file, "--backbone", "i3d", "--clip-len", 2,
                                     "--decode-timeout", 0.5)
    lines = stderr.strip().splitlines()
    assert status == 2 and len(lines) == 1 and lines[0].startswith(f"error: {corpus / name}: "), stderr
    assert expected[name] in lines[0] and stdout == ""
