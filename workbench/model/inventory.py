"""Artefact inventory of a model folder: every file (and archive member) classified by its bytes, not its name.

The folder is walked with :func:`workbench.case.walk_tree` (symlinks recorded, never followed). Each file is
sniffed (:mod:`~workbench.model.formats`); archives are listed and their members examined in turn down to
``ScanLimits.max_depth``; pickle streams go to :mod:`~workbench.model.pickles`; configs, Keras configs, HDF5 files,
GGUF headers and chat templates to :mod:`~workbench.model.embedded_code`. Dangerous types are flagged: pickle-based
formats (in disguise when the name does not say pickle), Python source and bytecode, shared libraries, numpy object
arrays, Keras ``Lambda`` layers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from workbench.errors import EvidenceError
from workbench.evidence_tree import EvidenceFile, walk_tree
from workbench.model import archives, embedded_code
from workbench.model.decompress import DECOMPRESS_ERRORS, DECOMPRESSORS, OwningStream
from workbench.model.formats import (
    CODE_KINDS,
    COMPATIBLE,
    COMPRESSION_SUFFIXES,
    PICKLE_EXTENSIONS,
    PICKLE_KINDS,
    declared_kind,
    parse_npy_header,
    sniff,
)
from workbench.model.gguf_meta import GgufError, read_gguf_header
from workbench.model.inventory_archives import READ_ERRORS, ArchiveWalker, Source
from workbench.model.limits import ScanLimits
from workbench.model.pickles import PickleReport, analyse_pickle
from workbench.model.policy import ImportPolicy, default_policy
from workbench.model.streams import open_evidence
from workbench.records import EvidenceWarning
from workbench.textsafe import clean_data, replaced_reason

__all__ = ["Artefact", "CodeFinding", "Inventory", "take_inventory"]

_AMBIGUOUS_SUFFIXES = {".bin", ".dat", ".data", ""}
#: JSON files that hold vocabulary data, not configuration (not parsed)
_DATA_JSON = {"tokenizer.json", "vocab.json"}


@dataclass(frozen=True, slots=True)
class Artefact:
    """One file or archive member as classified.

    Attributes:
        path: file path relative to the scanned folder (with the display prefix).
        member: archive member (nested members joined by ``!``), or None for the file itself.
        size: bytes (declared inflated size for members).
        kind: detected from content (see :mod:`workbench.model.formats`; archives refined to ``pytorch_zip``,
            ``torchscript``, ``npz``, ``keras``).
        declared: the kind the name suggests, or None.
        dangerous: loading it can execute code.
        why: why it is dangerous, or why its name and content disagree ('' when neither).
        details: small facts (pickle protocol, members, npy dtype, GGUF metadata ...).
    """

    path: str
    member: str | None
    size: int
    kind: str
    declared: str | None
    dangerous: bool
    why: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CodeFinding:
    """A code reference (``auto_map``, Keras ``Lambda``, chat template construct) located in a file or member."""

    path: str
    member: str | None
    ref: embedded_code.CodeReference


@dataclass(slots=True)
class Inventory:
    """What the walk found: artefacts, pickle reports, archive anomalies, code references and warnings.

    Attributes:
        unexamined: what a cap (size, count, depth, budget) or an unreadable file left unexamined, one
            ``"path [member]: reason"`` each (the analysis' coverage is then partial).
        limits: softer notes: checks done only in part although the content was examined (CRC verification beyond
            its budget, picklescan not asked about a file over its size cap).
    """

    root: Path
    artefacts: list[Artefact] = field(default_factory=list)
    pickles: list[tuple[str, PickleReport]] = field(default_factory=list)
    anomalies: list[tuple[str, archives.ArchiveAnomaly]] = field(default_factory=list)
    code: list[CodeFinding] = field(default_factory=list)
    warnings: list[EvidenceWarning] = field(default_factory=list)
    unexamined: list[str] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)


def take_inventory(
    path: str | Path,
    *,
    display_prefix: str = "",
    limits: ScanLimits | None = None,
    policy: ImportPolicy | None = None,
    files: Iterable[EvidenceFile] | None = None,
) -> Inventory:
    """Classify every file under ``path`` (or the one file ``path``).

    Args:
        path: a model folder or a single artefact.
        display_prefix: prepended to relative paths in the records (the folder's place in a case).
        limits: size, count and depth caps.
        policy: pickle import policy (the shipped one by default).
        files: only these files of the folder ``path`` (inventoried by :func:`~workbench.case.walk_tree`, paths
            relative to ``path``) instead of walking it.

    Returns:
        The :class:`Inventory`; unreadable files become warnings.

    Raises:
        EvidenceError: ``path`` does not exist or is a symlink.
    """
    root = Path(path)
    if root.is_symlink() or not root.exists():
        raise EvidenceError(root, "model path does not exist" if not root.is_symlink() else "model path is a symlink")
    examiner = _Examiner(Inventory(root.resolve()), limits or ScanLimits(), policy or default_policy(), display_prefix)
    if root.is_file():
        examiner.examine_file(root, root.name)
    elif files is not None:
        for f in files:
            examiner.examine_file(root / f.fs_relpath, f.relpath)
    else:
        for f in walk_tree(root, examiner.inv.warnings, examiner.inv.unexamined):
            examiner.examine_file(root / f.fs_relpath, f.relpath)
    return examiner.inv


class _Examiner(ArchiveWalker):
    def __init__(self, inv: Inventory, limits: ScanLimits, policy: ImportPolicy, prefix: str) -> None:
        self.inv, self.limits, self.policy = inv, limits, policy
        self.prefix = prefix.rstrip("/") + "/" if prefix else ""

    def examine_file(self, abs_path: Path, rel: str) -> None:
        path = self.prefix + rel
        try:
            size = abs_path.stat(follow_symlinks=False).st_size
            self._examine(Source(path, None, rel, size, lambda: open_evidence(abs_path), True), depth=0)
        except READ_ERRORS as exc:
            reason = getattr(exc, "strerror", None) or exc
            self.inv.warnings.append(EvidenceWarning(path, None, f"not readable, not classified: {reason}"))
            self.inv.unexamined.append(f"{path}: not readable ({reason})")

    def _warn(self, src: Source, reason: str) -> None:
        where = f"member {src.member}: " if src.member else ""
        self.inv.warnings.append(EvidenceWarning(src.path, None, where + reason))

    def _unexamined(self, src: Source, reason: str) -> None:
        """A cap left (part of) a file or member unexamined: a warning, and an entry of the coverage record."""
        self._warn(src, reason)
        where = f"{src.path} [{src.member}]" if src.member else src.path
        self.inv.unexamined.append(f"{where}: {reason}")

    def _limit(self, src: Source, reason: str) -> None:
        self._warn(src, reason)
        self.inv.limits.append(f"{src.path}: {reason}")

    # -- one file or member ------------------------------------------------------------------------------------------
    def _examine(self, src: Source, depth: int) -> Artefact:
        with closing(src.opener()) as fh:
            head = fh.read(self.limits.sniff_bytes)
        sniffed = sniff(head, src.name, src.size)
        data_json = PurePosixPath(src.name).name in _DATA_JSON
        kind, details = sniffed.kind, dict(sniffed.details)
        if kind == "zip":
            kind = self._zip(src, depth, details)
        elif kind == "7z":
            self._sevenzip(src, depth, details)
        elif kind == "tar":
            self._tar(src, depth, details)
        elif kind in ("pickle", "pytorch_legacy"):
            kind = self._pickle(src, kind, details, skip=0)
        elif kind == "compressed":
            kind = self._compressed(src, depth, details)
        elif kind == "npy":
            self._npy(src, head, details)
        elif kind == "gguf":
            self._gguf(src, details)
        elif kind == "hdf5":
            self._hdf5(src, details)
        elif kind in ("json", "config", "tokenizer") and details.get("format") in (None, "json") and not data_json:
            self._json(src, details)
        elif kind == "text" and src.name.endswith(".jinja"):
            self._template(src, self._read_all(src, self.limits.max_text_bytes), "chat template file")
        artefact = self._judge(src, kind, details)
        self.inv.artefacts.append(artefact)
        return artefact

    def _judge(self, src: Source, kind: str, details: dict[str, Any]) -> Artefact:
        declared = declared_kind(src.name)
        name = PurePosixPath(src.name)
        suffix = name.suffix.lower()
        said = PurePosixPath(name.stem).suffix.lower() if suffix in COMPRESSION_SUFFIXES else suffix
        why = ""
        if kind in PICKLE_KINDS or details.get("has_object") or details.get("pickle_members"):
            why = "pickle-based: loading it runs the pickle"
            if said not in PICKLE_EXTENSIONS:
                why = f"pickle in disguise (named {PurePosixPath(src.name).name!r}): loading it runs the pickle"
                details["disguised"] = True
        elif kind in CODE_KINDS:
            why = f"{CODE_KINDS[kind]}: runs code when imported or loaded"
        elif details.get("lambda_layers"):
            why = "Keras Lambda layer: marshalled Python code runs on load"
        elif details.get("dangerous_members"):
            why = f"archive holds dangerous members ({details['dangerous_members'][0]})"
        dangerous = bool(why)
        compatible = COMPATIBLE.get(declared or "", {declared})
        if (
            not dangerous
            and declared
            and kind not in compatible
            and kind != "empty"
            and suffix not in _AMBIGUOUS_SUFFIXES
        ):
            why = f"content is {kind}, the name suggests {declared}"
            details["mismatch"] = True
        return Artefact(src.path, src.member, src.size, kind, declared, dangerous, why, details)

    def _read_all(self, src: Source, cap: int) -> bytes | None:
        if src.size > cap:
            self._unexamined(src, f"{src.size} bytes, larger than the {cap}-byte cap: content not analysed")
            return None
        with closing(src.opener()) as fh:
            return fh.read(cap + 1)

    # -- formats -----------------------------------------------------------------------------------------------------
    def _pickle(
        self, src: Source, kind: str, details: dict[str, Any], *, skip: int, stream: BinaryIO | None = None
    ) -> str:
        with closing(stream or src.opener()) as fh:
            if skip:
                fh.read(skip)
            report = analyse_pickle(
                fh,
                member=src.member,
                size=(src.size - skip) if src.seekable and not stream else None,
                policy=self.policy,
                limits=self.limits,
            )
        self.inv.pickles.append((src.path, report))
        for reason in report.unexamined:
            self._unexamined(src, f"pickle: {reason}")
        details.update(streams=len(report.streams), imports=len(report.imports))
        if report.trailing is not None:
            details["trailing_offset"] = report.trailing + skip
        if kind == "pickle" and any((i.module or "").startswith("joblib") for i in report.imports):
            return "joblib"
        return kind

    def _compressed(self, src: Source, depth: int, details: dict[str, Any]) -> str:
        opener = DECOMPRESSORS.get(details.get("compression", ""))
        if opener is None:
            self._unexamined(src, f"{details.get('compression')} compression is not inspected: content not examined")
            return "compressed"
        try:
            with closing(src.opener()) as raw, closing(opener(raw)) as inner:
                head = inner.read(self.limits.sniff_bytes)
            inner_name = src.name.rsplit(".", 1)[0]
            inner_kind = sniff(head, inner_name, len(head) + 1).kind
            details["inner_kind"] = inner_kind
            if inner_kind == "tar":

                def decompressed() -> BinaryIO:
                    raw = src.opener()
                    return OwningStream(opener(raw), raw)

                inner_src = Source(src.path, src.member, inner_name, src.size, decompressed, False)
                self._tar(inner_src, depth, details)
                return "compressed"
            if inner_kind not in ("pickle", "pytorch_legacy"):
                return "compressed"
            with closing(src.opener()) as raw:
                kind = self._pickle(src, "compressed_pickle", details, skip=0, stream=opener(raw))
            return "joblib" if kind == "joblib" else "compressed_pickle"
        except DECOMPRESS_ERRORS as exc:
            self._warn(src, f"{details.get('compression')} data cannot be decompressed: {exc}")
            return "compressed"

    def _npy(self, src: Source, head: bytes, details: dict[str, Any]) -> None:
        try:
            header, offset = parse_npy_header(head, max_header=self.limits.sniff_bytes - 12)
        except ValueError as exc:
            if "cap" in str(exc):  # the header is larger than what is read: its dtype (object or not) is unknown
                self._unexamined(src, f"npy header not read: {exc}")
            else:
                self._warn(src, f"npy header unusable: {exc}")
            details["npy_error"] = str(exc)
            return
        details.update(
            descr=str(header["descr"])[:200], shape=str(header["shape"])[:100], has_object=header["has_object"]
        )
        if header["has_object"]:
            self._pickle(src, "npy", details, skip=offset)

    def _gguf(self, src: Source, details: dict[str, Any]) -> None:
        if not src.seekable:
            self._warn(src, "GGUF inside a compressed archive member: header not read")
            return
        try:
            with closing(src.opener()) as fh:
                header = read_gguf_header(fh, src.size, self.limits)
        except GgufError as exc:
            self._warn(src, f"GGUF header unusable: {exc}")
            details["gguf_error"] = str(exc)
            return
        meta = header.metadata
        details.update(
            version=header.version,
            tensor_count=header.tensor_count,
            kv_count=header.kv_count,
            architecture=meta.get("general.architecture"),
            name=meta.get("general.name"),
            chat_templates=sorted(header.chat_templates),
        )
        for problem in header.problems:
            self._warn(src, f"GGUF header: {problem}")
        for reason in header.capped:
            self._unexamined(src, f"GGUF header: {reason}")
        for key, text in header.chat_templates.items():
            self._template(src, text.encode("utf-8", "replace"), f"GGUF {key}")

    def _hdf5(self, src: Source, details: dict[str, Any]) -> None:
        with closing(src.opener()) as fh:
            offsets = embedded_code.h5_lambda_offsets(fh, self.limits.h5_scan_bytes)
        if src.size > self.limits.h5_scan_bytes:
            self._unexamined(src, f"HDF5 file of {src.size} bytes: only the first {self.limits.h5_scan_bytes} searched "
                             "for a Keras Lambda layer")  # fmt: skip
        for off in offsets:
            ref = embedded_code.CodeReference(
                "keras_lambda", "high", "HDF5 model config names a Lambda layer", offset=off
            )
            self.inv.code.append(CodeFinding(src.path, src.member, ref))
        if offsets:
            details["lambda_layers"] = len(offsets)

    def _template(self, src: Source, data: bytes | None, label: str) -> None:
        if data is None:
            return
        for ref in embedded_code.template_issues(data.decode("utf-8", "replace")):
            ref = embedded_code.CodeReference(ref.kind, ref.severity, f"{label}: {ref.summary}", ref.line, ref.offset)
            self.inv.code.append(CodeFinding(src.path, src.member, ref))

    def _json(self, src: Source, details: dict[str, Any]) -> None:
        data = self._read_all(src, self.limits.max_json_bytes)
        if data is None:
            return
        try:
            doc = json.loads(data.decode("utf-8-sig"))
        except (ValueError, RecursionError) as exc:
            self._warn(src, f"not valid JSON: {str(exc)[:200]}")
            details["json_error"] = True
            return
        doc, changed = clean_data(doc)
        if changed:
            self._warn(src, replaced_reason("JSON text"))
        refs = embedded_code.auto_map_references(doc) + embedded_code.keras_lambda_layers(doc)
        for kind, key in (("keras_lambda", "lambda_layers"), ("auto_map", "auto_map")):
            if count := sum(r.kind == kind for r in refs):
                details[key] = count
        self.inv.code.extend(CodeFinding(src.path, src.member, r) for r in refs)
        template = doc.get("chat_template") if isinstance(doc, dict) else None
        templates = (
            [template]
            if isinstance(template, str)
            else [t.get("template") for t in template or [] if isinstance(t, dict)]
            if isinstance(template, list)
            else []
        )
        for text in templates:
            if isinstance(text, str):
                self._template(src, text.encode("utf-8", "replace"), "chat_template")
