"""Loader for the integrity monitor's configuration (``monitor/config.json``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from workbench.errors import MalformedEvidence
from workbench.evidence.base import LoadContext, Loaded, Loader, is_regular_file, read_json, sniff_json, sniff_text
from workbench.records import EvidenceWarning

__all__ = ["MonitorConfigLoader", "webhook_origin"]

_MODEL_KEYS = ("monitored_models", "models")
_MONITOR_KEYS = ("check_interval_seconds", "behavior_drift_threshold", "baseline_dependencies", "alert_webhook")
_HEAD_MONITORED = re.compile(r'"monitored_models"\s*:\s*[\[{]')
_HEAD_MODELS = re.compile(r'"models"\s*:\s*[\[{]')
_HEAD_MONITOR_KEY = re.compile(r'"(?:' + "|".join(_MONITOR_KEYS) + r')"\s*:')
_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*===?\s*(\S+)\s*$")


def webhook_origin(url: str) -> str | None:
    """``https://hooks.example.com/services/T0/B0/SECRET?x=1`` -> ``https://hooks.example.com``.

    Only the scheme and host are kept: the path, query, fragment, user info and port are dropped because a
    webhook URL's path or query is often its secret. None when ``url`` has no scheme or host.
    """
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        return None
    if not parts.scheme or not host or not re.fullmatch(r"[a-z][a-z0-9+.-]*", parts.scheme.lower()):
        return None
    return f"{parts.scheme.lower()}://{host}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _looks_like_monitor(doc: dict) -> bool:
    if isinstance(doc.get("monitored_models"), list | dict):
        return True
    models = doc.get("models")
    if not isinstance(models, list | dict):
        return False
    if any(k in doc for k in _MONITOR_KEYS):
        return True
    items = list(models.values()) if isinstance(models, dict) else models
    return bool(items) and all(isinstance(m, dict) and ("path" in m or "critical" in m) for m in items)


class MonitorConfigLoader(Loader):
    """The monitor's configuration: which models it watches and its baselines.

    Models come from ``monitored_models`` or ``models`` (a list of ``{id, path, critical}`` objects, or an object
    keyed by model id). ``meta`` holds ``models_key``, ``baseline_dependencies`` ({name: version}),
    ``behavior_drift_threshold``, ``check_interval_seconds`` and ``alert_webhook`` reduced to scheme and host
    (the rest of a webhook URL may be a secret and is never kept).

    Columns:
        model_id (str): the model's id (``id``, ``model_id`` or ``name``).
        path (str): where the monitor expects the model, or null.
        critical (bool): the ``critical`` flag, or null when absent.
    """

    name: ClassVar[str] = "monitor_config"
    columns: ClassVar[dict[str, str]] = {"model_id": "str", "path": "str", "critical": "bool"}

    def detect(self, path: Path) -> bool:
        """JSON object with ``monitored_models``, or ``models`` plus monitor keys or ``{path, critical}`` items."""
        if not is_regular_file(path) or path.suffix.lower() != ".json":
            return False
        doc = sniff_json(path)
        if isinstance(doc, dict):
            return _looks_like_monitor(doc)
        text, complete = sniff_text(path)
        if complete or not text.lstrip().startswith("{"):
            return False
        if _HEAD_MONITORED.search(text):
            return True
        return bool(_HEAD_MODELS.search(text)) and (
            bool(_HEAD_MONITOR_KEY.search(text)) or path.parent.name.lower() == "monitor"
        )

    def load(self, path: Path, ctx: LoadContext) -> Loaded:
        """Parse the config; a model entry without an id is a warning and is skipped."""
        warnings: list[EvidenceWarning] = []
        doc = read_json(path, ctx, warnings)
        if not isinstance(doc, dict):
            raise MalformedEvidence(ctx.relpath, "monitor config is not a JSON object")
        key = next((k for k in _MODEL_KEYS if k in doc), None)
        if key is None or not isinstance(doc[key], list | dict):
            raise MalformedEvidence(ctx.relpath, "monitor config has no 'monitored_models' or 'models' list")
        models = doc[key]
        if isinstance(models, dict):
            items = [(k, v, f"{key}[{k!r}]") for k, v in models.items()]
        else:
            items = [(None, v, f"{key}[{i}]") for i, v in enumerate(models)]
        rows = [row for item in items if (row := self._model(*item, ctx, warnings)) is not None]
        if items and not rows:
            raise MalformedEvidence(ctx.relpath, f"no usable model entry in '{key}'")
        meta: dict[str, Any] = {"models_key": key, "baseline_dependencies": self._deps(doc, ctx, warnings)}
        for field in ("behavior_drift_threshold", "check_interval_seconds"):
            value = doc.get(field)
            if value is not None and not _is_number(value):
                warnings.append(EvidenceWarning(ctx.relpath, None, f"{field} is not a number: {value!r:.60}"))
                value = None
            meta[field] = value
        hook = doc.get("alert_webhook")
        meta["alert_webhook"] = webhook_origin(hook) if isinstance(hook, str) else None
        if hook not in (None, "") and meta["alert_webhook"] is None:
            warnings.append(EvidenceWarning(ctx.relpath, None, "alert_webhook is not a URL (value not kept)"))
        return Loaded(self.name, ctx.relpath, self.make_frame(rows), warnings, meta)

    @staticmethod
    def _model(key: str | None, entry: Any, where: str, ctx: LoadContext, warnings: list) -> dict | None:
        if isinstance(entry, str):  # ["model-id", ...] or {"model-id": "/models/path"}
            entry = {"id": entry} if key is None else {"path": entry}
        if not isinstance(entry, dict):
            warnings.append(EvidenceWarning(ctx.relpath, None, f"{where}: not an object"))
            return None
        model_id = next((entry[k] for k in ("id", "model_id", "name") if isinstance(entry.get(k), str)), key)
        if not model_id:
            warnings.append(EvidenceWarning(ctx.relpath, None, f"{where}: no model id"))
            return None
        mpath, critical = entry.get("path"), entry.get("critical")
        if mpath is not None and not isinstance(mpath, str):
            warnings.append(EvidenceWarning(ctx.relpath, None, f"{where}: 'path' is not text, ignored"))
            mpath = None
        if isinstance(critical, str) and critical.strip().lower() in {"true", "false", "yes", "no"}:
            critical = critical.strip().lower() in {"true", "yes"}
        elif critical is not None and not isinstance(critical, bool):
            warnings.append(EvidenceWarning(ctx.relpath, None, f"{where}: 'critical' is not a boolean, ignored"))
            critical = None
        return {"model_id": model_id, "path": mpath, "critical": critical}

    @staticmethod
    def _deps(doc: dict, ctx: LoadContext, warnings: list) -> dict[str, str]:
        """``baseline_dependencies`` as {name: version}; also accepts a list of ``name==version`` strings."""
        raw = doc.get("baseline_dependencies")
        if raw is None:
            return {}
        if isinstance(raw, list):
            pairs = [m.groups() for s in raw if isinstance(s, str) and (m := _PIN.match(s))]
            if len(pairs) != len(raw):
                warnings.append(EvidenceWarning(ctx.relpath, None, "baseline_dependencies: some items not name==ver"))
            return dict(pairs)
        if not isinstance(raw, dict):
            warnings.append(EvidenceWarning(ctx.relpath, None, "baseline_dependencies is not an object, ignored"))
            return {}
        deps: dict[str, str] = {}
        for name, version in raw.items():
            if isinstance(version, str):
                deps[name] = version
            else:
                warnings.append(
                    EvidenceWarning(ctx.relpath, None, f"baseline_dependencies[{name!r}]: version is not text")
                )
        return deps
