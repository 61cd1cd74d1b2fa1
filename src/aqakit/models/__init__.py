"""Model registry: ``create_model(name, in_dim=..., score_scale=..., **hparams)``."""

from __future__ import annotations

import inspect
from typing import Any, Callable

from aqakit.data.scale import ScoreScale
from aqakit.errors import ConfigError
from aqakit.models.base import AQAModel, Prediction

_REGISTRY: dict[str, type[AQAModel]] = {}


def register_model(cls: type[AQAModel]) -> type[AQAModel]:
    """Class decorator: make ``cls`` creatable by its ``name``."""
    if cls.name in _REGISTRY:
        raise ValueError(f"model name {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def list_models() -> list[str]:
    """Names of every registered model."""
    return sorted(_REGISTRY)


def is_closed_form(name: str) -> bool:
    """Whether model ``name`` is fitted in one closed-form step (ridge) rather than by epochs (False if unknown)."""
    return name in _REGISTRY and _REGISTRY[name].closed_form


def model_defaults(name: str) -> dict[str, Any]:
    """The hyper-parameters of model ``name`` that have a default, with it ({} for an unknown name)."""
    if name not in _REGISTRY:
        return {}
    parameters = inspect.signature(_REGISTRY[name]).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def create_model(name: str, *, in_dim: int, score_scale: ScoreScale, **hparams: Any) -> AQAModel:
    """Build the registered model ``name``; unknown hyper-parameters are an error."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    cls: Callable[..., AQAModel] = _REGISTRY[name]
    try:
        return cls(in_dim=in_dim, score_scale=score_scale, **hparams)
    except TypeError as exc:  # an unknown keyword argument in a config
        raise ConfigError(f"model {name!r}: {exc}") from None


from aqakit.models import gdlt  # noqa: E402,F401  (registers the built-in models)
from aqakit.models import cofinal  # noqa: E402,F401
from aqakit.models import cofinal_official  # noqa: E402,F401
from aqakit.models import query_decoder  # noqa: E402,F401
from aqakit.models import ridge  # noqa: E402,F401

__all__ = ["AQAModel", "Prediction", "create_model", "is_closed_form", "list_models", "model_defaults", "register_model"]
