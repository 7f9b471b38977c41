"""The zoo store: round trip, atomic adds under SIGKILL, orphan cleanup, integrity checks."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from weightspace.errors import WeightspaceError
from weightspace.io import read_safetensors_header, save_safetensors
from weightspace.nets import MLP
from weightspace.zoo.store import MemberRecord, Zoo, member_checksum

ARCH = MLP(input_shape=(4,), n_classes=3, hidden=(5,))
FAMILY = {"name": "toy", "config": {"n": 3}, "zoo_tasks": ["a", "b", "c"], "heldout_tasks": ["z"]}


def members(n: int, seed: int, prefix: str = "a", split: str = "zoo", final: bool = True):
    g = torch.Generator().manual_seed(seed)
    tensors = {t.name: torch.randn((n, *t.shape), generator=g) for t in ARCH.spec().tensors}
    records = [
        MemberRecord(key=f"{prefix}|seed={seed * 100 + i}|step=10", task_id=prefix, descriptor=(float(i), 0.5),
                     seed=seed * 100 + i, init="independent:uniform", optimizer={"lr": 0.01},
                     metrics={"test_acc": 0.5 + i / 100, "train_loss": 1.0, "ece": 0.1}, train_seconds=0.25,
                     step=10, final=final, split=split)
        for i in range(n)
    ]
    return records, tensors


def new_zoo(tmp_path, name="zoo"):
    return Zoo.create(tmp_path / name, ARCH, FAMILY, {"kind": "zoo", "command": "test"})


def test_round_trip_keeps_records_and_tensors(tmp_path):
    zoo = new_zoo(tmp_path)
    r1, t1 = members(3, seed=1)
    r2, t2 = members(2, seed=2, prefix="b")
    r3, t3 = members(2, seed=3, prefix="z", split="heldout")
    r4, t4 = members(1, seed=4, final=False)
    ids = zoo.add(r1, t1) + zoo.add(r2, t2)
    held = zoo.add(r3, t3)
    snap = zoo.add(r4, t4)
    zoo.close()

    zoo = Zoo.open(tmp_path / "zoo")
    assert len(zoo) == 5 and sorted(zoo.keys()) == sorted(r.key for r in r1 + r2 + r3 + r4)
    got = zoo.records()
    assert [r.member_id for r in got] == ids
    first = got[0]
    assert first.descriptor == (0.0, 0.5) and first.metrics == {"test_acc": 0.5, "train_loss": 1.0, "ece": 0.1}
    assert first.optimizer == {"lr": 0.01} and first.split == "zoo" and first.final and first.seed == 100
    assert first.checksum == member_checksum({k: v[0] for k, v in t1.items()}, ARCH.spec())

    everything = zoo.load()
    for name in ARCH.spec().names:
        assert torch.equal(everything[name], torch.cat([t1[name], t2[name]]))
    picked = zoo.load([ids[4], ids[0], held[1], snap[0]])
    for name in ARCH.spec().names:
        assert torch.equal(picked[name], torch.stack([t2[name][1], t1[name][0], t3[name][1], t4[name][0]]))
    assert [r.key for r in zoo.records(split="heldout")] == [r.key for r in r3]
    assert [r.key for r in zoo.records(final_only=False, split=None)][-1] == r4[0].key
    assert zoo.load(split="heldout")["fc0.bias"].shape == (2, 5)
    assert zoo.check() == []


def test_bad_adds_write_nothing(tmp_path):
    zoo = new_zoo(tmp_path)
    r, t = members(2, seed=1)
    zoo.add(r, t)
    before = sorted(p.name for p in (zoo.path / "shards").iterdir())
    with pytest.raises(WeightspaceError, match="already in"):
        zoo.add(r, t)
    r2, t2 = members(2, seed=2)
    with pytest.raises(WeightspaceError, match="fc0.weight has shape"):
        zoo.add(r2, {**t2, "fc0.weight": torch.zeros(2, 5, 7)})
    with pytest.raises(WeightspaceError, match="2 members"):
        zoo.add(r2[:1], t2)
    t2["fc1.bias"][0, 0] = float("nan")
    with pytest.raises(WeightspaceError, match="NaN"):
        zoo.add(r2, t2)
    assert sorted(p.name for p in (zoo.path / "shards").iterdir()) == before and len(zoo) == 2


def test_create_resumes_same_zoo_and_refuses_others(tmp_path):
    zoo = new_zoo(tmp_path)
    zoo.add(*members(2, seed=1))
    zoo.close()
    again = new_zoo(tmp_path)
    assert len(again) == 2
    with pytest.raises(WeightspaceError, match="different architecture"):
        Zoo.create(tmp_path / "zoo", MLP(input_shape=(4,), n_classes=3, hidden=(6,)), FAMILY, {})
    with pytest.raises(WeightspaceError, match="different task family"):
        Zoo.create(tmp_path / "zoo", ARCH, {**FAMILY, "config": {"n": 4}}, {})
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(WeightspaceError, match="is not a zoo"):
        Zoo.create(tmp_path / "other", ARCH, FAMILY, {})
    with pytest.raises(WeightspaceError, match="no zoo.json"):
        Zoo.open(tmp_path / "other")


def test_orphan_shards_from_a_crash_are_deleted(tmp_path):
    zoo = new_zoo(tmp_path)
    zoo.add(*members(2, seed=1))  # this zoo now holds the writer lock
    # The state a crash between "shard renamed into place" and "rows committed" leaves behind,
    # plus the temporary file of a crash in the middle of writing a shard.
    _, t = members(3, seed=9)
    save_safetensors(tmp_path / "zoo" / "shards" / "shard-000002.safetensors", t, {"members": "[]"})
    (tmp_path / "zoo" / "shards" / ".shard-000003.safetensors.x1.tmp").write_bytes(b"half")
    # While a writer holds the lock, a reader must not delete what may be its shard in flight.
    orphans = [p for p in Zoo.open(tmp_path / "zoo").check() if "not in the manifest" in p]
    assert len(orphans) == 2 and "shard-000002.safetensors" in orphans[1]
    zoo.close()
    zoo = Zoo.open(tmp_path / "zoo")
    assert sorted(p.name for p in (zoo.path / "shards").iterdir()) == ["shard-000001.safetensors"]
    r, t = members(1, seed=5, prefix="c")
    zoo.add(r, t)
    assert zoo.check() == [] and len(zoo) == 3


CHILD = textwrap.dedent("""
    import sys, torch
    sys.path.insert(0, {testdir!r})
    from test_store import members, new_zoo
    from pathlib import Path
    zoo = new_zoo(Path({tmp!r}))
    print("ready", flush=True)
    for i in range(10_000):
        r, t = members(4, seed=1000 + {round} * 10_000 + i)
        zoo.add(r, t)
