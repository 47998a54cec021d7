"""The custody ledger file: hash-chained JSONL entries, appended and read without following links.

The format and the chain rule are described in :mod:`workbench.custody`; the intake writes a ledger
(:func:`workbench.custody.intake`), :func:`workbench.custody_verify.verify` checks one.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import CustodyError
from workbench.records import now_utc
from workbench.safeio import open_evidence

__all__ = ["GENESIS", "LEDGER_NAME", "IntakeState", "Ledger", "entry_hash"]

LEDGER_NAME = "custody.jsonl"
GENESIS = "0" * 64
_WRITE_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def _open_ledger_for_append(path: Path, *, create: bool) -> int:
    """An fd appending to the ledger: never through a symlink, only to a regular file (``create``: a new one)."""
    flags = _WRITE_FLAGS | (os.O_CREAT | os.O_EXCL if create else 0)
    try:
        fd = os.open(path, flags, 0o644)
    except FileExistsError:
        raise CustodyError(f"{path}: a custody ledger already exists; use a new output folder") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CustodyError(f"{path}: the custody ledger is a symbolic link; refused (never followed)") from None
        if exc.errno == errno.ENXIO:
            raise CustodyError(f"{path}: the custody ledger is not a regular file (a FIFO); refused") from None
        raise CustodyError(f"{path}: cannot write the custody ledger: {exc.strerror or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise CustodyError(f"{path}: the custody ledger is not a regular file; refused")
    return fd


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 of an entry's canonical JSON (sorted keys, no spaces) without its ``hash`` field."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(slots=True)
class Ledger:
    """An append-only, hash-chained custody ledger in a run's output folder."""

    path: Path
    entries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def head(self) -> str:
        """Hash of the last entry (the value to quote in a report)."""
        return self.entries[-1]["hash"] if self.entries else GENESIS

    def append(self, type_: str, **fields: Any) -> dict[str, Any]:
        entry = {"seq": len(self.entries), "type": type_, "time": now_utc().isoformat(), **fields, "prev": self.head}
        entry["hash"] = entry_hash(entry)
        fd = _open_ledger_for_append(self.path, create=not self.entries)
        try:
            data = memoryview((json.dumps(entry, sort_keys=True) + "\n").encode("utf-8"))
            while data:
                data = data[os.write(fd, data) :]
            if type_ in {"intake_end", "intake_incomplete", "verify"}:
                os.fsync(fd)
        finally:
            os.close(fd)
        self.entries.append(entry)
        return entry

    def intake_state(self) -> IntakeState:
        """Whether the intake recorded in this ledger completed (see the module docstring)."""
        start = self.entries[0] if self.entries else {}
        expected = start.get("files_expected")
        recorded = sum(1 for e in self.entries if e.get("type") == "file")
        for entry in self.entries:
            if entry.get("type") == "intake_end":
                return IntakeState(True, expected, recorded, "")
            if entry.get("type") == "intake_incomplete":
                return IntakeState(False, expected, recorded, str(entry.get("reason") or "stopped"))
        return IntakeState(False, expected, recorded, "no closing entry (the process was killed, or still runs)")

    @classmethod
    def read(cls, path: Path) -> tuple[Ledger, list[str]]:
        """Read a ledger and check its chain.

        Returns:
            The ledger and a list of broken-link descriptions (empty when the chain is intact).

        Raises:
            CustodyError: the ledger does not exist, is a symlink or not a regular file, or holds no entry.
        """
        try:
            fh = open_evidence(path, binary=False, errors="replace")
        except FileNotFoundError:
            raise CustodyError(f"{path}: no custody ledger here (run `workbench investigate` first)") from None
        except OSError as exc:
            raise CustodyError(f"{path}: custody ledger refused: {exc.strerror or exc}") from None
        entries: list[dict[str, Any]] = []
        broken: list[str] = []
        prev = GENESIS
        with fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    broken.append(f"line {number}: not valid JSON")
                    prev = None
                    continue
                if not isinstance(entry, dict):
                    broken.append(f"line {number}: not a JSON object")
                    prev = None
                    continue
                if entry.get("hash") != entry_hash(entry):
                    broken.append(f"line {number} (seq {entry.get('seq')}): entry altered, its hash does not match")
                if prev is not None and entry.get("prev") != prev:
                    broken.append(f"line {number} (seq {entry.get('seq')}): link to the previous entry broken")
                if entry.get("seq") != len(entries):
                    broken.append(f"line {number}: sequence number {entry.get('seq')} where {len(entries)} expected")
                prev = entry.get("hash")
                entries.append(entry)
        if not entries:
            raise CustodyError(f"{path}: custody ledger is empty")
        return cls(path, entries), broken


@dataclass(frozen=True, slots=True)
class IntakeState:
    """How far a ledger's intake went.

    Attributes:
        complete: the ledger holds ``intake_end``.
        expected: files the inventory listed (``files_expected`` of the intake entry; None in older ledgers).
        recorded: ``file`` entries written.
        reason: why it is incomplete ("interrupted by Ctrl-C", "error: ..."); "" when complete.
    """

    complete: bool
    expected: int | None
    recorded: int
    reason: str

    def describe(self) -> str:
        """One sentence for a person."""
        if self.complete:
            return f"intake complete: {self.recorded} files recorded"
        of = f" of {self.expected}" if self.expected is not None else ""
        return f"intake incomplete ({self.reason}): {self.recorded}{of} files recorded before it stopped"
