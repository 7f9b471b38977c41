"""`weightspace serve` as a user runs it: a process, a port, a token from the environment, Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import httpx

import weightspace.cli.serve_cmd  # noqa: F401  registers `serve` (the lead also imports it in cli/__init__)
from weightspace.cli import main

from serve_helpers import TOKEN, auth, wait_healthy

LAUNCH = "import sys, weightspace.cli.serve_cmd; from weightspace.cli import main; sys.exit(main(sys.argv[1:]))"


def test_serve_runs_with_the_token_from_the_environment_and_stops_on_ctrl_c(support_gen, fam):
    env = {**os.environ, "WEIGHTSPACE_TOKEN": TOKEN}
    child = subprocess.Popen([sys.executable, "-c", LAUNCH, "serve", str(support_gen), "--port", "0", "--no-access-log"],
                             stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = child.stderr.readline()  # "serving ... on http://127.0.0.1:PORT (auth on, 2 threads); Ctrl-C stops."
        match = re.search(r"on (http://127\.0\.0\.1:\d+) \(auth on, 2 threads\)", line)
        assert match, line
        base = match.group(1)
        wait_healthy(base)
        assert httpx.get(f"{base}/v1/metadata").status_code == 401
        r = httpx.post(f"{base}/v1/generate", json={"task": fam.heldout_task_ids()[0]}, headers=auth(), timeout=30)
        assert r.status_code == 200 and r.headers["x-weightspace-generator"] == "pca-gaussian"
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=15) == 0  # graceful shutdown
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stderr.close()


def test_serve_refuses_a_bad_generator_dir_and_a_busy_port(tmp_path, support_gen, capsys):
    assert main(["serve", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "is not a generator directory" in err and err.count("\n") == 1
    import socket

    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        assert main(["serve", str(support_gen), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot listen on 127.0.0.1:{port}") and err.count("\n") == 1
    assert main(["serve", str(support_gen), "--workers-threads", "0"]) == 2
    assert "threads must be at least 1" in capsys.readouterr().err
