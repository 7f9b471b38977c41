"""Plain progress lines for runs whose stderr is not a terminal (a log file, a pipe, CI).

A rich bar cannot redraw itself there: it leaves blank lines behind or draws nothing until the
end, so a run of minutes looks hung. Every stage's progress display (zoo building, generator
training, evaluation) falls back to ``PlainLines`` there: the first update at once, then at most
one line every ``PLAIN_EVERY_S`` seconds, then the final state::

    training hypernet: step 1200/3000 (40%), loss 0.0123, 35 s elapsed

``progress_bar`` is the one display for training loops: rich's transient bar on a terminal, these
lines off one. It lives here, below every stage, so that any stage (and the torchrun entry point)
can show progress without importing the CLI (which passes its shared stderr console).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

from rich.console import Console

# A log line every 10 s is often enough to see a run is alive and how fast it goes, and rare
# enough that a 30-minute fit writes under 200 lines.
PLAIN_EVERY_S = 10.0


def info_text(info: dict, sep: str) -> str:
    return sep.join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in info.items())


def on_terminal(console: Console) -> bool:
    """True when a live bar can redraw itself: rich thinks it is a terminal *and* the stream is a tty
    (FORCE_COLOR makes rich call a redirected file a terminal; its bar would still fill the file)."""
    if not console.is_terminal:
        return False
    isatty = getattr(console.file, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except (OSError, ValueError):  # a closed or detached stream
        return False


def elapsed_text(seconds: float) -> str:
    s = int(seconds)
    if s < 120:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class PlainLines:
    """The off-terminal display: ``update`` writes a line when ``every`` seconds have passed since
    the last one (the first update is written at once); ``close`` writes the final state."""

    def __init__(self, description: str, stream, unit: Optional[str] = None, every: float = PLAIN_EVERY_S,
                 clock: Callable[[], float] = time.monotonic):
        self.description, self.stream, self.unit, self.every, self.clock = description, stream, unit, every, clock
        self.start = clock()
        self.last_written: Optional[float] = None
        self.state: Optional[tuple[int, int, dict]] = None
        self.written_state: Optional[tuple[int, int, dict]] = None

    def line(self, done: int, total: int, info: dict) -> str:
        count = f"{done}/{total} ({100 * done // total}%)" if total else f"{done}"
        parts = [f"{self.unit} {count}" if self.unit else count]
        if info:
            parts.append(info_text(info, ", "))
        parts.append(f"{elapsed_text(self.clock() - self.start)} elapsed")
        return f"{self.description}: {', '.join(parts)}"

    def _write(self) -> None:
        done, total, info = self.state
        self.stream.write(self.line(done, total, info) + "\n")
        self.stream.flush()
        self.last_written, self.written_state = self.clock(), self.state

    def update(self, done: int, total: int, **info) -> None:
        self.state = (int(done), int(total or 0), dict(info))
        if self.last_written is None or self.clock() - self.last_written >= self.every:
            self._write()

    def close(self) -> None:
        if self.state is not None and self.state != self.written_state:
            self._write()


@contextmanager
def progress_bar(description: str, quiet: bool = False, unit: Optional[str] = None,
                 console: Optional[Console] = None, clock: Callable[[], float] = time.monotonic) -> Iterator:
    """Yield a ``progress(done, total, **info)`` callback (None when quiet); info shows as ``key value``.

    ``unit`` names what ``done`` counts in plain lines ("step"); ``console`` defaults to a stderr
    console; ``clock`` is how plain lines tell time (tests pass a fake one).
    """
    if quiet:
        yield None
        return
    console = console if console is not None else Console(stderr=True)
    if not on_terminal(console):
        lines = PlainLines(description, console.file, unit=unit, clock=clock)
        try:
            yield lines.update
        finally:
            lines.close()
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[info]}"), console=console, transient=True) as progress:
        task = progress.add_task(description, total=None, info="")

        def update(done: int, total: int, **info) -> None:
            progress.update(task, completed=done, total=total, info=info_text(info, " "))

        yield update
