"""Archive walking for the artefact inventory: zip, 7z and tar members examined one by one, anomalies recorded.

:class:`ArchiveWalker` is mixed into the inventory's examiner; it lists an archive (:mod:`workbench.model.archives`,
:mod:`workbench.model.tar_listing`), records its anomalies, checks member CRCs within a byte budget, and hands every
member back to the examiner, one nesting level deeper, up to ``ScanLimits.max_depth``. Each member is examined on
its own: one unreadable, encrypted or oddly named member never hides the others. What cannot be examined gets a
coverage state (:mod:`workbench.model.coverage`): an encrypted member whose bytes are not what PyTorch would read
anyway, a compression method not supported, an archive nested too deep, members past the member cap, the part of
a decompression bomb past its reading cap. PyTorch storage blobs (``data/N``) are skipped unless they start like
a pickle (they are raw tensor bytes no loader unpickles).
"""

from __future__ import annotations

import io
import lzma
import re
import zipfile
import zlib
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from typing import Any, BinaryIO

from workbench.model import archives, sevenzip, tar_listing
from workbench.model.formats import PICKLE_KINDS, sniff
from workbench.model.limits import ScanLimits
from workbench.textsafe import clean_text

__all__ = ["READ_ERRORS", "ArchiveWalker", "Source"]

#: what reading damaged member data (inflating, decompressing, parsing) can raise; the member becomes a warning
READ_ERRORS = (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError)

_STORAGE_MEMBER = re.compile(r"(^|/)data/\d+$")
#: anomaly kinds that mean part of the archive was not examined
CAP_KINDS = frozenset({"too_many_members", "decompression_bomb", "too_deep"})
#: members of torch's legacy tar checkpoint (``torch.save(..., _use_new_zipfile_serialization=False)`` before 1.6)
LEGACY_TAR_MEMBERS = frozenset({"sys_info", "pickle", "storages", "tensors"})


@dataclass(slots=True)
class Source:
    """A file or archive member to examine: where it is, its name and size, and how to open it from the start.

    ``context`` names the container format holding it (``torchscript``, ``pytorch_zip``, ``pytorch_legacy_tar``),
    None for a file or a member of a plain archive.
    """

    path: str
    member: str | None
    name: str
    size: int
    opener: Callable[[], BinaryIO]
    seekable: bool
    context: str | None = None


