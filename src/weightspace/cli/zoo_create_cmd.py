"""`weightspace zoo create --out ZOO --family F --arch A`: an empty zoo, ready for `zoo import`.

The family and architecture are made exactly as `zoo build` makes them (same recipe fields,
``--config`` recipe and ``family.X`` / ``arch.X`` overrides), so a zoo created empty and one
built by training are interchangeable: import outside checkpoints into it, or train members into
it later with `zoo build` and the same settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from weightspace.cli.zoo_cmd import _summary_line, family_and_arch, recipe_with, resolve_recipe, zoo_app
from weightspace.config import to_dict
from weightspace.errors import WeightspaceError


@zoo_app.command("create")
def create_cmd(
    overrides: Optional[list[str]] = typer.Argument(None, help="family.X=... and arch.X=... overrides (family.n_tasks=8, arch.activation=tanh)."),
    out: Optional[str] = typer.Option(None, "--out", help="New zoo directory (an existing zoo with the same settings is left as it is)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML recipe (as for zoo build); only its family and architecture fields are used."),
    family: Optional[str] = typer.Option(None, "--family", help="Task family (default: digits-rotate)."),
    arch: Optional[str] = typer.Option(None, "--arch", help="Architecture: mlp or cnn (default: mlp)."),
    tasks: Optional[int] = typer.Option(None, "--tasks", help="Zoo tasks in the family."),
    heldout: Optional[int] = typer.Option(None, "--heldout", help="Held-out tasks in the family."),
    hidden: Optional[str] = typer.Option(None, "--hidden", help="MLP hidden widths, comma separated: 32,32."),
) -> None:
    """Create an empty zoo for a task family and architecture; then `weightspace zoo import ZOO files...`."""
    from weightspace.card import make_card
    from weightspace.io import check_output_dir
    from weightspace.zoo.store import Zoo

    recipe = recipe_with(config, hidden, out=out, family=family, arch=arch, tasks=tasks, heldout=heldout)
    for item in overrides or []:
        if not item.partition("=")[0].strip().startswith(("family.", "arch.")):
            raise WeightspaceError(f"zoo create takes only family.X=... and arch.X=... overrides, not {item!r}; "
                                   "training settings belong to zoo build.")
    recipe = resolve_recipe(recipe, overrides or [])
    if not recipe.out:
        raise WeightspaceError("zoo create needs the new zoo's directory; pass --out DIR.")
    check_output_dir(recipe.out, "zoo directory")
    family_obj, arch_obj = family_and_arch(recipe)
    ids = family_obj.zoo_task_ids()
    if ids:  # read one task's data before writing anything: a missing dataset leaves no directory behind
        family_obj.task(ids[0])
    existed = (Path(recipe.out) / "zoo.json").is_file()
    config_record = {"family": family_obj.to_dict(), "arch": arch_obj.to_dict(), "members": "imported (created empty)"}
    recipe_record = {k: v for k, v in to_dict(recipe).items()
                     if k in ("out", "family", "tasks", "heldout", "family_options", "arch", "hidden", "arch_options")}
    with Zoo.create(recipe.out, arch_obj, family_obj.to_dict(), make_card("zoo", config_record, recipe=recipe_record)) as zoo:
        line = _summary_line(zoo)
    if existed:
        typer.echo(f"{recipe.out} already is a zoo with this family and architecture; left as it is.\n{line}")
    else:
        typer.echo(f"created an empty zoo; add checkpoints with `weightspace zoo import {recipe.out} FILES --task ID`.\n{line}")
