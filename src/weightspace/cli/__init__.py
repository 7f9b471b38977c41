"""The `weightspace` command. Each pipeline stage adds its commands from its own module here.

Errors: a WeightspaceError prints one sentence and exits 2; ``--debug`` (or WEIGHTSPACE_DEBUG=1)
shows the full traceback instead.
"""

from __future__ import annotations

import os
import sys

import typer

from weightspace.cli.app import app, console  # noqa: F401
from weightspace.card import set_command
from weightspace.errors import WeightspaceError, is_click_error, os_error_sentence

# Importing a command module registers its commands on ``app``.
from weightspace.cli import zoo_cmd  # noqa: F401,E402
from weightspace.cli import zoo_create_cmd  # noqa: F401,E402
from weightspace.cli import zoo_tasks_cmd  # noqa: F401,E402
from weightspace.cli import analyze_cmd  # noqa: F401,E402
from weightspace.cli import eval_cmd  # noqa: F401,E402
from weightspace.cli import symmetry_cmd  # noqa: F401,E402
from weightspace.cli import generate_cmd  # noqa: F401,E402
from weightspace.cli import lora_cmd  # noqa: F401,E402
from weightspace.cli import demo_cmd  # noqa: F401,E402
from weightspace.cli import sweep_cmd  # noqa: F401,E402
from weightspace.cli import serve_cmd  # noqa: F401,E402
from weightspace.cli import registry_cmd  # noqa: F401,E402


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get("WEIGHTSPACE_DEBUG") == "1"
    if "--debug" in argv:
        argv.remove("--debug")
        debug = True
    set_command(["weightspace", *argv])  # cards record the command as the user typed it
    try:
        rc = app(args=argv, prog_name="weightspace", standalone_mode=False)
    except WeightspaceError as e:
        if debug:
            raise
        typer.echo(f"error: {e}", err=True)
        return 2
    except KeyboardInterrupt:
        typer.echo("interrupted; finished work is kept and a rerun resumes.", err=True)
        return 130
    except SystemExit as e:  # typer's own exits (e.g. --help)
        return int(e.code or 0)
    except typer.Exit as e:
        return e.exit_code
    except OSError as e:  # a disk, permission or path problem found while working
        if debug:
            raise
        typer.echo(f"error: {os_error_sentence(e)}", err=True)
        return 2
    except Exception as e:  # usage errors (unknown command or option, bad value) carry their own message
        if is_click_error(e, "ClickException"):
            e.show()
            return e.exit_code
        if is_click_error(e, "Abort"):
            return 1
        raise
    return rc if isinstance(rc, int) else 0


def entry() -> None:  # console-script target
    sys.exit(main())
