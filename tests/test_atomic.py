"""Crash safety of every write: real SIGKILLs of real writers, a real full and a real read-only
filesystem (a small tmpfs, where the test may mount one), broken checkpoints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors import SafetensorError

from aqakit.atomic import PREVIOUS_SUFFIX, atomic_write_text, recover_folder, replace_folder
from aqakit.data.scale import ScoreScale
from aqakit.errors import AqakitError, WriteError
from aqakit.models import create_model, load_checkpoint, save_checkpoint

#: A writer that replaces one file with 4 MB of "a" or "b" as fast as it can, until killed.
WRITER = """
import sys
from aqakit.atomic import atomic_write_text
target, n = sys.argv[1], 4_000_000
atomic_write_text(target, "a" * n)
print("ready", flush=True)
i = 0
while True:
    i += 1
    atomic_write_text(target, ("b" if i % 2 else "a") * n)
"""


def test_a_writer_killed_at_any_moment_leaves_the_old_or_the_new_file_never_a_part(tmp_path):
    target = tmp_path / "summary.json"
    for delay in (0.0, 0.013, 0.031, 0.057, 0.101):  # five kills at different points of a write
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
        assert writer.stdout.readline().strip() == "ready"
        time.sleep(delay)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        assert writer.returncode == -signal.SIGKILL
        text = target.read_text()
        assert len(text) == 4_000_000 and set(text) in ({"a"}, {"b"})
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name != "summary.json")
    assert all(name.startswith(".summary.json.") and ".partial" in name for name in leftovers)  # hidden, never read


@pytest.fixture
def small_filesystem(tmp_path):
    """A 256 KiB tmpfs mounted at tmp_path/small (needs root and a kernel that allows it)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({made.stderr.strip() or 'mount failed'})")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_full_disk_is_one_line_and_the_previous_file_survives(small_filesystem):
    target = small_filesystem / "metrics.csv"
    atomic_write_text(target, "epoch\n0\n")
    with pytest.raises(WriteError, match=r"metrics\.csv: cannot write \(no space left on the device\)") as caught:
        atomic_write_text(target, "x" * 1_000_000)
    assert "\n" not in str(caught.value)
    assert target.read_text() == "epoch\n0\n"
    assert sorted(p.name for p in small_filesystem.iterdir()) == ["metrics.csv"]  # nothing half written left


def test_a_read_only_folder_is_one_line_and_the_previous_file_survives(small_filesystem):
    target = small_filesystem / "config.yaml"
    atomic_write_text(target, "model: gdlt\n")
    subprocess.run(["mount", "-o", "remount,ro", str(small_filesystem)], check=True)
    with pytest.raises(WriteError, match=r"config\.yaml: cannot write \(read-only file system\)"):
        atomic_write_text(target, "model: cofinal\n")
    assert target.read_text() == "model: gdlt\n"


def tiny_model(name: str = "gdlt", in_dim: int = 8):
    return create_model(name, in_dim=in_dim, score_scale=ScoreScale(0.0, 10.0), hidden_dim=8, n_heads=2)


def test_a_checkpoint_that_does_not_fit_leaves_the_previous_one_loadable(small_filesystem):
    small = tiny_model()
    save_checkpoint(small, small_filesystem / "checkpoint", {"epoch": 1})
    big = create_model("gdlt", in_dim=512, score_scale=ScoreScale(0.0, 10.0))  # megabytes of weights
    with pytest.raises(WriteError, match="checkpoint: cannot write"):
        save_checkpoint(big, small_filesystem / "checkpoint", {"epoch": 2})
    model, meta = load_checkpoint(small_filesystem / "checkpoint")
    assert meta["info"] == {"epoch": 1} and model.in_dim == 8
    assert sorted(p.name for p in small_filesystem.iterdir()) == ["checkpoint"]


