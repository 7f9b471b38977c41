"""`weightspace zoo ...`: build, list, show, check and import zoos of trained models.

A build is described by a recipe: defaults < ``--config recipe.yaml`` < options given on the
command line < ``key=value`` overrides. Override keys are recipe fields (``seeds=2``), training
fields (``lr=0.01`` or ``train.lr=0.01``), family options (``family.n_tasks=8``) or architecture
options (``arch.activation=tanh``).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Optional

import typer

from weightspace.cli.app import app, comma_ints
from weightspace.config import from_mapping, load_yaml, option, to_dict
from weightspace.errors import WeightspaceError
from weightspace.io import check_output_dir
from weightspace.zoo.build import SHARED_INIT_REASON

zoo_app = typer.Typer(help="Build, inspect, verify and import zoos of trained models.", no_args_is_help=True)
app.add_typer(zoo_app, name="zoo")

# Recipe field -> the family constructor argument it sets.
_FAMILY_COUNTS = {"tasks": "n_tasks", "heldout": "n_heldout"}


@dataclass
class BuildRecipe:
    out: str = option("", "Directory of the zoo; a rerun with the same recipe resumes it.")
    family: str = option("digits-rotate", "Task family (weightspace.tasks.make_family name).")
    tasks: Optional[int] = option(None, "Zoo tasks in the family (unset: the family's default).")
    heldout: Optional[int] = option(None, "Held-out tasks no zoo member trains on (unset: the family's default, "
                                          "at most one per 8 zoo tasks when `tasks` is set, so small zoos work).")
    family_options: dict = option({}, "Further family constructor arguments.")
    arch: str = option("mlp", "Architecture: mlp, cnn or lora-minilm; input shape and classes come from the family.")
    hidden: Optional[list] = option(None, "MLP hidden widths, e.g. [32, 32] (unset: the architecture's default).")
    arch_options: dict = option({}, "Further architecture arguments (activation, channels, ...).")
    seeds: int = option(1, "Members per task, each from its own seed.")
    init: str = option("independent", "independent: each member from its own random init; shared: all from one pretrained base "
                                      "(what the generators need; see `weightspace zoo build --help`).")
    pretrain_steps: int = option(600, "Training steps of the shared base (init=shared only).")
    include_heldout: bool = option(False, "Also train reference models on the held-out tasks (split 'heldout').")
    chunk: int = option(32, "Members trained together in one vmap batch (and stored as one shard).")
    workers: int = option(2, "Worker processes, one torch thread each; 0 trains in this process (backend local).")
    backend: str = option("local", "local (worker processes here) or ray (one Ray task per chunk on a cluster).")
    address: Optional[str] = option(None, "Ray cluster address (host:6379, ray://host:10001, auto); unset: a local Ray instance.")
    seed: int = option(0, "Base seed; every member's seed derives from it and its task.")
    train: dict = option({}, "TrainConfig fields: optimizer, lr, steps, batch_size, snapshot_every, ... "
                             "(lora-minilm: LoRATrainConfig fields: steps, lr, head_lr, batch_size, ...)")


def resolve_recipe(recipe: BuildRecipe, overrides: list[str]) -> BuildRecipe:
    """Apply ``key=value`` overrides, routing each key to the recipe, training, family or arch."""
    d = asdict(recipe)
    arch = next((v.strip() for k, _, v in (o.partition("=") for o in overrides) if k.strip() == "arch"), recipe.arch)
    recipe_keys, train_keys = {f.name for f in fields(BuildRecipe)}, {f.name for f in fields(train_config_class(arch))}
    for item in overrides:
        if "=" not in item:
            raise WeightspaceError(f"override {item!r} is not of the form key=value.")
        key, value = (s.strip() for s in item.split("=", 1))
        section, _, sub = key.partition(".")
        if sub and section in ("family", "arch", "train"):
            d[{"family": "family_options", "arch": "arch_options", "train": "train"}[section]][sub] = value
        elif key in recipe_keys:
            d[key] = value
        elif key in train_keys:
            d["train"][key] = value
        else:
            raise WeightspaceError(f"override key {key!r} is neither a recipe field ({', '.join(sorted(recipe_keys))}) "
                                   f"nor a training field ({', '.join(sorted(train_keys))}); use family.X or arch.X for those.")
    resolved = from_mapping(BuildRecipe, d, where="zoo recipe")
    for name in ("family_options", "arch_options", "train"):
        value = getattr(resolved, name)
        if not isinstance(value, dict):
            raise WeightspaceError(f"recipe field {name} must be a mapping, got {value!r}.")
        setattr(resolved, name, {k: _parse_scalar(v) for k, v in value.items()})
    return resolved


# Why `--init independent` stays the default although the generators want `shared`: a shared
# build's workers read OUT/base.safetensors from disk (zoo.build), which a Ray node without the
# driver's filesystem cannot, and alignment and analysis study independent inits.
INIT_HELP = ("independent (the default) or shared. " + SHARED_INIT_REASON + " independent: each member from "
             "its own random init, what `weightspace align` and `analyze` study. With --backend ray, shared "
             "needs the zoo directory readable on every node.")


# Every family with a zoo-size option holds out 32 tasks by default, one per 8 of its 256 zoo tasks.
DEFAULT_HELDOUT, TASKS_PER_HELDOUT = 32, 8


def small_zoo_heldout(n_tasks: int) -> int:
    """The default held-out count for a zoo of ``n_tasks``: an angle family has one gap per zoo
    task to hold out, so 16 zoo tasks cannot have the default 32 held out."""
    return max(1, min(DEFAULT_HELDOUT, n_tasks // TASKS_PER_HELDOUT))


def _parse_scalar(v: Any) -> Any:
    import yaml

    return yaml.safe_load(v) if isinstance(v, str) else v


def train_config_class(arch: str) -> type:
    """The training config of an architecture's members: its own trainer's, else TrainConfig."""
    from weightspace.nets import arch_class
    from weightspace.zoo.train import TrainConfig

    trainer = arch_class(arch).member_trainer
    return trainer.config_class if trainer is not None else TrainConfig


def build_from_recipe(recipe: BuildRecipe, progress: bool = True):
    """Make the family, architecture and training config a recipe names, and build the zoo."""
    from weightspace.zoo.build import build_zoo

    if not recipe.out:
        raise WeightspaceError("the zoo needs an output directory; pass --out DIR (or out: in the recipe).")
    check_output_dir(recipe.out, "zoo directory")
    family, arch = family_and_arch(recipe)
    train_cfg = from_mapping(train_config_class(recipe.arch), recipe.train, where="training config")
    return build_zoo(recipe.out, family, arch, train_cfg, seeds_per_task=recipe.seeds, init=recipe.init,
                     pretrain_steps=recipe.pretrain_steps, chunk_size=recipe.chunk, workers=recipe.workers,
                     include_heldout=recipe.include_heldout, progress=progress, seed=recipe.seed,
                     card_extra={"recipe": to_dict(recipe)}, backend=recipe.backend, address=recipe.address)


def family_and_arch(recipe: BuildRecipe):
    """The task family and architecture a resolved recipe names (the arch takes what the family
    fixes: input shape and classes, or a text family's sentence length and inputs)."""
    from weightspace.nets import arch_for_family
    from weightspace.tasks import make_family

    family_config = dict(recipe.family_options)
    for field_name, arg in _FAMILY_COUNTS.items():
        if getattr(recipe, field_name) is not None:
            family_config[arg] = getattr(recipe, field_name)
    if recipe.tasks is not None and recipe.heldout is None and "n_heldout" not in family_config:
        family_config["n_heldout"] = small_zoo_heldout(recipe.tasks)
    family = make_family(recipe.family, **family_config)
    arch_options = dict(recipe.arch_options)
    if recipe.hidden is not None:
        if recipe.arch != "mlp":
            raise WeightspaceError(f"--hidden sets MLP widths; the {recipe.arch} takes arch options instead (e.g. arch.channels=[16,32]).")
        arch_options["hidden"] = list(recipe.hidden)
    return family, arch_for_family(recipe.arch, family, **arch_options)


def recipe_with(config: Optional[Path], hidden: Optional[str], **given: Any) -> BuildRecipe:
    """The ``--config`` recipe (or the defaults) with the options given on the command line."""
    recipe = load_yaml(BuildRecipe, config) if config is not None else BuildRecipe()
    for key, value in given.items():
        if value is not None:
            setattr(recipe, key, value)
    if hidden is not None:
        recipe.hidden = comma_ints(hidden, "--hidden", "widths", "32,32")
    return recipe


@zoo_app.command("build")
def build_cmd(
    overrides: Optional[list[str]] = typer.Argument(None, help="key=value overrides (seeds=2, lr=0.01, family.n_tasks=8)."),
    out: Optional[str] = typer.Option(None, "--out", help="Zoo directory (a rerun resumes it)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML recipe; options and overrides win over it."),
    family: Optional[str] = typer.Option(None, "--family", help="Task family (default: digits-rotate)."),
    arch: Optional[str] = typer.Option(None, "--arch", help="Architecture: mlp, cnn or lora-minilm (default: mlp)."),
    tasks: Optional[int] = typer.Option(None, "--tasks", help="Zoo tasks in the family."),
    heldout: Optional[int] = typer.Option(None, "--heldout", help="Held-out tasks in the family."),
    seeds: Optional[int] = typer.Option(None, "--seeds", help="Members per task (default: 1)."),
    init: Optional[str] = typer.Option(None, "--init", help=INIT_HELP),
    pretrain_steps: Optional[int] = typer.Option(None, "--pretrain-steps", help="Steps of the shared base (default: 600)."),
    heldout_models: Optional[bool] = typer.Option(None, "--heldout-models/--no-heldout-models", help="Also train references on held-out tasks."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps per member."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate."),
    optimizer: Optional[str] = typer.Option(None, "--optimizer", help="adam or sgd."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Examples per step and member."),
    snapshot_every: Optional[int] = typer.Option(None, "--snapshot-every", help="Keep weights every k steps (0: none)."),
    hidden: Optional[str] = typer.Option(None, "--hidden", help="MLP hidden widths, comma separated: 32,32."),
    chunk: Optional[int] = typer.Option(None, "--chunk", help="Members per vmap batch and shard (default: 32)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Worker processes, one torch thread each; 0 trains in this process (default: 2)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Base seed (default: 0)."),
    backend: Optional[str] = typer.Option(None, "--backend", help="local (default) or ray: train the chunks as Ray tasks."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (host:6379, ray://host:10001, auto); unset: a local Ray."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Train a zoo (or resume an interrupted build): every task x seed, in batched chunks."""
    recipe = recipe_with(config, hidden, out=out, family=family, arch=arch, tasks=tasks, heldout=heldout, seeds=seeds,
                         init=init, pretrain_steps=pretrain_steps, include_heldout=heldout_models, chunk=chunk,
                         workers=workers, seed=seed, backend=backend, address=address)
    train = {"steps": steps, "lr": lr, "optimizer": optimizer, "batch_size": batch_size, "snapshot_every": snapshot_every}
    # e.g. `zoo build --family chatterbot --arch lora-minilm family.inputs=hidden family.hidden_layer=4` is what
    # `lora-zoo build` runs: the architecture's own trainer through this one builder
    recipe.train = {**recipe.train, **{k: v for k, v in train.items() if v is not None}}
    zoo = build_from_recipe(resolve_recipe(recipe, overrides or []), progress=not quiet)
    typer.echo(_summary_line(zoo))


@zoo_app.command("ls")
def ls_cmd(paths: list[Path] = typer.Argument(..., help="Zoo directories.")) -> None:
    """One line per zoo: path, architecture, family, members, mean test accuracy."""
    from weightspace.zoo.store import Zoo

    failed = False
    for path in paths:
        try:
            typer.echo(_summary_line(Zoo.open(path)))
        except WeightspaceError as e:
            typer.echo(f"error: {e}", err=True)
            failed = True
    if failed:
        raise SystemExit(2)


@zoo_app.command("show")
def show_cmd(path: Path = typer.Argument(..., help="Zoo directory.")) -> None:
    """A summary table: architecture, parameters, family, splits, accuracy, time, card command."""
    from rich.console import Console
    from rich.table import Table

    from weightspace.zoo.store import Zoo

    zoo = Zoo.open(path)
    table = Table(title=str(path), show_header=False)
    table.add_row("architecture", zoo.arch.describe())
    table.add_row("parameters", f"{zoo.spec.numel:,} in {len(zoo.spec.tensors)} tensors")
    table.add_row("family", f"{zoo.family.get('name')} {json.dumps(zoo.family.get('config', {}), sort_keys=True)}")
    everything = zoo.records(final_only=False, split=None)
    for split in sorted({r.split for r in everything}):
        final = [r for r in everything if r.split == split and r.final]
        tasks = len({r.task_id for r in final})
        table.add_row(f"{split} members", f"{len(final)} on {tasks} tasks, {sum(not r.final for r in everything if r.split == split)} snapshots")
        accs = [r.metrics["test_acc"] for r in final if "test_acc" in r.metrics]
        if accs:
            table.add_row(f"{split} test acc", f"mean {statistics.fmean(accs):.3f}  min {min(accs):.3f}  max {max(accs):.3f}")
        table.add_row(f"{split} train time", f"{sum(r.train_seconds for r in final):.1f} s")
    inits = sorted({r.init.split(':')[0] + (':' + r.init.split(':')[1][:12] if ':' in r.init else '') for r in everything})
    table.add_row("init", ", ".join(inits) or "-")
    table.add_row("shards", str(len(zoo.manifest.shards())))
    table.add_row("command", str(zoo.card.get("command", "-")))
    for i, again in enumerate(zoo.card.get("resumed", []), start=1):
        table.add_row(f"resumed ({i})", str(again))
    table.add_row("created", str(zoo.card.get("created", "-")))
    Console(soft_wrap=True).print(table)


@zoo_app.command("check")
def check_cmd(path: Path = typer.Argument(..., help="Zoo directory.")) -> None:
    """Verify shard hashes, member checksums and the manifest; exit 1 naming what is corrupt."""
    from weightspace.zoo.store import Zoo

    zoo = Zoo.open(path)
    problems = zoo.check()
    if not problems:
        n = len(zoo.records(final_only=False, split=None))
        typer.echo(f"{path} is healthy: {n} stored weight sets in {len(zoo.manifest.shards())} shards, all checksums match.")
        return
    typer.echo(f"{path} has {len(problems)} problem{'s' if len(problems) > 1 else ''}:")
    for p in problems:
        typer.echo(f"- {p}")
    raise SystemExit(1)  # a plain exit code: cli.main returns it unchanged


@zoo_app.command("import")
def import_cmd(
    zoo_dir: Path = typer.Argument(..., metavar="ZOO", help="An existing zoo directory."),
    files: list[Path] = typer.Argument(..., help="Checkpoints: .safetensors, .npz (numpy/flax), legacy .pt/.pth/.bin, or adapter folders."),
    task: Optional[str] = typer.Option(None, "--task", help="Task id of every file (unless the sidecar names one)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Training seed of the files, if known."),
    metrics_json: Optional[str] = typer.Option(None, "--metrics-json", help='Metrics of every file: JSON text or a .json file, e.g. {"test_acc": 0.91}.'),
    sidecar: Optional[Path] = typer.Option(None, "--sidecar", help="CSV/JSON with columns file, task_id, seed, test_acc, ..."),
    rules: Optional[str] = typer.Option(None, "--map", metavar="RULES",
                                        help="Key renames/transposes for other frameworks' checkpoints: a YAML/JSON file "
                                             "or inline text with rename: {regex: replacement}, transpose: [regex], drop: [regex] "
                                             "(example: configs/import-flax-mlp.yaml)."),
) -> None:
    """Validate checkpoints against the zoo's weight space and add them all (or none)."""
    from weightspace.card import current_command
    from weightspace.zoo.import_map import load_import_map
    from weightspace.zoo.importer import import_checkpoints
    from weightspace.zoo.store import Zoo

    metrics = _metrics_arg(metrics_json) if metrics_json is not None else None
    import_map = load_import_map(rules) if rules is not None else None
    with Zoo.open(zoo_dir) as zoo:
        ids = import_checkpoints(zoo, files, task_id=task, metrics=metrics, seed=seed, sidecar=sidecar,
                                 import_map=import_map)
        log = {"command": current_command(), "members": len(ids)}
        if import_map is not None:
            log["map"] = import_map.to_dict()
        zoo.update_card({**zoo.card, "imports": [*zoo.card.get("imports", []), log]})
    typer.echo(f"imported {len(ids)} member{'s' if len(ids) != 1 else ''} into {zoo_dir} (ids {ids[0]}..{ids[-1]}).")


def _metrics_arg(text: str) -> dict[str, float]:
    source = Path(text).read_text() if text.endswith(".json") and Path(text).is_file() else text
    try:
        data = json.loads(source)
    except json.JSONDecodeError:
        raise WeightspaceError(f"--metrics-json {text!r} is neither JSON nor a .json file.") from None
    if not isinstance(data, dict) or not all(isinstance(v, (int, float)) for v in data.values()):
        raise WeightspaceError('--metrics-json must map metric names to numbers, e.g. {"test_acc": 0.91}.')
    return {k: float(v) for k, v in data.items()}


def _summary_line(zoo) -> str:
    records = zoo.records()
    accs = [r.metrics["test_acc"] for r in records if "test_acc" in r.metrics]
    acc = f"test_acc {statistics.fmean(accs):.3f}" if accs else "test_acc -"
    return (f"{zoo.path}  {zoo.arch.describe()} ({zoo.spec.numel:,} params)  {zoo.family.get('name')}  "
            f"{len(records)} members  {acc}")
