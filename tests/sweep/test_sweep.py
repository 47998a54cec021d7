"""``workbench sweep`` end to end on a generated registry, on a real Dask LocalCluster (2 workers).

One registry (60 models, 3 tampered, 2 unsigned, 1 large split into shards) and its reference copy are generated
per module and swept once plainly (``main``); the other sweeps read it and write their own output folders. What
mutates a registry works on its own small one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from workbench import cli as cli_mod
from workbench.samples.artifacts import _sign
from workbench.samples.registry import REGISTRY_LABEL, generate_registry, registry_key

SHARD = 1 << 20  # the smallest --shard-size
LARGE = 3 * SHARD + 4321  # four ranges
VERDICTS = {"compromised", "suspicious", "clean", "inconclusive"}
WORKBENCH = Path(sys.executable).with_name("workbench")


def sweep(*args: object, code: int = 0) -> dict:
    """Run ``workbench sweep ARGS --json`` in-process; check the exit status; the document."""
    res = CliRunner().invoke(cli_mod.cli, ["sweep", *map(str, args), "--json"])
    assert res.exit_code == code, (res.output, res.exception)
    return json.loads(res.stdout)


def by_path(doc: dict) -> dict[str, dict]:
    return {m["path"]: m for m in doc["models"]}


def categories(model: dict, file: str | None = None) -> set[str]:
    """Finding categories of a model (only those naming ``file`` when given)."""
    return {f["category"] for f in model["findings"]
            if file is None or str(f["evidence"].get("path", "")).endswith("/" + file)}  # fmt: skip


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def reg(tmp_path_factory) -> SimpleNamespace:
    base = tmp_path_factory.mktemp("sweep")
    truth = generate_registry(base / "registry", models=60, tampered=3, unsigned=2, large=1, large_bytes=LARGE,
                              reference=base / "reference", seed=7)  # fmt: skip
    assert len(truth.large) == 1 and len(truth.tampered) == 3 and len(truth.unsigned) == 2
    pickled = [t for t in truth.tampered if (base / "registry" / t / "optimizer.pkl").is_file()]
    assert len(pickled) == 1  # every third tampered model gets a pickle, the others an edited tensor
    return SimpleNamespace(base=base, root=base / "registry", ref=base / "reference", truth=truth,
                           key=registry_key(base / "cosign.pub"), pickled=pickled[0],
                           edited=[t for t in truth.tampered if t not in pickled])  # fmt: skip


@pytest.fixture(scope="module")
def main(reg) -> dict:
    """The plain sweep: key given, small shards."""
    return sweep(reg.root, "--out", reg.base / "main", "--workers", 2, "--key", reg.key, "--shard-size", SHARD)


@pytest.fixture(scope="module")
def reference_sweep(reg) -> dict:
    """The untouched originals swept with the default shard size (the large file is one plain SHA-256 there)."""
    return sweep(reg.ref, "--out", reg.base / "reference-sweep", "--workers", 2, "--key", reg.key)


def test_names_exactly_the_planted_models(reg, main):
    models = by_path(main)
    assert sorted(models) == reg.truth.models
    flagged = {p for p, m in models.items() if m["verdict"] != "clean"}
    assert flagged == set(reg.truth.tampered) | set(reg.truth.unsigned)
    for rel in reg.truth.tampered:
        assert models[rel]["verdict"] == "compromised"
        assert models[rel]["signature"] == "invalid"
        assert "signature_invalid" in categories(models[rel])
    assert "pickle_dangerous_import" in categories(models[reg.pickled], "optimizer.pkl")
    for rel in reg.truth.unsigned:
        assert models[rel]["verdict"] == "compromised"
        assert models[rel]["signature"] == "unsigned"
        assert "model_unsigned" in categories(models[rel])
    for rel in set(models) - flagged:
        assert models[rel]["signature"] == "verified"
    assert main["by_verdict"] == {"compromised": 5, "suspicious": 0, "inconclusive": 0, "clean": 55}


def test_json_document_contract(reg, main):
    s = main["sweep"]
    assert (s["models"], s["models_judged"]) == (60, 60)
    assert (s["files"], s["files_scanned"], s["files_reused"]) == (reg.truth.files, reg.truth.files, 0)
    assert s["roots"] == [str(reg.root.absolute())] and s["workers"] == 2
    for m in main["models"]:
        assert not Path(m["path"]).is_absolute() and (reg.root / m["path"]).is_dir()
        assert m["registry"] == str(reg.root.absolute())
        assert m["verdict"] in VERDICTS
        assert isinstance(m["findings"], list)
        assert all({"category", "severity", "title", "evidence"} <= set(f) for f in m["findings"])
        assert set(m["digests"]) == {p.relative_to(reg.root / m["path"]).as_posix()
                                     for p in (reg.root / m["path"]).rglob("*") if p.is_file()}  # fmt: skip
    out = reg.base / "main"
    assert json.loads((out / "fleet.json").read_text()) == main
    records = [json.loads(p.read_text()) for p in sorted((out / "models").glob("*.json"))]
    assert [(r["model"], r["verdict"]) for r in records] == [(m["path"], m["verdict"]) for m in main["models"]]
    html = (out / "fleet.html").read_text()
    assert all(rel in html for rel in reg.truth.tampered + reg.truth.unsigned)


def test_large_file_is_hashed_in_shards_deterministically(reg, main, reference_sweep):
    rel = reg.truth.large[0]
    path = reg.root / rel / "model.safetensors"
    data = path.read_bytes()
    assert len(data) > 3 * SHARD
    ranges = [hashlib.sha256(data[o : o + SHARD]).hexdigest() for o in range(0, len(data), SHARD)]
    expected = f"sha256-shards:{SHARD}:{hashlib.sha256(''.join(ranges).encode()).hexdigest()}"
    assert len(ranges) == 4
    assert by_path(main)[rel]["digests"]["model.safetensors"] == expected
    assert by_path(main)[rel]["verdict"] == "clean"  # the signature checked against the re-hashed file
    # a second sweep of the same file computes the same key
    again = sweep(reg.root, "--out", reg.base / "again", "--workers", 1, "--shard-size", SHARD)
    assert by_path(again)[rel]["digests"]["model.safetensors"] == expected
    # without --shard-size, the default range is larger than the file: one plain SHA-256
    assert by_path(reference_sweep)[rel]["digests"]["model.safetensors"] == hashlib.sha256(data).hexdigest()


def _check_baseline_findings(reg, doc: dict, tamper_category: str, source: str) -> None:
    models = by_path(doc)
    for rel in reg.edited:
        assert tamper_category in categories(models[rel], "model.safetensors"), models[rel]["findings"]
    assert "unexpected_model_file" in categories(models[reg.pickled], "optimizer.pkl")
    assert {p for p, m in models.items() if m["verdict"] != "clean"} == set(reg.truth.tampered + reg.truth.unsigned)
    for rel in set(reg.truth.models) - set(reg.truth.tampered):
        assert not categories(models[rel]) & {"model_file_tampered", "unexpected_model_file", "tensor_modified"}
        assert source in models[rel]["baseline"]


def test_baseline_reference_registry_down_to_the_tensor(reg):
    doc = sweep(reg.root, "--out", reg.base / "vs-reference", "--workers", 2, "--key", reg.key, "--shard-size", SHARD,
                "--baseline", reg.ref)  # fmt: skip
    _check_baseline_findings(reg, doc, "tensor_modified", "identical to the reference copy")
    models = by_path(doc)
    for rel in reg.edited:
        assert "compared with the reference copy" in models[rel]["baseline"]
    # the large file: a shard key here, a plain SHA-256 in the reference, the same content: not a difference
    assert models[reg.truth.large[0]]["baseline"] == "identical to the reference copy"


def test_baseline_previous_sweep(reg, reference_sweep):
    assert {m["verdict"] for m in reference_sweep["models"]} == {"clean", "compromised"}  # the unsigned ones
    doc = sweep(reg.root, "--out", reg.base / "vs-previous", "--workers", 2, "--key", reg.key, "--shard-size", SHARD,
                "--baseline", reg.base / "reference-sweep")  # fmt: skip
    _check_baseline_findings(reg, doc, "model_file_tampered", "compared with the previous sweep in")


def test_baseline_manifest_unsigned_and_signed(reg, reference_sweep):
    plain = reg.base / "plain" / "MANIFEST.json"
    plain.parent.mkdir()
    shutil.copyfile(reg.base / "reference-sweep" / "fleet.json", plain)
    doc = sweep(reg.root, "--out", reg.base / "vs-manifest", "--workers", 2, "--key", reg.key, "--shard-size", SHARD,
                "--baseline", plain)  # fmt: skip
    _check_baseline_findings(reg, doc, "model_file_tampered", "compared with manifest MANIFEST.json")

    signed = reg.base / "signed" / "MANIFEST.json"
    signed.parent.mkdir()
    data = json.dumps({"models": {m["path"]: m["digests"] for m in reference_sweep["models"]}}).encode()
    signed.write_bytes(data)
    signed.with_name("MANIFEST.json.sig").write_bytes(_sign(REGISTRY_LABEL, data))
    doc = sweep(reg.root, "--out", reg.base / "vs-signed", "--workers", 2, "--key", reg.key, "--shard-size", SHARD,
                "--baseline", signed)  # fmt: skip
    _check_baseline_findings(reg, doc, "model_file_tampered", "compared with manifest MANIFEST.json")


def test_manifest_bad_signature_or_no_key_exits_2(reg, tmp_path):
    manifest = tmp_path / "MANIFEST.json"
    manifest.write_text(json.dumps({"models": {}}))
    manifest.with_name("MANIFEST.json.sig").write_bytes(_sign(REGISTRY_LABEL, b"some other manifest"))
    for extra, said in ((["--key", reg.key], "does not verify"), ([], "no --key was given")):
        res = CliRunner().invoke(cli_mod.cli, ["sweep", str(reg.root), "--out", str(tmp_path / "out"),
                                               "--baseline", str(manifest), *map(str, extra)])  # fmt: skip
        assert res.exit_code == 2, res.output
        assert "MANIFEST.json" in res.stderr and said in res.stderr
        assert not (tmp_path / "out").exists()  # refused before anything was swept


def test_resweep_rescans_one_changed_file_and_shared_tampered_file(tmp_path):
    truth = generate_registry(tmp_path / "small", models=8, tampered=2, unsigned=1, seed=3)
    key = registry_key(tmp_path / "cosign.pub")
    out = tmp_path / "out"
    first = sweep(tmp_path / "small", "--out", out, "--workers", 1, "--key", key)
    assert {p for p, m in by_path(first).items() if m["verdict"] != "clean"} == set(truth.tampered + truth.unsigned)
    assert first["shared_files"] == []
    bad, victim = truth.tampered[0], sorted(set(truth.models) - set(truth.tampered) - set(truth.unsigned))[0]
    tampered_file = tmp_path / "small" / bad / "model.safetensors"
    shutil.copyfile(tampered_file, tmp_path / "small" / victim / "model.safetensors")

    second = sweep(tmp_path / "small", "--out", out, "--workers", 1, "--key", key)
    s = second["sweep"]
    assert (s["files_scanned"], s["files_reused"], s["models_judged"]) == (1, truth.files - 1, 1)
    assert by_path(second)[victim]["verdict"] == "compromised"
    assert second["changed"] == [{"model": victim, "registry": str((tmp_path / "small").absolute()),
                                  "from": "clean", "to": "compromised"}]  # fmt: skip
    shared = [x for x in second["shared_files"] if x["digest"] == sha256(tampered_file)]
    assert len(shared) == 1
    assert shared[0]["files"] == sorted([f"{bad}/model.safetensors", f"{victim}/model.safetensors"])
    assert "signature_invalid" in shared[0]["categories"]


def _stored_files(db: Path) -> int:
    if not db.is_file():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute("SELECT count(*) FROM files").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def test_interrupted_sweep_resumes_where_it_stopped(reg, main):
    out = reg.base / "interrupted"
    args = [str(WORKBENCH), "sweep", str(reg.root), "--out", str(out), "--workers", "1", "--key", str(reg.key),
            "--shard-size", str(SHARD)]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and _stored_files(out / "sweep.sqlite") == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "run the same command again to resume" in err
    stored = _stored_files(out / "sweep.sqlite")
    assert 0 < stored < reg.truth.files

    resumed = sweep(*args[2:])
    assert resumed["sweep"]["files_scanned"] == reg.truth.files - stored
    assert resumed["sweep"]["files_reused"] == stored
    assert {p: m["verdict"] for p, m in by_path(resumed).items()} == {p: m["verdict"] for p, m in by_path(main).items()}
    assert {p: m["digests"] for p, m in by_path(resumed).items()} == {p: m["digests"] for p, m in by_path(main).items()}
