"""Progress of a long evaluation, one entry per stage, wherever its output goes.

On a terminal: rich progress bars. Off a terminal (stderr redirected to a log, a CI job, a
batch scheduler), rich would draw nothing until the end, so an evaluation that runs for minutes
looked hung; there it writes plain lines instead (progress_lines.PlainLines): when a stage
starts, at most every ``every_seconds`` while it runs, and when it ends, e.g.

    eval: fine-tuning from zoo-best: 120/400 (30%), 35 s elapsed
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Callable, Iterator

from weightspace.progress_lines import PLAIN_EVERY_S, PlainLines, on_terminal


class Stages:
    """``with Stages(enabled, console) as s: with s.stage(name, total) as update: update(done)``.

    Silent when disabled; records every stage's wall seconds either way (for results.json).
    """

    def __init__(self, enabled: bool, console=None, every_seconds: float = PLAIN_EVERY_S,
                 clock: Callable[[], float] = time.monotonic):
        self.enabled, self.console, self.bar, self.stream = enabled, console, None, None
        self.every, self.clock = every_seconds, clock
        self.seconds: dict[str, float] = {}

    def __enter__(self) -> "Stages":
        if not self.enabled:
            return self
        if self.console is not None and not on_terminal(self.console):
            self.stream = self.console.file
        elif self.console is None and not sys.stderr.isatty():
            self.stream = sys.stderr
        else:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                                TimeElapsedColumn(), console=self.console, transient=False)
            self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    @contextlib.contextmanager
    def stage(self, name: str, total: int = 1) -> Iterator:
        began = time.perf_counter()
        try:
            with self._progress(name, total) as update:
                yield update
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - began

    @contextlib.contextmanager
    def _progress(self, name: str, total: int) -> Iterator:
        if self.stream is not None:
            lines = PlainLines(f"eval: {name}", self.stream, every=self.every, clock=self.clock)
            lines.update(0, total)
            try:
                yield lambda done, total_now=None: lines.update(done, total_now or total)
                lines.update(total, total)  # a stage that returns is complete
            finally:
                lines.close()
            return
        if self.bar is None:
            yield lambda done, total=None: None
            return
        task = self.bar.add_task(name, total=total)

        def update(done: int, total_now: int | None = None) -> None:
            self.bar.update(task, completed=done, total=total_now or total)

        yield update
        self.bar.update(task, completed=self.bar.tasks[task].total)
