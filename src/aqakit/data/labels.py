"""Readers for label files: whitespace tables and CSV files, every row with its line number.

The readers only split text into cells; turning cells into ids and scores (and checking them)
is :func:`scored_ids`. Every problem is a :class:`~aqakit.errors.DataError` with a one-line
message naming the file and the line, for example
``train.txt line 17: score 'abc' is not a number``. Blank lines are skipped (they carry no
row); nothing else is ever skipped silently.
"""

from __future__ import annotations

import csv
import io
import math
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aqakit.errors import DataError, one_line_reason


@dataclass(frozen=True)
class LabelTable:
    """The cells of a label file.

    Attributes:
        path: the file read.
        header: column names (stripped), or ``None`` for a file without a header.
        rows: the non-blank data rows, each a list of stripped cells.
        lines: the 1-based line number of each row in ``rows``.
    """

    path: Path
    header: list[str] | None
    rows: list[list[str]]
    lines: list[int]

    @property
    def name(self) -> str:
        """The file as named in error messages (the path as given)."""
        return str(self.path)

    def column(self, name: str) -> int:
        """Index of the header column called ``name`` (case-insensitive).

        Raises:
            DataError: the file has no header, or no column of that name.
        """
        if self.header is None:
            raise DataError(f"{self.path}: has no header, cannot find column '{name}'")
        wanted = name.casefold()
        for i, column in enumerate(self.header):
            if column.casefold() == wanted:
                return i
        raise DataError(
            f"{self.path}: no column '{name}' in the header (columns: {', '.join(self.header)})"
        )


def _read_text(path: Path) -> str:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: label file not found")
    if not path.is_file():
        raise DataError(f"{path}: is not a file (expected a label file)")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def _check_width(path: Path, cells: list[str], line: int, width: int, what: str) -> None:
    if len(cells) != width:
        raise DataError(
            f"{path} line {line}: {len(cells)} columns, expected {width} ({what})"
        )


def read_whitespace_table(
    path: Path, *, header: bool, n_columns: int | None = None
) -> LabelTable:
    """Read a table whose cells are separated by spaces and/or tabs.

    Args:
        path: the file.
        header: whether the first non-blank line holds column names.
        n_columns: required number of cells per row when there is no header (with a header,
            every row must have as many cells as the header). ``None`` without a header: all
            rows must have as many cells as the first one.

    Raises:
        DataError: missing/unreadable file, no rows, or a row with the wrong number of cells.
    """
    path = Path(path)
    text = _read_text(path)
    names: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    width = n_columns
    what = f"{n_columns} columns" if n_columns is not None else ""
    for number, raw in enumerate(text.splitlines(), start=1):
        cells = raw.split()
        if not cells:
            continue
        if header and names is None:
            names = cells
            width = len(cells)
            what = "as many as the header: " + " ".join(cells)
            continue
        if width is None:
            width = len(cells)
            what = f"as many as line {number}"
        _check_width(path, cells, number, width, what)
        rows.append(cells)
        lines.append(number)
    if header and names is None:
        raise DataError(f"{path}: is empty (expected a header line and data rows)")
    if not rows:
        raise DataError(f"{path}: has no data rows")
    return LabelTable(path=path, header=names, rows=rows, lines=lines)


def read_csv_table(path: Path) -> LabelTable:
    """Read a comma-separated file whose first non-blank line is a header.

    Cells are stripped of surrounding whitespace; quoted cells follow the usual CSV rules.

    Raises:
        DataError: missing/unreadable file, malformed CSV, no rows, or a row whose number of
            cells differs from the header's.
    """
    path = Path(path)
    text = _read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    names: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    start = 1
    try:
        for record in reader:
            line, start = start, reader.line_num + 1
            cells = [c.strip() for c in record]
            if not any(cells):
                continue
            if names is None:
                names = cells
                _check_separator(path, names)
                continue
            _check_width(path, cells, line, len(names), "as many as the header: " + ",".join(names))
            rows.append(cells)
            lines.append(line)
    except csv.Error as exc:
        raise DataError(f"{path} line {reader.line_num}: malformed CSV ({exc})") from None
    if names is None:
        raise DataError(f"{path}: is empty (expected a header line and data rows)")
    if not rows:
        raise DataError(f"{path}: has no data rows")
    return LabelTable(path=path, header=names, rows=rows, lines=lines)


