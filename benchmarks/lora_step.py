"""LoRA on the frozen MiniLM: seconds per training step, and accuracy of the choices and the
baselines that generated adapters will be judged against.

    python benchmarks/lora_step.py step                      # seconds per step, one thread
    python benchmarks/lora_step.py accuracy --tasks 16       # baselines on held-out tasks
    python benchmarks/lora_step.py variants --tasks 8        # layers / modules / rank / steps

step: per-step wall time at batch 16 of real sentences (cut to their longest), measured in
interleaved rounds so that load from other processes hits every variant alike; the median is
printed. accuracy: on held-out chatterbot tasks, (1) LoRA trained on the full training set,
(2) LoRA trained on the support set only, (3) a logistic-regression probe on frozen embeddings
fitted on the support set, (4) the same probe fitted on the full training set. variants: the
default LoRA against other layer / module / rank / step choices. Jobs run in 2 worker processes
with one torch thread each; results are printed as a table and written as JSON with --out.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time

import numpy as np
import torch
from torch import nn

DEFAULT = {"layers": (4, 5), "modules": ("query", "value"), "rank": 4, "alpha": 8.0}
VARIANTS = {
    "top2-qv-r4": ({}, {}),
    "all6-qv-r4": ({"layers": (0, 1, 2, 3, 4, 5)}, {}),
    "top2-qv-r8": ({"rank": 8, "alpha": 16.0}, {}),
    "top2-qkvo-r4": ({"modules": ("query", "key", "value", "attn_out")}, {}),
    "top2-qv-r4-50steps": ({}, {"steps": 50}),
    "top2-qv-r4-200steps": ({}, {"steps": 200}),
}


@functools.lru_cache(maxsize=1)
def family():
    from weightspace.tasks.chatterbot import ChatterbotFamily

    return ChatterbotFamily()  # default config: the family a LoRA zoo is built on


def heldout_sample(n: int, seed: int = 0) -> list[str]:
    ids = family().heldout_task_ids()
    return sorted(np.random.default_rng(seed).choice(ids, size=min(n, len(ids)), replace=False).tolist())


# ----- jobs (run in workers) ------------------------------------------------------------------
def run_job(job: tuple[str, str]) -> dict:
    from weightspace.nets.lora_minilm.base_model import HiddenCache, base_model
    from weightspace.nets.lora_minilm import LoRAMiniLM
    from weightspace.nets.lora_minilm.train import LoRATrainConfig, probe_accuracy, train_on_task

    torch.set_num_threads(1)
    task_id, what = job
    task = family().task(task_id)
    model = base_model(32)
    out = {"task": task_id, "what": what}
    if what.startswith("probe-"):
        t0 = time.perf_counter()
        x, y = (task.support_x, task.support_y) if what == "probe-support" else (task.x_train, task.y_train)
        acc = probe_accuracy(model.embed(x), y, model.embed(task.x_test), task.y_test)
        return {**out, "test_acc": acc, "seconds": time.perf_counter() - t0}
    name, on = (what[len("lora-support:"):], "support") if what.startswith("lora-support:") else (what, "train")
    arch_kw, cfg_kw = VARIANTS[name]
    arch = LoRAMiniLM(**{**DEFAULT, **arch_kw})
    _, metrics = train_on_task(arch, task, seed=0, cfg=LoRATrainConfig(**cfg_kw), on=on, model=model,
                               hidden_cache=HiddenCache(model))
    return {**out, **metrics}


def run_jobs(jobs: list[tuple[str, str]], workers: int) -> list[dict]:
    from weightspace.zoo.workers import run_chunks

    results = []
    for _, r in run_chunks(run_job, jobs, workers, progress=lambda d, t: print(f"  {d}/{t}", end="\r", flush=True)):
        results.append(r)
    print()
    return results


def table(results: list[dict]) -> None:
    by = {}
    for r in results:
        by.setdefault(r["what"], []).append(r)
    print(f"{'method':34s} {'tasks':>5s} {'test acc':>9s} {'probe acc':>9s} {'seconds':>8s}")
    for what, rows in by.items():
        probe = [r["probe_acc"] for r in rows if "probe_acc" in r]
        print(f"{what:34s} {len(rows):5d} {statistics.fmean(r['test_acc'] for r in rows):9.3f} "
              f"{(statistics.fmean(probe) if probe else float('nan')):9.3f} {statistics.fmean(r['seconds'] for r in rows):8.2f}")


# ----- step timing --------------------------------------------------------------------------
def step_timing(rounds: int, steps: int) -> dict[str, float]:
    from weightspace.nets.lora_minilm import forward as lora
    from weightspace.nets.lora_minilm.base_model import base_model, load_bert, mean_pool
    from weightspace.nets.lora_minilm import LoRAMiniLM

    torch.set_num_threads(1)
    task = family().task("pooled:ai-vs-emotion")
    model, ids, y = base_model(32), task.x_train, task.y_train
    g = torch.Generator().manual_seed(0)

    def batch():
        idx = torch.randint(len(ids), (16,), generator=g)
        x = ids[idx]
        return idx, x[:, : int((x != 0).sum(1).max())]

    runners = {}
    for label, layers in (("lora-all6-from-ids", (0, 1, 2, 3, 4, 5)), ("lora-top2-from-ids", (4, 5))):
        arch = LoRAMiniLM(layers=layers)
        p = {k: v.requires_grad_(True) for k, v in arch.init_params(0).items()}
        opt = torch.optim.AdamW(p.values(), lr=1e-3)

        def step(arch=arch, p=p, opt=opt):
            idx, x = batch()
            loss = nn.functional.cross_entropy(lora.logits(arch, p, x, model), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        runners[label] = step
    arch = LoRAMiniLM(layers=(4, 5))
    p = {k: v.requires_grad_(True) for k, v in arch.init_params(0).items()}
    opt_c = torch.optim.AdamW(p.values(), lr=1e-3)
    hidden, mask = model.lower_hidden(ids, 4), ids != 0

    def cached():
        idx, _ = batch()
        loss = nn.functional.cross_entropy(lora.logits_from_hidden(arch, p, hidden[idx], mask[idx], model=model), y[idx])
        opt_c.zero_grad()
        loss.backward()
        opt_c.step()
    runners["lora-top2-cached"] = cached
    bert = load_bert()
    for q in bert.parameters():
        q.requires_grad_(True)
    head = nn.Linear(384, 2)
    opt_f = torch.optim.AdamW([*bert.parameters(), *head.parameters()], lr=2e-5)

    def full():
        idx, x = batch()
        h = bert(input_ids=x, attention_mask=(x != 0).long()).last_hidden_state
        loss = nn.functional.cross_entropy(head(mean_pool(h, x != 0)), y[idx])
        opt_f.zero_grad()
        loss.backward()
        opt_f.step()
    runners["full-finetune"] = full

    times = {k: [] for k in runners}
    for fn in runners.values():
        fn()  # warm-up
    for _ in range(rounds):
        for k, fn in runners.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                fn()
            times[k].append((time.perf_counter() - t0) / steps)
    t0 = time.perf_counter()
    model.lower_hidden(ids, 4)
    cache_s = time.perf_counter() - t0
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in med.items():
        print(f"{k:22s} {v * 1000:8.1f} ms/step   ({med['full-finetune'] / v:4.1f}x faster than full fine-tuning)")
    print(f"cache of layers 0-3 for {len(ids)} sentences: {cache_s:.2f} s (once per task)")
    return {**med, "cache_seconds": cache_s, "cache_sentences": len(ids)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=("step", "accuracy", "variants"))
    ap.add_argument("--tasks", type=int, default=16, help="held-out tasks to evaluate on")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=5, help="steps per timing round")
    ap.add_argument("--out", default="", help="write the results as JSON here")
    args = ap.parse_args()
    if args.part == "step":
        result = step_timing(args.rounds, args.steps)
    else:
        # variants use every other task of the 16-task accuracy sample, so that sample's
        # top2-qv-r4 rows are their baseline
        tasks = heldout_sample(args.tasks) if args.part == "accuracy" else heldout_sample(16)[::2][: args.tasks]
        whats = (["top2-qv-r4", "lora-support:top2-qv-r4", "probe-support", "probe-train"] if args.part == "accuracy"
                 else [v for v in VARIANTS if v != "top2-qv-r4"])
        result = run_jobs([(t, w) for t in tasks for w in whats], args.workers)
        table(result)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
