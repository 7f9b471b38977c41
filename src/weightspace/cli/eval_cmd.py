"""`weightspace eval`: judge generators on held-out tasks against fine-tuning, retrieval and the
memorization baselines; write DIR/results.json and print the ranking with a plain verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from weightspace.cli.app import app, comma_ints, console
from weightspace.errors import WeightspaceError

# Rows are coloured by kind (generator, reference, retrieval, oracle, memorization, finetune).
_STYLE = {"generator": "bold cyan", "reference": "green", "retrieval": "yellow", "oracle": "dim",
          "memorization": "magenta", "finetune": ""}


def parse_steps(text: str) -> tuple[int, ...]:
    steps = tuple(comma_ints(text, "--finetune-steps", "step counts", "0,10,50,200"))
    if not steps or any(s < 0 for s in steps):
        raise WeightspaceError(f"--finetune-steps {text!r} needs at least one non-negative step count.")
    return steps


def _fmt(value: Any, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _short(key: str) -> str:
    return key.replace("finetune:", "ft:").replace("@converged", "@conv")


def summary_table(results: dict) -> Table:
    """Methods sorted by mean test accuracy, one row each (zero-step fine-tunes, which repeat
    their start, are left to results.json). Columns: accuracy, accuracy / reference, highest
    error-set IoU with a zoo member, aligned distance to the nearest member, seconds per task."""
    table = Table(title=f"{len(results['tasks'])} held-out tasks; zoo NN distance (median) "
                        f"{_fmt(results['overall']['zoo_nn_dist_median'], '.3g')}")
    table.caption = ("÷ref: accuracy / trained reference; errIoU: highest overlap of test errors with a zoo "
                     "member (1 = its mistakes); NNdist: aligned L2 to the nearest zoo member")
    mteb = bool(results["overall"].get("mteb"))  # architectures with features: the MTEB-style score of the embeddings
    if mteb:
        table.caption += "; mteb: logistic regression on the method's embeddings, k-fold over each task's data"
    table.add_column("method", no_wrap=True, overflow="ellipsis", max_width=30)
    for col in ("acc", "÷ref", "errIoU", "NNdist", "s/task", *(("mteb",) if mteb else ())):
        table.add_column(col, justify="right", no_wrap=True, min_width=max(5, len(col)))
    for key in results["ranking"]:
        e = results["methods"][key]
        if e["kind"] == "finetune" and e["info"].get("steps") == 0:
            continue
        extra = (_fmt(e.get("mteb_accuracy_mean"), ".3f"),) if mteb else ()
        table.add_row(_short(key), _fmt(e["acc_mean"], ".3f"), _fmt(e["acc_ratio_to_trained"], ".3f"),
                      _fmt(e["novelty_iou_max_mean"], ".2f"), _fmt(e["nn_aligned_dist_mean"], ".3g"),
                      _fmt(e["seconds_per_task"], ".2g"), *extra, style=_STYLE.get(e["kind"], ""))
    return table


START_WORDS = {"shared": "shared pretrained start", "scratch": "fresh init", "zoo-best": "best zoo start"}


def print_summary(results: dict, out: Console) -> None:
    out.print(summary_table(results))
    overall = results["overall"]
    for key, v in overall["verdict"].items():
        mark = "[green]✓[/green]" if v["beats_retrieval_and_baselines"] else "[red]✗[/red]"
        out.print(f"{mark} {v['sentence']}")
        for start, per_data in overall["cost"][key].items():
            parts = []
            for data, c in per_data.items():
                bound = "≥ " if c["speedup_is_lower_bound"] else ""
                parts.append(f"{data} {bound}{c['finetune_steps_to_match_median']:.0f} steps (median) / "
                             f"{c['finetune_seconds_to_match']:.2g} s (speed-up {bound}{_fmt(c['adaptation_speedup'], '.3g')}x"
                             + (f", {c['tasks_not_reached']} task(s) never matched" if c["speedup_is_lower_bound"] else "") + ")")
            out.print(f"    fine-tuning the {START_WORDS.get(start, start)} to match it: " + "; ".join(parts))
    if overall.get("best_fewshot"):
        out.print(overall["best_fewshot"]["sentence"])
    if overall.get("above_reference_sentence"):
        out.print(f"[yellow]![/yellow] {overall['above_reference_sentence']}")


@app.command("eval")
def eval_command(
    generators: list[Path] = typer.Argument(..., help="Generator directories written by `weightspace train`."),
    zoo: Path = typer.Option(..., "--zoo", help="The zoo the generators were trained on (its held-out tasks are used)."),
    out: Path = typer.Option(..., "--out", help="Directory for results.json."),
    tasks: int = typer.Option(0, "--tasks", min=0, help="Evaluate the first N held-out tasks; 0 = all."),
    finetune_steps: str = typer.Option("0,10,50,200", "--finetune-steps", help="Fine-tuning steps reported as methods."),
    budget: int = typer.Option(0, "--budget", min=0, help="'Until converged' steps; 0 = the zoo's own training steps."),
    eval_every: int = typer.Option(10, "--eval-every", min=1, help="Resolution, in steps, of fine-tuning steps-to-match."),
    seed: int = typer.Option(0, "--seed", help="Seed of every random draw."),
    backend: str = typer.Option("local", "--backend",
                                help="Where fine-tuning (the slowest stage) runs: local or ray (a Ray cluster; "
                                     "every node needs this weightspace version installed)."),
    workers: int = typer.Option(0, "--workers", min=0,
                                help="Processes that fine-tune chunks of tasks; 0 = one batched run in this process. "
                                     "With --backend ray: chunks at once, 0 = one per cluster CPU."),
    address: str = typer.Option(None, "--address",
                                help="Ray cluster to use with --backend ray (host:6379, ray://host:10001 or auto); "
                                     "omitted, a local Ray instance is started and stopped."),
    overrides: list[str] = typer.Option([], "--set", help="Any EvalConfig field as key=value, e.g. --set average_k=8."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Evaluate generators on held-out tasks beside fine-tuning, retrieval and memorization baselines."""
    import torch

    from weightspace.config import apply_overrides
    from weightspace.evaluate.harness import EvalConfig, evaluate, write_results
    from weightspace.io import check_output_dir

    check_output_dir(out, "--out directory")  # before minutes of evaluation, not after
    torch.set_num_threads(1)  # vmap gives the parallelism; threads only contend on small nets
    cfg = EvalConfig(tasks=tasks, finetune_steps=parse_steps(finetune_steps), budget=budget,
                     eval_every=eval_every, seed=seed, backend=backend, workers=workers, address=address)
    cfg = apply_overrides(cfg, overrides)
    results = evaluate(generators, zoo, cfg, progress=not quiet, console=console)
    path = write_results(out, results)
    print_summary(results, Console())
    console.print(f"wrote {path}")
