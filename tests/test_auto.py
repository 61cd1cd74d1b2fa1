"""`aqakit train auto`: a model and preset chosen by k-fold validation of the training split, never by test."""

import json

import pytest

from aqakit.errors import ConfigError, RunDirectoryError
from aqakit.train.auto import AUTO_FILE, Candidate, CandidateResult, choose, run_auto, validation_figure
from conftest import run_cli

DATA = {"benchmark_args": {"n_train": 40, "n_test": 20, "dim": 8}}
TINY_GDLT = Candidate("gdlt-tiny", "gdlt", overrides={
    "model.args.hidden_dim": 16, "model.args.n_heads": 2, "train.epochs": 3, "train.crop_len": 12, "train.batch_size": 16})
CANDIDATES = (Candidate("ridge", "ridge"), TINY_GDLT)


def result(label, folds):
    figure, z_se = validation_figure(folds)
    return CandidateResult(label, label, "validated", list(folds), figure, z_se)


def test_one_se_prefers_the_cheaper_candidate_inside_the_noise_and_max_takes_the_best():
    results = [result("ridge", [0.50, 0.60, 0.55]), result("deep", [0.45, 0.75, 0.60]), result("deeper", [0.2, 0.3, 0.25])]
    assert choose(results, "one-se").label == "ridge"
    assert choose(results, "max").label == "deep"
    clear_lead = [result("ridge", [0.30, 0.32, 0.31]), result("deep", [0.60, 0.62, 0.61])]
    assert choose(clear_lead, "one-se").label == "deep"
    with pytest.raises(ConfigError, match="no candidate was validated"):
        choose([CandidateResult("x", "x", "skipped: budget")], "max")


def test_auto_validates_every_candidate_on_folds_and_reads_test_only_for_the_winner(tmp_path, recorded_splits):
    read_splits = recorded_splits
    record = run_auto("synthetic", tmp_path / "auto", overrides=DATA, candidates=CANDIDATES, folds=3)
    assert read_splits.count("test") == 1 and read_splits[-1] == "test"  # the final run alone reads test
    assert [c["label"] for c in record["candidates"]] == ["ridge", "gdlt-tiny"]
    assert all(len(c["fold_spearman"]) == 3 and c["status"] == "validated" for c in record["candidates"])
    chosen = next(c for c in record["candidates"] if c["label"] == record["chosen"])
    assert record["chosen_validation"] == chosen["validation"]
    for label in ("ridge", "gdlt-tiny"):
        summary = json.loads((tmp_path / "auto" / f"cv-{label}" / "summary.json").read_text())
        assert "test" not in summary and summary["seeds"] == [0, 1, 2]
    final = json.loads((tmp_path / "auto" / "final" / "summary.json").read_text())
    assert final["model"] == record["chosen_model"] and record["final"]["test"] == final["test"]
    assert json.loads((tmp_path / "auto" / AUTO_FILE).read_text())["chosen"] == record["chosen"]


def test_a_candidate_over_the_budget_is_skipped_and_said_so(tmp_path):
    record = run_auto("synthetic", tmp_path / "auto", overrides=DATA, candidates=CANDIDATES, folds=2,
                      budget_minutes=1e-6)
    ridge, gdlt = record["candidates"]
    assert ridge["status"] == "validated" and gdlt["status"].startswith("skipped: about")
    assert record["chosen"] == "ridge" and gdlt["estimated_minutes"] > 0


def test_an_existing_search_is_resumed_or_refused(tmp_path):
    first = run_auto("synthetic", tmp_path / "auto", overrides=DATA, candidates=CANDIDATES[:1], folds=2)
    with pytest.raises(RunDirectoryError, match="--overwrite .* or --resume"):
        run_auto("synthetic", tmp_path / "auto", overrides=DATA, candidates=CANDIDATES[:1], folds=2)
    again = run_auto("synthetic", tmp_path / "auto", overrides=DATA, candidates=CANDIDATES[:1], folds=2,
                     resume=True)
    assert again["candidates"][0]["fold_spearman"] == first["candidates"][0]["fold_spearman"]


def test_the_command_prints_every_candidate_and_the_winners_test_figures(tmp_path, monkeypatch, capsys):
    status, out, err = run_cli(monkeypatch, capsys, "train", "auto", "synthetic", "--candidates", "ridge,ridge-mean-max-std",
                               "--folds", "2", "--set", "benchmark_args.n_train=40", "--set", "benchmark_args.n_test=20",
                               "--set", "benchmark_args.dim=8", "--runs-dir", tmp_path, "--name", "auto")
    assert status == 0, err
    assert "ridge-mean-max-std" in out and "chosen" in out and "test Spearman" in out
    assert "ridge: 2-fold validation Spearman" in err
    status, _, err = run_cli(monkeypatch, capsys, "train", "auto", "synthetic", "--candidates", "lasso")
    assert status == 2 and "unknown auto candidate(s) lasso" in err
    status, _, err = run_cli(monkeypatch, capsys, "train", "auto", "synthetic", "--epochs", "3")
    assert status == 2 and "--epochs" in err
