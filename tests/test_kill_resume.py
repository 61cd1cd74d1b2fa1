"""``kill -9`` during training loses at most one epoch and resumes bit-identically.

A real child process trains a two-seed run and SIGKILLs itself at an exact point: in the middle of
an epoch, in the middle of writing ``resume/last.ckpt`` (after half of its bytes), after a seed's
last epoch but before its summary, and between the two seeds. This process (not the one killed)
then resumes the run, and every figure and weight must equal those of an uninterrupted run of the
same configuration exactly: ``metrics.csv`` (all but its timing columns), predictions, summaries,
the selected weights and the whole resume state (weights, moving average, optimiser, schedule),
on the CPU in float32. The configuration has dropout, a moving average of the weights and best-val
selection, so every piece of state a resume needs is exercised.
"""

from __future__ import annotations

import csv
import json
import signal
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from aqakit.train.config import build_config
from aqakit.train.runner import train_run
from aqakit.train.task import AQATask

SETTINGS = {
    "benchmark_args": {"n_train": 48, "n_test": 24, "dim": 16},
    "model.args": {"hidden_dim": 16, "n_queries": 4},  # GDLT: dropout 0.3, so the global generator matters
    "train.epochs": 4,
    "train.batch_size": 16,  # 3 batches an epoch
    "train.crop_len": 24,
    "train.select": "best-val",
    "train.ema_decay": 0.9,
    "train.precision": "32-true",
}
SEEDS = [0, 1]
TIMING_COLUMNS = ("train_seconds", "epoch_seconds")

#: Trains the run of SETTINGS and SIGKILLs itself at POINT of seed SEED (epoch EPOCH, where it has one).
CHILD = """
import io, json, os, signal, sys
from pathlib import Path
import torch
from aqakit.train import runner
from aqakit.train.config import build_config
from aqakit.train.task import AQATask

point, seed, epoch, run_dir, settings, seeds = sys.argv[1:]
seed, epoch, settings, seeds = int(seed), int(epoch), json.loads(settings), json.loads(seeds)
seed_folder = f"seed-{seed}"

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def die_when_called_for_the_seed(name):  # runner.<name>(config, seed, ...) kills the process for SEED
    original = getattr(runner, name)
    def wrapped(config, s, *args, **kwargs):
        if s == seed:
            die()
        return original(config, s, *args, **kwargs)
    setattr(runner, name, wrapped)

if point == "mid-epoch":  # before the second batch of the epoch
    step = AQATask.training_step
    def training_step(self, batch, batch_idx):
        if self.record.seed_dir.path.name == seed_folder and self.current_epoch == epoch and batch_idx == 1:
            die()
        return step(self, batch, batch_idx)
    AQATask.training_step = training_step
elif point == "mid-checkpoint-save":  # half of last.ckpt's bytes are on disk
    save = torch.save
    def half_a_save_then_die(checkpoint, f, *args, **kwargs):
        if seed_folder in str(f) and checkpoint.get("epoch") == epoch:
            data = io.BytesIO()
            save(checkpoint, data)
            with open(f, "wb") as handle:
                handle.write(data.getvalue()[: len(data.getvalue()) // 2])
                handle.flush()
                os.fsync(handle.fileno())
            die()
        return save(checkpoint, f, *args, **kwargs)
    torch.save = half_a_save_then_die
elif point == "before-seed-summary":  # every epoch and its last.ckpt done, the summary not written
    die_when_called_for_the_seed("finish_seed")
elif point == "between-seeds":  # the seed before is finished, this one not begun
    die_when_called_for_the_seed("train_seed")
runner.train_run(build_config("gdlt", "synthetic", settings), Path(run_dir), seeds, device="cpu")
sys.exit(3)  # the kill point was never reached
"""

#: point -> (seed, epoch) where the child dies, the epoch its last.ckpt then holds (None: no
#: last.ckpt is read) and the epochs the resume trains, per seed.
KILLS = {
    "mid-epoch": (0, 2, 1, {0: [2, 3], 1: [0, 1, 2, 3]}),
    "mid-checkpoint-save": (1, 2, 1, {1: [2, 3]}),
    "before-seed-summary": (0, -1, 3, {1: [0, 1, 2, 3]}),
    "between-seeds": (1, -1, None, {1: [0, 1, 2, 3]}),
}


def config():
    return build_config("gdlt", "synthetic", SETTINGS)


#: Every process here computes with this many threads: float sums differ in their last bits between
#: thread counts.
THREADS = 1


@pytest.fixture(scope="module", autouse=True)
def same_threads_everywhere():
    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("uninterrupted") / "run"
    train_run(config(), run, SEEDS, device="cpu")
    return run


def kill_during_training(point: str, run: Path) -> None:
    seed, epoch, _, _ = KILLS[point]
    child = subprocess.run(
        [sys.executable, "-c", CHILD, point, str(seed), str(epoch), str(run), json.dumps(SETTINGS), json.dumps(SEEDS)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": str(THREADS)},
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]


def metrics_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in csv.DictReader(handle)]


def metrics_epochs(path: Path) -> list[int]:
    """The epochs ``metrics.csv`` at ``path`` holds ([] when there is none)."""
    return [int(row["epoch"]) for row in metrics_rows(path)] if path.is_file() else []


