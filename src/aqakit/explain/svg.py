"""Small inline SVG plots (no external assets), every one on titled axes: bars (optionally with a
thumbnail under each), a histogram with marked values, heat maps, lines of several series, scatters."""

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


def bars(values: np.ndarray, labels: Sequence[str], x_title: str, y_title: str, height: int = 220,
         width: int = WIDTH, images: dict[int, str] | None = None) -> str:
    """One bar per value from a zero line on titled axes, blue up and red down; hover shows each
    value. More than 24 bars label only some of them. ``images``: bar index -> an image URI drawn
    as a square under that bar (thumbnails under a timeline), as wide as the bars allow."""
    n = len(values)
    lo, hi = _padded(np.asarray(values, float), 0.0)
    slot = (width - 72) / n
    spacing = slot * n / len(images) if images else 0.0  # px between neighbouring images
    side = int(min(96, max(spacing - 4, 16)))
    axes = _Axes((-0.5, n - 0.5), (lo, hi), height + (side + 6 if images else 0), 8, width=width,
                 below=side + 6 if images else 0)
    ticks = [(float(i), labels[i].split(" to ")[0]) for i in _ticks(n, most=max(2, int(axes.plot_width // 72)))]
    parts = axes.frame(x_title, y_title, x_labels=ticks)
    zero = axes.y(0.0)
    parts.append(f'<line x1="{axes.left}" x2="{axes.right}" y1="{zero:.1f}" y2="{zero:.1f}" stroke="#666"/>')
    for i, v in enumerate(values):
        x = axes.x(i) - slot * 0.38
        y0, y1 = sorted((zero, axes.y(float(v))))
        colour = ACCENT if v >= 0 else NEGATIVE
        parts.append(f'<rect x="{x:.1f}" y="{y0:.1f}" width="{slot * 0.76:.1f}" height="{max(y1 - y0, 1):.1f}" fill="{colour}">'
                     f"<title>{escape(labels[i])}: {v:.4g}</title></rect>")
        if n <= 12:  # the value above the bar, or above the zero line for a bar below it
            parts.append(f'<text x="{axes.x(i):.1f}" y="{min(y0, zero) - 4:.1f}" font-size="11" text-anchor="middle">{v:.3g}</text>')
    for i, uri in (images or {}).items():
        parts.append(f'<image href="{uri}" x="{axes.x(i) - side / 2:.1f}" y="{axes.bottom + 22:.1f}" width="{side}" '
                     f'height="{side}"><title>{escape(labels[i])}</title></image>')
    return _svg(axes.height, parts, f"{y_title} against {x_title}", width)


def histogram(values: np.ndarray, marked: Sequence[float], x_title: str, y_title: str, bins: int = 20,
              height: int = 170, width: int = 420) -> str:
    """Counts of ``values`` in ``bins`` equal bins on titled axes, each of the ``marked`` values a
    vertical line (a video's score among the training scores)."""
    values = np.asarray(values, float)
    lo, hi = _range(np.concatenate([values, np.asarray(marked, float)]), include_zero=False)
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    axes = _Axes((lo, hi), (0.0, float(max(counts.max(), 1)) * 1.08), height, 8, width=width)
    parts = axes.frame(x_title, y_title)
    for count, a, b in zip(counts, edges[:-1], edges[1:]):
        if count:
            top = axes.y(float(count))
            parts.append(f'<rect x="{axes.x(a) + 0.5:.1f}" y="{top:.1f}" width="{max(axes.x(b) - axes.x(a) - 1, 1):.1f}" '
                         f'height="{axes.bottom - top:.1f}" fill="#93c5fd"><title>{a:.4g} to {b:.4g}: {count}</title></rect>')
    for value in marked:
        parts.append(f'<line class="marker" x1="{axes.x(value):.1f}" x2="{axes.x(value):.1f}" y1="{axes.top}" '
                     f'y2="{axes.bottom}" stroke="{NEGATIVE}" stroke-width="2"><title>{value:.4g}</title></line>')
    return _svg(height, parts, f"{y_title} against {x_title}", width)


def heatmap(matrix: np.ndarray, row_labels: list[str], column_labels: list[str], row_title: str, column_title: str,
            value_title: str, max_rows: int = 48, max_columns: int = 120, width: int = WIDTH) -> str:
    """Rows of coloured cells on titled axes: white = the map's minimum, deep blue = its maximum
    (a scale above the map names ``value_title`` and both ends).

    Rows shrink from 18 px to no less than 3 px as their number grows; more than ``max_rows`` rows
    or ``max_columns`` columns are averaged in equal runs (each cell's hover text names its run),
    so a map of a hundred queries over thousands of clips stays a small page.
    """
    matrix, row_labels = _binned(matrix, row_labels, max_rows, axis=0)
    matrix, column_labels = _binned(matrix, column_labels, max_columns, axis=1)
    rows, cols = matrix.shape
    left, top = 92, 26
    cell_h = 18 if rows <= 32 else max(3, 576 // rows)
    height = top + rows * cell_h + 40
    cell_w = (width - left - 12) / cols
    lo, hi = float(matrix.min()), float(matrix.max())
    constant = hi - lo < 1e-12  # one value everywhere (a one-clip video's attention): a middle shade, said so
    labelled = set(_ticks(rows, most=32))
    scale_x = width - 12 - 120 - 36  # the colour scale: "<value title> <lo> [10 swatches] <hi>" at the top right
    if constant:
        parts = [f'<text class="scale" x="{width - 12}" y="12" font-size="11" text-anchor="end">'
                 f"{escape(value_title)}: {lo:.3g} in every cell</text>"]
    else:
        parts = [f'<text class="scale" x="{scale_x - 4}" y="12" font-size="11" text-anchor="end">{escape(value_title)}: {lo:.3g}</text>',
                 *(f'<rect x="{scale_x + 12 * k}" y="3" width="12" height="11" fill="{_blue(k / 9)}"/>' for k in range(10)),
                 f'<text x="{scale_x + 124}" y="12" font-size="11">{hi:.3g}</text>']
    for r in range(rows):
        if r in labelled:
            parts.append(f'<text x="{left - 6}" y="{top + r * cell_h + min(cell_h, 18) - 5}" font-size="11" '
                         f'text-anchor="end">{escape(row_labels[r])}</text>')
        for c in range(cols):
            value = float(matrix[r, c])
            shade = 0.5 if constant else (value - lo) / (hi - lo)
            parts.append(
                f'<rect x="{left + c * cell_w:.1f}" y="{top + r * cell_h}" width="{cell_w + 0.3:.1f}" height="{max(cell_h - 1, 1)}" '
                f'fill="{_blue(shade)}"><title>{escape(row_labels[r])}, {escape(column_labels[c])}: {value:.4g}</title></rect>'
            )
    bottom = top + rows * cell_h
    for c in _ticks(cols):
        parts.append(f'<text x="{left + (c + 0.5) * cell_w:.1f}" y="{bottom + 13}" font-size="10" text-anchor="middle">'
                     f'{escape(column_labels[c].split(" to ")[0])}</text>')
    middle = (top + bottom) / 2
    parts += [f'<text class="axis-title" x="{(left + width) / 2:.1f}" y="{height - 6}" font-size="12" '
              f'text-anchor="middle">{escape(column_title)}</text>',
              f'<text class="axis-title" x="14" y="{middle:.1f}" font-size="12" text-anchor="middle" '
              f'transform="rotate(-90 14 {middle:.1f})">{escape(row_title)}</text>']
    return _svg(height, parts, f"{value_title} of each {row_title} against {column_title}", width)


def _binned(matrix: np.ndarray, labels: list[str], most: int, axis: int) -> tuple[np.ndarray, list[str]]:
    """At most ``most`` rows (``axis`` 0) or columns (1): runs of neighbours averaged, labelled ``"first to last"``."""
    n = matrix.shape[axis]
    if n <= most:
        return matrix, labels
    edges = np.linspace(0, n, most + 1).round().astype(int)
    binned = np.stack([matrix.take(np.arange(a, b), axis=axis).mean(axis=axis) for a, b in zip(edges[:-1], edges[1:])], axis=axis)
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
                 integer_x: bool = False, width: int = WIDTH, below: int = 0) -> None:
        """``top``: room above the plot (a legend); ``below``: extra room under the tick labels (thumbnails)."""
        self.left, self.right, self.top, self.bottom = 58, width - 14, top + 8, height - 42 - below
        self.height, self.x_range, self.y_range, self.integer_x = height, x_range, y_range, integer_x

    @property
    def plot_width(self) -> float:
        return self.right - self.left

    def x(self, value: float) -> float:
        lo, hi = self.x_range
        return self.left + (float(value) - lo) / (hi - lo) * (self.right - self.left)

    def y(self, value: float) -> float:
        lo, hi = self.y_range
        return self.bottom - (float(value) - lo) / (hi - lo) * (self.bottom - self.top)

    def frame(self, x_title: str, y_title: str, x_labels: Sequence[tuple[float, str]] | None = None) -> list[str]:
        """Grid, tick labels (``x_labels``: (position, text) pairs instead of round numbers), the axes'
        lines and their titles (``class="axis-title"``)."""
        parts = []
        for tick in _nice_ticks(*self.y_range):
            parts.append(f'<line x1="{self.left}" x2="{self.right}" y1="{self.y(tick):.1f}" y2="{self.y(tick):.1f}" stroke="#eee"/>'
                         f'<text x="{self.left - 5}" y="{self.y(tick) + 3.5:.1f}" font-size="10" text-anchor="end">{tick:.4g}</text>')
        if x_labels is None:
            x_labels = [(tick, f"{tick:.4g}") for tick in _nice_ticks(*self.x_range, integer=self.integer_x)]
        for tick, text in x_labels:
            parts.append(f'<line x1="{self.x(tick):.1f}" x2="{self.x(tick):.1f}" y1="{self.bottom}" y2="{self.bottom + 4}" stroke="#999"/>'
                         f'<text x="{self.x(tick):.1f}" y="{self.bottom + 15}" font-size="10" text-anchor="middle">{escape(text)}</text>')
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


def _svg(height: int, parts: list[str], label: str = "", width: int = WIDTH) -> str:
    body = "".join(parts)
    named = f' role="img" aria-label="{escape(label)}"' if label else ""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="sans-serif"{named}>{body}</svg>')
