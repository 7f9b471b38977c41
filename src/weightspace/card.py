"""Cards: every artifact records the exact command, resolved config, seed and versions."""

from __future__ import annotations

import datetime as _dt
import platform
import shlex
import sys
from typing import Any


def package_versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in ("weightspace", "torch", "numpy", "scipy", "scikit-learn", "safetensors", "transformers", "peft"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


_COMMAND: list[str] | None = None


def set_command(argv: list[str]) -> None:
    """Record the command being run (the CLI calls this; library users may too)."""
    global _COMMAND
    _COMMAND = list(argv)


def current_command() -> str:
    if _COMMAND is not None:
        return shlex.join(_COMMAND)
    argv = list(sys.argv)
    if argv and argv[0].endswith(("weightspace", "__main__.py")):
        argv[0] = "weightspace"
    return shlex.join(argv)


def make_card(kind: str, config: dict[str, Any], seed: int | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "command": current_command(),
        "config": config,
        "seed": seed,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.machine()},
        "versions": package_versions(),
        **extra,
    }
