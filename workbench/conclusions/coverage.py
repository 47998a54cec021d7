"""Coverage: for each analysis, whether it examined everything, part, nothing (no such evidence), or failed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from workbench.analysis import AnalysisResult
from workbench.conclusions.record import Coverage

__all__ = ["MAX_LISTED", "coverage_of"]

#: unexamined items named in a coverage detail (all of them stay in ``unexamined``)
MAX_LISTED = 5


def _partial_detail(unexamined: Sequence[str]) -> str:
    shown = "; ".join(unexamined[:MAX_LISTED])
    more = f" and {len(unexamined) - MAX_LISTED} more" if len(unexamined) > MAX_LISTED else ""
    return f"{len(unexamined)} not examined: {shown}{more}"


def coverage_of(
    titles: Mapping[str, str], results: Mapping[str, AnalysisResult], errors: Mapping[str, BaseException]
) -> dict[str, Coverage]:
    """One :class:`Coverage` per section, in ``titles`` order.

    Args:
        titles: section key → title (the run's sections, in report order; ``evidence`` for the inventory).
        results: each section's result (a failed section may have an empty one).
        errors: sections whose analysis raised.

    A section is ``failed`` when it raised, ``not_applicable`` when its result says so (no such evidence),
    ``partial`` when it left evidence unexamined (a cap or a budget), else ``analysed``; ``files`` are the evidence
    files the result says it read, ``limits`` what it could not examine in them.
    """
    out: dict[str, Coverage] = {}
    for key, title in titles.items():
        result = results.get(key)
        files = tuple(result.inputs) if result is not None else ()
        limits = tuple(result.limits) if result is not None else ()
        unexamined = tuple(result.unexamined) if result is not None else ()
        if key in errors:
            exc = errors[key]
            out[key] = Coverage(key, title, "failed", f"{type(exc).__name__}: {exc}", files, limits, unexamined)
        elif result is not None and result.not_applicable:
            out[key] = Coverage(key, title, "not_applicable", result.not_applicable, files, limits, unexamined)
        elif unexamined:
            out[key] = Coverage(key, title, "partial", _partial_detail(unexamined), files, limits, unexamined)
        else:
            out[key] = Coverage(key, title, "analysed", "", files, limits)
    return out
