"""The command line: train / eval / predict / datasets, and one-line errors with exit status 2."""

import csv
import json

import numpy as np
import pytest
import yaml

from conftest import run_cli

TINY = ["--set", "benchmark_args.n_train=48", "--set", "benchmark_args.n_test=24", "--set", "benchmark_args.dim=16",
        "--set", "model.args.hidden_dim=16", "--set", "train.batch_size=16", "--epochs", "2"]


@pytest.fixture
def trained_run(tmp_path, monkeypatch, capsys):
    status, out, err = run_cli(monkeypatch, capsys, "train", "gdlt", "synthetic", *TINY,
                               "--runs-dir", tmp_path, "--name", "demo")
    assert status == 0, err
    return tmp_path / "demo", out


def test_train_prints_a_results_table(trained_run):
    run_dir, out = trained_run
    summary = json.loads((run_dir / "summary.json").read_text())
    assert "test Spearman" in out and "final" in out
    seed = json.loads((run_dir / "seed-0" / "summary.json").read_text())
    assert out.startswith(f"precision {seed['precision']} (train.precision")  # printed before training
    assert f"{summary['test']['spearman']['mean']:.3f} (one seed)" in out and "± 0.000" not in out


def test_a_tuning_run_prints_validation_only(tmp_path, monkeypatch, capsys):
    status, out, err = run_cli(monkeypatch, capsys, "train", "gdlt", "synthetic", *TINY, "--select", "best-val",
                               "--set", "train.evaluate_test=false", "--runs-dir", tmp_path, "--name", "tune")
    assert status == 0, err
    summary = json.loads((tmp_path / "tune" / "summary.json").read_text())
    assert "test split not evaluated" in out and "test Spearman" not in out
    assert f"{summary['val']['spearman']['mean']:.3f}" in out


def test_eval_reproduces_the_run_summary(trained_run, monkeypatch, capsys):
    run_dir, _ = trained_run
    status, out, err = run_cli(monkeypatch, capsys, "eval", run_dir, "--json")
    assert status == 0, err
    result = json.loads(out)
    summary = json.loads((run_dir / "seed-0" / "summary.json").read_text())
    assert result["spearman"] == pytest.approx(summary["test"]["spearman"], abs=1e-9)
    assert result["selection"] == "final" and result["epoch"] == 1


def test_predict_writes_one_row_per_feature_file(trained_run, tmp_path, monkeypatch, capsys):
    run_dir, _ = trained_run
    features = tmp_path / "features"
    features.mkdir()
    rng = np.random.default_rng(0)
    for name, clips in (("a", 5), ("b", 1), ("c", 300)):  # any length, including a single clip
        np.save(features / f"{name}.npy", rng.normal(size=(clips, 16)).astype(np.float16))
    out_csv = tmp_path / "scores.csv"
    status, _, err = run_cli(monkeypatch, capsys, "predict", run_dir, features, "--out", out_csv)
    assert status == 0, err
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["id"] for r in rows] == ["a", "b", "c"] and all(np.isfinite(float(r["score"])) for r in rows)
    status, _, err = run_cli(monkeypatch, capsys, "predict", run_dir, features, "--out", out_csv)
    assert status == 2 and "--overwrite" in err


def test_predict_rejects_features_of_the_wrong_dimension(trained_run, tmp_path, monkeypatch, capsys):
    run_dir, _ = trained_run
    features = tmp_path / "features"
    features.mkdir()
    np.save(features / "v1.npy", np.zeros((4, 8), np.float32))
    status, _, err = run_cli(monkeypatch, capsys, "predict", run_dir, features, "--out", tmp_path / "o.csv")
    assert status == 2 and "v1.npy" in err and "8" in err and "16" in err
    assert len(err.strip().splitlines()) == 1


def test_existing_run_is_refused(trained_run, tmp_path, monkeypatch, capsys):
    status, _, err = run_cli(monkeypatch, capsys, "train", "gdlt", "synthetic", *TINY,
                             "--runs-dir", tmp_path, "--name", "demo")
    assert status == 2 and "already exists" in err and "--overwrite" in err
    assert (tmp_path / "demo" / "summary.json").is_file()


