"""How generator cost grows with network size: time and peak memory at ~10k, ~100k and ~1M weights.

    nice python benchmarks/scale.py [--members 32] [--generators token-flow,flow] [--epochs 1]

Each (generator, size) runs in a fresh Python process (``--worker``), so one measurement's
allocations never inflate another's. Peak memory is the kernel's resident high-water mark
(VmHWM, reset through /proc/self/clear_refs just before the phase), minus the resident size at
that moment: what the phase itself added. tracemalloc is no use here (torch allocates outside
Python's allocator).

The zoos are synthetic: ``--members`` stacks of random weights (784-input MLPs; the ~1M one is
the Git Re-Basin MNIST MLP 784-512-512-512-10), conditioned on task descriptors. That is enough
for time and memory, which do not depend on what the weights learned.

- fit: ``--epochs`` passes over the zoo's tokens for token-flow (steps = epochs * members *
  tokens / (batch * tokens_per_member)); a fixed ``--flow-steps`` for flow, whose per-step cost
  does not depend on the network size but whose PCA codec costs O(members^2 * weights).
- hypernet-lowrank: the hypernet with ``output=lowrank`` (rank-8 per-layer deltas from the
  zoo's medoid), fitted by regression for ``--flow-steps`` steps (the task objective's cost is
  the target network's own forward pass, measured in benchmarks/lowrank_1m.py).
- sample: one model (zero-noise start, 20 midpoint steps): memory of the first call, time of
  the second. Every process first fits and samples a toy zoo, so torch's one-time allocations
  are not counted against any size.
- saved floats: every tensor of the saved generator (codec, per-entry statistics, network).

The table gives each figure per size and its growth factor per 10x weights between consecutive
sizes, (v2 / v1) ** (1 / log10(p2 / p1)): 10 is linear, 1 is constant.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import math
import platform
import re
import subprocess
import sys
import time

SIZES = {"10k": (12,), "100k": (128,), "1M": (512, 512, 512)}
# benchmark names of generator variants: (registered generator, options)
VARIANTS = {"hypernet-lowrank": ("hypernet", {"output": "lowrank", "rank": 8, "objective": "regression"})}


def _status(key: str) -> int:
    """A /proc/self/status entry in bytes (Linux)."""
    text = open("/proc/self/status").read()
    return int(re.search(rf"{key}:\s+(\d+) kB", text).group(1)) * 1024


def _release_free_memory() -> None:
    """Hand memory that was freed back to the kernel (glibc keeps it otherwise, and a later phase
    reusing it would look free of cost)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the figures may then read low, never high
        pass


def measured(fn):
    """Run fn(); return (result, seconds, bytes of resident memory the call added at its peak)."""
    gc.collect()
    _release_free_memory()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the high-water mark to the current resident size
    before = _status("VmRSS")
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t, _status("VmHWM") - before


def worker(size: str, generator: str, members: int, epochs: float, flow_steps: int, device: str = "cpu") -> dict:
    import torch

    from weightspace.encode.descriptor import DescriptorEncoder
    from weightspace.generate import make_generator
    from weightspace.generate.base import ZooData
    from weightspace.generate.tokens_scale import TokenFlowGenerator  # noqa: F401  (registers token-flow)
    from weightspace.nets import MLP

    def synthetic(hidden: tuple[int, ...], m: int) -> ZooData:
        arch = MLP(input_shape=(784,), n_classes=10, hidden=hidden)
        g = torch.Generator().manual_seed(0)
        params = {t.name: 0.05 * torch.randn(m, *t.shape, generator=g) for t in arch.spec().tensors}
        encoder = DescriptorEncoder(mean=torch.zeros(2), std=torch.ones(2))  # conditions are given directly
        return ZooData(arch.spec(), arch, params, torch.randn(m, 2, generator=g), None, encoder)

    torch.set_num_threads(1)
    # Warm-up on a 2-member toy zoo: torch's one-time allocations (thread pools, kernels, optimiser
    # code paths) are not what grows with the network, so they stay out of the figures.
    name, options = VARIANTS.get(generator, (generator, {}))
    warm = make_generator(name, steps=2, **options).fit(synthetic((4,), 2))
    warm.sample(warm.encoder.mean, 1)
    data = synthetic(SIZES[size], members)
    spec, conditions = data.spec, data.conditions
    if generator == "token-flow":
        gen = make_generator("token-flow")
        c = gen.config
        tokens = sum(math.ceil(t.numel / c.chunk) for t in spec.tensors)
        per_step = c.batch_size * min(c.tokens_per_member, tokens)
        steps = max(1, math.ceil(epochs * members * tokens / per_step))
        gen = make_generator("token-flow", steps=steps, device=device)
    else:
        steps = flow_steps
        gen = make_generator(name, steps=steps, **options)
    if device == "cuda":  # the warm-up ran on the CPU: pay CUDA's start-up here, outside the timing
        make_generator(generator, steps=2, device="cuda").fit(synthetic((4,), 2))
        torch.cuda.reset_peak_memory_stats()
    _, fit_s, fit_bytes = measured(lambda: gen.fit(data))
    gpu_mb = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else 0.0
    cond = conditions[0]
    _, _, sample_bytes = measured(lambda: gen.sample(cond, 1, deterministic=True))  # first call: its memory
    _, sample_s, _ = measured(lambda: gen.sample(cond, 1, deterministic=True))  # second call: its time
    saved = {**gen.codec.state(), **gen._model_state()}  # every tensor the generator directory holds
    return {"size": size, "generator": generator, "device": device, "fit_gpu_mb": gpu_mb,
            "weights": spec.numel, "steps": steps, "fit_s": fit_s,
            "fit_mb": fit_bytes / 2**20, "step_ms": 1000 * fit_s / steps, "sample_s": sample_s,
            "sample_mb": sample_bytes / 2**20, "saved_floats": sum(v.numel() for v in saved.values())}


