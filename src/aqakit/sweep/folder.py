"""The sweep folder: ``sweep.yaml`` (the checked spec), ``trials/<name>/`` (one run folder per
trial), ``summary.md`` / ``summary.json``, and ``ray/`` (Ray Tune's own records, not read back).

A folder holding a sweep is never trained into again unless ``--resume`` asks, and then only by
the same spec; a folder holding anything else is refused.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from aqakit.atomic import atomic_write_text
from aqakit.errors import RunDirectoryError
from aqakit.sweep.spec import SweepSpec

SPEC_FILE = "sweep.yaml"
RAY_FOLDER = "ray"


def prepare_sweep_folder(folder: Path, spec: SweepSpec, *, resume: bool) -> None:
    """Check that ``folder`` may take the sweep ``spec`` (RunDirectoryError otherwise) and save the spec.

    Without ``resume`` the folder must be new or empty; with it, it must hold a sweep of the same spec.
    """
    folder = Path(folder)
    saved_path = folder / SPEC_FILE
    if saved_path.is_file():
        if not resume:
            raise RunDirectoryError(f"{folder} already holds a sweep; pass --resume to continue it, or choose another --out")
        saved = yaml.safe_load(saved_path.read_text()) or {}
        current = spec.to_dict()
        differing = [key for key in current if saved.get(key) != current[key]]
        if differing:
            listed = "; ".join(f"{key}: saved {saved.get(key)!r}, now {current[key]!r}" for key in differing)
            raise RunDirectoryError(f"{saved_path}: cannot resume, the spec differs ({listed})")
        return
    if resume:
        raise RunDirectoryError(f"{folder}: nothing to resume (no {SPEC_FILE})")
    if folder.exists() and any(folder.iterdir()):
        raise RunDirectoryError(f"{folder} is not empty and holds no sweep ({SPEC_FILE}); choose another --out")
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(saved_path, yaml.safe_dump(spec.to_dict(), sort_keys=False))
