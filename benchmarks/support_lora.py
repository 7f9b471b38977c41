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
import time

import torch


def main(argv: list[str]) -> None:
    from weightspace.evaluate.context import recorded_train_config
    from weightspace.evaluate.intervals import paired_bootstrap
    from weightspace.generate.evaluation import test_accuracy
    from weightspace.tasks import family_from_dict
    from weightspace.zoo.build import member_seed
    from weightspace.zoo.store import Zoo

    zoo_dir, scores_path = argv
    torch.set_num_threads(1)
    scores = json.loads(open(scores_path).read())
    with Zoo.open_verified(zoo_dir) as zoo:
        arch, records = zoo.arch, zoo.records(final_only=True, split="zoo")
        family = family_from_dict(zoo.family)
    trainer = arch.member_trainer
    cfg = recorded_train_config(records, trainer.config_class)
    accs, seconds = [], []
    for task_id in scores["tasks"]:
        task = family.task(task_id)
        began = time.perf_counter()
        weights = trainer.fit(arch, task.support_x, task.support_y, member_seed(0, "support:" + task_id, 0), cfg)
        seconds.append(time.perf_counter() - began)
        accs.append(float(test_accuracy(arch, {k: v[None] for k, v in weights.items()}, task)[0]))
    print(f"support-set LoRA ({cfg.steps} steps, batch {cfg.batch_size}) on {len(accs)} held-out tasks of {zoo_dir}: "
          f"{statistics.fmean(accs):.4f}, {statistics.median(seconds):.1f} s per task (median)")
    for name in ("generated", "prior"):
        mean, lo, hi = paired_bootstrap(scores[name], accs)
        print(f"  {name} ({statistics.fmean(scores[name]):.4f}) over it: {100 * mean:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}]")


if __name__ == "__main__":
    main(sys.argv[1:])
