"""A seed's per-epoch history and its checkpoint selection rule.

- ``final``: the weights after the last epoch;
- ``best-val``: the epoch with the best Spearman on the validation split carved from the
  training set;
- ``best-test``: the epoch with the best *test* Spearman. It exists only to compare with
  published numbers (which are chosen that way) and every output that uses it says so.

The selected weights are written to the seed's checkpoint folder as soon as they are selected.
"""

from __future__ import annotations

import math
from typing import Any

from aqakit.errors import TrainingDivergedError
from aqakit.models import AQAModel
from aqakit.rundir import SeedDir
from aqakit.models.loading import save_checkpoint

SELECTION_SET = {"best-val": "val", "best-test": "test"}


def is_improvement(value: float, best: float) -> bool:
    """Whether Spearman ``value`` beats ``best``; NaN (constant predictions) ranks below any number."""
    return not math.isnan(value) and (math.isnan(best) or value > best)


class SeedRecord:
    """One seed's per-epoch history (``metrics.csv``) and its checkpoint selection rule."""

    def __init__(self, seed_dir: SeedDir, epochs: int, select: str, checkpoint_info: dict[str, Any]) -> None:
        self.seed_dir, self.epochs, self.select, self.checkpoint_info = seed_dir, epochs, select, checkpoint_info
        self.history: list[dict[str, float]] = []
        self.best: dict[str, float] = {"epoch": -1, "spearman": -math.inf}

    def add_epoch(self, model: AQAModel, row: dict[str, float]) -> None:
        """Log ``row``, rewrite ``metrics.csv`` and save ``model`` if the rule selects this epoch.

        Raises TrainingDivergedError, after logging, when the epoch's training loss is not finite.
        """
        self.history.append(row)
        self.seed_dir.write_history(self.history)
        if not math.isfinite(row.get("train_loss", 0.0)):
            terms = ", ".join(
                f"{key.removeprefix('train_')} {value:.4g}"
                for key, value in row.items() if key.startswith("train_") and key != "train_seconds"
            )  # fmt: skip
            raise TrainingDivergedError(
                f"{self.seed_dir.path}: training diverged in epoch {int(row['epoch'])} (mean {terms}); "
                "lower optim.lr or clip gradients (--set train.grad_clip=1.0). Its epochs are in metrics.csv"
            )
        self._update_selection(model, row)

    def rewrite_history(self) -> None:
        """Make ``metrics.csv`` hold exactly :attr:`history` (removed when it is empty): a run killed
        after an epoch's row was written but before its resume checkpoint was saved resumes from
        the epoch before, and the row it recomputes must not appear twice."""
        if self.history:
            self.seed_dir.write_history(self.history)
        else:
            self.seed_dir.metrics_path.unlink(missing_ok=True)

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
        save_checkpoint(model, self.seed_dir.checkpoint_dir, info)
