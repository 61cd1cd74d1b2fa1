"""Turning a Prediction into something a person reads: part views, SVG plots, an HTML report."""

from aqakit.explain.parts import PartView, clip_influence, view_parts
from aqakit.explain.report import ScoreReport, render_html

__all__ = ["PartView", "ScoreReport", "clip_influence", "render_html", "view_parts"]