class ArchiveWalker:
    """Zip, 7z and tar handling of the inventory examiner (which provides the attributes and methods below)."""

    limits: ScanLimits
    inv: Any
    _budget: Any

    def _examine(self, src: Source, depth: int) -> Any:
        raise NotImplementedError

    def _warn(self, src: Source, reason: str) -> None:
        raise NotImplementedError

    def _unexamined(self, src: Source, reason: str) -> None:
        raise NotImplementedError

    def _not_analysed(self, src: Source, reason: str) -> None:
        raise NotImplementedError

    def _skipped(self, src: Source, reason: str) -> Any:
        raise NotImplementedError

    def _unreadable(self, src: Source, exc: BaseException) -> Any:
        raise NotImplementedError

    def _limit(self, src: Source, reason: str) -> None:
        raise NotImplementedError

    # -- zip ---------------------------------------------------------------------------------------------------------
    def _zip(self, src: Source, depth: int, details: dict[str, Any]) -> str:
        fh = self._seekable(src)
        if fh is None:
            return "zip"
        with closing(fh):
            listing = archives.list_zip(fh, self.limits)
            kind = _zip_kind(listing.names)
            details["members"] = listing.total
            for anomaly in listing.anomalies:  # an archive not read at all is "not analysed" below, once
                self._anomaly(src, anomaly, listed=listing.readable)
            if not listing.readable:
                self._not_analysed(src, next(a.detail for a in listing.anomalies if a.member is None))
                return kind
            if depth >= self.limits.max_depth:
                self._too_deep(src, depth)
                return kind
            context = kind if kind in ("pytorch_zip", "torchscript") else None
            tally = _Tally()
            crc_budget = self.limits.crc_check_bytes
            bombs = {a.member for a in listing.anomalies if a.kind == "decompression_bomb"}
            for member in listing.members:
                if member.is_dir:
                    continue
                inner = _member_source(src, fh, member, context)
                if not self._take_member(inner):
                    continue
                if member.data_offset is None:
                    self._skipped(inner, "local header unreadable, member data not located")
                    continue
                if member.method not in archives.SUPPORTED_METHODS:
                    self._skipped(inner, f"unsupported compression (zip method {member.method})")
                    continue
                if member.name not in bombs and not member.encrypted:
                    crc_budget -= member.size
                    if crc_budget >= 0 and (bad := archives.check_member_crc(fh, member)) is not None:
                        self._anomaly(src, bad)
                if kind == "pytorch_zip" and _STORAGE_MEMBER.search(member.name) and not self._starts_pickle(inner):
                    continue
                if member.name in bombs and (inner := self._bomb_window(inner)) is None:
                    continue
                if member.encrypted and not self._encrypted_readable(inner):
                    continue
                tally.add(member.name, self._member(inner, depth))
            if crc_budget < 0:
                self._limit(src, f"CRC-32 not verified beyond the first {self.limits.crc_check_bytes} bytes of members")
            tally.store(details)
        return kind

    def _starts_pickle(self, inner: Source) -> bool:
        try:
            with closing(inner.opener()) as mf:
                magic = mf.read(2)
        except READ_ERRORS:
            return True  # examined (and reported unreadable) like any other member
        return len(magic) == 2 and magic[0] == 0x80 and magic[1] <= 5

    def _encrypted_readable(self, inner: Source) -> bool:
        """An encrypted member: PyTorch ignores the flag and reads the bytes as they are, so they are examined as
        they are when they are something (a pickle, an archive ...): ``partially analysed``. Bytes that are nothing
        (cipher text) leave it ``not analysed: encrypted``."""
        try:
            with closing(inner.opener()) as mf:
                head = mf.read(self.limits.sniff_bytes)
        except READ_ERRORS:
            head = b""
        sniffed = sniff(head, inner.name, inner.size)
        if sniffed.kind == "unknown" and not sniffed.details.get("also_pickle"):
            self._skipped(inner, "encrypted (the encryption flag is set; its bytes are no known format)")
            return False
        self._unexamined(inner, "encryption flag set: bytes read as they are, as PyTorch reads them")
        return True

    def _bomb_window(self, inner: Source) -> Source | None:
        """A member flagged as a decompression bomb is still examined, inflated up to what is left of the file's
        ``bomb_scan_bytes`` (all such members of one top-level file together); None when nothing is left."""
        cap = self.limits.bomb_scan_bytes - self._budget.bomb_bytes
        if cap <= 0:
            self._skipped(inner, f"decompression bomb: the file's budget of {self.limits.bomb_scan_bytes} inflated "
                          "bytes for such members is spent")  # fmt: skip
            return None
        self._budget.bomb_bytes += min(cap, inner.size)
        if inner.size <= cap:
            return inner
        self._unexamined(inner, f"decompression bomb: only its first {cap} inflated bytes examined (of {inner.size} "
                         "declared)")  # fmt: skip
        opener = inner.opener
        return Source(inner.path, inner.member, inner.name, inner.size, lambda: _Capped(opener(), cap), False,
                      inner.context)  # fmt: skip

    # -- 7z ----------------------------------------------------------------------------------------------------------
    def _sevenzip(self, src: Source, depth: int, details: dict[str, Any]) -> None:
        fh = self._seekable(src)
        if fh is None:
            return
        with closing(fh):
            contents = sevenzip.read_7z(fh, self.limits, listing_only=depth >= self.limits.max_depth)
        details["members"] = len(contents.members)
        for anomaly in contents.anomalies:
            self._anomaly(src, anomaly)
        if contents.error is not None:
            self._not_analysed(src, contents.error)
            return
        if depth >= self.limits.max_depth:
            if contents.members:
                self._too_deep(src, depth)
            return
        tally = _Tally()
        for raw_name, _size in contents.members:
            name = clean_text(raw_name)[0]
            member = f"{src.member}!{name}" if src.member else name
            data = contents.data.get(raw_name)
            reason = contents.failed.get(raw_name)
            inner = Source(src.path, member, name, len(data or b""), lambda d=data: io.BytesIO(d or b""), True)
            if not self._take_member(inner):
                continue
            if data is None:
                self._skipped(inner, reason or "member not extracted")
                continue
            tally.add(name, self._member(inner, depth))
        tally.store(details)

    # -- tar ---------------------------------------------------------------------------------------------------------
    def _tar(self, src: Source, depth: int, details: dict[str, Any]) -> str:
        """List a tar archive and examine its regular members (from memory when the tar itself is compressed).

        Returns:
            ``pytorch_legacy_tar`` for torch's legacy tar checkpoint (members ``sys_info``, ``pickle``,
            ``storages``, ``tensors``), else ``tar``.
        """
        fh = self._seekable(src)
        if fh is None:
            return "tar"
        with closing(fh):
            listing = tar_listing.list_tar(fh, self.limits)
            names = {m.name.rsplit("/", 1)[-1] for m in listing.members}
            kind = "pytorch_legacy_tar" if {"pickle", "storages", "tensors"} <= names else "tar"
            details["members"] = len(listing.members)
            for anomaly in listing.anomalies:
                self._anomaly(src, anomaly)
            if any(a.kind == "unreadable" for a in listing.anomalies):
                self._unexamined(src, next(a.detail for a in listing.anomalies if a.kind == "unreadable"))
            if listing.members and depth >= self.limits.max_depth:
                self._too_deep(src, depth)
                return kind
            context = kind if kind == "pytorch_legacy_tar" else None
            tally = _Tally()
            for m in listing.members:
                member = f"{src.member}!{m.name}" if src.member else m.name
                inner = Source(src.path, member, m.name, m.size, lambda m=m: tar_listing.open_member(fh, m), True,
                               context)  # fmt: skip
                if self._take_member(inner):
                    tally.add(m.name, self._member(inner, depth))
            tally.store(details)
        return kind

    # -- shared ------------------------------------------------------------------------------------------------------
    def _member(self, inner: Source, depth: int) -> Any:
        try:
            return self._examine(inner, depth + 1)
        except READ_ERRORS as exc:
            return self._unreadable(inner, exc)

    def _take_member(self, inner: Source) -> bool:
        """Count a member against the top-level file's member budget (all nesting levels together)."""
        self._budget.members += 1
        if self._budget.members <= self.limits.max_file_members:
            return True
        if self._budget.members == self.limits.max_file_members + 1:
            self._unexamined(inner, f"more than {self.limits.max_file_members} archive members in this file (all "
                             "nesting levels): this member and later ones not examined")  # fmt: skip
        return False

    def _too_deep(self, src: Source, depth: int) -> None:
        self._anomaly(src, archives.ArchiveAnomaly(None, "too_deep", f"archive nested {depth} deep: not opened"),
                      listed=False)  # fmt: skip
        self._not_analysed(src, f"archive nested {depth} deep: not opened")

    def _seekable(self, src: Source) -> BinaryIO | None:
        if src.seekable:
            return src.opener()
        cap = min(self.limits.max_in_memory_bytes, self.limits.max_in_memory_bytes - self._budget.in_memory)
        if cap <= 0:
            self._not_analysed(src, f"compressed nested archive: the file's {self.limits.max_in_memory_bytes}-byte "
                               "in-memory budget is spent; not opened")  # fmt: skip
            return None
        with closing(src.opener()) as fh:
            data = fh.read(cap + 1)
        if len(data) > cap:
            self._unexamined(src, f"compressed archive inflates past the {cap}-byte in-memory cap: only the first "
                             f"{cap} bytes examined")  # fmt: skip
            data = data[:cap]
        self._budget.in_memory += len(data)
        return io.BytesIO(data)

    def _anomaly(self, src: Source, anomaly: archives.ArchiveAnomaly, *, listed: bool = True) -> None:
        member = anomaly.member
        if src.member:
            member = f"{src.member}!{member}" if member else src.member
        self.inv.anomalies.append((src.path, archives.ArchiveAnomaly(member, anomaly.kind, anomaly.detail)))
        if listed and anomaly.kind in CAP_KINDS and anomaly.member is None:
            self._unexamined(src, anomaly.detail)


