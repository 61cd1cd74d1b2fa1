"""Training on several devices (and machines) through Lightning's DDP strategy.

``train.devices`` processes per machine times ``train.num_nodes`` machines train one model together:
Lightning starts the processes (``aqakit train --devices 2`` runs the same command once more per extra
device, with ``LOCAL_RANK`` set; on a cluster each machine runs it with ``NODE_RANK``, ``MASTER_ADDR``
and ``MASTER_PORT`` set, or a launcher such as ``torchrun`` sets ``RANK``), joins them in one process
group (``gloo`` on CPU, ``nccl`` on GPU) and averages the gradients after every step.

The design keeps a run's meaning independent of the device count:

- ``train.batch_size`` stays the **global** batch: every process draws the same global batch (same
  order, same crops: they come from (seed, epoch)) and trains on its contiguous share of its rows
  (:class:`ShardedBatches`; shares differ by at most one video). Lightning's DistributedSampler is
  not used: it would shard the videos of an epoch, so each process would draw its own batches of
  ``batch_size`` and the global batch would grow with the device count.
- A share's loss is weighted by ``share size x processes / global batch size``, so the averaged
  gradient is that of the global batch's mean loss even when the shares differ in size.
- BatchNorm statistics in training are those of the whole global batch: every
  :class:`~aqakit.models.blocks.MaskedBatchNorm1d` sums its statistics over the processes
  (:func:`sync_batch_norm`).
- A pair model's exemplars stay whole on every process (each query keeps the exemplar it was paired
  with; the exemplars' BatchNorm statistics are those of the global batch's exemplars).
- The epoch's mean training losses are summed over the processes; evaluation, checkpoint selection
  and every file of the run folder are the work of global rank 0 alone, on the whole held-out sets.
  The other processes write nothing.

What still differs from one process: the order of float reductions, dropout masks (each process
draws its own), and batch-level loss terms that compare the videos of a batch with each other
(GDLT's and CoFInAl-official's hardest-triplet mining looks for triplets within a share, not the
whole batch). docs/performance.md ("Several devices") has the measured difference.
"""

from __future__ import annotations

import os
from typing import Any, Iterator

import torch
from torch import Tensor, nn

from aqakit.data.batches import Batch, TrainBatches
from aqakit.data.exemplars import ExemplarBatches
from aqakit.errors import ConfigError
from aqakit.train.config import RunConfig, TrainConfig

#: The batch key holding a share's loss weight (``share size x processes / global batch size``).
SHARE_WEIGHT = "share_weight"
#: Batch keys of the exemplars themselves, which every share keeps whole (every other key has one
#: row per query and is cut into shares).
EXEMPLAR_WHOLE_KEYS = ("exemplar_features", "exemplar_mask")


def global_rank(train_cfg: TrainConfig) -> int:
    """This process's rank among ``train.devices x train.num_nodes`` (0 for a one-process run).

    Read from the environment the launchers set: ``RANK`` (torchrun and the like), else
    ``NODE_RANK`` (or ``GROUP_RANK``) x devices + ``LOCAL_RANK`` (Lightning's own launcher).
    """
    if train_cfg.world_size == 1:
        return 0
    if "RANK" in os.environ:
        return int(os.environ["RANK"])
    node = int(os.environ.get("NODE_RANK", os.environ.get("GROUP_RANK", 0)))
    return node * train_cfg.devices + int(os.environ.get("LOCAL_RANK", 0))


def is_rank_zero(train_cfg: TrainConfig) -> bool:
    """Whether this process writes the run folder and reports (always, for a one-process run)."""
    return global_rank(train_cfg) == 0


def trainer_devices(train_cfg: TrainConfig, device: str) -> dict[str, Any]:
    """The ``pl.Trainer`` arguments that place training on ``device`` (``cpu`` or ``cuda``):
    one device, or the DDP strategy over ``train.devices x train.num_nodes`` processes."""
    if train_cfg.world_size == 1:
        return {"devices": 1}
    from lightning.pytorch.strategies import DDPStrategy

    # static_graph: some models leave a head unused in some configurations (a term weighted 0); a
    # static graph lets DDP learn that once instead of searching the graph every step.
    strategy = DDPStrategy(process_group_backend="nccl" if device == "cuda" else "gloo", static_graph=True)
    return {"strategy": strategy, "devices": train_cfg.devices, "num_nodes": train_cfg.num_nodes}


