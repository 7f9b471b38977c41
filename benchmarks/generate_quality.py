"""How good are generated weights on held-out tasks? The acceptance numbers of the generation stage.

    nice python benchmarks/generate_quality.py [--zoo-dir /tmp/ws-gen] [--sections dense,sparse,independent]

Zoos (digits-rotate, MLP 100-32-10, Adam lr 3e-3, 600 steps of batch 64, 32 held-out angles with
reference models trained the same way; built on first use, then reused from --zoo-dir):
  shared256  256 zoo angles, shared pretrained start     -> "dense"
  shared32    32 zoo angles, shared pretrained start     -> "sparse"
  indep128   128 zoo angles, independent random inits    -> "independent"

Every generated model is conditioned only on the held-out task's support set (100 labelled
examples) unless the row says descriptor. Columns: mean held-out test accuracy, mean and
worst ratio to the task's reference model, and wins / ties / losses per task against retrieval
(the zoo member with the lowest support-set loss). "det" rows use the generator's central
output; "sample" one random draw; "best-of-8" the best of 8 draws by support-set loss.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

ZOOS = {"shared256": (256, "shared"), "shared32": (32, "shared"), "indep128": (128, "independent")}
# (label, generator, config, condition, sampling[, align]) rows per section
PROBE = "support-probe"
REG = {"objective": "regression", "steps": 3000}  # as many steps as the default in all
TASK_ONLY = {"warmup_steps": 0, "steps": 3000}  # end to end from the PCA mean, no regression start
DENSE = [
    ("pca-gaussian", "pca-gaussian", {}, PROBE, "det"),
    ("hypernet regression", "hypernet", REG, PROBE, "det"),
    ("hypernet task, no warm start", "hypernet", TASK_ONLY, PROBE, "det"),
    ("hypernet (default: warm start + task)", "hypernet", {}, PROBE, "det"),
    ("hypernet (default), deepsets", "hypernet", {}, "support-deepsets", "det"),
    ("hypernet (default), descriptor", "hypernet", {}, "descriptor", "det"),
    ("flow", "flow", {}, PROBE, "det"),
    ("flow", "flow", {}, PROBE, "sample"),
    ("diffusion", "diffusion", {}, PROBE, "det"),
    ("diffusion", "diffusion", {}, PROBE, "sample"),
]
SPARSE = [
    ("pca-gaussian", "pca-gaussian", {}, PROBE, "det"),
    ("pca-gaussian", "pca-gaussian", {}, PROBE, "best-of-8"),
    ("hypernet regression", "hypernet", REG, PROBE, "det"),
    ("hypernet regression", "hypernet", REG, PROBE, "best-of-8"),
    ("hypernet task, no warm start", "hypernet", TASK_ONLY, PROBE, "det"),
    ("hypernet (default: warm start + task)", "hypernet", {}, PROBE, "det"),
    ("hypernet (default), deepsets", "hypernet", {}, "support-deepsets", "det"),
    ("flow", "flow", {}, PROBE, "det"),
    ("flow", "flow", {}, PROBE, "sample"),
    ("flow", "flow", {}, PROBE, "best-of-8"),
    ("diffusion", "diffusion", {}, PROBE, "det"),
    ("diffusion", "diffusion", {}, PROBE, "best-of-8"),
]
INDEPENDENT = [
    (f"{label}, {'aligned' if align else 'not aligned'}", gen, cfg, PROBE, "det", align)
    for align in (False, True)
    for label, gen, cfg in (("pca-gaussian", "pca-gaussian", {}), ("hypernet regression", "hypernet", REG),
                            ("hypernet (default)", "hypernet", {}), ("hypernet task, no warm start", "hypernet", TASK_ONLY))
]
SECTIONS = {"dense": ("shared256", DENSE), "sparse": ("shared32", SPARSE), "independent": ("indep128", INDEPENDENT)}


def ensure_zoo(zoo_dir: Path, name: str):
    """Open the zoo ``name`` in zoo_dir, building (or finishing) it first if needed."""
    from weightspace.nets import MLP
    from weightspace.tasks import make_family
    from weightspace.zoo.build import build_zoo
    from weightspace.zoo.store import Zoo
    from weightspace.zoo.train import TrainConfig

    n_tasks, init = ZOOS[name]
    family = make_family("digits-rotate", n_tasks=n_tasks, n_heldout=32, seed=0)
    arch = MLP(input_shape=family.input_shape, n_classes=family.n_classes, hidden=(32,))
    path = zoo_dir / name
    if (path / "zoo.json").is_file() and len(Zoo.open(path)) == n_tasks:
        return Zoo.open(path)
    t = time.time()
    zoo = build_zoo(path, family, arch, TrainConfig(), init=init, include_heldout=True, workers=0, progress=False)
    print(f"built {name}: {len(zoo)} members in {time.time() - t:.0f}s", flush=True)
    return zoo


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}; {platform.platform()}; torch {torch.__version__}, {torch.get_num_threads()} thread(s)"


def run_section(zoo, rows, quick: bool) -> None:
    from weightspace.generate import make_generator, zoo_data
    from weightspace.generate.evaluation import generated_accuracy, reference_accuracy, retrieval_accuracy

    held = zoo_data.heldout_tasks(zoo)
    ref = reference_accuracy(zoo, held)
    datas: dict = {}
    retrieval = None
    fitted: dict = {}
    print(f"{'method':38s} {'sampling':10s} {'acc':>6s} {'÷ref':>6s} {'min÷ref':>7s} {'vs retrieval':>13s} {'fit s':>6s}")
    for row in rows:
        label, name, cfg, condition, sampling = row[:5]
        align = row[5] if len(row) > 5 else False
        if (condition, align) not in datas:
            datas[condition, align] = zoo_data.from_zoo(zoo, condition, align=align)
        data = datas[condition, align]
        if retrieval is None:
            retrieval = retrieval_accuracy(zoo.arch, data.params, held)
            print(f"{'reference (trained on the task)':38s} {'':10s} {ref.mean():6.4f} {1:6.4f}")
            print(f"{'retrieval (lowest support loss)':38s} {'':10s} {retrieval.mean():6.4f} "
                  f"{(retrieval / ref).mean():6.4f} {(retrieval / ref).min():7.3f}", flush=True)
        key = (name, repr(sorted(cfg.items())), condition, align)
        t = time.time()
        if key not in fitted:
            options = dict(cfg, **({"steps": 300} if quick and name != "pca-gaussian" else {}))
            fitted[key] = (make_generator(name, **options).fit(data), time.time() - t)
        gen, fit_s = fitted[key]
        best_of = 8 if sampling == "best-of-8" else 1
        acc = generated_accuracy(gen, held, deterministic=sampling == "det", best_of=best_of)
        ratio = acc / ref
        wins, losses = int((acc > retrieval + 1e-9).sum()), int((acc < retrieval - 1e-9).sum())
        print(f"{label:38s} {sampling:10s} {acc.mean():6.4f} {ratio.mean():6.4f} {ratio.min():7.3f} "
              f"{wins:4d}/{len(held) - wins - losses:2d}/{losses:2d} {fit_s:9.0f}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zoo-dir", type=Path, default=Path("/tmp/ws-gen"))
    parser.add_argument("--sections", default="dense,sparse,independent")
    parser.add_argument("--quick", action="store_true", help="300 training steps per generator (a smoke run, not the numbers)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"machine: {machine()}")
    print(f"command: {' '.join([Path(sys.argv[0]).name] + sys.argv[1:])}")
    for section in args.sections.split(","):
        zoo_name, rows = SECTIONS[section]
        print(f"\n== {section}: {zoo_name} ==", flush=True)
        run_section(ensure_zoo(args.zoo_dir, zoo_name), rows, args.quick)


if __name__ == "__main__":
    main()
