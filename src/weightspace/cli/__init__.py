"""The `weightspace` command. Each pipeline stage adds its commands from its own module here.

Errors: a WeightspaceError prints one sentence and exits 2; ``--debug`` (or WEIGHTSPACE_DEBUG=1)
shows the full traceback instead.
"""

from __future__ import annotations

import os
import sys

from weightspace.cli.app import app, console, run_app  # noqa: F401
from weightspace.card import set_command

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
    return run_app(app, argv, "weightspace", debug=debug)


def entry() -> None:  # console-script target
    sys.exit(main())
