"""An installed environment compared with hashes the user trusts, since an attacker can rewrite RECORD too.

:mod:`workbench.pyenv.record` checks each installed file against the installed ``RECORD``; whoever changed a file
can change its RECORD line with it. This module compares with evidence the attacker did not hold:

- **wheels** (:func:`read_wheels`): the ``*.whl`` files that should have been installed (a ``pip download``
  folder, a wheelhouse). Each is hashed and its ``RECORD`` and ``entry_points.txt`` read with :mod:`zipfile`
  (nothing extracted, every member read bounded);
- **a lock file** with hashes (:func:`read_locked_hashes`: ``pip-compile --generate-hashes`` output);
- **a previous capture** of the same environment (another :class:`~workbench.pyenv.record.SiteReport`).

Comparisons return :class:`~workbench.pyenv.record.Issue` records whose ``detail`` names the evidence (both
hashes, the wheel and its RECORD line, the lock file and line); ``kind`` is one of the ``KIND_*`` below:

- :func:`compare_with_wheels`: ``differs-from-wheel`` (an installed file's SHA-256 or size is not the wheel's),
  ``absent-from-wheel`` (under the distribution's packages or in its installed RECORD, but not in the wheel: a
  dropped module, a ``.pth``; installer files and ``__pycache__/*.pyc`` aside), ``missing-vs-wheel`` (in the wheel,
  not installed), ``entry-points-changed`` (``entry_points.txt`` lines added, changed or removed, shown as text).
  :func:`without_wheel` names the distributions that had no wheel to compare;
- :func:`compare_with_lock`: ``wheel-not-locked`` (a wheel's SHA-256 is not among the lock's hashes for its name,
  or the lock does not name it; the issue's ``path`` is then the wheel's path in its folder), ``archive-not-locked``
  (``direct_url.json`` says the distribution was installed from an archive whose hash the lock does not list);
- :func:`compare_with_previous`: ``changed-since-capture``, ``added-since-capture``, ``removed-since-capture``
  (files of a distribution at the same version, and files under no distribution's top-level names, e.g. a new
  ``.pth`` or package folder; ``__pycache__/*.pyc`` left out), ``version-changed-since-capture``,
  ``distribution-added-since-capture``, ``distribution-removed-since-capture``.

Every issue list is sorted by path, line and kind. Nothing from the evidence is imported, extracted or run.
"""

from __future__ import annotations

import json

from workbench.deps_baseline import same_version
from workbench.evidence.deps import normalize_name
from workbench.pyenv.expected_sources import (
    INSTALLER_FILES,
    LockedPin,
    WheelEntry,
    WheelInfo,
    read_locked_hashes,
    read_wheels,
)
from workbench.pyenv.record import MAX_BYTES, Distribution, Issue, SiteReport
from workbench.pyenv.record_lines import MAX_LINE
from workbench.records import EvidenceWarning

__all__ = [
    "KIND_ABSENT_FROM_WHEEL",
    "KIND_ADDED_SINCE",
    "KIND_ARCHIVE_NOT_LOCKED",
    "KIND_CHANGED_SINCE",
    "KIND_DIFFERS_FROM_WHEEL",
    "KIND_DIST_ADDED",
    "KIND_DIST_REMOVED",
    "KIND_ENTRY_POINTS",
    "KIND_MISSING_VS_WHEEL",
    "KIND_REMOVED_SINCE",
    "KIND_VERSION_CHANGED",
    "KIND_WHEEL_NOT_LOCKED",
    "LockedPin",
    "WheelEntry",
    "WheelInfo",
    "compare_with_lock",
    "compare_with_previous",
    "compare_with_wheels",
    "read_locked_hashes",
    "read_wheels",
    "without_wheel",
]

KIND_DIFFERS_FROM_WHEEL = "differs-from-wheel"
KIND_ABSENT_FROM_WHEEL = "absent-from-wheel"
KIND_MISSING_VS_WHEEL = "missing-vs-wheel"
KIND_ENTRY_POINTS = "entry-points-changed"
KIND_WHEEL_NOT_LOCKED = "wheel-not-locked"
KIND_ARCHIVE_NOT_LOCKED = "archive-not-locked"
KIND_CHANGED_SINCE = "changed-since-capture"
KIND_ADDED_SINCE = "added-since-capture"
KIND_REMOVED_SINCE = "removed-since-capture"
KIND_VERSION_CHANGED = "version-changed-since-capture"
KIND_DIST_ADDED = "distribution-added-since-capture"
KIND_DIST_REMOVED = "distribution-removed-since-capture"

