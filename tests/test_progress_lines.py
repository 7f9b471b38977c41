"""progress_lines.progress_bar off a terminal: plain periodic lines on the stream, no ANSI codes, no blank lines,
and the final state always written; on a terminal, rich's bar as before."""

from __future__ import annotations

import io
import re

from rich.console import Console

from weightspace.progress_lines import PLAIN_EVERY_S, elapsed_text, on_terminal, progress_bar

LINE = re.compile(r"^training hypernet: step \d+/3000 \(\d+%\), loss [0-9.e+-]+, (\d+ min )?\d+ s elapsed$")


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run_fit(console: Console, clock: Clock, steps: int = 3000, seconds_per_step: float = 0.05) -> None:
    with progress_bar("training hypernet", unit="step", console=console, clock=clock) as bar:
        start = clock.now
        for step in range(steps):
            clock.now = start + (step + 1) * seconds_per_step
            bar(step + 1, steps, loss=1.0 / (step + 1))


def test_redirected_stream_gets_plain_periodic_lines_and_the_final_one():
    stream, clock = io.StringIO(), Clock()
    console = Console(file=stream)  # a StringIO is no terminal
    assert not on_terminal(console)
    run_fit(console, clock)  # 3000 steps x 0.05 s = 150 s
    text = stream.getvalue()
    assert "\x1b" not in text and "\r" not in text
    lines = text.split("\n")
    assert lines[-1] == "" and all(lines[:-1]), "no blank lines, one newline per line"
    lines = lines[:-1]
    assert all(LINE.match(line) for line in lines), lines
    # The first update is written at once, then at most one line per 10 s, then the final state.
    assert lines[0] == "training hypernet: step 1/3000 (0%), loss 1, 0 s elapsed"
    assert lines[-1] == "training hypernet: step 3000/3000 (100%), loss 0.0003333, 2 min 30 s elapsed"
    steps = [int(re.search(r"step (\d+)/", line).group(1)) for line in lines]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    gaps = [b - a for a, b in zip(steps, steps[1:-1])]
    assert all(g * 0.05 >= PLAIN_EVERY_S - 1e-9 for g in gaps), gaps
    assert 14 <= len(lines) <= 17, lines  # 150 s at one line per 10 s, plus the first and the last


def test_force_terminal_on_a_file_still_writes_plain_lines():
    # FORCE_COLOR (or force_terminal) makes rich call a file a terminal; the stream is still no tty.
    stream, clock = io.StringIO(), Clock()
    console = Console(file=stream, force_terminal=True)
    assert console.is_terminal and not on_terminal(console)
    run_fit(console, clock, steps=10, seconds_per_step=0.1)
    assert stream.getvalue().splitlines() == [
        "training hypernet: step 1/10 (10%), loss 1, 0 s elapsed",
        "training hypernet: step 10/10 (100%), loss 0.1, 1 s elapsed",
    ]


def test_a_short_run_writes_its_final_state_once_and_info_free_steps_read_plainly():
    stream, clock = io.StringIO(), Clock()
    with progress_bar("aligning zoo", console=Console(file=stream), clock=clock) as bar:
        bar(1, 1)
    assert stream.getvalue() == "aligning zoo: 1/1 (100%), 0 s elapsed\n"


def test_an_interrupted_run_still_writes_where_it_stopped():
    stream, clock = io.StringIO(), Clock()
    try:
        with progress_bar("training flow", unit="step", console=Console(file=stream), clock=clock) as bar:
            bar(1, 100, loss=0.5)
            clock.now += 3
            bar(7, 100, loss=0.25)
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert stream.getvalue().splitlines()[-1] == "training flow: step 7/100 (7%), loss 0.25, 3 s elapsed"


def test_quiet_yields_none_and_the_cli_console_is_used_by_default(capsys):
    with progress_bar("x", quiet=True) as bar:
        assert bar is None
    with progress_bar("training pca-gaussian", unit="step") as bar:  # pytest's captured stderr is no tty
        bar(1, 1)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "training pca-gaussian: step 1/1 (100%), 0 s elapsed\n"


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_keeps_the_rich_bar():
    stream = _TTY()
    console = Console(file=stream, force_terminal=True, width=100)
    assert on_terminal(console)
    with progress_bar("training hypernet", unit="step", console=console) as bar:
        bar(5, 10, loss=0.5)
    assert "\x1b" in stream.getvalue()  # a live display (cursor control), not plain lines
    assert "training hypernet: step" not in stream.getvalue()


def test_elapsed_text():
    assert elapsed_text(35.9) == "35 s"
    assert elapsed_text(605) == "10 min 05 s"
    assert elapsed_text(7500) == "2 h 05 min"
