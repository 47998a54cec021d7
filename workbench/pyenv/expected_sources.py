"""The trusted hashes :mod:`workbench.pyenv.expected` compares with: a folder of wheels, a lock file with hashes.

- :func:`read_wheels`: every ``*.whl`` of a folder (walked without following symlinks), hashed, and its
  ``*.dist-info/RECORD`` and ``entry_points.txt`` read from the zip without extracting anything: the central
  directory's size is checked before :mod:`zipfile` parses it, each member's declared size is checked and the
  member read with a bounded read (a zip bomb or a lying header stops at the cap). A damaged zip, a name that is
  not a wheel's, a wheel without RECORD are warnings naming the file; such a wheel is left out, the run goes on.
- :func:`read_locked_hashes`: ``name==version --hash=sha256:...`` lines (``pip-compile --generate-hashes``,
  continuation lines joined); other hash algorithms are ignored.
"""

from __future__ import annotations

import os
import posixpath
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from workbench import safeio
from workbench.deps_baseline import MAX_LOCK_BYTES, same_version
from workbench.errors import MalformedEvidence
from workbench.evidence.base import LoadContext, check_size, iter_lines
from workbench.evidence.deps import normalize_name
from workbench.evidence_tree import walk_tree
from workbench.hashing import sha256_file
from workbench.pyenv.record_lines import RecordLineError, parse_record_fields, split_record_line
from workbench.records import EvidenceWarning

__all__ = [
    "INSTALLER_FILES",
    "MAX_CENTRAL_DIR",
    "MAX_ENTRY_POINTS_BYTES",
    "MAX_MEMBERS",
    "MAX_RECORD_BYTES",
    "MAX_WHEELS",
    "MAX_WHEEL_BYTES",
    "LockedPin",
    "WheelEntry",
    "WheelInfo",
    "read_locked_hashes",
    "read_wheels",
]

#: wheels read at most from one folder (and files walked there: ten times as many)
MAX_WHEELS = 10_000
#: bytes of wheels hashed at most over the folder; past it a wheel's SHA-256 is not known (a warning)
MAX_WHEEL_BYTES = 16 * 1024**3
#: largest central directory parsed (bounds the memory :mod:`zipfile` takes for its member list)
MAX_CENTRAL_DIR = 64 * 1024 * 1024
#: members of one wheel at most, and RECORD entries kept at most
MAX_MEMBERS = 200_000
#: largest RECORD member read (uncompressed)
MAX_RECORD_BYTES = 8 * 1024 * 1024
#: largest entry_points.txt member read (uncompressed)
MAX_ENTRY_POINTS_BYTES = 256 * 1024
#: files of an installed dist-info that the installer writes, not the wheel
INSTALLER_FILES = ("INSTALLER", "REQUESTED", "direct_url.json", "RECORD")

_PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[[^\]]*\])?\s*"
    r"(?:===?\s*(?P<v>[A-Za-z0-9][A-Za-z0-9._+!-]*)|@\s*\S+)\s*(?:;.*)?$"
)
_SHA256 = re.compile(r"--hash[=\s]+sha256:([0-9a-fA-F]{64})\b")
_OPTION = re.compile(r"\s--[\w-]+(?:[=\s]+\S+)?")


@dataclass(frozen=True, slots=True)
class WheelEntry:
    """One line of a wheel's RECORD: ``path`` as in the wheel, ``sha256`` hex (None when listed without one)."""

    path: str
    sha256: str | None
    size: int | None
    line: int

    def installed_path(self, wheel_info: str, installed_info: str) -> str | None:
        """Where the file lands in ``site-packages`` (the dist-info renamed as installed; ``.data/purelib`` and
        ``platlib`` moved up), or None for what the installer puts elsewhere (scripts, headers, data)."""
        if self.path.startswith(wheel_info + "/"):
            return installed_info + self.path[len(wheel_info) :]
        data = wheel_info.removesuffix(".dist-info") + ".data/"
        if self.path.startswith(data):
            scheme, _, rest = self.path[len(data) :].partition("/")
            return rest if scheme in ("purelib", "platlib") and rest else None
        return self.path


@dataclass(frozen=True, slots=True)
class WheelInfo:
    """One wheel of the folder.

    Attributes:
        file: its path relative to the folder given.
        name: normalized project name (from the file name); version: from the file name.
        sha256: hex digest of the file, or None when the hashing budget was spent.
        size: bytes.
        dist_info: the wheel's ``*.dist-info`` folder.
        record: RECORD path -> :class:`WheelEntry`, in RECORD order.
        entry_points: ``entry_points.txt`` text, or None when the wheel has none.
    """

    file: str
    name: str
    version: str
    sha256: str | None
    size: int
    dist_info: str
    record: dict[str, WheelEntry] = field(default_factory=dict)
    entry_points: str | None = None