#: bytes of installed (or previously captured) files hashed at most by one comparison (past it: a warning)
MAX_COMPARE_BYTES = MAX_BYTES
#: largest ``direct_url.json`` or ``entry_points.txt`` read from the installed tree
MAX_SMALL_TEXT = 256 * 1024
#: entry-point lines shown in one issue
MAX_SHOWN_LINES = 20


class _Hasher:
    """Digests of a tree's files within :data:`MAX_COMPARE_BYTES` (one warning when the budget is spent)."""

    def __init__(self, report: SiteReport, warnings: list[EvidenceWarning] | None) -> None:
        self.tree, self.warnings, self.spent, self.over = report.tree, warnings, 0, 0

    def __call__(self, rel: str) -> tuple[str, int] | None:
        here = self.tree.hashed_here(rel)
        if here and self.spent >= MAX_COMPARE_BYTES:
            self.over += 1
            return None
        got = self.tree.digest(rel)
        self.spent += got[1] if got and here else 0
        return got

    def done(self) -> None:
        if self.over and self.warnings is not None:
            why = f"hashing stopped at {MAX_COMPARE_BYTES} bytes: {self.over} file(s) not compared"
            self.warnings.append(EvidenceWarning(self.tree.root.as_posix(), None, why))


def _sorted(issues: list[Issue]) -> list[Issue]:
    return sorted(issues, key=lambda i: (i.path, i.line or 0, i.kind, i.detail))


def _by_top(files: dict) -> dict[str, list[str]]:
    """The paths of a tree by their first component (built once: a comparison looks up many distributions)."""
    out: dict[str, list[str]] = {}
    for rel in files:
        out.setdefault(rel.split("/", 1)[0], []).append(rel)
    return out


def _under(index: dict[str, list[str]], tops: set[str]) -> set[str]:
    """The paths under ``tops`` (files, or top-level modules), generated ``__pycache__/*.pyc`` left out."""
    return {rel for top in tops for rel in index.get(top, ()) if not _generated(rel)}


def _generated(rel: str) -> bool:
    parts = rel.split("/")
    return len(parts) > 1 and parts[-2] == "__pycache__" and parts[-1].endswith(".pyc")


# ------------------------------------------------------------------------------------------------------- wheels
def _wheels_for(dist: Distribution, wheels: list[WheelInfo]) -> list[WheelInfo]:
    name = normalize_name(dist.name)
    return [w for w in wheels if w.name == name and same_version(w.version, dist.version)]


def without_wheel(report: SiteReport, wheels: list[WheelInfo]) -> list[Distribution]:
    """The installed distributions no wheel of the folder matches by name and version (nothing to compare)."""
    return [d for d in report.distributions if not _wheels_for(d, wheels)]


def compare_with_wheels(
    report: SiteReport, wheels: list[WheelInfo], *, warnings: list[EvidenceWarning] | None = None
) -> list[Issue]:
    """Each installed distribution against the wheel of the same name and version (see the module docstring).

    When the folder holds several wheels of that version (platform tags), the one with the fewest differences is
    compared and the detail says how many there were. ``warnings`` receives the hashing cap reached.
    """
    digest = _Hasher(report, warnings)
    index = _by_top(report.tree.files)
    issues: list[Issue] = []
    for dist in report.distributions:
        candidates = _wheels_for(dist, wheels)
        if not candidates:
            continue
        found = [_against_wheel(report, dist, w, digest, index) for w in candidates]
        best = min(found, key=len)
        if len(candidates) > 1:
            note = f" (closest of {len(candidates)} wheels of {dist.version} in the folder)"
            best = [Issue(i.path, i.line, i.kind, i.detail + note, i.distribution) for i in best]
        issues += best
    digest.done()
    return _sorted(issues)


