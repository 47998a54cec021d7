"""Caps of the model readers never drop evidence silently (issue 11, point 2): what a cap leaves unexamined is named in
``unexamined`` (``"path [member]: reason"``), the model section's coverage becomes partial and the verdict cannot be
clean. Each cap is lowered through ``ScanLimits`` so that small crafted files reach it; the same files under the
default caps give no such entry.
"""

from __future__ import annotations

import functools
import io
import shutil
import zipfile
from pathlib import Path

import pytest

from tests.model import hostile_fixtures as hf
from workbench.investigation import Investigation
from workbench.model import loose as loose_module
from workbench.model import scan as scan_module
from workbench.model.dirdiff import diff_model
from workbench.model.limits import ScanLimits
from workbench.model.scan import scan_model

SAMPLES = Path(__file__).resolve().parents[2] / "evidence-samples"


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _nested(depth: int) -> bytes:
    data = hf.global_reduce()
    for level in range(depth):
        data = _zip({f"level{level}.bin": data})
    return data


def _padded_zip(padding: int) -> bytes:
    """A deflated ``archive/data.pkl`` whose payload follows ``padding`` zero bytes (a BINBYTES popped): its
    compression ratio makes it a decompression bomb."""
    pad = hf.PROTO(2) + b"B" + padding.to_bytes(4, "little") + bytes(padding) + hf.POP
    return _zip({"archive/data.pkl": pad + hf.global_reduce()[2:], "archive/version": b"3\n"})


#: file name -> (bytes, limits that the file exceeds, start of the expected unexamined entry after the path)
CASES = {
    "many.zip": (_zip({f"m{i}.txt": b"x" for i in range(5)}), ScanLimits(max_members=3),
                 "many.zip: 5 members; only the first 3 are examined"),
    "deep.zip": (_nested(6), ScanLimits(),
                 "deep.zip [level5.bin!level4.bin!level3.bin!level2.bin]: archive nested 4 deep: not opened"),
    "bomb.pt": (_padded_zip(4 * 1024 * 1024), ScanLimits(bomb_scan_bytes=1 << 20),
                "bomb.pt [archive/data.pkl]: decompression bomb: only its first 1048576 inflated bytes examined"),
    "long.pkl": (hf.two_streams(), ScanLimits(max_streams=1),
                 "long.pkl: pickle: at offset"),
    "budget.pkl": (hf.global_reduce(), ScanLimits(max_pickle_bytes=10),
                   "budget.pkl: pickle: stream 0: at offset 2: GLOBAL: stream longer than the 10-byte analysis budget"),
    "opcodes.pkl": (hf.global_reduce(), ScanLimits(max_opcodes=2),
                    "opcodes.pkl: pickle: stream 0: opcode budget reached; the rest is not analysed"),
    "config.json": (b'{"auto_map": {"AutoModel": "m.M"}, "pad": "' + b"x" * 200 + b'"}', ScanLimits(max_json_bytes=64),
                    "config.json: 245 bytes, larger than the 64-byte cap: content not analysed"),
    "model.gguf": (hf.gguf(), ScanLimits(gguf_max_string=64),
                   "model.gguf: GGUF header: at offset 143: chat template 'tokenizer.chat_template' over the 64-byte"),
    "arr.npy": (hf.npy_object(), ScanLimits(max_npy_header_bytes=60), "arr.npy: npy header not parsed (npy header of"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_cap_names_what_it_left_unexamined(tmp_path, name):
    data, limits, expected = CASES[name]
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / name).write_bytes(data)
    capped = scan_model(folder, limits=limits, use_picklescan=False)
    assert any(u.startswith(expected) for u in capped.unexamined), capped.unexamined
    assert all(u.startswith(name) for u in capped.unexamined)
    if name != "deep.zip":  # over the default caps by construction
        assert scan_model(folder, use_picklescan=False).unexamined == []


def test_picklescan_over_its_size_cap_is_a_limit_not_unexamined(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "state.pkl").write_bytes(hf.global_reduce())
    scan = scan_model(folder, limits=ScanLimits(picklescan_max_bytes=8))
    assert scan.limits == ["state.pkl: picklescan's second opinion not run: file over the size cap or a "
                           "decompression bomb"]  # fmt: skip
    assert scan.unexamined == [] and any(f.category == "pickle_dangerous_import" for f in scan.findings)


def test_a_model_folder_past_the_inventory_cap_is_unexamined_in_the_scan_and_the_diff(tmp_path, monkeypatch):
    from workbench import evidence_tree

    ref, sus = tmp_path / "ref", tmp_path / "sus"
    for folder in (ref, sus):
        folder.mkdir()
        for i in range(6):
            (folder / f"f{i}.txt").write_text("same\n")
    (sus / "zz.pkl").write_bytes(hf.global_reduce())
    monkeypatch.setattr(evidence_tree, "MAX_FILES", 6)
    scan = scan_model(sus, use_picklescan=False)
    assert scan.unexamined == ["zz.pkl: past the inventory cap of 6 files, not examined"]
    diff = diff_model(sus, ref, display_prefix="models/suspect/m")
    assert diff.unexamined == ["models/suspect/m/zz.pkl: past the inventory cap of 6 files, not examined"]


def test_a_cap_makes_the_model_coverage_partial_and_the_verdict_not_clean(tmp_path, monkeypatch):
    case = tmp_path / "case"
    shutil.copytree(SAMPLES / "false-alarm", case)
    (case / "exports").mkdir()
    (case / "exports" / "chat.gguf").write_bytes(hf.gguf("{% for m in messages %}{{ m['content'] }}{% endfor %}"))
    clean = Investigation.open(case, tmp_path / "out1", write=False)
    assert clean.conclusions.coverage["model"].status == "analysed" and clean.conclusions.verdict == "clean"
    limited = functools.partial(ScanLimits, gguf_max_string=16)
    monkeypatch.setattr(scan_module, "ScanLimits", limited)
    monkeypatch.setattr(loose_module, "ScanLimits", limited)
    inv = Investigation.open(case, tmp_path / "out2", write=False)
    coverage = inv.conclusions.coverage["model"]
    assert coverage.status == "partial"
    assert coverage.unexamined == ("exports/chat.gguf: GGUF header: at offset 143: chat template "
                                   "'tokenizer.chat_template' over the 16-byte string cap, not analysed",)  # fmt: skip
    assert inv.conclusions.verdict == "inconclusive"
