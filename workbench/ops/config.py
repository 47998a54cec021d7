"""The integrity monitor's configuration: the original playbook's format, validated with messages naming the field.

Format (JSON object)::

    {
      "check_interval_seconds": 300,                       # > 0
      "alert_webhook": "https://hooks.example.com/...",    # http(s) URL, or null; WORKBENCH_ALERT_WEBHOOK overrides
      "models": [{"id": "m", "path": "/models/m", "critical": true}],   # or "monitored_models" (Phase 1 name)
      "baseline_dependencies": {"torch": "2.2.0"},         # or ["torch==2.2.0", ...]
      "behavior_drift_threshold": 0.15,                    # >= 0 (validated; used by the drift analysis)

      # workbench additions, all optional
      "trust_mtime": false,                 # skip re-hashing a file whose size and mtime match the baseline
      "webhook_timeout_seconds": 10,
      "webhook_backoff_seconds": 1,         # first delay after a failed delivery, doubled up to the maximum
      "webhook_max_backoff_seconds": 300,
      "check_max_backoff_seconds": 600,     # cap of the back-off of a check that keeps failing
      "state_file": "state.json", "alerts_file": "alerts.jsonl", "queue_file": "webhook-queue.jsonl",
      "public_key": "keys/cosign.pub",      # signature trust material (also per model): public_key, ca_bundle,
      "trusted_root": "trusted_root.json"   # trusted_root, signer_identity, signer_issuer
    }

With trust material, each model's signature is verified by the workbench's one verifier whenever its files change
(``SIGNATURE_INVALID`` critical, ``MODEL_UNSIGNED`` high, ``SIGNATURE_UNVERIFIED`` medium). Signature files
themselves are never model content: adding or replacing one is no ``UNEXPECTED_FILE``.

Relative ``state_file`` / ``alerts_file`` / ``queue_file`` are resolved against the config file's folder. An unknown
key is an error (a mistyped key would otherwise silently fall back to a default), with the closest known key
suggested.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from workbench.errors import WorkbenchError

__all__ = ["ConfigError", "ModelSpec", "MonitorConfig", "load_config", "parse_config", "webhook_origin"]

MAX_CONFIG_BYTES = 1024 * 1024
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+@-]{0,127}$")
_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*===?\s*(\S+)\s*$")
#: the signature trust material, per model or at the top as every model's default (paths are files)
_TRUST_KEYS = {"public_key": "key", "ca_bundle": "ca_bundle", "trusted_root": "trusted_root",
               "signer_identity": "identity", "signer_issuer": "issuer"}  # fmt: skip
_TOP_KEYS = {
    "check_interval_seconds",
    "alert_webhook",
    "models",
    "monitored_models",
    "baseline_dependencies",
    "behavior_drift_threshold",
    "trust_mtime",
    "webhook_timeout_seconds",
    "webhook_backoff_seconds",
    "webhook_max_backoff_seconds",
    "check_max_backoff_seconds",
    "state_file",
    "alerts_file",
    "queue_file",
    *_TRUST_KEYS,
}
_MODEL_KEYS = {"id", "path", "critical", *_TRUST_KEYS}


class ConfigError(WorkbenchError):
    """The monitor configuration is unusable.

    Attributes:
        source: the config file (or ``"config"``).
        field: the offending field as a path (``models[1].path``), or None for the file itself.
        reason: what is wrong.
    """

    def __init__(self, source: str, reason: str, field: str | None = None) -> None:
        self.source = source
        self.field = field
        self.reason = reason
        where = f"{source}: field '{field}'" if field else source
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One monitored model: ``id`` (a safe name), ``path`` (its folder), ``critical``, and the trust material its
    signature is verified with each time its files change (``trust``: ``{key, ca_bundle, trusted_root, identity,
    issuer}``, the model's own entries over the top-level defaults; empty: the signature is not verified)."""

    id: str
    path: Path
    critical: bool = True
    trust: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    """A validated monitor configuration (see the module docstring for the format)."""

    models: tuple[ModelSpec, ...]
    check_interval_seconds: float = 300.0
    alert_webhook: str | None = None
    baseline_dependencies: Mapping[str, str] = field(default_factory=dict)
    behavior_drift_threshold: float = 0.15
    trust_mtime: bool = False
    webhook_timeout_seconds: float = 10.0
    webhook_backoff_seconds: float = 1.0
    webhook_max_backoff_seconds: float = 300.0
    check_max_backoff_seconds: float = 600.0
    state_file: Path | None = None
    alerts_file: Path | None = None
    queue_file: Path | None = None
    source: str = "config"

    def with_webhook(self, url: str | None) -> MonitorConfig:
        """A copy with ``alert_webhook`` replaced (validated), e.g. from ``WORKBENCH_ALERT_WEBHOOK``."""
        return replace(self, alert_webhook=_webhook(url or None, "environment", "alert_webhook"))

    @property
    def webhook_display(self) -> str | None:
        """The webhook's scheme and host only: its path or query is often the secret and is never logged."""
        return webhook_origin(self.alert_webhook) if self.alert_webhook else None


