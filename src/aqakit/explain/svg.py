"""Small inline SVG plots (no external assets): bars, a line over clips, heat maps, and charts on
titled axes (lines of several series, scatters)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Literal, Sequence

import numpy as np

WIDTH = 640
ACCENT = "#2563eb"
NEGATIVE = "#dc2626"
#: One colour per series (seed), in order; more series than colours repeat them.
PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777")


def _range(values: np.ndarray, include_zero: bool = True) -> tuple[float, float]:
    lo, hi = float(values.min()), float(values.max())
    if include_zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo < 1e-12:
        hi = lo + 1.0
    return lo, hi


def bars(values: np.ndarray, labels: list[str] | None = None, height: int = 170) -> str:
    """One vertical bar per value (zero baseline), its value above it."""
    n = len(values)
    labels = labels or [str(i) for i in range(n)]
    lo, hi = _range(values)
    top, bottom, left = 18, height - 22, 8
    slot = (WIDTH - 2 * left) / n
    y = lambda v: bottom - (v - lo) / (hi - lo) * (bottom - top)  # noqa: E731
    parts = [f'<line x1="{left}" x2="{WIDTH - left}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#999"/>']
    for i, v in enumerate(values):
        x = left + i * slot + slot * 0.15
        y0, y1 = sorted((y(0), y(float(v))))
        colour = ACCENT if v >= 0 else NEGATIVE
        parts.append(f'<rect x="{x:.1f}" y="{y0:.1f}" width="{slot * 0.7:.1f}" height="{max(y1 - y0, 1):.1f}" fill="{colour}">'
                     f'<title>{escape(labels[i])}: {v:.4g}</title></rect>')
        if n <= 24:
            parts.append(f'<text x="{x + slot * 0.35:.1f}" y="{y0 - 4:.1f}" font-size="11" text-anchor="middle">{v:.3g}</text>')
            parts.append(f'<text x="{x + slot * 0.35:.1f}" y="{height - 6}" font-size="11" text-anchor="middle">{escape(labels[i])}</text>')
    return _svg(height, parts)


def timeline(values: np.ndarray, clip_labels: list[str], height: int = 180) -> str:
    """A line over clips with a zero line when the values change sign; hover shows each value."""
    n = len(values)
    lo, hi = _range(values, include_zero=bool(values.min() < 0 < values.max()))
    top, bottom, left, right = 12, height - 26, 44, 12
    x = lambda i: left + (i + 0.5) * (WIDTH - left - right) / n  # noqa: E731
    y = lambda v: bottom - (v - lo) / (hi - lo) * (bottom - top)  # noqa: E731
    parts = [
        f'<line x1="{left}" x2="{WIDTH - right}" y1="{bottom}" y2="{bottom}" stroke="#999"/>',
        f'<text x="{left - 4}" y="{top + 4}" font-size="10" text-anchor="end">{hi:.3g}</text>',
        f'<text x="{left - 4}" y="{bottom}" font-size="10" text-anchor="end">{lo:.3g}</text>',
    ]
    if lo < 0 < hi:
        parts.append(f'<line x1="{left}" x2="{WIDTH - right}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#bbb" stroke-dasharray="4 3"/>')
    points = " ".join(f"{x(i):.1f},{y(float(v)):.1f}" for i, v in enumerate(values))
    parts.append(f'<polyline points="{points}" fill="none" stroke="{ACCENT}" stroke-width="2"/>')
    for i, v in enumerate(values):
        colour = NEGATIVE if v < 0 else ACCENT
        parts.append(f'<circle cx="{x(i):.1f}" cy="{y(float(v)):.1f}" r="{3 if n <= 100 else 1.5}" fill="{colour}">'
                     f'<title>{escape(clip_labels[i])}: {v:.4g}</title></circle>')
    for i in _ticks(n):
        parts.append(f'<text x="{x(i):.1f}" y="{height - 8}" font-size="10" text-anchor="middle">{escape(clip_labels[i])}</text>')
    return _svg(height, parts)


def heatmap(matrix: np.ndarray, row_labels: list[str], column_labels: list[str], max_columns: int = 320) -> str:
    """Rows of coloured cells: white = the map's minimum, deep blue = its maximum.

    Rows shrink from 18 px to no less than 3 px as their number grows; more than ``max_columns``
    columns are averaged in equal runs (each cell's hover text names its run), so a map over
    thousands of clips stays a small page.
    """
    matrix, column_labels = _binned_columns(matrix, column_labels, max_columns)
    rows, cols = matrix.shape
    left, top = 70, 4
    cell_h = 18 if rows <= 32 else max(3, 576 // rows)
    height = top + rows * cell_h + 22
    cell_w = (WIDTH - left - 8) / cols
    lo, hi = _range(matrix, include_zero=False)
    labelled = set(_ticks(rows, most=32))
    parts = []
    for r in range(rows):
        if r in labelled:
            parts.append(f'<text x="{left - 6}" y="{top + r * cell_h + min(cell_h, 18) - 5}" font-size="11" '
                         f'text-anchor="end">{escape(row_labels[r])}</text>')
        for c in range(cols):
            value = float(matrix[r, c])
            shade = (value - lo) / (hi - lo)
            parts.append(
                f'<rect x="{left + c * cell_w:.1f}" y="{top + r * cell_h}" width="{cell_w + 0.3:.1f}" height="{max(cell_h - 1, 1)}" '
                f'fill="{_blue(shade)}"><title>{escape(row_labels[r])}, {escape(column_labels[c])}: {value:.4g}</title></rect>'
            )
    for c in _ticks(cols):
        parts.append(f'<text x="{left + (c + 0.5) * cell_w:.1f}" y="{height - 6}" font-size="10" text-anchor="middle">'
                     f'{escape(column_labels[c].split(" to ")[0])}</text>')
    return _svg(height, parts)


def _binned_columns(matrix: np.ndarray, labels: list[str], most: int) -> tuple[np.ndarray, list[str]]:
    """At most ``most`` columns: runs of neighbouring columns averaged, labelled ``"first to last"``."""
    cols = matrix.shape[1]
    if cols <= most:
        return matrix, labels
    edges = np.linspace(0, cols, most + 1).round().astype(int)
    binned = np.stack([matrix[:, a:b].mean(axis=1) for a, b in zip(edges[:-1], edges[1:])], axis=1)
    return binned, [f"{labels[a]} to {labels[b - 1]}" for a, b in zip(edges[:-1], edges[1:])]


@dataclass(frozen=True)
class Series:
    """One named set of points of a chart, drawn in one colour.

    ``x``, ``y``: (N,) each; a NaN ``y`` is a missing value (a gap in a line). ``marked``: the
    indices of points drawn as a ring (e.g. the selected epoch).
    """

    label: str
    x: np.ndarray
    y: np.ndarray
    colour: str = ACCENT
    marked: tuple[int, ...] = ()


def line_chart(series: Sequence[Series], x_title: str, y_title: str, mark_note: str = "", height: int = 240) -> str:
    """One line per series on titled axes; each marked point a ring whose hover text says
    ``mark_note``, which the legend explains. Needs at least one finite value."""
    xs = np.concatenate([s.x for s in series]).astype(float)
    ys = np.concatenate([s.y for s in series]).astype(float)
    legend, legend_height = _legend(series, mark_note if any(s.marked for s in series) else "")
    axes = _Axes(_padded(xs), _padded(ys), height, legend_height, integer_x=bool(np.all(xs == np.round(xs))))
    parts = axes.frame(x_title, y_title)
    for s in series:
        finite = np.isfinite(s.y)
        for run in np.split(np.arange(len(s.y)), np.flatnonzero(np.diff(finite.astype(int))) + 1):
            if finite[run[0]] and len(run) > 1:
                points = " ".join(f"{axes.x(s.x[i]):.1f},{axes.y(s.y[i]):.1f}" for i in run)
                parts.append(f'<polyline points="{points}" fill="none" stroke="{s.colour}" stroke-width="1.8"/>')
        for i in np.flatnonzero(finite):
            parts.append(f'<circle cx="{axes.x(s.x[i]):.1f}" cy="{axes.y(s.y[i]):.1f}" r="2.2" fill="{s.colour}">'
                         f"<title>{escape(s.label)}, {escape(x_title)} {s.x[i]:.4g}: {s.y[i]:.4g}</title></circle>")
        for i in s.marked:
            if np.isfinite(s.y[i]):
                parts.append(f'<circle class="marked" cx="{axes.x(s.x[i]):.1f}" cy="{axes.y(s.y[i]):.1f}" r="6" fill="none" '
                             f'stroke="{s.colour}" stroke-width="2"><title>{escape(s.label)}, {escape(mark_note)} '
                             f"({escape(x_title)} {s.x[i]:.4g}): {s.y[i]:.4g}</title></circle>")
    return _svg(height, parts + legend, f"{y_title} against {x_title}")


def scatter(series: Sequence[Series], x_title: str, y_title: str, guide: Literal["identity", "zero"] | None = None,
            height: int = 320) -> str:
    """One dot per point on titled axes. ``guide``: a dashed ``identity`` line y = x (both axes then
    share one range) or a dashed ``zero`` line y = 0. Needs at least one finite point."""
    xs = np.concatenate([s.x for s in series]).astype(float)
    ys = np.concatenate([s.y for s in series]).astype(float)
    x_range, y_range = _padded(xs), _padded(ys, 0.0 if guide == "zero" else None)
    if guide == "identity":
        x_range = y_range = _padded(np.concatenate([xs, ys]))
    legend, legend_height = _legend(series)
    axes = _Axes(x_range, y_range, height, legend_height)
    parts = axes.frame(x_title, y_title)
    if guide == "identity":
        lo, hi = x_range
        parts.append(f'<line class="guide" x1="{axes.x(lo):.1f}" y1="{axes.y(lo):.1f}" x2="{axes.x(hi):.1f}" y2="{axes.y(hi):.1f}" '
                     f'stroke="#666" stroke-dasharray="5 4"><title>{escape(y_title)} = {escape(x_title)}</title></line>')
    elif guide == "zero":
        parts.append(f'<line class="guide" x1="{axes.left}" x2="{axes.right}" y1="{axes.y(0.0):.1f}" y2="{axes.y(0.0):.1f}" '
                     f'stroke="#666" stroke-dasharray="5 4"/>')
    for s in series:
        for x, y in zip(s.x, s.y):
            if np.isfinite(x) and np.isfinite(y):
                parts.append(f'<circle cx="{axes.x(x):.1f}" cy="{axes.y(y):.1f}" r="2.6" fill="{s.colour}" fill-opacity="0.6">'
                             f"<title>{escape(s.label)}: {x:.4g}, {y:.4g}</title></circle>")
    return _svg(height, parts + legend, f"{y_title} against {x_title}")


class _Axes:
    """The plot area of a chart on titled axes: data to pixel maps, the frame, ticks and grid."""

    def __init__(self, x_range: tuple[float, float], y_range: tuple[float, float], height: int, top: int,
                 integer_x: bool = False) -> None:
        self.left, self.right, self.top, self.bottom = 58, WIDTH - 14, top + 8, height - 42
        self.height, self.x_range, self.y_range, self.integer_x = height, x_range, y_range, integer_x

    def x(self, value: float) -> float:
        lo, hi = self.x_range
        return self.left + (float(value) - lo) / (hi - lo) * (self.right - self.left)

    def y(self, value: float) -> float:
        lo, hi = self.y_range
        return self.bottom - (float(value) - lo) / (hi - lo) * (self.bottom - self.top)

    def frame(self, x_title: str, y_title: str) -> list[str]:
        """Grid, tick labels, the axes' lines and their titles (``class="axis-title"``)."""
        parts = []
        for tick in _nice_ticks(*self.y_range):
            parts.append(f'<line x1="{self.left}" x2="{self.right}" y1="{self.y(tick):.1f}" y2="{self.y(tick):.1f}" stroke="#eee"/>'
                         f'<text x="{self.left - 5}" y="{self.y(tick) + 3.5:.1f}" font-size="10" text-anchor="end">{tick:.4g}</text>')
        for tick in _nice_ticks(*self.x_range, integer=self.integer_x):
            parts.append(f'<line x1="{self.x(tick):.1f}" x2="{self.x(tick):.1f}" y1="{self.bottom}" y2="{self.bottom + 4}" stroke="#999"/>'
                         f'<text x="{self.x(tick):.1f}" y="{self.bottom + 15}" font-size="10" text-anchor="middle">{tick:.4g}</text>')
        middle_y = (self.top + self.bottom) / 2
        parts += [
            f'<polyline points="{self.left},{self.top} {self.left},{self.bottom} {self.right},{self.bottom}" fill="none" stroke="#999"/>',
            f'<text class="axis-title" x="{(self.left + self.right) / 2:.1f}" y="{self.height - 8}" font-size="12" '
            f'text-anchor="middle">{escape(x_title)}</text>',
            f'<text class="axis-title" x="14" y="{middle_y:.1f}" font-size="12" text-anchor="middle" '
            f'transform="rotate(-90 14 {middle_y:.1f})">{escape(y_title)}</text>',
        ]
        return parts


def _padded(values: np.ndarray, include: float | None = None) -> tuple[float, float]:
    """The range of the finite ``values`` (and of ``include``), widened by 4 % on each side."""
    finite = values[np.isfinite(values)]
    if include is not None:
        finite = np.append(finite, include)
    lo, hi = _range(finite, include_zero=False)
    pad = 0.04 * (hi - lo)
    return lo - pad, hi + pad


def _nice_ticks(lo: float, hi: float, most: int = 6, integer: bool = False) -> np.ndarray:
    """At most about ``most`` round values (steps of 1, 2, 2.5 or 5 times a power of ten) in [lo, hi];
    whole numbers only when ``integer``."""
    raw = (hi - lo) / most
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if integer:
        step = float(max(1, math.ceil(step)))
    first = math.ceil(lo / step) * step
    return np.arange(first, hi + step * 1e-9, step)


def _legend(series: Sequence[Series], mark_note: str = "") -> tuple[list[str], int]:
    """Rows of labelled colour swatches above the plot area (a ring explains ``mark_note`` when
    given), and the height they take."""
    items = [(s.label, f'<rect x="{{x:.1f}}" y="{{y:.1f}}" width="10" height="10" fill="{s.colour}"/>') for s in series]
    if mark_note:
        items.append((mark_note, '<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="none" stroke="#111" stroke-width="1.5"/>'))
    parts, x, y = ['<g class="legend" font-size="11">'], 58.0, 6.0
    for label, swatch in items:
        width = 24 + 6.5 * len(label)
        if x + width > WIDTH and x > 58:
            x, y = 58.0, y + 15
        parts.append(swatch.format(x=x, y=y, cx=x + 5, cy=y + 5) + f'<text x="{x + 14:.1f}" y="{y + 9:.1f}">{escape(label)}</text>')
        x += width
    parts.append("</g>")
    return parts, int(y + 15)


def _ticks(n: int, most: int = 12) -> range:
    return range(0, n, max(1, -(-n // most)))


def _blue(shade: float) -> str:
    """White (0) to deep blue (1)."""
    start, end = np.array([247, 251, 255]), np.array([8, 48, 107])
    r, g, b = (start + (end - start) * min(max(shade, 0.0), 1.0)).astype(int)
    return f"rgb({r},{g},{b})"


def _svg(height: int, parts: list[str], label: str = "") -> str:
    body = "".join(parts)
    named = f' role="img" aria-label="{escape(label)}"' if label else ""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif"{named}>{body}</svg>')
