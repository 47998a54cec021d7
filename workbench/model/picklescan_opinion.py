"""picklescan as the first opinion on a pickle-bearing file, and where it and the genops analysis disagree.

picklescan (MIT) is called through its library API, once per file, in a child process (``python -I -m
workbench.model.picklescan_opinion``) reading the descriptor this module opened without following symlinks; it
reads zips that Python's ``zipfile`` refuses and 7z archives. picklescan keeps every opcode of a stream in a list
(10 GiB for 100 MB of one-byte opcodes), so the child runs under an address-space limit (:data:`MEMORY_LIMIT`),
a CPU-time limit and a wall-clock timeout: a blow-up ends the child, and the opinion says "not available" with
the reason, never more. It is not called on archives the inventory marked as decompression bombs or on files above
``ScanLimits.picklescan_max_bytes``. Its safety levels map to ours: innocuous -> safe, suspicious -> unknown,
dangerous -> dangerous; its ``unknown`` placeholders for unresolvable ``STACK_GLOBAL`` operands map to ``?``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from workbench.model.pickle_report import PickleImport, PickleReport, worst_safety
from workbench.model.policy import DANGEROUS, SAFE, UNKNOWN
from workbench.model.streams import open_evidence

__all__ = ["MEMORY_LIMIT", "TIMEOUT", "Disagreement", "PicklescanOpinion", "compare_opinions", "picklescan_opinion"]

_LEVELS = {"innocuous": SAFE, "suspicious": UNKNOWN, "dangerous": DANGEROUS}
MIB = 1024 * 1024
#: address-space limit of the picklescan child (the interpreter and picklescan need about 100 MiB of it)
MEMORY_LIMIT = 1024 * MIB
#: CPU seconds and wall-clock seconds the child may take
CPU_SECONDS, TIMEOUT = 120, 180
#: a child whose peak resident memory comes this close to its limit ran out of memory
_MEMORY_MARGIN = 96 * MIB
#: globals kept from the child's answer
MAX_GLOBALS = 10_000


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


def picklescan_opinion(
    path: Path, *, display: str, memory_limit: int = MEMORY_LIMIT, timeout: float = TIMEOUT
) -> PicklescanOpinion:
    """Run picklescan once on one file, in a bounded child process.

    Args:
        path: the file (regular file, already inventoried).
        display: the name picklescan reports (relative path).
        memory_limit: the child's address-space limit in bytes; timeout: its wall-clock limit in seconds.

    Returns:
        The :class:`PicklescanOpinion`; a picklescan exception, a crash, a memory or time limit is recorded in
        ``error`` (with ``ran`` False when no opinion came back), never raised.
    """
    suffix = PurePosixPath(path.name).suffix.lower()
    try:
        fh = open_evidence(path)
    except OSError as exc:
        return PicklescanOpinion((), False, f"cannot open: {exc.strerror or exc}", ran=False)
    with fh:
        fd = fh.fileno()
        args = [sys.executable, "-I", "-m", "workbench.model.picklescan_opinion", "--fd", str(fd),
                "--display", display, "--suffix", suffix, "--memory", str(memory_limit)]  # fmt: skip
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        try:
            proc = subprocess.run(  # noqa: S603 - our own module, fixed arguments
                args, capture_output=True, timeout=timeout, check=False, env=env, pass_fds=(fd,)
            )
        except subprocess.TimeoutExpired:
            return _unavailable(f"did not finish within {timeout:g} s")
        except OSError as exc:
            return _unavailable(f"the child could not start: {exc}")
    return _parse_child(proc, memory_limit)


def _unavailable(reason: str) -> PicklescanOpinion:
    return PicklescanOpinion((), False, f"second opinion not available: {reason}", ran=False)


def _parse_child(proc: subprocess.CompletedProcess[bytes], memory_limit: int) -> PicklescanOpinion:
    err = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        if "MemoryError" in err or proc.returncode in (-9, -6, 137):
            return _unavailable(f"over {memory_limit // MIB} MiB")
        if proc.returncode in (-24, 152):  # SIGXCPU
            return _unavailable(f"over {CPU_SECONDS} s of CPU")
        tail = err.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        return _unavailable(f"picklescan failed ({tail[0][:200]})")
    try:
        doc = json.loads(proc.stdout.decode("utf-8"))
    except ValueError:
        return _unavailable("the child printed no result")
    if doc.get("memory"):
        return _unavailable(f"over {memory_limit // MIB} MiB")
    found = tuple(sorted({(str(n)[:300], _LEVELS.get(str(lvl), UNKNOWN)) for n, lvl in doc.get("globals", [])}))
    if doc.get("error"):
        return PicklescanOpinion(found, True, str(doc["error"])[:300])
    return PicklescanOpinion(found[:MAX_GLOBALS], bool(doc.get("scan_error")))


def _child(argv: list[str]) -> int:
    """The child: picklescan on the descriptor, one JSON document on stdout."""
    import resource

    limit = int(argv[argv.index("--memory") + 1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    fd = int(argv[argv.index("--fd") + 1])
    display = argv[argv.index("--display") + 1]
    suffix = argv[argv.index("--suffix") + 1] or None
    out: dict[str, object] = {"globals": [], "scan_error": False, "error": None, "memory": False}
    try:
        from picklescan import scanner

        with _quiet(), os.fdopen(fd, "rb", closefd=False) as fh:
            fh.seek(0)
            result = scanner.scan_bytes(fh, display, suffix)
        out["globals"] = sorted({(_name(g.module, g.name), g.safety.value) for g in result.globals})
        out["scan_error"] = bool(result.scan_err)
        # picklescan catches the MemoryError of its opcode list and answers with what it had: a peak this close to
        # the limit means it ran out
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        out["memory"] = peak >= limit - _MEMORY_MARGIN
    except MemoryError:
        out = {"globals": [], "memory": True}
    except Exception as exc:  # noqa: BLE001 - third-party parser on hostile input; its failure is recorded
        out["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    sys.stdout.write(json.dumps(out))
    return 0


def _name(module: str, name: str) -> str:
    return f"{'?' if module == 'unknown' else module}.{'?' if name == 'unknown' else name}"


def compare_opinions(
    ours: Iterable[PickleImport], theirs: PicklescanOpinion, reports: Iterable[PickleReport] = ()
) -> list[Disagreement]:
    """Imports seen by one analysis only, or classed differently by the two, and where one parser fails and the
    other reads on.

    Args:
        ours: every import our analysis found in the file (all streams and members).
        theirs: picklescan's opinion on the same file.
        reports: our reports on the file (their stream errors and leniencies are compared with picklescan's parse
            error); the import comparison alone when empty.

    Returns:
        Disagreements sorted by name (a parser disagreement is named ``(parse)``); empty when picklescan did not
        run (its ``error`` says why).
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
    unseen = any(d.theirs is None for d in out)
    parse = _parse_disagreement(list(reports), theirs, unseen)
    return ([parse] if parse else []) + out


def _parse_disagreement(reports: list[PickleReport], theirs: PicklescanOpinion, unseen: bool) -> Disagreement | None:
    """One parser fails where the other reads on (``pickletools`` is stricter than the unpickler in places):
    our walk read past a leniency and picklescan reports a parse error or misses an import we see, or our walk
    stops while picklescan reads on."""
    if not reports:
        return None
    lenient = [(r.member, off, text) for r in reports for off, text in r.lenient]
    failed = [(r.member, s.error) for r in reports for s in r.streams if s.error]
    if lenient and (theirs.scan_error or unseen):
        member, off, text = lenient[0]
        where = f"member {member}, " if member else ""
        note = (f"picklescan stops (a parse error, or imports it does not see); the genops analysis reads on past "
                f"{where}offset {off} ({text}), as the unpickler does")  # fmt: skip
        return Disagreement("(parse)", "read", "parse error", note)
    if failed and not theirs.scan_error and theirs.globals:
        member, error = failed[0]
        where = f"member {member}: " if member else ""
        note = f"the genops analysis stops ({where}{error}); picklescan reports no parse error"
        return Disagreement("(parse)", "parse error", "read", note)
    return None


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
