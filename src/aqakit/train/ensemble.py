"""Train several seeds of one configuration together, as one batched ensemble (``train.ensemble: true``).

The N freshly initialised models are stacked on a leading axis (``torch.func.stack_module_state``)
and every step runs forward pass and loss of all members on their own batches in one
``vmap``-ed ``functional_call``; one backward pass fills each member's gradient. Each member is then
evaluated, selected and saved as a separate run. What equals N separate runs, what differs
(dropout masks, rounding) and what is not supported: docs/performance.md, "Many seeds at once".
"""

from __future__ import annotations

import contextlib
import copy
import time
import warnings
from functools import partial
from typing import Callable

import lightning.pytorch as pl
import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn.attention import SDPBackend, sdpa_kernel

from aqakit.data.batches import Batch, ClipBank, TrainBatches
from aqakit.data.exemplars import HeldOutBatches
from aqakit.data.scale import ScoreScale
from aqakit.data.videoset import VideoSet
from aqakit.errors import ConfigError, DataError
from aqakit.models import AQAModel, create_model, model_class
from aqakit.train.config import RunConfig
from aqakit.train.precision import resolve_precision
from aqakit.train.selection import SeedRecord
from aqakit.train.step import EpochLosses, batch_loss, build_optimiser, epoch_record


class MemberStep(nn.Module):
    """One member's training step as a module (so ``functional_call`` swaps in its weights):
    :func:`~aqakit.train.step.batch_loss` on its batch."""

    def __init__(self, model: AQAModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: Tensor, mask: Tensor, score: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        batch = {"features": features, "mask": mask, "score": score}
        return batch_loss(self.model, batch, partial(self.model, check_clips=False))  # clips checked before vmap


def check_ensemble_config(config: RunConfig) -> None:
    """Raise ConfigError for settings the ensemble cannot train like separate runs."""
    train_cfg = config.train
    if model_class(config.model.name).needs_exemplars:
        raise ConfigError(
            f"train.ensemble: {config.model.name} scores videos against exemplars, which the batched ensemble "
            "does not draw; train separately"
        )
    if train_cfg.carves_validation:
        raise ConfigError(
            "train.ensemble: best-val and train.val_folds carve a different validation split per seed; "
            "use final without val_folds, or train separately"
        )
    if train_cfg.train_fraction < 1:
        raise ConfigError("train.ensemble: train.train_fraction draws a different training share per seed; train separately")
    if train_cfg.grad_clip is not None:
        raise ConfigError("train.ensemble: gradient clipping (train.grad_clip) is not supported; train separately")
    if train_cfg.compile:
        raise ConfigError("train.ensemble: train.compile is not supported with the ensemble")
    if train_cfg.ema_decay is not None:
        raise ConfigError("train.ensemble: a weight moving average (train.ema_decay) is not supported; train separately")
    if config.optim.scheduler_interval != "epoch":
        raise ConfigError("train.ensemble: the schedule steps once per epoch; optim.scheduler_interval=step is not supported")


def stack_batches(batches: list[Batch], device: str) -> Batch:
    """N members' batches (same number of videos) -> one batch with a leading member axis.

    Members' batches may be padded to different lengths (a batch of short videos is padded only
    to its longest); they are padded to the longest of them, with the mask marking the padding.
    """
    length = max(batch["mask"].shape[1] for batch in batches)
    batches = [pad_clips(batch, length) for batch in batches]
    stacked = {key: torch.stack([batch[key] for batch in batches]).to(device) for key in ("features", "mask", "score")}
    if not bool(stacked["mask"].any(-1).all()):
        raise DataError("a training batch holds a video with no real clip")
    return stacked


def pad_clips(batch: Batch, length: int) -> Batch:
    """``batch`` with its features (B, T, D) and mask (B, T) padded to ``length`` clips."""
    missing = length - batch["mask"].shape[1]
    if missing == 0:
        return batch
    return {**batch, "features": torch.nn.functional.pad(batch["features"], (0, 0, 0, missing)),
            "mask": torch.nn.functional.pad(batch["mask"], (0, missing), value=False)}


def train_ensemble(
    config: RunConfig,
    seeds: list[int],
    train: VideoSet,
    scale: ScoreScale,
    eval_sets: dict[str, tuple[HeldOutBatches, np.ndarray]],
    records: list[SeedRecord],
    *,
    device: str,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
) -> str:
    """Train one member per seed on ``train``, evaluating ``eval_sets`` after every epoch; each
    member's history and selected checkpoint go to its record. Returns the precision used."""
    check_ensemble_config(config)
    train_cfg = config.train
    members = []
    for seed in seeds:  # seeded exactly as a separate run seeds its model
        pl.seed_everything(seed, workers=False, verbose=False)
        members.append(
            create_model(config.model.name, in_dim=train.feature_dim, score_scale=scale, **config.model.args).to(device)
        )
    params, buffers = stack_module_state(members)  # name -> (N, ...) leaves
    step = MemberStep(copy.deepcopy(members[0]))
    params = {f"model.{name}": value for name, value in params.items()}
    buffers = {f"model.{name}": value for name, value in buffers.items()}
    optimiser, scheduler = build_optimiser(config.optim, list(params.values()), train_cfg.epochs)
    precision = resolve_precision(train_cfg.precision, device)
    if precision not in ("32-true", "bf16-mixed"):
        raise ConfigError(f"train.ensemble: precision {precision!r} is not supported (use 32-true or bf16-mixed)")
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=precision == "bf16-mixed")
    attention = partial(member_attention_kernels, device)  # a fresh context per step (single use)

    def member_losses(
        p: dict[str, Tensor], b: dict[str, Tensor], features: Tensor, mask: Tensor, score: Tensor
    ) -> tuple[dict[str, Tensor], Tensor]:
        return functional_call(step, (p, b), (features, mask, score))

    batched_losses = vmap(member_losses, randomness="different")
    bank = ClipBank(train)
    streams = [TrainBatches(bank, train_cfg.batch_size, train_cfg.crop_len, seed) for seed in seeds]

    step.train()
    for epoch in range(train_cfg.epochs):
        for stream in streams:
            stream.set_epoch(epoch)
        started = time.perf_counter()
        lr = optimiser.param_groups[0]["lr"]
        losses = EpochLosses()
        for member_batches in zip(*streams):
            batch = stack_batches(list(member_batches), device)
            optimiser.zero_grad(set_to_none=True)
            with autocast, attention(), warnings.catch_warnings():
                # CPU attention has no vmap rule yet: torch loops over the members (correct, slower)
                warnings.filterwarnings("ignore", ".*have not yet implemented the batching rule.*")
                terms, total = batched_losses(params, buffers, batch["features"], batch["mask"], batch["score"])  # (N,) each
            total.sum().backward()
            optimiser.step()
            losses.add(terms, total, batch["score"].shape[1])
        if scheduler is not None:
            scheduler.step()
        train_seconds = time.perf_counter() - started
        for index, (member, record) in enumerate(zip(members, records)):
            load_member(member, params, buffers, index)
            row = epoch_record(member, eval_sets, device, epoch=epoch, lr=lr, losses=losses.means(index),
                               train_seconds=train_seconds, started=started)
            record.add_epoch(member, row)
            if on_epoch_end is not None:
                on_epoch_end(seeds[index], row)
    return precision


def member_attention_kernels(device: str) -> contextlib.AbstractContextManager:
    """The attention kernels the vmap-ed step may use: on CUDA the math kernel alone, since the
    memory-efficient kernel's backward fails on vmap-ed inputs ("LSE is not correctly aligned
    (strideH)", torch 2.11 on an H200, 2026-12-04); on CPU torch's choice."""
    if not device.startswith("cuda"):
        return contextlib.nullcontext()
    return sdpa_kernel(SDPBackend.MATH)


@torch.no_grad()
def load_member(model: AQAModel, params: dict[str, Tensor], buffers: dict[str, Tensor], index: int) -> None:
    """Copy member ``index`` of the stacked weights into ``model`` (non-persistent buffers are
    constants the model rebuilds itself, e.g. positional encodings, and are left as they are)."""
    persistent = model.state_dict().keys()
    stacked = {name.removeprefix("model."): value for name, value in {**params, **buffers}.items()}
    model.load_state_dict({name: value[index] for name, value in stacked.items() if name in persistent})

