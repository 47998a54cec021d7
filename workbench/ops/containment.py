"""Containment (the playbook's Phase 2): ``assess``, ``isolate`` and ``rollback`` of one model in one incident.

Layout, with roots configurable (flags, or ``WORKBENCH_MODELS_ROOT``, ``WORKBENCH_ARCHIVE_ROOT``,
``WORKBENCH_INCIDENTS_ROOT``, ``WORKBENCH_QUARANTINE_ROOT``; playbook defaults in :data:`DEFAULT_ROOTS`)::

    <models>/<model_id>/                      the deployed model (the only model path ever written to)
    <archive>/<model_id>[-_.@+]<version>/      archived versions (or <archive>/<model_id>/<version>/)
    <incidents>/<incident_id>/                the evidence folder `workbench investigate` reads
    <incidents>/<incident_id>.custody/<run>/  custody ledgers of the assess runs (outside the evidence tree)
    <quarantine>/<incident_id>/<model_id>/    forensic copy made by isolate (hash-verified)
    <quarantine>/<incident_id>/<model_id>_compromised/   the folder rollback replaced
    <quarantine>/<incident_id>/deployments-<model_id>.json  replica counts isolate scaled to 0

Every step appends ``[ISO time] message`` to ``actions.log`` (and prints it). Ids are single safe path components
(:func:`workbench.case.safe_incident_id`; ``../`` is refused). Nothing is followed through a symlink. The model
folder is written to only by isolate's ``COMPROMISED.txt`` marker and by rollback's atomic swap.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from workbench.case import safe_incident_id
from workbench.errors import WorkbenchError
from workbench.ops import fsutil
from workbench.ops.kube import Kube

__all__ = ["DEFAULT_ROOTS", "ENV_ROOTS", "ContainmentError", "Incident", "Roots", "open_incident"]

DEFAULT_ROOTS = {
    "models": "/models",
    "archive": "/models/archive",
    "incidents": "/var/incidents",
    "quarantine": "/var/quarantine",
}
ENV_ROOTS = {
    "models": "WORKBENCH_MODELS_ROOT",
    "archive": "WORKBENCH_ARCHIVE_ROOT",
    "incidents": "WORKBENCH_INCIDENTS_ROOT",
    "quarantine": "WORKBENCH_QUARANTINE_ROOT",
}
SECRETS_TO_ROTATE = (
    "Model registry access tokens",
    "API keys used in inference pipeline",
    "Any secrets accessible to the build pipeline",
)


class ContainmentError(WorkbenchError):
    """A containment step was refused or failed. ``exit_code`` 2: refused / unusable input; 3: failed midway."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        self.exit_code = exit_code
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Roots:
    """Where models, archived versions, incident folders and quarantined copies live."""

    models: Path
    archive: Path
    incidents: Path
    quarantine: Path

    @classmethod
    def resolve(cls, env: Mapping[str, str] | None = None, **given: str | Path | None) -> Roots:
        """Flag value, else environment variable, else the playbook's default, for each root."""
        env = os.environ if env is None else env
        values = {k: Path(given.get(k) or env.get(ENV_ROOTS[k]) or DEFAULT_ROOTS[k]) for k in DEFAULT_ROOTS}
        return cls(**values)


def utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def checked_id(raw: str, what: str) -> str:
    """A safe single path component, or ContainmentError (``../x`` is refused, not silently rewritten)."""
    value, changed = safe_incident_id(raw)
    if changed or value in {".", ".."}:
        raise ContainmentError(
            f"{what} {raw!r} is not a safe name (letters, digits, '.', '_', '-'; no '..'); for example {value!r}"
        )
    return value


