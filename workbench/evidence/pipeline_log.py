"""Generic loader for CI/pipeline logs (``*.log``, ``*.log.gz``, ``logs/*.txt``): raw numbered lines.

This loader is the catch-all for logs and comes last in the registry. Gzip files are decompressed as a stream
(multi-member files supported); a truncated or corrupt stream keeps every line read before the damage and adds
one warning. At most :data:`MAX_LOG_BYTES` of (decompressed) text are read per file.
"""

from __future__ import annotations

import io
import zlib
from pathlib import Path
from typing import ClassVar

from workbench import safeio
from workbench.errors import MalformedEvidence
from workbench.evidence.actions_log import ActionsLogLoader
from workbench.evidence.base import (
    MAX_FILE_BYTES,
    LoadContext,
    Loaded,
    Loader,
    is_regular_file,
    iter_stream_lines,
    sniff,
)
from workbench.records import EvidenceWarning

__all__ = ["MAX_LOG_BYTES", "PipelineLogLoader"]

#: Text read from one log before it is cut (guards against decompression bombs and runaway logs).
MAX_LOG_BYTES = MAX_FILE_BYTES
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 16
_ACTIONS = ActionsLogLoader()


class _Limited(io.RawIOBase):
    """Readable stream over a file, gunzipped when ``gzip`` is set, that stops at ``limit`` bytes of output.

    Errors never escape ``readinto``: a damaged stream just ends, and ``problem`` says why.
    """

    def __init__(self, fh: io.BufferedReader, *, gzip: bool, limit: int) -> None:
        self._fh = fh
        self._dec = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None
        self._pending = b""
        self._in = b""
        self._left = limit
        self._eof = False
        self.problem: str | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending and not self._eof:
            self._pending = self._next_chunk()
        if self._left <= 0 and self._pending:
            self.problem = self.problem or f"log longer than {MAX_LOG_BYTES} bytes, rest not read"
            self._pending, self._eof = b"", True
        n = min(len(buffer), len(self._pending), self._left)
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self._left -= n
        return n

    def _next_chunk(self) -> bytes:
        """Next piece of output (possibly empty while input is consumed); sets ``_eof`` at the end."""
        if self._dec is None:
            data = self._read()
            self._eof = self._eof or not data
            return data
        if self._dec.eof:  # a gzip member ended: another member, zero padding, or the end
            self._in = self._dec.unused_data + self._in
            if not self._in:
                self._in = self._read()
            if not self._in.strip(b"\x00"):
                self._in = self._read()
                if not self._in.strip(b"\x00"):
                    self._eof = True
                    return b""
            self._dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
        if not self._in:
            self._in = self._read()
            if not self._in:
                return b"" if self._eof else self._stop("gzip stream truncated; kept the lines read before the cut")
        try:
            out = self._dec.decompress(self._in, _CHUNK * 4)
        except zlib.error as exc:
            return self._stop(f"corrupt gzip data ({exc}); kept the lines read before it")
        self._in = self._dec.unconsumed_tail
        return out

    def _read(self) -> bytes:
        if self._eof:
            return b""
        try:
            return self._fh.read(_CHUNK)
        except OSError as exc:
            return self._stop(f"read error: {exc.strerror or exc}")

    def _stop(self, reason: str) -> bytes:
        self.problem = self.problem or reason
        self._eof = True
        return b""


class PipelineLogLoader(Loader):
    """Any CI/pipeline log, line by line, for the log scanner (no parsing of its own).

    Columns:
        line (int): 1-based line number.
        text (str): the line without its line ending (invalid UTF-8 replaced, over-long lines cut).
    """

    name: ClassVar[str] = "pipeline_log"
    columns: ClassVar[dict[str, str]] = {"line": "int", "text": "str"}
    #: Generic loaders go last in the registry; new loaders are registered before them.
    generic: ClassVar[bool] = True

    def detect(self, path: Path) -> bool:
        """``*.log`` (not binary), ``*.log.gz`` (gzip magic) or ``*.txt`` in a folder named ``logs``.

        The responders' own ``actions.log`` is left to its specific loader.
        """
        if not is_regular_file(path) or _ACTIONS.detect(path):
            return False
        name = path.name.lower()
        head = sniff(path, 512)
        if name.endswith((".log.gz", ".txt.gz")):
            return head.startswith(_GZIP_MAGIC) and (name.endswith(".log.gz") or path.parent.name.lower() == "logs")
        is_log = name.endswith(".log") or (name.endswith(".txt") and path.parent.name.lower() == "logs")
        return is_log and b"\x00" not in head

    def load(self, path: Path, ctx: LoadContext) -> Loaded:
        """All lines, blank ones included, numbered from 1."""
        warnings: list[EvidenceWarning] = []
        lines: list[int] = []
        texts: list[str] = []
        try:
            fh = safeio.open_evidence(path)
        except OSError as exc:
            raise MalformedEvidence(ctx.relpath, f"cannot read: {exc.strerror or exc}") from None
        with fh:
            gz = fh.peek(2)[:2] == _GZIP_MAGIC
            raw = _Limited(fh, gzip=gz, limit=MAX_LOG_BYTES)
            stream = io.BufferedReader(raw, buffer_size=_CHUNK)
            for number, text in iter_stream_lines(stream, ctx, warnings):
                lines.append(number)
                texts.append(text)
        if raw.problem:
            warnings.append(EvidenceWarning(ctx.relpath, len(lines) or None, raw.problem))
        frame = self.make_frame({"line": lines, "text": texts})
        return Loaded(self.name, ctx.relpath, frame, warnings, {"compressed": gz})
