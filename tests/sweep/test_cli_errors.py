"""``workbench sweep`` refuses unusable input with exit status 2, naming what is wrong, before anything is swept."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench import cli as cli_mod


@pytest.fixture
def registry(tmp_path) -> Path:
    model = tmp_path / "registry" / "m" / "r1"
    model.mkdir(parents=True)
    (model / "config.json").write_text('{"model_type": "bert"}\n')
    return tmp_path / "registry"


def run(*args: object):
    return CliRunner().invoke(cli_mod.cli, ["sweep", *map(str, args)])


def _refused(res, *named: str, out: Path) -> None:
    assert res.exit_code == 2, res.output
    for text in named:
        assert text in res.stderr, res.stderr
    assert not out.exists()  # nothing swept, no store written


def test_missing_registry(tmp_path, registry):
    missing = tmp_path / "no-such-registry"
    _refused(run(registry, missing, "--out", tmp_path / "out"), str(missing), "not a registry folder",
             out=tmp_path / "out")  # fmt: skip


def test_registry_that_is_a_file_or_a_symlink(tmp_path, registry):
    file = tmp_path / "model.safetensors"
    file.write_bytes(b"x")
    _refused(run(file, "--out", tmp_path / "out"), str(file), "not a registry folder", out=tmp_path / "out")
    link = tmp_path / "link"
    link.symlink_to(registry, target_is_directory=True)
    _refused(run(link, "--out", tmp_path / "out"), str(link), "not a registry folder", out=tmp_path / "out")


def test_missing_baseline(tmp_path, registry):
    missing = tmp_path / "no-such-baseline"
    _refused(run(registry, "--baseline", missing, "--out", tmp_path / "out"), f"--baseline {missing}",
             "does not exist", out=tmp_path / "out")  # fmt: skip


def test_unreadable_manifest_baseline(tmp_path, registry):
    manifest = tmp_path / "MANIFEST.json"
    manifest.write_text("{not json")
    _refused(run(registry, "--baseline", manifest, "--out", tmp_path / "out"), str(manifest),
             "not a readable JSON manifest", out=tmp_path / "out")  # fmt: skip
    manifest.write_text('{"models": 3}')
    _refused(run(registry, "--baseline", manifest, "--out", tmp_path / "out"), str(manifest), "no 'models' mapping",
             out=tmp_path / "out")  # fmt: skip


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("version: 2\nrules: []\n", "expected a mapping with version: 1"),
        ("version: 1\nrules:\n  - id: x\n    class: maybe\n", "(rule x): class must be safe or dangerous"),
        ("version: 1\nrules: [\n", "cannot read the policy"),
    ],
)
def test_invalid_policy(tmp_path, registry, text, said):
    policy = tmp_path / "team.yaml"
    policy.write_text(text)
    _refused(run(registry, "--policy", policy, "--out", tmp_path / "out"), f"--policy {policy}", said,
             out=tmp_path / "out")  # fmt: skip


def test_missing_policy(tmp_path, registry):
    res = run(registry, "--policy", tmp_path / "absent.yaml", "--out", tmp_path / "out")
    assert res.exit_code == 2 and "absent.yaml" in res.stderr
    assert not (tmp_path / "out").exists()
