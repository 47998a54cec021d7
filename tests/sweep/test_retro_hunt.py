"""``workbench sweep --retro-hunt``: after a rule change, exactly the stored files judged under the old rules are
rescanned and the verdicts that changed are reported; a plain re-sweep under unchanged rules rescans nothing.

The registry: a few generated signed safetensors models (a pickle rule cannot touch them) plus one signed model
holding a benign pickle written here (``collections.OrderedDict()``, never unpickled), which the shipped policy
calls safe and the team policy written here calls dangerous.
"""

from __future__ import annotations

import collections
import json
import pickle
from pathlib import Path

import yaml
from click.testing import CliRunner

from workbench import cli as cli_mod
from workbench.model.policy import DEFAULT_POLICY_PATH, load_policy
from workbench.samples.artifacts import signed_folder
from workbench.samples.registry import REGISTRY_LABEL, generate_registry, registry_key

PICKLE_MODEL = "team/state-model/r1"


def sweep(*args: object) -> dict:
    res = CliRunner().invoke(cli_mod.cli, ["sweep", *map(str, args), "--json"])
    assert res.exit_code == 0, (res.output, res.exception)
    return json.loads(res.stdout)


def team_policy(dest: Path) -> Path:
    """The shipped policy plus one dangerous rule for ``collections.OrderedDict`` (dangerous wins over the shipped
    safe ``containers`` rule, whose example is moved to another of its names)."""
    doc = yaml.safe_load(DEFAULT_POLICY_PATH.read_text())
    (containers,) = [r for r in doc["rules"] if r["id"] == "containers"]
    containers["example"] = "collections.deque"  # its own example must stay safe under the policy it is in
    doc["rules"].append({"id": "team-no-ordereddict", "class": "dangerous", "modules": ["collections"],
                         "names": ["OrderedDict"], "reason": "the team forbids OrderedDict in shipped state files",
                         "example": "collections.OrderedDict", "counterexample": "collections.deque"})  # fmt: skip
    dest.write_text(yaml.safe_dump(doc, sort_keys=False))
    load_policy(dest)  # valid (examples checked)
    return dest


def test_retro_hunt_rescans_stored_files_and_reports_the_changed_verdict(tmp_path):
    root = tmp_path / "registry"
    truth = generate_registry(root, models=4, tampered=0, unsigned=0, seed=5)
    files = {"config.json": b'{"model_type": "bert"}\n',
             "state.pkl": pickle.dumps(collections.OrderedDict(), protocol=2)}  # fmt: skip
    for name, data in signed_folder(REGISTRY_LABEL, PICKLE_MODEL, "2026-11-01T00:00:00Z", files).items():
        (root / PICKLE_MODEL / name).parent.mkdir(parents=True, exist_ok=True)
        (root / PICKLE_MODEL / name).write_bytes(data)
    total = truth.files + 4  # config.json, state.pkl, the manifest and its signature
    key, out = registry_key(tmp_path / "cosign.pub"), tmp_path / "out"
    policy = team_policy(tmp_path / "team-policy.yaml")

    first = sweep(root, "--out", out, "--workers", 1, "--key", key)
    assert first["sweep"]["files_scanned"] == total
    assert {m["verdict"] for m in first["models"]} == {"clean"}
    assert len(first["models"]) == 5

    same = sweep(root, "--out", out, "--workers", 1, "--key", key)
    assert (same["sweep"]["files_scanned"], same["sweep"]["files_reused"]) == (0, total)
    assert same["sweep"]["models_judged"] == 0 and same["changed"] == []

    hunt = sweep(root, "--out", out, "--workers", 1, "--key", key, "--retro-hunt", "--policy", policy)
    s = hunt["sweep"]
    assert s["retro_hunt"] is True
    assert (s["files_scanned"], s["files_reused"], s["models_judged"]) == (total, 0, 5)
    assert s["rules"] != first["sweep"]["rules"]
    assert [(c["model"], c["from"]) for c in hunt["changed"]] == [(PICKLE_MODEL, "clean")]
    changed = {m["path"]: m for m in hunt["models"]}[PICKLE_MODEL]
    assert changed["verdict"] in ("compromised", "suspicious") and changed["previous_verdict"] == "clean"
    assert hunt["changed"][0]["to"] == changed["verdict"]
    assert any(f["category"] == "pickle_dangerous_import" and "OrderedDict" in f["title"] + json.dumps(f["evidence"])
               for f in changed["findings"])  # fmt: skip
    assert {m["verdict"] for m in hunt["models"] if m["path"] != PICKLE_MODEL} == {"clean"}

    again = sweep(root, "--out", out, "--workers", 1, "--key", key, "--policy", policy)
    assert (again["sweep"]["files_scanned"], again["sweep"]["models_judged"]) == (0, 0)
    assert again["changed"] == []
    nothing = sweep(root, "--out", out, "--workers", 1, "--key", key, "--retro-hunt", "--policy", policy)
    assert (nothing["sweep"]["files_scanned"], nothing["sweep"]["models_judged"]) == (0, 0)
    assert nothing["changed"] == [] and len(nothing["models"]) == 5  # the store still reports every model
