"""``aqakit sweep`` on local Ray Tune: run folders, summary, resume, failures, refusals; Ray stays optional."""

import json
import signal
import socket
import subprocess
import sys
import time

import pytest
import yaml

from aqakit.errors import ConfigError, RunDirectoryError
from aqakit.locking import folder_lock
from aqakit.results import read_runs
from aqakit.sweep.spec import load_spec
from aqakit.sweep.tune import run_sweep
from conftest import run_cli

TINY_SPEC = {
    "model": "gdlt", "benchmark": "synthetic",
    "base": {"benchmark_args": {"n_train": 48, "n_test": 24, "dim": 16}, "model.args": {"hidden_dim": 16, "n_queries": 4},
             "train.epochs": 2, "train.batch_size": 16, "train.crop_len": 24, "train.precision": "32-true"},
    "space": {"optim.lr": {"grid": [0.01, 0.001]}},
    "seeds": [0, 1],
    "resources": {"cpu": 1, "gpu": 0},
}


def write_spec(tmp_path, **fields):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**TINY_SPEC, **fields}))
    return path


def one_line_error(status, err):
    assert status == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_a_grid_sweep_on_local_ray_writes_run_folders_and_resumes_without_rerunning(tmp_path, monkeypatch, capsys):
    spec, out = write_spec(tmp_path, base={**TINY_SPEC["base"], "train.epochs": 1}), tmp_path / "sweep"
    status, stdout, err = run_cli(monkeypatch, capsys, "sweep", spec, "--out", out, "--set", "train.epochs=2")
    assert status == 0, err
    trials = out / "trials"
    assert yaml.safe_load((trials / "lr=0.01" / "config.yaml").read_text())["train"]["epochs"] == 2  # --set replaced the base's 1
    assert "finished lr=0.01 (" in err and "finished lr=0.001 (" in err and "8/8 epochs" in err  # the progress bar
    # Every trial is an ordinary run folder that aqakit results reads.
    rows, tuning = read_runs([trials])
    assert sorted(row.name for row in rows) == ["lr=0.001", "lr=0.01"] and not tuning
    assert all(row.seeds == (0, 1) and row.selection == "best-val" and len(row.spearman) == 2 for row in rows)
    # The summary: test figures shown, the trial with the highest validation figure chosen.
    record = json.loads((out / "summary.json").read_text())
    runs = {name: json.loads((trials / name / "summary.json").read_text()) for name in ("lr=0.01", "lr=0.001")}
    validation = {name: run["val"]["spearman"]["mean"] for name, run in runs.items()}
    assert record["chosen"] == max(validation, key=validation.get) and record["failed"] == []
    for trial in record["trials"]:
        assert trial["status"] == "finished"
        assert trial["validation"] == pytest.approx(validation[trial["name"]])
        assert trial["test_spearman"]["mean"] == pytest.approx(runs[trial["name"]]["test"]["spearman"]["mean"])
    table = (out / "summary.md").read_text()
    assert f"| {record['chosen']} | `optim.lr=" in table and table.count("**chosen**") == 1 and table in stdout

    # Resume: the finished trial is not trained again; a trial whose folder no longer resumes fails,
    # is recorded with its error, and the exit status says so.
    kept_seed = trials / "lr=0.01" / "seed-0" / "summary.json"
    kept_before = kept_seed.stat().st_mtime_ns
    broken = trials / "lr=0.001"
    (broken / "summary.json").unlink()
    config = yaml.safe_load((broken / "config.yaml").read_text())
    config["optim"]["lr"] = 0.5
    (broken / "config.yaml").write_text(yaml.safe_dump(config))
    status, stdout, err = run_cli(monkeypatch, capsys, "sweep", spec, "--out", out, "--resume", "--set", "train.epochs=2")
    assert status == 1 and "1 trial(s) failed: lr=0.001" in err
    assert "finished lr=0.01" not in err  # kept, not finished now
    assert kept_seed.stat().st_mtime_ns == kept_before
    record = json.loads((out / "summary.json").read_text())
    statuses = {trial["name"]: trial["status"] for trial in record["trials"]}
    assert statuses == {"lr=0.01": "kept", "lr=0.001": "failed"} and record["failed"] == ["lr=0.001"]
    assert record["chosen"] == "lr=0.01"  # the only trial with a validation figure now
    error = next(trial["error"] for trial in record["trials"] if trial["status"] == "failed")
    assert "cannot resume, the configuration differs (optim.lr: saved 0.5, now 0.001)" in error
    assert f"- lr=0.001: {error}" in (out / "summary.md").read_text()


