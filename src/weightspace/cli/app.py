"""The root typer app and the shared console (progress bars go to stderr on the main process)."""

import typer
from rich.console import Console

app = typer.Typer(
    name="weightspace",
    help="Neural-network weights as a generative modality: build zoos, align, generate, evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
