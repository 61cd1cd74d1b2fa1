"""Score a folder of clip features (``<video_id>.npy``, (T, D) each) with a trained checkpoint."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aqakit.atomic import atomic_open
from aqakit.data.features import load_videoset
from aqakit.errors import ConfigError
from aqakit.models.loading import find_checkpoint, load_checkpoint
from aqakit.pipeline.evaluate import training_exemplars
from aqakit.train.evaluate import predict_videos
from aqakit.video.manifest import read_manifest, with_legacy_settings


@dataclass
class FolderScores:
    """The predicted score (original scale) of every video of a feature folder, by id (sorted)."""

    checkpoint: Path
    ids: list[str]
    scores: np.ndarray

    def write_csv(self, path: Path) -> None:
        """Write ``id,score`` rows (six decimals) to ``path``."""
        with atomic_open(path, newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "score"])
            writer.writerows((vid, f"{score:.6f}") for vid, score in zip(self.ids, self.scores))


def check_backbone_revision(trained: dict[str, Any] | None, feature_dir: Path, checkpoint: Path) -> None:
    """ConfigError when ``feature_dir``'s manifest and the checkpoint's record name one backbone in two revisions."""
    manifest = read_manifest(feature_dir)
    if trained is None or manifest is None:
        return
    trained, given = with_legacy_settings(trained), manifest["extraction"]
    if trained.get("backbone") == given.get("backbone") and trained["backbone_revision"] != given["backbone_revision"]:
        raise ConfigError(
            f"{feature_dir}: {given['backbone']} features of backbone revision {given['backbone_revision']}, but {checkpoint} "
            f"was trained on revision {trained['backbone_revision']}; extract both with one aqakit version (aqakit extract --force)"
        )


def predict_folder(checkpoint: Path, feature_dir: Path) -> FolderScores:
    """Score every ``<video_id>.npy`` of ``feature_dir`` with ``checkpoint`` (a run, seed or checkpoint folder;
    a run of several seeds means its lowest seed). A pair model (TPT) scores each video against
    exemplars from the training split its run read (:func:`~aqakit.pipeline.evaluate.training_exemplars`).

    Raises:
        ConfigError: not a folder of features, none in it, or features of another backbone revision
        than the checkpoint's; DataError: a file that does not fit the model (named).
    """
    feature_dir = Path(feature_dir)
    if not feature_dir.is_dir():
        raise ConfigError(f"{feature_dir}: not a folder of .npy feature files")
    folder = find_checkpoint(checkpoint)
    model, meta = load_checkpoint(folder)
    check_backbone_revision(meta["info"].get("features"), feature_dir, folder)
    ids = sorted(path.stem for path in feature_dir.glob("*.npy") if not path.name.startswith("."))  # not a partial write
    if not ids:
        raise ConfigError(f"{feature_dir}: no .npy feature files found")
    videos = load_videoset(feature_dir, ids, np.zeros(len(ids)), source=str(feature_dir), expected_dim=model.in_dim)
    scores = predict_videos(model, videos, exemplars=training_exemplars(model, meta, folder))
    return FolderScores(checkpoint=folder, ids=ids, scores=scores)
