"""Task families by name. Each family module registers its class with
``@register_family(name, pretty=, paper=)``; the registry writes ``name`` onto the class, which
records it in every zoo (``TaskFamily.to_dict``), and ``make_family`` rebuilds it from there."""

from __future__ import annotations

from typing import Any

from weightspace.errors import WeightspaceError
from weightspace.registry import Registry
from weightspace.tasks.base import TaskFamily

FAMILIES: Registry[type[TaskFamily]] = Registry("task family", stamp=("name",))
register_family = FAMILIES.register


def family_class(name: str) -> type[TaskFamily]:
    return FAMILIES[name]


def make_family(name: str, **config: Any) -> TaskFamily:
    """The family called ``name`` built from its options (unknown ones are an error)."""
    cls = family_class(name)
    try:
        return cls(**config)
    except (TypeError, ValueError) as e:  # an option of the wrong type, e.g. n_tasks="many" in a hand-edited zoo.json
        raise WeightspaceError(f"the options of task family {name!r} are invalid ({e}); check their types and values.") from None