def webhook_origin(url: str) -> str | None:
    """``https://hooks.example.com/services/T0/B0/SECRET?x=1`` -> ``https://hooks.example.com:port`` (no path)."""
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in {"http", "https"} or not host:
        return None
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port else "")


def _kind(value: Any) -> str:
    return (
        "null"
        if value is None
        else {dict: "object", list: "array", str: "text", bool: "boolean"}.get(type(value), type(value).__name__)
    )


def _number(doc: Mapping[str, Any], key: str, default: float, src: str, *, positive: bool = True) -> float:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(src, f"must be a number, got {_kind(value)} {value!r:.40}", key)
    if positive and value <= 0:
        raise ConfigError(src, f"must be greater than 0, got {value}", key)
    if not positive and value < 0:
        raise ConfigError(src, f"must not be negative, got {value}", key)
    return float(value)


def _webhook(value: Any, src: str, key: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(src, f"must be an http(s) URL or null, got {_kind(value)}", key)
    if webhook_origin(value) is None:
        # the value itself may hold a secret: never echo it
        raise ConfigError(src, "must be an http:// or https:// URL with a host (value not shown)", key)
    return value.strip()


def _unknown(keys: set[str], known: set[str], src: str, where: str) -> None:
    for key in sorted(keys - known):
        close = difflib.get_close_matches(key, sorted(known), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; known fields: {', '.join(sorted(known))}"
        raise ConfigError(src, f"unknown field{hint}", f"{where}{key}")


def _trust(entry: Mapping[str, Any], src: str, where: str, base: Path | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, name in _TRUST_KEYS.items():
        value = entry.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(src, f"must be text, got {_kind(value)}", where + key)
        if key.startswith("signer_"):
            out[name] = value.strip()
            continue
        p = Path(value)
        out[name] = p if p.is_absolute() or base is None else base / p
    return out


def _models(doc: Mapping[str, Any], src: str, base: Path | None) -> tuple[ModelSpec, ...]:
    present = [k for k in ("models", "monitored_models") if k in doc]
    if not present:
        raise ConfigError(src, "missing: give the models to watch as a list of {id, path, critical}", "models")
    if len(present) == 2:
        raise ConfigError(src, "give either 'models' or 'monitored_models', not both", "monitored_models")
    key = present[0]
    items = doc[key]
    if not isinstance(items, list):
        raise ConfigError(src, f"must be a list of {{id, path, critical}} objects, got {_kind(items)}", key)
    if not items:
        raise ConfigError(src, "is empty: nothing to monitor", key)
    out: list[ModelSpec] = []
    seen: set[str] = set()
    for i, entry in enumerate(items):
        where = f"{key}[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(src, f"must be an object {{id, path, critical}}, got {_kind(entry)}", where)
        _unknown(set(entry), _MODEL_KEYS, src, where + ".")
        mid, path, critical = entry.get("id"), entry.get("path"), entry.get("critical", True)
        if not isinstance(mid, str) or not mid:
            raise ConfigError(src, f"missing or not text (got {_kind(mid)})", where + ".id")
        if not _ID.match(mid) or ".." in mid:
            raise ConfigError(src, f"{mid!r:.60} is not a safe model id (letters, digits, . _ + @ -)", where + ".id")
        if mid in seen:
            raise ConfigError(src, f"duplicate model id {mid!r}", where + ".id")
        seen.add(mid)
        if not isinstance(path, str) or not path.strip():
            raise ConfigError(src, f"missing or not text (got {_kind(path)})", where + ".path")
        if not isinstance(critical, bool):
            raise ConfigError(src, f"must be true or false, got {_kind(critical)}", where + ".critical")
        p = Path(path)
        if not p.is_absolute() and base is not None:
            p = base / p
        trust = {**_trust(doc, src, "", base), **_trust(entry, src, where + ".", base)}
        out.append(ModelSpec(mid, p, critical, trust))
    return tuple(out)


def _deps(doc: Mapping[str, Any], src: str) -> dict[str, str]:
    raw = doc.get("baseline_dependencies", {})
    if raw is None:
        return {}
    if isinstance(raw, list):
        deps: dict[str, str] = {}
        for i, item in enumerate(raw):
            m = _PIN.match(item) if isinstance(item, str) else None
            if m is None:
                raise ConfigError(src, f"must be 'name==version', got {item!r:.60}", f"baseline_dependencies[{i}]")
            deps[m.group(1)] = m.group(2)
        return deps
    if not isinstance(raw, dict):
        raise ConfigError(src, f"must be an object {{package: version}}, got {_kind(raw)}", "baseline_dependencies")
    for name, version in raw.items():
        if not isinstance(version, str) or not version.strip():
            raise ConfigError(src, f"version must be text, got {_kind(version)}", f"baseline_dependencies.{name}")
    return {str(k): v.strip() for k, v in raw.items()}


def _path(doc: Mapping[str, Any], key: str, src: str, base: Path | None) -> Path | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(src, f"must be a file path (text), got {_kind(value)}", key)
    p = Path(value)
    return p if p.is_absolute() or base is None else base / p


def parse_config(doc: Any, *, source: str = "config", base_dir: Path | None = None) -> MonitorConfig:
    """Validate a decoded config document.

    Args:
        doc: the decoded JSON.
        source: shown in error messages (the file name).
        base_dir: folder against which relative paths are resolved (the config file's folder).

    Returns:
        The :class:`MonitorConfig`.

    Raises:
        ConfigError: a field is missing, unknown, mistyped or out of range (the message names it).
    """
    if not isinstance(doc, dict):
        raise ConfigError(source, f"the top level must be a JSON object, got {_kind(doc)}")
    _unknown(set(doc), _TOP_KEYS, source, "")
    trust = doc.get("trust_mtime", False)
    if not isinstance(trust, bool):
        raise ConfigError(source, f"must be true or false, got {_kind(trust)}", "trust_mtime")
    backoff = _number(doc, "webhook_backoff_seconds", 1.0, source)
    max_backoff = _number(doc, "webhook_max_backoff_seconds", 300.0, source)
    if max_backoff < backoff:
        raise ConfigError(source, "must not be smaller than webhook_backoff_seconds", "webhook_max_backoff_seconds")
    return MonitorConfig(
        models=_models(doc, source, base_dir),
        check_interval_seconds=_number(doc, "check_interval_seconds", 300.0, source),
        alert_webhook=_webhook(doc.get("alert_webhook"), source, "alert_webhook"),
        baseline_dependencies=_deps(doc, source),
        behavior_drift_threshold=_number(doc, "behavior_drift_threshold", 0.15, source, positive=False),
        trust_mtime=trust,
        webhook_timeout_seconds=_number(doc, "webhook_timeout_seconds", 10.0, source),
        webhook_backoff_seconds=backoff,
        webhook_max_backoff_seconds=max_backoff,
        check_max_backoff_seconds=_number(doc, "check_max_backoff_seconds", 600.0, source),
        state_file=_path(doc, "state_file", source, base_dir),
        alerts_file=_path(doc, "alerts_file", source, base_dir),
        queue_file=_path(doc, "queue_file", source, base_dir),
        source=source,
    )


def load_config(path: str | Path) -> MonitorConfig:
    """Read and validate a monitor config file (JSON).

    Raises:
        ConfigError: the file is missing, unreadable, too large, not JSON (with line and column) or invalid.
    """
    path = Path(path)
    src = str(path)
    try:
        if not path.is_file():
            raise ConfigError(src, "no such file" if not path.exists() else "not a regular file")
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(src, f"larger than {MAX_CONFIG_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(src, f"cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(src, "is not UTF-8 text") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(src, f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    return parse_config(doc, source=src, base_dir=path.resolve().parent)
