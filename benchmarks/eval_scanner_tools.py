"""Helpers of ``benchmarks/eval_scanners.py``: the child-process workers, each scanner's output read into one shape,
the expected-outcome check, the tables and the false-positive report.

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
#: our file-type notice, not a false positive (see tests/model/test_benign.py)
FORMAT_NOTICE = ("dangerous_file_type", "high")
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
    """The high and critical findings that make a benign file a false positive (our format notice excepted)."""
    if outcome is None or not outcome.worst:
        return []
    if scanner != "workbench":
        return outcome.notes[:1] if RANK[outcome.worst] >= LOUD else []
    return [
        f"{f['severity']} {f['category']}: {f['title']}"
        for f in outcome.raw.get("findings", [])
        if RANK[f["severity"]] >= LOUD and (f["category"], f["severity"]) != FORMAT_NOTICE
    ]


# ------------------------------------------------------------------------------------------------ tables
def _table(header: list[str], rows: list[list[str]], *, markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        return "\n".join(lines + ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows])
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:{w}}}" for w in widths)
    return "\n".join([fmt.format(*header), fmt.format(*("-" * w for w in widths)), *(fmt.format(*r) for r in rows)])


def render(doc: dict[str, Any], *, markdown: bool) -> str:
    """The evaluation's output: versions, the malicious table, the benign table, costs, what was left out."""
    present, res = doc["present"], doc["results"]
    head = [f"Scanner evaluation, {doc['date']}.", ""]
    head += [f"- {n}: {doc['versions'][n] or 'not installed'}" for n in doc["versions"]]
    bad_rows, detected = [], dict.fromkeys(present, 0)
    for s in doc["malicious"]:
        cells = [cell(n, s, res[n].get(s.id)) for n in present]
        for n, c in zip(present, cells, strict=True):
            detected[n] += c == "✓"
        bad_rows.append([s.id, s.cls[:90], *cells])
    bad_rows.append(
        [
            "**detected**" if markdown else "DETECTED",
            f"of {len(doc['malicious'])} classes",
            *(str(detected[n]) for n in present),
        ]
    )
    groups: dict[str, list] = {}
    for s in doc["benign"]:
        groups.setdefault(s.cls, []).append(s)
    good_rows, totals = [], dict.fromkeys(present, 0)
    for group, items in sorted(groups.items()):
        counts = [sum(bool(benign_noise(n, res[n].get(s.id))) for s in items) for n in present]
        for n, c in zip(present, counts, strict=True):
            totals[n] += c
        good_rows.append([group, str(len(items)), *map(str, counts)])
    good_rows.append(["**all**" if markdown else "ALL", str(len(doc["benign"])), *(str(totals[n]) for n in present)])
    notices = sum(
        any((f["category"], f["severity"]) == FORMAT_NOTICE for f in o.raw.get("findings", []))
        for o in res.get("workbench", {}).values()
    )
    cost_rows = [
        [n, f"{doc['cost'][n]['seconds']:.0f}", f"{doc['cost'][n]['peak_mib']:.0f}", _cheap(doc, n)] for n in present
    ]
    parts = [
        "\n".join(head),
        "Malicious classes (✓ detected, ~ reported below high only, ✗ called clean, err failed or could not read "
        "it, skip not looked at, crash our scanner raised):",
        _table(["file", "class", *present], bad_rows, markdown=markdown),
        "Benign files: how many each scanner reported with a high or critical finding (false positives):",
        _table(["group", "files", *present], good_rows, markdown=markdown),
        f"Our file-type notice (dangerous_file_type high, 'pickle-based: loading it runs the pickle') was given on "
        f"{notices} benign pickle-based files and is not counted as a false positive.",
        "Cost (each call a child process, address space capped at 4 GiB):",
        _table(["scanner", "total s", "peak MiB", "cheap_opcodes.pkl s / MiB"], cost_rows, markdown=markdown),
    ]
    if doc["left_out"]:
        parts.append("Left out: " + "; ".join(doc["left_out"]))
    return "\n\n".join(parts)


