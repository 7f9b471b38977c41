"""Generation on unseen class-subset tasks (#14): every generator variant beside retrieval,
support-set fine-tuning, the majority class and the memorization baselines, in one harness run.

    python benchmarks/subsets.py [--family digits-subsets] [--tasks 256] [--heldout 32] [--out DIR] [--set KEY=VALUE]...
                                 [--variant NAME:GENERATOR:CONDITION[:KEY=VALUE,...]]...

It builds (or resumes) a shared-start zoo of the family with held-out references, fits each
variant as `weightspace train` does, evaluates them all with `weightspace eval`'s harness, and
prints accuracy and balanced accuracy (subset tasks are imbalanced), the ratio to the trained
reference, error-set IoU with the nearest zoo member (novelty) and seconds per task for every
method, plus each generator's margin over retrieval and over the best support-set fine-tuning
with a paired bootstrap interval over tasks. Held-out subsets sit at Hamming distance >= 2 from
every zoo subset (the family's default policy); the distance is printed.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
from pathlib import Path

import torch

DEFAULT_VARIANTS = ("hypernet-support:hypernet:support", "hypernet-descriptor:hypernet:descriptor",
                    "hypernet-none:hypernet:none")


def main() -> None:
    from weightspace.generate.training import fit_and_save
    from weightspace.evaluate.harness import EvalConfig, evaluate, write_results
    from weightspace.nets import make_arch
    from weightspace.tasks import make_family
    from weightspace.zoo.build import build_zoo
    from weightspace.zoo.train import TrainConfig

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", default="digits-subsets")
    p.add_argument("--tasks", type=int, default=256)
    p.add_argument("--heldout", type=int, default=32)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--steps", type=int, default=1000, help="training steps per zoo member")
    p.add_argument("--out", default="runs/bench-subsets")
    p.add_argument("--variant", action="append", help="NAME:GENERATOR:CONDITION[:KEY=VALUE,...]")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="an EvalConfig field for the harness run, e.g. --set cv_max_steps=200")
    args = p.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    family = make_family(args.family, n_tasks=args.tasks, n_heldout=args.heldout)
    arch = make_arch("mlp", input_shape=family.input_shape, n_classes=family.n_classes, hidden=(args.hidden,))
    zoo_dir = out / f"zoo-{args.tasks}"
    build_zoo(zoo_dir, family, arch, TrainConfig(steps=args.steps), init="shared", include_heldout=True,
              workers=args.workers).close()
    gen_dirs = []
    for variant in args.variant or DEFAULT_VARIANTS:
        name, generator, condition, *rest = variant.split(":")
        options = dict(item.split("=", 1) for item in (rest[0].split(",") if rest and rest[0] else []))
        gen_dir = out / f"gen-{args.tasks}-{name}"
        if not (gen_dir / "config.json").is_file():
            fit_and_save(zoo_dir, gen_dir, generator, condition, options)
        gen_dirs.append(gen_dir)
    from weightspace.config import apply_overrides

    ecfg = apply_overrides(EvalConfig(finetune_steps=(0, 10, 50, 200)), args.set)
    results = evaluate(gen_dirs, zoo_dir, ecfg, progress=True)
    write_results(out / f"eval-{args.tasks}", results)
    report(results, family, args)


def report(results: dict, family, args) -> None:
    from weightspace.evaluate.intervals import paired_bootstrap

    methods = results["methods"]
    distances = family.heldout_distances() if hasattr(family, "heldout_distances") else {}
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    print(f"\n{args.family}: {args.tasks} zoo tasks, {len(results['tasks'])} held-out tasks"
          + (f" at Hamming distance >= {min(distances.values())} from every zoo subset" if distances else "")
          + f"; {cpu}, one torch thread")
    print(f"{'method':52s} {'kind':12s} {'acc':>6s} {'bal':>6s} {'÷ref':>6s} {'IoU':>5s} {'s/task':>8s}")
    for key in sorted(methods, key=lambda k: -methods[k]["balanced_acc_mean"]):
        e = methods[key]
        if e["kind"] == "finetune" and not any(key.endswith(s) for s in ("@converged", "@10", "@50", "@cv")):
            continue
        print(f"{key:52s} {e['kind']:12s} {e['acc_mean']:6.3f} {e['balanced_acc_mean']:6.3f} "
              f"{e['balanced_acc_ratio_to_trained']:6.3f} {e['novelty_iou_max_mean']:5.2f} {e['seconds_per_task'] or 0:8.4f}")
    per = {k: [t["balanced_acc"] for t in e["per_task"]] for k, e in methods.items()}
    fewshot = [k for k in methods if k.startswith("finetune:zoo-best:support@")]
    best_fewshot = max(fewshot, key=lambda k: statistics.fmean(per[k]))
    print(f"\nbalanced-accuracy margins (points, mean [95% paired bootstrap over tasks]); best support-set "
          f"fine-tuning of the retrieved member = {best_fewshot} (chosen on the test set: an upper bound)")
    for key in (k for k, e in methods.items() if e["kind"] == "generator" and k.count(":") == 1):
        for other in ("retrieval", best_fewshot, "finetune:zoo-best:support@cv", "majority"):
            if other in per:
                m, lo, hi = paired_bootstrap(per[key], per[other])
                print(f"  {key} - {other}: {100 * m:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]")
    overall = results["overall"]
    ref = methods["reference"]["info"]
    print(f"\nreference recipes chosen on validation data: {ref.get('recipe_counts')}; {ref.get('selection')}")
    cv = methods.get("finetune:zoo-best:support@cv")
    if cv:
        print(f"cross-validated fine-tuning: median chosen steps {cv['info']['chosen_steps_median']:g}, "
              f"lr chosen {sorted({round(c['lr'], 6) for c in cv['info']['chosen']})}, {cv['seconds_per_task']:.2f} s per task")
    print("\nverdicts (accuracy):")
    for key, v in overall["verdict"].items():
        if not v.get("duplicate_of"):
            print(f"  {v['sentence']}")
    if overall.get("best_fewshot"):
        print(f"  {overall['best_fewshot']['sentence']}")
    if overall.get("above_reference_sentence"):
        print(f"  ! {overall['above_reference_sentence']}")
    print(json.dumps({"seconds_total": overall["seconds_total"]}))


if __name__ == "__main__":
    main()
