"""Hidden inputs: the chatterbot family hands LoRA models the frozen activations entering the
first adapted layer, and every generic (vmapped) path gives what the token-id path gives."""

import pytest
import torch

from text_stack import require_text_stack

require_text_stack()
from text_stack import family, hidden_family, model, small_family  # noqa: E402,F401  (fixtures)

from weightspace.adapt.head_refit import fit_head
from weightspace.errors import WeightspaceError
from weightspace.nets.predict import predict_members
from weightspace.nets.lora_minilm import forward as lora
from weightspace.nets.lora_minilm import LoRAMiniLM
from weightspace.symmetry.canonical import canonical_frame



def _random_lora(arch, seed):
    g = torch.Generator().manual_seed(seed)
    return {k: (v if not k.endswith("lora_B") else 0.05 * torch.randn(v.shape, generator=g))
            for k, v in arch.init_params(seed).items()}


def test_hidden_tasks_match_id_tasks(small_family, hidden_family):
    task_id = hidden_family.heldout_task_ids()[0]
    ids, hid = small_family.task(task_id), hidden_family.task(task_id)
    assert hid.x_train.shape == (len(ids.y_train), 32, 385) and hid.x_train.dtype == torch.float32
    assert torch.equal(ids.y_test, hid.y_test) and ids.support_texts == hid.support_texts
    _, mask = lora.split_hidden(hid.x_test)
    assert torch.equal(mask.sum(1), (ids.x_test != 0).sum(1))  # the mask channel is the padding mask
    assert hidden_family.data_fingerprint() == small_family.data_fingerprint()  # the data, not the floats


def test_module_forward_and_vmapped_predictions_equal_the_id_path(small_family, hidden_family, model):
    task_id = hidden_family.heldout_task_ids()[0]
    ids, hid = small_family.task(task_id), hidden_family.task(task_id)
    arch_ids, arch_hid = LoRAMiniLM(), LoRAMiniLM(inputs="hidden")
    members = [_random_lora(arch_ids, s) for s in (1, 2, 3)]
    expected = torch.stack([lora.logits(arch_ids, p, ids.x_test, model) for p in members])
    module = arch_hid.module()
    got = torch.stack([torch.func.functional_call(module, p, (hid.x_test,)) for p in members])
    assert torch.allclose(got, expected, atol=1e-4)
    stacked = {k: torch.stack([p[k] for p in members]) for k in members[0]}
    preds, _ = predict_members(arch_hid, stacked, hid.x_test, hid.y_test)  # vmap over members
    assert torch.equal(preds, expected.argmax(-1))


def test_training_on_hidden_inputs_equals_training_on_ids(small_family, hidden_family, model):
    from weightspace.nets.lora_minilm.train import LoRATrainConfig, train_lora

    task_id = hidden_family.zoo_task_ids()[0]
    ids, hid = small_family.task(task_id), hidden_family.task(task_id)
    cfg = LoRATrainConfig(steps=3, batch_size=8)
    a, _ = train_lora(LoRAMiniLM(), ids.x_train, ids.y_train, 0, cfg, model=model)
    b, _ = train_lora(LoRAMiniLM(inputs="hidden"), hid.x_train, hid.y_train, 0, cfg, model=model)
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_canonical_frame_keeps_every_delta_w():
    arch = LoRAMiniLM(inputs="hidden")
    members = [_random_lora(arch, s) for s in (4, 5)]
    stacked = {k: torch.stack([p[k] for p in members]) for k in members[0]}
    framed = canonical_frame(arch, stacked)
    for i in range(2):
        before = lora.delta_weights(arch, members[i])
        after = lora.delta_weights(arch, {k: v[i] for k, v in framed.items()})
        assert all(torch.allclose(before[k], after[k], atol=1e-6) for k in before)
    assert torch.equal(framed["head.weight"], stacked["head.weight"])


def test_mismatched_inputs_are_refused(small_family, hidden_family):
    from weightspace.nets.lora_minilm.train import check_inputs

    check_inputs(LoRAMiniLM(inputs="hidden"), hidden_family)
    with pytest.raises(WeightspaceError, match="same inputs"):
        check_inputs(LoRAMiniLM(), hidden_family)
    with pytest.raises(WeightspaceError, match="same inputs"):
        check_inputs(LoRAMiniLM(inputs="hidden", layers=(3, 5)), hidden_family)
    with pytest.raises(WeightspaceError, match="inputs"):
        LoRAMiniLM(inputs="embeddings")


def test_heldout_tasks_interleave_the_kinds(family):
    first = [family._def(t).kind for t in family.heldout_task_ids()[:4]]
    assert sorted(first) == ["lang", "pooled", "rest", "topic"]
    assert sorted(family.heldout_task_ids()) == sorted(i for i, d in family._defs.items() if d.heldout)


def test_fit_head_keeps_the_adapters_and_fits_the_support_set(hidden_family, model):
    arch = LoRAMiniLM(inputs="hidden")
    task = hidden_family.task(hidden_family.heldout_task_ids()[3])  # a language pair: separable
    params = _random_lora(arch, 7)
    fitted = fit_head(arch, params, task.support_x, task.support_y)
    assert all(torch.equal(fitted[k], params[k]) for k in params if not k.startswith("head."))
    preds, _ = predict_members(arch, {k: v[None] for k, v in fitted.items()}, task.support_x, task.support_y)
    assert (preds[0] == task.support_y).float().mean() >= 0.9


def test_head_modes_need_an_architecture_with_a_head():
    from weightspace.evaluate.generated import parse_mode

    assert parse_mode("central+head") == 0 and parse_mode("best-of-4+head") == 4
    assert parse_mode("central+prior") == 0 and parse_mode("best-of-2+prior") == 2
    with pytest.raises(WeightspaceError):
        parse_mode("central+tail")


def test_per_member_features_of_compacted_inputs_equal_the_embeddings(hidden_family, model):
    from weightspace.encode.functional import forward_members

    arch = LoRAMiniLM(inputs="hidden")
    hid = hidden_family.task(hidden_family.heldout_task_ids()[0])
    members = [_random_lora(arch, s) for s in (1, 2)]
    stacked = {k: torch.stack([p[k] for p in members]) for k in members[0]}
    shortest = hid.x_test[hid.x_test[..., -1].sum(1).argsort()[:12]]
    x = torch.stack([shortest[:6], shortest[6:]])  # different inputs per member, none 32 tokens long
    short = arch.compact_inputs(x)
    assert short.shape[2] < x.shape[2] and short.shape[2] == int(x[..., -1].sum(-1).max())
    feats = forward_members(arch.module(), stacked, short, per_member=True, features=True)
    for i, p in enumerate(members):
        hidden, mask = lora.split_hidden(x[i])
        assert torch.allclose(feats[i], lora.embeddings_from_hidden(arch, p, hidden, mask, model=model), atol=1e-5)
    assert torch.equal(LoRAMiniLM().compact_inputs(x), x)  # token ids: left alone
