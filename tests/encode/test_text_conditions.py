"""Text condition encoders (text-support, text-description, text-both) on real chatterbot tasks
with the real frozen MiniLM."""

import subprocess
import sys

import pytest
import torch

from text_stack import require_text_stack

require_text_stack()

from weightspace.encode.condition import (
    CONDITION_ENCODERS,
    condition_encoder_from,
    make_condition_encoder,
)
from weightspace.errors import WeightspaceError
from weightspace.nets import MLP
from weightspace.nets.lora_minilm.base_model import PAD_ID, base_model, tokenize
from weightspace.encode.text_conditions import (
    TextDescriptionEncoder,
    TextSupportEncoder,
    class_prototypes,
    frozen_embeddings,
)
from weightspace.nets.lora_minilm import LoRAMiniLM
from text_stack import hidden_family  # noqa: F401  (fixture)

ARCH = LoRAMiniLM(inputs="hidden")
ZOO_IDS = ["topic:english:ai-vs-coding", "rest:english:emotion", "lang:dutch-vs-english", "pooled:ai-vs-computers"]



@pytest.fixture(scope="module")
def tasks(hidden_family):
    return [hidden_family.task(i) for i in ZOO_IDS]


@pytest.fixture(scope="module")
def heldout(hidden_family):
    return hidden_family.task(hidden_family.heldout_task_ids()[0])


@pytest.fixture(scope="module")
def support_enc(tasks):
    return make_condition_encoder("text-support", ARCH).fit(ARCH, {}, tasks)


