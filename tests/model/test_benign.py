"""No noise on real models (issue 12): the scanner stays quiet on the benign set and states every file's coverage.

The set (``tests/data/benign/``, see its README) holds real files: shipped in the wheels of joblib, numpy, scipy,
torch and onnx, or produced by scikit-learn/joblib, numpy, scipy, torch, keras and gguf. Each file is scanned alone
with the real scanner (:func:`workbench.model.scan.scan_model`, picklescan's opinion included, as ``scan-model``
runs it); the MiniLM test model is scanned as the folder the package installs.

"Quiet" means no finding of high or critical severity, without exception. The file-type notice of a pickle-based
file under its own name ("pickle-based: loading it runs the pickle") is low: it says what the format is, not that
this file is hostile (every PyTorch checkpoint is a pickle), and drives the "convert to safetensors" action; a
*critical* ``dangerous_file_type`` (a pickle in disguise) is noise and counts.

Files that are noisy today (another engineer's fix under way) carry a strict xfail naming the finding: the test
flips the day the fix lands, and the mark must then go. ``/tmp/benign_fp.md`` (written by
``benchmarks/eval_scanners.py --fp-report``) lists them by area.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.model import hostile_fixtures as hf
from workbench.model.inventory import Artefact
from workbench.model.scan import ModelScan, scan_model
from workbench.records import Severity

BENIGN = Path(__file__).resolve().parents[1] / "data" / "benign"
MANIFEST = json.loads((BENIGN / "MANIFEST.json").read_text(encoding="utf-8"))
FILES = [e["path"] for e in MANIFEST["files"]]
LOUD = {Severity.HIGH, Severity.CRITICAL}
#: the file-type notice of a pickle-based format (category, severity): below the noise line (see the docstring)
FORMAT_NOTICE = ("dangerous_file_type", Severity.LOW)
STATES = ("analysed", "partially analysed: ", "not analysed: ")

#: files noisy today: the findings (area: severity category) that a fix in progress removes -> the files
KNOWN_NOISY: dict[str, tuple[str, ...]] = {
    # TorchScript archives (.ptl, .pt2, __torch__ globals, *.debug_pkl) became quiet with the containers' context;
    # the Cython unpicklers of numpy.random and sklearn._loss are on the safe list by exact name
}
NOISY = {rel: why for why, rels in KNOWN_NOISY.items() for rel in rels}


def noise(scan: ModelScan) -> list[str]:
    """The high and critical findings of ``scan``, as ``"severity category: title"``."""
    return [f"{f.severity.value} {f.category}: {f.title}" for f in scan.findings if f.severity in LOUD]


def _params(paths: list[str]) -> list:
    marks = {
        p: pytest.mark.xfail(reason=f"issue 12: {why}", strict=True, raises=AssertionError) for p, why in NOISY.items()
    }
    return [pytest.param(p, id=p, marks=marks.get(p, ())) for p in paths]


@pytest.mark.parametrize("rel", _params(FILES))
def test_benign_file_has_no_high_finding(rel: str) -> None:
    scan = scan_model(BENIGN / rel)
    assert scan.inventory.artefacts, f"{rel}: not inventoried"
    assert noise(scan) == []


@pytest.mark.parametrize("rel", FILES)
def test_benign_file_has_a_coverage_state(rel: str) -> None:
    if "coverage" not in Artefact.__dataclass_fields__:
        pytest.skip("coverage states not built yet (issue 12, part 2)")
    scan = scan_model(BENIGN / rel, use_picklescan=False)
    tops = [a for a in scan.inventory.artefacts if a.member is None]
    assert [a.path for a in tops] == [Path(rel).name]
    for art in scan.inventory.artefacts:
        assert art.coverage.startswith(STATES), (art.path, art.member, art.coverage)
        if art.coverage != "analysed":  # fail closed: every gap is also in the scan's unexamined list
            assert any(art.path in u for u in scan.unexamined), (art.path, art.coverage, scan.unexamined)


def test_minilm_model_is_quiet_and_analysed(minilm_dir: Path) -> None:
    scan = scan_model(minilm_dir)
    assert {a.path for a in scan.inventory.artefacts} >= {"model.safetensors", "config.json", "tokenizer.json"}
    assert [f"{f.severity.value} {f.category}: {f.title}" for f in scan.findings if f.severity in LOUD] == []
    if "coverage" in Artefact.__dataclass_fields__:
        assert {a.path: a.coverage for a in scan.inventory.artefacts if a.coverage != "analysed"} == {}
    assert scan.unexamined == []


def test_manifest_matches_the_files() -> None:
    on_disk = sorted(
        p.relative_to(BENIGN).as_posix()
        for p in BENIGN.rglob("*")
        if p.is_file() and p.name not in ("MANIFEST.json", "README.md")
    )
    assert sorted(FILES) == on_disk
    for entry in MANIFEST["files"]:
        data = (BENIGN / entry["path"]).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (entry["size"], entry["sha256"]), entry["path"]
        assert entry["origin"] == "produced" or entry["origin"].startswith("shipped: "), entry["path"]
        assert entry["version"] != "not installed", entry["path"]


def test_set_stays_small() -> None:
    assert sum(e["size"] for e in MANIFEST["files"]) < 10 * 1024 * 1024


def test_noise_counts_a_hostile_pickle_and_the_format_notice_is_low(tmp_path: Path) -> None:
    """The criterion on real scans: a torch state dict is quiet, the same archive calling os.system is loud."""
    quiet = tmp_path / "quiet" / "model.pt"
    loud = tmp_path / "loud" / "model.pt"
    for path, pkl in ((quiet, hf.torch_state_dict_pickle()), (loud, hf.global_reduce())):
        path.parent.mkdir()
        path.write_bytes(hf.torch_zip(pkl))
    quiet_scan = scan_model(quiet.parent, use_picklescan=False)
    assert any((f.category, f.severity) == FORMAT_NOTICE for f in quiet_scan.findings)
    assert noise(quiet_scan) == []
    assert any(n.startswith("critical pickle_dangerous_import") for n in noise(scan_model(loud.parent)))
