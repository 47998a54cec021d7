"""PyTorch checkpoints as tensor sources: the zip format, the legacy stacked format and the legacy tar format.

Nothing is unpickled: :mod:`workbench.model.torch_pickle` follows the pickle's opcodes and names every tensor by its
path of keys; this module maps each tensor's storage to its bytes in the file, so that
:mod:`workbench.model.tensors` reads them through memory-mapped windows like any other format.

* **zip** (``torch.save`` since 1.6): ``<archive>/data.pkl`` is the pickle, each storage is the member
  ``<archive>/data/<key>``, stored (uncompressed) and read in place by its offset in the zip; ``<archive>/byteorder``
  says ``big`` for a checkpoint saved on a big-endian machine. A compressed member (a checkpoint re-zipped by hand)
  is inflated, at most to its declared size and within :data:`MAX_INFLATED_BYTES` per checkpoint, into a private
  temporary file (``FileTensors.scratch``) read like the others; past the cap its tensors are ``unexamined``.
* **legacy stacked** (``_use_new_zipfile_serialization=False``): four pickles (magic number, protocol and system
  information, the object, the list of storage keys), then each storage as an 8-byte element count and its bytes, in
  the order of that list.
* **legacy tar** (PyTorch before 0.4): members ``storages`` (storage records then their bytes), ``tensors`` (each
  tensor's storage, size, stride and offset in binary) and ``pickle`` (the object, tensors as persistent ids).

Every storage and tensor extent is checked against the bytes that hold it; what cannot be located is listed in
``unexamined`` with the reason. Dtypes come from the storage class (``torch.FloatStorage``...) or, for
``_rebuild_tensor_v3``, from its dtype argument.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO

from workbench import safeio
from workbench.model import torch_pickle as tp
from workbench.model.archives import ZipMember, list_zip, open_member, window
from workbench.model.limits import ScanLimits
from workbench.model.streams import BoundedReader
from workbench.model.tar_listing import TarMember, list_tar
from workbench.model.tensor_io import KINDS, FileTensors, TensorSource
from workbench.model.torch_names import MAX_TENSORS, Named, name_tensors
from workbench.records import EvidenceWarning

__all__ = ["LEGACY_MAGIC", "STORAGE_DTYPES", "TORCH_DTYPES", "is_legacy_stacked", "member_digests", "read_torch"]

#: the legacy format's magic number (the first pickle of the file)
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
#: its pickled form (protocol 2, LONG1 of 10 bytes): how a stacked legacy checkpoint starts
_MAGIC_BYTES = b"\x80\x02\x8a\x0a" + LEGACY_MAGIC.to_bytes(10, "little")
#: storage class -> dtype (safetensors names)
STORAGE_DTYPES = {
    "torch.FloatStorage": "F32", "torch.DoubleStorage": "F64", "torch.HalfStorage": "F16",
    "torch.BFloat16Storage": "BF16", "torch.LongStorage": "I64", "torch.IntStorage": "I32",
    "torch.ShortStorage": "I16", "torch.CharStorage": "I8", "torch.ByteStorage": "U8", "torch.BoolStorage": "BOOL",
}  # fmt: skip
#: torch dtype name (``_rebuild_tensor_v3``'s argument) -> dtype
TORCH_DTYPES = {
    "float32": "F32", "float": "F32", "float64": "F64", "double": "F64", "float16": "F16", "half": "F16",
    "bfloat16": "BF16", "int64": "I64", "long": "I64", "int32": "I32", "int": "I32", "int16": "I16", "short": "I16",
    "int8": "I8", "uint8": "U8", "bool": "BOOL", "uint16": "U16", "uint32": "U32", "uint64": "U64",
    "float8_e5m2": "F8_E5M2", "float8_e4m3fn": "F8_E4M3",
}  # fmt: skip
_UNTYPED = "torch.UntypedStorage"
#: zip members listed per checkpoint (a storage per member)
MAX_MEMBERS = 200_000
#: bytes of compressed storage members inflated per checkpoint (into private temporary files)
MAX_INFLATED_BYTES = 2048 * 1024 * 1024
_INFLATE_CHUNK = 1024 * 1024
#: bytes of the small pickles and records of the legacy formats read per stream
_SMALL = 64 * 1024 * 1024
#: bytes of the members other than storages (TorchScript code, constants, extra files) hashed per checkpoint
MAX_MEMBER_DIGEST_BYTES = 256 * 1024 * 1024
#: members not hashed: the pickle (its tensors are compared), the storages, and what every save writes anew
_NOT_HASHED = {"data.pkl", ".data/serialization_id", ".format_version", ".storage_alignment", "version", "byteorder"}


def is_legacy_stacked(head: bytes) -> bool:
    """The file starts with the legacy format's magic-number pickle."""
    return head.startswith(_MAGIC_BYTES)


