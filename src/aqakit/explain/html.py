"""What aqakit's HTML pages share: the page around their sections, its base style, small tables.

A page is self-contained: inline CSS and SVG, no script, nothing fetched when it opens.
"""

from __future__ import annotations

from html import escape
from typing import Iterable

#: The style every page starts from; a page adds its own rules after it.
BASE_STYLE = """
body{font-family:system-ui,sans-serif;color:#111;background:#fff}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:28px 0 6px;border-bottom:1px solid #ddd}
.muted{color:#555;font-size:13px} table{border-collapse:collapse;font-size:13px}
td,th{padding:2px 10px 2px 0;text-align:left;vertical-align:top}
@media print{body{margin:0;max-width:none} h2{break-after:avoid} svg,table,figure{break-inside:avoid}}
"""


def page(title: str, body: str, style: str = "") -> str:
    """One self-contained HTML document: ``body`` (HTML) under ``title`` (plain text), styled by
    :data:`BASE_STYLE` and then ``style`` (CSS rules of this page)."""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{escape(title)}</title>'
            f"<style>{BASE_STYLE}{style}</style></head><body>{body}</body></html>")


def key_value_table(rows: Iterable[tuple[str, str]]) -> str:
    """A two-column table of (name, value) rows, both plain text."""
    cells = "".join(f"<tr><th>{escape(name)}</th><td>{escape(value)}</td></tr>" for name, value in rows)
    return f"<table>{cells}</table>"

