"""Loader for the baseline class distribution (``predictions/baseline_distribution.json``)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, ClassVar

from workbench.errors import MalformedEvidence
from workbench.evidence.base import (
    INT64_MAX,
    LoadContext,
    Loaded,
    Loader,
    is_regular_file,
    read_json,
    sniff_json,
    sniff_text,
)
from workbench.records import EvidenceWarning

__all__ = ["BaselineDistributionLoader"]

#: Names that say "baseline distribution"; without one, only an object of shares summing to 1 is claimed.
_NAME_HINT = re.compile(r"baseline|distribution|class[-_]?(shares|counts|prior)|priors?\b", re.IGNORECASE)
_HINT_DIRS = {"predictions", "baseline"}
#: Tokenizer and model-folder files that are objects of str -> int too.
_MODEL_FILES = re.compile(r"^(vocab|added_tokens|tokenizer.*|special_tokens_map|.*config|.*results|.*metrics)\.json$")
_SUM_TOLERANCE = 1e-3


def _number(value: Any) -> float | int | None:
    """A finite JSON number within int64 range, else None (bools are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int):
        return value if abs(value) <= INT64_MAX else None
    return value if math.isfinite(value) and abs(value) <= INT64_MAX else None


def _is_shares(doc: dict) -> bool:
    values = [_number(v) for v in doc.values()]
    if len(values) < 2 or any(v is None or v < 0 for v in values):
        return False
    return any(isinstance(v, float) for v in values) and abs(sum(values) - 1.0) <= 0.01


class BaselineDistributionLoader(Loader):
    """The known-good share of each predicted class, the reference for behaviour drift.

    Accepts ``{"class": share, ...}``, ``{"class": count, ...}`` (all JSON integers) or
    ``{"distribution": {...}, "n": N}``. Counts are turned into shares; shares that do not sum to 1 are normalised
    with a warning; negative or non-numeric values are warnings and are dropped. ``meta`` holds ``mode``
    (``"shares"`` or ``"counts"``), ``n`` and ``total`` (sum of the raw values).

    Columns:
        label (str): class label.
        share (float): share of predictions in [0, 1]; shares sum to 1.
        count (int): number of predictions (given, or share × ``n`` rounded), null when unknown.
    """

    name: ClassVar[str] = "baseline_distribution"
    columns: ClassVar[dict[str, str]] = {"label": "str", "share": "float", "count": "int"}

    def detect(self, path: Path) -> bool:
        """``{"distribution": {...}}``, a flat object under a baseline-like name or folder, or shares summing to 1.

        Tokenizer, config and metrics files (``vocab.json``, ``config.json``, ``eval_results.json``) are never
        claimed by content alone.
        """
        if not is_regular_file(path) or path.suffix.lower() != ".json":
            return False
        hinted = bool(_NAME_HINT.search(path.stem)) or (
            path.parent.name.lower() in _HINT_DIRS and not _MODEL_FILES.match(path.name.lower())
        )
        doc = sniff_json(path)
        if isinstance(doc, dict):
            if isinstance(doc.get("distribution"), dict):
                return True
            if "files" in doc or not doc:
                return False
            if hinted:
                return all(_number(v) is not None or isinstance(v, str) for v in doc.values())
            return not _MODEL_FILES.match(path.name.lower()) and _is_shares(doc)
        text, complete = sniff_text(path)
        return hinted and not complete and text.lstrip().startswith("{")

    def load(self, path: Path, ctx: LoadContext) -> Loaded:
        """Parse the distribution and compute shares.

        Raises:
            MalformedEvidence: not an object, or no usable class value.
        """
        warnings: list[EvidenceWarning] = []
        doc = read_json(path, ctx, warnings)
        if not isinstance(doc, dict):
            raise MalformedEvidence(ctx.relpath, "baseline distribution is not a JSON object")
        meta: dict[str, Any] = {}
        dist, n = doc, None
        if isinstance(doc.get("distribution"), dict):
            dist, n = doc["distribution"], doc.get("n")
            if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n <= 0):
                warnings.append(EvidenceWarning(ctx.relpath, None, f"'n' is not a positive integer: {n!r:.40}"))
                n = None
        values: dict[str, float | int] = {}
        for label, raw in dist.items():
            value = _number(raw)
            if value is None or value < 0:
                what = "negative" if value is not None else "not a number"
                warnings.append(EvidenceWarning(ctx.relpath, None, f"class {label!r}: value {raw!r:.40} is {what}"))
                continue
            values[label] = value
        total = sum(values.values())
        if not values or total <= 0:
            raise MalformedEvidence(ctx.relpath, "no usable class value (all missing, negative, zero or not numbers)")
        counts = all(isinstance(v, int) for v in values.values())
        if counts and n is not None and n != total:
            warnings.append(EvidenceWarning(ctx.relpath, None, f"n={n} but the counts sum to {total}"))
        if not counts and abs(total - 1.0) > _SUM_TOLERANCE:
            warnings.append(EvidenceWarning(ctx.relpath, None, f"shares sum to {total:.6g}, not 1; normalised"))
        rows = [
            {
                "label": label,
                "share": value / total,
                "count": value if counts else (round(value / total * n) if n else None),
            }
            for label, value in values.items()
        ]
        meta.update(mode="counts" if counts else "shares", n=n if n is not None else (total if counts else None))
        meta["total"] = total
        return Loaded(self.name, ctx.relpath, self.make_frame(rows), warnings, meta)
