"""A case: an evidence tree (read-only), its metadata (``case.yaml``) and its inventory.

``Case.open(path)`` walks the tree without following any symlink and without opening special files, records
what it skipped, reads the optional ``case.yaml`` and finds the model folders, paired suspect with reference by
folder name (:mod:`workbench.model_pairs`). Nothing is ever written into the evidence tree.

The walk itself (the inventory cap, file names made valid Unicode) is :func:`workbench.evidence_tree.walk_tree`;
files past the cap are listed in ``Case.unexamined``, which makes the run's coverage partial: its verdict cannot be
clean.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import yaml

from workbench import safeio, safeyaml
from workbench.environments import Environment, find_environments, find_wheel_folders
from workbench.errors import EvidenceError, MalformedEvidence
from workbench.evidence_tree import MAX_FILES, EvidenceFile, walk_tree
from workbench.model_pairs import ModelPair, find_model_pairs
from workbench.records import EvidenceWarning, Severity
from workbench.textsafe import clean_data, replaced_reason
from workbench.timeparse import parse_timestamp, resolve_timezone

__all__ = ["MAX_FILES", "Case", "CaseMeta", "EvidenceFile", "safe_incident_id", "walk_tree"]

#: case.yaml larger than this is refused.
MAX_CASE_YAML = 1024 * 1024
_ID_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


def safe_incident_id(raw: object) -> tuple[str, bool]:
    """Normalise an incident id so that it is safe as one path component and in a shell.

    Returns:
        ``(id, changed)``: letters, digits, ``.``, ``_`` and ``-`` only, not starting with a dot or dash, at most
        80 characters; ``changed`` tells whether the input had to be altered.
    """
    text = str(raw).strip()
    if _ID_OK.match(text) and ".." not in text:
        return text, False
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).replace("..", "-")
    cleaned = re.sub(r"-{2,}", "-", cleaned).strip(".-_")[:80] or "incident"
    return cleaned, True


# key -> (types accepted, description) ; used to validate case.yaml with messages naming the key
_META_SCHEMA: dict[str, tuple[tuple[type, ...], str]] = {
    "incident_id": ((str, int), "text"),
    "title": ((str,), "text"),
    "severity": ((str,), "one of critical, high, medium, low, info"),
    "commander": ((str,), "text"),
    "affected_models": ((list, str), "a list of model ids"),
    "detection_time": ((str, datetime), "an ISO 8601 time"),
    "detection_method": ((str,), "text"),
    "naive_timezone": ((str,), "an IANA time zone name"),
    "suspect_model": ((str,), "a path inside the case"),
    "reference_model": ((str,), "a path inside the case"),
    "public_key": ((str,), "a path inside the case"),
    "ca_bundle": ((str,), "a path inside the case"),
    "trusted_root": ((str,), "a path inside the case"),
    "signature": ((str,), "a path inside the case"),
    "signer_identity": ((str,), "text"),
    "signer_issuer": ((str,), "text"),
    "timeline": ((list,), "a list of {time, message} entries"),
    "network_allowlist": ((list,), "a list of addresses or CIDR ranges"),
    "comms": ((dict,), "a mapping of communication-template fields"),
    "notes": ((str,), "text"),
}


@dataclass(slots=True)
class CaseMeta:
    """Case metadata from ``case.yaml`` (all optional; defaults when absent)."""

    incident_id: str
    title: str = ""
    severity: Severity | None = None
    commander: str | None = None
    affected_models: list[str] = field(default_factory=list)
    detection_time: datetime | None = None
    detection_method: str | None = None
    naive_timezone: str = "UTC"
    suspect_model: str | None = None
    reference_model: str | None = None
    public_key: str | None = None
    ca_bundle: str | None = None
    trusted_root: str | None = None
    signature: str | None = None
    signer_identity: str | None = None
    signer_issuer: str | None = None
    timeline: list[dict[str, Any]] = field(default_factory=list)
    network_allowlist: list[str] = field(default_factory=list)
    comms: dict[str, Any] = field(default_factory=dict)
    notes: str | None = None

    @property
    def tz(self) -> tzinfo:
        return resolve_timezone(self.naive_timezone)

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in _META_SCHEMA}
        out["severity"] = self.severity.value if self.severity else None
        out["detection_time"] = self.detection_time.isoformat() if self.detection_time else None
        return out


def _read_meta(root: Path, warnings: list[EvidenceWarning], unexamined: list[str]) -> CaseMeta:
    """The case's metadata from case.yaml.

    A case.yaml that is not valid YAML or breaks the schema raises :class:`MalformedEvidence` naming the key or
    line (a responder's typo is best fixed, not guessed). A case.yaml that passes a resource bound (an alias bomb,
    nesting, size: :class:`workbench.safeyaml.YAMLLimitError`) is hostile input, not a typo: the run goes on with
    the default metadata, says so in a warning, and lists case.yaml as unexamined (the verdict cannot be clean).
    """
    default_id, _ = safe_incident_id(root.name)
    path = root / "case.yaml"
    if not path.is_file() or path.is_symlink():
        return CaseMeta(incident_id=default_id)
    if path.stat().st_size > MAX_CASE_YAML:  # a resource bound, as a bomb: defaults, said, unexamined
        reason = f"refused (larger than {MAX_CASE_YAML} bytes); the default metadata is used"
        warnings.append(EvidenceWarning("case.yaml", None, reason))
        unexamined.append(f"case.yaml: {reason}")
        return CaseMeta(incident_id=default_id)
    try:
        data = safeyaml.load(safeio.read_text(path, errors="replace"), source="case.yaml")
    except safeyaml.YAMLLimitError as exc:
        reason = f"refused ({exc.problem}); the default metadata is used"
        warnings.append(EvidenceWarning("case.yaml", None, reason))
        unexamined.append(f"case.yaml: {reason}")
        return CaseMeta(incident_id=default_id)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise MalformedEvidence(
            "case.yaml", f"not valid YAML: {getattr(exc, 'problem', exc)}", line=mark.line + 1 if mark else None
        ) from None
    if data is None:
        return CaseMeta(incident_id=default_id)
    if not isinstance(data, dict):
        raise MalformedEvidence("case.yaml", "top level must be a mapping of keys to values")
    data, changed = clean_data(data)
    if changed:
        warnings.append(EvidenceWarning("case.yaml", None, replaced_reason()))
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _META_SCHEMA:
            known = ", ".join(sorted(_META_SCHEMA))
            warnings.append(EvidenceWarning("case.yaml", None, f"unknown key {key!r} ignored (known keys: {known})"))
            continue
        types, desc = _META_SCHEMA[key]
        if value is None:
            continue
        if not isinstance(value, types):
            raise MalformedEvidence("case.yaml", f"key {key!r} must be {desc}, got {type(value).__name__}")
        values[key] = value
    incident_id, changed = safe_incident_id(values.pop("incident_id", default_id))
    if changed:
        warnings.append(EvidenceWarning("case.yaml", None, f"incident_id normalised to {incident_id!r}"))
    meta = CaseMeta(incident_id=incident_id)
    for key, value in values.items():
        if key == "severity":
            try:
                value = Severity.parse(value)
            except ValueError as exc:
                raise MalformedEvidence("case.yaml", f"key 'severity': {exc}") from None
        elif key == "affected_models":
            value = [value] if isinstance(value, str) else [str(v) for v in value]
        elif key == "naive_timezone":
            try:
                resolve_timezone(value)
            except ValueError as exc:
                raise MalformedEvidence("case.yaml", f"key 'naive_timezone': {exc}") from None
        elif key == "incident_id":
            continue
        setattr(meta, key, value)
    if "detection_time" in values:
        ts = parse_timestamp(values["detection_time"], naive_tz=meta.tz)
        if ts is None:
            raise MalformedEvidence(
                "case.yaml", f"key 'detection_time' is not an ISO 8601 time: {values['detection_time']!r}"
            )
        meta.detection_time = ts
    return meta


@dataclass(slots=True)
class Case:
    """An opened evidence tree.

    Attributes:
        root: absolute, resolved path of the evidence tree.
        meta: metadata from case.yaml (or defaults).
        files: regular files, sorted by path (symlinks and special files excluded).
        warnings: what was skipped or normalised during inventory, with the reason.
        model_pairs: every model folder of the case, suspect paired with reference by folder name, the primary pair
            first (see :mod:`workbench.model_pairs` for the rule).
        model_dirs: ``{"suspect": folder, "reference": folder}`` of the primary pair (roles it lacks are absent).
        unexamined: evidence the inventory could not take in (past a cap, unreadable folders), one
            ``"path: reason"`` each: the run's coverage is then partial and its verdict cannot be clean.
        renamed: ``{shown path: path on disk}`` for every file and folder whose name is not valid UTF-8.
        environments: the captured Python environments (``site-packages`` copies, inventory captures), outside the
            model folders (:func:`workbench.environments.find_environments`); their files have the role
            ``environment``.
        wheel_folders: folders of ``*.whl`` files outside the environments and model folders.
    """

    root: Path
    meta: CaseMeta
    files: list[EvidenceFile]
    warnings: list[EvidenceWarning]
    model_dirs: dict[str, str] = field(default_factory=dict)
    model_pairs: list[ModelPair] = field(default_factory=list)
    unexamined: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)
    environments: list[Environment] = field(default_factory=list)
    wheel_folders: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Case:
        """Inventory an evidence tree.

        Raises:
            EvidenceError: the path does not exist, is not a directory, or holds no regular file.
            MalformedEvidence: case.yaml exists but is unusable (names the key or line).
        """
        given = Path(path)
        if not given.exists():
            raise EvidenceError(given, "evidence path does not exist")
        if not given.is_dir():
            raise EvidenceError(given, "evidence path is not a directory (give the case folder)")
        root = given.resolve()
        warnings: list[EvidenceWarning] = []
        unexamined: list[str] = []
        renamed: dict[str, str] = {}
        files = walk_tree(root, warnings, unexamined, renamed=renamed)
        if not files:
            raise EvidenceError(given, "evidence folder holds no regular file")
        meta = _read_meta(root, warnings, unexamined)
        case = cls(root=root, meta=meta, files=files, warnings=warnings, unexamined=unexamined, renamed=renamed)
        case.model_pairs = case._find_model_pairs()
        primary = case.primary_pair
        if primary is not None:
            roles = {"suspect": primary.suspect, "reference": primary.reference}
            case.model_dirs = {role: rel for role, rel in roles.items() if rel}
        marked = tuple(d + "/" for p in case.model_pairs for d in p.folders)
        if marked:
            case.files = [
                EvidenceFile(f.relpath, f.size, f.mtime_ns, "model", f.fs) if f.relpath.startswith(marked) else f
                for f in files
            ]
        folders = [d for p in case.model_pairs for d in p.folders]
        relpaths = [f.relpath for f in case.files]
        case.environments = find_environments(relpaths, folders)
        case.wheel_folders = find_wheel_folders(relpaths, case.environments, folders)
        if case.environments:
            case.files = [
                EvidenceFile(f.relpath, f.size, f.mtime_ns, "environment", f.fs)
                if f.role == "evidence" and any(e.holds(f.relpath) for e in case.environments) else f
                for f in case.files
            ]  # fmt: skip
        return case

    @property
    def incident_id(self) -> str:
        return self.meta.incident_id

    def fs_path(self, relpath: str) -> Path:
        """``root / relpath`` with the names as they are on disk (see :attr:`renamed`); nothing is resolved."""
        if not self.renamed:
            return self.root / relpath
        if relpath in self.renamed:
            return self.root / self.renamed[relpath]
        head = relpath.rpartition("/")[0]
        while head:
            if head in self.renamed:
                return self.root / self.renamed[head] / relpath[len(head) + 1 :]
            head, _, _ = head.rpartition("/")
        return self.root / relpath

    def path(self, relpath: str) -> Path:
        """Absolute path of an inventoried file (names as on disk); refuses anything that would leave the tree."""
        candidate = self.fs_path(relpath).resolve()
        if candidate != self.root and self.root not in candidate.parents:
            raise EvidenceError(relpath, "path leaves the evidence tree")
        return candidate

    def _find_model_pairs(self) -> list[ModelPair]:
        """Every model folder, paired by name (see :mod:`workbench.model_pairs`); case.yaml names the primary."""
        configured: dict[str, str | None] = {}
        for role in ("suspect", "reference"):
            value = getattr(self.meta, f"{role}_model")
            configured[role] = None
            if not value:
                continue
            try:
                p = self.path(value)
            except EvidenceError:
                self.warnings.append(EvidenceWarning("case.yaml", None, f"{role}_model leaves the evidence tree"))
                continue
            if p.is_dir() and p != self.root:
                configured[role] = p.relative_to(self.root).as_posix()
            else:
                what = "the case folder itself" if p == self.root else "not a folder"
                self.warnings.append(EvidenceWarning("case.yaml", None, f"{role}_model {value!r} is {what}"))
        return find_model_pairs(
            [f.relpath for f in self.files],
            suspect_model=configured["suspect"],
            reference_model=configured["reference"],
            affected_models=self.meta.affected_models,
            warnings=self.warnings,
        )

    @property
    def primary_pair(self) -> ModelPair | None:
        """The model pair the case is about (``case.yaml suspect_model`` or the default rule), or None."""
        return next((p for p in self.model_pairs if p.primary), None)

    def model_dir(self, role: str) -> Path | None:
        """Absolute path of the primary pair's ``suspect`` or ``reference`` folder, if the case has one."""
        rel = self.model_dirs.get(role)
        return self.fs_path(rel) if rel else None