def growth(rows: list[dict], key: str) -> list[str]:
    out = ["-"]
    for a, b in zip(rows, rows[1:]):
        if a[key] <= 0 or b[key] <= 0:
            out.append("n/a")
            continue
        out.append(f"{(b[key] / a[key]) ** (1 / math.log10(b['weights'] / a['weights'])):.1f}x")
    return out


def table(rows: list[dict]) -> str:
    cols = [("fit_s", "fit s", ".2f"), ("step_ms", "ms/step", ".1f"), ("fit_mb", "fit MB", ".0f"),
            ("sample_s", "sample s", ".3f"), ("sample_mb", "sample MB", ".1f"), ("saved_floats", "saved floats", ",")]
    if any(r.get("device") == "cuda" for r in rows):
        cols.insert(3, ("fit_gpu_mb", "fit GPU MB", ".0f"))
    lines = []
    for gen in dict.fromkeys(r["generator"] for r in rows):
        rs = [r for r in rows if r["generator"] == gen]
        lines.append(f"\n{gen}  (per 10x weights: growth factor; 10x = linear)")
        lines.append("| size | weights | steps | " + " | ".join(h for _, h, _ in cols) + " |")
        lines.append("|" + "---|" * (3 + len(cols)))
        for r in rs:
            lines.append(f"| {r['size']} | {r['weights']:,} | {r['steps']} | "
                         + " | ".join(format(r[k], f) for k, _, f in cols) + " |")
        factors = {k: growth(rs, k) for k, _, _ in cols}
        for i in range(1, len(rs)):
            lines.append(f"| {rs[i - 1]['size']}->{rs[i]['size']} | | | " + " | ".join(factors[k][i] for k, _, _ in cols) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--members", type=int, default=32)
    p.add_argument("--generators", default="token-flow,flow")
    p.add_argument("--sizes", default=",".join(SIZES))
    p.add_argument("--epochs", type=float, default=1.0, help="token-flow passes over the zoo's tokens")
    p.add_argument("--flow-steps", type=int, default=200)
    p.add_argument("--device", default="cpu", help="where token-flow fits: cpu or cuda (sampling stays on the CPU)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON lines too")
    p.add_argument("--worker", nargs=2, metavar=("SIZE", "GENERATOR"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(*args.worker, args.members, args.epochs, args.flow_steps, args.device)))
        return
    print(f"# {platform.processor() or platform.machine()}, 1 torch thread per process, {args.members} members")
    rows = []
    for generator in args.generators.split(","):
        for size in args.sizes.split(","):
            cmd = [sys.executable, __file__, "--worker", size, generator, "--members", str(args.members),
                   "--epochs", str(args.epochs), "--flow-steps", str(args.flow_steps), "--device", args.device]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"  {generator} {size}: fit {rows[-1]['fit_s']:.1f} s, sample {rows[-1]['sample_s']:.3f} s", file=sys.stderr)
    print(table(rows))
    if args.json:
        for row in rows:
            print(json.dumps(row))


if __name__ == "__main__":
    main()
