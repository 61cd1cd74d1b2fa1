"""Train a configuration over one or several seeds and write the run directory.

Layout of ``runs/<name>/``::

    config.yaml            the resolved configuration (train.precision: auto saved as what it chose)
    data.json              per split its number of videos and a hash of ids and scores (checked on resume)
    summary.json           test (and validation) metrics over seeds: mean, std, per seed
    seed-<k>/metrics.csv   one row per epoch: learning rate, loss terms, held-out metrics, seconds
    seed-<k>/predictions.csv  split, video id, true and predicted score (selected checkpoint)
    seed-<k>/summary.json  the seed's metrics, all from the selected checkpoint
    seed-<k>/checkpoint/   model.safetensors + model.json (the selected weights)
    seed-<k>/resume/last.ckpt  Lightning state to resume an interrupted seed

An existing run directory is never replaced unless the caller asks (``overwrite``) and it
is recognisably an aqakit run; ``resume`` continues it instead.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import shutil
import signal
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import lightning.pytorch as pl
import numpy as np
import torch
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint

from aqakit import metrics
from aqakit.data.batches import ClipBank, EvalBatches, TrainBatches
from aqakit.data.benchmarks import FileBenchmark, get_benchmark
from aqakit.data.scale import ScoreScale
from aqakit.data.splits import carve_fold, carve_validation
from aqakit.data.videoset import VideoSet
from aqakit.errors import ConfigError, DataError, RunDirectoryError
from aqakit.models import AQAModel, create_model
from aqakit.models.loading import load_checkpoint
from aqakit.train.config import RunConfig, TrainConfig, changed_settings
from aqakit.train.ensemble import train_ensemble
from aqakit.train.evaluate import predict_bank, score_metrics
from aqakit.train.precision import resolve_precision
from aqakit.train.stability import late_swing
from aqakit.train.task import AQATask, SeedRecord, held_out_metrics
from aqakit.video.manifest import read_manifest

CONFIG_FILE = "config.yaml"
SUMMARY_FILE = "summary.json"
DATA_FILE = "data.json"
PREDICTIONS_FILE = "predictions.csv"
BEST_TEST_NOTE = "chosen on the test set, as published papers do; not an honest estimate"


@dataclass
class Splits:
    """The data of a run: what trains, what selects (val) and what is reported (test)."""

    train: VideoSet
    test: VideoSet | None  # None: the run never scores the test split (train.evaluate_test=false)
    val: VideoSet | None
    scale: ScoreScale


def read_data(config: RunConfig, *, with_test: bool | None = None) -> Splits:
    """Read the benchmark's official train (and test) sets and fix the score scale.

    ``with_test`` None follows ``train.evaluate_test``: a tuning run does not even read the
    test features from disk. The score scale comes from the training set (or ``score_range``).
    """
    benchmark = get_benchmark(config.benchmark, **config.benchmark_args)
    root = Path(config.data_root) if config.data_root else None
    with_test = config.train.evaluate_test if with_test is None else with_test
    train = benchmark.load(root, "train")
    test = benchmark.load(root, "test") if with_test else None
    check_splits(train, test)
    scale = ScoreScale(*config.score_range) if config.score_range else benchmark.score_scale(train)
    return Splits(train=train, test=test, val=None, scale=scale)


def check_splits(train: VideoSet, test: VideoSet | None) -> None:
    """DataError unless the training scores vary, the test split has the two videos a Spearman
    needs, and no video is in both splits."""
    if np.ptp(train.scores) == 0:
        raise DataError(
            f"{train.source}: all {len(train)} training scores are {train.scores[0]:g}; "
            "a model cannot learn from scores that do not vary"
        )
    if test is None:
        return
    if len(test) < 2:
        raise DataError(f"{test.source}: the test split has {len(test)} video; test metrics (Spearman) need at least 2")
    both = sorted(set(train.ids) & set(test.ids))
    if both:
        shown = ", ".join(both[:5]) + (f" and {len(both) - 5} more" if len(both) > 5 else "")
        raise DataError(f"{len(both)} video(s) are in both the training and the test split: {shown}")


def seed_splits(data: Splits, config: RunConfig, seed: int) -> Splits:
    """The splits seed ``seed`` trains on.

    First a validation split is carved out of the training set when ``best-val`` selects or
    ``train.val_folds`` asks for k-fold validation (seed ``s`` validates on fold ``s mod k`` of one
    partition, drawn with seed 0, so seeds 0..k-1 validate on every training video once). Then,
    with ``train.train_fraction`` below 1, the seed trains on that share of what is left, drawn
    score-stratified with the seed (as :func:`carve_validation` draws, keeping one part): a
    learning curve at a smaller training set, over the same validation videos.
    """
    train_cfg = config.train
    if not train_cfg.carves_validation and train_cfg.train_fraction == 1:
        return data
    train_idx, val = np.arange(len(data.train.scores)), None
    if train_cfg.val_folds is not None:
        fold = seed % train_cfg.val_folds
        train_idx, val_idx = carve_fold(data.train.scores, train_cfg.val_folds, fold)
        val = data.train.subset(val_idx, source=f"{data.train.source} (validation fold {fold} of {train_cfg.val_folds})")
    elif train_cfg.select == "best-val":
        train_idx, val_idx = carve_validation(data.train.scores, train_cfg.val_fraction, seed, min_val=2)
        val = data.train.subset(val_idx, source=f"{data.train.source} (validation part)")
    if val is not None and len(val) < 2:
        raise DataError(
            f"{val.source}: {len(val)} video; a validation Spearman needs at least 2, so {train_cfg.val_folds} folds "
            f"need at least {2 * train_cfg.val_folds} training videos (there are {len(data.train)})"
        )
    if train_cfg.train_fraction < 1:
        kept, _ = carve_validation(data.train.scores[train_idx], 1.0 - train_cfg.train_fraction, seed)
        train_idx = train_idx[kept]
    return Splits(train=data.train.subset(train_idx), test=data.test, val=val, scale=data.scale)


def feature_extraction_info(config: RunConfig) -> dict[str, Any]:
    """``{"features": settings}`` when the run's feature folder was written by ``aqakit extract``.

    The settings (backbone, weights hash, clip length, fps, crop) go into every checkpoint so
    ``aqakit score`` extracts a new video the way the training features were made.
    """
    benchmark = get_benchmark(config.benchmark, **config.benchmark_args)
    if not isinstance(benchmark, FileBenchmark):
        return {}
    try:
        feature_dir = benchmark.feature_dir(Path(config.data_root) if config.data_root else None)
    except DataError:
        return {}
    manifest = read_manifest(feature_dir)
    return {"features": manifest["extraction"]} if manifest else {}


def check_run_dir(run_dir: Path, overwrite: bool = False, resume: bool = False) -> bool:
    """RunDirectoryError unless ``run_dir`` may be used as asked; True when an existing run is to be
    replaced (``overwrite``). Changes nothing on disk."""
    if run_dir.exists() and any(run_dir.iterdir()):
        is_run = (run_dir / CONFIG_FILE).is_file()
        if resume:
            if not is_run:
                raise RunDirectoryError(f"{run_dir}: cannot resume, it holds no {CONFIG_FILE}")
            return False
        if not overwrite:
            raise RunDirectoryError(
                f"{run_dir} already exists; pass --overwrite to replace it or --resume to continue it"
            )
        if not is_run:
            raise RunDirectoryError(f"{run_dir} is not an aqakit run (no {CONFIG_FILE}); refusing to delete it")
        return True
    if resume:
        raise RunDirectoryError(f"{run_dir}: nothing to resume")
    return False


def data_fingerprint(data: Splits) -> dict[str, Any]:
    """What a resumed run must still train and test on: per split its number of videos and a
    SHA-256 of its ids and scores (the features themselves are not hashed)."""

    def of(videos: VideoSet | None) -> dict[str, Any] | None:
        if videos is None:
            return None
        text = "\n".join(f"{vid}\t{score!r}" for vid, score in zip(videos.ids, videos.scores.tolist()))
        return {"videos": len(videos), "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}

    return {"train": of(data.train), "test": of(data.test)}


def check_same_data(run_dir: Path, data: Splits) -> None:
    """RunDirectoryError when a resumed run's recorded data fingerprint differs from ``data``'s
    (runs saved before fingerprints were recorded are not checked)."""
    path = run_dir / DATA_FILE
    if not path.is_file():
        return
    saved, now = json.loads(path.read_text()), data_fingerprint(data)
    changed = []
    for split, current in now.items():
        before = saved.get(split)
        if before != current:
            then_n, now_n = (fingerprint["videos"] if fingerprint else "no" for fingerprint in (before, current))
            changed.append(f"{split}: {then_n} videos then, {now_n} now" + (", other ids or scores" if then_n == now_n else ""))
    if changed:
        raise RunDirectoryError(
            f"{path}: cannot resume, the labels differ from those its seeds were trained on ({'; '.join(changed)}); "
            "train a new run (another --name)"
        )


def held_out_sets(
    splits: Splits, train_cfg: TrainConfig
) -> tuple[dict[str, tuple[EvalBatches, VideoSet]], dict[str, tuple[EvalBatches, np.ndarray]]]:
    """Batches of the val/test sets, built once: every held-out set (for the final evaluation)
    and those evaluated after every epoch (with their true scores)."""
    held_out = {
        name: (EvalBatches(ClipBank(videos), train_cfg.eval_batch_size), videos)
        for name, videos in (("val", splits.val), ("test", splits.test))
        if videos is not None
    }
    per_epoch = {"val"} | ({"test"} if train_cfg.eval_test_every_epoch or train_cfg.select == "best-test" else set())
    eval_sets = {name: (batches, videos.scores) for name, (batches, videos) in held_out.items() if name in per_epoch}
    return held_out, eval_sets


def checkpoint_info(config: RunConfig, seed: int) -> dict[str, Any]:
    """What a seed's checkpoint records about its data (and how its features were extracted)."""
    return {"benchmark": config.benchmark, "benchmark_args": config.benchmark_args, "seed": seed,
            **feature_extraction_info(config)}