def read_torch(path: Path, display: str, kind: str) -> FileTensors:
    """The tensors of a PyTorch checkpoint (``kind``: ``zip``, ``legacy`` or ``tar``), located without unpickling.

    Returns:
        A :class:`FileTensors` whose ``format`` is ``pytorch-zip``, ``pytorch-legacy`` or ``pytorch-tar``; a file
        that cannot be followed has no tensors and says why in ``unexamined``.
    """
    out = FileTensors(path, display, f"pytorch-{kind}")
    try:
        with safeio.open_evidence(path) as fh:
            size = path.stat().st_size
            {"zip": _zip, "legacy": _stacked, "tar": _tar}[kind](fh, size, out)
    except (OSError, ValueError, struct.error) as exc:
        out.not_compared("checkpoint", str(exc) or type(exc).__name__)
    return out


# --- zip ------------------------------------------------------------------------------------------------------------


def _zip(fh: BinaryIO, size: int, out: FileTensors) -> None:
    listing = list_zip(fh, ScanLimits(max_members=MAX_MEMBERS))
    if not listing.members:
        raise ValueError("zip central directory unreadable")
    names = {m.name: m for m in listing.members}
    pkl = [m for m in listing.members if m.name.endswith("/data.pkl") and m.name.count("/") == 1]
    if not pkl:
        raise ValueError("no <archive>/data.pkl member")
    if len(pkl) > 1 or len(listing.members) >= MAX_MEMBERS:
        out.limits.append(f"{out.display}: {len(pkl)} data.pkl members or {len(listing.members)} members listed; "
                          f"the first data.pkl ({pkl[0].name}) is read")  # fmt: skip
    prefix = pkl[0].name.rsplit("/", 1)[0]
    stream, _ = open_member(fh, pkl[0])
    walked = tp.walk(stream, pkl[0].size)
    big = False
    order = names.get(f"{prefix}/byteorder")
    if order is not None and order.size <= 16:
        stream, _ = open_member(fh, order)
        big = stream.read(16).strip() == b"big"
    named = _named(walked, out)
    bombs = {a.member for a in listing.anomalies if a.kind == "decompression_bomb"}
    inflated: dict[str, tuple[Path, int, int] | str] = {}

    def locate(ref: tp.StorageRef) -> tuple[Path, int, int] | str:
        member = names.get(f"{prefix}/data/{ref.key}")
        if member is None:
            return f"storage member {prefix}/data/{ref.key} missing"
        if member.encrypted or member.data_offset is None:
            return f"storage member {member.name} is encrypted or its local header unreadable"
        if member.method != zipfile.ZIP_STORED:
            if member.name in bombs or not listing.readable:
                return f"storage member {member.name} is a decompression bomb: not inflated"
            if member.name not in inflated:
                inflated[member.name] = _inflate(fh, member, out)
            return inflated[member.name]
        if member.data_offset + member.size > size:
            return f"storage member {member.name} runs past the end of the file"
        return out.path, member.data_offset, member.size

    _sources(named, out, locate, big, f"{prefix}/data/")


