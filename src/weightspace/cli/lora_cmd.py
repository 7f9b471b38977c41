"""`weightspace lora-zoo ...` and `weightspace export-peft`: LoRA zoos on the frozen MiniLM and
their export as PEFT adapter folders.

    weightspace lora-zoo tasks                         # the chatterbot family: tasks per kind and split
    weightspace lora-zoo build --out runs/lora-zoo     # one LoRA per task (and held-out references)
    weightspace export-peft runs/lora-zoo --task pooled:ai-vs-emotion --out adapters/ai-emotion

``lora-zoo build`` is an alias with LoRA-friendly defaults (hidden inputs, chunks of 4, held-out
references) for the one zoo builder, ``zoo build --family chatterbot --arch lora-minilm``: same
plan, resume checks, early dataset check and local or Ray workers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from weightspace.cli.app import app, comma_ints
from weightspace.errors import WeightspaceError

lora_app = typer.Typer(help="LoRA zoos: adapters of the frozen all-MiniLM-L6-v2 on text tasks.", no_args_is_help=True)
app.add_typer(lora_app, name="lora-zoo")


def _json_option(text: Optional[str], what: str) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise WeightspaceError(f"{what} must be a JSON object such as '{{\"heldout_topics\": [\"food\"]}}'.") from None
    if not isinstance(value, dict):
        raise WeightspaceError(f"{what} must be a JSON object of option: value.")
    return value


def _family(options: dict):
    from weightspace.tasks import make_family

    return make_family("chatterbot", **options)  # a wrong option is one sentence naming the family


@lora_app.command("tasks")
def tasks_cmd(family_json: Optional[str] = typer.Option(None, "--family", help="Family options as JSON, e.g. '{\"min_per_class\": 80}'."),
              list_ids: bool = typer.Option(False, "--list", help="Print every task id with its split and description.")) -> None:
    """Show the chatterbot text family: usable languages, tasks per kind and split."""
    family = _family(_json_option(family_json, "--family"))
    skipped = ", ".join(f"{l} ({family.unk_rates[l]:.0%} [UNK])" for l in family.skipped_languages)
    typer.echo(f"languages: {len(family.languages)} usable; skipped: {skipped or 'none'}")
    typer.echo(f"held out: topics {', '.join(family.heldout_topics) or '-'}; languages {', '.join(family.heldout_languages) or '-'}")
    for kind, row in family.counts().items():
        typer.echo(f"{kind:7s} zoo {row['zoo']:4d}  held-out {row['heldout']:4d}")
    typer.echo(f"total   zoo {len(family.zoo_task_ids()):4d}  held-out {len(family.heldout_task_ids()):4d}")
    if list_ids:
        for split, ids in (("zoo", family.zoo_task_ids()), ("heldout", family.heldout_task_ids())):
            for task_id in ids:
                typer.echo(f"{split}\t{task_id}\t{family.description(task_id)}")


@lora_app.command("build")
def build_cmd(
    out: Path = typer.Option(..., "--out", help="Zoo directory (a rerun with the same settings resumes it)."),
    rank: int = typer.Option(4, "--rank", min=1, help="LoRA rank r."),
    alpha: float = typer.Option(8.0, "--alpha", help="LoRA alpha (ΔW = alpha/r · B A)."),
    layers: str = typer.Option("4,5", "--layers", help="Adapted MiniLM layers, comma separated (0-5)."),
    modules: str = typer.Option("query,value", "--modules", help="Adapted Linears: query,key,value,attn_out,ffn_in,ffn_out."),
    steps: int = typer.Option(100, "--steps", min=0, help="Training steps per LoRA."),
    lr: float = typer.Option(3e-3, "--lr", min=0, help="Learning rate of A and B."),
    head_lr: float = typer.Option(3e-2, "--head-lr", min=0, help="Learning rate of the head."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Sentences per step."),
    seeds: int = typer.Option(1, "--seeds", min=1, help="LoRAs per task, each from its own seed."),
    heldout_models: bool = typer.Option(True, "--heldout-models/--no-heldout-models", help="Also train reference LoRAs on held-out tasks."),
    max_tasks: int = typer.Option(0, "--max-tasks", min=0, help="Only N zoo tasks spread over the family and the first N held-out tasks (0: all)."),
    family_json: Optional[str] = typer.Option(None, "--family", help="Family options as JSON."),
    workers: int = typer.Option(2, "--workers", min=0, help="Worker processes, one torch thread each; 0 trains here."),
    chunk: int = typer.Option(4, "--chunk", min=1, help="LoRAs per job and per stored shard."),
    seed: int = typer.Option(0, "--seed", help="Base seed; member seeds derive from it and the task."),
    backend: str = typer.Option("local", "--backend", help="local (worker processes here) or ray (one Ray task per chunk)."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (host:6379, ray://host:10001, auto)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Train one LoRA per task of the chatterbot family into a zoo (resumable): `zoo build --arch lora-minilm`."""
    from weightspace.evaluate.sweep import evenly_spaced
    from weightspace.nets.lora_minilm import LoRAMiniLM
    from weightspace.nets.lora_minilm.train import LoRATrainConfig
    from weightspace.zoo.build import build_zoo

    layer_ids = tuple(comma_ints(layers, "--layers", "layer numbers", "4,5"))
    # Hidden inputs by default: the frozen layers below the adapters run once per sentence, not
    # once per member and step, in every later stage (generator training, evaluation).
    options = {"inputs": "hidden", "hidden_layer": min(layer_ids, default=0), **_json_option(family_json, "--family")}
    family = _family(options)
    arch = LoRAMiniLM(n_classes=family.n_classes, layers=layer_ids, rank=rank, alpha=alpha,
                      modules=tuple(m.strip() for m in modules.split(",") if m.strip()), max_length=family.max_length,
                      inputs=family.inputs)
    cfg = LoRATrainConfig(steps=steps, lr=lr, head_lr=head_lr, batch_size=batch_size)
    task_ids = None
    if max_tasks > 0:
        zoo_ids = family.zoo_task_ids()  # grouped by kind: evenly spaced ids sample every kind
        task_ids = evenly_spaced(zoo_ids, min(max_tasks, len(zoo_ids))) + (family.heldout_task_ids()[:max_tasks] if heldout_models else [])
    zoo = build_zoo(out, family, arch, cfg, seeds_per_task=seeds, include_heldout=heldout_models, task_ids=task_ids,
                    chunk_size=chunk, workers=workers, seed=seed, progress=not quiet, backend=backend, address=address)
    recs = zoo.records(split=None)
    accs = [r.metrics["test_acc"] for r in recs if "test_acc" in r.metrics]
    mean = f", mean test acc {sum(accs) / len(accs):.3f}" if accs else ""
    typer.echo(f"{out}: {len(recs)} LoRA sets ({arch.spec().numel:,} numbers each){mean}")


