"""The Architecture contract: every registered architecture declares its optional capabilities
(nets.base), and the declarations agree with its weight space. Iterates the registry, so a new
architecture is checked without being listed here."""

import dataclasses

import pytest
import torch

from weightspace.adapt.multitask import head_names
from weightspace.nets import ARCHITECTURES, arch_for_family, make_arch
from weightspace.nets.base import Architecture, MemberTrainer
from weightspace.symmetry.canonical import canonical_frame
from weightspace.tasks import make_family

# The smallest instance of each registered architecture (building none loads a model).
EXAMPLES = {"mlp": {"input_shape": (4,), "n_classes": 3, "hidden": (5,)},
            "cnn": {"input_shape": (1, 6, 6), "n_classes": 3, "channels": (4,)},
            "lora-minilm": {"n_classes": 3, "rank": 2}}


@pytest.fixture(params=sorted(ARCHITECTURES))
def arch(request) -> Architecture:
    assert request.param in EXAMPLES, f"add a small {request.param} to EXAMPLES"
    return make_arch(request.param, **EXAMPLES[request.param])


def test_the_registry_entry_names_the_class_with_a_pretty_name_and_paper(arch):
    entry = ARCHITECTURES.entry(arch.name)
    assert entry.obj is type(arch) and entry.obj.name == entry.name and entry.pretty and entry.paper
    assert arch.to_dict()["name"] == entry.name and arch.spec().arch == entry.name


def test_every_capability_is_declared(arch):
    assert isinstance(arch.n_classes, int) and arch.n_classes >= 2
    assert arch.input_shape is None or all(isinstance(s, int) for s in arch.input_shape)
    assert arch.features_dim is None or arch.features_dim > 0
    assert isinstance(arch.head_refit, bool) and isinstance(arch.describe(), str)
    if arch.head_refit:  # a refitted head reads features and is the spec's plain output layer
        weight, bias = head_names(arch)
        assert arch.features_dim is not None and arch.spec().shapes[weight] == (arch.n_classes, arch.features_dim)
    assert arch.member_trainer is None or isinstance(arch.member_trainer, MemberTrainer)
    if arch.member_trainer is not None:
        assert dataclasses.is_dataclass(arch.member_trainer.config_class) and arch.member_trainer.init_label


def test_low_rank_pairs_name_spec_tensors_and_give_the_closed_form_frame(arch):
    shapes = arch.spec().shapes
    for pair in arch.low_rank_pairs():
        (r, _), (_, r_b) = shapes[pair.a], shapes[pair.b]
        assert r == r_b and pair.scale > 0
    g = torch.Generator().manual_seed(0)
    stacked = {t.name: torch.randn((2, *t.shape), generator=g) for t in arch.spec().tensors}
    framed = canonical_frame(arch, stacked)
    if not arch.low_rank_pairs():
        assert framed is None  # found by search (align_zoo) instead
        return
    assert canonical_frame(arch, framed) is not None
    for pair in arch.low_rank_pairs():
        before, after = stacked[pair.b] @ stacked[pair.a], framed[pair.b] @ framed[pair.a]
        assert torch.allclose(before, after, atol=1e-4)


def test_options_for_a_family_build_the_architecture():
    family = make_family("digits-rotate", n_tasks=4, n_heldout=1)
    for name in ("mlp", "cnn"):
        arch = arch_for_family(name, family)
        assert arch.input_shape == family.input_shape and arch.n_classes == family.n_classes
    with pytest.raises(Exception, match="sentence"):
        arch_for_family("lora-minilm", family)
