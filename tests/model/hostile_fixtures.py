"""Generator of hostile model artefacts for the scan tests: bytes crafted by hand, opcode by opcode.

Nothing here calls ``pickle.dumps`` on anything dangerous or ``pickle.loads`` on anything at all: every pickle is
assembled from opcodes (see ``pickletools``), so the payloads (``posix.system('echo pwned')`` ...) only ever exist
as bytes. Zips are written with :mod:`zipfile` and then patched (CRC, flags, names, sizes) where a fixture needs a
malformed archive. ``EXPECTED`` gives, per file of :func:`write_model_dir`, the kind the inventory must detect,
whether it is dangerous, and the worst import class of its pickles (None when it holds no pickle).

Run ``python tests/model/hostile_fixtures.py OUT_DIR`` to write the folder for manual inspection.
"""

from __future__ import annotations

import gzip
import io
import json
import struct
import sys
import zipfile
from pathlib import Path

# --------------------------------------------------------------------------------------------------- opcode helpers
PROTO = lambda n: b"\x80" + bytes([n])  # noqa: E731
MARK, STOP, POP, TUPLE, TUPLE1, TUPLE2, REDUCE = b"(", b".", b"0", b"t", b"\x85", b"\x86", b"R"
EMPTY_DICT, EMPTY_TUPLE, EMPTY_LIST, SETITEM, SETITEMS, LIST = b"}", b")", b"]", b"s", b"u", b"l"
MEMOIZE, STACK_GLOBAL, NEWOBJ, BINPERSID, NEWFALSE, OBJ = b"\x94", b"\x93", b"\x81", b"Q", b"\x89", b"o"


def uni(text: str) -> bytes:
    """BINUNICODE (protocol 1+)."""
    raw = text.encode("utf-8")
    return b"X" + struct.pack("<I", len(raw)) + raw


def short_uni(text: str) -> bytes:
    """SHORT_BINUNICODE (protocol 4)."""
    raw = text.encode("utf-8")
    return b"\x8c" + bytes([len(raw)]) + raw


def glob(module: str | bytes, name: str | bytes) -> bytes:
    """GLOBAL 'module name' (protocol 0+)."""
    m = module if isinstance(module, bytes) else module.encode()
    n = name if isinstance(name, bytes) else name.encode()
    return b"c" + m + b"\n" + n + b"\n"


def binint1(n: int) -> bytes:
    return b"K" + bytes([n])


def binput(i: int) -> bytes:
    return b"q" + bytes([i])


def binget(i: int) -> bytes:
    return b"h" + bytes([i])


# --------------------------------------------------------------------------------------------------- pickles
def global_reduce() -> bytes:
    """Protocol 2: ``posix.system('echo pwned')`` via GLOBAL + REDUCE (GLOBAL at offset 2, REDUCE at 32)."""
    return PROTO(2) + glob("posix", "system") + uni("echo pwned") + TUPLE1 + REDUCE + STOP


def memo_evasion() -> bytes:
    """Protocol 4: STACK_GLOBAL whose operands come from the memo, with a POP before MEMOIZE.

    The unpickler memoizes "os" (the top of the stack after the POP); a scanner that assumes MEMOIZE stores the
    previous opcode's argument memoizes nothing useful and cannot see ``os.system``.
    """
    return (
        PROTO(4)
        + short_uni("os")
        + short_uni("decoy")
        + POP
        + MEMOIZE
        + POP
        + short_uni("system")
        + MEMOIZE
        + POP
        + binget(0)
        + binget(1)
        + STACK_GLOBAL
        + short_uni("id")
        + TUPLE1
        + REDUCE
        + STOP
    )


def stack_global_without_proto() -> bytes:
    """STACK_GLOBAL with no PROTO opcode: ``builtins.eval('1+1')``."""
    return short_uni("builtins") + short_uni("eval") + STACK_GLOBAL + short_uni("1+1") + TUPLE1 + REDUCE + STOP


