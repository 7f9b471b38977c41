"""One progress display for training loops: ``progress(done, total, **info)`` shown on stderr.

On a terminal it is rich's transient bar. Off a terminal (stderr redirected to a file or a pipe,
a CI log) a bar cannot redraw itself and leaves blank lines behind, so the same callback writes
one plain line instead, at most every ``PLAIN_EVERY_S`` seconds and once at the end::

    training hypernet: step 1200/3000 (40%), loss 0.0123, 35 s elapsed

The display itself is ``progress_lines.progress_bar`` (below every stage); this module gives it
the CLI's shared stderr console.
"""

from __future__ import annotations

import time
from typing import Callable, ContextManager, Optional

from rich.console import Console

from weightspace.cli.app import console as _console
from weightspace.progress_lines import PLAIN_EVERY_S, PlainLines, elapsed_text, info_text, on_terminal  # noqa: F401
from weightspace.progress_lines import progress_bar as _progress_bar


def progress_bar(description: str, quiet: bool = False, unit: Optional[str] = None,
                 console: Optional[Console] = None, clock: Callable[[], float] = time.monotonic) -> ContextManager:
    """``progress_lines.progress_bar`` on ``console``, by default the CLI's stderr console."""
    return _progress_bar(description, quiet, unit, console if console is not None else _console, clock)