def _against_wheel(
    report: SiteReport, dist: Distribution, wheel: WheelInfo, digest: _Hasher, index: dict[str, list[str]]
) -> list[Issue]:
    files, info = report.tree.files, dist.dist_info
    out: list[Issue] = []

    def issue(path: str, kind: str, detail: str) -> None:
        out.append(Issue(path, None, kind, detail, info))

    expected: dict[str, WheelEntry] = {}
    for entry in wheel.record.values():
        rel = entry.installed_path(wheel.dist_info, info)
        if rel is not None:
            expected[rel] = entry
    where = f"wheel {wheel.file}"
    for rel, entry in expected.items():
        if entry.sha256 is None:
            continue
        line = f"{where} RECORD line {entry.line}"
        if rel not in files:
            why = report.tree.not_regular(rel)
            issue(rel, KIND_MISSING_VS_WHEEL, f"in {line} ({entry.sha256}), not installed: {why or 'absent'}")
            continue
        got = digest(rel)
        if got is not None and (got[0] != entry.sha256 or (entry.size is not None and got[1] != entry.size)):
            issue(rel, KIND_DIFFERS_FROM_WHEEL, f"installed sha256 {got[0]}, {got[1]} bytes; {line} says "
                  f"{entry.sha256}, {entry.size} bytes")  # fmt: skip
    tops = set(dist.top_level) | {r.split("/", 1)[0] for r in expected if "/" in r} | {info}
    listed = set(dist.files)
    skip = {f"{info}/{n}" for n in INSTALLER_FILES}
    for rel in sorted((_under(index, tops) | {r for r in listed if r in files and not _generated(r)}) - skip):
        if rel in expected:
            continue
        why = "listed in the installed RECORD" if rel in listed else "in no RECORD"
        issue(rel, KIND_ABSENT_FROM_WHEEL, f"installed ({why}) under {rel.split('/', 1)[0]!r} of {info}, but not in "
              f"{where}")  # fmt: skip
    out += _entry_points(report, dist, wheel)
    return out


def _entry_point_lines(text: str | None) -> dict[tuple[str, str], str]:
    """``(section, name) -> "name = value"`` of an ``entry_points.txt`` (INI-like text; never run; spacing aside)."""
    out: dict[tuple[str, str], str] = {}
    section = ""
    for raw in (text or "").splitlines():
        line = raw.strip()[:MAX_LINE]
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        name, sep, value = line.partition("=")
        out.setdefault((section, name.strip()), f"{name.strip()} = {value.strip()}" if sep else line)
    return out


def _entry_points(report: SiteReport, dist: Distribution, wheel: WheelInfo) -> list[Issue]:
    rel = f"{dist.dist_info}/entry_points.txt"
    here = report.tree.read_text(rel, MAX_SMALL_TEXT) if rel in report.tree.files else None
    if here is None and wheel.entry_points is None:
        return []
    mine, theirs = _entry_point_lines(here), _entry_point_lines(wheel.entry_points)
    shown: list[str] = []
    for key in sorted(mine.keys() | theirs.keys()):
        new, old = mine.get(key), theirs.get(key)
        if new == old:
            continue
        if old is None:
            shown.append(f"added [{key[0]}] {new}")
        elif new is None:
            shown.append(f"removed [{key[0]}] {old}")
        else:
            shown.append(f"changed [{key[0]}] {new} (wheel: {old})")
    if not shown:
        return []
    more = f"\n... and {len(shown) - MAX_SHOWN_LINES} more" if len(shown) > MAX_SHOWN_LINES else ""
    return [Issue(rel, None, KIND_ENTRY_POINTS, f"installed entry points differ from wheel {wheel.file}:\n"
                  + "\n".join(shown[:MAX_SHOWN_LINES]) + more, dist.dist_info)]  # fmt: skip


# --------------------------------------------------------------------------------------------------------- lock
def compare_with_lock(report: SiteReport, wheels: list[WheelInfo], locked: dict[str, LockedPin]) -> list[Issue]:
    """Wheels and installed archives whose SHA-256 the lock does not list (see the module docstring).

    An installed version other than the locked one is left to the dependency section (not reported here).
    """
    installed = {normalize_name(d.name): d for d in report.distributions}
    issues: list[Issue] = []
    for w in wheels:
        pin = locked.get(w.name)
        dist = installed.get(w.name)
        owner = dist.dist_info if dist is not None and same_version(dist.version, w.version) else None
        if w.sha256 is None:
            continue  # not hashed (cap): warned by read_wheels
        if pin is None:
            issues.append(Issue(w.file, None, KIND_WHEEL_NOT_LOCKED, f"wheel sha256 {w.sha256}: the lock names no "
                                f"{w.name!r}", owner))  # fmt: skip
        elif w.sha256 not in pin.hashes:
            other = "" if same_version(pin.version, w.version) else f" (the lock pins {pin.version}, not {w.version})"
            issues.append(Issue(w.file, None, KIND_WHEEL_NOT_LOCKED, f"wheel sha256 {w.sha256} is not among the "
                                f"{len(pin.hashes)} hash(es) of {_at(pin)}{other}", owner))  # fmt: skip
    for name, dist in installed.items():
        pin = locked.get(name)
        if pin is None or not same_version(pin.version, dist.version):
            continue
        rel = f"{dist.dist_info}/direct_url.json"
        archive = _archive_hash(report, rel)
        if archive is not None and archive not in pin.hashes:
            issues.append(Issue(rel, None, KIND_ARCHIVE_NOT_LOCKED, f"installed from an archive of sha256 {archive}, "
                                f"not among the {len(pin.hashes)} hash(es) of {_at(pin)}", dist.dist_info))  # fmt: skip
    return _sorted(issues)


