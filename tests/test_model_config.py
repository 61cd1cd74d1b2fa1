"""Typed model configs: the generic field checks, every model's config, and the run configuration reading them."""

import dataclasses
import re
from dataclasses import dataclass
from typing import Annotated, Literal

import pytest
import yaml

from aqakit.data.scale import ScoreScale
from aqakit.errors import ConfigError
from aqakit.models import HParams, config_class, create_model, list_models, model_class, model_config, model_defaults
from aqakit.models.config import Distinct, DropoutRate, PositiveInt, Range, describe
from aqakit.train.config import (
    ModelConfig, RunConfig, apply_preset, build_config, changed_settings, list_presets, load_yaml, named_preset,
)  # fmt: skip
from conftest import run_cli


@dataclass(frozen=True)
class Example(HParams):
    count: PositiveInt = 2
    rate: DropoutRate = 0.5
    scale: float = 1.0
    flag: bool = False
    width: PositiveInt | None = None
    mode: Literal["a", "b"] = "a"
    level: Literal[0, 1, 2] | None = 1
    names: Annotated[tuple[Literal["x", "y", "z"], ...], Distinct()] = ("x",)
    steps: tuple[Annotated[float, Range(low=0.0, low_open=True)], ...] = (1.0, 2.0)


def test_defaults_are_valid_and_values_are_normalised():
    assert Example() == Example.from_dict({})
    config = Example.from_dict({"scale": 3, "names": ["y", "z"], "steps": [1, 2.5], "width": 4})
    assert config.scale == 3.0 and isinstance(config.scale, float)
    assert config.names == ("y", "z") and config.steps == (1.0, 2.5) and config.width == 4
    assert config.to_dict()["names"] == ["y", "z"]  # JSON/YAML form
    assert Example.from_dict(config.to_dict()) == config
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.count = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "values, message",
    [
        ({"count": 0}, r"^count must be at least 1 \(an integer\), got 0$"),
        ({"count": 2.0}, "count must be at least 1"),
        ({"count": True}, "count must be at least 1"),
        ({"count": "3"}, r"got '3'"),
        ({"rate": 1.0}, r"^rate must be in \[0, 1\) \(a number\), got 1.0$"),
        ({"scale": float("nan")}, r"^scale must be a number, got nan$"),
        ({"scale": "1e-4"}, "scale must be a number"),
        ({"flag": "yes"}, r"^flag must be true or false, got 'yes'$"),
        ({"width": 0}, r"^width must be at least 1 \(an integer\) or null, got 0$"),
        ({"mode": "c"}, r"^mode must be 'a' or 'b', got 'c'$"),
        ({"level": 3}, r"^level must be 0, 1, 2 or null, got 3$"),
        ({"level": True}, "level must be 0, 1, 2 or null"),  # True == 1, but not a level
        ({"level": 1.0}, "level must be"),
        ({"names": []}, "names must be a non-empty list"),
        ({"names": ["x", "x"]}, "no repeats"),
        ({"names": ["w"]}, r"each 'x', 'y' or 'z'"),
        ({"names": "x"}, "names must be a non-empty list"),
        ({"steps": [1.0, 0.0]}, r"^steps must be a non-empty list, each above 0 \(a number\), got \[1.0, 0.0\]$"),
    ],
)
def test_each_bad_value_is_a_one_line_error_naming_the_field(values, message):
    with pytest.raises(ConfigError, match=message) as caught:
        Example(**values)
    assert "\n" not in str(caught.value)


def test_from_dict_names_the_owner_the_key_and_the_valid_fields():
    with pytest.raises(ConfigError, match=r"^m: model.args.rate must be in \[0, 1\)"):
        Example.from_dict({"rate": 2.0}, owner="m", key_prefix="model.args.")
    with pytest.raises(ConfigError, match=r"^m: unknown setting model.args.foo; the settings are count, rate, scale"):
        Example.from_dict({"foo": 1}, owner="m", key_prefix="model.args.")
    assert Example.describe_fields()["mode"] == "'a' or 'b'" == describe(Literal["a", "b"])


