"""Train a configuration over one or several seeds into a run folder (:class:`~aqakit.rundir.RunDir`).

:func:`train_run` checks the folder and the data, writes the configuration and data fingerprint,
then trains the seeds one after the other (:func:`train_seeds`, Lightning) or together as one
batched ensemble (:func:`train_ensemble_run`); each seed ends in :func:`finish_seed` (the selected
checkpoint's predictions and summary), and the run in its across-seed summary.

An existing run directory is never replaced unless the caller asks (``overwrite``) and it
is recognisably an aqakit run; ``resume`` continues it instead.
"""

from __future__ import annotations

import logging
import math
import shutil
import signal
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import Logger, TensorBoardLogger

from aqakit import metrics
from aqakit.atomic import remove_partials
from aqakit.data.batches import ClipBank, TrainBatches
from aqakit.data.exemplars import ExemplarBatches, ExemplarPool, HeldOutBatches
from aqakit.data.videoset import VideoSet
from aqakit.errors import ConfigError, RunDirectoryError
from aqakit.locking import folder_lock
from aqakit.models import AQAModel, create_model
from aqakit.models.loading import load_checkpoint
from aqakit.rundir import BEST_TEST_NOTE, RunDir, RunSummary, SeedDir, SeedSummary
from aqakit.train.config import RunConfig, TrainConfig, changed_settings
from aqakit.train.data import (
    Splits,
    checkpoint_info,
    data_fingerprint,
    held_out_sets,
    left_out_videos,
    read_data,
    seed_splits,
)
from aqakit.train.distributed import (
    ShardedBatches,
    check_distributed,
    check_shares,
    is_rank_zero,
    shard_batches,
    sync_batch_norm,
    trainer_devices,
)
from aqakit.train.ensemble import check_ensemble_config, train_ensemble
from aqakit.train.evaluate import predict_bank, score_metrics
from aqakit.train.precision import resolve_precision
from aqakit.train.resume import AtomicCheckpointIO
from aqakit.train.selection import SeedRecord
from aqakit.train.stability import late_swing
from aqakit.train.step import epoch_record
from aqakit.train.task import AQATask


def train_seed(
    config: RunConfig,
    seed: int,
    seed_dir: SeedDir,
    *,
    resume: bool = False,
    on_epoch_end: Callable[[dict[str, float]], None] | None = None,
    splits: Splits | None = None,
    device: str | None = None,
) -> SeedSummary | None:
    """Fit one seed; returns (and writes) its summary. ``splits`` skips re-reading the data.

    ``device`` (``cpu`` or ``cuda``) fixes where it trains; None takes a GPU when there is one.
    The precision actually used (``train.precision: auto`` resolved) is in the summary. With
    ``train.devices`` or ``train.num_nodes`` above 1 every process calls this; global rank 0 alone
    writes and returns the summary, the others train their share and return None
    (:mod:`aqakit.train.distributed`).
    """
    for logger in ("lightning.pytorch", "lightning.fabric"):  # no "GPU available"/tips/"Initializing distributed" chatter
        logging.getLogger(logger).setLevel(logging.WARNING)
    pl.seed_everything(seed, workers=False, verbose=False)
    splits = splits or seed_splits(read_data(config), config, seed)
    train_cfg = config.train
    rank_zero = is_rank_zero(train_cfg)
    if rank_zero:
        seed_dir.path.mkdir(parents=True, exist_ok=True)
    model = create_model(
        config.model.name, in_dim=splits.train.feature_dim, score_scale=splits.scale, **config.model.args
    )
    prepared = model.prepare(splits.train)
    info = checkpoint_info(config, seed, splits.train.scores)
    if model.closed_form:
        held_out, eval_sets = held_out_sets(splits, train_cfg)
        return fit_closed_form_seed(config, seed, seed_dir, model, splits, held_out, eval_sets, info, on_epoch_end, device)
    check_shares(len(splits.train), train_cfg)
    train_batches, held_out, eval_sets, pool = seed_batches(model, splits, train_cfg, seed)
    if train_cfg.world_size > 1:
        sync_batch_norm(model)
    train_batches = shard_batches(train_batches, train_cfg)
    task = AQATask(
        model, config.optim, train_cfg.epochs, train_batches, eval_sets, seed_dir,
        select=train_cfg.select, checkpoint_info=info, on_epoch_end=on_epoch_end, compile=train_cfg.compile,
        ema_decay=train_cfg.ema_decay,
    )
    precision = resolve_precision(train_cfg.precision, device or default_device())
    trainer = pl.Trainer(
        max_epochs=train_cfg.epochs,
        accelerator={None: "auto", "cpu": "cpu", "cuda": "gpu"}[device],
        **trainer_devices(train_cfg, device or default_device()),
        precision=precision,
        gradient_clip_val=train_cfg.grad_clip,
        logger=epoch_logger(train_cfg.logger, seed_dir),
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        plugins=[AtomicCheckpointIO()],  # a kill in the middle of a save leaves the previous last.ckpt whole
        callbacks=[ModelCheckpoint(dirpath=seed_dir.resume_dir, filename=seed_dir.resume_checkpoint.stem, save_top_k=1,
                                   enable_version_counter=False)],
    )
    last = seed_dir.resume_checkpoint
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*Checkpoint directory .* exists and is not empty.*")
        warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")  # aqakit logs per epoch itself
        warnings.filterwarnings("ignore", ".*LeafSpec.*")  # Lightning's own use of a deprecated torch API
        fit_reporting_interrupts(trainer, task, train_batches, str(last) if resume and last.is_file() else None)
    if not rank_zero:
        return None
    return finish_seed(
        config, seed, seed_dir, held_out, task.history, n_train=len(splits.train), device=device, precision=precision,
        exemplars=exemplar_report(model, pool, prepared),
    )


