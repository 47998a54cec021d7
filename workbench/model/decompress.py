"""Decompressing streams for the artefact inventory: gzip, bzip2, xz, lzma ("alone") and raw zlib.

joblib writes ``.z``/``.zlib`` (raw zlib), ``.gz``, ``.bz2``, ``.xz`` and ``.lzma`` compressed pickles; ``.tar.gz`` and
friends hold archives. Each opener wraps a binary stream and returns a readable, non-seekable stream of the
decompressed bytes that the caller closes. Output is produced on demand (a bounded reader decides how much is
consumed): nothing is decompressed ahead.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from collections.abc import Callable
from typing import BinaryIO

import lz4.frame

__all__ = ["DECOMPRESSORS", "DECOMPRESS_ERRORS", "JOBLIB_ZF_HEADER", "OwningStream", "RecordingStream", "ZlibReader"]

_CHUNK = 64 * 1024

#: what a damaged compressed stream can raise while being read
#: what a damaged stream raises (lz4.frame raises RuntimeError for a damaged frame)
DECOMPRESS_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError, RuntimeError)


class ZlibReader(io.RawIOBase):
    """A raw zlib stream (RFC 1950) decompressed on demand; ends at the end of the zlib stream.

    The underlying stream is not closed with it (the caller owns it, as with :class:`gzip.GzipFile`).
    """

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self._dec = zlib.decompressobj()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        room = len(buffer)
        while room and not self._dec.eof:
            data = self._dec.unconsumed_tail or self._fh.read(_CHUNK)
            if not data:
                out = self._dec.flush()[:room]
                if not out:
                    raise EOFError("zlib stream truncated")
            else:
                out = self._dec.decompress(data, room)
            if out:
                buffer[: len(out)] = out
                return len(out)
        return 0


def _zlib(fh: BinaryIO) -> BinaryIO:
    return io.BufferedReader(ZlibReader(fh), buffer_size=_CHUNK)  # type: ignore[return-value]


#: joblib's own zlib container before 0.10 (``ZF``, the length as ``0x...`` text padded to 19 bytes, then zlib)
JOBLIB_ZF_HEADER = 21


def _joblib_zf(fh: BinaryIO) -> BinaryIO:
    head = fh.read(JOBLIB_ZF_HEADER)
    if len(head) != JOBLIB_ZF_HEADER or not head.startswith(b"ZF"):
        raise EOFError("joblib ZF header truncated")
    return _zlib(fh)


#: compression label (as :func:`workbench.model.formats.sniff` names it) -> opener; the stream is closed by the caller
DECOMPRESSORS: dict[str, Callable[[BinaryIO], BinaryIO]] = {
    "gzip": lambda fh: gzip.GzipFile(fileobj=fh),
    "bzip2": lambda fh: bz2.BZ2File(fh),
    "xz": lambda fh: lzma.LZMAFile(fh),  # noqa: SIM115 - closed by the caller
    "lzma": lambda fh: lzma.LZMAFile(fh, format=lzma.FORMAT_ALONE),  # noqa: SIM115 - closed by the caller
    "zlib": _zlib,
    "joblib_zf": _joblib_zf,
    "lz4": lambda fh: lz4.frame.LZ4FrameFile(fh),  # joblib's compress=("lz4", N); streamed, never read whole
}


class OwningStream:
    """A decompressing stream that also closes the file it reads from (for openers that return one object)."""

    def __init__(self, stream: BinaryIO, raw: BinaryIO) -> None:
        self._stream, self._raw = stream, raw

    def read(self, n: int = -1) -> bytes:
        return self._stream.read(n)

    def readline(self, limit: int = -1) -> bytes:
        return self._stream.readline(limit)

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._raw.close()


class RecordingStream:
    """A decompressing stream that remembers the first error its reads raised (a damaged or truncated stream) and how
    many bytes it produced before, for readers that swallow read errors (the pickle analysis ends its stream there).

    Attributes:
        error: ``"TypeName: message"`` of the first read error, or None.
        produced: decompressed bytes returned so far.
    """

    def __init__(self, stream: BinaryIO | OwningStream) -> None:
        self._stream = stream
        self.error: str | None = None
        self.produced = 0

    def read(self, n: int = -1) -> bytes:
        try:
            data = self._stream.read(n)
        except DECOMPRESS_ERRORS as exc:
            if self.error is None:
                self.error = f"{type(exc).__name__}: {exc}"
            raise
        self.produced += len(data)
        return data

    def readline(self, limit: int = -1) -> bytes:
        try:
            data = self._stream.readline(limit)  # type: ignore[union-attr]
        except DECOMPRESS_ERRORS as exc:
            if self.error is None:
                self.error = f"{type(exc).__name__}: {exc}"
            raise
        self.produced += len(data)
        return data

    def close(self) -> None:
        self._stream.close()
