"""The progress of a sweep read from its folder (aqakit.sweep.progress), no Ray."""

import json

from aqakit.sweep.progress import SweepWatcher, planned, watch
from aqakit.sweep.spec import parse_spec

BASE = {"benchmark_args": {"n_train": 48, "n_test": 24, "dim": 16}, "train.epochs": 5}


def spec(**fields):
    return parse_spec({"model": "gdlt", "benchmark": "synthetic", "base": dict(BASE), "seeds": [0, 1],
                       "space": {"optim.lr": {"grid": [0.01, 0.001]}}, **fields}, "s.yaml")


def write_seed(trial, seed, *, epochs_done, finished):
    folder = trial / f"seed-{seed}"
    folder.mkdir(parents=True)
    (folder / "metrics.csv").write_text("epoch,train_loss\n" + "".join(f"{e},0.1\n" for e in range(epochs_done)))
    if finished:
        (folder / "summary.json").write_text(json.dumps({"seed": seed, "epochs": epochs_done}))


def test_planned_epochs_are_every_trials_seeds_times_its_epochs():
    assert planned(spec()) == (2, 2 * 2 * 5)
    assert planned(spec(space={"train.epochs": {"grid": [3, 7]}})) == (2, 2 * 3 + 2 * 7)
    drawn = spec(search="random", num_samples=3, space={"optim.lr": {"uniform": [0.001, 0.01]}, "model.args.dropout": {"grid": [0.1, 0.2]}})
    assert planned(drawn) == (6, 6 * 2 * 5)


def test_the_watcher_counts_finished_seeds_and_the_epochs_of_those_training(tmp_path):
    watcher = SweepWatcher(tmp_path, spec())
    assert watcher.poll().epochs_done == 0 and watcher.poll().finished == []
    done = tmp_path / "trials" / "lr=0.01"
    write_seed(done, 0, epochs_done=5, finished=True)
    write_seed(done, 1, epochs_done=5, finished=True)
    (done / "summary.json").write_text("{}")
    write_seed(tmp_path / "trials" / "lr=0.001", 0, epochs_done=3, finished=False)
    state = watcher.poll()
    assert (state.epochs_done, state.epochs_planned, state.trials_planned, state.finished) == (13, 20, 2, ["lr=0.01"])
    (done / "seed-0" / "metrics.csv").unlink()  # a finished seed is read once
    assert watcher.poll().epochs_done == 13


def test_watch_reports_from_a_thread_and_once_more_at_the_end(tmp_path):
    seen = []
    finish = watch(SweepWatcher(tmp_path, spec()), seen.append)
    write_seed(tmp_path / "trials" / "lr=0.01", 0, epochs_done=2, finished=False)
    finish()
    assert seen and seen[-1].epochs_done == 2