def _inflate(fh: BinaryIO, member: ZipMember, out: FileTensors) -> tuple[Path, int, int] | str:
    """Inflate a compressed storage member into a private temporary file (within the checkpoint's budget)."""
    spent = sum(p.stat().st_size for p in out.scratch)
    if spent + member.size > MAX_INFLATED_BYTES:
        return (f"storage member {member.name} is compressed and would take the inflated bytes past the "
                f"{MAX_INFLATED_BYTES}-byte cap: not inflated")  # fmt: skip
    fd, name = tempfile.mkstemp(prefix="wb-inflated-", suffix=".bin")
    path = Path(name)
    out.scratch.append(path)
    try:
        stream, raw = open_member(fh, member)
        total = 0
        with os.fdopen(fd, "wb") as dest:
            while chunk := stream.read(_INFLATE_CHUNK):
                dest.write(chunk)
                total += len(chunk)
    except (OSError, ValueError, zlib.error, EOFError) as exc:
        return f"storage member {member.name} cannot be inflated: {exc}"
    if getattr(raw, "overflow", False) or total != member.size:
        return f"storage member {member.name} inflates to other than its declared {member.size} bytes: not compared"
    out.limits.append(f"{out.display}: {member.name} is compressed (method {member.method}); inflated to "
                      f"{member.size} bytes in a temporary file to be compared")  # fmt: skip
    return path, 0, member.size


def member_digests(path: Path) -> tuple[dict[str, str], str | None]:
    """SHA-256 of each member of a PyTorch zip checkpoint outside its storages and ``data.pkl`` (TorchScript
    ``code/`` and ``constants.pkl``, ``extra/`` files...), by name below the archive folder; with the reason when not
    every such member could be hashed (cap :data:`MAX_MEMBER_DIGEST_BYTES`, unreadable member), else None."""
    out: dict[str, str] = {}
    spent = 0
    try:
        with safeio.open_evidence(path) as fh:
            listing = list_zip(fh, ScanLimits(max_members=MAX_MEMBERS))
            pkl = [m for m in listing.members if m.name.endswith("/data.pkl") and m.name.count("/") == 1]
            if not pkl:
                return out, "no <archive>/data.pkl member"
            prefix = pkl[0].name.rsplit("/", 1)[0] + "/"
            for member in listing.members:
                rel = member.name.removeprefix(prefix)
                if rel in _NOT_HASHED or rel.startswith("data/") or member.name.endswith("/"):
                    continue
                if member.encrypted or spent + member.size > MAX_MEMBER_DIGEST_BYTES:
                    return out, f"member {member.name} encrypted or past the {MAX_MEMBER_DIGEST_BYTES}-byte cap"
                stream, _ = open_member(fh, member)
                digest = hashlib.sha256()
                while chunk := stream.read(min(_INFLATE_CHUNK, member.size + 1)):
                    spent += len(chunk)
                    if spent > MAX_MEMBER_DIGEST_BYTES:
                        return out, f"member {member.name} inflates past the {MAX_MEMBER_DIGEST_BYTES}-byte cap"
                    digest.update(chunk)
                out[rel] = digest.hexdigest()
    except (OSError, ValueError, zlib.error, EOFError) as exc:
        return out, str(exc) or type(exc).__name__
    return out, None


# --- legacy stacked -------------------------------------------------------------------------------------------------


def _stacked(fh: BinaryIO, size: int, out: FileTensors) -> None:
    reader = BoundedReader(fh, limit=size, max_line=tp.MAX_ARG, skip_threshold=tp.MAX_ARG, size=size)
    magic = tp.read_stream(reader).result
    if magic != LEGACY_MAGIC:
        raise ValueError("not a legacy PyTorch checkpoint (magic number missing)")
    tp.read_stream(reader)  # protocol version
    info = tp.read_stream(reader).result
    little = info.items.get("little_endian", True) if isinstance(info, tp.DictNode) else True
    walked = tp.read_stream(reader)
    keys = tp.read_stream(reader).result
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ValueError("the storage key list is not a list of strings")
    named = _named(walked, out)
    pos = reader.tell()
    where: dict[str, tuple[Path, int, int] | str] = {}
    for key in keys:
        ref = walked.storages.get(key)
        esize = _element_size(ref) if ref is not None else None
        if esize is None or pos + 8 > size:
            where[key] = "storage of an unknown element type, or the file ends in its record"
            break  # the following offsets depend on this storage's size
        fh.seek(pos)
        (count,) = struct.unpack("<q" if little else ">q", fh.read(8))
        if count < 0 or pos + 8 + count * esize > size:
            where[key] = f"storage {key} declares {count} elements past the end of the file"
            break
        where[key] = (out.path, pos + 8, count * esize)
        pos += 8 + count * esize
    _sources(named, out, lambda ref: where.get(ref.key, f"storage {ref.key} not in the storage list"), not little, "")


