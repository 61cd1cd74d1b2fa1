"""Cross-validation over official folds (``aqakit train ... --folds``) on the real JIGSAWS label and fold
files with generated features (skipped when the labels are absent), and the Fisher-z figure."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
import yaml

from aqakit.crossval import crossval_summary, over_folds
from aqakit.errors import RunDirectoryError
from aqakit.results import read_runs, render_markdown
from aqakit.rundir import RunSummary, SeedSummary
from conftest import DATA, run_cli

JIGSAWS = DATA / "jigsaws"
TINY = ["--epochs", "2", "--set", "model.args.hidden_dim=16", "--set", "train.batch_size=8"]


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    """Generated ``<trial>_capture1.npy`` (3-6 clips of dim 8) for every trial of the real labels."""
    if not (JIGSAWS / "label.pkl").is_file() or not (JIGSAWS / "splits.pkl").is_file():
        pytest.skip(f"JIGSAWS labels not found at {JIGSAWS} (set AQAKIT_DATA to the shared data folder)")
    labels = pickle.loads((JIGSAWS / "label.pkl").read_bytes())
    folder = tmp_path_factory.mktemp("jigsaws") / "features"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k, (trial, grs) in enumerate(sorted(labels.items())):
        clips = rng.normal(size=(3 + k % 4, 8)).astype(np.float32)
        clips[:, 0] += sum(grs) / 6.0  # something to learn
        np.save(folder / f"{trial}_capture1.npy", clips)
    return folder


def data_args(features):
    return ["--data-root", JIGSAWS, "--set", f"benchmark_args.features_dir={features}"]


def train(monkeypatch, capsys, features, tmp_path, *args, model="gdlt", name="cv"):
    return run_cli(monkeypatch, capsys, "train", model, "jigsaws-suturing", *data_args(features), *TINY,
                   "--runs-dir", tmp_path, "--name", name, *args)


def read(path):
    return json.loads(path.read_text())


# ---- the Fisher-z figure on hand-made values ---------------------------------------------------


def test_fisher_z_over_folds_on_hand_made_values():
    rho = [0.5, 0.9, -0.2, 0.3]
    expected = math.tanh(sum(math.atanh(r) for r in rho) / 4)
    assert over_folds([[r] for r in rho]) == pytest.approx([expected])
    two_seeds = over_folds([[0.5, 0.1], [0.9, 0.1]])  # (2 folds, 2 seeds)
    assert two_seeds == pytest.approx([math.tanh((math.atanh(0.5) + math.atanh(0.9)) / 2), 0.1])
    assert math.isfinite(over_folds([[1.0], [1.0]])[0]) and over_folds([[1.0], [1.0]])[0] == pytest.approx(1.0)
    assert math.isnan(over_folds([[0.5], [math.nan]])[0])


def test_crossval_summary_of_hand_made_folds():
    def fold(spearmans, best):
        seeds = [SeedSummary(seed=s, model="gdlt", benchmark="b", selection="final", epochs=3,
                             test={"spearman": r, "rl2": 1.0}, best_test_epoch_spearman={"epoch": 1, "spearman": b})
                 for s, (r, b) in enumerate(zip(spearmans, best))]
        return RunSummary.of_seeds(seeds, left_out={"test": ["x_capture1"]} if spearmans[0] < 0 else None)

    summary = crossval_summary({1: fold([0.6, 0.2], [0.7, 0.7]), 0: fold([-0.1, 0.4], [0.8, 0.9])})
    assert summary["folds"] == [0, 1] and [entry["fold"] for entry in summary["per_fold"]] == [0, 1]
    assert summary["per_fold"][0]["test_spearman_per_seed"] == [-0.1, 0.4]
    assert summary["per_fold"][0]["left_out"] == {"test": ["x_capture1"]} and "left_out" not in summary["per_fold"][1]
    per_seed = [math.tanh((math.atanh(-0.1) + math.atanh(0.6)) / 2), math.tanh((math.atanh(0.4) + math.atanh(0.2)) / 2)]
    figure = summary["test_spearman_fisher_z"]
    assert figure["per_seed"] == pytest.approx(per_seed)
    assert figure["mean"] == pytest.approx(np.mean(per_seed)) and figure["std"] == pytest.approx(np.std(per_seed, ddof=1))
    best = summary["best_test_epoch_spearman_fisher_z"]
    assert best["per_seed"][0] == pytest.approx(math.tanh((math.atanh(0.8) + math.atanh(0.7)) / 2))
    assert "chosen on the test set" in best["note"]


# ---- aqakit train --folds --------------------------------------------------------------------


def test_folds_all_trains_every_fold_and_reports_the_fisher_z_mean(features, tmp_path, monkeypatch, capsys):
    status, out, err = train(monkeypatch, capsys, features, tmp_path, "--folds", "all")
    assert status == 0, err
    run = tmp_path / "cv"
    summary = read(run / "summary.json")
    assert read(run / "crossval.json") == {"model": "gdlt", "benchmark": "jigsaws-suturing", "folds": [0, 1, 2, 3],
                                           "seeds": [0]}
    rhos = []
    for fold in range(4):
        fold_dir = run / f"fold-{fold}"
        for name in ("config.yaml", "data.json", "summary.json", "seed-0/summary.json", "seed-0/predictions.csv",
                     "seed-0/checkpoint/model.safetensors"):
            assert (fold_dir / name).is_file(), f"fold-{fold}/{name}"
        assert yaml.safe_load((fold_dir / "config.yaml").read_text())["benchmark_args"]["fold"] == fold
        seed = read(fold_dir / "seed-0" / "summary.json")
        entry = summary["per_fold"][fold]
        assert entry["fold"] == fold and entry["run"] == f"fold-{fold}"
        assert entry["test"] == read(fold_dir / "summary.json")["test"]
        assert entry["test_spearman_per_seed"] == [seed["test"]["spearman"]]
        rhos.append(seed["test"]["spearman"])
    assert read(run / "fold-2" / "data.json")["test"]["videos"] == len(pickle.loads((JIGSAWS / "splits.pkl").read_bytes())["Suturing"][2])
    direct = math.tanh(np.mean([math.atanh(np.clip(r, -1 + 1e-7, 1 - 1e-7)) for r in rhos]))
    assert summary["test_spearman_fisher_z"]["mean"] == pytest.approx(direct, abs=1e-12)
    fisher_line = next(line for line in out.splitlines() if "Fisher-z mean" in line)
    assert f"{direct:.3f}" in fisher_line
    # aqakit results: one row per fold, then the Fisher-z row
    status, out, err = run_cli(monkeypatch, capsys, "results", run)
    assert status == 0, err
    for fold, rho in enumerate(rhos):
        assert f"| cv/fold-{fold} | gdlt | jigsaws-suturing | best-val | 1 (0) | 2 |" in out and f"| {rho:.3f} (one seed) |" in out
    assert (f"| cv (Fisher-z mean over folds 0, 1, 2, 3) | gdlt | jigsaws-suturing | best-val | 1 (0) | 2 |" in out
            and f"{direct:.3f} (one seed)" in out)
    status, out, err = run_cli(monkeypatch, capsys, "results", tmp_path, "--json")  # the folder of runs
    rows = json.loads(out)["runs"]
    assert [row["name"] for row in rows] == ["cv/fold-0", "cv/fold-1", "cv/fold-2", "cv/fold-3", "cv"]
    assert rows[-1]["fisher_z_over_folds"] == [0, 1, 2, 3] and rows[1]["fold"] == 1
    assert rows[-1]["test_spearman"]["per_seed"] == [pytest.approx(direct)]


def test_a_subset_of_folds(features, tmp_path, monkeypatch, capsys):
    status, _, err = train(monkeypatch, capsys, features, tmp_path, "--folds", "0,2", "--seeds", "2")
    assert status == 0, err
    summary = read(tmp_path / "cv" / "summary.json")
    assert summary["folds"] == [0, 2] and summary["seeds"] == [0, 1]
    assert sorted(p.name for p in (tmp_path / "cv").glob("fold-*")) == ["fold-0", "fold-2"]
    per_fold = [entry["test_spearman_per_seed"] for entry in summary["per_fold"]]
    assert summary["test_spearman_fisher_z"]["per_seed"] == pytest.approx(list(over_folds(per_fold)))


def test_resume_keeps_the_finished_folds(features, tmp_path):
    from aqakit.train.config import build_config
    from aqakit.train.folds import train_folds

    config = build_config("gdlt", "jigsaws-suturing", {
        "data_root": str(JIGSAWS), "benchmark_args.features_dir": str(features), "train.epochs": 2,
        "model.args.hidden_dim": 16, "train.batch_size": 8})
    current = []

    def interrupt_in_fold_2(seed, row):
        if current[-1] == 2 and row["epoch"] == 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_folds(config, tmp_path / "cv", [0, 1, 2, 3], [0], on_fold_start=current.append, on_epoch_end=interrupt_in_fold_2)
    finished = {fold: (tmp_path / "cv" / f"fold-{fold}" / "seed-0" / "summary.json").read_text() for fold in (0, 1)}
    assert not (tmp_path / "cv" / "summary.json").exists()
    rows, _ = read_runs([tmp_path / "cv"])  # what aqakit results shows meanwhile
    assert [row.name for row in rows] == ["cv/fold-0", "cv/fold-1", "cv/fold-2", "cv"]
    assert rows[2].unfinished == (0,) and rows[-1].seeds == () and rows[-1].unfinished == (0,)
    assert "| cv (Fisher-z mean over folds 0, 1, 2, 3) | gdlt | jigsaws-suturing | best-val | none finished (unfinished: 0) |" \
        in render_markdown(rows)
    with pytest.raises(RunDirectoryError, match="already exists; pass --overwrite"):
        train_folds(config, tmp_path / "cv", [0, 1, 2, 3], [0])
    with pytest.raises(RunDirectoryError, match=r"cannot resume, it trains something else \(folds: saved \[0, 1, 2, 3\], now \[0, 1\]\)"):
        train_folds(config, tmp_path / "cv", [0, 1], [0], resume=True)
    summary = train_folds(config, tmp_path / "cv", [0, 1, 2, 3], [0], resume=True)
    for fold, text in finished.items():  # kept, not trained again (the timing would differ)
        assert (tmp_path / "cv" / f"fold-{fold}" / "seed-0" / "summary.json").read_text() == text
    assert [entry["fold"] for entry in summary["per_fold"]] == [0, 1, 2, 3]
    assert read(tmp_path / "cv" / "summary.json") == json.loads(json.dumps(summary))
    train_folds(config, tmp_path / "cv", [3], [0], overwrite=True)  # replaced as a whole
    assert sorted(p.name for p in (tmp_path / "cv").glob("fold-*")) == ["fold-3"]
    with pytest.raises(RunDirectoryError, match=r"is not an aqakit run \(no crossval.json\); refusing to delete it"):
        train_folds(config, tmp_path / "cv" / "fold-3", [3], [0], overwrite=True)


MODEL_ARGS = {
    "gdlt": ["--set", "model.args.hidden_dim=16"],
    "cofinal": ["--set", "model.args.proj_dim=12", "--set", "model.args.hidden_dim=16", "--set", "model.args.n_procedures=3"],
    "cofinal-official": ["--set", "model.args.hidden_dim=16", "--set", "model.args.n_heads=2",
                         "--set", "model.args.digit_hidden_dim=12"],
    "query-decoder": ["--set", "model.args.width=16", "--set", "model.args.n_heads=2", "--set", "model.args.n_queries=5"],
    "tpt": ["--set", "model.args.hidden_dim=16", "--set", "model.args.n_heads=2", "--set", "model.args.n_parts=2",
            "--set", "model.args.ffn_dim=16", "--set", "model.args.n_exemplars=3", "--set", "train.crop_len=4"],
}


@pytest.mark.parametrize("model", MODEL_ARGS)
def test_every_deep_model_trains_a_fold(model, features, tmp_path, monkeypatch, capsys):
    status, _, err = run_cli(monkeypatch, capsys, "train", model, "jigsaws-suturing", *data_args(features),
                             "--epochs", "2", "--set", "train.batch_size=8", *MODEL_ARGS[model], "--folds", "1",
                             "--runs-dir", tmp_path, "--name", "one")
    assert status == 0, err
    summary = read(tmp_path / "one" / "summary.json")
    assert summary["model"] == model and summary["folds"] == [1]
    assert math.isfinite(summary["per_fold"][0]["test"]["mae"]["mean"])


def test_tpt_pairs_each_fold_with_exemplars_of_its_own_training_folds(features, tmp_path, monkeypatch, capsys):
    """The exemplar pool of fold k is split k's training part: its three other folds' trials."""
    status, _, err = run_cli(monkeypatch, capsys, "train", "tpt", "jigsaws-suturing", *data_args(features),
                             "--epochs", "1", "--set", "train.batch_size=8", *MODEL_ARGS["tpt"], "--folds", "all",
                             "--runs-dir", tmp_path, "--name", "cv")
    assert status == 0, err
    summary = read(tmp_path / "cv" / "summary.json")
    assert summary["folds"] == [0, 1, 2, 3] and math.isfinite(summary["test_spearman_fisher_z"]["mean"])
    splits = pickle.loads((JIGSAWS / "splits.pkl").read_bytes())["Suturing"]
    for fold in range(4):
        seed = read(tmp_path / "cv" / f"fold-{fold}" / "seed-0" / "summary.json")
        assert seed["exemplars"]["per_held_out_video"] == 3
        assert seed["exemplars"]["pool_size"] == sum(len(trials) for k, trials in enumerate(splits) if k != fold)


def test_one_fold_as_an_ordinary_run_records_what_it_left_out(features, tmp_path, monkeypatch, capsys):
    gone = pickle.loads((JIGSAWS / "splits.pkl").read_bytes())["Suturing"][0][0]
    partial = tmp_path / "partial"
    partial.mkdir()
    for path in features.iterdir():
        if path.stem != f"{gone}_capture1":
            (partial / path.name).symlink_to(path)
    status, out, err = run_cli(monkeypatch, capsys, "train", "gdlt", "jigsaws-suturing", *data_args(partial), *TINY,
                               "--set", "benchmark_args.fold=0", "--runs-dir", tmp_path, "--name", "fold0")
    assert status == 2 and f"{partial / gone}_capture1.npy: feature file not found (1 of the" in err
    assert not (tmp_path / "fold0").exists()
    status, out, err = run_cli(monkeypatch, capsys, "train", "gdlt", "jigsaws-suturing", *data_args(partial), *TINY,
                               "--set", "benchmark_args.fold=0", "--set", "benchmark_args.allow_missing=true",
                               "--runs-dir", tmp_path, "--name", "fold0")
    assert status == 0, err
    assert read(tmp_path / "fold0" / "summary.json")["left_out"] == {"test": [f"{gone}_capture1"]}
    assert f"left out: test: 1 labelled video(s) without a feature file (benchmark_args.allow_missing): {gone}_capture1" in out
    status, out, err = train(monkeypatch, capsys, partial, tmp_path, "--folds", "0,1",
                             "--set", "benchmark_args.allow_missing=true")
    assert status == 0, err
    per_fold = read(tmp_path / "cv" / "summary.json")["per_fold"]
    assert per_fold[0]["left_out"] == {"test": [f"{gone}_capture1"]} and per_fold[1]["left_out"] == {"train": [f"{gone}_capture1"]}
    assert "left out: fold 1 train: 1 labelled video(s)" in out


# ---- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--folds", "7"], "error: fold 7 of jigsaws-suturing does not exist (its folds: 0, 1, 2, 3, or all)"),
        (["--folds", "0,x"], "error: --folds 0,x: 'x' is not a fold (give all, or folds of jigsaws-suturing like 0,2)"),
        (["--folds", "1,1"], "error: fold 1 is given twice"),
        (["--folds", "all", "--set", "benchmark_args.fold=1"],
         "error: --folds chooses the folds; benchmark_args.fold=1 cannot be given with it"),
        (["--set", "benchmark_args.fold=4"],
         "error: benchmark 'jigsaws-suturing': fold 4 does not exist (its official folds: 0, 1, 2, 3)"),
        ([], "error: benchmark 'jigsaws-suturing' has 4 official folds (0, 1, 2, 3): --folds all trains each"),
    ],
)
def test_bad_folds_are_one_line_errors(args, expected, features, tmp_path, monkeypatch, capsys):
    status, _, err = train(monkeypatch, capsys, features, tmp_path, *args)
    assert status == 2 and err.strip().startswith(expected) and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "cv").exists()


def test_folds_of_a_benchmark_without_folds_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    status, _, err = run_cli(monkeypatch, capsys, "train", "gdlt", "synthetic", "--folds", "all", "--runs-dir", tmp_path)
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "benchmark 'synthetic' has no official folds" in err and "jigsaws-suturing" in err


def test_auto_folds_must_be_a_number(tmp_path, monkeypatch, capsys):
    status, _, err = run_cli(monkeypatch, capsys, "train", "auto", "synthetic", "--folds", "all", "--runs-dir", tmp_path)
    assert status == 2 and "aqakit train auto: --folds is the number of folds of the training split" in err


def test_a_missing_feature_file_stops_cross_validation_before_any_folder(features, tmp_path, monkeypatch, capsys):
    partial = tmp_path / "partial"
    partial.mkdir()
    knot_tying = sorted(path for path in features.iterdir() if path.name.startswith("Suturing_"))
    for path in knot_tying[3:]:
        (partial / path.name).symlink_to(path)
    status, _, err = train(monkeypatch, capsys, partial, tmp_path, "--folds", "all")
    assert status == 2 and "feature file not found (" in err and "benchmark_args.allow_missing=true" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "cv").exists()
