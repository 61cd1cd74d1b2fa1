"""kill -9 during extraction: a real `aqakit extract` child process SIGKILLed in the middle of the run
(also from inside a feature file's write, inside a manifest write, and between a feature file's
rename and its manifest entry); the same command run again finishes the folder: every array equal
to an uninterrupted extraction's, no partial file left, a valid manifest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("av", reason="PyAV is not installed (pip install 'aqakit[video]')")

from conftest import run_cli  # noqa: E402
from videos import write_hostile_corpus, write_video  # noqa: E402

from aqakit.video.manifest import read_manifest  # noqa: E402

IDS = ["a", "b", "c", "d"]

#: Runs `aqakit extract ARGS` after arranging for the process to SIGKILL itself at the Nth EVENT:
#: "feature-write" half way through writing a feature file, "manifest-write" half way through writing
#: the manifest, "feature-renamed" just after a feature file is renamed into place.
KILLED_RUN = """
import io, os, signal, sys
import numpy as np
import aqakit.atomic, aqakit.video.manifest
from aqakit.cli import main

event, nth, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
calls = []

def due():
    calls.append(1)
    return len(calls) == nth

def die():
    os.kill(os.getpid(), signal.SIGKILL)

save, write_text, replace = np.save, aqakit.video.manifest.atomic_write_text, os.replace

def half_saved(file, array):
    if event == "feature-write" and due():
        buffer = io.BytesIO()
        save(buffer, array)
        with open(file, "wb") as handle:
            handle.write(buffer.getvalue()[: buffer.tell() // 2])
        die()
    save(file, array)

def half_written(path, text):
    if event == "manifest-write" and due():
        with aqakit.atomic.atomic_write(path) as partial:
            partial.write_text(text[: len(text) // 2])
            die()
    write_text(path, text)

def renamed(source, target):
    replace(source, target)
    if event == "feature-renamed" and str(target).endswith(".npy") and due():
        die()

np.save, aqakit.video.manifest.atomic_write_text, os.replace = half_saved, half_written, renamed
sys.argv = ["aqakit", *args]
main()
"""


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    for vid, frames in zip(IDS, (8, 12, 9, 16)):
        write_video(folder / f"{vid}.mp4", frames)
    return folder


def extract_args(videos: Path, weights: Path, out: Path) -> list[str]:
    return ["extract", str(videos), "--weights", str(weights), "--out", str(out), "--clip-len", "4", "--size", "32"]


@pytest.fixture(scope="module")
def uninterrupted(videos, weights_file, tmp_path_factory):
    """The arrays of an extraction nobody stopped (in this process, as the reruns)."""
    out = tmp_path_factory.mktemp("reference") / "features"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["aqakit", *extract_args(videos, weights_file, out)])
        from aqakit.cli import main

        with pytest.raises(SystemExit) as done:
            main()
    assert done.value.code in (0, None)
    return {vid: np.load(out / f"{vid}.npy") for vid in IDS}


def child_env() -> dict[str, str]:
    """This process's environment, with its thread count (so the child computes the same floats)."""
    return {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads()),
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}


def check_state_after_the_kill(out: Path) -> None:
    """What a kill may leave: the manifest valid (the old or the new one), every feature file in place whole."""
    manifest = read_manifest(out)
    for path in out.glob("[!.]*.npy"):  # not the hidden partial files, which nothing reads
        assert np.load(path).shape[1] == 1024  # whole, never a truncated array in place of a good one
    assert manifest is None or set(manifest["videos"]) <= set(IDS)


def rerun_finishes_the_folder(out, videos, weights_file, uninterrupted, monkeypatch, capsys) -> None:
    status, stdout, stderr = run_cli(monkeypatch, capsys, *extract_args(videos, weights_file, out))
    assert status == 0 and "0 failed" in stdout, stderr
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{vid}.npy" for vid in IDS] + ["manifest.json"])
    manifest = read_manifest(out)
    assert sorted(manifest["videos"]) == IDS and manifest["writing"] == [] and manifest["failed"] == {}
    for vid, reference in uninterrupted.items():
        array = np.load(out / f"{vid}.npy")
        np.testing.assert_array_equal(array, reference)
        assert manifest["videos"][vid]["clips"] == len(reference)


@pytest.mark.parametrize("event, nth", [
    ("feature-write", 2),  # b.npy half written
    ("manifest-write", 3),  # while marking b.npy as being written
    ("manifest-write", 4),  # while recording b.npy, after its rename
    ("feature-renamed", 3),  # c.npy in place, its manifest entry not yet written
])
def test_killed_inside_a_write_then_the_same_command_finishes_the_folder(
    event, nth, videos, weights_file, uninterrupted, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "features"
    run = subprocess.run([sys.executable, "-c", KILLED_RUN, event, str(nth), *extract_args(videos, weights_file, out)],
                         env=child_env(), capture_output=True, text=True, timeout=120)
    assert run.returncode == -signal.SIGKILL, run.stderr
    check_state_after_the_kill(out)
    if event != "feature-renamed":
        assert any(".partial" in p.name for p in out.iterdir())  # the kill did land inside a write
    rerun_finishes_the_folder(out, videos, weights_file, uninterrupted, monkeypatch, capsys)


def test_killed_from_outside_mid_run_then_the_same_command_finishes_the_folder(
    videos, weights_file, uninterrupted, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "features"
    child = subprocess.Popen([sys.executable, "-m", "aqakit", *extract_args(videos, weights_file, out)],
                             env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (out / "a.npy").exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    child.send_signal(signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL  # killed before it finished
    assert (out / "a.npy").exists() and not all((out / f"{vid}.npy").exists() for vid in IDS)
    check_state_after_the_kill(out)
    rerun_finishes_the_folder(out, videos, weights_file, uninterrupted, monkeypatch, capsys)


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (Linux /proc)."""
    below = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            below += [int(child) for child in (task / "children").read_text().split()]
        except OSError:  # the task ended meanwhile
            pass
    return below + [grandchild for child in below for grandchild in descendants(child)]


def is_running(pid: int) -> bool:
    """Whether ``pid`` is a process that has not ended (a zombie has ended; its parent did not reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path(f"/proc/{os.getpid()}/task").is_dir(), reason="needs Linux /proc to find the decoder")
def test_a_killed_extraction_leaves_no_decoder_behind(weights_file, tmp_path):
    """The decoder is blocked in C (the playlist's pipe) when its extraction is SIGKILLed: it is killed too."""
    corpus = tmp_path / "videos"
    write_hostile_corpus(corpus)
    child = subprocess.Popen([sys.executable, "-m", "aqakit", *extract_args(corpus / "playlist.mp4", weights_file,
                                                                             tmp_path / "features")],
                             env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(below := descendants(child.pid)) < 2 and time.monotonic() < deadline:  # the fork server and its decoder
        time.sleep(0.01)
    assert len(below) == 2, "no decoder started"
    child.send_signal(signal.SIGKILL)
    child.wait()
    deadline = time.monotonic() + 10
    while any(map(is_running, below)) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(map(is_running, below))
