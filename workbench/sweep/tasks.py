"""What a sweep's workers run: plain functions of picklable arguments returning plain data (dicts of JSON values).

* :func:`file_task`: one file: its SHA-256 (streamed) and the static scan of its content
  (:func:`workbench.model.scan.scan_model` on the file: pickles analysed without being loaded, archives opened,
  formats sniffed); for a file larger than one shard only the scan, its digest coming from the shard tasks;
* :func:`shard_task`: the SHA-256 of one byte range of a large file; :func:`combine_shards` joins the ranges'
  digests, in order, into the file's content key (``sha256-shards:<shard bytes>:<hex>``, deterministic);
* :func:`model_task`: one model once its files are done: the signature checked with the sweep's trust material
  against the file digests, and the comparison with its baseline (a reference copy, down to the tensor when a file
  differs, or the digests of a manifest or a previous sweep); a file whose digest the baseline records in another
  form (a plain SHA-256 where this sweep has a shard key, or another range size) is hashed again in that form first.

Nothing from a model is loaded, imported or executed. Each task bounds its own memory: files are streamed, tensors
compared in blocks.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

__all__ = ["SHARD_BYTES", "combine_shards", "file_task", "model_not_checked", "model_task", "shard_task"]

#: a file larger than this is hashed as ranges of this size, one task each
SHARD_BYTES = 1 << 30
#: how a shard key begins: ``sha256-shards:<range size>:<hex>``
SHARD_PREFIX = "sha256-shards:"
_READ = 8 * 1024 * 1024
#: team policies loaded once per worker process
_POLICIES: dict[str, Any] = {}


def _findings(items: list[Any]) -> list[dict[str, Any]]:
    return [f.to_dict() for f in items]


def file_task(path: str, display: str, *, hash_it: bool = True, policy: str | None = None) -> dict[str, Any]:
    """Hash (unless ``hash_it`` is False) and scan one file; ``display`` is how its findings name it; ``policy``: a
    pickle import policy file replacing the shipped one."""
    from workbench.hashing import sha256_file
    from workbench.model.policy import load_policy
    from workbench.model.scan import scan_model

    out: dict[str, Any] = {"path": path, "sha256": None, "size": None, "findings": [], "unexamined": [],
                           "warnings": [], "error": None}  # fmt: skip
    try:
        if hash_it:
            out["sha256"], out["size"] = sha256_file(Path(path))
        rules = _POLICIES.setdefault(policy, load_policy(policy)) if policy else None
        scan = scan_model(path, display_prefix=display.rpartition("/")[0], policy=rules, use_picklescan=True)
    except Exception as exc:  # noqa: BLE001 - a worker reports, the sweep records "not analysed" with the reason
        out["error"] = f"{type(exc).__name__}: {exc}"
        return out
    out["findings"] = _findings(scan.findings)
    out["unexamined"] = list(scan.unexamined)
    out["warnings"] = [f"{w.path}: {w.reason}" for w in scan.warnings]
    return out


def shard_task(path: str, offset: int, length: int) -> str:
    """SHA-256 (hex) of ``length`` bytes of ``path`` from ``offset`` (streamed; no symlink followed)."""
    from workbench import safeio

    digest = hashlib.sha256()
    left = length
    with safeio.open_evidence(Path(path)) as fh:
        fh.seek(offset)
        while left > 0:
            block = fh.read(min(_READ, left))
            if not block:
                raise OSError(f"{path}: shorter than expected (ended {left} bytes before offset {offset + length})")
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


def combine_shards(digests: list[str], shard_bytes: int) -> str:
    """The content key of a file hashed in ranges: SHA-256 over the ranges' digests in order (deterministic)."""
    joined = hashlib.sha256("".join(digests).encode()).hexdigest()
    return f"{SHARD_PREFIX}{shard_bytes}:{joined}"


def _shard_size(key: str) -> int | None:
    """The range size of a shard key; None for a plain SHA-256; 0 for a malformed shard key."""
    if not key.startswith(SHARD_PREFIX):
        return None
    size = key[len(SHARD_PREFIX) :].partition(":")[0]
    return int(size) if size.isdigit() and int(size) > 0 else 0


