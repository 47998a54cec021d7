"""The fleet report of a sweep: ``fleet.json`` (the ``--json`` contract), ``fleet.html`` (offline, escaped) and one
``models/<n>.json`` per model in the ``findings.json`` style (``verdict``, ``findings``, the model's path and
digests), read from the store.

Contract of the JSON document: ``sweep`` (id, roots, rules digest, workbench version, counts), ``models`` (one
object per model: ``path`` relative to its registry root, ``registry``, ``verdict`` in the investigation's
vocabulary, ``previous_verdict``, ``findings``, ``digests``, ``signature``, ``baseline``, ``reasons``,
``unexamined``), ``by_verdict`` (counts), ``shared_files`` (a file digest of a compromised or suspicious model found
in other models too, with every model holding it) and ``changed`` (models whose verdict differs from the one before
this sweep).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from workbench.evidence.sweep_record import RECORD_FORMAT
from workbench.sweep.store import ModelRow, Store

__all__ = ["FLEET_HTML", "FLEET_JSON", "fleet_document", "write_fleet"]

FLEET_JSON = "fleet.json"
FLEET_HTML = "fleet.html"
_BAD = ("compromised", "suspicious")
#: categories whose finding names a tampered file (``signature_invalid`` names a file that does not match its
#: signed digest or that the signature does not cover: without a baseline, the only sign of an edited checkpoint)
_TAMPER = frozenset({"model_file_tampered", "unexpected_model_file", "pickle_dangerous_import", "tensor_modified",
                     "dangerous_file_type", "custom_code_reference", "signature_invalid"})  # fmt: skip


def _model_doc(m: ModelRow) -> dict[str, Any]:
    return {"path": m.rel, "registry": m.root, "verdict": m.verdict, "previous_verdict": m.previous,
            "findings": m.findings, "digests": m.digests, "signature": m.detail.get("signature"),
            "baseline": m.detail.get("baseline"), "reasons": m.detail.get("reasons", []),
            "unexamined": m.detail.get("unexamined", []), "sweep": m.sweep}  # fmt: skip


def fleet_document(store: Store, result: Any, roots: list[str]) -> dict[str, Any]:
    """The JSON document (module docstring) of the models under ``roots``."""
    rows = store.models(roots)
    models = [_model_doc(m) for m in rows]
    holders: dict[str, list[str]] = defaultdict(list)
    for m in rows:
        for rel, digest in m.digests.items():
            holders[digest].append(f"{m.rel}/{rel}")
    flagged: dict[str, set[str]] = defaultdict(set)
    for m in rows:
        if m.verdict not in _BAD:
            continue
        for f in m.findings:
            path = str(f.get("evidence", {}).get("path") or "")
            rel = path.split(f"{m.rel}/", 1)[-1] if f"{m.rel}/" in path else None
            if f.get("category") in _TAMPER and rel in m.digests:
                flagged[m.digests[rel]].add(f.get("category", ""))
    shared = [{"digest": d, "categories": sorted(c), "files": sorted(holders[d])} for d, c in sorted(flagged.items())
              if len(holders[d]) > 1]  # fmt: skip
    by = Counter(m.verdict for m in rows)
    return {
        "sweep": {"id": result.sweep, "roots": roots, "rules": result.rules, "workers": result.workers,
                  "models": len(rows), "models_judged": len(result.judged), "files": result.files,
                  "files_scanned": result.scanned, "files_reused": result.reused, "bytes_read": result.bytes_read,
                  "seconds": round(result.seconds, 2), "skipped": result.skipped,
                  "retro_hunt": bool(getattr(result, "retro", False))},
        "by_verdict": {v: by.get(v, 0) for v in ("compromised", "suspicious", "inconclusive", "clean")},
        "models": models,
        "shared_files": shared,
        "changed": [{"model": k.split("::", 1)[1], "registry": k.split("::", 1)[0], "from": before, "to": after}
                    for k, before, after in result.changed if before is not None],
    }  # fmt: skip


def write_fleet(out: Path, doc: dict[str, Any]) -> dict[str, Path]:
    """Write ``fleet.json``, ``fleet.html`` and ``models/<n>.json``; returns their paths."""
    from workbench.termsafe import json_text

    out.mkdir(parents=True, exist_ok=True)
    (out / "models").mkdir(exist_ok=True)
    for i, m in enumerate(doc["models"], 1):
        record = {"format": RECORD_FORMAT, "version": 1, "verdict": m["verdict"], "model": m["path"],
                  "registry": m["registry"], "sweep": m["sweep"], "rules": doc["sweep"]["rules"],
                  "findings": m["findings"], "digests": m["digests"], "reasons": m["reasons"]}  # fmt: skip
        (out / "models" / f"{i:06d}.json").write_text(json_text(record) + "\n")
    (out / FLEET_JSON).write_text(json_text(doc) + "\n")
    (out / FLEET_HTML).write_text(_html(doc), encoding="utf-8")
    return {"json": out / FLEET_JSON, "html": out / FLEET_HTML, "models": out / "models"}


def _html(doc: dict[str, Any]) -> str:
    import pandas as pd

    from workbench.htmlkit import STYLE, badge, html_table, note, text

    s = doc["sweep"]
    counts = " ".join(f"{badge(v)} {n}" for v, n in doc["by_verdict"].items())
    bad = [m for m in doc["models"] if m["verdict"] != "clean"]
    rows = [{"verdict": m["verdict"], "model": m["path"], "registry": m["registry"], "signature": m["signature"],
             "baseline": m["baseline"], "reason": (m["reasons"] or [""])[0]} for m in bad]  # fmt: skip
    findings = [{"severity": f["severity"], "model": m["path"], "category": f["category"], "title": f["title"]}
                for m in bad for f in m["findings"] if f["severity"] in ("critical", "high", "medium")]  # fmt: skip
    shared = [{"digest": x["digest"], "categories": ", ".join(x["categories"]), "files": ", ".join(x["files"])}
              for x in doc["shared_files"]]  # fmt: skip
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Fleet sweep</title>",
        STYLE,
        "<style>body{font-family:-apple-system,'Segoe UI',Roboto,Arial,sans-serif;max-width:1100px;margin:0 auto}"
        ".wb-verdict{font-size:13px;padding:2px 8px}</style></head><body>",
        f"<h1>Fleet sweep {text(s['id'])}</h1>",
        f"<p>{text(s['models'])} models in {text(', '.join(s['roots']))}; {text(s['files'])} files "
        f"({text(s['files_scanned'])} scanned, {text(s['files_reused'])} unchanged since the last sweep); rules "
        f"{text(s['rules'])}; {text(s['workers'])} workers; {text(s['seconds'])} s.</p>",
        f"<p>{counts}</p>",
        "<h2>Models that are not clean</h2>",
        html_table(
            pd.DataFrame(rows, columns=["verdict", "model", "registry", "signature", "baseline", "reason"]),
            mono=("model",),
        ),
        "<h2>Their findings (medium and above)</h2>",
        html_table(pd.DataFrame(findings, columns=["severity", "model", "category", "title"]), mono=("model",)),
        "<h2>Flagged files shared with other models</h2>",
        html_table(pd.DataFrame(shared, columns=["digest", "categories", "files"]), mono=("files",)),
        "<h2>Verdicts changed since the last sweep</h2>",
        html_table(pd.DataFrame(doc["changed"], columns=["model", "registry", "from", "to"]), mono=("model",)),
    ]
    if s["skipped"]:
        parts.append("<h2>Not examined</h2>" + "".join(note(x) for x in s["skipped"][:200]))
    parts.append("</body></html>\n")
    return "\n".join(parts)
