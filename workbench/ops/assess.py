"""``assess``: capture the evidence that `workbench investigate` reads, then take custody of it.

Captured (each file written atomically; formats in docs/evidence-formats.md):

* ``current_hashes.txt``: ``sha256sum`` lines (absolute paths, escapes as GNU coreutils) of every regular file of
  the deployed model, streamed; symlinks are listed in actions.log, never followed.
* ``manifest.json``: copy of the model's ``.signatures/manifest.json`` (or a WARNING that the model is unsigned).
* ``models/suspect/<model_id>/``: a hash-verified copy of the deployed model (``copy_model``), and
  ``models/reference/<model_id>/``: the newest archived version whose signature verifies (``reference="auto"``),
  or a given folder; ``keys/cosign.pub``: the signing key used.
* ``frozen_deps.txt`` (``python -m pip freeze``), ``processes.txt`` (``ps aux``), ``network.txt`` (``ss -tunap``).
* ``python-env/<n>/``: the inventory of each site-packages folder of that interpreter (purelib, platlib):
  ``capture.json``, ``files.jsonl`` (every file's size, mtime, SHA-256) and ``tree/`` (dist-info metadata,
  top-level ``.pth``, sitecustomize), as :func:`workbench.ops.pyenv_capture.capture_environment` writes it.
* ``monitor/config.json`` (webhook reduced to scheme and host: its path is a secret) and ``monitor/alerts.jsonl``.
* ``case.yaml`` (incident id, affected model), when absent.

Then a custody intake of the folder into ``<incidents>/<incident_id>.custody/assess-<time>/custody.jsonl``:
outside the evidence tree, as :func:`workbench.custody.intake` requires, one ledger per assess run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from workbench import safeio
from workbench.ops import fsutil
from workbench.ops.config import webhook_origin
from workbench.ops.containment import ContainmentError, Incident, utc_stamp
from workbench.ops.rollback import archive_candidates, choose_version
from workbench.ops.signing import verify_version

__all__ = ["AssessResult", "assess", "sha256sum_lines"]

TIMEOUT = 120
#: run by the serving interpreter (``-I``: no current folder, user site or PYTHON* variables on its path) to name
#: its site-packages folders; site.py still runs, as for pip freeze, since a virtual environment needs it
_SITE_PROBE = (
    "import json,sys,sysconfig; p=sysconfig.get_paths(); "
    "print(json.dumps([p['purelib'], p['platlib'], sys.version.split()[0]]))"
)


@dataclass(frozen=True, slots=True)
class AssessResult:
    """The incident folder, the custody ledger written for it and its head hash."""

    incident_dir: Path
    ledger: Path
    head: str


def _escape(name: str) -> tuple[str, bool]:
    escaped = name.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    return escaped, escaped != name


def sha256sum_lines(model: Path) -> tuple[str, dict[str, str], list[tuple[str, str]]]:
    """``sha256sum`` output for every regular file of ``model`` (as ``find MODEL -type f -exec sha256sum``).

    Returns:
        (text, symlinks {rel: target}, skipped [(rel, reason)]).
    """
    digests = fsutil.hash_tree(model)
    _, _, links, skipped = fsutil.walk_entries(model)
    lines = []
    for rel in sorted(digests):
        name, escaped = _escape(str(model / rel))
        lines.append(("\\" if escaped else "") + f"{digests[rel]}  {name}")
    return "".join(line + "\n" for line in lines), links, skipped


def _run(argv: list[str]) -> bytes | str:
    """Stdout of a capture command, or the reason it failed."""
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=TIMEOUT, check=False)  # noqa: S603 (fixed argument list of a capture tool, no shell)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{argv[0]}: {exc}"
    if proc.returncode != 0 and not proc.stdout:
        return f"exit {proc.returncode}: {proc.stderr.decode(errors='replace').strip()[:200]}"
    return proc.stdout


def _freeze(python: str) -> tuple[bytes, str | None]:
    out = _run([python, "-m", "pip", "freeze"])
    if isinstance(out, bytes):
        return out, None
    if python != sys.executable:
        raise ContainmentError(f"pip freeze with {python} failed: {out}", 3)
    from importlib.metadata import distributions

    pins = sorted({f"{d.metadata['Name']}=={d.version}" for d in distributions() if d.metadata["Name"]})
    return "".join(p + "\n" for p in pins).encode(), out


def _capture_model(inc: Incident, model: Path, copy_model: bool) -> None:
    text, links, skipped = sha256sum_lines(model)
    inc.write("current_hashes.txt", text.encode("utf-8"))
    inc.log(f"Model hashes captured: {inc.dir / 'current_hashes.txt'}")
    for rel, target in sorted(links.items()):
        inc.log(f"WARNING: {rel} in the model folder is a symlink to {target!r} (not followed, not hashed)")
    for rel, reason in skipped:
        inc.log(f"WARNING: {rel}: {reason}")
    manifest = model / ".signatures" / "manifest.json"
    if manifest.is_file() and not manifest.is_symlink():
        inc.write("manifest.json", safeio.read_bytes(manifest))
        inc.log("Model signature manifest preserved")
    else:
        inc.log("WARNING: Model has no signatures")
    if copy_model:
        dest = inc.dir / "models" / "suspect" / inc.model_id
        _copy_into(inc, model, dest, "Model copied for analysis")


def _copy_into(inc: Incident, src: Path, dest: Path, label: str) -> None:
    if dest.exists():
        inc.log(f"WARNING: {dest.relative_to(inc.dir)} already captured; kept as it was")
        return
    try:
        report = fsutil.copy_verified(src, dest, keep_symlinks=True)
    except fsutil.CopyError as exc:
        inc.log(f"WARNING: {label} skipped: {exc.strerror}")
        return
    except OSError as exc:
        raise ContainmentError(f"cannot copy {src} to {dest}: {exc.strerror or exc}", 3) from None
    links = f", {len(report.links)} symlinks kept as links" if report.links else ""
    inc.log(f"{label}: {dest.relative_to(inc.dir)} ({len(report.files)} files{links}, SHA-256 verified)")


def _capture_reference(inc: Incident, reference: str | None, public_key: Path | None) -> None:
    if not reference or reference == "none":
        return
    if reference == "auto":
        checks = [verify_version(p, public_key) for p in archive_candidates(inc.roots.archive, inc.model_id)]
        picked = choose_version(checks)
        if picked is None:
            inc.log(f"WARNING: no archived version of {inc.model_id} verifies; no reference copy captured")
            return
    else:
        picked = verify_version(Path(reference), public_key)
    state = "signature VERIFIED" if picked.verified else f"NOT verified: {picked.reason}"
    inc.log(f"Reference version: {picked.path} ({state})")
    _copy_into(inc, picked.path, inc.dir / "models" / "reference" / inc.model_id, "Reference copied")
    if public_key is not None and public_key.is_file() and not (inc.dir / "keys" / "cosign.pub").exists():
        inc.write("keys/cosign.pub", safeio.read_bytes(public_key))
        inc.log("Signing public key preserved: keys/cosign.pub")


def _capture_host(inc: Incident, python: str) -> None:
    frozen, fallback = _freeze(python)
    inc.write("frozen_deps.txt", frozen)
    if fallback:
        inc.log(f"WARNING: pip freeze failed ({fallback}); packages listed from importlib.metadata instead")
    inc.log("Dependencies captured")
    for tool, args, name, label in (
        ("ps", ["aux"], "processes.txt", "Process list captured"),
        ("ss", ["-tunap"], "network.txt", "Network connections captured"),
    ):
        exe = shutil.which(tool)
        out = _run([exe, *args]) if exe else f"{tool} not found"
        if isinstance(out, str):
            inc.log(f"WARNING: {name} not captured: {out}")
            continue
        inc.write(name, out)
        inc.log(label)


def _site_dirs(python: str) -> tuple[list[Path], str | None] | str:
    """The interpreter's site-packages folders (purelib, platlib; deduplicated) and version, or why not."""
    out = _run([python, "-I", "-c", _SITE_PROBE])
    if isinstance(out, str):
        return out
    try:
        purelib, platlib, version = json.loads(out.decode("utf-8", "replace").strip().splitlines()[-1])
    except (ValueError, IndexError, TypeError):
        return f"unexpected answer from {python}: {out[:200]!r}"
    dirs: dict[str, Path] = {}
    for raw in (purelib, platlib):
        if isinstance(raw, str) and Path(raw).is_absolute():
            dirs.setdefault(os.path.realpath(raw), Path(raw))  # lib64 -> lib: one folder
    return list(dirs.values()), version if isinstance(version, str) else None


