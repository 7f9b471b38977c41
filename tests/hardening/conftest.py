"""A tiny zoo and generator made through the CLI, as a user would, shared by the hardening tests."""

import pytest
import torch

import weightspace.cli.generate_cmd  # noqa: F401  registers train/generate (the lead imports it in cli/__init__)
from weightspace.cli import main

torch.set_num_threads(1)  # two cores shared by everything on the test machine


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("hardening")
    zoo, gen = root / "zoo", root / "gen"
    assert main(["zoo", "build", "--family", "digits-rotate", "--tasks", "3", "--heldout", "1", "--steps", "20",
                 "--hidden", "16", "--workers", "0", "--quiet", "--out", str(zoo)]) == 0
    assert main(["train", str(zoo), "-g", "pca-gaussian", "--out", str(gen), "--quiet"]) == 0
    return zoo, gen
