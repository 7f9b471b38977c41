"""Everything evaluation needs from a zoo, prepared once: members, their common frame, the
held-out tasks, the recipe the zoo was trained with, and the zoo's own neighbour distances.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from weightspace.adapt.merging import common_frame, needs_alignment
from weightspace.config import from_mapping
from weightspace.errors import WeightspaceError
from weightspace.evaluate.baselines import tensor_zoo_std
from weightspace.evaluate.novelty import AlignedNeighbours
from weightspace.nets.base import Architecture
from weightspace.spec import WeightSpec
from weightspace.tasks.base import Task
from weightspace.zoo.manifest import MemberRecord
from weightspace.zoo.recipe import TrainConfig
from weightspace.zoo.store import Zoo

Progress = Callable[[int, int], None]


@dataclass
class ZooContext:
    zoo: Zoo
    arch: Architecture
    spec: WeightSpec
    family: object  # TaskFamily
    records: list[MemberRecord]  # final zoo members, in the order of ``params``
    params: dict[str, torch.Tensor]  # stacked (M, ...) as stored
    framed: dict[str, torch.Tensor]  # stacked, in one common frame (aligned unless shared init)
    aligned: bool  # whether barycentre alignment was needed and done
    align_seconds: float
    descriptors: torch.Tensor  # (M, D) task descriptor features of the members (see descriptor_of)
    tensor_std: dict[str, float]
    train_cfg: TrainConfig  # the recipe the zoo members were trained with
    tasks: list[Task]  # the held-out tasks under evaluation
    neighbours: AlignedNeighbours
    zoo_nn_dist: torch.Tensor  # (M,) aligned distance of each member to its nearest other member
    pool: object = None  # the harness's worker pool for per-task jobs (evaluate sets it); None: all here

    @property
    def n_params(self) -> int:
        return self.spec.numel

    def descriptor_of(self, task: Task) -> torch.Tensor:
        return descriptor_features(self.family, task.task_id, task.descriptor)

    def member(self, i: int) -> dict[str, torch.Tensor]:
        return {n: self.params[n][i] for n in self.spec.names}

    @property
    def zoo_nn_dist_median(self) -> float:
        return float(statistics.median(self.zoo_nn_dist.tolist())) if self.zoo_nn_dist.numel() else float("nan")


def descriptor_features(family, task_id: str, descriptor) -> torch.Tensor:
    """The family's featurisation of a descriptor (angles as cos/sin, so 359 deg sits next to 1 deg)."""
    feats = family.descriptor_features(task_id) if hasattr(family, "descriptor_features") else descriptor
    return torch.as_tensor(feats, dtype=torch.float64).reshape(-1)


def heldout_tasks(family, n: int) -> list[Task]:
    """The first ``n`` held-out tasks of the family (all when n <= 0)."""
    ids = list(family.heldout_task_ids())
    if not ids:
        raise WeightspaceError(f"task family {family.name!r} has no held-out tasks; evaluation needs tasks no zoo member saw.")
    return [family.task(t) for t in (ids[:n] if n > 0 else ids)]


def recorded_train_config(records: list[MemberRecord], config_class: type = TrainConfig):
    """The ``config_class`` (TrainConfig, or a member trainer's) the members were trained with, as
    the first one's manifest row records it."""
    known = set(config_class.__dataclass_fields__)
    return from_mapping(config_class, {k: v for k, v in (records[0].optimizer or {}).items() if k in known},
                        where="the zoo's recorded training config")


def load_context(zoo_dir: str | Path, n_tasks: int = 0, align_iters: int = 3, refine: int = 3, seed: int = 0,
                 progress: Progress | None = None) -> ZooContext:
    from weightspace.tasks import family_from_dict  # the tasks package registers every family

    zoo = Zoo.open_verified(zoo_dir)
    records = zoo.records(final_only=True, split="zoo")
    if len(records) < 2:
        raise WeightspaceError(f"{zoo_dir} holds {len(records)} final zoo members; evaluation needs at least 2.")
    params = zoo.load([r.member_id for r in records])
    spec = zoo.spec
    align = needs_alignment([r.init for r in records])
    began = time.perf_counter()
    framed = common_frame(spec, params, align, iters=align_iters, seed=seed, progress=progress, arch=zoo.arch)
    align_seconds = time.perf_counter() - began
    family = family_from_dict(zoo.family)
    neighbours = AlignedNeighbours(spec, framed, refine=refine, seed=seed)
    return ZooContext(
        zoo=zoo, arch=zoo.arch, spec=spec, family=family, records=records, params=params, framed=framed,
        aligned=align, align_seconds=align_seconds,
        descriptors=torch.stack([descriptor_features(family, r.task_id, r.descriptor) for r in records]),
        tensor_std=tensor_zoo_std(spec, framed), train_cfg=recorded_train_config(records),
        tasks=heldout_tasks(family, n_tasks), neighbours=neighbours, zoo_nn_dist=neighbours.zoo_nn_distances(),
    )