def inst_protocol0() -> bytes:
    """Protocol 0: INST instead of REDUCE: ``os.system('touch /tmp/pwned')``."""
    return MARK + b"S'touch /tmp/pwned'\n" + b"ios\nsystem\n" + STOP


def obj_protocol1() -> bytes:
    """Protocol 1: OBJ instead of REDUCE: ``subprocess.check_output(['ls', '-l'])``."""
    return MARK + glob("subprocess", "check_output") + MARK + uni("ls") + uni("-l") + LIST + OBJ + STOP


def invalid_utf8_global() -> bytes:
    """GLOBAL whose module line is not UTF-8 (``os\\xff``); the unpickler stops there, genops stops earlier."""
    return PROTO(2) + glob(b"os\xff", b"system") + uni("id") + TUPLE1 + REDUCE + STOP


def benign_dict() -> bytes:
    """Protocol 4 ``{'lr': 1}``: no import at all."""
    return PROTO(4) + EMPTY_DICT + short_uni("lr") + binint1(1) + SETITEM + STOP


def two_streams() -> bytes:
    """A benign stream followed by a malicious one (offsets: second stream starts at 11)."""
    return benign_dict() + global_reduce()


def garbage_after_stop() -> bytes:
    """A benign stream followed by bytes that are not a pickle."""
    return benign_dict() + b"\xde\xad\xbe\xef not a pickle"


def truncated() -> bytes:
    """A malicious stream cut off inside its string argument."""
    return global_reduce()[:20]


def unknown_class_newobj() -> bytes:
    """Protocol 2: ``__main__.Net.__new__()`` via NEWOBJ: a global on no list (default-deny: unknown)."""
    return PROTO(2) + glob("__main__", "Net") + EMPTY_TUPLE + NEWOBJ + STOP


def dunder_attribute() -> bytes:
    """Protocol 4: STACK_GLOBAL ``builtins.object.__subclasses__`` (a dotted name reaching a dunder)."""
    return (
        PROTO(4)
        + short_uni("builtins")
        + short_uni("object.__subclasses__")
        + STACK_GLOBAL
        + EMPTY_TUPLE
        + REDUCE
        + STOP
    )


def ext_opcode() -> bytes:
    """Protocol 2: EXT1 code 7 (resolved through the copyreg extension registry at load time)."""
    return PROTO(2) + b"\x82\x07" + EMPTY_TUPLE + REDUCE + STOP


def torch_state_dict_pickle() -> bytes:
    """What ``torch.save({'weight': tensor})`` writes as ``data.pkl`` (protocol 2), assembled by hand."""
    rebuild_args = (
        MARK
        + MARK
        + uni("storage")
        + glob("torch", "FloatStorage")
        + uni("0")
        + uni("cpu")
        + binint1(4)
        + TUPLE
        + BINPERSID
        + binint1(0)
        + binint1(2)
        + binint1(2)
        + TUPLE2
        + binint1(2)
        + binint1(1)
        + TUPLE2
        + NEWFALSE
        + glob("collections", "OrderedDict")
        + EMPTY_TUPLE
        + REDUCE
        + TUPLE
    )
    return (
        PROTO(2)
        + glob("collections", "OrderedDict")
        + EMPTY_TUPLE
        + REDUCE
        + uni("weight")
        + glob("torch._utils", "_rebuild_tensor_v2")
        + rebuild_args
        + REDUCE
        + SETITEM
        + STOP
    )


def legacy_torch() -> bytes:
    """Legacy ``torch.save`` layout: magic number, protocol version, sys info, the data, storage keys, raw storage."""
    magic = PROTO(2) + b"\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little") + STOP
    version = PROTO(2) + b"M\xe9\x03" + STOP  # BININT2 1001
    sys_info = PROTO(2) + EMPTY_DICT + uni("little_endian") + b"\x88" + SETITEM + STOP
    keys = PROTO(2) + EMPTY_LIST + uni("0") + b"a" + STOP
    storage = struct.pack("<q", 4) + struct.pack("<4f", 1.0, 2.0, 3.0, 4.0)
    return magic + version + sys_info + torch_state_dict_pickle() + keys + storage


