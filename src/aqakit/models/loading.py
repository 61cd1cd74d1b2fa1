"""Model checkpoints as ``model.safetensors`` (weights) + ``model.json`` (how to rebuild it).

No pickle is involved: loading a checkpoint never executes code from the file. The JSON
side records the model name and hyper-parameters (its config's fields), the input feature
dimension, the score scale of the training data and where the model came from (benchmark,
seed, selected epoch).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

import aqakit
from aqakit.data.scale import ScoreScale
from aqakit.errors import AqakitError, RunDirectoryError
from aqakit.models.base import AQAModel
from aqakit.models.registry import create_model
from aqakit.rundir import RunDir

WEIGHTS_FILE = "model.safetensors"
META_FILE = "model.json"


def save_checkpoint(model: AQAModel, folder: str | Path, info: dict[str, Any] | None = None) -> Path:
    """Write ``model`` into ``folder`` (created if needed); returns the weights path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE))
    meta = {
        "aqakit_version": aqakit.__version__,
        "model": model.name,
        "in_dim": model.in_dim,
        "score_scale": model.score_scale.to_dict(),
        "hparams": model.hparams,
        "info": info or {},
    }
    (folder / META_FILE).write_text(json.dumps(meta, indent=2))
    return folder / WEIGHTS_FILE


def find_checkpoint(path: str | Path) -> Path:
    """The folder holding a checkpoint, given that folder, its weights file, a seed folder or a run.

    A multi-seed run holds one checkpoint per seed; pointing at the run picks ``seed-0``.
    """
    path = Path(path)
    if path.is_file() and path.name in (WEIGHTS_FILE, META_FILE):
        path = path.parent
    run = RunDir(path)
    for candidate in (path, path / run.CHECKPOINT_DIR, *(seed.checkpoint_dir for seed in run.seed_dirs())):
        if (candidate / WEIGHTS_FILE).is_file() and (candidate / META_FILE).is_file():
            return candidate
    raise RunDirectoryError(f"{path}: no checkpoint found (expected {WEIGHTS_FILE} and {META_FILE})")


def load_checkpoint(path: str | Path, map_location: str = "cpu") -> tuple[AQAModel, dict[str, Any]]:
    """Rebuild the model saved at ``path`` (see :func:`find_checkpoint`) in eval mode, with its metadata."""
    folder = find_checkpoint(path)
    try:
        meta = json.loads((folder / META_FILE).read_text())
        model = create_model(
            meta["model"], in_dim=meta["in_dim"], score_scale=ScoreScale(**meta["score_scale"]), **meta["hparams"]
        )
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise RunDirectoryError(f"{folder / META_FILE}: not a valid aqakit checkpoint description ({exc})") from None
    try:
        state = load_file(str(folder / WEIGHTS_FILE), device=map_location)
        model.load_state_dict(state)
    except (OSError, RuntimeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AqakitError(f"{folder / WEIGHTS_FILE}: cannot load weights ({first_line})") from None
    return model.eval(), meta


def load_model(run_or_checkpoint: str | Path, map_location: str = "cpu") -> AQAModel:
    """The trained model of a run folder (its ``seed-0`` checkpoint), a seed folder or a checkpoint, in eval mode."""
    model, _ = load_checkpoint(run_or_checkpoint, map_location)
    return model
