import json

import pytest
import torch

from weightspace import WeightSpec, WeightspaceError
from weightspace.nets import CNN, MLP, arch_from_dict
from weightspace.spec import PermAxis, PermGroup, TensorSpec, stack_members, unstack_members

ARCHS = [
    MLP((64,), 10, (32,)),
    MLP((1, 8, 8), 10, (16, 8), activation="tanh"),
    MLP((40,), 3, (5, 6, 7), activation="gelu"),
    CNN((1, 8, 8), 10, (8, 16)),
    CNN((1, 8, 8), 4, (8, 12), groupnorm_groups=4),
    CNN((1, 40), 10, (6,)),
]


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: f"{a.name}-{a.numel if hasattr(a, 'numel') else ''}")
def test_spec_matches_module_state_dict(arch):
    spec = arch.spec()
    sd = arch.module().state_dict()
    assert set(sd) == set(spec.names)
    for t in spec.tensors:
        assert tuple(sd[t.name].shape) == t.shape


@pytest.mark.parametrize("arch", ARCHS)
def test_spec_json_round_trip(arch):
    spec = arch.spec()
    again = WeightSpec.from_json(spec.to_json())
    assert again == spec
    assert arch_from_dict(json.loads(json.dumps(arch.to_dict()))) == arch


@pytest.mark.parametrize("arch", ARCHS)
def test_flatten_round_trip_is_by_name(arch):
    spec = arch.spec()
    p = arch.init_params(3)
    shuffled = dict(reversed(list(p.items())))  # key order must not matter
    vec = spec.flatten(shuffled)
    assert vec.shape == (spec.numel,)
    back = spec.unflatten(vec)
    for n in spec.names:
        assert torch.equal(back[n], p[n])


def test_stacked_flatten_and_stack_members():
    arch = MLP((6,), 3, (4,))
    spec = arch.spec()
    members = [arch.init_params(s) for s in range(5)]
    stacked = stack_members(members, spec)
    flat = spec.flatten_stacked(stacked)
    assert flat.shape == (5, spec.numel)
    assert torch.equal(flat[2], spec.flatten(members[2]))
    back = unstack_members(spec.unflatten(flat), spec)
    assert all(torch.equal(back[i][n], members[i][n]) for i in range(5) for n in spec.names)


def test_init_is_seeded_and_schemes_differ():
    arch = MLP((6,), 3, (4,))
    a, b, c = arch.init_params(1), arch.init_params(1), arch.init_params(2)
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert not torch.equal(a["fc0.weight"], c["fc0.weight"])
    k = arch.init_params(1, "kaiming")
    assert torch.count_nonzero(k["fc0.bias"]) == 0
    with pytest.raises(WeightspaceError, match="unknown init scheme"):
        arch.init_params(1, "orthogonal-ish")


def test_validate_names_shapes_values():
    spec = MLP((6,), 3, (4,)).spec()
    p = MLP((6,), 3, (4,)).init_params(0)
    spec.validate(p)
    bad = dict(p)
    bad.pop("fc1.bias")
    with pytest.raises(WeightspaceError, match="missing fc1.bias"):
        spec.validate(bad)
    bad = {**p, "extra": torch.zeros(1)}
    with pytest.raises(WeightspaceError, match="unexpected extra"):
        spec.validate(bad)
    bad = {**p, "fc0.weight": torch.zeros(5, 6)}
    with pytest.raises(WeightspaceError, match="shape"):
        spec.validate(bad)
    bad = {**p, "fc0.weight": p["fc0.weight"].clone()}
    bad["fc0.weight"][0, 0] = float("nan")
    with pytest.raises(WeightspaceError, match="NaN"):
        spec.validate(bad)


def test_groups_describe_coupled_axes():
    spec = MLP((6,), 3, (4, 5)).spec()
    h1 = spec.group("h1")
    assert h1.size == 5 and h1.scale_invariant
    assert {(a.tensor, a.axis, a.role) for a in h1.axes} == {
        ("fc1.weight", 0, "out"), ("fc1.bias", 0, "out"), ("fc2.weight", 1, "in")}
    gn = CNN((1, 8, 8), 4, (8,), groupnorm_groups=2).spec().group("c0")
    assert gn.blocks == 2 and not gn.scale_invariant
    assert MLP((6,), 3, (4,), activation="tanh").spec().group("h0").scale_invariant is False


def test_spec_rejects_inconsistent_groups():
    with pytest.raises(ValueError, match="expected 3"):
        WeightSpec((TensorSpec("w", (4, 2)),), (PermGroup("g", 3, (PermAxis("w", 0, "out"),)),))
    with pytest.raises(ValueError, match="duplicate"):
        WeightSpec((TensorSpec("w", (1,)), TensorSpec("w", (1,))))


def test_unknown_architecture_options_are_clear():
    from weightspace.nets import make_arch

    with pytest.raises(WeightspaceError, match="unknown architecture"):
        make_arch("transformer9000")
    with pytest.raises(WeightspaceError, match="has no option"):
        make_arch("mlp", input_shape=(4,), n_classes=2, width=3)
    with pytest.raises(WeightspaceError, match="unknown activation"):
        MLP((4,), 2, (3,), activation="swishy")
