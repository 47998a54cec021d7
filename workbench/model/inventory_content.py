"""Content readers of the artefact inventory: pickles (also as a second reading of a file that looks like something
else), compressed streams, numpy headers, GGUF headers, HDF5 files, JSON configs and chat templates.

:class:`ContentReader` is mixed into the inventory's examiner (:mod:`workbench.model.inventory`), which provides
``limits``, ``policy``, ``inv`` and the recording methods. Each reader records what it could not examine through
``_unexamined`` (part left out: ``partially analysed``) or ``_not_analysed`` (nothing examined).
"""

from __future__ import annotations

import json
from contextlib import closing
from dataclasses import dataclass
from typing import Any, BinaryIO

from workbench.model import embedded_code, inventory_code, joblib_layout
from workbench.model.decompress import DECOMPRESS_ERRORS, DECOMPRESSORS, OwningStream, RecordingStream
from workbench.model.formats import PICKLE_KINDS, sniff
from workbench.model.gguf_meta import GgufError, read_gguf_header
from workbench.model.inventory_archives import Source
from workbench.model.npy_header import header_span, parse_npy_header
from workbench.model.pickles import PickleReport, analyse_pickle
from workbench.textsafe import clean_data, replaced_reason

__all__ = ["CodeFinding", "ContentReader"]

#: kinds a second reading as a pickle replaces (the first reading found no format of its own)
WEAK_KINDS = frozenset({"text", "unknown", "json"})


@dataclass(frozen=True, slots=True)
class CodeFinding:
    """A code reference (``auto_map``, Keras ``Lambda``, chat template construct) located in a file or member."""

    path: str
    member: str | None
    ref: embedded_code.CodeReference


