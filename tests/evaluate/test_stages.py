"""Evaluation progress off a terminal is plain periodic lines, not a bar drawn at the end."""

import io

from rich.console import Console

from weightspace.evaluate.stages import Stages


def test_off_a_terminal_progress_is_periodic_plain_lines():
    out = io.StringIO()
    now = [0.0]
    with Stages(True, Console(file=out, force_terminal=False), every_seconds=10, clock=lambda: now[0]) as stages:
        with stages.stage("fine-tuning from zoo-best", 400) as update:
            for done in range(0, 401, 40):
                now[0] += 4.0
                update(done)
    lines = out.getvalue().splitlines()
    assert lines[0] == "eval: fine-tuning from zoo-best: 0/400 (0%), 0 s elapsed"
    assert lines[-1] == "eval: fine-tuning from zoo-best: 400/400 (100%), 44 s elapsed"
    middle = lines[1:-1]
    assert 3 <= len(middle) <= 5 and all(line.startswith("eval: fine-tuning from zoo-best: ") for line in middle)
    assert "\x1b" not in out.getvalue() and all(line.strip() for line in lines)
    assert "fine-tuning from zoo-best" in stages.seconds


def test_disabled_stages_are_silent_but_timed():
    out = io.StringIO()
    with Stages(False, Console(file=out, force_terminal=False)) as stages:
        with stages.stage("scoring", 3) as update:
            update(1)
    assert out.getvalue() == "" and stages.seconds["scoring"] >= 0
