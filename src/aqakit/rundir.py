"""The run folder ``aqakit train`` writes, and the typed summaries in it.

Layout of ``runs/<name>/``::

    config.yaml            the resolved configuration (train.precision: auto saved as what it chose)
    data.json              per split its number of videos and a hash of ids and scores (checked on resume)
    summary.json           test (and validation) metrics over seeds: mean, std, per seed; labelled videos left out (allow_missing)
    seed-<k>/metrics.csv   one row per epoch: learning rate, loss terms, held-out metrics, seconds
    seed-<k>/predictions.csv  split, video id, true and predicted score (selected checkpoint)
    seed-<k>/summary.json  the seed's metrics, all from the selected checkpoint
    seed-<k>/checkpoint/   model.safetensors + model.json (the selected weights)
    seed-<k>/resume/last.ckpt  Lightning state to resume an interrupted seed
    report.html            the page `aqakit report` draws of the run (rewritten by each call)

:class:`RunDir` and :class:`SeedDir` know these paths and read and write these files;
:class:`RunSummary` and :class:`SeedSummary` are the two ``summary.json`` files. A cross-validated
run (``aqakit train --folds``) holds one such run folder per fold (:mod:`aqakit.crossval`). Nothing here
imports the training engine, so reading results stays light.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml

from aqakit import metrics
from aqakit.atomic import atomic_open, atomic_write_text
from aqakit.errors import DataError, RunDirectoryError

#: Says so wherever a figure was chosen on the test set.
BEST_TEST_NOTE = "chosen on the test set, as published papers do; not an honest estimate"
PREDICTION_COLUMNS = ("split", "id", "true_score", "predicted_score")


def read_json(path: Path) -> Any:
    """The JSON document at ``path``; DataError naming the file when it is not valid JSON."""
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from exc


@dataclass(frozen=True)
class SeedSummary:
    """A seed's ``summary.json``: its metrics, all from the selected checkpoint.

    ``val``/``test`` map metric names to values; ``timing`` is seconds per epoch and samples/s;
    ``closed_form_fit``, ``ensemble`` and ``exemplars`` are set for ridge, ensemble and pair-model runs. ``extra`` keeps the
    keys this version does not know, so a summary reads and writes back unchanged.
    """

    seed: int
    model: str | None = None
    benchmark: str | None = None
    selection: str | None = None
    selected_epoch: int | None = None
    epochs: int | None = None
    precision: str | None = None  # None: trained before summaries recorded it
    val: dict[str, float] | None = None
    test: dict[str, float] | None = None
    test_spearman_ci95: list[float] | None = None
    note: str | None = None
    best_test_epoch_spearman: dict[str, Any] | None = None  # {"epoch", "spearman", "note"}
    late_swing: dict[str, Any] | None = None  # aqakit.train.stability.late_swing
    timing: dict[str, float] | None = None
    closed_form_fit: dict[str, Any] | None = None
    ensemble: dict[str, Any] | None = None
    exemplars: dict[str, Any] | None = None  # pair models: how exemplars were drawn, the score intervals
    extra: dict[str, Any] = field(default_factory=dict)

    _ORDER = ("model", "benchmark", "seed", "selection", "selected_epoch", "epochs", "precision", "val", "test",
              "test_spearman_ci95", "note", "best_test_epoch_spearman", "late_swing", "timing", "closed_form_fit",
              "ensemble", "exemplars")

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: Path | str = "summary") -> "SeedSummary":
        """The summary in ``data`` (a parsed ``summary.json``); DataError naming ``source`` if it has no seed."""
        if not isinstance(data, Mapping) or "seed" not in data:
            raise DataError(f"{source}: no seed in it (not a seed summary written by aqakit train?)")
        known = {key: data[key] for key in cls._ORDER if key in data}
        return cls(**known, extra={key: value for key, value in data.items() if key not in cls._ORDER})

    def to_json(self) -> dict[str, Any]:
        """The summary as ``summary.json`` holds it (fields that are None are left out)."""
        fields = {key: getattr(self, key) for key in self._ORDER}
        return {**{key: value for key, value in fields.items() if value is not None}, **self.extra}


@dataclass(frozen=True)
class RunSummary:
    """A run's ``summary.json``: each held-out metric's mean and sample std over the seeds, and
    every seed's own summary (``per_seed``)."""

    model: str
    benchmark: str
    selection: str
    epochs: int
    seeds: list[int]
    per_seed: list[SeedSummary]
    note: str | None = None
    test: dict[str, dict[str, float]] | None = None  # metric -> {"mean", "std"}
    val: dict[str, dict[str, float]] | None = None
    unstable_seeds: list[int] | None = None
    best_test_epoch_spearman: dict[str, Any] | None = None  # {"mean", "std", "note"}
    left_out: dict[str, list[str]] | None = None  # split -> labelled videos without a feature file (allow_missing)
    extra: dict[str, Any] = field(default_factory=dict)

    _ORDER = ("model", "benchmark", "selection", "epochs", "seeds", "note", "left_out", "test", "val",
              "unstable_seeds", "best_test_epoch_spearman", "per_seed")

    @classmethod
    def of_seeds(
        cls, seed_summaries: Sequence[SeedSummary], left_out: dict[str, list[str]] | None = None
    ) -> "RunSummary":
        """Mean and sample standard deviation (ddof=1; 0 for one seed) of each held-out metric;
        ``left_out`` records the labelled videos the data lacked (split -> ids), when there are any."""
        first = seed_summaries[0]
        splits: dict[str, dict[str, dict[str, float]]] = {}
        for split in ("test", "val"):
            figures = getattr(first, split)
            if figures is not None:
                splits[split] = {
                    metric: metrics.mean_std([getattr(s, split)[metric] for s in seed_summaries]) for metric in figures
                }
        unstable = [s.seed for s in seed_summaries if (s.late_swing or {}).get("unstable")]
        best = None
        if first.best_test_epoch_spearman is not None:
            values = [s.best_test_epoch_spearman["spearman"] for s in seed_summaries]  # type: ignore[index]
            best = {**metrics.mean_std(values), "note": BEST_TEST_NOTE}
        return cls(
            model=first.model, benchmark=first.benchmark, selection=first.selection, epochs=first.epochs,  # type: ignore[arg-type]
            seeds=[s.seed for s in seed_summaries], per_seed=list(seed_summaries),
            note=f"selection best-test: {BEST_TEST_NOTE}" if first.selection == "best-test" else None,
            unstable_seeds=unstable or None, best_test_epoch_spearman=best, left_out=left_out or None, **splits,
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: Path | str = "summary") -> "RunSummary":
        """The summary in ``data`` (a parsed run ``summary.json``); DataError naming ``source`` and
        the first missing key."""
        if not isinstance(data, Mapping):
            raise DataError(f"{source}: not a run summary (not written by aqakit train?)")
        missing = [key for key in ("model", "benchmark", "selection", "epochs", "seeds", "per_seed") if key not in data]
        if missing:
            raise DataError(f"{source}: no {missing[0]} in it (not a run summary written by aqakit train?)")
        known = {key: data[key] for key in cls._ORDER if key in data}
        known["per_seed"] = [SeedSummary.from_json(s, f"{source} (per_seed)") for s in data["per_seed"]]
        return cls(**known, extra={key: value for key, value in data.items() if key not in cls._ORDER})

    def to_json(self) -> dict[str, Any]:
        """The summary as ``summary.json`` holds it (fields that are None are left out)."""
        fields: dict[str, Any] = {key: getattr(self, key) for key in self._ORDER}
        fields["per_seed"] = [s.to_json() for s in self.per_seed]
        return {**{key: value for key, value in fields.items() if value is not None}, **self.extra}


