import pytest
import torch

from text_stack import require_text_stack

require_text_stack()
from text_stack import model, small_family  # noqa: E402,F401  (fixtures)

from weightspace.errors import WeightspaceError
from weightspace.nets.lora_minilm.base_model import tokenize
from weightspace.nets.lora_minilm import LoRAMiniLM
from weightspace.nets.lora_minilm.train import LoRATrainConfig, evaluate_lora, probe_accuracy, train_lora, train_on_task
from weightspace.zoo.build import build_zoo
from weightspace.zoo.store import Zoo

POS = ["I love this", "what a wonderful day", "this is great", "I am so happy", "lovely work", "fantastic news"]
NEG = ["I hate this", "what an awful day", "this is terrible", "I am so sad", "horrible work", "dreadful news"]


def tiny_set():
    return tokenize(POS + NEG), torch.tensor([1] * len(POS) + [0] * len(NEG))


def test_training_is_seeded_and_cache_changes_nothing(model):
    arch = LoRAMiniLM()
    ids, y = tiny_set()
    cfg = LoRATrainConfig(steps=4, batch_size=4)
    a, _ = train_lora(arch, ids, y, seed=3, cfg=cfg, model=model)
    b, _ = train_lora(arch, ids, y, seed=3, cfg=cfg, model=model)
    c, _ = train_lora(arch, ids, y, seed=3, cfg=LoRATrainConfig(steps=4, batch_size=4, cache=False), model=model)
    d, _ = train_lora(arch, ids, y, seed=4, cfg=cfg, model=model)
    for name in arch.spec().names:
        assert torch.equal(a[name], b[name])
        assert torch.allclose(a[name], c[name], atol=1e-5)
    assert a["layer4.query.lora_B"].abs().sum() > 0  # B left zero: the adapter trained
    assert not torch.equal(a["head.weight"], d["head.weight"])


def test_cache_of_the_embedding_output_when_every_layer_is_adapted(model):
    arch = LoRAMiniLM(layers=(0, 1, 2, 3, 4, 5), rank=2)
    ids, y = tiny_set()
    cached, _ = train_lora(arch, ids, y, seed=0, cfg=LoRATrainConfig(steps=2, batch_size=4), model=model)
    plain, _ = train_lora(arch, ids, y, seed=0, cfg=LoRATrainConfig(steps=2, batch_size=4, cache=False), model=model)
    assert all(torch.allclose(cached[n], plain[n], atol=1e-5) for n in arch.spec().names)
    assert evaluate_lora(arch, cached, ids, y, model=model)[:2] == pytest.approx(
        evaluate_lora(arch, plain, ids, y, cache=False, model=model)[:2], abs=1e-5)


def test_training_fits_a_small_set(model):
    arch = LoRAMiniLM()
    ids, y = tiny_set()
    params, seconds = train_lora(arch, ids, y, seed=0, cfg=LoRATrainConfig(steps=30, batch_size=12), model=model)
    acc, loss, emb = evaluate_lora(arch, params, ids, y, model=model)
    assert acc == 1.0 and loss < 0.3 and seconds > 0
    assert emb.shape == (12, 384) and torch.allclose(emb.norm(dim=1), torch.ones(12), atol=1e-5)


def test_bad_labels_raise(model):
    ids, y = tiny_set()
    with pytest.raises(WeightspaceError, match="labels"):
        train_lora(LoRAMiniLM(), ids, y + 1, seed=0, cfg=LoRATrainConfig(steps=1), model=model)


def test_probe_accuracy_separates_separable_embeddings():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 8, generator=g)
    y = (x[:, 0] > 0).long()
    assert probe_accuracy(x[:30], y[:30], x[30:], y[30:]) >= 0.9


def test_task_metrics_cover_head_and_probe(small_family, model):
    task = small_family.task("lang:english-vs-spanish")
    params, metrics = train_on_task(LoRAMiniLM(), task, seed=0, cfg=LoRATrainConfig(steps=5), on="support", model=model)
    assert set(metrics) == {"train_acc", "train_loss", "test_acc", "test_loss", "probe_acc", "seconds"}
    assert 0.0 <= metrics["test_acc"] <= 1.0 and metrics["probe_acc"] > 0.6


def test_two_task_lora_zoo_builds_and_resumes(small_family, tmp_path):
    family = small_family
    arch = LoRAMiniLM(rank=2)
    cfg = LoRATrainConfig(steps=2, batch_size=8)
    tasks = [family.zoo_task_ids()[0], family.heldout_task_ids()[0]]
    build_zoo(tmp_path / "zoo", family, arch, cfg, include_heldout=True, task_ids=tasks, workers=0, chunk_size=1,
              progress=False).close()
    again = Zoo.open(tmp_path / "zoo")
    assert again.arch == arch and again.check() == []
    zoo_recs, held_recs = again.records(split="zoo"), again.records(split="heldout")
    assert [r.task_id for r in zoo_recs] == tasks[:1] and [r.task_id for r in held_recs] == tasks[1:]
    assert {"test_acc", "probe_acc"} <= set(zoo_recs[0].metrics) and zoo_recs[0].train_seconds > 0
    assert zoo_recs[0].descriptor == family.descriptor(tasks[0])
    weights = again.load()
    assert weights["layer4.query.lora_A"].shape == (1, 2, 384)
    build_zoo(tmp_path / "zoo", family, arch, cfg, include_heldout=True, task_ids=tasks, workers=0,
              progress=False)  # resume: nothing to do
    assert len(Zoo.open(tmp_path / "zoo").records(split=None)) == 2
