"""Generators under evaluation: each loaded from its directory and asked for one model per
held-out task, conditioned exactly as it was trained (its saved condition encoder turns the
task's support set, or its descriptor, into the condition). The timed span covers encoding the
condition, sampling and any selection, which is everything a user with a new task waits for; it is
the steady-state time of one request (the median of ``TIMING_REPEATS`` seeded calls per task).

A generator is evaluated in up to three modes, each its own method:

- ``sample``     one random draw (key ``generator:<name>``): the plain contract
- ``central``    the generator's central output, ``sample(deterministic=True)``
                 (key ``generator:<name>:central``)
- ``best-of-K``  K draws, the one with the lowest support-set loss is kept (as
                 ``generate --best-of K`` does; key ``generator:<name>:best-of-K``)

Beside its modes, every conditional generator gets condition controls (kind ``ablation``,
controls.py): its central output for each task conditioned on another held-out task's condition
(``shuffled``), or on the task's own condition with its description replaced by a random string
(``random-string``, for conditions that read descriptions); and, where the same run evaluates
the same generator trained told nothing, that generator (``none``). A generator that ignores its
condition scores the same there; the condition counts only by its margins over these.

Any mode may end in ``+head`` (e.g. ``central+head``) for architectures with a label-specific
linear readout that can be fitted in closed form (``arch.head_refit``, adapt.head_refit; LoRA
sets: the head on the sentence embedding): the generator's weights are kept and the head is refitted on the
support set (logistic regression, milliseconds), inside the timed span. ``+prior`` refits it
shrunk towards the generator's own head instead of towards zero (``adapt.head_refit.prior_head``,
strength ``PRIOR_STRENGTH``): for generators whose head already carries the task (a description
head), the support set then corrects that head rather than replacing it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from weightspace.adapt.head_refit import fit_head
from weightspace.errors import WeightspaceError
from weightspace.evaluate.context import ZooContext
from weightspace.evaluate.methods import Method
from weightspace.nets.predict import predict_members

MODES_HELP = "sample, central, best-of-K, each optionally +head or +prior"
HEAD_SUFFIXES = ("+head", "+prior")
HEAD_WORDS = {"+head": "refitted on the support set (logistic regression)",
              "+prior": "refitted on the support set, shrunk towards the generated head"}
# Chosen on 32 WordNet zoo tasks among 1e-6..1 (benchmarks/lora_generate.py prints the sweep: the zoo tasks
# are flat within 0.7 points over it, best at 1e-5), never on held-out ones. Below about 1e-4 the penalty
# barely acts: 20 examples are separable, so what keeps the head near the generated one is that L-BFGS
# starts there and stops after its 200 iterations (early stopping from the prior).
PRIOR_STRENGTH = 1e-5
# Each task's generation is charged the median of this many identical seeded calls (Method.add_timed
# says why); a generator slower than add_timed's REPEAT_UNDER_SECONDS is called once.
TIMING_REPEATS = 5


def load_generators(paths: list[str | Path]):
    import weightspace.generate  # noqa: F401  (the package registers every generator)
    from weightspace.generate.registry import load_generator

    return [load_generator(p) for p in paths]


def generator_name(gen, path: Path, taken: set[str]) -> str:
    """The generator's registry name, or name@directory when two generators share a name."""
    return gen.name if gen.name not in taken else f"{gen.name}@{Path(path).name}"


def head_fit(mode: str) -> str | None:
    """How a mode refits the head: "+head", "+prior" or None (the generated head is kept)."""
    return next((suffix for suffix in HEAD_SUFFIXES if mode.endswith(suffix)), None)


def parse_mode(mode: str) -> int:
    """Draws per task of a mode (0 for central); WeightspaceError for an unknown mode."""
    suffix = head_fit(mode)
    if suffix is not None:
        mode = mode[: -len(suffix)]
    if mode == "sample":
        return 1
    if mode == "central":
        return 0
    if mode.startswith("best-of-") and mode[8:].isdigit() and int(mode[8:]) >= 1:
        return int(mode[8:])
    raise WeightspaceError(f"unknown generator mode {mode!r}; choose among {MODES_HELP}.")


def mode_key(name: str, mode: str) -> str:
    return f"generator:{name}" if mode == "sample" else f"generator:{name}:{mode}"


def generator_methods(ctx: ZooContext, gen, path: str | Path, name: str, modes, seed: int = 0) -> list[Method]:
    if gen.spec is not None and gen.spec.to_dict() != ctx.spec.to_dict():
        raise WeightspaceError(
            f"generator {path} makes {gen.spec.arch or 'other'} weights that do not fit the zoo's weight space; "
            "evaluate it against the zoo it was trained on."
        )
    encoder = getattr(gen, "encoder", None)
    condition = getattr(encoder, "kind", "none")
    # name: this evaluation's name of the generator (registry name, or name@directory when two share
    # it), which groups its modes; generator: the registry name
    info = {"path": str(path), "name": name, "generator": gen.name, "paper": getattr(gen, "paper", ""), "condition": condition,
            "encoder": getattr(encoder, "name", None)}
    methods = []
    for mode in modes:
        draws = parse_mode(mode)
        head = head_fit(mode)
        if head and not ctx.arch.head_refit:
            raise WeightspaceError(f"generator mode {mode!r} refits a head, which {ctx.spec.arch} networks do not have; drop '{head}'.")
        what = {0: "its central (deterministic) output", 1: "one random sample"}.get(
            draws, f"the lowest support-loss of {draws} samples")
        if head:
            what += f" with its head {HEAD_WORDS[head]}"
        method = Method(mode_key(name, mode), "generator", f"{name} ({mode}, {condition} condition)",
                        f"the {gen.name} generator ({info['paper']}): {what} per task, conditioned on the task's {condition}",
                        info={**info, "mode": mode})
        first = ctx.tasks[0]  # warm-up: one-off setup a serving process would not repeat
        draw(ctx, gen, gen.encode_condition(first), first, draws, seed, head)
        for t, task in enumerate(ctx.tasks):
            method.add_timed(lambda: draw(ctx, gen, gen.encode_condition(task), task, draws, seed + t, head),
                             repeats=TIMING_REPEATS)
        methods.append(method)
    return methods


def draw(ctx: ZooContext, gen, condition: torch.Tensor, task, draws: int, seed: int,
         head: str | None = None) -> dict[str, torch.Tensor]:
    """One model for ``task`` from ``condition`` in a mode (``draws`` as ``parse_mode`` gives;
    ``head`` as ``head_fit`` gives: refitted on the task's support set). The condition need not be
    the task's own: the condition controls (controls.py) pass another one and score the result on
    this task."""
    stacked = gen.sample(condition, n=max(draws, 1), seed=seed, deterministic=draws == 0)
    best = 0
    if draws > 1:
        best = int(predict_members(ctx.arch, stacked, task.support_x, task.support_y)[1].argmin())
    weights = {n: v[best] for n, v in stacked.items()}
    if head is None:
        return weights
    return fit_head(ctx.arch, weights, task.support_x, task.support_y, PRIOR_STRENGTH if head == "+prior" else None)
