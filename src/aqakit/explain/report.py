"""The score report: one self-contained HTML page (inline CSS, SVG plots, base64 thumbnails).

It shows the score, the model's interpretable parts (each drawn by its shape, see
:mod:`aqakit.explain.parts`), a timeline of every per-clip quantity with a thumbnail per clip, and
how the video was processed. Nothing is fetched when the page opens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Any

import numpy as np

from aqakit.explain import svg
from aqakit.explain.html import key_value_table, page
from aqakit.explain.images import data_uri, thumbnail
from aqakit.explain.parts import INFLUENCE_NAME, PartView

#: Long videos show at most this many thumbnails, evenly spaced.
MAX_THUMBNAILS = 120


@dataclass
class ScoreReport:
    """Everything the report shows about one scored video.

    Attributes:
        video: the video file; ``score``: the predicted score (original scale).
        model: model name; ``checkpoint``: where it was loaded from; ``score_range``: the
            training scores' range (lo, hi).
        extraction: the feature extraction settings (backbone, clip length, fps...).
        parts: the prediction's parts for this video, as views (including ``clip_influence``).
        clip_seconds: (T,) time of each clip's first frame since the video's start, or None when unknown.
        thumbnails: clip index -> that clip's middle frame (uint8 RGB), for some or all clips.
    """

    video: str
    score: float
    model: str
    checkpoint: str
    score_range: tuple[float, float]
    extraction: dict[str, Any]
    parts: list[PartView]
    n_clips: int
    clip_seconds: list[float] | None = None
    thumbnails: dict[int, np.ndarray] = field(default_factory=dict)

    def clip_labels(self) -> list[str]:
        if self.clip_seconds is None:
            return [f"clip {i}" for i in range(self.n_clips)]
        return [f"{s:.1f}s" for s in self.clip_seconds]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: score, context and every part's values."""
        return {
            "video": self.video, "score": self.score, "model": self.model, "checkpoint": self.checkpoint,
            "score_range": list(self.score_range), "clips": self.n_clips, "clip_seconds": self.clip_seconds,
            "extraction": self.extraction,
            "parts": {view.name: np.asarray(view.values).tolist() for view in self.parts},
        }


_STYLE = """
body{margin:24px auto;max-width:720px}
.score{font-size:56px;font-weight:700;color:#1d4ed8;margin:8px 0 0}
.strip{display:flex;overflow-x:auto;gap:4px;padding-bottom:6px}
.strip figure{margin:0;text-align:center;font-size:10px;color:#555}
.strip img{display:block;width:72px;height:72px;image-rendering:auto}
"""


def render_html(report: ScoreReport) -> str:
    """The report as one self-contained HTML document."""
    lo, hi = report.score_range
    labels = report.clip_labels()
    sections = [
        f"<h1>{escape(report.video)}</h1>",
        f'<div class="score" id="score">{report.score:.2f}</div>',
        f'<div class="muted">predicted by {escape(report.model)} (trained on scores {lo:.4g} to {hi:.4g}) '
        f"from {report.n_clips} clips</div>",
    ]
    scalars = [v for v in report.parts if v.kind == "scalar"]
    if scalars:
        sections.append("<h2>Breakdown</h2>" + key_value_table((v.name, f"{float(v.values):.4g}") for v in scalars))
    for view in report.parts:
        sections += _section(view, labels)
    sections.append(_thumbnail_strip(report.thumbnails, labels))
    hidden = [v for v in report.parts if v.kind == "hidden"]
    if hidden:
        listed = ", ".join(f"{escape(v.name)} {tuple(v.values.shape)}" for v in hidden)
        sections.append(f'<p class="muted">Not plotted (high-dimensional): {listed}.</p>')
    settings = [(str(k), str(v)) for k, v in report.extraction.items()] + [("checkpoint", report.checkpoint)]
    sections.append("<h2>How the video was processed</h2>" + key_value_table(settings))
    return page(f"aqakit score: {report.video}", "".join(sections), _STYLE)


def _section(view: PartView, clip_labels: list[str]) -> list[str]:
    values = view.values
    if view.kind == "bars":
        return [f"<h2>{escape(view.name)}</h2>", svg.bars(values)]
    if view.kind == "timeline":
        note = ('<p class="muted">Score change when this clip is hidden from the model '
                "(leave-one-clip-out): positive clips raised the score, negative ones lowered it.</p>"
                if view.name == INFLUENCE_NAME else '<p class="muted">One value per clip.</p>')
        return [f"<h2>{escape(view.name)} over time</h2>", note, svg.timeline(values, clip_labels)]
    if view.kind == "clip_map":
        rows = [f"{view.name.split('_')[0]} {k}" for k in range(values.shape[0])]
        return [f"<h2>{escape(view.name)} over time</h2>", svg.heatmap(values, rows, clip_labels)]
    if view.kind == "matrix":
        rows = [str(k) for k in range(values.shape[0])]
        columns = [str(k) for k in range(values.shape[1])]
        return [f"<h2>{escape(view.name)}</h2>", svg.heatmap(values, rows, columns)]
    return []


def _thumbnail_strip(thumbnails: dict[int, np.ndarray], clip_labels: list[str]) -> str:
    if not thumbnails:
        return ""
    clips = sorted(thumbnails)
    keep = [clips[k] for k in np.unique(np.linspace(0, len(clips) - 1, min(len(clips), MAX_THUMBNAILS)).round().astype(int))]
    figures = "".join(
        f'<figure><img alt="{escape(clip_labels[i])}" src="{data_uri(thumbnail(thumbnails[i]))}">'
        f"<figcaption>{escape(clip_labels[i])}</figcaption></figure>"
        for i in keep
    )
    what = "each clip" if len(keep) == len(clip_labels) else f"{len(keep)} of the {len(clip_labels)} clips, evenly spaced"
    return f'<h2>Clips</h2><p class="muted">The middle frame of {what}.</p><div class="strip">{figures}</div>'
