"""Architectures whose weights weightspace models. Each supplies its WeightSpec and declares its
optional capabilities on the Architecture contract (nets.base)."""

from __future__ import annotations

from typing import Any, Mapping

from weightspace.errors import WeightspaceError
from weightspace.nets.base import Architecture, load_module
from weightspace.nets.cnn import CNN
from weightspace.nets.lora_minilm import LoRAMiniLM
from weightspace.nets.mlp import MLP

# LoRAMiniLM's module is light: its frozen backbone (transformers) loads on first use.
ARCHITECTURES: dict[str, type[Architecture]] = {"mlp": MLP, "cnn": CNN, LoRAMiniLM.name: LoRAMiniLM}


def arch_class(name: str) -> type[Architecture]:
    if name not in ARCHITECTURES:
        raise WeightspaceError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}.")
    return ARCHITECTURES[name]


def make_arch(name: str, **kwargs: Any) -> Architecture:
    cls = arch_class(name)
    fields = {f for f in cls.__dataclass_fields__}
    unknown = sorted(set(kwargs) - fields)
    if unknown:
        raise WeightspaceError(f"architecture {name!r} has no option {', '.join(unknown)}; it takes {', '.join(sorted(fields))}.")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()})


def arch_for_family(name: str, family, **options: Any) -> Architecture:
    """The architecture ``name`` for a task family's inputs and classes, plus ``options``."""
    return make_arch(name, **{**arch_class(name).options_for(family), **options})


def arch_from_dict(d: Mapping[str, Any]) -> Architecture:
    d = dict(d)
    return make_arch(d.pop("name"), **d)


__all__ = ["Architecture", "MLP", "CNN", "LoRAMiniLM", "ARCHITECTURES", "arch_class", "make_arch", "arch_for_family",
           "arch_from_dict", "load_module"]