def _check_separator(path: Path, header: list[str]) -> None:
    """DataError for a one-column header that another separator splits (semicolon or tab CSV)."""
    if len(header) != 1:
        return
    for separator, name in ((";", "semicolons"), ("\t", "tabs")):
        if separator in header[0]:
            raise DataError(
                f"{path} line 1: the header {header[0]!r} is separated by {name}; label files are comma-separated "
                f"(e.g. id,score,split)"
            )


def parse_score(value: str, file: str, line: int, what: str = "score") -> float:
    """A finite float from a label cell; ``what`` names the cell in the error message.

    Raises:
        DataError: ``file line N: score 'x' is not a number`` (or NaN / infinite).
    """
    try:
        number = float(value)
    except ValueError:
        raise DataError(f"{file} line {line}: {what} '{value}' is not a number") from None
    if math.isnan(number):
        raise DataError(f"{file} line {line}: {what} is NaN")
    if math.isinf(number):
        raise DataError(f"{file} line {line}: {what} '{value}' is infinite")
    return number


@dataclass(frozen=True)
class ScoredIds:
    """Video ids with their scores, read from one label file.

    Attributes:
        ids: video ids in file order, unique.
        scores: (N,) float64 scores.
        lines: 1-based line of each id in ``source``.
        source: the label file (used in messages, e.g. ``train.txt``).
        extras: per-video arrays beside the score (N each, e.g. a dive's ``difficulty``), which
            become the VideoSet's ``extras``.
    """

    ids: list[str]
    scores: np.ndarray
    lines: list[int]
    source: str
    extras: dict[str, np.ndarray] = field(default_factory=dict)


def check_unique_ids(ids: list[str], lines: list[int], file: str) -> None:
    """Raise a DataError naming both lines of the first repeated id."""
    first_line: dict[str, int] = {}
    for video_id, line in zip(ids, lines):
        if video_id in first_line:
            raise DataError(
                f"{file} line {line}: duplicate id '{video_id}' (first on line {first_line[video_id]})"
            )
        first_line[video_id] = line


def scored_ids(
    table: LabelTable,
    id_column: int,
    score_column: int,
    *,
    score_name: str = "score",
    keep: list[bool] | None = None,
) -> ScoredIds:
    """Ids and parsed scores of ``table`` (optionally only rows where ``keep`` is true).

    Every row's id must be non-empty and unique in the whole file (also among rows not kept);
    every kept row's score must be a finite number.
    """
    file = table.name
    ids: list[str] = []
    scores: list[float] = []
    lines: list[int] = []
    all_ids = [row[id_column] for row in table.rows]
    for video_id, line in zip(all_ids, table.lines):
        if not video_id:
            raise DataError(f"{file} line {line}: empty video id")
    check_unique_ids(all_ids, table.lines, file)
    for i, (row, line) in enumerate(zip(table.rows, table.lines)):
        if keep is not None and not keep[i]:
            continue
        ids.append(row[id_column])
        scores.append(parse_score(row[score_column], file, line, score_name))
        lines.append(line)
    return ScoredIds(ids=ids, scores=np.asarray(scores, dtype=np.float64), lines=lines, source=file)


#: The only callables a label pickle may name: those that rebuild numpy arrays (MTL-AQA's judge
#: scores) and scalars, and the codec Python 3 uses for the bytes inside them.
_PICKLE_CLASSES = {
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
}


class _LabelUnpickler(pickle.Unpickler):
    """Builds plain data only: dicts, lists, tuples, numbers, strings and numpy arrays, never code."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _PICKLE_CLASSES:
            raise pickle.UnpicklingError(f"refusing to build {module}.{name} (a label pickle holds plain data only)")
        return super().find_class(module, name)


def read_label_pickle(path: Path) -> object:
    """A label file stored as a pickle (MTL-AQA's), loaded without running any code it names.

    Python 2 pickles are read with ``encoding="latin1"``, as their authors wrote them.

    Raises:
        DataError: missing or unreadable file, or a pickle naming anything but plain data.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: label file not found")
    try:
        with path.open("rb") as handle:
            return _LabelUnpickler(handle, encoding="latin1").load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise DataError(f"{path}: not a readable label pickle ({one_line_reason(exc)})") from None
