"""The CLI is a thin adapter: tested with click's runner and the library call replaced, asserting the arguments."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench import cli as cli_mod
from workbench.errors import EvidenceError, ReportError
from workbench.report import runner


@pytest.fixture
def calls(monkeypatch, tmp_path):
    seen = []
    findings = tmp_path / "findings.json"
    findings.write_text(json.dumps({"verdict": "compromised", "findings": [{"severity": "high"}]}))

    def fake(case_dir, out_dir, *, reference, parameters, pdf, progress):
        seen.append(
            {"case_dir": case_dir, "out_dir": out_dir, "reference": reference, "parameters": parameters, "pdf": pdf}
        )
        return runner.RunResult(tmp_path, tmp_path / "r.ipynb", tmp_path / "report.html", findings, "compromised", 0)

    monkeypatch.setattr(runner, "investigate", fake)
    return seen


def test_investigate_passes_arguments(calls):
    res = CliRunner().invoke(
        cli_mod.cli,
        [
            "investigate",
            "case",
            "--out",
            "o",
            "--reference",
            "ref",
            "-p",
            "WINDOW=3600",
            "-p",
            "LABEL=day",
            "-p",
            "EMPTY=",
        ],
    )
    assert res.exit_code == 0, res.output
    assert calls == [
        {
            "case_dir": Path("case"),
            "out_dir": Path("o"),
            "reference": Path("ref"),
            "parameters": {"WINDOW": 3600, "LABEL": "day", "EMPTY": ""},
            "pdf": False,
        }
    ]
    assert "report.html" in res.output and "verdict: compromised" in res.output


def test_pdf_flag_passed(calls):
    assert CliRunner().invoke(cli_mod.cli, ["investigate", "c", "--pdf"]).exit_code == 0
    assert calls[-1]["pdf"] is True


def test_fail_on(calls):
    assert CliRunner().invoke(cli_mod.cli, ["investigate", "c", "--fail-on", "high"]).exit_code == 1
    assert CliRunner().invoke(cli_mod.cli, ["investigate", "c", "--fail-on", "critical"]).exit_code == 0


def test_bad_parameter_is_usage_error(calls):
    res = CliRunner().invoke(cli_mod.cli, ["investigate", "c", "-p", "no-equals"])
    assert res.exit_code == 2 and "NAME=VALUE" in res.output and calls == []


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (EvidenceError("c", "evidence path does not exist"), 2),
        (ReportError("notebook cell 4 ('inv.summary()') raised X"), 3),
    ],
)
def test_errors_are_one_line_with_status(monkeypatch, exc, code):
    def boom(*a, **k):
        raise exc

    monkeypatch.setattr(runner, "investigate", boom)
    res = CliRunner().invoke(cli_mod.cli, ["investigate", "c"])
    assert res.exit_code == code
    assert res.output.strip().startswith("workbench: error:") and "Traceback" not in res.output


def test_unknown_command_and_missing_argument():
    r = CliRunner()
    assert r.invoke(cli_mod.cli, ["investgate"]).exit_code == 2
    assert r.invoke(cli_mod.cli, ["investigate"]).exit_code == 2
    assert r.invoke(cli_mod.cli, ["custody", "verify"]).exit_code == 2


def test_custody_verify_exit_codes(tmp_path):
    from workbench import custody
    from workbench.case import Case

    root = tmp_path / "ev"
    root.mkdir()
    (root / "a.txt").write_text("a")
    custody.intake(Case.open(root), tmp_path / "out")
    r = CliRunner()
    ok = r.invoke(cli_mod.cli, ["custody", "verify", str(tmp_path / "out")])
    assert ok.exit_code == 0 and "custody verified" in ok.output
    (root / "a.txt").write_text("b")
    bad = r.invoke(cli_mod.cli, ["custody", "verify", str(tmp_path / "out"), "--json"])
    assert bad.exit_code == 1 and json.loads(bad.output)["changed"] == ["a.txt"]
    none = r.invoke(cli_mod.cli, ["custody", "verify", str(tmp_path / "nothing")])
    assert none.exit_code == 2 and "no custody ledger" in none.output
