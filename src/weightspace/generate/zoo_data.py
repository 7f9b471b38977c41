"""Build the ZooData a generator is fitted on: members, their tasks and their conditions.

``from_zoo`` reads a zoo's final zoo-split members (never its held-out reference models),
rebuilds each member's task from the recorded family, aligns the members when asked, fits the
condition encoder and encodes every member's task. ``from_params`` does the same for weights
already in memory (tests, benchmarks).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch

from weightspace.encode.condition import make_condition_encoder
from weightspace.errors import WeightspaceError
from weightspace.generate.base import Progress, ZooData
from weightspace.nets.base import Architecture
from weightspace.tasks.base import Task

# "support" names the support-set encoder chosen by measurement (benchmarks/generate_quality.py):
# the training-free probe conditions every generator, closed-form ones included.
CONDITION_ALIASES = {"support": "support-probe"}


def resolve_condition(name: str) -> str:
    return CONDITION_ALIASES.get(name, name)


def from_params(arch: Architecture, params: Mapping[str, torch.Tensor], tasks: Sequence[Task],
                condition: str = "support", family: Any = None, condition_options: Mapping | None = None,
                aligned: bool = False, source: dict | None = None) -> ZooData:
    spec = arch.spec()
    spec.validate(params, stacked=True, where="zoo weights")
    m = params[spec.names[0]].shape[0]
    if len(tasks) != m:
        raise WeightspaceError(f"got {len(tasks)} tasks for {m} zoo members; give one task per member.")
    opts = dict(condition_options or {})
    name = resolve_condition(condition)
    if name == "descriptor":
        opts["family"] = family
    encoder = make_condition_encoder(name, arch, **opts)
    encoder.fit(arch, params, tasks, family)
    with torch.no_grad():
        conditions = encoder.encode_tasks(tasks)
    return ZooData(spec, arch, dict(params), conditions, list(tasks), encoder, aligned, dict(source or {}))


def zoo_init_kind(records) -> str:
    """"independent" if any member started from its own random init, else "shared"."""
    return "independent" if any(str(r.init).startswith("independent") for r in records) else "shared"


def from_zoo(zoo, condition: str = "support", align: bool = False, condition_options: Mapping | None = None,
             progress: Progress | None = None) -> ZooData:
    from weightspace.tasks import family_from_dict  # the family recorded in the zoo rebuilds its tasks

    records = zoo.records(final_only=True, split="zoo")
    if len(records) < 2:
        raise WeightspaceError(f"zoo {zoo.path} has {len(records)} final members; a generator needs at least 2.")
    params = zoo.load(final_only=True, split="zoo")
    family = family_from_dict(zoo.family)
    built = {t: family.task(t) for t in dict.fromkeys(r.task_id for r in records)}  # each task once, in order
    tasks = [built[r.task_id] for r in records]
    if align:
        from weightspace.adapt.merging import common_frame

        params = common_frame(zoo.spec, params, True, progress=progress, arch=zoo.arch)
    source = {"zoo": str(zoo.path), "init": zoo_init_kind(records), "family": family.to_dict()}
    return from_params(zoo.arch, params, tasks, condition, family, condition_options, aligned=align, source=source)
