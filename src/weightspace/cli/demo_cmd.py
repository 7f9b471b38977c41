"""`weightspace demo`: the whole pipeline on the embedded default, ending with the report's path.

    weightspace demo                      # digits-rotate MLPs: zoo → align → analyze → train → eval → report
    weightspace demo --family text-lora   # LoRA adapters of all-MiniLM-L6-v2 on chatterbot tasks
    weightspace demo --family wordnet     # the same, written from WordNet task descriptions alone
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from weightspace.cli.app import app, console
from weightspace.errors import WeightspaceError

PIPELINES = ("digits-rotate", "text-lora", "wordnet")


@app.command("demo")
def demo(
    overrides: Optional[list[str]] = typer.Argument(None, metavar="[KEY=VALUE]...", help="Config fields, e.g. tasks=64."),
    family: str = typer.Option("digits-rotate", "--family", help="digits-rotate (MLPs, the default), text-lora (LoRA on MiniLM, chatterbot tasks) "
                                                                 "or wordnet (LoRA on MiniLM from task descriptions)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory (a rerun resumes it); default runs/demo, runs/demo-text-lora or runs/demo-wordnet."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of config fields."),
) -> None:
    """Build a zoo, train a generator, evaluate it honestly against every baseline, write a report."""
    from weightspace.config import apply_overrides, load_yaml

    if family not in PIPELINES:
        raise WeightspaceError(f"--family {family!r} has no demo; choose {' or '.join(PIPELINES)} "
                               "(other families run through `weightspace zoo build`, `train` and `eval`).")
    if family in ("text-lora", "wordnet"):
        from weightspace.lora_demo import LoRADemoConfig as Config
        from weightspace.lora_demo import run_lora_demo as run
    else:
        from weightspace.demo import DemoConfig as Config
        from weightspace.demo import run_demo as run
    cfg = Config.wordnet() if family == "wordnet" else Config()
    if config:  # the fields the file sets, over the pipeline's defaults
        cfg = load_yaml(Config, config, over=cfg)
    cfg = apply_overrides(cfg, [*(overrides or []), *([f"out={out}"] if out is not None else [])])
    summary = run(cfg, console)
    for key, verdict in summary["verdict"].items():
        if verdict.get("duplicate_of"):  # the same model as a mode already printed
            continue
        mark = "[green]✓[/green]" if verdict.get("beats_retrieval_and_baselines") else "[red]✗[/red]"
        console.print(f"{mark} {verdict.get('sentence', key)}")
        per_start = summary.get("speedups", {}).get(key, {})
        if per_start:
            console.print("    adaptation speed-up over fine-tuning " + "; ".join(
                f"{start}: " + ", ".join(f"{data} {x}" for data, x in per_data.items())
                for start, per_data in per_start.items()))
    for name, fam in summary.get("families", {}).items():
        console.print(f"[bold]{name}[/bold]: {fam['sentence']} ({fam['report']})")
    if summary.get("adapter"):
        console.print(f"PEFT adapter for {summary['adapter']['task']}: {summary['adapter']['path']}")
    console.print(f"demo finished in {summary['seconds']:.0f} s")
    typer.echo(f"report: {summary['report']}")