def _at(pin: LockedPin) -> str:
    return f"{pin.source} line {pin.line} ({pin.version})"


def _archive_hash(report: SiteReport, rel: str) -> str | None:
    """``archive_info.hashes.sha256`` (or the legacy ``archive_info.hash`` ``sha256=...``) of a direct_url.json."""
    if rel not in report.tree.files:
        return None
    text = report.tree.read_text(rel, MAX_SMALL_TEXT)
    try:
        doc = json.loads(text or "")
    except ValueError:
        report.tree.warnings.append(EvidenceWarning(rel, None, "not JSON; its archive hash not compared"))
        return None
    info = doc.get("archive_info") if isinstance(doc, dict) else None
    if not isinstance(info, dict):
        return None
    hashes = info.get("hashes")
    if isinstance(hashes, dict) and isinstance(hashes.get("sha256"), str):
        return hashes["sha256"].lower()
    legacy = info.get("hash")
    if isinstance(legacy, str) and legacy.startswith("sha256="):
        return legacy.removeprefix("sha256=").lower()
    return None


# ---------------------------------------------------------------------------------------------- previous capture
def compare_with_previous(
    report: SiteReport, previous: SiteReport, *, warnings: list[EvidenceWarning] | None = None
) -> list[Issue]:
    """What changed between a previous capture of the environment and this one (see the module docstring).

    Issue paths are paths of this capture's site-packages (of the previous one for what was removed).
    """
    now = {normalize_name(d.name): d for d in report.distributions}
    before = {normalize_name(d.name): d for d in previous.distributions}
    mine, theirs = _Hasher(report, warnings), _Hasher(previous, warnings)
    idx_now, idx_before = _by_top(report.tree.files), _by_top(previous.tree.files)
    where = f"the previous capture ({previous.root})"
    issues: list[Issue] = []
    owned: set[str] = set()
    for name in sorted(now.keys() | before.keys()):
        d, p = now.get(name), before.get(name)
        if p is None and d is not None:
            issues.append(Issue(d.dist_info, None, KIND_DIST_ADDED, f"{d.name} {d.version} installed; not in the "
                                f"previous capture ({previous.root})", d.dist_info))  # fmt: skip
        elif d is None and p is not None:
            issues.append(Issue(p.dist_info, None, KIND_DIST_REMOVED, f"{p.name} {p.version} was in the previous "
                                f"capture ({previous.root}); no longer installed", p.dist_info))  # fmt: skip
        elif d is not None and p is not None and not same_version(d.version, p.version):
            issues.append(Issue(d.dist_info, None, KIND_VERSION_CHANGED, f"{d.name} {d.version} installed; the "
                                f"previous capture ({previous.root}) had {p.version}", d.dist_info))  # fmt: skip
        elif d is not None and p is not None:
            tops = set(d.top_level) | set(p.top_level) | {d.dist_info, p.dist_info}
            pair = _under(idx_now, tops), _under(idx_before, tops)
            issues += _files_since(mine, theirs, *pair, where, d.dist_info)
    for d in list(now.values()) + list(before.values()):
        owned |= set(d.top_level) | {d.dist_info}
    loose = [_under(idx, set(idx) - owned) for idx in (idx_now, idx_before)]
    issues += _files_since(mine, theirs, *loose, where, None)
    mine.done()
    theirs.done()
    return _sorted(issues)


def _files_since(
    mine: _Hasher, theirs: _Hasher, now: set[str], before: set[str], where: str, info: str | None
) -> list[Issue]:
    """The paths of one distribution (or those no distribution owns) now and before, compared."""
    out: list[Issue] = []
    for rel in sorted(now | before):
        if rel not in before:
            got = mine(rel)
            out.append(Issue(rel, None, KIND_ADDED_SINCE, f"not in {where}; now sha256 {got[0] if got else '?'}", info))
        elif rel not in now:
            got = theirs(rel)
            out.append(Issue(rel, None, KIND_REMOVED_SINCE, f"in {where} (sha256 {got[0] if got else '?'}); no "
                             "longer there", info))  # fmt: skip
        else:
            a, b = mine(rel), theirs(rel)
            if a is not None and b is not None and a != b:
                out.append(Issue(rel, None, KIND_CHANGED_SINCE, f"now sha256 {a[0]}, {a[1]} bytes; {where}: "
                                 f"{b[0]}, {b[1]} bytes", info))  # fmt: skip
    return out
