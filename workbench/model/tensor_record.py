"""The record of how one tensor differs between the suspect and the reference (what :mod:`workbench.model.tensors`
computes and every output shows), and its JSON form."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["STATUSES", "TensorDiff", "finite_or_none"]

STATUSES = ("added", "removed", "shape_changed", "dtype_changed", "modified", "identical")


@dataclass(frozen=True, slots=True)
class TensorDiff:
    """How one tensor differs between the suspect and the reference.

    Attributes:
        name: tensor name.
        status: one of :data:`STATUSES`.
        path: the file holding it (suspect's, or the reference's for a removed tensor), as displayed.
        reference_path: the reference's file holding it, as displayed (None when added; equal to ``path`` when
            removed).
        dtype / shape: in the suspect (None when removed).
        reference_dtype / reference_shape: in the reference (None when added).
        changed_elements: elements whose bytes differ (modified only).
        changed_fraction: ``changed_elements / numel``.
        max_abs_change: largest finite absolute difference (None for float8 kinds, which are compared as bytes).
        relative_change: ``‖Δ‖_F / ‖reference‖_F`` over finite values (None when the reference norm is 0).
        changed_rows: first :data:`MAX_ROWS_LISTED` indices along the first dimension that changed.
        changed_row_count: how many rows changed.
        changed_tokens: tokens of the changed rows, for an embedding matrix when a vocabulary was given.
        top_singular_energy: share of the change's energy in its top singular value (None for vectors).
        nonfinite: changed elements whose difference is not finite (NaN or infinity on either side); they are left
            out of the norms and the maximum.
    """

    name: str
    status: str
    path: str
    dtype: str | None = None
    shape: tuple[int, ...] | None = None
    reference_dtype: str | None = None
    reference_shape: tuple[int, ...] | None = None
    reference_path: str | None = None
    changed_elements: int | None = None
    changed_fraction: float | None = None
    max_abs_change: float | None = None
    relative_change: float | None = None
    changed_rows: tuple[int, ...] = ()
    changed_row_count: int = 0
    changed_tokens: tuple[str, ...] = ()
    top_singular_energy: float | None = None
    nonfinite: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The ``tensors`` entry of the ``diff-model`` JSON contract (metrics only for modified tensors)."""
        out: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "path": self.path,
            "dtype": self.dtype,
            "shape": list(self.shape) if self.shape is not None else None,
            "reference_dtype": self.reference_dtype,
            "reference_shape": list(self.reference_shape) if self.reference_shape is not None else None,
            "reference_path": self.reference_path,
        }
        if self.status == "modified":
            out.update(
                changed_elements=self.changed_elements,
                changed_fraction=self.changed_fraction,
                max_abs_change=finite_or_none(self.max_abs_change),
                relative_change=finite_or_none(self.relative_change),
                changed_rows=list(self.changed_rows),
                changed_row_count=self.changed_row_count,
                top_singular_energy=self.top_singular_energy,
                nonfinite=self.nonfinite,
            )
            if self.changed_tokens:
                out["changed_tokens"] = list(self.changed_tokens)
        return out


def finite_or_none(value: float | None) -> float | None:
    """The value, or None when it is None, NaN or infinite (JSON has no such numbers)."""
    return value if value is None or math.isfinite(value) else None
