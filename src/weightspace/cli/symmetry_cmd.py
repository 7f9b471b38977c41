"""`weightspace align`: permute hidden units onto a reference, for a whole zoo or for two checkpoints.

- ``weightspace align ZOO --out ZOO_ALIGNED``: every member of a zoo onto one reference.
- ``weightspace align A.safetensors B.safetensors --out B_aligned.safetensors``: B onto A, no zoo
  needed; prints the matching objective and L2 distance before and after and, given data
  (``--family F --task ID`` or ``--data FILE``), the barriers along the straight line A -> B.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import torch
import typer

from weightspace.card import make_card
from weightspace.cli.app import app, comma_ints, console, key_values
from weightspace.errors import WeightspaceError
from weightspace.progress_lines import progress_bar
from weightspace.symmetry.align_zoo import METHODS, REFERENCE_HELP, align_stored_zoo

_PAIR_ONLY = ("--arch", "--hidden", "--arch-option", "--family", "--family-option", "--task", "--data")


@app.command("align")
def align(
    sources: list[Path] = typer.Argument(..., metavar="ZOO | A.safetensors B.safetensors",
                                         help="One zoo directory (zoo mode), or two checkpoint files: B is aligned onto A (pair mode)."),
    out: Path = typer.Option(..., "--out", help="Zoo mode: new directory for the aligned zoo (must not exist). "
                             "Pair mode: the aligned copy of B, a .safetensors file (written atomically)."),
    reference: Optional[str] = typer.Option(None, "--reference", help=f"Zoo mode: alignment target, {REFERENCE_HELP} (default: barycentre)."),
    method: str = typer.Option("weight", "--method", help="weight: Git Re-Basin weight matching; activation: "
                               "correlation of hidden activations on the family's (pair mode: the data's) inputs."),
    iters: Optional[int] = typer.Option(None, "--iters", help="Zoo mode: barycentre refinements, re-align to the recomputed mean this many times (default: 3)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random group order in weight matching."),
    probe: int = typer.Option(2048, "--probe", help="Inputs used by activation matching."),
    arch: Optional[str] = typer.Option(None, "--arch", help="Pair mode: architecture of files without an arch record in their "
                                       "metadata; mlp reads its widths from the tensors, cnn needs --family."),
    hidden: Optional[str] = typer.Option(None, "--hidden", help="Pair mode: MLP hidden widths, comma separated (default: read from the tensors)."),
    arch_options: Optional[list[str]] = typer.Option(None, "--arch-option", help="Pair mode: architecture option key=value, repeatable (channels=[16,32])."),
    family: Optional[str] = typer.Option(None, "--family", help="Pair mode: task family giving the input shape, classes and --task data."),
    family_options: Optional[list[str]] = typer.Option(None, "--family-option", help="Pair mode: family option key=value, repeatable (n_tasks=8)."),
    task: Optional[str] = typer.Option(None, "--task", help="Pair mode: task of --family whose test set measures the barriers (its training inputs probe activation matching)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Pair mode: .safetensors/.npz/.json file with inputs x and labels y, instead of --task."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Align a zoo onto a common reference, or one checkpoint B onto another A (two .safetensors files).

    Zoo mode: weightspace align ZOO --out ZOO2.
    Pair mode: weightspace align A.safetensors B.safetensors --out B_aligned.safetensors [--family F --task ID | --data FILE].
    """
    if method not in METHODS:
        raise WeightspaceError(f"--method {method!r} is not known; choose one of {', '.join(METHODS)}.")
    if probe < 1 or (iters is not None and iters < 0):
        raise WeightspaceError("--iters must be >= 0 and --probe >= 1.")
    files = [p for p in sources if p.suffix == ".safetensors"]
    if len(sources) == 2 and len(files) == 2:
        if reference is not None or iters is not None:
            raise WeightspaceError("--reference and --iters belong to zoo mode; with two files, B is aligned onto A.")
        _align_pair_cmd(sources[0], sources[1], out, method=method, seed=seed, probe=probe, arch=arch, hidden=hidden,
                        arch_options=arch_options or [], family=family, family_options=family_options or [],
                        task=task, data=data)
        return
    if len(sources) != 1 or files:
        raise WeightspaceError("align takes one zoo directory (weightspace align ZOO --out ZOO2) or two .safetensors "
                               "files (weightspace align A.safetensors B.safetensors --out B_aligned.safetensors), "
                               f"not {' '.join(map(str, sources))}.")
    given = [name for name, value in zip(_PAIR_ONLY, (arch, hidden, arch_options, family, family_options, task, data)) if value]
    if given:
        raise WeightspaceError(f"{given[0]} belongs to pair mode (two .safetensors files); a zoo knows its architecture and family.")
    zoo = sources[0]
    reference = "barycentre" if reference is None else reference
    iters = 3 if iters is None else iters
    from weightspace.io import check_output_dir

    check_output_dir(out, "--out directory")
    torch.set_num_threads(1)  # see DESIGN.md: one thread per process is the fast setting here
    config = {"zoo": str(zoo), "out": str(out), "reference": reference, "method": method,
              "iters": iters, "seed": seed, "probe": probe}
    card = make_card("aligned-zoo", config, seed=seed)
    with progress_bar("aligning", quiet, console=console) as bar:
        summary = align_stored_zoo(zoo, out, reference=reference, method=method, iters=iters, seed=seed,
                                   probe=probe, card=card, progress=bar)
    typer.echo(f"aligned {summary['members']} members to the {summary['reference']} ({method} matching) -> {out}")


