"""The zoo store: members stacked per tensor in safetensors shards, indexed by a SQLite manifest.

Layout of a zoo directory::

    zoo.json          format version, arch.to_dict(), spec.to_dict(), family dict
    card.json         how the zoo was made (command, resolved config, versions)
    manifest.sqlite   members and shards tables (see manifest.py)
    shards/shard-000001.safetensors   tensors named as the spec, member axis first;
                      metadata["members"] lists the member keys row by row
    base.safetensors  only for init="shared": the common starting weights

Writes are atomic. ``add`` writes the shard (temp file, fsync, rename) and then inserts all of
its rows in one transaction. A crash between the two leaves a shard no row names; whoever next
takes the writer lock deletes it. The writer lock is an ``flock`` on ``.lock``: the kernel drops
it when its process dies, even by SIGKILL, so a killed build never blocks its own resume.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import sqlite3
import os
import re
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from safetensors import safe_open

from weightspace.errors import WeightspaceError
from weightspace.io import atomic_write_json, file_sha256, read_json, save_safetensors
from weightspace.nets import Architecture, arch_from_dict
from weightspace.spec import WeightSpec
from weightspace.zoo.manifest import Manifest, MemberRecord, member_key

__all__ = ["Zoo", "MemberRecord", "member_key", "member_checksum", "file_sha256", "FORMAT_VERSION"]

FORMAT = "weightspace-zoo"
FORMAT_VERSION = 1
SHARD_FORMAT = "weightspace-zoo-shard"
_SHARD_NAME = re.compile(r"^shard-(\d{6,})\.safetensors$")
# What an interrupted create() can leave behind; a directory holding only these may become a zoo.
_CREATE_LEFTOVERS = {"manifest.sqlite", "manifest.sqlite-journal", "shards", "card.json", ".lock"}


def member_checksum(params: Mapping[str, torch.Tensor], spec: WeightSpec) -> str:
    """sha256 over one member's tensors in spec order, as contiguous little-endian float32."""
    h = hashlib.sha256()
    for name in spec.names:
        h.update(np.ascontiguousarray(params[name].detach().cpu().numpy(), dtype="<f4").tobytes())
    return h.hexdigest()


