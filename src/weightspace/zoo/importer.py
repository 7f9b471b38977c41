"""Import existing checkpoints into a zoo, validated against its WeightSpec, all or nothing.

Accepted inputs:
- ``*.safetensors`` files (pickle archives renamed to .safetensors are refused, never unpickled);
- folders holding ``adapter_model.safetensors`` + ``adapter_config.json`` (PEFT layout) or
  ``model.safetensors``;
- legacy PyTorch files (``.pt .pth .bin .ckpt``), read only through
  ``torch.load(weights_only=True)``, which refuses arbitrary Python objects; a note says so;
- numpy ``.npz`` archives (e.g. a flax/JAX checkpoint flattened to ``Dense_0/kernel`` names),
  read with ``numpy.load(allow_pickle=False)``, so object arrays are refused, never unpickled.

Tensor names are mapped before validation by stripping the wrapper prefixes
``base_model.model.`` (PEFT) and ``module.`` (DataParallel); a legacy file may nest its tensors
under ``state_dict``, ``model_state_dict`` or ``model``. Every file must then name exactly the
spec's tensors with the spec's shapes and finite values. Checkpoints from other frameworks
name and lay out their tensors differently: an import map (``import_map``, see
``weightspace.zoo.import_map``) renames, drops and transposes tensors after the prefixes are
stripped and before validation.

Task and metrics per file come from the command line (``task_id``, ``metrics``, ``seed``) or a
sidecar CSV/JSON with columns ``file, task_id, seed, step, test_acc, ...``; sidecar values win.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from weightspace.errors import WeightspaceError
from weightspace.io import load_safetensors, read_json
from weightspace.spec import stack_members
from weightspace.zoo.import_map import ImportMap, apply_import_map
from weightspace.zoo.manifest import MemberRecord, member_key
from weightspace.zoo.store import Zoo, member_checksum

LEGACY_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
NAME_PREFIXES = ("base_model.model.", "module.")
NESTED_KEYS = ("state_dict", "model_state_dict", "model")
_SIDECAR_TEXT = ("file", "task_id")
_SIDECAR_INT = ("seed", "step")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def import_checkpoints(zoo: Zoo, files: list[str | Path], task_id: str | None = None,
                       metrics: dict[str, float] | None = None, seed: int | None = None,
                       sidecar: str | Path | None = None, note: Callable[[str], None] = _stderr,
                       import_map: ImportMap | None = None) -> list[int]:
    """Validate every file, then add them all to ``zoo`` as one shard; returns the new member ids.

    ``import_map`` renames/transposes each file's tensors into the zoo's names and layout first.
    """
    if not files:
        raise WeightspaceError("no checkpoint files were given to import.")
    rows = read_sidecar(sidecar) if sidecar is not None else {}
    descriptors = _Descriptors(zoo.family)
    records, members, keys = [], [], set(zoo.keys())
    for file in map(Path, files):
        row = _sidecar_row(rows, file)
        task = row.get("task_id") or task_id
        if not task:
            raise WeightspaceError(f"no task is known for {file}; pass --task ID or list it in a --sidecar file.")
        split = _split_of(zoo.family, task, file)
        params = _mapped(load_checkpoint(file, note))
        if import_map is not None:
            params = apply_import_map(params, import_map, zoo.spec, where=str(file))
        params = {k: v.to(torch.float32) if torch.is_floating_point(v) else v for k, v in params.items()}
        zoo.spec.validate(params, where=str(file))
        step = int(row.get("step", 0))
        member_seed = row.get("seed", seed)
        checksum = member_checksum(params, zoo.spec)
        key = member_key(task, member_seed, step) if member_seed is not None else f"{task}|import={checksum[:12]}|step={step}"
        if key in keys:
            raise WeightspaceError(f"{file} would be member {key!r}, which the zoo (or this import) already holds.")
        keys.add(key)
        member_metrics = {**(metrics or {}), **{k: v for k, v in row.items() if k not in (*_SIDECAR_TEXT, *_SIDECAR_INT, "train_seconds")}}
        records.append(MemberRecord(key=key, task_id=task, descriptor=descriptors(task), seed=member_seed, init="imported",
                                    optimizer={}, metrics=member_metrics, train_seconds=float(row.get("train_seconds", 0.0)),
                                    step=step, final=True, split=split))
        members.append({n: params[n] for n in zoo.spec.names})
    stacked = stack_members(members, zoo.spec)
    return zoo.add(records, stacked)


def load_checkpoint(path: Path, note: Callable[[str], None] = _stderr) -> dict[str, torch.Tensor]:
    """Tensors of one checkpoint file or folder, without unpickling anything."""
    if path.is_dir():
        return _load_folder(path, note)
    if not path.is_file():
        raise WeightspaceError(f"{path} does not exist.")
    if path.suffix == ".safetensors":
        return load_safetensors(path)[0]
    if path.suffix in LEGACY_SUFFIXES:
        return _load_legacy(path, note)
    if path.suffix == ".npz":
        return _load_npz(path)
    raise WeightspaceError(
        f"{path} is not a checkpoint weightspace reads; give .safetensors files, .npz archives, legacy "
        f"{'/'.join(LEGACY_SUFFIXES)} files or folders holding adapter_model.safetensors."
    )


def _load_folder(path: Path, note: Callable[[str], None]) -> dict[str, torch.Tensor]:
    config = path / "adapter_config.json"
    for name in ("adapter_model.safetensors", "adapter_model.bin"):
        if (path / name).is_file():
            if not config.is_file():
                raise WeightspaceError(f"{path} holds {name} but no adapter_config.json; copy the adapter's config beside it.")
            read_json(config, f"{config} is not valid JSON.")
            return load_checkpoint(path / name, note)
    if (path / "model.safetensors").is_file():
        return load_safetensors(path / "model.safetensors")[0]
    raise WeightspaceError(f"{path} is a folder without adapter_model.safetensors or model.safetensors; nothing to import.")


def _load_legacy(path: Path, note: Callable[[str], None]) -> dict[str, torch.Tensor]:
    note(f"note: {path} is a legacy PyTorch file; reading it with torch.load(weights_only=True), which loads tensors "
         "and refuses arbitrary Python objects (convert it to safetensors to skip this).")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError for forbidden globals, RuntimeError for damaged archives
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightspaceError(
            f"{path} could not be loaded with torch.load(weights_only=True) ({first[:160]}); "
            "save its state dict of tensors, or better a safetensors file, and import that."
        ) from None
    if isinstance(obj, dict):
        for k in NESTED_KEYS:
            if isinstance(obj.get(k), dict):
                obj = obj[k]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightspaceError(f"{path} does not hold a flat dict of tensors (a state dict); save model.state_dict() and import that.")
    return dict(obj)


def _load_npz(path: Path) -> dict[str, torch.Tensor]:
    """Arrays of an .npz archive as tensors; object arrays (which would need unpickling) are refused."""
    out = {}
    try:
        with np.load(path, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise WeightspaceError(f"{path} holds a single array, not an .npz archive of named arrays.")
            for name in data.files:
                arr = data[name]
                if arr.dtype.kind not in "fiub":
                    raise WeightspaceError(f"{path}: array {name!r} has dtype {arr.dtype}, not numbers; "
                                           "save only numeric weight arrays.")
                out[name] = torch.from_numpy(np.ascontiguousarray(arr))
    except WeightspaceError:
        raise
    except ValueError as e:  # object arrays: "Object arrays cannot be loaded when allow_pickle=False"
        raise WeightspaceError(f"{path} could not be read with numpy.load(allow_pickle=False) ({e}); "
                               "it holds Python objects, which weightspace never unpickles.") from None
    except Exception as e:  # OSError, EOFError, zipfile.BadZipFile ... for damaged archives
        raise WeightspaceError(f"{path} is not a readable .npz archive ({type(e).__name__}: {e}).") from None
    if not out:
        raise WeightspaceError(f"{path} holds no arrays.")
    return out


def _mapped(params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for name, value in params.items():
        for prefix in NAME_PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix):]
        out[name] = value
    return out


def read_sidecar(path: str | Path) -> dict[str, dict[str, Any]]:
    """Rows keyed by file (as written, resolved against the sidecar's folder)."""
    path = Path(path)
    if not path.is_file():
        raise WeightspaceError(f"sidecar {path} does not exist.")
    if path.suffix == ".json":
        data = read_json(path, f"sidecar {path} is not valid JSON.")
        if isinstance(data, dict):
            data = [{"file": k, **v} for k, v in data.items()]
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise WeightspaceError(f"sidecar {path} must hold a list of objects (or a mapping file -> object).")
    elif path.suffix in (".csv", ".tsv"):
        with open(path, newline="") as f:
            data = list(csv.DictReader(f, delimiter="\t" if path.suffix == ".tsv" else ","))
    else:
        raise WeightspaceError(f"sidecar {path} must be a .csv or .json file.")
    rows = {}
    for i, raw in enumerate(data, start=1):
        row = _parse_row(raw, path, i)
        rows[str((path.parent / row["file"]).resolve())] = row
    return rows


def _parse_row(raw: dict, path: Path, i: int) -> dict[str, Any]:
    if not raw.get("file"):
        raise WeightspaceError(f"row {i} of sidecar {path} has no 'file' column.")
    row: dict[str, Any] = {}
    for k, v in raw.items():
        if v is None or v == "":
            continue
        k = str(k).strip()
        if k in _SIDECAR_TEXT:
            row[k] = str(v)
            continue
        try:
            row[k] = int(v) if k in _SIDECAR_INT else float(v)
        except (TypeError, ValueError):
            raise WeightspaceError(f"row {i} of sidecar {path}: column {k!r} holds {v!r}, expected a number.") from None
    return row


def _sidecar_row(rows: dict[str, dict], file: Path) -> dict:
    resolved = str(file.resolve())
    if resolved in rows:
        return rows[resolved]
    by_name = [r for r in rows.values() if Path(r["file"]).name == file.name]
    return by_name[0] if len(by_name) == 1 else {}


def _split_of(family: dict, task: str, file: Path) -> str:
    if task in family.get("zoo_tasks", []):
        return "zoo"
    if task in family.get("heldout_tasks", []):
        return "heldout"
    known = family.get("zoo_tasks", [])[:5]
    raise WeightspaceError(f"task {task!r} for {file} is not a task of the zoo's family {family.get('name')!r} "
                           f"(its tasks look like {', '.join(map(repr, known))}).")


class _Descriptors:
    """Task descriptors, from the family rebuilt once (it is a deterministic function of its dict)."""

    def __init__(self, family: dict):
        self.family_dict, self.family, self.cache = family, None, {}

    def __call__(self, task: str) -> tuple[float, ...]:
        if task not in self.cache:
            if self.family is None:
                from weightspace.tasks import family_from_dict

                self.family = family_from_dict(self.family_dict)
            # descriptor(task_id) reads no data where a family offers it; task(...) builds the task.
            lookup = getattr(self.family, "descriptor", None)
            value = lookup(task) if callable(lookup) else self.family.task(task).descriptor
            self.cache[task] = tuple(float(v) for v in value)
        return self.cache[task]
