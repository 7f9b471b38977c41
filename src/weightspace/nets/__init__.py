"""Architectures whose weights weightspace models. Each supplies its WeightSpec, declares its
optional capabilities on the Architecture contract (nets.base) and registers itself in
``ARCHITECTURES`` (nets.registry); importing this package imports every one, in this order."""

from __future__ import annotations

from weightspace.nets.base import Architecture, load_module
from weightspace.nets.mlp import MLP  # registration order, which listings show: mlp, cnn, lora-minilm
from weightspace.nets.cnn import CNN
from weightspace.nets.lora_minilm import LoRAMiniLM  # light: its frozen backbone (transformers) loads on first use
from weightspace.nets.registry import ARCHITECTURES, arch_class, arch_for_family, arch_from_dict, make_arch, register_arch

__all__ = ["Architecture", "MLP", "CNN", "LoRAMiniLM", "ARCHITECTURES", "arch_class", "make_arch", "arch_for_family",
           "arch_from_dict", "load_module", "register_arch"]