# --------------------------------------------------------------------------------------------------- archives
def torch_zip(data_pkl: bytes, *, extra: dict[str, bytes] | None = None) -> bytes:
    """A PyTorch-style zip (stored members, like ``torch.save``) with the given ``archive/data.pkl``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", data_pkl)
        zf.writestr("archive/data/0", struct.pack("<4f", 1.0, 2.0, 3.0, 4.0))
        zf.writestr("archive/version", b"3\n")
        zf.writestr("archive/byteorder", b"little")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


def _patch(data: bytes, old: bytes, new: bytes, count: int = 1) -> bytes:
    assert data.count(old) >= count, (old, data.count(old))
    return data.replace(old, new, count)


def torch_zip_bad_crc() -> bytes:
    """The malicious data.pkl edited after zipping (``echo pwned`` -> ``echo pwnee``): the CRC no longer matches."""
    return _patch(torch_zip(global_reduce()), b"echo pwned", b"echo pwnee")


def torch_zip_encrypted_flag() -> bytes:
    """Encryption flag set on every member (local and central headers); the data is not encrypted at all."""
    data = bytearray(torch_zip(global_reduce()))
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (pos := data.find(sig, start)) >= 0:
            data[pos + flag_at] |= 0x01
            start = pos + 4
    return bytes(data)


def torch_zip_name_mismatch() -> bytes:
    """The local header of ``archive/data.pkl`` says ``archive/xata.pkl`` (the central directory is unchanged)."""
    return _patch(torch_zip(global_reduce()), b"archive/data.pkl", b"archive/xata.pkl", 1)


def torch_zip_hidden_member() -> bytes:
    """A benign data.pkl plus a protocol-0 pickle member without a pickle extension or PROTO magic."""
    return torch_zip(torch_state_dict_pickle(), extra={"archive/extra/payload": inst_protocol0()})


def zip_bomb(inflated: int = 4 * 1024 * 1024) -> bytes:
    """A deflated member of zeros with a compression ratio far above the cap."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", benign_dict())
        zf.writestr("archive/data/0", bytes(inflated))
    return buf.getvalue()


