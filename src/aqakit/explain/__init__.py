"""Turning a Prediction into something a person reads: part views, SVG plots, an HTML report; and
a training run's page (:mod:`aqakit.explain.run_report`)."""

from aqakit.explain.parts import PartView, clip_influence, view_parts
from aqakit.explain.report import ScoreReport, render_html
from aqakit.explain.run_report import RunResult, SeedResult, read_run, render_run_report

__all__ = ["PartView", "RunResult", "ScoreReport", "SeedResult", "clip_influence", "read_run", "render_html",
           "render_run_report", "view_parts"]
