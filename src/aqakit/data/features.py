"""Reading clip features: one ``<video_id>.npy`` array of shape (T, D) per video.

Any float dtype is accepted and converted to float32 before anything is computed on it (sums
of float16 values overflow). Every bad file is a :class:`~aqakit.errors.DataError` whose
one-line message names the file and what is wrong with it.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from aqakit.data.videoset import VideoSet
from aqakit.errors import DataError

_NPY_MAGIC = b"\x93NUMPY"

#: Below this many files no progress bar is shown.
PROGRESS_MIN_FILES = 200


def load_feature_file(path: Path, expected_dim: int | None = None) -> np.ndarray:
    """Load one feature file as a float32 (T, D) C-contiguous array.

    Args:
        path: a ``.npy`` file holding a 2-D float array (float16, float32 or float64).
        expected_dim: if given, the required feature dimension D.

    Raises:
        DataError: the file is missing, unreadable, truncated, not a ``.npy`` array, holds
            pickled/object data, is not a float array, is not 2-D, has no clips (T == 0) or
            D == 0, contains NaN or inf (the first bad row is named), or D != ``expected_dim``.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: feature file not found")
    if not path.is_file():
        raise DataError(f"{path}: is not a file (expected a .npy feature array)")
    try:
        with path.open("rb") as fh:
            magic = fh.read(len(_NPY_MAGIC))
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if magic.startswith(b"PK"):
        raise DataError(f"{path}: is an .npz archive, expected a single .npy array")
    if magic != _NPY_MAGIC:
        what = "is empty" if not magic else "does not start with the NumPy header"
        raise DataError(f"{path}: not a .npy file ({what}; pickles are never loaded)")
    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError as exc:
        text = _one_line(str(exc))
        if "object" in text.lower() or "pickle" in text.lower():
            raise DataError(f"{path}: holds pickled/object data, expected a float array") from None
        raise DataError(f"{path}: truncated or corrupt .npy file ({text})") from None
    except (OSError, EOFError) as exc:
        text = _one_line(str(exc)) or type(exc).__name__
        raise DataError(f"{path}: truncated or unreadable .npy file ({text})") from None
    if not isinstance(loaded, np.ndarray):  # cannot happen after the magic check; be safe
        raise DataError(f"{path}: does not hold a single array")
    return _as_features(loaded, str(path), expected_dim)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _as_features(array: np.ndarray, name: str, expected_dim: int | None) -> np.ndarray:
    """Validate a loaded array and return it as float32 C-contiguous (T, D)."""
    if array.dtype.hasobject:
        raise DataError(f"{name}: holds object data, expected a float array")
    if not np.issubdtype(array.dtype, np.floating):
        raise DataError(f"{name}: dtype {array.dtype} is not a float type (expected float16/32/64)")
    if array.ndim != 2:
        raise DataError(f"{name}: shape {array.shape} is not 2-D (expected (clips, feature_dim))")
    if array.shape[0] == 0:
        raise DataError(f"{name}: is empty (0 clips, shape {array.shape})")
    if array.shape[1] == 0:
        raise DataError(f"{name}: has feature dimension 0 (shape {array.shape})")
    # Convert first: arithmetic in float16 overflows, and float64 values beyond float32's range
    # become inf here, which the finiteness check below then reports.
    with np.errstate(over="ignore"):
        features = np.ascontiguousarray(array, dtype=np.float32)
    finite_rows = np.isfinite(features).all(axis=1)
    if not finite_rows.all():
        row = int(np.argmin(finite_rows))
        kind = "NaN" if np.isnan(features[row]).any() else "inf (or a value beyond float32)"
        raise DataError(f"{name}: row {row} (0-based clip index) contains {kind}")
    if expected_dim is not None and features.shape[1] != expected_dim:
        raise DataError(
            f"{name}: feature dimension {features.shape[1]}, expected {expected_dim} "
            f"(shape {features.shape})"
        )
    return features


def feature_path(feature_dir: Path, video_id: str) -> Path:
    """The file holding the features of ``video_id``: ``<feature_dir>/<video_id>.npy``."""
    return Path(feature_dir) / f"{video_id}.npy"


