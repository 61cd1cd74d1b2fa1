"""Typed model configurations: one frozen dataclass per model, its fields the model's hyper-parameters.

:class:`HParams` checks every field against its annotation when a config is built: ``int``,
``float`` (finite; an int is stored as a float), ``bool``, ``str``, ``X | None``, ``Literal[...]``,
``tuple[X, ...]`` (a non-empty list or tuple, stored as a tuple) and ``Annotated[X, Range(...)]``
or ``Annotated[tuple[...], Distinct()]`` for bounds. A model's config adds, in its own
``__post_init__`` after ``super().__post_init__()``, only the rules that relate several fields.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Mapping, TypeVar, Union

from aqakit.errors import ConfigError

Config = TypeVar("Config", bound="HParams")


@dataclass(frozen=True)
class Range:
    """Bounds of a number: ``Annotated[float, Range(0.0, 1.0, high_open=True)]`` is [0, 1)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def contains(self, value: float) -> bool:
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{'above' if self.low_open else 'at least'} {self.low:g}"
        if self.high is not None:
            return f"{'below' if self.high_open else 'at most'} {self.high:g}"
        return "any value"


@dataclass(frozen=True)
class Distinct:
    """Marks a tuple field whose entries must differ: ``Annotated[tuple[X, ...], Distinct()]``."""


PositiveInt = Annotated[int, Range(low=1)]
NonNegativeInt = Annotated[int, Range(low=0)]
NonNegative = Annotated[float, Range(low=0.0)]
Positive = Annotated[float, Range(low=0.0, low_open=True)]
DropoutRate = Annotated[float, Range(0.0, 1.0, high_open=True)]


class _Invalid(Exception):
    """A value that does not fit its annotation (turned into a ConfigError naming the field)."""


@dataclass(frozen=True)
class HParams:
    """Base of every model config: fields checked (and normalised) from their annotations."""

    def __post_init__(self) -> None:
        hints = _field_types(type(self))
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            try:
                checked = _check(hints[field.name], value)
            except _Invalid:
                raise ConfigError(f"{field.name} must be {describe(hints[field.name])}, got {value!r}") from None
            object.__setattr__(self, field.name, checked)

    @classmethod
    def field_names(cls) -> list[str]:
        """The names of the hyper-parameters, in declaration order."""
        return [field.name for field in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls: type[Config], values: Mapping[str, Any], owner: str = "", key_prefix: str = "") -> Config:
        """Build the config from ``values`` (missing fields at their defaults).

        A bad or unknown setting is a one-line ConfigError ``"<owner>: <key_prefix><field> ..."``
        (e.g. ``gdlt: model.args.dropout must be in [0, 1) (a number), got 1.5``).
        """
        lead = f"{owner}: " if owner else ""
        unknown = [key for key in values if key not in cls.field_names()]
        if unknown:
            raise ConfigError(
                f"{lead}unknown setting {key_prefix}{unknown[0]}; the settings are {', '.join(cls.field_names())}"
            )
        try:
            return cls(**values)
        except ConfigError as exc:
            raise ConfigError(f"{lead}{key_prefix}{exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON/YAML values (tuples as lists): what a checkpoint's ``hparams`` holds."""
        return {field.name: _plain(getattr(self, field.name)) for field in dataclasses.fields(self)}

    @classmethod
    def describe_fields(cls) -> dict[str, str]:
        """Every field's allowed values in words, e.g. ``{"dropout": "in [0, 1) (a number)"}``."""
        hints = _field_types(cls)
        return {name: describe(hints[name]) for name in cls.field_names()}


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def _plain(value: Any) -> Any:
    return [_plain(item) for item in value] if isinstance(value, tuple) else value


def _split(hint: Any) -> tuple[Any, tuple[Any, ...]]:
    """``Annotated[X, *marks]`` -> (X, marks); any other hint -> (hint, ())."""
    if typing.get_origin(hint) is Annotated:
        base, *marks = typing.get_args(hint)
        return base, tuple(marks)
    return hint, ()


def _optional_of(hint: Any) -> Any | None:
    """X for ``X | None`` (or ``Optional[X]``), else None."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0]
    return None


def _check(hint: Any, value: Any) -> Any:
    """``value`` normalised to ``hint`` (float for a float field, tuple for a tuple), or raise _Invalid."""
    base, marks = _split(hint)
    inner = _optional_of(base)
    if inner is not None:
        return None if value is None else _check(inner, value)
    origin = typing.get_origin(base)
    if origin is Literal:
        if not any(type(value) is type(choice) and value == choice for choice in typing.get_args(base)):
            raise _Invalid
        checked = value
    elif origin is tuple:
        item_hint, ellipsis = typing.get_args(base)
        if ellipsis is not Ellipsis or not isinstance(value, (list, tuple)) or not value:
            raise _Invalid
        checked = tuple(_check(item_hint, item) for item in value)
    elif base is bool or base is str:
        if not isinstance(value, base):
            raise _Invalid
        checked = value
    elif base is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid
        checked = value
    elif base is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _Invalid
        checked = float(value)
    else:
        raise TypeError(f"a model config field cannot be annotated {hint!r}")
    for mark in marks:
        if isinstance(mark, Range) and not mark.contains(checked):
            raise _Invalid
        if isinstance(mark, Distinct) and len(set(checked)) != len(checked):
            raise _Invalid
    return checked


def _show(choice: Any) -> str:
    if choice is None:
        return "null"
    if isinstance(choice, bool):
        return "true" if choice else "false"
    return repr(choice)


def _either(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def describe(hint: Any) -> str:
    """A field annotation's allowed values in words: ``"at least 1 (an integer)"``, ``"'a' or 'b'"``."""
    base, marks = _split(hint)
    inner = _optional_of(base)
    if inner is not None:
        if typing.get_origin(_split(inner)[0]) is Literal:
            return _either([_show(choice) for choice in typing.get_args(_split(inner)[0])] + ["null"])
        return f"{describe(inner)} or null"
    origin = typing.get_origin(base)
    if origin is Literal:
        return _either([_show(choice) for choice in typing.get_args(base)])
    if origin is tuple:
        distinct = ", no repeats" if any(isinstance(mark, Distinct) for mark in marks) else ""
        return f"a non-empty list, each {describe(typing.get_args(base)[0])}{distinct}"
    kind = {bool: "true or false", str: "a string", int: "an integer", float: "a number"}[base]
    bounds = [mark.describe() for mark in marks if isinstance(mark, Range)]
    return f"{bounds[0]} ({kind})" if bounds else kind
