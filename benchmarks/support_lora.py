"""Support-set LoRA on a LoRA zoo's held-out tasks, beside a `lora_generate.py` scores file.

    python benchmarks/support_lora.py ZOO SCORES.json

The harness's ``support-lora`` method on its own (evaluate/feature_baselines.support_fit_method):
a LoRA trained from PEFT's init on each held-out task's support set with the zoo's recorded
recipe, seeded per task as the harness seeds it, scored on the task's test set. It then prints
the paired margins of the scores file's generated adapters (description alone, and `+prior`)
over it, on the same tasks. This gives the figure without the full harness, whose scoring of
every zoo member on 32 tasks takes most of an hour on 2 cores.
"""

from __future__ import annotations

import json
import statistics
import sys
from types import SimpleNamespace

import torch


def main(argv: list[str]) -> None:
    from weightspace.evaluate.feature_baselines import support_fit_method
    from weightspace.evaluate.intervals import paired_bootstrap
    from weightspace.generate.evaluation import test_accuracy
    from weightspace.tasks import family_from_dict
    from weightspace.zoo.store import Zoo

    zoo_dir, scores_path = argv
    torch.set_num_threads(1)
    scores = json.loads(open(scores_path).read())
    with Zoo.open_verified(zoo_dir) as zoo:
        arch, records = zoo.arch, zoo.records(final_only=True, split="zoo")
        family = family_from_dict(zoo.family)
    # The harness's own method on the scores file's tasks. It reads only these three fields of an
    # evaluation context, so the zoo is not aligned (a minute of work this figure does not use).
    tasks = [family.task(t) for t in scores["tasks"]]
    (method,) = support_fit_method(SimpleNamespace(arch=arch, records=records, tasks=tasks), seed=0)
    accs = [float(test_accuracy(arch, {k: v[None] for k, v in w.items()}, t)[0]) for w, t in zip(method.weights, tasks)]
    info = method.info
    print(f"support-set LoRA ({info['steps']} steps) on {len(accs)} held-out tasks of {zoo_dir}: "
          f"{statistics.fmean(accs):.4f}, {statistics.median(method.seconds):.1f} s per task (median)")
    for name in ("generated", "prior"):
        mean, lo, hi = paired_bootstrap(scores[name], accs)
        print(f"  {name} ({statistics.fmean(scores[name]):.4f}) over it: {100 * mean:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}]")


if __name__ == "__main__":
    main(sys.argv[1:])