def load_videoset(
    feature_dir: Path,
    ids: Sequence[str],
    scores: np.ndarray,
    source: str,
    lines: Sequence[int] | None = None,
    *,
    expected_dim: int | None = None,
    progress: bool | None = None,
) -> VideoSet:
    """Load the features of every labelled video into memory.

    Each file is read once; the returned :class:`VideoSet` holds all arrays, so training never
    goes back to disk.

    Args:
        feature_dir: folder holding ``<id>.npy`` files.
        ids: video ids, in label-file order.
        scores: (N,) scores matching ``ids``.
        source: the label file the ids came from (used in error messages and as the set's source).
        lines: 1-based line of each id in ``source``, named when its feature file is missing.
        expected_dim: if given, every file must have this feature dimension.
        progress: show a progress bar; ``None`` (default) shows one only on an interactive
            terminal and for at least :data:`PROGRESS_MIN_FILES` files.

    Raises:
        DataError: the folder is missing, an id is repeated, a labelled id has no feature file (naming the id,
            the expected path and the label line), any file is bad (see :func:`load_feature_file`),
            or feature dimensions differ (naming the first file that differs and both dims).
    """
    feature_dir = Path(feature_dir)
    ids = list(ids)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1 or len(scores) != len(ids):
        raise DataError(f"{source}: {len(ids)} ids but scores of shape {scores.shape}")
    if lines is not None and len(lines) != len(ids):
        raise DataError(f"{source}: {len(ids)} ids but {len(lines)} line numbers")
    if not feature_dir.is_dir():
        raise DataError(f"{feature_dir}: feature folder not found (expected one <video_id>.npy per video)")
    if not ids:
        raise DataError(f"{source}: the split is empty")

    seen: dict[str, int] = {}
    for i, video_id in enumerate(ids):
        if video_id in seen:
            where = f"{source} line {lines[i]}" if lines is not None else source
            first = f"line {lines[seen[video_id]]}" if lines is not None else f"position {seen[video_id]}"
            raise DataError(f"{where}: duplicate id '{video_id}' (first at {first})")
        seen[video_id] = i

    # Check every file exists before reading any, so a missing file fails fast.
    paths = [feature_path(feature_dir, video_id) for video_id in ids]
    for i, path in enumerate(paths):
        if not path.is_file():
            where = f"{source} line {lines[i]}" if lines is not None else source
            raise DataError(f"{where}: no feature file for video '{ids[i]}' (expected {path})")

    features: list[np.ndarray] = []
    with _progress_bar(len(paths), f"loading {feature_dir.name or feature_dir}", progress) as advance:
        for path in paths:
            array = load_feature_file(path, expected_dim)
            if features and array.shape[1] != features[0].shape[1]:
                raise DataError(
                    f"{path}: feature dimension {array.shape[1]} differs from "
                    f"{features[0].shape[1]} of {paths[0]}"
                )
            features.append(array)
            advance()
    return VideoSet(ids=ids, features=features, scores=scores, source=source)


@contextmanager
def _progress_bar(total: int, label: str, enabled: bool | None) -> Iterator[Callable[[], None]]:
    """A transient rich progress bar on stderr; yields a function advancing it by one."""
    if enabled is None:
        enabled = total >= PROGRESS_MIN_FILES and sys.stderr.isatty()
    if not enabled:
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task)


def with_foreground(videos: VideoSet, foreground_dir: Path) -> VideoSet:
    """``videos`` with each video's foreground stream appended: features become ``[O | F]``, (T, 2D).

    The two-stream layout of FineCausal (docs/models/finecausal.md): ``features/<id>.npy`` holds the
    whole-frame clips O, ``foreground/<id>.npy`` the same clips of the masked frames F, on the same
    clip grid. A missing foreground file, or one of another clip count or dimension than its O
    file, is a DataError naming both files.
    """
    foreground_dir = Path(foreground_dir)
    if not foreground_dir.is_dir():
        raise DataError(f"{foreground_dir}: foreground folder not found (expected one <video_id>.npy per video, "
                        "beside features/)")
    joined = []
    for video_id, whole in zip(videos.ids, videos.features):
        path = feature_path(foreground_dir, video_id)
        if not path.is_file():
            raise DataError(f"{videos.source}: no foreground file for video '{video_id}' (expected {path})")
        foreground = load_feature_file(path, expected_dim=whole.shape[1])
        if foreground.shape[0] != whole.shape[0]:
            raise DataError(f"{path}: {foreground.shape[0]} clips, but the video's features have {whole.shape[0]} "
                            "(the foreground stream must share the clip grid)")
        joined.append(np.concatenate([whole, foreground], axis=1))
    return VideoSet(videos.ids, joined, videos.scores, f"{videos.source} with foreground from {foreground_dir}",
                    dict(videos.extras), list(videos.left_out))