def test_encoders_are_registered_and_importing_them_loads_no_transformers():
    assert {"text-support", "text-description", "text-both"} <= set(CONDITION_ENCODERS)
    code = ("import sys, weightspace.encode, weightspace.encode.text_conditions; "
            "sys.exit(any(m.split('.')[0] == 'transformers' for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_support_code_is_permutation_invariant_and_knows_which_class_is_which(support_enc, tasks):
    x, y = tasks[0].support_x, tasks[0].support_y
    code = support_enc.encode((x, y))
    assert code.shape == (support_enc.dim,) == (2 * 384,)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(support_enc.encode((x[perm], y[perm])), code, atol=1e-5)
    raw = support_enc.raw(x[None], y[None])[0]
    swapped = support_enc.raw(x[None], (1 - y)[None])[0]
    assert torch.allclose(swapped, torch.cat([raw[384:], raw[:384]]), atol=1e-6)
    assert (support_enc.encode((x, 1 - y)) - code).abs().max() > 0.5
    assert (support_enc.encode(tasks[1]) - code).abs().max() > 0.5


def test_absent_class_gets_a_zero_prototype():
    emb = torch.randn(2, 5, 3)
    y = torch.tensor([[0, 0, 0, 0, 0], [0, 1, 1, 0, 1]])
    p = class_prototypes(emb, y, 2)
    assert torch.allclose(p[0, :3], emb[0].mean(0)) and not p[0, 3:].any()
    assert torch.allclose(p[1, 3:], emb[1, [1, 2, 4]].mean(0))


def test_batched_encode_support_equals_one_by_one(support_enc, tasks, heldout):
    sets = tasks[:3] + [heldout]
    xb = torch.stack([t.support_x for t in sets])
    yb = torch.stack([t.support_y for t in sets])
    batched = support_enc.encode_support(xb, yb)
    for i, t in enumerate(sets):
        assert torch.allclose(batched[i], support_enc.encode(t), atol=1e-5)
    # fitted on the zoo's own support sets: standardised there
    zoo = support_enc.encode_tasks(tasks)
    assert torch.allclose(zoo.mean(0), torch.zeros(support_enc.dim), atol=1e-4)


def test_hidden_and_token_id_inputs_give_the_same_code(support_enc, tasks):
    ids_arch = LoRAMiniLM(inputs="ids")
    from_ids = TextSupportEncoder(ids_arch, scale=support_enc.scale)
    task = tasks[1]
    ids = tokenize(task.support_texts, 32)  # padded to this set's longest sentence, as the family does
    code = support_enc.encode(task)
    assert torch.allclose(from_ids.encode((ids, task.support_y)), code, atol=1e-4)
    padded = torch.nn.functional.pad(ids, (0, 32 - ids.shape[1]), value=PAD_ID)
    assert torch.allclose(from_ids.encode((padded.float(), task.support_y)), code, atol=1e-4)
    with pytest.raises(WeightspaceError, match="whole numbers"):
        from_ids.encode((ids + 0.5, task.support_y))
    # and both are the frozen model's own sentence embeddings, row for row
    expected = base_model(32).embed(list(task.support_texts))
    assert torch.allclose(frozen_embeddings(ARCH, task.support_x), expected, atol=1e-5)
    assert torch.allclose(frozen_embeddings(ids_arch, ids.float()), expected, atol=1e-5)


def test_description_code_and_its_refusal_of_a_bare_support_set(tasks, heldout):
    enc = make_condition_encoder("text-description", ARCH).fit(ARCH, {}, tasks)
    assert enc.kind == "text" and enc.dim == 384
    code = enc.encode(heldout)
    assert torch.allclose(code, enc.encode(heldout.description), atol=1e-6)  # a task or its text
    # batched: padding to the longest description moves the embedding in its last bits only
    assert torch.allclose(enc.encode_tasks(tasks + tasks[:1])[-1], enc.encode(tasks[0]), atol=1e-4)
    assert not torch.allclose(code, enc.encode(tasks[0]), atol=1e-2)
    with pytest.raises(WeightspaceError, match="needs a task description"):
        enc.encode((heldout.support_x, heldout.support_y))
    with pytest.raises(WeightspaceError, match="no description"):
        enc.encode("   ")


def test_both_concatenates_the_two_codes(support_enc, tasks, heldout):
    enc = make_condition_encoder("text-both", ARCH).fit(ARCH, {}, tasks)
    desc = TextDescriptionEncoder.create(ARCH).fit(ARCH, {}, tasks)
    code = enc.encode(heldout)
    assert enc.dim == 3 * 384
    assert torch.allclose(code, torch.cat([support_enc.encode(heldout), desc.encode(heldout)]), atol=1e-6)
    triple = (heldout.support_x, heldout.support_y, heldout.description)
    assert torch.allclose(enc.encode(triple), code, atol=1e-6)
    assert torch.allclose(enc.encode_tasks([tasks[0], heldout])[1], code, atol=1e-4)
    with pytest.raises(WeightspaceError, match="both a support set and a task description"):
        enc.encode((heldout.support_x, heldout.support_y))


def test_whiten_keeps_k_unit_variance_directions_capped_by_the_zoo(tasks):
    enc = TextSupportEncoder.create(ARCH, whiten=2).fit(ARCH, {}, tasks)
    zoo = enc.encode_tasks(tasks)
    assert enc.dim == 2
    assert torch.allclose(zoo.var(0, unbiased=False), torch.ones(2), atol=1e-3)
    assert torch.allclose(zoo.mean(0), torch.zeros(2), atol=1e-4)
    capped = TextDescriptionEncoder.create(ARCH, whiten=50).fit(ARCH, {}, tasks)
    assert capped.dim == len(tasks) - 1  # centred codes of 4 tasks span 3 directions


@pytest.mark.parametrize("name,opts", [("text-support", {}), ("text-support", {"whiten": 3}),
                                       ("text-description", {"whiten": 2}), ("text-both", {"whiten": 2})])
def test_persistence_round_trip_is_exact(name, opts, tasks, heldout):
    enc = make_condition_encoder(name, ARCH, **opts).fit(ARCH, {}, tasks)
    again = condition_encoder_from(enc.config(), enc.state())
    assert type(again) is type(enc) and again.dim == enc.dim and again.config() == enc.config()
    assert torch.equal(again.encode(heldout), enc.encode(heldout))


def test_bad_options_and_architectures_raise():
    with pytest.raises(WeightspaceError, match="lora-minilm"):
        make_condition_encoder("text-support", MLP(input_shape=(4,), n_classes=2, hidden=(3,)))
    with pytest.raises(WeightspaceError, match="whiten"):
        make_condition_encoder("text-description", ARCH, whiten=-1)
    with pytest.raises(WeightspaceError, match="no option n_anchors"):
        make_condition_encoder("text-both", ARCH, n_anchors=4)
    with pytest.raises(WeightspaceError, match="starts at layer 4"):
        make_condition_encoder("text-support", ARCH).fit(ARCH, {}, [], family=_Family())
    with pytest.raises(WeightspaceError, match="not fitted"):
        make_condition_encoder("text-support", ARCH).encode_support(torch.zeros(1, 2, 32, 385), torch.zeros(1, 2))


class _Family:
    """Only what fit reads: hidden inputs entering layer 3, while ARCH adapts layers 4 and 5."""

    name, inputs, hidden_layer = "chatterbot", "hidden", 3


def _lora_zoo(arch, n, seed=0):
    """n random small LoRA sets (ΔW != 0): enough to fit and sample a generator, not to solve tasks."""
    g = torch.Generator().manual_seed(seed)
    base = arch.init_params_stacked(range(n))
    return {k: v + 0.02 * torch.randn(v.shape, generator=g) for k, v in base.items()}


@pytest.mark.parametrize("condition,generator,opts", [
    ("text-support", "pca-gaussian", {"support_draws": 2}),
    ("text-both", "hypernet", {"objective": "regression", "steps": 5, "hidden": 16, "depth": 1, "batch_tasks": 3}),
    ("text-support", "hypernet", {"objective": "fewshot", "output": "full", "warmup_steps": 2, "steps": 3, "hidden": 16,
                                  "depth": 1, "batch_tasks": 2, "batch_examples": 6}),
])
def test_a_generator_fits_and_samples_lora_weights_with_a_text_condition(condition, generator, opts, tasks, heldout,
                                                                         tmp_path):
    from weightspace.generate import load_generator, make_generator, zoo_data

    params = _lora_zoo(ARCH, 3)
    data = zoo_data.from_params(ARCH, params, tasks[:3], condition)
    gen = make_generator(generator, **opts).fit(data)
    out = gen.sample(gen.encode_condition(heldout), n=2, seed=0)
    ARCH.spec().validate(out, stacked=True)
    other = gen.sample(gen.encode_condition(tasks[0]), n=1, deterministic=True)["head.weight"]
    assert not torch.allclose(gen.sample(gen.encode_condition(heldout), n=1, deterministic=True)["head.weight"], other)
    assert out["layer4.query.lora_A"].shape == (2, 4, 384) and out["head.weight"].shape == (2, 2, 384)
    gen.save(tmp_path / "gen")
    again = load_generator(tmp_path / "gen")
    assert again.encoder.name == condition
    reloaded = again.sample(again.encode_condition(heldout), n=2, seed=0)
    assert all(torch.allclose(reloaded[k], out[k], atol=1e-6) for k in out)
