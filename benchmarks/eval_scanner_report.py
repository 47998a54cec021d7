"""The output of ``benchmarks/eval_scanners.py``: the tables (text or Markdown) and the false-positive report that
lists, file by file, our high and critical findings on the benign set and which engineer's area each belongs to.
"""

from __future__ import annotations

import json
from typing import Any

from eval_scanner_tools import FORMAT_NOTICE, benign_noise, cell

__all__ = ["area_of", "fp_report", "render"]


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
        f"Our file-type notice (dangerous_file_type low, 'pickle-based: loading it runs the pickle') was given on "
        f"{notices} benign pickle-based files (low: below the false-positive line).",
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


def _miss_area(expect: dict[str, Any], got: list[str]) -> str:
    """Whose area a missed class is: code for code-bearing formats, pickles when the walk saw the import but did not
    call it dangerous, containers when the content was not reached."""
    wanted = expect.get("finding", {}).get("category", "")
    text = " ".join(got)
    if "custom_code_reference" in str(wanted) or "custom_code_reference" in text:
        return "code"
    if "pickle_suspicious_import" in text or "crash" in text:
        return "pickles"
    return "containers"


def fp_report(doc: dict[str, Any]) -> str:
    """Markdown: every benign file on which our scanner is noisy or crashes, and where its coverage is not full."""
    res = doc["results"]["workbench"]
    lines = [
        f"# Benign set: our high/critical findings ({doc['date']}, workbench {doc['versions']['workbench']})",
        "",
        "Written by `benchmarks/eval_scanners.py --fp-report`; each file scanned alone with `scan_model` (as "
        "`tests/model/test_benign.py` does). The file-type notice (dangerous_file_type low, pickle-based) is "
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
    lines += ["", "## Malicious classes whose stated outcome our scanner does not meet", ""]
    for s in doc["malicious"]:
        o = res.get(s.id)
        if o is not None and cell("workbench", s, o) != "✓":
            got = o.notes[:2] or [f"unexamined: {u}" for u in o.raw.get("unexamined", [])[:1]] or ["no finding"]
            area = _miss_area(s.expect, got)
            lines.append(f"- `{s.id}` ({area}; {s.cls}): expected {json.dumps(s.expect)}; got {'; '.join(got)[:300]}")
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
