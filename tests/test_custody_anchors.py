"""Custody that holds: a ledger rewritten whole is caught by every anchor kept outside it; the ledger file is never
followed through a symlink nor read from a FIFO."""

from __future__ import annotations

import hashlib
import json
import os
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from workbench import custody, custody_anchors
from workbench.case import Case
from workbench.cli import cli
from workbench.errors import CustodyError


@pytest.fixture
def run(tmp_path: Path):
    root = tmp_path / "evidence"
    (root / "models").mkdir(parents=True)
    (root / "actions.log").write_text("[2026-11-19T09:05:12Z] ASSESS: start\n")
    (root / "models" / "w.bin").write_bytes(bytes(range(256)) * 100)
    out = tmp_path / "out"
    ledger = custody.intake(Case.open(root), out)
    return root, out, ledger.head


def rewrite_whole(root: Path, out: Path, relpath: str, data: bytes) -> str:
    """The attack: edit an evidence file, then recompute its ledger entry and every hash after it. Returns the new
    head."""
    (root / relpath).write_bytes(data)
    path = out / custody.LEDGER_NAME
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    prev = custody.GENESIS
    for entry in entries:
        if entry.get("type") == "file" and entry["path"] == relpath:
            entry.update(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
        entry["prev"] = prev
        entry["hash"] = prev = custody.entry_hash(entry)
    path.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in entries))
    return prev


def test_a_rewritten_chain_is_intact_so_without_an_anchor_it_passes_and_says_so(run):
    root, out, head = run
    forged = rewrite_whole(root, out, "actions.log", b"[2026-11-19T09:05:12Z] nothing happened\n")
    result = custody.verify(out, record=False)
    assert forged != head and not result.broken_links and result.exit_code == 0
    assert any("no anchor" in n for n in result.notes)


def test_findings_json_head_catches_the_rewrite(run):
    root, out, head = run
    (out / "findings.json").write_text(json.dumps({"custody": {"head": head}}))
    ok = custody.verify(out)
    assert ok.exit_code == 0 and [a.source for a in ok.anchors if a.ok] == ["findings.json"]
    rewrite_whole(root, out, "actions.log", b"edited\n")
    result = custody.verify(out)
    assert result.exit_code == 5 and not result.verified and not result.broken_links
    assert result.anchor_problems == [f"findings.json: head {head[:16]}… is not in the ledger (the ledger was "
                                      "rewritten or replaced)"]  # fmt: skip
    assert result.to_dict()["anchor_problems"] == result.anchor_problems


def test_report_html_head_catches_the_rewrite(run):
    root, out, head = run
    report = (f"<p>verdict · custody ledger head: <code>{head}</code> · notebook</p>"
              f'<p>Custody ledger head: <span class="wb-mono">{head}</span></p>')  # fmt: skip
    (out / "report.html").write_text(report)
    assert custody.verify(out).exit_code == 0
    rewrite_whole(root, out, "models/w.bin", b"\0" * 25600)
    result = custody.verify(out)
    assert result.exit_code == 5 and result.anchor_problems[0].startswith("report.html: ")


def test_a_report_without_a_head_is_no_anchor(run):
    _, out, _ = run
    (out / "report.html").write_text("<p>custody ledger head: <code></code></p>")  # a run that failed early
    result = custody.verify(out)
    assert result.exit_code == 0 and not result.anchors
    assert any("quotes no custody ledger head" in n for n in result.notes)


def test_expected_head_catches_the_rewrite(run):
    root, out, head = run
    assert custody.verify(out, expect_head=head.upper() + " ").exit_code == 0  # as pasted from elsewhere
    forged = rewrite_whole(root, out, "actions.log", b"edited\n")
    assert custody.verify(out, expect_head=head).exit_code == 5
    assert custody.verify(out, expect_head=forged).exit_code == 0  # the head itself is what vouches
    with pytest.raises(CustodyError, match="64 hexadecimal digits"):
        custody.verify(out, expect_head="abc")


def test_entries_appended_after_the_anchor_are_caught(run):
    """Only verify records may follow an anchored head: a file entry appended (chained properly) is a mismatch."""
    _, out, head = run
    custody.verify(out)  # a verify record after the head is fine
    assert custody.verify(out, expect_head=head).exit_code == 0
    ledger, _ = custody.Ledger.read(out / custody.LEDGER_NAME)
    ledger.append("file", path="planted.txt", size=1, sha256="0" * 64, role="other")
    result = custody.verify(out, expect_head=head, record=False)
    assert not result.broken_links and result.exit_code == 5
    assert "followed by 1 entries other than verify records" in result.anchor_problems[0]


def _keys(tmp_path: Path, curve: ec.EllipticCurve | None = None, name: str = "k"):
    key = ec.generate_private_key(curve or ec.SECP256R1())
    private = tmp_path / f"{name}.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))  # fmt: skip
    public = tmp_path / f"{name}.pub"
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    return private, public


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1()], ids=["P-256", "P-384"])
def test_signed_head_catches_the_rewrite(run, tmp_path: Path, curve):
    root, out, head = run
    private, public = _keys(tmp_path, curve)
    sig = custody_anchors.sign_head(out, head, custody_anchors.load_signing_key(private))
    doc = json.loads(sig.read_text())
    assert doc["head"] == head and doc["algorithm"].startswith("ECDSA-secp")
    assert custody.verify(out, key=public).exit_code == 0
    rewrite_whole(root, out, "actions.log", b"edited\n")
    result = custody.verify(out, key=public)
    assert result.exit_code == 5 and result.anchor_problems[0].startswith("custody.head.sig: ")


