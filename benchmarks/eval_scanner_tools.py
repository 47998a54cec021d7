"""Helpers of ``benchmarks/eval_scanners.py``: the child-process workers, each scanner's output read into one shape,
the expected-outcome check (the tables and the false-positive report are in ``eval_scanner_report.py``).

Run as a worker (by ``eval_scanners.py`` only)::

    python eval_scanner_tools.py workbench FOLDER [--each FILE ...]   # scan_model of the folder, or of each file
    python eval_scanner_tools.py picklescan FOLDER --each FILE ...    # picklescan.scanner.scan_file_path per file

A worker prints one JSON document on its last stdout line: ``{relpath: record}``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1, "info": 0}
LOUD = 3
#: our file-type notice of a pickle-based format (low: below the noise line, see tests/model/test_benign.py)
FORMAT_NOTICE = ("dangerous_file_type", "low")
#: a coverage class: the expectation is the scan's coverage, not a finding
FICKLING = {
    "OVERTLY_MALICIOUS": "critical",
    "LIKELY_OVERTLY_MALICIOUS": "critical",
    "LIKELY_UNSAFE": "high",
    "SUSPICIOUS": "medium",
    "POSSIBLY_UNSAFE": "medium",
    "LIKELY_SAFE": None,
}
MODELAUDIT = {"critical": "critical", "warning": "medium", "info": None, "debug": None}


@dataclass(slots=True)
class Outcome:
    """What one scanner said about one file.

    Attributes:
        worst: the worst severity, mapped onto ours (None: nothing reported).
        status: ``flagged``, ``clean``, ``error`` (failed, or said it could not read it), ``skipped`` (did not
            look at it), ``crash`` (our scanner raised).
        notes: short texts (findings, errors); partial: it said the file was not fully scanned.
        raw: the workbench worker's record (findings, coverage, unexamined) for the expectation check.
    """

    worst: str | None = None
    status: str = "clean"
    notes: list[str] = field(default_factory=list)
    partial: bool = False
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Run:
    """One scanner call: per-file outcomes (relative paths), wall time, peak resident memory (MiB), error."""

    outcomes: dict[str, Outcome]
    seconds: float
    peak_mib: float
    error: str = ""


def worst_of(severities: list[str | None]) -> str | None:
    known = [s for s in severities if s]
    return max(known, key=RANK.__getitem__) if known else None


def dist_version(python: str, dist: str) -> str | None:
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
    return done.stdout.strip() or None if done.returncode == 0 else None


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""


# ------------------------------------------------------------------------------------------------ workers
def _workbench_record(path: Path) -> dict[str, Any]:
    from workbench.model.scan import scan_model

    try:
        scan = scan_model(path)
    except Exception as exc:  # noqa: BLE001 - the evaluation records a crash and goes on
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/workbench/" in f.filename]
        where = f"{frames[-1].filename.split('/workbench/', 1)[1]}:{frames[-1].lineno}" if frames else "?"
        return {"error": f"{type(exc).__name__}: {exc}"[:300], "where": f"workbench/{where}"}
    return {
        "findings": [
            {
                "severity": f.severity.value,
                "category": f.category,
                "title": f.title,
                "text": f"{f.title} {f.detail} {json.dumps(dict(f.evidence), default=str)}",
            }
            for f in scan.findings
        ],
        "coverage": {
            f"{a.path}{' [' + a.member + ']' if a.member else ''}": getattr(a, "coverage", "analysed")
            for a in scan.inventory.artefacts
            if getattr(a, "coverage", "analysed") != "analysed"
        },
        "unexamined": list(scan.unexamined),
    }


def _picklescan_record(path: Path) -> dict[str, Any]:
    from picklescan.scanner import scan_file_path

    try:
        res = scan_file_path(str(path))
    except Exception as exc:  # noqa: BLE001 - picklescan failing is an outcome
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}
    return {
        "globals": [[f"{g.module}.{g.name}", g.safety.value] for g in res.globals],
        "scan_err": res.scan_err,
        "scanned": res.scanned_files,
    }


def worker(argv: list[str]) -> None:
    tool, folder, *rest = argv
    folder_path = Path(folder)
    files = [Path(p) for p in rest[1:]] if rest[:1] == ["--each"] else []
    record = _workbench_record if tool == "workbench" else _picklescan_record
    if files:
        doc = {p.relative_to(folder_path).as_posix(): record(p) for p in files}
    else:
        one = record(folder_path)
        doc = {p.name: one for p in folder_path.iterdir()}
    print("\n" + json.dumps(doc))


def parse_worker(result: tuple, folder: Path, files: list[Path], read) -> Run:
    code, out, err, secs, peak = result
    try:
        doc = json.loads(out.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        why = "killed (timeout)" if code == -9 else last_line(err) or f"exit {code}"
        return Run({}, secs, peak, error=why)
    return Run({rel: read(rec) for rel, rec in doc.items()}, secs, peak)


# ------------------------------------------------------------------------------------------------ reading outputs
def workbench_outcomes(rec: dict[str, Any]) -> Outcome:
    if "error" in rec:
        return Outcome(status="crash", notes=[f"{rec['error']} ({rec.get('where', '?')})"], raw=rec)
    sev = worst_of([f["severity"] for f in rec["findings"]])
    loud = [f for f in rec["findings"] if RANK[f["severity"]] >= LOUD]
    partial = bool(rec["unexamined"] or rec["coverage"])
    status = "flagged" if sev and RANK[sev] >= RANK["medium"] else "clean"
    return Outcome(sev, status, [f"{f['severity']} {f['category']}: {f['title']}" for f in loud], partial, rec)


def picklescan_outcomes(rec: dict[str, Any]) -> Outcome:
    if "error" in rec:
        return Outcome(status="error", notes=[rec["error"]])
    dangerous = [n for n, s in rec["globals"] if s == "dangerous"]
    suspicious = [n for n, s in rec["globals"] if s == "suspicious"]
    sev = "critical" if dangerous else "medium" if suspicious else None
    if sev:
        return Outcome(sev, "flagged", [f"dangerous {n}" for n in dangerous] or [f"suspicious {suspicious[0]}"])
    if rec["scan_err"]:
        return Outcome(status="error", notes=["scan error"], partial=True)
    return Outcome(status="clean" if rec["scanned"] else "skipped")


def _owner(location: str, rels: list[str]) -> str | None:
    """The file (relative path) an issue's location names: the longest whose path ends where the location's
    file name ends (followed by nothing, a space, ``:`` or ``!``)."""
    for rel in sorted(rels, key=len, reverse=True):
        i = location.find(rel)
        if i >= 0 and (i + len(rel) == len(location) or location[i + len(rel)] in " :!/"):
            return rel
    return None


def modelscan_outcomes(doc: dict[str, Any], folder: Path, files: list[Path]) -> dict[str, Outcome]:
    rels = [p.relative_to(folder).as_posix() for p in files]
    out = {r: Outcome(status="skipped") for r in rels}
    scanned = doc.get("summary", {}).get("scanned", {}).get("scanned_files", [])
    for r in rels:
        if any(_owner(s, [r]) for s in scanned):
            out[r].status = "clean"
    for e in doc.get("errors", []):
        r = _owner(str(e.get("source", "")), rels)
        if r and out[r].status != "flagged":
            out[r].status, out[r].partial = "error", True
            out[r].notes.append(str(e.get("description", ""))[:160])
    for issue in doc.get("issues", []):
        r = _owner(str(issue.get("source", "")), rels)
        if r:
            sev = str(issue.get("severity", "")).lower() or "medium"
            o = out[r]
            o.worst, o.status = worst_of([o.worst, sev]), "flagged"
            o.notes.append(f"{sev} {issue.get('operator', '')} {str(issue.get('description', ''))[:120]}")
    return out


def modelaudit_outcomes(doc: dict[str, Any], folder: Path, files: list[Path]) -> dict[str, Outcome]:
    rels = [p.relative_to(folder).as_posix() for p in files]
    out = {r: Outcome(status="skipped") for r in rels}
    for asset in doc.get("assets", []):
        r = _owner(str(asset.get("path", "")), rels)
        if r:
            out[r].status = "clean"
    for issue in doc.get("issues", []):
        r = _owner(str(issue.get("location") or ""), rels)
        sev = MODELAUDIT.get(str(issue.get("severity")))
        if r is None:
            continue
        o = out[r]
        message = str(issue.get("message", ""))
        if "stopped before" in message or message.lower().startswith(("error", "failed", "unable", "cannot")):
            o.partial = True
        if sev:
            o.worst, o.status = worst_of([o.worst, sev]), "flagged"
            if RANK[sev] >= LOUD or not o.notes:
                o.notes.append(f"{issue.get('severity')} {message[:140]}")
    return out


def fickling_outcome(docs: list[dict[str, Any]], code: int, text: str) -> Outcome:
    """fickling writes one JSON document per pickle it analysed; the worst one counts."""
    docs = [d for d in docs if isinstance(d, dict) and "severity" in d]
    if not docs:
        return Outcome(status="error", notes=[last_line(text) or f"exit {code}"], partial=True)
    doc = max(docs, key=lambda d: RANK.get(FICKLING.get(str(d["severity"])) or "info", 0))
    sev = FICKLING.get(str(doc["severity"]))
    if sev is None:
        return Outcome(status="clean")
    return Outcome(sev, "flagged", [f"{doc['severity']}: {str(doc.get('analysis', ''))[:140]}"])


def json_docs(text: str) -> list[Any]:
    """Every JSON document in ``text`` (some tools append one per input to the same file)."""
    decoder, docs, i = json.JSONDecoder(), [], 0
    while (i := _skip_ws(text, i)) < len(text):
        try:
            doc, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            break
        docs.append(doc)
    return docs


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


# ------------------------------------------------------------------------------------------------ expectations
def expect_met(expect: dict[str, Any], rec: dict[str, Any]) -> bool:
    """Whether our worker's record meets a ``corpus.yaml``-shaped expectation (finding, partial, unexamined)."""
    if "findings" not in rec:
        return False
    ok = True
    if want := expect.get("finding"):
        cats = want["category"] if isinstance(want["category"], list) else [want["category"]]
        floor = RANK[want.get("severity", "info")]
        text = str(want.get("mentions", ""))
        ok &= any(f["category"] in cats and RANK[f["severity"]] >= floor and text in f["text"] for f in rec["findings"])
    if expect.get("partial"):
        ok &= bool(rec["unexamined"])
    if text := expect.get("unexamined_mentions"):
        ok &= any(text in u for u in rec["unexamined"])
    return ok


