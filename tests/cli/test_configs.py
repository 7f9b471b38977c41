"""Every recipe under configs/ says on its first line the command that runs it, and that command's
parser accepts the file (zoo build recipes load as a BuildRecipe with their family and arch)."""

from pathlib import Path

import pytest

from weightspace.config import load_yaml

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_first_line_is_the_command_that_runs_it(path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# weightspace ") and f"configs/{path.name}" in first


@pytest.mark.parametrize("path", [p for p in CONFIGS if "zoo build" in p.read_text().splitlines()[0]], ids=lambda p: p.name)
def test_zoo_recipes_load(path):
    from weightspace.cli.zoo_cmd import BuildRecipe, resolve_recipe
    from weightspace.tasks import make_family

    recipe = resolve_recipe(load_yaml(BuildRecipe, path), [])
    # LoRA members all start from PEFT's init (the frozen base model): a shared start by construction
    assert recipe.out and recipe.include_heldout and (recipe.init == "shared" or recipe.arch == "lora-minilm")
    make_family(recipe.family, n_tasks=recipe.tasks, n_heldout=recipe.heldout)  # the split is valid


@pytest.mark.parametrize("path", [p for p in CONFIGS if "weightspace train" in p.read_text().splitlines()[0]], ids=lambda p: p.name)
def test_generator_recipes_load(path):
    import re

    from weightspace.generate import GENERATORS

    name = re.search(r"--generator (\S+)", path.read_text().splitlines()[0]).group(1)
    load_yaml(GENERATORS[name].Config, path)
