"""Chain of custody: a hash-chained JSONL ledger of every evidence file, written outside the evidence tree.

Each entry is a JSON object with ``seq``, ``type``, ``time``, its fields, ``prev`` (the previous entry's ``hash``;
64 zeros for the first) and ``hash`` = SHA-256 of the entry's canonical JSON without ``hash``. Altering, removing
or reordering any entry breaks the chain at that point. Entry types: ``intake`` (case root, incident id, tool
version, ``files_expected``, ``bytes_expected``), ``file`` (path, size, sha256, role; written as each file is
hashed), ``skipped`` (path, reason), ``intake_end`` (counts: the intake is complete), ``intake_incomplete``
(``reason``, ``files`` recorded: the intake was interrupted or failed part-way), ``verify`` (result).

An intake is complete only when its ledger holds ``intake_end``. One that was interrupted (Ctrl-C) or failed
closes the ledger with ``intake_incomplete`` instead, so the chain stays verifiable; one killed outright has
neither. :func:`verify` reports both as "intake incomplete" (exit status 4), never as changed evidence.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench._version import __version__
from workbench.case import Case, walk_tree
from workbench.errors import CustodyError
from workbench.hashing import hash_files, iter_hashes
from workbench.progress import SILENT, Progress
from workbench.records import now_utc

__all__ = ["LEDGER_NAME", "IntakeState", "Ledger", "VerifyResult", "intake", "verify"]

LEDGER_NAME = "custody.jsonl"
GENESIS = "0" * 64


def _entry_hash(entry: dict[str, Any]) -> str:
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
        entry["hash"] = _entry_hash(entry)
        self.entries.append(entry)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, sort_keys=True) + "\n")
            if type_ in {"intake_end", "intake_incomplete", "verify"}:
                fh.flush()
                os.fsync(fh.fileno())
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
            CustodyError: the ledger does not exist or holds no entry.
        """
        if not path.is_file():
            raise CustodyError(f"{path}: no custody ledger here (run `workbench investigate` first)")
        entries: list[dict[str, Any]] = []
        broken: list[str] = []
        prev = GENESIS
        with path.open(encoding="utf-8", errors="replace") as fh:
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
                if entry.get("hash") != _entry_hash(entry):
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


def intake(case: Case, out_dir: Path, *, progress: Progress | None = None) -> Ledger:
    """Hash every evidence file (streaming, parallel) and write a new ledger into ``out_dir``.

    Each file's entry is written as soon as it is hashed. An intake interrupted (Ctrl-C) or failing part-way closes
    the ledger with an ``intake_incomplete`` entry (the chain stays intact) and re-raises.

    Args:
        case: the opened evidence tree.
        out_dir: the run's output folder (created if needed; never inside the evidence).
        progress: receives a byte counter while files are hashed (``custody intake: hashing``).

    Raises:
        CustodyError: ``out_dir`` lies inside the evidence tree, or a ledger already exists there.
    """
    progress = progress or SILENT
    out_dir = Path(out_dir).resolve()
    if out_dir == case.root or case.root in out_dir.parents:
        raise CustodyError(f"{out_dir}: output folder is inside the evidence tree; choose one outside it")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / LEDGER_NAME
    if path.exists():
        raise CustodyError(f"{path}: a custody ledger already exists; use a new output folder")
    ledger = Ledger(path)
    expected_bytes = sum(f.size for f in case.files)
    ledger.append(
        "intake",
        case_root=str(case.root),
        incident_id=case.incident_id,
        workbench_version=__version__,
        files_expected=len(case.files),
        bytes_expected=expected_bytes,
    )
    by_path = {case.root / f.relpath: f for f in case.files}
    lock = threading.Lock()
    done = [0]

    def on_bytes(n: int) -> None:
        with lock:
            done[0] += n
            seen = done[0]
        progress.task("custody intake: hashing", min(seen, expected_bytes), expected_bytes)

    total = hashed = 0
    try:
        with contextlib.closing(iter_hashes(by_path, on_bytes=on_bytes)) as results:
            for path_abs, res in results:
                f = by_path[path_abs]
                if isinstance(res, OSError):
                    ledger.append("skipped", path=f.relpath, reason=f"unreadable: {res.strerror or res}")
                    continue
                digest, size = res
                ledger.append("file", path=f.relpath, size=size, sha256=digest, role=f.role)
                total += size
                hashed += 1
        progress.task("custody intake: hashing", expected_bytes, expected_bytes)
        for w in case.warnings:
            ledger.append("skipped", path=w.path, reason=w.reason)
    except BaseException as exc:
        interrupted = isinstance(exc, KeyboardInterrupt)
        reason = "interrupted by Ctrl-C" if interrupted else f"error: {type(exc).__name__}: {exc}"
        # best effort: if even this cannot be written, the ledger has no closing entry and still reads incomplete
        with contextlib.suppress(OSError):
            ledger.append("intake_incomplete", reason=reason, files=hashed, bytes=total)
        raise
    ledger.append("intake_end", files=hashed, bytes=total)
    return ledger


