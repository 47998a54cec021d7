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
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from workbench._version import __version__
from workbench.case import Case
from workbench.custody_names import ledger_path
from workbench.errors import CustodyError
from workbench.hashing import iter_hashes
from workbench.progress import SILENT, Progress
from workbench.rulepack.redact import redact
from workbench.safeio import atime_warnings

if TYPE_CHECKING:
    pass

from workbench.custody_ledger import GENESIS, LEDGER_NAME, IntakeState, Ledger, entry_hash
from workbench.custody_verify import VerifyResult, verify

__all__ = ["GENESIS", "LEDGER_NAME", "IntakeState", "Ledger", "VerifyResult", "entry_hash", "intake", "verify"]


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