def _cheap(doc: dict[str, Any], name: str) -> str:
    got = doc["cost"][name]["per_sample"].get("cheap_opcodes.pkl")
    return f"{got[0]:.1f} / {got[1]:.0f}" if got else "–"


# ------------------------------------------------------------------------------------------------ fp report
AREAS = (
    ("containers", ("inventory", "archives", "formats", "sniff", "decompress", "coverage", "npy_header", "tar_")),
    ("pickles", ("pickle", "policy")),
    ("code", ("keras", "h5_", "template", "safetensors", "protowire", "code", "embedded")),
)


def area_of(finding: str, path: str) -> str:
    """Which engineer's area a benign finding belongs to (containers, pickles, code)."""
    cat = finding.split(" ", 2)[1].rstrip(":") if finding.count(" ") >= 2 else ""
    if cat in ("pickle_suspicious_import", "pickle_dangerous_import", "scanner_disagreement"):
        return "pickles"
    if cat == "custom_code_reference":
        return "code"
    if cat in ("archive_anomaly", "file_type_mismatch", "dangerous_file_type"):
        return "containers"
    for area, words in AREAS:  # crashes and coverage: by the module named
        if any(w in finding for w in words):
            return area
    return "containers" if "not followed" not in finding else "pickles"


def _short(title: str) -> str:
    """A finding's title without its file and member names, cut to 70 characters."""
    rest = title.split(": ", 1)[1] if ": " in title else title
    return rest if len(rest) <= 70 else rest[:67] + "..."


def _known_noisy(known: dict[str, list[str]]) -> list[str]:
    """The ``KNOWN_NOISY`` entries of ``tests/model/test_benign.py``: the findings -> the files."""
    groups: dict[str, list[str]] = {}
    for rel, whats in known.items():
        groups.setdefault("; ".join(whats), []).append(rel)
    lines = []
    for why, rels in groups.items():
        lines += [f"    {why!r}: (", *(f"        {r!r}," for r in rels), "    ),"]
    return lines


def fp_report(doc: dict[str, Any]) -> str:
    """Markdown: every benign file on which our scanner is noisy or crashes, and where its coverage is not full."""
    res = doc["results"]["workbench"]
    lines = [
        f"# Benign set: our high/critical findings ({doc['date']}, workbench {doc['versions']['workbench']})",
        "",
        "Written by `benchmarks/eval_scanners.py --fp-report`; each file scanned alone with `scan_model` (as "
        "`tests/model/test_benign.py` does). The file-type notice (dangerous_file_type high, pickle-based) is "
        "not counted.",
        "",
        "| file | area | severity | category | title |",
        "|---|---|---|---|---|",
    ]
    known: dict[str, list[str]] = {}
    partial = []
    for s in doc["benign"]:
        o = res.get(s.id)
        if o is None:
            continue
        if o.status == "crash":
            note = o.notes[0]
            lines.append(f"| `{s.id}` | {area_of(note, s.id)} | crash | - | {note} |")
            continue
        for n in benign_noise("workbench", o):
            sev, cat, title = n.split(" ", 1)[0], n.split(" ", 2)[1].rstrip(":"), n.split(": ", 1)[1]
            lines.append(f"| `{s.id}` | {area_of(n, s.id)} | {sev} | {cat} | {title[:200].replace('|', '/')} |")
            what = f"{area_of(n, s.id)}: {sev} {cat}"
            if what not in known.setdefault(s.id, []):
                known[s.id].append(what)
        if o.raw.get("coverage"):
            partial.append(f"- `{s.id}`: {'; '.join(o.raw['coverage'].values())[:240]}")
    lines += [
        "",
        f"{len(known)} noisy files; crashes listed above.",
        "",
        "## Coverage not full on benign files (the verdict becomes inconclusive)",
        "",
        *(partial or ["none"]),
        "",
        "## KNOWN_NOISY (for the test)",
        "",
        "```python",
        *_known_noisy(known),
        "```",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    worker(sys.argv[1:])
