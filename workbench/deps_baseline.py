"""Dependency baselines and package-index usage, for :mod:`workbench.deps`.

* :func:`find_baselines`: the case's known-good dependency sets, most authoritative first: lock files
  (``poetry.lock``, ``uv.lock``, ``pdm.lock``, ``pylock[.*].toml``, ``Pipfile.lock``), reference freezes
  (``reference_freeze*.txt``, ``baseline_freeze*.txt``, ``known_good_freeze*.txt``) and requirement files whose pins
  all carry ``--hash`` (complete: they list the whole environment); other requirement files (``requirements*.txt``,
  ``.in``, ``.lock``, ``constraints*.txt``: only exact pins count); the monitor's ``baseline_dependencies``.
* :func:`scan_index_usage`: ``--extra-index-url``, ``PIP_EXTRA_INDEX_URL``, ``--index-url``, ``PIP_INDEX_URL``,
  ``Looking in indexes:`` and ``Downloading URL`` lines of the pipeline logs, with their time, each log streamed
  from disk within the log budget the logs section obeys (a log it stopped is named as not examined).

Files are only read (streamed, size-capped); a bad line is a warning naming the file and line. User info in URLs
(often a token) is replaced by ``***``.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from workbench import safeio
from workbench.analysis import AnalysisContext
from workbench.errors import EvidenceError, MalformedEvidence
from workbench.evidence import pipeline_log
from workbench.evidence.base import LoadContext, check_size, iter_lines
from workbench.evidence.deps import normalize_name
from workbench.evidence.pipeline_log import FileAllowance, LogAllowance, LogBudget, grep_log
from workbench.records import EvidenceWarning
from workbench.timeparse import parse_timestamp

__all__ = ["MAX_INDEX_USES", "Baseline", "IndexUse", "Pin", "baseline_kind", "find_baselines", "parse_lock",
           "parse_requirements", "redact_url", "same_url", "same_version", "scan_index_usage"]  # fmt: skip

_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_REQ = re.compile(rf"^(?P<name>{_NAME})\s*(?:\[[^\]]*\])?\s*(?P<spec>[~=!<>][^;]*)?(?:;(?P<markers>.*))?$")
_URL_REQ = re.compile(rf"^(?P<name>{_NAME})\s*(?:\[[^\]]*\])?\s*@\s*(?P<url>\S+)\s*(?:;(?P<markers>.*))?$")
_EXACT = re.compile(r"^===?\s*(?P<v>[A-Za-z0-9][A-Za-z0-9._+!-]*)$")
_HASH = re.compile(r"\s--hash[=\s]+\w+:[0-9a-fA-F]+")
_OPTION = re.compile(
    r"^(?P<opt>-i|--index-url|--extra-index-url|-r|--requirement|-c|--constraint|-e|--editable|-f|--find-links|"
    r"--trusted-host|--pre|--no-index|--no-binary|--only-binary)(?:[=\s]+(?P<v>.*))?$"
)
_LOCK_NAMES = re.compile(r"^(?:poetry|uv|pdm|Pipfile)\.lock$|^pylock(?:\.[\w-]+)?\.toml$")
_FREEZE_NAMES = re.compile(r"^(?:reference|baseline|known[-_]good)[-_](?:freeze|deps|requirements)[\w.-]*\.txt$", re.I)
_REQ_NAMES = re.compile(r"^(?:requirements|constraints)(?:[._-][\w.-]*)?\.(?:txt|in|lock)$", re.I)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")
_LEAD_TIME = re.compile(r"^\[?(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:Z|[+-]\d{2}:?\d{2})?)\]?\s")
_URLV = r"""["']?(?P<url>[a-zA-Z][\w+.-]*://[^\s"',]+)"""
_INDEX_USES = (
    ("extra", re.compile(rf"--extra-index-url(?:=|\s+){_URLV}")),
    ("extra", re.compile(rf"\bPIP_EXTRA_INDEX_URL\s*[=:]\s*{_URLV}")),
    ("primary", re.compile(rf"(?:--index-url|(?<!\S)-i)(?:=|\s+){_URLV}")),
    ("primary", re.compile(rf"\bPIP_INDEX_URL\s*[=:]\s*{_URLV}")),
)
_LOOKING = re.compile(r"Looking in indexes:\s*(?P<urls>.+)$")
_DOWNLOAD = re.compile(r"\bDownloading\s+(?P<url>https?://\S+)")
_DIST = re.compile(r"^(?P<name>[A-Za-z0-9_.]+?)-(?P<version>\d[^-]*?)(?:-[^/]*\.whl|\.tar\.gz|\.zip|\.tar\.bz2)$")
MAX_LOCK_BYTES = 64 * 1024 * 1024
#: Longer project names are not taken for requirements.
MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class Pin:
    """One package of a baseline: an exact ``version``, a direct ``url``, or only a ``spec`` (``>=2.3``)."""

    name: str
    version: str | None = None
    url: str | None = None
    spec: str | None = None
    hashes: int = 0
    line: int | None = None
    markers: bool = False


@dataclass(slots=True)
class Baseline:
    """Known-good dependencies from one source (``kind``: lock, freeze, requirements or monitor)."""

    source: str
    kind: str
    complete: bool
    pins: dict[str, Pin] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IndexUse:
    """A package index seen in a log (``kind`` extra/primary) or a download from one (``kind`` download)."""

    path: str
    line: int | None
    kind: str
    url: str
    timestamp: datetime | None = None
    package: str | None = None
    version: str | None = None

    @property
    def host(self) -> str:
        try:
            return (urlsplit(self.url).hostname or "").lower()
        except ValueError:
            return ""


def redact_url(url: str) -> str:
    """A URL without its user info (``https://***@host/``): index URLs often carry a token."""
    return re.sub(r"^([a-zA-Z][\w+.-]*://)[^/@\s]+@", r"\1***@", url)


def same_version(a: str | None, b: str | None) -> bool:
    """PEP 440-ish equality: case, a leading ``v`` and trailing ``.0`` release parts do not matter."""

    def canon(v: str) -> str:
        v = v.strip().lower().removeprefix("v")
        m = re.match(r"^(\d+(?:\.\d+)*)(.*)$", v)
        return re.sub(r"(?:\.0+)+$", "", m.group(1)) + m.group(2) if m else v

    return a is not None and b is not None and canon(a) == canon(b)


def _canon_url(url: str) -> str:
    return re.sub(r"\.git(?=@|$)", "", redact_url(url).split("#", 1)[0].rstrip("/")).replace("***@", "")


def same_url(a: str | None, b: str | None) -> bool:
    """Direct URLs equal once user info, ``#egg=`` fragments and a ``.git`` suffix are ignored; a VCS revision only
    counts when both URLs have one (a short commit id matches a full one)."""
    if a is None or b is None:
        return False
    ca, cb = _canon_url(a), _canon_url(b)
    if ca == cb:
        return True
    (base_a, _, rev_a), (base_b, _, rev_b) = (
        ca.rpartition("@") if "@" in ca else (ca, "", ""),
        (cb.rpartition("@") if "@" in cb else (cb, "", "")),
    )
    return base_a == base_b and (not rev_a or not rev_b or rev_a.startswith(rev_b) or rev_b.startswith(rev_a))


# --------------------------------------------------------------------------------------------- baselines
def parse_requirements(path: Path, relpath: str, warnings: list[EvidenceWarning]) -> Baseline:
    """A requirements-style file (pins, ``name @ url``, continuations, ``--hash``); bad lines become warnings."""
    pins: dict[str, Pin] = {}
    pending, start = "", 0
    for number, raw in iter_lines(path, LoadContext(relpath), warnings):
        text = re.sub(r"(?:^|\s)#.*$", "", raw).strip()
        if text.endswith("\\"):
            pending, start = (pending + " " + text[:-1]).strip()[:65536], start or number
            continue
        text, at = (pending + " " + text).strip(), start or number
        pending, start = "", 0
        if not text or _OPTION.match(text):
            continue
        hashes = len(_HASH.findall(" " + text))
        text = re.sub(r"\s--[\w-]+(?:[=\s]+\S+)?", "", " " + _HASH.sub("", " " + text)).strip()
        if m := _URL_REQ.match(text):
            pin = Pin(m["name"], url=m["url"], hashes=hashes, line=at, markers=bool(m["markers"]))
        elif m := _REQ.match(text):
            spec = (m["spec"] or "").strip() or None
            exact = _EXACT.match(spec) if spec and "," not in spec and "*" not in spec else None
            pin = Pin(m["name"], version=exact["v"] if exact else None, spec=None if exact else spec, hashes=hashes,
                      line=at, markers=bool(m["markers"]))  # fmt: skip
        else:
            warnings.append(EvidenceWarning(relpath, at, f"not a requirement line: {text[:80]!r}"))
            continue
        if len(pin.name) > MAX_NAME:
            warnings.append(EvidenceWarning(relpath, at, f"project name longer than {MAX_NAME} characters, ignored"))
            continue
        pins.setdefault(normalize_name(pin.name), pin)
    hashed = bool(pins) and all(p.hashes for p in pins.values())
    freeze = bool(_FREEZE_NAMES.match(PurePosixPath(relpath).name))
    kind = "freeze" if freeze else "requirements"
    return Baseline(relpath, kind, complete=freeze or hashed, pins=pins)


def _lock_source(entry: dict) -> str | None:
    """A direct URL for a VCS/path/archive entry of poetry, uv, pdm or pylock; None for index packages."""
    src = entry.get("source") if isinstance(entry.get("source"), dict) else {}
    vcs = entry.get("vcs") if isinstance(entry.get("vcs"), dict) else {}
    git = src.get("git") or (src.get("url") if src.get("type") == "git" else None) or entry.get("git") or vcs.get("url")
    if isinstance(git, str):
        base, _, fragment = git.partition("#")
        revs = (
            fragment,
            src.get("resolved_reference"),
            entry.get("revision"),
            vcs.get("commit-id"),
            src.get("reference"),
        )
        rev = next((r for r in revs if isinstance(r, str) and r), "")
        return "git+" + base.split("?", 1)[0] + (f"@{rev}" if rev else "")
    index_url = src.get("url") if src.get("type") not in (None, "legacy") else None
    archive = entry.get("archive") if isinstance(entry.get("archive"), dict) else {}
    for value in (src.get("path"), src.get("directory"), src.get("editable"), index_url, entry.get("path"),
                  archive.get("url"), archive.get("path")):  # fmt: skip
        if isinstance(value, str) and value:
            return value
    return None


def parse_lock(path: Path, relpath: str, warnings: list[EvidenceWarning]) -> Baseline | None:
    """A Python lock file (TOML ``[[package]]``/``[[packages]]`` or ``Pipfile.lock`` JSON); None when unusable."""
    try:
        check_size(path, LoadContext(relpath), MAX_LOCK_BYTES)
        text = safeio.read_bytes(path).decode("utf-8", errors="replace")
        doc = json.loads(text) if path.name == "Pipfile.lock" else tomllib.loads(text)
    except (MalformedEvidence, OSError, ValueError) as exc:
        warnings.append(EvidenceWarning(relpath, None, f"lock file not usable as a baseline: {exc}"[:300]))
        return None
    pins: dict[str, Pin] = {}
    if path.name == "Pipfile.lock":
        sections = [doc.get(s) for s in ("default", "develop") if isinstance(doc, dict)]
        for name, entry in ((n, e) for s in sections if isinstance(s, dict) for n, e in s.items()):
            if isinstance(entry, dict):
                exact = _EXACT.match(str(entry.get("version", "")))
                url = "git+" + entry["git"] if isinstance(entry.get("git"), str) else None
                pins.setdefault(normalize_name(name), Pin(name, exact["v"] if exact else None, url,
                                                          hashes=len(entry.get("hashes") or [])))  # fmt: skip
    else:
        entries = doc.get("package") or doc.get("packages") or []
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                files = entry.get("files") or entry.get("wheels") or []
                version = str(entry["version"]) if entry.get("version") is not None else None
                pin = Pin(
                    entry["name"], version, _lock_source(entry), hashes=len(files) if isinstance(files, list) else 0
                )
                pins.setdefault(normalize_name(pin.name), pin)
    if not pins:
        warnings.append(EvidenceWarning(relpath, None, "lock file lists no Python package, not used as a baseline"))
        return None
    return Baseline(relpath, "lock", complete=True, pins=pins)


def baseline_kind(relpath: str) -> str | None:
    """``lock``, ``freeze`` or ``requirements`` for a file name that holds a dependency baseline, else None."""
    name = PurePosixPath(relpath).name
    if _LOCK_NAMES.match(name):
        return "lock"
    if _FREEZE_NAMES.match(name):
        return "freeze"
    return "requirements" if _REQ_NAMES.match(name) else None


def find_baselines(ctx: AnalysisContext, warnings: list[EvidenceWarning]) -> list[Baseline]:
    """Every baseline of the case, most authoritative first (see the module docstring for the order)."""
    found: list[Baseline] = []
    for f in ctx.case.files:
        kind = baseline_kind(f.relpath) if f.role == "evidence" else None
        if kind is None:
            continue
        try:
            path = ctx.case.path(f.relpath)
            base = (
                parse_lock(path, f.relpath, warnings)
                if kind == "lock"
                else parse_requirements(path, f.relpath, warnings)
            )
        except (EvidenceError, MalformedEvidence) as exc:
            warnings.append(EvidenceWarning(f.relpath, exc.line, f"baseline not usable: {exc.reason}"))
            continue
        if base is not None and base.pins:
            found.append(base)
    for loaded in ctx.evidence.all("monitor_config"):
        deps = loaded.meta.get("baseline_dependencies") or {}
        pins = {normalize_name(n): Pin(n, version=str(v)) for n, v in deps.items()}
        if pins:
            found.append(Baseline(f"{loaded.path} (baseline_dependencies)", "monitor", complete=False, pins=pins))
    found.sort(key=lambda b: (not b.complete, b.kind == "monitor"))
    return found


# --------------------------------------------------------------------------------------------- pipeline logs
#: Package-index lines (index URLs and downloads) kept over a case's logs; past it reading stops (not examined).
MAX_INDEX_USES = 100_000
#: What a line must hold to be looked at (``index``, ``INDEX``, ``Downloading``): found at C speed in whole blocks.
_NEEDLE = re.compile(rb"ndex|NDEX|Downloading")
#: What such a line also holds (:func:`_may_hold_use`), searched first where rarer than lines (usually: URLs are).
_ANCHORS = (b"://", b"\x1b")


def scan_index_usage(
    logs: Iterable[Any],
    naive_tz: Any = None,
    *,
    case: Any,
    unexamined: list[str] | None = None,
    budget: LogBudget | None = None,
) -> list[IndexUse]:
    """Index URLs and downloads in the case's pipeline logs, each file streamed from disk within the log budget.

    Args:
        logs: the loaded ``pipeline_log`` evidence (their paths are read, not their preview frames).
        naive_tz: zone of timestamps without an offset.
        case: the case (:meth:`~workbench.case.Case.path` resolves each log inside the evidence tree).
        unexamined: receives ``"path: reason"`` for each log a budget stopped (or left unread).
        budget: bytes and time per file and per case (default: :data:`workbench.evidence.pipeline_log.LOG_BUDGET`,
            the one the logs section obeys), and at most :data:`MAX_INDEX_USES` uses kept.

    ANSI colours are stripped first; a leading ISO 8601 timestamp (bare or in brackets) dates the line. User info
    in URLs is replaced by ``***``. A line longer than 64 KiB is read as pieces around its hits (no timestamp
    then); what a line shows twice is kept once.
    """
    allowance = LogAllowance(budget or pipeline_log.LOG_BUDGET)
    uses: list[IndexUse] = []
    for loaded in logs:
        share = allowance.file()
        if len(uses) >= MAX_INDEX_USES:
            share.stop(f"not read: {MAX_INDEX_USES:,} package-index lines already kept (budget)")
        else:
            try:
                _file_uses(case.path(loaded.path), loaded.path, naive_tz, share, uses)
            except (EvidenceError, OSError):
                continue  # unreadable: the logs section reports it
        if share.stopped and unexamined is not None:
            unexamined.append(f"{loaded.path}: {share.stopped}")
    return uses


def _may_hold_use(raw: bytes) -> bool:
    """False when nothing below can come of the line: every use is a URL (``://``), and a line without ESC is the
    same text once colours are stripped. pip's own ``Downloading name-1.0-py3-none-any.whl (18 MB)`` lines, nearly
    every candidate of a long install log, so skip the decoding and the regular expressions."""
    return b"://" in raw or b"\x1b" in raw


def _file_uses(path: Path, relpath: str, naive_tz: Any, share: FileAllowance, uses: list[IndexUse]) -> None:
    seen: set[tuple] = set()
    current = -1
    for number, raw in grep_log(path, _NEEDLE, share, anchors=_ANCHORS):
        if number != current:
            current, seen = number, set()
        if not _may_hold_use(raw):
            continue
        text = _ANSI.sub("", raw.decode("utf-8", "replace"))
        stamp = _LEAD_TIME.match(text)
        ts = parse_timestamp(stamp.group(1), **({"naive_tz": naive_tz} if naive_tz else {})) if stamp else None
        hits = [(kind, m["url"]) for kind, rx in _INDEX_USES for m in rx.finditer(text)]
        if looking := _LOOKING.search(text):
            urls = [u.strip() for u in looking["urls"].split(",") if "://" in u]
            hits += [("primary", urls[0])] + [("extra", u) for u in urls[1:]] if urls else []
        for m in _DOWNLOAD.finditer(text):
            dist = _DIST.match(PurePosixPath(urlsplit(m["url"]).path).name)
            name, version = (normalize_name(dist["name"]), dist["version"]) if dist else (None, None)
            hits.append(("download", m["url"], name, version))  # type: ignore[arg-type]
        for hit in dict.fromkeys(hits):
            if hit in seen:
                continue
            seen.add(hit)
            if len(uses) >= MAX_INDEX_USES:
                share.stop(f"stopped after {MAX_INDEX_USES:,} package-index lines (budget)")
                return
            uses.append(IndexUse(relpath, number, hit[0], redact_url(hit[1]), ts, *hit[2:]))
