"""The LightningModule that fits any :class:`~aqakit.models.AQAModel`.

The model stays framework-free; this wrapper owns the optimiser, the per-epoch evaluation
of the held-out sets, the per-epoch metrics file and the checkpoint selection rule:

- ``final``: the weights after the last epoch;
- ``best-val``: the epoch with the best Spearman on the validation split carved from the
  training set;
- ``best-test``: the epoch with the best *test* Spearman. It exists only to compare with
  published numbers (which are chosen that way) and every output that uses it says so.

With ``ema_decay`` set, an exponential moving average of the weights (and of the BatchNorm
statistics) is kept after every optimiser step, and it is that average which is evaluated,
selected and saved; the optimiser still steps the raw weights.

The selected weights are written to ``<seed dir>/checkpoint`` as soon as they are selected,
and the selection state travels in Lightning's resume checkpoint, so an interrupted run
resumes to the same result.
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import lightning.pytorch as pl
import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from aqakit.data.batches import Batch, EvalBatches, TrainBatches
from aqakit.errors import TrainingDivergedError
from aqakit.models import AQAModel
from aqakit.models.loading import save_checkpoint
from aqakit.train.config import OptimConfig
from aqakit.train.evaluate import predict_bank, score_metrics

SELECTION_SET = {"best-val": "val", "best-test": "test"}
METRICS_FILE = "metrics.csv"  # one row per epoch, in each seed folder


def is_improvement(value: float, best: float) -> bool:
    """Whether Spearman ``value`` beats ``best``; NaN (constant predictions) ranks below any number."""
    return not math.isnan(value) and (math.isnan(best) or value > best)


def build_optimiser(
    cfg: OptimConfig, params: Iterable[torch.Tensor], epochs: int, steps_per_epoch: int = 1
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]:
    """The configured optimiser over ``params`` and its schedule (None for ``none``).

    The schedule is stepped once per ``cfg.scheduler_interval`` (epoch or optimiser step); a cosine
    stepped per optimiser step spans ``epochs * steps_per_epoch`` steps.
    """
    if cfg.name == "sgd":
        optimiser = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    elif cfg.name == "adam":
        optimiser = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        optimiser = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.scheduler == "none":
        return optimiser, None
    if cfg.scheduler == "step":
        return optimiser, torch.optim.lr_scheduler.StepLR(optimiser, step_size=cfg.step_size, gamma=cfg.gamma)
    steps = epochs * (steps_per_epoch if cfg.scheduler_interval == "step" else 1)
    return optimiser, torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=steps, eta_min=cfg.min_lr)


def held_out_metrics(
    model: AQAModel, eval_sets: dict[str, tuple[EvalBatches, np.ndarray]], device: torch.device | str
) -> dict[str, float]:
    """``<set>_<metric>`` of ``model`` on every held-out set (every clip, deterministic)."""
    row: dict[str, float] = {}
    for name, (batches, true) in eval_sets.items():
        predicted = predict_bank(model, batches, device)
        row.update({f"{name}_{k}": v for k, v in score_metrics(predicted, true, model).items()})
    return row


class SeedRecord:
    """One seed's per-epoch history (``metrics.csv``) and its checkpoint selection rule."""

    def __init__(self, seed_dir: Path, epochs: int, select: str, checkpoint_info: dict[str, Any]) -> None:
        self.seed_dir, self.epochs, self.select, self.checkpoint_info = seed_dir, epochs, select, checkpoint_info
        self.history: list[dict[str, float]] = []
        self.best: dict[str, float] = {"epoch": -1, "spearman": -math.inf}

    def add_epoch(self, model: AQAModel, row: dict[str, float]) -> None:
        """Log ``row``, rewrite ``metrics.csv`` and save ``model`` if the rule selects this epoch.

        Raises TrainingDivergedError, after logging, when the epoch's training loss is not finite.
        """
        self.history.append(row)
        self._write_history()
        if not math.isfinite(row.get("train_loss", 0.0)):
            terms = ", ".join(
                f"{key.removeprefix('train_')} {value:.4g}"
                for key, value in row.items() if key.startswith("train_") and key != "train_seconds"
            )  # fmt: skip
            raise TrainingDivergedError(
                f"{self.seed_dir}: training diverged in epoch {int(row['epoch'])} (mean {terms}); "
                "lower optim.lr or clip gradients (--set train.grad_clip=1.0). Its epochs are in metrics.csv"
            )
        self._update_selection(model, row)

    def _update_selection(self, model: AQAModel, row: dict[str, float]) -> None:
        epoch = int(row["epoch"])
        if self.select == "final":
            if epoch == self.epochs - 1:
                self._save_selected(model, epoch, math.nan)
            return
        value = row[f"{SELECTION_SET[self.select]}_spearman"]
        if self.best["epoch"] < 0 or is_improvement(value, self.best["spearman"]):
            self._save_selected(model, epoch, value)

    def _save_selected(self, model: AQAModel, epoch: int, value: float) -> None:
        self.best = {"epoch": epoch, "spearman": value}
        info = {**self.checkpoint_info, "selection": self.select, "epoch": epoch}
        save_checkpoint(model, self.seed_dir / "checkpoint", info)

    def _write_history(self) -> None:
        columns = list(dict.fromkeys(k for row in self.history for k in row))
        with open(self.seed_dir / METRICS_FILE, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.history)


