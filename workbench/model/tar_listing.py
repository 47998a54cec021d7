"""Tar archives read defensively: headers listed with a member cap, hostile names and links flagged, data windows.

Nothing is extracted: :func:`list_tar` walks the headers with :mod:`tarfile` (which reads them sequentially and never
writes), and :func:`open_member` returns a read-only window over a regular member's bytes in the archive. Names that
leave the extraction folder (absolute, ``..``) and links pointing outside it are ``unsafe_path`` anomalies, a name
seen twice is ``duplicate_name`` (extractors disagree on which copy wins), more than ``ScanLimits.max_members``
members is ``too_many_members`` (the rest is not listed).
"""

from __future__ import annotations

import io
import posixpath
import tarfile
from dataclasses import dataclass
from typing import BinaryIO

from workbench.model.archives import ArchiveAnomaly, window
from workbench.model.limits import ScanLimits
from workbench.textsafe import clean_text

__all__ = ["TarListing", "TarMember", "list_tar", "open_member"]

_CHUNK = 256 * 1024


@dataclass(frozen=True, slots=True)
class TarMember:
    """A regular member: its name (valid Unicode), size and where its data starts in the archive."""

    name: str
    size: int
    data_offset: int


@dataclass(frozen=True, slots=True)
class TarListing:
    """The regular members (at most ``max_members`` entries walked) and the anomalies."""

    members: tuple[TarMember, ...]
    anomalies: tuple[ArchiveAnomaly, ...]


def _unsafe(name: str) -> bool:
    return name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/")


def list_tar(fh: BinaryIO, limits: ScanLimits) -> TarListing:
    """List a tar archive (seekable ``fh``) without extracting anything.

    Returns:
        The :class:`TarListing`; an archive whose headers cannot be read gives an ``unreadable`` anomaly with the
        members listed before the damage.
    """
    members: list[TarMember] = []
    anomalies: list[ArchiveAnomaly] = []
    seen: set[str] = set()
    walked = 0
    try:
        with tarfile.open(fileobj=fh, mode="r:") as tf:  # listed, never extracted
            while True:
                info = tf.next()
                if info is None:
                    break
                walked += 1
                if walked > limits.max_members:
                    anomalies.append(ArchiveAnomaly(None, "too_many_members", f"more than {limits.max_members} "
                                                    "members; the rest is not examined"))  # fmt: skip
                    break
                name = clean_text(info.name)[0]
                if _unsafe(name):
                    anomalies.append(ArchiveAnomaly(name, "unsafe_path", "name leaves the extraction folder"))
                if info.issym() or info.islnk():
                    target = clean_text(info.linkname)[0]
                    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
                    if target.startswith("/") or _unsafe(resolved):
                        anomalies.append(ArchiveAnomaly(name, "unsafe_path", f"link to {target!r} leaves the "
                                                        "extraction folder"))  # fmt: skip
                    continue
                if not info.isreg():
                    continue
                if name in seen:
                    anomalies.append(ArchiveAnomaly(name, "duplicate_name", "name appears twice; extractors keep "
                                                    "different copies"))  # fmt: skip
                seen.add(name)
                members.append(TarMember(name, info.size, info.offset_data))
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        anomalies.append(ArchiveAnomaly(None, "unreadable", f"tar headers unreadable after {walked} member(s): {exc}"))
    return TarListing(tuple(members), tuple(anomalies))


def open_member(fh: BinaryIO, member: TarMember) -> BinaryIO:
    """A buffered, seekable stream of a regular member's bytes (the archive ``fh`` stays open while it is used)."""
    return io.BufferedReader(window(fh, member.data_offset, member.size), buffer_size=_CHUNK)  # type: ignore[return-value]
