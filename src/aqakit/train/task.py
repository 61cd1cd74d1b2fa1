"""The LightningModule that fits any :class:`~aqakit.models.AQAModel`.

The model stays framework-free; this wrapper owns the optimiser and runs the training step of
:mod:`aqakit.train.step`; after every epoch it evaluates the held-out sets and hands the epoch's
record to the seed's :class:`~aqakit.train.selection.SeedRecord` (``metrics.csv`` and the
checkpoint selection rule).

With ``ema_decay`` set, an exponential moving average of the weights (and of the BatchNorm
statistics) is kept after every optimiser step, and it is that average which is evaluated,
selected and saved; the optimiser still steps the raw weights.

On several processes (:mod:`aqakit.train.distributed`) each process trains on its share of every
batch, the epoch's loss sums are added over the processes, and global rank 0 alone evaluates,
selects and writes.

The selection state and every global random generator travel in Lightning's resume checkpoint,
and a fit starts by rewriting ``metrics.csv`` to the epochs it resumes from, so an interrupted run
resumes to the same result, bit for bit (docs/reliability.md).
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import lightning.pytorch as pl
import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from aqakit.data.batches import Batch, TrainBatches
from aqakit.data.exemplars import ExemplarBatches, HeldOutBatches
from aqakit.errors import TrainingDivergedError
from aqakit.models import AQAModel
from aqakit.rundir import SeedDir
from aqakit.train.config import OptimConfig
from aqakit.train.distributed import ShardedBatches, weighted_loss
from aqakit.train.resume import restore_rng_state, rng_state
from aqakit.train.selection import SeedRecord
from aqakit.train.step import EpochLosses, batch_loss, build_optimiser, epoch_record


class AQATask(pl.LightningModule):
    """Fit ``model`` on ``train_batches``; evaluate ``eval_sets`` after every epoch."""

    def __init__(
        self,
        model: AQAModel,
        optim: OptimConfig,
        epochs: int,
        train_batches: TrainBatches | ExemplarBatches | ShardedBatches,
        eval_sets: dict[str, tuple[HeldOutBatches, np.ndarray]],
        seed_dir: SeedDir,
        select: str = "final",
        checkpoint_info: dict[str, Any] | None = None,
        on_epoch_end: Callable[[dict[str, float]], None] | None = None,
        compile: bool = False,
        ema_decay: float | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.ema = (
            AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True)
            if ema_decay is not None
            else None
        )
        if self.ema is not None:
            self.ema.requires_grad_(False)  # updated by averaging, never by gradients (DDP expects none for it)
        # The training forward pass, optionally compiled (a function, so it adds no module or weights).
        self.train_forward: Callable[..., Any] = torch.compile(model.forward) if compile else model.forward
        self.optim_config = optim
        self.epochs = epochs
        self.train_batches = train_batches
        self.eval_sets = eval_sets  # name -> (batches, true scores)
        self.record = SeedRecord(seed_dir, epochs, select, checkpoint_info or {})
        self.on_epoch_end = on_epoch_end  # receives each epoch's metrics row (progress display)
        self._losses = EpochLosses()
        self._epoch_start = 0.0

    @property
    def scored_model(self) -> AQAModel:
        """The weights that are evaluated and saved: the moving average when enabled, else the model."""
        return self.ema.module if self.ema is not None else self.model

    # --- training -------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        cfg = self.optim_config
        optimiser, scheduler = build_optimiser(
            cfg, self.model.parameter_groups(cfg.lr), self.epochs, len(self.train_batches)
        )
        if scheduler is None:
            return optimiser
        return {"optimizer": optimiser, "lr_scheduler": {"scheduler": scheduler, "interval": cfg.scheduler_interval}}

    def on_fit_start(self) -> None:
        if self.trainer.is_global_zero:
            self.record.rewrite_history()  # after on_load_checkpoint: the epochs this fit starts from

    def on_train_epoch_start(self) -> None:
        self.train_batches.set_epoch(self.current_epoch)
        self._losses = EpochLosses()
        self._epoch_start = time.perf_counter()

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        terms, total = batch_loss(self.model, batch, self.train_forward)
        self._losses.add(terms, total, len(batch["score"]))
        return weighted_loss(total, batch)

    def on_train_batch_end(self, outputs: Any, batch: Batch, batch_idx: int) -> None:
        if self.ema is not None:
            self.ema.update_parameters(self.model)

    # --- per-epoch evaluation and selection -----------------------------------------------
    def on_train_epoch_end(self) -> None:
        self._losses.reduce(lambda value: self.trainer.strategy.reduce(value, reduce_op="sum"))  # over processes
        losses = self._losses.means()  # waits for the device, so the seconds include its work
        train_seconds = time.perf_counter() - self._epoch_start
        if not self.trainer.is_global_zero:
            if not math.isfinite(losses.get("loss", 0.0)):  # rank 0 stops with the message; so must the others
                raise TrainingDivergedError(f"training diverged in epoch {self.current_epoch}")
            return
        row = epoch_record(
            self.scored_model, self.eval_sets, self.device, epoch=self.current_epoch,
            lr=self.trainer.optimizers[0].param_groups[0]["lr"], losses=losses,
            train_seconds=train_seconds, started=self._epoch_start,
        )
        self.record.add_epoch(self.scored_model, row)
        if self.trainer.logger is not None:  # train.logger: the same row as metrics.csv, by epoch
            self.trainer.logger.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=int(row["epoch"]))
        if self.on_epoch_end is not None:
            self.on_epoch_end(row)

    @property
    def history(self) -> list[dict[str, float]]:
        return self.record.history

    # --- resume ---------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The global generators drive dropout: saving them makes a resumed run match an uninterrupted one.
        checkpoint["aqakit"] = {"history": self.record.history, "best": self.record.best, "rng": rng_state()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("aqakit", {})
        self.record.history = state.get("history", [])
        self.record.best = state.get("best", self.record.best)
        if "rng" in state:
            rng = state["rng"]
            restore_rng_state(rng if isinstance(rng, dict) else {"torch": rng})  # older checkpoints: torch's alone
