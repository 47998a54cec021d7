"""The trust material of a case: what ``case.yaml``, the case's ``keys/`` folder and the analysis options give.

Precedence, per field: the analysis option (``investigate --key/--ca-bundle/--trusted-root/--signature``, or
``-p public_key=...``), then ``case.yaml`` (``public_key``, ``ca_bundle``, ``trusted_root``, ``signature``,
``signer_identity``, ``signer_issuer``; paths inside the case), then the case's ``keys/`` folder, each file
classified by its content (:func:`~workbench.model.trust.classify_trust_file`) and used when it is the only one of
its kind. A path that leaves the case, or is not a regular file, is a warning and is not used.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from workbench.errors import EvidenceError
from workbench.model.trust import Trust, classify_trust_file
from workbench.records import EvidenceWarning

if TYPE_CHECKING:
    from workbench.analysis import AnalysisContext

__all__ = ["find_trust"]

#: Trust field -> its case.yaml key (and analysis option of the same name)
_YAML_KEY = {"key": "public_key", "ca_bundle": "ca_bundle", "trusted_root": "trusted_root", "signature": "signature"}
MAX_KEY_FILES = 64


def _in_case(ctx: AnalysisContext, value: str, key: str, warnings: list[EvidenceWarning]) -> Path | None:
    try:
        path = ctx.case.path(value)
    except EvidenceError:
        warnings.append(EvidenceWarning("case.yaml", None, f"{key} {value!r} leaves the evidence tree: not used"))
        return None
    if not path.is_file() or path.is_symlink():
        why = f"{key} {value!r} is missing or not a regular file: not used"
        warnings.append(EvidenceWarning("case.yaml", None, why))
        return None
    return path


def _shown(ctx: AnalysisContext, path: Path) -> str:
    root = ctx.case.root
    return path.relative_to(root).as_posix() if root in path.parents else str(path)


def _from_keys_folder(ctx: AnalysisContext) -> dict[str, Path]:
    kinds: dict[str, list[Path]] = {}
    candidates = [f for f in ctx.case.files if f.relpath.startswith("keys/")][:MAX_KEY_FILES]
    for f in candidates:
        path = ctx.case.root / f.fs_relpath
        kind = classify_trust_file(path)
        if kind is not None:
            kinds.setdefault(kind, []).append(path)
    return {kind: paths[0] for kind, paths in kinds.items() if len(paths) == 1}


def find_trust(ctx: AnalysisContext, options: dict[str, str | None]) -> tuple[Trust, list[EvidenceWarning]]:
    """The case's :class:`Trust` (``shown``: case-relative paths) and the warnings about what was not used.

    Args:
        ctx: the analysis context (its case).
        options: the analysis options read by the model analysis: ``key``, ``ca_bundle``, ``trusted_root``,
            ``signature``, ``identity``, ``issuer`` (None when not given).
    """
    warnings: list[EvidenceWarning] = []
    meta = ctx.case.meta
    found: dict[str, Path] = {}
    for name, yaml_key in _YAML_KEY.items():
        if given := options[name]:
            found[name] = Path(given)
        elif getattr(meta, yaml_key) and (path := _in_case(ctx, getattr(meta, yaml_key), yaml_key, warnings)):
            found[name] = path
    for kind, path in _from_keys_folder(ctx).items():
        found.setdefault(kind, path)
    identity = options.get("identity") or meta.signer_identity
    issuer = options.get("issuer") or meta.signer_issuer
    trust = Trust(**found, identity=identity or None, issuer=issuer or None,
                  shown={name: _shown(ctx, path) for name, path in found.items()})  # fmt: skip
    return trust, warnings
