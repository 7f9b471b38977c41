"""Fit a generator with several processes: the torchrun entry point of `weightspace train`.

    torchrun --standalone --nproc_per_node=4 -m weightspace.distributed.train_generator \\
        ZOO --generator token-flow --out GEN steps=4000 batch_size=64

Every process reads the zoo, builds the same training data and takes the same seeded steps;
each computes the loss on its share of every step's members, and gradients are averaged over
the processes (weightspace.generate.data_parallel), so N processes with ``batch_size`` B give the
generator one process would give with batch B, in about 1/N of the compute per process. Rank 0
shows the progress bar, writes the generator (card included) and prints the summary; the other
ranks write nothing. Without torchrun the same command trains in one process.

Options are those of `weightspace train` (``KEY=VALUE`` generator options, ``condition.KEY``
for the condition encoder), plus ``--backend`` (auto: NCCL when the generator trains on CUDA,
gloo on CPU). Only generators whose training loop shares its batches (``data_parallel = True``)
can be launched on more than one process.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

from weightspace.progress_lines import progress_bar as _bar
from weightspace.errors import WeightspaceError

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])


@app.command()
def train(
    zoo_path: Path = typer.Argument(..., metavar="ZOO", help="Zoo directory written by `weightspace zoo build`."),
    overrides: Optional[list[str]] = typer.Argument(None, metavar="[KEY=VALUE]...", help="Generator options; condition.X for the encoder."),
    generator: str = typer.Option("token-flow", "--generator", "-g", help="A data-parallel generator: token-flow, flow or diffusion."),
    condition: str = typer.Option("support", "--condition", "-c", help="support, support-probe, support-deepsets or descriptor."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of generator options."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory rank 0 writes the generator to."),
    align: str = typer.Option("auto", "--align", help="auto: align independent-init zoos for generators that model weights directly; yes; no."),
    backend: str = typer.Option("auto", "--backend", help="auto (NCCL on CUDA, gloo on CPU), gloo or nccl."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    import torch

    from weightspace.generate.data_parallel import init_from_torchrun, shutdown
    from weightspace.generate import GENERATORS
    from weightspace.generate.training import TrainSpec, prepare
    from weightspace.zoo.store import Zoo

    torch.set_num_threads(1)  # one thread per process: the processes are the parallelism
    spec = TrainSpec.from_cli(generator, condition, config, overrides or [])
    par = init_from_torchrun(backend, device=getattr(spec.config, "device", "cpu"))
    try:
        if par.world > 1 and not GENERATORS[generator].data_parallel:
            able = sorted(n for n, c in GENERATORS.items() if c.data_parallel)
            raise WeightspaceError(f"the {generator} generator trains in one process; run it with `weightspace train`, "
                                   f"or pick a data-parallel generator ({', '.join(able)}).")
        zoo = Zoo.open_verified(zoo_path)
        # Every rank builds the same data (alignment and encoders are seeded), so no tensors are sent.
        gen, data, facts = prepare(spec, zoo, align)
        with _bar(f"training {generator} on {par.world} process{'es' if par.world > 1 else ''}",
                  quiet or not par.is_main) as bar:
            gen.fit(data, progress=bar)
        if par.is_main:
            _save(spec, gen, zoo, zoo_path, out, data, facts, par.world)
    except BaseException:
        shutdown(wait_for_others=False)
        raise
    shutdown()


def _save(spec, gen, zoo, zoo_path, out, data, facts, world) -> None:
    """Rank 0 only: the held-out summary, the card, the generator directory, one line of output."""
    from weightspace.generate.evaluation import describe_heldout, heldout_summary
    from weightspace.generate.training import generator_card

    summary = heldout_summary(gen, zoo)
    gen.save(out, card=generator_card(spec, gen, data, {**facts, "zoo": str(zoo_path)}, heldout=summary, processes=world))
    line = f"wrote {out}: {gen.name} on {len(data)} members with {world} process{'es' if world > 1 else ''}"
    typer.echo(line + describe_heldout(summary))


def main(argv: list[str] | None = None) -> int:
    """Run with ``argv``; a WeightspaceError prints one sentence and returns 2 (as `weightspace` does)."""
    from weightspace.card import set_command
    from weightspace.cli.app import run_app
    from weightspace.generate.data_parallel import launched_by_torchrun

    argv = list(sys.argv[1:] if argv is None else argv)
    launcher = ["torchrun", f"--nproc_per_node={os.environ.get('LOCAL_WORLD_SIZE', '?')}"] if launched_by_torchrun() else ["python"]
    set_command([*launcher, "-m", "weightspace.distributed.train_generator", *argv])
    main_rank = os.environ.get("RANK", "0") == "0"  # every rank meets the same bad input: say it once
    return run_app(app, argv, "weightspace.distributed.train_generator",
                   say=lambda message: typer.echo(message, err=True) if main_rank else None)


if __name__ == "__main__":
    sys.exit(main())
