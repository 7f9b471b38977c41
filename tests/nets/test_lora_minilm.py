import math

import pytest
import torch

from text_stack import require_text_stack

require_text_stack()
from text_stack import model  # noqa: E402,F401  (fixtures)

from weightspace.errors import WeightspaceError
from weightspace.nets import arch_from_dict
from weightspace.nets.lora_minilm import forward as lora
from weightspace.nets.lora_minilm.base_model import PAD_ID, HiddenCache, tokenize
from weightspace.nets.lora_minilm import LoRAMiniLM
from weightspace.symmetry.canonical import canonical_frame

TEXTS = ["what is artificial intelligence", "I feel happy today", "hi", "the match ended two to one after extra time"]


def random_lora(arch, seed=0, scale=0.05):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=g) * scale for k, v in arch.init_params(0).items()}


def test_spec_names_shapes_and_rank_groups():
    arch = LoRAMiniLM(layers=(5, 4), modules=("query", "ffn_in"), rank=3)
    spec = arch.spec()
    assert spec.names[:4] == ("layer4.query.lora_A", "layer4.query.lora_B", "layer4.ffn_in.lora_A", "layer4.ffn_in.lora_B")
    assert spec.shapes["layer4.ffn_in.lora_A"] == (3, 384) and spec.shapes["layer4.ffn_in.lora_B"] == (1536, 3)
    assert spec.names[-2:] == ("head.weight", "head.bias") and spec.shapes["head.weight"] == (2, 384)
    assert [g.size for g in spec.groups] == [3] * 4 and all(g.scale_invariant for g in spec.groups)
    assert arch_from_dict(arch.to_dict()) == arch


def test_bad_arch_options_raise():
    with pytest.raises(WeightspaceError, match="layers"):
        LoRAMiniLM(layers=(6,))
    with pytest.raises(WeightspaceError, match="modules"):
        LoRAMiniLM(modules=("q_proj",))
    with pytest.raises(WeightspaceError, match="init"):
        LoRAMiniLM().init_params(0, "kaiming")


def test_peft_init_starts_at_the_base_model(model):
    arch = LoRAMiniLM()
    p = arch.init_params(7)
    assert all(not p[n].any() for n in p if n.endswith("lora_B"))
    a = p["layer4.query.lora_A"]
    assert a.abs().max() <= 1 / math.sqrt(384) and a.std() > 0.5 / math.sqrt(3 * 384)
    assert torch.equal(p["layer4.query.lora_A"], arch.init_params(7)["layer4.query.lora_A"])
    ids = tokenize(TEXTS)
    assert torch.allclose(lora.embeddings(arch, p, ids, model), model.embed(ids), atol=1e-6)


def test_cached_path_equals_full_path_and_module(model):
    arch = LoRAMiniLM(layers=(3, 5), modules=("query", "value", "attn_out"))
    p = random_lora(arch)
    ids = tokenize(TEXTS)
    full = lora.logits(arch, p, ids, model)
    hidden = HiddenCache(model).get(ids, arch.first_layer)
    assert torch.allclose(lora.logits_from_hidden(arch, p, hidden, ids != PAD_ID, model=model), full, atol=1e-5)
    module = arch.module()
    assert list(module.state_dict()) == list(arch.spec().names)
    assert torch.allclose(torch.func.functional_call(module, p, (ids,)), full, atol=1e-5)
    assert not torch.allclose(full, lora.logits(arch, arch.init_params(0) | {"head.weight": p["head.weight"],
                                                                             "head.bias": p["head.bias"]}, ids, model))


def test_delta_is_scaled_product_and_gauge_invariant(model):
    arch = LoRAMiniLM(rank=4, alpha=16)
    p = random_lora(arch, 1)
    delta = lora.delta_weights(arch, p)[(4, "query")]
    assert torch.allclose(delta, 4.0 * p["layer4.query.lora_B"] @ p["layer4.query.lora_A"])
    perm, scale = torch.tensor([2, 0, 3, 1]), torch.tensor([0.5, 2.0, 3.0, 0.25])
    q = dict(p)
    for i, m in arch.targets():
        q[f"layer{i}.{m}.lora_A"] = p[f"layer{i}.{m}.lora_A"][perm] * scale[:, None]
        q[f"layer{i}.{m}.lora_B"] = p[f"layer{i}.{m}.lora_B"][:, perm] / scale
    ids = tokenize(TEXTS)
    assert torch.allclose(lora.logits(arch, q, ids, model), lora.logits(arch, p, ids, model), atol=1e-5)


def test_gradients_reach_only_the_lora_set(model):
    arch = LoRAMiniLM()
    p = {k: v.requires_grad_(True) for k, v in random_lora(arch, 2).items()}
    lora.logits(arch, p, tokenize(TEXTS), model).sum().backward()
    assert all(v.grad is not None and v.grad.abs().sum() > 0 for v in p.values())
    assert all(q.grad is None for q in model.bert.parameters())


def test_hidden_cache_reuses_and_evicts(model):
    cache = HiddenCache(model, capacity=1)
    ids = tokenize(TEXTS)
    first = cache.get(ids, 4)
    assert cache.get(ids, 4) is first and len(cache) == 1
    cache.get(ids[:2], 4)
    assert len(cache) == 1 and cache.get(ids, 4) is not first


def test_vmap_over_stacked_lora_sets_matches_a_loop(model):
    arch = LoRAMiniLM()
    ids = tokenize(TEXTS)
    hidden, mask = model.lower_hidden(ids, arch.first_layer), ids != PAD_ID
    members = [random_lora(arch, s) for s in range(3)]
    stacked = {k: torch.stack([m[k] for m in members]) for k in arch.spec().names}
    run = lambda p: lora.logits_from_hidden(arch, p, hidden, mask, model=model)  # noqa: E731
    looped = torch.stack([run(m) for m in members])
    assert torch.allclose(torch.func.vmap(run)(stacked), looped, atol=1e-5)


def test_canonical_form_is_shared_by_gauge_equivalent_sets():
    arch = LoRAMiniLM(rank=3)
    p = random_lora(arch, 5)
    g = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(1)))[0] * 2.0
    q = dict(p)
    for i, m in arch.targets():
        q[f"layer{i}.{m}.lora_A"] = g @ p[f"layer{i}.{m}.lora_A"]
        q[f"layer{i}.{m}.lora_B"] = p[f"layer{i}.{m}.lora_B"] @ torch.linalg.inv(g)
    cp, cq = canonical_frame(arch, p), canonical_frame(arch, q)
    for name in arch.spec().names:
        assert torch.allclose(cp[name], cq[name], atol=1e-4), name
    for key, delta in lora.delta_weights(arch, cp).items():
        assert torch.allclose(delta, lora.delta_weights(arch, p)[key], atol=1e-5)


def test_generic_member_evaluation_runs_lora_sets(model):
    from weightspace.zoo.train import evaluate_members

    arch = LoRAMiniLM()
    members = [random_lora(arch, s) for s in range(2)]
    stacked = {k: torch.stack([m[k] for m in members]) for k in arch.spec().names}
    ids, y = tokenize(TEXTS), torch.tensor([0, 1, 0, 1])
    acc, loss = evaluate_members(arch, stacked, ids, y)
    for i, m in enumerate(members):
        logits = lora.logits(arch, m, ids, model)
        assert acc[i].item() == pytest.approx((logits.argmax(1) == y).float().mean().item())
        assert loss[i].item() == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item(), abs=1e-5)
