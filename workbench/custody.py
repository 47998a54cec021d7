"""Chain of custody: a hash-chained JSONL ledger of every evidence file, written outside the evidence tree.

Each entry is a JSON object with ``seq``, ``type``, ``time``, its fields, ``prev`` (the previous entry's ``hash``;
64 zeros for the first) and ``hash`` = SHA-256 of the entry's canonical JSON without ``hash``. Altering, removing
or reordering any entry breaks the chain at that point. Entry types: ``intake`` (case root, incident id, tool
version, ``files_expected``, ``bytes_expected``), ``file`` (path, size, sha256, role; written as each file is
hashed), ``skipped`` (path, reason), ``atime_not_preserved`` (path, reason: see :mod:`workbench.safeio`),
``intake_end`` (counts: the intake is complete), ``intake_incomplete`` (``reason``, ``files`` recorded: the intake
was interrupted or failed part-way), ``verify`` (result). Paths are written redacted, with ``path_sha256`` (the
digest of the true name) when redaction changed them; verify re-finds files by that digest
(:mod:`workbench.custody_names`).

The ledger file is created (``O_EXCL``), appended to and read without following a symlink and only as a regular
file. A ledger rewritten whole (evidence edited, every hash recomputed) has an intact chain: its anchors catch it
(:mod:`workbench.custody_anchors`: the head in ``findings.json`` and ``report.html``, ``expect_head``, the signed
head).

An intake is complete only when its ledger holds ``intake_end``. One that was interrupted (Ctrl-C) or failed
closes the ledger with ``intake_incomplete`` instead, so the chain stays verifiable; one killed outright has
neither. :func:`verify` reports both as "intake incomplete" (exit status 4), never as changed evidence.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench._version import __version__
from workbench.case import Case, walk_tree
from workbench.custody_names import entry_key, ledger_path, name_key
from workbench.errors import CustodyError
from workbench.hashing import hash_files, iter_hashes
from workbench.progress import SILENT, Progress
from workbench.records import now_utc
from workbench.rulepack.redact import redact
from workbench.safeio import atime_warnings, file_kind, open_evidence

if TYPE_CHECKING:
    from workbench.custody_anchors import AnchorCheck

__all__ = ["LEDGER_NAME", "IntakeState", "Ledger", "VerifyResult", "intake", "verify"]

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
    if path.exists() or path.is_symlink():
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
    by_path = {case.root / f.fs_relpath: f for f in case.files}  # opened by the name on disk
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
                    ledger.append("skipped", **ledger_path(f.relpath), reason=f"unreadable: {res.strerror or res}")
                    continue
                digest, size = res
                ledger.append("file", **ledger_path(f.relpath), size=size, sha256=digest, role=f.role)
                total += size
                hashed += 1
        progress.task("custody intake: hashing", expected_bytes, expected_bytes)
        for w in case.warnings:  # what the inventory noted (skipped links and special files, renamed names...)
            ledger.append("inventory_note", **ledger_path(w.path), reason=redact(w.reason))
        for p, reason in atime_warnings(case.root):  # files not owned by this user: O_NOATIME refused (EPERM)
            ledger.append("atime_not_preserved", **ledger_path(p), reason=redact(reason))
    except BaseException as exc:
        interrupted = isinstance(exc, KeyboardInterrupt)
        reason = "interrupted by Ctrl-C" if interrupted else f"error: {type(exc).__name__}: {exc}"
        # best effort: if even this cannot be written, the ledger has no closing entry and still reads incomplete
        with contextlib.suppress(OSError, CustodyError):
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
        anchors: each head kept outside the ledger (findings.json, report.html, ``expect_head``, the signature)
            and whether the ledger still holds it (:mod:`workbench.custody_anchors`).
        notes: remarks for a person (no anchor to check, a file recorded at intake that is no longer a regular
            file).
    """

    changed: list[str]
    missing: list[str]
    added: list[str]
    broken_links: list[str]
    files: int
    head: str
    case_root: str
    intake: IntakeState = field(default_factory=lambda: IntakeState(True, None, 0, ""))
    anchors: list[AnchorCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def anchor_problems(self) -> list[str]:
        """One line per anchor the ledger does not match (empty when every anchor holds)."""
        return [f"{a.source}: {a.problem}" for a in self.anchors if not a.ok]

    @property
    def evidence_intact(self) -> bool:
        return not (self.changed or self.missing or self.added)

    @property
    def verified(self) -> bool:
        return self.evidence_intact and not self.broken_links and self.intake.complete and not self.anchor_problems

    @property
    def exit_code(self) -> int:
        """0 intact; 1 evidence changed, missing or added; 4 intake incomplete; 3 ledger chain broken; 5 the ledger
        does not match an anchor (rewritten or replaced since the run).

        Precedence: a broken chain (3), then an anchor mismatch (5), then an incomplete intake (4), then changed
        evidence (1).
        """
        if self.broken_links:
            return 3
        if self.anchor_problems:
            return 5
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
            "anchors": [a.to_dict() for a in self.anchors],
            "anchor_problems": self.anchor_problems,
            "notes": self.notes,
            "case_root": self.case_root,
        }


