"""A real installed distribution of this test environment (idna), copied into test cases, and what an attacker does
to such a copy; shared by the pyenv tests (not a test module)."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import shutil
import zipfile
from pathlib import Path

from workbench.pyenv import expected_sources

DIST = importlib.metadata.distribution("idna")
INFO = Path(str(DIST._path)).name  # type: ignore[attr-defined]  # the dist-info folder
VERSION = DIST.version


def copy_idna(site: Path) -> Path:
    """``site`` (created) holding a copy of the installed idna package and its dist-info, as a site-packages."""
    site.mkdir(parents=True, exist_ok=True)
    shutil.copytree(Path(str(DIST.locate_file("idna"))), site / "idna")
    shutil.copytree(Path(str(DIST._path)), site / INFO)  # type: ignore[attr-defined]
    return site


def record_hash(data: bytes) -> str:
    """A RECORD line's hash field for ``data``."""
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def rewrite_record(site: Path, rel: str, *, drop: bool = False) -> None:
    """What an attacker does: the installed RECORD line of ``rel`` made to match the file (or removed, or added)."""
    rec = site / INFO / "RECORD"
    lines = [line for line in rec.read_text().splitlines() if line.split(",", 1)[0] != rel]
    if not drop:
        data = (site / rel).read_bytes()
        lines.append(f"{rel},{record_hash(data)},{len(data)}")
    rec.write_text("\n".join(lines) + "\n")


WHEEL_NAME = f"idna-{VERSION}-py3-none-any.whl"
#: what the installer adds to a dist-info (not in the wheel)
INSTALLER_ADDED = {f"{INFO}/{n}" for n in expected_sources.INSTALLER_FILES}


def wheel_members() -> list[str]:
    """The installed files a wheel of idna holds: its package and dist-info, without generated or installer files."""
    return [str(f) for f in DIST.files or [] if not str(f).startswith("..") and "__pycache__" not in str(f)
            and str(f) not in INSTALLER_ADDED]  # fmt: skip


def build_wheel(folder: Path, name: str = WHEEL_NAME, *, entry_points: str | None = None) -> Path:
    """A wheel of the installed idna: its files as installed, its RECORD the installed RECORD's lines for them."""
    folder.mkdir(parents=True, exist_ok=True)
    members = wheel_members()
    installed = (Path(str(DIST._path)) / "RECORD").read_text().splitlines()  # type: ignore[attr-defined]
    record = [line for line in installed if line.split(",", 1)[0] in members] + [f"{INFO}/RECORD,,"]
    path = folder / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for m in members:
            data = Path(str(DIST.locate_file(m))).read_bytes()
            if entry_points is not None and m == f"{INFO}/entry_points.txt":
                data = entry_points.encode()
            zf.writestr(m, data)
        zf.writestr(f"{INFO}/RECORD", "\n".join(record) + "\n")
    return path
