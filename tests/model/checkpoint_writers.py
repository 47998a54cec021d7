"""Writers of PyTorch and GGUF checkpoints for the tests, without torch or the gguf package.

The pickles are written opcode by opcode (protocol 2), exactly as ``torch.save`` lays them out: an
``collections.OrderedDict`` state dict whose values are ``torch._utils._rebuild_tensor_v2(persistent_id(('storage',
torch.FloatStorage, key, 'cpu', numel)), offset, size, stride, False, OrderedDict())``, optionally wrapped in
``_rebuild_parameter`` or held by module objects (``_parameters`` / ``_modules``). Three layouts: the zip format
(``archive/data.pkl`` + ``archive/data/<key>``, stored), the legacy stacked format (magic number, protocol, system
information, the object, the storage keys, then each storage as an 8-byte count and its bytes) and the legacy tar
format (``storages``, ``tensors``, ``pickle`` members). GGUF v3: header, metadata, tensor infos, aligned data.
"""

from __future__ import annotations

import io
import pickle
import struct
import tarfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

STORAGE = {"float32": "FloatStorage", "float16": "HalfStorage", "float64": "DoubleStorage", "int64": "LongStorage",
           "int32": "IntStorage", "int8": "CharStorage", "uint8": "ByteStorage", "bool": "BoolStorage"}  # fmt: skip
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class Ops:
    """A protocol-2 pickle written opcode by opcode."""

    def __init__(self) -> None:
        self.b = bytearray(b"\x80\x02")

    def glob(self, module: str, name: str) -> Ops:
        self.b += b"c" + f"{module}\n{name}\n".encode()
        return self

    def str(self, text: str) -> Ops:
        raw = text.encode()
        self.b += b"X" + struct.pack("<I", len(raw)) + raw
        return self

    def int(self, value: int) -> Ops:
        if 0 <= value < 256:
            self.b += b"K" + bytes([value])
        elif -(2**31) <= value < 2**31:
            self.b += b"J" + struct.pack("<i", value)
        else:
            raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
            self.b += b"\x8a" + bytes([len(raw)]) + raw
        return self

    def op(self, code: bytes) -> Ops:
        self.b += code
        return self

    def ints(self, values: Iterable[int]) -> Ops:
        self.op(b"(")
        for v in values:
            self.int(v)
        return self.op(b"t")

    def ordered_dict(self) -> Ops:
        return self.glob("collections", "OrderedDict").op(b")R")

    def done(self) -> bytes:
        return bytes(self.b + b".")


def _contiguous(shape: tuple[int, ...]) -> tuple[int, ...]:
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return tuple(reversed(out))


class Tensor:
    """What to write for one tensor: its storage key and array, and the view (offset, shape, stride) into it."""

    def __init__(self, key: str, storage: np.ndarray, shape: tuple[int, ...], offset: int = 0,
                 stride: tuple[int, ...] | None = None, parameter: bool = False, v3: bool = False) -> None:  # fmt: skip
        self.key, self.storage, self.shape, self.offset = key, storage.ravel(), shape, offset
        self.stride = stride if stride is not None else _contiguous(shape)
        self.parameter = parameter
        #: written as torch 2 writes dtypes without a storage class: _rebuild_tensor_v3 on an UntypedStorage
        self.v3 = v3


def _tensor(p: Ops, t: Tensor, legacy: bool) -> None:
    if t.parameter:
        p.glob("torch._utils", "_rebuild_parameter").op(b"(")
    p.glob("torch._utils", "_rebuild_tensor_v3" if t.v3 else "_rebuild_tensor_v2").op(b"(")
    storage = "UntypedStorage" if t.v3 else STORAGE[str(t.storage.dtype)]
    p.op(b"(").str("storage").glob("torch", storage).str(t.key).str("cpu")
    p.int(t.storage.nbytes if t.v3 else t.storage.size).op(b"N" if legacy else b"").op(b"tQ")
    p.int(t.offset).ints(t.shape).ints(t.stride).op(b"\x89").ordered_dict()
    if t.v3:
        p.glob("torch", str(t.storage.dtype))
    p.op(b"tR")
    if t.parameter:
        p.op(b"\x88").ordered_dict().op(b"tR")


