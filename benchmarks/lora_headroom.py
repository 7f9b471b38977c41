"""Where the accuracy of a LoRA set generated from a support set can come from.

    python benchmarks/lora_headroom.py ZOO [--tasks 16]

For each held-out task of a LoRA zoo (built with `weightspace lora-zoo build` or the text-lora
demo, with held-out references), the head is refitted on the task's support set (logistic
regression, as `+head` generator modes and the probe do) on top of different adapters:

- none (ΔW = 0): the frozen-embedding probe
- the task's own full-data adapters (an oracle: what a perfect generator of ΔW would reach)
- the zoo's mean adapters
- the zoo member whose adapters give the best test accuracy (an oracle over the zoo)
- the zoo member picked by 5-fold cross-validated log-loss on the support set (what a user can do)

and the full-data reference (its own head) is printed beside them. If the task's own adapters
with a support-fitted head come close to the reference, the head is not the bottleneck: the
adapters are, and the question is whether the zoo's adapters carry over to the held-out tasks.
"""

from __future__ import annotations

import argparse
import platform
import statistics

import numpy as np
import torch


def main(argv: list[str] | None = None) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    from weightspace.tasks import family_from_dict
    from weightspace.evaluate.feature_baselines import frozen_weights as zero_adapters
    from weightspace.nets.lora_minilm.base_model import base_model
    from weightspace.nets.lora_minilm.train import embed
    from weightspace.zoo.store import Zoo

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("zoo")
    p.add_argument("--tasks", type=int, default=16)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    zoo = Zoo.open(args.zoo)
    arch, family, model = zoo.arch, family_from_dict(zoo.family), base_model(zoo.arch.max_length)
    held = zoo.records(final_only=True, split="heldout")[: args.tasks]
    refs = zoo.load([r.member_id for r in held], split="heldout")
    members = zoo.records(final_only=True, split="zoo")
    stacked = zoo.load([r.member_id for r in members])
    adapters = lambda source, i: {k: v[i] for k, v in source.items() if not k.startswith("head.")}  # noqa: E731
    mean = {k: v.mean(0) for k, v in stacked.items() if not k.startswith("head.")}

    def fitted(ad, task):
        """(test accuracy with a head fitted on the support set, its 5-fold CV log-loss there)."""
        es = embed(arch, ad, task.support_x, model=model).double().numpy()
        et = embed(arch, ad, task.x_test, model=model).double().numpy()
        ys = task.support_y.numpy()
        acc = float((LogisticRegression(max_iter=1000).fit(es, ys).predict(et) == task.y_test.numpy()).mean())
        folds = StratifiedKFold(min(5, int(np.bincount(ys).min())), shuffle=True, random_state=0)
        cv = float(cross_val_score(LogisticRegression(max_iter=1000), es, ys, cv=folds, scoring="neg_log_loss").mean())
        return acc, cv

    cols = ["reference", "probe (ΔW=0)", "own ΔW (oracle)", "zoo mean ΔW", "best zoo ΔW (oracle)", "CV-picked zoo ΔW"]
    rows = []
    for i, r in enumerate(held):
        task = family.task(r.task_id)
        per_member = [fitted(adapters(stacked, j), task) for j in range(len(members))]
        accs = [a for a, _ in per_member]
        picked = max(range(len(members)), key=lambda j: per_member[j][1])
        rows.append([r.metrics["test_acc"], fitted(zero_adapters(arch), task)[0], fitted(adapters(refs, i), task)[0],
                     fitted(mean, task)[0], max(accs), accs[picked]])
        print(f"{r.task_id:40s} " + " ".join(f"{v:.3f}" for v in rows[-1]), flush=True)
    print(f"\n# {platform.machine()}, zoo {args.zoo}: {len(members)} members, {len(held)} held-out tasks; "
          "heads refitted on each task's support set")
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    print("| " + " | ".join(f"{statistics.fmean(c):.3f}" for c in zip(*rows)) + " |")


if __name__ == "__main__":
    main()
