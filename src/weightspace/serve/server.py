"""Run the app under uvicorn on a socket bound here, so a busy port is one clear sentence and
port 0 (any free port) reports the port it got."""

from __future__ import annotations

import ipaddress
import socket

import uvicorn
from fastapi import FastAPI

from weightspace.errors import WeightspaceError


def bind(host: str, port: int) -> socket.socket:
    if not 0 <= int(port) <= 65535:
        raise WeightspaceError(f"--port {port} is not a TCP port (0-65535; 0 picks a free one).")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, int(port)), family=family)
    except OSError as e:
        raise WeightspaceError(f"cannot listen on {host}:{port} ({e.strerror or e}); choose another --host or --port.") from None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_server(app: FastAPI, log_level: str = "info", access_log: bool = True) -> uvicorn.Server:
    """An uvicorn server for ``app``; call ``.run(sockets=[bind(host, port)])`` (blocks) and set
    ``.should_exit = True`` from another thread to stop it."""
    config = uvicorn.Config(app, log_level=log_level, access_log=access_log, timeout_graceful_shutdown=5,
                            lifespan="on", server_header=False)
    return uvicorn.Server(config)
