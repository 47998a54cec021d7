import json

import pytest

from workbench import custody
from workbench.case import Case
from workbench.errors import CustodyError


@pytest.fixture
def run(tmp_path):
    root = tmp_path / "evidence"
    (root / "models").mkdir(parents=True)
    (root / "actions.log").write_text("[2026-11-19T09:05:12Z] ASSESS: start\n")
    (root / "frozen_deps.txt").write_text("torch==2.2.0\n")
    (root / "models" / "w.bin").write_bytes(bytes(range(256)) * 100)
    out = tmp_path / "out"
    ledger = custody.intake(Case.open(root), out)
    return root, out, ledger


def test_intake_writes_chained_ledger_outside_evidence(run):
    root, out, ledger = run
    lines = [json.loads(x) for x in (out / "custody.jsonl").read_text().splitlines()]
    assert [e["type"] for e in lines] == ["intake", "file", "file", "file", "intake_end"]
    assert lines[0]["prev"] == "0" * 64
    assert all(lines[i]["prev"] == lines[i - 1]["hash"] for i in range(1, len(lines)))
    assert {e["path"] for e in lines if e["type"] == "file"} == {"actions.log", "frozen_deps.txt", "models/w.bin"}
    assert not list(root.rglob("custody.jsonl"))
    assert ledger.head == lines[-1]["hash"]


def test_clean_verify(run):
    _, out, _ = run
    result = custody.verify(out)
    assert result.verified and result.exit_code == 0 and result.files == 3


def test_modified_deleted_added_each_reported(run):
    root, out, _ = run
    (root / "frozen_deps.txt").write_text("torch==2.2.1\n")
    (root / "actions.log").unlink()
    (root / "models" / "extra.pkl").write_bytes(b"\x80\x02.")
    result = custody.verify(out)
    assert result.changed == ["frozen_deps.txt"]
    assert result.missing == ["actions.log"]
    assert result.added == ["models/extra.pkl"]
    assert not result.verified and result.exit_code == 1


def test_same_size_modification_detected(run):
    root, out, _ = run
    data = bytearray((root / "models" / "w.bin").read_bytes())
    data[1000] ^= 1
    (root / "models" / "w.bin").write_bytes(bytes(data))
    assert custody.verify(out).changed == ["models/w.bin"]


def test_tampered_ledger_entry_breaks_chain(run):
    _, out, _ = run
    path = out / "custody.jsonl"
    lines = path.read_text().splitlines()
    entry = json.loads(lines[2])
    entry["sha256"] = "0" * 64  # an attacker rewrites a recorded hash
    lines[2] = json.dumps(entry)
    path.write_text("\n".join(lines) + "\n")
    result = custody.verify(out)
    assert result.exit_code == 3
    assert any("line 3" in b and "altered" in b for b in result.broken_links)


def test_rehashed_entry_still_breaks_the_next_link(run):
    _, out, _ = run
    path = out / "custody.jsonl"
    lines = path.read_text().splitlines()
    entry = json.loads(lines[2])
    entry["sha256"] = "0" * 64
    entry["hash"] = custody._entry_hash(entry)  # consistent entry, but the chain after it no longer links
    lines[2] = json.dumps(entry)
    path.write_text("\n".join(lines) + "\n")
    result = custody.verify(out)
    assert any("line 4" in b and "link" in b for b in result.broken_links)


def test_deleted_ledger_line_detected(run):
    _, out, _ = run
    path = out / "custody.jsonl"
    lines = path.read_text().splitlines()
    del lines[1]
    path.write_text("\n".join(lines) + "\n")
    assert custody.verify(out).exit_code == 3


def test_verify_is_recorded_in_the_ledger(run):
    _, out, _ = run
    custody.verify(out)
    reread, broken = custody.Ledger.read(out / "custody.jsonl")
    assert not broken and reread.entries[-1]["type"] == "verify" and reread.entries[-1]["verified"] is True


def test_refuses_out_dir_inside_evidence_and_existing_ledger(run, tmp_path):
    root, out, _ = run
    with pytest.raises(CustodyError, match="inside the evidence"):
        custody.intake(Case.open(root), root / "out")
    with pytest.raises(CustodyError, match="already exists"):
        custody.intake(Case.open(root), out)
    with pytest.raises(CustodyError, match="no custody ledger"):
        custody.verify(tmp_path / "nowhere")
