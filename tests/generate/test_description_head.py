"""hypernet head=description: a binary head written from the task's description embedding."""

import pytest

from text_stack import require_text_stack

require_text_stack()

import torch  # noqa: E402

from weightspace.encode.text_conditions import embed_texts  # noqa: E402
from weightspace.errors import WeightspaceError  # noqa: E402
from weightspace.generate import load_generator, make_generator, zoo_data  # noqa: E402
from weightspace.nets.lora_minilm import LoRAMiniLM  # noqa: E402
from text_stack import hidden_family  # noqa: E402,F401  (fixture)

ARCH = LoRAMiniLM(inputs="hidden")
OPTS = {"objective": "task", "output": "full", "warmup_steps": 0, "head": "description", "hidden": 16, "depth": 1,
        "batch_tasks": 2, "batch_examples": 8}


@pytest.fixture(scope="module")
def tasks(hidden_family):
    return [hidden_family.task(i) for i in hidden_family.zoo_task_ids()[:3]]


@pytest.fixture(scope="module")
def heldout(hidden_family):
    return hidden_family.task(hidden_family.heldout_task_ids()[0])


def zoo(tasks, condition="text-description"):
    g = torch.Generator().manual_seed(0)
    params = {k: v + 0.02 * torch.randn(v.shape, generator=g) for k, v in ARCH.init_params_stacked(range(3)).items()}
    return zoo_data.from_params(ARCH, params, tasks, condition)


@pytest.mark.parametrize("head_map", ["raw", "standardised"])
def test_before_training_it_is_zero_shot_cosine_to_the_description_on_the_frozen_body(tasks, heldout, head_map):
    gen = make_generator("hypernet", **OPTS, head_map=head_map, steps=0).fit(zoo(tasks))
    out = gen.sample(gen.encode_condition(heldout), deterministic=True)
    # The body starts at PEFT's init (B = 0: the frozen model) and the head's direction is the
    # description's own embedding, class 1 against class 0, with logit 10 * (cos - 0.1).
    assert all(float(out[k].abs().max()) < 1e-5 for k in out if k.endswith("lora_B"))  # up to the codec's rounding
    w, b = out["head.weight"][0], out["head.bias"][0]
    direction = embed_texts([heldout.description])[0]
    assert torch.allclose(w[1] - w[0], 10.0 * direction, atol=1e-4)
    assert torch.allclose(b[1] - b[0], torch.tensor(-1.0))


@pytest.mark.parametrize("head_map", ["raw", "standardised"])
def test_training_moves_the_head_and_a_saved_generator_writes_the_same_weights(tasks, heldout, tmp_path, head_map):
    start = make_generator("hypernet", **OPTS, head_map=head_map, steps=0).fit(zoo(tasks))
    gen = make_generator("hypernet", **OPTS, head_map=head_map, steps=4, lr=1e-2).fit(zoo(tasks))
    cond = gen.encode_condition(heldout)
    out = gen.sample(cond, n=2, seed=0)
    ARCH.spec().validate(out, stacked=True)
    assert not torch.allclose(out["head.weight"][0], start.sample(cond, deterministic=True)["head.weight"][0])
    other = gen.sample(gen.encode_condition(tasks[0]), deterministic=True)["head.weight"]
    assert not torch.allclose(out["head.weight"][:1], other)  # the head follows the description
    gen.save(tmp_path / "gen")
    again = load_generator(tmp_path / "gen").sample(cond, n=2, seed=0)
    assert all(torch.allclose(again[k], out[k], atol=1e-6) for k in out)


def test_without_a_condition_the_direction_is_one_learned_vector(tasks, heldout):
    gen = make_generator("hypernet", **OPTS, steps=2).fit(zoo(tasks, "none"))
    a, b = (gen.sample(gen.encode_condition(t), deterministic=True)["head.weight"] for t in (heldout, tasks[0]))
    assert torch.allclose(a, b) and a.shape == (1, 2, 384) and float(a.abs().max()) > 0


def test_a_shared_body_writes_one_adapter_for_every_task_and_a_head_that_follows_the_description(tasks, heldout):
    gen = make_generator("hypernet", **OPTS, body="shared", steps=4, lr=1e-2).fit(zoo(tasks))
    a, b = (gen.sample(gen.encode_condition(t), deterministic=True) for t in (heldout, tasks[0]))
    adapters = [k for k in a if "lora" in k]
    assert adapters and all(torch.equal(a[k], b[k]) for k in adapters)  # one network, whatever the task
    assert any(float(a[k].abs().max()) > 1e-4 for k in adapters if k.endswith("lora_B"))  # it was trained
    assert not torch.allclose(a["head.weight"], b["head.weight"])  # the multi-task head reads the description


@pytest.mark.parametrize("opts,says", [
    ({"body": "shared", "head": "generated"}, "it needs head=description"),
    ({"objective": "fewshot"}, "use objective=task output=full warmup_steps=0"),
    ({"output": "pca"}, "use objective=task output=full warmup_steps=0"),
])
def test_wrong_objectives_are_refused_in_one_sentence(tasks, opts, says):
    with pytest.raises(WeightspaceError, match=says):
        make_generator("hypernet", **{**OPTS, **opts, "steps": 1}).fit(zoo(tasks))


def test_a_head_of_more_than_two_classes_is_refused():
    from weightspace.generate.description_head import DescriptionHead

    with pytest.raises(WeightspaceError, match="writes a binary head on features"):
        DescriptionHead(LoRAMiniLM(inputs="hidden", n_classes=3), 384, None)


def test_the_two_mappings_write_the_same_head_for_the_same_map():
    """raw's v = e + M e and standardised's v = A c + m are one affine family: A = (I + M) diag(std),
    m = (I + M) mean give the same head, so only the optimiser's coordinates differ."""
    from weightspace.generate.description_head import DescriptionHead

    g = torch.Generator().manual_seed(0)
    mean, std = torch.randn(384, generator=g), torch.rand(384, generator=g) + 0.5
    raw = DescriptionHead(ARCH, 384, (mean, std), "raw")
    std_head = DescriptionHead(ARCH, 384, (mean, std), "standardised")
    with torch.no_grad():
        raw.M.copy_(0.1 * torch.randn(384, 384, generator=g))
        lift = torch.eye(384) + raw.M
        std_head.A.copy_(lift @ torch.diag(std))
        std_head.m.copy_(lift @ mean)
    cond = torch.randn(3, 384, generator=g)
    assert torch.allclose(raw.direction(cond), std_head.direction(cond), atol=1e-4)


def test_an_unknown_mapping_is_refused():
    from weightspace.generate.description_head import DescriptionHead

    with pytest.raises(WeightspaceError, match="unknown description head mapping"):
        DescriptionHead(ARCH, 384, None, "diagonal")
