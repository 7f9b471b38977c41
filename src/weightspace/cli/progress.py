"""One progress bar for training loops: ``progress(done, total, **info)`` shown on stderr."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from weightspace.cli.app import console


@contextmanager
def progress_bar(description: str, quiet: bool = False) -> Iterator:
    """Yield a ``progress(done, total, **info)`` callback (None when quiet); info shows as ``key value``."""
    if quiet:
        yield None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[info]}"), console=console, transient=True) as progress:
        task = progress.add_task(description, total=None, info="")

        def update(done: int, total: int, **info) -> None:
            text = " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in info.items())
            progress.update(task, completed=done, total=total, info=text)

        yield update
