"""What a stored verdict depends on besides the files and the rules, and failures that must not stop a sweep."""

from __future__ import annotations

import json

from click.testing import CliRunner

from workbench import cli as cli_mod
from workbench.samples.registry import generate_registry, registry_key
from workbench.sweep.registry import ModelFile, ModelRef
from workbench.sweep.run import SweepOptions, _failed, _Model, context_digest
from workbench.sweep.tasks import model_not_checked
from workbench.sweep.verdicts import model_verdict


def sweep(*args: object) -> dict:
    res = CliRunner().invoke(cli_mod.cli, ["sweep", *map(str, args), "--json"])
    assert res.exit_code == 0, (res.output, res.exception)
    return json.loads(res.stdout)


def test_a_re_sweep_with_new_trust_material_judges_again_and_a_relative_key_works(tmp_path, monkeypatch):
    truth = generate_registry(tmp_path / "reg", models=6, tampered=1, unsigned=1, seed=3)
    registry_key(tmp_path / "keys" / "cosign.pub")
    out = tmp_path / "out"
    first = sweep(tmp_path / "reg", "--out", out, "--workers", "1")
    assert first["sweep"]["models_judged"] == 6
    monkeypatch.chdir(tmp_path)  # a relative --key: the workers must be given it absolute
    again = sweep("reg", "--out", "out", "--workers", "1", "--key", "keys/cosign.pub")
    assert again["sweep"]["files_scanned"] == 0 and again["sweep"]["models_judged"] == 6  # the key changed it
    got = {m["path"]: m for m in again["models"]}
    assert {m for m, d in got.items() if d["signature"] == "verified"} == set(truth.models) - set(truth.tampered) - set(
        truth.unsigned
    )
    assert got[truth.tampered[0]]["verdict"] == "compromised" and got[truth.tampered[0]]["signature"] == "invalid"
    same = sweep("reg", "--out", "out", "--workers", "1", "--key", "keys/cosign.pub")
    assert same["sweep"]["models_judged"] == 0  # nothing changed: nothing judged again


def test_the_context_digest_follows_the_key_bytes_the_signer_and_the_baseline(tmp_path):
    from workbench.model.trust import Trust

    key = tmp_path / "k.pub"
    key.write_bytes(b"one")
    base = SweepOptions(roots=[tmp_path], out=tmp_path / "o", trust=Trust(key=key))
    first = context_digest(base)
    key.write_bytes(b"two")
    assert context_digest(base) != first
    assert context_digest(SweepOptions(roots=[tmp_path], out=tmp_path / "o", trust=Trust(key=key, identity="a@x",
                                                                                           issuer="https://i"))) \
        != context_digest(base)  # fmt: skip
    assert context_digest(SweepOptions(roots=[tmp_path], out=tmp_path / "o", trust=Trust(key=key),
                                       baseline=tmp_path)) != context_digest(base)  # fmt: skip


def test_a_failed_range_or_task_leaves_the_model_not_examined_never_clean(tmp_path):
    ref = ModelRef(str(tmp_path), "org/m/r1", (ModelFile("model.safetensors", 10, 1), ModelFile("config.json", 2, 1)))
    m = _Model(ref)
    assert _failed("shard", m, (ref.files[0], 3), "OSError: shorter than expected") is None
    assert "a byte range could not be hashed" in m.failed["model.safetensors"]
    scan = _failed("file", m, ref.files[1], "KilledWorker: lost")
    verdict, _, detail = model_verdict(ref, {"config.json": scan, "model.safetensors": {"error": m.failed[
        "model.safetensors"]}}, model_not_checked("no digest for model.safetensors"))  # fmt: skip
    assert verdict == "inconclusive"
    assert any("KilledWorker" in u for u in detail["unexamined"])
    assert any("signature and baseline not checked" in u for u in detail["unexamined"])
