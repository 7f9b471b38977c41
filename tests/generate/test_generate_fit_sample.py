"""fit -> sample on a tiny synthetic zoo, for every registered generator.

The contract tests are parametrized over the registry itself, so a new generator is tested as
soon as it registers: it fails here until FAST gives it options that train in seconds."""

import dataclasses

import pytest
import torch
from gen_helpers import ARCH, accuracy, tiny_zoo

from weightspace import WeightspaceError
from weightspace.generate import GENERATORS, Generator, make_generator, zoo_data

# Few steps keep the file fast; enough that every generator beats a random net on held-out tasks.
FAST = {
    "pca-gaussian": {},
    "hypernet": {"steps": 150, "warmup_steps": 30, "hidden": 64},
    "flow": {"steps": 250, "hidden": 64, "depth": 2, "sample_steps": 8},
    "diffusion": {"steps": 250, "hidden": 64, "depth": 2, "sample_steps": 10},
    "token-flow": {"steps": 250, "hidden": 64, "depth": 2, "chunk": 16, "embed": 16, "sample_steps": 8,
                   "tokens_per_member": 0},
}
REGISTERED = list(GENERATORS)  # every registered generator, so none passes the suite untested


def data(condition="descriptor"):
    params, tasks, _ = tiny_zoo()
    opts = {"n_anchors": 6} if condition == "support-probe" else {"dim": 16, "hidden": 32} if condition == "support-deepsets" else {}
    return zoo_data.from_params(ARCH, params, tasks, condition, condition_options=opts)


_FITTED: dict = {}


def fitted(name, condition="descriptor"):
    assert name in FAST, f"give the newly registered generator {name!r} fast test options in FAST"
    if (name, condition) not in _FITTED:
        torch.set_num_threads(1)
        _FITTED[name, condition] = make_generator(name, **FAST[name]).fit(data(condition))
    return _FITTED[name, condition]


@pytest.mark.parametrize("name", REGISTERED)
def test_registry_entry_names_the_class_pretty_name_and_paper(name):
    entry = GENERATORS.entry(name)
    assert entry.obj.name == name and entry.obj.paper == entry.paper and entry.pretty
    assert issubclass(entry.obj, Generator) and dataclasses.is_dataclass(entry.obj.Config)
    assert name in FAST, f"give the newly registered generator {name!r} fast test options in FAST"


def test_fast_options_name_only_registered_generators():
    assert set(FAST) <= set(GENERATORS), "FAST lists a generator that is no longer registered"


@pytest.mark.parametrize("name", REGISTERED)
def test_fit_sample_gives_valid_weights_that_solve_heldout_tasks(name):
    gen = fitted(name)
    _, _, heldout = tiny_zoo()
    random_net = ARCH.init_params_stacked([123])
    for task in heldout:
        cond = gen.encode_condition(task)
        out = gen.sample(cond, n=3, seed=0)
        ARCH.spec().validate(out, stacked=True)
        assert out["fc0.weight"].shape == (3, 8, 6)
        best = float(accuracy(gen.sample(cond, n=1, deterministic=True), task)[0])
        assert best > float(accuracy(random_net, task)[0]) + 0.2
        assert best > 0.8, f"{name} reaches only {best:.2f} on {task.task_id}"


@pytest.mark.parametrize("name", REGISTERED)
def test_sampling_is_seeded(name):
    gen = fitted(name)
    cond = gen.encode_condition(tiny_zoo()[2][0])
    a, b, c = gen.sample(cond, 2, seed=5), gen.sample(cond, 2, seed=5), gen.sample(cond, 2, seed=6)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the task-trained hypernet is deterministic; the others sample with noise
    assert torch.equal(a["fc0.weight"], c["fc0.weight"]) == (name == "hypernet")
    # Central draws are one computation copied n times, so they are equal on any CPU.
    d = gen.sample(cond, 2, deterministic=True)
    assert torch.equal(d["fc0.weight"][0], d["fc0.weight"][1])
    # Same seed, same machine, same bytes.
    assert all(torch.equal(v, gen.sample(cond, 2, deterministic=True)[k]) for k, v in d.items())


def test_batched_conditions_are_condition_major():
    gen = fitted("pca-gaussian")
    tasks = tiny_zoo()[2][:2]
    conds = torch.stack([gen.encode_condition(t) for t in tasks])
    both = gen.sample(conds, n=2, seed=0, deterministic=True)
    one = gen.sample(conds[1], n=1, deterministic=True)
    assert both["fc0.weight"].shape[0] == 4
    assert torch.allclose(both["fc0.weight"][2], one["fc0.weight"][0])


