"""Loader for a fleet sweep's record of one model (``models/<n>.json`` of ``workbench sweep``), put in a case so that
the investigation of that model starts from what the sweep found.

The record is ``{"format": "workbench-sweep-model", "version": 1, "model", "registry", "verdict", "findings",
"digests", "reasons", ...}``; it is a lead, as a monitor alert is (the investigation's analyses confirm or refute
it): the monitor section reports it and the verdict's coverage rule knows what it suspects.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from workbench.errors import MalformedEvidence
from workbench.evidence.base import LoadContext, Loaded, Loader, is_regular_file, read_json, sniff_text
from workbench.records import EvidenceWarning

__all__ = ["RECORD_FORMAT", "SweepRecordLoader"]

RECORD_FORMAT = "workbench-sweep-model"
VERDICTS = ("compromised", "suspicious", "clean", "inconclusive")
_MARK = re.compile(r'"format"\s*:\s*"workbench-sweep-model"')


class SweepRecordLoader(Loader):
    """One model's sweep record: one row per finding the sweep recorded, as it stored them.

    Columns:
        severity (str): the finding's severity.
        category (str): its category.
        title (str): its title (at most 500 characters).
        path (str): the file it names, or empty.

    ``meta``: ``model``, ``registry``, ``verdict``, ``sweep``, ``rules``, ``reasons`` (list of sentences).
    """

    name: ClassVar[str] = "sweep_record"
    columns: ClassVar[dict[str, str]] = {"severity": "str", "category": "str", "title": "str", "path": "str"}

    def detect(self, path: Path) -> bool:
        """A ``.json`` whose head declares ``"format": "workbench-sweep-model"``."""
        if not is_regular_file(path) or path.suffix.lower() != ".json":
            return False
        text, _ = sniff_text(path)
        return bool(_MARK.search(text))

    def load(self, path: Path, ctx: LoadContext) -> Loaded:
        """The record's verdict and findings; a finding that is not an object is a warning."""
        warnings: list[EvidenceWarning] = []
        doc = read_json(path, ctx, warnings)
        if not isinstance(doc, dict) or doc.get("format") != RECORD_FORMAT:
            raise MalformedEvidence(ctx.relpath, f"not a {RECORD_FORMAT} record")
        verdict = doc.get("verdict")
        if verdict not in VERDICTS:
            raise MalformedEvidence(ctx.relpath, f"'verdict' is not one of {', '.join(VERDICTS)}")
        rows = []
        for i, f in enumerate(doc.get("findings") or []):
            if not isinstance(f, dict):
                warnings.append(EvidenceWarning(ctx.relpath, None, f"findings[{i}]: not an object"))
                continue
            ev = f.get("evidence") if isinstance(f.get("evidence"), dict) else {}
            rows.append({"severity": str(f.get("severity") or ""), "category": str(f.get("category") or ""),
                         "title": str(f.get("title") or "")[:500], "path": str(ev.get("path") or "")})  # fmt: skip
        reasons = [str(r)[:500] for r in doc.get("reasons") or [] if isinstance(r, str)][:10]
        meta = {"model": str(doc.get("model") or ""), "registry": str(doc.get("registry") or ""), "verdict": verdict,
                "sweep": doc.get("sweep") if isinstance(doc.get("sweep"), int) else None,
                "rules": str(doc.get("rules") or ""), "reasons": reasons}  # fmt: skip
        return Loaded(self.name, ctx.relpath, self.make_frame(rows), warnings, meta)
