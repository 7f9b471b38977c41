"""The starts fine-tuning is measured from, beside the best zoo member (retrieval):

- ``shared``:  the family's pretrained start (a shared-init zoo's base.safetensors, else trained
  here on the family's pretraining task with the zoo's recipe; reference.pretrained_start), the
  model a user would fine-tune in standard practice. Obtaining it costs a task nothing: it exists
  before any task does.
- ``scratch``: a fresh initialisation with the zoo's recipe, per task (the seed the zoo would give
  that task's first member): training from scratch.

Architectures whose adapters start at zero and whose head is refitted (LoRA) have one start for
both, the frozen base model; their evaluation keeps the zoo-best start only, and says so.
"""

from __future__ import annotations

from weightspace.evaluate.context import ZooContext
from weightspace.evaluate.methods import Method, Weights

# START names in overall.cost[GENERATOR][START][DATA], strongest start last
COST_STARTS = ("shared", "scratch", "zoo-best")


def shared_start_method(ctx: ZooContext, start: Weights) -> Method:
    m = Method("start:shared", "start", "shared pretrained start",
               "the family's pretrained start every task would fine-tune in standard practice")
    for _ in ctx.tasks:
        m.add({n: v.clone() for n, v in start.items()}, 0.0, 0.0)
    return m


def scratch_method(ctx: ZooContext, seed: int = 0) -> Method:
    from weightspace.zoo.build import member_seed

    cfg = ctx.train_cfg
    m = Method("start:scratch", "start", "fresh init (zoo recipe)", "a fresh initialisation with the zoo's init scheme")
    for task in ctx.tasks:
        m.add(ctx.arch.init_params(member_seed(seed, task.task_id, 0), cfg.init_scheme), 0.0, 0.0)
    return m
