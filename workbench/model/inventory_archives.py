"""Archive walking for the artefact inventory: zip, 7z and tar members examined in turn, with anomalies recorded.

:class:`ArchiveWalker` is mixed into the inventory's examiner; it lists an archive (:mod:`workbench.model.archives`,
:mod:`workbench.model.tar_listing`), records its anomalies, checks member CRCs within a byte budget, skips members
flagged as decompression bombs and PyTorch storage blobs (unless they start like a pickle), and hands every other
member back to the examiner, one nesting level deeper, up to ``ScanLimits.max_depth``. An anomaly that means part of
the archive was not examined (too many members, a bomb, nesting too deep) is also recorded as unexamined.
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

from workbench.model import archives, tar_listing
from workbench.model.formats import PICKLE_KINDS
from workbench.model.limits import ScanLimits
from workbench.textsafe import clean_text

__all__ = ["READ_ERRORS", "ArchiveWalker", "Source"]

#: what reading damaged member data (inflating, decompressing, parsing) can raise; the member becomes a warning
READ_ERRORS = (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError)

_STORAGE_MEMBER = re.compile(r"(^|/)data/\d+$")
#: anomaly kinds that mean part of the archive was not examined
CAP_KINDS = frozenset({"too_many_members", "decompression_bomb", "too_deep"})


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

    def _unexamined(self, src: Source, reason: str) -> None:
        raise NotImplementedError

    def _limit(self, src: Source, reason: str) -> None:
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
                self._limit(src, f"CRC-32 not verified beyond the first {self.limits.crc_check_bytes} bytes of members")
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
        if contents.data and depth >= self.limits.max_depth:
            self._anomaly(src, archives.ArchiveAnomaly(None, "too_deep", f"archive nested {depth} deep: not opened"))
            return
        for raw_name, data in contents.data.items():
            name = clean_text(raw_name)[0]
            member = f"{src.member}!{name}" if src.member else name
            inner = Source(src.path, member, name, len(data), lambda d=data: io.BytesIO(d), True)
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
        cap = self.limits.max_in_memory_bytes
        with closing(src.opener()) as fh:
            data = fh.read(cap + 1)
        if len(data) > cap:
            self._unexamined(src, f"compressed archive inflates past the {cap}-byte in-memory cap: only the first "
                             f"{cap} bytes examined")  # fmt: skip
            data = data[:cap]
        return io.BytesIO(data)

    def _tar(self, src: Source, depth: int, details: dict[str, Any]) -> None:
        """List a tar archive and examine its regular members (from memory when the tar itself is compressed)."""
        fh = self._seekable(src)
        if fh is None:
            return
        with closing(fh):
            listing = tar_listing.list_tar(fh, self.limits)
            details["members"] = len(listing.members)
            for anomaly in listing.anomalies:
                self._anomaly(src, anomaly)
            if listing.members and depth >= self.limits.max_depth:
                self._anomaly(
                    src, archives.ArchiveAnomaly(None, "too_deep", f"archive nested {depth} deep: not opened")
                )
                return
            pickles = 0
            for m in listing.members:
                member = f"{src.member}!{m.name}" if src.member else m.name
                inner = Source(src.path, member, m.name, m.size, lambda m=m: tar_listing.open_member(fh, m), True)
                try:
                    art = self._examine(inner, depth + 1)
                except READ_ERRORS as exc:
                    self._warn(inner, f"member data unreadable, not classified: {exc}")
                    continue
                pickles += art.kind in PICKLE_KINDS or bool(
                    art.details.get("has_object") or art.details.get("pickle_members")
                )
                if art.dangerous:
                    details.setdefault("dangerous_members", []).append(f"{m.name}: {art.why}")
            details["pickle_members"] = pickles

    def _anomaly(self, src: Source, anomaly: archives.ArchiveAnomaly) -> None:
        member = anomaly.member
        if src.member:
            member = f"{src.member}!{member}" if member else src.member
        self.inv.anomalies.append((src.path, archives.ArchiveAnomaly(member, anomaly.kind, anomaly.detail)))
        if anomaly.kind in CAP_KINDS:
            where = f"{src.path} [{member}]" if member else src.path
            self.inv.unexamined.append(f"{where}: {anomaly.detail}")


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
