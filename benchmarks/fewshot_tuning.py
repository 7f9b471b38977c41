"""Few-shot fine-tuning as a user runs it (#18): the fixed-budget curve against learning rate and
steps chosen by k-fold cross-validation on the support set, and the reference before and after
it became the better of two recipes on validation data.

    python benchmarks/fewshot_tuning.py [--family digits-rotate] [--tasks 64] [--heldout 16]
                                        [--init independent] [--out DIR] [--hidden 32]

It builds (or resumes) a zoo of the family with held-out references, runs the evaluation
harness without generators (the baselines alone; no multi-task network) and prints, per
method, accuracy, balanced accuracy, the ratio to the reference and the seconds a task costs,
then the cross-validated choices and the reference's chosen recipes. Figures come from one run.
"""

from __future__ import annotations

import argparse
import platform
import statistics
from pathlib import Path

import torch


def main() -> None:
    from weightspace.evaluate.harness import EvalConfig, evaluate, write_results
    from weightspace.evaluate.intervals import paired_bootstrap
    from weightspace.nets import make_arch
    from weightspace.tasks import make_family
    from weightspace.zoo.build import build_zoo
    from weightspace.zoo.train import TrainConfig

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", default="digits-rotate")
    p.add_argument("--tasks", type=int, default=64)
    p.add_argument("--heldout", type=int, default=16)
    p.add_argument("--init", default="independent", choices=("independent", "shared"))
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--steps", type=int, default=1000, help="training steps per zoo member")
    p.add_argument("--out", default="runs/bench-fewshot-tuning")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(1)
    family = make_family(args.family, n_tasks=args.tasks, n_heldout=args.heldout)
    arch = make_arch("mlp", input_shape=family.input_shape, n_classes=family.n_classes, hidden=(args.hidden,))
    zoo_dir = Path(args.out) / f"{args.family}-{args.tasks}-{args.init}"
    build_zoo(zoo_dir, family, arch, TrainConfig(steps=args.steps), init=args.init, include_heldout=True,
              workers=args.workers).close()
    results = evaluate([], zoo_dir, EvalConfig(finetune_steps=(0, 10, 50, 200), multitask_tasks=-1), progress=True)
    write_results(zoo_dir.parent / f"eval-{zoo_dir.name}", results)

    methods = results["methods"]
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    print(f"\n{args.family}: {args.tasks} zoo tasks ({args.init} init), {len(results['tasks'])} held-out tasks; "
          f"{cpu}, one torch thread")
    shown = ["reference", "retrieval", "finetune:zoo-best:support@10", "finetune:zoo-best:support@50",
             "finetune:zoo-best:support@200", "finetune:zoo-best:support@converged", "finetune:zoo-best:support@cv",
             "finetune:zoo-best:train@converged", "finetune:shared:support@10", "finetune:shared:support@50",
             "finetune:shared:support@200", "finetune:shared:support@converged", "finetune:shared:support@cv",
             "finetune:shared:train@converged", "finetune:scratch:support@converged"]
    print(f"{'method':40s} {'acc':>6s} {'bal':>6s} {'÷ref':>6s} {'s/task':>8s}")
    for key in shown:
        if key in methods:
            e = methods[key]
            print(f"{key:40s} {e['acc_mean']:6.3f} {e['balanced_acc_mean']:6.3f} {e['acc_ratio_to_trained']:6.3f} "
                  f"{e['seconds_per_task'] or 0:8.3f}")
    per = {k: [t["acc"] for t in e["per_task"]] for k, e in methods.items()}
    fixed = [k for k in methods if k.startswith("finetune:zoo-best:support@") and not k.endswith("@cv")]
    best_fixed = max(fixed, key=lambda k: statistics.fmean(per[k]))
    cv = "finetune:zoo-best:support@cv"
    for other in (best_fixed, "finetune:zoo-best:support@converged", "retrieval"):
        m, lo, hi = paired_bootstrap(per[cv], per[other])
        print(f"  cv - {other}: {100 * m:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}]"
              + ("  (the best fixed budget, chosen on the test set: an upper bound)" if other == best_fixed else ""))
    info = methods[cv]["info"]
    steps = [c["steps"] for c in info["chosen"]]
    lrs = [round(c["lr"], 6) for c in info["chosen"]]
    print(f"cv choices: steps median {statistics.median(steps):g} (range {min(steps)}-{max(steps)}), "
          f"lr {dict((lr, lrs.count(lr)) for lr in sorted(set(lrs)))}")
    ref = methods["reference"]["info"]
    print(f"reference: recipes {ref['recipe_counts']}, selection {ref['selection']}")
    overall = results["overall"]
    if overall.get("above_reference_sentence"):
        print(f"! {overall['above_reference_sentence']}")
    print(f"seconds total {overall['seconds_total']:.0f}")


if __name__ == "__main__":
    main()
