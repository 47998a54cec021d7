"""Recognising model artefacts by their bytes: magic numbers, structural checks, and what a file name claims.

:func:`sniff` looks at the first bytes of a file (or archive member) only; archives, pickles, GGUF headers and numpy
headers are examined further by their own modules. Nothing is loaded with the format's own library.
"""

from __future__ import annotations

import json
import lzma
import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from workbench.model.npy_header import parse_npy_header
from workbench.model.pickles import probe_pickle
from workbench.model.sniff_pickle import PickleHead, pickle_head

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
PICKLE_KINDS = {"pickle", "pytorch_zip", "pytorch_legacy", "pytorch_legacy_tar", "torchscript", "joblib",
                "compressed_pickle"}  # fmt: skip
#: kinds that are code
CODE_KINDS = {
    "python": "Python source",
    "python_bytecode": "Python bytecode",
    "shared_library": "shared library or executable",
    "script": "script with an interpreter line (#!)",
}
#: names under which a pickle is expected (elsewhere a pickle is in disguise); ``.debug_pkl`` only inside TorchScript
PICKLE_EXTENSIONS = {
    ".pkl", ".pickle", ".pt", ".pth", ".bin", ".ckpt", ".joblib", ".dat", ".data", ".npy", ".npz", ".pkl.gz", ".jbl",
    ".mar", ".7z", ".zip", ".tar", ".ptl", ".pt2", ".tgz",
}  # fmt: skip
#: compression suffixes looked through when judging a name (``model.pkl.gz`` says pickle)
COMPRESSION_SUFFIXES = {".gz", ".gzip", ".bz2", ".xz", ".lzma", ".z", ".zlib", ".zst", ".lz4"}
TORCH_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_EXT_KIND = {
    ".safetensors": "safetensors",
    ".pt": "pytorch",
    ".pth": "pytorch",
    ".ptl": "pytorch",  # PyTorch Lite (TorchScript for mobile)
    ".pt2": "pytorch",  # torch.export archive
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
    "pytorch": {"pytorch_zip", "pytorch_legacy", "pytorch_legacy_tar", "torchscript", "pickle", "7z", "zip"},
    "pickle": {"pickle", "pytorch_legacy", "joblib", "compressed_pickle"},
    "joblib": {"pickle", "joblib", "compressed_pickle"},
    "npz": {"npz", "zip"},
    "hdf5": {"hdf5"},
    "json": {"json", "config", "tokenizer"},
    "python": {"python", "text"},
    "sentencepiece": {"tokenizer"},
    "text": {"text", "tokenizer", "python", "empty"},
    "zip": {"zip", "pytorch_zip", "torchscript", "npz", "keras"},
    "tar": {"tar", "pytorch_legacy_tar"},
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

    When the bytes could also begin a pickle (a head that walks as pickle opcodes, :mod:`workbench.model.sniff_pickle`)
    but another signature matched, or the head cannot settle it (an argument runs past the sniff budget), the kind
    found is kept and ``details["also_pickle"]`` is set: the inventory then analyses the file as a pickle as well and
    decides. ``details["structure"]`` then says whether the other signature's own structure holds (``valid``,
    ``invalid``, ``unverified``).

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
    walk = pickle_head(head, size)
    signed = _signature(head, size)
    if signed is not None:
        if walk is not None and (walk.is_pickle or walk.is_candidate):
            signed.details.update(also_pickle=True, structure=_structure(signed.kind, head))
        return signed
    whole = len(head) >= size
    if head[0] == 0x80 and len(head) > 1 and head[1] <= 5 and _is_pickle(head, whole, walk):
        return Sniffed("pytorch_legacy" if _is_torch_magic(head) else "pickle", {"protocol": head[1]})
    if head[:1] in (b"{", b"[") or head.lstrip()[:1] in (b"{", b"["):
        return _json_kind(head, base, size)
    if (fields := _protobuf_fields(head)) and _looks_like(fields, _ONNX_FIELDS, (1, 0)):
        return Sniffed("onnx")
    if fields and _looks_like(fields, _SPM_FIELDS, (1, 2)) and base.endswith(".model"):
        return Sniffed("tokenizer", {"format": "sentencepiece"})
    if (ops := probe_pickle(head, whole_file=whole)) is not None or (walk is not None and walk.is_pickle):
        return Sniffed("pickle", {"protocol": 0, "probe_opcodes": ops if ops is not None else walk.opcodes})
    sniffed = _text_kind(head, base)
    if walk is not None and walk.is_candidate:
        sniffed.details["also_pickle"] = True
    return sniffed


def _signature(head: bytes, size: int) -> Sniffed | None:
    """The kind a magic number or a fixed structure gives (archives, executables, images, safetensors ...)."""
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
    return None


def _is_pickle(head: bytes, whole: bool, walk: PickleHead | None) -> bool:
    return (walk is not None and walk.is_pickle) or probe_pickle(head, whole_file=whole) is not None


def _structure(kind: str, head: bytes) -> str:
    """Whether the signature that matched is backed by its format's structure, for a head that is also a pickle:
    ``valid``, ``invalid`` (the signature is all there is: the file is what the pickle reading finds) or
    ``unverified``."""
    checks = {
        "safetensors": _safetensors_json,
        "shared_library": _pe_signature,
        "gguf": lambda h: None if len(h) < 8 else 1 <= struct.unpack_from("<I", h, 4)[0] <= 3,
        "image": _image_structure,
    }
    check = checks.get(kind)
    verdict = check(head) if check else None
    return "unverified" if verdict is None else "valid" if verdict else "invalid"


def _safetensors_json(head: bytes) -> bool | None:
    (n,) = struct.unpack("<Q", head[:8])
    if 8 + n > len(head):
        return None
    try:
        return isinstance(json.loads(head[8 : 8 + n].decode("utf-8")), dict)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False


def _pe_signature(head: bytes) -> bool | None:
    if head[:2] != b"MZ":
        return None  # ELF and Mach-O magics are not pickle opcodes: a pickle cannot start like them
    (at,) = struct.unpack_from("<I", head, 0x3C)
    return None if at + 4 > len(head) else head[at : at + 4] == b"PE\0\0"


def _image_structure(head: bytes) -> bool:
    if head.startswith(b"\x89PNG"):
        return head[12:16] == b"IHDR"
    if head.startswith(b"GIF8"):
        return head[:6] in (b"GIF87a", b"GIF89a")
    return True


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
    """``zlib``, ``joblib_zf`` or ``lzma`` (alone format) when the head has the header and its first bytes really
    inflate.

    Both headers are short and could begin other data (``x^`` is text), so the head must decompress as well.
    """
    if head.startswith(b"ZF0x") and head[21:23] in _ZLIB_HEADERS and _raw_compression(head[21:]) == "zlib":
        return "joblib_zf"  # joblib's own zlib container (joblib before 0.10)
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
