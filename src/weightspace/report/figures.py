"""The evaluation report's figures, drawn from a results.json dictionary (evaluate.harness).

Each function returns a matplotlib Figure (Agg canvas, no pyplot state). Colours encode what a
method is: generated weights, the trained reference, retrieval, memorization baselines or
fine-tuning, so a reader sees at a glance whether generation sits with the copies or apart.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from matplotlib.figure import Figure

from weightspace.evaluate.results import generator_mode, generator_name, identical_generator_modes
from weightspace.report.plots import angle_degrees, colour_by, new_figure

KIND_STYLE = {
    "generator": ("tab:red", "^", "generated"),
    "reference": ("black", "*", "trained reference"),
    "retrieval": ("tab:blue", "s", "retrieval"),
    "oracle": ("tab:cyan", "s", "oracle retrieval"),
    "memorization": ("tab:grey", "o", "memorization baselines"),
    "finetune": ("tab:green", "D", "fine-tuning"),
    "fewshot": ("tab:olive", "h", "trained on the support set"),
    "merging": ("tab:brown", "P", "merging (task arithmetic, TIES)"),
    "majority": ("tab:purple", "X", "majority class"),
    "multitask": ("tab:orange", "d", "multi-task network"),
    "ablation": ("tab:pink", "x", "condition controls (told nothing / another task's)"),
}


def _style(kind: str) -> tuple[str, str, str]:
    return KIND_STYLE.get(kind, ("tab:purple", "o", kind))


# Methods drawn and named one by one (in the legend, never as text on the plot, where labels
# collide); every other kind is one legend entry for the whole kind.
NAMED_KINDS = ("generator", "reference", "retrieval", "oracle")
GENERATOR_STYLES = [("tab:red", "^"), ("darkred", "<"), ("salmon", ">"), ("orangered", "p"), ("maroon", "h")]
ACCURACY_WINDOW = 0.06  # the accuracy axis shows the methods within this much of the best one


def accuracy_limits(values, window: float = ACCURACY_WINDOW) -> tuple[float, float]:
    """y-limits around the accuracies within ``window`` of the best, so that methods worth comparing
    (typically all within a few points of each other) are not squeezed into a sliver of the axis
    by a baseline at chance; points below the lower limit are drawn as arrows at the bottom edge."""
    v = [float(x) for x in values if x is not None and np.isfinite(x)]
    if not v:
        return 0.0, 1.0
    best = max(v)
    keep = [x for x in v if x >= best - window]
    lo, hi = min(keep), max(keep)
    pad = max(0.004, 0.08 * (hi - lo))
    return lo - pad, hi + pad


def group_label(methods: Mapping[str, Any], keys: list[str]) -> str:
    """A generator's label; modes that gave the same model are named together."""
    first = methods[keys[0]]
    if len(keys) == 1:
        return first.get("label", keys[0])
    modes = " = ".join(generator_mode(k, methods[k]) for k in keys)
    condition = (first.get("info") or {}).get("condition")
    return f"{generator_name(keys[0], first)} ({modes}{f', {condition} condition' if condition else ''})"


