"""token-flow: a generator whose size and memory grow linearly with the network, up to millions of weights."""

from __future__ import annotations

import tempfile

import pytest
import torch

from weightspace.errors import WeightspaceError
from weightspace.generate import load_generator, zoo_data
from weightspace.generate.tokens_scale import TokenFlowGenerator
from weightspace.nets import MLP
from weightspace.tasks import make_family

torch.set_num_threads(1)
TINY = dict(steps=3, batch_size=2, tokens_per_member=64, hidden=16, depth=1, embed=8, sample_steps=2, solver="euler")


def synthetic_zoo(hidden: tuple[int, ...], members: int = 4, input_shape=(784,), seed: int = 0):
    """Stacked random weights on a real family's tasks: what scale checks need, in milliseconds."""
    family = make_family("digits-rotate", n_tasks=members, n_heldout=1)
    arch = MLP(input_shape=input_shape, n_classes=10, hidden=hidden)
    g = torch.Generator().manual_seed(seed)
    params = {t.name: 0.05 * torch.randn(members, *t.shape, generator=g) for t in arch.spec().tensors}
    tasks = [family.task(t) for t in family.zoo_task_ids()]
    return zoo_data.from_params(arch, params, tasks, condition="descriptor", family=family), family


def state_numel(gen: TokenFlowGenerator) -> int:
    return sum(v.numel() for v in gen._model_state().values())


def test_million_parameter_networks_fit_and_sample():
    data, family = synthetic_zoo((512, 512, 512, 512))  # 784-512-512-512-512-10
    assert data.spec.numel > 1_000_000
    gen = TokenFlowGenerator(**TINY).fit(data)
    out = gen.sample(gen.encode_condition(family.task(family.zoo_task_ids()[0])), n=2, seed=0)
    data.spec.validate(out, stacked=True)  # names, shapes, finite values
    assert out["fc0.weight"].shape == (2, 512, 784)
    # Model size: a per-token table and the per-entry mean and spread, each about the network's size.
    assert state_numel(gen) < 4 * data.spec.numel


def test_model_size_grows_linearly_with_the_network():
    small, _ = synthetic_zoo((64,), input_shape=(196,))
    large, _ = synthetic_zoo((256,), input_shape=(784,))  # 16x the weights
    sizes = [state_numel(TokenFlowGenerator(**{**TINY, "steps": 1}).fit(d)) for d in (small, large)]
    weights = small.spec.numel, large.spec.numel
    ratio = (sizes[1] / sizes[0]) / (weights[1] / weights[0])
    assert 0.7 < ratio < 1.1, f"model grows {sizes[1] / sizes[0]:.1f}x for {weights[1] / weights[0]:.1f}x the weights"


def test_sampling_is_seeded_and_survives_save_and_load(tmp_path):
    data, family = synthetic_zoo((16,), input_shape=(64,))
    gen = TokenFlowGenerator(**{**TINY, "sample_block": 7, "solver": "midpoint"}).fit(data)  # blocks of 7 tokens
    cond = gen.encode_condition(family.task(family.zoo_task_ids()[1]))
    a, b, c = gen.sample(cond, 3, seed=5), gen.sample(cond, 3, seed=5), gen.sample(cond, 3, seed=6)
    assert all(torch.equal(a[k], b[k]) for k in a) and not torch.equal(a["fc0.weight"], c["fc0.weight"])
    gen.save(tmp_path / "gen")
    again = load_generator(tmp_path / "gen")
    assert isinstance(again, TokenFlowGenerator)
    d = again.sample(cond, 3, seed=5)
    assert all(torch.allclose(a[k], d[k], atol=1e-6) for k in a)


def test_zero_noise_with_an_untrained_flow_is_the_zoo_mean():
    # The network starts by predicting zero velocity, so the zero-noise sample is the per-entry mean.
    data, family = synthetic_zoo((16,), input_shape=(64,))
    gen = TokenFlowGenerator(**{**TINY, "lr": 0.0}).fit(data)
    out = gen.sample(gen.encode_condition(family.task(family.zoo_task_ids()[0])), 1, deterministic=True)
    assert all(torch.allclose(out[k][0], data.params[k].mean(0), atol=1e-5) for k in out)


def test_bad_options_are_one_sentence():
    data, _ = synthetic_zoo((8,), input_shape=(16,))
    with pytest.raises(WeightspaceError, match="solver must be one of euler, midpoint"):
        TokenFlowGenerator(**{**TINY, "solver": "rk4"}).fit(data)
    with pytest.raises(WeightspaceError, match="chunk must be at least 1"):
        TokenFlowGenerator(**{**TINY, "chunk": 0}).fit(data)


@pytest.mark.slow
def test_generated_networks_solve_zoo_tasks():
    from weightspace.generate.evaluation import test_accuracy
    from weightspace.zoo.build import build_zoo
    from weightspace.zoo.train import TrainConfig

    family = make_family("digits-rotate", n_tasks=8, n_heldout=2)
    arch = MLP(input_shape=family.input_shape, n_classes=family.n_classes, hidden=(16,))
    with tempfile.TemporaryDirectory() as tmp:
        zoo = build_zoo(f"{tmp}/zoo", family, arch, TrainConfig(steps=150), seeds_per_task=2, init="shared",
                        pretrain_steps=200, workers=0, progress=False)
        data = zoo_data.from_zoo(zoo, "descriptor")
    gen = TokenFlowGenerator(steps=1000, tokens_per_member=0).fit(data)
    accs = [test_accuracy(arch, gen.sample(gen.encode_condition(family.task(t)), 4, seed=1), family.task(t)).mean()
            for t in family.zoo_task_ids()[:4]]
    assert min(accs) > 0.8, accs  # zoo members reach ~0.9; chance is 0.1
