"""A million weights generated in milliseconds (#15): the hypernet with low-rank per-layer output
on the 784-512-512-512-10 MLP (932,362 weights), rotated Fashion-MNIST, against the trained
reference and fine-tuning from three starts.

    weightspace zoo build --config configs/fmnist-rotate-1m.yaml      # the zoo (see that file)
    python benchmarks/lowrank_1m.py [--zoo runs/fmnist-rotate-1m] [--out runs/bench-lowrank-1m]
                                    [--condition descriptor] [--option KEY=VALUE]... [--also GEN_DIR]...

It fits the generator as `weightspace train` does (resumes when its directory exists), evaluates
it with `weightspace eval`'s harness on the zoo's held-out angles (fine-tuning from the shared
start, a fresh init and the best zoo member, on the support set and the full training data;
no cross-validated fine-tuning or multi-task network, which cost minutes at this size), and
times one generation on one thread: condition encoding plus sampling, median of 21 calls after
a warm-up. Prints the accuracy table, the ratio to the reference, the six speed-ups and the
generation time. ``--also`` adds already fitted generators to the same harness run (one load,
one set of baselines, speed-ups measured side by side).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch
import yaml

DEFAULT_OPTIONS = {"output": "lowrank", "rank": 8, "warmup_steps": 0, "steps": 1500, "batch_tasks": 8,
                   "batch_examples": 128, "hidden": 256, "depth": 2}


def generation_ms(gen_dir: Path, zoo_dir: Path, repeats: int = 21) -> tuple[float, float]:
    """Median milliseconds of (encoding the condition + one deterministic sample), and of sampling alone."""
    from weightspace.evaluate.context import heldout_tasks
    from weightspace.generate.registry import load_generator
    from weightspace.tasks import family_from_dict
    from weightspace.zoo.store import Zoo

    gen = load_generator(gen_dir)
    with Zoo.open_verified(zoo_dir) as zoo:
        task = heldout_tasks(family_from_dict(zoo.family), 1)[0]
    gen.sample(gen.encode_condition(task), 1, deterministic=True)  # warm-up
    total, sample = [], []
    for _ in range(repeats):
        began = time.perf_counter()
        cond = gen.encode_condition(task)
        mid = time.perf_counter()
        gen.sample(cond, 1, deterministic=True)
        end = time.perf_counter()
        total.append(1000 * (end - began))
        sample.append(1000 * (end - mid))
    return statistics.median(total), statistics.median(sample)


def main() -> None:
    from weightspace.generate.training import fit_and_save
    from weightspace.evaluate.harness import EvalConfig, evaluate, write_results

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--zoo", default="runs/fmnist-rotate-1m")
    p.add_argument("--out", default="runs/bench-lowrank-1m")
    p.add_argument("--condition", default="descriptor")
    p.add_argument("--option", action="append", default=[], help="generator option KEY=VALUE (over the defaults)")
    p.add_argument("--also", action="append", default=[], type=Path,
                   help="a fitted generator's folder to evaluate in the same harness run, for figures side by side")
    args = p.parse_args()
    torch.set_num_threads(1)
    options = {**DEFAULT_OPTIONS, **{k: yaml.safe_load(v) for k, _, v in (o.partition("=") for o in args.option)}}
    out, zoo_dir = Path(args.out), Path(args.zoo)
    changed = "".join(f"-{k}{v}" for k, v in sorted(options.items()) if DEFAULT_OPTIONS.get(k) != v)
    gen_dir = out / f"gen-{args.condition}{changed}"
    began = time.perf_counter()
    if not (gen_dir / "config.json").is_file():
        fit_and_save(zoo_dir, gen_dir, "hypernet", args.condition, options)
    fit_s = time.perf_counter() - began
    timings = {d: generation_ms(d, zoo_dir) for d in [gen_dir, *args.also]}
    cfg = EvalConfig(finetune_steps=(0, 10, 50, 200), cv_folds=0, multitask_tasks=-1, generator_modes=("central",))
    results = evaluate([gen_dir, *args.also], zoo_dir, cfg, progress=True)
    write_results(out / "eval", results)

    m, overall = results["methods"], results["overall"]
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    print(f"\n{zoo_dir}: {overall['n_params']:,} weights, {overall['zoo_members']} zoo members, "
          f"{len(results['tasks'])} held-out tasks; {cpu}, one torch thread")
    print(f"generator fitted in {fit_s:.0f} s (0 when resumed)")
    for d, (total_ms, sample_ms) in timings.items():
        print(f"{d}: generation {total_ms:.1f} ms per model (condition + sample; sampling alone {sample_ms:.1f} ms), "
              "median of 21")
    print(f"{'method':46s} {'acc':>6s} {'÷ref':>6s} {'s/task':>8s}")
    for key in sorted(m, key=lambda k: -m[k]["acc_mean"]):
        e = m[key]
        if e["kind"] == "finetune" and not any(key.endswith(s) for s in ("@10", "@50", "@200", "@converged")):
            continue
        print(f"{key:46s} {e['acc_mean']:6.3f} {e['acc_ratio_to_trained']:6.3f} {e['seconds_per_task'] or 0:8.3f}")
    for key, per_start in overall["cost"].items():
        print(f"\nadaptation speed-up of {key} (fine-tuning seconds to match it / generation seconds):")
        for start, per_data in per_start.items():
            print(f"  {start:9s} " + "; ".join(
                f"{data}: {'≥ ' if c['speedup_is_lower_bound'] else ''}{c['adaptation_speedup']:.3g}x "
                f"(median {c['finetune_steps_to_match_median']:.0f} steps, {c['finetune_seconds_to_match']:.2f} s; "
                f"generation {1000 * c['generation_seconds']:.1f} ms)" for data, c in per_data.items()))
    for line in (overall["verdict"].get(k, {}).get("sentence") for k in overall["verdict"]):
        print(f"\n{line}")
    if overall.get("above_reference_sentence"):
        print(f"! {overall['above_reference_sentence']}")
    print(f"seconds total {overall['seconds_total']:.0f}")


if __name__ == "__main__":
    main()