def test_ctrl_c_stops_the_sweep_in_one_line_and_resume_finishes_it(tmp_path, monkeypatch, capsys):
    spec, out = write_spec(tmp_path, base={**TINY_SPEC["base"], "train.epochs": 40}), tmp_path / "sweep"
    log = tmp_path / "stderr.txt"  # a file, not a pipe: nothing blocks while the test only watches the folder
    with log.open("w") as stderr:
        sweep = subprocess.Popen([sys.executable, "-m", "aqakit", "sweep", str(spec), "--out", str(out)],
                                 stdout=subprocess.DEVNULL, stderr=stderr, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not any(len(path.read_text().splitlines()) > 2 for path in out.glob("trials/*/seed-0/metrics.csv")):
        assert sweep.poll() is None and time.monotonic() < deadline, "the sweep never started training"
        time.sleep(0.2)
    sweep.send_signal(signal.SIGINT)  # what Ctrl-C sends the command
    sweep.wait(timeout=120)
    err = log.read_text()
    assert sweep.returncode == 130 and "Traceback" not in err, err
    assert f"interrupted: run the same command with --resume to continue {out}" in err
    status, _, err = run_cli(monkeypatch, capsys, "sweep", spec, "--out", out, "--resume")
    assert status == 0, err
    record = json.loads((out / "summary.json").read_text())
    assert {trial["status"] for trial in record["trials"]} <= {"finished", "kept"} and record["failed"] == []
    rows, _ = read_runs([out / "trials"])
    assert sorted(row.name for row in rows) == ["lr=0.001", "lr=0.01"] and all(row.seeds == (0, 1) for row in rows)


def test_a_sweep_into_a_folder_another_sweep_is_writing_is_refused(tmp_path):
    out = tmp_path / "sweep"
    with folder_lock(out, "sweep"):
        with pytest.raises(RunDirectoryError, match="another process is writing this sweep"):
            run_sweep(load_spec(write_spec(tmp_path)), out)
    assert not out.exists()


def test_a_spec_ranking_on_test_is_refused_before_anything_runs(tmp_path, monkeypatch, capsys):
    status, _, err = run_cli(monkeypatch, capsys, "sweep", write_spec(tmp_path, rank="test"), "--out", tmp_path / "s")
    assert "ranks trials on the test split: refused" in one_line_error(status, err)
    assert not (tmp_path / "s").exists()


def test_an_unreachable_cluster_is_one_line(tmp_path, monkeypatch, capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    status, _, err = run_cli(monkeypatch, capsys, "sweep", write_spec(tmp_path), "--out", tmp_path / "s",
                             "--ray-address", f"127.0.0.1:{port}")
    assert f"no Ray cluster answered at 127.0.0.1:{port} within 10 s" in one_line_error(status, err)


def test_without_ray_the_error_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails as if it were not installed
    status, _, err = run_cli(monkeypatch, capsys, "sweep", write_spec(tmp_path), "--out", tmp_path / "s")
    assert "pip install 'aqakit[ray]'" in one_line_error(status, err)
    with pytest.raises(ConfigError, match=r"pip install 'aqakit\[ray\]'"):
        run_sweep(load_spec(write_spec(tmp_path)), tmp_path / "s")


def test_the_core_package_and_the_help_do_not_import_ray():
    script = (
        "import sys\n"
        "import aqakit, aqakit.cli, aqakit.sweep.spec, aqakit.sweep.trial, aqakit.sweep.summary, aqakit.sweep.tune\n"
        "sys.argv = ['aqakit', '--help']\n"
        "try:\n    aqakit.cli.main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'optuna')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert "sweep" in done.stdout  # the help lists the command


def test_an_optuna_sweep_on_local_ray_draws_in_range_and_ranks_on_validation(tmp_path):
    spec = load_spec(write_spec(tmp_path, search="optuna", num_samples=2, seeds=[0],
                                space={"optim.lr": {"loguniform": [1e-3, 1e-1]}, "model.args.dropout": {"choice": [0.0, 0.2]}}))
    record = run_sweep(spec, tmp_path / "sweep")
    trials = record["trials"]
    assert len(trials) == 2 and record["failed"] == [] and all(t["status"] == "finished" for t in trials)
    for trial in trials:
        assert 1e-3 <= trial["values"]["optim.lr"] <= 1e-1 and trial["values"]["model.args.dropout"] in (0.0, 0.2)
        saved = yaml.safe_load((tmp_path / "sweep" / "trials" / trial["name"] / "config.yaml").read_text())
        assert saved["optim"]["lr"] == pytest.approx(trial["values"]["optim.lr"]) and saved["train"]["select"] == "best-val"
    assert record["chosen"] == max(trials, key=lambda t: t["validation"])["name"]
