"""Building zoos: the plan, what each record holds, resume, shared init, and kill -9 mid-build."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import replace
import time

import pytest
import torch

from weightspace.errors import WeightspaceError
from weightspace.io import load_safetensors
from weightspace.nets import MLP
from weightspace.tasks import make_family
from weightspace.zoo.build import build_zoo, member_seed, plan_jobs
from weightspace.zoo.store import member_checksum
from weightspace.zoo.train import TrainConfig, train_single

CFG = TrainConfig(steps=20, batch_size=32, snapshot_every=10)


@pytest.fixture(scope="module")
def family():
    return make_family("digits-rotate", n_tasks=4, n_heldout=2)


@pytest.fixture(scope="module")
def arch(family):
    return MLP(input_shape=family.input_shape, n_classes=family.n_classes, hidden=(8,))


def close(a: dict, b: dict, atol=1e-5) -> bool:
    return set(a) == set(b) and all(torch.allclose(a[k], b[k], atol=atol, rtol=1e-4) for k in a)


def test_plan_is_deterministic_and_seeds_are_distinct(family):
    jobs = plan_jobs(family, seeds_per_task=3, include_heldout=True, base_seed=7)
    assert jobs == plan_jobs(family, seeds_per_task=3, include_heldout=True, base_seed=7)
    assert len(jobs) == (4 + 2) * 3 and len({j.seed for j in jobs}) == len(jobs)
    assert [j.split for j in jobs].count("heldout") == 6
    # Adding replicas keeps the seeds of those already planned.
    assert member_seed(7, "rot=000.00", 0) == jobs[0].seed and jobs[0].seed != member_seed(8, "rot=000.00", 0)


def test_build_stores_each_member_under_its_own_key(tmp_path, family, arch):
    zoo = build_zoo(tmp_path / "z", family, arch, CFG, seeds_per_task=2, chunk_size=3, workers=0,
                    include_heldout=True, progress=False)
    jobs = plan_jobs(family, 2, include_heldout=True)
    finals = zoo.records(split=None)
    assert [r.key for r in finals] == [f"{j.task_id}|seed={j.seed}|step=20" for j in jobs]
    snapshots = [r for r in zoo.records(final_only=False, split=None) if not r.final]
    assert sorted(r.key for r in snapshots) == sorted(f"{j.task_id}|seed={j.seed}|step=10" for j in jobs)
    assert len(zoo) == 8 and len(zoo.records(split="heldout")) == 4
    first = finals[0]
    assert first.init == "independent:uniform" and first.optimizer["steps"] == 20 and first.train_seconds > 0
    assert set(first.metrics) >= {"train_acc", "test_acc", "train_loss", "test_loss"}
    assert first.descriptor == tuple(family.descriptor(first.task_id))
    # The weights stored under a key are those that key's task and seed produce.
    member = zoo.records(split="heldout")[-1]
    alone, metrics = train_single(arch, family.task(member.task_id), member.seed, CFG)
    assert close(zoo.load([member.member_id]), {k: v[None] for k, v in alone.items()})
    assert abs(member.metrics["test_acc"] - metrics["test_acc"]) < 1e-6
    assert zoo.check() == []
    assert zoo.card["kind"] == "zoo" and zoo.card["config"]["train"]["steps"] == 20 and zoo.card["command"]


def test_resume_extends_the_plan_and_refuses_other_settings(tmp_path, family, arch):
    out = tmp_path / "z"
    first = build_zoo(out, family, arch, CFG, seeds_per_task=1, chunk_size=4, workers=0, progress=False)
    before = {r.key: r.member_id for r in first.records(final_only=False)}
    again = build_zoo(out, family, arch, CFG, seeds_per_task=1, chunk_size=4, workers=0, progress=False)
    assert {r.key: r.member_id for r in again.records(final_only=False)} == before
    assert len(again.manifest.shards()) == 1
    more = build_zoo(out, family, arch, CFG, seeds_per_task=2, chunk_size=4, workers=0, progress=False)
    assert len(more) == 8 and all(more.records(final_only=False)[i].member_id == m for i, m in enumerate(before.values()))
    assert more.card["config"]["seeds_per_task"] == 2 and len(more.card["resumed"]) == 2
    with pytest.raises(WeightspaceError, match="was built with train.steps=20, this run asks for train.steps=30"):
        build_zoo(out, family, arch, replace(CFG, steps=30), workers=0, progress=False)
    with pytest.raises(WeightspaceError, match="was built with init=independent"):
        build_zoo(out, family, arch, CFG, init="shared", pretrain_steps=5, workers=0, progress=False)
    with pytest.raises(WeightspaceError, match="different architecture"):
        build_zoo(out, family, MLP(input_shape=family.input_shape, n_classes=10, hidden=(9,)), CFG, workers=0, progress=False)


def test_shared_init_trains_one_base_and_starts_every_member_from_it(tmp_path, family, arch):
    cfg = TrainConfig(steps=10, batch_size=32)
    zoo = build_zoo(tmp_path / "z", family, arch, cfg, init="shared", pretrain_steps=15, chunk_size=4, workers=0, progress=False)
    base, meta = load_safetensors(tmp_path / "z" / "base.safetensors")
    sha = member_checksum(base, arch.spec())
    assert meta["sha256"] == sha and meta["steps"] == "15"
    assert {r.init for r in zoo.records()} == {f"shared:{sha}"}
    member = zoo.records()[2]
    alone, _ = train_single(arch, family.task(member.task_id), member.seed, cfg, init=base)
    assert close(zoo.load([member.member_id]), {k: v[None] for k, v in alone.items()})
    stamp = (tmp_path / "z" / "base.safetensors").stat().st_mtime_ns
    build_zoo(tmp_path / "z", family, arch, cfg, seeds_per_task=2, init="shared", pretrain_steps=15, workers=0, progress=False)
    assert (tmp_path / "z" / "base.safetensors").stat().st_mtime_ns == stamp  # reused, not retrained


KILL_CHILD = textwrap.dedent("""
    from weightspace.nets import MLP
    from weightspace.tasks import make_family
    from weightspace.zoo.build import build_zoo
    from weightspace.zoo.train import TrainConfig
    family = make_family("digits-rotate", n_tasks=8, n_heldout=2)
    arch = MLP(input_shape=family.input_shape, n_classes=family.n_classes, hidden=(8,))
    build_zoo({out!r}, family, arch, TrainConfig(steps=40, batch_size=32, snapshot_every=20), seeds_per_task=1,
              chunk_size=2, workers={workers}, progress=False)