@dataclass(slots=True)
class Incident:
    """One incident and one model: paths, the action log and the steps that failed.

    Attributes:
        incident_id / model_id: validated ids.
        roots: the roots.
        dry_run: print what would be done; write nothing (not even actions.log).
        echo: prints one line (the CLI passes click.echo).
        problems: failed steps (the command then exits 3).
    """

    incident_id: str
    model_id: str
    roots: Roots
    dry_run: bool = False
    echo: Callable[[str], None] = print
    problems: list[str] = field(default_factory=list)

    @property
    def dir(self) -> Path:
        return self.roots.incidents / self.incident_id

    @property
    def model_path(self) -> Path:
        return self.roots.models / self.model_id

    @property
    def quarantine_dir(self) -> Path:
        return self.roots.quarantine / self.incident_id

    @property
    def custody_dir(self) -> Path:
        return self.roots.incidents / f"{self.incident_id}.custody"

    def log(self, message: str) -> None:
        """Append ``[time] message`` to actions.log (one write, fsync) and print it; dry runs only print."""
        line = f"[{utc_stamp()}] {message}"
        if self.dry_run:
            self.echo(f"(dry-run) {line}")
            return
        data = (line + "\n").encode("utf-8")
        try:
            fd = os.open(self.dir / "actions.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o640)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise ContainmentError(f"cannot append to {self.dir / 'actions.log'}: {exc.strerror or exc}", 3) from None
        self.echo(line)

    def problem(self, message: str) -> None:
        self.problems.append(message)
        self.log(f"ERROR: {message}")

    def model_dir_or_none(self) -> Path | None:
        """The deployed model folder, or None when absent; a symlinked model folder is refused."""
        path = self.model_path
        if path.is_symlink():
            raise ContainmentError(f"{path} is a symlink; refusing to follow it (inspect it by hand)")
        return path if path.is_dir() else None

    def write(self, relpath: str, data: bytes) -> Path:
        """Write one evidence file atomically; a disk-full or permission error names the file, leaves no part."""
        target = self.dir / relpath
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fsutil.atomic_write(target, data)
        except OSError as exc:
            raise ContainmentError(f"cannot write {target}: {exc.strerror or exc}", 3) from None
        return target


def open_incident(
    incident_id: str,
    model_id: str,
    roots: Roots,
    *,
    dry_run: bool = False,
    echo: Callable[[str], None] = print,
    create: bool = True,
) -> Incident:
    """Validate the ids and create the incident folder (not in a dry run).

    Raises:
        ContainmentError: an id is unsafe, or the incident folder cannot be created (the reason says why).
    """
    inc = Incident(checked_id(incident_id, "incident id"), checked_id(model_id, "model id"), roots, dry_run, echo)
    if create and not dry_run:
        if inc.dir.is_symlink():
            raise ContainmentError(f"{inc.dir} is a symlink; refusing to write evidence through it")
        try:
            inc.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ContainmentError(f"cannot create the incident folder {inc.dir}: {exc.strerror or exc}") from None
    return inc


def serving_deployments(inc: Incident, kube: Kube, verb: str) -> list[tuple[str, int]]:
    """Deployments labelled ``model=<id>`` with their replicas; a missing or failing kubectl is logged.

    Args:
        verb: what would be done to them (``scale down``, ``restart``), for the messages.
    """
    selector = f"model={inc.model_id}"
    found = kube.deployments(selector)
    if found is not None:
        if not found:
            inc.log(f"No deployment labelled {selector} found")
        return found
    reason = kube.errors[-1] if kube.errors else "kubectl failed"
    if not kube.available:
        inc.log(f"WARNING: kubectl not found: {verb} the deployments labelled {selector} by hand")
    elif inc.dry_run:
        inc.log(f"WARNING: cannot list deployments ({reason})")
    else:
        inc.problem(f"cannot list deployments labelled {selector}: {reason}; {verb} them by hand")
    return []


def record_deployments(inc: Incident, kube: Kube) -> list[tuple[str, int]]:
    """Deployments labelled with the model and their replica counts, saved in the quarantine folder once."""
    found = serving_deployments(inc, kube, "scale down")
    if found and not inc.dry_run:
        path = inc.quarantine_dir / f"deployments-{inc.model_id}.json"
        if not path.exists():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fsutil.atomic_write(path, json.dumps(dict(found), indent=2).encode())
            except OSError as exc:
                inc.problem(f"cannot record replica counts in {path}: {exc.strerror or exc}")
    return found


def recorded_replicas(inc: Incident) -> dict[str, int]:
    """Replica counts saved by isolate ({} when none were recorded)."""
    path = inc.quarantine_dir / f"deployments-{inc.model_id}.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): int(v) for k, v in doc.items() if isinstance(v, int) and v > 0} if isinstance(doc, dict) else {}


def free_path(path: Path) -> Path:
    """``path`` if unused, else ``path.2``, ``path.3``… (a second isolate never overwrites the first copy)."""
    if not path.exists() and not path.is_symlink():
        return path
    n = 2
    while (candidate := path.with_name(f"{path.name}.{n}")).exists() or candidate.is_symlink():
        n += 1
    return candidate


def isolate(inc: Incident, kube: Kube) -> Path | None:
    """Scale serving down, keep a verified forensic copy, mark the model compromised, list secrets to rotate.

    Returns:
        The quarantine copy's path (None when the model was not found or in a dry run).
    """
    inc.log(f"ISOLATE: Isolating compromised model {inc.model_id}")
    inc.log("Removing model from inference endpoints...")
    for name, replicas in record_deployments(inc, kube):
        if kube.run(["scale", f"deployment/{name}", "--replicas=0"]):
            inc.log(f"Scaled down: deployment/{name} (was {replicas} replicas)")
        else:
            inc.problem(f"kubectl scale deployment/{name} --replicas=0 failed: {kube.errors[-1]}")
    model = inc.model_dir_or_none()
    copy = None
    if model is None:
        inc.problem(f"Model {inc.model_id} not found in {inc.roots.models}")
    elif inc.dry_run:
        inc.log(f"Would copy {model} to {free_path(inc.quarantine_dir / inc.model_id)} and write COMPROMISED.txt")
    else:
        target = free_path(inc.quarantine_dir / inc.model_id)
        try:
            report = fsutil.copy_verified(model, target, keep_symlinks=True)
        except OSError as exc:
            raise ContainmentError(
                f"quarantine copy to {target} failed, nothing left there: {exc.strerror or exc}", 3
            ) from None
        copy = target
        inc.log(
            f"Model preserved in quarantine: {target} ({len(report.files)} files, "
            f"{len(report.links)} symlinks kept as links, SHA-256 verified)"
        )
        for rel, reason in report.skipped:
            inc.log(f"WARNING: {rel} not copied: {reason}")
        marker = model / "COMPROMISED.txt"
        text = f"COMPROMISED - Incident {inc.incident_id} - {utc_stamp()}\n".encode()
        try:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as fh:
                fh.write(text)
            inc.log("Model marked as compromised")
        except OSError as exc:
            inc.problem(f"cannot write {marker}: {exc.strerror or exc} (mark the model by hand)")
    inc.log("WARNING: Review and rotate the following secrets:")
    for secret in SECRETS_TO_ROTATE:
        inc.log(f" - {secret}")
    return copy
