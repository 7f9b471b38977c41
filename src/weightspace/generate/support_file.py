"""Read a user's support set from disk: arrays ``x`` (N, *input_shape) and ``y`` (N,).

Accepted: ``.safetensors`` (tensors x and y), ``.npz`` (arrays x and y; read with
allow_pickle=False, so object arrays are refused) and ``.json`` ({"x": [[...]], "y": [...]}).
Whatever the format, the result is checked against the architecture (shape, finite values,
labels in range) with one clear sentence on failure.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from weightspace.encode.condition import check_support
from weightspace.errors import WeightspaceError
from weightspace.io import load_safetensors

FORMATS = (".safetensors", ".npz", ".json")


def read_support_file(path: str | Path, input_shape: Sequence[int], n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    p = Path(path)
    if not p.is_file():
        raise WeightspaceError(f"support file {p} does not exist.")
    suffix = p.suffix.lower()
    if suffix == ".safetensors":
        arrays, _ = load_safetensors(p)
    elif suffix == ".npz":
        arrays = _read_npz(p)
    elif suffix == ".json":
        arrays = _read_json(p)
    else:
        raise WeightspaceError(f"support file {p} has an unknown format; use one of {', '.join(FORMATS)} holding x and y.")
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise WeightspaceError(f"support file {p} lacks {' and '.join(missing)}; it must hold inputs x and labels y.")
    return check_support(arrays["x"], arrays["y"], input_shape, n_classes, where=f"support file {p}")


def _read_npz(p: Path) -> dict[str, torch.Tensor]:
    try:
        with np.load(p, allow_pickle=False) as data:
            return {k: _numeric(data[k], p, k) for k in ("x", "y") if k in data.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise WeightspaceError(f"support file {p} could not be read as .npz ({e}); save plain numeric arrays x and y.") from None


def _read_json(p: Path) -> dict[str, torch.Tensor]:
    try:
        data = json.loads(p.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WeightspaceError(f"support file {p} is not valid JSON ({e.msg if hasattr(e, 'msg') else e}).") from None
    if not isinstance(data, dict):
        raise WeightspaceError(f'support file {p} must hold an object {{"x": [[...]], "y": [...]}}.')
    out = {}
    for k in ("x", "y"):
        if k in data:
            try:
                arr = np.asarray(data[k], dtype=np.float64)
            except (ValueError, TypeError):
                raise WeightspaceError(f"support file {p}: {k} must be a rectangular array of numbers.") from None
            out[k] = _numeric(arr, p, k)
    return out


def _numeric(arr: np.ndarray, p: Path, key: str) -> torch.Tensor:
    if arr.dtype.kind not in "iufb":
        raise WeightspaceError(f"support file {p}: {key} has dtype {arr.dtype}, expected numbers.")
    return torch.from_numpy(np.ascontiguousarray(arr))
