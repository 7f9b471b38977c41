"""`weightspace registry`: every extension point's entries with their pretty names and papers,
read from the registries themselves (as mergekit lists its merge methods)."""

from __future__ import annotations

import textwrap

import typer

from weightspace.cli.app import app
from weightspace.errors import WeightspaceError


def registries() -> dict[str, list]:
    """Kind (as typed on the command line) -> its entries; importing each stage fills its registry."""
    from weightspace.encode import CONDITION_ENCODERS
    from weightspace.evaluate.baseline_registry import ordered_baselines
    from weightspace.generate import GENERATORS
    from weightspace.nets import ARCHITECTURES
    from weightspace.tasks import FAMILIES

    return {"generators": GENERATORS.entries(), "architectures": ARCHITECTURES.entries(), "families": FAMILIES.entries(),
            "conditions": CONDITION_ENCODERS.entries(), "baselines": ordered_baselines()}


def entry_lines(entries, width: int = 100) -> list[str]:
    """One block per entry: the name and pretty name, then the paper indented below it."""
    lines = []
    for e in entries:
        lines.append(f"  {e.name:18s} {e.pretty}")
        lines += textwrap.wrap(e.paper, width, initial_indent=" " * 21, subsequent_indent=" " * 21)
    return lines


@app.command("registry")
def registry_cmd(kind: str = typer.Argument("", help="Show one kind only: generators, architectures, families, "
                                                   "conditions or baselines.")) -> None:
    """List the registered generators, architectures, task families, condition encoders and
    evaluation baselines, each with its pretty name and the paper it follows."""
    kinds = registries()
    if kind and kind not in kinds:
        raise WeightspaceError(f"unknown registry {kind!r}; choose one of {', '.join(kinds)}.")
    for name, entries in kinds.items():
        if kind in ("", name):
            typer.echo(f"{name}:")
            typer.echo("\n".join(entry_lines(entries)))