def epoch_logger(kind: str, seed_dir: SeedDir) -> Logger | bool:
    """Lightning's TensorBoard logger writing into ``seed-<k>/tensorboard`` (``tensorboard --logdir
    runs`` finds every run's seeds), or False for none."""
    if kind == "none":
        return False
    try:
        return TensorBoardLogger(save_dir=seed_dir.path, name="tensorboard", version="", default_hp_metric=False)
    except ModuleNotFoundError:
        raise ConfigError("train.logger tensorboard needs TensorBoard: pip install 'aqakit[tensorboard]'") from None


def seed_batches(
    model: AQAModel, splits: Splits, train_cfg: TrainConfig, seed: int
) -> tuple[TrainBatches | ExemplarBatches, dict[str, tuple[HeldOutBatches, VideoSet]],
           dict[str, tuple[HeldOutBatches, np.ndarray]], ExemplarPool | None]:
    """A seed's training batches and held-out sets; for a pair model, with exemplars drawn from
    the training split (one per training video, ``n_exemplars`` per held-out video) and their pool."""
    bank = ClipBank(splits.train)
    train_batches = TrainBatches(bank, train_cfg.batch_size, train_cfg.crop_len, seed)
    if not model.needs_exemplars:
        return (train_batches, *held_out_sets(splits, train_cfg), None)
    config = model.config
    pool = ExemplarPool(splits.train, config.exemplar_key, config.exemplar_fallback, bank=bank)
    held_out, eval_sets = held_out_sets(splits, train_cfg, (pool, config.n_exemplars, seed))
    return ExemplarBatches(train_batches, pool, seed, crop_len=train_cfg.crop_len), held_out, eval_sets, pool


def exemplar_report(model: AQAModel, pool: ExemplarPool | None, prepared: dict[str, Any]) -> dict[str, Any] | None:
    """What a pair model's summary records: how its exemplars were drawn and how often a video had
    to be paired outside its group; None for other models."""
    if pool is None:
        return None
    config = model.config
    return {"per_held_out_video": config.n_exemplars, "pool_size": len(pool.videos), "key": config.exemplar_key,
            "fallback": config.exemplar_fallback, "videos_paired_outside_their_group": dict(pool.fallbacks), **prepared}


