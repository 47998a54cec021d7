"""Candidate finders: one pass over a block of complete lines with every pattern combined.

A finder only proposes lines; the engine confirms each proposed (line, rule) pair with the rule's own Python
regular expression, which is the single source of truth for what matches (and for the span of a secret). Two
finders exist:

* ``hyperscan`` (Vectorscan through the ``hyperscan`` package): every pattern is compiled, in prefilter mode, into
  one database scanned once per block. Hyperscan is fast when a pattern starts with a literal and slow when many
  patterns start with classes or frequent short words, so each pattern is first cut to its *literal-anchored
  suffix*: the part from the element with the longest guaranteed literal (``curl``, ``--extra-index-url``,
  ``(?:tmp|dev/shm)/``) to the end. A line matching the pattern always matches that suffix, lookarounds are dropped
  and prefilter mode only widens further, so the finder proposes a superset of the real matches. Each expression
  gets the tail ``[^\\n]*$`` so that a line produces at most one report per pattern whatever its length (a flood
  of callbacks would otherwise be possible on hostile input).
* ``re``: Python only, used when ``hyperscan`` is not installed (no wheel for Linux on ARM): one search for every
  rule's anchor literals, then each rule whose literal is in a line is proposed for that line. Same results, but
  about 2 MB/s instead of 100+, and a crafted line can make Python's backtracking quadratic (a 64 KiB line of
  ``curl curl ...`` takes about 25 s), which the hyperscan path avoids because it never proposes such a line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from re import _constants as _C  # regex opcodes (stable since Python 3.11) for the literal-anchored prefilters
from re import _parser as _P
from typing import Any, Protocol

from workbench.errors import RuleError

__all__ = [
    "BACKENDS", "Candidate", "Finder", "Pattern", "anchor_literals", "anchored", "hyperscan_available", "make_finder",
    "resolve_backend",
]  # fmt: skip

#: Names accepted by :func:`make_finder` (``auto`` picks hyperscan when it is installed).
BACKENDS = ("auto", "hyperscan", "re")
_NAMED_GROUP = re.compile(r"\(\?P<[A-Za-z_]\w*>")


@dataclass(frozen=True, slots=True)
class Pattern:
    """One pattern to find: its regex source, case handling, and where it came from (for error messages).

    ``exact`` patterns are compiled as written (no prefilter widening, no anchoring) and reported at most once per
    block (hyperscan only): the engine uses one to find the first invalid UTF-8 sequence.
    """

    regex: str
    ignore_case: bool
    source: str
    rule_id: str | None
    exact: bool = False


#: ``(line_start, line_end, pattern indexes or None for "check them all")``, ``line_end`` at the line's ``\n``.
Candidate = tuple[int, int, frozenset[int] | None]


class Finder(Protocol):
    """Proposes candidate lines of a block (bytes ending with ``\\n``)."""

    name: str

    def candidates(self, block: bytes) -> list[Candidate]:
        """Candidate lines in block order."""
        ...

    def ids(self, data: bytes) -> set[int] | None:
        """Indexes of the patterns that may match somewhere in ``data`` (None: any of them may)."""
        ...


def hyperscan_available() -> bool:
    """Whether the ``hyperscan`` package can be imported."""
    try:
        import hyperscan  # noqa: F401
    except ImportError:
        return False
    return True


_ZERO_WIDTH = {_C.AT, _C.ASSERT, _C.ASSERT_NOT}
_AT = {_C.AT_BEGINNING: "^", _C.AT_BEGINNING_STRING: "^", _C.AT_END: "$", _C.AT_END_STRING: "$",
       _C.AT_BOUNDARY: "\\b", _C.AT_NON_BOUNDARY: "\\B"}  # fmt: skip
_CAT = {_C.CATEGORY_DIGIT: "\\d", _C.CATEGORY_NOT_DIGIT: "\\D", _C.CATEGORY_SPACE: "\\s",
        _C.CATEGORY_NOT_SPACE: "\\S", _C.CATEGORY_WORD: "\\w", _C.CATEGORY_NOT_WORD: "\\W"}  # fmt: skip
_MIN_ANCHOR = 3
_GOOD_ANCHOR = 4
_MAX_ALTERNATIVES = 64


def anchored(regex: str) -> str:
    """The literal-anchored suffix of ``regex`` (a superset for "does a line match"), in hyperscan syntax.

    Returns the whole pattern (re-emitted, lookarounds dropped) when no element guarantees a literal of at least
    three bytes.
    """
    return _anchor_seq(list(_P.parse(regex.encode("utf-8"))))[0]


def anchor_literals(regex: str) -> list[bytes] | None:
    """Literals (at least three bytes) one of which every line matching ``regex`` contains; None if there are none."""
    return _anchor_seq(list(_P.parse(regex.encode("utf-8"))))[1]


def _anchor_seq(seq: list) -> tuple[str, list[bytes] | None]:
    """The anchored suffix of ``seq`` and the literal set it starts with (None when it has no anchor)."""
    scores = []
    for i, (op, _av) in enumerate(seq):
        if op in (_C.ASSERT, _C.ASSERT_NOT):
            continue
        lits, _complete = _leading(seq[i:])
        scores.append((min(len(x) for x in lits) if lits and all(lits) else 0, i))
    # the earliest good literal keeps most of the pattern (fewest false candidates)
    chosen = next((i for score, i in scores if score >= _GOOD_ANCHOR), None)
    if chosen is None:
        first = next((i for i, (op, _av) in enumerate(seq) if op not in _ZERO_WIDTH), None)
        branches = _branches(seq[first]) if first is not None else None
        if branches is not None:  # (A|B)R is anchored as (anchor(AR)|anchor(BR))
            parts = [_anchor_seq(list(b) + seq[first + 1 :]) for b in branches]
            lits = None if any(p[1] is None for p in parts) else [x for p in parts for x in p[1]]  # type: ignore[union-attr]
            return "(?:" + "|".join(p[0] for p in parts) + ")", lits
        best = max(scores, default=(0, 0), key=lambda si: (si[0], -si[1]))
        if best[0] < _MIN_ANCHOR:
            return _emit(seq), None
        chosen = best[1]
    return _emit(seq[chosen:]), _leading(seq[chosen:])[0]


def _branches(token: tuple) -> list | None:
    op, av = token
    if op is _C.BRANCH:
        return list(av[1])
    if op is _C.SUBPATTERN and not av[1] and len(av[3]) == 1 and av[3][0][0] is _C.BRANCH:
        return list(av[3][0][1][1])
    return None


def _leading(seq: list) -> tuple[list[bytes], bool]:
    """Literal strings one of which every match of ``seq`` starts with, and whether they cover all of ``seq``."""
    out = [b""]
    for op, av in seq:
        if op is _C.LITERAL:
            out = [x + bytes([av]) for x in out]
            continue
        if op in _ZERO_WIDTH:
            continue
        inner: list[bytes] = []
        complete = False
        if op is _C.SUBPATTERN and not av[1]:
            inner, complete = _leading(list(av[3]))
        elif op is _C.BRANCH:
            alts = [_leading(list(b)) for b in av[1]]
            inner, complete = [x for a, _ in alts for x in a], all(c for _, c in alts)
        elif op is _C.IN and len(av) <= 8 and all(o is _C.LITERAL for o, _ in av):
            inner, complete = [bytes([v]) for _, v in av], True
        if not inner or not all(inner) or len(out) * len(inner) > _MAX_ALTERNATIVES:
            return out, False
        out = [x + y for x in out for y in inner]
        if not complete:
            return out, False
    return out, True


def _emit(seq: Any) -> str:
    parts = []
    for op, av in seq:
        if op is _C.LITERAL:
            parts.append(_char(av))
        elif op is _C.NOT_LITERAL:
            parts.append(f"[^{_char(av)}]")
        elif op is _C.ANY:
            parts.append(".")
        elif op is _C.IN:
            parts.append(_emit_class(av))
        elif op is _C.BRANCH:
            parts.append("(?:" + "|".join(_emit(b) for b in av[1]) + ")")
        elif op is _C.SUBPATTERN:
            parts.append(("(?i:" if av[1] & _C.SRE_FLAG_IGNORECASE else "(?:") + _emit(av[3]) + ")")
        elif op is _C.ATOMIC_GROUP:
            parts.append("(?:" + _emit(av) + ")")
        elif op in (_C.MAX_REPEAT, _C.MIN_REPEAT, _C.POSSESSIVE_REPEAT):
            lo, hi, item = av
            parts.append("(?:" + _emit(item) + ")" + f"{{{lo},{'' if hi is _C.MAXREPEAT else hi}}}")
        elif op is _C.AT:
            parts.append(_AT.get(av, ""))
        elif op is _C.CATEGORY:
            parts.append(_CAT[av])
        elif op in (_C.ASSERT, _C.ASSERT_NOT):
            continue  # lookarounds dropped: the prefilter only widens
        else:
            raise ValueError(f"cannot use {op} in a combined scan")
    return "".join(parts)


def _emit_class(items: Any) -> str:
    out = []
    for op, av in items:
        if op is _C.NEGATE:
            out.insert(0, "^")
        elif op is _C.LITERAL:
            out.append(_char(av))
        elif op is _C.RANGE:
            out.append(f"{_char(av[0])}-{_char(av[1])}")
        elif op is _C.CATEGORY:
            out.append(_CAT[av])
        else:
            raise ValueError(f"cannot use {op} in a character class")
    return "[" + "".join(out) + "]"


def _char(code: int) -> str:
    ch = chr(code)
    return ch if ch.isascii() and ch.isalnum() else f"\\x{code:02x}"


class _HyperscanFinder:
    name = "hyperscan"

    def __init__(self, patterns: Sequence[Pattern]) -> None:
        import hyperscan

        self._hs = hyperscan
        exprs, flags = [], []
        for p in patterns:
            case = hyperscan.HS_FLAG_CASELESS if p.ignore_case else 0
            if p.exact:
                exprs.append(_emit(_P.parse(p.regex.encode("utf-8"))).encode())
                flags.append(hyperscan.HS_FLAG_SINGLEMATCH | case)
                continue
            try:
                body = anchored(p.regex)
            except (ValueError, re.error) as exc:
                raise RuleError(p.source, f"pattern cannot join the combined scan: {exc}", p.rule_id) from None
            exprs.append((body if "$" in body else f"(?:{body})[^\\n]*$").encode())
            flags.append(hyperscan.HS_FLAG_PREFILTER | hyperscan.HS_FLAG_MULTILINE | case)
        try:
            self._db = self._compile(exprs, flags)
        except hyperscan.error:
            for p, expr, flag in zip(patterns, exprs, flags, strict=True):
                try:
                    self._compile([expr], [flag])
                except hyperscan.error as exc:
                    raise RuleError(p.source, f"the multi-pattern scanner cannot compile this pattern: {exc}",
                                    p.rule_id) from None  # fmt: skip
            raise

    def _compile(self, exprs: list[bytes], flags: list[int]):
        db = self._hs.Database(mode=self._hs.HS_MODE_BLOCK)
        db.compile(expressions=exprs, ids=list(range(len(exprs))), elements=len(exprs), flags=flags)
        return db

    def ids(self, data: bytes) -> set[int] | None:
        found: set[int] = set()

        def on_match(pid: int, _from: int, _to: int, _flags: int, _ctx: object) -> None:
            found.add(pid)

        self._db.scan(data + b"\n", match_event_handler=on_match)
        return found

    def candidates(self, block: bytes) -> list[Candidate]:
        hits: list[tuple[int, int]] = []
        append = hits.append

        def on_match(pid: int, _from: int, to: int, _flags: int, _ctx: object) -> None:
            append((to, pid))

        self._db.scan(block, match_event_handler=on_match)
        if not hits:
            return []
        hits.sort()
        out: list[Candidate] = []
        line_end, ids = -1, set()
        for to, pid in hits:
            if to - 1 > line_end:  # the last matched byte lies beyond the current line
                if ids:
                    out.append((block.rfind(b"\n", 0, line_end) + 1, line_end, frozenset(ids)))
                line_end = block.find(b"\n", to - 1)
                ids = set()
            ids.add(pid)
        out.append((block.rfind(b"\n", 0, line_end) + 1, line_end, frozenset(ids)))
        return out


class _ReFinder:
    """Python-only finder: a line is a candidate when it holds one of a rule's anchor literals (one combined literal
    search, case-folded where the rule ignores case), and the rules owning the literals found in it are proposed.
    Rules without an anchor literal fall back to one alternation of their full patterns (slow in ``re``)."""

    name = "re"

    def __init__(self, patterns: Sequence[Pattern]) -> None:
        owners: tuple[dict[bytes, set[int]], dict[bytes, set[int]]] = ({}, {})  # literal -> pattern ids
        slow: list[tuple[int, str]] = []
        for i, p in enumerate(patterns):
            if p.exact:
                continue
            try:
                lits = anchor_literals(p.regex)
            except (ValueError, re.error) as exc:
                raise RuleError(p.source, f"pattern cannot join the combined scan: {exc}", p.rule_id) from None
            if lits is None:
                body = _NAMED_GROUP.sub("(?:", p.regex)
                slow.append((i, f"(?i:{body})" if p.ignore_case else f"(?:{body})"))
                continue
            for x in lits:
                owners[p.ignore_case].setdefault(x.lower() if p.ignore_case else x, set()).add(i)
        self._slow_ids = frozenset(i for i, _ in slow)
        self._slow = re.compile("|".join(b for _, b in slow).encode("utf-8"), re.MULTILINE) if slow else None
        # a search finds the longest literal at a position: it stands for every literal that is a prefix of it
        self._passes = []
        for folded, table in enumerate(owners):
            if table:
                closed = {x: frozenset(i for y, ids in table.items() if x.startswith(y) for i in ids) for x in table}
                regex = re.compile(b"|".join(re.escape(x) for x in sorted(table, key=len, reverse=True)))
                self._passes.append((bool(folded), regex, closed))

    def ids(self, data: bytes) -> set[int] | None:
        return None

    def candidates(self, block: bytes) -> list[Candidate]:
        found: dict[int, tuple[int, set[int]]] = {}
        for folded, regex, closed in self._passes:
            hay = block.lower() if folded else block
            search, pos = regex.search, 0
            while (m := search(hay, pos)) is not None:
                start = hay.rfind(b"\n", 0, m.start()) + 1
                end = hay.find(b"\n", m.start())
                ids = found.setdefault(start, (end, set()))[1]
                for hit in regex.finditer(hay, m.start(), end):  # every literal of this line, overlapping starts too
                    ids |= closed[hit.group()]
                pos = end + 1
        if self._slow is not None:
            search, pos = self._slow.search, 0
            while (m := search(block, pos)) is not None:
                start = block.rfind(b"\n", 0, m.start()) + 1
                end = block.find(b"\n", m.start())
                found.setdefault(start, (end, set()))[1].update(self._slow_ids)
                pos = end + 1
        return [(start, end, frozenset(ids)) for start, (end, ids) in sorted(found.items())]


@lru_cache(maxsize=16)
def make_finder(patterns: tuple[Pattern, ...], backend: str = "auto") -> Finder:
    """A finder for ``patterns`` using ``backend`` (``auto``, ``hyperscan`` or ``re``); cached per pattern set.

    Raises:
        RuleError: a pattern cannot be compiled by the chosen backend (names its file and rule).
        ValueError: unknown backend, or ``hyperscan`` requested but not installed.
    """
    if resolve_backend(backend) == "hyperscan":
        return _HyperscanFinder(patterns)
    return _ReFinder(patterns)


def resolve_backend(backend: str) -> str:
    """``hyperscan`` or ``re`` for a requested backend name.

    Raises:
        ValueError: unknown name, or ``hyperscan`` requested but not installed.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown scanner backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if backend == "auto":
        return "hyperscan" if hyperscan_available() else "re"
    if backend == "hyperscan" and not hyperscan_available():
        raise ValueError("scanner backend 'hyperscan' requested but the hyperscan package is not installed")
    return backend