def cell(scanner: str, sample, outcome: Outcome | None) -> str:
    """The table cell: ✓ detected, ~ a medium or lower finding only, ✗ clean, err, skip, crash."""
    if outcome is None:
        return "–"
    coverage_class = "finding" not in sample.expect
    if scanner == "workbench":
        if outcome.status == "crash":
            return "crash"
        if expect_met(sample.expect, outcome.raw):
            return "✓"
        return "~" if outcome.worst else "✗"
    if outcome.worst and RANK[outcome.worst] >= LOUD:
        return "✓"
    if coverage_class and (outcome.partial or outcome.status == "error"):
        return "✓"
    return {"error": "err", "skipped": "skip"}.get(outcome.status, "~" if outcome.worst else "✗")


def benign_noise(scanner: str, outcome: Outcome | None) -> list[str]:
    """The high and critical findings that make a benign file a false positive."""
    if outcome is None or not outcome.worst:
        return []
    if scanner != "workbench":
        return outcome.notes[:1] if RANK[outcome.worst] >= LOUD else []
    return [
        f"{f['severity']} {f['category']}: {f['title']}"
        for f in outcome.raw.get("findings", [])
        if RANK[f["severity"]] >= LOUD
    ]


if __name__ == "__main__":
    worker(sys.argv[1:])