def check_distributed(config: RunConfig) -> None:
    """ConfigError for what cannot train on several processes; nothing for a one-process run."""
    train_cfg = config.train
    if train_cfg.world_size == 1:
        return
    asked = f"train.devices={train_cfg.devices} x train.num_nodes={train_cfg.num_nodes}"
    from aqakit.models import is_closed_form

    if is_closed_form(config.model.name):
        raise ConfigError(f"model {config.model.name!r} is fitted in closed form on one process; {asked} does not apply")
    if train_cfg.ensemble:
        raise ConfigError(f"--ensemble trains the seeds as one batched model on one device; it cannot be combined with {asked}")
    if config.model.args.get("attention_batch_reduction") == "sum":
        raise ConfigError(
            f"model.args.attention_batch_reduction=sum sums a loss over the batch, which averaging over processes "
            f"changes; use mean with {asked}"
        )


def check_shares(n_train: int, train_cfg: TrainConfig) -> None:
    """ConfigError when some batch of an epoch (the last, smaller one) has fewer videos than there
    are processes to share it."""
    world = train_cfg.world_size
    if world == 1:
        return
    full, rest = divmod(n_train, train_cfg.batch_size)
    smallest = n_train if full == 0 else train_cfg.batch_size if rest in (0, 1) else rest  # a lone last video joins the batch before
    if smallest < world:
        raise ConfigError(
            f"train.batch_size {train_cfg.batch_size} over {n_train} training videos makes a batch of {smallest} "
            f"video(s), fewer than the {world} processes that share each batch; change train.batch_size or train.devices"
        )


def share_bounds(size: int, rank: int, world: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of a batch of ``size`` rows that process ``rank`` of ``world`` trains on:
    contiguous, the first ``size mod world`` shares one row longer."""
    base, extra = divmod(size, world)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


class ShardedBatches:
    """This process's share of every global batch of ``batches`` (see the module docstring)."""

    def __init__(self, batches: TrainBatches | ExemplarBatches, rank: int, world: int) -> None:
        self.batches, self.rank, self.world = batches, rank, world

    def set_epoch(self, epoch: int) -> None:
        self.batches.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[Batch]:
        for batch in self.batches:
            yield self.share(batch)

    def share(self, batch: Batch) -> Batch:
        """Rows of ``batch`` for this process, with :data:`SHARE_WEIGHT`; exemplars stay whole."""
        size = len(batch["score"])
        start, stop = share_bounds(size, self.rank, self.world)
        shared = {key: value if key in EXEMPLAR_WHOLE_KEYS else value[start:stop] for key, value in batch.items()}
        shared[SHARE_WEIGHT] = torch.tensor((stop - start) * self.world / size)
        return shared


def shard_batches(batches: TrainBatches | ExemplarBatches, train_cfg: TrainConfig) -> TrainBatches | ExemplarBatches | ShardedBatches:
    """``batches`` as this process trains on them: all of them on one process, else its share."""
    if train_cfg.world_size == 1:
        return batches
    return ShardedBatches(batches, global_rank(train_cfg), train_cfg.world_size)


def sync_batch_norm(model: nn.Module) -> None:
    """Make every :class:`~aqakit.models.blocks.MaskedBatchNorm1d` of ``model`` compute its training
    statistics over all processes of the running process group."""
    from aqakit.models.blocks import MaskedBatchNorm1d

    for module in model.modules():
        if isinstance(module, MaskedBatchNorm1d):
            module.sync_processes = True


def weighted_loss(total: Tensor, batch: Batch) -> Tensor:
    """The loss a process back-propagates: its share's ``total`` times the share's weight (1 when
    the batch is not shared)."""
    weight = batch.get(SHARE_WEIGHT)
    return total if weight is None else total * weight.to(total.device, total.dtype)
