"""A swept model's verdict: its files' scan findings and its signature and baseline findings, judged by the
investigation's own rule (:func:`workbench.conclusions.verdict.decide`), so that a sweep and an investigation say
``compromised``, ``suspicious``, ``clean`` or ``inconclusive`` for the same reasons. A file or a comparison that
could not be made leaves the model section ``partial``: such a model is never ``clean``."""

from __future__ import annotations

from typing import Any

from workbench.conclusions.record import Coverage
from workbench.conclusions.verdict import decide
from workbench.records import Finding
from workbench.sweep.registry import ModelRef

__all__ = ["model_verdict"]


def model_verdict(ref: ModelRef, files: dict[str, dict[str, Any]],
                  model: dict[str, Any]) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:  # fmt: skip
    """``(verdict, findings as dicts, detail)`` of one model from its file results and its model task's result."""
    found: dict[str, Finding] = {}
    for d in [x for r in files.values() for x in r.get("findings", ())] + list(model.get("findings", ())):
        f = Finding.from_dict(d)
        found.setdefault(f.id, f)
    unexamined = [u for r in files.values() for u in r.get("unexamined", ())]
    unexamined += [f"{ref.rel}/{rel}: not analysed ({r['error']})" for rel, r in sorted(files.items())
                   if r.get("error")]  # fmt: skip
    unexamined += list(model.get("unexamined", ())) + list(ref.skipped)
    if model.get("error"):
        unexamined.append(f"{ref.rel}: signature and baseline not checked ({model['error']})")
    status = "partial" if unexamined else "analysed"
    coverage = {"model": Coverage("model", "Model scan", status, "; ".join(unexamined[:3]),
                                  files=tuple(sorted(files)), limits=tuple(model.get("limits", ())),
                                  unexamined=tuple(unexamined))}  # fmt: skip
    findings = sorted(found.values(), key=lambda f: (-f.severity.rank, f.category, f.title))
    verdict, reasons = decide(findings, coverage)
    detail = {"signature": model.get("signature"), "baseline": model.get("baseline"),
              "reasons": [r.sentence for r in reasons], "unexamined": unexamined,
              "limits": list(model.get("limits", ()))}  # fmt: skip
    return verdict, [f.to_dict() for f in findings], detail