# --- legacy tar -----------------------------------------------------------------------------------------------------


def _tar(fh: BinaryIO, size: int, out: FileTensors) -> None:
    listing = list_tar(fh, ScanLimits())
    members = {m.name: m for m in listing.members}
    if not {"storages", "tensors", "pickle"} <= set(members):
        raise ValueError("legacy tar checkpoint without its storages, tensors and pickle members")
    storages = _tar_storages(fh, members["storages"])
    tensors = _tar_tensors(fh, members["tensors"], storages)
    pickle = members["pickle"]
    walked = tp.walk(window(fh, pickle.data_offset, pickle.size), pickle.size)  # type: ignore[arg-type]
    named = _named(walked, out)
    for name, pid in named.persistent:
        key = pid.pid if isinstance(pid, tp.PidRef) else None
        found = tensors.get(str(key)) if isinstance(key, str | int) and not isinstance(key, bool) else None
        if found is None:
            out.not_compared(f"object {name or '<root>'}", "a persistent id that names no tensor of the archive")
        else:
            named.tensors.append((name, found))
    named.persistent.clear()
    located = {key: (out.path, start, n) for key, (_label, start, n) in storages.items()}
    _sources(named, out, lambda ref: located.get(ref.key, f"storage {ref.key} missing"), False, "storages:")


def _records(raw: Any, size: int) -> Any:
    """One small pickle read from ``raw``'s position (a member window), by the opcode walk."""
    reader = BoundedReader(raw, limit=min(size, _SMALL), max_line=tp.MAX_ARG, skip_threshold=tp.MAX_ARG)
    return tp.read_stream(reader).result


def _tar_storages(fh: BinaryIO, member: TarMember) -> dict[str, tuple[str, int, int]]:
    """Storage key -> (storage class, offset of its bytes in the archive, byte count)."""
    raw = window(fh, member.data_offset, member.size)
    out: dict[str, tuple[str, int, int]] = {}
    for _ in range(_count(_records(raw, member.size))):
        rec = _records(raw, member.size)
        if not (isinstance(rec, tuple) and len(rec) == 3):
            raise ValueError("storage record is not (key, location, storage type)")
        label = tp.label(rec[2])
        esize = _element_size(tp.StorageRef(label, str(rec[0]), str(rec[1]), None))
        pos = raw.tell()
        head = raw.read(8)
        if esize is None or head is None or len(head) != 8:
            raise ValueError(f"storage {rec[0]!r} of an unknown type ({label}) or truncated")
        (numel,) = struct.unpack("<q", head)
        if numel < 0 or pos + 8 + numel * esize > member.size:
            raise ValueError(f"storage {rec[0]!r} runs past its member")
        out[str(rec[0])] = (label, member.data_offset + pos + 8, numel * esize)
        raw.seek(pos + 8 + numel * esize)
    return out


