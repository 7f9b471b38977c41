import pytest
import torch

from weightspace import WeightspaceError
from weightspace.encode import (
    DeepSetsSupportEncoder,
    DescriptorEncoder,
    ProbeSupportEncoder,
    check_support,
    condition_encoder_from,
    make_condition_encoder,
)
from weightspace.encode.probe import farthest_points
from weightspace.nets import CNN, MLP
from weightspace.tasks.base import Task

ARCH = MLP(input_shape=(2, 3), n_classes=4, hidden=(5,))


def task(i: int, n: int = 40) -> Task:
    g = torch.Generator().manual_seed(i)
    x = torch.randn(n, 2, 3, generator=g)
    y = torch.randint(0, 4, (n,), generator=g)
    return Task(f"t{i}", "toy", (float(i), 2.0 * i), "", x, y, x, y, x[:12], y[:12], 4)


TASKS = [task(i) for i in range(6)]
PARAMS = ARCH.init_params_stacked(range(6))


@pytest.mark.parametrize("name", ["support-probe", "support-deepsets"])
def test_support_encoders_are_permutation_invariant_and_restore(name):
    enc = make_condition_encoder(name, ARCH, **({"n_anchors": 4} if name == "support-probe" else {"dim": 8, "hidden": 16}))
    enc.fit(ARCH, PARAMS, TASKS)
    x, y = TASKS[0].support_x, TASKS[0].support_y
    code = enc.encode((x, y))
    assert code.shape == (enc.dim,)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(enc.encode((x[perm], y[perm])), code, atol=1e-5)
    assert not torch.allclose(enc.encode(TASKS[1]), code, atol=1e-3)  # a different set gives a different code
    # batched encoding agrees with one-at-a-time encoding
    xb = torch.stack([t.support_x for t in TASKS[:3]])
    yb = torch.stack([t.support_y for t in TASKS[:3]])
    with torch.no_grad():
        assert torch.allclose(enc.encode_support(xb, yb)[0], code, atol=1e-5)
    again = condition_encoder_from(enc.config(), enc.state())
    assert torch.allclose(again.encode((x, y)), code, atol=1e-6)


def test_probe_is_standardised_over_the_zoo_and_anchors_spread():
    enc = ProbeSupportEncoder.create(ARCH, n_anchors=3).fit(ARCH, PARAMS, TASKS)
    codes = enc.encode_tasks(TASKS)
    assert torch.allclose(codes.mean(0), torch.zeros(3), atol=1e-4)
    flat = torch.tensor([[0.0], [1.0], [0.1], [10.0], [4.0]])
    assert farthest_points(flat, 3) == [4, 3, 0]  # start next to the mean (3.02), then the extremes


def test_deepsets_is_trainable_with_gradients():
    enc = DeepSetsSupportEncoder.create(ARCH, dim=4, hidden=8).fit(ARCH, PARAMS, TASKS)
    assert enc.trainable
    x = torch.stack([t.support_x for t in TASKS[:2]])
    y = torch.stack([t.support_y for t in TASKS[:2]])
    enc.encode_support(x, y).sum().backward()
    assert all(p.grad is not None for p in enc.parameters())


class _Family:
    name = "toy"

    def descriptor_features(self, task_id):
        i = float(task_id[1:])
        return (i, -i, 1.0)

    def to_dict(self):
        return {"name": "toy", "config": {}}


def test_descriptor_encoder_uses_family_features_and_refuses_support_sets():
    enc = DescriptorEncoder.create(ARCH, family=_Family()).fit(ARCH, PARAMS, TASKS)
    codes = enc.encode_tasks(TASKS)
    assert codes.shape == (6, 3)
    assert torch.allclose(codes[:, 0], -codes[:, 1]) and torch.allclose(codes.mean(0), torch.zeros(3), atol=1e-5)
    assert torch.allclose(enc.encode("t2"), codes[2])
    with pytest.raises(WeightspaceError, match="pass a task id"):
        enc.encode((TASKS[0].support_x, TASKS[0].support_y))
    plain = DescriptorEncoder.create(ARCH).fit(ARCH, PARAMS, TASKS)  # no family: Task.descriptor
    assert plain.dim == 2


def test_check_support_names_the_problem():
    x = torch.randn(8, 2, 3)
    y = torch.arange(8) % 4
    xs, ys = check_support(x.reshape(8, 6), y.float(), (2, 3), 4)  # flat rows and float labels accepted
    assert xs.shape == (8, 2, 3) and ys.dtype == torch.long
    cases = [
        ((torch.randn(8, 5), y), "inputs have shape"),
        ((x, y[:7]), "labels have shape"),
        ((x.clone().fill_(float("nan")), y), "NaN or infinite"),
        ((x, y + 1), r"labels must lie in 0\.\.3"),
        ((x, y.float() + 0.5), "whole class indices"),
        ((x[:0], y[:0]), "empty"),
    ]
    for (xx, yy), msg in cases:
        with pytest.raises(WeightspaceError, match=msg):
            check_support(xx, yy, (2, 3), 4)


def test_unknown_condition_is_a_clear_error():
    with pytest.raises(WeightspaceError, match="unknown condition 'text'"):
        make_condition_encoder("text", CNN(input_shape=(1, 4, 4), n_classes=2))


def test_none_condition_tells_a_generator_nothing(tmp_path):
    from weightspace.generate import load_generator, make_generator, zoo_data

    enc = make_condition_encoder("none", ARCH).fit(ARCH, PARAMS, TASKS)
    assert torch.equal(enc.encode(TASKS[0]), enc.encode((TASKS[1].support_x, TASKS[1].support_y)))
    again = condition_encoder_from(enc.config(), enc.state())
    assert torch.equal(again.encode(TASKS[2]), enc.encode(TASKS[2])) and again.dim == enc.dim == 1
    gen = make_generator("hypernet", objective="regression", steps=5, hidden=8, depth=1).fit(
        zoo_data.from_params(ARCH, PARAMS, TASKS, "none"))
    one = gen.sample(gen.encode_condition(TASKS[0]), deterministic=True)
    other = gen.sample(gen.encode_condition(TASKS[5]), deterministic=True)
    assert all(torch.equal(one[k], other[k]) for k in one)  # one network for every task
    gen.save(tmp_path / "g")
    assert load_generator(tmp_path / "g").encoder.name == "none"
