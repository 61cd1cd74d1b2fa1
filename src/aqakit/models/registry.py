"""The model registry: every model by name, built from its typed config with :func:`create_model`."""

from __future__ import annotations

from typing import Any, Mapping

from aqakit.data.scale import ScoreScale
from aqakit.errors import ConfigError
from aqakit.models.base import AQAModel
from aqakit.models.config import HParams

_MODELS: dict[str, type[AQAModel]] = {}


def register_model(cls: type[AQAModel]) -> type[AQAModel]:
    """Class decorator: make ``cls`` creatable by its ``name`` (its ``config_class`` holds its hyper-parameters)."""
    if cls.name in _MODELS:
        raise ValueError(f"model name {cls.name!r} registered twice")
    _MODELS[cls.name] = cls
    return cls


def list_models() -> list[str]:
    """Names of every registered model, sorted."""
    return sorted(_MODELS)


def model_class(name: str) -> type[AQAModel]:
    """The registered model class ``name``; ConfigError naming the available ones if there is none."""
    if name not in _MODELS:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return _MODELS[name]


def config_class(name: str) -> type[HParams]:
    """The config dataclass of model ``name`` (its hyper-parameters and their defaults)."""
    return model_class(name).config_class


def is_closed_form(name: str) -> bool:
    """Whether model ``name`` is fitted in one closed-form step (ridge) rather than by epochs (False if unknown)."""
    return name in _MODELS and _MODELS[name].closed_form


def model_defaults(name: str) -> dict[str, Any]:
    """Every hyper-parameter of model ``name`` at its default, as YAML/JSON values ({} for an unknown name)."""
    return config_class(name)().to_dict() if name in _MODELS else {}


def model_config(name: str, values: Mapping[str, Any], key_prefix: str = "") -> HParams:
    """Model ``name``'s config from keyword ``values`` (the rest at their defaults); a bad value is a
    ConfigError naming ``key_prefix`` + the field (``model.args.dropout``) and what it may be."""
    return config_class(name).from_dict(values, owner=name, key_prefix=key_prefix)


def create_model(name: str, *, in_dim: int, score_scale: ScoreScale, **config: Any) -> AQAModel:
    """Build the registered model ``name`` from its hyper-parameters ``config`` (unknown ones are an error)."""
    return model_class(name)(in_dim, score_scale, model_config(name, config))
