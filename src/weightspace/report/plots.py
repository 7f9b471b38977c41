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


def is_angle(name: str) -> bool:
    """Whether a descriptor named ``name`` is an angle in degrees (``angle_deg``, ``phase_deg``)."""
    name = name.lower()
    return name.endswith("_deg") or name in ("angle", "angle_deg", "degrees")


def angle_degrees(features: np.ndarray) -> np.ndarray | None:
    """Angles in [0, 360) degrees from (cos, sin) descriptor features, or None when the rows are
    not points on the unit circle (then the descriptor is not an angle)."""
    features = np.asarray(features, dtype=float)
    if features.ndim != 2 or features.shape[1] != 2 or not len(features):
        return None
    if not np.allclose((features**2).sum(1), 1.0, atol=1e-3):
        return None
    return np.degrees(np.arctan2(features[:, 1], features[:, 0])) % 360.0


def colour_by(ax, fig, xy: np.ndarray, values: np.ndarray, angle: bool, bar_label: str, **kwargs):
    """Scatter ``xy`` coloured by ``values`` with a colour bar. An angle (degrees) gets a cyclic
    colormap over the full circle, so 359 deg and 1 deg look alike, as they are."""
    kwargs = {"edgecolors": "0.45", "linewidths": 0.4, **kwargs}  # the palest colours stay visible on white
    if angle:
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=np.asarray(values, dtype=float) % 360.0, cmap="twilight",
                        vmin=0.0, vmax=360.0, **kwargs)
        bar = fig.colorbar(sc, ax=ax, label=bar_label, ticks=[0, 90, 180, 270, 360])
        bar.ax.set_yticklabels(["0°", "90°", "180°", "270°", "360°"])
    else:
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=np.asarray(values, dtype=float), cmap="viridis", **kwargs)
        fig.colorbar(sc, ax=ax, label=bar_label)
    return sc


def scatter_map(xy: np.ndarray, values: Sequence[float] | None = None, title: str = "", value_label: str = "",
                xlabel: str = "PC 1", ylabel: str = "PC 2", path: str | Path | None = None,
                angle: bool | None = None) -> Figure:
    """Points in 2-D, coloured by a value (with a colour bar) when one is given. ``angle`` (default:
    guessed from ``value_label``, e.g. ``angle_deg``) colours degrees on a cyclic colormap."""
    xy = np.asarray(xy, dtype=float)
    fig, ax = new_figure(5.5, 4.5)
    if values is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=18)
    else:
        angle = is_angle(value_label) if angle is None else angle
        label = "rotation angle (degrees)" if angle and value_label.lower() in ("angle_deg", "angle") else value_label
        colour_by(ax, fig, xy, np.asarray(values, dtype=float), angle, label, s=18)
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
