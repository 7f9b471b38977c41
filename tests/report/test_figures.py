"""The report's figures: accuracy axes zoomed to the methods worth comparing (with off-axis
methods marked), one legend entry per distinct model and no text labels on the plot, angles in
degrees on a cyclic colormap."""

import numpy as np
import pytest

from weightspace.report import figures, plots
from test_report_html import results_fixture, three_identical_modes


def test_accuracy_limits_zoom_to_the_methods_near_the_best():
    lo, hi = figures.accuracy_limits([0.97, 0.96, 0.955, 0.3, 0.41, None])
    assert 0.94 < lo < 0.955 and 0.97 < hi < 0.98
    assert figures.accuracy_limits([]) == (0.0, 1.0)


def _results_with_a_bad_baseline():
    r = results_fixture()
    r["methods"]["zoo-mean"] = {"kind": "memorization", "label": "zoo mean", "acc_mean": 0.31,
                                "novelty_iou_max_mean": 0.7, "seconds_per_task": 0.001, "per_task": [{"acc": 0.31}] * 2}
    return r


@pytest.mark.parametrize("draw", [figures.accuracy_vs_novelty, figures.accuracy_vs_time])
def test_off_axis_methods_are_arrows_and_named_in_a_note(draw):
    notes = []
    fig = draw(_results_with_a_bad_baseline(), notes=notes)
    ax = fig.axes[0]
    assert ax.get_ylim()[0] > 0.8  # not stretched down to 0.31
    assert len(notes) == 1 and "zoo mean (0.310)" in notes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert any(label.startswith("below the axis") for label in labels)
    assert not ax.texts  # names go in the legend, never as text that can collide on the plot


def test_identical_modes_are_one_legend_entry():
    fig = figures.accuracy_vs_novelty(three_identical_modes())
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert [l for l in labels if l.startswith("g (")] == ["g (sample = central = best-of-8)"]


def _cmap_and_range(fig):
    sc = fig.axes[0].collections[0]
    return sc.get_cmap().name, sc.norm.vmin, sc.norm.vmax


def test_angles_are_degrees_on_a_cyclic_colormap_everywhere():
    fig = plots.scatter_map(np.zeros((4, 2)), [0, 90, 180, 350], value_label="angle_deg")
    assert _cmap_and_range(fig) == ("twilight", 0.0, 360.0)
    assert "degrees" in fig.axes[1].get_ylabel()
    fig = figures.weight_space_map(results_fixture())  # descriptors there are (cos, sin) features
    assert _cmap_and_range(fig) == ("twilight", 0.0, 360.0)
    assert "degrees" in fig.axes[1].get_ylabel()
    np.testing.assert_allclose(fig.axes[0].collections[0].get_array(), [0, 90, 180])
    assert _cmap_and_range(plots.scatter_map(np.zeros((3, 2)), [1, 2, 3], value_label="width"))[0] == "viridis"


def test_angle_degrees_only_for_points_on_the_unit_circle():
    assert plots.angle_degrees(np.array([[1.0, 0.0], [0.0, -1.0]])).tolist() == [0.0, 270.0]
    assert plots.angle_degrees(np.array([[0.2, 0.3]])) is None and plots.angle_degrees(np.zeros((2, 3))) is None