@dataclass(slots=True)
class _Tally:
    pickles: int = 0
    dangerous: list[str] | None = None

    def add(self, name: str, art: Any) -> None:
        self.pickles += art.kind in PICKLE_KINDS or bool(
            art.details.get("has_object") or art.details.get("pickle_members")
        )
        if art.dangerous:
            self.dangerous = (self.dangerous or []) + [f"{name}: {art.why}"]

    def store(self, details: dict[str, Any]) -> None:
        details["pickle_members"] = self.pickles
        if self.dangerous:
            details["dangerous_members"] = self.dangerous[:20]


class _Capped(io.RawIOBase):
    """At most ``cap`` bytes of a stream (the stream is closed with it)."""

    def __init__(self, stream: BinaryIO, cap: int) -> None:
        self._stream, self._left = stream, cap

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), self._left)
        if want <= 0:
            return 0
        data = self._stream.read(want)
        buffer[: len(data)] = data
        self._left -= len(data)
        return len(data)

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            super().close()


def _zip_kind(names: list[str]) -> str:
    if any(n.endswith("data.pkl") for n in names):
        code = any("/code/" in n or n.startswith("code/") or n.endswith("constants.pkl") for n in names)
        return "torchscript" if code else "pytorch_zip"
    if names and all(n.endswith(".npy") for n in names):
        return "npz"
    if "config.json" in names and ("metadata.json" in names or "model.weights.h5" in names):
        return "keras"
    return "zip"


def _member_source(src: Source, fh: BinaryIO, member: archives.ZipMember, context: str | None) -> Source:
    name = f"{src.member}!{member.name}" if src.member else member.name
    return Source(
        src.path,
        name,
        member.name,
        member.size,
        lambda: archives.open_member(fh, member)[0],
        member.method == zipfile.ZIP_STORED,
        context,
    )