def _align_pair_cmd(path_a: Path, path_b: Path, out: Path, *, method: str, seed: int, probe: int, arch: Optional[str],
                    hidden: Optional[str], arch_options: list[str], family: Optional[str], family_options: list[str],
                    task: Optional[str], data: Optional[Path]) -> None:
    from weightspace.card import current_command
    from weightspace.io import check_output_file, load_safetensors, save_safetensors
    from weightspace.geometry.align_pair import align_pair, pair_arch

    if out.suffix != ".safetensors":
        raise WeightspaceError(f"--out {out} must end in .safetensors in pair mode (the aligned copy of {path_b}).")
    if task is not None and data is not None:
        raise WeightspaceError("give --task (with --family) or --data, not both.")
    if task is not None and family is None:
        raise WeightspaceError(f"--task {task} needs --family F to say which family it belongs to.")
    if family_options and family is None:
        raise WeightspaceError("--family-option needs --family.")
    check_output_file(out, "--out file")
    options = key_values(arch_options, "--arch-option")
    if hidden is not None:
        options["hidden"] = comma_ints(hidden, "--hidden", "widths", "32,32")
    if options and arch is None:
        raise WeightspaceError("--hidden and --arch-option describe the architecture given with --arch.")
    loaded = []
    for p in (path_a, path_b):
        tensors, meta = load_safetensors(p)
        members = meta.get("members", "1")
        if members != "1":
            try:
                count = len(json.loads(members)) if members.startswith("[") else members
            except (json.JSONDecodeError, TypeError):
                count = "several"
            raise WeightspaceError(f"{p} holds {count} stacked models; align one model per file "
                                   "(weightspace generate -n 1 writes one).")
        loaded.append((str(p), tensors, meta))
    torch.set_num_threads(1)
    fam = None
    if family is not None:
        from weightspace.tasks import make_family

        fam = make_family(family, **key_values(family_options, "--family-option"))
    shape = tuple(fam.input_shape) if fam is not None else None
    classes = fam.n_classes if fam is not None else None
    net, arch_source = pair_arch(loaded, arch, shape, classes, options)
    x_probe = eval_data = None
    data_text = ""
    if task is not None:
        t = fam.task(task)
        x_probe, eval_data = t.x_train[:probe], (t.x_test, t.y_test)
        data_text = f"task {task} (test set, {len(t.y_test)} examples)"
    elif data is not None:
        from weightspace.generate.support_file import read_support_file

        x, y = read_support_file(data, net.input_shape, net.n_classes)
        x_probe, eval_data = x[:probe].float(), (x.float(), y.long())
        data_text = f"{data} ({len(y)} examples)"
    if method == "activation" and x_probe is None:
        raise WeightspaceError("--method activation needs inputs; give --family F --task ID or --data FILE.")
    a, b = (loaded[0][1], loaded[1][1])
    net.spec().validate(a, where=str(path_a))
    net.spec().validate(b, where=str(path_b))
    result = align_pair(net, a, b, method=method, x=x_probe, eval_data=eval_data, seed=seed)
    meta = {**loaded[1][2], "format": "weightspace-aligned", "arch": json.dumps(net.to_dict()), "members": "1",
            "aligned_to": str(path_a), "source": str(path_b), "method": method,
            "perms": json.dumps({g: p.tolist() for g, p in result.perms.items()}),
            "alignment": json.dumps(result.summary()), "command": current_command()}
    save_safetensors(out, result.aligned, meta)
    typer.echo(f"aligned {path_b} onto {path_a} ({method} matching; architecture from {arch_source})")
    typer.echo(f"{result.objective_name}: {result.objective_before:.4g} before, {result.objective_after:.4g} after")
    typer.echo(f"L2 distance ||A - B||: {result.distance_before:.4g} before, {result.distance_after:.4g} after")
    if result.barriers:
        bb, ba = result.barriers["before"], result.barriers["after"]
        typer.echo(f"barrier on the linear path A -> B, {data_text}: accuracy {bb['acc']:.4f} before, {ba['acc']:.4f} after; "
                   f"loss {bb['loss']:.4f} before, {ba['loss']:.4f} after (midpoint accuracy {bb['acc_mid']:.4f} -> {ba['acc_mid']:.4f})")
    typer.echo(f"wrote {out} (B with its hidden units permuted: the same function as {path_b})")
