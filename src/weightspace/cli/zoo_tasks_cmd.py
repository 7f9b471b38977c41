"""`weightspace zoo tasks ZOO`: the family's task ids, zoo and held-out, with descriptors and
member counts, so a user can pick an id for `weightspace generate --task`."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import typer

from weightspace.cli.zoo_cmd import zoo_app


@zoo_app.command("tasks")
def tasks_cmd(
    path: Path = typer.Argument(..., metavar="ZOO", help="Zoo directory."),
    split: str = typer.Option("all", "--split", help="zoo, heldout or all."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object: {split: [{task_id, descriptor, members}]}."),
) -> None:
    """List the zoo's tasks: id, split, descriptor and how many stored members trained on it."""
    from rich.console import Console
    from rich.table import Table

    from weightspace.errors import WeightspaceError
    from weightspace.tasks import family_from_dict
    from weightspace.zoo.store import Zoo

    if split not in ("zoo", "heldout", "all"):
        raise WeightspaceError(f"--split {split!r} is unknown; choose zoo, heldout or all.")
    zoo = Zoo.open(path)
    family = family_from_dict(zoo.family)
    members = Counter((r.split, r.task_id) for r in zoo.records(final_only=True, split=None))
    listing = {}
    for name, ids in (("zoo", family.zoo_task_ids()), ("heldout", family.heldout_task_ids())):
        if split in (name, "all"):
            listing[name] = [{"task_id": t, "descriptor": list(family.descriptor(t)) if hasattr(family, "descriptor") else None,
                              "members": members[(name, t)]} for t in ids]
    if as_json:
        typer.echo(json.dumps(listing, indent=1))
        return
    table = Table(title=f"{path}: {zoo.family.get('name')}")
    for column in ("task id", "split", "descriptor", "members"):
        table.add_column(column)
    for name, rows in listing.items():
        for row in rows:
            table.add_row(row["task_id"], name, _short(row["descriptor"]), str(row["members"]))
    Console().print(table)


def _short(descriptor) -> str:
    if descriptor is None:
        return "-"
    return ", ".join(f"{v:g}" for v in descriptor)
