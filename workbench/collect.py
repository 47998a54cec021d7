"""Load every evidence file of a case through the loader registry.

Files inside the suspect and reference model folders are model artefacts, not captured host state: only the loaders
listed in :data:`MODEL_DIR_LOADERS` apply there (a tokenizer's ``vocab.json`` is not a baseline distribution). Files
inside a captured Python environment (role ``environment``) are read by no loader: the installed-package analysis
reads them (a ``requirements.txt`` shipped inside a package is not the case's baseline). A file that no loader claims
is simply inventoried; an unusable one becomes a recorded warning and an ``evidence_malformed`` finding, and the run
goes on. A file over its loader's size cap, and the parts of a file a loader's caps left unread, are added to
``Case.unexamined`` (the evidence coverage becomes partial). Every text a loader returns is valid Unicode
(:func:`_make_text_valid`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import pandas as pd

from workbench import safeio
from workbench.case import Case
from workbench.errors import MalformedEvidence
from workbench.evidence import REGISTRY, LoadContext, Loaded
from workbench.evidence.base import OverCap
from workbench.evidence.sniffing import sniffing
from workbench.records import EvidenceWarning, Finding, Severity
from workbench.textsafe import clean_data, clean_text, is_clean, replaced_reason

__all__ = ["EvidenceSet", "collect_evidence"]

MODEL_DIR_LOADERS = {"compromised_marker", "signature_manifest"}
#: rows whose replaced text gets a warning of its own (the rest are counted in one)
MAX_TEXT_WARNINGS = 3


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
        with sniffing(path):  # every loader's detect shares one stat and one read of the head
            loader = REGISTRY.detect(path)
        if loader is not None and f.role == "model" and loader.name not in MODEL_DIR_LOADERS:
            loader = None
        if f.role == "environment":  # an installed package's files: read by the installed-package analysis only
            loader = None
        result.kinds[f.relpath] = loader.name if loader else None
        if loader is None:
            continue
        try:
            loaded = loader.load(path, LoadContext(relpath=f.relpath, naive_tz=case.meta.tz))
        except OverCap as exc:  # a cap, not damage: the file is evidence that was not examined
            result.warnings.append(EvidenceWarning(f.relpath, exc.line, exc.reason))
            case.unexamined.append(f"{f.relpath}: {exc.reason}")
            continue
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
        _make_text_valid(loaded)
        result.by_kind[loader.name].append(loaded)
        result.warnings.extend(loaded.warnings)
        case.unexamined.extend(loaded.unexamined)
    return result


def _make_text_valid(loaded: Loaded) -> None:
    """Every text a loader returns is valid Unicode: lone surrogates left in its frame or meta (a plugin loader's, or
    one a built-in loader missed) become U+FFFD, with a warning naming the file and the first lines concerned.

    Frames handed over as builders (made on first use) are not built here; their loaders clean at the source.
    """
    meta, changed = clean_data(loaded.meta)
    if changed:
        loaded.meta = meta
        loaded.warnings.append(EvidenceWarning(loaded.path, None, replaced_reason("file-level text")))
    frame = loaded._frame
    if not isinstance(frame, pd.DataFrame) or frame.empty:
        return
    rows: set[int] = set()
    for column in frame.columns:
        if frame[column].dtype != object:
            continue
        values = frame[column].tolist()
        bad = [i for i, v in enumerate(values) if isinstance(v, str) and not is_clean(v)]
        if bad:
            for i in bad:
                values[i] = clean_text(values[i])[0]
            frame[column] = pd.Series(values, index=frame.index, dtype=object)
            rows.update(bad)
    if rows:
        lines = frame["line"].tolist() if "line" in frame.columns else [None] * len(frame)
        first = sorted(rows)[:MAX_TEXT_WARNINGS]
        for i in first:
            line = lines[i]
            loaded.warnings.append(
                EvidenceWarning(loaded.path, None if pd.isna(line) else int(line), replaced_reason())
            )
        if len(rows) > len(first):
            loaded.warnings.append(EvidenceWarning(loaded.path, None, f"{replaced_reason()} on {len(rows) - len(first)}"
                                                   " more row(s)"))  # fmt: skip
