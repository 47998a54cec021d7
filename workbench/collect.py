"""Load every evidence file of a case through the loader registry.

Files inside the suspect and reference model folders are model artefacts, not captured host state: only the
loaders listed in :data:`MODEL_DIR_LOADERS` apply there (a tokenizer's ``vocab.json`` is not a baseline
distribution). A file that no loader claims is simply inventoried; an unusable one becomes a recorded warning
and an ``evidence_malformed`` finding, and the run goes on.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from workbench import safeio
from workbench.case import Case
from workbench.errors import MalformedEvidence
from workbench.evidence import REGISTRY, LoadContext, Loaded
from workbench.records import EvidenceWarning, Finding, Severity

__all__ = ["EvidenceSet", "collect_evidence"]

MODEL_DIR_LOADERS = {"compromised_marker", "signature_manifest"}


@dataclass(slots=True)
class EvidenceSet:
    """Everything the loaders made of a case.

    Attributes:
        by_kind: loader name -> loaded files (in path order).
        kinds: relative path -> loader name (None when no loader claimed the file).
        warnings: every per-line and per-file warning.
        findings: ``evidence_malformed`` findings for files that could not be used.
    """

    by_kind: dict[str, list[Loaded]] = field(default_factory=lambda: defaultdict(list))
    kinds: dict[str, str | None] = field(default_factory=dict)
    warnings: list[EvidenceWarning] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def first(self, kind: str) -> Loaded | None:
        """The first loaded file of a kind, or None."""
        items = self.by_kind.get(kind) or []
        return items[0] if items else None

    def all(self, kind: str) -> list[Loaded]:
        return list(self.by_kind.get(kind) or [])


def collect_evidence(case: Case) -> EvidenceSet:
    """Detect and load every inventoried file.

    Returns:
        The :class:`EvidenceSet`; never raises for a bad file.
    """
    result = EvidenceSet()
    result.warnings.extend(case.warnings)
    for f in case.files:
        path = case.root / f.fs_relpath
        if problem := safeio.not_regular(path):  # swapped for a FIFO, device or link since the inventory
            result.warnings.append(EvidenceWarning(f.relpath, None, problem))
            case.unexamined.append(f"{f.relpath}: {problem}")
            result.kinds[f.relpath] = None
            continue
        loader = REGISTRY.detect(path)
        if loader is not None and f.role == "model" and loader.name not in MODEL_DIR_LOADERS:
            loader = None
        result.kinds[f.relpath] = loader.name if loader else None
        if loader is None:
            continue
        try:
            loaded = loader.load(path, LoadContext(relpath=f.relpath, naive_tz=case.meta.tz))
        except MalformedEvidence as exc:
            result.warnings.append(EvidenceWarning(f.relpath, exc.line, exc.reason))
            result.findings.append(
                Finding.create(
                    severity=Severity.MEDIUM,
                    category="evidence_malformed",
                    detector="workbench.collect",
                    title=f"{f.relpath}: unusable {loader.name.replace('_', ' ')}",
                    detail=exc.reason,
                    evidence={"path": f.relpath, "line": exc.line, "kind": loader.name},
                )
            )
            continue
        result.by_kind[loader.name].append(loaded)
        result.warnings.extend(loaded.warnings)
    return result
