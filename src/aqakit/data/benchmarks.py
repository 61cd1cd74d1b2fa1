"""Benchmark adapters: each knows one benchmark's label format, score column, splits and layout.

Use :func:`get_benchmark` to build one by name (``fisv-tes``, ``rg-ball-execution``, ``mtl-aqa``,
``finediving``, ``jigsaws-suturing`` (:mod:`aqakit.data.jigsaws`), ``csv``, ``synthetic``,
``synthetic-finediving`` ...) and :meth:`Benchmark.load` to
read a split as a :class:`VideoSet`::

    bench = get_benchmark("fisv-pcs")
    train = bench.load(Path("../shared/data/fisv"), "train")
    scale = bench.score_scale(train)

Every benchmark also takes the options ``transform`` and ``transform_seed``
(:mod:`aqakit.data.transforms`): ``get_benchmark("fisv-pcs", transform="pca:4")`` reads Fis-V PCS
with its features projected on four principal components of the training clips.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from functools import partial
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from aqakit.data.confounded import make_confounded
from aqakit.data.features import load_videoset, with_foreground
from aqakit.data.labels import (
    LabelTable,
    ScoredIds,
    check_unique_ids,
    parse_score,
    read_csv_table,
    read_label_pickle,
    read_whitespace_table,
    scored_ids,
)
from aqakit.data.scale import ScoreScale
from aqakit.data.stages import TRANSITION_CLIPS, check_transitions, frames_to_clips
from aqakit.data.synthetic import make_synthetic
from aqakit.data.transforms import Transform
from aqakit.data.videoset import VideoSet
from aqakit.errors import ConfigError, DataError

#: The environment variable naming the folder that holds each benchmark family's data (``fisv/``, ``rg/`` ...).
DATA_ENV = "AQAKIT_DATA"
#: The splits every benchmark provides.
SPLITS: tuple[str, ...] = ("train", "test")
#: Options every benchmark takes besides its own (see :class:`TransformedBenchmark`).
TRANSFORM_OPTIONS: tuple[str, ...] = ("transform", "transform_seed")


def check_split(split: str) -> str:
    """``split`` if it is one of :data:`SPLITS`, else a DataError listing them."""
    if split not in SPLITS:
        raise DataError(f"unknown split '{split}' (valid splits: {', '.join(SPLITS)})")
    return split


class Benchmark(ABC):
    """A benchmark: where its data lives and how to read a split of it.

    Attributes:
        name: registry name, e.g. ``fisv-tes`` (includes the variant, so runs can be named by it).
        description: one line saying what is scored.
        family: ``fisv``, ``rg``, ``mtl-aqa``, ``finediving``, ``jigsaws``, ``csv`` or ``synthetic``; used to find
            config presets.
        needs_data: whether :meth:`load` needs a data folder (``root``).
        options: the effective options (defaults filled in).
    """

    name: str
    description: str
    family: str
    needs_data: bool = True
    #: option name -> default; the type of a non-None default is the option's type.
    option_defaults: ClassVar[dict[str, Any]] = {}
    #: option name -> type, for options whose default is None.
    option_types: ClassVar[dict[str, type]] = {}

    def __init__(self, **options: Any) -> None:
        self.options: dict[str, Any] = self._take_options(options)

    @abstractmethod
    def load(self, root: Path | None, split: str) -> VideoSet:
        """Read one split (``train`` or ``test``) into memory.

        Raises:
            DataError: unknown split, missing data folder, label file or feature file, or any
                malformed input (the message names the file and line).
        """

    def score_scale(self, train: VideoSet) -> ScoreScale:
        """The score normalisation of this benchmark; by default the min/max of the training scores."""
        return ScoreScale.from_scores(train.scores)

    def layout(self) -> str:
        """Where the files of this benchmark live (for messages and :meth:`describe`)."""
        return "no files needed"

    @property
    def data_family(self) -> str:
        """The folder name of its data under ``$AQAKIT_DATA`` (the family, unless the data is another's)."""
        return self.family

    @property
    def official_folds(self) -> tuple[int, ...]:
        """The values of its ``fold`` option, one per official train/test split (JIGSAWS: 0-3), or ()
        for a benchmark with one official split. ``aqakit train --folds`` trains each
        (:mod:`aqakit.train.folds`)."""
        return ()

    def describe(self) -> str:
        """A few lines for people: name, what is scored, file layout and options."""
        lines = [f"{self.name}: {self.description}", f"  layout: {self.layout()}"]
        if self.options:
            shown = ", ".join(f"{k}={v}" for k, v in self.options.items())
            lines.append(f"  options: {shown}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Benchmark {self.name}>"

    def _take_options(self, options: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(options) - set(self.option_defaults))
        if unknown:
            valid = ", ".join([*self.option_defaults, *TRANSFORM_OPTIONS])
            raise ConfigError(
                f"benchmark '{self.name}': unknown option(s) {', '.join(unknown)} (valid: {valid})"
            )
        resolved = dict(self.option_defaults)
        for key, value in options.items():
            if value is None:  # None means "the default"
                continue
            kind = self.option_types.get(key) or type(self.option_defaults[key])
            resolved[key] = _coerce(self.name, key, value, kind)
        return resolved


#: How a boolean option may be spelled (``bool("false")`` is True, so strings are read by name).
_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _coerce(benchmark: str, key: str, value: Any, kind: type) -> Any:
    """Convert an option (possibly a string from the command line) to its type."""
    try:
        if kind is bool and not isinstance(value, bool):
            return _BOOLEANS[str(value).strip().lower()]
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        if kind is int and isinstance(value, bool):
            raise ValueError
        return kind(value)
    except (KeyError, TypeError, ValueError):
        raise ConfigError(
            f"benchmark '{benchmark}': option {key}={value!r} is not a valid {kind.__name__}"
        ) from None


class FileBenchmark(Benchmark):
    """A benchmark read from a data folder: label files plus a feature folder."""

    option_defaults: ClassVar[dict[str, Any]] = {"features_dir": None}
    option_types: ClassVar[dict[str, type]] = {"features_dir": Path}

    @abstractmethod
    def read_labels(self, root: Path | None, split: str) -> ScoredIds:
        """Ids, scores and label lines of one split, without touching feature files.

        Raises:
            DataError: missing data folder or label file, or a malformed label row.
        """

    def score_variants(self) -> list["FileBenchmark"]:
        """The benchmarks that read the same files for each score type they carry, this one first
        (Fis-V: TES and PCS). A benchmark with one score type returns ``[self]``."""
        return [self]

    def feature_dir(self, root: Path | None) -> Path:
        """The folder of ``<id>.npy`` files (``<root>/features`` unless overridden)."""
        if self.options.get("features_dir") is not None:
            return Path(self.options["features_dir"])
        return self._root(root) / "features"

    def owns_feature(self, video_id: str) -> bool:
        """Whether a feature file of this id belongs to this benchmark (RG: same apparatus)."""
        return True

    def load(self, root: Path | None, split: str) -> VideoSet:
        check_split(split)
        labels = self.read_labels(root, split)
        feature_dir = self.feature_dir(root)
        if not feature_dir.is_dir():
            raise DataError(f"{feature_dir}: feature folder not found (expected {self.layout()})")
        return self.read_features(feature_dir, labels)

    def read_features(self, feature_dir: Path, labels: ScoredIds) -> VideoSet:
        """The features of every labelled video (with the labels' extras); a labelled video without a
        feature file is a DataError."""
        videos = load_videoset(feature_dir, labels.ids, labels.scores, labels.source, labels.lines)
        videos.extras.update(labels.extras)
        return videos

    def _root(self, root: Path | str | None) -> Path:
        if root is None:
            raise DataError(f"benchmark '{self.name}' needs a data folder (expected {self.layout()})")
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"{root}: data folder not found (expected {self.layout()})")
        return root

    def _label_file(self, root: Path | None, filename: str) -> Path:
        path = self._root(root) / filename
        if not path.is_file():
            raise DataError(f"expected {path} ({self.layout()})")
        return path


def _check_numeric(table: LabelTable, columns: dict[int, str]) -> None:
    """Every cell of the given columns (index -> name) must be a finite number."""
    for row, line in zip(table.rows, table.lines):
        for index, what in columns.items():
            parse_score(row[index], table.name, line, what)


class FisV(FileBenchmark):
    """Fis-V figure skating (Xu et al., TCSVT 2019): TES or PCS of 500 short programmes.

    Label files have no header: ``<id> <TES> <PCS> <deductions>`` separated by whitespace.
    Every row is a video: unlike the released CoFInAl code, which skips the first line of each
    label file as if it were a header (losing one training and one test video), nothing is
    dropped here.
    """

    family = "fisv"
    COLUMNS: ClassVar[tuple[str, ...]] = ("id", "TES", "PCS", "deductions")

    def __init__(self, score: str = "tes", **options: Any) -> None:
        score = score.lower()
        if score not in ("tes", "pcs"):
            raise ConfigError(f"Fis-V score must be 'tes' or 'pcs', got '{score}'")
        self.score = score
        self.name = f"fisv-{score}"
        self.description = (
            "Fis-V figure skating, "
            + ("technical element score (TES)" if score == "tes" else "programme component score (PCS)")
        )
        super().__init__(**options)

    def score_variants(self) -> list[FileBenchmark]:
        return [self] + [FisV(score, **self.options) for score in ("tes", "pcs") if score != self.score]

    def layout(self) -> str:
        return (
            "Fis-V layout: <root>/features/<id>.npy, <root>/train.txt, <root>/test.txt, "
            "no header, columns: id TES PCS deductions"
        )

    def read_labels(self, root: Path | None, split: str) -> ScoredIds:
        check_split(split)
        table = read_whitespace_table(self._label_file(root, f"{split}.txt"), header=False, n_columns=4)
        _check_numeric(table, {1: "TES", 2: "PCS", 3: "deductions"})
        return scored_ids(table, 0, 1 if self.score == "tes" else 2, score_name=self.score.upper())


class RhythmicGymnastics(FileBenchmark):
    """Rhythmic Gymnastics (Zeng et al., ACM MM 2020): one apparatus, one score type.

    Label files have one header line
    ``Video_Name Difficulty_Score Execution_Score Total_Score Penalty Video_length``; columns
    are found by name. The apparatus of a video is its name's prefix before ``_`` (``Ball_001``).
    Scores are normalised by the fixed range [0, 25], as in the released GDLT/CoFInAl code.
    """

    family = "rg"
    APPARATUS: ClassVar[tuple[str, ...]] = ("ball", "clubs", "hoop", "ribbon")
    SCORE_COLUMNS: ClassVar[dict[str, str]] = {
        "total": "Total_Score",
        "difficulty": "Difficulty_Score",
        "execution": "Execution_Score",
    }
    option_defaults: ClassVar[dict[str, Any]] = {"score_type": "total", "features_dir": None}
    option_types: ClassVar[dict[str, type]] = {"features_dir": Path}
    #: The fixed score range (the released code divides every RG score by 25).
    SCALE: ClassVar[ScoreScale] = ScoreScale(0.0, 25.0)

    def __init__(self, apparatus: str | None, **options: Any) -> None:
        if apparatus is not None:
            apparatus = apparatus.lower()
            if apparatus not in self.APPARATUS:
                raise ConfigError(
                    f"unknown RG apparatus '{apparatus}' (valid: {', '.join(self.APPARATUS)})"
                )
        self.apparatus = apparatus
        self.name = f"rg-{apparatus or 'all'}"
        super().__init__(**options)
        score_type = str(self.options["score_type"]).lower()
        if score_type not in self.SCORE_COLUMNS:
            raise ConfigError(
                f"RG score_type '{score_type}' unknown (valid: {', '.join(self.SCORE_COLUMNS)})"
            )
        self.options["score_type"] = self.score_type = score_type
        if score_type != "total":
            self.name += f"-{score_type}"
        self.description = (
            f"Rhythmic Gymnastics, {apparatus or 'all apparatus'}, {score_type} score"
        )

    def score_variants(self) -> list[FileBenchmark]:
        return [self] + [RhythmicGymnastics(self.apparatus, **{**self.options, "score_type": other})
                         for other in self.SCORE_COLUMNS if other != self.score_type]

    def layout(self) -> str:
        return (
            "RG layout: <root>/features/<Video_Name>.npy, <root>/train.txt, <root>/test.txt, "
            "header: Video_Name Difficulty_Score Execution_Score Total_Score Penalty Video_length"
        )

    def score_scale(self, train: VideoSet) -> ScoreScale:
        return self.SCALE

    def owns_feature(self, video_id: str) -> bool:
        return self.apparatus is None or video_id.split("_", 1)[0].lower() == self.apparatus

    def read_labels(self, root: Path | None, split: str) -> ScoredIds:
        check_split(split)
        table = read_whitespace_table(self._label_file(root, f"{split}.txt"), header=True)
        id_col = table.column("Video_Name")
        score_col = table.column(self.SCORE_COLUMNS[self.score_type])
        numeric = {table.column(name): name for name in self.SCORE_COLUMNS.values()}
        _check_numeric(table, numeric)
        keep = [self.owns_feature(row[id_col]) for row in table.rows]
        if not any(keep):
            found = sorted({row[id_col].split("_", 1)[0] for row in table.rows})
            raise DataError(
                f"{table.path}: no videos of apparatus '{self.apparatus}' "
                f"(names start with: {', '.join(found)})"
            )
        return scored_ids(table, id_col, score_col, score_name=self.SCORE_COLUMNS[self.score_type], keep=keep)


class CsvBenchmark(FileBenchmark):
    """Any data set given as CSV: columns ``id``, ``score`` and optionally ``split``.

    Either ``<root>/labels.csv`` with a ``split`` column (``train``/``test``), or
    ``<root>/train.csv`` and ``<root>/test.csv`` with ``id,score``. Features in
    ``<root>/features/<id>.npy``. Options ``labels`` (a CSV with a split column) and
    ``features_dir`` override the locations (then no root is needed).
    """

    name = "csv"
    family = "csv"
    description = "your own data: CSV labels (id, score, optional split) and a feature folder"
    option_defaults: ClassVar[dict[str, Any]] = {"labels": None, "features_dir": None}
    option_types: ClassVar[dict[str, type]] = {"labels": Path, "features_dir": Path}

    @property
    def needs_data(self) -> bool:  # type: ignore[override]
        """No data folder is needed when both ``labels`` and ``features_dir`` are given."""
        return self.options["labels"] is None or self.options["features_dir"] is None

    def layout(self) -> str:
        return (
            "CSV layout: <root>/features/<id>.npy and <root>/labels.csv (columns id, score, split) "
            "or <root>/train.csv + <root>/test.csv (columns id, score)"
        )

    def read_labels(self, root: Path | None, split: str) -> ScoredIds:
        check_split(split)
        if self.options["labels"] is not None:
            path = Path(self.options["labels"])
            if not path.is_file():
                raise DataError(f"{path}: label file not found (labels option; columns id, score, split)")
            return self._from_split_column(read_csv_table(path), split)
        base = self._root(root)
        combined = base / "labels.csv"
        if combined.is_file():
            table = read_csv_table(combined)
            if _has_column(table, "split"):
                return self._from_split_column(table, split)
            raise DataError(
                f"{combined}: has no 'split' column (columns: {', '.join(table.header or [])}); "
                f"add one (train/test) or use train.csv and test.csv"
            )
        path = base / f"{split}.csv"
        if not path.is_file():
            raise DataError(f"expected {combined} or {path} ({self.layout()})")
        table = read_csv_table(path)
        return scored_ids(table, table.column("id"), table.column("score"))

    @staticmethod
    def _from_split_column(table: LabelTable, split: str) -> ScoredIds:
        split_col = table.column("split")
        keep = []
        for row, line in zip(table.rows, table.lines):
            value = row[split_col].lower()
            if value not in SPLITS:
                raise DataError(
                    f"{table.name} line {line}: split '{row[split_col]}' is not one of {', '.join(SPLITS)}"
                )
            keep.append(value == split)
        if not any(keep):
            raise DataError(f"{table.name}: no rows with split '{split}'")
        return scored_ids(table, table.column("id"), table.column("score"), keep=keep)


def _has_column(table: LabelTable, name: str) -> bool:
    return table.header is not None and name.casefold() in (c.casefold() for c in table.header)


class DivingPickles(FileBenchmark):
    """A diving benchmark labelled by pickles: an annotation dict and one list of keys per split.

    The annotation file maps a ``(video, clip)`` key to that dive's annotation, from which
    :meth:`final_and_difficulty` takes the judged score and the degree of difficulty; each split
    file is a list of keys. The pickles are read without running code (only plain data and numpy
    arrays may be built). Score types: ``final`` (the judged score, as AQA papers report it),
    ``execution`` (final / difficulty, rounded to 6 decimals) and ``difficulty``; every video also
    carries its ``difficulty`` in ``extras`` (the key pair models group exemplars by:
    ``model.args.exemplar_key=difficulty``, as CoRe and TPT pair dives). Feature files
    are named by the ``id_format`` option from the key's ``{video}`` and ``{clip}``.
    Subclasses set the file names, the default ``id_format`` and :meth:`final_and_difficulty`.
    """

    ANNOTATION_FILE: ClassVar[str]
    SPLIT_FILES: ClassVar[dict[str, str]]
    SCORE_TYPES: ClassVar[tuple[str, ...]] = ("final", "execution", "difficulty")
    title: ClassVar[str]  # e.g. "MTL-AQA diving", for messages and the description
    option_defaults: ClassVar[dict[str, Any]] = {
        "score_type": "final", "id_format": "{video}_{clip}", "features_dir": None,
    }
    option_types: ClassVar[dict[str, type]] = {"features_dir": Path}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        score_type = str(self.options["score_type"]).lower()
        if score_type not in self.SCORE_TYPES:
            raise ConfigError(f"{self.title} score_type '{score_type}' unknown (valid: {', '.join(self.SCORE_TYPES)})")
        self.options["score_type"] = self.score_type = score_type
        if score_type != self.option_defaults["score_type"]:
            self.name = f"{self.name}-{score_type}"
        try:
            self.options["id_format"].format(video=1, clip=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"{self.title} id_format {self.options['id_format']!r} must use only {{video}} and {{clip}} ({exc})"
            ) from None
        self.description = f"{self.title}, {score_type} score"

    def score_variants(self) -> list[FileBenchmark]:
        return [self] + [type(self)(**{**self.options, "score_type": other})
                         for other in self.SCORE_TYPES if other != self.score_type]

    @abstractmethod
    def final_and_difficulty(self, annotation: Any) -> tuple[float, float]:
        """The judged score and the degree of difficulty of one annotation.

        Raises:
                KeyError, IndexError, TypeError or ValueError: the annotation lacks them.
        """

    def layout(self) -> str:
        splits = ", ".join(f"<root>/{name}" for name in self.SPLIT_FILES.values())
        features = f"<root>/features/<{self.options['id_format']}>.npy"
        return f"{self.title} layout: <root>/{self.ANNOTATION_FILE}, {splits}, {features}"

    def read_labels(self, root: Path | None, split: str) -> ScoredIds:
        check_split(split)
        annotation_path = self._label_file(root, self.ANNOTATION_FILE)
        split_path = self._label_file(root, self.SPLIT_FILES[split])
        annotations, keys = read_label_pickle(annotation_path), read_label_pickle(split_path)
        if not isinstance(annotations, dict):
            raise DataError(f"{annotation_path}: expected a dict of (video, clip) -> annotation")
        if not isinstance(keys, (list, tuple)) or not keys:
            raise DataError(f"{split_path}: expected a non-empty list of (video, clip) keys")
        ids, scores, difficulties, extras = [], [], [], []
        for entry, key in enumerate(keys, start=1):
            where = f"{split_path} entry {entry}"
            if not (isinstance(key, tuple) and len(key) == 2) or key not in annotations:
                raise DataError(f"{where}: key {key!r} is not a (video, clip) key of {self.ANNOTATION_FILE}")
            ids.append(self.options["id_format"].format(video=key[0], clip=key[1]))
            score, difficulty = self._score(annotations[key], where)
            scores.append(score)
            difficulties.append(difficulty)
            extras.append(self.annotation_extras(annotations[key], f"{annotation_path} key {key!r}"))
        source, entries = f"{split_path} (a pickle: 'line' N is its entry N)", list(range(1, len(ids) + 1))
        check_unique_ids(ids, entries, source)
        stacked = {name: np.stack([row[name] for row in extras]) for name in (extras[0] if extras else {})}
        return ScoredIds(ids=ids, scores=np.asarray(scores, dtype=np.float64), lines=entries, source=source,
                         extras={"difficulty": np.asarray(difficulties, dtype=np.float64), **stacked})

    def annotation_extras(self, annotation: Any, where: str) -> dict[str, np.ndarray]:
        """Per-video extras beyond the difficulty that one annotation gives (none by default); each
        value has the same shape for every video. Raises a DataError naming ``where``."""
        return {}

    def _score(self, annotation: Any, where: str) -> tuple[float, float]:
        """The ``score_type`` score of one annotation and its difficulty; DataError naming ``where``
        if it has none."""
        try:
            final, difficulty = (float(value) for value in self.final_and_difficulty(annotation))
        except (KeyError, IndexError, TypeError, ValueError):
            raise DataError(f"{where}: its annotation has no numeric final score and difficulty") from None
        score = {"final": final, "difficulty": difficulty,
                 "execution": round(final / difficulty, 6) if difficulty else math.nan}[self.score_type]
        if not math.isfinite(score):
            raise DataError(f"{where}: {self.score_type} score is {score} (final {final}, difficulty {difficulty})")
        return score, difficulty


class MtlAqa(DivingPickles):
    """MTL-AQA diving (Parmar & Morris, CVPR 2019): 1412 dives of 16 events, official split 0.

    ``annotations.pkl`` maps ``(video, clip)`` to a dict with ``final_score``, ``difficulty`` and
    the seven ``judge_scores``; ``train_split_0.pkl`` and ``test_split_0.pkl`` list the keys of
    each split. ``execution`` is the middle three judge scores' sum except for 27 dives whose final
    score differs from it (e.g. penalties). Feature files are ``{video:02d}_{clip:02d}.npy``
    (``01_01.npy``) by default, the naming of the released frame folders.
    """

    family = "mtl-aqa"
    name = "mtl-aqa"
    title = "MTL-AQA diving"
    ANNOTATION_FILE = "annotations.pkl"
    SPLIT_FILES: ClassVar[dict[str, str]] = {"train": "train_split_0.pkl", "test": "test_split_0.pkl"}
    option_defaults: ClassVar[dict[str, Any]] = {**DivingPickles.option_defaults, "id_format": "{video:02d}_{clip:02d}"}

    def final_and_difficulty(self, annotation: Any) -> tuple[float, float]:
        return annotation["final_score"], annotation["difficulty"]


class FineDiving(DivingPickles):
    """FineDiving (Xu et al., CVPR 2022): 3000 dives of 52 action types, official 2251 / 749 split.

    ``fine-grained_annotation_aqa.pkl`` maps ``(competition, clip)`` (a folder name and a number)
    to a list ``[dive_number, final_score, difficulty, step_transitions, frame_labels]``;
    ``train_split.pkl`` and ``test_split.pkl`` list the keys. Checked against the released files
    (docs/reference/data.md, "FineDiving"). Besides ``difficulty`` the extras hold ``dive_number``
    (str), ``n_frames``, ``frame_labels`` (N, MAX_FRAMES) sub-action ids padded with -1,
    ``step_transitions`` (N, 4) the annotated transition frames padded with -1 (2 to 4 per dive),
    ``transitions_from_labels`` (whether the annotated ones were unusable and were read off the
    frame labels instead: 7 dives of the release) and, once features are read, ``transition_clips``
    (N, 2): the first and last transition on the clip grid, which cut a dive into take-off, flight
    and entry (:mod:`aqakit.data.stages`). With ``foreground=true`` the features are
    ``[features/<id>.npy | foreground/<id>.npy]`` (:func:`~aqakit.data.features.with_foreground`).
    Feature files are ``{video}_{clip}.npy`` by default (``FINADivingWorldCup2021_Men3m_final_r1_0.npy``).
    """

    family = "finediving"
    name = "finediving"
    title = "FineDiving"
    ANNOTATION_FILE = "fine-grained_annotation_aqa.pkl"
    SPLIT_FILES: ClassVar[dict[str, str]] = {"train": "train_split.pkl", "test": "test_split.pkl"}
    option_defaults: ClassVar[dict[str, Any]] = {**DivingPickles.option_defaults, "foreground": False}
    #: The released annotation list, item by item.
    FIELDS: ClassVar[tuple[str, ...]] = ("dive_number", "final_score", "difficulty", "step_transitions", "frame_labels")
    #: Room for the longest released dive (273 frames) and its most transitions (4).
    MAX_FRAMES, MAX_TRANSITIONS = 320, 4

    def final_and_difficulty(self, annotation: Any) -> tuple[float, float]:
        if isinstance(annotation, (str, bytes, dict)):
            raise TypeError("a FineDiving annotation is a sequence")
        return annotation[1], annotation[2]

    def annotation_extras(self, annotation: Any, where: str) -> dict[str, np.ndarray]:
        expected = f"expected a list [{', '.join(self.FIELDS)}]"
        if isinstance(annotation, (str, bytes, dict)) or len(annotation) != len(self.FIELDS):
            raise DataError(f"{where}: unknown annotation layout ({type(annotation).__name__}; {expected})")
        dive_number, labels, annotated = annotation[0], np.asarray(annotation[4]), np.asarray(annotation[3])
        if not isinstance(dive_number, str) or labels.ndim != 1 or not 2 <= len(labels) <= self.MAX_FRAMES \
                or labels.dtype.kind not in "iu" or annotated.ndim != 1:
            raise DataError(f"{where}: unknown annotation layout ({expected} with a str, two numbers, "
                            f"a 1-D array and up to {self.MAX_FRAMES} integer frame labels)")
        from_labels = False
        try:
            transitions = check_transitions(annotated, len(labels), where)
        except DataError:  # the release has 7 such dives: -1, out-of-order or past-the-end frames
            transitions, from_labels = np.flatnonzero(labels[1:] != labels[:-1]), True
        if not 2 <= len(transitions) <= self.MAX_TRANSITIONS:
            raise DataError(f"{where}: step transitions {annotated.tolist()} and frame labels give "
                            f"{len(transitions)} transitions (expected 2 to {self.MAX_TRANSITIONS})")
        return {
            "dive_number": np.asarray(dive_number),
            "n_frames": np.asarray(len(labels), dtype=np.int64),
            "frame_labels": np.pad(labels.astype(np.int64), (0, self.MAX_FRAMES - len(labels)), constant_values=-1),
            "step_transitions": np.pad(transitions, (0, self.MAX_TRANSITIONS - len(transitions)), constant_values=-1),
            "transitions_from_labels": np.asarray(from_labels),
        }

    def layout(self) -> str:
        foreground = f", <root>/foreground/<{self.options['id_format']}>.npy" if self.options["foreground"] else ""
        return super().layout() + foreground

    def read_features(self, feature_dir: Path, labels: ScoredIds) -> VideoSet:
        """The features (with the foreground stream if asked) and each dive's take-off / entry
        transitions on its clip grid, ``transition_clips`` (N, 2)."""
        videos = super().read_features(feature_dir, labels)
        if self.options["foreground"]:
            videos = with_foreground(videos, feature_dir.parent / "foreground")
        extras = videos.extras
        clips = []
        for i, (video_id, length) in enumerate(zip(videos.ids, videos.lengths)):
            frames = extras["step_transitions"][i]
            frames = frames[frames >= 0][[0, -1]]  # the first and the last: take-off | flight | entry
            clips.append(frames_to_clips(frames, int(extras["n_frames"][i]), int(length), f"video {video_id}"))
        extras[TRANSITION_CLIPS] = np.stack(clips)
        return videos


class SyntheticBenchmark(Benchmark):
    """Generated videos with planted procedure structure (see :mod:`aqakit.data.synthetic`).

    Train and test are drawn from different seeds (``[seed, 0]`` and ``[seed, 1]``) over the
    same structure, so a model that learns the structure on train generalises to test.
    ``length_concentration`` sets how equal the procedures' lengths are (8: similar; 1: uniformly
    random cuts, where only a model that reads the clips can tell where a procedure is).

    With ``scores_from=<benchmark>`` (``finediving``, ``mtl-aqa``, ``fisv-pcs``, any benchmark read
    from label files; also named ``synthetic-<benchmark>``) each split has the size and the scores
    of that benchmark's real split, read by its label reader from the data folder (no features
    needed): the generated videos are ranked by their generated score (the planted oracle plus
    judge noise) and the k-th lowest gets the split's k-th lowest real score. The planted
    structure then orders the videos as before while the scores follow the real distribution
    exactly (its skew, range and ties). The extras keep ``oracle_score`` on the generator's
    scale and add ``generated_score``, the score before the mapping.
    """

    family = "synthetic"
    description = "synthetic videos with planted procedure qualities (no files needed)"
    option_defaults: ClassVar[dict[str, Any]] = {
        "n_train": 800,
        "n_test": 200,
        "dim": 64,
        "seed": 0,
        "min_clips": 20,
        "max_clips": 60,
        "n_procedures": 4,
        "noise": 0.03,
        "length_concentration": 8.0,
        "scores_from": None,
    }
    option_types: ClassVar[dict[str, type]] = {"scores_from": str}

    def __init__(self, **options: Any) -> None:
        self.name = "synthetic"
        super().__init__(**options)
        self.score_source: FileBenchmark | None = None
        if self.options["scores_from"] is None:
            return
        given_sizes = sorted(k for k in ("n_train", "n_test") if options.get(k) is not None)
        if given_sizes:
            raise ConfigError(
                f"benchmark 'synthetic': {', '.join(given_sizes)} cannot be set with scores_from "
                f"(the splits have the sizes of {self.options['scores_from']}'s)"
            )
        source = get_benchmark(self.options["scores_from"])
        if not isinstance(source, FileBenchmark):
            raise ConfigError(
                f"benchmark 'synthetic': scores_from={self.options['scores_from']!r} must be a benchmark "
                "read from label files (e.g. finediving, mtl-aqa, fisv-pcs)"
            )
        self.score_source = source
        self.name = f"synthetic-{source.name}"
        self.description = f"synthetic videos with the real split sizes and scores of {source.name} (its label files)"

    @property
    def needs_data(self) -> bool:  # type: ignore[override]
        """Only ``scores_from`` needs a data folder: the other benchmark's labels."""
        return self.score_source is not None

    @property
    def data_family(self) -> str:
        return self.family if self.score_source is None else self.score_source.data_family

    def layout(self) -> str:
        if self.score_source is None:
            return super().layout()
        return f"the label files of {self.score_source.name} (no features): {self.score_source.layout()}"

    def load(self, root: Path | None, split: str) -> VideoSet:
        check_split(split)
        o = self.options
        real = None
        if self.score_source is not None:
            try:
                real = self.score_source.read_labels(root, split)
            except DataError as exc:
                raise DataError(f"{self.name} takes its scores from {self.score_source.name}: {exc}") from None
        n_videos = len(real.scores) if real is not None else (o["n_train"] if split == "train" else o["n_test"])
        videos = make_synthetic(
            n_videos,
            dim=o["dim"],
            min_clips=o["min_clips"],
            max_clips=o["max_clips"],
            n_procedures=o["n_procedures"],
            noise=o["noise"],
            length_concentration=o["length_concentration"],
            seed=[o["seed"], SPLITS.index(split)],
            source=f"synthetic/{split}",
            id_prefix=f"{split}-",
        )
        if real is None:
            return videos
        generated = videos.scores
        scores = np.empty_like(generated)
        scores[np.argsort(generated, kind="stable")] = np.sort(real.scores)
        return VideoSet(
            ids=videos.ids, features=videos.features, scores=scores,
            source=f"synthetic/{split} with the scores of {real.source}, by rank",
            extras={**videos.extras, "generated_score": generated},
        )


class ConfoundedSyntheticBenchmark(Benchmark):
    """Two-stream synthetic videos whose background tracks the score in training and not at test
    (:mod:`aqakit.data.confounded`): train is confounded, test broken. Features are ``[O | F]``."""

    name = "synthetic-confounded"
    family = "synthetic"
    needs_data = False
    description = "synthetic two-stream videos (whole frame | foreground), background confounded in train only"
    option_defaults: ClassVar[dict[str, Any]] = {
        "n_train": 200, "n_test": 200, "dim": 16, "seed": 0, "rho": 0.9, "min_clips": 12, "max_clips": 24,
    }

    def load(self, root: Path | None, split: str) -> VideoSet:
        check_split(split)
        o = self.options
        return make_confounded(
            o["n_train"] if split == "train" else o["n_test"], confounded=split == "train", dim=o["dim"],
            min_clips=o["min_clips"], max_clips=o["max_clips"], rho=o["rho"], seed=[o["seed"], SPLITS.index(split)],
            id_prefix=f"{split}-",
        )


class TransformedBenchmark(Benchmark):
    """A benchmark whose videos pass through a :class:`~aqakit.data.transforms.Transform`.

    :func:`get_benchmark` builds one when the options ``transform`` (and ``transform_seed``) are
    given; it answers as the benchmark it wraps (name, family, presets, data folder) and adds the
    transform to the options and to every set's ``source``. Loading the test split of a
    transform that fits on train (``pca``) reads and transforms the training split first; that
    fit is kept per data folder, so a run's train and test loads read the training split once.
    """

    def __init__(self, base: Benchmark, transform: Any, transform_seed: Any = None) -> None:
        seed = 0 if transform_seed is None else _coerce(base.name, "transform_seed", transform_seed, int)
        self.base = base
        self.transform = Transform(transform, seed, where=f"benchmark '{base.name}': transform")
        self.name, self.family = base.name, base.family
        self.description = f"{base.description}, transformed: {self.transform.spec}"
        self.option_types = base.option_types
        self.options = {**base.options, "transform": self.transform.spec, "transform_seed": seed}
        self._fits: dict[str | None, tuple[VideoSet, list]] = {}

    @property
    def needs_data(self) -> bool:  # type: ignore[override]
        return self.base.needs_data

    @property
    def data_family(self) -> str:
        return self.base.data_family

    @property
    def official_folds(self) -> tuple[int, ...]:
        return self.base.official_folds

    def layout(self) -> str:
        return self.base.layout()

    def score_scale(self, train: VideoSet) -> ScoreScale:
        return self.base.score_scale(train)

    def load(self, root: Path | None, split: str) -> VideoSet:
        check_split(split)
        if split == "train":
            return self._fitted(root)[0]
        test = self.base.load(root, split)
        return self.transform.apply(test, self._fitted(root)[1] if self.transform.needs_train else None)

    def _fitted(self, root: Path | None) -> tuple[VideoSet, list]:
        key = None if root is None else str(Path(root).resolve())
        if key not in self._fits:
            self._fits[key] = self.transform.fit(self.base.load(root, "train"))
        return self._fits[key]


# ---------------------------------------------------------------------------------------------
# Registry

_REGISTRY: dict[str, Callable[..., Benchmark]] = {
    "fisv-tes": partial(FisV, "tes"),
    "fisv-pcs": partial(FisV, "pcs"),
    **{f"rg-{a}": partial(RhythmicGymnastics, a) for a in RhythmicGymnastics.APPARATUS},
    "mtl-aqa": MtlAqa,
    "finediving": FineDiving,
    "csv": CsvBenchmark,
    "synthetic": SyntheticBenchmark,
    "synthetic-confounded": ConfoundedSyntheticBenchmark,
}


def register_benchmark(name: str, factory: Callable[..., Benchmark]) -> None:
    """Add a benchmark: ``factory(**options)`` must return a :class:`Benchmark`."""
    if name in _REGISTRY:
        raise ConfigError(f"benchmark '{name}' is already registered")
    _REGISTRY[name] = factory


def get_benchmark(name: str, **options: Any) -> Benchmark:
    """Build the benchmark called ``name`` with ``options``.

    Besides the registered names, a score-type suffix selects a score type:
    ``rg-<apparatus>-<score_type>`` (``rg-ball-execution`` is ``rg-ball`` with
    ``score_type='execution'``), ``mtl-aqa-<score_type>`` and ``finediving-<score_type>``;
    ``synthetic-<benchmark>`` is ``synthetic`` with ``scores_from='<benchmark>'``.
    The options ``transform`` and ``transform_seed`` (any benchmark) wrap it in a
    :class:`TransformedBenchmark`.

    Raises:
        ConfigError: unknown name (the message lists the available ones) or unknown/invalid option.
    """
    transform, transform_seed = (options.pop(key, None) for key in TRANSFORM_OPTIONS)
    benchmark = _untransformed_benchmark(name, options)
    if transform is None:
        if transform_seed is not None:
            raise ConfigError(f"benchmark '{name}': transform_seed={transform_seed!r} has no effect without a transform")
        return benchmark
    return TransformedBenchmark(benchmark, transform, transform_seed)


def _untransformed_benchmark(name: str, options: dict[str, Any]) -> Benchmark:
    key = name.strip().lower()
    if key in _REGISTRY:
        return _REGISTRY[key](**options)
    if key.startswith("synthetic-"):
        scores_from = key[len("synthetic-"):]
        if options.get("scores_from") is not None and str(options["scores_from"]).lower() != scores_from:
            raise ConfigError(
                f"benchmark '{name}' already takes its scores from '{scores_from}', "
                f"but scores_from='{options['scores_from']}' was given"
            )
        return SyntheticBenchmark(**{**options, "scores_from": scores_from})
    base, _, score_type = key.rpartition("-")
    parts = base.split("-")
    if len(parts) == 2 and parts[0] == "rg" and parts[1] in RhythmicGymnastics.APPARATUS and \
            score_type in RhythmicGymnastics.SCORE_COLUMNS:
        return RhythmicGymnastics(parts[1], **_with_score_type(name, options, score_type))
    diving = _REGISTRY.get(base)
    if isinstance(diving, type) and issubclass(diving, DivingPickles) and score_type in diving.SCORE_TYPES:
        return diving(**_with_score_type(name, options, score_type))
    raise ConfigError(
        f"unknown benchmark '{name}' (available: {', '.join(_REGISTRY)}, or rg-<apparatus>-<difficulty|execution>, "
        "mtl-aqa-<score type>, finediving-<score type>, synthetic-<benchmark>)"
    )


def _with_score_type(name: str, options: dict[str, Any], score_type: str) -> dict[str, Any]:
    """``options`` with ``score_type`` set from the benchmark's name; a different one given is a ConfigError."""
    if "score_type" in options and str(options["score_type"]).lower() != score_type:
        raise ConfigError(
            f"benchmark '{name}' already selects score type '{score_type}', "
            f"but score_type='{options['score_type']}' was given"
        )
    return {**options, "score_type": score_type}


def list_benchmarks() -> list[Benchmark]:
    """One instance (with default options) of every registered benchmark."""
    return [factory() for factory in _REGISTRY.values()]
