"""Response bodies: a safetensors file in memory, or a zip of PEFT adapter folders."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path
from typing import Mapping

import torch
from safetensors.torch import save as safetensors_bytes

from weightspace.nets.base import Architecture
from weightspace.nets.lora_minilm import LoRAMiniLM

SAFETENSORS_MEDIA = "application/octet-stream"
ZIP_MEDIA = "application/zip"


def is_lora(arch: Architecture) -> bool:
    """Whether a generator's weights can be written as PEFT adapters (export/peft.py)."""
    return isinstance(arch, LoRAMiniLM)


def peft_export_available() -> bool:
    try:
        import weightspace.export.peft  # noqa: F401
    except ImportError:
        return False
    return True


def safetensors_body(stacked: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> bytes:
    """n = 1: a plain state dict (the spec's names and shapes); n > 1: tensors stacked on axis 0."""
    n = next(iter(stacked.values())).shape[0]
    tensors = {k: (v[0] if n == 1 else v).detach().contiguous() for k, v in stacked.items()}
    return safetensors_bytes(tensors, metadata=dict(metadata))


def peft_zip_body(arch: Architecture, stacked: Mapping[str, torch.Tensor], card: dict) -> bytes:
    """A zip holding adapter-0/, adapter-1/, ...: each a folder ``PeftModel.from_pretrained`` loads."""
    from weightspace.export.peft import export_peft

    n = next(iter(stacked.values())).shape[0]
    buf = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="weightspace-peft-") as tmp, \
            zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for i in range(n):
            folder = export_peft({k: v[i] for k, v in stacked.items()}, Path(tmp) / f"adapter-{i}", arch,
                                 card={**card, "member": i})
            for f in sorted(folder.iterdir()):
                zf.write(f, f"adapter-{i}/{f.name}")
    return buf.getvalue()