@app.command("export-peft")
def export_peft_cmd(
    zoo_dir: Path = typer.Argument(..., help="A LoRA zoo (from `weightspace lora-zoo build`)."),
    out: Path = typer.Option(..., "--out", help="Adapter folder to write."),
    member: Optional[int] = typer.Option(None, "--member", help="Member id in the zoo."),
    task: Optional[str] = typer.Option(None, "--task", help="Task id: its first final member (zoo or held-out split)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="A safetensors file of one LoRA set in the zoo's spec names (e.g. generated)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing adapter folder."),
) -> None:
    """Write one LoRA set as a PEFT adapter folder (adapter_config.json + adapter_model.safetensors)."""
    from weightspace.card import make_card
    from weightspace.export.peft import export_peft
    from weightspace.io import load_safetensors
    from weightspace.nets.lora_minilm import LoRAMiniLM
    from weightspace.zoo.store import Zoo

    zoo = Zoo.open_verified(zoo_dir)
    if not isinstance(zoo.arch, LoRAMiniLM):
        raise WeightspaceError(f"{zoo_dir} holds {zoo.arch.name} networks, not LoRA adapters; export-peft needs a LoRA zoo.")
    if sum(x is not None for x in (member, task, weights)) != 1:
        raise WeightspaceError("name exactly one of --member ID, --task TASK_ID or --weights FILE.")
    source: dict = {"zoo": str(zoo_dir)}
    if weights is not None:
        params, _ = load_safetensors(weights)
        if all(t.ndim == len(zoo.spec.shapes[n]) + 1 and t.shape[0] == 1 for n, t in params.items() if n in zoo.spec.shapes):
            params = {k: v[0] for k, v in params.items()}  # a stack of one member
        source["weights"] = str(weights)
    else:
        recs = zoo.records(split=None)
        chosen = [r for r in recs if (r.member_id == member if member is not None else r.task_id == task)]
        if not chosen:
            what = f"member {member}" if member is not None else f"task {task!r}"
            raise WeightspaceError(f"{zoo_dir} has no final {what}; `weightspace zoo show {zoo_dir}` lists what it holds.")
        rec = chosen[0]
        stacked = zoo.load([rec.member_id], split=None)
        params = {k: v[0] for k, v in stacked.items()}
        source.update(member_id=rec.member_id, task_id=rec.task_id, metrics=rec.metrics)
    path = export_peft(params, out, zoo.arch, card=make_card("peft-adapter", {"source": source}), overwrite=overwrite)
    typer.echo(f"wrote PEFT adapter {path} (load with weightspace.export.peft.load_peft_classifier)")
