"""The root typer app, the shared console (progress bars go to stderr on the main process) and
the parsing of options that every command reads alike."""

from typing import Callable

import typer
from rich.console import Console

from weightspace.errors import WeightspaceError, is_click_error, os_error_sentence

app = typer.Typer(
    name="weightspace",
    help="Neural-network weights as a generative modality: build zoos, align, generate, evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


def run_app(typer_app: typer.Typer, argv: list[str], prog_name: str, debug: bool = False,
            say: Callable[[str], None] = lambda message: typer.echo(message, err=True)) -> int:
    """Run a typer app on ``argv`` and return its exit status. A WeightspaceError or an OSError
    prints one sentence through ``say`` and exits 2 (``debug`` shows the traceback instead)."""
    try:
        rc = typer_app(args=argv, prog_name=prog_name, standalone_mode=False)
    except WeightspaceError as e:
        if debug:
            raise
        say(f"error: {e}")
        return 2
    except KeyboardInterrupt:
        say("interrupted; finished work is kept and a rerun resumes.")
        return 130
    except SystemExit as e:  # typer's own exits (e.g. --help)
        return int(e.code or 0)
    except typer.Exit as e:
        return e.exit_code
    except OSError as e:  # a disk, permission or path problem found while working
        if debug:
            raise
        say(f"error: {os_error_sentence(e)}")
        return 2
    except Exception as e:  # usage errors (unknown command or option, bad value) carry their own message
        if is_click_error(e, "ClickException"):
            e.show()
            return e.exit_code
        if is_click_error(e, "Abort"):
            return 1
        raise
    return rc if isinstance(rc, int) else 0


def comma_ints(text: str, flag: str, what: str, example: str) -> list[int]:
    """The whole numbers of a comma-separated option (``--hidden 32,32``), or one sentence naming it."""
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise WeightspaceError(f"{flag} {text!r} must be comma-separated {what} such as {example}.") from None


def key_values(items: list[str], flag: str) -> dict:
    """``key=value`` arguments as a dict, each value read as YAML (``channels=[16,32]``)."""
    import yaml

    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise WeightspaceError(f"{flag} {item!r} is not of the form key=value.")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise WeightspaceError(f"{flag} {item!r}: the value is not valid YAML.") from None
    return out