def fit_closed_form_seed(
    config: RunConfig,
    seed: int,
    seed_dir: SeedDir,
    model: AQAModel,
    splits: Splits,
    held_out: dict[str, tuple[HeldOutBatches, VideoSet]],
    eval_sets: dict[str, tuple[HeldOutBatches, np.ndarray]],
    info: dict[str, Any],
    on_epoch_end: Callable[[dict[str, float]], None] | None,
    device: str | None,
) -> SeedSummary:
    """Fit a closed-form model (ridge) on the seed's training part: one "epoch", recorded and
    selected like any other, so its run folder has the layout of every run."""
    start = time.perf_counter()
    fit = model.fit_closed_form(splits.train)
    row = epoch_record(model, eval_sets, "cpu", epoch=0, lr=None, losses={"loss": fit["train_mse"]},
                       train_seconds=time.perf_counter() - start, started=start)
    record = SeedRecord(seed_dir, 1, config.train.select, info)
    record.add_epoch(model, row)
    if on_epoch_end is not None:
        on_epoch_end(row)
    return finish_seed(
        config, seed, seed_dir, held_out, record.history, n_train=len(splits.train), device=device,
        precision="64-true", closed_form_fit=fit,
    )


def fit_reporting_interrupts(
    trainer: pl.Trainer, task: AQATask, batches: TrainBatches | ExemplarBatches | ShardedBatches, ckpt_path: str | None
) -> None:
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
    seed_dir: SeedDir,
    held_out: dict[str, tuple[HeldOutBatches, VideoSet]],
    history: list[dict[str, float]],
    n_train: int,
    device: str | None = None,
    precision: str | None = None,
    *,
    closed_form_fit: dict[str, Any] | None = None,
    ensemble: dict[str, Any] | None = None,
    exemplars: dict[str, Any] | None = None,
) -> SeedSummary:
    """Evaluate the selected checkpoint on every held-out set; write predictions and summary.

    ``precision`` (the one training used), ``closed_form_fit`` (ridge's fit), ``ensemble`` (how
    the seeds trained together) and ``exemplars`` (a pair model's) are recorded in the summary.
    """
    model, meta = load_checkpoint(seed_dir.checkpoint_dir)
    device = device or default_device()
    model.to(device)
    figures: dict[str, Any] = {}
    rows = []
    for name, (batches, videos) in held_out.items():
        predicted = predict_bank(model, batches, device)
        figures[name] = score_metrics(predicted, videos.scores, model)
        rows += [(name, vid, true, pred) for vid, true, pred in zip(videos.ids, videos.scores, predicted)]
        if name == "test":
            figures["test_spearman_ci95"] = list(metrics.bootstrap_spearman_ci(predicted, videos.scores, seed=seed))
    summary = SeedSummary(
        model=config.model.name,
        benchmark=config.benchmark,
        seed=seed,
        selection=config.train.select,
        selected_epoch=meta["info"]["epoch"],
        epochs=config.train.epochs,
        precision=precision,
        **figures,
        note=f"selection best-test: {BEST_TEST_NOTE}" if config.train.select == "best-test" else None,
        best_test_epoch_spearman=paper_comparison(history),
        late_swing=late_swing(history),
        timing=epoch_timing(history, n_train),
        closed_form_fit=closed_form_fit,
        ensemble=ensemble,
        exemplars=exemplars,
    )
    seed_dir.write_predictions(rows)
    seed_dir.write_summary(summary)
    return summary