def test_a_checkpoint_swap_stopped_between_its_renames_is_put_back(tmp_path):
    folder = tmp_path / "checkpoint"
    save_checkpoint(tiny_model(), folder, {"epoch": 1})
    os.replace(folder, folder.with_name(folder.name + PREVIOUS_SUFFIX))  # the state after the first rename
    model, meta = load_checkpoint(folder)
    assert meta["info"] == {"epoch": 1} and folder.is_dir()
    assert not folder.with_name(folder.name + PREVIOUS_SUFFIX).exists()


def test_replace_folder_swaps_the_whole_folder(tmp_path):
    folder = tmp_path / "out"
    replace_folder(folder, lambda new: (new / "a.txt").write_text("1"))
    replace_folder(folder, lambda new: (new / "b.txt").write_text("2"))
    assert sorted(p.name for p in folder.iterdir()) == ["b.txt"]
    recover_folder(folder)  # nothing to recover: a no-op
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("damage", ["truncated weights", "edited model.json", "missing model.json",
                                    "another feature dimension", "another model"])
def test_a_broken_checkpoint_is_one_line_naming_the_file(tmp_path, damage):
    folder = tmp_path / "checkpoint"
    save_checkpoint(tiny_model(), folder)
    weights, meta_path = folder / "model.safetensors", folder / "model.json"
    meta = json.loads(meta_path.read_text())
    if damage == "truncated weights":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
        expected = r"model\.safetensors: cannot load weights"
    elif damage == "edited model.json":
        meta_path.write_text(meta_path.read_text()[:-20])
        expected = r"model\.json: not a valid aqakit checkpoint description"
    elif damage == "missing model.json":
        meta_path.unlink()
        expected = r"checkpoint: no checkpoint found"
    elif damage == "another feature dimension":
        meta_path.write_text(json.dumps({**meta, "in_dim": 16}))
        expected = r"model\.safetensors: cannot load weights into the gdlt .*\(clip_projection\..* has shape \(4, 8\), the model needs \(8, 16\)\)"
    else:
        meta_path.write_text(json.dumps({**meta, "model": "cofinal", "hparams": {}}))
        expected = r"model\.safetensors: cannot load weights into the cofinal .*\(\d+ missing tensor\(s\), e\.g\. .*; \d+ unexpected tensor\(s\), e\.g\. "
    with pytest.raises(AqakitError, match=expected) as caught:
        load_checkpoint(folder)
    assert "\n" not in str(caught.value)
    assert not isinstance(caught.value, SafetensorError)


#: A process that holds a folder's lock until it is killed.
HOLDER = """
import sys, time
from aqakit.locking import folder_lock
with folder_lock(sys.argv[1], "run"):
    print("holding", flush=True)
    time.sleep(600)
"""


def test_a_second_writer_is_refused_naming_the_holder_and_a_killed_holder_leaves_no_lock(tmp_path, monkeypatch, capsys):
    from conftest import run_cli

    run = tmp_path / "runs" / "r"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        train = ["train", "ridge", "synthetic", "--runs-dir", tmp_path / "runs", "--name", "r",
                 "--set", "benchmark_args.n_train=40", "--set", "benchmark_args.n_test=10"]
        status, out, err = run_cli(monkeypatch, capsys, *train)
        message = (out + err).strip()
        assert status == 2
        assert f"another process is writing this run (process {holder.pid} on" in message
        assert [line for line in message.splitlines() if "another process" in line] == [
            line for line in message.splitlines() if line.startswith("error:")]  # the error is one line
        assert not run.exists()  # nothing written, nothing removed
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    status, out, err = run_cli(monkeypatch, capsys, *train)  # the kernel released the dead holder's lock
    assert status == 0 and (run / "summary.json").is_file()


def test_a_second_extraction_into_a_folder_being_written_is_refused(tmp_path):
    from aqakit.video.extract import extract_folder
    from aqakit.errors import RunDirectoryError

    out = tmp_path / "features"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(RunDirectoryError, match=f"another process is writing this feature folder \\(process {holder.pid} "):
            extract_folder([], backbone=None, out_dir=out, clip_len=16)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
