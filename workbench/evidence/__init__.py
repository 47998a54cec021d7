"""Evidence loaders: one small loader per kind of evidence, found through an ordered registry.

Public API: :class:`Loader`, :class:`Loaded`, :class:`LoadContext`, :data:`REGISTRY`, :func:`load_file`,
:func:`detect_kind`.
"""

from __future__ import annotations

from workbench.evidence.base import LoadContext, Loaded, Loader
from workbench.evidence.registry import REGISTRY, detect_kind, load_file

__all__ = ["REGISTRY", "LoadContext", "Loaded", "Loader", "detect_kind", "load_file"]
