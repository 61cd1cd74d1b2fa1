"""One training step and one epoch's record, shared by the Lightning task and the batched ensemble.

:func:`batch_loss` is a batch's forward pass and named loss terms with their sum (what is
optimised); :class:`EpochLosses` sums them over an epoch, weighted by batch size;
:func:`epoch_record` is the epoch's row of ``metrics.csv``; :func:`build_optimiser` is the
configured optimiser and its schedule.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch
from torch import Tensor

from aqakit.data.batches import Batch
from aqakit.data.exemplars import Exemplars, HeldOutBatches
from aqakit.models import AQAModel, Prediction
from aqakit.train.config import OptimConfig
from aqakit.train.evaluate import held_out_metrics


def batch_loss(
    model: AQAModel, batch: Batch, forward: Callable[..., Prediction] | None = None
) -> tuple[dict[str, Tensor], Tensor]:
    """``model``'s loss terms on ``batch`` and their sum (the loss that is optimised).

    ``forward`` replaces ``model.forward`` for the pass (a compiled forward, or one that skips
    the input checks under vmap).
    """
    prediction = (forward or model.forward)(batch["features"], batch["mask"], Exemplars.from_batch(batch))
    terms = model.loss(prediction, batch)
    return terms, torch.stack(list(terms.values())).sum()


class EpochLosses:
    """Batch-size-weighted sums of an epoch's loss terms and of their total (``loss``).

    The sums stay float64 tensors on the device (no host sync per step); in a batched ensemble
    every value holds one entry per member.
    """

    def __init__(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.samples = 0

    def add(self, terms: Mapping[str, Tensor], total: Tensor, size: int) -> None:
        """Add one batch of ``size`` videos: its terms and total (scalars, or (N,) for N members)."""
        for name, value in {**terms, "loss": total}.items():
            weighted = value.detach().double() * size
            self.sums[name] = self.sums[name] + weighted if name in self.sums else weighted
        self.samples += size

    def reduce(self, combine: Callable[[Tensor], Tensor]) -> None:
        """Replace every sum and the sample count by ``combine`` of them (a sum over processes);
        every process must call it, with the same terms in the same order."""
        self.sums = {name: combine(value) for name, value in self.sums.items()}
        self.samples = int(combine(torch.tensor(float(self.samples), dtype=torch.float64, device=self._device())).item())

    def _device(self) -> torch.device:
        return next(iter(self.sums.values())).device if self.sums else torch.device("cpu")

    def means(self, member: int | None = None) -> dict[str, float]:
        """Each term's mean over the epoch's videos (of ensemble ``member`` when given)."""
        return {name: float(value if member is None else value[member]) / max(self.samples, 1)
                for name, value in self.sums.items()}


def epoch_record(
    model: AQAModel,
    eval_sets: dict[str, tuple[HeldOutBatches, np.ndarray]],
    device: torch.device | str,
    *,
    epoch: int,
    lr: float | None,
    losses: Mapping[str, float],
    train_seconds: float,
    started: float,
) -> dict[str, float]:
    """One epoch's row of ``metrics.csv``: epoch, learning rate (None: not recorded), mean training
    loss terms, training seconds, ``model``'s metrics on every set of ``eval_sets``, and the seconds
    since ``started`` (a ``time.perf_counter`` value) with that evaluation."""
    row: dict[str, float] = {"epoch": epoch}
    if lr is not None:
        row["lr"] = lr
    row.update({f"train_{name}": value for name, value in losses.items()})
    row["train_seconds"] = train_seconds
    row.update(held_out_metrics(model, eval_sets, device))
    row["epoch_seconds"] = time.perf_counter() - started
    return row


def build_optimiser(
    cfg: OptimConfig, params: Iterable[Any], epochs: int, steps_per_epoch: int = 1
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]:
    """The configured optimiser over ``params`` (tensors, or parameter groups as dicts that may
    set their own ``lr``) and its schedule (None for ``none``).

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