def without_timing(summary: dict) -> dict:
    summary = {k: v for k, v in summary.items() if k != "timing"}
    if "per_seed" in summary:
        summary["per_seed"] = [without_timing(s) for s in summary["per_seed"]]
    return summary


def assert_same_tensors(a, b, where: str) -> None:
    """``a`` and ``b`` (nested dicts, lists and tensors) equal exactly."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same_tensors(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_tensors(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def assert_bit_identical(run: Path, reference: Path) -> None:
    read = lambda path: json.loads(path.read_text())  # noqa: E731
    assert without_timing(read(run / "summary.json")) == without_timing(read(reference / "summary.json"))
    for seed in SEEDS:
        mine, theirs = run / f"seed-{seed}", reference / f"seed-{seed}"
        assert metrics_rows(mine / "metrics.csv") == metrics_rows(theirs / "metrics.csv"), seed
        assert (mine / "predictions.csv").read_bytes() == (theirs / "predictions.csv").read_bytes(), seed
        assert without_timing(read(mine / "summary.json")) == without_timing(read(theirs / "summary.json")), seed
        assert read(mine / "checkpoint" / "model.json") == read(theirs / "checkpoint" / "model.json"), seed
        assert_same_tensors(load_file(mine / "checkpoint" / "model.safetensors"),
                            load_file(theirs / "checkpoint" / "model.safetensors"), f"seed {seed} selected weights")
        resumed, whole = (torch.load(path / "resume" / "last.ckpt", weights_only=True) for path in (mine, theirs))
        for part in ("state_dict", "optimizer_states", "lr_schedulers", "epoch", "global_step"):
            assert_same_tensors(resumed[part], whole[part], f"seed {seed} last.ckpt {part}")


@pytest.mark.parametrize("point", list(KILLS))
def test_a_run_killed_at_any_point_resumes_to_the_uninterrupted_run_bit_for_bit(
    tmp_path, monkeypatch, uninterrupted, point
):
    seed, _, checkpoint_epoch, retrained = KILLS[point]
    run = tmp_path / "run"
    kill_during_training(point, run)

    seed_dir = run / f"seed-{seed}"
    if checkpoint_epoch is not None:  # the last completed epoch's state is whole, whatever the kill cut
        state = torch.load(seed_dir / "resume" / "last.ckpt", weights_only=True)
        assert state["epoch"] == checkpoint_epoch
        assert [row["epoch"] for row in state["aqakit"]["history"]] == list(range(checkpoint_epoch + 1))
    if point == "mid-checkpoint-save":  # the cut file is a hidden partial; metrics.csv has one row beyond
        last = seed_dir / "resume" / "last.ckpt"
        (cut,) = [path for path in last.parent.iterdir() if path != last]
        assert cut.name.startswith(".last.ckpt.") and 0 < cut.stat().st_size < last.stat().st_size
        assert metrics_epochs(seed_dir / "metrics.csv") == [0, 1, 2]
    if point == "between-seeds":
        assert (run / "seed-0" / "summary.json").is_file() and not seed_dir.exists()

    before_each_epoch = []  # (epoch, the epochs metrics.csv then holds): a row beyond the checkpoint is dropped
    epoch_start = AQATask.on_train_epoch_start

    def recording_epoch_start(task):
        before_each_epoch.append((task.current_epoch, metrics_epochs(task.record.seed_dir.metrics_path)))
        epoch_start(task)

    monkeypatch.setattr(AQATask, "on_train_epoch_start", recording_epoch_start)
    trained: dict[int, list[int]] = {}
    train_run(config(), run, SEEDS, resume=True, device="cpu",
              on_epoch_end=lambda s, row: trained.setdefault(s, []).append(int(row["epoch"])))
    assert trained == retrained  # starts at the epoch after the last checkpoint: at most one epoch lost
    assert before_each_epoch == [(epoch, list(range(epoch))) for epochs in retrained.values() for epoch in epochs]
    assert_bit_identical(run, uninterrupted)
    assert not [p for p in run.rglob(".*") if ".partial" in p.name]  # what the kill left is cleared


def test_the_resume_state_puts_back_every_global_generator():
    import random

    import numpy as np

    from aqakit.train.resume import restore_rng_state, rng_state

    saved = rng_state()
    first = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng_state(saved)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1]) and first[2] == again[2]


class StopAfterEpoch(Exception):
    pass


def test_a_resume_checkpoint_from_before_this_change_resumes(tmp_path, uninterrupted):
    """Older last.ckpt files hold only torch's CPU generator (as a tensor); they still resume."""

    def stop(seed, row):
        if row["epoch"] == 1:
            raise StopAfterEpoch

    run = tmp_path / "run"
    with pytest.raises(StopAfterEpoch):
        train_run(config(), run, [0], on_epoch_end=stop, device="cpu")
    path = run / "seed-0" / "resume" / "last.ckpt"
    state = torch.load(path, weights_only=True)
    state["aqakit"]["rng"] = state["aqakit"]["rng"]["torch"]
    torch.save(state, path)
    summary = train_run(config(), run, [0], resume=True, device="cpu")["per_seed"][0]
    assert without_timing(summary) == without_timing(json.loads((uninterrupted / "seed-0" / "summary.json").read_text()))
