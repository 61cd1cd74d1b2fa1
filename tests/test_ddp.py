"""Training on several processes (aqakit.train.distributed): a 2-process gloo run on CPU against one
process, the batch shares, and what is refused."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from aqakit.errors import ConfigError
from aqakit.train.config import TrainConfig, build_config
from aqakit.train.distributed import (
    SHARE_WEIGHT,
    ShardedBatches,
    check_distributed,
    check_shares,
    global_rank,
    share_bounds,
)
from conftest import run_cli

#: A tiny GDLT with no dropout and no triplet term, trained 2 epochs of 3 steps: batches of 399, 399
#: and 2 of the 800 synthetic training videos, so the two processes' shares are unequal (200 and 199)
#: and the last is one video each. Nothing but float reduction order differs between one process and
#: two, so the final predictions agree to float precision (docs/performance.md, "Several devices").
TINY = ["--epochs", "2", "--set", "train.precision=32-true", "--set", "train.batch_size=399",
        "--set", "model.args.hidden_dim=32", "--set", "model.args.dropout=0", "--set", "model.args.triplet_weight=0"]
#: Largest allowed |prediction (2 processes) - prediction (1 process)|, as a share of the test score
#: range (measured: 2.8e-6; a share weighted wrongly or BatchNorm statistics of one share alone
#: move the predictions by far more).
PREDICTION_TOLERANCE = 1e-4


def train_cli(runs: Path, name: str, *extra: str) -> subprocess.CompletedProcess:
    """``aqakit train gdlt synthetic`` in a fresh interpreter (Lightning's DDP launcher re-runs its command line)."""
    env = {key: value for key, value in os.environ.items() if key not in ("RANK", "LOCAL_RANK", "NODE_RANK", "WORLD_SIZE")}
    env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, "-m", "aqakit", "train", "gdlt", "synthetic", "--runs-dir", str(runs), "--name", name,
               *TINY, *extra]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def predictions(run: Path) -> dict[str, tuple[float, float]]:
    with open(run / "seed-0" / "predictions.csv", newline="") as handle:
        return {row["id"]: (float(row["true_score"]), float(row["predicted_score"])) for row in csv.DictReader(handle)}


def run_files(run: Path) -> set[str]:
    return {str(path.relative_to(run)) for path in run.rglob("*")}


def test_two_gloo_processes_train_what_one_process_trains(tmp_path):
    one, two = train_cli(tmp_path, "one"), train_cli(tmp_path, "two", "--devices", "2")
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == [".one.lock", ".two.lock", "one", "two"]  # no run of the second process
    assert run_files(tmp_path / "two") == run_files(tmp_path / "one")
    assert two.stdout.count("run saved in") == 1  # rank 0 alone reports
    single, double = predictions(tmp_path / "one"), predictions(tmp_path / "two")
    assert single.keys() == double.keys()
    scores = [true for true, _ in single.values()]
    worst = max(abs(single[vid][1] - double[vid][1]) for vid in single)
    assert worst <= PREDICTION_TOLERANCE * (max(scores) - min(scores))
    summaries = [json.loads((tmp_path / name / "summary.json").read_text()) for name in ("one", "two")]
    assert summaries[1]["test"]["spearman"]["mean"] == pytest.approx(summaries[0]["test"]["spearman"]["mean"], abs=0.02)
    losses = [[float(row["train_loss"]) for row in csv.DictReader(open(tmp_path / name / "seed-0" / "metrics.csv"))]
              for name in ("one", "two")]
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)  # summed over both processes: the whole epoch's mean


@pytest.mark.parametrize("size,world", [(7, 2), (8, 2), (5, 3), (3, 3), (10, 4)])
def test_shares_are_contiguous_and_cover_the_batch(size, world):
    bounds = [share_bounds(size, rank, world) for rank in range(world)]
    assert bounds[0][0] == 0 and bounds[-1][1] == size
    assert all(stop == start for (_, stop), (start, _) in zip(bounds, bounds[1:]))
    lengths = [stop - start for start, stop in bounds]
    assert max(lengths) - min(lengths) <= 1 and min(lengths) >= 1


