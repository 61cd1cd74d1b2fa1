"""Small inline SVG plots (no external assets): bars, a line over clips, heat maps."""

from __future__ import annotations

from html import escape

import numpy as np

WIDTH = 640
ACCENT = "#2563eb"
NEGATIVE = "#dc2626"


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


def _ticks(n: int, most: int = 12) -> range:
    return range(0, n, max(1, -(-n // most)))


def _blue(shade: float) -> str:
    """White (0) to deep blue (1)."""
    start, end = np.array([247, 251, 255]), np.array([8, 48, 107])
    r, g, b = (start + (end - start) * min(max(shade, 0.0), 1.0)).astype(int)
    return f"rgb({r},{g},{b})"


def _svg(height: int, parts: list[str]) -> str:
    body = "".join(parts)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif">{body}</svg>')