def json_normal(obj) -> object:
    """Tuples become lists etc., so a dict compares equal to its JSON round trip."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


class Zoo:
    """A directory of trained members of one architecture on one task family."""

    def __init__(self, path: Path, meta: dict, card: dict):
        self.path = path
        self.arch: Architecture = arch_from_dict(meta["arch"])
        self.spec: WeightSpec = WeightSpec.from_dict(meta["spec"])
        self.family: dict = meta["family"]
        self.card: dict = card
        self.manifest = Manifest(path / "manifest.sqlite")
        self._lock_fd: int | None = None
        self._lock_error: OSError | None = None  # why the last lock attempt could not open the lock file

    # ----- opening -----------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, arch: Architecture, family: dict, card: dict) -> "Zoo":
        """A new zoo at ``path``; an existing zoo of the same arch and family is opened instead."""
        path = Path(path)
        if (path / "zoo.json").is_file():
            zoo = cls.open(path)
            if "data_fingerprint" not in zoo.family:  # recorded before fingerprints: compare the rest
                family = {k: v for k, v in family.items() if k != "data_fingerprint"}
            for what, mine, theirs in (("architecture", arch.to_dict(), zoo.arch.to_dict()),
                                       ("task family", family, zoo.family)):
                if json_normal(mine) != json_normal(theirs):
                    raise WeightspaceError(
                        f"{path} already holds a zoo with a different {what} ({_short(theirs)}); "
                        "choose a new output directory or repeat the original settings to resume it."
                    )
            return zoo
        if path.exists() and not path.is_dir():
            raise WeightspaceError(f"{path} is a file; give a directory for the zoo.")
        if path.is_dir():
            strangers = [p.name for p in path.iterdir() if p.name not in _CREATE_LEFTOVERS and not p.name.endswith(".tmp")]
            if strangers:
                raise WeightspaceError(f"{path} exists and is not a zoo (it holds {strangers[0]}); choose an empty or new directory.")
        (path / "shards").mkdir(parents=True, exist_ok=True)
        Manifest(path / "manifest.sqlite").close()
        atomic_write_json(path / "card.json", card)
        meta = {"format": FORMAT, "version": FORMAT_VERSION, "arch": arch.to_dict(),
                "spec": arch.spec().to_dict(), "family": family}
        atomic_write_json(path / "zoo.json", meta)  # written last: its presence marks a finished create
        return cls.open(path)

    @classmethod
    def open(cls, path: str | Path) -> "Zoo":
        path = Path(path)
        meta_path = path / "zoo.json"
        if not meta_path.is_file():
            raise WeightspaceError(f"{path} is not a zoo (it has no zoo.json); build one with `weightspace zoo build --out {path}`.")
        meta = read_json(meta_path, f"{meta_path} is not valid JSON; the zoo's description is damaged.")
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise WeightspaceError(f"{meta_path} does not describe a weightspace zoo.")
        if int(meta.get("version", 0)) > FORMAT_VERSION:
            raise WeightspaceError(f"{path} uses zoo format {meta['version']}; this weightspace reads up to {FORMAT_VERSION}, so upgrade it.")
        if not (path / "manifest.sqlite").is_file():
            raise WeightspaceError(f"{path} has no manifest.sqlite; the zoo's index is lost.")
        card_path = path / "card.json"
        card = read_json(card_path, f"{card_path} is not valid JSON; the zoo's card is damaged.") if card_path.is_file() else {}
        try:
            zoo = cls(path, meta, card)
        except (KeyError, TypeError, ValueError) as e:
            raise WeightspaceError(f"{meta_path} is incomplete or malformed ({type(e).__name__}: {e}).") from None
        if zoo._try_lock():  # nobody is writing: safe to clear what a crashed writer left
            zoo.remove_orphans()
            zoo.release_lock()
        return zoo

    def close(self) -> None:
        self.release_lock()
        self.manifest.close()

    def __enter__(self) -> "Zoo":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----- the writer lock and crash leftovers ---------------------------------------------
    def _try_lock(self) -> bool:
        if self._lock_fd is not None:
            return True
        try:
            fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:  # read-only zoo: nobody can be writing through us
            self._lock_error = e
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def release_lock(self) -> None:
        """Stop being the writer (other processes may then write and clear orphans)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def lock_for_writing(self) -> None:
        """Become the zoo's only writer (released on close or process death) and clear orphans."""
        if self._lock_fd is not None:
            return
        self._lock_error = None
        if not self._try_lock():
            if self._lock_error is not None:
                reason = (self._lock_error.strerror or str(self._lock_error)).lower()
                raise WeightspaceError(f"{self.path} cannot be written ({reason}); check its permissions, or copy the zoo "
                                       "somewhere writable to add to it.")
            raise WeightspaceError(f"another process is writing to {self.path}; wait for it to finish or stop it first.")
        self.remove_orphans()

    def orphans(self) -> list[Path]:
        """Shard files the manifest does not name, and temporary files of interrupted writes."""
        listed = set(self.manifest.shards())
        out = [p for p in sorted((self.path / "shards").glob("*")) if p.name.endswith(".tmp") or
               (_SHARD_NAME.match(p.name) and p.name not in listed)]
        return out + sorted(self.path.glob(".*.tmp"))

    def remove_orphans(self) -> list[Path]:
        removed = self.orphans()
        for p in removed:
            p.unlink(missing_ok=True)
        return removed

    # ----- writing -----------------------------------------------------------------------
    def add(self, records: list[MemberRecord], tensors: Mapping[str, torch.Tensor]) -> list[int]:
        """Store ``len(records)`` members (tensors stacked, member axis first) as one new shard."""
        if not records:
            return []
        self.spec.validate(tensors, stacked=True, where=f"members added to {self.path}")
        n = tensors[self.spec.names[0]].shape[0]
        if n != len(records):
            raise WeightspaceError(f"{len(records)} member records were given with tensors for {n} members.")
        keys = [r.key for r in records]
        seen, existing = set(), self.manifest.keys()
        for k in keys:
            if k in seen or k in existing:
                raise WeightspaceError(f"member {k!r} is already in {self.path}; a key may be stored only once.")
            seen.add(k)
        self.lock_for_writing()
        stacked = {name: tensors[name].detach().to("cpu", torch.float32).contiguous() for name in self.spec.names}
        sums = [member_checksum({k: v[i] for k, v in stacked.items()}, self.spec) for i in range(n)]
        name = self._next_shard_name()
        shard_path = self.path / "shards" / name
        save_safetensors(shard_path, stacked, {"format": SHARD_FORMAT, "version": str(FORMAT_VERSION),
                                                "members": json.dumps(keys)})
        rows = [dataclasses.replace(r, checksum=s, member_id=None) for r, s in zip(records, sums)]
        try:
            return self.manifest.insert_shard(name, file_sha256(shard_path), rows)
        except BaseException:
            shard_path.unlink(missing_ok=True)  # the transaction rolled back: the file is an orphan
            raise

    def _next_shard_name(self) -> str:
        names = set(self.manifest.shards()) | {p.name for p in (self.path / "shards").glob("shard-*.safetensors")}
        numbers = [int(m.group(1)) for m in map(_SHARD_NAME.match, names) if m]
        return f"shard-{max(numbers, default=0) + 1:06d}.safetensors"

    def update_card(self, card: dict) -> None:
        atomic_write_json(self.path / "card.json", card)
        self.card = card

    # ----- reading -----------------------------------------------------------------------
    def records(self, final_only: bool = True, split: str | None = "zoo") -> list[MemberRecord]:
        return self.manifest.records(final_only, split)

    def keys(self) -> set[str]:
        return self.manifest.keys()

    def __len__(self) -> int:
        return self.manifest.count(final_only=True, split="zoo")

    def load(self, member_ids: list[int] | None = None, final_only: bool = True,
             split: str | None = "zoo") -> dict[str, torch.Tensor]:
        """Stacked tensors of the given members (or of ``records(final_only, split)``), in order.

        Shards are memory-mapped through safetensors; each shard is read once per tensor and the
        wanted rows gathered, so loading thousands of members costs a few file reads.
        """
        if member_ids is None:
            member_ids = [r.member_id for r in self.records(final_only, split)]
        member_ids = [int(i) for i in member_ids]
        where = self.manifest.locations()
        by_shard: dict[str, tuple[list[int], list[int]]] = {}
        for pos, mid in enumerate(member_ids):
            if mid not in where:
                raise WeightspaceError(f"member id {mid} is not in the zoo at {self.path}.")
            shard, row = where[mid]
            positions, rows = by_shard.setdefault(shard, ([], []))
            positions.append(pos)
            rows.append(row)
        # Gathered in numpy: these copies are memory-bound, and torch's intra-op threads make them
        # ~10x slower on a busy CPU (measured: 10k members, 1.2 s vs 15 s with 2 threads on 2 cores).
        out = {t.name: np.empty((len(member_ids), *t.shape), dtype=np.float32) for t in self.spec.tensors}
        for shard, (positions, rows) in by_shard.items():
            shard_path = self.path / "shards" / shard
            if not shard_path.is_file():
                raise WeightspaceError(f"shard {shard} of {self.path} is missing; run `weightspace zoo check {self.path}`.")
            try:
                with safe_open(str(shard_path), framework="np") as f:
                    for name in self.spec.names:
                        out[name][positions] = f.get_tensor(name)[rows]
            except (IndexError, RuntimeError, OSError, ValueError) as e:
                raise WeightspaceError(f"shard {shard} of {self.path} cannot be read ({e}); run `weightspace zoo check {self.path}`.") from None
        return {name: torch.from_numpy(array) for name, array in out.items()}

    def check(self) -> list[str]:
        """Problems found, one sentence each (corrupt shards and members named); [] if healthy."""
        try:
            return _check(self)
        except sqlite3.DatabaseError as e:
            return [f"the manifest cannot be read ({e}); the zoo's index is damaged."]

    @classmethod
    def open_verified(cls, path: str | Path) -> "Zoo":
        """Open a zoo to read it, refusing one that ``check`` finds a problem in (every command
        that trains on, evaluates or analyses a zoo opens it this way: a bit-flipped shard or a
        held-out task relabelled as a zoo task must not be used silently)."""
        zoo = cls.open(path)
        problems = zoo.check()
        if problems:
            zoo.close()
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise WeightspaceError(f"zoo {path} failed verification: {problems[0].rstrip('.')}{more}; "
                                   f"run `weightspace zoo check {path}` for the full list.")
        return zoo


