"""Rollback: install the last known-good version of a model, atomically, and only if its signature verifies.

Version choice (never by modification time): every archived candidate is verified (signature under the signing
key, then every file against the signed manifest); among the verified ones the newest by the manifest's signed
``created`` time wins, ties (and versions without ``created``) broken by the natural order of the folder names
(``v2.10`` after ``v2.9``). An unsigned or invalid version is never chosen unless ``allow_unsigned`` is given, and
then only when no version verifies (newest by natural name order, with a warning in actions.log).

Installation: the target is copied into a temporary sibling of the model folder (symlinks refused), the copy is
checked again (its signature and files, or its digests against the target's), then swapped with the model folder
in one ``renameat2(RENAME_EXCHANGE)`` (or two renames, undone on failure). A failure before the swap removes the
copy and leaves the old model in place; the replaced folder is then moved to the quarantine folder.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.ops import fsutil
from workbench.ops.containment import ContainmentError, Incident, free_path, recorded_replicas, serving_deployments
from workbench.ops.kube import Kube
from workbench.ops.signing import VersionCheck, verify_version

if TYPE_CHECKING:
    from workbench.model.trust import Trust

__all__ = ["RollbackResult", "archive_candidates", "choose_version", "rollback"]

_SEPARATORS = "-_.@+"
_OLDEST = datetime.min.replace(tzinfo=UTC)


def natural_key(name: str) -> tuple:
    """``"m-v2.10"`` sorts after ``"m-v2.9"``."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", name) if p)


def _has_files(path: Path) -> bool:
    return any(e.is_file(follow_symlinks=False) or e.name == ".signatures" for e in os.scandir(path))


def archive_candidates(archive: Path, model_id: str) -> list[Path]:
    """Archived versions of ``model_id``: ``<archive>/<id>``, ``<archive>/<id><sep><version>`` (sep in ``-_.@+``)
    and ``<archive>/<id>/<version>/``. Symlinked folders are skipped (never followed)."""
    if not archive.is_dir():
        return []
    out: list[Path] = []
    for entry in sorted(os.scandir(archive), key=lambda e: e.name):
        if not entry.is_dir(follow_symlinks=False):
            continue
        path = Path(entry.path)
        if entry.name == model_id:
            if _has_files(path):
                out.append(path)
            out += [
                Path(e.path)
                for e in sorted(os.scandir(path), key=lambda e: e.name)
                if e.is_dir(follow_symlinks=False) and e.name != ".signatures"
            ]
        elif entry.name.startswith(model_id) and entry.name[len(model_id)] in _SEPARATORS:
            out.append(path)
    return out


def choose_version(checks: list[VersionCheck], *, allow_unsigned: bool = False) -> VersionCheck | None:
    """The newest verified version (signed ``created``, then natural name order), else None; with
    ``allow_unsigned`` and nothing verified, the newest by natural name order."""
    verified = [c for c in checks if c.verified]
    if verified:
        return max(verified, key=lambda c: (c.created or _OLDEST, natural_key(c.path.name)))
    if allow_unsigned and checks:
        return max(checks, key=lambda c: natural_key(c.path.name))
    return None


@dataclass(frozen=True, slots=True)
class RollbackResult:
    """The installed version, whether it was verified, and where the replaced folder went (or None)."""

    target: Path
    verified: bool
    preserved: Path | None
    swap: str


def _resolve_target(inc: Incident, target: str) -> Path:
    """An absolute path as given; a relative one inside the archive first, else relative to the current folder."""
    path = Path(target)
    if not path.is_absolute() and ((inc.roots.archive / target).exists() or (inc.roots.archive / target).is_symlink()):
        path = inc.roots.archive / target
    if path.is_symlink():
        raise ContainmentError(f"rollback target {path} is a symlink; refusing to follow it")
    if not path.is_dir():
        raise ContainmentError(f"rollback target {path} is not a folder")
    if path.resolve() == inc.model_path.resolve():
        raise ContainmentError(f"rollback target {path} is the deployed model itself")
    return path


