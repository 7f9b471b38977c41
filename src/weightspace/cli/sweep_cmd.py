"""`weightspace sweep`: generation vs retrieval vs support-set fine-tuning as the zoo grows."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from weightspace.cli.app import app, comma_ints, console, key_values
from weightspace.cli.generate_cmd import CONDITION_HELP
from weightspace.errors import WeightspaceError


def parse_sizes(text: str) -> list[int]:
    sizes = comma_ints(text, "--sizes", "zoo task counts", "16,32,64,256")
    if not sizes:
        raise WeightspaceError("--sizes needs at least one zoo size, e.g. 16,32,64,256.")
    return sizes


def sweep_table(sweep: dict) -> Table:
    table = Table(title="held-out test accuracy by zoo size")
    table.add_column("method")
    for n in sweep["zoo_sizes"]:
        table.add_column(f"{n} tasks", justify="right")
    for label, values in sweep["acc"].items():
        table.add_row(label, *(f"{v:.4f}" for v in values))
    table.add_row("trained reference", *(f"{sweep['reference_acc']:.4f}" for _ in sweep["zoo_sizes"]), style="dim")
    return table


@app.command("sweep")
def sweep(
    zoo: Path = typer.Argument(..., help="Source zoo with held-out reference members (built with `weightspace zoo build --heldout-models`)."),
    options: Optional[list[str]] = typer.Argument(None, metavar="[KEY=VALUE]...", help="Generator options, e.g. steps=500."),
    sizes: str = typer.Option("16,32,64,256", "--sizes", help="Zoo task counts, comma-separated."),
    out: Path = typer.Option(..., "--out", "-o", help="Sweep directory (a rerun resumes finished sizes)."),
    generator: str = typer.Option("hypernet", "--generator", help="Generator fitted at every size."),
    condition: str = typer.Option("support", "--condition", help=CONDITION_HELP),
    eval_tasks: int = typer.Option(0, "--eval-tasks", min=0, help="Held-out tasks evaluated (0: all)."),
    seed: int = typer.Option(0, "--seed", help="Seed of generator fitting and evaluation."),
) -> None:
    """Fit and evaluate a generator on growing subsets of a zoo; write OUT/sweep.json and OUT/report.html."""
    from weightspace.evaluate.sweep import run_sweep
    from weightspace.report.html import write_report
    from weightspace.generate.zoo_data import resolve_condition
    from weightspace.io import check_output_dir

    check_output_dir(out, "--out directory")
    result = run_sweep(zoo, parse_sizes(sizes), out, generator=generator, condition=resolve_condition(condition),
                       generator_options=key_values(options or [], "generator option"), eval_tasks=eval_tasks, seed=seed, progress=True, console=console,
                       write_report=write_report)
    console.print(sweep_table(result))
    typer.echo(f"sweep: {out / 'sweep.json'}")
    typer.echo(f"report: {out / 'report.html'}")
