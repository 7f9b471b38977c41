"""What verifying a zoo before use costs (#13): `Zoo.open_verified` (shard sha256s, member
checksums, manifest schema and counts, the family's split recomputed) per zoo size.

    python benchmarks/verify_zoo.py [--sizes 16,64,256] [--out runs/bench-verify] [--repeats 7]

Builds digits-rotate MLP zoos (100-32-10, 3,562 weights; 100 training steps a member: the
weights' values do not change what verification costs) and prints the median wall time of
opening each one verified, beside a plain open, over repeats, with the machine.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn().close()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    from weightspace.nets import make_arch
    from weightspace.tasks import make_family
    from weightspace.zoo.build import build_zoo
    from weightspace.zoo.store import Zoo
    from weightspace.zoo.train import TrainConfig

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="16,64,256")
    p.add_argument("--out", default="runs/bench-verify")
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    torch.set_num_threads(1)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    print(f"{cpu}, one torch thread, median of {args.repeats}")
    print(f"{'zoo tasks':>9s} {'members':>8s} {'MB':>6s} {'open ms':>8s} {'verified ms':>12s}")
    for n in (int(s) for s in args.sizes.split(",")):
        family = make_family("digits-rotate", n_tasks=n, n_heldout=max(1, min(32, n // 8)))
        arch = make_arch("mlp", input_shape=family.input_shape, n_classes=family.n_classes, hidden=(32,))
        path = Path(args.out) / f"zoo-{n}"
        build_zoo(path, family, arch, TrainConfig(steps=100), include_heldout=True, workers=2, progress=False).close()
        zoo = Zoo.open(path)
        members = len(zoo.records(final_only=False, split=None))
        zoo.close()
        size = sum(f.stat().st_size for f in (path / "shards").iterdir()) / 2**20
        plain, verified = timed(lambda: Zoo.open(path), args.repeats), timed(lambda: Zoo.open_verified(path), args.repeats)
        print(f"{n:9d} {members:8d} {size:6.1f} {1000 * plain:8.1f} {1000 * verified:12.1f}")


if __name__ == "__main__":
    main()
