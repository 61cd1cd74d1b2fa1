"""The score report: one self-contained HTML page (inline CSS, SVG plots, base64 thumbnails) about
one scored video or feature file.

From the top: a plain sentence with the score on the original scale (the spread over seeds for a
run of several), where it sits among the training scores (percentile and histogram) and, for a grade
model, its grade as a band of scores; the clip-influence timeline with thumbnails; the parts the
model declares as explanations, each with titled axes and a caption; how the input was processed.
Nothing is fetched when the page opens; the layout fills the window and prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from aqakit.explain import svg
from aqakit.explain.html import key_value_table, page
from aqakit.explain.images import data_uri, thumbnail
from aqakit.explain.parts import ClipInfluence, GradeView, PartView

#: Long videos keep at most this many thumbnails (evenly spaced), for the timeline.
MAX_THUMBNAILS = 120
#: The timeline draws at most this many thumbnails under its bars.
TIMELINE_THUMBNAILS = 24
#: The width (SVG units) of the full-width timeline; the other charts use :data:`svg.WIDTH`.
TIMELINE_WIDTH = 1200


@dataclass
class ScoreReport:
    """Everything the report shows about one scored video or feature file.

    Attributes:
        video: the scored input (a video file, a frame folder or a ``.npy`` feature file).
        seed_scores: the predicted score of each seed's model (original scale); one for a checkpoint.
        model: model name; ``checkpoint``: where the (first) model was loaded from; ``score_range``:
            the training scores' range (lo, hi).
        extraction: how the input's features were made (the checkpoint's record, or the settings used).
        parts: the first model's explained parts for this input (:func:`~aqakit.explain.parts.view_parts`).
        n_clips: the input's number of clips T.
        grade: a grade model's grade as a band of scores, else None.
        influence: the clip influence of the first model; None for a one-clip input.
        training_scores: the first model's training scores, sorted; None when its checkpoint predates them.
        clip_seconds: (T,) time of each clip's first frame since the video's start, or None when unknown.
        thumbnails: clip index -> that clip's middle frame (uint8 RGB), for some or all clips.
    """

    video: str
    seed_scores: list[float]
    model: str
    checkpoint: str
    score_range: tuple[float, float]
    extraction: dict[str, Any]
    parts: list[PartView]
    n_clips: int
    grade: GradeView | None = None
    influence: ClipInfluence | None = None
    training_scores: np.ndarray | None = None
    clip_seconds: list[float] | None = None
    thumbnails: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def score(self) -> float:
        """The predicted score: the mean over seeds."""
        return float(np.mean(self.seed_scores))

    def clip_labels(self) -> list[str]:
        """A short label per clip: its start time, else its number (1 = first)."""
        if self.clip_seconds is None:
            return [f"clip {i + 1}" for i in range(self.n_clips)]
        return [f"{s:.1f}s" for s in self.clip_seconds]

    def clip_axis(self) -> str:
        return "time in the video (s)" if self.clip_seconds is not None else "clip (1 = first)"

    def percentile(self) -> float | None:
        """The percentage of training scores below the score (ties count half); None without them."""
        if self.training_scores is None or not len(self.training_scores):
            return None
        scores = np.asarray(self.training_scores)
        below, ties = np.sum(scores < self.score), np.sum(scores == self.score)
        return float(100.0 * (below + 0.5 * ties) / len(scores))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: score (per seed too), grade, percentile, influence, every explained part and
        the clips ringed on a part's timeline (``marks``: FineCausal's predicted transitions)."""
        influence = None if self.influence is None else {
            "starts": self.influence.starts.tolist(), "ends": self.influence.ends.tolist(),
            "drop": self.influence.drop.tolist()}
        return {
            "video": self.video, "score": self.score, "seed_scores": self.seed_scores, "model": self.model,
            "checkpoint": self.checkpoint, "score_range": list(self.score_range), "percentile": self.percentile(),
            "grade": None if self.grade is None else vars(self.grade), "clips": self.n_clips,
            "clip_seconds": self.clip_seconds, "extraction": self.extraction, "clip_influence": influence,
            "parts": {view.name: np.asarray(view.values).tolist() for view in self.parts},
            "marks": {view.name: list(view.marked) for view in self.parts if view.marked},  # e.g. predicted transitions
        }


