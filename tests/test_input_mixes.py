"""Every section tolerates every mix of inputs (issue 11, point 4).

Cases are built from the tampered-weights sample: each evidence input (every loader's file, the model folders) is
present as captured, absent, empty, malformed (cut in half, binary junk, wrong JSON shape) or hostile (lone
surrogates, a pickle in its place). The mixes follow a covering design: over the mixes every input takes every state
twice, next to different states of the others. Each case runs through ``Investigation.open`` (custody
intake, loaders, every section, timeline, conclusions), which must not raise, and no section may fail.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from workbench.errors import MalformedEvidence
from workbench.investigation import Investigation

SAMPLE = Path(__file__).resolve().parent.parent / "evidence-samples" / "tampered-weights"
EVIL = b"\x80\x02cposix\nsystem\nX\n\x00\x00\x00echo pwned\x85R."
SUSPECT = "models/suspect/sentiment-model-v2.1"
REFERENCE = "models/reference/sentiment-model-v2.1"

#: the inputs varied, each a file or a folder of the sample
INPUTS = (
    "predictions/predictions.jsonl",
    "predictions/baseline_distribution.json",
    "monitor/alerts.jsonl",
    "monitor/config.json",
    "manifest.json",
    "current_hashes.txt",
    "frozen_deps.txt",
    "processes.txt",
    "network.txt",
    "actions.log",
    "logs/pipeline.log",
    f"{SUSPECT}/model.safetensors",
    f"{SUSPECT}/config.json",
    f"{SUSPECT}/optimizer.pkl",
    f"{SUSPECT}/COMPROMISED.txt",
    f"{SUSPECT}/.signatures/manifest.json",
    REFERENCE,
)
STATES = ("present", "absent", "empty", "malformed", "hostile")
MIXES = 10


def _malformed(rel: str, data: bytes) -> bytes:
    if rel.endswith((".json", ".jsonl", ".safetensors")):
        return data[: len(data) // 2]  # cut: invalid JSON, a truncated header
    if rel.endswith(".pkl"):
        return data[:7]  # a pickle stream that ends before STOP
    if rel == "case.yaml":
        return b"incident_id: [unclosed\n"
    return bytes(range(256)) * 4  # binary junk under a text name


def _hostile(rel: str, data: bytes) -> bytes:
    if rel.endswith(".jsonl"):
        lines = data.splitlines()
        return b"\n".join([*lines[:-1], lines[-1].replace(b'"', b'"\\ud800', 1), b'{"type": "\\udcff"}']) + b"\n"
    if rel.endswith(".json"):
        return data.replace(b'"', b'"\\ud800', 1) if data.lstrip().startswith(b"{") else EVIL
    if rel.endswith(".safetensors"):
        return data[:8] + data[8:].replace(b'"', b'"\\ud800', 1)  # same length prefix: now a broken header
    if rel == "case.yaml":
        return b'title: "\\ud800"\n'
    return EVIL  # a pickle where text is expected


def _apply(case: Path, rel: str, state: str) -> None:
    path = case / rel
    if state == "present":
        return
    if path.is_dir():
        if state == "absent":
            shutil.rmtree(path)
        elif state == "empty":
            for child in path.rglob("*"):
                if child.is_file():
                    child.write_bytes(b"")
        else:
            for child in [c for c in path.rglob("*") if c.is_file()]:
                child.write_bytes((_malformed if state == "malformed" else _hostile)(child.name, child.read_bytes()))
        return
    if state == "absent":
        path.unlink()
    elif state == "empty":
        path.write_bytes(b"")
    else:
        path.write_bytes((_malformed if state == "malformed" else _hostile)(rel, path.read_bytes()))


def mix(i: int) -> dict[str, str]:
    """Mix ``i``: input ``j`` takes state ``(i * (j % 4 + 1) + j) % 5``; over 10 mixes every input takes each state
    twice. ``case.yaml`` is present, absent or empty (malformed, it makes the case unusable: tested apart)."""
    states = {rel: STATES[(i * (j % 4 + 1) + j) % len(STATES)] for j, rel in enumerate(INPUTS)}
    return states | {"case.yaml": STATES[i % 3]}


def test_the_design_covers_every_state_of_every_input_twice():
    for rel in INPUTS:
        seen = [mix(i)[rel] for i in range(MIXES)]
        assert all(seen.count(s) == 2 for s in STATES), (rel, seen)


@pytest.mark.parametrize("state", ["malformed", "hostile"])
def test_an_unusable_case_yaml_is_refused_by_name(tmp_path, state):
    case = tmp_path / "case"
    shutil.copytree(SAMPLE, case)
    _apply(case, "case.yaml", state)
    with pytest.raises(MalformedEvidence, match=r"case\.yaml"):
        Investigation.open(case, tmp_path / "out", write=False)


@pytest.mark.parametrize("i", range(MIXES))
def test_a_mix_of_inputs_never_breaks_the_run(tmp_path, i):
    case = tmp_path / "case"
    shutil.copytree(SAMPLE, case)
    for rel, state in mix(i).items():
        _apply(case, rel, state)
    inv = Investigation.open(case, tmp_path / "out", write=False)
    failed = {k: f"{type(e).__name__}: {e}" for k, e in inv.errors.items()}
    assert failed == {}, mix(i)
    assert inv.conclusions is not None and inv.conclusions.verdict in {"compromised", "suspicious", "clean",
                                                                       "inconclusive"}  # fmt: skip
    for w in inv.evidence.warnings:  # every text the run keeps is valid Unicode
        (w.path + w.reason).encode("utf-8")
    for f in inv.findings:
        (f.title + f.detail + str(f.evidence)).encode("utf-8")
