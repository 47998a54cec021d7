"""The case's lock file (a requirements file with ``--hash``) in the Installed packages section, end to end."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.pyenv.installed import VERSION, build_wheel, copy_idna
from workbench.investigation import Investigation
from workbench.records import Severity


def case(root: Path, requirements: str) -> Investigation:
    copy_idna(root / "venv" / "lib" / "python3.11" / "site-packages")
    build_wheel(root / "wheelhouse")
    (root / "requirements.txt").write_text(requirements)
    (root / "case.yaml").write_text('incident_id: "INC-LOCK"\ndetection_time: "2099-01-01T00:00:00Z"\n')
    return Investigation.open(root, root.parent / f"{root.name}-out", write=False)


def test_a_wheel_the_lock_file_does_not_list_is_a_hash_mismatch_named_by_its_path_in_the_case(tmp_path):
    inv = case(tmp_path / "bad", f"idna=={VERSION} \\\n    --hash=sha256:{'0' * 64}\n")
    hits = [f for f in inv.results["packages"].findings if f.category == "package_hash_mismatch"]
    assert len(hits) == 1 and hits[0].severity is Severity.CRITICAL
    assert "requirements.txt" in hits[0].detail and str(tmp_path) not in hits[0].detail
    assert "requirements.txt" in inv.results["packages"].inputs


def test_the_wheels_own_hash_in_the_lock_file_is_no_finding_and_a_plain_requirements_file_is_no_lock(tmp_path):
    wheel = build_wheel(tmp_path / "w")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    good = case(tmp_path / "good", f"idna=={VERSION} --hash=sha256:{digest}\n")
    assert not [f for f in good.results["packages"].findings if f.category == "package_hash_mismatch"]
    plain = case(tmp_path / "plain", f"idna=={VERSION}\n")
    assert not [f for f in plain.results["packages"].findings if f.category == "package_hash_mismatch"]
    assert not [w for w in plain.results["packages"].warnings if w.path == "requirements.txt"]  # not read as a lock
