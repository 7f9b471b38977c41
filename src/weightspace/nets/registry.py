"""Architectures by name. Each architecture module registers its class with
``@register_arch(name, pretty=, paper=)``; the registry writes ``name`` onto the class, which
records it in every zoo (``Architecture.to_dict``), and ``make_arch`` rebuilds it from there."""

from __future__ import annotations

from typing import Any, Mapping

from weightspace.errors import WeightspaceError
from weightspace.nets.base import Architecture
from weightspace.registry import Registry

ARCHITECTURES: Registry[type[Architecture]] = Registry("architecture", stamp=("name",))
register_arch = ARCHITECTURES.register


def arch_class(name: str) -> type[Architecture]:
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
