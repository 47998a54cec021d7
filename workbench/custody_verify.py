"""``custody verify``: re-hash the evidence against its intake ledger, check the chain and the anchors kept outside it.

Split from :mod:`workbench.custody` (the ledger and the intake); :func:`verify` and :class:`VerifyResult` are
re-exported there.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.case import walk_tree
from workbench.custody_ledger import LEDGER_NAME, IntakeState, Ledger
from workbench.custody_names import entry_key, name_key
from workbench.errors import CustodyError
from workbench.hashing import hash_files
from workbench.rulepack.redact import redact
from workbench.safeio import file_kind

if TYPE_CHECKING:
    from workbench.custody_anchors import AnchorCheck

__all__ = ["VerifyResult", "verify"]


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
