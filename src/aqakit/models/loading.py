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

from safetensors import SafetensorError
from safetensors.torch import load_file, save

import aqakit
from aqakit.atomic import recover_folder, replace_folder
from aqakit.data.scale import ScoreScale
from aqakit.errors import AqakitError, RunDirectoryError, one_line_reason
from aqakit.models.base import AQAModel
from aqakit.models.registry import create_model
from aqakit.rundir import RunDir

WEIGHTS_FILE = "model.safetensors"
META_FILE = "model.json"


def save_checkpoint(model: AQAModel, folder: str | Path, info: dict[str, Any] | None = None) -> Path:
    """Write ``model`` into ``folder`` (created if needed); returns the weights path."""
    folder = Path(folder)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {
        "aqakit_version": aqakit.__version__,
        "model": model.name,
        "in_dim": model.in_dim,
        "score_scale": model.score_scale.to_dict(),
        "hparams": model.hparams,
        "info": info or {},
    }

    def write(new_folder: Path) -> None:
        (new_folder / WEIGHTS_FILE).write_bytes(save(state))  # a full disk is an OSError here, with its errno
        (new_folder / META_FILE).write_text(json.dumps(meta, indent=2))

    folder.parent.mkdir(parents=True, exist_ok=True)
    replace_folder(folder, write)  # weights and description replaced together, never half
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
        recover_folder(candidate)  # a save that stopped between its two renames
        if (candidate / WEIGHTS_FILE).is_file() and (candidate / META_FILE).is_file():
            return candidate
    raise RunDirectoryError(f"{path}: no checkpoint found (expected {WEIGHTS_FILE} and {META_FILE})")


def find_checkpoints(path: str | Path) -> list[Path]:
    """Every finished seed's checkpoint folder of a run, in seed order; for any other ``path``
    (a seed, a checkpoint, a run with no finished seed) the one :func:`find_checkpoint` finds."""
    finished = [seed for seed in RunDir(path).seed_dirs() if seed.finished]
    if finished:
        return [find_checkpoint(seed.path) for seed in finished]
    return [find_checkpoint(path)]


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
    except (OSError, SafetensorError) as exc:
        raise AqakitError(f"{folder / WEIGHTS_FILE}: cannot load weights ({one_line_reason(exc)})") from None
    mismatch = state_mismatch(model.state_dict(), state)
    if mismatch:
        raise AqakitError(f"{folder / WEIGHTS_FILE}: cannot load weights into the {meta['model']} that "
                          f"{META_FILE} describes ({mismatch})")
    model.load_state_dict(state)
    return model.eval(), meta


def state_mismatch(expected: dict[str, Any], found: dict[str, Any]) -> str | None:
    """What keeps weights ``found`` from loading into a model whose state dict is ``expected``
    (missing or unexpected tensors, the first shape that differs); None when they fit."""
    missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing or unexpected:
        parts = [f"{len(names)} {kind} tensor(s), e.g. {names[0]}"
                 for kind, names in (("missing", missing), ("unexpected", unexpected)) if names]
        return "; ".join(parts)
    for name, tensor in expected.items():
        if tuple(found[name].shape) != tuple(tensor.shape):
            return f"{name} has shape {tuple(found[name].shape)}, the model needs {tuple(tensor.shape)}"
    return None


def load_model(run_or_checkpoint: str | Path, map_location: str = "cpu") -> AQAModel:
    """The trained model of a run folder (its ``seed-0`` checkpoint), a seed folder or a checkpoint, in eval mode."""
    model, _ = load_checkpoint(run_or_checkpoint, map_location)
    return model
