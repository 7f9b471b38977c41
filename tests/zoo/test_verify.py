"""Every command that reads a zoo verifies it first; `zoo check` names each kind of damage."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from weightspace.cli import main
from weightspace.zoo.store import Zoo

TINY = ["--tasks", "3", "--heldout", "1", "--steps", "10", "--hidden", "8", "--workers", "0", "--quiet",
        "--heldout-models"]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    out = tmp_path_factory.mktemp("verify") / "zoo"
    assert main(["zoo", "build", "--out", str(out), *TINY]) == 0
    return out


@pytest.fixture
def zoo_copy(pristine, tmp_path):
    dst = tmp_path / "zoo"
    shutil.copytree(pristine, dst)
    return dst


def sql(zoo_dir, statement: str) -> None:
    db = sqlite3.connect(str(zoo_dir / "manifest.sqlite"))
    db.execute(statement)
    db.commit()
    db.close()


def flip_a_byte(zoo_dir) -> None:
    shard = sorted((zoo_dir / "shards").iterdir())[0]
    data = bytearray(shard.read_bytes())
    data[-5] ^= 0x40  # inside the last tensor's data, past the header
    shard.write_bytes(bytes(data))


def truncate(zoo_dir) -> None:
    shard = sorted((zoo_dir / "shards").iterdir())[0]
    shard.write_bytes(shard.read_bytes()[:100])


DAMAGE = {
    "bit-flipped shard": (flip_a_byte, "sha256 differs"),
    "edited checksum": (lambda z: sql(z, "UPDATE members SET checksum='0' WHERE member_id=1"), "checksums do not match"),
    "deleted manifest row": (lambda z: sql(z, "DELETE FROM members WHERE member_id=2"), "member rows point into it"),
    "truncated shard": (truncate, "cannot be read"),
    "deleted row, count edited to match": (
        lambda z: (sql(z, "DELETE FROM members WHERE member_id=2"), sql(z, "UPDATE shards SET n_members = n_members - 1")),
        "manifest rows point into it"),
    "held-out relabelled as zoo": (lambda z: sql(z, "UPDATE members SET split='zoo' WHERE split='heldout'"),
                                   "held-out tasks of the family"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_zoo_check_names_the_damage_and_train_refuses(damage, zoo_copy, tmp_path, capsys):
    do, words = DAMAGE[damage]
    do(zoo_copy)
    zoo = Zoo.open(zoo_copy)
    problems = zoo.check()
    zoo.close()
    assert any(words in p for p in problems), problems
    assert main(["zoo", "check", str(zoo_copy)]) == 1
    capsys.readouterr()
    gen = tmp_path / "gen"
    assert main(["train", str(zoo_copy), "--generator", "pca-gaussian", "--out", str(gen), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "failed verification" in err and problems[0][:40] in err and "zoo check" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and not gen.exists()


def test_a_healthy_zoo_passes_and_trains(pristine, tmp_path, capsys):
    assert Zoo.open_verified(pristine).check() == []
    assert main(["train", str(pristine), "--generator", "pca-gaussian", "--out", str(tmp_path / "gen"), "--quiet"]) == 0


@pytest.mark.parametrize("command", [["zoo", "ls"], ["zoo", "check"], ["zoo", "show"]])
def test_a_dropped_members_table_is_one_sentence(command, zoo_copy, capsys):
    sql(zoo_copy, "DROP TABLE members")
    code = main([*command, str(zoo_copy)])
    err = capsys.readouterr().err
    assert code == 2 and "lacks table 'members'" in err and "Traceback" not in err


def test_writing_into_an_unwritable_zoo_says_so_not_another_writer(pristine, monkeypatch):
    """Root ignores permission bits, so the lock file's open is made to fail as on a read-only zoo."""
    import os

    from weightspace.errors import WeightspaceError

    real_open = os.open

    def read_only(path, flags, *args):
        if str(path).endswith(".lock"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    zoo = Zoo.open(pristine)
    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(WeightspaceError, match="cannot be written \\(permission denied\\); check its permissions"):
        zoo.lock_for_writing()
    zoo.close()
