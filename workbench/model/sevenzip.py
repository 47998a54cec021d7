"""7z archives read with ``py7zr`` within the member-count and in-memory caps, one member at a time when needed.

py7zr refuses a whole extraction when one member is bad (a name such as ``../x``, damaged data); the members are then
extracted one by one, so that one bad member hides nothing of the others (issue 12).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, BinaryIO

from workbench.model.archives import ArchiveAnomaly
from workbench.model.limits import ScanLimits

__all__ = ["SevenZipContents", "read_7z"]


@dataclass(frozen=True, slots=True)
class SevenZipContents:
    """A 7z archive's members (name, declared size), anomalies, and the bytes of the members that were read.

    Attributes:
        data: bytes of each member read.
        failed: why a listed member was not read (its extraction failed on its own).
        error: why nothing of the archive could be read (unreadable, password-protected, over the cap), or None.
    """

    members: tuple[tuple[str, int], ...]
    anomalies: tuple[ArchiveAnomaly, ...]
    data: dict[str, bytes]
    failed: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def read_7z(fh: BinaryIO, limits: ScanLimits, *, listing_only: bool = False) -> SevenZipContents:
    """List a 7z archive with ``py7zr`` and read its members into memory, within the member-count and size caps.

    Members are extracted together; when that fails (a name py7zr refuses, such as ``../x``, a damaged member),
    each member is extracted on its own, so that one bad member hides nothing of the others.

    Returns:
        The :class:`SevenZipContents`; encrypted, oversized and unreadable archives give an anomaly, ``error``
        and no data.
    """
    import py7zr

    anomalies: list[ArchiveAnomaly] = []
    try:
        with py7zr.SevenZipFile(fh, mode="r", max_extract_size=limits.max_in_memory_bytes) as archive:
            if archive.needs_password():
                detail = "7z archive is password-protected"
                anomaly = ArchiveAnomaly(None, "encrypted", detail)
                return SevenZipContents((), (anomaly,), {}, error="encrypted (password-protected 7z)")
            infos = [i for i in archive.list() if not i.is_directory][: limits.max_members + 1]
            members = tuple((i.filename, int(i.uncompressed or 0)) for i in infos[: limits.max_members])
            for name, _ in members:
                if name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/"):
                    anomalies.append(ArchiveAnomaly(name, "unsafe_path", "name leaves the extraction folder"))
            if len(infos) > limits.max_members:
                anomalies.append(ArchiveAnomaly(None, "too_many_members", f"more than {limits.max_members} members; "
                                                "only the first are examined"))  # fmt: skip
            total = sum(size for _, size in members)
            if total > limits.max_in_memory_bytes:
                detail = (f"members declare {total} bytes, above the {limits.max_in_memory_bytes}-byte cap for 7z "
                          "contents; not read")  # fmt: skip
                anomalies.append(ArchiveAnomaly(None, "decompression_bomb", detail))
                return SevenZipContents(members, tuple(anomalies), {}, error=detail)
            if listing_only:
                return SevenZipContents(members, tuple(anomalies), {})
            data, failed = _extract_7z(archive, [name for name, _ in members], limits)
            return SevenZipContents(members, tuple(anomalies), data, failed)
    except Exception as exc:  # noqa: BLE001 - py7zr raises many types on hostile input; recorded as an anomaly
        detail = f"7z archive unreadable: {type(exc).__name__}: {exc}"
        anomalies.append(ArchiveAnomaly(None, "unreadable", detail))
        return SevenZipContents((), tuple(anomalies), {}, error=detail)


def _extract_7z(archive: Any, names: list[str], limits: ScanLimits) -> tuple[dict[str, bytes], dict[str, str]]:
    from py7zr.io import BytesIOFactory

    def extract(targets: list[str]) -> dict[str, bytes]:
        factory = BytesIOFactory(limits.max_in_memory_bytes)
        archive.reset()
        archive.extract(targets=targets, factory=factory)
        out = {}
        for name in targets:
            if name in factory.products:
                product = factory.get(name)
                product.seek(0)
                out[name] = product.read()
        return out

    try:
        return extract(names), {}
    except Exception:  # noqa: BLE001, S110 - one bad member: each is then extracted on its own
        pass
    data: dict[str, bytes] = {}
    failed: dict[str, str] = {}
    for name in names:
        try:
            data.update(extract([name]))
        except Exception as exc:  # noqa: BLE001 - recorded for that member only
            failed[name] = f"7z member not extracted ({type(exc).__name__}: {str(exc)[:200]})"
    return data, failed
