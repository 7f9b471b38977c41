"""Held-out accuracy of a generator fitted on a LoRA zoo, with its own head, with the head
refitted on each task's support set (the `+head` generator modes) and with the head refitted
shrunk towards the generated one (`+prior`, its strength chosen on 32 zoo tasks).

    python benchmarks/lora_generate.py ZOO GENERATOR CONDITION [KEY=VALUE ...] [--all-heldout] [--out DIR]
    python benchmarks/lora_generate.py zoos/lora hypernet text-both objective=regression output=pca steps=2000

Fits the generator on the zoo exactly as `weightspace train` does, asks it for each held-out
task's LoRA set (central output, conditioned on the task), and prints the mean test accuracy
beside the logistic probe on frozen embeddings (the same head fit, on zero adapters) and the
zoo's full-data references, the fit time and the median generation time. Cheaper than
`weightspace eval` (no other baselines, no novelty), for comparing generator settings.

By default the tasks are the zoo's held-out members (those with a full-data reference);
``--all-heldout`` scores every held-out task of the family (more tasks, less noise), with the
reference averaged over the tasks that have one. ``--out DIR`` saves the fitted generator there
(and loads it instead of fitting when DIR holds one). For the text-description condition it also
prints the two description controls: each task's adapter generated from another held-out task's
description (shuffled) and from a seeded random string of the same length, each as a margin with
a paired bootstrap interval over tasks. ``--scores FILE`` writes every task's figures as JSON, and
``--pair FILE`` prints the margin over another run's scores on the same tasks (e.g. the same
generator fitted with condition none: the third control).
"""

from __future__ import annotations

import json
import random
import statistics
import string
import sys
import time
from pathlib import Path

import torch


