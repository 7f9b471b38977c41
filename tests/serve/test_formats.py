"""Response formats: safetensors bytes, and PEFT adapter folders zipped for LoRA generators."""

from __future__ import annotations

import io
import zipfile

import httpx
import torch
from safetensors.torch import load as load_bytes

from weightspace.export.peft import read_peft
from weightspace.generate import make_generator, zoo_data
from weightspace.nets import MLP
from weightspace.serve.formats import is_lora, peft_zip_body, safetensors_body
from weightspace.nets.lora_minilm import LoRAMiniLM

from serve_helpers import running

LORA = LoRAMiniLM(n_classes=2, layers=(5,), modules=("query", "value"), rank=2)


def lora_members(m: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {t.name: torch.randn(m, *t.shape, generator=g) * 0.05 for t in LORA.spec().tensors}


def test_safetensors_body_is_a_state_dict_for_one_model_and_a_stack_for_several():
    arch = MLP(input_shape=(4,), n_classes=3, hidden=(5,))
    stacked = arch.init_params_stacked([1, 2])
    two = load_bytes(safetensors_body(stacked, {"k": "v"}))
    one = load_bytes(safetensors_body({k: v[:1] for k, v in stacked.items()}, {}))
    assert all(torch.equal(two[k], stacked[k]) for k in stacked)
    assert all(torch.equal(one[k], stacked[k][0]) for k in stacked)
    assert not is_lora(arch) and is_lora(LORA)


def test_peft_zip_holds_one_loadable_adapter_folder_per_model():
    stacked = lora_members(3)
    archive = zipfile.ZipFile(io.BytesIO(peft_zip_body(LORA, stacked, {"generator": "test"})))
    names = set(archive.namelist())
    for i in range(3):
        assert {f"adapter-{i}/adapter_config.json", f"adapter-{i}/adapter_model.safetensors", f"adapter-{i}/card.json"} <= names


def test_a_lora_generator_serves_peft_adapters_over_http(tmp_path, fam):
    # A real generator over a LoRA weight space, conditioned on the digits family's descriptors
    # (any family featurises the condition; this test is about the transport of adapters).
    tasks = [fam.task(t) for t in fam.zoo_task_ids()]
    data = zoo_data.from_params(LORA, lora_members(len(tasks), seed=1), tasks, condition="descriptor", family=fam)
    make_generator("pca-gaussian").fit(data).save(tmp_path / "lora-gen")
    with running(tmp_path / "lora-gen") as base:
        meta = httpx.get(f"{base}/v1/metadata").json()
        assert meta["formats"] == ["safetensors", "peft"] and meta["weight_space"]["lora"] is True
        body = {"descriptor": list(fam.descriptor(fam.heldout_task_ids()[0])), "n": 2, "seed": 5, "format": "peft"}
        r = httpx.post(f"{base}/v1/generate", json=body, timeout=30)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/zip"
        raw = httpx.post(f"{base}/v1/generate", json={**body, "format": "safetensors"}, timeout=30)
        stacked = load_bytes(raw.content)
    zipfile.ZipFile(io.BytesIO(r.content)).extractall(tmp_path / "unzipped")
    for i in range(2):
        arch, params = read_peft(tmp_path / "unzipped" / f"adapter-{i}")
        assert arch == LORA
        # The adapters hold exactly the weights the same request returns as safetensors.
        assert all(torch.equal(params[k], stacked[k][i]) for k in params)