@dataclass(frozen=True, slots=True)
class LockedPin:
    """A locked requirement: ``version`` (None for a ``name @ url`` pin), its SHA-256 ``hashes`` (lower-case hex),
    the logical line's first line number and the lock file (``source``, as given)."""

    version: str | None
    hashes: frozenset[str]
    line: int
    source: str = ""


class _Refused(Exception):
    """A wheel (or one member) not read; the message is the warning's reason."""


# ------------------------------------------------------------------------------------------------------- wheels
def read_wheels(folder: Path, warnings: list[EvidenceWarning]) -> list[WheelInfo]:
    """Every readable wheel below ``folder``, by path (see the module docstring); the rest are warnings."""
    folder = Path(folder)
    found = [f for f in walk_tree(folder, warnings, max_files=MAX_WHEELS * 10) if f.relpath.lower().endswith(".whl")]
    if len(found) > MAX_WHEELS:
        warnings.append(EvidenceWarning(".", None, f"{len(found)} wheels; only the first {MAX_WHEELS} read"))
    out: list[WheelInfo] = []
    spent = 0
    for f in found[:MAX_WHEELS]:
        parts = f.relpath.rsplit("/", 1)[-1][:-4].split("-")
        if len(parts) not in (5, 6) or not parts[0] or not parts[1]:
            warnings.append(EvidenceWarning(f.relpath, None, "not a wheel file name (name-version-[build-]python-"
                                            "abi-platform.whl); not read"))  # fmt: skip
            continue
        path = folder / f.fs_relpath
        digest = None
        if spent + f.size > MAX_WHEEL_BYTES:
            warnings.append(EvidenceWarning(f.relpath, None, f"not hashed: {MAX_WHEEL_BYTES} bytes of wheels "
                                            "already hashed; its lock hash not compared"))  # fmt: skip
        else:
            try:
                digest, got = sha256_file(path)
                spent += got
            except OSError as exc:
                warnings.append(EvidenceWarning(f.relpath, None, f"not hashed: {exc.strerror or exc}"))
        try:
            out.append(_read_wheel(path, f.relpath, normalize_name(parts[0]), parts[1], digest, f.size, warnings))
        except _Refused as exc:
            warnings.append(EvidenceWarning(f.relpath, None, f"{exc}; the wheel is not compared"))
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
            warnings.append(EvidenceWarning(f.relpath, None, f"damaged wheel (zip not readable: {exc}); the wheel "
                                            "is not compared"))  # fmt: skip
        except OSError as exc:
            warnings.append(EvidenceWarning(f.relpath, None, f"not read: {exc.strerror or exc}"))
    return out


def _central_directory_size(fh: object, size: int) -> int:
    """Bytes of the zip's central directory, from its end record (zip64 too), read from the last 64 KiB."""
    tail_len = min(size, 65_557)
    fh.seek(size - tail_len)  # type: ignore[attr-defined]
    tail = fh.read(tail_len)  # type: ignore[attr-defined]
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        raise zipfile.BadZipFile("no end of central directory record")
    (cd_size,) = struct.unpack("<I", tail[at + 12 : at + 16])
    if cd_size != 0xFFFFFFFF:
        return cd_size
    loc = tail.rfind(b"PK\x06\x07", 0, at)
    if loc < 0 or len(tail) < loc + 20:
        raise zipfile.BadZipFile("zip64 end record not located")
    (offset,) = struct.unpack("<Q", tail[loc + 8 : loc + 16])
    fh.seek(offset)  # type: ignore[attr-defined]
    record = fh.read(56)  # type: ignore[attr-defined]
    if len(record) < 56 or not record.startswith(b"PK\x06\x06"):
        raise zipfile.BadZipFile("zip64 end of central directory record not found")
    return struct.unpack("<Q", record[40:48])[0]


def _member(zf: zipfile.ZipFile, name: str, cap: int) -> bytes:
    """A member's bytes, refused past ``cap`` whatever its header declares (bounded read)."""
    info = zf.getinfo(name)
    if info.file_size > cap:
        raise _Refused(f"{name} declares {info.file_size} bytes, more than the {cap} read")
    with zf.open(info) as fh:
        data = fh.read(cap + 1)
    if len(data) > cap:
        raise _Refused(f"{name} inflates past {cap} bytes (its header says {info.file_size})")
    return data