def main(argv: list[str]) -> None:
    import weightspace.generate  # noqa: F401  (registers the generators)
    from weightspace.adapt.head_refit import fit_head
    from weightspace.generate.evaluation import test_accuracy
    from weightspace.generate.registry import load_generator
    from weightspace.generate.training import TrainSpec, fit_on_zoo
    from weightspace.tasks import family_from_dict
    from weightspace.zoo.store import Zoo

    from weightspace.evaluate.intervals import paired_bootstrap

    every = "--all-heldout" in argv
    argv = [a for a in argv if a != "--all-heldout"]
    paths = {}
    for flag in ("--out", "--scores", "--pair"):
        if flag in argv:
            i = argv.index(flag)
            paths[flag], argv = Path(argv[i + 1]), argv[:i] + argv[i + 2:]
    out = paths.get("--out")
    zoo_dir, generator, condition, *items = argv
    torch.set_num_threads(1)
    zoo = Zoo.open(zoo_dir)
    began = time.perf_counter()
    if out is not None and (out / "config.json").is_file():
        gen = load_generator(out)
    else:
        gen, _, _ = fit_on_zoo(TrainSpec.from_cli(generator, condition, None, items), zoo)
        if out is not None:
            gen.save(out)
    fit_s = time.perf_counter() - began
    family = family_from_dict(zoo.family)
    refs = {r.task_id: r for r in zoo.records(final_only=True, split="heldout")}
    own, fitted, probe, ref, secs, shuffled, noise = [], [], [], [], [], [], []
    ids = [t for t in family.heldout_task_ids() if every or t in refs]
    rng = random.Random(0)
    zero = {t.name: torch.zeros(t.shape) for t in zoo.arch.spec().tensors}

    def accuracy(weights, task) -> float:
        return float(test_accuracy(zoo.arch, {k: v[None] for k, v in weights.items()}, task)[0])

    def generated(cond) -> dict:
        return {k: v[0] for k, v in gen.sample(cond, n=1, seed=0, deterministic=True).items()}

    # The +prior head's strength is chosen on zoo tasks (their support and test sets), never on
    # held-out ones; the held-out figure is then reported at that one strength.
    strengths = (1e-6, 1e-5, 1e-4, 1e-3, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)

    def add_prior_scores(into: dict, weights, task) -> None:
        for s in strengths:
            into[s].append(accuracy(fit_head(zoo.arch, weights, task.support_x, task.support_y, prior=s), task))

    prior_fit = {s: [] for s in strengths}
    for task_id in family.zoo_task_ids()[:32]:
        task = family.task(task_id)
        add_prior_scores(prior_fit, generated(gen.encode_condition(task)), task)
    strength = max(strengths, key=lambda s: statistics.fmean(prior_fit[s]))
    print("  +prior on 32 zoo tasks: " + "  ".join(f"{s:g}: {statistics.fmean(a):.4f}" for s, a in prior_fit.items())
          + f"  -> strength {strength:g}")
    prior, prior_all = [], {s: [] for s in strengths}
    for i, task_id in enumerate(ids):
        task = family.task(task_id)
        t0 = time.perf_counter()
        weights = generated(gen.encode_condition(task))
        secs.append(time.perf_counter() - t0)
        own.append(accuracy(weights, task))
        fitted.append(accuracy(fit_head(zoo.arch, weights, task.support_x, task.support_y), task))
        probe.append(accuracy(fit_head(zoo.arch, zero, task.support_x, task.support_y), task))
        add_prior_scores(prior_all, weights, task)
        prior.append(prior_all[strength][-1])
        if condition == "text-description":
            other = family.task(ids[(i + 1) % len(ids)]).description
            letters = "".join(rng.choice(string.ascii_lowercase + " ") for _ in task.description)
            shuffled.append(accuracy(generated(gen.encode_condition(other)), task))
            noise.append(accuracy(generated(gen.encode_condition(letters)), task))
        if task_id in refs:
            ref.append(refs[task_id].metrics["test_acc"])
    print(f"{generator} / {condition} {' '.join(items)} on {zoo_dir}: {len(own)} held-out tasks")
    print(f"  generated: {statistics.fmean(own):.4f}   +head: {statistics.fmean(fitted):.4f}   "
          f"probe: {statistics.fmean(probe):.4f}   full-data reference ({len(ref)} tasks): {statistics.fmean(ref):.4f}")
    print(f"  +prior (strength {strength:g}, chosen on zoo tasks): {statistics.fmean(prior):.4f}   at every strength: "
          + "  ".join(f"{s:g}: {statistics.fmean(a):.4f}" for s, a in prior_all.items()))
    kind_of = getattr(family, "heldout_kind", None)
    if kind_of is not None:
        for kind in sorted({kind_of(t) for t in ids}):
            pick = [a for a, t in zip(own, ids) if kind_of(t) == kind]
            print(f"  held out by {kind}: generated {statistics.fmean(pick):.4f} ({len(pick)} tasks)")

    def margin(name: str, other: list[float]) -> None:
        mean, lo, hi = paired_bootstrap(own, other)
        print(f"  over {name}: {statistics.fmean(other):.4f}, margin {100 * mean:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}]")

    margin("the probe", probe)
    margin("the refitted head (+head)", fitted)
    mean, lo, hi = paired_bootstrap(prior, probe)
    print(f"  +prior over the probe: {100 * mean:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}]")
    if shuffled:
        margin("another task's description", shuffled)
        margin("a random string", noise)
    scores = {"tasks": ids, "generated": own, "head_refit": fitted, "prior": prior,
              "prior_strength": strength, "probe": probe, "shuffled": shuffled,
              "random_string": noise, "generation_seconds": secs}
    if "--pair" in paths:
        theirs = json.loads(paths["--pair"].read_text())
        if theirs["tasks"] != ids:
            raise SystemExit(f"{paths['--pair']} scores other tasks than this run.")
        margin(f"{paths['--pair']}", theirs["generated"])
    if "--scores" in paths:
        paths["--scores"].write_text(json.dumps(scores, indent=1))
    print(f"  fit {fit_s:.0f} s, generation {1000 * statistics.median(secs):.0f} ms per adapter (median)")


if __name__ == "__main__":
    main(sys.argv[1:])
