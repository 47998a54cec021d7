"""Fail closed per file (issue 12, class 5): every file and archive member has a coverage state, and anything not
fully analysed is named in the scan's ``unexamined`` (the model section becomes partial, the verdict never clean).

Inputs are real files through the real scanner: a truncated zip, a truncated pickle, an encrypted member, an
unsupported compression method, nesting too deep; each beside its intact twin, which stays ``analysed``.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.model import hostile_fixtures as hf
from workbench import cli as cli_mod
from workbench.investigation import Investigation
from workbench.model.coverage import ANALYSED, Gaps, is_complete, level_of
from workbench.model.scan import scan_model

SAMPLES = Path(__file__).resolve().parents[2] / "evidence-samples"


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _encrypted(data: bytes) -> bytes:
    for sig, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = data.index(sig)
        data = (
            data[: pos + at] + struct.pack("<H", struct.unpack_from("<H", data, pos + at)[0] | 1) + data[pos + at + 2 :]
        )
    return data


def _method(data: bytes, method: int) -> bytes:
    buf = bytearray(data)
    for sig, at in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        struct.pack_into("<H", buf, buf.index(sig) + at, method)
    return bytes(buf)


def _nested(levels: int) -> bytes:
    data = hf.benign_dict()
    for level in range(levels):
        data = _zip({f"l{level}.zip" if level else "p.pkl": data})
    return data


CIPHER = bytes((i * 37 + 11) % 256 for i in range(256))
#: name -> (bytes, expected coverage of the file, expected coverage of a member or None)
CASES = {
    "truncated.pt": (hf.torch_zip(hf.benign_dict())[:-30], "not analysed: central directory unreadable", None),
    "truncated.pkl": (hf.benign_dict()[:-3], "partially analysed: pickle stream 0 not followed to its STOP", None),
    "encrypted.zip": (_encrypted(_zip({"blob.bin": CIPHER})), "partially analysed: 1 member(s) not fully analysed",
                      ("blob.bin", "not analysed: encrypted")),
    "method.zip": (_method(_zip({"a.pkl": hf.benign_dict()}), 98), "partially analysed: 1 member(s)",
                   ("a.pkl", "not analysed: unsupported compression (zip method 98)")),
    "deep.zip": (_nested(5), "partially analysed: 1 member(s) not fully analysed",
                 ("l4.zip!l3.zip!l2.zip!l1.zip", "not analysed: archive nested 4 deep: not opened")),
}  # fmt: skip
TWINS = {
    "intact.pt": hf.torch_zip(hf.benign_dict()),
    "intact.pkl": hf.benign_dict(),
    "plain.zip": _zip({"blob.bin": CIPHER}),
    "shallow.zip": _nested(2),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_damaged_input_has_its_coverage_state_and_an_unexamined_entry(tmp_path, name):
    data, top, member = CASES[name]
    (tmp_path / name).write_bytes(data)
    scan = scan_model(tmp_path, use_picklescan=False)
    cov = {a.member: a.coverage for a in scan.inventory.artefacts}
    assert cov[None].startswith(top), cov
    if member is not None:
        assert cov[member[0]].startswith(member[1]), cov
    assert scan.unexamined and all(u.startswith(name) for u in scan.unexamined)
    doc = scan.to_json()
    assert doc["coverage"] == "partial" and doc["files"][0]["coverage"] == cov[None]


def test_intact_twins_are_analysed(tmp_path):
    for name, data in TWINS.items():
        (tmp_path / name).write_bytes(data)
    scan = scan_model(tmp_path, use_picklescan=False)
    assert {(a.path, a.member): a.coverage for a in scan.inventory.artefacts if not is_complete(a.coverage)} == {}
    assert scan.unexamined == [] and scan.to_json()["coverage"] == "complete"


def test_the_text_output_lists_what_was_not_fully_analysed(tmp_path):
    (tmp_path / "truncated.pkl").write_bytes(CASES["truncated.pkl"][0])
    (tmp_path / "intact.pkl").write_bytes(hf.benign_dict())
    res = CliRunner().invoke(cli_mod.cli, ["scan-model", str(tmp_path), "--no-picklescan"])
    lines = res.stdout.splitlines()
    at = lines.index("coverage: partial (1 file(s) or member(s) not fully analysed, 1 gap(s)); not clean")
    assert lines[at + 1].startswith("  truncated.pkl: partially analysed: pickle stream 0 not followed to its STOP")
    doc = json.loads(CliRunner().invoke(cli_mod.cli, ["scan-model", str(tmp_path), "--json", "--no-picklescan"]).stdout)
    assert {f["path"]: f["coverage"].split(":")[0] for f in doc["files"]} == {
        "intact.pkl": "analysed", "truncated.pkl": "partially analysed"
    }  # fmt: skip


def test_a_file_not_fully_analysed_makes_the_verdict_not_clean(tmp_path):
    case = tmp_path / "case"
    shutil.copytree(SAMPLES / "false-alarm", case)
    (case / "exports").mkdir()
    (case / "exports" / "secret.zip").write_bytes(CASES["encrypted.zip"][0])
    inv = Investigation.open(case, tmp_path / "out", write=False)
    coverage = inv.conclusions.coverage["model"]
    assert coverage.status == "partial"
    assert any(u.startswith("exports/secret.zip [blob.bin]: encrypted") for u in coverage.unexamined)
    assert inv.conclusions.verdict != "clean"


def test_coverage_states_roll_up():
    gaps = Gaps()
    assert gaps.state() == ANALYSED and level_of(ANALYSED) == 0
    gaps.member("a.pkl", "not analysed: encrypted")
    assert gaps.state() == "partially analysed: 1 member(s) not fully analysed (first: a.pkl: not analysed: encrypted)"
    gaps.missing.append("unreadable")
    assert level_of(gaps.state()) == 2 and gaps.state().startswith("not analysed: unreadable")
