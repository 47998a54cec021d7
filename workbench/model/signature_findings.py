"""A signature check's outcome stated once, as findings a reviewer can act on.

:data:`OUTCOME_FINDING` is the one table from outcome to category and severity:

============================  ==================================  ========  =========================================
outcome                       category                            severity  means
============================  ==================================  ========  =========================================
verified                      ``signature_verified``              info      valid under the trusted signer, every
                                                                            file matches (scheme, signer, time named)
invalid                       ``signature_invalid``               critical  the signature does not verify, or a file
                                                                            differs from its signed digest (each file
                                                                            named; high when the signer is unverified)
unsupported                   ``signature_unsupported``           medium    a scheme or key the workbench cannot use
unverifiable_offline          ``signature_unverifiable_offline``  medium    Sigstore keyless without a trusted root:
                                                                            signed by IDENTITY, not checkable offline
unverified                    ``signature_unverified``            medium    no key / CA bundle given for its method
unsigned                      ``model_unsigned``                  critical  no signature at all
============================  ==================================  ========  =========================================

A finding's text is always a sentence written here, never an exception's text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.records import Finding, Severity

if TYPE_CHECKING:
    from workbench.model.signatures import SignatureResult

__all__ = ["OUTCOME_FINDING", "state_outcome"]

DETECTOR = "workbench.model.signatures"
ATLAS = ("AML.T0010.003", "AML.T0018.000")
OUTCOME_FINDING: dict[str, tuple[str, Severity]] = {
    "verified": ("signature_verified", Severity.INFO),
    "invalid": ("signature_invalid", Severity.CRITICAL),
    "unsupported": ("signature_unsupported", Severity.MEDIUM),
    "unverifiable_offline": ("signature_unverifiable_offline", Severity.MEDIUM),
    "unverified": ("signature_unverified", Severity.MEDIUM),
    "unsigned": ("model_unsigned", Severity.CRITICAL),
}
_FILE_PROBLEM = {
    "modified": ("does not match its signed digest", "Signed {e}, found {a}."),
    "missing": ("is signed but missing", "Signed {e}; the file is not in the folder."),
    "unsigned": ("is not covered by the signature", "Found {a}; the signature does not list this file."),
}
_HOW_TO_TRUST = {
    "no public key given": "give the signer's public key (--key, case.yaml public_key or keys/)",
    "no Sigstore trusted root given": "give the Sigstore trusted root (--trusted-root, case.yaml trusted_root)",
}


def _finding(outcome: str, title: str, detail: str, evidence: dict[str, Any], severity: Severity | None = None,
             ) -> Finding:  # fmt: skip
    category, default = OUTCOME_FINDING[outcome]
    atlas = () if outcome == "verified" else ATLAS
    shown = {k: v for k, v in evidence.items() if v}
    return Finding.create(severity=severity or default, category=category, title=title, detail=detail,
                          detector=DETECTOR, atlas=atlas, evidence=shown)  # fmt: skip


def _who(r: SignatureResult) -> str:
    who = r.signer or "an unknown signer"
    return f"{who} (issuer {r.issuer})" if r.issuer else who


def _when(r: SignatureResult) -> str:
    return f", signed {r.signed_at} ({r.signed_at_source})" if r.signed_at else ""


def _tlog(r: SignatureResult) -> str:
    if r.tlog is None:
        return ""
    return " A transparency-log entry is present." if r.tlog == "present" else " No transparency-log entry."


def _notes(r: SignatureResult) -> str:
    return "".join(f" Note: {n}." for n in r.notes)


def state_outcome(r: SignatureResult, model_id: str, prefix: str, error: Exception | None = None) -> None:
    """Set ``r.outcome`` (from ``error`` when the check failed) and append its findings to ``r.findings``."""
    from workbench.model.cosign_blob import SignatureUnsupported
    from workbench.model.signatures import _Unsigned

    sig = r.signature or "the signature"
    evidence = {"path": r.signature or (prefix.rstrip("/") or "."), "key": r.key, "scheme": r.scheme,
                "method": r.method, "signer": r.signer, "signed_at": r.signed_at}  # fmt: skip
    if error is not None:
        reason = getattr(error, "reason", "") or "it cannot be checked"
        r.reason = reason
        if isinstance(error, _Unsigned):
            r.outcome = "unsigned"
            shown = sig.removeprefix(prefix)
            r.findings.append(_finding("unsigned", f"{model_id}: manifest present but its signature {shown} is missing",
                                       f"{reason}.", {"path": prefix + ".signatures/manifest.json"}))  # fmt: skip
        elif isinstance(error, SignatureUnsupported):
            r.outcome = "unsupported"
            r.findings.append(_finding("unsupported", f"{model_id}: signature {sig} cannot be checked: {reason}",
                                       f"Not verified: {reason}. This is not a sign of tampering; verify the "
                                       "signature with the tool that made it.", evidence))  # fmt: skip
        else:
            r.outcome, r.signature_valid = "invalid", False
            given = ", ".join(_given(r)) or "no trust material"
            r.findings.append(_finding("invalid", f"{model_id}: signature {sig} is invalid: {reason}",
                                       f"Checked with {given}: {reason}.", evidence))  # fmt: skip
        return
    if r.scheme == "none":
        r.outcome = "unsigned"
        r.findings.append(_finding("unsigned", f"{model_id}: model is unsigned",
                                   "No signature in the folder (no model_signing bundle such as model.sig, no "
                                   ".signatures/manifest.json with its cosign signature) and none was named: the "
                                   "model's provenance cannot be verified.", evidence))  # fmt: skip
        return
    if r.bad_files:
        _file_findings(r, model_id, prefix, sig)
        return
    how = r.method or r.scheme
    if r.outcome == "verified":
        r.findings.append(_finding("verified", f"{model_id}: signature verified, {len(r.files)} files match",
                                   f"{sig} is a valid {how} signature by {_who(r)}{_when(r)}, and every file matches "
                                   f"its signed digest.{_tlog(r)}{_notes(r)}", evidence))  # fmt: skip
        return
    if not r.files:
        matched = ""
    elif r.signature_valid:
        matched = (f" The signature checks out under the certificate it carries, and the {len(r.files)} files match "
                   "what it signed.")  # fmt: skip
    else:
        matched = f" The {len(r.files)} files match the digests it lists (unauthenticated until it is verified)."
    todo = _HOW_TO_TRUST.get(r.reason, "")
    todo = f" To verify it, {todo}." if todo else ""
    if r.outcome == "unverifiable_offline":
        r.findings.append(_finding("unverifiable_offline",
                                   f"{model_id}: signed by {r.signer}, not verifiable offline",
                                   f"{sig} ({how}) is signed by {_who(r)}{_when(r)}; it cannot be verified offline: "
                                   f"{r.reason}.{matched}{todo}{_tlog(r)}{_notes(r)}", evidence))  # fmt: skip
        return
    r.findings.append(_finding("unverified", f"{model_id}: signature {sig} not verified ({r.reason})",
                               f"{sig} ({how}) claims {_who(r)}{_when(r)}; not verified: {r.reason}.{matched}{todo}"
                               f"{_tlog(r)}{_notes(r)}", evidence))  # fmt: skip


def _given(r: SignatureResult) -> list[str]:
    return [f"key {r.key}"] if r.key else []


def _file_findings(r: SignatureResult, model_id: str, prefix: str, sig: str) -> None:
    """One ``signature_invalid`` per file that differs from what was signed (high when the signer is unverified)."""
    bad, trusted, why = r.bad_files, r.trusted, r.reason
    r.outcome, r.reason = "invalid", f"{len(bad)} file(s) do not match the signature"
    how = r.method or r.scheme
    valid = (f"{sig} is a valid {how} signature by {_who(r)}" if trusted
             else f"{sig} ({how}) by {_who(r)} checks out but its signer is not verified ({why})")  # fmt: skip
    for f in bad:
        path = f.path.split(":", 1)[0] if r.scheme == "model-signing" else f.path
        title, detail = _FILE_PROBLEM[f.status]
        r.findings.append(_finding("invalid", f"{model_id}: {f.path} {title}",
                                   f"{valid}, but {f.path} {title}. " + detail.format(e=f.expected, a=f.actual),
                                   {"path": prefix + path, "signature": r.signature, "sha256": f.actual,
                                    "expected_sha256": f.expected},
                                   severity=None if trusted else Severity.HIGH))  # fmt: skip
