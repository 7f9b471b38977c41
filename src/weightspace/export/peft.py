"""Export a LoRA set as a PEFT adapter folder that ``PeftModel.from_pretrained`` loads as is.

Folder contents (PEFT's checkpoint format):

- ``adapter_config.json``: ``peft_type: LORA``, rank ``r``, ``lora_alpha``, ``target_modules``
  (full module paths below the model root, matched by PEFT as suffixes), ``modules_to_save:
  ["classifier"]`` for the head, dropout 0, no bias.
- ``adapter_model.safetensors``: ``base_model.model.<module path>.lora_A.weight`` (r, d_in) and
  ``...lora_B.weight`` (d_out, r) per adapted Linear; the head as
  ``base_model.model.classifier.weight`` / ``.bias`` (PEFT strips the modules_to_save wrapper
  from saved names).
- ``card.json``: how the adapter was made (weightspace's card; PEFT ignores the file).

The model the adapter belongs to is ``SentenceClassifier``: the MiniLM as ``.bert`` and a linear
head as ``.classifier`` on the mean-pooled, normalised embedding (the layout of
BertForSequenceClassification, so the LoRA part also loads onto that class; only the pooling of
its head differs). The folder is built beside its destination and renamed into place, so a
crash never leaves a half-written adapter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from weightspace.errors import WeightspaceError
from weightspace.io import atomic_dir, atomic_write_json, load_safetensors, read_json, save_safetensors
from weightspace.nets.lora_minilm import LoRAMiniLM
from weightspace.nets.lora_minilm.base_model import HIDDEN, MODULES, PAD_ID, load_bert, mean_pool

PREFIX = "base_model.model."
ENCODER = "bert"  # attribute of SentenceClassifier holding the BertModel
HEAD = "classifier"  # attribute holding the head (the name BertForSequenceClassification uses)
CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"


def module_path(layer: int, module: str) -> str:
    """Path of an adapted Linear inside the BertModel, e.g. encoder.layer.4.attention.self.query."""
    return f"encoder.layer.{layer}.{MODULES[module][0]}"


def adapter_state_dict(arch: LoRAMiniLM, params: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The LoRA set under PEFT's saved names."""
    arch.spec().validate(params, where="LoRA weights to export")
    return {peft: params[name].detach().to("cpu", torch.float32).contiguous() for peft, name in _spec_names(arch).items()}


def adapter_config(arch: LoRAMiniLM) -> dict:
    return {
        "peft_type": "LORA",
        "task_type": None,  # a custom model (SentenceClassifier), not a transformers task head
        "base_model_name_or_path": arch.base,
        "r": arch.rank,
        "lora_alpha": arch.alpha,
        "lora_dropout": 0.0,
        "bias": "none",
        "fan_in_fan_out": False,
        "use_rslora": False,
        "use_dora": False,
        "init_lora_weights": True,
        "inference_mode": True,
        "target_modules": [module_path(i, m) for i, m in arch.targets()],
        "modules_to_save": [HEAD],
    }


def export_peft(lora_params: Mapping[str, torch.Tensor], out_dir: str | Path, arch: LoRAMiniLM,
                card: dict | None = None, overwrite: bool = False) -> Path:
    """Write a PEFT adapter folder for one LoRA set of ``arch``; returns its path."""
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise WeightspaceError(f"{out} already exists; choose a new folder or pass overwrite=True (--overwrite).")
    if out.exists() and not (out / CONFIG_NAME).is_file():
        raise WeightspaceError(f"{out} exists and is not a PEFT adapter folder; refusing to replace it.")
    tensors = adapter_state_dict(arch, lora_params)
    with atomic_dir(out) as tmp:  # the old folder keeps its name until the new one is complete
        save_safetensors(tmp / WEIGHTS_NAME, tensors, {"format": "pt"})
        atomic_write_json(tmp / CONFIG_NAME, adapter_config(arch))
        atomic_write_json(tmp / "card.json", {**(card or {}), "arch": arch.to_dict()})
    return out


