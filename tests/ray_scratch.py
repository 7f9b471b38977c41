"""Ray's scratch space for tests: a short temporary directory (Ray's socket paths must stay
under ~107 characters), auth off (a fresh local instance would otherwise write a token file to
~/.ray), everything removed afterwards, and a check that Ray wrote nothing to ~/.ray or /tmp/ray."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

RAY_HOME_DIRS = (Path.home() / ".ray", Path("/tmp/ray"))


@contextmanager
def ray_scratch() -> Iterator[str]:
    """Yield the temporary directory that RAY_TMPDIR points to while the block runs."""
    existed = {p: p.exists() for p in RAY_HOME_DIRS}
    temp = tempfile.mkdtemp(prefix="wsray", dir="/tmp")
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_TMPDIR")}
    os.environ.update({"RAY_AUTH_MODE": "disabled", "RAY_TMPDIR": temp})
    try:
        yield temp
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(temp, ignore_errors=True)
        for path, was_there in existed.items():
            assert was_there or not path.exists(), f"the Ray test left {path} behind"
