"""The evaluation report's figures, drawn from a results.json dictionary (evaluate.harness).

Each function returns a matplotlib Figure (Agg canvas, no pyplot state). Colours encode what a
method is: generated weights, the trained reference, retrieval, memorization baselines or
fine-tuning, so a reader sees at a glance whether generation sits with the copies or apart.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from matplotlib.figure import Figure

from weightspace.report.plots import new_figure

KIND_STYLE = {
    "generator": ("tab:red", "^", "generated"),
    "reference": ("black", "*", "trained reference"),
    "retrieval": ("tab:blue", "s", "retrieval"),
    "oracle": ("tab:cyan", "s", "oracle retrieval"),
    "memorization": ("tab:grey", "o", "memorization baselines"),
    "finetune": ("tab:green", "D", "fine-tuning"),
    "fewshot": ("tab:olive", "v", "trained on the support set"),
    "merging": ("tab:brown", "P", "merging (task arithmetic, TIES)"),
}


def _style(kind: str) -> tuple[str, str, str]:
    return KIND_STYLE.get(kind, ("tab:purple", "o", kind))


def _legend_once(ax, seen: set, kind: str) -> str | None:
    if kind in seen:
        return None
    seen.add(kind)
    return _style(kind)[2]


def accuracy_vs_novelty(results: Mapping[str, Any]) -> Figure:
    """Accuracy against the highest error-set overlap with any zoo member (1 = copies its mistakes)."""
    fig, ax = new_figure(6.5, 4.5)
    seen: set = set()
    for key, m in results["methods"].items():
        iou = m.get("novelty_iou_max_mean")
        if iou is None or m["kind"] == "finetune" and not key.endswith("@converged") and "@" in key:
            continue
        colour, marker, _ = _style(m["kind"])
        ax.scatter(iou, m["acc_mean"], c=colour, marker=marker, s=60 if m["kind"] == "generator" else 30,
                   label=_legend_once(ax, seen, m["kind"]), edgecolors="none", alpha=0.85)
        if m["kind"] in ("generator", "retrieval", "reference"):
            ax.annotate(m.get("label", key), (iou, m["acc_mean"]), fontsize=7, xytext=(4, 3), textcoords="offset points")
    ax.set(xlabel="novelty: max error-set IoU with a zoo member (lower = more novel)", ylabel="held-out test accuracy",
           title="Accuracy vs novelty")
    ax.legend(fontsize=7, loc="lower left")
    return fig


def accuracy_vs_time(results: Mapping[str, Any]) -> Figure:
    """Accuracy against seconds to obtain weights for a new task, with fine-tuning curves."""
    fig, ax = new_figure(6.5, 4.5)
    seen: set = set()
    for key, m in results["methods"].items():
        seconds = m.get("seconds_per_task")
        if not seconds or seconds <= 0 or m["kind"] == "finetune":
            continue
        colour, marker, _ = _style(m["kind"])
        ax.scatter(seconds, m["acc_mean"], c=colour, marker=marker, s=60 if m["kind"] == "generator" else 30,
                   label=_legend_once(ax, seen, m["kind"]), alpha=0.85)
        if m["kind"] in ("generator", "retrieval", "reference"):
            ax.annotate(m.get("label", key), (seconds, m["acc_mean"]), fontsize=7, xytext=(4, 3), textcoords="offset points")
    curves = results.get("overall", {}).get("finetune_curves", {})
    for start, per_data in curves.items():
        for data, c in per_data.items():
            grid = np.asarray(c.get("grid", []), dtype=float)
            acc = np.asarray(c.get("acc_mean", []), dtype=float)
            if grid.size == 0 or acc.size != grid.size:
                continue
            per_step = results["overall"].get("finetune", {}).get("seconds_per_step", {})
            per_step = float(per_step.get(data, 0.0) if isinstance(per_step, dict) else per_step)
            t0 = _start_seconds(results, start)
            t = t0 + grid * per_step
            keep = t > 0
            ax.plot(t[keep], acc[keep], linestyle="--" if data == "support" else "-", linewidth=1.2,
                    label=f"fine-tune from {start} ({data})")
    ax.set_xscale("log")
    ax.set(xlabel="seconds to obtain weights for a new task (log)", ylabel="held-out test accuracy",
           title="Accuracy vs adaptation time")
    ax.legend(fontsize=6, loc="lower right")
    return fig


def _start_seconds(results: Mapping[str, Any], start: str) -> float:
    """Seconds to obtain a fine-tuning start: retrieval for the zoo start, generation otherwise."""
    key = "retrieval" if start == "zoo-best" else f"generator:{start}"
    return float(results["methods"].get(key, {}).get("seconds_per_task") or 0.0)


def weight_space_map(results: Mapping[str, Any]) -> Figure | None:
    """Zoo members (coloured by their first descriptor), held-out references and generated weights."""
    wm = results.get("overall", {}).get("weight_map")
    if not wm or not wm.get("zoo", {}).get("xy"):
        return None
    fig, ax = new_figure(6.5, 5.0)
    xy = np.asarray(wm["zoo"]["xy"], dtype=float)
    desc = np.asarray(wm["zoo"].get("descriptor") or [[0.0]] * len(xy), dtype=float)
    colour = np.arctan2(desc[:, 1], desc[:, 0]) if desc.shape[1] == 2 else desc[:, 0]
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=colour, cmap="twilight" if desc.shape[1] == 2 else "viridis", s=14,
                    alpha=0.7, label="zoo members")
    fig.colorbar(sc, ax=ax, label="task descriptor" + (" (angle)" if desc.shape[1] == 2 else ""))
    styles = {"reference": ("black", "*", 80), "retrieval": ("tab:blue", "s", 30)}
    ref = np.asarray(wm["methods"].get("reference", []), dtype=float)
    for key, pts in wm["methods"].items():
        pts = np.asarray(pts, dtype=float)
        colour_, marker, size = styles.get(key, ("tab:red", "^", 50))
        ax.scatter(pts[:, 0], pts[:, 1], c=colour_, marker=marker, s=size, label=key, edgecolors="white", linewidths=0.5)
        if key not in styles and ref.shape == pts.shape:  # link each generated model to its task's reference
            for a, b in zip(ref, pts):
                ax.plot([a[0], b[0]], [a[1], b[1]], color="tab:red", linewidth=0.5, alpha=0.5)
    ev = wm.get("explained_variance", [0, 0])
    ax.set(xlabel=f"PC 1 ({ev[0]:.0%})", ylabel=f"PC 2 ({ev[1]:.0%})", title="Weight space (zoo frame)")
    ax.legend(fontsize=7, loc="best")
    return fig


def sweep_curves(sweep: Mapping[str, Any]) -> Figure:
    """Held-out accuracy against zoo size for generation, retrieval and support-set fine-tuning."""
    fig, ax = new_figure(6.0, 4.2)
    sizes = sweep["zoo_sizes"]
    for label, values in sweep["acc"].items():
        ax.plot(sizes, values, marker="o", label=label)
    ref = sweep.get("reference_acc")
    if ref is not None:
        ax.axhline(ref, color="black", linestyle=":", label="trained reference")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="zoo tasks", ylabel="held-out test accuracy", title="What generation adds as the zoo grows")
    ax.legend(fontsize=7)
    return fig
