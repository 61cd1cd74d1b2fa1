"""aqakit: action quality assessment (AQA) — predict and explain expert judges' scores.

Build a model by name, score a batch of clip features, save it and load it back (safetensors +
JSON, no pickle)::

    import torch, aqakit
    model = aqakit.create_model("cofinal", in_dim=1024, score_scale=aqakit.ScoreScale(0, 100)).eval()
    prediction = model(torch.randn(2, 68, 1024))  # 2 videos x 68 clips x 1024-d features (a mask marks padding)
    print(prediction.score, sorted(prediction.parts))  # 2 scores on the 0-100 scale; the interpretable parts
    same = aqakit.load_model(aqakit.save_checkpoint(model, "my-model"))  # or a run folder: load_model("runs/x")

``aqakit.list_models()`` names the models; each one's hyper-parameters are the fields of its config
dataclass (``aqakit.models.GDLTConfig``, ...), passed to ``create_model`` as keywords. The model
API is imported on first use, so ``import aqakit`` alone stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from aqakit.errors import AqakitError, ConfigError, DataError, RunDirectoryError

if TYPE_CHECKING:
    from aqakit.data.scale import ScoreScale
    from aqakit.models import AQAModel, Prediction, create_model, list_models, load_model, save_checkpoint

__version__ = "0.1.0"

_LAZY = {
    "ScoreScale": "aqakit.data.scale",
    "AQAModel": "aqakit.models",
    "Prediction": "aqakit.models",
    "create_model": "aqakit.models",
    "list_models": "aqakit.models",
    "load_model": "aqakit.models",
    "save_checkpoint": "aqakit.models",
}

__all__ = [
    "AQAModel", "AqakitError", "ConfigError", "DataError", "Prediction", "RunDirectoryError", "ScoreScale",
    "__version__", "create_model", "list_models", "load_model", "save_checkpoint",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    """The model API (``create_model``, ``ScoreScale``, ...), imported on first access."""
    if name not in _LAZY:
        raise AttributeError(f"module 'aqakit' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
