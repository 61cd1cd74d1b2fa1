"""Re-evaluate a trained checkpoint on its benchmark: every clip of every video, deterministic."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aqakit.data.benchmarks import get_benchmark
from aqakit.data.exemplars import ExemplarPool
from aqakit.errors import DataError
from aqakit.models import AQAModel
from aqakit.models.loading import find_checkpoint, load_checkpoint
from aqakit.rundir import RunDir
from aqakit.train.config import require_data_root
from aqakit.train.evaluate import predict_videos, score_metrics


@dataclass
class Evaluation:
    """A checkpoint's metrics on one split (Spearman, Pearson, R-l2 (x100), MSE, MAE)."""

    checkpoint: Path
    model: str
    benchmark: str
    split: str
    n_videos: int
    selection: str | None
    epoch: int | None
    metrics: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        """``aqakit eval --json``: where it came from, then every metric."""
        return {"checkpoint": str(self.checkpoint), "benchmark": self.benchmark, "split": self.split,
                "selection": self.selection, "epoch": self.epoch, **self.metrics}


def saved_data_root(checkpoint: Path) -> Path | None:
    """The ``data_root`` of the run that holds ``checkpoint`` (its ``config.yaml`` above it), or None."""
    run = RunDir.holding(checkpoint)
    saved = run.read_config().get("data_root") if run is not None else None
    return Path(saved) if saved else None


def training_exemplars(
    model: AQAModel, meta: dict[str, Any], checkpoint: Path, data_root: Path | None = None
) -> tuple[ExemplarPool, int] | None:
    """For a pair model (TPT): the pool of the training split it was trained on and the seed its
    exemplar draws come from; None for any other model.

    The split is read as the checkpoint records it (benchmark, its options, and ``data_root``,
    else the run's data folder, else ``$AQAKIT_DATA``). It is the whole training split: a run that
    carved a validation split from it drew its test exemplars from the rest, so its recorded test
    figures can differ slightly from these.
    """
    if not model.needs_exemplars:
        return None
    info = meta["info"]
    adapter = get_benchmark(info["benchmark"], **info.get("benchmark_args", {}))
    if data_root is None and adapter.needs_data:
        data_root = saved_data_root(checkpoint)
    train = adapter.load(require_data_root(adapter, data_root), "train")
    config = model.config
    return ExemplarPool(train, config.exemplar_key, config.exemplar_fallback), int(info.get("seed", 0))


def evaluate_checkpoint(checkpoint: Path, data_root: Path | None = None, split: str = "test") -> Evaluation:
    """Score ``split`` of the benchmark ``checkpoint`` trained on (a run, seed or checkpoint folder).

    The data folder is ``data_root``, else the one the run trained on, else ``$AQAKIT_DATA/<family>``.

    Raises:
        ConfigError: no data folder is found; DataError: the features do not fit the model;
        RunDirectoryError: no checkpoint at ``checkpoint``.
    """
    folder = find_checkpoint(checkpoint)
    model, meta = load_checkpoint(folder)
    info = meta["info"]
    adapter = get_benchmark(info["benchmark"], **info.get("benchmark_args", {}))
    if data_root is None and adapter.needs_data:
        data_root = saved_data_root(folder)
    videos = adapter.load(require_data_root(adapter, data_root), split)
    if videos.feature_dim != model.in_dim:
        raise DataError(
            f"{videos.source}: features have dimension {videos.feature_dim}, "
            f"the model at {folder} expects {model.in_dim}"
        )
    predicted = predict_videos(model, videos, exemplars=training_exemplars(model, meta, folder, data_root))
    return Evaluation(checkpoint=folder, model=meta["model"], benchmark=adapter.name, split=split, n_videos=len(videos),
                      selection=info.get("selection"), epoch=info.get("epoch"),
                      metrics=score_metrics(predicted, videos.scores, model))