""")


def test_add_is_atomic_under_sigkill(tmp_path):
    """Kill a process that adds 4-member shards in a loop at random moments: never a partial shard."""
    rng = random.Random(0)
    for round_ in range(3):
        code = CHILD.format(testdir=os.path.dirname(__file__), tmp=str(tmp_path), round=round_)
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.4))
        child.send_signal(signal.SIGKILL)
        child.wait()
        zoo = Zoo.open(tmp_path / "zoo")  # opening clears what the kill left half-done
        assert zoo.check() == []
        records = zoo.records()
        assert len(records) % 4 == 0 and len(records) > 0
        loaded = zoo.load()
        for i, r in enumerate(records):
            assert member_checksum({k: v[i] for k, v in loaded.items()}, zoo.spec) == r.checksum
        zoo.close()


def _flip_byte_of_row(shard_path, tensor, row):
    header = read_safetensors_header(shard_path)
    header_len = int.from_bytes(shard_path.read_bytes()[:8], "little")
    begin, end = header[tensor]["data_offsets"]
    per_row = (end - begin) // header[tensor]["shape"][0]
    offset = 8 + header_len + begin + row * per_row + 2
    data = bytearray(shard_path.read_bytes())
    data[offset] ^= 0xFF
    shard_path.write_bytes(bytes(data))


def test_check_names_corrupt_shard_and_member(tmp_path):
    zoo = new_zoo(tmp_path)
    r1, t1 = members(3, seed=1)
    zoo.add(r1, t1)
    zoo.add(*members(2, seed=2, prefix="b"))
    _flip_byte_of_row(zoo.path / "shards" / "shard-000001.safetensors", "fc1.weight", row=1)
    problems = zoo.check()
    assert any("shard-000001.safetensors is corrupt" in p for p in problems)
    bad = [p for p in problems if "corrupt weights" in p]
    assert len(bad) == 1 and repr(r1[1].key) in bad[0] and repr(r1[0].key) not in bad[0]
    assert not any("shard-000002" in p for p in problems)


def test_check_finds_hand_edits(tmp_path):
    zoo = new_zoo(tmp_path)
    r1, _ = members(3, seed=1)
    zoo.add(*members(3, seed=1))
    zoo.add(*members(2, seed=2, prefix="b"))
    zoo.close()
    db = sqlite3.connect(tmp_path / "zoo" / "manifest.sqlite")
    with db:
        db.execute("UPDATE members SET row = 0 WHERE key = ?", (r1[1].key,))
        db.execute("UPDATE members SET row = 7 WHERE key = ?", (r1[2].key,))
    db.close()
    (tmp_path / "zoo" / "shards" / "shard-000002.safetensors").unlink()
    problems = Zoo.open(tmp_path / "zoo").check()
    text = "\n".join(problems)
    assert "several manifest rows claim row 0 of shard shard-000001.safetensors" in text
    assert f"member {r1[1].key!r} points at row 0 of shard shard-000001.safetensors, which holds {r1[0].key!r}" in text
    assert f"member {r1[2].key!r} points at row 7" in text
    assert "shard shard-000002.safetensors is missing" in text

    meta = json.loads((tmp_path / "zoo" / "zoo.json").read_text())
    meta["spec"]["tensors"][0]["shape"] = [5, 3]
    meta["spec"]["groups"] = []
    (tmp_path / "zoo" / "zoo.json").write_text(json.dumps(meta))
    problems = Zoo.open(tmp_path / "zoo").check()
    assert any("does not match its mlp architecture" in p for p in problems)
    assert any("tensor fc0.weight has shape (3, 5, 4), the weight space expects (3, 5, 3)" in p for p in problems)


def test_load_gathers_many_members_fast(tmp_path):
    zoo = new_zoo(tmp_path)
    for s in range(20):
        zoo.add(*members(100, seed=s, prefix=f"t{s}"))
    start = time.perf_counter()
    ids = [r.member_id for r in zoo.records()][::-1]
    loaded = zoo.load(ids)
    elapsed = time.perf_counter() - start
    assert loaded["fc0.weight"].shape == (2000, 5, 4)
    assert elapsed < 2.0, f"loading 2000 members took {elapsed:.2f}s"


def test_check_finds_duplicate_keys_in_a_rebuilt_manifest(tmp_path):
    zoo = new_zoo(tmp_path)
    r, t = members(2, seed=1)
    zoo.add(r, t)
    zoo.close()
    # A spreadsheet-style edit that rebuilds the table loses its UNIQUE constraint.
    db = sqlite3.connect(tmp_path / "zoo" / "manifest.sqlite")
    with db:
        db.executescript("CREATE TABLE copy AS SELECT * FROM members; DROP TABLE members;"
                         "ALTER TABLE copy RENAME TO members;")
        db.execute("INSERT INTO members SELECT member_id + 10, key, shard, 1 - row, task_id, descriptor, seed, init, optimizer,"
                   " train_acc, test_acc, train_loss, test_loss, metrics_extra, train_seconds, step, final, split, checksum"
                   " FROM members WHERE row = 0")
    db.close()
    problems = Zoo.open(tmp_path / "zoo").check()
    assert any(f"names member {r[0].key!r} more than once" in p for p in problems)
    assert any("members" in p and "corrupt weights" in p for p in problems)