def _read_wheel(
    path: Path, rel: str, name: str, version: str, digest: str | None, size: int, warnings: list[EvidenceWarning]
) -> WheelInfo:
    with safeio.open_evidence(path) as fh:
        cd = _central_directory_size(fh, os.fstat(fh.fileno()).st_size)
        if cd > MAX_CENTRAL_DIR:
            raise _Refused(f"central directory of {cd} bytes, more than the {MAX_CENTRAL_DIR} read")
        fh.seek(0)
        with zipfile.ZipFile(fh) as zf:
            names = zf.namelist()
            if len(names) > MAX_MEMBERS:
                raise _Refused(f"{len(names)} members, more than {MAX_MEMBERS}")
            records = [n for n in names if n.count("/") == 1 and n.endswith(".dist-info/RECORD")]
            mine = [n for n in records if _dist_info_is(n.split("/", 1)[0], name, version)]
            chosen = mine if mine else records
            if len(chosen) != 1:
                raise _Refused(f"{len(records)} *.dist-info/RECORD member(s), none of {name} {version} alone")
            info = chosen[0].split("/", 1)[0]
            text = _member(zf, chosen[0], MAX_RECORD_BYTES).decode("utf-8", "replace")
            ep_name = f"{info}/entry_points.txt"
            try:
                ep = _member(zf, ep_name, MAX_ENTRY_POINTS_BYTES) if ep_name in names else None
            except _Refused as exc:
                warnings.append(EvidenceWarning(rel, None, f"{exc}; its entry points not compared"))
                ep = None
    record = _wheel_record(text, f"{rel}!{info}/RECORD", warnings)
    entry_points = ep.decode("utf-8", "replace") if ep is not None else None
    return WheelInfo(rel, name, version, digest, size, info, record, entry_points)


def _dist_info_is(folder: str, name: str, version: str) -> bool:
    stem = folder.removesuffix(".dist-info")
    head, _, ver = stem.rpartition("-")
    return normalize_name(head) == name and same_version(ver, version)


def _wheel_record(text: str, shown: str, warnings: list[EvidenceWarning]) -> dict[str, WheelEntry]:
    """The RECORD entries of a wheel; lines not understood or leaving the wheel are warnings."""
    out: dict[str, WheelEntry] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if len(out) >= MAX_MEMBERS:
            warnings.append(EvidenceWarning(shown, lineno, f"more than {MAX_MEMBERS} entries; the rest not read"))
            break
        try:
            row = split_record_line(line)
            norm = posixpath.normpath(row[0])
            if row[0].startswith("/") or "\\" in row[0] or re.match(r"^[A-Za-z]:", row[0]) or norm.startswith(".."):
                raise RecordLineError(f"path {row[0][:200]!r} leaves the wheel")
            _, raw, size = parse_record_fields(row)
        except RecordLineError as exc:
            warnings.append(EvidenceWarning(shown, lineno, f"RECORD line not understood ({exc}); not compared"))
            continue
        out.setdefault(norm, WheelEntry(norm, raw.hex() if raw is not None else None, size, lineno))
    return out


# --------------------------------------------------------------------------------------------------------- lock
def read_locked_hashes(
    path: Path, warnings: list[EvidenceWarning], *, shown: str | None = None
) -> dict[str, LockedPin]:
    """Normalized name -> :class:`LockedPin` for every pin of a requirements/lock file that carries a sha256 hash.

    Pins without any ``--hash=sha256:`` are left out (one warning counting them); a name pinned twice keeps the
    first version (the hashes of a second line of the same version are added; another version is a warning).
    ``shown``: how warnings and pins name the file (its path in the case; default: the path given).
    """
    path = Path(path)
    shown = shown or str(path)
    ctx = LoadContext(shown)
    out: dict[str, LockedPin] = {}
    unhashed = 0
    try:
        check_size(path, ctx, MAX_LOCK_BYTES)
        pending, start = "", 0
        for number, raw in iter_lines(path, ctx, warnings):
            text = re.sub(r"(?:^|\s)#.*$", "", raw).strip()
            if text.endswith("\\"):
                pending, start = (pending + " " + text[:-1]).strip()[: 1 << 20], start or number
                continue
            text, at = (pending + " " + text).strip(), start or number
            pending, start = "", 0
            if not text or text.startswith("-"):
                continue
            hashes = frozenset(h.lower() for h in _SHA256.findall(text))
            m = _PIN.match(_OPTION.sub("", " " + text).strip())
            if m is None:
                warnings.append(EvidenceWarning(shown, at, f"not a pinned requirement: {text[:80]!r}"))
                continue
            if not hashes:
                unhashed += 1
                continue
            _add_pin(out, normalize_name(m["name"]), LockedPin(m["v"], hashes, at, shown), warnings)
    except MalformedEvidence as exc:
        warnings.append(EvidenceWarning(shown, exc.line, f"lock file not read: {exc.reason}"))
    if unhashed:
        warnings.append(EvidenceWarning(shown, None, f"{unhashed} pin(s) without a sha256 --hash left out"))
    return out


def _add_pin(out: dict[str, LockedPin], name: str, pin: LockedPin, warnings: list[EvidenceWarning]) -> None:
    first = out.get(name)
    if first is None:
        out[name] = pin
    elif first.version == pin.version:
        out[name] = LockedPin(first.version, first.hashes | pin.hashes, first.line, first.source)
    else:
        warnings.append(EvidenceWarning(pin.source, pin.line, f"{name} pinned again ({pin.version}; line "
                                        f"{first.line} pins {first.version}): the first kept"))  # fmt: skip
