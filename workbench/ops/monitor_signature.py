"""The monitor's signature check: the workbench's one verifier, run when a model's files change.

A model configured with trust material (``public_key``, ``ca_bundle``, ``trusted_root``...) has its signature
verified by :func:`workbench.model.signatures.verify_model_signature` at the first cycle and again whenever the
digests of its files, or the stat of its signature files, change; the result is cached per model in between, so
an unchanged folder costs nothing. Outcomes become alerts: ``invalid`` -> ``SIGNATURE_INVALID`` (critical, one per
file that differs, or one for the signature), ``unsigned`` -> ``MODEL_UNSIGNED`` (high), ``unverified`` /
``unverifiable_offline`` / ``unsupported`` -> ``SIGNATURE_UNVERIFIED`` (medium). ``verified`` raises nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["SignatureWatch"]

_ALERT = {"invalid": ("SIGNATURE_INVALID", "critical"), "unsigned": ("MODEL_UNSIGNED", "high"),
          "unverified": ("SIGNATURE_UNVERIFIED", "medium"), "unverifiable_offline": ("SIGNATURE_UNVERIFIED", "medium"),
          "unsupported": ("SIGNATURE_UNVERIFIED", "medium")}  # fmt: skip


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino)


class SignatureWatch:
    """Per-model cache of the last verification: ``check`` re-verifies only when the fingerprint changed."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[Any, list[tuple[str, str, str, str | None]]]] = {}

    def check(self, model_id: str, folder: Path, trust: Mapping[str, Any], content: Mapping[str, str],
              signature_files: list[str]) -> list[tuple[str, str, str, str | None]]:  # fmt: skip
        """``(kind, severity, message, file)`` for each alert the signature raises now.

        Args:
            model_id / folder: the model.
            trust: the model's trust material (see :class:`~workbench.ops.config.ModelSpec`); empty: nothing done.
            content: ``{relative path: sha256}`` of the model's files (signature files excluded), as just hashed.
            signature_files: the folder's signature files (relative).
        """
        if not trust:
            return []
        fingerprint = (tuple(sorted(content.items())), tuple((r, _stat(folder / r)) for r in sorted(signature_files)))
        cached = self._last.get(model_id)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        alerts = self._verify(folder, trust, content)
        self._last[model_id] = (fingerprint, alerts)
        return alerts

    @staticmethod
    def _verify(folder: Path, trust: Mapping[str, Any], content: Mapping[str, str],
                ) -> list[tuple[str, str, str, str | None]]:  # fmt: skip
        from workbench.model.signatures import verify_model_signature
        from workbench.model.trust import Trust

        result = verify_model_signature(folder, Trust(**trust), hashes=content)
        if result.outcome == "verified":
            return []
        kind, severity = _ALERT[result.outcome]
        return [(kind, severity, f.title, f.evidence.get("path") if result.bad_files else None)
                for f in result.findings]  # fmt: skip
