"""How each interpretable part of a prediction is shown, decided by its shape alone.

Models name their parts freely (GDLT ``grade_weights`` (G,), CoFInAl ``grade_probs`` (G,),
``procedure_attention`` (P, T), a query decoder's per-clip weights (T,)...), so the report never
looks for names. For one video (batch axis removed), with T the video's number of clips:

- ``()``            -> ``scalar``: a value in the breakdown table;
- ``(T,)``          -> ``timeline``: a line over the clips (a length-T vector counts as per-clip,
  even if it happens to mean something else);
- ``(N,)``, N <= 256 -> ``bars``: one bar per entry (grades, queries, sub-grades);
- ``(K, T)``, K <= 256 -> ``clip_map``: K rows over the clips (attention of procedures or queries
  over time; long videos are drawn in at most 320 runs of clips);
- ``(K, N)``, both <= 256 -> ``matrix``: a heat map;
- anything else (embeddings, features) -> ``hidden``: named with its shape, not plotted.

:func:`clip_influence` adds a per-clip view every model has: how much the score drops when one
clip is hidden from the model (leave-one-clip-out through the mask).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from aqakit.data.exemplars import Exemplars
from aqakit.models.base import AQAModel

MAX_PLOTTED = 256
INFLUENCE_NAME = "clip_influence"


@dataclass
class PartView:
    """One part of one video's prediction and how to show it (``kind``, see the module doc)."""

    name: str
    kind: str
    values: np.ndarray

    def summary(self) -> str:
        """A one-line text description for terminals."""
        v = self.values
        if self.kind == "scalar":
            return f"{float(v):.4g}"
        if self.kind == "bars" and v.size <= 12:
            return "[" + ", ".join(f"{x:.3g}" for x in v) + "]"
        if self.kind == "timeline":
            return f"per clip ({v.size}): min {v.min():.3g}, max {v.max():.3g} at clip {int(v.argmax())}"
        return f"shape {tuple(v.shape)}"


def classify(shape: tuple[int, ...], n_clips: int) -> str:
    """The view kind for a part of ``shape`` (batch axis removed) of a video with ``n_clips`` clips."""
    if len(shape) == 0:
        return "scalar"
    if len(shape) == 1:
        if shape[0] == n_clips:
            return "timeline"
        return "bars" if shape[0] <= MAX_PLOTTED else "hidden"
    if len(shape) == 2:
        if shape[1] == n_clips and shape[0] <= MAX_PLOTTED:
            return "clip_map"
        return "matrix" if max(shape) <= MAX_PLOTTED else "hidden"
    return "hidden"


def view_parts(parts: dict[str, Tensor], n_clips: int, index: int = 0) -> list[PartView]:
    """Views of video ``index``'s parts, in the model's order."""
    views = []
    for name, tensor in parts.items():
        values = tensor[index].detach().float().cpu().numpy()
        views.append(PartView(name, classify(values.shape, n_clips), values))
    return views


@torch.no_grad()
def clip_influence(model: AQAModel, features: Tensor, chunk: int = 64, exemplars: Exemplars | None = None) -> np.ndarray:
    """(T,) score minus the score with clip t hidden (masked out), for one video's features (T, D).

    Positive values mark clips that raised the predicted score. Empty for a one-clip video
    (hiding its only clip leaves nothing to score). Costs T extra forward passes, run ``chunk``
    at a time. A pair model scores against ``exemplars`` (those of the one video, index (1, M)),
    the same ones with every clip hidden.
    """
    n_clips = features.shape[0]
    if n_clips < 2:
        return np.zeros(0)
    batch = features.unsqueeze(0)
    full = float(model(batch, exemplars=exemplars).score[0])
    drops = []
    for start in range(0, n_clips, chunk):
        hidden = torch.arange(start, min(start + chunk, n_clips))
        mask = torch.ones(len(hidden), n_clips, dtype=torch.bool, device=features.device)
        mask[torch.arange(len(hidden)), hidden] = False
        scores = model(batch.expand(len(hidden), -1, -1), mask, repeated(exemplars, len(hidden))).score
        drops.append(full - scores.float().cpu().numpy())
    return np.concatenate(drops)


def repeated(exemplars: Exemplars | None, n: int) -> Exemplars | None:
    """One video's exemplars (index and score (1, M)) for ``n`` copies of that video."""
    if exemplars is None:
        return None
    return Exemplars(exemplars.features, exemplars.mask, exemplars.index.expand(n, -1), exemplars.score.expand(n, -1))
