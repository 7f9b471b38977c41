"""Members per second: the batched zoo trainer against one model at a time, on the same members.

    python benchmarks/zoo_throughput.py            # 64 digits-rotate MLP members, 600 steps, 3 repeats
    python benchmarks/zoo_throughput.py --members 128 --chunk 64 --repeats 1 --seq1-budget 0

Each repeat runs the ways side by side on identical members (task, seed, steps, data order);
the script reports medians:
  seq-1p   one process, one model at a time, torch's default thread count (it trains members
           in order for at most --seq1-budget seconds; its rate is members done / time);
  seq-2p   the same loop in --workers processes with one thread each (on a small CPU usually
           the fairer baseline); the faster of the two is the baseline;
  batched  ``train_members`` on chunks of --chunk members in --workers processes with one thread
           each (``zoo.workers.WorkerPool``).
Times are wall clock of training plus the final train/test evaluation, in one warm pool whose
workers rebuilt their tasks from a small description (never pickled tensors) and ran both
trainers once before any clock started (that start-up is printed). CPU seconds are measured
too: on a machine shared with other jobs, the CPU-time ratio is the steadier one.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from flops import forward_flops, matmul_gflops, train_step_flops  # noqa: E402

from weightspace.nets import MLP  # noqa: E402
from weightspace.tasks import make_family  # noqa: E402
from weightspace.tasks.base import Task  # noqa: E402
from weightspace.zoo.train import TrainConfig, train_members, train_single  # noqa: E402
from weightspace.zoo.workers import WorkerPool  # noqa: E402

FAMILY = "digits-rotate"


@dataclass(frozen=True)
class ZooRecipe:
    """Everything a worker needs to rebuild the benchmark's members."""

    members: int
    hidden: tuple[int, ...]
    steps: int

    def arch(self) -> MLP:
        family = _family()
        return MLP(family.input_shape, family.n_classes, self.hidden)

    def config(self) -> TrainConfig:
        return TrainConfig(steps=self.steps)  # every other setting: the trainer's defaults

    def tasks(self, members) -> list[Task]:
        """Member m trains on zoo task round(m * n_tasks / members) (spread over all angles) with seed m."""
        ids = _family().zoo_task_ids()
        return [_task(ids[round(m * len(ids) / self.members) % len(ids)]) for m in members]


@lru_cache(maxsize=None)
def _family():
    return make_family(FAMILY)


@lru_cache(maxsize=None)
def _task(task_id: str) -> Task:
    return _family().task(task_id)


# ----- the timed work ------------------------------------------------------------------------

Member = tuple[dict, dict]  # (final weights, metrics)


def sequential_job(job: tuple[ZooRecipe, tuple[int, ...]]) -> tuple[list[Member], float]:
    recipe, members = job
    arch, cfg, tasks = recipe.arch(), recipe.config(), recipe.tasks(members)
    cpu = time.process_time()
    out = [train_single(arch, task, m, cfg) for m, task in zip(members, tasks)]
    return out, time.process_time() - cpu


def batched_job(job: tuple[ZooRecipe, tuple[int, ...]]) -> tuple[list[Member], float]:
    recipe, members = job
    arch, cfg, tasks = recipe.arch(), recipe.config(), recipe.tasks(members)
    cpu = time.process_time()
    result = train_members(arch, tasks, list(members), cfg)
    cpu = time.process_time() - cpu
    return [({n: t[i] for n, t in result.final.items()}, result.metrics[i]) for i in range(len(members))], cpu


def warm_up(recipe: ZooRecipe) -> None:
    """Build every member's task and run both trainers once, off the clock."""
    tasks = recipe.tasks(range(recipe.members))
    tiny = TrainConfig(steps=2)
    train_members(recipe.arch(), tasks[:2], [0, 1], tiny)
    train_single(recipe.arch(), tasks[0], 0, tiny)


def _noop(_):
    return None


def run_in_pool(pool: WorkerPool, fn, recipe: ZooRecipe, job_size: int) -> tuple[float, float, list[Member]]:
    """(wall seconds, CPU seconds, members in order) of all members in ``job_size`` jobs."""
    members = list(range(recipe.members))
    jobs = [(recipe, tuple(members[a:a + job_size])) for a in range(0, len(members), job_size)]
    results: list = [None] * recipe.members
    cpu = 0.0
    start = time.perf_counter()
    for i, (out, job_cpu) in pool.run(fn, jobs):
        cpu += job_cpu
        for m, member in zip(jobs[i][1], out):
            results[m] = member
    return time.perf_counter() - start, cpu, results


def run_here(recipe: ZooRecipe, budget: float) -> tuple[float, float, list[Member]]:
    """Members in order, one at a time, in this process, until all are done or ``budget`` s pass."""
    arch, cfg, tasks = recipe.arch(), recipe.config(), recipe.tasks(range(recipe.members))
    results = []
    cpu, start = time.process_time(), time.perf_counter()
    for m, task in enumerate(tasks):
        results.append(train_single(arch, task, m, cfg))
        if time.perf_counter() - start > budget:
            break
    return time.perf_counter() - start, time.process_time() - cpu, results