def state_dict_pickle(tensors: dict[str, Tensor], *, legacy: bool = False, module: bool = False) -> bytes:
    """The pickle of an ``OrderedDict`` state dict (with ``_metadata`` set by BUILD), or, with ``module``, of a
    module object ``net.Net`` whose ``_modules`` hold one ``nn.Linear``-like object per dotted prefix."""
    p = Ops()
    if not module:
        p.ordered_dict().op(b"(")
        for name, t in tensors.items():
            p.str(name)
            _tensor(p, t, legacy)
        p.op(b"u").op(b"}").str("_metadata").ordered_dict().op(b"sb")
        return p.done()
    groups: dict[str, dict[str, Tensor]] = {}
    for name, t in tensors.items():
        head, _, leaf = name.rpartition(".")
        groups.setdefault(head, {})[leaf] = t
    p.glob("net", "Net").op(b")\x81").op(b"}(").str("training").op(b"\x88").str("_modules").ordered_dict().op(b"(")
    for head, leaves in groups.items():
        p.str(head).glob("torch.nn.modules.linear", "Linear").op(b")\x81").op(b"}(").str("_parameters")
        p.ordered_dict().op(b"(")
        for leaf, t in leaves.items():
            p.str(leaf)
            _tensor(p, t, legacy)
        p.op(b"u").str("_modules").ordered_dict().op(b"ub")
    return p.op(b"u").op(b"ub").done()


def _value(p: Ops, value: Any) -> None:
    """Write ``value`` as ``torch.save`` would: dicts (``OrderedDict`` for an ``ordered`` wrapper), lists, scalars,
    strings and :class:`Tensor` s."""
    if isinstance(value, Tensor):
        _tensor(p, value, False)
    elif isinstance(value, Ordered):
        p.ordered_dict().op(b"(")
        for k, v in value.items.items():
            _value(p, k)
            _value(p, v)
        p.op(b"u")
    elif isinstance(value, dict):
        p.op(b"}(")
        for k, v in value.items():
            _value(p, k)
            _value(p, v)
        p.op(b"u")
    elif isinstance(value, list):
        p.op(b"](")
        for v in value:
            _value(p, v)
        p.op(b"e")
    elif isinstance(value, bool) or value is None:
        p.op({True: b"\x88", False: b"\x89", None: b"N"}[value])
    elif isinstance(value, int):
        p.int(value)
    elif isinstance(value, float):
        p.op(b"G" + struct.pack(">d", value))
    else:
        p.str(str(value))


class Ordered:
    """An ``OrderedDict`` for :func:`pickle_of`."""

    def __init__(self, items: dict[Any, Any]) -> None:
        self.items = items


def pickle_of(value: Any) -> bytes:
    """The pickle of a nested structure of dicts, lists, scalars and tensors (see :func:`_value`)."""
    p = Ops()
    _value(p, value)
    return p.done()


def lightning(model: dict[str, Tensor], moments: dict[str, Tensor], *, epoch: int = 3) -> Any:
    """A PyTorch Lightning checkpoint's top level: ``state_dict`` (``model``), ``optimizer_states`` with an Adam
    state per parameter (``moments``: ``<index>.exp_avg`` / ``<index>.exp_avg_sq`` -> tensor), ``lr_schedulers``,
    ``callbacks``, ``loops`` and the bookkeeping keys."""
    state: dict[int, dict[str, Any]] = {}
    for key, t in moments.items():
        index, slot = key.split(".", 1)
        state.setdefault(int(index), {"step": 10.0})[slot] = t
    groups = [{"lr": 0.001, "betas": [0.9, 0.999], "eps": 1e-08, "params": list(range(len(model)))}]
    return {"epoch": epoch, "global_step": 120, "pytorch-lightning_version": "2.1.3", "state_dict": Ordered(model),
            "loops": {"fit_loop": {"epoch_progress": {"current": {"completed": epoch}}}},
            "callbacks": {"ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min'}": {"best_model_score": None}},
            "optimizer_states": [{"state": state, "param_groups": groups}],
            "lr_schedulers": [{"last_epoch": epoch, "_step_count": epoch + 1}],
            "hparams_name": "kwargs", "hyper_parameters": {"hidden": 48, "lr": 0.001}}  # fmt: skip


def simple(arrays: dict[str, np.ndarray], parameter: bool = False) -> dict[str, Tensor]:
    """One storage per array, keys ``0``, ``1``..., contiguous views."""
    return {n: Tensor(str(i), a, a.shape, parameter=parameter) for i, (n, a) in enumerate(arrays.items())}


