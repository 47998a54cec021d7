"""Pickles are recognised by their opcode structure whatever their protocol and whatever their first bytes look like
(issue 12, class 1): protocol 0 text opcodes, a BINFLOAT whose eight bytes make a safetensors length, ``GGUF`` or an
image signature, a BININT2 that makes ``MZ``, a first argument longer than the sniff window, padding before the
payload, a STRING holding UTF-8 as ``torch.load`` reads it. Each malicious file must give a critical finding that
names the imported callable; each benign twin (a real file of the format the pickle imitates) must stay quiet.
Every pickle is assembled opcode by opcode; nothing is unpickled.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import zipfile
from pathlib import Path

import pytest

from tests.model import hostile_fixtures as hf
from workbench.model.formats import sniff
from workbench.model.scan import scan_model
from workbench.model.sniff_pickle import pickle_head

BENIGN = Path(__file__).resolve().parents[1] / "data" / "benign"
CALL = hf.glob("posix", "system") + hf.uni("echo pwned") + hf.TUPLE1 + hf.REDUCE + hf.STOP
BIG = 200_000  # longer than the 64 KiB sniff window


def _arg(op: bytes, n: int) -> bytes:
    return op + struct.pack("<I", n) + b"A" * n + hf.POP


#: name -> bytes of a pickle that runs posix.system when loaded
MALICIOUS = {
    "proto0.pkl": b"cposix\nsystem\n(S'echo pwned'\ntR.",
    "proto0_tail.bin": b"cposix\nsystem\n(S'echo pwned'\ntR.\nthis is not a pickle any more \xff\xfe",
    "float_safetensors.safetensors": b"G" + struct.pack("<Q", 60) + hf.POP + CALL,
    "float_gguf.gguf": b"GGUF\x03\x00\x00\x00\x00" + hf.POP + CALL,
    "float_gif.gif": b"GIF89a\x01\x00\x01" + hf.POP + CALL,
    "mz_prefix.bin": b"MZ\x90" + hf.POP + CALL,
    "long_binbytes.pt": hf.PROTO(3) + _arg(b"B", BIG) + CALL,
    "long_binunicode.bin": _arg(b"X", BIG) + CALL,
    "long_string.txt": b"S'" + b"a" * BIG + b"'\n" + hf.POP + CALL,
    "padded.pt": hf.PROTO(2) + (b"N" + hf.POP) * 40_000 + CALL,
    "utf8_string.pkl": b"S'caf\xc3\xa9 \xe2\x82\xac'\n" + hf.POP + CALL,
}
#: a STRING holding UTF-8, as torch.load (encoding="utf-8") reads it; pickletools refuses it
UTF8_STRING = MALICIOUS["utf8_string.pkl"]


def _torch_zip(data_pkl: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", data_pkl)
        zf.writestr("archive/version", b"3\n")
    return buf.getvalue()


def _scan(tmp_path: Path, files: dict[str, bytes]):
    folder = tmp_path / "m"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return scan_model(folder, use_picklescan=False)


@pytest.mark.parametrize("name", sorted(MALICIOUS))
def test_a_pickle_is_found_whatever_its_first_bytes(tmp_path, name):
    scan = _scan(tmp_path, {name: MALICIOUS[name]})
    art = next(a for a in scan.inventory.artefacts if a.member is None)
    assert art.dangerous, art
    hits = [f for f in scan.findings if f.category == "pickle_dangerous_import" and f.severity.value == "critical"]
    assert [f.title for f in hits] == [f"{name}: pickle imports posix.system: posix.system('echo pwned')"]


def test_a_string_of_utf8_bytes_is_sniffed_as_a_pickle(tmp_path):
    assert sniff(UTF8_STRING, "w.bin", len(UTF8_STRING)).kind == "pickle"
    scan = _scan(tmp_path, {"w.bin": UTF8_STRING})
    assert [(a.kind, a.dangerous) for a in scan.inventory.artefacts] == [("pickle", True)]


def test_a_padded_data_pkl_in_a_torch_zip_names_its_import(tmp_path):
    padded = hf.PROTO(2) + _arg(b"B", 300_000) + (b"N" + hf.POP) * 10_000 + CALL
    scan = _scan(tmp_path, {"model.pt": _torch_zip(padded)})
    reports = {r.member: r for _, r in scan.inventory.pickles}
    assert [c.text for c in reports["archive/data.pkl"].calls] == ["posix.system('echo pwned')"]


def test_the_head_walk_reads_arguments_by_length_without_decoding():
    assert pickle_head(MALICIOUS["long_binbytes.pt"][:65536], len(MALICIOUS["long_binbytes.pt"])).ending == "argument"
    assert pickle_head(MALICIOUS["proto0.pkl"], len(MALICIOUS["proto0.pkl"])).ending == "stop"
    assert pickle_head(b"\xff\xd8\xff\xe0 JFIF", 10) is None  # 0xff is no opcode
    # a file shorter than the argument it declares cannot be a pickle
    assert pickle_head(b"B" + struct.pack("<I", 1000) + b"xx", 7) is None


def test_sniffing_keeps_the_format_and_marks_a_second_reading():
    st = MALICIOUS["float_safetensors.safetensors"]
    sniffed = sniff(st, "x.safetensors", len(st))
    assert sniffed.kind == "pickle"  # the signature is all there is: its JSON header does not hold
    gif = MALICIOUS["float_gif.gif"]
    assert sniff(gif, "x.gif", len(gif)).details.get("also_pickle") is True


# ------------------------------------------------------------------------------------------------ benign twins
def _safetensors() -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    return struct.pack("<Q", len(header)) + header + struct.pack("<f", 1.0)


BENIGN_TWINS = {
    "model.safetensors": _safetensors(),
    "README.md": b"copyright\nnotice\n(c) 2026 the authors. All rights reserved.\n" * 50,
    "notes.txt": b"S'hello'\nthis is text, not a pickle\n" * 10,
    "long.txt": b"I" * 70_000 + b"\n",
    "picture.gif": b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + bytes(30),
    "picture.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(30),
    "table.csv": b"a,b,c\n1,2,3\n" * 100,
}


def test_benign_twins_stay_quiet(tmp_path):
    scan = _scan(tmp_path, BENIGN_TWINS)
    shutil.copy(BENIGN / "gguf" / "tiny_llama_q8_0.gguf", tmp_path / "m")
    scan = scan_model(tmp_path / "m", use_picklescan=False)
    kinds = {a.path: (a.kind, a.dangerous, a.coverage) for a in scan.inventory.artefacts}
    assert kinds == {
        "model.safetensors": ("safetensors", False, "analysed"),
        "README.md": ("text", False, "analysed"),
        "notes.txt": ("text", False, "analysed"),
        "long.txt": ("text", False, "analysed"),
        "picture.gif": ("image", False, "analysed"),
        "picture.png": ("image", False, "analysed"),
        "table.csv": ("text", False, "analysed"),
        "tiny_llama_q8_0.gguf": ("gguf", False, "analysed"),
    }
    assert scan.findings == [] and scan.unexamined == []
