"""Align a whole zoo: every member permuted onto a common reference, so that "unit j of layer i"
means the same thing across members and averages, PCA and generators see one basin.

The reference is either given or the zoo's barycentre. Barycentre: start from member 0, align all
members to it, take the mean of the aligned members as the new reference, align again (warm
started from the previous permutations), and repeat ``iters`` times or until nothing changes.
Members are processed in chunks so the per-member similarity matrices stay within memory.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable, Mapping

import torch

from weightspace.errors import WeightspaceError
from weightspace.io import atomic_dir, save_safetensors
from weightspace.nets.base import Architecture
from weightspace.spec import WeightSpec
from weightspace.symmetry.activation_matching import activation_matching
from weightspace.symmetry.permute import apply_permutation
from weightspace.symmetry.weight_matching import match_weights

Progress = Callable[[int, int], None]  # (members done, members in total) over all passes

# Upper bound on similarity entries held per chunk (floats): 2**24 is 64 MiB per matrix stack.
_CHUNK_ENTRIES = 2**24

METHODS = ("weight", "activation")


def _chunk_size(spec: WeightSpec) -> int:
    biggest = max((g.size for g in spec.groups), default=1)
    return max(1, _CHUNK_ENTRIES // (biggest * biggest))


def _member(stacked: Mapping[str, torch.Tensor], i: int) -> dict[str, torch.Tensor]:
    return {n: v[i] for n, v in stacked.items()}


def _align_pass(spec, stacked, reference, init, *, method, arch, x, seed, report) -> dict[str, torch.Tensor]:
    """Permutations (M, size) aligning every member to ``reference``."""
    m = stacked[spec.names[0]].shape[0]
    if method == "activation":
        rows = []
        for i in range(m):
            rows.append(activation_matching(arch, reference, _member(stacked, i), x))
            report(1)
        return {g.name: torch.stack([r[g.name] for r in rows]) for g in spec.groups}
    step = _chunk_size(spec)
    parts = []
    for start in range(0, m, step):
        sl = slice(start, min(m, start + step))
        chunk = {n: v[sl] for n, v in stacked.items()}
        warm = {g: p[sl] for g, p in init.items()} if init is not None else None
        parts.append(match_weights(spec, reference, chunk, init=warm, seed=seed))
        report(sl.stop - sl.start)
    return {g.name: torch.cat([p[g.name] for p in parts]) for g in spec.groups}


def align_zoo(spec: WeightSpec, stacked: Mapping[str, torch.Tensor], reference: Mapping[str, torch.Tensor] | None = None,
              iters: int = 3, seed: int = 0, progress: Progress | None = None, *, method: str = "weight",
              arch: Architecture | None = None, x: torch.Tensor | None = None
              ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Aligned stack and the per-member permutations ``{group: (M, size)}`` that produced it.

    ``reference=None`` aligns to the barycentre (see the module docstring); ``iters`` is the number
    of re-alignments to the recomputed mean after the first pass. ``method="activation"`` needs
    ``arch`` and probe inputs ``x``.
    """
    spec.validate(stacked, stacked=True, where="zoo weights")
    if method not in METHODS:
        raise WeightspaceError(f"unknown alignment method {method!r}; choose one of {', '.join(METHODS)}.")
    if method == "activation" and (arch is None or x is None):
        raise WeightspaceError("activation alignment needs the architecture and probe inputs x.")
    if iters < 0:
        raise WeightspaceError(f"iters must be >= 0, got {iters}.")
    m = stacked[spec.names[0]].shape[0]
    passes = 1 if reference is not None else 1 + iters
    done = 0

    def report(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, m * passes)

    kw = dict(method=method, arch=arch, x=x, seed=seed, report=report)
    if reference is not None:
        spec.validate(reference, where="reference weights")
        perms = _align_pass(spec, stacked, reference, None, **kw)
        return apply_permutation(stacked, spec, perms, stacked=True), perms

    perms = _align_pass(spec, stacked, _member(stacked, 0), None, **kw)
    for it in range(iters):
        aligned = apply_permutation(stacked, spec, perms, stacked=True)
        mean = {n: v.mean(0) for n, v in aligned.items()}
        new = _align_pass(spec, stacked, mean, perms, **kw)
        if all(torch.equal(new[g], perms[g]) for g in perms):
            done = m * passes - m  # converged: the remaining passes would change nothing
            report(m)
            break
        perms = new
    return apply_permutation(stacked, spec, perms, stacked=True), perms


# ----- stored zoos ---------------------------------------------------------------------------

