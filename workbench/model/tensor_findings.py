"""Findings for tensor diffs: what an edit of a checkpoint's tensors means, named by model and tensor.

:func:`tensor_findings` turns :class:`workbench.model.tensors.TensorDiff` records into ``tensor_*`` findings; a dense
change concentrated in one singular direction (a rank-1 edit, the trace of ROME-style model editing) is critical.
"""

from __future__ import annotations

import math
from typing import Any

from workbench.model import tensors as tdiff
from workbench.records import Finding, Severity

__all__ = ["RANK1_DENSITY", "RANK1_ENERGY", "tensor_findings"]

DETECTOR = "workbench.model.dirdiff"
ATLAS = ("AML.T0010.003", "AML.T0018.000")

#: a change is called a rank-1 edit when its top singular value holds this share of the energy ...
RANK1_ENERGY = 0.9
#: ... and it touches at least this fraction of the matrix (a few changed rows are rank-1 trivially)
RANK1_DENSITY = 0.5


def tensor_findings(diffs: list[tdiff.TensorDiff], *, model_id: str) -> list[Finding]:
    """Findings for every tensor that is not identical.

    ``tensor_added`` / ``tensor_removed`` / ``tensor_shape_changed`` (high), ``tensor_dtype_changed`` (medium),
    ``tensor_modified`` (high; critical for a dense rank-1 edit, the signature of ROME-style model editing).
    """
    out: list[Finding] = []
    for d in diffs:
        evidence: dict[str, Any] = {"path": d.path, "tensor": d.name}
        if d.status == "identical":
            continue
        if d.status in ("added", "removed"):
            dtype, shape = (d.dtype, d.shape) if d.status == "added" else (d.reference_dtype, d.reference_shape)
            title = f"{model_id}: tensor {d.name} {d.status} ({dtype} {_shape(shape)})"
            detail = ("The suspect has a tensor the reference lacks." if d.status == "added"
                      else "The reference has a tensor the suspect lacks.")  # fmt: skip
            out.append(_tensor_finding(Severity.HIGH, f"tensor_{d.status}", title, detail, evidence))
        elif d.status == "shape_changed":
            title = f"{model_id}: tensor {d.name} shape {_shape(d.reference_shape)} -> {_shape(d.shape)}"
            out.append(
                _tensor_finding(Severity.HIGH, "tensor_shape_changed", title, "The tensor was resized.", evidence)
            )
        elif d.status == "dtype_changed":
            title = f"{model_id}: tensor {d.name} dtype {d.reference_dtype} -> {d.dtype}"
            detail = "The tensor was converted to another element type (values not compared)."
            out.append(_tensor_finding(Severity.MEDIUM, "tensor_dtype_changed", title, detail, evidence))
        else:
            out.append(_modified(d, model_id, evidence))
    return out


def _modified(d: tdiff.TensorDiff, model_id: str, evidence: dict[str, Any]) -> Finding:
    energy, frac = d.top_singular_energy, d.changed_fraction or 0.0
    rank1 = energy is not None and energy >= RANK1_ENERGY and frac >= RANK1_DENSITY and d.changed_row_count > 1
    rel = "n/a" if d.relative_change is None else f"{d.relative_change:.3g}"
    rows = ", ".join(map(str, d.changed_rows[:20])) + (" ..." if d.changed_row_count > 20 else "")
    parts = [f"{d.changed_elements} of {math.prod(d.shape or ())} elements changed ({frac:.2%}), "
             f"max |change| {d.max_abs_change if d.max_abs_change is not None else 'n/a'}, "
             f"relative Frobenius change {rel}.", f"{d.changed_row_count} row(s) changed: {rows}."]  # fmt: skip
    if d.changed_tokens:
        parts.append("Tokens of the changed embedding rows: " + ", ".join(repr(t) for t in d.changed_tokens[:20]))
    if energy is not None:
        parts.append(f"Top singular value holds {energy:.4f} of the change's energy.")
    if d.nonfinite:
        parts.append(f"{d.nonfinite} element(s) became NaN or infinite.")
    if rank1:
        title = f"{model_id}: rank-1 edit of tensor {d.name} (ROME-style model editing), relative change {rel}"
        parts.append("A dense change concentrated in one singular direction is how ROME-style editing (as in "
                     "PoisonGPT) implants a targeted falsehood or backdoor.")  # fmt: skip
    elif d.changed_tokens:
        title = f"{model_id}: tensor {d.name}: embedding rows of {d.changed_row_count} token(s) changed"
    else:
        title = f"{model_id}: tensor {d.name} modified ({frac:.2%} of elements, relative change {rel})"
    evidence.update(changed_elements=d.changed_elements, changed_row_count=d.changed_row_count, rows=rows,
                    relative_change=tdiff.finite_or_none(d.relative_change), top_singular_energy=energy)  # fmt: skip
    if d.changed_tokens:
        evidence["tokens"] = ", ".join(d.changed_tokens[:20])
    severity = Severity.CRITICAL if rank1 else Severity.HIGH
    return _tensor_finding(severity, "tensor_modified", title, " ".join(parts), evidence)


def _tensor_finding(severity: Severity, category: str, title: str, detail: str, evidence: dict[str, Any]) -> Finding:
    return Finding.create(severity=severity, category=category, title=title, detail=detail, detector=DETECTOR,
                          evidence=evidence, atlas=ATLAS)  # fmt: skip


def _shape(shape: tuple[int, ...] | None) -> str:
    return "[" + ", ".join(map(str, shape or ())) + "]"
