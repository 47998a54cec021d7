"""Dependency forensics: pip freeze against baselines, sources, typosquats and dependency confusion."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from workbench.analysis import AnalysisContext
from workbench.case import Case
from workbench.collect import collect_evidence
from workbench.data import data_file
from workbench.data.dependency_data import default_dependency_data, load_dependency_data, one_edit
from workbench.deps import analyse_dependencies, check_dependencies, render_dependencies
from workbench.deps_baseline import parse_lock, parse_requirements, same_url, same_version
from workbench.errors import RuleError

DATA = Path(__file__).parent / "data" / "deps"
SAMPLES = Path(__file__).parents[1] / "evidence-samples"


def run(folder: Path, **parameters):
    case = Case.open(folder)
    evidence = collect_evidence(case)
    return analyse_dependencies(AnalysisContext(case=case, evidence=evidence, parameters=parameters)), evidence


def summary(result) -> list[tuple]:
    return [(f.category, f.severity.value, f.evidence.get("package"), f.evidence.get("line")) for f in result.findings]


# ------------------------------------------------------------------------------------------------ names
@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [("transformers", "transfomers", True), ("requests", "reqeusts", True), ("torch", "torchx", True),
     ("numpy", "nunpy", True), ("numpy", "numpy", False), ("pandas", "pnadsa", False), ("abc", "cba", False),
     ("safetensors", "safetensor", True), ("tqdm", "tdqm", True), ("a", "abc", False)],
)  # fmt: skip
def test_one_edit(a, b, expected):
    assert one_edit(a, b) is expected and one_edit(b, a) is expected


@pytest.mark.parametrize(
    ("name", "imitates"),
    [("transfomers", "transformers"), ("scikitlearn", "scikit-learn"), ("tdqm", "tqdm"), ("reqeusts", "requests"),
     ("huggingfacehub", "huggingface-hub"), ("safetensor", "safetensors"), ("pytorch-lightnin", "pytorch-lightning"),
     ("transformers", None), ("torchx", None), ("cattrs", None), ("dash", None), ("dask", None), ("idna", None),
     ("trl", None), ("trll", None), ("acme-feature-store", None), ("tokenizers", None), ("nvidia-cublas-cu12", None)],
)  # fmt: skip
def test_typosquat_of(name, imitates):
    assert default_dependency_data().typosquat_of(name) == imitates


def test_bundled_package_list():
    data = default_dependency_data()
    assert 140 <= len(data.popular) <= 220
    assert {"torch", "transformers", "safetensors", "numpy", "scikit-learn"} <= data.popular
    assert not data.popular & data.lookalikes
    # no two popular names are typosquats of each other's list entries by accident
    assert all(data.typosquat_of(n) is None for n in data.popular | data.lookalikes)
    text = data_file("popular_packages.txt").read_text()
    assert text.endswith("\n") and "\t" not in text


@pytest.mark.parametrize(
    ("content", "message"),
    [("torch\nTorch_Vision\n", "not a PEP 503 normalised name"), ("torch\n!torch\n", "duplicate name"),
     ("# only comments\n", "no popular package names")],
)  # fmt: skip
def test_bad_package_list(tmp_path, content, message):
    path = tmp_path / "popular.txt"
    path.write_text(content)
    with pytest.raises(RuleError, match=message) as err:
        load_dependency_data(popular_path=path)
    assert err.value.source == str(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [("trusted_index_hosts: [pypi.org]\ninflated_version: '('\n", "inflated_version does not compile"),
     ("trusted_hosts: [pypi.org]\ninflated_version: x\n", "unknown key"), ("- a\n", "top level must be a mapping"),
     ("inflated_version: x\ngeneric_prefixes: py\n", "must be a list")],
)  # fmt: skip
def test_bad_sources_file(tmp_path, content, message):
    path = tmp_path / "sources.yaml"
    path.write_text(content)
    with pytest.raises(RuleError, match=message):
        load_dependency_data(sources_path=path)


def test_versions_and_urls():
    assert same_version("1.0", "1.0.0") and same_version("v2.2.0", "2.2") and same_version("1.4.1.POST1", "1.4.1.post1")
    assert (
        not same_version("2.2.0", "2.2.1") and not same_version("2.2.0+cu121", "2.2.0") and not same_version(None, "1")
    )
    assert same_url("git+https://tok:x@github.com/a/b.git@abc123#egg=b", "git+https://github.com/a/b@abc123")
    assert same_url("git+https://github.com/a/b.git@abc123", "git+https://github.com/a/b.git@abc123def456")
    assert same_url("git+https://github.com/a/b.git", "git+https://github.com/a/b.git@abc123")
    assert not same_url("git+https://github.com/a/b.git@abc", "git+https://github.com/a/b.git@fff")
    assert not same_url("git+https://github.com/a/b.git", "git+https://github.com/evil/b.git") and not same_url(
        None, "x"
    )


# ------------------------------------------------------------------------------------------------ baselines
def test_parse_hashed_requirements():
    warnings = []
    path = DATA / "hashed-requirements" / "requirements.txt"
    base = parse_requirements(path, "requirements.txt", warnings)
    assert warnings == [] and base.complete and base.kind == "requirements"
    assert len(base.pins) == 13 and all(p.hashes == 2 for p in base.pins.values())
    torch = base.pins["torch"]
    assert (torch.version, torch.line, torch.markers) == ("2.2.0", 45, True)
    assert base.pins["acme-ml-utils"].line == 9


def test_parse_requirements_variants_and_bad_lines(tmp_path):
    path = tmp_path / "requirements-prod.txt"
    path.write_bytes(
        b"-r base.txt\n--index-url https://pypi.org/simple\ntorch==2.2.0  # pinned\nnumpy>=1.26,<2\n"
        b"Transformers[torch] == 4.38.0\nmylib @ git+https://github.com/acme/mylib.git@v1.0 ; python_version >= '3.9'\n"
        b"!!! not a requirement\n\xff\xfe\x00garbage\npandas===2.2.1\n" + b"y" * 70_000 + b"\n"
    )  # fmt: skip
    warnings = []
    base = parse_requirements(path, "requirements-prod.txt", warnings)
    assert not base.complete
    pins = {k: (p.version, p.url, p.spec) for k, p in base.pins.items()}
    mylib = "git+https://github.com/acme/mylib.git@v1.0"
    assert pins == {"torch": ("2.2.0", None, None), "numpy": (None, None, ">=1.26,<2"),
                    "transformers": ("4.38.0", None, None), "mylib": (None, mylib, None),
                    "pandas": ("2.2.1", None, None)}  # fmt: skip
    reasons = [(w.line, w.reason.split(":")[0]) for w in warnings]
    assert (7, "not a requirement line") in reasons and (8, "invalid UTF-8, bytes replaced") in reasons
    assert (10, "line longer than 65536 bytes, cut") in reasons
    assert (10, "project name longer than 200 characters, ignored") in reasons


def test_parse_locks(tmp_path):
    warnings = []
    poetry = parse_lock(DATA / "poetry-clean" / "poetry.lock", "poetry.lock", warnings)
    assert poetry.complete and len(poetry.pins) == 11 and poetry.pins["numpy"].hashes == 1
    assert poetry.pins["feature-lib"].url == (
        "git+https://github.com/example-org/feature-lib.git@4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d"
    )
    uv = tmp_path / "uv.lock"
    uv.write_text(
        'version = 1\n[[package]]\nname = "torch"\nversion = "2.2.0"\n'
        'source = { registry = "https://pypi.org/simple" }\n[[package]]\nname = "lib"\nversion = "0.1.0"\n'
        'source = { git = "https://github.com/a/lib?rev=main#abc123" }\n'
    )
    got = parse_lock(uv, "uv.lock", warnings)
    assert {k: (p.version, p.url) for k, p in got.pins.items()} == {
        "torch": ("2.2.0", None), "lib": ("0.1.0", "git+https://github.com/a/lib@abc123")}  # fmt: skip
    pipfile = tmp_path / "Pipfile.lock"
    pipfile.write_text(json.dumps({"_meta": {}, "default": {"numpy": {"version": "==1.26.4", "hashes": ["sha256:aa"]}},
                                   "develop": {"pytest": {"version": "==8.0.0"}}}))  # fmt: skip
    got = parse_lock(pipfile, "Pipfile.lock", warnings)
    assert {k: p.version for k, p in got.pins.items()} == {"numpy": "1.26.4", "pytest": "8.0.0"}
    assert warnings == []
    bad = tmp_path / "pdm.lock"
    bad.write_bytes(b"[[package]\nname = \xff")
    assert parse_lock(bad, "pdm.lock", warnings) is None
    assert warnings[0].path == "pdm.lock" and "not usable as a baseline" in warnings[0].reason


# ------------------------------------------------------------------------------------------------ fixtures
def test_hashed_requirements_case():
    result, evidence = run(DATA / "hashed-requirements")
    assert evidence.warnings == [] and result.warnings == []
    assert summary(result) == [
        ("dependency_missing", "high", "huggingface-hub", None),
        ("dependency_changed", "critical", "numpy", 5),
        ("dependency_missing", "low", "pywin32", None),  # environment marker: win32 only
        ("dependency_missing", "high", "requests", None),
        ("dependency_changed", "critical", "transformers", 10),
        ("dependency_added", "medium", "reqeusts", 6),
        ("dependency_typosquat", "high", "reqeusts", 6),
        ("dependency_untrusted_source", "high", "transformers", 10),  # git+http: no TLS
        ("dependency_added", "medium", "acme-serving", 12),
        ("dependency_untrusted_source", "medium", "acme-serving", 12),
        ("dependency_untrusted_source", "high", "acme-ml-utils", 9),  # logs/build.log:9
        ("dependency_untrusted_source", "high", "tqdm", 13),  # logs/build.log:13, a mirror
    ]
    changed = result.findings[1]
    assert changed.evidence == {"path": "frozen_deps.txt", "package": "numpy", "baseline": "requirements.txt",
                                "line": 5, "expected": "1.26.3", "actual": "1.26.4"}  # fmt: skip
    assert changed.atlas == ("AML.T0010.001", "AML.T0011.001")
    tqdm = result.findings[-1]
    assert (
        tqdm.evidence["path"] == "logs/build.log" and tqdm.timestamp.isoformat() == "2026-11-20T08:11:13.604937+00:00"
    )
    # the token in PIP_EXTRA_INDEX_URL never reaches a finding, an event or a table
    blob = json.dumps([f.to_dict() for f in result.findings] + [e.to_dict() for e in result.events], default=str)
    blob += result.data["index_usage"].to_csv() + "".join(render_dependencies(result))
    assert "s3cr3tT0ken" not in blob and "***@pkgs.acme.example" in blob
    assert [(e.kind, e.extra["line"]) for e in result.events] == [
        ("ci:deps:extra_index", 2), ("ci:deps:extra_index", 5),
        ("ci:deps:download", 9), ("ci:deps:download", 13),
    ]  # fmt: skip


def test_internal_prefix_and_trusted_index_parameters():
    result, _ = run(DATA / "hashed-requirements", internal_prefixes="acme", trusted_index_hosts=["pkgs.acme.example"])
    confusion = [f for f in result.findings if f.category == "dependency_confusion"]
    assert [(f.severity.value, f.evidence["package"], f.evidence["extra_index_seen"]) for f in confusion] == [
        ("medium", "acme-ml-utils", "logs/build.log:2")  # exposed (version matches the lock), not yet abused
    ]
    assert "configured internal prefix" in confusion[0].detail
    assert not any(f.evidence.get("host") == "pkgs.acme.example" for f in result.findings)


def test_poetry_lock_clean_case():
    result, evidence = run(DATA / "poetry-clean")
    assert evidence.warnings == [] and result.warnings == []
    assert summary(result) == [
        ("dependency_added", "low", "scorer", 10),  # the editable application itself
        ("dependency_untrusted_source", "info", "scorer", 10),
    ]
    baselines = result.data["baselines"]
    assert baselines[["source", "kind", "complete"]].values.tolist() == [
        ["poetry.lock", "lock", True], ["monitor/config.json (baseline_dependencies)", "monitor", False]]  # fmt: skip
    packages = result.data["packages"].set_index("package")
    assert packages.loc["feature-lib", "status"] == "same" and packages.loc["numpy", "baseline source"] == "poetry.lock"


def test_reference_freeze_and_freeze_index_options(tmp_path):
    case = tmp_path / "case"
    case.mkdir()
    (case / "reference_freeze.txt").write_text("acme-core==2.0.1\nnumpy==1.26.4\nrequests==2.31.0\n")
    (case / "frozen_deps.txt").write_text(
        "-i https://pypi.org/simple\n--extra-index-url https://pypi.internal.example/simple\n"
        "acme-core==99.0.0\nacme-tools @ file:///wheels/acme_tools-1.0-py3-none-any.whl\nnumpy==1.26.4\nrequests==2.31.0\n"
    )  # fmt: skip
    result, _ = run(case)
    assert summary(result) == [
        ("dependency_changed", "critical", "acme-core", 3),
        ("dependency_added", "medium", "acme-tools", 4),
        ("dependency_untrusted_source", "low", "acme-tools", 4),
        ("dependency_confusion", "critical", "acme-core", 3),
    ]
    confusion = result.findings[-1]
    assert confusion.evidence["extra_index"] == "https://pypi.internal.example/simple"
    assert "shares its prefix with acme-tools" in confusion.detail and "looks inflated" in confusion.detail


def test_check_dependencies_without_line_or_url_columns():
    frame = pd.DataFrame({"name": ["torch"], "version": ["2.2.1"]})  # no line or url columns
    found = check_dependencies(frame, {"torch": "2.2.0", "numpy": "1.26.4"}, source="frozen_deps.txt")
    assert [(f.category, f.evidence.get("line")) for f in found] == [("dependency_missing", None),
                                                                     ("dependency_changed", None)]  # fmt: skip


# ------------------------------------------------------------------------------------------------ sample cases
@pytest.mark.skipif(not SAMPLES.is_dir(), reason="evidence-samples not generated")
def test_sample_cases():
    tampered, _ = run(SAMPLES / "tampered-weights")
    assert summary(tampered) == [
        ("dependency_changed", "critical", "safetensors", 38),  # git fork instead of 0.4.2
        ("dependency_changed", "critical", "transformers", 47),  # 4.38.1.post1
        ("dependency_untrusted_source", "low", "acme-telemetry", 2),
        ("dependency_untrusted_source", "high", "safetensors", 38),
        ("dependency_untrusted_source", "info", "sentiment-serving", 40),
        ("dependency_untrusted_source", "high", "transformers", 114),  # from http://203.0.113.7/simple
    ]
    poisoned, _ = run(SAMPLES / "poisoned-dependency")
    assert summary(poisoned) == [
        ("dependency_changed", "critical", "acme-feature-store", 1),
        ("dependency_changed", "critical", "numpy", 21),
        ("dependency_untrusted_source", "low", "acme-fraud-features", 2),
        ("dependency_untrusted_source", "info", "fraud-api", 11),
        ("dependency_typosquat", "high", "transfomers", 42),
        ("dependency_confusion", "critical", "acme-feature-store", 1),
        ("dependency_untrusted_source", "high", None, 31),  # both installed downloads from the attacker's index
    ]
    confusion, downloads = poisoned.findings[5:]
    assert confusion.evidence["extra_index"] == "https://pypi.attacker.example/simple"
    assert confusion.timestamp.isoformat() == "2026-11-21T14:02:12.177000+00:00"
    assert (downloads.evidence["host"], downloads.evidence["count"], downloads.evidence["last_line"]) == (
        "pypi.attacker.example", 2, 35)  # fmt: skip
    assert downloads.evidence["packages"] == 2 and downloads.evidence["installed"] is True
    assert "acme-feature-store" in downloads.title and "numpy" in downloads.title
    notes = poisoned.data["packages"].set_index("package")["notes"]
    assert "untrusted_source" in notes["numpy"] and "untrusted_source" in notes["acme-feature-store"]
    clean, _ = run(SAMPLES / "false-alarm")
    assert max(f.severity.rank for f in clean.findings) <= 1


# ------------------------------------------------------------------------------------------------ bounded findings
UNTRUSTED = ("mirror.corp.example", "cache.build.example", "files.other.example")


def _download_log(n_packages: int, installed: set[int]) -> tuple[str, dict]:
    """A pip log: ``Looking in indexes``, then ``Collecting`` / ``Downloading`` line pairs, package i from host i % 4
    (the fourth, files.pythonhosted.org, is trusted). Returns the text and, per (host, installed), the line numbers
    of its downloads (1-based)."""
    t0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    hosts = (*UNTRUSTED, "files.pythonhosted.org")
    lines = [f"{t0:%Y-%m-%dT%H:%M:%SZ} Looking in indexes: https://pypi.org/simple, https://{UNTRUSTED[0]}/simple"]
    where: dict[tuple[str, bool], list[int]] = {}
    for i in range(n_packages):
        ts = f"{t0 + timedelta(seconds=i + 1):%Y-%m-%dT%H:%M:%SZ}"
        host = hosts[i % 4]
        lines.append(f"{ts} Collecting pkg{i}==1.0")
        lines.append(f"{ts}   Downloading https://{host}/simple/pkg{i}/pkg{i}-1.0.tar.gz (12 kB)")
        where.setdefault((host, i in installed), []).append(len(lines))
    return "\n".join(lines) + "\n", where


def test_hundred_thousand_repetitive_lines_give_a_handful_of_findings(tmp_path):
    case = tmp_path / "ci"
    (case / "logs").mkdir(parents=True)
    installed = {0, 40, 49_996}  # on mirror.corp.example (i % 4 == 0)
    text, where = _download_log(49_999, installed)
    (case / "logs" / "build.log").write_text(text)
    assert text.count("\n") == 99_999
    (case / "frozen_deps.txt").write_text("".join(f"pkg{i}==1.0\n" for i in sorted(installed)) + "pkg2==2.0\n")
    result, evidence = run(case)
    assert evidence.warnings == [] and result.warnings == []
    rows = text.splitlines()
    found = [f for f in result.findings if f.category == "dependency_untrusted_source"]
    assert len(result.findings) == len(found) == 4  # 3 untrusted hosts, one of them also served installed packages
    by_key = {(f.evidence["host"], f.evidence["installed"]): f for f in found}
    assert set(by_key) == set(where) - {("files.pythonhosted.org", False)}
    for key, f in by_key.items():
        lines = where[key]
        assert f.evidence["count"] == len(lines) and f.evidence["packages"] == len(lines)
        assert (f.evidence["line"], f.evidence["last_line"]) == (lines[0], lines[-1])
        assert f.evidence["first_time"] == rows[lines[0] - 1][:20]
        assert f.evidence["last_time"] == rows[lines[-1] - 1][:20]
        assert len(f.evidence["examples"]) == 3 if len(lines) >= 3 else len(f.evidence["examples"]) == len(lines)
        assert all(e.startswith(f"https://{key[0]}/simple/pkg") for e in f.evidence["examples"])
        assert f.severity.value == ("high" if key[1] else "medium")
        assert f"{len(lines):,} download" in f.title and key[0] in f.title and "logs/build.log" in f.title
        events = [e for e in result.events if e.ref == f.id]
        assert len(events) == min(50, len(lines)) and [e.extra["line"] for e in events] == lines[:50]
        assert all(e.kind == "ci:deps:download" and e.source == "logs/build.log" for e in events)
    mirror = by_key[("mirror.corp.example", False)]
    assert mirror.evidence["examples"] == [f"https://mirror.corp.example/simple/pkg{i}/pkg{i}-1.0.tar.gz"
                                           for i in (4, 8, 12)]  # fmt: skip
    assert "12,497 downloads from untrusted index mirror.corp.example in logs/build.log" in mirror.title
    assert "and 12,477 more" in mirror.detail  # every package counted, twenty named
    high = by_key[("mirror.corp.example", True)]
    assert "pkg0 1.0, pkg40 1.0, pkg49996 1.0" in high.title and high.evidence["count"] == 3
    assert "package" not in high.evidence and "url" not in high.evidence  # three packages: none singled out
    assert {e.ref for e in result.events if e.kind == "ci:deps:download"} == {f.id for f in found}
    assert [e.kind for e in result.events].count("ci:deps:extra_index") == 1
    assert len(result.data["index_usage"]) == 49_999 + 2  # the table keeps every use; only findings are grouped


def test_downloads_group_per_host_and_trusted_hosts_give_none(tmp_path):
    case = tmp_path / "ci"
    (case / "logs").mkdir(parents=True)
    (case / "logs" / "build.log").write_text(
        "2026-11-20T08:00:01Z   Downloading https://a.example/p/alpha-1.0.tar.gz\n"
        "2026-11-20T08:00:02Z   Downloading https://files.pythonhosted.org/p/numpy-1.26.4.tar.gz\n"
        "2026-11-20T08:00:03Z   Downloading https://b.example/p/beta-2.0-py3-none-any.whl\n"
        "2026-11-20T08:00:04Z   Downloading https://a.example/p/alpha-1.0.tar.gz\n"
        "2026-11-20T08:00:05Z   Downloading https://pypi.org/p/torch-2.2.0.tar.gz\n"
    )  # fmt: skip
    (case / "frozen_deps.txt").write_text("alpha==1.0\nnumpy==1.26.4\ntorch==2.2.0\n")
    result, _ = run(case)
    assert [(f.evidence["host"], f.severity.value, f.evidence["count"], f.evidence["line"], f.evidence["last_line"],
             f.evidence.get("package"), f.evidence["examples"]) for f in result.findings] == [
        ("a.example", "high", 2, 1, 4, "alpha", ["https://a.example/p/alpha-1.0.tar.gz"]),
        ("b.example", "medium", 1, 3, 3, "beta", ["https://b.example/p/beta-2.0-py3-none-any.whl"]),
    ]  # fmt: skip
    assert result.findings[1].title == "1 download from untrusted index b.example in logs/build.log: beta 2.0"
    assert [f.evidence.get("url") for f in result.findings] == [  # one URL throughout: named as such
        "https://a.example/p/alpha-1.0.tar.gz", "https://b.example/p/beta-2.0-py3-none-any.whl"]  # fmt: skip
    assert result.findings[0].timestamp.isoformat() == "2026-11-20T08:00:01+00:00"
    assert result.findings[0].evidence["last_time"] == "2026-11-20T08:00:04Z"
    assert [f.id for f in run(case)[0].findings] == [f.id for f in result.findings]  # deterministic
    (case / "logs" / "build.log").write_text("2026-11-20T08:00:02Z   Downloading https://pypi.org/p/x-1.0.tar.gz\n")
    assert run(case)[0].findings == []


# ------------------------------------------------------------------------------------------------ bad input
def test_no_freeze_and_hostile_baselines(tmp_path):
    case = tmp_path / "case"
    case.mkdir()
    (case / "requirements.txt").write_bytes(b"\x00\x01\x02\xff" * 100)
    (case / "poetry.lock").write_text("this is [not toml")
    (case / "notes.md").write_text("x\n")
    result, _ = run(case)
    assert result.findings == []
    assert result.summary.startswith("No pip freeze")
    assert any(w.path == "poetry.lock" for w in result.warnings)
    assert isinstance(render_dependencies(result), list)


def test_render_escapes_evidence(tmp_path):
    case = tmp_path / "case"
    case.mkdir()
    shutil.copy(DATA / "poetry-clean" / "poetry.lock", case / "poetry.lock")
    (case / "frozen_deps.txt").write_text("numpy==1.26.4\nevil @ https://x.example/<script>alert(1)</script>.whl\n")
    result, _ = run(case)
    html = "".join(render_dependencies(result))
    assert "<script>" not in html and "&lt;script&gt;" in html
