"""The report plot helpers (weightspace.report.plots) draw without a display and save atomically."""

import numpy as np
from matplotlib.figure import Figure

from weightspace.report import plots

PNG = b"\x89PNG\r\n\x1a\n"


def test_every_helper_returns_a_figure_and_writes_a_png(tmp_path):
    x = np.linspace(0, 1, 5)
    figs = {
        "spectrum.png": plots.cumulative_curves({"raw": [0.5, 0.8, 1.0], "aligned": [0.9, 1.0]}, title="t"),
        "map.png": plots.scatter_map(np.random.default_rng(0).normal(size=(10, 2)), np.arange(10), value_label="v"),
        "plain-map.png": plots.scatter_map(np.zeros((3, 2))),
        "band.png": plots.band_curves(x, {"raw": (x, 0.1 * x), "aligned": (1 - x, 0 * x)}, xlabel="λ"),
        "bars.png": plots.bar_chart(["fc0", "fc1", "fc2"], {"raw": [0.2, 0.3, 0.5], "aligned": [0.1, 0.4, 0.5]}),
    }
    for name, fig in figs.items():
        assert isinstance(fig, Figure)
        plots.save_figure(fig, tmp_path / name)
        assert (tmp_path / name).read_bytes()[:8] == PNG
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(figs)  # no temporary files left


def test_path_argument_saves_directly(tmp_path):
    out = tmp_path / "sub" / "bars.png"
    plots.bar_chart(["a"], {"s": [1.0]}, path=out)
    assert out.read_bytes()[:8] == PNG