def read_peft(adapter_dir: str | Path, n_classes: int | None = None) -> tuple[LoRAMiniLM, dict[str, torch.Tensor]]:
    """Read a folder written by ``export_peft`` back into (arch, LoRA set in spec names)."""
    d = Path(adapter_dir)
    if not (d / CONFIG_NAME).is_file():
        raise WeightspaceError(f"{d} is not a PEFT adapter folder (no {CONFIG_NAME}).")
    cfg = read_json(d / CONFIG_NAME, f"{d / CONFIG_NAME} is not valid JSON.")
    tensors, _ = load_safetensors(d / WEIGHTS_NAME)
    head_w = tensors.get(f"{PREFIX}{HEAD}.weight")
    if head_w is None or cfg.get("peft_type") != "LORA":
        raise WeightspaceError(f"{d} is not a weightspace LoRA classifier adapter (LORA with a '{HEAD}' head).")
    targets = []
    for path in cfg.get("target_modules", []):
        parts = path.split(".")
        sub = ".".join(parts[3:])
        names = [m for m, (p, _) in MODULES.items() if p == sub]
        if parts[:2] != ["encoder", "layer"] or not names:
            raise WeightspaceError(f"{d}: target module {path!r} is not a MiniLM Linear that weightspace models.")
        targets.append((int(parts[2]), names[0]))
    layers = tuple(sorted({i for i, _ in targets}))
    modules = tuple(dict.fromkeys(m for _, m in targets))
    arch = LoRAMiniLM(n_classes=n_classes or head_w.shape[0], layers=layers, modules=modules, rank=int(cfg["r"]),
                      alpha=float(cfg["lora_alpha"]), base=cfg.get("base_model_name_or_path") or LoRAMiniLM.base)
    if sorted(arch.targets()) != sorted(targets):
        raise WeightspaceError(f"{d}: adapters must cover every listed module on every listed layer.")
    inverse = _spec_names(arch)
    missing = sorted(set(inverse) - set(tensors))
    if missing:
        raise WeightspaceError(f"{d}/{WEIGHTS_NAME} lacks {missing[0]}.")
    params = {inverse[k]: tensors[k] for k in inverse}
    arch.spec().validate(params, where=f"{d}/{WEIGHTS_NAME}")
    return arch, params


def _spec_names(arch: LoRAMiniLM) -> dict[str, str]:
    """PEFT saved name -> spec name."""
    out = {}
    for i, m in arch.targets():
        base = f"{PREFIX}{ENCODER}.{module_path(i, m)}"
        out[f"{base}.lora_A.weight"] = f"layer{i}.{m}.lora_A"
        out[f"{base}.lora_B.weight"] = f"layer{i}.{m}.lora_B"
    out[f"{PREFIX}{HEAD}.weight"] = "head.weight"
    out[f"{PREFIX}{HEAD}.bias"] = "head.bias"
    return out


class SentenceClassifier(nn.Module):
    """MiniLM + mean pooling + L2 normalisation + linear head: the model a weightspace LoRA
    classifier adapts. forward(input_ids, attention_mask=None) -> logits."""

    def __init__(self, n_classes: int = 2):
        super().__init__()
        setattr(self, ENCODER, load_bert())
        setattr(self, HEAD, nn.Linear(HIDDEN, n_classes))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        mask = (input_ids != PAD_ID) if attention_mask is None else attention_mask.bool()
        hidden = getattr(self, ENCODER)(input_ids=input_ids, attention_mask=mask.long()).last_hidden_state
        return getattr(self, HEAD)(mean_pool(hidden, mask))


def load_peft_classifier(adapter_dir: str | Path):
    """``PeftModel.from_pretrained(SentenceClassifier(), adapter_dir)`` in eval mode."""
    try:
        from peft import PeftModel
    except ImportError:
        raise WeightspaceError("loading PEFT adapters needs peft; install it with `pip install peft`.") from None
    arch, _ = read_peft(adapter_dir)
    model = PeftModel.from_pretrained(SentenceClassifier(arch.n_classes), str(adapter_dir))
    model.eval()
    return model