def test_bad_conditions_and_requests_are_clear_errors():
    gen = fitted("pca-gaussian")
    with pytest.raises(WeightspaceError, match="condition has shape"):
        gen.sample(torch.zeros(gen.condition_dim + 1))
    with pytest.raises(WeightspaceError, match="at least 1"):
        gen.sample(torch.zeros(gen.condition_dim), n=0)
    with pytest.raises(WeightspaceError, match="not fitted"):
        make_generator("flow").sample(torch.zeros(2))
    with pytest.raises(WeightspaceError, match="unknown generator"):
        make_generator("gan")
    with pytest.raises(WeightspaceError, match="unknown key"):
        make_generator("hypernet", stepz=3)


def test_closed_form_generator_refuses_a_learned_encoder():
    with pytest.raises(WeightspaceError, match="cannot train the support-deepsets encoder"):
        make_generator("pca-gaussian").fit(data("support-deepsets"))


@pytest.mark.parametrize("condition", ["support-probe", "support-deepsets"])
def test_support_conditioned_hypernet_trains_its_encoder_jointly(condition):
    d = data(condition)
    before = {k: v.clone() for k, v in d.encoder.state().items()}
    gen = make_generator("hypernet", **FAST["hypernet"]).fit(d)
    changed = any(not torch.equal(before[k], v) for k, v in gen.encoder.state().items())
    assert changed == (condition == "support-deepsets")  # the probe is training-free
    task = tiny_zoo()[2][1]
    acc = float(accuracy(gen.sample(gen.encode_condition(task), deterministic=True), task)[0])
    assert acc > 0.8


def test_hypernet_full_output_with_task_objective_needs_no_pca():
    gen = make_generator("hypernet", output="full", steps=100, warmup_steps=0, hidden=32).fit(data())
    assert gen.codec.latent is None and not gen.wants_alignment
    assert make_generator("hypernet").wants_alignment  # its default regression warm start compares members
    task = tiny_zoo()[2][0]
    assert float(accuracy(gen.sample(gen.encode_condition(task), deterministic=True), task)[0]) > 0.8


def test_regression_hypernet_samples_around_its_prediction():
    gen = make_generator("hypernet", objective="regression", steps=100, hidden=32).fit(data())
    cond = gen.encode_condition(tiny_zoo()[2][0])
    draws = gen.sample(cond, 4, seed=0)["fc0.weight"]
    centre = gen.sample(cond, 1, deterministic=True)["fc0.weight"][0]
    assert not torch.equal(draws[0], draws[1])
    assert float((draws.mean(0) - centre).norm()) < float((draws[0] - centre).norm())


def test_hypernet_lowrank_output_learns_through_the_task_loss(tmp_path):
    gen = make_generator("hypernet", output="lowrank", rank=2, steps=150, warmup_steps=0, hidden=32).fit(data())
    assert gen.codec.latent.config() == {"type": "lowrank", "rank": 2}
    assert gen.codec.dim < gen.spec.numel
    task = tiny_zoo()[2][0]
    assert float(accuracy(gen.sample(gen.encode_condition(task), deterministic=True), task)[0]) > 0.8
    gen.save(tmp_path / "g")
    again = type(gen).load(tmp_path / "g")
    a = gen.sample(gen.encode_condition(task), deterministic=True)
    b = again.sample(again.encode_condition(task), deterministic=True)
    for n in a:
        torch.testing.assert_close(a[n], b[n])


def test_hypernet_bottleneck_narrows_the_output_layer_and_still_learns(tmp_path):
    gen = make_generator("hypernet", output="lowrank", rank=2, steps=150, warmup_steps=0, hidden=32,
                         bottleneck=4).fit(data())
    widths = [m.out_features for m in gen.net if isinstance(m, torch.nn.Linear)]
    assert widths[-2] == 4 and gen.net[-1].weight.shape == (gen.codec.dim, 4)
    task = tiny_zoo()[2][0]
    assert float(accuracy(gen.sample(gen.encode_condition(task), deterministic=True), task)[0]) > 0.8
    gen.save(tmp_path / "g")
    again = type(gen).load(tmp_path / "g")
    torch.testing.assert_close(again.sample(again.encode_condition(task), deterministic=True)["fc0.weight"],
                               gen.sample(gen.encode_condition(task), deterministic=True)["fc0.weight"])
