"""Zip and 7z archives read defensively: listing with caps, anomaly checks, member streams with inflation caps.

Model formats hide in zips (PyTorch ``archive/data.pkl``, ``.npz``, ``.keras``). Loaders differ in what they
trust: PyTorch reads members by their central-directory entry and ignores flags and CRCs, Python's ``zipfile``
refuses some of those files. So each member is checked for what an attacker can exploit: a local header name that
differs from the central one, an encryption flag, a CRC that does not match, a duplicate name, a path that leaves
the extraction folder, and a declared size or ratio that makes it a decompression bomb. Member data is read from
the local header directly (as a lenient loader would), inflated at most to its declared size.
"""

from __future__ import annotations

import bz2
import io
import lzma
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO

from workbench.model.limits import MIB, ScanLimits

__all__ = [
    "SUPPORTED_METHODS",
    "ArchiveAnomaly",
    "ZipListing",
    "ZipMember",
    "check_member_crc",
    "list_zip",
    "open_member",
    "window",
]

_LOCAL = struct.Struct("<4s2B4HL2L2H")
_CHUNK = 256 * 1024
#: compression methods whose members are read (zip method number -> name); others are not analysed
SUPPORTED_METHODS = {
    zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate", zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "lzma",
}  # fmt: skip
#: names a loader looks a pickle up by (PyTorch's ``data.pkl``, TorchScript's ``constants.pkl`` ...)
_PICKLE_NAME = re.compile(r"(\.pkl|\.pickle|\.debug_pkl)$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ZipMember:
    """One member as the central directory declares it, with where its data really starts.

    Attributes:
        name: central-directory name.
        local_name: the local header's name (differs from ``name`` only in a crafted archive).
        size / compressed: declared inflated and compressed sizes.
        method: compression method number; encrypted: the encryption flag (central or local).
        crc: declared CRC-32; data_offset: offset of the member's data in the archive (None if unreadable).
    """

    name: str
    local_name: str | None
    size: int
    compressed: int
    method: int
    encrypted: bool
    crc: int
    data_offset: int | None

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")


@dataclass(frozen=True, slots=True)
class ArchiveAnomaly:
    """Something wrong or hostile about an archive (``member`` None for the archive as a whole).

    ``kind`` is one of ``unreadable``, ``too_many_members``, ``decompression_bomb``, ``name_mismatch``,
    ``encrypted``, ``bad_crc``, ``size_mismatch``, ``duplicate_name``, ``unsafe_path``, ``unsupported_method``,
    ``bad_local_header``, ``header_mismatch`` (local header and central directory disagree on method, sizes or CRC),
    ``too_deep``.
    """

    member: str | None
    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class ZipListing:
    """The members examined, the anomalies, and whether member data may be read at all.

    Attributes:
        members: the first ``max_members`` entries of the central directory, then, past that cap, up to
            ``max_late_pickles`` entries named like a pickle (``data.pkl``, ``*.pkl`` ...: a loader finds them by name
            wherever they are).
        names: every central-directory name (the archive's kind is judged from all of them).
        total: entries in the central directory.
    """

    members: tuple[ZipMember, ...]
    anomalies: tuple[ArchiveAnomaly, ...]
    readable: bool
    names: tuple[str, ...] = ()
    total: int = 0


def list_zip(fh: BinaryIO, limits: ScanLimits) -> ZipListing:
    """List a zip archive and check every member's headers (no member data is inflated here).

    Args:
        fh: the archive, seekable.
        limits: member-count, inflated-size and ratio caps.

    Returns:
        The :class:`ZipListing`; an archive whose central directory cannot be read has no members and an
        ``unreadable`` anomaly.
    """
    anomalies: list[ArchiveAnomaly] = []
    if (declared := central_directory_bytes(fh)) is not None and declared > limits.max_central_bytes:
        detail = (f"central directory of {declared} bytes, above the {limits.max_central_bytes}-byte cap (listing it "
                  "would hold every entry in memory): not read")  # fmt: skip
        return ZipListing((), (ArchiveAnomaly(None, "too_many_members", detail),), False)
    try:
        infos = zipfile.ZipFile(fh).infolist()
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,
        OSError,
        ValueError,
        EOFError,
        struct.error,
    ) as exc:
        return ZipListing((), (ArchiveAnomaly(None, "unreadable", f"central directory unreadable: {exc}"),), False)
    names = tuple(i.filename for i in infos)
    if len(infos) > limits.max_members:
        late = [i for i in infos[limits.max_members :] if _PICKLE_NAME.search(i.filename)]
        kept = late[: limits.max_late_pickles]
        detail = f"{len(infos)} members; only the first {limits.max_members} are examined"
        if late:
            detail += f" (and {len(kept)} of the {len(late)} named like a pickle after them)"
        anomalies.append(ArchiveAnomaly(None, "too_many_members", detail))
        infos = infos[: limits.max_members] + kept
    members: list[ZipMember] = []
    seen: set[str] = set()
    for info in infos:
        member, problems = _member(fh, info)
        members.append(member)
        anomalies.extend(problems)
        if info.filename in seen:
            anomalies.append(
                ArchiveAnomaly(
                    info.filename,
                    "duplicate_name",
                    "name appears twice in the central directory; loaders pick different ones",
                )
            )
        seen.add(info.filename)
        if info.filename.startswith(("/", "\\")) or ".." in info.filename.replace("\\", "/").split("/"):
            anomalies.append(ArchiveAnomaly(info.filename, "unsafe_path", "name leaves the extraction folder"))
        if member.size > MIB and member.size > limits.max_member_ratio * max(member.compressed, 1):
            anomalies.append(
                ArchiveAnomaly(
                    info.filename,
                    "decompression_bomb",
                    f"declares {member.size} bytes from {member.compressed} compressed "
                    f"(ratio above {limits.max_member_ratio})",
                )
            )
    total = sum(m.size for m in members if m.method != zipfile.ZIP_STORED)
    if total > limits.max_inflated_bytes:
        anomalies.append(
            ArchiveAnomaly(
                None,
                "decompression_bomb",
                f"compressed members declare {total} inflated bytes, above the "
                f"{limits.max_inflated_bytes}-byte cap; contents not read",
            )
        )
    readable = not any(a.kind == "decompression_bomb" and a.member is None for a in anomalies)
    return ZipListing(tuple(members), tuple(anomalies), readable, names, len(names))


