"""Archive walking for the artefact inventory: zip and 7z members examined in turn, with anomalies recorded.

:class:`ArchiveWalker` is mixed into the inventory's examiner; it lists an archive (:mod:`workbench.model.archives`),
records its anomalies, checks member CRCs within a byte budget, skips members flagged as decompression bombs and
PyTorch storage blobs (unless they start like a pickle), and hands every other member back to the examiner, one
nesting level deeper, up to ``ScanLimits.max_depth``.
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

from workbench.model import archives
from workbench.model.formats import PICKLE_KINDS
from workbench.model.limits import ScanLimits

__all__ = ["READ_ERRORS", "ArchiveWalker", "Source"]

#: what reading damaged member data (inflating, decompressing, parsing) can raise; the member becomes a warning
READ_ERRORS = (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError)

_STORAGE_MEMBER = re.compile(r"(^|/)data/\d+$")


@dataclass(slots=True)
class Source:
    """A file or archive member to examine: where it is, its name and size, and how to open it from the start."""

    path: str
    member: str | None
    name: str
    size: int
    opener: Callable[[], BinaryIO]
    seekable: bool


class ArchiveWalker:
    """Zip and 7z handling of the inventory examiner (which provides the attributes and methods below)."""

    limits: ScanLimits
    inv: Any

    def _examine(self, src: Source, depth: int) -> Any:
        raise NotImplementedError

    def _warn(self, src: Source, reason: str) -> None:
        raise NotImplementedError

    def _zip(self, src: Source, depth: int, details: dict[str, Any]) -> str:
        fh = self._seekable(src)
        if fh is None:
            return "zip"
        with closing(fh):
            listing = archives.list_zip(fh, self.limits)
            names = [m.name for m in listing.members]
            kind = _zip_kind(names)
            details["members"] = len(names)
            for anomaly in listing.anomalies:
                self._anomaly(src, anomaly)
            if depth >= self.limits.max_depth:
                self._anomaly(
                    src, archives.ArchiveAnomaly(None, "too_deep", f"archive nested {depth} deep: not opened")
                )
                return kind
            if not listing.readable:
                return kind
            pickles, dangerous, crc_budget = 0, [], self.limits.crc_check_bytes
            bombs = {a.member for a in listing.anomalies if a.kind == "decompression_bomb"}
            for member in listing.members:
                if (
                    member.is_dir
                    or member.data_offset is None
                    or member.method not in (0, 8, 12)
                    or member.name in bombs
                ):
                    continue
                crc_budget -= member.size
                if crc_budget >= 0 and (bad := archives.check_member_crc(fh, member)) is not None:
                    self._anomaly(src, bad)
                inner = _member_source(src, fh, member)
                if kind == "pytorch_zip" and _STORAGE_MEMBER.search(member.name):
                    with closing(inner.opener()) as mf:
                        magic = mf.read(2)
                    if not (len(magic) == 2 and magic[0] == 0x80 and magic[1] <= 5):
                        continue
                try:
                    art = self._examine(inner, depth + 1)
                except READ_ERRORS as exc:
                    self._warn(inner, f"member data unreadable, not classified: {exc}")
                    continue
                pickles += art.kind in PICKLE_KINDS or bool(
                    art.details.get("has_object") or art.details.get("pickle_members")
                )
                if art.dangerous:
                    dangerous.append(f"{member.name}: {art.why}")
            if crc_budget < 0:
                self._warn(src, f"CRC-32 not verified beyond the first {self.limits.crc_check_bytes} bytes of members")
            details["pickle_members"] = pickles
            if dangerous:
                details["dangerous_members"] = dangerous[:20]
        return kind

    def _sevenzip(self, src: Source, depth: int, details: dict[str, Any]) -> None:
        fh = self._seekable(src)
        if fh is None:
            return
        with closing(fh):
            contents = archives.read_7z(fh, self.limits)
        details["members"] = len(contents.members)
        for anomaly in contents.anomalies:
            self._anomaly(src, anomaly)
        pickles = 0
        for name, data in contents.data.items():
            member = f"{src.member}!{name}" if src.member else name
            inner = Source(src.path, member, name, len(data), lambda d=data: io.BytesIO(d), True)
            if depth + 1 > self.limits.max_depth:
                break
            try:
                art = self._examine(inner, depth + 1)
            except READ_ERRORS as exc:
                self._warn(inner, f"member data unreadable, not classified: {exc}")
                continue
            pickles += art.kind in PICKLE_KINDS
            if art.dangerous:
                details.setdefault("dangerous_members", []).append(f"{name}: {art.why}")
        details["pickle_members"] = pickles

    def _seekable(self, src: Source) -> BinaryIO | None:
        if src.seekable:
            return src.opener()
        if src.size > self.limits.max_in_memory_bytes:
            self._anomaly(src, archives.ArchiveAnomaly(None, "too_deep", "compressed nested archive too large to open"))
            return None
        with closing(src.opener()) as fh:
            return io.BytesIO(fh.read(self.limits.max_in_memory_bytes))

    def _anomaly(self, src: Source, anomaly: archives.ArchiveAnomaly) -> None:
        member = anomaly.member
        if src.member:
            member = f"{src.member}!{member}" if member else src.member
        self.inv.anomalies.append((src.path, archives.ArchiveAnomaly(member, anomaly.kind, anomaly.detail)))


def _zip_kind(names: list[str]) -> str:
    if any(n.endswith("data.pkl") for n in names):
        code = any("/code/" in n or n.startswith("code/") or n.endswith("constants.pkl") for n in names)
        return "torchscript" if code else "pytorch_zip"
    if names and all(n.endswith(".npy") for n in names):
        return "npz"
    if "config.json" in names and ("metadata.json" in names or "model.weights.h5" in names):
        return "keras"
    return "zip"


def _member_source(src: Source, fh: BinaryIO, member: archives.ZipMember) -> Source:
    name = f"{src.member}!{member.name}" if src.member else member.name
    return Source(
        src.path,
        name,
        member.name,
        member.size,
        lambda: archives.open_member(fh, member)[0],
        member.method == zipfile.ZIP_STORED,
    )
