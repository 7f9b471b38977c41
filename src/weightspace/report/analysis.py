"""Write a zoo-geometry analysis: analysis.json, PNG plots, a card, and a summary table.

``run_analysis`` is what `weightspace analyze` and the demo run: for each zoo, raw and (where it
makes sense) barycentre-aligned weights, measured by geometry.analysis, then plotted here.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from weightspace.card import make_card
from weightspace.config import to_dict
from weightspace.geometry.analysis import AnalyzeConfig, analyze_zoo
from weightspace.io import atomic_write_json
from weightspace.report import plots
from weightspace.zoo.store import Zoo


def run_analysis(zoo_paths: list[Path], out: Path, cfg: AnalyzeConfig, console: Console | None = None) -> dict:
    """Analyse every zoo, write all outputs under ``out``, print the summary; returns the JSON dict.
    Progress and notes go to ``console`` (default: stderr), the table to stdout."""
    console = console if console is not None else Console(stderr=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the stage is many small ops; extra threads only contend
    try:
        results = _analyze_all(zoo_paths, cfg, console)
    finally:
        torch.set_num_threads(threads)
    _assign_slugs(results)
    out.mkdir(parents=True, exist_ok=True)
    written = _write_plots(results, out)
    report = {"config": to_dict(cfg), "zoos": results}
    atomic_write_json(out / "analysis.json", report)
    card = make_card("analysis", to_dict(cfg), seed=cfg.seed, zoos=[str(p) for p in zoo_paths],
                     outputs=["analysis.json", *written])
    atomic_write_json(out / "card.json", card)
    stdout = Console()
    if not stdout.is_terminal:  # a pipe or file gets the whole table instead of an 80-column squeeze
        stdout = Console(width=160)
    stdout.print(summary_table(results))
    console.print(f"wrote {out / 'analysis.json'}, {len(written)} plots and card.json")
    return report


def _analyze_all(zoo_paths: list[Path], cfg: AnalyzeConfig, console: Console) -> list[dict]:
    """analyze_zoo on each zoo in turn, with progress bars on stderr."""
    results = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:

        def track(iterable, description, total):
            return progress.track(iterable, total=total, description=description)

        def counter(description):
            task = progress.add_task(description, total=None)
            return lambda done, total: progress.update(task, completed=done, total=total)

        for path in zoo_paths:
            with Zoo.open_verified(path) as zoo:
                results.append(analyze_zoo(zoo, cfg, track=track, counter=counter))
    return results


def _assign_slugs(results: list[dict]) -> None:
    """File-name-safe, unique short names for each zoo's plots."""
    seen: dict[str, int] = {}
    for r in results:
        base = re.sub(r"[^A-Za-z0-9_.-]+", "-", r["name"]).strip("-.") or "zoo"
        seen[base] = seen.get(base, 0) + 1
        r["slug"] = base if seen[base] == 1 else f"{base}-{seen[base]}"


def _fmt(value, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _barrier(conn: dict, variant: str, metric: str) -> str:
    stats = conn.get(variant)
    if not stats:
        return "—"
    b = stats[metric]
    return f"{b['mean']:.3f}±{b['std']:.3f}"


def summary_table(results: list[dict]) -> Table:
    """One row per zoo and variant: the numbers worth comparing side by side."""
    table = Table(title="weight-space geometry")
    for col in ("zoo", "weights", "init", "members", "dims 90%", "dims 99%", "TwoNN", "MLE",
                "dist ρ", "kNN R²", "acc barrier", "loss barrier"):
        table.add_column(col, justify="left" if col in ("zoo", "weights", "init") else "right",
                         no_wrap=col != "zoo")
    for r in results:
        for variant, v in r["variants"].items():
            table.add_row(
                r["name"], variant, r["init_kind"], str(r["n_members"]),
                str(v["spectrum"]["dims_90"]), str(v["spectrum"]["dims_99"]),
                _fmt(v["intrinsic_dim"]["two_nn"], 1), _fmt(v["intrinsic_dim"]["mle"], 1),
                _fmt(v["clustering"]["spearman"]), _fmt(v["clustering"]["knn_r2"]),
                _barrier(r["connectivity"], variant, "acc_barrier"), _barrier(r["connectivity"], variant, "loss_barrier"),
            )
    table.caption = ("barriers: mean ± std over member pairs; aligned = after weight matching. "
                     "dist ρ: Spearman of weight vs descriptor distances; kNN R²: leave-one-out descriptor regression.")
    return table


def _write_plots(results: list[dict], out: Path) -> list[str]:
    written: list[str] = []

    def save(fig_fn, name: str, *args, **kwargs) -> None:
        fig_fn(*args, path=out / name, **kwargs)
        written.append(name)

    curves = {f"{r['name']} {variant}": v["spectrum"]["cumulative"] for r in results for variant, v in r["variants"].items()}
    save(plots.cumulative_curves, "spectrum.png", curves, title="PCA spectrum of the zoos")
    for r in results:
        slug, variants = r["slug"], r["variants"]
        colour = [d[0] for d in r["descriptors"]]
        for variant, v in variants.items():
            save(plots.scatter_map, f"{slug}-map-{variant}.png", v["map"]["coords"], colour,
                 title=f"{r['name']} ({variant})", value_label=r["descriptor_names"][0],
                 xlabel=f"PC 1 ({v['map']['explained'][0]:.0%})", ylabel=f"PC 2 ({v['map']['explained'][1]:.0%})")
        conn = r["connectivity"]
        for metric, label in (("acc", "test accuracy"), ("loss", "test loss")):
            series = {variant: (conn[variant][f"{metric}_mean"], conn[variant][f"{metric}_std"])
                      for variant in ("raw", "aligned") if conn.get(variant)}
            lams = conn["raw"]["lambdas"]
            save(plots.band_curves, f"{slug}-barrier-{metric}.png", lams, series,
                 title=f"{r['name']}: interpolation, {conn['pairing'].replace('_', ' ')} pairs",
                 xlabel="λ (0 = member a, 1 = member b)", ylabel=label)
        layers = [row["name"] for row in variants["raw"]["modularity_layers"]]
        save(plots.bar_chart, f"{slug}-layer-variance.png", layers,
             {variant: [row["variance_share"] for row in v["modularity_layers"]] for variant, v in variants.items()},
             title=f"{r['name']}: variance share per layer", ylabel="variance share")
        r2 = {variant: [row["descriptor_r2"] if row["descriptor_r2"] is not None else 0.0 for row in v["modularity_layers"]]
              for variant, v in variants.items()}
        save(plots.bar_chart, f"{slug}-layer-descriptor-r2.png", layers, r2,
             title=f"{r['name']}: descriptor R² per layer", ylabel="out-of-sample R²")
    return written
