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
