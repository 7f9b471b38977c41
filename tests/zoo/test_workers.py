"""Worker pool: results tagged by job index, one torch thread per worker, errors surface."""

from __future__ import annotations

import os

import pytest
import torch

from weightspace.errors import WeightspaceError
from weightspace.zoo.workers import WorkerPool, run_chunks


def square_with_context(n: int) -> tuple[int, int, int]:
    return n * n, torch.get_num_threads(), os.getpid()


def fail_on_three(n: int) -> int:
    if n == 3:
        raise ValueError("job three failed")
    return n


def test_in_process_runs_in_order_with_one_thread_and_restores_it():
    before = torch.get_num_threads()
    seen = []
    out = list(run_chunks(square_with_context, [1, 2, 3], workers=0, progress=lambda d, t: seen.append((d, t))))
    assert [(i, r[0], r[1]) for i, r in out] == [(0, 1, 1), (1, 4, 1), (2, 9, 1)]
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert torch.get_num_threads() == before


def test_negative_workers_is_an_error():
    with pytest.raises(WeightspaceError, match="workers"):
        WorkerPool(-1)


@pytest.mark.slow
def test_processes_return_every_result_once_with_one_thread():
    with WorkerPool(2) as pool:
        out = dict(pool.run(square_with_context, list(range(6))))
        assert {i: r[0] for i, r in out.items()} == {i: i * i for i in range(6)}
        assert {r[1] for r in out.values()} == {1}
        assert os.getpid() not in {r[2] for r in out.values()}
        with pytest.raises(ValueError, match="job three"):
            list(pool.run(fail_on_three, [1, 2, 3, 4]))


OWNER_SCRIPT = """
import os, sys, time
from weightspace.zoo.workers import WorkerPool

def record(path):
    with open(path, "a") as f:
        f.write(f"{os.getpid()} {os.getppid()}\\n")
    time.sleep(120)

if __name__ == "__main__":
    pool = WorkerPool(2)
    futures = [pool._pool.submit(record, sys.argv[1]) for _ in range(2)]
    time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc to find the worker processes")
def test_workers_and_forkserver_exit_after_the_owner_is_killed(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    script, pids_file = tmp_path / "owner.py", tmp_path / "pids"
    script.write_text(OWNER_SCRIPT)
    owner = subprocess.Popen([sys.executable, str(script), str(pids_file)])
    try:
        deadline = time.time() + 120
        while time.time() < deadline and (not pids_file.exists() or len(pids_file.read_text().split("\n")) < 3):
            time.sleep(0.2)
        rows = [line.split() for line in pids_file.read_text().splitlines()]
        assert len(rows) == 2, rows
        processes = {int(pid) for row in rows for pid in row}  # the workers and their forkserver
        assert all(_alive(p) for p in processes)
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        deadline = time.time() + 10
        while time.time() < deadline and any(_alive(p) for p in processes):
            time.sleep(0.2)
        left = [p for p in processes if _alive(p)]
        assert not left, f"still running 10 s after kill -9 of their owner: {left}"
    finally:
        if owner.poll() is None:
            owner.kill()