@dataclass(frozen=True)
class SeedDir:
    """One seed's folder ``seed-<k>`` of a run: its history, predictions, summary and checkpoints."""

    path: Path

    @property
    def seed(self) -> int:
        """The seed number in the folder's name; DataError for a folder not named ``seed-<number>``."""
        suffix = self.path.name.removeprefix(RunDir.SEED_PREFIX)
        if not suffix.isdigit():
            raise DataError(f"{self.path}: seed folders are named seed-<number>")
        return int(suffix)

    @property
    def metrics_path(self) -> Path:
        return self.path / RunDir.METRICS_FILE

    @property
    def predictions_path(self) -> Path:
        return self.path / RunDir.PREDICTIONS_FILE

    @property
    def summary_path(self) -> Path:
        return self.path / RunDir.SUMMARY_FILE

    @property
    def checkpoint_dir(self) -> Path:
        """Where the selected weights are saved (``model.safetensors`` + ``model.json``)."""
        return self.path / RunDir.CHECKPOINT_DIR

    @property
    def resume_dir(self) -> Path:
        """Where Lightning's state for resuming an interrupted seed is saved (``last.ckpt``)."""
        return self.path / RunDir.RESUME_DIR

    @property
    def resume_checkpoint(self) -> Path:
        return self.resume_dir / RunDir.RESUME_CHECKPOINT

    @property
    def finished(self) -> bool:
        """Whether the seed finished (its summary is written)."""
        return self.summary_path.is_file()

    def read_summary(self) -> SeedSummary:
        return SeedSummary.from_json(read_json(self.summary_path), self.summary_path)

    def write_summary(self, summary: SeedSummary) -> None:
        atomic_write_text(self.summary_path, json.dumps(summary.to_json(), indent=2))

    def read_history(self) -> list[dict[str, float]]:
        """``metrics.csv`` as rows of numbers ([] when it is missing); empty cells are NaN."""
        if not self.metrics_path.is_file():
            return []
        with open(self.metrics_path, newline="") as handle:
            return [{key: float(value) if value not in ("", None) else math.nan for key, value in row.items()}
                    for row in csv.DictReader(handle)]

    def write_history(self, rows: Sequence[Mapping[str, float]]) -> None:
        """Rewrite ``metrics.csv`` with ``rows`` (one per epoch); the columns are every key, first seen first."""
        columns = list(dict.fromkeys(key for row in rows for key in row))
        with atomic_open(self.metrics_path, newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)

    def write_predictions(self, rows: Iterable[tuple[str, str, float, float]]) -> None:
        """Write ``predictions.csv``: (split, video id, true score, predicted score) rows."""
        with atomic_open(self.predictions_path, newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(PREDICTION_COLUMNS)
            writer.writerows(rows)

    def read_test_predictions(self) -> dict[str, tuple[float, float]]:
        """id -> (true, predicted) of the test rows of ``predictions.csv``; DataError naming the
        file (and line) when it is missing, malformed, or has fewer than the 2 videos a Spearman needs."""
        path = self.predictions_path
        if not path.is_file():
            raise DataError(f"{path}: missing (the seed finished without writing its predictions?)")
        rows: dict[str, tuple[float, float]] = {}
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            missing = set(PREDICTION_COLUMNS) - set(reader.fieldnames or ())
            if missing:
                raise DataError(f"{path}: no column {', '.join(sorted(missing))} (not written by aqakit train?)")
            for line, row in enumerate(reader, start=2):
                if row["split"] != "test":
                    continue
                if row["id"] in rows:
                    raise DataError(f"{path}, line {line}: test video {row['id']!r} appears twice")
                try:
                    rows[row["id"]] = (float(row["true_score"]), float(row["predicted_score"]))
                except ValueError as exc:
                    raise DataError(f"{path}, line {line}: {exc}") from exc
        if len(rows) < 2:
            raise DataError(f"{path}: {len(rows)} test video(s); a Spearman needs at least 2")
        return rows


def check_folder_use(folder: Path, marker: str, *, overwrite: bool, resume: bool) -> bool:
    """RunDirectoryError unless ``folder`` may be trained into as asked; True when an existing run is
    to be replaced (``overwrite``). A run is recognised by its ``marker`` file (``config.yaml``).
    Changes nothing on disk; see :meth:`RunDir.check_use`."""
    is_run = (folder / marker).is_file()
    if folder.exists() and any(folder.iterdir()):
        if resume:
            if not is_run:
                raise RunDirectoryError(f"{folder}: cannot resume, it holds no {marker}")
            return False
        if not overwrite:
            raise RunDirectoryError(f"{folder} already exists; pass --overwrite to replace it or --resume to continue it")
        if not is_run:
            raise RunDirectoryError(f"{folder} is not an aqakit run (no {marker}); refusing to delete it")
        return True
    if resume:
        raise RunDirectoryError(f"{folder}: nothing to resume")
    return False


class RunDir:
    """A run folder of ``aqakit train`` (see the module's layout): its configuration, data
    fingerprint, seeds and summaries, and the rules for training into it."""

    CONFIG_FILE = "config.yaml"
    DATA_FILE = "data.json"
    SUMMARY_FILE = "summary.json"
    METRICS_FILE = "metrics.csv"
    PREDICTIONS_FILE = "predictions.csv"
    REPORT_FILE = "report.html"
    CHECKPOINT_DIR = "checkpoint"
    RESUME_DIR = "resume"
    RESUME_CHECKPOINT = "last.ckpt"
    SEED_PREFIX = "seed-"

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunDir) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    @classmethod
    def holding(cls, path: Path | str) -> "RunDir | None":
        """The run folder that ``path`` (a run, seed or checkpoint folder or file) lies in, or None."""
        path = Path(path)
        return next((cls(folder) for folder in (path, *path.parents) if cls(folder).is_run), None)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / self.CONFIG_FILE

    @property
    def data_path(self) -> Path:
        return self.path / self.DATA_FILE

    @property
    def summary_path(self) -> Path:
        return self.path / self.SUMMARY_FILE

    @property
    def is_run(self) -> bool:
        """Whether the folder is an aqakit run (it holds a ``config.yaml``)."""
        return self.config_path.is_file()

    @property
    def finished(self) -> bool:
        """Whether every seed finished (the run's summary is written)."""
        return self.summary_path.is_file()

    # --- seeds --------------------------------------------------------------------------------
    def seed(self, seed: int) -> SeedDir:
        """The folder of seed ``seed`` (it may not exist yet)."""
        return SeedDir(self.path / f"{self.SEED_PREFIX}{seed}")

    def seed_dirs(self) -> list[SeedDir]:
        """The seed folders present, in seed order; DataError names one not called ``seed-<number>``."""
        found = [SeedDir(path) for path in self.path.glob(f"{self.SEED_PREFIX}*")]
        return sorted(found, key=lambda seed_dir: seed_dir.seed)

    # --- configuration, data, summary ---------------------------------------------------------
    def read_config(self) -> dict[str, Any]:
        """The saved ``config.yaml`` as a mapping; DataError if it is missing or not a mapping."""
        if not self.is_run:
            raise DataError(f"{self.path}: not an aqakit run directory (no {self.CONFIG_FILE})")
        config = yaml.safe_load(self.config_path.read_text()) or {}
        if not isinstance(config, dict):
            raise DataError(f"{self.config_path}: not a mapping of settings (not written by aqakit train?)")
        return config

    def write_config(self, config: Mapping[str, Any]) -> None:
        """Write ``config.yaml`` (``config`` as plain data, in its own key order)."""
        atomic_write_text(self.config_path, yaml.safe_dump(dict(config), sort_keys=False))

    def write_data_fingerprint(self, fingerprint: Mapping[str, Any]) -> None:
        """Write ``data.json``: per split its number of videos and the hash of its ids and scores."""
        atomic_write_text(self.data_path, json.dumps(fingerprint, indent=2))

    def read_summary(self) -> RunSummary:
        return RunSummary.from_json(read_json(self.summary_path), self.summary_path)

    def write_summary(self, summary: RunSummary) -> None:
        atomic_write_text(self.summary_path, json.dumps(summary.to_json(), indent=2))

    # --- the rules for training into it -------------------------------------------------------
    def check_use(self, overwrite: bool = False, resume: bool = False) -> bool:
        """RunDirectoryError unless the folder may be trained into as asked; True when an existing
        run is to be replaced (``overwrite``). Changes nothing on disk.

        A non-empty folder is used only to ``resume`` it (it must be a run) or, with ``overwrite``,
        to replace it when it is recognisably an aqakit run.
        """
        return check_folder_use(self.path, self.CONFIG_FILE, overwrite=overwrite, resume=resume)

    def check_same_data(self, fingerprint: Mapping[str, Any]) -> None:
        """RunDirectoryError when the recorded data fingerprint differs from ``fingerprint`` (the
        data a resume would train on); runs saved before fingerprints were recorded are not checked."""
        path = self.data_path
        if not path.is_file():
            return
        saved = read_json(path)
        changed = []
        for split, current in fingerprint.items():
            before = saved.get(split)
            if before != current:
                then_n, now_n = (record["videos"] if record else "no" for record in (before, current))
                changed.append(f"{split}: {then_n} videos then, {now_n} now" + (", other ids or scores" if then_n == now_n else ""))
        if changed:
            raise RunDirectoryError(
                f"{path}: cannot resume, the labels differ from those its seeds were trained on ({'; '.join(changed)}); "
                "train a new run (another --name)"
            )