""")


def _stored_members(path) -> int:
    try:
        db = sqlite3.connect(f"file:{path / 'manifest.sqlite'}?mode=ro", uri=True)
        try:
            return db.execute("SELECT COUNT(*) FROM members").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:  # not created yet
        return 0


# workers=2 also shows that worker processes orphaned by the kill never block the resume.
@pytest.mark.parametrize("workers", [0, pytest.param(2, marks=pytest.mark.slow)])
def test_sigkilled_build_resumes_to_exactly_the_uninterrupted_zoo(tmp_path, workers):
    out = tmp_path / "killed"
    code = KILL_CHILD.format(out=str(out), workers=workers)
    child = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while _stored_members(out) == 0:
            assert child.poll() is None, "the build ended before it could be killed"
            assert time.monotonic() < deadline, "no chunk landed in time"
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)  # only the main process: its workers are left running
        child.wait()
        stored_at_kill = _stored_members(out)
        assert 0 < stored_at_kill < 8 * 2, "the kill came too late to interrupt the build"

        family = make_family("digits-rotate", n_tasks=8, n_heldout=2)
        arch = MLP(input_shape=family.input_shape, n_classes=family.n_classes, hidden=(8,))
        cfg = TrainConfig(steps=40, batch_size=32, snapshot_every=20)
        resumed = build_zoo(out, family, arch, cfg, seeds_per_task=1, chunk_size=2, workers=0, progress=False)
    finally:
        try:
            os.killpg(child.pid, signal.SIGKILL)  # any worker the kill orphaned
        except ProcessLookupError:
            pass
    reference = build_zoo(tmp_path / "whole", family, arch, cfg, seeds_per_task=1, chunk_size=2, workers=0, progress=False)

    got, want = resumed.records(final_only=False), reference.records(final_only=False)
    assert len(got) == len({r.key for r in got}) == 16
    assert sorted(r.key for r in got) == sorted(r.key for r in want)
    order = {r.key: r.member_id for r in got}
    mine = resumed.load([order[r.key] for r in want], final_only=False)
    assert close(mine, reference.load([r.member_id for r in want], final_only=False), atol=1e-4)
    assert resumed.check() == []
