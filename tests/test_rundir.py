"""The run folder type: its typed summaries read every recorded run unchanged, and reading results
imports no training engine."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aqakit.errors import DataError, RunDirectoryError
from aqakit.rundir import RunDir, RunSummary, SeedSummary
from aqakit.sweep.folder import SPEC_FILE
from aqakit.sweep.spec import parse_spec
from aqakit.sweep.trial import TrialResult

RECORDS = Path(__file__).resolve().parents[1] / "docs" / "results" / "records"


@pytest.mark.parametrize("modules", ["aqakit.results, aqakit.compare", "aqakit.rundir"])
def test_reading_results_imports_no_training_engine(modules):
    code = f"import sys, {modules}; print(sorted(m for m in sys.modules if m.startswith('lightning')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def recorded_summaries(*, of_sweeps: bool) -> list[Path]:
    """The committed ``summary.json`` files of sweep folders (``of_sweeps``) or of runs and their seeds."""
    return [path for path in sorted(RECORDS.rglob("summary.json")) if (path.parent / SPEC_FILE).is_file() == of_sweeps]


def test_every_recorded_summary_reads_and_writes_back_unchanged():
    paths = recorded_summaries(of_sweeps=False)
    assert paths
    for path in paths:
        text = path.read_text()
        data = json.loads(text)
        kind = SeedSummary if path.parent.name.startswith(RunDir.SEED_PREFIX) else RunSummary
        assert json.dumps(kind.from_json(data, path).to_json(), indent=2) == json.dumps(data, indent=2), path


def test_every_recorded_sweep_summary_reads_and_writes_back_unchanged():
    paths = recorded_summaries(of_sweeps=True)
    assert paths
    for path in paths:
        data = json.loads(path.read_text())
        assert parse_spec(data["spec"], str(path)).to_dict() == data["spec"], path
        assert [TrialResult.from_json(t).to_json() for t in data["trials"]] == data["trials"], path


def test_a_run_summary_is_the_mean_and_std_over_its_seeds():
    seeds = [SeedSummary(seed=s, model="gdlt", benchmark="synthetic", selection="best-test", selected_epoch=1, epochs=2,
                         test={"spearman": rho}, best_test_epoch_spearman={"epoch": 1, "spearman": rho},
                         late_swing={"unstable": s == 1}) for s, rho in ((0, 0.5), (1, 0.7))]
    summary = RunSummary.of_seeds(seeds).to_json()
    assert summary["seeds"] == [0, 1] and summary["unstable_seeds"] == [1] and "val" not in summary
    assert summary["test"]["spearman"]["mean"] == pytest.approx(0.6) and summary["note"].startswith("selection best-test")
    assert summary["best_test_epoch_spearman"]["mean"] == pytest.approx(0.6)
    assert list(summary) == ["model", "benchmark", "selection", "epochs", "seeds", "note", "test", "unstable_seeds",
                             "best_test_epoch_spearman", "per_seed"]


def test_unknown_keys_are_kept_and_a_summary_without_a_seed_is_an_error(tmp_path):
    assert SeedSummary.from_json({"seed": 3, "from_the_future": [1]}).to_json() == {"seed": 3, "from_the_future": [1]}
    with pytest.raises(DataError, match="x.json: no seed in it"):
        SeedSummary.from_json({"test": {}}, "x.json")
    with pytest.raises(DataError, match="y.json: no per_seed in it"):
        RunSummary.from_json({"model": "m", "benchmark": "b", "selection": "final", "epochs": 1, "seeds": []}, "y.json")


def test_the_layout_of_a_run_folder(tmp_path):
    run = RunDir(tmp_path / "run")
    assert not run.is_run and run.check_use() is False
    run.path.mkdir()
    run.write_config({"model": {"name": "gdlt"}, "benchmark": "synthetic"})
    assert run.is_run and run.read_config()["benchmark"] == "synthetic"
    for seed in (10, 2):
        run.seed(seed).path.mkdir()
    assert [seed_dir.seed for seed_dir in run.seed_dirs()] == [2, 10]
    seed_dir = run.seed(2)
    seed_dir.write_history([{"epoch": 0, "train_loss": 1.5}, {"epoch": 1, "train_loss": 0.5, "test_spearman": 0.25}])
    assert seed_dir.read_history()[0]["test_spearman"] != seed_dir.read_history()[0]["test_spearman"]  # NaN
    assert seed_dir.read_history()[1] == {"epoch": 1.0, "train_loss": 0.5, "test_spearman": 0.25}
    seed_dir.write_predictions([("test", "a", 1.0, 2.0), ("val", "b", 2.0, 2.0), ("test", "c", 3.0, 1.0)])
    assert seed_dir.read_test_predictions() == {"a": (1.0, 2.0), "c": (3.0, 1.0)}
    assert seed_dir.checkpoint_dir == run.path / "seed-2" / "checkpoint"
    assert seed_dir.resume_checkpoint == run.path / "seed-2" / "resume" / "last.ckpt"
    with pytest.raises(RunDirectoryError, match="already exists"):
        run.check_use()
    assert run.check_use(overwrite=True) is True and run.check_use(resume=True) is False
    (run.path / "seed-x").mkdir()
    with pytest.raises(DataError, match="seed-x: seed folders are named seed-<number>"):
        run.seed_dirs()


def test_a_resume_on_other_labels_is_refused(tmp_path):
    run = RunDir(tmp_path)
    fingerprint = {"train": {"videos": 4, "sha256": "a"}, "test": None}
    run.check_same_data(fingerprint)  # nothing recorded: not checked
    run.write_data_fingerprint(fingerprint)
    run.check_same_data(fingerprint)
    with pytest.raises(RunDirectoryError, match=r"train: 4 videos then, 4 now, other ids or scores; test: no videos then, 2 now"):
        run.check_same_data({"train": {"videos": 4, "sha256": "b"}, "test": {"videos": 2, "sha256": "c"}})
