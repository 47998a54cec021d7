"""Evidence loaders: one small loader per kind of evidence, found through an ordered registry.

Public API: :class:`Loader`, :class:`Loaded`, :class:`LoadContext`, :data:`REGISTRY`, :func:`load_file`,
:func:`detect_kind`.

The registry (every loader, pandas among their imports) is imported on first use of ``REGISTRY``,
``detect_kind`` or ``load_file``: a command that needs one module of this package (``diff-model`` reads
``evidence.base``) does not pay for all of them.
"""

from __future__ import annotations

from typing import Any

from workbench.evidence.base import LoadContext, Loaded, Loader

__all__ = ["REGISTRY", "LoadContext", "Loaded", "Loader", "detect_kind", "load_file"]

_FROM_REGISTRY = ("REGISTRY", "detect_kind", "load_file")


def __getattr__(name: str) -> Any:
    if name in _FROM_REGISTRY:
        from workbench.evidence import registry

        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