def test_a_signature_forged_by_another_key_or_removed_fails(run, tmp_path: Path):
    root, out, head = run
    _, public = _keys(tmp_path)
    attacker, _ = _keys(tmp_path, name="attacker")
    forged = rewrite_whole(root, out, "actions.log", b"edited\n")
    custody_anchors.sign_head(out, forged, custody_anchors.load_signing_key(attacker))
    result = custody.verify(out, key=public)
    assert result.exit_code == 5 and "is not valid for" in result.anchor_problems[0]
    doc = json.loads((out / "custody.head.sig").read_text())  # a valid signature of another head
    doc["head"] = head
    (out / "custody.head.sig").write_text(json.dumps(doc))
    assert custody.verify(out, key=public).exit_code == 5
    (out / "custody.head.sig").unlink()
    assert "absent" in custody.verify(out, key=public).anchor_problems[0]
    with pytest.raises(CustodyError, match="PEM"):
        custody.verify(out, key=out / custody.LEDGER_NAME)


def test_signing_key_is_checked(tmp_path: Path):
    (tmp_path / "rsa.pem").write_text("not a key")
    with pytest.raises(CustodyError, match="--sign-head"):
        custody_anchors.load_signing_key(tmp_path / "rsa.pem")
    private, _ = _keys(tmp_path)
    assert custody_anchors.load_signing_key(private).curve.name == "secp256r1"


# ------------------------------------------------------------------------------------------------ ledger file
def test_intake_never_writes_through_a_symlinked_ledger(tmp_path: Path):
    root = tmp_path / "evidence"
    root.mkdir()
    (root / "a.txt").write_text("a\n")
    elsewhere = tmp_path / "elsewhere.jsonl"
    elsewhere.write_text("")
    out = tmp_path / "out"
    out.mkdir()
    (out / custody.LEDGER_NAME).symlink_to(elsewhere)
    with pytest.raises(CustodyError):
        custody.intake(Case.open(root), out)
    assert elsewhere.read_text() == ""


def test_a_ledger_swapped_for_a_symlink_is_neither_read_nor_appended_to(run, tmp_path: Path):
    _, out, _ = run
    copy = tmp_path / "copy.jsonl"
    ledger_path = out / custody.LEDGER_NAME
    copy.write_bytes(ledger_path.read_bytes())
    ledger, _ = custody.Ledger.read(ledger_path)
    ledger_path.unlink()
    ledger_path.symlink_to(copy)
    before = copy.read_bytes()
    with pytest.raises(CustodyError, match="symbolic link"):
        custody.verify(out)
    with pytest.raises(CustodyError, match="symbolic link"):
        ledger.append("verify", verified=True)
    assert copy.read_bytes() == before
    result = CliRunner().invoke(cli, ["custody", "verify", str(out)])
    assert result.exit_code == 2 and "symbolic link" in result.output


def test_a_ledger_swapped_for_a_fifo_is_refused_at_once(run):
    _, out, _ = run
    ledger_path = out / custody.LEDGER_NAME
    ledger, _ = custody.Ledger.read(ledger_path)
    ledger_path.unlink()
    os.mkfifo(ledger_path)
    signal.alarm(20)  # a blocked open would fail the test, not hang it
    try:
        with pytest.raises(CustodyError, match="FIFO"):
            custody.verify(out)
        with pytest.raises(CustodyError, match="FIFO"):
            ledger.append("verify", verified=True)
    finally:
        signal.alarm(0)


def test_evidence_swapped_for_a_fifo_after_intake_is_changed_not_hung_on(run):
    root, out, _ = run
    (root / "actions.log").unlink()
    os.mkfifo(root / "actions.log")
    signal.alarm(20)
    try:
        result = custody.verify(out)
    finally:
        signal.alarm(0)
    assert result.changed == ["actions.log"] and result.exit_code == 1
    assert "actions.log: recorded at intake as a regular file, now a FIFO (named pipe)" in result.notes


def test_cli_exit_5_and_what_it_prints(run):
    root, out, head = run
    (out / "findings.json").write_text(json.dumps({"custody": {"head": head}}))
    rewrite_whole(root, out, "actions.log", b"edited\n")
    result = CliRunner().invoke(cli, ["custody", "verify", str(out), "--expect-head", head])
    assert result.exit_code == 5
    assert "anchor findings.json: DOES NOT MATCH" in result.output
    assert "anchor --expect-head: DOES NOT MATCH" in result.output
    assert "custody NOT verified" in result.output
    doc = json.loads(CliRunner().invoke(cli, ["custody", "verify", str(out), "--json"]).output)
    assert doc["exit_code"] == 5 and doc["anchors"][0]["source"] == "findings.json" and not doc["anchors"][0]["ok"]
    bad = CliRunner().invoke(cli, ["custody", "verify", str(out), "--expect-head", "xyz"])
    assert bad.exit_code == 2 and "64 hexadecimal digits" in bad.output
