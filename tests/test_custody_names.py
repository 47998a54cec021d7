"""File names holding secrets in the custody ledger: written redacted with the digest of the true name, re-found by
that digest (verify, the intake digests), and every change still detected."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from workbench import custody
from workbench.case import Case
from workbench.custody_names import entry_key, hashes_by_relpath, ledger_path, name_digest, name_key

TOKEN = "xoxb-2718281828459-3141592653589-Lk8Jh7Gf6Ds5Aq4Wz3Xe2Rc1"
PASSWORD_NAME = "PGPASSWORD=Pg-Env-Pw-9965.env"


def test_ledger_path_redacts_and_pins_the_true_name():
    assert ledger_path("logs/pipeline.log") == {"path": "logs/pipeline.log"}
    fields = ledger_path(f"exports/{TOKEN}.txt")
    assert fields == {"path": "exports/xoxb-…[redacted].txt",
                      "path_sha256": hashlib.sha256(f"exports/{TOKEN}.txt".encode()).hexdigest()}  # fmt: skip
    assert entry_key({"type": "file", **fields}) == name_key(f"exports/{TOKEN}.txt")
    assert entry_key({"type": "file", "path": "logs/pipeline.log"}) == name_key("logs/pipeline.log")
    # a name that is not valid UTF-8 (kept with surrogateescape) hashes as its bytes on disk
    assert name_digest("a\udcff") == hashlib.sha256(b"a\xff").hexdigest()


@pytest.fixture
def run(tmp_path: Path):
    case_dir = tmp_path / "case"
    (case_dir / "exports").mkdir(parents=True)
    (case_dir / "exports" / f"{TOKEN}.txt").write_text("one\n")
    (case_dir / "exports" / PASSWORD_NAME).write_text("two\n")
    (case_dir / "plain.txt").write_text("three\n")
    out = tmp_path / "out"
    ledger = custody.intake(Case.open(case_dir), out)
    return case_dir, out, ledger


def test_intake_writes_no_secret_and_verify_refinds_every_file(run):
    _, out, ledger = run
    text = (out / custody.LEDGER_NAME).read_text(encoding="utf-8")
    assert TOKEN[8:] not in text and "Pg-Env-Pw-9965" not in text
    files = {e["path"]: e for e in ledger.entries if e["type"] == "file"}
    assert set(files) == {"exports/xoxb-…[redacted].txt", "exports/PGPASSWORD=…[redacted]", "plain.txt"}
    assert "path_sha256" not in files["plain.txt"]
    result = custody.verify(out)
    assert result.verified and (result.changed, result.missing, result.added) == ([], [], [])
    # the digests handed to the analyses are keyed by the true names
    relpaths = [f"exports/{TOKEN}.txt", f"exports/{PASSWORD_NAME}", "plain.txt", "absent.txt"]
    digests = hashes_by_relpath(ledger.entries, relpaths)
    assert set(digests) == set(relpaths[:3])
    assert digests[f"exports/{TOKEN}.txt"] == hashlib.sha256(b"one\n").hexdigest()


def test_changed_missing_and_added_are_listed_redacted(run):
    case_dir, out, _ = run
    (case_dir / "exports" / f"{TOKEN}.txt").write_text("ONE\n")  # changed
    (case_dir / "exports" / PASSWORD_NAME).unlink()  # missing
    (case_dir / "exports" / "ghp_Vq3Lm8Ns2Kd7Hf4Tg9Rj1Wb6Xc5Ye0Za3Pu8.txt").write_text("new\n")  # added
    result = custody.verify(out)
    assert result.exit_code == 1
    assert result.changed == ["exports/xoxb-…[redacted].txt"]
    assert result.missing == ["exports/PGPASSWORD=…[redacted]"]
    assert result.added == ["exports/ghp_Vq…[redacted].txt"]
    assert "Vq3Lm8Ns2Kd7" not in json.dumps(result.to_dict())


def test_a_renamed_file_with_the_same_redacted_name_is_not_the_same_file(run):
    """Two tokens redact alike; the digest tells them apart (a swap is a missing file plus an added one)."""
    case_dir, out, _ = run
    other = TOKEN[:-4] + "ZZZZ"
    (case_dir / "exports" / f"{TOKEN}.txt").rename(case_dir / "exports" / f"{other}.txt")
    result = custody.verify(out)
    assert result.missing == result.added == ["exports/xoxb-…[redacted].txt"] and result.exit_code == 1


def test_editing_the_redacted_name_or_its_digest_breaks_the_chain(run):
    _, out, _ = run
    path = out / custody.LEDGER_NAME
    lines = path.read_text(encoding="utf-8").splitlines()
    index = next(i for i, line in enumerate(lines) if "path_sha256" in line)
    entry = json.loads(lines[index])
    entry["path_sha256"] = "0" * 64
    lines[index] = json.dumps(entry, sort_keys=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert custody.verify(out).exit_code == 3
