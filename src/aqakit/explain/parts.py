"""What a report draws of one video's prediction: the parts its model declares as explanations
(:attr:`~aqakit.models.base.AQAModel.explanations`), its grade as a score band, and how much each
stretch of clips moved the score (leave-one-run-out through the mask).

Parts a model does not declare (loss intermediates, embeddings, logits) are never drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from aqakit.data.exemplars import Exemplars
from aqakit.models.base import AQAModel, Explanation, Prediction

#: The clip-influence timeline hides at most this many runs of neighbouring clips, one at a time.
MAX_INFLUENCE_RUNS = 96


@dataclass
class PartView:
    """One explained part of one video's prediction: its model's ``spec`` and its values (batch
    axis removed; scores already on the original scale when the spec says ``normalised``)."""

    spec: Explanation
    values: np.ndarray
    marked: tuple[int, ...] = ()  # clips the spec's ``marks`` part names, inside the video

    @property
    def name(self) -> str:
        return self.spec.part

    def summary(self) -> str:
        """A one-line text description for terminals."""
        v = self.values
        if self.spec.kind == "bars" and v.size <= 12:
            return "[" + ", ".join(f"{x:.3g}" for x in v) + "]"
        if self.spec.kind == "clips":
            return f"per clip ({v.size}): min {np.nanmin(v):.3g}, max {np.nanmax(v):.3g} at clip {int(np.nanargmax(v))}"
        return f"shape {tuple(v.shape)}"


@dataclass(frozen=True)
class GradeView:
    """The grade a grade model gives one video: ``index`` 0-based of ``count``, and the band of
    original-scale scores [``low``, ``high``] it covers."""

    index: int
    count: int
    low: float
    high: float


@dataclass(frozen=True)
class ClipInfluence:
    """How the score moves when a run of neighbouring clips is hidden from the model.

    ``starts``, ``ends`` (N,): run n is clips ``starts[n]`` to ``ends[n] - 1``; ``drop`` (N,): the
    score minus the score with that run hidden (positive: those clips raised the score). One run
    per clip for videos of at most :data:`MAX_INFLUENCE_RUNS` clips.
    """

    starts: np.ndarray
    ends: np.ndarray
    drop: np.ndarray


def view_parts(model: AQAModel, prediction: Prediction, index: int = 0) -> list[PartView]:
    """Views of video ``index``'s explained parts, in the order ``model`` declares them; a declared
    part the prediction lacks (a switched-off module) is left out."""
    views = []
    for spec in model.explanations:
        if spec.part not in prediction.parts:
            continue
        values = prediction.parts[spec.part][index].detach().float().cpu()
        if spec.normalised:
            values = model.score_scale.denormalise(values)
        marked: tuple[int, ...] = ()
        if spec.marks in prediction.parts:
            clips = prediction.parts[spec.marks][index].flatten().tolist()
            marked = tuple(sorted({int(c) for c in clips if 0 <= c < len(values)}))
        views.append(PartView(spec, values.numpy(), marked))
    return views


def grade_view(model: AQAModel, prediction: Prediction, index: int = 0) -> GradeView | None:
    """Video ``index``'s grade with its band on the original scale; None for a model without grades."""
    band = model.grade_band(prediction.parts)
    if band is None:
        return None
    low, high = (float(model.score_scale.denormalise(edge[index].double())) for edge in (band.low, band.high))
    return GradeView(int(band.index[index]), band.count, low, high)


def influence_runs(n_clips: int, most: int = MAX_INFLUENCE_RUNS) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of at most ``most`` runs of neighbouring clips covering all ``n_clips``, as even as can be."""
    edges = np.linspace(0, n_clips, min(n_clips, most) + 1).round().astype(int)
    return edges[:-1], edges[1:]


@torch.no_grad()
def clip_influence(
    model: AQAModel, features: Tensor, chunk: int = 64, exemplars: Exemplars | None = None,
    most: int = MAX_INFLUENCE_RUNS,
) -> ClipInfluence | None:
    """The score drop when each run of clips is hidden (masked out), for one video's features (T, D).

    None for a one-clip video: hiding its only clip leaves nothing to score. Costs one forward pass
    per run (at most ``most``), run ``chunk`` at a time. A pair model scores against ``exemplars``
    (those of the one video, index (1, M)), the same ones with every run hidden.
    """
    n_clips = features.shape[0]
    if n_clips < 2:
        return None
    starts, ends = influence_runs(n_clips, most)
    batch = features.unsqueeze(0)
    full = float(model(batch, exemplars=exemplars).score[0])
    clip = torch.arange(n_clips, device=features.device)
    drops = []
    for first in range(0, len(starts), chunk):
        lo = torch.as_tensor(starts[first:first + chunk], device=features.device)[:, None]
        hi = torch.as_tensor(ends[first:first + chunk], device=features.device)[:, None]
        mask = (clip < lo) | (clip >= hi)  # (n, T): False on the hidden run
        scores = model(batch.expand(len(mask), -1, -1), mask, repeated(exemplars, len(mask))).score
        drops.append(full - scores.float().cpu().numpy())
    return ClipInfluence(starts, ends, np.concatenate(drops))


def repeated(exemplars: Exemplars | None, n: int) -> Exemplars | None:
    """One video's exemplars (index, score, difficulty (1, M)) for ``n`` copies of that video."""
    if exemplars is None:
        return None
    difficulty, query = exemplars.difficulty, exemplars.query_difficulty
    return Exemplars(exemplars.features, exemplars.mask, exemplars.index.expand(n, -1), exemplars.score.expand(n, -1),
                     None if difficulty is None else difficulty.expand(n, -1), None if query is None else query.expand(n))
