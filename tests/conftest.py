"""Shared by every test directory: this file's folder is on sys.path (pytest's default import
mode), so helpers here, such as ray_scratch.py, import by name from any test module."""

import os
import shutil
import tempfile

_CACHE = None


def pytest_configure(config):
    """One disk cache (weightspace.tensor_cache) for the whole session, its subprocesses
    included, never the user's own: tests start cold and leave nothing in the home directory."""
    global _CACHE
    _CACHE = tempfile.mkdtemp(prefix="weightspace-test-cache-")
    os.environ["WEIGHTSPACE_CACHE"] = _CACHE


def pytest_unconfigure(config):
    if _CACHE is not None:
        shutil.rmtree(_CACHE, ignore_errors=True)