def _storages(tensors: dict[str, Tensor]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for t in tensors.values():
        out.setdefault(t.key, t.storage)
    return out


def write_torch_zip(path: Path, tensors: dict[str, Tensor], *, module: bool = False, compress_key: str | None = None,
                    big_endian: bool = False, name: str = "archive", top: Any = None) -> Path:  # fmt: skip
    """A ``torch.save`` zip checkpoint (of ``top``, a structure for :func:`pickle_of` holding ``tensors``, when given;
    else of the state dict ``tensors``)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        data = pickle_of(top) if top is not None else state_dict_pickle(tensors, module=module)
        zf.writestr(zipfile.ZipInfo(f"{name}/data.pkl"), data)  # fixed dates: the same bytes each time
        zf.writestr(zipfile.ZipInfo(f"{name}/byteorder"), "big" if big_endian else "little")
        for key, arr in _storages(tensors).items():
            data = arr.astype(arr.dtype.newbyteorder(">")).tobytes() if big_endian else arr.tobytes()
            method = zipfile.ZIP_DEFLATED if key == compress_key else zipfile.ZIP_STORED
            zf.writestr(zipfile.ZipInfo(f"{name}/data/{key}"), data, compress_type=method)
        zf.writestr(zipfile.ZipInfo(f"{name}/version"), "3\n")
    return path


def write_torch_legacy(path: Path, tensors: dict[str, Tensor]) -> Path:
    """A legacy stacked checkpoint (``_use_new_zipfile_serialization=False``)."""
    storages = _storages(tensors)
    with path.open("wb") as fh:
        fh.write(pickle.dumps(LEGACY_MAGIC, protocol=2))
        fh.write(pickle.dumps(1001, protocol=2))
        fh.write(pickle.dumps({"protocol_version": 1001, "little_endian": True,
                               "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2))  # fmt: skip
        fh.write(state_dict_pickle(tensors, legacy=True))
        fh.write(pickle.dumps(list(storages), protocol=2))
        for arr in storages.values():
            fh.write(struct.pack("<q", arr.size) + arr.tobytes())
    return path


def write_torch_tar(path: Path, tensors: dict[str, Tensor]) -> Path:
    """A legacy tar checkpoint (PyTorch before 0.4): ``sys_info``, ``pickle``, ``storages``, ``tensors``."""
    storages = _storages(tensors)
    st = bytearray(pickle.dumps(len(storages), protocol=2))
    for key, arr in storages.items():
        st += Ops().op(b"(").str(key).str("cpu").glob("torch", STORAGE[str(arr.dtype)]).op(b"t").done()
        st += struct.pack("<q", arr.size) + arr.tobytes()
    st += pickle.dumps([], protocol=2)
    tn = bytearray(pickle.dumps(len(tensors), protocol=2))
    p = Ops().ordered_dict().op(b"(")
    for i, (name, t) in enumerate(tensors.items()):
        tkey = f"t{i}"
        tensor_type = STORAGE[str(t.storage.dtype)].replace("Storage", "Tensor")
        tn += Ops().op(b"(").str(tkey).str(t.key).glob("torch", tensor_type).op(b"t").done()
        tn += struct.pack("<ii", len(t.shape), 0) + struct.pack(f"<{len(t.shape)}q", *t.shape)
        tn += struct.pack(f"<{len(t.shape)}q", *t.stride) + struct.pack("<q", t.offset)
        p.str(name).str(tkey).op(b"Q")
    members = {"sys_info": pickle.dumps({"little_endian": True}, protocol=2), "pickle": p.op(b"u").done(),
               "storages": bytes(st), "tensors": bytes(tn)}  # fmt: skip
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


# --- GGUF -------------------------------------------------------------------------------------------------------------

GGML = {"F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q8_0": (8, 32, 34), "Q4_K": (12, 256, 144)}


def _gstr(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def quantize_q8_0(values: np.ndarray) -> np.ndarray:
    """Q8_0 blocks ``(rows, blocks, 34)`` of a float matrix: per 32 elements an f16 scale and 32 int8."""
    rows, cols = values.shape
    blocks = values.reshape(rows, cols // 32, 32).astype(np.float64)
    scale = np.abs(blocks).max(axis=2, keepdims=True) / 127
    scale[scale == 0] = 1
    d = scale.astype(np.float16)
    q = np.clip(np.round(blocks / d.astype(np.float64)), -127, 127).astype(np.int8)
    return np.concatenate([d.view(np.uint8), q.view(np.uint8)], axis=2)


def write_gguf(path: Path, tensors: dict[str, tuple[str, tuple[int, ...], bytes]], *, alignment: int = 32,
               metadata: dict[str, Any] | None = None) -> Path:  # fmt: skip
    """GGUF v3: ``tensors`` maps name -> (GGML type, shape rows first, raw bytes)."""
    kv = bytearray()
    meta = {"general.architecture": "llama", **(metadata or {})}
    if alignment != 32:
        meta["general.alignment"] = alignment
    for key, value in meta.items():
        kv += _gstr(key)
        if isinstance(value, int):
            kv += struct.pack("<II", 4, value)
        else:
            kv += struct.pack("<I", 8) + _gstr(str(value))
    infos = bytearray()
    data = bytearray()
    for name, (gtype, shape, raw) in tensors.items():
        code, _, _ = GGML[gtype]
        data += b"\0" * (-len(data) % alignment)
        dims = tuple(reversed(shape))
        infos += _gstr(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
        infos += struct.pack("<IQ", code, len(data))
        data += raw
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta)) + bytes(kv) + bytes(infos)
    head += b"\0" * (-len(head) % alignment)
    path.write_bytes(head + bytes(data))
    return path