class AQATask(pl.LightningModule):
    """Fit ``model`` on ``train_batches``; evaluate ``eval_sets`` after every epoch."""

    def __init__(
        self,
        model: AQAModel,
        optim: OptimConfig,
        epochs: int,
        train_batches: TrainBatches,
        eval_sets: dict[str, tuple[EvalBatches, np.ndarray]],
        seed_dir: Path,
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
        # The training forward pass, optionally compiled (a function, so it adds no module or weights).
        self.train_forward: Callable[..., Any] = torch.compile(model.forward) if compile else model.forward
        self.optim_config = optim
        self.epochs = epochs
        self.train_batches = train_batches
        self.eval_sets = eval_sets  # name -> (batches, true scores)
        self.record = SeedRecord(seed_dir, epochs, select, checkpoint_info or {})
        self.on_epoch_end = on_epoch_end  # receives each epoch's metrics row (progress display)
        self._loss_sums: dict[str, float] = {}
        self._samples = 0
        self._epoch_start = 0.0

    @property
    def scored_model(self) -> AQAModel:
        """The weights that are evaluated and saved: the moving average when enabled, else the model."""
        return self.ema.module if self.ema is not None else self.model

    # --- training -------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        cfg = self.optim_config
        optimiser, scheduler = build_optimiser(cfg, self.model.parameters(), self.epochs, len(self.train_batches))
        if scheduler is None:
            return optimiser
        return {"optimizer": optimiser, "lr_scheduler": {"scheduler": scheduler, "interval": cfg.scheduler_interval}}

    def on_train_epoch_start(self) -> None:
        self.train_batches.set_epoch(self.current_epoch)
        self._loss_sums, self._samples = {}, 0
        self._epoch_start = time.perf_counter()

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        prediction = self.train_forward(batch["features"], batch["mask"])
        terms = self.model.loss(prediction, batch)
        total = torch.stack(list(terms.values())).sum()
        size = len(batch["score"])
        for name, value in {**terms, "loss": total}.items():
            self._loss_sums[name] = self._loss_sums.get(name, 0.0) + float(value.detach()) * size
        self._samples += size
        return total

    def on_train_batch_end(self, outputs: Any, batch: Batch, batch_idx: int) -> None:
        if self.ema is not None:
            self.ema.update_parameters(self.model)

    # --- per-epoch evaluation and selection -----------------------------------------------
    def on_train_epoch_end(self) -> None:
        train_seconds = time.perf_counter() - self._epoch_start
        row: dict[str, float] = {"epoch": self.current_epoch, "lr": self.trainer.optimizers[0].param_groups[0]["lr"]}
        row.update({f"train_{k}": v / max(self._samples, 1) for k, v in self._loss_sums.items()})
        row["train_seconds"] = train_seconds
        row.update(held_out_metrics(self.scored_model, self.eval_sets, self.device))
        row["epoch_seconds"] = time.perf_counter() - self._epoch_start
        self.record.add_epoch(self.scored_model, row)
        if self.on_epoch_end is not None:
            self.on_epoch_end(row)

    @property
    def history(self) -> list[dict[str, float]]:
        return self.record.history

    # --- resume ---------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The global RNG drives dropout: saving it makes a resumed run match an uninterrupted one.
        checkpoint["aqakit"] = {"history": self.record.history, "best": self.record.best, "rng": torch.get_rng_state()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("aqakit", {})
        self.record.history = state.get("history", [])
        self.record.best = state.get("best", self.record.best)
        if "rng" in state:
            torch.set_rng_state(state["rng"])
