"""aqakit's models behind one interface: ``create_model(name, in_dim=..., score_scale=..., **config)``.

Each model file defines the model and its typed config (a frozen dataclass of its hyper-parameters);
:mod:`~aqakit.models.registry` builds them by name, :mod:`~aqakit.models.loading` saves and loads
checkpoints (safetensors + JSON, no pickle).
"""

from aqakit.models import cofinal, cofinal_official, finecausal, gdlt, query_decoder, ridge, tpt  # noqa: F401  (registers them)
from aqakit.models.base import AQAModel, Explanation, GradeBand, Prediction
from aqakit.models.cofinal import CoFInAl, CoFInAlConfig
from aqakit.models.cofinal_official import CoFInAlOfficial, CoFInAlOfficialConfig
from aqakit.models.config import HParams
from aqakit.models.gdlt import GDLT, GDLTConfig
from aqakit.models.loading import find_checkpoint, find_checkpoints, load_checkpoint, load_model, save_checkpoint
from aqakit.models.query_decoder import QueryDecoder, QueryDecoderConfig
from aqakit.models.registry import (
    config_class,
    create_model,
    is_closed_form,
    list_models,
    model_class,
    model_config,
    model_defaults,
    register_model,
)
from aqakit.models.ridge import RidgeConfig, RidgeRegression
from aqakit.models.tpt import TPT, TPTConfig

__all__ = [
    "AQAModel", "CoFInAl", "CoFInAlConfig", "CoFInAlOfficial", "CoFInAlOfficialConfig", "Explanation", "GDLT", "GDLTConfig",
    "GradeBand",
    "HParams", "Prediction", "QueryDecoder", "QueryDecoderConfig", "RidgeConfig", "RidgeRegression", "TPT", "TPTConfig",
    "config_class", "create_model", "find_checkpoint", "find_checkpoints", "is_closed_form", "list_models", "load_checkpoint",
    "load_model", "model_class", "model_config", "model_defaults", "register_model", "save_checkpoint",
]  # fmt: skip
