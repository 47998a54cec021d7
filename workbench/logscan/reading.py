"""Reading a log for the scanner: blocks within the budget, cut into blocks of whole lines and windows of long ones.

:func:`read_block` reads up to ``block_bytes`` (gzip in small steps, so that a truncated stream loses no more than
one step), counts them against the file's budget, drops a byte-order mark and notes NUL bytes at the start of the
file. :func:`items` turns the reads into what the scanner matches, in file order: blocks of complete lines no longer
than ``max_line_bytes``, and the :class:`~workbench.logscan.longlines.Window` s of longer lines (a line being read
across blocks is fed to its splitter piece by piece, never held whole).
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator
from typing import IO

from workbench.logscan.longlines import LongLine, Window
from workbench.logscan.results import ScanOptions
from workbench.logscan.state import State

__all__ = ["items", "read_block", "split_block"]


def read_block(stream: IO[bytes], st: State, options: ScanOptions) -> bytes:
    """Up to ``block_bytes``; after damage or past the budget nothing more (the data read before is kept)."""
    if not st.result.complete or st.expired():
        return b""
    size = options.block_bytes
    room = st.allowance.room() if st.allowance is not None else None
    if room is not None:
        size = min(size, room)
        if size <= 0:
            with contextlib.suppress(EOFError, OSError, zlib.error):
                if stream.read(1) and st.allowance is not None:
                    st.over_budget(st.allowance.stop_bytes())
            return b""
    parts: list[bytes] = []
    got = 0
    try:
        while got < size:  # gzip in small steps, so that a truncated stream loses no more than one step
            part = stream.read1(min(size - got, 1 << 16)) if st.result.compressed else stream.read(size - got)
            if not part:
                break
            parts.append(part)
            got += len(part)
    except EOFError:
        st.stop("gzip stream truncated; the lines before the cut were scanned")
    except (OSError, zlib.error) as exc:
        st.stop(f"read error ({exc}); the lines before it were scanned")
    st.result.bytes_scanned += got
    if st.allowance is not None:
        st.allowance.take(got)
    data = b"".join(parts)
    if st.first and data:
        st.first = False
        data = data.removeprefix(b"\xef\xbb\xbf")
        if b"\x00" in data[:8192]:
            st.warn(None, "binary data (NUL bytes) in a log; scanned as text")
    return data


def items(stream: IO[bytes], st: State, options: ScanOptions) -> Iterator[bytes | Window]:
    """Blocks of complete lines no longer than ``max_line_bytes``, and the windows of longer lines, in order."""
    cap = options.max_line_bytes
    carry, long = b"", None
    while data := read_block(stream, st, options):
        if long is not None:  # a long line still being read
            nl = data.find(b"\n")
            if nl < 0:
                yield from long.feed(data)
                continue
            yield from long.feed(data[:nl])
            yield from long.finish()
            long, data = None, data[nl + 1 :]
        buf = carry + data if carry else data
        last = buf.rfind(b"\n")
        if last < 0:
            carry = buf
        else:
            carry = buf[last + 1 :]
            yield from split_block(buf[: last + 1], options)
        if len(carry) > cap:
            long = LongLine(cap, options.overlap)
            yield from long.feed(carry)
            carry = b""
    if long is not None:
        yield from long.finish()
    elif carry:
        yield from split_block(carry + b"\n", options)


def split_block(block: bytes, options: ScanOptions) -> Iterator[bytes | Window]:
    """``block`` (complete lines) as blocks of lines up to ``max_line_bytes`` and windows of the longer ones."""
    cap = options.max_line_bytes
    pos = copied = 0
    while len(block) - pos > cap + 1:
        nl = block.rfind(b"\n", pos, pos + cap + 1)
        if nl >= 0:
            pos = nl + 1
            continue
        end = block.find(b"\n", pos + cap)
        if copied < pos:
            yield block[copied:pos]
        long = LongLine(cap, options.overlap)
        yield from long.feed(block[pos:end])
        yield from long.finish()
        copied = pos = end + 1
    if copied < len(block):
        yield block[copied:]
