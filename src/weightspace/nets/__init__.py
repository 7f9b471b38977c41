"""Architectures whose weights weightspace models. Each supplies its WeightSpec."""

from __future__ import annotations

from typing import Any, Mapping

from weightspace.errors import WeightspaceError
from weightspace.nets.base import Architecture, load_module
from weightspace.nets.cnn import CNN
from weightspace.nets.mlp import MLP

ARCHITECTURES: dict[str, type[Architecture]] = {"mlp": MLP, "cnn": CNN}
# Architectures whose modules need optional packages register themselves on first use.
LAZY_ARCHITECTURES: dict[str, str] = {"lora-minilm": "weightspace.text.lora_arch"}


def make_arch(name: str, **kwargs: Any) -> Architecture:
    if name not in ARCHITECTURES and name in LAZY_ARCHITECTURES:
        import importlib

        importlib.import_module(LAZY_ARCHITECTURES[name])
    if name not in ARCHITECTURES:
        raise WeightspaceError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}.")
    cls = ARCHITECTURES[name]
    fields = {f for f in cls.__dataclass_fields__}
    unknown = sorted(set(kwargs) - fields)
    if unknown:
        raise WeightspaceError(f"architecture {name!r} has no option {', '.join(unknown)}; it takes {', '.join(sorted(fields))}.")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()})


def arch_from_dict(d: Mapping[str, Any]) -> Architecture:
    d = dict(d)
    return make_arch(d.pop("name"), **d)


__all__ = ["Architecture", "MLP", "CNN", "ARCHITECTURES", "make_arch", "arch_from_dict", "load_module"]
