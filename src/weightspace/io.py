"""Safe, atomic file I/O. Nothing half-written ever carries a final name; nothing is unpickled.

- ``atomic_write_bytes`` / ``atomic_path``: write to a temporary sibling, fsync, rename.
- ``atomic_dir``: build a directory under a temporary sibling name, then rename it into place.
- ``load_safetensors``: reads a safetensors file a user hands in; pickle archives are refused
  with a sentence, truncated or corrupt files are named.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Iterator, Mapping

import torch
from safetensors.torch import load_file, save_file

from weightspace.errors import WeightspaceError


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; on success it is fsynced and renamed into place."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual file mode
        os.replace(tmp, final)
        _fsync_dir(final.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(final: str | Path) -> Iterator[Path]:
    """Yield a new, empty directory beside ``final``; when the block succeeds it takes ``final``'s
    name, replacing a directory there whole (moved aside first, then removed). On failure it is
    removed: no half-written directory ever carries the final name."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
            os.replace(final, old / "prev")
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already after a success


def atomic_write_bytes(final: str | Path, data: bytes) -> None:
    with atomic_path(final) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(final: str | Path, obj) -> None:
    atomic_write_bytes(final, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def save_safetensors(final: str | Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None) -> None:
    with atomic_path(final) as tmp:
        save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(tmp), metadata=dict(metadata or {}))


def _looks_like_pickle(head: bytes) -> bool:
    """A pickle (protocol 2-5) or a zip archive (torch.save), judged from a file's first 9 bytes.

    A safetensors file starts with its header length, which can produce the same two bytes (a
    header of 640, 896, 1152 or 1408 bytes begins 80 02..80 05); its JSON header's "{" at byte 8
    tells it apart. The sniff only chooses the error message: nothing is ever unpickled.
    """
    if head[8:9] == b"{":
        return False
    return head[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05") or head[:4] == b"PK\x03\x04"


def read_safetensors_header(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise WeightspaceError(f"{p} does not exist.")
    size = p.stat().st_size
    with open(p, "rb") as f:
        head = f.read(9)
        if len(head) < 9:
            raise WeightspaceError(f"{p} is too short to be a safetensors file (truncated?).")
        if _looks_like_pickle(head):
            raise WeightspaceError(
                f"{p} is a pickle/PyTorch archive, not safetensors; weightspace never unpickles files "
                "(import legacy .pt files with `weightspace zoo import`, which uses torch.load(weights_only=True))."
            )
        (n,) = struct.unpack("<Q", head[:8])
        f.seek(8)
        if n <= 0 or 8 + n > size or n > 100_000_000:
            raise WeightspaceError(f"{p} is not a valid safetensors file: its header length is wrong (truncated or corrupt).")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise WeightspaceError(f"{p} is not a valid safetensors file: its header is not JSON.") from None
    if not isinstance(header, dict):
        raise WeightspaceError(f"{p} is not a valid safetensors file: its header is not a JSON object.")
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)):
            raise WeightspaceError(f"{p} is not a valid safetensors file: tensor {name!r} has no valid data_offsets.")
        end = max(end, offsets[1])
    if 8 + n + end > size:
        raise WeightspaceError(f"{p} is truncated: its header promises {end} data bytes, the file holds {size - 8 - n}.")
    return header


def check_output_dir(path: str | Path, what: str = "output directory") -> Path:
    """Fail before any work if ``path`` cannot become a directory we write into: it is an existing
    file, or its nearest existing ancestor is a file or is not writable."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise WeightspaceError(f"the {what} {p} is a file; give a directory (or a new path).")
    ancestor = p
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise WeightspaceError(f"the {what} {p} cannot be created: {ancestor} is a file, not a directory.")
    # A real probe, not os.access: root passes every permission check, yet a read-only file system,
    # /proc or /sys refuse it; the probe file is removed at once, so nothing is left behind.
    try:
        fd, probe = tempfile.mkstemp(prefix=".weightspace-probe-", dir=ancestor)
    except OSError as e:
        reason = (e.strerror or str(e)).lower()
        raise WeightspaceError(f"the {what} {p} cannot be written: {ancestor} refuses new files ({reason}); "
                               "choose another path or fix its permissions.") from None
    os.close(fd)
    os.unlink(probe)
    return p


def check_output_file(path: str | Path, what: str = "output file") -> Path:
    """``check_output_dir`` for the directory a file will be written into, and not a directory itself."""
    p = Path(path)
    if p.is_dir():
        raise WeightspaceError(f"the {what} {p} is a directory; give a file path.")
    check_output_dir(p.parent, f"directory of the {what}")
    return p


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_json(path: str | Path, damaged: str):
    """The JSON value in the file ``path``; ``damaged`` is the sentence raised when it does not parse."""
    try:
        return json.loads(Path(path).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise WeightspaceError(damaged) from None


def json_sha256(obj: object) -> str:
    """sha256 of a JSON value in canonical form (sorted keys), independent of file formatting."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def load_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and string metadata from a safetensors file, with clear errors for bad files."""
    header = read_safetensors_header(path)
    try:
        tensors = load_file(str(path))
    except Exception as e:  # safetensors raises several types for corrupt content
        raise WeightspaceError(f"{path} could not be read as safetensors ({e}).") from None
    return tensors, dict(header.get("__metadata__", {}) or {})
