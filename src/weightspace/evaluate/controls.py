"""Condition controls: does a conditional generator use what it is told about the task?

Published text-to-LoRA generators do about as well from random descriptions as from the real
ones (DESIGN.md, honest evaluation rule 8), so a condition counts only by its margin over
controls that tell the generator less, or something wrong. Each control is a method of kind
``ablation``, scored on the task it stands in for like any other method:

- ``shuffled`` (key ``ablation:<name>:shuffled``): the generator's output for task t from
  another *held-out* task's whole condition — its support set, its description, both for
  ``text-both``. The other task is the one half the list away, or the next one after it whose
  condition differs from t's (two held-out tasks may share a description or a support code;
  then they would be no control of each other). Held-out, so that the shuffled condition is
  as new to the generator as the real one.
- ``random-string`` (key ``ablation:<name>:random-string``): for conditions that read the
  task's description, the description replaced by a random string of the same length
  (lower-case letters and spaces, about one space in six; seeded per task), everything else
  (the support set) unchanged. Whether a condition reads descriptions is measured, not looked
  up: the task is encoded with the string in place of its description, and a condition whose
  code does not change reads none (text-support, support-probe, descriptor, ...).
- ``none``: the same generator trained told nothing, when the same ``weightspace eval`` run
  evaluates one (``none_partners``: same registry name, options, architecture, weight space and
  zoo as recorded in the generators' config.json; only the condition differs). It is a
  generator of its own in the results, with every mode; no extra method is made.

Modes. ``shuffled`` and ``random-string`` are asked in the generator's deterministic modes that
the run evaluates (``central`` and ``central+head``; ``central`` when neither is): the control
of a random draw would add its own sampling noise to the margin. A ``+head`` control refits the
head on the support set of the task it is scored on, exactly as the ``+head`` mode does, so the
margin compares like with like: the same head fitted on the same examples, only the body's
condition differs. Keys of a control in a mode other than ``central`` end in the mode
(``ablation:<name>:shuffled:central+head``).

Margins (``control_margins``): ``overall.controls[GEN][CONTROL]`` for each generator mode key
GEN with a control in the same mode: the generator's test accuracy minus the control's, in
points, mean over tasks, with a paired bootstrap 95% interval over tasks (intervals.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from weightspace.config import to_dict
from weightspace.evaluate.context import ZooContext
from weightspace.evaluate.generated import HEAD_WORDS, draw, head_fit, mode_key, parse_mode
from weightspace.evaluate.intervals import entry_difference
from weightspace.evaluate.methods import Method

CONTROLS = ("shuffled", "random-string", "none")
CONTROL_WORDS = {"shuffled": "another held-out task's condition",
                 "random-string": "a random string of the same length as its description",
                 "none": "the same generator trained told nothing"}
# Characters of a random string: lower-case letters (MiniLM's tokenizer is uncased) and spaces,
# about one in six, so it splits into word-length pieces as a description does.
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_SPACE_EVERY = 6


def condition_name(gen) -> tuple[str, str | None]:
    """(kind, encoder name) of a generator's condition; ("none", ...) when it is told nothing."""
    encoder = getattr(gen, "encoder", None)
    return getattr(encoder, "kind", "none"), getattr(encoder, "name", None)


def is_conditional(gen) -> bool:
    kind, name = condition_name(gen)
    return kind != "none" and name not in (None, "none")


def control_modes(modes: Sequence[str]) -> list[str]:
    """The deterministic modes among ``modes`` (central, central+head, central+prior), or ["central"]."""
    chosen = [m for m in modes if parse_mode(m) == 0]
    return list(dict.fromkeys(chosen)) or ["central"]


def control_key(name: str, control: str, mode: str) -> str:
    return f"ablation:{name}:{control}" if mode == "central" else f"ablation:{name}:{control}:{mode}"


def random_string(length: int, seed: int) -> str:
    """``length`` seeded lower-case letters and spaces, starting and ending with a letter."""
    rng = np.random.default_rng(seed)
    chars = [(" " if rng.random() < 1 / _SPACE_EVERY else _LETTERS[rng.integers(len(_LETTERS))]) for _ in range(length)]
    for i in (0, length - 1):  # no leading or trailing space: the tokenizer would drop it, shortening the string
        if length and chars[i] == " ":
            chars[i] = _LETTERS[rng.integers(len(_LETTERS))]
    return "".join(chars)


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.equal(a, b)