def zip_lying_size() -> bytes:
    """A deflated member that declares 16 bytes but inflates to 64 KiB (both headers patched)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("blob.bin", bytes(65536))
    data = bytearray(buf.getvalue())
    real = struct.pack("<I", 65536)
    for sig, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        pos = data.find(sig)
        assert data[pos + size_at : pos + size_at + 4] == real
        data[pos + size_at : pos + size_at + 4] = struct.pack("<I", 16)
    return bytes(data)


def npy_object() -> bytes:
    """A ``.npy`` with object dtype: the data after the header is a pickle (here a malicious one)."""
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin-1") + global_reduce()


def npy_float32() -> bytes:
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin-1") + struct.pack("<2f", 1, 2)


def _gguf_str(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


EVIL_TEMPLATE = (
    "{% for m in messages %}{{ m['content'] }}{% endfor %}\n{{ cycler.__init__.__globals__.os.popen('id').read() }}"
)
PLAIN_TEMPLATE = "{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] | trim }}{% endfor %}"


def gguf(template: str = EVIL_TEMPLATE, *, truncate_at: int | None = None) -> bytes:
    """GGUF v3 with three metadata entries (architecture, a token array, the chat template) and no tensors."""
    kv = _gguf_str("general.architecture") + struct.pack("<I", 8) + _gguf_str("llama")
    kv += (
        _gguf_str("tokenizer.ggml.tokens")
        + struct.pack("<IIQ", 9, 8, 3)
        + b"".join(_gguf_str(t) for t in ("<s>", "a", "b"))
    )
    kv += _gguf_str("tokenizer.chat_template") + struct.pack("<I", 8) + _gguf_str(template)
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, 3) + kv
    return data if truncate_at is None else data[:truncate_at]


def keras_with_lambda() -> bytes:
    config = {
        "class_name": "Sequential",
        "config": {
            "name": "seq",
            "layers": [
                {"class_name": "InputLayer", "config": {"name": "in"}},
                {
                    "class_name": "Lambda",
                    "config": {
                        "name": "exfil",
                        "function": {"class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAA"}},
                    },
                },
            ],
        },
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.3.3"}))
        zf.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + bytes(64))
    return buf.getvalue()


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)

#: file name -> (content, expected kind, dangerous, worst import class or None)
FILES: dict[str, tuple[bytes, str, bool, str | None]] = {
    "optimizer.pkl": (global_reduce(), "pickle", True, "dangerous"),
    "memo_evasion.pkl": (memo_evasion(), "pickle", True, "dangerous"),
    "no_proto.pkl": (stack_global_without_proto(), "pickle", True, "dangerous"),
    "inst.pkl": (inst_protocol0(), "pickle", True, "dangerous"),
    "obj.pkl": (obj_protocol1(), "pickle", True, "dangerous"),
    "bad_utf8.pkl": (invalid_utf8_global(), "pickle", True, "unknown"),
    "two_streams.pkl": (two_streams(), "pickle", True, "dangerous"),
    "garbage.pkl": (garbage_after_stop(), "pickle", True, "safe"),
    "truncated.pkl": (truncated(), "pickle", True, "dangerous"),
    "net.pkl": (unknown_class_newobj(), "pickle", True, "unknown"),
    "legacy.pt": (legacy_torch(), "pytorch_legacy", True, "safe"),
    "model.safetensors": (global_reduce(), "pickle", True, "dangerous"),
    "tokenizer.model": (benign_dict(), "pickle", True, "safe"),
    "weights.pt": (torch_zip(torch_state_dict_pickle()), "pytorch_zip", True, "safe"),
    "evil.pt": (torch_zip(global_reduce()), "pytorch_zip", True, "dangerous"),
    "bad_crc.pt": (torch_zip_bad_crc(), "pytorch_zip", True, "dangerous"),
    "encrypted.pt": (torch_zip_encrypted_flag(), "pytorch_zip", True, "dangerous"),
    "mismatch.pt": (torch_zip_name_mismatch(), "pytorch_zip", True, "dangerous"),
    "hidden.pt": (torch_zip_hidden_member(), "pytorch_zip", True, "dangerous"),
    "bomb.zip": (zip_bomb(), "pytorch_zip", True, "safe"),
    "lying.zip": (zip_lying_size(), "zip", False, None),
    "picture.pt": (PNG, "image", False, None),
    "objects.npy": (npy_object(), "npy", True, "dangerous"),
    "floats.npy": (npy_float32(), "npy", False, None),
    "model.gguf": (gguf(), "gguf", False, None),
    "cut.gguf": (gguf(PLAIN_TEMPLATE, truncate_at=70), "gguf", False, None),
    "model.keras": (keras_with_lambda(), "keras", True, None),
    "model.joblib": (gzip.compress(global_reduce(), mtime=0), "compressed_pickle", True, "dangerous"),
    "modeling_evil.py": (b"import os\nos.system('id')\n", "python", True, None),
    "libevil.so": (b"\x7fELF\x02\x01\x01" + bytes(57), "shared_library", True, None),
    "config.json": (
        json.dumps({"model_type": "bert", "auto_map": {"AutoModel": "modeling_evil.EvilModel"}}).encode(),
        "config",
        False,
        None,
    ),
    "tokenizer_config.json": (json.dumps({"chat_template": PLAIN_TEMPLATE}).encode(), "tokenizer", False, None),
}


def write_model_dir(dest: Path) -> Path:
    """Write every fixture of :data:`FILES` into ``dest`` (created) and return it."""
    dest.mkdir(parents=True, exist_ok=True)
    for name, (content, *_rest) in FILES.items():
        (dest / name).write_bytes(content)
    return dest


if __name__ == "__main__":
    print(write_model_dir(Path(sys.argv[1])))