# ----- report --------------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine()


def max_weight_diff(a: list[Member], b: list[Member]) -> float:
    return max(float((wa[n] - wb[n]).abs().max()) for (wa, _), (wb, _) in zip(a, b) for n in wa)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=64)
    parser.add_argument("--steps", type=int, default=TrainConfig().steps)
    parser.add_argument("--hidden", type=int, nargs="+", default=[32])
    parser.add_argument("--chunk", type=int, default=0, help="members per batched chunk (0: members / workers)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seq1-budget", type=float, default=20.0,
                        help="seconds per repeat for the one-process baseline (0 skips it)")
    args = parser.parse_args(argv)

    recipe = ZooRecipe(args.members, tuple(args.hidden), args.steps)
    chunk = args.chunk or math.ceil(args.members / args.workers)
    seq_job = max(1, math.ceil(args.members / (4 * args.workers)))  # small jobs balance the workers
    arch, cfg = recipe.arch(), recipe.config()
    gflops_1, gflops_2 = matmul_gflops(1), matmul_gflops(2)
    print(f"machine: {cpu_model()} | {torch.get_num_threads()} default torch threads | torch {torch.__version__}")
    print(f"dense matmul 1024x1024 fp32: {gflops_1:.0f} GFLOP/s on 1 thread, {gflops_2:.0f} on 2 threads")
    print(f"zoo: {args.members} members on {FAMILY} tasks, mlp {'-'.join(map(str, arch.widths))}, "
          f"{cfg.optimizer} lr {cfg.lr} batch {cfg.batch_size}, {cfg.steps} steps | batched chunk {chunk}, "
          f"{args.workers} workers x 1 thread")

    start = time.perf_counter()
    warm_up(recipe)
    pool = WorkerPool(args.workers, initializer=warm_up, initargs=(recipe,))
    list(pool.run(_noop, [None] * args.workers))
    print(f"start-up (fork workers, rebuild tasks, first calls; not timed below): {time.perf_counter() - start:.1f}s")

    ways = (["seq-1p"] if args.seq1_budget > 0 else []) + ["seq-2p", "batched"]
    rates: dict[str, list[float]] = {w: [] for w in ways}
    cpu_rates: dict[str, list[float]] = {w: [] for w in ways}
    results: dict[str, list[Member]] = {}
    with pool:
        for r in range(args.repeats):
            line = []
            for way in ways:
                if way == "seq-1p":
                    wall, cpu, out = run_here(recipe, args.seq1_budget)
                else:
                    job = sequential_job if way == "seq-2p" else batched_job
                    wall, cpu, out = run_in_pool(pool, job, recipe, seq_job if way == "seq-2p" else chunk)
                results[way] = out
                rates[way].append(len(out) / wall)
                cpu_rates[way].append(len(out) / cpu)
                line.append(f"{way} {len(out)} in {wall:.1f}s ({cpu:.1f} cpu-s)")
            print(f"repeat {r + 1}: " + " | ".join(line), flush=True)

    rate = {w: statistics.median(v) for w, v in rates.items()}
    cpu_rate = {w: statistics.median(v) for w, v in cpu_rates.items()}
    baseline = max((w for w in ways if w != "batched"), key=rate.get)
    print("members/s (median): " + ", ".join(f"{w} {v:.2f}" for w, v in rate.items()) + f"; baseline = {baseline}")
    print("members per CPU-second (median): " + ", ".join(f"{w} {v:.2f}" for w, v in cpu_rate.items()))
    print(f"SPEED-UP batched / {baseline}: {rate['batched'] / rate[baseline]:.1f}x wall-clock, "
          f"{cpu_rate['batched'] / cpu_rate[baseline]:.1f}x CPU time")

    seq, bat = results["seq-2p"], results["batched"]
    acc_seq = np.array([m["test_acc"] for _, m in seq])
    acc_bat = np.array([m["test_acc"] for _, m in bat])
    print(f"mean test acc: sequential {acc_seq.mean():.4f}, batched {acc_bat.mean():.4f}; "
          f"max per-member |diff| {np.abs(acc_seq - acc_bat).max():.4f}; max weight |diff| {max_weight_diff(seq, bat):.1e}"
          + (f" (seq-1p vs batched on its {len(results['seq-1p'])} members: {max_weight_diff(results['seq-1p'], bat):.1e})"
             if "seq-1p" in results else ""))

    tasks = recipe.tasks(range(args.members))
    flops = (args.members * cfg.steps * train_step_flops(arch, cfg.batch_size)
             + forward_flops(arch, sum(len(t.y_train) + len(t.y_test) for t in tasks)))
    achieved = flops * rate["batched"] / args.members / 1e9
    print(f"batched trainer: {achieved:.1f} GFLOP/s of matmul work (train fwd+bwd + eval, FlopCounterMode) on "
          f"{args.workers} processes, vs dense matmul {gflops_2:.0f} GFLOP/s (2 threads) / {gflops_1:.0f} (1 thread)")


if __name__ == "__main__":
    main()