def central_directory_bytes(fh: BinaryIO) -> int | None:
    """The central directory's size as the end record declares it (what :mod:`zipfile` reads whole), or None."""
    try:
        end = zipfile._EndRecData(fh)  # the reader zipfile itself uses (ZIP64 included)
    except (OSError, ValueError, struct.error, EOFError):
        return None
    return None if end is None else int(end[zipfile._ECD_SIZE])


def _member(fh: BinaryIO, info: zipfile.ZipInfo) -> tuple[ZipMember, list[ArchiveAnomaly]]:
    problems: list[ArchiveAnomaly] = []
    name = info.filename
    encrypted = bool(info.flag_bits & 0x1)
    local_name: str | None = None
    data_offset: int | None = None
    try:
        fh.seek(info.header_offset)
        header = fh.read(_LOCAL.size)
        if len(header) != _LOCAL.size:
            raise ValueError("local header truncated")
        fields = _LOCAL.unpack(header)
        if fields[0] != b"PK\x03\x04":
            raise ValueError("local header signature missing")
        raw_name = fh.read(fields[10])
        local_name = raw_name.decode("utf-8" if fields[3] & 0x800 else "cp437", "replace")
        data_offset = info.header_offset + _LOCAL.size + fields[10] + fields[11]
        encrypted = encrypted or bool(fields[3] & 0x1)
        problems.extend(_header_disagreements(info, fields))
    except (OSError, ValueError, struct.error) as exc:
        problems.append(ArchiveAnomaly(name, "bad_local_header", f"at offset {info.header_offset}: {exc}"))
    if local_name is not None and local_name != info.orig_filename:
        problems.append(
            ArchiveAnomaly(
                name, "name_mismatch", f"local header names it {local_name!r}; tools disagree on which name is real"
            )
        )
    if encrypted:
        problems.append(
            ArchiveAnomaly(
                name, "encrypted", "encryption flag set (PyTorch ignores it and reads the bytes as they are)"
            )
        )
    if info.compress_type not in SUPPORTED_METHODS:
        problems.append(ArchiveAnomaly(name, "unsupported_method", f"compression method {info.compress_type} not read"))
    member = ZipMember(
        name, local_name, info.file_size, info.compress_size, info.compress_type, encrypted, info.CRC, data_offset
    )
    return member, problems


def _header_disagreements(info: zipfile.ZipInfo, fields: tuple) -> list[ArchiveAnomaly]:
    """Where the local header and the central directory disagree on the compression method, the sizes or the CRC
    (sizes and CRC only when the local header carries them: no data descriptor, no ZIP64 placeholder)."""
    said = {"method": (fields[4], info.compress_type)}
    if not fields[3] & 0x8:
        said.update(
            crc=(fields[7], info.CRC), compressed=(fields[8], info.compress_size), size=(fields[9], info.file_size)
        )
    differ = [f"{what} {local} locally, {central} in the central directory" for what, (local, central) in said.items()
              if local != central and not (what != "method" and local == 0xFFFFFFFF)]  # fmt: skip
    if not differ:
        return []
    detail = (
        "; ".join(differ) + ": loaders reading the local header and those reading the central directory get "
        "different bytes (the central reading is examined)"
    )
    return [ArchiveAnomaly(info.filename, "header_mismatch", detail)]


