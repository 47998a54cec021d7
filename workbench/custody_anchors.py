"""Anchors of a custody ledger: heads kept outside it, which a ledger rewritten whole cannot match.

A hash chain proves that a ledger was not edited *in place*; someone who edits the evidence and recomputes every
entry gets an intact chain with another head. What catches that is a head kept somewhere else:

- ``findings.json`` (``custody.head``) and ``report.html`` (the title block and the custody section quote it),
  written by the run;
- ``expect_head``: a head the user copied elsewhere (a ticket, an e-mail, a notebook of their own);
- ``custody.head.sig``: with ``investigate --sign-head KEY.pem``, an ECDSA signature of the head (the 64 ASCII hex
  digits, SHA-256 for P-256, SHA-384 for P-384, SHA-512 for P-521), checked with the public key.

An anchor that is absent, or that quotes no head (a run that failed before writing ``findings.json`` leaves the
report's head empty), checks nothing and is noted; one that quotes a head the ledger does not hold is a mismatch.
With ``key``, the signature is required: an absent or invalid one is a mismatch.

A ledger *holds* a head when one of its entries has that hash and every entry after it is a ``verify`` record
(what each later ``custody verify`` appends). A rewritten ledger holds none of the original heads: every hash from
the first changed entry on is different.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import CustodyError
from workbench.records import now_utc
from workbench.safeio import read_bytes

__all__ = [
    "SIGNATURE_NAME",
    "AnchorCheck",
    "check_anchors",
    "holds",
    "load_signing_key",
    "normalise_head",
    "sign_head",
]

#: the signed head written next to the ledger by ``investigate --sign-head``
SIGNATURE_NAME = "custody.head.sig"
_MAX_OUTPUT_BYTES = 512 * 1024 * 1024  # findings.json / report.html read to find the head (report with plotly ~10 MB)
_MAX_SMALL = 64 * 1024
_HEX64 = re.compile(r"[0-9a-f]{64}")
#: "custody ledger head: <code>HEX</code>" (title block), "Custody ledger head: <span ...>HEX</span>" (section)
_REPORT_HEAD = re.compile(r"ledger\s+head:?\s*(?:<[^>]{0,80}>\s*)*([0-9a-f]{64})", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class AnchorCheck:
    """One anchor compared with the ledger.

    Attributes:
        source: where the head was kept (``findings.json``, ``report.html``, ``--expect-head``, ``custody.head.sig``).
        head: the head it quotes ("" when none could be read).
        ok: the ledger holds it (and, for a signature, the signature is valid).
        problem: why not ("" when ok).
    """

    source: str
    head: str
    ok: bool
    problem: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "head": self.head, "ok": self.ok, "problem": self.problem}


def holds(entries: list[dict[str, Any]], head: str) -> str:
    """Why the ledger does not hold ``head`` (an entry with that hash, then only ``verify`` entries); "" if it does."""
    for i, entry in enumerate(entries):
        if entry.get("hash") == head:
            later = [e for e in entries[i + 1 :] if e.get("type") != "verify"]
            if later:
                return f"head {head[:16]}… is followed by {len(later)} entries other than verify records"
            return ""
    return f"head {head[:16]}… is not in the ledger (the ledger was rewritten or replaced)"


def normalise_head(text: str) -> str:
    """A head given by a person: 64 hex digits (case and surrounding spaces ignored).

    Raises:
        CustodyError: not 64 hex digits.
    """
    head = text.strip().lower()
    if not _HEX64.fullmatch(head):
        raise CustodyError(f"--expect-head: {text!r} is not a ledger head (64 hexadecimal digits)")
    return head


def _present(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _read(path: Path, limit: int) -> bytes:
    """An output of the run, read as evidence is (no symlink, regular file only, capped)."""
    return read_bytes(path, limit=limit)


def _check(source: str, head: str, entries: list[dict[str, Any]]) -> AnchorCheck:
    problem = holds(entries, head)
    return AnchorCheck(source, head, not problem, problem)


def _findings_anchor(out_dir: Path, entries: list[dict[str, Any]], notes: list[str]) -> AnchorCheck | None:
    path = out_dir / "findings.json"
    if not _present(path):
        return None
    try:
        doc = json.loads(_read(path, _MAX_OUTPUT_BYTES))
    except (OSError, ValueError) as exc:
        notes.append(f"findings.json is unreadable ({exc}): not an anchor")
        return None
    head = (doc.get("custody") or {}).get("head") if isinstance(doc, dict) else None
    if not isinstance(head, str) or not _HEX64.fullmatch(head):
        notes.append("findings.json holds no custody.head: not an anchor")
        return None
    return _check("findings.json", head, entries)


def _report_anchor(out_dir: Path, entries: list[dict[str, Any]], notes: list[str]) -> AnchorCheck | None:
    path = out_dir / "report.html"
    if not _present(path):
        return None
    try:
        text = _read(path, _MAX_OUTPUT_BYTES).decode("utf-8", errors="replace")
    except OSError as exc:
        notes.append(f"report.html is unreadable ({exc.strerror or exc}): not an anchor")
        return None
    heads = list(dict.fromkeys(m.group(1).lower() for m in _REPORT_HEAD.finditer(text)))
    if not heads:
        notes.append("report.html quotes no custody ledger head (the run failed before findings.json?): not an anchor")
        return None
    for head in heads:
        if problem := holds(entries, head):
            return AnchorCheck("report.html", head, False, problem)
    return AnchorCheck("report.html", heads[0], True)


def _hash_for(key: Any) -> Any:
    from cryptography.hazmat.primitives import hashes

    size = key.curve.key_size
    return hashes.SHA512() if size > 384 else hashes.SHA384() if size > 256 else hashes.SHA256()


def _load_public_key(path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        data = _read(path, _MAX_SMALL)
    except OSError as exc:
        raise CustodyError(f"{path}: cannot read the key: {exc.strerror or exc}") from None
    try:
        key: Any = serialization.load_pem_public_key(data)
    except ValueError:
        try:  # a private key was given: its public half verifies
            key = serialization.load_pem_private_key(data, password=None).public_key()
        except (ValueError, TypeError) as exc:
            raise CustodyError(f"{path}: not a PEM public key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise CustodyError(f"{path}: not an ECDSA (elliptic-curve) key")
    return key


def _signature_anchor(out_dir: Path, entries: list[dict[str, Any]], key_path: Path) -> AnchorCheck:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import ec

    key = _load_public_key(key_path)
    path = out_dir / SIGNATURE_NAME
    if not _present(path):
        return AnchorCheck(SIGNATURE_NAME, "", False, "absent: the run was not signed, or its signature was removed")
    try:
        doc = json.loads(_read(path, _MAX_SMALL))
        head = doc["head"]
        signature = base64.b64decode(doc["signature"], validate=True)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return AnchorCheck(SIGNATURE_NAME, "", False, f"unreadable ({exc})")
    if not isinstance(head, str) or not _HEX64.fullmatch(head):
        return AnchorCheck(SIGNATURE_NAME, "", False, "signs no ledger head")
    try:
        key.verify(signature, head.encode("ascii"), ec.ECDSA(_hash_for(key)))
    except InvalidSignature:
        return AnchorCheck(SIGNATURE_NAME, head, False, f"signature of head {head[:16]}… is not valid for {key_path}")
    return _check(SIGNATURE_NAME, head, entries)


def check_anchors(
    entries: list[dict[str, Any]],
    out_dir: Path,
    *,
    expect_head: str | None = None,
    key: Path | None = None,
    notes: list[str] | None = None,
) -> list[AnchorCheck]:
    """Every anchor found for a ledger, checked (see the module docstring).

    Args:
        entries: the ledger's entries (chain already read).
        out_dir: the run's output folder (``findings.json``, ``report.html``, ``custody.head.sig``).
        expect_head: a head the user kept.
        key: a PEM public key for ``custody.head.sig`` (required to be there when given).
        notes: receives a line for each anchor present but quoting no head.

    Returns:
        One :class:`AnchorCheck` per anchor present (none when the run wrote none and nothing was given).

    Raises:
        CustodyError: ``expect_head`` is not a head, or ``key`` is not a usable EC key.
    """
    notes = [] if notes is None else notes
    found = (_findings_anchor(out_dir, entries, notes), _report_anchor(out_dir, entries, notes))
    checks = [c for c in found if c is not None]
    if expect_head is not None:
        checks.append(_check("--expect-head", normalise_head(expect_head), entries))
    if key is not None:
        checks.append(_signature_anchor(out_dir, entries, key))
    return checks


def load_signing_key(path: Path) -> Any:
    """The ECDSA private key of ``investigate --sign-head`` (PEM, unencrypted), checked before anything is written.

    Raises:
        CustodyError: unreadable, encrypted, or not an elliptic-curve private key.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        data = _read(Path(path), _MAX_SMALL)
        key = serialization.load_pem_private_key(data, password=None)
    except OSError as exc:
        raise CustodyError(f"--sign-head {path}: cannot read the key: {exc.strerror or exc}") from None
    except (ValueError, TypeError) as exc:
        raise CustodyError(f"--sign-head {path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CustodyError(f"--sign-head {path}: not an ECDSA (elliptic-curve) private key")
    return key


def sign_head(out_dir: Path, head: str, key: Any) -> Path:
    """Write ``out_dir/custody.head.sig``: the ECDSA signature of ``head`` by ``key`` (from :func:`load_signing_key`).

    The file is JSON: ``head``, ``algorithm``, ``signature`` (base64 DER), ``public_key_sha256`` (of the DER
    SubjectPublicKeyInfo) and ``signed_at``. It is created new, never through a symlink.

    Raises:
        CustodyError: the file exists already or cannot be written.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    algorithm = _hash_for(key)
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    doc = {
        "head": head,
        "algorithm": f"ECDSA-{key.curve.name}-{algorithm.name.upper()}",
        "signature": base64.b64encode(key.sign(head.encode("ascii"), ec.ECDSA(algorithm))).decode("ascii"),
        "public_key_sha256": hashlib.sha256(public).hexdigest(),
        "signed_at": now_utc().isoformat(),
    }
    path = Path(out_dir) / SIGNATURE_NAME
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        raise CustodyError(f"{path}: cannot write the signed head: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(doc, indent=2) + "\n")
    return path
