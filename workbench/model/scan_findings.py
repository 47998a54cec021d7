"""Findings of a model scan: severity and wording in one place, built from the inventory's facts.

* ``dangerous_file_type``: high for code files; low for a pickle-based format under its own name (a standing risk,
  not a sign of tampering); critical for a pickle in disguise (a name that does not say pickle).
* ``pickle_dangerous_import``: critical, one per dangerous global per file or member, with the call it makes.
* ``pickle_suspicious_import``: high, one per file or member listing the globals not on the safe list.
* ``archive_anomaly``: by kind (name mismatch, duplicate names, bombs, bad CRCs, encryption flags ...).
* ``custom_code_reference``: ``auto_map``, Keras ``Lambda`` layers and custom objects, chat templates beyond plain
  formatting, TensorFlow graph ops, TorchScript sources, safetensors metadata (by the worst reference).
* ``file_type_mismatch``: content and name disagree, or data follows the last pickle stream.
* ``scanner_disagreement``: picklescan and the genops analysis differ (medium when only picklescan sees danger);
  readers of the same pickle part ways (framed and unframed readings, ``pickletools`` stricter than the
  unpickler): high when an import that is not safe lies past the point only one reader reaches, else low.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from workbench.model.archives import ArchiveAnomaly
from workbench.model.code_reference import KIND_PHRASES
from workbench.model.pickle_report import PickleCall, PickleImport, PickleReport
from workbench.model.picklescan_opinion import Disagreement
from workbench.model.policy import DANGEROUS, SAFE, UNKNOWN
from workbench.records import Finding, Severity

if TYPE_CHECKING:
    from workbench.model.inventory import Artefact, CodeFinding

__all__ = ["ATLAS_CODE", "ATLAS_MODEL", "ATLAS_UNSAFE", "DETECTOR", "findings_for"]

DETECTOR = "workbench.model.scan"
ATLAS_UNSAFE = ("AML.T0011.000", "AML.T0018.002", "AML.T0010.003")
ATLAS_CODE = ("AML.T0011.000", "AML.T0010.003")
ATLAS_MODEL = ("AML.T0010.003",)
_ANOMALY_SEVERITY = {
    "name_mismatch": Severity.HIGH,
    "duplicate_name": Severity.HIGH,
    "unsafe_path": Severity.HIGH,
    "decompression_bomb": Severity.HIGH,
    "bad_crc": Severity.HIGH,
    "encrypted": Severity.MEDIUM,
    "size_mismatch": Severity.MEDIUM,
    "too_many_members": Severity.MEDIUM,
    "unreadable": Severity.MEDIUM,
    "bad_local_header": Severity.MEDIUM,
    "unsupported_method": Severity.LOW,
    "too_deep": Severity.LOW,
}
_WEIGHT_KINDS = {"safetensors", "pytorch", "gguf", "onnx", "keras", "npy", "npz", "hdf5"}
MAX_ANOMALIES_PER_FILE = 50


def _loc(path: str, member: str | None) -> str:
    return f"{path} [{member}]" if member else path


def _ev(path: str, member: str | None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"path": path}
    if member:
        out["member"] = member
    out.update({k: v for k, v in extra.items() if v is not None})
    return out


def findings_for(
    artefacts: Iterable[Artefact],
    pickles: Iterable[tuple[str, PickleReport]],
    anomalies: Iterable[tuple[str, ArchiveAnomaly]],
    code: Iterable[CodeFinding],
    disagreements: dict[str, list[Disagreement]],
    hashes: dict[str, str],
    *,
    outside_models: bool = False,
) -> list[Finding]:
    """All findings of a scan (see the module docstring for categories and severities).

    Args:
        outside_models: the files lie outside the model folders (:mod:`workbench.model.loose`): source code and
            scripts there are worth a look (low), executables medium, rather than code shipped inside a model (high).

    Returns:
        Findings in a stable order: artefacts, pickles, picklescan differences, archives, code references.
    """
    out: list[Finding] = []
    for art in artefacts:
        out.extend(_artefact(art, hashes.get(art.path) if art.member is None else None, outside_models))
    for path, report in pickles:
        out.extend(_pickle(path, report))
        out.extend(_readings(path, report))
    for path, items in disagreements.items():
        out.extend(_disagreements(path, items))
    per_file: dict[str, int] = defaultdict(int)
    for path, anomaly in anomalies:
        per_file[path] += 1
        if per_file[path] <= MAX_ANOMALIES_PER_FILE:
            out.append(_anomaly(path, anomaly))
    out.extend(_code(code))
    return out


#: severity of a code file found outside the model folders (by kind); pickles keep theirs wherever they are
_OUTSIDE_CODE = {"python": Severity.LOW, "script": Severity.LOW, "python_bytecode": Severity.MEDIUM,
                 "shared_library": Severity.MEDIUM}  # fmt: skip


_FORMAT_ONLY = " The format alone is not a sign of tampering: what the pickle imports is judged separately."


def _artefact(art: Artefact, sha256: str | None, outside_models: bool = False) -> list[Finding]:
    loc = _loc(art.path, art.member)
    findings = []
    if art.dangerous and (art.member is None or art.details.get("disguised")):
        disguised = bool(art.details.get("disguised"))
        # a pickle-based format under its own name is a standing risk, not a sign of tampering (what the pickle
        # imports is judged by the pickle findings): low, and the safetensors action; code files stay high
        plain_pickle = bool(art.details.get("pickle_format"))
        severity = Severity.CRITICAL if disguised else Severity.LOW if plain_pickle else Severity.HIGH
        where = ""
        if outside_models and art.member is None and art.kind in _OUTSIDE_CODE:
            severity = _OUTSIDE_CODE[art.kind]
            where = " It lies outside the model folders: nothing loads it with the model, but it was found in the case."
        findings.append(
            Finding.create(
                severity=severity,
                category="dangerous_file_type",
                detector=DETECTOR,
                atlas=ATLAS_UNSAFE,
                title=f"{loc}: {art.why}",
                detail=(
                    f"Detected from content as {art.kind}"
                    + (f"; its name suggests {art.declared}" if art.declared else "")
                    + ". This file type can execute arbitrary code when loaded."
                    + (_FORMAT_ONLY if plain_pickle and not disguised else "")
                    + where
                ),
                evidence=_ev(art.path, art.member, kind=art.kind, declared=art.declared, sha256=sha256),
            )
        )
    if art.details.get("mismatch"):
        severity = Severity.MEDIUM if art.declared in _WEIGHT_KINDS else Severity.LOW
        findings.append(
            Finding.create(
                severity=severity,
                category="file_type_mismatch",
                detector=DETECTOR,
                atlas=ATLAS_MODEL,
                title=f"{loc}: {art.why}",
                detail="The bytes do not match what the file name claims; a loader chosen by name may misread it.",
                evidence=_ev(art.path, art.member, kind=art.kind, declared=art.declared),
            )
        )
    if "trailing_offset" in art.details and art.kind != "pytorch_legacy":
        findings.append(
            Finding.create(
                severity=Severity.MEDIUM,
                category="file_type_mismatch",
                detector=DETECTOR,
                atlas=ATLAS_MODEL,
                title=f"{loc}: data after the last pickle stream (offset {art.details['trailing_offset']})",
                detail="Bytes that are not a pickle follow the pickle: an appended payload or a polyglot file.",
                evidence=_ev(art.path, art.member, offset=art.details["trailing_offset"], kind=art.kind),
            )
        )
    return findings


def _first_call(calls: list[PickleCall], name: str) -> PickleCall | None:
    return next((c for c in calls if c.callee == name), None)


def _pickle(path: str, report: PickleReport) -> list[Finding]:
    loc = _loc(path, report.member)
    calls = list(report.calls)
    by_name: dict[str, list[PickleImport]] = defaultdict(list)
    for imp in report.imports:
        by_name[imp.qualified].append(imp)
    out: list[Finding] = []
    unknown: list[str] = []
    for name, imps in by_name.items():
        safety = max(imps, key=lambda i: i.safety == DANGEROUS).safety
        if safety == UNKNOWN:
            unknown.append(name)
        if safety != DANGEROUS:
            continue
        first = next((i for i in imps if i.safety == DANGEROUS), imps[0])
        call = _first_call(calls, name)
        what = f"a pickle nested in it ({first.nested})" if first.nested else "pickle"
        title = f"{loc}: {what} imports {name}" + (f": {call.text}" if call else "")
        detail = (
            f"{first.opcode} at offset {first.offset} (stream {first.stream}"
            + (f" of the pickle carried as {first.nested}" if first.nested else "")
            + f") imports {name}"
            + (f", which resolves to {first.resolved}," if first.resolved else ",")
            + f" which the policy classes dangerous (rule {first.rule})."
            + (f" The load would call {call.text}." if call else "")
            + (f" {len(imps)} occurrences." if len(imps) > 1 else "")
            + (f" Note: {first.note}." if first.note else "")
        )
        out.append(
            Finding.create(
                severity=Severity.CRITICAL,
                category="pickle_dangerous_import",
                detector=DETECTOR,
                atlas=ATLAS_UNSAFE,
                title=title[:300],
                detail=detail,
                evidence=_ev(
                    path,
                    report.member,
                    **{
                        "import": name,
                        "offset": first.offset,
                        "stream": first.stream,
                        "opcode": first.opcode,
                        "call": call.text if call else None,
                        "nested": first.nested or None,
                        "resolved": first.resolved or None,
                    },
                ),
            )
        )
    if unknown:
        first = next(i for i in report.imports if i.qualified == unknown[0])
        shown = ", ".join(unknown[:20]) + (f" and {len(unknown) - 20} more" if len(unknown) > 20 else "")
        unknown_calls = [c.text for c in calls if c.safety == UNKNOWN][:5]
        out.append(
            Finding.create(
                severity=Severity.HIGH,
                category="pickle_suspicious_import",
                detector=DETECTOR,
                atlas=ATLAS_UNSAFE,
                title=f"{loc}: pickle imports {len(unknown)} global(s) not on the safe list: {shown}"[:300],
                detail=(
                    "Default-deny: these globals are neither known-safe nor known-dangerous; loading imports and may "
                    "call them." + (f" Calls: {'; '.join(unknown_calls)}." if unknown_calls else "")
                ),
                evidence=_ev(path, report.member, imports=shown, offset=first.offset, stream=first.stream),
            )
        )
    return out


def _readings(path: str, report: PickleReport) -> list[Finding]:
    """Where two readers of the same pickle part ways: framed and unframed readings (``divergences``), and
    ``pickletools`` (so picklescan and every genops-based scanner) stopping where the unpickler reads on."""
    out = []
    for kind, items, readers in (
        ("framed and unframed readings", report.divergences, "the C and the pure-Python unpickler"),
        ("pickletools and the unpickler", report.lenient, "pickletools-based scanners and the unpickler"),
    ):
        if not items:
            continue
        offset, _text = items[0]
        past = sorted({i.qualified for i in report.imports if i.safety != SAFE and not i.nested and i.offset > offset})
        listed = "; ".join(text for _, text in items[:5]) + ("" if len(items) <= 5 else f"; and {len(items) - 5} more")
        out.append(
            Finding.create(
                severity=Severity.HIGH if past else Severity.LOW,
                category="scanner_disagreement",
                detector=DETECTOR,
                atlas=("AML.T0011.000",),
                title=f"{_loc(path, report.member)}: {kind} of the pickle part ways at offset {offset}"[:300],
                detail=(
                    f"{readers} do not read these bytes alike: {listed}."
                    + (f" Past that point, only one reading sees: {', '.join(past[:10])}." if past else "")
                ),
                evidence=_ev(path, report.member, offset=offset, imports=", ".join(past[:20]) or None),
            )
        )
    return out


def _ours(d: Disagreement) -> str:
    return "did not see it" if d.ours is None else f"classes it {d.ours}"


def _disagreements(path: str, items: list[Disagreement]) -> list[Finding]:
    if not items:
        return []
    alarming = [d for d in items if d.theirs == DANGEROUS and d.ours != DANGEROUS]
    out = [
        Finding.create(
            severity=Severity.CRITICAL,
            category="pickle_dangerous_import",
            detector=DETECTOR,
            atlas=ATLAS_UNSAFE,
            title=f"{path}: picklescan reports dangerous import {d.name}",
            detail=f"picklescan classes {d.name} dangerous; the genops analysis {_ours(d)}.",
            evidence=_ev(path, None, **{"import": d.name, "source": "picklescan"}),
        )
        for d in alarming
    ]
    text = "; ".join(f"{d.name}: {d.note}" for d in items[:10])
    parse = any(d.name == "(parse)" for d in items)
    what = f"{len(items) - parse} import(s)" + (" and where parsing stops" if parse else "")
    out.append(
        Finding.create(
            severity=Severity.MEDIUM if alarming or parse else Severity.LOW,
            category="scanner_disagreement",
            detector=DETECTOR,
            atlas=("AML.T0011.000",),
            title=f"{path}: picklescan and the genops analysis disagree on {what}",
            detail=text + ("." if len(items) <= 10 else f"; and {len(items) - 10} more."),
            evidence=_ev(path, None, imports=", ".join(d.name for d in items[:20])),
        )
    )
    return out


def _anomaly(path: str, anomaly: ArchiveAnomaly) -> Finding:
    severity = _ANOMALY_SEVERITY.get(anomaly.kind, Severity.MEDIUM)
    label = anomaly.kind.replace("_", " ")
    return Finding.create(
        severity=severity,
        category="archive_anomaly",
        detector=DETECTOR,
        atlas=ATLAS_MODEL,
        title=f"{_loc(path, anomaly.member)}: {label}",
        detail=anomaly.detail,
        evidence=_ev(path, anomaly.member, anomaly=anomaly.kind),
    )


#: severities of code references, worst first (the finding takes the worst; its detail lists the worst first)
_CODE_RANK = {"high": 3, "medium": 2, "low": 1}


def _code(code: Iterable[CodeFinding]) -> list[Finding]:
    """One ``custom_code_reference`` finding per file or member and kind of reference (``KIND_PHRASES``), at the
    worst severity among them, listing up to 10 with their line or offset."""
    groups: dict[tuple[str, str | None, str], list[CodeFinding]] = defaultdict(list)
    for item in code:
        groups[(item.path, item.member, item.ref.kind)].append(item)
    out = []
    for (path, member, kind), items in groups.items():
        refs = sorted((i.ref for i in items), key=lambda r: -_CODE_RANK.get(r.severity, 0))
        severity = next((Severity(r.severity) for r in refs if r.severity in _CODE_RANK), Severity.MEDIUM)
        what = KIND_PHRASES.get(kind, kind)
        listed = "; ".join(
            f"{r.summary}"
            + (f" (line {r.line})" if r.line else "")
            + (f" (offset {r.offset})" if r.offset is not None else "")
            for r in refs[:10]
        )
        first_line = next((r.line for r in refs if r.line), None)
        out.append(
            Finding.create(
                severity=severity,
                category="custom_code_reference",
                detector=DETECTOR,
                atlas=ATLAS_CODE,
                title=f"{_loc(path, member)}: {what} ({len(refs)})",
                detail=listed + ("." if len(refs) <= 10 else f"; and {len(refs) - 10} more."),
                evidence=_ev(path, member, kind=kind, line=first_line),
            )
        )
    return out