def _capture_python_env(inc: Incident, python: str) -> None:
    from workbench.ops.pyenv_capture import capture_environment

    found = _site_dirs(python)
    if isinstance(found, str):
        inc.log(f"WARNING: Python environment inventory not captured: {found}")
        return
    dirs, version = found
    n = 0
    for site in dirs:
        n += 1
        while (inc.dir / "python-env" / str(n)).exists():  # an earlier assess run's capture is kept
            n += 1
        rel = f"python-env/{n}"
        try:
            summary = capture_environment(Path(os.path.realpath(site)), inc.dir / rel, python_version=version)
        except OSError as exc:
            inc.log(f"WARNING: Python environment inventory of {site} not captured: {exc.strerror or exc}")
            continue
        inc.log(f"Python environment inventory captured: {rel} ({site}: {summary.files} files, {summary.copied} "
                f"copied, {summary.symlinks} symlinks)")  # fmt: skip
        for note in summary.notes:
            inc.log(f"WARNING: {rel}: {note}")


def _capture_monitor(inc: Incident, config: Path | None, alerts: Path | None) -> None:
    if config is not None:
        raw = safeio.read_bytes(config)
        try:
            doc = json.loads(raw)
            if isinstance(doc, dict) and isinstance(doc.get("alert_webhook"), str):
                doc["alert_webhook"] = webhook_origin(doc["alert_webhook"])
                raw = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
        except ValueError:
            pass
        inc.write("monitor/config.json", raw)
        inc.log("Monitor configuration preserved (webhook reduced to its origin)")
    if alerts is not None:
        data = safeio.read_bytes(alerts)
        inc.write("monitor/alerts.jsonl", data)
        inc.log(f"Monitor alerts preserved ({sum(1 for line in data.splitlines() if line.strip())} alerts)")


