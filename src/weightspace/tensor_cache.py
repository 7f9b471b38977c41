"""A disk cache for tensors that are costly to compute and the same in every process.

The wordnet family's frozen MiniLM activations (4800 definitions, 237 MB) take about 40 s to
compute on one thread, and every process of a run needs them: each zoo worker, each generator
fit, the harness and each of its workers. The wordnet demo computed the same table seven times
(measured: about 40 s per process). Cached on disk, the first process computes it and the others
read it in a fraction of a second.

    table = cached_tensor("wordnet-hidden", [ids, max_length, layer], lambda: compute(ids))

The key is the sha256 of the given parts (tensors by dtype, shape and bytes) together with the
library's, torch's and ``CACHE_VERSION``'s versions, so a new release or torch never reads an
old entry. Files are safetensors (no pickle), written atomically; an entry that cannot be read
is computed again and replaced.

Where: ``$WEIGHTSPACE_CACHE`` (default ``~/.cache/weightspace``); ``WEIGHTSPACE_CACHE=off``
computes every time and writes nothing. A directory that cannot be written to only costs the
time: the tensor is computed and returned.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable, Sequence

import torch

CACHE_VERSION = 1  # bump when what a cached computation returns changes
ENV = "WEIGHTSPACE_CACHE"


def cache_dir() -> Path | None:
    """The cache directory, or None when caching is off."""
    value = os.environ.get(ENV, "")
    if value.lower() == "off":
        return None
    return Path(value).expanduser() if value else Path.home() / ".cache" / "weightspace"


def cache_key(parts: Sequence[object]) -> str:
    from weightspace import __version__

    h = hashlib.sha256(f"weightspace {__version__}, torch {torch.__version__}, cache {CACHE_VERSION}".encode())
    for part in parts:
        if isinstance(part, torch.Tensor):
            t = part.detach().contiguous().cpu()
            h.update(f"tensor {t.dtype} {tuple(t.shape)}".encode())
            h.update(t.numpy().tobytes())
        else:
            h.update(f"{type(part).__name__} {part!r}".encode())
        h.update(b"\0")
    return h.hexdigest()


def cached_tensor(name: str, parts: Sequence[object], make: Callable[[], torch.Tensor]) -> torch.Tensor:
    """``make()``, read from the cache when an entry for (``name``, ``parts``) is there."""
    from weightspace.io import load_safetensors, save_safetensors

    root = cache_dir()
    if root is None:
        return make()
    path = root / f"{name}-{cache_key(parts)[:32]}.safetensors"
    if path.is_file():
        try:
            return load_safetensors(path)[0]["value"]
        except Exception:  # noqa: BLE001 - a damaged entry is recomputed and replaced, never trusted
            pass
    value = make()
    try:
        root.mkdir(parents=True, exist_ok=True)
        save_safetensors(path, {"value": value.contiguous()})
    except OSError:
        pass  # a read-only or full disk only costs the time
    return value