@dataclass(slots=True)
class VerifyResult:
    """Outcome of re-hashing the evidence against the ledger.

    Attributes:
        changed / missing / added: relative paths.
        broken_links: descriptions of ledger entries whose hash or link does not check out.
        files: files recorded at intake.
        head: the ledger's head hash (before this verification is appended).
        case_root: where the evidence was re-hashed.
        intake: how far the intake went; when it is incomplete, files it never reached are not listed as added
            (only the recorded ones are re-hashed).
    """

    changed: list[str]
    missing: list[str]
    added: list[str]
    broken_links: list[str]
    files: int
    head: str
    case_root: str
    intake: IntakeState = field(default_factory=lambda: IntakeState(True, None, 0, ""))

    @property
    def evidence_intact(self) -> bool:
        return not (self.changed or self.missing or self.added)

    @property
    def verified(self) -> bool:
        return self.evidence_intact and not self.broken_links and self.intake.complete

    @property
    def exit_code(self) -> int:
        """0 intact; 1 evidence changed, missing or added; 4 intake incomplete; 3 ledger chain broken.

        Precedence: a broken chain (3), then an incomplete intake (4), then changed evidence (1).
        """
        if self.broken_links:
            return 3
        if not self.intake.complete:
            return 4
        return 0 if self.evidence_intact else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "verified": self.verified,
            "exit_code": self.exit_code,
            "intake": {
                "complete": self.intake.complete,
                "files_expected": self.intake.expected,
                "files_recorded": self.intake.recorded,
                "reason": self.intake.reason,
            },
            "files": self.files,
            "head": self.head,
            "changed": self.changed,
            "missing": self.missing,
            "added": self.added,
            "broken_links": self.broken_links,
            "case_root": self.case_root,
        }


def verify(out_dir: Path, *, case_root: Path | None = None, record: bool = True) -> VerifyResult:
    """Re-hash the evidence recorded in ``out_dir/custody.jsonl`` and check the ledger's chain.

    Args:
        out_dir: the run's output folder.
        case_root: where the evidence is now (default: the path recorded at intake).
        record: append a ``verify`` entry to the ledger when its chain is intact and its intake complete.

    Raises:
        CustodyError: no ledger, or the evidence folder is gone.
    """
    ledger, broken = Ledger.read(Path(out_dir) / LEDGER_NAME)
    start = ledger.entries[0]
    if start.get("type") != "intake":
        broken.append("first entry is not an intake record")
    root = Path(case_root or start.get("case_root", ""))
    if not root.is_dir():
        raise CustodyError(f"{root}: evidence folder recorded at intake is not there (pass --case DIR)")
    recorded = {e["path"]: e for e in ledger.entries if e.get("type") == "file"}
    state = ledger.intake_state()
    current = {f.relpath for f in walk_tree(root, [])}
    results = hash_files(root / p for p in sorted(set(recorded) & current))
    changed = sorted(
        p
        for p in set(recorded) & current
        if isinstance(results[root / p], OSError) or results[root / p][0] != recorded[p].get("sha256")
    )
    result = VerifyResult(
        changed=changed,
        missing=sorted(set(recorded) - current),
        added=sorted(current - set(recorded)) if state.complete else [],
        broken_links=broken,
        files=len(recorded),
        head=ledger.head,
        case_root=str(root),
        intake=state,
    )
    if record and not broken and state.complete:
        ledger.append(
            "verify",
            verified=result.verified,
            changed=len(result.changed),
            missing=len(result.missing),
            added=len(result.added),
        )
    return result
