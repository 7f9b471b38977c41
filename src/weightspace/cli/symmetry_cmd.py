"""`weightspace align ZOO --out ZOO_ALIGNED`: permute every member of a zoo onto one reference."""

from __future__ import annotations

from pathlib import Path

import torch
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from weightspace.card import make_card
from weightspace.cli.app import app, console
from weightspace.errors import WeightspaceError
from weightspace.symmetry.align_zoo import METHODS, REFERENCE_HELP, align_stored_zoo


@app.command("align")
def align(
    zoo: Path = typer.Argument(..., help="Zoo directory to align (left unchanged)."),
    out: Path = typer.Option(..., "--out", help="New directory for the aligned zoo (must not exist)."),
    reference: str = typer.Option("barycentre", "--reference", help=f"Alignment target: {REFERENCE_HELP}."),
    method: str = typer.Option("weight", "--method", help="weight: Git Re-Basin weight matching; activation: "
                               "correlation of hidden activations on the family's inputs."),
    iters: int = typer.Option(3, "--iters", help="Barycentre refinements: re-align to the recomputed mean this many times."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random group order in weight matching."),
    probe: int = typer.Option(2048, "--probe", help="Inputs used by activation matching."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Align a zoo: same members and records, hidden units permuted onto a common reference."""
    if method not in METHODS:
        raise WeightspaceError(f"--method {method!r} is not known; choose one of {', '.join(METHODS)}.")
    if iters < 0 or probe < 1:
        raise WeightspaceError("--iters must be >= 0 and --probe >= 1.")
    from weightspace.io import check_output_dir

    check_output_dir(out, "--out directory")
    torch.set_num_threads(1)  # see DESIGN.md: one thread per process is the fast setting here
    config = {"zoo": str(zoo), "out": str(out), "reference": reference, "method": method,
              "iters": iters, "seed": seed, "probe": probe}
    card = make_card("aligned-zoo", config, seed=seed)
    with Progress(TextColumn("aligning"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=quiet) as bar:
        task = bar.add_task("align", total=None)
        summary = align_stored_zoo(zoo, out, reference=reference, method=method, iters=iters, seed=seed,
                                   probe=probe, card=card,
                                   progress=lambda done, total: bar.update(task, completed=done, total=total))
    typer.echo(f"aligned {summary['members']} members to the {summary['reference']} ({method} matching) -> {out}")