def _tar_tensors(fh: BinaryIO, member: TarMember, storages: dict[str, tuple[str, int, int]]) -> dict[str, Any]:
    """Tensor key -> its record (storage, element offset, size, stride) from the ``tensors`` member."""
    raw = window(fh, member.data_offset, member.size)

    def take(n: int) -> bytes:
        data = raw.read(n) or b""
        if len(data) != n:
            raise ValueError("tensors member truncated")
        return data

    out: dict[str, tp.TensorRecord] = {}
    for _ in range(_count(_records(raw, member.size))):
        rec = _records(raw, member.size)
        if not (isinstance(rec, tuple) and len(rec) == 3):
            raise ValueError("tensor record is not (key, storage key, tensor type)")
        (ndim,) = struct.unpack("<i", take(4))
        take(4)
        if not 0 <= ndim <= 64:
            raise ValueError(f"tensor {rec[0]!r} declares {ndim} dimensions")
        shape = struct.unpack(f"<{ndim}q", take(8 * ndim))
        stride = struct.unpack(f"<{ndim}q", take(8 * ndim))
        (offset,) = struct.unpack("<q", take(8))
        storage = storages.get(str(rec[1]))
        if storage is not None:
            ref = tp.StorageRef(storage[0], str(rec[1]), "cpu", None)
            out[str(rec[0])] = tp.TensorRecord(ref, offset, shape, stride)
    return out


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_TENSORS:
        raise ValueError(f"record count {value!r} is not a count")
    return value


# --- shared ---------------------------------------------------------------------------------------------------------


def _named(walked: tp.Walk, out: FileTensors) -> Named:
    named = name_tensors(walked.result)
    out.warnings += [EvidenceWarning(out.display, None, p) for p in named.problems]
    for name, func in named.unsupported:
        out.not_compared(f"tensor {name}", f"rebuilt by {func}", name)
    return named


def _element_size(ref: tp.StorageRef) -> int | None:
    dtype = STORAGE_DTYPES.get(ref.storage_type)
    if ref.storage_type == _UNTYPED:
        return 1
    return KINDS[dtype].unit_bytes if dtype else None


def _dtype(rec: tp.TensorRecord) -> str | None:
    if rec.dtype is not None:
        return TORCH_DTYPES.get(rec.dtype)
    return STORAGE_DTYPES.get(rec.storage.storage_type)


def _contiguous(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, acc = [], 1
    for dim in reversed(shape):
        strides.append(acc)
        acc *= dim
    return tuple(reversed(strides))


def _sources(named: Named, out: FileTensors, locate: Any, big: bool, member_prefix: str) -> None:
    """Turn named tensor records into :class:`TensorSource` s (bounds checked); aliases of one region are noted."""
    seen: dict[tuple[Any, ...], str] = {}
    for name, rec in named.tensors:
        name = name or "<root>"
        dtype = _dtype(rec)
        if dtype is None:
            why = f"storage {rec.storage.storage_type} / dtype {rec.dtype} not read"
            out.not_compared(f"tensor {name}", why, name)
            continue
        where = locate(rec.storage)
        if isinstance(where, str):
            out.not_compared(f"tensor {name}", where, name)
            continue
        path, start, nbytes = where
        esize = KINDS[dtype].unit_bytes
        extent = sum((d - 1) * s for d, s in zip(rec.shape, rec.stride, strict=True)) if all(rec.shape) else -1
        if rec.offset < 0 or any(s < 0 for s in rec.stride) or (rec.offset + extent + 1) * esize > nbytes:
            out.not_compared(f"tensor {name}", f"its view (offset {rec.offset}, shape {list(rec.shape)}, stride "
                             f"{list(rec.stride)}) runs past its storage of {nbytes} bytes", name)  # fmt: skip
            continue
        strides = None if rec.stride == _contiguous(rec.shape) or len(rec.shape) == 0 else rec.stride
        region = (path, start, rec.offset, rec.shape, rec.stride, dtype)
        if region in seen:
            out.aliases[name] = seen[region]
        seen.setdefault(region, name)
        out.tensors.append(TensorSource(name, dtype, rec.shape, path, start + rec.offset * esize, out.display,
                                        strides, big and esize > 1, member_prefix + rec.storage.key))  # fmt: skip
    for name, pid in named.persistent:
        if not isinstance(pid, tp.PidRef) or out.format != "pytorch-tar":
            out.not_compared(f"object {name or '<root>'}", "a persistent id that is not a tensor")
