"""`weightspace train` (fit a generator on a zoo) and `weightspace generate` (weights for a task).

Generator options: defaults < ``--config options.yaml`` < ``key=value`` arguments; keys starting
with ``condition.`` go to the condition encoder (``condition.n_anchors=16``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from weightspace.cli.app import app, console
from weightspace.errors import WeightspaceError
from weightspace.progress_lines import progress_bar


# One request writes at most this many models: 1024 digits MLPs are 14 MB; 100,000 were 1.4 GB and
# printed a line each. Larger batches are a loop over calls (or the service, which streams).
MAX_MODELS, MAX_BEST_OF = 1024, 256

# `--condition` help, shared with `weightspace sweep`. `support` is an alias (see
# generate.zoo_data.CONDITION_ALIASES): both spellings build the same encoder and record its name.
CONDITION_HELP = ("What the generator sees of a task. support: the training-free support-set probe encoder "
                  "(`support-probe` is the same encoder under its full name; either spelling records "
                  "support-probe); support-deepsets: a learned DeepSets support-set encoder; descriptor: the "
                  "task's descriptor (an angle, a class subset); for LoRA zoos text-support, text-description "
                  "or text-both; none: told nothing (the unconditional ablation).")


def _value_text(value) -> str:
    """A default as it would be typed in KEY=VALUE (values are read as YAML)."""
    import json

    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _rich_help() -> bool:
    """Whether typer renders help with rich (markup parsed, line breaks kept) or with plain click
    (paragraphs rewrapped unless they start with a \\b line)."""
    import typer.core

    return bool(getattr(typer.core, "HAS_RICH", False)) and getattr(typer.core, "DEFAULT_MARKUP_MODE", None) == "rich"


def generator_options_help(width: int = 76) -> str:
    """The `train --help` epilog: every registered generator with each KEY=VALUE option, its
    default and its help, read from the registry and the generators' Config dataclasses."""
    import textwrap

    from weightspace.config import describe
    from weightspace.generate import GENERATORS

    rich = _rich_help()
    if rich:
        from rich.markup import escape
    else:
        escape = str  # noqa: E731
    paragraphs = [textwrap.fill("Generator options, given as KEY=VALUE after ZOO (e.g. steps=500); "
                                "condition.KEY=VALUE goes to the condition encoder. Defaults shown:", width)]
    for name in sorted(GENERATORS):
        cls = GENERATORS[name]
        rows = [(f"{key}={_value_text(default)}", help_text) for key, default, help_text in describe(cls.Config)]
        column = min(max((len(k) for k, _ in rows), default=0), 24) + 4
        lines = textwrap.wrap(f"{name}: {cls.paper}", width, subsequent_indent="    ", break_on_hyphens=False)
        for key, help_text in rows:
            first = f"  {key}".ljust(column)
            if len(first) > column:  # a long KEY=VALUE gets a line of its own, its help below it
                lines.append(first.rstrip())
                first = " " * column
            lines += textwrap.wrap(help_text or "-", width, initial_indent=first, subsequent_indent=" " * column,
                                   break_on_hyphens=False, break_long_words=False)
        body = "\n".join(escape(line) for line in lines)
        paragraphs.append(body if rich else "\b\n" + body)
    return "\n\n".join(paragraphs)


