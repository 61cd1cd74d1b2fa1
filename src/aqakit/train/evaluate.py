"""Deterministic scoring of whole videos: every clip, no crop, no noise, batched with masks."""

from __future__ import annotations

import numpy as np
import torch

from aqakit import metrics
from aqakit.errors import ConfigError
from aqakit.data.exemplars import ExemplarPool, Exemplars, HeldOutBatches, held_out_batches
from aqakit.data.videoset import VideoSet
from aqakit.models import AQAModel


@torch.inference_mode()
def predict_bank(model: AQAModel, batches: HeldOutBatches, device: torch.device | str = "cpu") -> np.ndarray:
    """(N,) predicted scores (original scale) in the order of the bank's videos (with their
    exemplars when the batches carry them).

    The model is put in eval mode for the pass and restored to its previous mode after.
    """
    was_training = model.training
    model.eval()
    scores = np.empty(len(batches.bank), dtype=np.float64)
    for batch in batches:
        exemplars = Exemplars.from_batch(batch)
        prediction = model(batch["features"].to(device), batch["mask"].to(device),
                           exemplars.to(device) if exemplars is not None else None)
        scores[batch["index"].numpy()] = prediction.score.float().cpu().numpy()
    model.train(was_training)
    return scores


def predict_videos(
    model: AQAModel,
    videos: VideoSet,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    exemplars: tuple[ExemplarPool, int] | None = None,
) -> np.ndarray:
    """(N,) predicted scores for every video of ``videos``.

    A pair model (TPT) needs ``exemplars``: the pool of its training videos and the seed its
    ``n_exemplars`` draws per video come from (:func:`aqakit.pipeline.evaluate.training_exemplars`).
    """
    drawn = None
    if model.needs_exemplars:
        if exemplars is None:
            raise ConfigError(f"{model.name} scores a video against exemplars from its training videos: pass them "
                              "(aqakit.pipeline.evaluate.training_exemplars reads the run's training split)")
        pool, seed = exemplars
        drawn = (pool, model.config.n_exemplars, seed)
    return predict_bank(model, held_out_batches(videos, batch_size, drawn), device)


def score_metrics(predicted: np.ndarray, true: np.ndarray, model: AQAModel) -> dict[str, float]:
    """Spearman, Pearson, R-l2 (x100, over the model's score range), MSE and MAE."""
    scale = model.score_scale
    return metrics.evaluate(predicted, true, scale.lo, scale.hi)


def held_out_metrics(
    model: AQAModel, eval_sets: dict[str, tuple[HeldOutBatches, np.ndarray]], device: torch.device | str
) -> dict[str, float]:
    """``<set>_<metric>`` of ``model`` on every held-out set (every clip, deterministic)."""
    row: dict[str, float] = {}
    for name, (batches, true) in eval_sets.items():
        predicted = predict_bank(model, batches, device)
        row.update({f"{name}_{k}": v for k, v in score_metrics(predicted, true, model).items()})
    return row
