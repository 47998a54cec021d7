"""The ordered registry of evidence loaders: order is priority, generic loaders last.

``REGISTRY.detect(path)`` asks each loader in turn and returns the first that claims the file;
:func:`load_file` loads a file with it. Third-party loaders can be added through the ``workbench.loaders``
entry-point group (a :class:`~workbench.evidence.base.Loader` subclass or instance); they are read on first use
and inserted before the generic loaders. A broken entry point is logged and ignored.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Iterator
from importlib.metadata import entry_points
from pathlib import Path

from workbench.errors import UnsupportedEvidence
from workbench.evidence.base import LoadContext, Loaded, Loader

__all__ = ["ENTRY_POINT_GROUP", "REGISTRY", "LoaderRegistry", "detect_kind", "load_file"]

log = logging.getLogger(__name__)

#: Entry-point group through which installed packages add loaders.
ENTRY_POINT_GROUP = "workbench.loaders"


class LoaderRegistry:
    """An explicit, ordered list of loaders; the first whose ``detect`` is True wins.

    Args:
        loaders: initial loaders, in priority order.
        entry_point_group: entry-point group read once, on first use (None: no plugins).
    """

    def __init__(self, loaders: Iterable[Loader] = (), *, entry_point_group: str | None = None) -> None:
        self._loaders: list[Loader] = []
        self._group = entry_point_group
        self._plugins_loaded = entry_point_group is None
        for loader in loaders:
            self._add(loader, None)

    def register(self, loader: Loader | type[Loader], *, before: str | None = None) -> Loader:
        """Add a loader (an instance, or a class instantiated without arguments).

        Args:
            loader: the loader.
            before: name of the loader it must precede; by default it goes before the first generic loader
                (one with ``generic = True``), i.e. after every specific one.

        Returns:
            The registered instance.

        Raises:
            ValueError: its ``name`` is already registered, or it is not a Loader.
            KeyError: ``before`` names no registered loader.
        """
        self._ensure_plugins()
        return self._add(loader, before)

    def unregister(self, name: str) -> Loader:
        """Remove and return the loader called ``name`` (KeyError when absent)."""
        loader = self.by_name(name)
        self._loaders.remove(loader)
        return loader

    def by_name(self, name: str) -> Loader:
        """The loader whose ``name`` is ``name``.

        Raises:
            KeyError: no such loader (the message lists the known names).
        """
        self._ensure_plugins()
        for loader in self._loaders:
            if loader.name == name:
                return loader
        raise KeyError(f"no evidence loader {name!r}; known: {', '.join(self.names())}")

    def names(self) -> list[str]:
        """Loader names in priority order."""
        self._ensure_plugins()
        return [loader.name for loader in self._loaders]

    def detect(self, path: str | Path) -> Loader | None:
        """The first loader that claims ``path``, or None. Never raises: a failing ``detect`` counts as False."""
        path = Path(path)
        for loader in self:
            try:
                if loader.detect(path):
                    return loader
            except Exception:  # a plugin's detect must not stop detection
                log.warning("loader %s raised in detect(%s); treated as 'not mine'", loader.name, path, exc_info=True)
        return None

    def load(self, path: str | Path, ctx: LoadContext | None = None, *, kind: str | None = None) -> Loaded:
        """Load ``path`` with the loader ``kind``, or with the first that claims it.

        Raises:
            UnsupportedEvidence: no loader claims the file.
            MalformedEvidence: the loader found the file unusable.
        """
        path = Path(path)
        ctx = ctx or LoadContext(relpath=str(path))
        loader = self.by_name(kind) if kind else self.detect(path)
        if loader is None:
            raise UnsupportedEvidence(ctx.relpath, "no evidence loader recognises this file")
        return loader.load(path, ctx)

    def __iter__(self) -> Iterator[Loader]:
        self._ensure_plugins()
        return iter(list(self._loaders))

    def __len__(self) -> int:
        self._ensure_plugins()
        return len(self._loaders)

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __repr__(self) -> str:
        return f"LoaderRegistry({self.names()!r})"

    def _add(self, loader: Loader | type[Loader], before: str | None) -> Loader:
        if isinstance(loader, type) and issubclass(loader, Loader):
            loader = loader()
        if not isinstance(loader, Loader):
            raise ValueError(f"not an evidence Loader: {loader!r}")
        if any(existing.name == loader.name for existing in self._loaders):
            raise ValueError(f"an evidence loader named {loader.name!r} is already registered")
        if before is not None:
            index = next((i for i, ld in enumerate(self._loaders) if ld.name == before), None)
            if index is None:
                raise KeyError(f"cannot register {loader.name!r} before unknown loader {before!r}")
        elif getattr(loader, "generic", False):
            index = len(self._loaders)
        else:
            index = next((i for i, ld in enumerate(self._loaders) if getattr(ld, "generic", False)), len(self._loaders))
        self._loaders.insert(index, loader)
        return loader

    def _ensure_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=self._group):
            try:
                self._add(ep.load(), None)
            except Exception:  # a broken plugin must not break the workbench
                log.warning("ignoring broken evidence loader entry point %r (%s)", ep.name, ep.value, exc_info=True)


def detect_kind(path: str | Path) -> str | None:
    """The ``name`` of the loader that claims ``path`` (e.g. ``"frozen_deps"``), or None."""
    loader = REGISTRY.detect(path)
    return loader.name if loader else None


def load_file(path: str | Path, ctx: LoadContext | None = None, *, kind: str | None = None) -> Loaded:
    """Load one evidence file with the registry's loaders.

    Args:
        path: the file.
        ctx: display path and naive-time rule (default: the path as given, UTC).
        kind: force a loader by name instead of detecting.

    Returns:
        The loader's :class:`~workbench.evidence.base.Loaded` result.

    Raises:
        UnsupportedEvidence: no loader claims the file.
        MalformedEvidence: the file is of a known kind but unusable.
    """
    return REGISTRY.load(path, ctx, kind=kind)


#: (module, class) of the built-in loaders in priority order: specific first, generic last. Imported when the
#: registry is filled, at the bottom of this module.
BUILTIN_LOADERS: tuple[tuple[str, str], ...] = (
    ("compromised_marker", "CompromisedMarkerLoader"),
    ("signature_manifest", "SignatureManifestLoader"),
    ("monitor_config", "MonitorConfigLoader"),
    ("baseline", "BaselineDistributionLoader"),
    ("monitor_alerts", "MonitorAlertsLoader"),
    ("predictions", "PredictionsLoader"),
    ("hashes", "HashesLoader"),
    ("deps", "FrozenDepsLoader"),
    ("processes", "ProcessesLoader"),
    ("network", "NetworkLoader"),
    ("actions_log", "ActionsLogLoader"),
    ("sweep_record", "SweepRecordLoader"),
    ("pipeline_log", "PipelineLogLoader"),
)


def _builtin_loaders() -> Iterator[Loader]:
    for module, cls in BUILTIN_LOADERS:
        yield getattr(importlib.import_module(f"{__package__}.{module}"), cls)()


REGISTRY = LoaderRegistry(_builtin_loaders(), entry_point_group=ENTRY_POINT_GROUP)