def _scatter_methods(ax, results: Mapping[str, Any], x_of, notes: list | None, extra_acc=()) -> tuple[float, float]:
    """Scatter every method at (x_of(key, m), accuracy); return the y-limits used. Named methods
    get their own legend entry; a method below the limits is an arrow at the bottom edge."""
    methods = results["methods"]
    groups = identical_generator_modes(dict(methods))
    in_group = {k: rep for rep, keys in groups.items() for k in keys}
    points = []  # (keys, label, kind, colour, marker, size); label None: one entry per kind, given below
    g_index = 0
    for key, m in methods.items():
        kind = m["kind"]
        if kind == "generator":
            if in_group.get(key, key) != key:
                continue  # drawn with its group's representative
            keys = groups.get(key, [key])
            colour, marker = GENERATOR_STYLES[g_index % len(GENERATOR_STYLES)]
            g_index += 1
            points.append((keys, group_label(methods, keys), kind, colour, marker, 70))
            continue
        colour, marker, kind_label = _style(kind)
        if kind in NAMED_KINDS:
            points.append(([key], m.get("label", key), kind, colour, marker, 90 if kind == "reference" else 45))
        else:
            points.append(([key], None, kind, colour, marker, 30))
    xy = []
    for keys, label, kind, colour, marker, size in points:
        coords = [(x_of(k, methods[k]), methods[k]["acc_mean"]) for k in keys]
        coords = [(x, y) for x, y in coords if x is not None and y is not None]
        if coords:
            xy.append((keys, label, kind, colour, marker, size, coords))
    lo, hi = accuracy_limits([y for *_, coords in xy for _, y in coords] + list(extra_acc))
    below = []
    labelled_kinds: set = set()
    for keys, label, kind, colour, marker, size, coords in xy:
        shown = [(x, y) for x, y in coords if y >= lo]
        if shown:
            if label is None and kind not in labelled_kinds:  # the kind's entry goes on a point that is drawn
                label = _style(kind)[2]
                labelled_kinds.add(kind)
            xs, ys = zip(*shown)
            if len(shown) > 1:  # modes of one model at different costs: one entry, joined
                ax.plot(xs, ys, color=colour, linewidth=0.8, alpha=0.6)
            ax.scatter(xs, ys, c=colour, marker=marker, s=size, label=label, alpha=0.9,
                       edgecolors="white" if kind in NAMED_KINDS else "none", linewidths=0.5, zorder=3)
        for (x, y), k in zip(coords, keys):
            if y < lo:
                below.append((methods[k].get("label", k), x, y, colour))
    if below:
        from matplotlib.transforms import blended_transform_factory

        tr = blended_transform_factory(ax.transData, ax.transAxes)
        ax.scatter([x for _, x, _, _ in below], [hi] * len(below), alpha=0.0)  # keeps their x inside the axis
        for _, x, _, colour in below:
            ax.scatter([x], [0.0], transform=tr, marker="v", c=colour, s=40, clip_on=False, zorder=4)
        ax.scatter([], [], marker="v", c="grey", s=40, label=f"below the axis (< {lo:.2f}): {len(below)}")
        if notes is not None:
            notes.append(f"Arrows at the bottom edge: {len(below)} method{'s' if len(below) != 1 else ''} below "
                         f"{lo:.2f}, off the axis: " + "; ".join(
                             f"{label} ({y:.3f})" for label, _, y, _ in sorted(below, key=lambda b: -b[2])) + ".")
    ax.set_ylim(lo, hi)
    return lo, hi


def _legend_outside(ax) -> None:
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False)


def accuracy_vs_novelty(results: Mapping[str, Any], notes: list | None = None) -> Figure:
    """Accuracy against the highest error-set overlap with any zoo member (1 = copies its mistakes).
    ``notes``, when given, receives a sentence naming the methods drawn off the axis."""
    fig, ax = new_figure(9.0, 4.6)

    def x_of(key, m):
        if m["kind"] == "finetune" and "@" in key and not key.endswith("@converged"):
            return None
        return m.get("novelty_iou_max_mean")

    _scatter_methods(ax, results, x_of, notes)
    ax.set(xlabel="novelty: max error-set IoU with a zoo member (lower = more novel)", ylabel="held-out test accuracy",
           title="Accuracy vs novelty")
    ax.grid(alpha=0.25)
    _legend_outside(ax)
    return fig


