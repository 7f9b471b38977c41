"""Build a zoo: plan every (task, seed) member, train the missing ones in chunks, store each chunk.

The whole build is a deterministic job list. A rerun after any interruption (Ctrl-C, kill -9,
a lost machine) re-plans the same list, skips every key already in the manifest and trains only
the rest, so the finished zoo holds exactly the members of an uninterrupted build.

Work is split into chunks of ``chunk_size`` members; each chunk is one batched ``train_members``
call in a worker process with one torch thread (parallelism comes from vmap and processes).
Workers rebuild the task family from its dict and read the shared base weights from disk, so no
datasets or tensors are pickled to them. Only the main process writes to the zoo, chunk by
chunk in plan order, so member ids follow the plan whatever the worker count. ``backend="ray"``
trains the same chunks as Ray tasks on a cluster (zoo.ray_backend); their results come back
here and are stored the same way, so a Ray build and a local build give the same zoo.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from weightspace.card import current_command, make_card
from weightspace.config import to_dict
from weightspace.errors import WeightspaceError
from weightspace.io import load_safetensors, save_safetensors
from weightspace.nets import Architecture, arch_from_dict
from weightspace.progress_lines import progress_bar
from weightspace.zoo.manifest import MemberRecord, member_key
from weightspace.zoo.recipe import check_config
from weightspace.zoo.store import Zoo, json_normal, member_checksum
from weightspace.zoo.workers import BACKENDS, open_pool

INIT_MODES = ("independent", "shared")
# Settings that change what a member is; a resume must repeat them exactly.
# Why the generators want `--init shared` (measured; quoted by `zoo build --help` and the demo's report).
SHARED_INIT_REASON = (
    "Generators need shared, every member trained from one pretrained base (--pretrain-steps): on 128 "
    "fmnist-subsets tasks the hypernet on an independent-init zoo loses to retrieval (0.781 vs 0.799 accuracy); "
    "on the 256-task shared-start fmnist-subsets zoo of benchmarks/RESULTS.md it reaches 0.865 against "
    "retrieval's 0.738. Members of one start differ by task, not by which of many equivalent minima "
    "(neuron permutations) their random init fell into, so a generator models the task, not the symmetry.")

_FIXED_ON_RESUME = ("train", "init", "pretrain_steps", "seed")


@dataclass(frozen=True)
class Job:
    task_id: str
    seed: int
    split: str  # "zoo" or "heldout"


def member_seed(base_seed: int, task_id: str, replica: int) -> int:
    """A seed per (task, replica), stable when tasks or replicas are added to the plan.

    Members of different tasks never share an initialisation by accident (seed 0 everywhere
    would make "independent" zoos secretly share their starts).
    """
    digest = hashlib.sha256(f"{base_seed}:{task_id}:{replica}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def plan_jobs(family, seeds_per_task: int, include_heldout: bool, base_seed: int = 0,
              task_ids: Sequence[str] | None = None) -> list[Job]:
    """Every (task, seed) member in plan order; ``task_ids`` keeps only those tasks (a quick subset)."""
    splits = [("zoo", family.zoo_task_ids())] + ([("heldout", family.heldout_task_ids())] if include_heldout else [])
    jobs = [Job(t, member_seed(base_seed, t, j), split) for split, ids in splits for t in ids for j in range(seeds_per_task)]
    if task_ids is None:
        return jobs
    unknown = sorted(set(task_ids) - {j.task_id for j in jobs})
    if unknown:
        raise WeightspaceError(f"task {unknown[0]!r} is not in the planned tasks of this family.")
    return [j for j in jobs if j.task_id in set(task_ids)]


def build_zoo(out_dir: str | Path, family, arch: Architecture, train_cfg, seeds_per_task: int = 1,
              init: str = "independent", pretrain_steps: int = 600, chunk_size: int = 32, workers: int = 2,
              include_heldout: bool = False, progress: bool = True, seed: int = 0,
              card_extra: dict[str, Any] | None = None, backend: str = "local", address: str | None = None,
              task_ids: Sequence[str] | None = None) -> Zoo:
    """Train (or finish training) a zoo in ``out_dir`` and return it opened.

    ``family`` is a TaskFamily and ``train_cfg`` a TrainConfig, or the config of the architecture's
    own ``member_trainer`` (LoRA: LoRATrainConfig), which then trains every chunk with the same
    plan, resume rules and backends. ``task_ids`` restricts the plan. ``workers`` = 0 trains in this
    process (with one torch thread), otherwise in that many worker processes. ``backend="ray"``
    trains the chunks on the Ray cluster at ``address`` instead (None: a local Ray instance),
    one CPU per chunk; the zoo is the same as a local build's. ``card_extra`` adds entries to
    the card (the CLI stores its recipe there).
    """
    if init not in INIT_MODES:
        raise WeightspaceError(f"init must be one of {', '.join(INIT_MODES)}, not {init!r}.")
    if backend not in BACKENDS:
        raise WeightspaceError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}.")
    if address is not None and backend != "ray":
        raise WeightspaceError("--address names a Ray cluster; use it with --backend ray.")
    for name, value, low in (("seeds_per_task", seeds_per_task, 1), ("chunk_size", chunk_size, 1),
                             ("workers", workers, 0), ("pretrain_steps", pretrain_steps, 0)):
        if int(value) < low:
            raise WeightspaceError(f"{name} must be at least {low}, got {value}.")
    config = {"family": family.to_dict(), "arch": arch.to_dict(), "train": to_dict(train_cfg),
              "seeds_per_task": seeds_per_task, "init": init, "pretrain_steps": pretrain_steps if init == "shared" else None,
              "include_heldout": include_heldout, "seed": seed, "chunk_size": chunk_size, "workers": workers,
              "backend": backend, **({"task_ids": list(task_ids)} if task_ids is not None else {})}
    _check_training(arch, family, train_cfg, init)  # before anything is written
    # Read one task's data before creating the store: a missing or damaged dataset is reported
    # without leaving an empty zoo directory behind (tasks are cached, so this costs nothing later).
    first = plan_jobs(family, 1, include_heldout, seed, task_ids)[:1]
    if first:
        family.task(first[0].task_id)
    resuming = (Path(out_dir) / "zoo.json").is_file()
    zoo = Zoo.create(out_dir, arch, family.to_dict(), make_card("zoo", config, seed=seed, **(card_extra or {})))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # same arithmetic as the one-thread workers; no oversubscription
    try:
        zoo.lock_for_writing()
        if resuming:
            _note_resume(zoo, config)
        _train_missing(zoo, family, arch, train_cfg, seeds_per_task, init, pretrain_steps, chunk_size, workers,
                       include_heldout, progress, seed, backend, address, task_ids)
    finally:
        torch.set_num_threads(threads)
        zoo.release_lock()
    return zoo


def _train_missing(zoo: Zoo, family, arch: Architecture, train_cfg, seeds_per_task: int, init: str, pretrain_steps: int,
                   chunk_size: int, workers: int, include_heldout: bool, progress: bool, seed: int,
                   backend: str = "local", address: str | None = None, task_ids: Sequence[str] | None = None) -> None:
    trainer = arch.member_trainer
    base_path, init_label = None, trainer.init_label if trainer else f"independent:{train_cfg.init_scheme}"
    if init == "shared":
        base_path, sha = _shared_base(zoo, family, arch, train_cfg, pretrain_steps, seed)
        init_label = f"shared:{sha}"
    plan = plan_jobs(family, seeds_per_task, include_heldout, seed, task_ids)
    done = zoo.keys()
    jobs = [j for j in plan if member_key(j.task_id, j.seed, train_cfg.steps) not in done]
    chunks = [jobs[i:i + chunk_size] for i in range(0, len(jobs), chunk_size)]
    payloads = [{"arch": arch.to_dict(), "family": family.to_dict(), "train": to_dict(train_cfg),
                 "jobs": [(j.task_id, j.seed) for j in chunk], "base": None if base_path is None else str(base_path)}
                for chunk in chunks]
    built = len(plan) - len(jobs)
    label = "members" if built == 0 else f"members ({built} already built, resuming)"
    with progress_bar(f"zoo {label}", quiet=not progress) as bar:
        if bar is not None:
            bar(built, len(plan))
        for chunk, result in zip(chunks, _in_plan_order(payloads, workers, backend, address)):
            records, tensors = _chunk_records(chunk, result, train_cfg, init_label)
            zoo.add(records, tensors)
            built += len(chunk)
            if bar is not None:
                bar(built, len(plan))


def _check_training(arch: Architecture, family, train_cfg, init: str) -> None:
    trainer = arch.member_trainer
    if trainer is None:
        check_config(train_cfg)
        return
    if init == "shared":
        raise WeightspaceError(f"{arch.name} members train with their own trainer from {trainer.init_label}; "
                               "--init shared is for networks of the batched trainer.")
    if not isinstance(train_cfg, trainer.config_class):
        raise WeightspaceError(f"{arch.name} members train with a {trainer.config_class.__name__}, "
                               f"not a {type(train_cfg).__name__}.")
    trainer.check(arch, family, train_cfg)


# ----- resume bookkeeping ------------------------------------------------------------------
def _note_resume(zoo: Zoo, config: dict) -> None:
    """Refuse a resume that would mix members trained differently; log the rerun on the card."""
    old = zoo.card.get("config") or {}
    if zoo.card.get("kind") != "zoo" or "train" not in old:  # not made by build_zoo: nothing to compare
        return
    new = json_normal(config)
    for key in _FIXED_ON_RESUME:
        was, now = old.get(key), new[key]
        if was != now:
            if isinstance(was, dict) and isinstance(now, dict):  # name the training field that changed
                key = next(f"{key}.{k}" for k in sorted(set(was) | set(now)) if was.get(k) != now.get(k))
                was, now = was.get(key.split(".", 1)[1]), now.get(key.split(".", 1)[1])
            raise WeightspaceError(
                f"{zoo.path} was built with {key}={was}, this run asks for {key}={now}; "
                "repeat the original settings to resume, or choose a new output directory."
            )
    # Extending the plan (more seeds, held-out references) is allowed; the card keeps the union.
    merged = {**old, "chunk_size": new["chunk_size"], "workers": new["workers"], "backend": new["backend"],
              "seeds_per_task": max(old.get("seeds_per_task", 1), new["seeds_per_task"]),
              "include_heldout": bool(old.get("include_heldout")) or new["include_heldout"]}
    zoo.update_card({**zoo.card, "config": merged, "resumed": [*zoo.card.get("resumed", []), current_command()]})


# ----- shared initialisation ---------------------------------------------------------------
def _shared_base(zoo: Zoo, family, arch: Architecture, train_cfg, steps: int, seed: int) -> tuple[Path, str]:
    """Train the common start once (seeded) and keep it as base.safetensors; reuse it on resume."""
    path = zoo.path / "base.safetensors"
    spec = arch.spec()
    if path.is_file():
        base, meta = load_safetensors(path)
        spec.validate(base, where=str(path))
        sha = member_checksum(base, spec)
        if meta.get("sha256") != sha:
            raise WeightspaceError(f"{path} is corrupt (its weights do not match their recorded sha256); delete the zoo and rebuild it.")
        if int(meta.get("steps", -1)) != steps:
            raise WeightspaceError(f"{path} was pretrained for {meta.get('steps')} steps, this run asks for {steps}; repeat the original settings.")
        return path, sha
    base = pretrain(arch, family, train_cfg, steps, seed)
    sha = member_checksum(base, spec)
    save_safetensors(path, base, {"sha256": sha, "steps": str(steps), "seed": str(seed)})
    return path, sha


def pretrain(arch: Architecture, family, train_cfg, steps: int, seed: int) -> dict[str, torch.Tensor]:
    """The family's shared start: ``steps`` steps of the zoo's recipe on its pretraining task."""
    from weightspace.zoo.train import train_members

    result = train_members(arch, [family.pretrain_task()], [seed], replace(train_cfg, steps=steps, snapshot_every=0))
    return {name: result.final[name][0].contiguous() for name in arch.spec().names}


# ----- one chunk, in a worker ----------------------------------------------------------------
def train_chunk(payload: dict) -> dict:
    """Train one chunk of members; returns numpy arrays (plain bytes cross the process boundary)."""
    from weightspace.config import from_mapping
    from weightspace.tasks import cached_family
    from weightspace.zoo.train import TrainConfig, train_members

    arch = arch_from_dict(payload["arch"])
    family = cached_family(payload["family"])
    trainer = arch.member_trainer
    cfg = from_mapping(trainer.config_class if trainer else TrainConfig, payload["train"], where="train config")
    tasks = [family.task(t) for t, _ in payload["jobs"]]
    seeds = [s for _, s in payload["jobs"]]
    as_np = lambda d: {k: v.detach().cpu().numpy() for k, v in d.items()}  # noqa: E731
    descriptors = [tuple(float(v) for v in t.descriptor) for t in tasks]
    if trainer is not None:  # the architecture's own loop, one member at a time; each member timed alone
        members = trainer.train_tasks(arch, tasks, seeds, cfg)
        final = {n: torch.stack([p[n] for p, _, _ in members]) for n in arch.spec().names}
        return {"final": as_np(final), "metrics": [dict(m) for _, m, _ in members], "snapshots": [],
                "seconds": float(sum(s for _, _, s in members)), "member_seconds": [float(s) for _, _, s in members],
                "descriptors": descriptors}
    init = None if payload["base"] is None else load_safetensors(payload["base"])[0]
    res = train_members(arch, tasks, seeds, cfg, init=init)
    return {"final": as_np(res.final), "metrics": [dict(m) for m in res.metrics], "seconds": float(res.seconds),
            "snapshots": [(int(step), as_np(p)) for step, p in res.snapshots], "descriptors": descriptors}


def _chunk_records(chunk: list[Job], result: dict, cfg, init_label: str) -> tuple[list[MemberRecord], dict]:
    """Final members first, then each kept snapshot; all go into one shard."""
    optimizer = to_dict(cfg)
    # a batched chunk trains its members together; a member trainer times each member alone
    seconds = result.get("member_seconds") or [result["seconds"] / len(chunk)] * len(chunk)
    records, blocks = [], [result["final"]]
    for i, job in enumerate(chunk):
        records.append(MemberRecord(member_key(job.task_id, job.seed, cfg.steps), job.task_id, result["descriptors"][i],
                                    job.seed, init_label, optimizer, result["metrics"][i], seconds[i], cfg.steps, True, job.split))
    for step, params in result["snapshots"]:
        if step == cfg.steps:  # the final record already holds these weights
            continue
        blocks.append(params)
        for i, job in enumerate(chunk):
            records.append(MemberRecord(member_key(job.task_id, job.seed, step), job.task_id, result["descriptors"][i],
                                        job.seed, init_label, optimizer, {}, 0.0, step, False, job.split))
    tensors = {name: torch.from_numpy(np.concatenate([b[name] for b in blocks])) for name in blocks[0]}
    return records, tensors


# ----- execution ---------------------------------------------------------------------------
def _in_plan_order(payloads: list[dict], workers: int, backend: str = "local",
                   address: str | None = None) -> Iterator[dict]:
    """``train_chunk`` results in plan order (workers finish out of order; we hold early ones)."""
    if not payloads:  # nothing to train: do not start processes or connect to a cluster
        return
    ready: dict[int, dict] = {}
    next_index = 0
    with open_pool(backend, min(workers, len(payloads)), address) as pool:
        for index, result in pool.run(train_chunk, payloads):
            ready[index] = result
            while next_index in ready:
                yield ready.pop(next_index)
                next_index += 1