class _Window(io.RawIOBase):
    """A seekable read-only window ``[start, start+length)`` of a file."""

    def __init__(self, fh: BinaryIO, start: int, length: int) -> None:
        self._fh, self._start, self._length, self._pos = fh, start, length, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = min(max(0, base + offset), self._length)
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), self._length - self._pos)
        if want <= 0:
            return 0
        self._fh.seek(self._start + self._pos)
        data = self._fh.read(want)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


class _Inflate(io.RawIOBase):
    """Inflates a deflate, bzip2 or LZMA window, never producing more than ``limit`` bytes (``overflow`` says if it
    would)."""

    def __init__(self, window: _Window, method: int, limit: int) -> None:
        self._window = window
        self._method = method
        self._limit = limit
        self._out = 0
        self._zlib = zlib.decompressobj(-15) if method == zipfile.ZIP_DEFLATED else None
        self._bz2: Any = bz2.BZ2Decompressor() if method == zipfile.ZIP_BZIP2 else None
        if method == zipfile.ZIP_LZMA:
            self._bz2 = _zip_lzma(window)
        self._tail = b""
        self.overflow = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        room = min(len(buffer), self._limit - self._out)
        while room > 0:
            data = self._decompress(room)
            if data is None:
                return 0
            if data:
                buffer[: len(data)] = data
                self._out += len(data)
                return len(data)
        self.overflow = self.overflow or self._more_output()
        return 0

    def _decompress(self, room: int) -> bytes | None:
        if self._zlib is not None:
            chunk = self._zlib.unconsumed_tail or self._window.read(_CHUNK)
            if not chunk:
                return self._zlib.flush()[:room] or None
            return self._zlib.decompress(chunk, room)
        assert self._bz2 is not None  # noqa: S101 - construction guarantees one decompressor
        if self._bz2.eof:
            return None
        chunk = b"" if not self._bz2.needs_input else self._window.read(_CHUNK)
        if self._bz2.needs_input and not chunk:
            return None
        return self._bz2.decompress(chunk, room)

    def _more_output(self) -> bool:
        try:
            return bool(self._decompress(1))
        except (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError):
            return False


def _zip_lzma(window: _Window) -> Any:
    """The decompressor of a zip LZMA member (method 14): a 4-byte header (version, properties size), the LZMA1
    properties, then the raw stream (as :mod:`zipfile` reads it)."""
    head = window.read(4)
    if len(head) < 4:
        raise ValueError("LZMA member header truncated")
    (psize,) = struct.unpack("<H", head[2:4])
    props = window.read(psize)
    try:
        filt = lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)  # as zipfile does
    except lzma.LZMAError as exc:
        raise ValueError(f"LZMA member properties unusable: {exc}") from None
    return lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[filt])


def window(fh: BinaryIO, start: int, length: int) -> io.RawIOBase:
    """A seekable read-only raw stream over ``[start, start+length)`` of the seekable ``fh`` (left open)."""
    return _Window(fh, start, length)


def open_member(fh: BinaryIO, member: ZipMember) -> tuple[BinaryIO, io.RawIOBase]:
    """A buffered stream of a member's inflated bytes (at most its declared size) and its raw reader.

    Returns:
        ``(buffered stream, raw)``; ``raw.overflow`` (inflated members) tells whether more data would have come.

    Raises:
        ValueError: the member's data cannot be located or its compression method is not supported.
    """
    if member.data_offset is None or member.method not in SUPPORTED_METHODS:
        raise ValueError(f"member {member.name!r} cannot be read")
    window = _Window(fh, member.data_offset, member.compressed)
    raw: io.RawIOBase = window if member.method == zipfile.ZIP_STORED else _Inflate(window, member.method, member.size)
    if member.method == zipfile.ZIP_STORED and member.compressed != member.size:
        window = _Window(fh, member.data_offset, min(member.compressed, member.size))
        raw = window
    return io.BufferedReader(raw, buffer_size=_CHUNK), raw  # type: ignore[arg-type]


def check_member_crc(fh: BinaryIO, member: ZipMember) -> ArchiveAnomaly | None:
    """Inflate a member (up to its declared size) and compare CRC-32 and length with the central directory.

    Returns:
        ``bad_crc``, ``size_mismatch`` or ``decompression_bomb`` (inflates past its declared size), or None.
    """
    try:
        stream, raw = open_member(fh, member)
        crc, total = 0, 0
        while chunk := stream.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
            total += len(chunk)
    except (ValueError, OSError, zlib.error, lzma.LZMAError, EOFError) as exc:
        return ArchiveAnomaly(member.name, "bad_crc", f"data cannot be inflated: {exc}")
    if getattr(raw, "overflow", False):
        return ArchiveAnomaly(member.name, "decompression_bomb", f"inflates past its declared {member.size} bytes")
    if total != member.size:
        return ArchiveAnomaly(member.name, "size_mismatch", f"declares {member.size} bytes, holds {total}")
    if crc != member.crc:
        return ArchiveAnomaly(member.name, "bad_crc", f"CRC-32 {crc:08x} does not match the declared {member.crc:08x}")
    return None
