"""The one exception type users see: a clear sentence, no traceback (unless --debug)."""


class WeightspaceError(Exception):
    """Bad input or an unusable file: the message says what, where, and what to do."""


def is_click_error(e: BaseException, name: str = "ClickException") -> bool:
    """Whether ``e`` is click's ``name`` exception (a usage error that carries its own message).
    Typer raises the exceptions of the click it bundles (typer._click), not those of the separate
    click package, so the class is matched by name along its MRO instead of imported."""
    return any(c.__name__ == name and any(part.endswith("click") for part in c.__module__.split("."))
               for c in type(e).__mro__)


def os_error_sentence(e: OSError) -> str:
    """One sentence for an OSError: what failed, on which path, and what to check."""
    path = f" {e.filename}" if e.filename else ""
    reason = (e.strerror or str(e)).lower()
    return f"cannot use{path}: {reason}; check that the path exists, is writable and has free space."
