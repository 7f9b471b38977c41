"""The zoo manifest: one SQLite file that says which member lives in which shard row.

The manifest is the single source of truth for what a zoo contains. A shard file exists on
disk before its rows are inserted, and all rows of one shard (plus the shard's own row) are
inserted in ONE transaction, so after a crash the manifest names either every member of a shard
or none of them; a shard file that no row names is an orphan the store deletes.

Only the main process of a build writes; readers may open the file at any time.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from weightspace.errors import WeightspaceError

SCHEMA_VERSION = 1
METRIC_COLUMNS = ("train_acc", "test_acc", "train_loss", "test_loss")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS members (
    member_id     INTEGER PRIMARY KEY,
    key           TEXT NOT NULL UNIQUE,
    shard         TEXT NOT NULL,
    row           INTEGER NOT NULL,
    task_id       TEXT NOT NULL,
    descriptor    TEXT NOT NULL,   -- JSON list of floats
    seed          INTEGER,         -- NULL for imports whose seed is unknown
    init          TEXT NOT NULL,
    optimizer     TEXT NOT NULL,   -- JSON object (resolved TrainConfig)
    train_acc     REAL,
    test_acc      REAL,
    train_loss    REAL,
    test_loss     REAL,
    metrics_extra TEXT NOT NULL DEFAULT '{}',  -- JSON: metrics beyond the four columns
    train_seconds REAL NOT NULL,
    step          INTEGER NOT NULL,
    final         INTEGER NOT NULL,
    split         TEXT NOT NULL,
    checksum      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS members_shard ON members (shard, row);
CREATE TABLE IF NOT EXISTS shards (
    name      TEXT PRIMARY KEY,
    sha256    TEXT NOT NULL,
    n_members INTEGER NOT NULL
);
"""

# table -> its columns, read from the schema above (what _check_schema requires).
_COLUMNS = {
    block.split("(", 1)[0].split()[-1]: [line.split()[0] for line in block.split("(", 1)[1].split("\n);")[0].splitlines()
                                         if line.strip()]
    for block in _SCHEMA.split("CREATE TABLE IF NOT EXISTS")[1:]
}


@dataclass
class MemberRecord:
    """One trained (or imported) set of weights; a row of the manifest."""

    key: str  # unique in a zoo: f"{task_id}|seed={seed}|step={step}"
    task_id: str
    descriptor: tuple[float, ...]
    seed: int | None
    init: str  # "independent:<scheme>", "shared:<sha256 of base weights>" or "imported"
    optimizer: dict
    metrics: dict = field(default_factory=dict)  # train_acc, test_acc, train_loss, test_loss, ...
    train_seconds: float = 0.0
    step: int = 0
    final: bool = True
    split: str = "zoo"  # "zoo" or "heldout" (a reference model trained on a held-out task)
    member_id: int | None = None  # assigned by the store
    checksum: str | None = None  # sha256 of the member's tensors, assigned by the store


def member_key(task_id: str, seed: int | None, step: int) -> str:
    return f"{task_id}|seed={seed}|step={step}"


