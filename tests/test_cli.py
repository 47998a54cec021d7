"""The CLI is a thin adapter: tested with click's runner and the library call replaced, asserting the arguments
and what reaches stdout, stderr and the exit status."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench import cli as cli_mod
from workbench.errors import EvidenceError, ReportError
from workbench.parameters import REGISTRY, ParameterError
from workbench.progress import Progress
from workbench.report import runner


def finding(i, severity, category="log_pattern"):
    return {"id": f"F-{i:04}", "severity": severity, "category": category, "title": f"finding {i}\x1b[31m"}


def make_doc(findings, coverage=None):
    coverage = coverage or {"logs": {"status": "analysed", "title": "Pipeline logs", "detail": "", "files": []}}
    return {"incident_id": "INC-1", "verdict": "compromised", "findings": findings,
            "conclusions": {"verdict": "compromised", "coverage": coverage}, "custody": {"verified": True}}  # fmt: skip


@pytest.fixture
def fake(monkeypatch, tmp_path):
    """``runner.investigate`` replaced: records its arguments, returns ``state["result"]``."""
    state = {"calls": [], "doc": make_doc([finding(1, "high")]), "error": None}

    def investigate(case_dir, out_dir, *, reference, parameters, pdf, force, progress, sign_head=None):
        state["calls"].append({"case_dir": case_dir, "out_dir": out_dir, "reference": reference,
                               "parameters": parameters, "pdf": pdf, "force": force})  # fmt: skip
        assert isinstance(progress, Progress)
        with progress.stage("custody intake"):
            pass
        (tmp_path / "findings.json").write_text(json.dumps(state["doc"]))
        return runner.RunResult(tmp_path, tmp_path / "report.ipynb", tmp_path / "report.html",
                                tmp_path / "findings.json", state["doc"], error=state["error"],
                                stages=[{"stage": "custody intake", "seconds": 0.1}])  # fmt: skip

    monkeypatch.setattr(runner, "investigate", investigate)
    return state


def invoke(*args):
    return CliRunner().invoke(cli_mod.cli, ["investigate", *args])


TEAM_RULE = """family: team
rules:
  - id: team.marker
    title: Team marker
    description: A marker the team plants in its own logs.
    severity: low
    category: log_pattern
    pattern: 'zzz-team-marker'
    examples:
      match: ["x zzz-team-marker y"]
      no_match: ["nothing here"]