def assess(
    inc: Incident,
    *,
    python: str = sys.executable,
    copy_model: bool = True,
    reference: str | None = "auto",
    public_key: Path | None = None,
    monitor_config: Path | None = None,
    alerts: Path | None = None,
    python_env: bool = True,
) -> AssessResult:
    """Capture the model state, host state and monitor output, then take custody of the incident folder.

    Args:
        inc: the opened incident (:func:`workbench.ops.containment.open_incident`).
        python: interpreter whose packages are frozen (the serving environment's).
        copy_model: copy the deployed model into ``models/suspect/<id>``.
        reference: ``"auto"`` (newest verified archived version), a folder, or None/``"none"``.
        public_key: the signing key (PEM) used to verify archived versions.
        monitor_config / alerts: the monitor's configuration and alerts JSONL to preserve.
        python_env: capture the inventory of ``python``'s site-packages into ``python-env/``.

    Returns:
        The :class:`AssessResult`.

    Raises:
        ContainmentError: a file cannot be written (disk full, permission; the file is named, none is left half
            written) or an input file cannot be read.
    """
    inc.log(f"ASSESS: Starting incident assessment for model {inc.model_id}")
    inc.log("Capturing model state...")
    try:
        model = inc.model_dir_or_none()
        if model is None:
            inc.problem(f"Model {inc.model_id} not found in {inc.roots.models}")
        else:
            _capture_model(inc, model, copy_model)
        _capture_reference(inc, reference, public_key)
        _capture_host(inc, python)
        if python_env:
            _capture_python_env(inc, python)
        _capture_monitor(inc, monitor_config, alerts)
        if not (inc.dir / "case.yaml").exists():
            meta = {
                "incident_id": inc.incident_id,
                "title": f"Assessment of model {inc.model_id}",
                "affected_models": [inc.model_id],
            }  # JSON is YAML: every value quoted
            inc.write("case.yaml", "".join(f"{k}: {json.dumps(v)}\n" for k, v in meta.items()).encode())
    except OSError as exc:
        raise ContainmentError(f"cannot read {exc.filename}: {exc.strerror or exc}", 3) from None
    return _intake(inc)


def _intake(inc: Incident) -> AssessResult:
    from workbench import custody
    from workbench.case import Case
    from workbench.errors import WorkbenchError

    run_dir = inc.custody_dir / f"assess-{utc_stamp().replace(':', '')}-{uuid.uuid4().hex[:6]}"
    inc.log(f"Custody intake of the incident folder: {run_dir / custody.LEDGER_NAME}")
    try:
        ledger = custody.intake(Case.open(inc.dir), run_dir)
    except (WorkbenchError, OSError) as exc:
        raise ContainmentError(f"custody intake failed: {exc}", 3) from None
    inc.echo(f"Assessment complete. Evidence in: {inc.dir}")
    inc.echo(f"Custody ledger: {ledger.path} (head {ledger.head})")
    inc.echo("Next steps: Review evidence, then run with 'isolate' or 'rollback'")
    return AssessResult(inc.dir, ledger.path, ledger.head)
