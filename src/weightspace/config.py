"""Config dataclasses: help text per field, loadable from YAML, overridable as ``key=value``.

Declare fields with ``option(default, "help")``; the help is shown by ``describe`` and in cards.
"""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING, field, fields
from pathlib import Path
from typing import Any, Iterable, Mapping, TypeVar, get_type_hints

import yaml

from weightspace.errors import WeightspaceError

T = TypeVar("T")


def option(default: Any, help: str) -> Any:
    """A dataclass field with a default and one line of help."""
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help})
    return field(default=default, metadata={"help": help})


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
    return cls(**{k: _coerce(v, hints.get(k, Any), k) for k, v in data.items()})


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


def load_yaml(cls: type[T], path: str | Path) -> T:
    p = Path(path)
    if not p.is_file():
        raise WeightspaceError(f"config file {p} does not exist.")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise WeightspaceError(f"config file {p} is not valid YAML ({e.__class__.__name__}).") from None
    if not isinstance(data, dict):
        raise WeightspaceError(f"config file {p} must hold a mapping of key: value.")
    return from_mapping(cls, data, where=f"config file {p}")


def to_dict(cfg: Any) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}
