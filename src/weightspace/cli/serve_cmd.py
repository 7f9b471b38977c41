"""`weightspace serve GEN`: weights on demand over HTTP (see weightspace.serve)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from weightspace.cli.app import app
from weightspace.errors import WeightspaceError


@app.command("serve")
def serve(
    generator_path: Path = typer.Argument(..., metavar="GEN", help="Generator directory written by `weightspace train`."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; anything but loopback wants --token."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port; 0 picks a free one (printed at startup)."),
    token: Optional[str] = typer.Option(None, "--token", envvar="WEIGHTSPACE_TOKEN", show_envvar=True,
                                        help="Bearer token clients must send; prefer the environment variable (command lines are visible to other users)."),
    max_request_bytes: int = typer.Option(8 * 1024 * 1024, "--max-request-bytes", help="Largest request body accepted (413 above)."),
    timeout_s: float = typer.Option(30.0, "--timeout-s", help="Per-request limit on generation, queueing included (504 after)."),
    threads: int = typer.Option(2, "--workers-threads", help="Generation threads, each with its own copy of the generator."),
    max_n: int = typer.Option(64, "--max-n", help="Most models per request."),
    access_log: bool = typer.Option(True, "--access-log/--no-access-log", help="Log one line per request."),
) -> None:
    """Serve a generator: POST /v1/generate (task -> weights), GET /v1/metadata, /healthz, /openapi.json."""
    import torch

    try:
        from weightspace.serve import ServeSettings, create_app
        from weightspace.serve.server import bind, is_loopback, make_server
    except ImportError as e:
        raise WeightspaceError(f"`weightspace serve` needs the serve extra ({e.name} is missing); "
                               "install it with pip install 'weightspace[serve]'.") from None

    torch.set_num_threads(1)  # parallelism comes from the generation threads
    settings = ServeSettings(token=token, max_request_bytes=max_request_bytes, timeout_s=timeout_s,
                             threads=threads, max_n=max_n)
    application = create_app(generator_path, settings)  # a bad GEN is one sentence here, before binding
    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    if token is None and not is_loopback(host):
        typer.echo(f"warning: serving on {host} without a token; anyone who can reach this port can use it.", err=True)
    service = application.state.service
    typer.echo(f"serving {service.name} from {generator_path} on http://{bound_host}:{bound_port} "
               f"(auth {'on' if token else 'off'}, {threads} threads); Ctrl-C stops.", err=True)
    try:
        make_server(application, access_log=access_log).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its graceful shutdown: a normal stop
        typer.echo("stopped.", err=True)
    finally:
        sock.close()
