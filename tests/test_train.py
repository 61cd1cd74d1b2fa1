"""The training engine: selection rules, run directories, resume, multi-seed summaries."""

import csv
import json
import signal

import numpy as np
import pytest
import torch
import yaml

from aqakit.data.scale import ScoreScale
from aqakit.errors import ConfigError, DataError, RunDirectoryError, TrainingDivergedError
from aqakit.models import create_model, model_defaults
from aqakit.models.loading import load_checkpoint
from aqakit.train.config import RunConfig, apply_preset, build_config, list_presets, named_preset
from aqakit.train.evaluate import predict_videos, score_metrics
from aqakit.train import precision
from aqakit.train.data import read_data, seed_splits
from aqakit.train.runner import train_run
from conftest import random_videos, scoring_exemplars

TINY = {
    "benchmark_args": {"n_train": 48, "n_test": 24, "dim": 16},
    "model.args": {"hidden_dim": 16, "n_queries": 4},
    "train.epochs": 3,
    "train.batch_size": 16,
    "train.crop_len": 24,
}


def tiny_config(**overrides):
    return build_config("gdlt", "synthetic", {**TINY, **overrides})


def read_rows(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_final_selection_writes_a_complete_run(tmp_path):
    run = tmp_path / "run"
    summary = train_run(tiny_config(), run, [0])
    seed_dir = run / "seed-0"
    for name in ("metrics.csv", "predictions.csv", "summary.json", "checkpoint/model.safetensors", "checkpoint/model.json"):
        assert (seed_dir / name).is_file(), name
    assert (run / "config.yaml").is_file() and (run / "summary.json").is_file()
    rows = read_rows(seed_dir / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert {"train_mse", "train_triplet", "train_loss", "test_spearman", "lr"} <= set(rows[0])
    seed_summary = json.loads((seed_dir / "summary.json").read_text())
    assert seed_summary["selection"] == "final" and seed_summary["selected_epoch"] == 2
    # The reported test metrics are the selected checkpoint's: recompute them from the saved weights.
    model, meta = load_checkpoint(run)
    test = read_data(tiny_config()).test
    recomputed = score_metrics(predict_videos(model, test), test.scores, model)
    assert recomputed["spearman"] == pytest.approx(seed_summary["test"]["spearman"], abs=1e-6)
    # The last epoch's logged test metric is the same checkpoint too.
    assert float(rows[-1]["test_spearman"]) == pytest.approx(recomputed["spearman"], abs=1e-6)
    assert summary["test"]["spearman"]["mean"] == pytest.approx(seed_summary["test"]["spearman"])
    predictions = read_rows(seed_dir / "predictions.csv")
    assert len(predictions) == 24 and {r["split"] for r in predictions} == {"test"}


def test_best_val_selects_on_a_validation_split_carved_from_train(tmp_path):
    summary = train_run(tiny_config(**{"train.select": "best-val", "train.epochs": 4}), tmp_path / "run", [0])
    seed = summary["per_seed"][0]
    rows = read_rows(tmp_path / "run" / "seed-0" / "metrics.csv")
    val = [float(r["val_spearman"]) for r in rows]
    assert seed["selected_epoch"] == int(np.nanargmax(val))
    assert seed["val"]["spearman"] == pytest.approx(max(val), abs=1e-6)
    predictions = read_rows(tmp_path / "run" / "seed-0" / "predictions.csv")
    val_ids = {r["id"] for r in predictions if r["split"] == "val"}
    train_ids = set(read_data(tiny_config()).train.ids)
    assert val_ids and val_ids <= train_ids and len(val_ids) == pytest.approx(0.2 * 48, abs=2)


def test_a_tuning_run_never_scores_the_test_split(tmp_path, recorded_splits):
    read_splits = recorded_splits
    config = tiny_config(**{"train.select": "best-val", "train.epochs": 2, "train.evaluate_test": False})
    summary = train_run(config, tmp_path / "run", [0])
    assert read_splits == ["train"]  # the test features are not even read from disk
    assert "test" not in summary and "test" not in summary["per_seed"][0] and "val" in summary
    assert "best_test_epoch_spearman" not in summary
    rows = read_rows(tmp_path / "run" / "seed-0" / "metrics.csv")
    assert not any(key.startswith("test_") for key in rows[0])
    assert {r["split"] for r in read_rows(tmp_path / "run" / "seed-0" / "predictions.csv")} == {"val"}
    with pytest.raises(ConfigError, match="train.evaluate_test=false .* needs train.select best-val or train.val_folds"):
        tiny_config(**{"train.evaluate_test": False})


def test_k_fold_validation_scores_every_training_video_once_at_the_final_epoch(tmp_path):
    # Seeds 0-2 with val_folds=3 validate on the three folds of one partition: together they
    # score every training video once, and selection "final" reports the last epoch's validation.
    config = tiny_config(**{"train.val_folds": 3, "train.evaluate_test": False, "train.epochs": 2})
    summary = train_run(config, tmp_path / "run", [0, 1, 2])
    val_ids = []
    for seed in range(3):
        rows = read_rows(tmp_path / "run" / f"seed-{seed}" / "metrics.csv")
        seed_summary = summary["per_seed"][seed]
        assert seed_summary["selected_epoch"] == 1 and "test" not in seed_summary
        assert seed_summary["val"]["spearman"] == pytest.approx(float(rows[-1]["val_spearman"]), abs=1e-6)
        val_ids += [r["id"] for r in read_rows(tmp_path / "run" / f"seed-{seed}" / "predictions.csv")]
    assert sorted(val_ids) == sorted(read_data(tiny_config()).train.ids)
    assert summary["val"]["spearman"]["mean"] == pytest.approx(
        np.mean([s["val"]["spearman"] for s in summary["per_seed"]])
    )


def test_train_fraction_trains_on_a_stratified_share_beside_the_same_validation_fold():
    data = read_data(tiny_config())  # 48 training videos
    full = seed_splits(data, tiny_config(**{"train.val_folds": 4}), seed=1)
    half = seed_splits(data, tiny_config(**{"train.val_folds": 4, "train.train_fraction": 0.5}), seed=1)
    assert half.val.ids == full.val.ids  # the validation videos do not move
    assert len(full.train) == 36 and len(half.train) == 18 and set(half.train.ids) < set(full.train.ids)
    # Stratified: one video of each pair of neighbouring scores, so the share spans the whole range.
    ranks = np.searchsorted(np.sort(full.train.scores), half.train.scores)
    assert sorted(ranks // 2) == list(range(18))
    again = seed_splits(data, tiny_config(**{"train.val_folds": 4, "train.train_fraction": 0.5}), seed=1)
    other = seed_splits(data, tiny_config(**{"train.val_folds": 4, "train.train_fraction": 0.5}), seed=5)
    assert again.train.ids == half.train.ids and other.train.ids != half.train.ids and other.val.ids == full.val.ids
    alone = seed_splits(data, tiny_config(**{"train.train_fraction": 0.25}), seed=0)  # select final: no validation
    assert alone.val is None and len(alone.train) == 12 and alone.test is data.test


@pytest.mark.parametrize("fraction", [0, 1.5, -0.2])
def test_train_fraction_must_lie_in_zero_one(fraction):
    with pytest.raises(ConfigError, match=r"train.train_fraction must be in \(0, 1\]"):
        tiny_config(**{"train.train_fraction": fraction})


@pytest.mark.parametrize("folds", [1, 2.5, True])
def test_val_folds_must_be_an_integer_of_at_least_two(folds):
    with pytest.raises(ConfigError, match="train.val_folds must be an integer of at least 2"):
        tiny_config(**{"train.val_folds": folds})


@pytest.mark.parametrize("model, args", [("gdlt", TINY["model.args"]), ("cofinal", {"proj_dim": 16, "hidden_dim": 16})])
def test_scoring_the_test_split_every_epoch_does_not_change_training(tmp_path, model, args):
    # Runs with and without the per-epoch test pass must be comparable: that pass is evaluation
    # only and may not draw from the random stream that drives dropout and crops.
    runs = {}
    for every_epoch in (True, False):
        run = tmp_path / str(every_epoch)
        overrides = {**TINY, "model.args": args, "train.eval_test_every_epoch": every_epoch}
        summary = train_run(build_config(model, "synthetic", overrides), run, [0])
        runs[every_epoch] = (summary, [r["train_loss"] for r in read_rows(run / "seed-0" / "metrics.csv")])
    assert runs[True][1] == runs[False][1]
    assert runs[True][0]["test"] == runs[False][0]["test"]


def test_best_test_is_labelled_as_such(tmp_path):
    summary = train_run(tiny_config(**{"train.select": "best-test"}), tmp_path / "run", [0])
    assert "not an honest estimate" in summary["note"]
    rows = read_rows(tmp_path / "run" / "seed-0" / "metrics.csv")
    assert summary["per_seed"][0]["selected_epoch"] == int(np.nanargmax([float(r["test_spearman"]) for r in rows]))


def test_several_seeds_give_mean_and_std(tmp_path):
    summary = train_run(tiny_config(), tmp_path / "run", [0, 1, 2])
    values = [s["test"]["spearman"] for s in summary["per_seed"]]
    assert summary["seeds"] == [0, 1, 2] and len(set(values)) == 3
    assert summary["test"]["spearman"]["mean"] == pytest.approx(np.mean(values))
    assert summary["test"]["spearman"]["std"] == pytest.approx(np.std(values, ddof=1))


def test_same_seed_is_deterministic(tmp_path):
    first = train_run(tiny_config(), tmp_path / "a", [3])["per_seed"][0]["test"]
    second = train_run(tiny_config(), tmp_path / "b", [3])["per_seed"][0]["test"]
    assert first == second


def test_existing_run_is_refused_unless_overwrite(tmp_path):
    run = tmp_path / "run"
    train_run(tiny_config(), run, [0])
    with pytest.raises(RunDirectoryError, match="already exists.*--overwrite"):
        train_run(tiny_config(), run, [0])
    train_run(tiny_config(), run, [0], overwrite=True)
    user_folder = tmp_path / "mine"
    user_folder.mkdir()
    (user_folder / "notes.txt").write_text("precious")
    with pytest.raises(RunDirectoryError, match="not an aqakit run"):
        train_run(tiny_config(), user_folder, [0], overwrite=True)
    assert (user_folder / "notes.txt").read_text() == "precious"


class StopAfterEpoch(Exception):
    pass


@pytest.mark.parametrize("ema_decay", [None, 0.9])
def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path, monkeypatch, ema_decay):
    config = tiny_config(**{"train.epochs": 4, "train.ema_decay": ema_decay})
    reference = train_run(config, tmp_path / "reference", [0])

    def interrupt(seed, row):
        if row["epoch"] == 1:
            raise StopAfterEpoch()

    with pytest.raises(StopAfterEpoch):
        train_run(config, tmp_path / "run", [0], on_epoch_end=interrupt)
    assert (tmp_path / "run" / "seed-0" / "resume" / "last.ckpt").is_file()
    resumed = train_run(config, tmp_path / "run", [0], resume=True)
    rows = read_rows(tmp_path / "run" / "seed-0" / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    assert resumed["per_seed"][0]["test"] == pytest.approx(reference["per_seed"][0]["test"], abs=1e-6)


def test_ctrl_c_is_a_keyboard_interrupt_that_leaves_a_resumable_seed(tmp_path):
    config = tiny_config(**{"train.epochs": 3})

    def press_ctrl_c(seed, row):
        if row["epoch"] == 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_run(config, tmp_path / "run", [0], on_epoch_end=press_ctrl_c)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # a second Ctrl-C still stops Python
    assert train_run(config, tmp_path / "run", [0], resume=True)["per_seed"][0]["selected_epoch"] == 2


def test_resume_refuses_a_different_configuration(tmp_path):
    train_run(tiny_config(), tmp_path / "run", [0])
    with pytest.raises(RunDirectoryError, match=r"differs \(optim.lr: saved 0.001, now 0.5\)"):
        train_run(tiny_config(**{"optim.lr": 0.5}), tmp_path / "run", [0], resume=True)


def test_a_run_saved_by_an_older_aqakit_resumes_and_adds_seeds(tmp_path, monkeypatch):
    """Settings added later (absent from the saved file) at their defaults, and precision "auto"
    against the precision it resolves to, do not block a resume; new seeds are added to the run."""
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)  # auto is 32-true on any host
    train_run(tiny_config(**{"train.precision": "auto"}), tmp_path / "run", [0], device="cpu")
    config_path = tmp_path / "run" / "config.yaml"
    saved = yaml.safe_load(config_path.read_text())
    del saved["train"]["ema_decay"], saved["optim"]["gamma"]
    defaults = model_defaults(saved["model"]["name"])
    at_default = [key for key, value in saved["model"]["args"].items() if defaults.get(key, object()) == value]
    assert at_default  # a hyper-parameter added later is absent from the older file
    for key in at_default:
        del saved["model"]["args"][key]
    config_path.write_text(yaml.safe_dump(saved))
    summary = train_run(tiny_config(**{"train.precision": "auto"}), tmp_path / "run", [0, 1], resume=True, device="cpu")
    assert summary["seeds"] == [0, 1] and (tmp_path / "run" / "seed-1" / "summary.json").is_file()
    with pytest.raises(RunDirectoryError, match=r"optim.gamma: saved None, now 0.5"):
        train_run(tiny_config(**{"optim.gamma": 0.5}), tmp_path / "run", [0], resume=True)
    with pytest.raises(RunDirectoryError, match=r"\(model.args.hidden_dim: saved 16, now 8\)"):
        train_run(tiny_config(**{"model.args": {"hidden_dim": 8, "n_queries": 4}}), tmp_path / "run", [0], resume=True)


def test_the_run_records_what_auto_chose_and_a_resume_where_auto_differs_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    train_run(tiny_config(**{"train.precision": "auto"}), tmp_path / "run", [0], device="cpu")
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["train"]["precision"] == "32-true"
    train_run(tiny_config(**{"train.precision": "auto"}), tmp_path / "run", [0], resume=True, device="cpu")
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)  # another machine: auto means bf16 there
    with pytest.raises(RunDirectoryError, match=r"train.precision: saved '32-true', now 'auto' \(bf16-mixed on this machine\)"):
        train_run(tiny_config(**{"train.precision": "auto"}), tmp_path / "run", [0], resume=True, device="cpu")
    summary = train_run(tiny_config(**{"train.precision": "32-true"}), tmp_path / "run", [0], resume=True, device="cpu")
    assert summary["per_seed"][0]["precision"] == "32-true"


def test_config_errors_are_clear():
    with pytest.raises(ConfigError, match="unknown setting 'train.epoch'"):
        tiny_config(**{"train.epoch": 3})
    with pytest.raises(ConfigError, match="train.select"):
        tiny_config(**{"train.select": "best"})
    with pytest.raises(ConfigError, match="whole number"):
        tiny_config(**{"train.epochs": 2.5})


def test_adam_and_gradient_clipping_train(tmp_path):
    config = tiny_config(**{"optim.name": "adam", "optim.lr": 1e-3, "optim.scheduler": "none", "train.grad_clip": 0.5})
    summary = train_run(config, tmp_path / "run", [0])
    rows = read_rows(tmp_path / "run" / "seed-0" / "metrics.csv")
    assert {float(r["lr"]) for r in rows} == {1e-3}
    assert np.isfinite(summary["test"]["spearman"]["mean"])
    assert torch.isfinite(torch.tensor(float(rows[-1]["train_loss"])))



def test_nan_spearman_ranks_below_every_number():
    from aqakit.train.selection import is_improvement

    nan = float("nan")
    assert is_improvement(0.1, nan) and is_improvement(0.5, 0.3)
    assert not is_improvement(nan, 0.3) and not is_improvement(nan, nan) and not is_improvement(0.3, 0.3)


def test_any_dimension_and_length_trains_from_a_csv_folder(tmp_path):
    """Nothing assumes Fis-V: 5-d features, videos of 1 to 300 clips, scores in the thousands."""
    rng = np.random.default_rng(0)
    (tmp_path / "data" / "features").mkdir(parents=True)
    lines = ["id,score,split"]
    for i, clips in enumerate([1, 2, 300, 7, 1, 40, 3, 90, 1, 12, 5, 250]):
        np.save(tmp_path / "data" / "features" / f"clip{i}.npy", rng.normal(size=(clips, 5)).astype(np.float64))
        lines.append(f"clip{i},{1000 + 50 * i},{'test' if i % 4 == 3 else 'train'}")
    (tmp_path / "data" / "labels.csv").write_text("\n".join(lines) + "\n")
    config = build_config("gdlt", "csv", {
        "data_root": str(tmp_path / "data"), "train.epochs": 2, "train.batch_size": 4, "train.crop_len": 16,
        "model.args": {"hidden_dim": 8}, "train.select": "final",
    })
    summary = train_run(config, tmp_path / "run", [0])
    predictions = read_rows(tmp_path / "run" / "seed-0" / "predictions.csv")
    assert len(predictions) == 3 and summary["per_seed"][0]["selected_epoch"] == 1
    assert all(1000 <= float(r["predicted_score"]) <= 1500 for r in predictions)  # training range, original scale


def csv_folder(folder, scores: dict[str, tuple[float, str]], clips: int = 3, dim: int = 4):
    """A CSV benchmark folder: ``scores`` maps id -> (score, split); features are seeded noise."""
    rng = np.random.default_rng(0)
    (folder / "features").mkdir(parents=True, exist_ok=True)
    for vid in scores:
        np.save(folder / "features" / f"{vid}.npy", rng.normal(size=(clips, dim)).astype(np.float32))
    rows = [f"{vid},{score},{split}" for vid, (score, split) in scores.items()]
    (folder / "labels.csv").write_text("id,score,split\n" + "\n".join(rows) + "\n")
    return folder


def csv_config(folder, **overrides):
    return build_config("gdlt", "csv", {
        "data_root": str(folder), "train.epochs": 2, "train.batch_size": 4, "train.crop_len": 4,
        "model.args": {"hidden_dim": 8}, **overrides,
    })


def test_data_that_cannot_be_scored_is_refused_before_any_run_folder_is_written(tmp_path):
    cases = {
        "one test video": ({f"v{i}": (i, "train") for i in range(6)} | {"t0": (3.0, "test")}, "the test split has 1 video"),
        "constant scores": ({f"v{i}": (5.0, "train") for i in range(6)} | {"t0": (1.0, "test"), "t1": (2.0, "test")},
                            "all 6 training scores are 5"),
    }
    for name, (scores, message) in cases.items():
        folder = csv_folder(tmp_path / name.replace(" ", "-"), scores)
        with pytest.raises(DataError, match=message):
            train_run(csv_config(folder), tmp_path / "runs" / name, [0])
        assert not (tmp_path / "runs" / name).exists()
    split_files = csv_folder(tmp_path / "leak", {f"v{i}": (i, "train") for i in range(6)})
    (split_files / "labels.csv").unlink()
    (split_files / "train.csv").write_text("id,score\n" + "".join(f"v{i},{i}\n" for i in range(6)))
    (split_files / "test.csv").write_text("id,score\nv4,4\nv5,5\n")
    with pytest.raises(DataError, match=r"2 video\(s\) are in both the training and the test split: v4, v5"):
        train_run(csv_config(split_files), tmp_path / "runs" / "leak", [0])


def test_small_training_sets_keep_two_validation_videos_or_say_why_not(tmp_path):
    folder = csv_folder(tmp_path / "d", {f"v{i}": (i, "train") for i in range(7)} | {"t0": (1.0, "test"), "t1": (5.0, "test")})
    summary = train_run(csv_config(folder, **{"train.select": "best-val"}), tmp_path / "bv", [0])
    assert np.isfinite(summary["per_seed"][0]["val"]["spearman"])
    assert len([r for r in read_rows(tmp_path / "bv" / "seed-0" / "predictions.csv") if r["split"] == "val"]) == 2
    with pytest.raises(DataError, match="4 folds need at least 8 training videos \\(there are 7\\)"):
        train_run(csv_config(folder, **{"train.val_folds": 4}), tmp_path / "kf", [0])


def test_resume_refuses_labels_that_changed(tmp_path):
    scores = {f"v{i}": (i, "train") for i in range(6)} | {f"t{i}": (i, "test") for i in range(4)}
    folder = csv_folder(tmp_path / "d", scores)
    train_run(csv_config(folder), tmp_path / "run", [0])
    assert json.loads((tmp_path / "run" / "data.json").read_text())["test"]["videos"] == 4
    csv_folder(folder, {k: v for k, v in scores.items() if k != "t3"})
    with pytest.raises(RunDirectoryError, match=r"labels differ .*\(test: 4 videos then, 3 now\)"):
        train_run(csv_config(folder), tmp_path / "run", [0, 1], resume=True)
    csv_folder(folder, scores | {"v0": (0.5, "train")})
    with pytest.raises(RunDirectoryError, match=r"train: 6 videos then, 6 now, other ids or scores"):
        train_run(csv_config(folder), tmp_path / "run", [0, 1], resume=True)
    csv_folder(folder, scores)
    assert train_run(csv_config(folder), tmp_path / "run", [0, 1], resume=True)["seeds"] == [0, 1]


@pytest.mark.parametrize("ema_decay", [0.0, 0.9])
def test_ema_weights_are_the_ones_evaluated_and_saved(tmp_path, ema_decay):
    train_run(tiny_config(**{"train.ema_decay": ema_decay}), tmp_path / "run", [0])
    saved, _ = load_checkpoint(tmp_path / "run")
    task_state = torch.load(tmp_path / "run" / "seed-0" / "resume" / "last.ckpt", weights_only=False)["state_dict"]
    raw = {k.removeprefix("model."): v for k, v in task_state.items() if k.startswith("model.")}
    average = {k.removeprefix("ema.module."): v for k, v in task_state.items() if k.startswith("ema.module.")}
    assert raw.keys() == average.keys() == saved.state_dict().keys()
    for key, value in saved.state_dict().items():
        torch.testing.assert_close(value, average[key])
    weights = [k for k in raw if "weight" in k]
    differs = any(not torch.equal(raw[k], average[k]) for k in weights)
    assert differs == (ema_decay > 0)  # decay 0 keeps only the latest step: the raw weights


def test_ema_decay_outside_its_range_is_a_config_error():
    with pytest.raises(ConfigError, match="train.ema_decay must be in"):
        tiny_config(**{"train.ema_decay": 1.0})


def test_data_without_a_preset_of_its_own_gets_the_robust_generic_one():
    config = build_config("gdlt", "csv")
    assert (config.train.select, config.train.ema_decay, config.train.epochs) == ("best-val", 0.99, 100)
    assert build_config("gdlt", "fisv-pcs").train.select == "final"  # a benchmark's own preset: as released
    assert build_config("cofinal", "mtl-aqa").model.args["grade_targets"] == "two-hot"
    assert build_config("ridge", "csv").model.name == "ridge"


def test_the_most_specific_preset_wins():
    assert build_config("gdlt", "fisv-tes").train.epochs == 100  # gdlt-fisv-tes.yaml
    assert build_config("gdlt", "fisv-pcs").train.epochs == 200  # gdlt-fisv.yaml: gdlt.yaml as released
    assert build_config("gdlt", "rg-ball").train.epochs == 250  # gdlt-rg.yaml


def test_a_named_preset_or_a_yaml_file_replaces_the_default_one(tmp_path):
    assert build_config("gdlt", "fisv-pcs", preset="gdlt-fisv-tes").train.epochs == 100
    own = tmp_path / "mine.yaml"
    own.write_text("base: gdlt-fisv-tes\ntrain: {crop_len: 32}\n")  # builds on a built-in preset
    config = build_config("gdlt", "fisv-pcs", {"train.batch_size": 8}, preset=str(own))
    assert (config.train.epochs, config.train.crop_len, config.train.batch_size) == (100, 32, 8)
    with pytest.raises(ConfigError, match="unknown preset 'gdlt-fisv-xyz'; built-in presets: .*gdlt-fisv-tes"):
        build_config("gdlt", "fisv-pcs", preset="gdlt-fisv-xyz")
    with pytest.raises(ConfigError, match="preset file .*missing.yaml not found"):
        build_config("gdlt", "fisv-pcs", preset=str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="is for model 'cofinal', not 'gdlt'"):
        build_config("gdlt", "fisv-pcs", preset="cofinal-fisv")


def test_a_diverging_run_stops_with_a_clear_error(tmp_path):
    """A non-finite training loss ends the seed at once, naming the epoch; its history is kept."""
    config = tiny_config(**{"optim.lr": 1e30, "optim.scheduler": "none", "train.epochs": 5})
    with pytest.raises(TrainingDivergedError, match=r"seed-0: training diverged in epoch \d \(mean .*loss (nan|inf)"):
        train_run(config, tmp_path / "run", [0])
    rows = read_rows(tmp_path / "run" / "seed-0" / "metrics.csv")
    assert len(rows) < 5 and not np.isfinite(float(rows[-1]["train_loss"]))
    ensemble = tiny_config(**{"optim.lr": 1e30, "optim.scheduler": "none", "train.epochs": 5, "train.ensemble": True})
    with pytest.raises(TrainingDivergedError, match=r"training diverged in epoch \d"):  # the batched path too
        train_run(ensemble, tmp_path / "ensemble", [0, 1])


@pytest.mark.parametrize("preset", list_presets())
def test_every_built_in_preset_builds_a_model_that_scores(preset):
    named = RunConfig()
    apply_preset(named, named_preset(preset))  # the preset (or its base) names its model
    config = build_config(named.model.name, "synthetic", preset=preset)
    torch.manual_seed(0)
    model = create_model(config.model.name, in_dim=16, score_scale=ScoreScale(0.0, 10.0), **config.model.args)
    if model.closed_form:
        model.fit_closed_form(random_videos(12, 16))
    features = torch.randn(2, 5, 16)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    model.prepare(random_videos(12, 16))
    assert torch.isfinite(model.eval()(features, mask, scoring_exemplars(model, 2, dim=16)).score).all()
