"""Generators by name, each with a pretty name and the paper it follows (as mergekit lists its
merge methods). A generator module registers its class with ``@register(name, pretty=, paper=)``;
the registry writes ``name`` and ``paper`` onto the class, which saves them with every fitted
generator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from weightspace.errors import WeightspaceError
from weightspace.generate.base import Generator, read_generator_config
from weightspace.registry import Registry

GENERATORS: Registry[type[Generator]] = Registry("generator", stamp=("name", "paper"))
register = GENERATORS.register


def make_generator(name: str, **cfg: Any) -> Generator:
    return GENERATORS[name](**cfg)


def load_generator(path: str | Path) -> Generator:
    meta = read_generator_config(path)
    name = meta["name"]
    if name not in GENERATORS:
        raise WeightspaceError(f"{path} holds a generator of unknown type {name!r}; known: {', '.join(sorted(GENERATORS))}.")
    return GENERATORS[name].load(path)
