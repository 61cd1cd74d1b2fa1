"""Inspect a feature folder (``aqakit datasets DIR``): what is there and what is wrong with it.

Unlike loading, inspection does not stop at the first problem: it goes through every file and
label and collects all problems, one line each, in :attr:`FolderReport.problems`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aqakit.data.benchmarks import (
    SPLITS,
    Benchmark,
    CsvBenchmark,
    FileBenchmark,
    FineDiving,
    FisV,
    MtlAqa,
    RhythmicGymnastics,
    get_benchmark,
)
from aqakit.data.features import load_feature_file
from aqakit.data.labels import ScoredIds
from aqakit.errors import ConfigError, DataError

#: How many ids a problem line lists before "...".
SHOWN_IDS = 5


@dataclass
class SplitSummary:
    """The labels of one split.

    Attributes:
        label_file: where they were read from.
        n_labelled: number of labelled videos.
        n_with_features: how many of them have a feature file.
        score_min, score_max: range of the scores.
    """

    label_file: str
    n_labelled: int
    n_with_features: int
    score_min: float
    score_max: float


@dataclass
class FolderReport:
    """What :func:`inspect_feature_folder` found.

    Attributes:
        root: the folder inspected.
        feature_dir: the folder of ``.npy`` files.
        benchmark: the benchmark whose labels were checked (given or recognised), or None.
        n_files: number of ``.npy`` files.
        n_valid: number of files that load as valid features.
        min_clips, median_clips, max_clips: clip counts (T) over the files whose shape is known.
        dims: feature dimension -> number of files.
        dtypes: dtype name -> number of files.
        splits: label summary per split (only with a benchmark).
        other_scores: the same summary for every other score type the label files carry, by the
            name of the benchmark that reads it (Fis-V TES: ``fisv-pcs``).
        problems: one line per problem found; empty if all is well.
    """

    root: Path
    feature_dir: Path
    benchmark: str | None = None
    n_files: int = 0
    n_valid: int = 0
    min_clips: int | None = None
    median_clips: float | None = None
    max_clips: int | None = None
    dims: dict[int, int] = field(default_factory=dict)
    dtypes: dict[str, int] = field(default_factory=dict)
    splits: dict[str, SplitSummary] = field(default_factory=dict)
    other_scores: dict[str, dict[str, SplitSummary]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def render(self) -> str:
        """The report as plain text for people (no square brackets, so it is safe as rich markup)."""
        out = [f"folder: {self.root}", f"features: {self.feature_dir} ({self.n_files} .npy files, {self.n_valid} valid)"]
        if self.min_clips is not None:
            out.append(f"clips per video: min {self.min_clips}, median {self.median_clips:g}, max {self.max_clips}")
        if self.dims:
            out.append("feature dims: " + ", ".join(f"{d} ({n} files)" for d, n in sorted(self.dims.items())))
        if self.dtypes:
            out.append("dtypes: " + ", ".join(f"{t} ({n} files)" for t, n in sorted(self.dtypes.items())))
        out.append(f"benchmark: {self.benchmark or 'none recognised (no label files checked)'}")
        for split, s in self.splits.items():
            out.append(
                f"  {split}: {s.n_labelled} labelled ({s.n_with_features} with features), "
                f"scores {s.score_min:g}..{s.score_max:g} (from {s.label_file})"
            )
        if self.other_scores:
            out.append("other score types in these labels (train on one by its benchmark name):")
            for name, splits in self.other_scores.items():
                ranges = ", ".join(f"{split} scores {s.score_min:g}..{s.score_max:g}" for split, s in splits.items())
                out.append(f"  {name}: {ranges or 'unreadable (see problems)'}")
        if self.problems:
            out.append(f"{len(self.problems)} problem(s):")
            out.extend(f"  - {p}" for p in self.problems)
        else:
            out.append("no problems found")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.render()


def detect_benchmark(root: Path) -> Benchmark | None:
    """Recognise a label layout in ``root``: CSV files, MTL-AQA or FineDiving pickles, RG (header
    ``Video_Name``) or Fis-V."""
    root = Path(root)
    if (root / "labels.csv").is_file() or (root / "train.csv").is_file():
        return CsvBenchmark()
    for pickled in (MtlAqa, FineDiving):
        if (root / pickled.ANNOTATION_FILE).is_file():
            return pickled()
    label = root / "train.txt"
    if label.is_file():
        try:
            with label.open(encoding="utf-8-sig") as fh:
                first = next((line.split() for line in fh if line.strip()), [])
        except (OSError, UnicodeDecodeError):
            return None
        if first and first[0] == "Video_Name":
            return RhythmicGymnastics(None)
        return FisV("tes")
    return None


def inspect_feature_folder(
    root: Path, benchmark: str | Benchmark | None = None, *, check_values: bool = True
) -> FolderReport:
    """Inspect a data folder (or a bare folder of ``.npy`` files) and collect every problem.

    Args:
        root: a benchmark data folder (with ``features/`` and label files) or a folder of
            ``<id>.npy`` files.
        benchmark: name or instance of the benchmark whose labels to check; ``None`` recognises
            Fis-V, RG (all apparatus) and CSV layouts, or checks only the features.
        check_values: load every file to find NaN/inf (slower); ``False`` reads only headers.

    Raises:
        DataError: ``root`` does not exist.
        ConfigError: unknown benchmark name, or a benchmark that has no files.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: folder not found")
    bench = get_benchmark(benchmark) if isinstance(benchmark, str) else benchmark
    if bench is None:
        bench = detect_benchmark(root)
    if bench is not None and not isinstance(bench, FileBenchmark):
        raise ConfigError(f"benchmark '{bench.name}' has no files to inspect")

    if bench is not None:
        feature_dir = bench.feature_dir(root)
    else:
        feature_dir = root / "features" if (root / "features").is_dir() else root
    report = FolderReport(root=root, feature_dir=feature_dir, benchmark=bench.name if bench else None)

    stems = _inspect_features(report, check_values)
    if bench is not None:
        report.splits = _inspect_labels(report, bench, stems)
        for other in bench.score_variants()[1:]:
            report.other_scores[other.name] = _label_summaries(report, other, stems)
    return report