def _check(zoo: Zoo) -> list[str]:
    """Everything ``Zoo.check`` verifies, in the order a person would want to read it."""
    problems: list[str] = []
    if zoo.spec != zoo.arch.spec():
        problems.append(f"zoo.json's weight spec does not match its {zoo.arch.name} architecture (was zoo.json edited?).")
    for key in zoo.manifest.duplicate_keys():
        problems.append(f"the manifest names member {key!r} more than once (was manifest.sqlite edited?).")
    for shard, row in zoo.manifest.duplicate_rows():
        problems.append(f"several manifest rows claim row {row} of shard {shard} (was manifest.sqlite edited?).")
    listed = zoo.manifest.shards()
    members = zoo.manifest.records(final_only=False, split=None)
    by_shard: dict[str, list[MemberRecord]] = {}
    rows = zoo.manifest.locations()
    for r in members:
        by_shard.setdefault(rows[r.member_id][0], []).append(r)
    for shard, recs in sorted(by_shard.items()):
        if shard not in listed:
            problems.append(f"members {_names(recs)} point at shard {shard}, which the manifest's shards table does not list.")
    for p in zoo.orphans():
        problems.append(f"{p.relative_to(zoo.path)} is not in the manifest (left by an interrupted write; the next build or import deletes it).")
    for shard, (sha, n_members) in sorted(listed.items()):
        recs = sorted(by_shard.get(shard, []), key=lambda r: rows[r.member_id][1])
        problems += _check_shard(zoo, shard, sha, n_members, recs, rows)
    return problems + _check_split(zoo, members)


