"""The verdict store of a sweep: SQLite in the output folder (``sweep.sqlite``).

Why SQLite: it is in the standard library, every result is committed as it arrives (an interrupted sweep keeps
everything finished before the interruption and resumes from there), it answers the point queries a re-sweep needs
(one file by path, size and mtime) and the set queries a retro-hunt needs (every file scanned under other rules)
with indexes, and one file is easy to keep with the evidence. Parquet suits analytics over finished sweeps, not
row-by-row upserts while a sweep runs.

Tables:

* ``files``: one row per file and registry: path (model folder + file), size, mtime, content digest (``sha256``,
  or a shard key for large files), the scan's result (JSON), the **rules digest** and workbench version that
  produced it, the sweep that wrote it;
* ``models``: one row per model: its verdict, findings (JSON), file digests, rules digest, version, the sweep, and
  the verdict it had before that sweep;
* ``sweeps``: each run: when, which roots, rules digest, version, whether it completed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["STORE_NAME", "FileRow", "ModelRow", "Store"]

STORE_NAME = "sweep.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS sweeps (id INTEGER PRIMARY KEY, started TEXT, finished TEXT, roots TEXT, rules TEXT,
    version TEXT, retro INTEGER DEFAULT 0, complete INTEGER DEFAULT 0);
CREATE TABLE IF NOT EXISTS files (root TEXT, path TEXT, size INTEGER, mtime_ns INTEGER, digest TEXT, result TEXT,
    rules TEXT, version TEXT, sweep INTEGER, PRIMARY KEY (root, path));
CREATE INDEX IF NOT EXISTS files_digest ON files (digest);
CREATE INDEX IF NOT EXISTS files_rules ON files (rules);
CREATE TABLE IF NOT EXISTS models (root TEXT, rel TEXT, verdict TEXT, findings TEXT, digests TEXT, detail TEXT,
    rules TEXT, version TEXT, sweep INTEGER, previous TEXT, PRIMARY KEY (root, rel));
"""


@dataclass(frozen=True, slots=True)
class FileRow:
    """A stored file result."""

    root: str
    path: str
    size: int
    mtime_ns: int
    digest: str
    result: dict[str, Any]
    rules: str
    version: str


@dataclass(frozen=True, slots=True)
class ModelRow:
    """A stored model verdict (``previous``: its verdict before the sweep that wrote this row, or None)."""

    root: str
    rel: str
    verdict: str
    findings: list[dict[str, Any]]
    digests: dict[str, str]
    detail: dict[str, Any]
    rules: str
    version: str
    sweep: int
    previous: str | None


class Store:
    """One sweep output folder's store (created on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.db = sqlite3.connect(self.path, isolation_level=None)  # autocommit: every write is durable at once
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    # --------------------------------------------------------------------------------------------------- sweeps
    def begin(self, roots: Iterable[str], rules: str, version: str, *, retro: bool = False) -> int:
        cur = self.db.execute("INSERT INTO sweeps (started, roots, rules, version, retro) VALUES (?, ?, ?, ?, ?)",
                              (_now(), json.dumps(list(roots)), rules, version, int(retro)))  # fmt: skip
        return int(cur.lastrowid or 0)

    def finish(self, sweep: int) -> None:
        self.db.execute("UPDATE sweeps SET finished = ?, complete = 1 WHERE id = ?", (_now(), sweep))

    def last_sweep(self) -> dict[str, Any] | None:
        row = self.db.execute("SELECT id, started, finished, roots, rules, version, retro, complete FROM sweeps "
                              "ORDER BY id DESC LIMIT 1").fetchone()  # fmt: skip
        keys = ("id", "started", "finished", "roots", "rules", "version", "retro", "complete")
        return dict(zip(keys, row, strict=True)) if row else None

    # ---------------------------------------------------------------------------------------------------- files
    def file(self, root: str, path: str) -> FileRow | None:
        row = self.db.execute("SELECT root, path, size, mtime_ns, digest, result, rules, version FROM files WHERE "
                              "root = ? AND path = ?", (root, path)).fetchone()  # fmt: skip
        return _file_row(row) if row else None

    def put_file(self, root: str, path: str, size: int, mtime_ns: int, digest: str, result: dict[str, Any],
                 rules: str, version: str, sweep: int) -> None:  # fmt: skip
        self.db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (root, path, size, mtime_ns, digest, json.dumps(result), rules, version, sweep))  # fmt: skip

    def stale_files(self, rules: str) -> list[FileRow]:
        """Every stored file whose result other rules produced (the retro-hunt's work)."""
        rows = self.db.execute("SELECT root, path, size, mtime_ns, digest, result, rules, version FROM files WHERE "
                               "rules != ? ORDER BY root, path", (rules,)).fetchall()  # fmt: skip
        return [_file_row(r) for r in rows]

    def paths_of_digest(self, digest: str) -> list[tuple[str, str]]:
        """Every ``(root, path)`` holding this content."""
        return self.db.execute("SELECT root, path FROM files WHERE digest = ? ORDER BY root, path",
                               (digest,)).fetchall()  # fmt: skip

    # --------------------------------------------------------------------------------------------------- models
    def model(self, root: str, rel: str) -> ModelRow | None:
        row = self.db.execute("SELECT root, rel, verdict, findings, digests, detail, rules, version, sweep, previous "
                              "FROM models WHERE root = ? AND rel = ?", (root, rel)).fetchone()  # fmt: skip
        return _model_row(row) if row else None

    def put_model(self, root: str, rel: str, verdict: str, findings: list[dict[str, Any]], digests: dict[str, str],
                  detail: dict[str, Any], rules: str, version: str, sweep: int) -> str | None:  # fmt: skip
        """Store a model's verdict; returns the verdict it had before (None: first seen)."""
        before = self.model(root, rel)
        previous = before.verdict if before is not None else None
        self.db.execute("INSERT OR REPLACE INTO models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (root, rel, verdict, json.dumps(findings), json.dumps(digests), json.dumps(detail), rules,
                         version, sweep, previous))  # fmt: skip
        return previous

    def models(self, roots: Iterable[str] | None = None) -> list[ModelRow]:
        rows = self.db.execute("SELECT root, rel, verdict, findings, digests, detail, rules, version, sweep, "
                               "previous FROM models ORDER BY root, rel").fetchall()  # fmt: skip
        wanted = set(roots) if roots is not None else None
        return [_model_row(r) for r in rows if wanted is None or r[0] in wanted]


def _file_row(r: tuple) -> FileRow:
    return FileRow(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7])


def _model_row(r: tuple) -> ModelRow:
    return ModelRow(r[0], r[1], r[2], json.loads(r[3]), json.loads(r[4]), json.loads(r[5]), r[6], r[7], r[8], r[9])


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
