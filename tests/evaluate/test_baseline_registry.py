"""The evaluation baselines' registry: every entry declares its pretty name, paper, position and
what it needs from a zoo, and the harness's choice for a zoo comes from those declarations alone
(never the architecture's name)."""

from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

from weightspace.evaluate.baseline_registry import BASELINES, applicable_baselines, ordered_baselines
from weightspace.evaluate.harness import EvalConfig
from weightspace.nets import CNN, MLP, LoRAMiniLM

# The order results.json has always listed the baselines in (recorded results depend on it).
ORDER = ["retrieval", "memorization", "frozen-features", "majority", "merging", "multitask"]


def test_every_baseline_declares_a_pretty_name_paper_position_and_conditions():
    assert [e.name for e in ordered_baselines()] == ORDER, "a new baseline needs a place in ORDER (and results.json)"
    positions = [e.extras["position"] for e in BASELINES.entries()]
    assert len(set(positions)) == len(positions)
    for e in BASELINES.entries():
        assert e.pretty and e.paper and callable(e.obj)
        assert callable(e.extras["applies"]) and e.extras["enabled"](EvalConfig()) in (True, False)


def zoo_context(tmp_path, arch, shared: bool = False, descriptor_dim: int = 2):
    """What the baselines' conditions read from a ZooContext."""
    if shared:
        (tmp_path / "base.safetensors").write_bytes(b"")
    return SimpleNamespace(arch=arch, aligned=not shared, zoo=SimpleNamespace(path=tmp_path),
                           descriptors=torch.zeros(4, descriptor_dim))


def chosen(ctx, cfg=None) -> list[str]:
    return [e.name for e in applicable_baselines(ctx, cfg or EvalConfig())]


MLP_ARCH = MLP(input_shape=(1, 4, 4), n_classes=3, hidden=(5,))


def test_a_shared_start_mlp_zoo_gets_the_merges_and_the_multitask_network(tmp_path):
    ctx = zoo_context(tmp_path, MLP_ARCH, shared=True)
    assert chosen(ctx) == ["retrieval", "memorization", "majority", "merging", "multitask"]
    assert chosen(ctx, replace(EvalConfig(), multitask_tasks=-1)) == ["retrieval", "memorization", "majority", "merging"]


@pytest.mark.parametrize("arch", [MLP_ARCH, CNN(input_shape=(1, 6, 6), n_classes=3, channels=(4,))])
def test_an_independent_zoo_has_no_task_vectors(tmp_path, arch):
    assert chosen(zoo_context(tmp_path, arch)) == ["retrieval", "memorization", "majority", "multitask"]
    assert "multitask" not in chosen(zoo_context(tmp_path, arch, descriptor_dim=0))


def test_a_refitted_head_gets_the_frozen_feature_baselines_instead(tmp_path):
    ctx = zoo_context(tmp_path, LoRAMiniLM(n_classes=2, rank=2))
    assert chosen(ctx) == ["retrieval", "memorization", "frozen-features", "majority"]
