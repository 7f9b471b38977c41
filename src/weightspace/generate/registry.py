"""Generators by name, each with the paper it follows (as mergekit lists its merge methods)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from weightspace.errors import WeightspaceError
from weightspace.generate.base import Generator, read_generator_config

GENERATORS: dict[str, type[Generator]] = {}


def register(cls: type[Generator]) -> type[Generator]:
    if getattr(cls, "name", None) in GENERATORS and GENERATORS[cls.name] is not cls:
        raise ValueError(f"generator name {cls.name!r} is registered twice")
    GENERATORS[cls.name] = cls
    return cls


def make_generator(name: str, **cfg: Any) -> Generator:
    if name not in GENERATORS:
        raise WeightspaceError(f"unknown generator {name!r}; choose one of {', '.join(sorted(GENERATORS))}.")
    return GENERATORS[name](**cfg)


def load_generator(path: str | Path) -> Generator:
    meta = read_generator_config(path)
    name = meta["name"]
    if name not in GENERATORS:
        raise WeightspaceError(f"{path} holds a generator of unknown type {name!r}; known: {', '.join(sorted(GENERATORS))}.")
    return GENERATORS[name].load(path)


def list_generators() -> list[tuple[str, str]]:
    """(name, paper) of every registered generator, for `--help` listings and reports."""
    return [(n, GENERATORS[n].paper) for n in sorted(GENERATORS)]
