"""`weightspace demo`: the whole pipeline on the embedded default, ending with the report's path."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from weightspace.cli.app import app, console


@app.command("demo")
def demo(
    overrides: Optional[list[str]] = typer.Argument(None, metavar="[KEY=VALUE]...", help="DemoConfig fields, e.g. tasks=64."),
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Run directory (a rerun resumes it)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of DemoConfig fields."),
) -> None:
    """Build a digits-rotate zoo, align, analyze, train a generator, evaluate it honestly, write a report."""
    from weightspace.config import apply_overrides, load_yaml
    from weightspace.demo import DemoConfig, run_demo

    cfg = load_yaml(DemoConfig, config) if config else DemoConfig()
    cfg = apply_overrides(cfg, [*(overrides or []), f"out={out}"])
    summary = run_demo(cfg, console)
    for key, verdict in summary["verdict"].items():
        mark = "[green]✓[/green]" if verdict.get("beats_retrieval_and_baselines") else "[red]✗[/red]"
        console.print(f"{mark} {verdict.get('sentence', key)}")
    console.print(f"demo finished in {summary['seconds']:.0f} s")
    typer.echo(f"report: {summary['report']}")
