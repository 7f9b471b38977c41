"""A tiny real zoo and generators for the server tests, and a real uvicorn server in a thread.

The zoo is digits-rotate (6 zoo tasks, 2 held out, one shared-init member per task); the
generators are pca-gaussian fits (closed form, milliseconds) conditioned on support sets and
on descriptors. ``running`` serves an app on 127.0.0.1 (a port the OS picks), waits for
/healthz and stops the server on exit.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Iterator

import httpx

from weightspace.generate import make_generator, zoo_data
from weightspace.nets import MLP
from weightspace.serve import ServeSettings, create_app
from weightspace.serve.server import bind, make_server
from weightspace.tasks import make_family
from weightspace.zoo.build import build_zoo
from weightspace.zoo.train import TrainConfig

FAMILY = {"n_tasks": 6, "n_heldout": 2}
TOKEN = "test-token-0123456789"


def family():
    return make_family("digits-rotate", **FAMILY)


def build_tiny_zoo(path: Path):
    fam = family()
    arch = MLP(input_shape=fam.input_shape, n_classes=fam.n_classes, hidden=(16,))
    return build_zoo(path, fam, arch, TrainConfig(steps=60, batch_size=64), seeds_per_task=1, init="shared",
                     pretrain_steps=100, workers=0, progress=False)


def fit_generator(zoo, out: Path, condition: str) -> Path:
    data = zoo_data.from_zoo(zoo, condition)
    make_generator("pca-gaussian", resample_support=False).fit(data).save(out)
    return out


@contextlib.contextmanager
def running(generator_dir: Path, **settings) -> Iterator[str]:
    app = create_app(generator_dir, ServeSettings(**settings))
    sock = bind("127.0.0.1", 0)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = make_server(app, log_level="critical", access_log=False)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_healthy(base)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def wait_healthy(base: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{base} did not become healthy within {timeout} s")
        time.sleep(0.02)


def support_body(task, **extra) -> dict:
    return {"support": {"x": task.support_x.tolist(), "y": task.support_y.tolist()}, **extra}


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