_STYLE = """
body{margin:20px 28px}
.lead{display:grid;grid-template-columns:minmax(0,1fr) minmax(260px,440px);gap:8px 32px;align-items:center}
.score{font-size:52px;font-weight:700;color:#1d4ed8;margin:4px 0 0;font-variant-numeric:tabular-nums}
.score small{font-size:22px;font-weight:600;color:#1e40af}
.sentence{font-size:16px;line-height:1.45;margin:6px 0;max-width:60em}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,460px),1fr));gap:16px 32px}
figure{margin:0} figure h3{font-size:14px;margin:6px 0 2px} figcaption{font-size:13px;color:#444;margin:0 0 4px}
svg{width:100%;height:auto;display:block} img.clip{width:160px;height:160px}
@media (max-width:760px){.lead{grid-template-columns:1fr}}
@media print{.lead{grid-template-columns:1fr 320px}.charts{grid-template-columns:1fr 1fr}}
"""


def render_html(report: ScoreReport) -> str:
    """The report as one self-contained HTML document."""
    name = Path(report.video).name or report.video
    sections = [
        f"<h1>{escape(name)}</h1>",
        f'<div class="muted">scored by {escape(report.model)} from {_clip_count(report)}</div>',
        _lead(report),
        _influence_section(report),
    ]
    if report.parts:
        figures = "".join(_figure(view, report) for view in report.parts)
        sections.append(f'<section id="parts"><h2>Inside the model</h2><div class="charts">{figures}</div></section>')
    sections.append('<section id="processing"><h2>How the input was processed</h2>'
                    + key_value_table(_processing_rows(report)) + "</section>")
    return page(f"aqakit score: {name}", "".join(sections), _STYLE)


def _clip_count(report: ScoreReport) -> str:
    clips = f"{report.n_clips} clip{'s' if report.n_clips != 1 else ''}"
    if report.clip_seconds:
        end = report.clip_seconds[-1] + (report.clip_seconds[1] - report.clip_seconds[0] if report.n_clips > 1 else 0.0)
        return f"{clips} ({end:.1f} s of video)" if end > 0 else clips
    return clips


def _lead(report: ScoreReport) -> str:
    """The score, the sentence saying what it means, and the training-score histogram."""
    lo, hi = report.score_range
    scores = report.seed_scores
    figure = f"{report.score:.2f}"
    if len(scores) > 1:
        figure += f" <small>± {np.std(scores, ddof=1):.2f}</small>"
    sentence = [f"The model scores this performance <b>{report.score:.2f}</b> on the scale it was trained on "
                f"({lo:.4g} to {hi:.4g})."]
    if len(scores) > 1:
        each = ", ".join(f"{s:.2f}" for s in scores)
        sentence.append(f"That is the mean of {len(scores)} seeds' models (standard deviation {np.std(scores, ddof=1):.2f}; "
                        f"each: {each}).")
    percentile = report.percentile()
    if percentile is not None:
        sentence.append(f"It is higher than {percentile:.0f} % of the {len(report.training_scores)} training scores.")
    else:
        sentence.append("The checkpoint does not record its training scores (it was trained before aqakit kept them), "
                        "so the score's place among them is not shown.")
    if report.grade is not None:
        g = report.grade
        sentence.append(f"Its grade is <b>{g.index + 1} of {g.count}</b>, the band of scores {g.low:.4g} to {g.high:.4g}.")
    text = (f'<div><div class="score" id="score">{figure}</div>'
            f'<p class="sentence" id="summary">{" ".join(sentence)}</p></div>')
    if percentile is None:
        return f'<section id="lead" class="lead">{text}</section>'
    chart = svg.histogram(report.training_scores, scores, "score (original scale)", "training videos")
    marks = "its score" if len(scores) == 1 else "each seed's score"
    return (f'<section id="lead" class="lead">{text}<figure id="training-scores"><h3>Among the training scores</h3>'
            f"<figcaption>Bars: how many training videos got each score; red line: {marks}.</figcaption>"
            f"{chart}</figure></section>")


