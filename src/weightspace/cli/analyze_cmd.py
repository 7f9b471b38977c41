"""`weightspace analyze`: the geometry of one or more zoos, side by side.

For each zoo, raw and (where it makes sense) barycentre-aligned weights: PCA dimensions for 90%
and 99% of the variance, intrinsic dimension (TwoNN, MLE), how well weight-space neighbours
share tasks, which layers vary and with the task, and linear-mode-connectivity barriers before
and after weight matching. Writes analysis.json, PNG plots and a card to --out (report/analysis.py); prints a table.
"""

from __future__ import annotations

from pathlib import Path

import typer

from weightspace.cli.app import app, console
from weightspace.geometry.analysis import AnalyzeConfig
from weightspace.report.analysis import run_analysis


@app.command("analyze")
def analyze(
    zoos: list[Path] = typer.Argument(..., help="zoo directories to analyse and compare"),
    out: Path = typer.Option(..., "--out", "-o", help="directory for analysis.json, plots and the card"),
    pairs: int = typer.Option(AnalyzeConfig.pairs, "--pairs", min=1, help="member pairs for the mode-connectivity barriers"),
    no_align: bool = typer.Option(False, "--no-align", help="skip barycentre alignment and weight-matched barriers"),
    lambdas: int = typer.Option(AnalyzeConfig.lambdas, "--lambdas", min=3,
                                help="points on each interpolation path (both ends and at least one between)"),
    eval_examples: int = typer.Option(AnalyzeConfig.eval_examples, "--eval-examples", min=1,
                                      help="test examples per task for barriers"),
    seed: int = typer.Option(AnalyzeConfig.seed, "--seed", help="seed of pair sampling, matching and CV folds"),
) -> None:
    """Spectrum, intrinsic dimension, descriptor clustering, per-layer variance and mode connectivity."""
    from weightspace.io import check_output_dir

    check_output_dir(out, "--out directory")
    cfg = AnalyzeConfig(pairs=pairs, align=not no_align, lambdas=lambdas, eval_examples=eval_examples, seed=seed)
    run_analysis(zoos, out, cfg, console)
