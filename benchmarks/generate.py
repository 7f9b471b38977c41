"""Speed of weights on demand: milliseconds per generated model, and models per second batched.

    nice python benchmarks/generate.py [--zoo-dir /tmp/ws-gen] [--gen DIR] [--repeats 200]

The default generator (hypernet, task objective, support-probe condition) is trained on the
digits-rotate shared256 zoo (see generate_quality.py) unless --gen names a saved one. The
target is the default MLP (100-32-10) on CPU:

- per model: ``generate_weights(gen, (support_x, support_y))`` for one held-out task's raw
  support set (100 examples): checking the set, encoding it, sampling, decoding, validating
  against the spec and scoring on the support set. Median over --repeats calls, cycling
  through the 32 held-out tasks, after a warm-up. Target <= 10 ms.
- batched: B support sets encoded and B models sampled, decoded and scored in one call each;
  models per second, median of 5 repeats.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from generate_quality import ensure_zoo, machine

from weightspace.encode.functional import members_loss
from weightspace.generate import generate_weights, load_generator, make_generator, zoo_data


def median_ms(fn, repeats: int) -> float:
    times = []
    for i in range(repeats):
        t = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zoo-dir", type=Path, default=Path("/tmp/ws-gen"))
    parser.add_argument("--gen", type=Path, default=None, help="a generator saved by `weightspace train` (else trained here)")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"machine: {machine()}")
    zoo = ensure_zoo(args.zoo_dir, "shared256")
    if args.gen is not None:
        gen = load_generator(args.gen)
    else:
        t = time.time()
        gen = make_generator("hypernet").fit(zoo_data.from_zoo(zoo, "support"))
        print(f"trained the default generator (hypernet, support-probe) in {time.time() - t:.0f}s")
    held = zoo_data.heldout_tasks(zoo)
    supports = [(t.support_x.clone(), t.support_y.clone()) for t in held]
    n_params = gen.spec.numel
    print(f"model: {gen.arch.to_dict()} ({n_params} weights); support sets of {len(supports[0][1])} examples")

    for i in range(10):  # warm-up
        generate_weights(gen, supports[i % len(supports)])
    full = median_ms(lambda i: generate_weights(gen, supports[i % len(supports)]), args.repeats)
    cond = [gen.encode_condition(s) for s in supports]
    encode = median_ms(lambda i: gen.encode_condition(supports[i % len(supports)]), args.repeats)
    sample = median_ms(lambda i: gen.sample(cond[i % len(cond)], 1, seed=i), args.repeats)
    print(f"per model (median of {args.repeats}): {full:.2f} ms end to end "
          f"[encode support set {encode:.2f} ms, sample + decode + validate {sample:.2f} ms, rest = checks/scoring]")
    print(f"target <= 10 ms: {'met' if full <= 10 else 'NOT met'}")

    b = args.batch
    xb = torch.stack([supports[i % len(supports)][0] for i in range(b)])
    yb = torch.stack([supports[i % len(supports)][1] for i in range(b)])
    module = gen.arch.module()

    def batched(_: int) -> None:
        with torch.no_grad():
            conds = gen.encoder.encode_support(xb, yb)
            params = gen.sample(conds, 1, seed=0)
            members_loss(module, params, xb, yb, per_member=True)  # the support-set check, batched

    batched(0)
    ms = median_ms(batched, 5)
    print(f"batched ({b} tasks per call, median of 5): {ms:.1f} ms per call = {1000 * b / ms:.0f} models/s "
          f"(encode + sample + decode + validate + support check)")


if __name__ == "__main__":
    main()