REFERENCE_HELP = "barycentre (mean of the aligned final zoo members) or member:ID"


def _probe_inputs(zoo, n: int) -> torch.Tensor:
    from weightspace.tasks import family_from_dict  # the tasks stage rebuilds a family from its dict

    x = family_from_dict(zoo.family).pretrain_task().x_train
    return x[:n]


def _resolve_reference(zoo, reference: str, *, method, arch, x, iters, seed, progress):
    """(reference weights, description) for ``--reference``."""
    if reference == "barycentre":
        core = [r.member_id for r in zoo.records(final_only=True, split="zoo")]
        if not core:
            raise WeightspaceError(f"{zoo.path} has no final zoo members to average; use --reference member:ID.")
        # Held-out reference models and training snapshots never shape the barycentre.
        aligned, _ = align_zoo(zoo.spec, zoo.load(core), None, iters, seed, progress, method=method, arch=arch, x=x)
        return {n: v.mean(0) for n, v in aligned.items()}, f"barycentre of {len(core)} final zoo members"
    if reference.startswith("member:") and reference[7:].isdigit():
        mid = int(reference[7:])
        if mid not in {r.member_id for r in zoo.records(final_only=False, split=None)}:
            raise WeightspaceError(f"--reference {reference}: member {mid} is not in {zoo.path}; list members with `weightspace zoo info`.")
        return {n: v[0] for n, v in zoo.load([mid]).items()}, f"member {mid}"
    raise WeightspaceError(f"--reference {reference!r} is not understood; use {REFERENCE_HELP}.")


def align_stored_zoo(src, out, *, reference: str = "barycentre", method: str = "weight", iters: int = 3,
                     seed: int = 0, probe: int = 2048, chunk: int = 1024, card: dict | None = None,
                     progress: Progress | None = None) -> dict:
    """Write an aligned copy of the zoo at ``src`` to the new directory ``out``; returns a summary.

    Every member (final, snapshot, held-out) is permuted onto one reference. The output zoo has
    the same architecture, family and records; ``perms.safetensors`` holds, per group, the
    ``(M, size)`` permutations (row i belongs to output member ``member_id[i]``, which was
    ``source_member_id[i]``) and the reference weights as ``reference.<tensor>``. The directory is
    built under a temporary name and renamed into place only when complete.
    """
    from weightspace.zoo.store import MemberRecord, Zoo  # lazily: the zoo stage may import symmetry

    src, out = Path(src), Path(out)
    if out.exists():
        raise WeightspaceError(f"{out} already exists; choose a new --out directory for the aligned zoo.")
    zoo = Zoo.open_verified(src)
    spec = zoo.spec
    x = _probe_inputs(zoo, probe) if method == "activation" else None
    ref, described = _resolve_reference(zoo, reference, method=method, arch=zoo.arch, x=x, iters=iters,
                                        seed=seed, progress=progress)
    records = zoo.records(final_only=False, split=None)
    try:
        with atomic_dir(out) as tmp:
            card = {**(card or {}), "alignment": {"reference": described, "method": method, "iters": iters,
                                                  "seed": seed, "source": str(src), "source_card": zoo.card}}
            target = Zoo.create(tmp, zoo.arch, zoo.family, card)
            perms_rows, source_ids, new_ids = [], [], []
            for start in range(0, len(records), chunk):
                part = records[start:start + chunk]
                ids = [r.member_id for r in part]
                aligned, perms = align_zoo(spec, zoo.load(ids), ref, seed=seed, method=method, arch=zoo.arch, x=x)
                fresh = [MemberRecord(**{**r.__dict__, "member_id": None, "checksum": None}) for r in part]
                new_ids += target.add(fresh, aligned)
                perms_rows.append(perms)
                source_ids += ids
                if progress is not None:
                    progress(start + len(part), len(records))
            tensors = {g.name: torch.cat([p[g.name] for p in perms_rows]) for g in spec.groups}
            tensors["member_id"] = torch.tensor(new_ids, dtype=torch.int64)
            tensors["source_member_id"] = torch.tensor(source_ids, dtype=torch.int64)
            tensors.update({f"reference.{n}": v.float() for n, v in ref.items()})
            save_safetensors(tmp / "perms.safetensors", tensors,
                             {"reference": described, "method": method, "groups": json.dumps([g.name for g in spec.groups])})
            if (src / "base.safetensors").is_file():  # shared-init start weights, kept as they were
                shutil.copy2(src / "base.safetensors", tmp / "base.safetensors")
            target.close()
    finally:
        zoo.close()
    return {"members": len(records), "reference": described, "method": method, "out": str(out)}