def _inspect_features(report: FolderReport, check_values: bool) -> set[str]:
    """Fill the feature statistics of ``report``; return the ids that have a feature file."""
    if not report.feature_dir.is_dir():
        report.problems.append(f"{report.feature_dir}: feature folder not found")
        return set()
    paths = sorted(p for p in report.feature_dir.iterdir() if p.suffix == ".npy" and p.is_file())
    report.n_files = len(paths)
    if not paths:
        report.problems.append(f"{report.feature_dir}: no .npy feature files")
    lengths: list[int] = []
    files_by_dim: dict[int, list[str]] = {}
    for path in paths:
        header = _read_header(path)
        if header is not None:
            shape, dtype = header
            report.dtypes[str(dtype)] = report.dtypes.get(str(dtype), 0) + 1
            if len(shape) == 2:
                if shape[0] > 0:
                    lengths.append(shape[0])
                files_by_dim.setdefault(shape[1], []).append(path.name)
        try:
            if check_values or header is None:
                load_feature_file(path)
            else:
                _check_header(path, *header)
            report.n_valid += 1
        except DataError as exc:
            report.problems.append(str(exc))
    report.dims = {d: len(names) for d, names in files_by_dim.items()}
    if len(files_by_dim) > 1:
        parts = [
            f"{d} in {len(names)} file(s) (e.g. {names[0]})"
            for d, names in sorted(files_by_dim.items(), key=lambda kv: -len(kv[1]))
        ]
        report.problems.append(f"{report.feature_dir}: mixed feature dimensions: " + ", ".join(parts))
    if lengths:
        report.min_clips = int(min(lengths))
        report.median_clips = float(np.median(lengths))
        report.max_clips = int(max(lengths))
    return {p.stem for p in paths}


def _read_header(path: Path) -> tuple[tuple[int, ...], np.dtype] | None:
    """Shape and dtype from the ``.npy`` header (memory-mapped, no data read); None if unreadable."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError):
        return None
    if not isinstance(array, np.ndarray):  # .npz
        if hasattr(array, "close"):
            array.close()
        return None
    shape, dtype = tuple(array.shape), array.dtype
    del array
    return shape, dtype


def _check_header(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """The checks of :func:`load_feature_file` that need no data."""
    if not np.issubdtype(dtype, np.floating):
        raise DataError(f"{path}: dtype {dtype} is not a float type (expected float16/32/64)")
    if len(shape) != 2:
        raise DataError(f"{path}: shape {shape} is not 2-D (expected (clips, feature_dim))")
    if shape[0] == 0:
        raise DataError(f"{path}: is empty (0 clips, shape {shape})")
    if shape[1] == 0:
        raise DataError(f"{path}: has feature dimension 0 (shape {shape})")


def _read_split_labels(report: FolderReport, bench: FileBenchmark) -> dict[str, ScoredIds]:
    """Every split's labels that read; each failure is a problem (once: both splits may share a file)."""
    read: dict[str, ScoredIds] = {}
    for split in SPLITS:
        try:
            read[split] = bench.read_labels(report.root, split)
        except DataError as exc:
            if str(exc) not in report.problems:
                report.problems.append(str(exc))
    return read


def _summary(labels: ScoredIds, stems: set[str]) -> SplitSummary:
    return SplitSummary(
        label_file=labels.source,
        n_labelled=len(labels.ids),
        n_with_features=sum(1 for i in labels.ids if i in stems),
        score_min=float(labels.scores.min()),
        score_max=float(labels.scores.max()),
    )


def _label_summaries(report: FolderReport, bench: FileBenchmark, stems: set[str]) -> dict[str, SplitSummary]:
    return {split: _summary(labels, stems) for split, labels in _read_split_labels(report, bench).items()}


def _inspect_labels(report: FolderReport, bench: FileBenchmark, stems: set[str]) -> dict[str, SplitSummary]:
    """The label summary of each split; missing features, overlaps and unlabelled files are problems."""
    labelled: dict[str, set[str]] = {}
    summaries: dict[str, SplitSummary] = {}
    for split, labels in _read_split_labels(report, bench).items():
        labelled[split] = set(labels.ids)
        summaries[split] = _summary(labels, stems)
        missing = [i for i in labels.ids if i not in stems]
        if missing and report.feature_dir.is_dir():
            report.problems.append(
                f"{labels.source}: {len(missing)} labelled video(s) have no feature file in "
                f"{report.feature_dir}: {_some(missing)}"
            )
    if "train" in labelled and "test" in labelled:
        both = sorted(labelled["train"] & labelled["test"])
        if both:
            report.problems.append(f"{len(both)} video(s) are in both train and test: {_some(both)}")
    if len(labelled) == len(SPLITS):
        every = set().union(*labelled.values())
        unlabelled = sorted(s for s in stems if s not in every and bench.owns_feature(s))
        if unlabelled:
            report.problems.append(
                f"{report.feature_dir}: {len(unlabelled)} feature file(s) have no label: "
                + _some([f"{s}.npy" for s in unlabelled])
            )
    return summaries


def _some(items: list[str]) -> str:
    shown = ", ".join(items[:SHOWN_IDS])
    return shown + (f", ... ({len(items) - SHOWN_IDS} more)" if len(items) > SHOWN_IDS else "")
