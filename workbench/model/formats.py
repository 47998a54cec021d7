"""Recognising model artefacts by their bytes: magic numbers, structural checks, and what a file name claims.

:func:`sniff` looks at the first bytes of a file (or archive member) only; archives, pickles, GGUF headers and numpy
headers are examined further by their own modules. Nothing is loaded with the format's own library.
"""

from __future__ import annotations

import ast
import json
import lzma
import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from workbench.model.pickles import probe_pickle

__all__ = [
    "CODE_KINDS",
    "COMPRESSION_SUFFIXES",
    "PICKLE_EXTENSIONS",
    "PICKLE_KINDS",
    "Sniffed",
    "declared_kind",
    "parse_npy_header",
    "sniff",
]

#: kinds whose loading unpickles data
PICKLE_KINDS = {"pickle", "pytorch_zip", "pytorch_legacy", "torchscript", "joblib", "compressed_pickle"}
#: kinds that are code
CODE_KINDS = {
    "python": "Python source",
    "python_bytecode": "Python bytecode",
    "shared_library": "shared library or executable",
    "script": "script with an interpreter line (#!)",
}
#: names under which a pickle is expected (elsewhere a pickle is in disguise)
PICKLE_EXTENSIONS = {
    ".pkl",
    ".pickle",
    ".pt",
    ".pth",
    ".bin",
    ".ckpt",
    ".joblib",
    ".dat",
    ".data",
    ".npy",
    ".npz",
    ".pkl.gz",
    ".jbl",
    ".mar",
    ".7z",
    ".zip",
    ".tar",
}
#: compression suffixes looked through when judging a name (``model.pkl.gz`` says pickle)
COMPRESSION_SUFFIXES = {".gz", ".bz2", ".xz", ".lzma", ".z", ".zlib", ".zst", ".lz4"}
TORCH_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_EXT_KIND = {
    ".safetensors": "safetensors",
    ".pt": "pytorch",
    ".pth": "pytorch",
    ".ckpt": "pytorch",
    ".bin": "pytorch",
    ".pkl": "pickle",
    ".pickle": "pickle",
    ".joblib": "joblib",
    ".npy": "npy",
    ".npz": "npz",
    ".gguf": "gguf",
    ".onnx": "onnx",
    ".keras": "keras",
    ".h5": "hdf5",
    ".hdf5": "hdf5",
    ".json": "json",
    ".py": "python",
    ".pyc": "python_bytecode",
    ".so": "shared_library",
    ".dylib": "shared_library",
    ".dll": "shared_library",
    ".7z": "7z",
    ".zip": "zip",
    ".tar": "tar",
    ".sh": "script",
    ".png": "image",
    ".jpg": "image",
    ".jpeg": "image",
    ".txt": "text",
    ".md": "text",
    ".model": "sentencepiece",
}
#: detected kinds acceptable under each declared kind (anything else is a mismatch)
COMPATIBLE = {
    "pytorch": {"pytorch_zip", "pytorch_legacy", "torchscript", "pickle", "7z", "zip"},
    "pickle": {"pickle", "pytorch_legacy", "joblib", "compressed_pickle"},
    "joblib": {"pickle", "joblib", "compressed_pickle"},
    "npz": {"npz", "zip"},
    "hdf5": {"hdf5"},
    "json": {"json", "config", "tokenizer"},
    "python": {"python", "text"},
    "sentencepiece": {"tokenizer"},
    "text": {"text", "tokenizer", "python", "empty"},
    "zip": {"zip", "pytorch_zip", "torchscript", "npz", "keras"},
    "tar": {"tar"},
    "script": {"script", "text"},
}
_MAGICS: list[tuple[bytes, str]] = [
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"GGUF", "gguf"),
    (b"\x93NUMPY", "npy"),
    (b"\x89HDF\r\n\x1a\n", "hdf5"),
    (b"\x7fELF", "shared_library"),
    (b"\xcf\xfa\xed\xfe", "shared_library"),
    (b"\xce\xfa\xed\xfe", "shared_library"),
    (b"\xfe\xed\xfa\xcf", "shared_library"),
    (b"\xfe\xed\xfa\xce", "shared_library"),
    (b"\x89PNG\r\n\x1a\n", "image"),
    (b"\xff\xd8\xff", "image"),
    (b"GIF8", "image"),
    (b"\x1f\x8b", "compressed"),
    (b"BZh", "compressed"),
    (b"\xfd7zXZ\x00", "compressed"),
    (b"\x28\xb5\x2f\xfd", "compressed"),
    (b"\x04\x22\x4d\x18", "compressed"),
]
#: zlib stream header: CMF 0x78 (deflate, 32 KiB window) and a FLG byte of each compression level
_ZLIB_HEADERS = {b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda"}
#: the ``.lzma`` ("alone") format as joblib writes it: properties byte 0x5d and a dictionary size
_LZMA_ALONE = b"\x5d\x00\x00"
#: offset of the POSIX/GNU tar magic in the first header block
_TAR_MAGIC_AT = 257
_ONNX_FIELDS = {(1, 0), (2, 2), (3, 2), (4, 2), (5, 0), (6, 2), (7, 2), (8, 2), (14, 2), (20, 2), (25, 2), (26, 2)}
_SPM_FIELDS = {(1, 2), (2, 2), (3, 2), (4, 2), (5, 2)}
_OBJECT_DESCR = re.compile(r"^[<>|=]?O\d*$")
_TOKENIZER_NAMES = {
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "added_tokens.json",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
}


@dataclass(frozen=True, slots=True)
class Sniffed:
    """What the first bytes say: a ``kind`` and small ``details`` (e.g. pickle protocol, compression)."""

    kind: str
    details: dict[str, Any] = field(default_factory=dict)


def declared_kind(name: str) -> str | None:
    """The kind a file name suggests (by its extension), or None."""
    return _EXT_KIND.get(PurePosixPath(name).suffix.lower())


def sniff(head: bytes, name: str, size: int) -> Sniffed:
    """Classify by content: magic numbers, then structure (safetensors header, pickle opcodes, JSON, protobuf).

    Args:
        head: the first bytes (at most the sniff budget).
        name: file or member name, used only to tell tokenizer and config files apart and for Python source.
        size: total size in bytes.

    Returns:
        The :class:`Sniffed` kind, ``unknown`` when nothing matches, ``empty`` for an empty file.
    """
    base = PurePosixPath(name).name.lower()
    if size == 0 or not head:
        return Sniffed("empty")
    for magic, kind in _MAGICS:
        if head.startswith(magic):
            if kind == "compressed":
                return Sniffed(kind, {"compression": _compression(head)})
            return Sniffed(kind)
    if len(head) >= _TAR_MAGIC_AT + 5 and head[_TAR_MAGIC_AT : _TAR_MAGIC_AT + 5] == b"ustar":
        return Sniffed("tar")
    if head[:2] == b"MZ" and len(head) >= 64:
        return Sniffed("shared_library", {"format": "PE"})
    if len(head) >= 16 and head[2:4] == b"\r\n" and 3000 <= struct.unpack("<H", head[:2])[0] < 4000:
        return Sniffed("python_bytecode")
    if (safetensors := _safetensors(head, size)) is not None:
        return safetensors
    if (compression := _raw_compression(head)) is not None:
        return Sniffed("compressed", {"compression": compression})
    if head[0] == 0x80 and len(head) > 1 and head[1] <= 5 and probe_pickle(head, whole_file=len(head) >= size):
        return Sniffed("pytorch_legacy" if _is_torch_magic(head) else "pickle", {"protocol": head[1]})
    if head[:1] in (b"{", b"[") or head.lstrip()[:1] in (b"{", b"["):
        return _json_kind(head, base, size)
    if (fields := _protobuf_fields(head)) and _looks_like(fields, _ONNX_FIELDS, (1, 0)):
        return Sniffed("onnx")
    if fields and _looks_like(fields, _SPM_FIELDS, (1, 2)) and base.endswith(".model"):
        return Sniffed("tokenizer", {"format": "sentencepiece"})
    if (ops := probe_pickle(head, whole_file=len(head) >= size)) is not None:
        return Sniffed("pickle", {"protocol": 0, "probe_opcodes": ops})
    return _text_kind(head, base)


def _compression(head: bytes) -> str:
    for magic, label in (
        (b"\x1f\x8b", "gzip"),
        (b"BZh", "bzip2"),
        (b"\xfd7zXZ\x00", "xz"),
        (b"\x28\xb5\x2f\xfd", "zstd"),
        (b"\x04\x22\x4d\x18", "lz4"),
    ):
        if head.startswith(magic):
            return label
    return "unknown"


def _raw_compression(head: bytes) -> str | None:
    """``zlib`` or ``lzma`` (alone format) when the head has the header and its first bytes really inflate.

    Both headers are short and could begin other data (``x^`` is text), so the head must decompress as well.
    """
    if head[:2] in _ZLIB_HEADERS:
        try:
            zlib.decompressobj().decompress(head[:4096], 64)
        except zlib.error:
            return None
        return "zlib"
    if head.startswith(_LZMA_ALONE) and len(head) >= 13:
        try:
            lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress(head[:4096], 64)
        except lzma.LZMAError:
            return None
        return "lzma"
    return None


def _safetensors(head: bytes, size: int) -> Sniffed | None:
    if len(head) < 10:
        return None
    (n,) = struct.unpack("<Q", head[:8])
    if not 2 <= n <= min(100 * 1024 * 1024, size - 8):
        return None
    body = head[8 : 8 + min(n, 64)]
    stripped = body.lstrip(b" \t\r\n")
    if stripped[:1] != b"{":
        return None
    return Sniffed("safetensors", {"header_bytes": n, "leading_whitespace": len(body) - len(stripped)})


def _is_torch_magic(head: bytes) -> bool:
    """The legacy ``torch.save`` format starts with a pickle of one integer, the magic number."""
    # PROTO n, LONG1 10 <10 bytes>, STOP
    if len(head) >= 15 and head[2] == 0x8A and head[3] == 10:
        return int.from_bytes(head[4:14], "little") == TORCH_MAGIC_NUMBER and head[14:15] == b"."
    return False


def _json_kind(head: bytes, base: str, size: int) -> Sniffed:
    text = head.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    if base in _TOKENIZER_NAMES or base.startswith("tokenizer"):
        return Sniffed("tokenizer", {"format": "json"})
    if base.endswith("config.json") or base == "config.json":
        return Sniffed("config")
    if len(head) >= size:
        try:
            json.loads(text)
        except ValueError:
            return Sniffed("text")
    return Sniffed("json")


def _text_kind(head: bytes, base: str) -> Sniffed:
    if b"\x00" in head:
        return Sniffed("unknown")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:
            return Sniffed("unknown")
        text = head[: exc.start].decode("utf-8")
    if base.endswith(".py") or re.match(r"#![^\n]*python", text):
        return Sniffed("python")
    if re.match(r"#!\s*/\S+", text):
        return Sniffed("script", {"interpreter": text[2:].split("\n", 1)[0].strip()[:80]})
    if base in _TOKENIZER_NAMES:
        return Sniffed("tokenizer", {"format": "text"})
    return Sniffed("text")


def _varint(buf: bytes, pos: int) -> tuple[int, int] | None:
    value = shift = 0
    while pos < len(buf) and shift < 64:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    return None


def _protobuf_fields(buf: bytes, max_fields: int = 32) -> list[tuple[int, int]] | None:
    """``(field, wire type)`` of the leading top-level protobuf fields, or None when the bytes are not protobuf."""
    pos, fields = 0, []
    while pos < len(buf) and len(fields) < max_fields:
        key = _varint(buf, pos)
        if key is None:
            break
        tag, pos = key
        number, wire = tag >> 3, tag & 7
        if number == 0 or wire not in (0, 1, 2, 5):
            return None
        if wire == 0:
            value = _varint(buf, pos)
            if value is None:
                break
            pos = value[1]
        elif wire == 2:
            length = _varint(buf, pos)
            if length is None:
                break
            pos = length[1] + length[0]
        else:
            pos += 8 if wire == 1 else 4
        fields.append((number, wire))
    return fields or None


def _looks_like(fields: list[tuple[int, int]], allowed: set[tuple[int, int]], first: tuple[int, int]) -> bool:
    return fields[0] == first and len(fields) >= 2 and all(f in allowed for f in fields)


def parse_npy_header(head: bytes, max_header: int = 65536) -> tuple[dict[str, Any], int]:
    """Read a ``.npy`` header without numpy (``ast.literal_eval`` of the header dict only; never ``np.load``).

    Returns:
        ``(header, data_offset)`` where header has ``descr``, ``fortran_order``, ``shape`` and ``has_object``
        (True when the dtype holds Python objects, i.e. the data is a pickle).

    Raises:
        ValueError: not a valid npy header (the message says why).
    """
    if not head.startswith(b"\x93NUMPY") or len(head) < 10:
        raise ValueError("not an npy file")
    major = head[6]
    if major == 1:
        (hlen,), start = struct.unpack("<H", head[8:10]), 10
    elif major in (2, 3) and len(head) >= 12:
        (hlen,), start = struct.unpack("<I", head[8:12]), 12
    else:
        raise ValueError(f"npy format version {major}.{head[7]} not supported")
    if hlen > max_header:
        raise ValueError(f"npy header of {hlen} bytes is larger than the {max_header}-byte cap")
    if start + hlen > len(head):
        raise ValueError(f"npy header of {hlen} bytes is truncated")
    raw = head[start : start + hlen].decode("utf-8" if major == 3 else "latin-1")
    try:
        header = ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        raise ValueError(f"npy header is not a Python literal: {exc}") from None
    if not isinstance(header, dict) or not {"descr", "fortran_order", "shape"} <= set(header):
        raise ValueError("npy header lacks descr, fortran_order or shape")
    header["has_object"] = _descr_has_object(header["descr"])
    return header, start + hlen


def _descr_has_object(descr: Any, depth: int = 0) -> bool:
    if depth > 32:
        return True
    if isinstance(descr, str):
        return bool(_OBJECT_DESCR.match(descr))
    if isinstance(descr, list | tuple):
        return any(_descr_has_object(part, depth + 1) for part in descr)
    return False
