"""`weightspace zoo ...` commands (filled in by the zoo stage)."""

import typer

from weightspace.cli.app import app

zoo_app = typer.Typer(help="Build, inspect, verify and import zoos of trained models.", no_args_is_help=True)
app.add_typer(zoo_app, name="zoo")
