"""Config dataclasses: help text per field, loadable from YAML, overridable as ``key=value``.

Declare fields with ``option(default, "help")``; the help is shown by ``describe`` and in cards.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import MISSING, field, fields
from pathlib import Path
from typing import Any, Iterable, Mapping, TypeVar, get_type_hints

import yaml

from weightspace.errors import WeightspaceError

T = TypeVar("T")


def option(default: Any, help: str, min: float | None = None, max: float | None = None,
           choices: Iterable[Any] | None = None) -> Any:
    """A dataclass field with a default, one line of help and optional bounds or choices (checked
    by ``from_mapping`` and ``validate``, so every config read from YAML or ``key=value``, or
    built in code, is bounded the same way)."""
    metadata = {"help": help, "min": min, "max": max, "choices": tuple(choices) if choices is not None else None}
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=metadata)
    return field(default=default, metadata=metadata)


def describe(cls: type) -> list[tuple[str, Any, str]]:
    """(name, default, help) for each field, for --help style listings."""
    out = []
    for f in fields(cls):
        default = f.default if f.default is not MISSING else (f.default_factory() if f.default_factory is not MISSING else None)
        out.append((f.name, default, f.metadata.get("help", "")))
    return out


def _coerce(value: Any, typ: Any, name: str) -> Any:
    text = typ if isinstance(typ, str) else getattr(typ, "__name__", str(typ))
    if isinstance(value, str):
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = value
        if "str" in text and "None" not in text and not isinstance(parsed, str):
            return value
        value = parsed
    if "tuple" in text and isinstance(value, list):
        return tuple(value)
    if "float" in text and isinstance(value, str):
        try:  # YAML 1.1 reads "1e-2" (no decimal point) as a string
            return float(value)
        except ValueError:
            return value
    if ("float" in text) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def from_mapping(cls: type[T], data: Mapping[str, Any], where: str = "config") -> T:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise WeightspaceError(f"{where} has unknown key {unknown[0]!r}; known keys: {', '.join(sorted(names))}.")
    hints = get_type_hints(cls)
    values = {k: _coerce(v, hints.get(k, Any), k) for k, v in data.items()}
    for f in fields(cls):
        if f.name in values:
            _check(values[f.name], hints.get(f.name, Any), f, where)
    return cls(**values)


def validate(cfg: T, where: str = "config") -> T:
    """``cfg`` itself once every field passes the checks ``from_mapping`` applies (type, bounds, choices)."""
    hints = get_type_hints(type(cfg))
    for f in fields(cfg):
        _check(getattr(cfg, f.name), hints.get(f.name, Any), f, where)
    return cfg


# Lower bounds that hold for a field of this name in every config, unless its option() declares
# its own: step counts, worker counts and learning rates are never negative (a negative count
# silently trains nothing, a negative rate is a torch ValueError deep inside training); batch
# sizes, seeds per task and chunk sizes are at least 1.
_CONVENTIONAL_MIN = {"steps": 0, "workers": 0, "lr": 0, "weight_decay": 0,
                     "batch_size": 1, "seeds": 1, "chunk": 1}
_SUFFIX_MIN = {"_steps": 0, "_lr": 0}
_PREFIX_MIN = {"batch_": 1}


def _conventional_min(name: str) -> float | None:
    if name in _CONVENTIONAL_MIN:
        return _CONVENTIONAL_MIN[name]
    for suffix, low in _SUFFIX_MIN.items():
        if name.endswith(suffix):
            return low
    for prefix, low in _PREFIX_MIN.items():
        if name.startswith(prefix):
            return low
    return None


# Scalar field types: how a message names them, and which parsed values they accept (bool is an
# int subclass in Python, but true is not a step count; an int is a fine float).
_SCALARS = {
    int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    float: ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    bool: ("true or false", lambda v: isinstance(v, bool)),
    str: ("a string", lambda v: isinstance(v, str)),
}


def _check(value: Any, typ: Any, f: dataclasses.Field, where: str) -> None:
    """Type, choices and bounds of one scalar field: one sentence naming the key, the value and what is allowed."""
    args = typing.get_args(typ)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), typ) if optional else typ
    if value is None and optional:
        return
    if base in _SCALARS:
        kind, accepts = _SCALARS[base]
        if not accepts(value):
            raise WeightspaceError(f"{where}: {f.name} must be {kind}, got {value!r}.")
    choices = f.metadata.get("choices")
    if choices and value not in choices:
        raise WeightspaceError(f"{where}: {f.name} must be one of {', '.join(map(str, choices))}, got {value!r}.")
    if base in (int, float):
        low, high = f.metadata.get("min"), f.metadata.get("max")
        if low is None:
            low = _conventional_min(f.name)
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = (f"at least {low:g}" if high is None else f"at most {high:g}" if low is None
                      else f"between {low:g} and {high:g}")
            raise WeightspaceError(f"{where}: {f.name} must be {bounds}, got {value!r}.")


def apply_overrides(cfg: T, overrides: Iterable[str]) -> T:
    """Return a copy of ``cfg`` with ``key=value`` strings applied (values parsed as YAML)."""
    updates = {}
    for item in overrides:
        if "=" not in item:
            raise WeightspaceError(f"override {item!r} is not of the form key=value.")
        k, v = item.split("=", 1)
        updates[k.strip()] = v
    merged = {**dataclasses.asdict(cfg), **updates}
    return from_mapping(type(cfg), merged, where="overrides")


def load_yaml(cls: type[T], path: str | Path, over: T | None = None) -> T:
    """The config in a YAML file; with ``over``, the fields the file sets replace that config's."""
    p = Path(path)
    if not p.is_file():
        raise WeightspaceError(f"config file {p} does not exist.")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise WeightspaceError(f"config file {p} is not valid YAML ({e.__class__.__name__}).") from None
    if not isinstance(data, dict):
        raise WeightspaceError(f"config file {p} must hold a mapping of key: value.")
    return from_mapping(cls, data if over is None else {**to_dict(over), **data}, where=f"config file {p}")


def to_dict(cfg: Any) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}