def paper_comparison(history: list[dict[str, float]]) -> dict[str, Any] | None:
    """The best per-epoch test Spearman, labelled as test-selected (what papers report); None when
    no epoch scored the test set."""
    scored = [row for row in history if not math.isnan(row.get("test_spearman", math.nan))]
    if not scored:
        return None
    best = max(scored, key=lambda row: row["test_spearman"])
    return {"epoch": int(best["epoch"]), "spearman": best["test_spearman"], "note": BEST_TEST_NOTE}


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
    """Train ``config`` for each seed into ``run_dir``; returns the across-seed summary (as in its
    ``summary.json``).

    ``device`` (``cpu`` or ``cuda``) fixes where it trains; None takes a GPU when there is one.

    With ``resume``, the configuration saved in ``run_dir`` must equal ``config``; finished
    seeds are kept and an interrupted seed continues from its last epoch.

    ``config.yaml`` records ``train.precision: auto`` as what it resolves to on this machine, so a
    resume on a machine where ``auto`` means something else (bf16 against float32) is refused
    instead of mixing precisions within one run. Runs saved before that (with ``auto``) resume in
    whatever ``auto`` means where they resume.

    With ``train.devices`` or ``train.num_nodes`` above 1 (:mod:`aqakit.train.distributed`), Lightning
    runs the calling script once more per extra process; global rank 0 does all of the above, the
    other processes train their shares of every seed, write nothing and return ``{}``.
    """
    if not seeds:
        raise ConfigError("at least one seed is needed")
    config.check()
    check_distributed(config)
    if config.train.ensemble:
        check_ensemble_config(config)  # before anything is written
    if not is_rank_zero(config.train):  # rank 0 holds the lock and writes; a finished seed is skipped on every rank
        train_seeds(config, RunDir(run_dir), seeds, read_data(config), resume=resume, device=device, on_epoch_end=None)
        return {}
    with folder_lock(run_dir, "run"):  # a second writer is refused before anything is read or removed
        run = RunDir(run_dir)
        replace_existing = run.check_use(overwrite=overwrite, resume=resume)
        machine = device or default_device()
        precision = resolve_precision(config.train.precision, machine)
        if resume:
            changes = changed_settings(run.read_config(), config)
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
                raise RunDirectoryError(f"{run.config_path}: cannot resume, the configuration differs ({listed})")
        data = read_data(config)  # before anything is written: bad data leaves no run folder behind
        if resume:
            run.check_same_data(data_fingerprint(data))
            remove_partials(run.path)  # what writers killed in the middle of a write left; the lock is ours
        else:
            if replace_existing:
                shutil.rmtree(run.path)
            run.path.mkdir(parents=True, exist_ok=True)
            run.write_config(replace(config, train=replace(config.train, precision=precision)).to_dict())
            run.write_data_fingerprint(data_fingerprint(data))
        if config.train.ensemble:
            if resume:
                raise RunDirectoryError(f"{run.path}: an ensemble run cannot be resumed; train it again with --overwrite")
            seed_summaries = train_ensemble_run(config, run, seeds, data, device=device, on_epoch_end=on_epoch_end)
        else:
            seed_summaries = train_seeds(config, run, seeds, data, resume=resume, device=device, on_epoch_end=on_epoch_end)
        summary = RunSummary.of_seeds(seed_summaries, left_out=left_out_videos(data))
        run.write_summary(summary)
        return summary.to_json()


def train_seeds(
    config: RunConfig,
    run: RunDir,
    seeds: list[int],
    data: Splits,
    *,
    resume: bool,
    device: str | None,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None,
) -> list[SeedSummary]:
    """Train the seeds one after the other; finished seeds of a resumed run are kept. A process other
    than rank 0 of a multi-device run trains them too and returns no summaries."""
    seed_summaries = []
    for seed in seeds:
        seed_dir = run.seed(seed)
        if resume and seed_dir.finished:
            seed_summaries.append(seed_dir.read_summary())
            continue
        callback = (lambda row, s=seed: on_epoch_end(s, row)) if on_epoch_end else None
        splits = seed_splits(data, config, seed)
        summary = train_seed(config, seed, seed_dir, resume=resume, on_epoch_end=callback, splits=splits, device=device)
        if summary is not None:
            seed_summaries.append(summary)
    return seed_summaries


def train_ensemble_run(
    config: RunConfig,
    run: RunDir,
    seeds: list[int],
    data: Splits,
    *,
    device: str | None,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None,
) -> list[SeedSummary]:
    """Train every seed together as one batched ensemble, then finish each seed as a separate run."""
    device = device or default_device()
    splits = seed_splits(data, config, seeds[0])  # final / best-test: no split carved, the same for all
    held_out, eval_sets = held_out_sets(splits, config.train)
    records = []
    for seed in seeds:
        seed_dir = run.seed(seed)
        seed_dir.path.mkdir(parents=True, exist_ok=True)
        records.append(SeedRecord(seed_dir, config.train.epochs, config.train.select, checkpoint_info(config, seed, splits.train.scores)))
    precision = train_ensemble(
        config, seeds, splits.train, splits.scale, eval_sets, records, device=device, on_epoch_end=on_epoch_end
    )
    note = {"seeds": seeds, "note": "trained together as one batched ensemble; train_seconds is the whole ensemble's"}
    return [
        finish_seed(config, seed, record.seed_dir, held_out, record.history, len(splits.train), device, precision,
                    ensemble=note)
        for seed, record in zip(seeds, records)
    ]
