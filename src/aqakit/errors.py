"""Errors that aqakit raises for bad input.

Every error a user can cause (a missing file, a malformed label row, a wrong feature
dimension...) is an :class:`AqakitError` whose message is one line naming the file, the
row or the value at fault. The command line prints that line and exits with status 2
instead of showing a traceback.
"""

from __future__ import annotations


def one_line_reason(exc: BaseException) -> str:
    """The reason an exception gives (an OS error's ``strerror`` when it has one), on one line;
    the exception's type name when it gives none. For messages that quote a library's error."""
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split()) or type(exc).__name__


class AqakitError(Exception):
    """Base class of every user-facing aqakit error."""


class DataError(AqakitError):
    """Bad data: a feature file, a label file, a split or a score."""


class ConfigError(AqakitError):
    """Bad configuration: an unknown model, benchmark, option or value."""


class RunDirectoryError(AqakitError):
    """A run directory that would be overwritten, or one that is not a run."""


class TrainingDivergedError(AqakitError):
    """Training produced a non-finite loss; the epochs so far stay in the seed's metrics.csv."""


class WriteError(AqakitError):
    """A file that could not be written (a full disk, a read-only folder); the previous one is intact."""