def _select(inc: Incident, target: str | None, key: Path | Trust | None, allow_unsigned: bool) -> VersionCheck:
    if target:
        check = verify_version(_resolve_target(inc, target), key)
    else:
        inc.log("Looking for last known-good version...")
        checks = [verify_version(p, key) for p in archive_candidates(inc.roots.archive, inc.model_id)]
        for c in checks:
            when = f", signed {c.created.isoformat().replace('+00:00', 'Z')}" if c.created else ""
            inc.log(f"Candidate {c.path}: " + (f"signature VERIFIED{when}" if c.verified else f"rejected ({c.reason})"))
        picked = choose_version(checks, allow_unsigned=allow_unsigned)
        if picked is None:
            inc.log("ERROR: No known-good model found for rollback")
            why = f"{len(checks)} archived version(s) of {inc.model_id} in {inc.roots.archive}, none verifies"
            raise ContainmentError(
                f"{why}; manual intervention required: identify a verified model version "
                "(or pass --allow-unsigned with an explicit target)"
            )
        check = picked
    inc.log(f"Rolling back to: {check.path}")
    if check.verified:
        inc.log("Rollback target signature VERIFIED")
    elif allow_unsigned:
        inc.log(f"WARNING: Rollback target is not verified ({check.reason}); installing because of --allow-unsigned")
    else:
        label = "is unsigned" if not check.signed else f"signature INVALID: {check.reason}"
        inc.log(f"ERROR: Rollback target {label}")
        raise ContainmentError(
            f"cannot roll back to {check.path}: {check.reason}; refusing an unverified model "
            "(--allow-unsigned overrides)"
        )
    return check


def _install(inc: Incident, check: VersionCheck, key: Path | Trust | None) -> tuple[str, Path | None]:
    """Verified copy into a temporary sibling, then the swap. Returns (swap mode, folder holding the old model)."""
    stage = inc.roots.models / f".{inc.model_id}.rollback-{uuid.uuid4().hex[:8]}"
    current = inc.model_dir_or_none()
    try:
        fsutil.copy_verified(check.path, stage, keep_symlinks=False)
        if check.verified and not (again := verify_version(stage, key)).verified:
            raise fsutil.CopyError(errno.EIO, f"the installed copy does not verify: {again.reason}", str(stage))
    except OSError as exc:
        shutil.rmtree(stage, ignore_errors=True)
        inc.log(f"ERROR: installing {check.path} failed, the deployed model is unchanged: {exc.strerror or exc}")
        raise ContainmentError(
            f"rollback failed before the swap; {inc.model_path} is unchanged: {exc.strerror or exc}", 3
        ) from None
    try:
        if current is None:
            stage.rename(inc.model_path)
            return "rename", None
        return fsutil.swap_dirs(stage, current), stage
    except OSError as exc:
        if inc.model_path.is_dir():  # the old model is back in place (swap_dirs undoes a half swap)
            shutil.rmtree(stage, ignore_errors=True)
        raise ContainmentError(f"swap failed, {inc.model_path} was left as it was: {exc.strerror or exc}", 3) from None


def _preserve(inc: Incident, old: Path) -> Path | None:
    dest = free_path(inc.quarantine_dir / f"{inc.model_id}_compromised")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            old.rename(dest)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            fsutil.copy_verified(old, dest, keep_symlinks=True)  # another file system: copy, verify, then remove
            shutil.rmtree(old)
    except OSError as exc:
        inc.problem(
            f"the replaced (compromised) folder stays at {old}: cannot move it to {dest}: {exc.strerror or exc}"
        )
        return None
    inc.log(f"Compromised version preserved in quarantine: {dest}")
    return dest


def rollback(
    inc: Incident,
    kube: Kube,
    *,
    target: str | None = None,
    public_key: Path | Trust | None = None,
    allow_unsigned: bool = False,
) -> RollbackResult | None:
    """Choose (or check) the version, install it atomically, preserve the replaced folder, restart serving.

    Returns:
        The :class:`RollbackResult`, or None in a dry run.

    Raises:
        ContainmentError: no verified version, a refused target (exit 2), or a failed install (exit 3, model
            unchanged).
    """
    inc.log("ROLLBACK: Rolling back to last known-good model")
    check = _select(inc, target, public_key, allow_unsigned)
    if inc.dry_run:
        inc.log(
            f"Would install {check.path} at {inc.model_path} (verified copy, atomic swap) and move the "
            f"current folder to {inc.quarantine_dir}"
        )
        _restart(inc, kube)
        return None
    mode, old = _install(inc, check, public_key)
    inc.log(f"Model rolled back to: {check.path} (atomic {mode})")
    preserved = _preserve(inc, old) if old is not None else None
    _restart(inc, kube)
    return RollbackResult(check.path, check.verified, preserved, mode)


def _restart(inc: Incident, kube: Kube) -> None:
    replicas = recorded_replicas(inc)
    for name, _ in serving_deployments(inc, kube, "restart"):
        if want := replicas.get(name):
            if kube.run(["scale", f"deployment/{name}", f"--replicas={want}"]):
                inc.log(f"Scaled up: deployment/{name} to {want} replicas (as before isolate)")
            else:
                inc.problem(f"kubectl scale deployment/{name} --replicas={want} failed: {kube.errors[-1]}")
        if kube.run(["rollout", "restart", f"deployment/{name}"]):
            inc.log(f"Restarted: deployment/{name}")
        else:
            inc.problem(f"kubectl rollout restart deployment/{name} failed: {kube.errors[-1]}")
