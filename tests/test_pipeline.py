"""The library face of the CLI: build_config + train_run resolve data as `aqakit train` does, and the
pipeline (evaluate, predict) gives a Python caller what `aqakit eval` / `aqakit predict` print."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import yaml

from conftest import run_cli

from aqakit.errors import ConfigError
from aqakit.models import load_model
from aqakit.pipeline.evaluate import evaluate_checkpoint
from aqakit.pipeline.predict import predict_folder
from aqakit.pipeline.score_video import score_features
from aqakit.rundir import RunDir
from aqakit.train.config import build_config, require_data_root, resolve_benchmark
from aqakit.train.evaluate import predict_videos
from aqakit.train.runner import train_run

SMALL = {"train.epochs": 2, "train.batch_size": 4, "train.crop_len": 4, "model.args.hidden_dim": 8}
SMALL_FLAGS = ["--epochs", "2", "--set", "train.batch_size=4", "--set", "train.crop_len=4", "--set", "model.args.hidden_dim=8"]


@pytest.fixture
def data_env(tmp_path, monkeypatch):
    """$AQAKIT_DATA holding a csv/ benchmark folder (12 videos of 3 clips of 4 features)."""
    folder = tmp_path / "data" / "csv"
    (folder / "features").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = ["id,score,split"]
    for i in range(12):
        np.save(folder / "features" / f"v{i}.npy", rng.normal(size=(3, 4)).astype(np.float32))
        rows.append(f"v{i},{10 + i},{'test' if i % 4 == 3 else 'train'}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.setenv("AQAKIT_DATA", str(tmp_path / "data"))
    return folder


def test_a_python_run_finds_its_data_under_aqakit_data_as_the_cli_does(data_env, tmp_path, monkeypatch, capsys):
    config = build_config("gdlt", "csv", SMALL)
    assert config.data_root == str(data_env.resolve())
    summary = train_run(config, tmp_path / "py", [0])
    status, _, err = run_cli(monkeypatch, capsys, "train", "gdlt", "csv", *SMALL_FLAGS, "--runs-dir", tmp_path, "--name", "cli")
    assert status == 0, err
    saved = {name: yaml.safe_load((tmp_path / name / "config.yaml").read_text()) for name in ("py", "cli")}
    assert saved["py"] == saved["cli"] and saved["py"]["data_root"] == str(data_env.resolve())
    cli_summary = json.loads((tmp_path / "cli" / "summary.json").read_text())
    assert summary["test"]["spearman"] == cli_summary["test"]["spearman"]


def test_relative_locations_are_saved_absolute(data_env, tmp_path, monkeypatch):
    monkeypatch.chdir(data_env.parent)
    config = build_config("gdlt", "csv", {**SMALL, "data_root": "csv", "benchmark_args.labels": "csv/labels.csv"})
    assert config.data_root == str(data_env.resolve())
    assert config.benchmark_args == {"labels": str((data_env / "labels.csv").resolve())}
    adapter, values = resolve_benchmark("csv", {"benchmark_args": {"features_dir": "csv/features"}})
    assert values["benchmark_args.features_dir"] == str((data_env / "features").resolve())


def test_a_benchmark_without_data_is_named_with_the_way_to_give_it(monkeypatch):
    monkeypatch.delenv("AQAKIT_DATA", raising=False)
    config = build_config("gdlt", "fisv-pcs")  # a configuration is built (to read its preset) ...
    assert config.data_root is None
    adapter, _ = resolve_benchmark("fisv-pcs")
    with pytest.raises(ConfigError, match=r"'fisv-pcs' needs its data: pass --data-root DIR \(or set AQAKIT_DATA to a folder holding fisv/\)"):
        require_data_root(adapter)  # ... but nothing runs without its data
    assert require_data_root(resolve_benchmark("synthetic")[0]) is None


def test_evaluate_and_predict_from_python(data_env, tmp_path):
    train_run(build_config("gdlt", "csv", SMALL), tmp_path / "run", [0])
    evaluation = evaluate_checkpoint(tmp_path / "run")
    seed = json.loads((tmp_path / "run" / "seed-0" / "summary.json").read_text())
    assert evaluation.metrics["spearman"] == pytest.approx(seed["test"]["spearman"], abs=1e-9)
    config = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert (evaluation.benchmark, evaluation.split, evaluation.n_videos) == ("csv", "test", 3)
    assert evaluation.selection == config["train"]["select"] and evaluation.epoch in (0, 1)
    assert evaluation.to_json()["checkpoint"] == str(tmp_path / "run" / "seed-0" / "checkpoint")

    scored = predict_folder(tmp_path / "run", data_env / "features")
    assert scored.ids == sorted(f"v{i}" for i in range(12)) and np.isfinite(scored.scores).all()
    scored.write_csv(tmp_path / "scores.csv")
    rows = list(csv.DictReader((tmp_path / "scores.csv").open()))
    assert [r["id"] for r in rows] == scored.ids and float(rows[0]["score"]) == pytest.approx(scored.scores[0], abs=1e-6)


TINY_TPT = {**SMALL, "model.args.n_heads": 2, "model.args.n_parts": 2, "model.args.ffn_dim": 8,
            "model.args.n_exemplars": 3, "model.args.n_intervals": 4}


def test_a_pair_model_is_evaluated_and_predicts_against_its_training_exemplars(data_env, tmp_path):
    """TPT's eval and predict read the run's training split as the exemplar pool and draw the same
    exemplars per (seed, video) as training did: the recorded test predictions come back."""
    train_run(build_config("tpt", "csv", TINY_TPT), tmp_path / "run", [0])
    recorded = RunDir(tmp_path / "run").seed(0).read_test_predictions()  # id -> (true, predicted)
    evaluation = evaluate_checkpoint(tmp_path / "run")
    seed = json.loads((tmp_path / "run" / "seed-0" / "summary.json").read_text())
    assert evaluation.metrics["spearman"] == pytest.approx(seed["test"]["spearman"], abs=1e-9)
    folder = predict_folder(tmp_path / "run", data_env / "features")
    scored = dict(zip(folder.ids, folder.scores))
    assert len(recorded) == 3
    for video_id, (_, predicted) in recorded.items():
        assert scored[video_id] == pytest.approx(predicted, abs=1e-5)
        # one file through the report's path: the same exemplars for that video, the same score
        report = score_features(data_env / "features" / f"{video_id}.npy", tmp_path / "run")
        assert report.seed_scores == [pytest.approx(predicted, abs=1e-5)]


def test_a_pair_model_without_exemplars_is_a_clear_error(data_env, tmp_path):
    train_run(build_config("tpt", "csv", TINY_TPT), tmp_path / "run", [0])
    videos = resolve_benchmark("csv", {})[0].load(data_env, "test")
    with pytest.raises(ConfigError, match="tpt scores a video against exemplars from its training videos"):
        predict_videos(load_model(tmp_path / "run"), videos)