@pytest.mark.parametrize("name", list_models())
def test_every_model_declares_its_hyper_parameters_once_in_its_config(name):
    cls = config_class(name)
    assert cls is model_class(name).config_class and dataclasses.is_dataclass(cls)
    assert cls.__dataclass_params__.frozen
    defaults = cls()
    assert model_defaults(name) == defaults.to_dict()
    assert cls.from_dict(defaults.to_dict()) == defaults
    assert set(cls.describe_fields()) == set(cls.field_names())
    assert model_config(name, {}) == defaults


def test_a_model_is_built_from_its_config_and_records_it():
    config = config_class("gdlt").from_dict({"hidden_dim": 8, "n_heads": 2, "dropout": 0})
    model = model_class("gdlt")(6, ScoreScale(0.0, 1.0), config)
    assert model.config is config and model.hparams == config.to_dict() and model.hparams["dropout"] == 0.0
    assert create_model("gdlt", in_dim=6, score_scale=ScoreScale(0.0, 1.0), **model.hparams).config == config
    with pytest.raises(ConfigError, match="gdlt needs a GDLTConfig, got a CoFInAlConfig"):
        model_class("gdlt")(6, ScoreScale(0.0, 1.0), config_class("cofinal")())


@pytest.mark.parametrize(
    "model, settings, message",
    [
        ("gdlt", {"dropout": "1.5"}, r"^gdlt: model.args.dropout must be in \[0, 1\) \(a number\), got 1.5$"),
        ("gdlt", {"n_heads": "x"}, r"^gdlt: model.args.n_heads must be at least 1 \(an integer\), got 'x'$"),
        ("cofinal", {"decode": "bad"}, r"^cofinal: model.args.decode must be 'expected' or 'argmax', got 'bad'$"),
        ("query-decoder", {"gram_scale": "sqrt"}, r"model.args.gram_scale must be 'dim' or 'none'"),
        ("ridge", {"cv_metric": "r2"}, r"model.args.cv_metric must be 'mse' or 'spearman'"),
        ("gdlt", {"foo": "1"}, r"^gdlt: unknown setting model.args.foo; the settings are hidden_dim, proj_dim, n_heads"),
        ("gdlt", {"hidden_dim": "10", "n_heads": "4"}, r"^gdlt: model.args.hidden_dim \(10\) must be divisible by n_heads \(4\)$"),
    ],
)
def test_set_model_args_gives_one_line_naming_the_field(monkeypatch, capsys, tmp_path, model, settings, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig(model=ModelConfig(model, {key: yaml.safe_load(value) for key, value in settings.items()})).check()
    flags = [part for key, value in settings.items() for part in ("--set", f"model.args.{key}={value}")]
    status, _, err = run_cli(monkeypatch, capsys, "train", model, "synthetic", *flags, "--runs-dir", tmp_path)
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and re.search(message.strip("^$"), " ".join(lines[0].split())), err


def test_a_built_configuration_states_every_hyper_parameter():
    for model in list_models():
        config = build_config(model, "synthetic")
        assert list(config.model.args) == config_class(model).field_names()


@pytest.mark.parametrize("preset", list_presets())
def test_presets_state_only_what_differs_from_the_defaults(preset):
    """Every model.args entry of a preset changes the value the preset would get without it (from its base or the default)."""
    data = load_yaml(named_preset(preset))
    args = data.get("model", {}).get("args", {})
    base = RunConfig()
    if data.get("base"):
        apply_preset(base, named_preset(data["base"]))
    model = data.get("model", {}).get("name", base.model.name)
    inherited = {**model_defaults(model), **base.model.args}
    for key, value in args.items():
        assert inherited[key] != value, f"{preset}: model.args.{key}={value!r} is what it would be anyway"


def test_resume_compares_hyper_parameters_with_the_config_defaults():
    current = build_config("ridge", "synthetic")
    saved = current.to_dict()
    saved["model"]["args"] = {}  # an older file that stated no hyper-parameter: all at their defaults
    assert changed_settings(saved, current) == {}
    saved["model"]["args"] = {"pooling": ["mean", "max"]}
    assert changed_settings(saved, current) == {"model.args.pooling": (["mean", "max"], ["mean"])}