"""


def test_investigate_passes_checked_arguments(fake, tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "team.yaml").write_text(TEAM_RULE)
    hosts = "trusted_index_hosts=pypi.acme.internal,pypi2.acme.internal"
    res = invoke("case", "--out", "o", "--reference", "ref", "--force", "-p", "drift_alpha=0.01",
                 "-p", hosts, "-p", f"log_rules={rules}")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert fake["calls"] == [
        {
            "case_dir": Path("case"),
            "out_dir": Path("o"),
            "reference": Path("ref"),
            "parameters": {
                "drift_alpha": 0.01,
                "trusted_index_hosts": ["pypi.acme.internal", "pypi2.acme.internal"],
                "log_rules": [str(rules.resolve())],
            },
            "pdf": False,
            "force": True,
        }
    ]
    assert "verdict: compromised" in res.stdout and "report.html" in res.stdout
    assert res.stderr.startswith("custody intake: ") and "verdict" not in res.stderr


@pytest.mark.parametrize("option", ["-p", "--intel"])
def test_a_bad_rule_folder_or_intel_feed_is_refused_before_anything_runs(fake, tmp_path, option):
    empty = tmp_path / "empty"
    empty.mkdir()
    args = ["-p", f"log_rules={empty}"] if option == "-p" else ["--intel", str(empty)]
    res = invoke("case", *args)
    assert res.exit_code == 2
    assert str(empty) in res.stderr and fake["calls"] == []
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "feed.yaml").write_text("version: 1\nentries:\n  - id: team-x\n    title: T\n    source: http://x\n")
    res = invoke("case", "--intel", str(bad))
    assert res.exit_code == 2 and "feed.yaml (entry team-x)" in res.stderr and "https://" in res.stderr
    assert fake["calls"] == []


def test_intel_folders_become_the_intel_option(fake, tmp_path):
    feed = tmp_path / "feed"
    feed.mkdir()
    (feed / "team.yaml").write_text("version: 1\nentries:\n  - id: team-pkg\n    title: T\n    source: "
                                    "https://intel.example/team-pkg\n    packages:\n      - name: acme-x\n"
                                    "        versions: ['1.0']\n")
    assert invoke("case", "--intel", str(feed)).exit_code == 0
    assert fake["calls"][-1]["parameters"] == {"intel": [str(feed.resolve())]}


def test_pdf_flag_passed(fake):
    assert invoke("c", "--pdf").exit_code == 0
    assert fake["calls"][-1]["pdf"] is True and fake["calls"][-1]["force"] is False


def test_unknown_option_lists_the_valid_ones_and_nothing_runs(fake):
    res = invoke("c", "-p", "WINDOW=3600")
    assert res.exit_code == 2 and fake["calls"] == []
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("workbench: error: -p WINDOW: unknown option")
    assert all(name in res.stderr for name in REGISTRY)
    assert res.stdout == ""


@pytest.mark.parametrize(("pair", "needle"), [("drift_alpha=often", "expected a number"), ("no-equals", "NAME=VALUE"),
                                              ("drift_window=soon", "duration")])  # fmt: skip
def test_bad_option_value_is_a_usage_error(fake, pair, needle):
    res = invoke("c", "-p", pair)
    assert res.exit_code == 2 and needle in res.stderr and fake["calls"] == []


def test_json_is_the_only_thing_on_stdout(fake):
    res = invoke("c", "--json", "--fail-on", "high")
    assert res.exit_code == 1
    doc = json.loads(res.stdout)  # the whole of stdout is one document
    assert doc["verdict"] == "compromised" and doc["exit_status"] == {"code": 1, "meaning": runner.EXIT_MEANING[1]}
    assert doc["conclusions"] == fake["doc"]["conclusions"]
    assert doc["coverage"] == fake["doc"]["conclusions"]["coverage"]
    assert doc["fail_on"]["tripped"] is True and doc["fail_on"]["findings"][0]["id"] == "F-0001"
    assert doc["stages"] == [{"stage": "custody intake", "seconds": 0.1}]
    assert set(doc["outputs"]) == {"out_dir", "report_html", "report_pdf", "report_ipynb", "findings_json",
                                   "timeline_jsonl", "comms_dir", "custody_ledger"}  # fmt: skip
    assert doc["outputs"]["findings_json"].endswith("findings.json") and doc["outputs"]["report_pdf"] is None
    assert "custody intake" in res.stderr and "F-0001" in res.stderr


def test_fail_on_names_the_findings_that_tripped_it(fake):
    fake["doc"] = make_doc(
        [finding(i, "critical") for i in range(12)]
        + [finding(20, "high"), finding(21, "medium"), finding(22, "low")]
        + [finding(30, "critical", "custody_violation"), finding(31, "high", "monitor_alert")]
    )
    res = invoke("c", "--fail-on", "high")
    assert res.exit_code == 1
    lines = res.stderr.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("workbench: --fail-on high: 13 finding"))
    listed = lines[head + 1 : head + 11]
    assert [line.split()[0] for line in listed] == [f"F-{i:04}" for i in range(10)]
    assert all(" critical " in line for line in listed)
    assert lines[head + 11].strip().startswith("... and 3 more")
    assert "F-0030" not in res.stderr and "F-0031" not in res.stderr  # evidence handling and leads never count
    assert "\x1b" not in res.stderr  # titles come from evidence
    assert invoke("c", "--fail-on", "critical").exit_code == 1
    fake["doc"] = make_doc([finding(1, "medium"), finding(2, "critical", "evidence_malformed")])
    quiet = invoke("c", "--fail-on", "high")
    assert quiet.exit_code == 0 and "--fail-on" not in quiet.stderr


def test_failed_analysis_exits_3_naming_section_and_error(fake):
    fake["doc"] = make_doc([finding(1, "high")], coverage={
        "logs": {"status": "failed", "title": "Pipeline logs", "detail": "RuleError: rules/x.yaml: bad", "files": []},
        "drift": {"status": "not_applicable", "title": "Behaviour drift", "detail": "no predictions", "files": []},
    })  # fmt: skip
    res = invoke("c", "--fail-on", "high", "--json")
    assert res.exit_code == 3
    assert "analysis 'Pipeline logs' (logs) failed: RuleError: rules/x.yaml: bad" in res.stderr
    assert json.loads(res.stdout)["failed_analyses"] == [
        {"section": "logs", "title": "Pipeline logs", "error": "RuleError: rules/x.yaml: bad"}
    ]


def test_failing_cell_exits_3_with_the_json_document(fake):
    fake["error"] = ReportError("notebook cell 4 ('view.summary()') raised KeyError: 'x'")
    res = invoke("c", "--json")
    assert res.exit_code == 3 and "notebook cell 4" in res.stderr
    assert json.loads(res.stdout)["report_error"].startswith("notebook cell 4")


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (EvidenceError("c", "evidence path does not exist"), 2),
        (ParameterError("x", "unknown option"), 2),
        (runner.MissingTool("--pdf needs Chromium, which was not found"), 2),
    ],
)
def test_errors_are_one_line_with_status(monkeypatch, exc, code):
    def boom(*a, **k):
        raise exc

    monkeypatch.setattr(runner, "investigate", boom)
    res = invoke("c", "--json")
    assert res.exit_code == code and res.stdout == ""
    assert res.stderr.startswith("workbench: error:") and res.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("exc", "needle"),
    [
        (KeyboardInterrupt(), "interrupted before the intake; nothing was written"),
        (runner.Interrupted("custody intake", Path("/o")), "/o/custody.jsonl is marked incomplete"),
        (runner.Interrupted("notebook", Path("/o")), "the kernel was stopped"),
        (runner.Interrupted("html report", Path("/o")), "during the html report stage"),
    ],
)
def test_ctrl_c_exits_130_with_one_line(monkeypatch, exc, needle):
    def interrupted(*a, **k):
        raise exc

    monkeypatch.setattr(runner, "investigate", interrupted)
    res = invoke("c")
    assert res.exit_code == 130 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and needle in res.stderr and "Traceback" not in res.stderr
    assert "--force" in res.stderr or "nothing was written" in res.stderr


def test_unknown_command_and_missing_argument():
    r = CliRunner()
    assert r.invoke(cli_mod.cli, ["investgate"]).exit_code == 2
    assert r.invoke(cli_mod.cli, ["investigate"]).exit_code == 2
    assert r.invoke(cli_mod.cli, ["custody", "verify"]).exit_code == 2


def test_help_gives_options_and_exit_statuses():
    res = CliRunner().invoke(cli_mod.cli, ["investigate", "--help"])
    assert res.exit_code == 0
    for needle in ("--force", "--json", "--fail-on", "130 interrupted", "3 an analysis", *REGISTRY):
        assert needle in res.stdout


def test_custody_verify_exit_codes(tmp_path, monkeypatch):
    from workbench import custody
    from workbench.case import Case

    root = tmp_path / "ev"
    root.mkdir()
    (root / "a.txt").write_text("a")
    (root / "b.txt").write_text("b")
    custody.intake(Case.open(root), tmp_path / "out")
    r = CliRunner()
    ok = r.invoke(cli_mod.cli, ["custody", "verify", str(tmp_path / "out")])
    assert ok.exit_code == 0 and "custody verified" in ok.output
    (root / "a.txt").write_text("b")
    bad = r.invoke(cli_mod.cli, ["custody", "verify", str(tmp_path / "out"), "--json"])
    assert bad.exit_code == 1 and json.loads(bad.output)["changed"] == ["a.txt"]
    none = r.invoke(cli_mod.cli, ["custody", "verify", str(tmp_path / "nothing")])
    assert none.exit_code == 2 and "no custody ledger" in none.output

    real = custody.iter_hashes

    def one_then_interrupt(paths, **kwargs):
        yield next(real(paths, **kwargs))
        raise KeyboardInterrupt

    monkeypatch.setattr(custody, "iter_hashes", one_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        custody.intake(Case.open(root), tmp_path / "cut")
    monkeypatch.undo()
    cut = r.invoke(cli_mod.cli, ["custody", "verify", str(tmp_path / "cut")])
    assert cut.exit_code == 4
    assert "intake incomplete (interrupted by Ctrl-C): 1 of 2 files recorded" in cut.stdout
    assert "changed" not in cut.stdout and "added" not in cut.stdout
    as_json = r.invoke(cli_mod.cli, ["custody", "verify", str(tmp_path / "cut"), "--json"])
    assert as_json.exit_code == 4 and json.loads(as_json.stdout)["intake"]["complete"] is False