def train_seed(
    config: RunConfig,
    seed: int,
    seed_dir: Path,
    *,
    resume: bool = False,
    on_epoch_end: Callable[[dict[str, float]], None] | None = None,
    splits: Splits | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Fit one seed; returns (and writes) its summary. ``splits`` skips re-reading the data.

    ``device`` (``cpu`` or ``cuda``) fixes where it trains; None takes a GPU when there is one.
    The precision actually used (``train.precision: auto`` resolved) is in the summary.
    """
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # no "GPU available"/tips chatter
    pl.seed_everything(seed, workers=False, verbose=False)
    splits = splits or seed_splits(read_data(config), config, seed)
    seed_dir.mkdir(parents=True, exist_ok=True)
    train_cfg = config.train
    model = create_model(
        config.model.name, in_dim=splits.train.feature_dim, score_scale=splits.scale, **config.model.args
    )
    held_out, eval_sets = held_out_sets(splits, train_cfg)
    info = checkpoint_info(config, seed)
    if model.closed_form:
        return fit_closed_form_seed(config, seed, seed_dir, model, splits, held_out, eval_sets, info, on_epoch_end, device)
    train_batches = TrainBatches(ClipBank(splits.train), train_cfg.batch_size, train_cfg.crop_len, seed)
    task = AQATask(
        model, config.optim, train_cfg.epochs, train_batches, eval_sets, seed_dir,
        select=train_cfg.select, checkpoint_info=info, on_epoch_end=on_epoch_end, compile=train_cfg.compile,
        ema_decay=train_cfg.ema_decay,
    )
    precision = resolve_precision(train_cfg.precision, device or default_device())
    resume_dir = seed_dir / "resume"
    trainer = pl.Trainer(
        max_epochs=train_cfg.epochs,
        accelerator={None: "auto", "cpu": "cpu", "cuda": "gpu"}[device],
        devices=1,
        precision=precision,
        gradient_clip_val=train_cfg.grad_clip,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=[ModelCheckpoint(dirpath=resume_dir, filename="last", save_top_k=1, enable_version_counter=False)],
    )
    last = resume_dir / "last.ckpt"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*Checkpoint directory .* exists and is not empty.*")
        warnings.filterwarnings("ignore", ".*LeafSpec.*")  # Lightning's own use of a deprecated torch API
        fit_reporting_interrupts(trainer, task, train_batches, str(last) if resume and last.is_file() else None)
    return finish_seed(
        config, seed, seed_dir, held_out, task.history, n_train=len(splits.train), device=device, precision=precision
    )


def fit_closed_form_seed(
    config: RunConfig,
    seed: int,
    seed_dir: Path,
    model: AQAModel,
    splits: Splits,
    held_out: dict[str, tuple[EvalBatches, VideoSet]],
    eval_sets: dict[str, tuple[EvalBatches, np.ndarray]],
    info: dict[str, Any],
    on_epoch_end: Callable[[dict[str, float]], None] | None,
    device: str | None,
) -> dict[str, Any]:
    """Fit a closed-form model (ridge) on the seed's training part: one "epoch", recorded and
    selected like any other, so its run folder has the layout of every run."""
    start = time.perf_counter()
    fit = model.fit_closed_form(splits.train)
    row: dict[str, float] = {"epoch": 0, "train_loss": fit["train_mse"], "train_seconds": time.perf_counter() - start}
    row.update(held_out_metrics(model, eval_sets, "cpu"))
    row["epoch_seconds"] = time.perf_counter() - start
    record = SeedRecord(seed_dir, 1, config.train.select, info)
    record.add_epoch(model, row)
    if on_epoch_end is not None:
        on_epoch_end(row)
    return finish_seed(
        config, seed, seed_dir, held_out, record.history, n_train=len(splits.train), device=device,
        precision="64-true", extra={"closed_form_fit": fit},
    )


def fit_reporting_interrupts(trainer: pl.Trainer, task: AQATask, batches: TrainBatches, ckpt_path: str | None) -> None:
    """``trainer.fit``, with Ctrl-C raised as KeyboardInterrupt (Lightning turns it into ``sys.exit(1)``
    and leaves SIGINT ignored), so callers can report it and a later Ctrl-C still works."""
    try:
        trainer.fit(task, train_dataloaders=batches, ckpt_path=ckpt_path)
    except SystemExit:
        if not trainer.interrupted:
            raise
        signal.signal(signal.SIGINT, signal.default_int_handler)
        raise KeyboardInterrupt from None


def default_device() -> str:
    """Where training and evaluation run when no device is asked for: a GPU when there is one."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def finish_seed(
    config: RunConfig,
    seed: int,
    seed_dir: Path,
    held_out: dict[str, tuple[EvalBatches, VideoSet]],
    history: list[dict[str, float]],
    n_train: int,
    device: str | None = None,
    precision: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate the selected checkpoint on every held-out set; write predictions and summary.

    ``precision`` (the one training used) and ``extra`` entries are recorded in the summary.
    """
    model, meta = load_checkpoint(seed_dir / "checkpoint")
    device = device or default_device()
    model.to(device)
    summary: dict[str, Any] = {
        "model": config.model.name,
        "benchmark": config.benchmark,
        "seed": seed,
        "selection": config.train.select,
        "selected_epoch": meta["info"]["epoch"],
        "epochs": config.train.epochs,
    }
    if precision is not None:
        summary["precision"] = precision
    rows = []
    for name, (batches, videos) in held_out.items():
        predicted = predict_bank(model, batches, device)
        summary[name] = score_metrics(predicted, videos.scores, model)
        rows += [(name, vid, true, pred) for vid, true, pred in zip(videos.ids, videos.scores, predicted)]
        if name == "test":
            summary["test_spearman_ci95"] = list(metrics.bootstrap_spearman_ci(predicted, videos.scores, seed=seed))
    if config.train.select == "best-test":
        summary["note"] = f"selection best-test: {BEST_TEST_NOTE}"
    summary.update(paper_comparison(history))
    swing = late_swing(history)
    if swing is not None:
        summary["late_swing"] = swing
    summary["timing"] = epoch_timing(history, n_train)
    summary.update(extra or {})
    with open(seed_dir / PREDICTIONS_FILE, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["split", "id", "true_score", "predicted_score"])
        writer.writerows(rows)
    (seed_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
    return summary


def paper_comparison(history: list[dict[str, float]]) -> dict[str, Any]:
    """The best per-epoch test Spearman, labelled as test-selected (what papers report)."""
    scored = [row for row in history if not math.isnan(row.get("test_spearman", math.nan))]
    if not scored:
        return {}
    best = max(scored, key=lambda row: row["test_spearman"])
    return {
        "best_test_epoch_spearman": {"epoch": int(best["epoch"]), "spearman": best["test_spearman"], "note": BEST_TEST_NOTE}
    }


def epoch_timing(history: list[dict[str, float]], n_train: int) -> dict[str, float]:
    """Mean seconds per epoch (training alone, and with the per-epoch evaluation) and samples/s.

    The first epoch is warm-up (allocations, first-call overheads) and is left out when there
    are others.
    """
    measured = history[1:] if len(history) > 1 else history
    train_seconds = float(np.mean([row["train_seconds"] for row in measured]))
    return {
        "epochs_measured": len(measured),
        "train_seconds_per_epoch": train_seconds,
        "epoch_seconds_with_eval": float(np.mean([row["epoch_seconds"] for row in measured])),
        "train_samples_per_second": n_train / train_seconds if train_seconds > 0 else math.nan,
    }


def summarise_seeds(seed_summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample standard deviation (ddof=1; 0 for one seed) of each held-out metric."""
    first = seed_summaries[0]
    summary: dict[str, Any] = {
        "model": first["model"],
        "benchmark": first["benchmark"],
        "selection": first["selection"],
        "epochs": first["epochs"],
        "seeds": [s["seed"] for s in seed_summaries],
    }
    if first["selection"] == "best-test":
        summary["note"] = f"selection best-test: {BEST_TEST_NOTE}"
    for split in ("test", "val"):
        if split not in first:
            continue
        summary[split] = {
            metric: metrics.mean_std([s[split][metric] for s in seed_summaries]) for metric in first[split]
        }
    unstable = [s["seed"] for s in seed_summaries if s.get("late_swing", {}).get("unstable")]
    if unstable:
        summary["unstable_seeds"] = unstable
    if "best_test_epoch_spearman" in first:
        values = [s["best_test_epoch_spearman"]["spearman"] for s in seed_summaries]
        summary["best_test_epoch_spearman"] = {**metrics.mean_std(values), "note": BEST_TEST_NOTE}
    summary["per_seed"] = seed_summaries
    return summary


def train_run(
    config: RunConfig,
    run_dir: Path,
    seeds: list[int],
    *,
    overwrite: bool = False,
    resume: bool = False,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Train ``config`` for each seed into ``run_dir``; returns the across-seed summary.

    ``device`` (``cpu`` or ``cuda``) fixes where it trains; None takes a GPU when there is one.

    With ``resume``, the configuration saved in ``run_dir`` must equal ``config``; finished
    seeds are kept and an interrupted seed continues from its last epoch.

    ``config.yaml`` records ``train.precision: auto`` as what it resolves to on this machine, so a
    resume on a machine where ``auto`` means something else (bf16 against float32) is refused
    instead of mixing precisions within one run. Runs saved before that (with ``auto``) resume in
    whatever ``auto`` means where they resume.
    """
    if not seeds:
        raise ConfigError("at least one seed is needed")
    config.check()
    replace_existing = check_run_dir(run_dir, overwrite=overwrite, resume=resume)
    config_path = run_dir / CONFIG_FILE
    machine = device or default_device()
    precision = resolve_precision(config.train.precision, machine)
    if resume:
        changes = changed_settings(yaml.safe_load(config_path.read_text()) or {}, config)
        if "train.precision" in changes:  # "auto" resumes a run saved with what it resolves to here
            saved, _ = changes["train.precision"]
            if resolve_precision(str(saved), machine) == precision:
                del changes["train.precision"]
        if changes:
            listed = "; ".join(
                f"{key}: saved {old!r}, now {new!r}"
                + (f" ({precision} on this machine)" if key == "train.precision" and new == "auto" else "")
                for key, (old, new) in changes.items()
            )
            raise RunDirectoryError(f"{config_path}: cannot resume, the configuration differs ({listed})")
    data = read_data(config)  # before anything is written: bad data leaves no run folder behind
    if resume:
        check_same_data(run_dir, data)
    else:
        if replace_existing:
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        recorded = replace(config, train=replace(config.train, precision=precision))
        config_path.write_text(yaml.safe_dump(recorded.to_dict(), sort_keys=False))
        (run_dir / DATA_FILE).write_text(json.dumps(data_fingerprint(data), indent=2))
    if config.train.ensemble:
        if resume:
            raise RunDirectoryError(f"{run_dir}: an ensemble run cannot be resumed; train it again with --overwrite")
        seed_summaries = train_ensemble_run(config, run_dir, seeds, data, device=device, on_epoch_end=on_epoch_end)
    else:
        seed_summaries = train_seeds(config, run_dir, seeds, data, resume=resume, device=device, on_epoch_end=on_epoch_end)
    summary = summarise_seeds(seed_summaries)
    (run_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
    return summary


def train_seeds(
    config: RunConfig,
    run_dir: Path,
    seeds: list[int],
    data: Splits,
    *,
    resume: bool,
    device: str | None,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None,
) -> list[dict[str, Any]]:
    """Train the seeds one after the other; finished seeds of a resumed run are kept."""
    seed_summaries = []
    for seed in seeds:
        seed_dir = run_dir / f"seed-{seed}"
        if resume and (seed_dir / SUMMARY_FILE).is_file():
            seed_summaries.append(json.loads((seed_dir / SUMMARY_FILE).read_text()))
            continue
        callback = (lambda row, s=seed: on_epoch_end(s, row)) if on_epoch_end else None
        splits = seed_splits(data, config, seed)
        seed_summaries.append(train_seed(config, seed, seed_dir, resume=resume, on_epoch_end=callback, splits=splits, device=device))
    return seed_summaries


def train_ensemble_run(
    config: RunConfig,
    run_dir: Path,
    seeds: list[int],
    data: Splits,
    *,
    device: str | None,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None,
) -> list[dict[str, Any]]:
    """Train every seed together as one batched ensemble, then finish each seed as a separate run."""
    device = device or default_device()
    splits = seed_splits(data, config, seeds[0])  # final / best-test: no split carved, the same for all
    held_out, eval_sets = held_out_sets(splits, config.train)
    records = []
    for seed in seeds:
        seed_dir = run_dir / f"seed-{seed}"
        seed_dir.mkdir(parents=True, exist_ok=True)
        records.append(SeedRecord(seed_dir, config.train.epochs, config.train.select, checkpoint_info(config, seed)))
    precision = train_ensemble(
        config, seeds, splits.train, splits.scale, eval_sets, records, device=device, on_epoch_end=on_epoch_end
    )
    note = {"seeds": seeds, "note": "trained together as one batched ensemble; train_seconds is the whole ensemble's"}
    return [
        finish_seed(config, seed, record.seed_dir, held_out, record.history, len(splits.train), device, precision, {"ensemble": note})
        for seed, record in zip(seeds, records)
    ]