def verify(
    out_dir: Path,
    *,
    case_root: Path | None = None,
    record: bool = True,
    expect_head: str | None = None,
    key: Path | None = None,
) -> VerifyResult:
    """Re-hash the evidence recorded in ``out_dir/custody.jsonl``, check the ledger's chain and its anchors.

    Args:
        out_dir: the run's output folder.
        case_root: where the evidence is now (default: the path recorded at intake).
        record: append a ``verify`` entry to the ledger when its chain is intact, its intake complete and every
            anchor holds.
        expect_head: a head the user kept elsewhere (64 hex digits); the ledger must hold it.
        key: a PEM public key: ``out_dir/custody.head.sig`` must be a valid signature by it of a head the ledger
            holds.

    Raises:
        CustodyError: no ledger (or a symlink, or not a regular file), the evidence folder is gone, or the key is
            unusable.
    """
    from workbench.custody_anchors import check_anchors

    ledger, broken = Ledger.read(Path(out_dir) / LEDGER_NAME)
    notes: list[str] = []
    anchors = check_anchors(ledger.entries, Path(out_dir), expect_head=expect_head, key=key, notes=notes)
    start = ledger.entries[0]
    if start.get("type") != "intake":
        broken.append("first entry is not an intake record")
    root = Path(case_root or start.get("case_root", ""))
    if not root.is_dir():
        raise CustodyError(f"{root}: evidence folder recorded at intake is not there (pass --case DIR)")
    # files are matched by the digest of their true name (custody_names): the ledger holds names redacted
    recorded = {entry_key(e): e for e in ledger.entries if e.get("type") == "file"}
    state = ledger.intake_state()
    walked = walk_tree(root, [])
    current = {name_key(f.relpath): f.relpath for f in walked}
    on_disk = {name_key(f.relpath): root / f.fs_relpath for f in walked}  # a name that is not UTF-8 opens as it is
    results = hash_files(on_disk[k] for k in sorted(set(recorded) & set(current)))
    changed = {
        k
        for k in set(recorded) & set(current)
        if isinstance(res := results[on_disk[k]], OSError) or res[0] != recorded[k].get("sha256")
    }
    if not anchors:
        notes.append("no anchor kept outside the ledger: a ledger rewritten whole would not be noticed")
    for k in sorted(set(recorded) - set(current)):  # not walked: gone, or no longer a regular file (FIFO, link...)
        p = str(recorded[k].get("path", ""))
        with contextlib.suppress(OSError):
            if "path_sha256" in recorded[k]:  # only the redacted name is known: reported missing
                continue
            mode = os.lstat(root / p).st_mode
            changed.add(k)
            notes.append(f"{p}: recorded at intake as a regular file, now {file_kind(mode)}")

    def shown(keys: set[str]) -> list[str]:
        return sorted(str(recorded[k].get("path", "")) if k in recorded else redact(current[k]) for k in keys)

    result = VerifyResult(
        changed=shown(changed),
        missing=shown(set(recorded) - set(current) - changed),
        added=shown(set(current) - set(recorded)) if state.complete else [],
        broken_links=broken,
        files=len(recorded),
        head=ledger.head,
        case_root=str(root),
        intake=state,
        anchors=anchors,
        notes=notes,
    )
    if record and not broken and state.complete and not result.anchor_problems:
        ledger.append(
            "verify",
            verified=result.verified,
            changed=len(result.changed),
            missing=len(result.missing),
            added=len(result.added),
        )
    return result