class ContentReader:
    """Readers of single-stream content; see the module docstring."""

    limits: Any
    policy: Any
    inv: Any

    def _unexamined(self, src: Source, reason: str) -> None:
        raise NotImplementedError

    def _not_analysed(self, src: Source, reason: str) -> None:
        raise NotImplementedError

    def _warn(self, src: Source, reason: str) -> None:
        raise NotImplementedError

    def _examine(self, src: Source, depth: int) -> Any:
        raise NotImplementedError

    def _read_all(self, src: Source, cap: int) -> bytes | None:
        if src.size > cap:
            self._unexamined(src, f"{src.size} bytes, larger than the {cap}-byte cap: content not analysed")
            return None
        with closing(src.opener()) as fh:
            return fh.read(cap + 1)

    # -- pickles -----------------------------------------------------------------------------------------------------
    def _analyse(self, src: Source, skip: int, stream: BinaryIO | None = None) -> PickleReport:
        with closing(stream or src.opener()) as fh:
            if skip:
                fh.read(skip)
            return analyse_pickle(
                fh,
                member=src.member,
                size=(src.size - skip) if src.seekable and not stream else None,
                policy=self.policy,
                limits=self.limits,
                context=src.context if src.context == "torchscript" else None,
            )

    def _pickle(
        self, src: Source, kind: str, details: dict[str, Any], *, skip: int, stream: BinaryIO | None = None
    ) -> str:
        report = self._analyse(src, skip, stream)
        if stream is None:
            report = self._joblib(src, report, src.opener, skip)
        return self._keep_pickle(src, kind, details, report, skip)

    def _joblib(self, src: Source, report: PickleReport, opener: Any, skip: int) -> PickleReport:
        """A joblib stream stopped by an inline array is read again with its arrays stepped over
        (:mod:`~workbench.model.joblib_layout`); the nested streams of object arrays are kept as reports of their own.
        """
        if not joblib_layout.needs_reread(report):
            return report
        again, *nested = joblib_layout.reread(opener, skip, report, member=src.member, policy=self.policy,
                                              limits=self.limits)  # fmt: skip
        for inner in nested:
            self.inv.pickles.append((src.path, inner))
            for reason in inner.unexamined:
                self._unexamined(src, f"pickle (object array): {reason}")
        return again

    def _keep_pickle(self, src: Source, kind: str, details: dict[str, Any], report: PickleReport, skip: int) -> str:
        """Record a pickle report: its caps as unexamined, a stream not followed to its STOP as a partial reading."""
        self.inv.pickles.append((src.path, report))
        for reason in report.unexamined:
            self._unexamined(src, f"pickle: {reason}")
        if not report.unexamined:
            open_ended = next((s for s in report.streams if s.end is None), None)
            if open_ended is not None:
                self._unexamined(src, f"pickle stream {open_ended.index} not followed to its STOP "
                                 f"({open_ended.error or 'it ends early'}): what follows is not analysed")  # fmt: skip
            elif not report.streams and kind in PICKLE_KINDS | {"npy", "compressed_pickle"}:
                self._unexamined(src, f"no pickle stream could be followed at offset {skip}: content not analysed")
        details.update(streams=len(report.streams), imports=len(report.imports))
        if report.trailing is not None:
            details["trailing_offset"] = report.trailing + skip
            if src.context == "pytorch_legacy_tar":  # torch unpickles one record per storage, between raw bytes
                at = report.trailing + skip
                self._unexamined(src, f"legacy tar checkpoint: the raw storage bytes from offset {at} and the "
                                 "pickles torch reads between them are not followed")  # fmt: skip
        joblib = any((i.module or "").startswith("joblib") for i in report.imports)
        if kind in ("pickle", "compressed_pickle") and joblib:
            return "joblib"  # a compressed joblib file is joblib (details["compression"] says how it is compressed)
        return kind

    def _pickle_reading(self, src: Source, kind: str, details: dict[str, Any]) -> str:
        """Analyse as a pickle a file whose first bytes also walk as pickle opcodes (a polyglot, or a pickle made to
        look like another format). Kept when the reading finds a stream that reaches its STOP or an import whose
        module is known (``\\x93NUMPY`` starts with a STACK_GLOBAL on an empty stack: nothing runs).

        Returns:
            ``pickle`` when the other reading found no format of its own (text, unknown bytes, a signature whose
            structure does not hold); else the kind found, with ``details["polyglot"]`` set.
        """
        report = self._analyse(src, 0)
        if not (any(i.module for i in report.imports) or any(s.end is not None for s in report.streams)):
            return kind  # no resolvable import and no complete stream: the unpickler fails before running anything
        details.pop("also_pickle", None)
        structure = details.pop("structure", None)
        if kind in WEAK_KINDS or structure == "invalid":
            details["looks_like"] = kind
            return self._keep_pickle(src, "pickle", details, report, 0)
        details["polyglot"] = True
        self._keep_pickle(src, kind, details, report, 0)
        return kind

    # -- compressed streams ------------------------------------------------------------------------------------------
    def _compressed(self, src: Source, depth: int, details: dict[str, Any]) -> str:
        """A gzip, bzip2, xz, lzma or zlib stream: what it holds is examined as decompressed (never more than the
        pickle, in-memory or archive caps allow); zstd is not inspected (not analysed)."""
        compression = details.get("compression", "")
        opener = DECOMPRESSORS.get(compression)
        if opener is None:
            self._not_analysed(src, f"{compression} compression is not inspected: content not examined")
            return "compressed"

        def decompressed() -> BinaryIO:
            raw = src.opener()
            return OwningStream(opener(raw), raw)  # type: ignore[return-value]

        try:
            with closing(decompressed()) as fh:
                head = fh.read(self.limits.sniff_bytes)
        except DECOMPRESS_ERRORS as exc:
            self._not_analysed(src, f"{compression} data cannot be decompressed: {exc}")
            return "compressed"
        inner_name = src.name.rsplit(".", 1)[0]
        inner = sniff(head, inner_name, len(head) + 1)
        details["inner_kind"] = inner.kind
        inner_src = Source(src.path, src.member, inner_name, src.size, decompressed, False, src.context)
        if inner.kind == "tar":
            self._tar(inner_src, depth, details)  # type: ignore[attr-defined]
        elif inner.kind == "zip":
            self._zip(inner_src, depth, details)  # type: ignore[attr-defined]
        elif inner.kind == "7z":
            self._sevenzip(inner_src, depth, details)  # type: ignore[attr-defined]
        elif inner.kind == "npy":
            offset, strict = self._npy_data(inner_src, head, details)
            if offset is not None:
                self._npy_pickle(src, offset, details, strict, RecordingStream(decompressed()), compression)
        elif inner.kind in ("pickle", "pytorch_legacy") or inner.details.get("also_pickle"):
            recording = RecordingStream(decompressed())
            report = self._analyse(src, 0, stream=recording)  # type: ignore[arg-type]
            report = self._joblib(src, report, decompressed, 0)
            if inner.kind in ("pickle", "pytorch_legacy") or report.imports or report.streams:
                self._stream_damage(src, recording, compression)
                kind = self._keep_pickle(src, "compressed_pickle", details, report, 0)
                return "joblib" if kind == "joblib" else "compressed_pickle"
        return "compressed"

    def _stream_damage(self, src: Source, recording: RecordingStream, compression: str) -> None:
        if recording.error is not None:
            self._unexamined(src, f"{compression} data unreadable after {recording.produced} decompressed bytes "
                             f"({recording.error}): the rest is not examined")  # fmt: skip

    # -- numpy -------------------------------------------------------------------------------------------------------
    def _npy(self, src: Source, head: bytes, details: dict[str, Any]) -> None:
        offset, strict = self._npy_data(src, head, details)
        if offset is not None:
            self._npy_pickle(src, offset, details, strict, None, "")

    def _npy_data(self, src: Source, head: bytes, details: dict[str, Any]) -> tuple[int | None, bool]:
        """Read the header (beyond the sniffed bytes when it is longer, up to ``max_npy_header_bytes``: numpy ignores
        its own header limit when pickles are allowed).

        Returns:
            ``(offset, objects)``: where the data must be analysed as a pickle (None: plain numbers), and whether the
            dtype is known to hold objects (False: the header could not be parsed, so the data is examined as a pickle
            in case it holds objects: fail closed).
        """
        cap = self.limits.max_npy_header_bytes
        try:
            start, length = header_span(head)
        except ValueError as exc:
            self._warn(src, f"npy header unusable: {exc}")
            details["npy_error"] = str(exc)
            return None, False
        try:
            if start + length > len(head) and length <= cap:
                with closing(src.opener()) as fh:
                    head = fh.read(start + length)
            header, offset = parse_npy_header(head, max_header=cap)
        except ValueError as exc:
            details["npy_error"] = str(exc)
            self._unexamined(src, f"npy header not parsed ({exc}): its dtype is unknown; the data was examined as a "
                             "pickle in case it holds objects")  # fmt: skip
            return start + length, False
        details.update(
            descr=str(header["descr"])[:200], shape=str(header["shape"])[:100], has_object=header["has_object"]
        )
        return (offset, True) if header["has_object"] else (None, False)

    def _npy_pickle(
        self, src: Source, offset: int, details: dict[str, Any], objects: bool, stream: Any, compression: str
    ) -> None:
        report = self._analyse(src, offset, stream)
        if objects or report.streams:
            details["has_object"] = True
            if stream is not None:
                self._stream_damage(src, stream, compression)
            self._keep_pickle(src, "npy", details, report, offset)

    # -- other formats -----------------------------------------------------------------------------------------------
    def _gguf(self, src: Source, details: dict[str, Any]) -> None:
        if not src.seekable:
            self._not_analysed(src, "GGUF inside a compressed archive member: header not read")
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
        """Keras attributes read by the h5py child and judged (:mod:`~workbench.model.inventory_code`)."""
        self.inv.code.extend(_code(src, r) for r in inventory_code.hdf5_references(self, src, details))

    def _carried_code(self, src: Source, kind: str, details: dict[str, Any]) -> None:
        """Code in safetensors metadata, TensorFlow graphs and TorchScript sources (``inventory_code``)."""
        self.inv.code.extend(_code(src, r) for r in inventory_code.carried_code(self, src, kind, details))

    def _template(self, src: Source, data: bytes | None, label: str) -> None:
        if data is None:
            return
        capped: list[str] = []
        for ref in embedded_code.template_issues(data.decode("utf-8", "replace"), capped):
            ref = embedded_code.CodeReference(ref.kind, ref.severity, f"{label}: {ref.summary}", ref.line, ref.offset)
            self.inv.code.append(_code(src, ref))
        for note in capped:
            self._unexamined(src, f"{label}: {note}")

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
        self.inv.code.extend(_code(src, r) for r in inventory_code.config_references(doc, details, self, src))
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


def _code(src: Source, ref: embedded_code.CodeReference) -> CodeFinding:
    return CodeFinding(src.path, src.member, ref)