def test_benchmark_without_data_is_a_one_line_error(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("AQAKIT_DATA", raising=False)
    status, _, err = run_cli(monkeypatch, capsys, "train", "gdlt", "fisv-pcs", "--runs-dir", tmp_path)
    assert status == 2 and "--data-root" in err
    assert len(err.strip().splitlines()) == 1


def test_missing_feature_file_names_the_id_and_label_line(monkeypatch, capsys, tmp_path):
    root = tmp_path / "mydata"
    (root / "features").mkdir(parents=True)
    (root / "labels.csv").write_text("id,score,split\nv1,3.5,train\nv2,4.0,train\nv3,5.0,test\n")
    for vid in ("v1", "v3"):
        np.save(root / "features" / f"{vid}.npy", np.ones((3, 4), np.float32))
    status, _, err = run_cli(monkeypatch, capsys, "train", "gdlt", "csv", "--data-root", root, "--runs-dir", tmp_path)
    assert status == 2 and "v2" in err and "labels.csv" in err and "line 3" in err


def test_unknown_model_lists_the_available_ones(monkeypatch, capsys, tmp_path):
    status, _, err = run_cli(monkeypatch, capsys, "train", "nope", "synthetic", "--runs-dir", tmp_path)
    assert status == 2 and "gdlt" in err


def test_datasets_lists_adapters_and_inspects_a_folder(monkeypatch, capsys, tmp_path):
    status, out, _ = run_cli(monkeypatch, capsys, "datasets")
    assert status == 0 and "fisv-pcs" in out and "rg-ball" in out and "csv" in out and "gdlt" in out
    assert "synthetic-confounded" in out and "finecausal" in out
    folder = tmp_path / "features"
    folder.mkdir()
    np.save(folder / "ok.npy", np.ones((7, 4), np.float32))
    np.save(folder / "bad.npy", np.full((3, 4), np.nan, np.float32))
    status, out, _ = run_cli(monkeypatch, capsys, "datasets", folder)
    assert status == 1 and "bad.npy" in out


def test_a_usage_error_is_a_message_and_status_2(monkeypatch, capsys):
    status, out, err = run_cli(monkeypatch, capsys, "train", "--no-such-option")
    assert status == 2 and "No such option: --no-such-option" in out + err


def test_results_tabulates_a_trained_run(trained_run, monkeypatch, capsys):
    run_dir, _ = trained_run
    seed = json.loads((run_dir / "seed-0" / "summary.json").read_text())
    status, out, err = run_cli(monkeypatch, capsys, "results", run_dir)
    assert status == 0, err
    assert f"| demo | gdlt | synthetic | final | 1 (0) | 2 | {seed['precision']} | {seed['test']['spearman']:.3f} (one seed) |" in out
    status, out, err = run_cli(monkeypatch, capsys, "results", run_dir, "--json")
    assert json.loads(out)["runs"][0]["test_spearman"]["per_seed"] == [pytest.approx(seed["test"]["spearman"])]
    status, out, err = run_cli(monkeypatch, capsys, "results", run_dir.parent)  # the --runs-dir folder
    assert status == 0 and "| demo | gdlt |" in out, err
    status, out, err = run_cli(monkeypatch, capsys, "results", run_dir / "seed-0")
    assert status == 2 and "not an aqakit run directory" in err


def test_compare_pairs_a_trained_run_with_itself(trained_run, monkeypatch, capsys):
    run_dir, _ = trained_run
    seed = json.loads((run_dir / "seed-0" / "summary.json").read_text())
    status, out, err = run_cli(monkeypatch, capsys, "compare", run_dir, run_dir, "--n-boot", 50)
    assert status == 0, err
    rho = f"{seed['test']['spearman']:.3f}"
    assert f"| synthetic | {rho} | {rho} | +0.000 | [+0.000, +0.000] | 0.0 % of resamples |" in out
    status, out, err = run_cli(monkeypatch, capsys, "compare", run_dir, run_dir, "--n-boot", 50, "--json")
    assert json.loads(out)["rows"][0]["a"] == pytest.approx(seed["test"]["spearman"])
    status, out, err = run_cli(monkeypatch, capsys, "compare", run_dir, run_dir.parent / "missing")
    assert status == 2 and "not an aqakit run directory" in err


def test_predict_into_a_missing_folder_is_refused_before_scoring(trained_run, tmp_path, monkeypatch, capsys):
    run_dir, _ = trained_run
    features = tmp_path / "features"
    features.mkdir()
    np.save(features / "a.npy", np.ones((3, 16), np.float32))
    status, out, err = run_cli(monkeypatch, capsys, "predict", run_dir, features, "--out", tmp_path / "nodir" / "x.csv")
    assert status == 2 and f"the folder {tmp_path / 'nodir'} does not exist" in err and "scored" not in out
    assert len(err.strip().splitlines()) == 1


def test_predict_names_the_checkpoint_of_a_multi_seed_run(tmp_path, monkeypatch, capsys):
    status, _, err = run_cli(monkeypatch, capsys, "train", "gdlt", "synthetic", *TINY, "--seeds", 2,
                             "--runs-dir", tmp_path, "--name", "two")
    assert status == 0, err
    features = tmp_path / "features"
    features.mkdir()
    np.save(features / "a.npy", np.ones((3, 16), np.float32))
    for given, used in (("two", "two/seed-0/checkpoint"), ("two/seed-1", "two/seed-1/checkpoint")):
        status, out, err = run_cli(monkeypatch, capsys, "predict", tmp_path / given, features,
                                   "--out", tmp_path / "o.csv", "--overwrite")
        assert status == 0, err
        assert f"scored 1 videos with {tmp_path / used} -> {tmp_path / 'o.csv'}" in out
    status, out, _ = run_cli(monkeypatch, capsys, "predict", "--help")
    assert "first seed folder" in " ".join(out.replace("│", " ").split())


def test_results_of_a_folder_names_its_tuning_runs_under_the_table(trained_run, tmp_path, monkeypatch, capsys):
    status, _, err = run_cli(monkeypatch, capsys, "train", "gdlt", "synthetic", *TINY, "--select", "best-val",
                             "--set", "train.evaluate_test=false", "--runs-dir", tmp_path, "--name", "tune")
    assert status == 0, err
    status, out, err = run_cli(monkeypatch, capsys, "results", tmp_path)
    assert status == 0, err
    assert "| demo | gdlt |" in out and "| tune |" not in out
    assert "Not shown (no test figures: trained with train.evaluate_test=false): tune" in out
    status, out, err = run_cli(monkeypatch, capsys, "results", tmp_path, "--json")
    assert json.loads(out)["tuning_runs_not_shown"] == ["tune"]
    status, _, err = run_cli(monkeypatch, capsys, "results", tmp_path / "tune")
    assert status == 2 and "a tuning run (trained with train.evaluate_test=false" in err and "leave it out" in err


def test_csv_locations_as_options_need_no_root_and_are_saved_absolute(tmp_path, monkeypatch, capsys):
    data = tmp_path / "d"
    (data / "features").mkdir(parents=True)
    rows = ["id,score,split"]
    for i in range(8):
        np.save(data / "features" / f"v{i}.npy", np.random.default_rng(i).normal(size=(3, 4)).astype(np.float32))
        rows.append(f"v{i},{i},{'test' if i >= 6 else 'train'}")
    (data / "labels.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.chdir(tmp_path)
    status, _, err = run_cli(monkeypatch, capsys, "train", "gdlt", "csv", "--set", "benchmark_args.labels=d/labels.csv",
                             "--set", "benchmark_args.features_dir=d/features", "--set", "model.args.hidden_dim=8",
                             "--epochs", "1", "--runs-dir", "runs", "--name", "rel")
    assert status == 0, err
    saved = yaml.safe_load((tmp_path / "runs" / "rel" / "config.yaml").read_text())["benchmark_args"]
    assert saved == {"labels": str(data / "labels.csv"), "features_dir": str(data / "features")}
    monkeypatch.chdir(tmp_path / "runs")
    status, out, err = run_cli(monkeypatch, capsys, "eval", "rel", "--json")
    assert status == 0, err
    assert json.loads(out)["split"] == "test"


def test_ctrl_c_during_train_says_how_to_continue(monkeypatch, capsys, tmp_path):
    import aqakit.train.runner

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(aqakit.train.runner, "train_run", interrupted)
    status, _, err = run_cli(monkeypatch, capsys, "train", "--runs-dir", tmp_path, "--name", "x")
    assert status == 130 and "--resume to continue" in err


@pytest.mark.parametrize("command", ["train", "predict", "extract", "results", "compare", "report"])
def test_help_joins_each_paragraph_instead_of_breaking_it_where_the_docstring_does(command, monkeypatch, capsys):
    from aqakit import cli

    monkeypatch.setenv("COLUMNS", "400")
    status, out, _ = run_cli(monkeypatch, capsys, command, "--help")
    assert status == 0
    doc = getattr(cli, command).__doc__
    lines = [" ".join(line.split()) for line in out.replace("│", " ").splitlines()]
    for paragraph in doc.split("\n\n"):
        text = " ".join(paragraph.replace("`", "").split())
        assert any(text in line for line in lines), text
    assert "(default: --)" not in out and "<" not in doc


def test_an_option_and_a_set_of_the_same_setting_must_agree(tmp_path, monkeypatch, capsys):
    status, _, err = run_cli(monkeypatch, capsys, "train", "gdlt", "synthetic", *TINY, "--set", "train.epochs=3",
                             "--runs-dir", tmp_path)
    assert status == 2 and err.strip() == "error: --epochs 2 and --set train.epochs=3 disagree: give only one of them"
    status, _, err = run_cli(monkeypatch, capsys, "train", "gdlt", "synthetic", *TINY, "--set", "train.epochs=2",
                             "--runs-dir", tmp_path, "--name", "same")
    assert status == 0, err
    assert yaml.safe_load((tmp_path / "same" / "config.yaml").read_text())["train"]["epochs"] == 2


def test_a_small_training_set_gets_a_hint_before_a_deep_model_trains(tmp_path, monkeypatch, capsys):
    from test_train import csv_folder

    scores = {f"v{i}": (float(i), "train" if i < 10 else "test") for i in range(14)}
    folder = csv_folder(tmp_path / "data", scores, clips=4, dim=8)
    small = ["--data-root", folder, "--runs-dir", tmp_path / "runs", "--epochs", "1"]
    status, _, err = run_cli(monkeypatch, capsys, "train", "gdlt", "csv", *small)
    assert status == 0, err
    assert "hint: 10 training videos (fewer than 50)" in err and "--preset gdlt-small" in err
    status, _, err = run_cli(monkeypatch, capsys, "train", "gdlt", "csv", *small, "--preset", "gdlt-small", "--overwrite")
    assert status == 0 and "hint" not in err  # a preset chosen: no advice
    status, _, err = run_cli(monkeypatch, capsys, "train", "ridge", "csv", *small[:-2])
    assert status == 0 and "hint" not in err  # ridge is the suggestion, not hinted at


def test_logger_tensorboard_logs_every_epoch_of_metrics_csv(tmp_path, monkeypatch, capsys):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    status, _, err = run_cli(monkeypatch, capsys, "train", "gdlt", "synthetic", *TINY, "--logger", "tensorboard",
                             "--runs-dir", tmp_path, "--name", "tb")
    assert status == 0, err
    events = EventAccumulator(str(tmp_path / "tb" / "seed-0" / "tensorboard"))
    events.Reload()
    rows = list(csv.DictReader((tmp_path / "tb" / "seed-0" / "metrics.csv").open()))
    logged = events.Scalars("test_spearman")
    assert [e.step for e in logged] == [int(r["epoch"]) for r in rows] == [0, 1]
    assert [e.value for e in logged] == pytest.approx([float(r["test_spearman"]) for r in rows], abs=1e-6)
    assert "train_loss" in events.Tags()["scalars"]
    status, _, err = run_cli(monkeypatch, capsys, "train", "gdlt", "synthetic", *TINY, "--logger", "wandb",
                             "--runs-dir", tmp_path)
    assert status == 2 and "train.logger 'wandb' is not one of none, tensorboard" in err
