"""picklescan as the first opinion on a pickle-bearing file, and where it and the genops analysis disagree.

picklescan (MIT) is called through its library API, once per file, on a handle this module opened without
following symlinks; it reads zips that Python's ``zipfile`` refuses and 7z archives. It is not called on archives
the inventory marked as decompression bombs or on files above ``ScanLimits.picklescan_max_bytes`` (it keeps every
opcode of a stream in memory). Its safety levels map to ours: innocuous -> safe, suspicious -> unknown,
dangerous -> dangerous; its ``unknown`` placeholders for unresolvable ``STACK_GLOBAL`` operands map to ``?``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from workbench.model.pickles import PickleImport, worst_safety
from workbench.model.policy import DANGEROUS, SAFE, UNKNOWN
from workbench.model.streams import open_evidence

__all__ = ["Disagreement", "PicklescanOpinion", "compare_opinions", "picklescan_opinion"]

_LEVELS = {"innocuous": SAFE, "suspicious": UNKNOWN, "dangerous": DANGEROUS}


@dataclass(frozen=True, slots=True)
class PicklescanOpinion:
    """picklescan's verdict on one file.

    Attributes:
        globals: ``(module.name, safety)`` pairs in our vocabulary (``?`` for parts picklescan could not resolve).
        scan_error: picklescan reported a parse error (it returns what it found before the error).
        error: the exception picklescan raised, or why it was not run (None when it ran).
        ran: whether picklescan was called.
    """

    globals: tuple[tuple[str, str], ...]
    scan_error: bool = False
    error: str | None = None
    ran: bool = True


@dataclass(frozen=True, slots=True)
class Disagreement:
    """One import on which picklescan and the genops analysis differ.

    Attributes:
        name: ``module.name``.
        ours: our class, or None when our analysis did not see the import.
        theirs: picklescan's class, or None when picklescan did not see it.
        note: what the difference means.
    """

    name: str
    ours: str | None
    theirs: str | None
    note: str


@contextmanager
def _quiet() -> Iterator[None]:
    log = logging.getLogger("picklescan")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def picklescan_opinion(path: Path, *, display: str) -> PicklescanOpinion:
    """Run picklescan once on one file.

    Args:
        path: the file (regular file, already inventoried).
        display: the name picklescan reports (relative path).

    Returns:
        The :class:`PicklescanOpinion`; a picklescan exception is recorded in ``error``, never raised.
    """
    from picklescan import scanner

    suffix = PurePosixPath(path.name).suffix.lower() or None
    try:
        with _quiet(), open_evidence(path) as fh:
            result = scanner.scan_bytes(fh, display, suffix)
    except Exception as exc:  # noqa: BLE001 - third-party parser on hostile input; its failure is recorded
        return PicklescanOpinion((), True, f"{type(exc).__name__}: {exc}")
    found = tuple(sorted({(_name(g.module, g.name), _LEVELS.get(g.safety.value, UNKNOWN)) for g in result.globals}))
    return PicklescanOpinion(found, bool(result.scan_err))


def _name(module: str, name: str) -> str:
    return f"{'?' if module == 'unknown' else module}.{'?' if name == 'unknown' else name}"


def compare_opinions(ours: Iterable[PickleImport], theirs: PicklescanOpinion) -> list[Disagreement]:
    """Imports seen by one analysis only, or classed differently by the two.

    Args:
        ours: every import our analysis found in the file (all streams and members).
        theirs: picklescan's opinion on the same file.

    Returns:
        Disagreements sorted by name; empty when picklescan did not run (its ``error`` says why).
    """
    if not theirs.ran:
        return []
    mine: dict[str, str] = {}
    for imp in ours:
        mine[imp.qualified] = worst_safety([mine.get(imp.qualified, SAFE), imp.safety])
    their: dict[str, str] = {}
    for name, safety in theirs.globals:
        their[name] = worst_safety([their.get(name, SAFE), safety])
    out: list[Disagreement] = []
    for name in sorted(set(mine) | set(their)):
        a, b = mine.get(name), their.get(name)
        if a == b:
            continue
        if b is None:
            note = "only the genops analysis sees this import (later stream, memo indirection or unusual member)"
        elif a is None:
            note = "only picklescan reports this import"
        else:
            note = f"classed {a} here, {b} by picklescan"
        out.append(Disagreement(name, a, b, note))
    return out