def accuracy_vs_time(results: Mapping[str, Any], notes: list | None = None) -> Figure:
    """Accuracy against seconds to obtain weights for a new task, with fine-tuning curves."""
    fig, ax = new_figure(9.0, 4.6)
    curves = []
    for start, per_data in results.get("overall", {}).get("finetune_curves", {}).items():
        for data, c in per_data.items():
            grid = np.asarray(c.get("grid", []), dtype=float)
            acc = np.asarray(c.get("acc_mean", []), dtype=float)
            if grid.size == 0 or acc.size != grid.size:
                continue
            per_step = results["overall"].get("finetune", {}).get("seconds_per_step", {})
            per_step = float(per_step.get(data, 0.0) if isinstance(per_step, dict) else per_step)
            t = _start_seconds(results, start) + grid * per_step
            keep = t > 0
            curves.append((start, data, t[keep], acc[keep]))

    def x_of(key, m):
        seconds = m.get("seconds_per_task")
        return seconds if seconds and seconds > 0 and m["kind"] != "finetune" else None

    _scatter_methods(ax, results, x_of, notes, extra_acc=[a for *_, acc in curves for a in acc])
    for start, data, t, acc in curves:  # coloured by their start (retrieval's blue, generation's red)
        where = "support set" if data == "support" else "full training data" if data == "train" else data
        colour = START_COLOURS.get(start, GENERATOR_STYLES[0][0])
        ax.plot(t, acc, linestyle="--" if data == "support" else "-", linewidth=1.1, marker=".", markersize=3,
                color=colour, alpha=0.75, label=f"fine-tune from {start} on the {where}")
    ax.set_xscale("log")
    ax.set(xlabel="seconds to obtain weights for a new task (log)", ylabel="held-out test accuracy",
           title="Accuracy vs adaptation time")
    ax.grid(alpha=0.25, which="both")
    _legend_outside(ax)
    return fig


# fine-tuning curves by start: retrieval's colour for the zoo start, generation's for generated ones
START_COLOURS = {"zoo-best": "tab:blue", "shared": "tab:green", "scratch": "tab:gray"}


def _start_seconds(results: Mapping[str, Any], start: str) -> float:
    """Seconds to obtain a fine-tuning start: retrieval for the zoo start, nothing for the shared
    start and a fresh init, generation otherwise."""
    if start in ("shared", "scratch"):
        return 0.0
    key = "retrieval" if start == "zoo-best" else f"generator:{start}"
    return float(results["methods"].get(key, {}).get("seconds_per_task") or 0.0)


def weight_space_map(results: Mapping[str, Any]) -> Figure | None:
    """Zoo members (coloured by their task descriptor: an angle in degrees on a cyclic colormap),
    held-out references and generated weights."""
    wm = results.get("overall", {}).get("weight_map")
    if not wm or not wm.get("zoo", {}).get("xy"):
        return None
    fig, ax = new_figure(7.5, 5.0)
    xy = np.asarray(wm["zoo"]["xy"], dtype=float)
    desc = np.asarray(wm["zoo"].get("descriptor") or [[0.0]] * len(xy), dtype=float).reshape(len(xy), -1)
    degrees = angle_degrees(desc)
    angle = degrees is not None
    colour_by(ax, fig, xy, degrees if angle else desc[:, 0], angle,
              "task: rotation angle (degrees)" if angle else "task descriptor (first value)", s=16, alpha=0.8, label="zoo members")
    styles = {"reference": ("black", "*", 90), "retrieval": ("tab:blue", "s", 30)}
    ref = np.asarray(wm["methods"].get("reference", []), dtype=float)
    methods = results.get("methods", {})
    for key, pts in wm["methods"].items():
        pts = np.asarray(pts, dtype=float)
        colour_, marker, size = styles.get(key, ("tab:red", "^", 50))
        label = methods.get(key, {}).get("label", key)
        ax.scatter(pts[:, 0], pts[:, 1], c=colour_, marker=marker, s=size, label=label, edgecolors="white",
                   linewidths=0.5, zorder=3)
        if key not in styles and ref.shape == pts.shape:  # link each generated model to its task's reference
            for a, b in zip(ref, pts):
                ax.plot([a[0], b[0]], [a[1], b[1]], color="tab:red", linewidth=0.6, alpha=0.6)
    ev = wm.get("explained_variance", [0, 0])
    ax.set(xlabel=f"PC 1 ({ev[0]:.0%})", ylabel=f"PC 2 ({ev[1]:.0%})", title="Weight space (zoo frame)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
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
