"""A run folder like `weightspace demo` writes: results.json's dictionary and an analysis folder
with the twelve figures that `weightspace analyze` draws for two zoos (one of them the zoo the
generator was trained on)."""

import json

import numpy as np
import pytest

from weightspace.report import plots

ZOO_A = ["map-raw", "map-aligned", "barrier-acc", "barrier-loss", "layer-variance", "layer-descriptor-r2"]
ZOO_B = ["map-raw", "barrier-acc", "barrier-loss", "layer-variance", "layer-descriptor-r2"]


def _zoo(slug, init, variants, path):
    return {"slug": slug, "name": slug, "path": path, "init_kind": init, "n_members": 8,
            "descriptor_names": ["angle_deg"], "connectivity": {"pairing": "neighbouring_tasks"},
            "variants": {v: {"spectrum": {"dims_90": 5, "dims_99": 7}, "intrinsic_dim": {"two_nn": 3.2, "mle": 2.9}}
                         for v in variants}}


@pytest.fixture
def analysis_run(tmp_path):
    """(run folder, analysis folder, names of the 12 PNGs written there)."""
    run = tmp_path / "run"
    adir = run / "analysis"
    adir.mkdir(parents=True)
    names = ["spectrum.png"] + [f"zoo-independent-{n}.png" for n in ZOO_A] + [f"zoo-shared-{n}.png" for n in ZOO_B]
    rng = np.random.default_rng(0)
    for name in names:
        if "-map-" in name:
            plots.scatter_map(rng.normal(size=(8, 2)), np.linspace(0, 315, 8), value_label="angle_deg", path=adir / name)
        else:
            plots.bar_chart(["fc0", "fc1"], {"raw": [0.6, 0.4]}, title=name, path=adir / name)
    analysis = {"config": {}, "zoos": [_zoo("zoo-independent", "independent", ["raw", "aligned"], str(run / "zoo-independent")),
                                       _zoo("zoo-shared", "shared", ["raw"], str(run / "zoo-shared"))]}
    (adir / "analysis.json").write_text(json.dumps(analysis))
    return run, adir, names
