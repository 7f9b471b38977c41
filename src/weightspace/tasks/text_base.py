"""What the text task families (chatterbot, wordnet) share: the ``TextTask`` type, the
``TextFamily`` base (options from a config dataclass, an LRU of built tasks), per-task seeds,
the frozen MiniLM's hidden inputs, and a data fingerprint that does not depend on float bits.

The MiniLM is imported lazily through nets/lora_minilm/base_model (transformers loads on first
use), so importing this module stays cheap.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from weightspace.config import from_mapping, option
from weightspace.nets.lora_minilm import base_model as minilm
from weightspace.nets.lora_minilm.forward import join_hidden
from weightspace.nets.lora_minilm.spec import INPUTS
from weightspace.tasks.base import Task, TaskCache, TaskFamily, tensors_sha256


@dataclass
class TextTask(Task):
    """A text Task. With ``inputs="ids"`` the ``x_*`` are int64 (N, L) ids of the base tokenizer,
    padded with 0 (so the attention mask is ``x != 0``); with ``inputs="hidden"`` they are float
    (N, max_length, 385) frozen activations entering ``hidden_layer`` plus the mask as the last
    channel. The sentences themselves ride along."""

    texts_train: tuple[str, ...] = ()
    texts_test: tuple[str, ...] = ()
    support_texts: tuple[str, ...] = ()
    kind: str = ""
    class_names: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()


def seed_for(seed: int, key: str) -> int:
    """A 64-bit seed for one named stream (a task id, a split) of a family seed."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "little")


def hidden_inputs(ids: torch.Tensor, max_length: int, hidden_layer: int) -> torch.Tensor:
    """(N, max_length, 385): the frozen MiniLM's activations entering ``hidden_layer`` and the
    attention mask, padded to a fixed width so that every task's inputs stack into one batch."""
    ids = torch.nn.functional.pad(ids, (0, max_length - ids.shape[1]), value=minilm.PAD_ID)
    hidden = minilm.base_model(max_length).lower_hidden(ids, hidden_layer)
    return join_hidden(hidden, ids != minilm.PAD_ID)


def text_fingerprint(texts_train: Sequence[str], y_train: torch.Tensor, texts_test: Sequence[str],
                     y_test: torch.Tensor, max_length: int) -> str:
    """sha256 of a task's token ids and labels, whatever its inputs are: hidden activations
    differ in the last bits between machines, the data behind them does not."""
    return tensors_sha256((minilm.tokenize(texts_train, max_length), y_train, minilm.tokenize(texts_test, max_length),
                           y_test))


class TextFamily(TaskFamily):
    """A text family: its options are a ``config_class`` dataclass, read into ``self.cfg`` and
    kept as attributes of the same name too (``family.max_length``, ``family.inputs``); tasks are
    built by ``_build_task`` on first use and the last ``task_cache`` kept (hidden inputs are
    costly to make); the fingerprint reads token ids (``text_fingerprint``)."""

    task_cache = 512  # tasks kept built; with hidden inputs one task holds 10-15 MB
    max_length: int
    inputs: str
    hidden_layer: int

    def __init__(self, **options: Any):
        self.cfg = from_mapping(self.config_class, options, where=f"family {self.name}")
        vars(self).update(vars(self.cfg))
        self._tasks = TaskCache(self.task_cache)

    def task(self, task_id: str) -> TextTask:
        return self._tasks.get(task_id, lambda: self._build_task(task_id))

    def _build_task(self, task_id: str) -> TextTask:  # pragma: no cover - interface
        raise NotImplementedError

    def _fingerprint(self) -> str:
        task = self.task(self.zoo_task_ids()[0])
        return text_fingerprint(task.texts_train, task.y_train, task.texts_test, task.y_test, self.max_length)


def inputs_option() -> Any:
    return option("ids", "ids: token ids of the base tokenizer; hidden: the frozen MiniLM's activations entering "
                         "hidden_layer, with the attention mask as a last channel", choices=INPUTS)


def hidden_layer_option() -> Any:
    return option(4, "the layer hidden inputs enter: the lowest layer a LoRA adapts", min=0, max=5)