def shuffle_partners(conditions: Sequence[torch.Tensor]) -> list[int]:
    """For each task t, the task half the list away, or the next one after it whose condition
    differs from t's (half the list away when every condition is the same)."""
    n = len(conditions)
    out = []
    for t in range(n):
        order = [(t + n // 2 + i) % n for i in range(n)]
        order = [j for j in order if j != t]
        out.append(next((j for j in order if not _same(conditions[j], conditions[t])), order[0]))
    return out


def random_string_conditions(ctx: ZooContext, gen, seed: int, own: Sequence[torch.Tensor] | None = None
                             ) -> tuple[list[torch.Tensor], list[str]] | None:
    """Per task, its condition with the description replaced by a random string of the same
    length, and the strings; None when the generator's condition reads no description (no code
    changes) or the tasks carry none. ``own``: the tasks' own conditions, if already encoded."""
    own = own if own is not None else [gen.encode_condition(task) for task in ctx.tasks]
    conditions, strings, changed = [], [], False
    for task, real in zip(ctx.tasks, own):
        text = getattr(task, "description", None)
        if not isinstance(text, str) or not text.strip():
            return None
        digest = hashlib.sha256(f"random-string:{seed}:{task.task_id}".encode()).digest()
        fake = random_string(len(text), int.from_bytes(digest[:8], "little"))
        code = gen.encode_condition(dataclasses.replace(task, description=fake))
        changed = changed or not _same(code, real)
        conditions.append(code)
        strings.append(fake)
    return (conditions, strings) if changed else None


def control_methods(ctx: ZooContext, gen, name: str, modes: Sequence[str] = ("central",), seed: int = 0) -> list[Method]:
    """The ``shuffled`` and ``random-string`` controls of a conditional generator, in each of
    ``control_modes(modes)``; [] for a generator told nothing or a single held-out task."""
    kind, _ = condition_name(gen)
    if not is_conditional(gen):
        return []
    own = [gen.encode_condition(task) for task in ctx.tasks]
    controls: dict[str, tuple[list[torch.Tensor], dict[str, Any]]] = {}
    if len(ctx.tasks) >= 2:
        partners = shuffle_partners(own)
        controls["shuffled"] = ([own[j] for j in partners], {"partners": [ctx.tasks[j].task_id for j in partners]})
    strings = random_string_conditions(ctx, gen, seed, own)
    if strings is not None:
        controls["random-string"] = (strings[0], {"strings": strings[1]})
    methods = []
    for mode in control_modes(modes):
        head = head_fit(mode)
        for control, (conditions, facts) in controls.items():
            what = f"the {gen.name} generator's {mode} output per task, conditioned on {CONTROL_WORDS[control]}"
            if head:
                what += f", with its head {HEAD_WORDS[head]} of the task it is scored on"
            method = Method(control_key(name, control, mode), "ablation", f"{name} ({mode}) given {CONTROL_WORDS[control]}",
                            what + ": the control that shows whether the condition carries the task",
                            info={"generator": name, "control": control, "condition": kind, "mode": mode,
                                  "generator_key": mode_key(name, mode), **facts})
            for t, task in enumerate(ctx.tasks):
                method.add_timed(lambda: draw(ctx, gen, conditions[t], task, 0, seed + t, head))
            methods.append(method)
    return methods


# ----- the ``none`` control ---------------------------------------------------------------------
TRAINING_FACTS = ("members", "aligned", "init", "family")  # fit_info entries that say which zoo, how prepared


def training_identity(gen) -> dict[str, Any]:
    """What makes two generators "the same generator" apart from their condition: registry
    name, resolved options, architecture, weight space, and the zoo they were fitted on (its
    family with its split and data fingerprint, member count, alignment), as config.json records."""
    info = getattr(gen, "fit_info", {}) or {}
    arch = getattr(gen, "arch", None)
    spec = getattr(gen, "spec", None)
    config = getattr(gen, "config", None)
    return {"name": gen.name,
            "config": to_dict(config) if dataclasses.is_dataclass(config) else config,
            "arch": arch.to_dict() if arch is not None else None,
            "spec": spec.to_dict() if spec is not None else None,
            **{k: info.get(k) for k in TRAINING_FACTS}}


def none_partners(gens: Sequence, names: Sequence[str]) -> dict[str, str]:
    """Evaluation name of each conditional generator -> that of the first generator in the run
    that is the same one trained told nothing (``training_identity`` equal, condition ``none``)."""
    told_nothing = [(name, training_identity(g)) for g, name in zip(gens, names) if not is_conditional(g)]
    out = {}
    for g, name in zip(gens, names):
        if is_conditional(g):
            ident = training_identity(g)
            match = next((other for other, theirs in told_nothing if theirs == ident), None)
            if match is not None:
                out[name] = match
    return out


# ----- margins -------------------------------------------------------------------------------------
def _margin(gen: Mapping[str, Any], control_key_: str, control: Mapping[str, Any]) -> dict[str, Any] | None:
    d = entry_difference(gen, control)
    if d is None:
        return None
    return {"control_key": control_key_, "margin_points": 100 * d["mean_diff"], "ci_points": [100 * d["lo"], 100 * d["hi"]],
            "n_tasks": d["n_tasks"], "excludes_zero": d["excludes_zero"],
            "acc_mean": gen["acc_mean"], "control_acc_mean": control["acc_mean"]}


def control_margins(entries: Mapping[str, Mapping[str, Any]], none_of: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """``overall.controls[GEN][CONTROL]``: for every generator mode key with a control in the same
    mode, its margin over that control (points, mean over tasks) with a paired bootstrap 95%
    interval over tasks. ``none_of`` maps a generator's evaluation name to its told-nothing twin's."""
    pairs = []  # (generator key, control, control key): every ablation, then every told-nothing twin
    for key, e in entries.items():
        info = e.get("info") or {}
        if e.get("kind") == "ablation" and info.get("control") in CONTROLS:
            gen_key = info.get("generator_key") or mode_key(info["generator"], info.get("mode", "central"))
            pairs.append((gen_key, info["control"], key))
    for key, e in entries.items():
        info = e.get("info") or {}
        twin = none_of.get(info.get("name")) if e.get("kind") == "generator" else None
        if twin is not None:
            pairs.append((key, "none", mode_key(twin, info.get("mode", "sample"))))
    out: dict[str, dict[str, Any]] = {}
    for gen_key, control, key in pairs:
        margin = _margin(entries[gen_key], key, entries[key]) if gen_key in entries and key in entries else None
        if margin is not None:
            out.setdefault(gen_key, {})[control] = margin
    return {k: {c: v[c] for c in CONTROLS if c in v} for k, v in out.items()}