def _aligned(folder: Path, current: dict[str, str], baseline: dict[str, str]) -> dict[str, str]:
    """``current`` with every file whose digest is not in the baseline's form (a shard key against a plain
    SHA-256, or shard keys of another range size) hashed again in that form, so that equal content compares
    equal: a large file of this sweep is a shard key, the same file in a reference copy or an older manifest is
    not."""
    from workbench.hashing import sha256_file

    out = dict(current)
    for name, key in current.items():
        want = baseline.get(name)
        if want is None or _shard_size(want) == _shard_size(key) or _shard_size(want) == 0:
            continue
        shard, path = _shard_size(want), folder / name
        if shard is None:
            out[name] = sha256_file(path)[0]
            continue
        size = path.lstat().st_size
        ranges = [shard_task(str(path), o, min(shard, size - o)) for o in range(0, size, shard)]
        out[name] = combine_shards(ranges, shard)
    return out


def model_not_checked(reason: str) -> dict[str, Any]:
    """A model whose signature and baseline could not be checked (a file could not be hashed): the reason."""
    return {"findings": [], "unexamined": [], "limits": [], "signature": None, "baseline": None,
            "error": f"signature and baseline not checked: {reason}"}  # fmt: skip


def model_task(model_dir: str, rel: str, digests: dict[str, str], trust: Any, baseline: dict[str, Any] | None,
               display: str) -> dict[str, Any]:  # fmt: skip
    """The signature and the baseline comparison of one model (module docstring).

    Args:
        model_dir: the model folder.
        rel: its path in the registry (named in titles).
        digests: ``{file: digest}`` of its files (plain SHA-256, or a shard key for large files).
        trust: a :class:`workbench.model.trust.Trust` or None.
        baseline: None, ``{"kind": "copy", "path": folder}`` or ``{"kind": "digests", "digests": {...},
            "source": text}``.
        display: the model as its findings name it.
    """
    from workbench.model.signatures import verify_model_signature

    out: dict[str, Any] = {"findings": [], "unexamined": [], "limits": [], "signature": None, "baseline": None,
                           "error": None}  # fmt: skip
    folder = Path(model_dir)
    content = _content(digests)
    whole = all(not v.startswith(SHARD_PREFIX) for v in content.values())  # else: re-hashed as it prescribes
    try:
        sig = verify_model_signature(folder, trust, model_id=rel, display_prefix=display,
                                     hashes=content if whole else None)  # fmt: skip
        out["signature"] = sig.outcome
        out["findings"] += _findings(sig.findings)
        if baseline is not None:
            out["baseline"] = _compare(folder, rel, digests, baseline, display, out)
    except Exception as exc:  # noqa: BLE001 - reported as the model's error: its verdict cannot be clean
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out


def _compare(folder: Path, rel: str, digests: dict[str, str], baseline: dict[str, Any], display: str,
             out: dict[str, Any]) -> str:  # fmt: skip
    """Compare with the baseline; findings and what could not be compared go to ``out``; returns how it compared."""
    from workbench.checks.integrity import hash_model_dir
    from workbench.model.dirdiff import diff_model

    if baseline["kind"] == "copy":
        ref = Path(baseline["path"])
        ref_digests = hash_model_dir(ref)
        current = _aligned(folder, _content(digests), ref_digests)
        if current == ref_digests:
            return "identical to the reference copy"
        diff = diff_model(folder, ref, model_id=rel, display_prefix=display, reference_prefix=str(ref),
                          suspect_hashes=current, reference_hashes=ref_digests)  # fmt: skip
        out["findings"] += _findings(diff.findings)
        out["unexamined"] += list(diff.unexamined)
        out["limits"] += list(diff.limits)
        return f"compared with the reference copy {ref}"
    from workbench.checks.integrity import check_model_integrity

    current = _aligned(folder, _content(digests), baseline["digests"])
    found = check_model_integrity(folder, baseline["digests"], model_id=rel, display_prefix=display,
                                  baseline_source=baseline["source"], current=current)  # fmt: skip
    out["findings"] += _findings(found)
    return f"compared with {baseline['source']}"


def _content(digests: dict[str, str]) -> dict[str, str]:
    """The model's files as :func:`workbench.checks.integrity.hash_model_dir` lists them (signatures left out)."""
    from workbench.checks.integrity import is_model_content

    return {k: v for k, v in digests.items() if is_model_content(k)}