def _metric(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class Manifest:
    """Thin wrapper over the SQLite file; every method is one short transaction."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so one add is one transaction.
        self.db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30.0)
        self.db.row_factory = sqlite3.Row
        try:
            self.db.execute("PRAGMA synchronous=FULL")
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as e:
            self.db.close()
            raise WeightspaceError(f"{self.path} is not a readable SQLite manifest ({e}).") from None
        if version == 0:
            self.db.executescript(_SCHEMA)
            self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._check_schema()

    def _check_schema(self) -> None:
        """Every table and column the schema creates is there (a hand-edited manifest that lost
        one would otherwise fail later inside sqlite, with a traceback)."""
        for table, columns in _COLUMNS.items():
            found = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            missing = [c for c in columns if c not in found]
            if missing:
                self.db.close()
                what = f"table {table!r}" if not found else f"column {missing[0]!r} of table {table!r}"
                raise WeightspaceError(f"{self.path} lacks {what}; the zoo's index is damaged "
                                       f"(run `weightspace zoo check {self.path.parent}`, then rebuild or re-import it).")

    def close(self) -> None:
        self.db.close()

    # ----- writes ------------------------------------------------------------------------
    def insert_shard(self, shard: str, sha256: str, records: list[MemberRecord]) -> list[int]:
        """Insert the shard row and one row per member (row i = member i) atomically."""
        ids = []
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("INSERT INTO shards (name, sha256, n_members) VALUES (?, ?, ?)", (shard, sha256, len(records)))
            for row, r in enumerate(records):
                metrics = dict(r.metrics or {})
                extra = {k: v for k, v in metrics.items() if k not in METRIC_COLUMNS}
                cur = self.db.execute(
                    "INSERT INTO members (key, shard, row, task_id, descriptor, seed, init, optimizer, train_acc,"
                    " test_acc, train_loss, test_loss, metrics_extra, train_seconds, step, final, split, checksum)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        r.key, shard, row, r.task_id, json.dumps([float(d) for d in r.descriptor]),
                        None if r.seed is None else int(r.seed), r.init, json.dumps(r.optimizer, sort_keys=True),
                        *(_metric(metrics.get(c)) for c in METRIC_COLUMNS), json.dumps(extra, sort_keys=True),
                        float(r.train_seconds), int(r.step), int(bool(r.final)), r.split, r.checksum,
                    ),
                )
                ids.append(int(cur.lastrowid))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return ids

    # ----- reads -------------------------------------------------------------------------
    def records(self, final_only: bool = True, split: str | None = "zoo",
                member_ids: Iterable[int] | None = None) -> list[MemberRecord]:
        where, args = _where(final_only, split)
        sql = "SELECT * FROM members" + where + " ORDER BY member_id"
        rows = [_to_record(r) for r in self.db.execute(sql, args)]
        if member_ids is None:
            return rows
        by_id = {r.member_id: r for r in self.records(final_only=False, split=None)}
        return [by_id[i] for i in member_ids if i in by_id]

    def locations(self) -> dict[int, tuple[str, int]]:
        """member_id -> (shard, row) for every member."""
        return {r["member_id"]: (r["shard"], r["row"]) for r in self.db.execute("SELECT member_id, shard, row FROM members")}

    def keys(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT key FROM members")}

    def shards(self) -> dict[str, tuple[str, int]]:
        """shard name -> (sha256, n_members)."""
        return {r["name"]: (r["sha256"], r["n_members"]) for r in self.db.execute("SELECT * FROM shards")}

    def count(self, final_only: bool = True, split: str | None = "zoo") -> int:
        where, args = _where(final_only, split)
        return self.db.execute("SELECT COUNT(*) FROM members" + where, args).fetchone()[0]

    def duplicate_keys(self) -> list[str]:
        """Keys named by more than one row (only possible in a hand-edited manifest)."""
        return [r[0] for r in self.db.execute("SELECT key FROM members GROUP BY key HAVING COUNT(*) > 1")]

    def duplicate_rows(self) -> list[tuple[str, int]]:
        """(shard, row) slots claimed by more than one member (again only by hand-editing)."""
        sql = "SELECT shard, row FROM members GROUP BY shard, row HAVING COUNT(*) > 1"
        return [(r[0], r[1]) for r in self.db.execute(sql)]


def _where(final_only: bool, split: str | None) -> tuple[str, list]:
    clauses, args = [], []
    if final_only:
        clauses.append("final = 1")
    if split is not None:
        clauses.append("split = ?")
        args.append(split)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def _json_column(row: sqlite3.Row, column: str, kind: type) -> Any:
    """A JSON column of a manifest row, or a WeightspaceError naming the damaged row."""
    try:
        value = json.loads(row[column] or ("{}" if kind is dict else "[]"))
    except (TypeError, ValueError):
        value = None
    if not isinstance(value, kind):
        raise WeightspaceError(
            f"the manifest row of member {row['key']!r} is damaged: its {column} is not a JSON "
            f"{'object' if kind is dict else 'list'} (was manifest.sqlite edited?); rebuild or restore the zoo."
        )
    return value


def _to_record(row: sqlite3.Row) -> MemberRecord:
    metrics = {c: row[c] for c in METRIC_COLUMNS if row[c] is not None}
    metrics.update(_json_column(row, "metrics_extra", dict))
    return MemberRecord(
        key=row["key"],
        task_id=row["task_id"],
        descriptor=tuple(_json_column(row, "descriptor", list)),
        seed=row["seed"],
        init=row["init"],
        optimizer=_json_column(row, "optimizer", dict),
        metrics=metrics,
        train_seconds=row["train_seconds"],
        step=row["step"],
        final=bool(row["final"]),
        split=row["split"],
        member_id=row["member_id"],
        checksum=row["checksum"],
    )
