"""Build a LoRA zoo: one LoRA set per (task, seed) of a text family, stored in the Zoo store.

Same plan and resume rules as ``zoo.build``: the job list is a deterministic function of the
family and the seeds; a rerun skips every key already stored and trains the rest. Jobs run in
worker processes (one torch thread each; two workers on two cores), which rebuild the family
and load the frozen base model once per process; only task ids and configs cross the process
boundary. The main process stores each finished chunk as one shard, in plan order.

Each member's metrics: train/test accuracy and loss of the head trained with the adapter, and
``probe_acc``, the MTEB-style score of a logistic-regression probe on the adapted embeddings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from weightspace.card import make_card
from weightspace.config import from_mapping, to_dict
from weightspace.errors import WeightspaceError
from weightspace.text.lora_arch import LoRAMiniLM
from weightspace.text.lora_train import LoRATrainConfig, train_on_task
from weightspace.zoo.build import Job, plan_jobs
from weightspace.zoo.manifest import MemberRecord, member_key
from weightspace.zoo.store import Zoo

INIT_LABEL = "independent:peft"  # A kaiming-uniform, B = 0: every member starts at the base model

_FAMILIES: dict[str, Any] = {}  # per worker process: family config json -> family


def _family(config: dict):
    from weightspace.text.family import ChatterbotFamily

    key = json.dumps(config, sort_keys=True)
    if key not in _FAMILIES:
        _FAMILIES[key] = ChatterbotFamily(**config)
    return _FAMILIES[key]


def train_chunk(payload: dict) -> dict:
    """Train the LoRA sets of one chunk of jobs (runs in a worker; returns numpy arrays)."""
    from weightspace.nets import arch_from_dict
    from weightspace.text.base_model import HiddenCache, base_model

    torch.set_num_threads(1)
    family = _family(payload["family"])
    arch = arch_from_dict(payload["arch"])
    cfg = from_mapping(LoRATrainConfig, payload["train"], where="LoRA train config")
    model = base_model(arch.max_length)
    cache = HiddenCache(model, capacity=4)
    params, metrics, descriptors = [], [], []
    for task_id, seed in payload["jobs"]:
        task = family.task(task_id)
        p, m = train_on_task(arch, task, seed, cfg, model=model, hidden_cache=cache)
        params.append({k: v.numpy() for k, v in p.items()})
        metrics.append(m)
        descriptors.append(tuple(float(v) for v in task.descriptor))
    stacked = {k: np.stack([p[k] for p in params]) for k in params[0]}
    return {"params": stacked, "metrics": metrics, "descriptors": descriptors}


def check_inputs(arch: LoRAMiniLM, family) -> None:
    """The LoRA's inputs must be what the family makes: token ids, or activations entering
    exactly the first adapted layer."""
    inputs, layer = getattr(family, "inputs", "ids"), getattr(family, "hidden_layer", None)
    if arch.inputs != inputs or (inputs == "hidden" and layer != arch.first_layer):
        raise WeightspaceError(
            f"the LoRA takes {arch.inputs} inputs from layer {arch.first_layer}, the family makes {inputs}"
            + (f" from layer {layer}" if inputs == "hidden" else "")
            + "; build both with the same inputs (and hidden_layer = the lowest adapted layer).")


def _records(chunk: list[Job], result: dict, cfg: LoRATrainConfig) -> list[MemberRecord]:
    return [MemberRecord(member_key(j.task_id, j.seed, cfg.steps), j.task_id, result["descriptors"][i], j.seed,
                         INIT_LABEL, to_dict(cfg), {k: v for k, v in result["metrics"][i].items() if k != "seconds"},
                         float(result["metrics"][i]["seconds"]), cfg.steps, True, j.split)
            for i, j in enumerate(chunk)]


def build_lora_zoo(out_dir: str | Path, family, arch: LoRAMiniLM, cfg: LoRATrainConfig, seeds_per_task: int = 1,
                   include_heldout: bool = True, task_ids: list[str] | None = None, chunk_size: int = 4,
                   workers: int = 2, seed: int = 0, progress: Callable[[int, int], None] | None = None,
                   card_extra: dict | None = None) -> Zoo:
    """Train the missing members and return the opened zoo.

    ``include_heldout`` also trains reference LoRAs on held-out tasks (split "heldout"): the
    fine-tuning baseline generated adapters are judged against. ``task_ids`` restricts the plan
    (e.g. a quick subset); ``progress(done, total)`` is called after each stored chunk.
    """
    from weightspace.zoo.workers import run_chunks

    if arch.n_classes != family.n_classes:
        raise WeightspaceError(f"the LoRA head has {arch.n_classes} classes, the family's tasks have {family.n_classes}.")
    check_inputs(arch, family)
    if chunk_size < 1 or seeds_per_task < 1:
        raise WeightspaceError("chunk_size and seeds_per_task must be at least 1.")
    jobs = plan_jobs(family, seeds_per_task, include_heldout, seed)
    if task_ids is not None:
        unknown = sorted(set(task_ids) - {j.task_id for j in jobs})
        if unknown:
            raise WeightspaceError(f"task {unknown[0]!r} is not in the planned tasks of this family.")
        jobs = [j for j in jobs if j.task_id in set(task_ids)]
    config = {"family": family.to_dict(), "arch": arch.to_dict(), "train": to_dict(cfg), "seeds_per_task": seeds_per_task,
              "include_heldout": include_heldout, "seed": seed}
    zoo = Zoo.create(out_dir, arch, family.to_dict(), make_card("lora-zoo", config, seed=seed, **(card_extra or {})))
    zoo.lock_for_writing()
    try:
        done = zoo.keys()
        todo = [j for j in jobs if member_key(j.task_id, j.seed, cfg.steps) not in done]
        chunks = [todo[i:i + chunk_size] for i in range(0, len(todo), chunk_size)]
        payloads = [{"family": family.config(), "arch": arch.to_dict(), "train": to_dict(cfg),
                     "jobs": [(j.task_id, j.seed) for j in c]} for c in chunks]
        finished: dict[int, dict] = {}
        stored, already = 0, len(jobs) - len(todo)
        for index, result in run_chunks(train_chunk, payloads, workers):
            finished[index] = result
            while stored in finished:  # store in plan order, whatever order chunks finish in
                res = finished.pop(stored)
                zoo.add(_records(chunks[stored], res, cfg), {k: torch.from_numpy(v) for k, v in res["params"].items()})
                stored += 1
                if progress is not None:
                    progress(already + sum(len(c) for c in chunks[:stored]), len(jobs))
    finally:
        zoo.release_lock()
    return zoo