@app.command("train", epilog=generator_options_help())
def train(
    zoo_path: Path = typer.Argument(..., metavar="ZOO", help="Zoo directory written by `weightspace zoo build`."),
    overrides: Optional[list[str]] = typer.Argument(None, metavar="[KEY=VALUE]...",
                                                    help="Generator options (listed below); condition.X for the encoder."),
    generator: str = typer.Option("hypernet", "--generator", "-g", help="Generator name (see `weightspace generators`)."),
    condition: str = typer.Option("support", "--condition", "-c", help=CONDITION_HELP),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of generator options."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory to write the generator to."),
    align: str = typer.Option("auto", "--align", help="auto: align independent-init zoos when the generator models weights directly; yes; no."),
    checkpoint_every: int = typer.Option(200, "--checkpoint-every", min=0, help="Snapshot the training state every N steps beside --out; a rerun resumes from it (0: never)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Fit a generator on a zoo's final zoo-split members and save it (safetensors + config + card)."""
    import torch

    from weightspace.config import to_dict
    from weightspace.training_loop import Checkpoint, state_dir_for
    from weightspace.generate.evaluation import describe_heldout, heldout_summary
    from weightspace.generate.training import TrainSpec, generator_card, prepare
    from weightspace.generate.zoo_data import resolve_condition
    from weightspace.io import check_output_dir
    from weightspace.zoo.store import Zoo

    check_output_dir(out, "--out directory")
    torch.set_num_threads(1)  # small nets: one thread is fastest and leaves the other cores alone
    condition = resolve_condition(condition)  # one canonical name: `support` and `support-probe` record the same
    spec = TrainSpec.from_cli(generator, condition, config, overrides or [])
    zoo = Zoo.open_verified(zoo_path)
    with progress_bar("aligning zoo", quiet, console=console) as bar:
        gen, data, facts = prepare(spec, zoo, align, progress=bar)
    # Everything the trained weights depend on: a snapshot taken with other settings is not resumed.
    fingerprint = {"generator": generator, "config": to_dict(spec.config), "zoo": str(Path(zoo_path).resolve()),
                   "members": sorted(r.key for r in zoo.records(final_only=True, split="zoo")),
                   "condition": condition, "condition_options": spec.condition_options, "aligned": facts["aligned"]}
    checkpoint = Checkpoint(state_dir_for(out), checkpoint_every, fingerprint)
    with progress_bar(f"training {generator}", quiet, unit="step", console=console) as bar:
        gen.fit(data, progress=bar, checkpoint=checkpoint)
    if checkpoint.resumed_from:
        typer.echo(f"resumed training from step {checkpoint.resumed_from} ({checkpoint.path}).", err=True)
    summary = heldout_summary(gen, zoo)
    gen.save(out, card=generator_card(spec, gen, data, {**facts, "zoo": str(zoo_path)}, heldout=summary))
    checkpoint.clear()  # the finished generator supersedes the snapshot
    init, aligned = facts["zoo_init"], facts["aligned"]
    line = f"wrote {out}: {generator} on {len(data)} members ({init} init{', aligned' if aligned else ''}), condition {data.encoder.name}"
    typer.echo(line + describe_heldout(summary))


@app.command("generate")
def generate(
    generator_path: Path = typer.Argument(..., metavar="GEN", help="Generator directory written by `weightspace train`."),
    task: Optional[str] = typer.Option(None, "--task", help="Task id of the generator's family (its support set is used)."),
    support: Optional[Path] = typer.Option(None, "--support", help="Labelled examples: .safetensors, .npz or .json with x and y."),
    n: int = typer.Option(1, "-n", min=1, max=MAX_MODELS, help=f"Number of models (1 to {MAX_MODELS})."),
    best_of: int = typer.Option(1, "--best-of", min=1, max=MAX_BEST_OF,
                                help=f"Draw n * K candidates and keep the n with the lowest support-set loss (K from 1 to {MAX_BEST_OF})."),
    seed: int = typer.Option(0, "--seed", help="Sampling seed."),
    deterministic: bool = typer.Option(False, "--deterministic", help="The generator's central output instead of a random draw."),
    out: Path = typer.Option(..., "--out", "-o", help="Output .safetensors: a state dict (n = 1) or tensors stacked on a leading axis."),
) -> None:
    """Synthesize weights for a task from its support set (or descriptor); every model is checked first."""
    import torch

    from weightspace.generate import generate_weights, load_generator
    from weightspace.generate.sampling import weights_metadata
    from weightspace.generate.support_file import read_support_file
    from weightspace.io import check_output_file, save_safetensors

    torch.set_num_threads(1)
    check_output_file(out, "--out file")
    if (task is None) == (support is None):
        raise WeightspaceError("give exactly one of --task ID or --support FILE.")
    if out.suffix != ".safetensors":
        raise WeightspaceError(f"--out {out} must end in .safetensors.")
    gen = load_generator(generator_path)
    if task is not None:
        family_dict = gen.fit_info.get("family")
        if family_dict is None:
            raise WeightspaceError(f"{generator_path} records no task family, so --task cannot be resolved; use --support.")
        from weightspace.tasks import family_from_dict

        target = family_from_dict(family_dict).task(task)
    else:
        if gen.encoder is not None and gen.encoder.kind not in ("support", "none"):
            raise WeightspaceError(f"{generator_path} is conditioned on task {gen.encoder.kind}s, not support sets; use --task.")
        target = read_support_file(support, gen.arch.input_shape, gen.arch.n_classes)
    result = generate_weights(gen, target, n=n, seed=seed, best_of=best_of, deterministic=deterministic)
    tensors = {k: v[0] for k, v in result.params.items()} if n == 1 else result.params
    source = f"task {task}" if task is not None else f"support {support}"
    save_safetensors(out, tensors, weights_metadata(gen.name, n, seed, gen.arch, source,
                                                    [float(a) for a in result.support_accuracy]))
    accs = ", ".join(f"{float(a):.3f}" for a in result.support_accuracy)
    typer.echo(f"wrote {out}: {n} model(s) from {gen.name} ({result.passed}/{result.candidates} passed checks); "
               f"support-set accuracy {accs}")


@app.command("generators")
def list_generators_cmd() -> None:
    """List the registered generators and the papers they follow (`weightspace registry` lists every kind)."""
    from weightspace.cli.registry_cmd import entry_lines
    from weightspace.generate import GENERATORS

    typer.echo("\n".join(entry_lines(GENERATORS.entries())))