def test_sharded_batches_split_rows_keep_exemplars_whole_and_weigh_the_loss():
    batch = {"features": torch.arange(5.0)[:, None, None].expand(5, 2, 3), "mask": torch.ones(5, 2, dtype=torch.bool),
             "score": torch.arange(5.0), "index": torch.arange(5),
             "exemplar_features": torch.zeros(2, 4, 3), "exemplar_mask": torch.ones(2, 4, dtype=torch.bool),
             "exemplar_index": torch.tensor([[0], [1], [1], [0], [1]]), "exemplar_score": torch.arange(5.0)[:, None] + 10}
    shares = [ShardedBatches([batch], rank, 2).share(batch) for rank in range(2)]  # type: ignore[arg-type]
    assert torch.equal(torch.cat([s["score"] for s in shares]), batch["score"])
    assert torch.equal(torch.cat([s["exemplar_index"] for s in shares]), batch["exemplar_index"])
    assert torch.equal(shares[1]["exemplar_score"][:, 0], torch.tensor([13.0, 14.0]))
    assert all(s["exemplar_features"].shape == (2, 4, 3) for s in shares)
    # 3 and 2 of 5 rows: weights 3*2/5 and 2*2/5, so the mean over processes of the weighted share
    # means is the mean over the whole batch.
    weights = [float(s[SHARE_WEIGHT]) for s in shares]
    assert weights == pytest.approx([1.2, 0.8])
    share_means = [float(s["score"].mean()) for s in shares]
    assert sum(w * m for w, m in zip(weights, share_means)) / 2 == pytest.approx(float(batch["score"].mean()))


def test_a_batch_smaller_than_the_process_count_is_refused():
    check_shares(20, TrainConfig(batch_size=8, devices=2))  # batches 8, 8, 4
    check_shares(17, TrainConfig(batch_size=8, devices=2))  # the lone 17th video joins the second batch
    with pytest.raises(ConfigError, match="makes a batch of 2 video.*fewer than the 3 processes"):
        check_shares(18, TrainConfig(batch_size=8, devices=3))
    with pytest.raises(ConfigError, match="train.batch_size 1 .* fewer than the 4 processes"):
        check_shares(30, TrainConfig(batch_size=1, devices=2, num_nodes=2))


@pytest.mark.parametrize("key,value", [("devices", 0), ("num_nodes", -1), ("devices", 1.5), ("devices", True), ("num_nodes", "2")])
def test_devices_and_nodes_must_be_whole_numbers_of_at_least_one(key, value):
    with pytest.raises(ConfigError, match=f"train.{key} must be a whole number of at least 1"):
        TrainConfig(**{key: value}).check()


def test_the_rank_comes_from_the_launcher_environment(monkeypatch):
    for key in ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert global_rank(TrainConfig()) == 0  # one process: always rank 0, whatever the environment says
    assert global_rank(TrainConfig(devices=2)) == 1
    monkeypatch.setenv("NODE_RANK", "2")
    assert global_rank(TrainConfig(devices=4, num_nodes=3)) == 9
    monkeypatch.setenv("RANK", "5")
    assert global_rank(TrainConfig(devices=4, num_nodes=3)) == 5


@pytest.mark.parametrize("model,overrides,message", [
    ("ridge", {"train.epochs": 1}, "fitted in closed form on one process"),
    ("gdlt", {"train.ensemble": True}, "--ensemble trains the seeds as one batched model"),
    ("query-decoder", {"model.args.attention_batch_reduction": "sum"}, "attention_batch_reduction=sum sums a loss"),
])
def test_what_cannot_train_on_several_processes_is_refused(model, overrides, message):
    config = build_config(model, "synthetic", {**overrides, "train.devices": 2})
    with pytest.raises(ConfigError, match=message):
        check_distributed(config)
    check_distributed(build_config(model, "synthetic", overrides))  # one process: nothing to refuse


def test_folds_are_refused_before_anything_is_written(tmp_path):
    from aqakit.train.folds import train_folds

    with pytest.raises(ConfigError, match="--folds trains its folds on one device"):
        train_folds(build_config("gdlt", "synthetic", {"train.devices": 2}), tmp_path / "run", [0], [0])
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args,message", [
    (["train", "gdlt", "--devices", "2", "--ensemble"], "--ensemble trains the seeds as one batched model"),
    (["train", "ridge", "--epochs", "1", "--num-nodes", "2"], "fitted in closed form on one process"),
    (["train", "auto", "--devices", "2"], "train auto trains its candidates on one device"),
    (["train", "gdlt", "--devices", "0"], "train.devices must be a whole number of at least 1, got 0"),
    (["train", "gdlt", "--devices", "2", "--set", "train.devices=3"], "--devices 2 and --set train.devices=3 disagree"),
])
def test_the_command_line_refuses_in_one_line(monkeypatch, capsys, tmp_path, args, message):
    status, out, err = run_cli(monkeypatch, capsys, *args, "--runs-dir", tmp_path)
    assert status == 2
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert message in err
    assert not any(tmp_path.iterdir())  # nothing written
