"""One progress display for training loops: ``progress(done, total, **info)`` shown on stderr.

On a terminal it is rich's transient bar. Off a terminal (stderr redirected to a file or a pipe,
a CI log) a bar cannot redraw itself and leaves blank lines behind, so the same callback writes
one plain line instead, at most every ``PLAIN_EVERY_S`` seconds and once at the end::

    training hypernet: step 1200/3000 (40%), loss 0.0123, 35 s elapsed
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from weightspace.cli.app import console as _console
from weightspace.progress_lines import PLAIN_EVERY_S, PlainLines, elapsed_text, info_text, on_terminal  # noqa: F401


@contextmanager
def progress_bar(description: str, quiet: bool = False, unit: Optional[str] = None,
                 console: Optional[Console] = None, clock: Callable[[], float] = time.monotonic) -> Iterator:
    """Yield a ``progress(done, total, **info)`` callback (None when quiet); info shows as ``key value``.

    ``unit`` names what ``done`` counts in plain lines ("step"); ``console`` defaults to the
    CLI's stderr console; ``clock`` is how plain lines tell time (tests pass a fake one).
    """
    if quiet:
        yield None
        return
    console = console if console is not None else _console
    if not on_terminal(console):
        lines = PlainLines(description, console.file, unit=unit, clock=clock)
        try:
            yield lines.update
        finally:
            lines.close()
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[info]}"), console=console, transient=True) as progress:
        task = progress.add_task(description, total=None, info="")

        def update(done: int, total: int, **info) -> None:
            progress.update(task, completed=done, total=total, info=info_text(info, " "))

        yield update
