"""The state an interrupted seed resumes from: Lightning's ``resume/last.ckpt``, saved atomically,
and every random number generator that training draws from.

:class:`AtomicCheckpointIO` makes Lightning save its checkpoint through :mod:`aqakit.atomic`
(written beside, flushed to disk, renamed over the old one), so a ``kill -9`` in the middle of a
save leaves the previous ``last.ckpt`` whole. :func:`rng_state` and :func:`restore_rng_state`
capture and put back the global generators (torch on the CPU and on every GPU, NumPy, Python's
``random``): dropout and any other global draw continue as an uninterrupted run's would. The
batches' own generators (shuffle, crops, training exemplars) are seeded from (seed, epoch), so an
epoch boundary needs no state of theirs.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from aqakit.atomic import atomic_write


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint format, saved so that a crash never leaves a partial file."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None) -> None:
        """Write ``checkpoint`` to ``path`` with :func:`aqakit.atomic.atomic_write`; the previous
        file stays whole until the new one is complete on disk."""
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options (got {storage_options!r})")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as partial:
            torch.save(checkpoint, partial)


def rng_state() -> dict[str, Any]:
    """The state of every global generator, in types a ``weights_only`` load accepts."""
    numpy_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)), *numpy_state[2:]],
        "python": random.getstate(),
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put back what :func:`rng_state` captured (a checkpoint that holds only the torch CPU state,
    as older ones do, restores just that)."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "numpy" in state:
        name, keys, *rest = state["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
