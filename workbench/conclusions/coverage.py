"""Coverage: for each analysis, whether it examined something, had nothing to examine, or failed."""

from __future__ import annotations

from collections.abc import Mapping

from workbench.analysis import AnalysisResult
from workbench.conclusions.record import Coverage

__all__ = ["coverage_of"]


def coverage_of(
    titles: Mapping[str, str], results: Mapping[str, AnalysisResult], errors: Mapping[str, BaseException]
) -> dict[str, Coverage]:
    """One :class:`Coverage` per section, in ``titles`` order.

    Args:
        titles: section key → title (the run's sections, in report order).
        results: each section's result (a failed section may have an empty one).
        errors: sections whose analysis raised.

    A section is ``failed`` when it raised, ``not_applicable`` when its result says so (no such evidence), else
    ``analysed``; ``files`` are the evidence files the result says it read, ``limits`` what it could not examine.
    """
    out: dict[str, Coverage] = {}
    for key, title in titles.items():
        result = results.get(key)
        files = tuple(result.inputs) if result is not None else ()
        limits = tuple(result.limits) if result is not None else ()
        if key in errors:
            exc = errors[key]
            out[key] = Coverage(key, title, "failed", f"{type(exc).__name__}: {exc}", files)
        elif result is not None and result.not_applicable:
            out[key] = Coverage(key, title, "not_applicable", result.not_applicable, files)
        else:
            out[key] = Coverage(key, title, "analysed", "", files, limits)
    return out
