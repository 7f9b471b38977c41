"""Plot helpers shared by every stage's reports: figures drawn on the Agg canvas, saved atomically.

Figures are built with ``matplotlib.figure.Figure`` and an explicit Agg canvas instead of pyplot,
so nothing here touches global state (no backend switch, no open-figure registry to leak), and
plotting works on headless machines and in worker processes. Every helper returns the figure;
given ``path`` it also writes a PNG there atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from weightspace.io import atomic_path


def new_figure(width: float = 6.0, height: float = 4.0) -> tuple[Figure, "object"]:
    """A figure with one axes, attached to an Agg canvas."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def save_figure(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG at ``path`` (temporary file + rename: never half-written)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path


def _finish(fig: Figure, path: str | Path | None) -> Figure:
    if path is not None:
        save_figure(fig, path)
    return fig


def cumulative_curves(curves: Mapping[str, Sequence[float]], title: str = "", thresholds: Sequence[float] = (0.9, 0.99),
                      xlabel: str = "principal components", ylabel: str = "cumulative explained variance",
                      path: str | Path | None = None) -> Figure:
    """One rising curve per label (e.g. cumulative explained variance), with threshold lines."""
    fig, ax = new_figure()
    ax.set_xscale("log")  # the interesting part is the first few components
    for label, values in curves.items():
        values = np.asarray(values, dtype=float)
        ax.plot(np.arange(1, values.size + 1), values, marker=".", label=label)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel, ylim=(0, 1.02))
    for t in thresholds:
        ax.axhline(t, color="grey", linestyle=":", linewidth=1)
        ax.text(ax.get_xlim()[0], t, f" {t:.0%}", va="bottom", ha="left", fontsize=8, color="grey")
    if curves:
        ax.legend(fontsize=8)
    return _finish(fig, path)


def scatter_map(xy: np.ndarray, values: Sequence[float] | None = None, title: str = "", value_label: str = "",
                xlabel: str = "PC 1", ylabel: str = "PC 2", path: str | Path | None = None) -> Figure:
    """Points in 2-D, coloured by a value (with a colour bar) when one is given."""
    xy = np.asarray(xy, dtype=float)
    fig, ax = new_figure(5.5, 4.5)
    if values is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=18)
    else:
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=np.asarray(values, dtype=float), cmap="viridis", s=18)
        fig.colorbar(sc, ax=ax, label=value_label)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return _finish(fig, path)


def band_curves(x: Sequence[float], series: Mapping[str, tuple[Sequence[float], Sequence[float]]], title: str = "",
                xlabel: str = "", ylabel: str = "", path: str | Path | None = None) -> Figure:
    """Mean curves with a shaded band of +/- one standard deviation, one per label."""
    fig, ax = new_figure()
    x = np.asarray(x, dtype=float)
    for label, (mean, std) in series.items():
        mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
        (line,) = ax.plot(x, mean, marker=".", label=label)
        ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if series:
        ax.legend(fontsize=8)
    return _finish(fig, path)


def bar_chart(categories: Sequence[str], series: Mapping[str, Sequence[float]], title: str = "", ylabel: str = "",
              path: str | Path | None = None) -> Figure:
    """Grouped bars: one group per category, one bar per series label."""
    fig, ax = new_figure(max(5.0, 0.6 * len(categories) * max(len(series), 1) + 2), 4.0)
    n = max(len(series), 1)
    width = 0.8 / n
    pos = np.arange(len(categories))
    for i, (label, values) in enumerate(series.items()):
        ax.bar(pos + (i - (n - 1) / 2) * width, np.asarray(values, dtype=float), width, label=label)
    ax.set_xticks(pos, list(categories), rotation=45 if len(categories) > 6 else 0, ha="right" if len(categories) > 6 else "center")
    ax.set(title=title, ylabel=ylabel)
    if series:
        ax.legend(fontsize=8)
    return _finish(fig, path)