def _check_split(zoo: Zoo, members: list[MemberRecord]) -> list[str]:
    """The family's split, recomputed from its recorded config, against the members' split labels:
    a zoo member on a held-out task would let a generator train on what it is judged on."""
    from weightspace.tasks import FAMILIES, family_from_dict  # tasks sit below the zoo in the pipeline

    if zoo.family.get("name") not in FAMILIES:  # nothing to recompute it from; readers that need it say so
        return []
    try:
        family = family_from_dict(zoo.family)
    except WeightspaceError as e:
        return [f"zoo.json's task family cannot be rebuilt: {e}"]
    zoo_tasks, heldout_tasks = set(family.zoo_task_ids()), set(family.heldout_task_ids())
    leaked = [r for r in members if r.split == "zoo" and r.task_id in heldout_tasks]
    crossed = [r for r in members if r.split == "heldout" and r.task_id in zoo_tasks]
    unknown = [r for r in members if r.split not in ("zoo", "heldout")]
    out = []
    if leaked:
        out.append(f"members {_names(leaked)} are labelled split='zoo' but trained on held-out tasks of the family "
                   "(was manifest.sqlite edited?).")
    if crossed:
        out.append(f"members {_names(crossed)} are labelled split='heldout' but trained on zoo tasks of the family "
                   "(was manifest.sqlite edited?).")
    if unknown:
        out.append(f"members {_names(unknown)} have the unknown split {unknown[0].split!r}; a member's split is zoo or heldout.")
    return out


def _check_shard(zoo: Zoo, shard: str, sha: str, n_members: int, recs: list[MemberRecord],
                 rows: dict[int, tuple[str, int]]) -> list[str]:
    path = zoo.path / "shards" / shard
    if not path.is_file():
        return [f"shard {shard} is missing; its members {_names(recs)} are lost."]
    out = []
    if file_sha256(path) != sha:
        out.append(f"shard {shard} is corrupt: its sha256 differs from the one recorded when it was written.")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except Exception as e:  # a damaged header makes safetensors raise several exception types
        return out + [f"shard {shard} cannot be read ({e}); its members {_names(recs)} are lost."]
    stored = json.loads(meta.get("members", "[]"))
    if len(recs) != n_members:
        out.append(f"the manifest gives shard {shard} {n_members} members but {len(recs)} member rows point into it.")
    elif len(stored) != len(recs):  # a deleted row hidden by an edited n_members
        out.append(f"shard {shard} holds {len(stored)} members but {len(recs)} manifest rows point into it.")
    for t in zoo.spec.tensors:
        got = tensors.get(t.name)
        if got is None:
            return out + [f"shard {shard} lacks tensor {t.name}; its members {_names(recs)} cannot be loaded."]
        if tuple(got.shape) != (len(stored), *t.shape):
            return out + [f"shard {shard}: tensor {t.name} has shape {tuple(got.shape)}, the weight space expects "
                          f"{(len(stored), *t.shape)}; its members {_names(recs)} cannot be loaded."]
    corrupt = []
    for r in recs:
        row = rows[r.member_id][1]
        if not 0 <= row < len(stored):
            out.append(f"member {r.key!r} points at row {row} of shard {shard}, which holds {len(stored)} members.")
            continue
        if stored[row] != r.key:
            out.append(f"member {r.key!r} points at row {row} of shard {shard}, which holds {stored[row]!r}.")
        if member_checksum({k: v[row] for k, v in tensors.items()}, zoo.spec) != r.checksum:
            corrupt.append(r)
    if corrupt:
        out.append(f"shard {shard}: members {_names(corrupt)} have corrupt weights (their checksums do not match).")
    return out


def _names(recs: list[MemberRecord], limit: int = 8) -> str:
    keys = [repr(r.key) for r in recs]
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def _short(d: object) -> str:
    if isinstance(d, dict):
        return ", ".join(f"{k}={v}" for k, v in d.items() if k not in ("zoo_tasks", "heldout_tasks"))[:120]
    return str(d)[:120]