def _influence_section(report: ScoreReport) -> str:
    head = '<section id="influence"><h2>Which clips moved the score</h2>'
    labels = report.clip_labels()
    influence = report.influence
    if influence is None:
        image = "".join(f'<img class="clip" alt="{escape(labels[i])}" src="{data_uri(thumbnail(report.thumbnails[i], 160))}">'
                        for i in sorted(report.thumbnails)[:1])
        return (head + '<p class="muted">This input has one clip: hiding it would leave nothing to score, so the whole '
                f"score rests on it and there is no clip to compare it with.</p>{image}</section>")
    runs = list(zip(influence.starts, influence.ends))
    run_labels = [labels[a] if b - a == 1 else f"{labels[a]} to {labels[b - 1]}" for a, b in runs]
    shortest, longest = int(min(b - a for a, b in runs)), int(max(b - a for a, b in runs))
    span = str(shortest) if shortest == longest else f"{shortest} to {longest}"
    what = "each clip" if longest == 1 else f"each run of {span} neighbouring clips"
    chart = svg.bars(influence.drop, run_labels, report.clip_axis(), "score change when hidden",
                     height=260, width=TIMELINE_WIDTH, images=_timeline_images(report, runs))
    caption = (f"The score minus the score with {what} hidden from the model (through the mask): a bar above zero "
               "marks clips that raised the score, below zero clips that lowered it."
               + (" Thumbnails: the middle frame of the clips under them." if report.thumbnails else ""))
    return head + f'<p class="muted">{caption}</p>{chart}</section>'


def _timeline_images(report: ScoreReport, runs: list[tuple[int, int]]) -> dict[int, str]:
    """Run index -> the thumbnail nearest the run's middle, for at most :data:`TIMELINE_THUMBNAILS` evenly spaced runs."""
    if not report.thumbnails:
        return {}
    clips = np.array(sorted(report.thumbnails))
    chosen = np.unique(np.linspace(0, len(runs) - 1, min(len(runs), TIMELINE_THUMBNAILS)).round().astype(int))
    images = {}
    for k in chosen:
        middle = (runs[k][0] + runs[k][1] - 1) / 2
        nearest = int(clips[np.abs(clips - middle).argmin()])
        images[int(k)] = data_uri(thumbnail(report.thumbnails[nearest]))
    return images


def _figure(view: PartView, report: ScoreReport) -> str:
    spec, values = view.spec, view.values
    if spec.kind == "bars":
        chart = svg.bars(values, [str(k + 1) for k in range(len(values))], spec.item, spec.value)
    elif spec.kind == "clips":
        x = np.asarray(report.clip_seconds if report.clip_seconds is not None else np.arange(1, report.n_clips + 1), float)
        chart = svg.line_chart([svg.Series(spec.value, x, values, marked=view.marked)], report.clip_axis(), spec.value,
                               mark_note=spec.mark_note)
    elif spec.kind == "clip_map":
        rows = [f"{spec.item} {k + 1}" for k in range(values.shape[0])]
        chart = svg.heatmap(values, rows, report.clip_labels(), spec.item, report.clip_axis(), spec.value)
    else:  # matrix
        rows = [f"{spec.item} {k + 1}" for k in range(values.shape[0])]
        columns = [str(k + 1) for k in range(values.shape[1])]
        chart = svg.heatmap(values, rows, columns, spec.item, spec.columns, spec.value)
    return (f'<figure class="part" id="part-{escape(spec.part)}"><h3>{escape(spec.title)}</h3>'
            f"<figcaption>{escape(spec.caption)}</figcaption>{chart}</figure>")


#: What an unset extraction setting means, by key; any other unset setting reads "–".
_UNSET = {"fps": "the video's own frame rate", "short_side": "the crop size", "frames_per_video": "all frames"}
_SETTING_NAMES = {"clip_len": "frames per clip", "fps": "frame rate", "crop_size": "crop (pixels)",
                  "short_side": "short side resized to (pixels)", "upright": "display rotation applied",
                  "folder_fps": "frame rate of a frame folder", "frames_per_video": "frames taken per video",
                  "weights_sha256": "weights SHA-256", "weights_file": "weights file", "feature_dim": "feature dimension",
                  "backbone_revision": "backbone revision", "clips": "how clips are cut"}


def _processing_rows(report: ScoreReport) -> list[tuple[str, str]]:
    rows = [("input", report.video), ("clips scored", str(report.n_clips))]
    for key, value in report.extraction.items():
        rows.append((_SETTING_NAMES.get(key, key.replace("_", " ")), _setting_text(key, value)))
    return rows + [("checkpoint", report.checkpoint)]


def _setting_text(key: str, value: Any) -> str:
    if value is None:
        return _UNSET.get(key, "–")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):  # e.g. the foreground stream's method and masks, one setting a part
        shown = [(name, inner) for name, inner in value.items() if inner is not None]
        return "; ".join(f"{name.replace('_', ' ')}: " + (f"({_setting_text(name, inner)})" if isinstance(inner, dict)
                                                         else _setting_text(name, inner)) for name, inner in shown)
    return str(value)
